//! Test suites: the verdicts a user expects of rules on resources, checked by
//! running the rules through the same path as `palisade check`.
//!
//! A suite is a YAML document (`apiVersion: palisade.dev/v1alpha1`, `kind:
//! Test`; the format is in `docs/test-suites.md`) listing the resources under
//! test (files, or objects written inline), inventory objects the
//! cross-resource rules read, an optional configuration, and expected results
//! per resource and rule. [`discover`] finds suites under paths, [`parse`]
//! reads one with the line of every entry, [`run`] loads its objects and
//! evaluates them with [`crate::check::run`] and compares. Whatever makes a
//! suite unusable (bad YAML, an unknown key or rule, a missing file, a
//! resource named that is not there) is a [`SuiteError`] naming the file and
//! the line.
//!
//! Each (resource, rule) pair has exactly one result: `fail` (the rule
//! evaluated the object and reported a violation no exception covers),
//! `exempted` (it reported violations, every one covered by an exception),
//! `pass` (it evaluated the object and reported nothing), or `skip` (it gave
//! no verdict: not in the selected set, not applying to the object's kind, or
//! inactive as configured). An expectation's `path` and `message` narrow the
//! violations that result is computed from.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::check;
use crate::config::Config;
use crate::documents::{Document, Limits, Parsed, locate, read_documents};
use crate::findings::ResourceRef;
use crate::policy_set::{ActivePolicy, Catalog, Selection};
use crate::resources::{Resource, Source};

/// The `apiVersion` of a suite.
pub const API_VERSION: &str = "palisade.dev/v1alpha1";
/// The `kind` of a suite.
pub const KIND: &str = "Test";

/// Something that makes a suite unusable, and where: `line` 0 when the whole
/// file is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuiteError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

impl std::fmt::Display for SuiteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(f, "{}:{}: {}", self.file, self.line, self.message)
        }
    }
}

impl std::error::Error for SuiteError {}

/// A result of a rule on a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Fail,
    Pass,
    Skip,
    Exempted,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Fail => "fail",
            Verdict::Pass => "pass",
            Verdict::Skip => "skip",
            Verdict::Exempted => "exempted",
        }
    }
}

/// What an expectation expects: a result, computed from the violations its
/// `path` and `message` select, and how many of them when `count` is given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    pub verdict: Verdict,
    /// A JSON pointer: only violations at exactly this path.
    pub path: Option<String>,
    /// Only violations whose message contains this.
    pub message: Option<String>,
    /// With `fail` (`exempted`): exactly this many violations (exempted ones) selected.
    pub count: Option<usize>,
}

impl Expected {
    fn selects(&self, v: &Seen) -> bool {
        self.path.as_ref().is_none_or(|p| *p == v.path) && self.message.as_ref().is_none_or(|m| v.message.contains(m))
    }

    /// The result the selected violations make.
    pub fn verdict_of(&self, seen: &[Seen]) -> Verdict {
        let selected: Vec<&Seen> = seen.iter().filter(|v| self.selects(v)).collect();
        if selected.iter().any(|v| !v.exempted) {
            Verdict::Fail
        } else if selected.is_empty() {
            Verdict::Pass
        } else {
            Verdict::Exempted
        }
    }

    /// Whether `actual` agrees with this expectation.
    pub fn agrees(&self, actual: &Actual) -> bool {
        match actual {
            Actual::Error(_) => false,
            Actual::Skip(_) => self.verdict == Verdict::Skip,
            Actual::Evaluated(seen) => {
                let verdict = self.verdict_of(seen);
                let counted = seen.iter().filter(|v| self.selects(v) && v.exempted == (verdict == Verdict::Exempted));
                verdict == self.verdict && self.count.is_none_or(|n| counted.count() == n)
            }
        }
    }
}

impl Expected {
    /// What narrows the expectation: `at /spec/x, message "m", 2 violations`
    /// (empty when nothing does).
    pub fn filters(&self) -> String {
        let mut parts = Vec::new();
        if let Some(p) = &self.path {
            parts.push(format!("at {p}"));
        }
        if let Some(m) = &self.message {
            parts.push(format!("message {m:?}"));
        }
        if let Some(n) = self.count {
            parts.push(format!("{n} violation{}", if n == 1 { "" } else { "s" }));
        }
        parts.join(", ")
    }
}

impl std::fmt::Display for Expected {
    /// `fail`, or `fail (at /spec/x, message "m", 2 violations)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.verdict.as_str())?;
        let filters = self.filters();
        if !filters.is_empty() {
            write!(f, " ({filters})")?;
        }
        Ok(())
    }
}

/// Which tested object an expectation is about: kind and name, the namespace
/// when given (`NAMESPACE/NAME`), and, between objects alike, the file entry
/// (as written in `resources`) and document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
    pub file: Option<String>,
    pub document: Option<usize>,
}

impl Selector {
    fn label(&self) -> String {
        let mut s = match &self.namespace {
            Some(ns) => format!("{} {ns}/{}", self.kind, self.name),
            None => format!("{} {}", self.kind, self.name),
        };
        if let Some(f) = &self.file {
            s.push_str(&format!(" in {f}"));
        }
        if let Some(d) = self.document {
            s.push_str(&format!(" (document {d})"));
        }
        s
    }

    fn matches_identity(&self, r: &Resource) -> bool {
        r.kind == self.kind
            && r.name == self.name
            && self.namespace.as_ref().is_none_or(|ns| r.namespace.as_ref() == Some(ns))
    }
}

/// The objects an expectation is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// One tested object, named.
    Selector(Selector),
    /// Every object of an entry of `resources` (its `expect`).
    Entry(usize),
}

/// One expected result of one rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expectation {
    /// The line of the expectation (a `results` item, or the `expect` key).
    pub line: usize,
    /// The line where the rule id is written.
    pub rule_line: usize,
    pub rule: String,
    pub target: Target,
    pub expected: Expected,
}

/// Where an entry's objects come from.
#[derive(Debug, Clone, PartialEq)]
pub enum EntrySource {
    /// A file or directory, read as `check` reads it: as written, and resolved
    /// against the suite's directory.
    File { written: String, path: PathBuf },
    /// An object written in the suite, at this pointer of its document.
    Object { value: Value, pointer: String },
}

/// An item of `resources` or `inventory`.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub line: usize,
    pub source: EntrySource,
}

/// The lines of a YAML document's fields.
#[derive(Debug, Clone)]
struct Locator {
    text: Arc<str>,
    first_line: usize,
    line: usize,
}

impl Locator {
    fn of(doc: &Document, parsed: &Parsed) -> Locator {
        Locator { text: doc.text.clone(), first_line: parsed.first_line, line: doc.line }
    }

    /// The line of the node at `pointer`, or of its deepest written ancestor.
    fn line(&self, pointer: &str) -> usize {
        locate(&self.text, pointer).map_or(self.line, |(line, _)| self.first_line + line - 1)
    }
}

/// Where a suite's configuration is written, for the line of its errors.
#[derive(Debug, Clone)]
enum ConfigOrigin {
    Default,
    /// Inline, under `/config` of the suite.
    Inline,
    /// A file, its path as given and its first document.
    File {
        name: String,
        locator: Option<Locator>,
    },
}

/// One suite, read.
#[derive(Debug, Clone)]
pub struct Suite {
    pub file: String,
    /// 1-based document of the file.
    pub document: usize,
    pub line: usize,
    pub name: String,
    pub description: Option<String>,
    pub config: Config,
    pub resources: Vec<Entry>,
    pub inventory: Vec<Entry>,
    pub expectations: Vec<Expectation>,
    locator: Locator,
    config_origin: ConfigOrigin,
}

// The shapes as written; positions and meaning are checked by `parse`.

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawSuite {
    #[allow(dead_code)]
    api_version: String,
    #[allow(dead_code)]
    kind: String,
    #[serde(default)]
    metadata: RawMetadata,
    description: Option<String>,
    config: Option<Value>,
    resources: Vec<Value>,
    #[serde(default)]
    inventory: Vec<Value>,
    #[serde(default)]
    results: Vec<Value>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMetadata {
    name: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    file: Option<String>,
    object: Option<Value>,
    expect: Option<serde_json::Map<String, Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExpect {
    result: Verdict,
    path: Option<String>,
    message: Option<String>,
    count: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawResult {
    /// `policy`, as a Kyverno test names it, is taken too.
    #[serde(alias = "policy")]
    rule: Option<String>,
    #[serde(default)]
    rules: Vec<String>,
    resource: Option<String>,
    kind: Option<String>,
    #[serde(default)]
    resources: Vec<String>,
    result: Verdict,
    path: Option<String>,
    message: Option<String>,
    count: Option<usize>,
    file: Option<String>,
    document: Option<usize>,
}

/// A JSON pointer token.
fn token(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// Deserialize `value`; an error comes with the pointer (below `value`) of
/// the field it is about.
fn deserialize<T: DeserializeOwned>(value: &Value) -> Result<T, (String, String)> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let message = e.inner().to_string();
        // An unknown key is placed at the key; the message names it already.
        let unknown =
            message.strip_prefix("unknown field `").and_then(|rest| rest.find('`').map(|end| rest[..end].to_string()));
        let mut segments: Vec<String> = Vec::new();
        let mut names: Vec<String> = Vec::new();
        for segment in e.path().iter() {
            match segment {
                serde_path_to_error::Segment::Seq { index } => {
                    segments.push(index.to_string());
                    names.push(format!("[{index}]"));
                }
                serde_path_to_error::Segment::Map { key } => {
                    segments.push(key.clone());
                    names.push(format!(".{key}"));
                }
                _ => {}
            }
        }
        if let Some(key) = &unknown {
            if segments.last() == Some(key) {
                names.pop();
            } else {
                segments.push(key.clone());
            }
        }
        let pointer: String = segments.iter().map(|s| format!("/{}", token(s))).collect();
        let at = names.concat();
        let at = at.trim_start_matches('.');
        let at = if at.is_empty() { String::new() } else { format!("{at}: ") };
        (pointer, format!("{at}{}", crate::suggest::unknown_field(&message)))
    })
}

/// The suites of one file (one per document), or every error found in it.
pub fn parse(file: &str, text: &str) -> Result<Vec<Suite>, Vec<SuiteError>> {
    let base = Path::new(file).parent().unwrap_or(Path::new(""));
    let stem = Path::new(file).file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| file.into());
    let documents = read_documents(text, &Limits::default());
    let several = documents.len() > 1;
    let mut suites = Vec::new();
    let mut errors = Vec::new();
    for doc in &documents {
        let default_name = if several { format!("{stem}#{}", doc.index) } else { stem.clone() };
        let mut p = Parser { file, base, errors: Vec::new() };
        if let Some(suite) = p.suite(doc, default_name) {
            suites.push(suite);
        }
        errors.extend(p.errors);
    }
    if documents.is_empty() {
        errors.push(SuiteError { file: file.into(), line: 0, message: "no suite in this file: it is empty".into() });
    }
    if errors.is_empty() { Ok(suites) } else { Err(errors) }
}

struct Parser<'a> {
    file: &'a str,
    base: &'a Path,
    errors: Vec<SuiteError>,
}

impl Parser<'_> {
    fn error(&mut self, line: usize, message: impl Into<String>) {
        self.errors.push(SuiteError { file: self.file.into(), line, message: message.into() });
    }

    fn suite(&mut self, doc: &Document, default_name: String) -> Option<Suite> {
        let parsed = match &doc.content {
            Ok(parsed) => parsed,
            Err(e) => {
                let lead = if e.message.starts_with("invalid YAML") { "" } else { "not valid YAML: " };
                self.error(e.line, format!("{lead}{} (column {})", e.message, e.column));
                return None;
            }
        };
        let at = Locator::of(doc, parsed);
        let value = &parsed.value;
        if !value.is_object() {
            self.error(doc.line, format!("a suite is a mapping, not {}", crate::resources::type_name(value)));
            return None;
        }
        let api_version = value.get("apiVersion").and_then(Value::as_str);
        let kind = value.get("kind").and_then(Value::as_str);
        if api_version != Some(API_VERSION) || kind != Some(KIND) {
            let pointer = if api_version != Some(API_VERSION) { "/apiVersion" } else { "/kind" };
            self.error(
                at.line(pointer),
                format!(
                    "not a test suite: it must have `apiVersion: {API_VERSION}` and `kind: {KIND}` (found {} and {})",
                    api_version.map_or("no apiVersion".to_string(), |v| format!("apiVersion {v:?}")),
                    kind.map_or("no kind".to_string(), |k| format!("kind {k:?}"))
                ),
            );
            return None;
        }
        let raw: RawSuite = match deserialize(value) {
            Ok(raw) => raw,
            Err((pointer, message)) => {
                self.error(at.line(&pointer), message);
                return None;
            }
        };
        let (config, config_origin) = self.config(raw.config.as_ref(), &at)?;
        let resources = self.entries("resources", &raw.resources, &at, true);
        let inventory = self.entries("inventory", &raw.inventory, &at, false);
        if raw.resources.is_empty() {
            self.error(at.line("/resources"), "`resources` is empty: a suite tests at least one object");
        }
        let mut expectations = Vec::new();
        for (i, item) in raw.resources.iter().enumerate() {
            self.entry_expectations(i, item, &at, &mut expectations);
        }
        let files: Vec<&str> = resources
            .iter()
            .filter_map(|e| match &e.source {
                EntrySource::File { written, .. } => Some(written.as_str()),
                EntrySource::Object { .. } => None,
            })
            .collect();
        for (i, item) in raw.results.iter().enumerate() {
            self.result(i, item, &at, &files, &mut expectations);
        }
        if expectations.is_empty() && self.errors.is_empty() {
            self.error(
                at.line("/results"),
                "no expectations: add `results`, or `expect` to an item of `resources` (a suite that expects nothing can only pass)",
            );
        }
        Some(Suite {
            file: self.file.into(),
            document: doc.index,
            line: doc.line,
            name: raw.metadata.name.unwrap_or(default_name),
            description: raw.description,
            config,
            resources,
            inventory,
            expectations,
            locator: at,
            config_origin,
        })
    }

    /// `config:`: a mapping of the configuration file's keys, or the path of such a file.
    fn config(&mut self, value: Option<&Value>, at: &Locator) -> Option<(Config, ConfigOrigin)> {
        const REFUSED: [(&str, &str); 3] = [
            ("imageVerification", "image verification needs registries; test it with `palisade check --verify-images`"),
            ("verify", "which policies run is the command line's choice (--bundle, --verify-key)"),
            ("admission", "admission modes are `palisade serve`'s; a suite tests verdicts"),
        ];
        match value {
            None => Some((Config::default(), ConfigOrigin::Default)),
            Some(Value::String(path)) => {
                let full = self.base.join(path);
                let name = full.display().to_string();
                let line = at.line("/config");
                let text = match std::fs::read_to_string(&full) {
                    Ok(text) => text,
                    Err(e) => {
                        self.error(line, format!("config: cannot read {name}: {e}"));
                        return None;
                    }
                };
                let locator = read_documents(&text, &Limits::default())
                    .first()
                    .and_then(|d| d.content.as_ref().ok().map(|p| Locator::of(d, p)));
                let mut config = match Config::parse(&text) {
                    Ok(config) => config,
                    Err(e) => {
                        self.error(line, format!("config: {name}: {e}"));
                        return None;
                    }
                };
                config.base_dir = full.parent().unwrap_or(Path::new("")).to_path_buf();
                if config.image_verification.is_some() || !config.verify.keys.is_empty() {
                    let key = if config.image_verification.is_some() { REFUSED[0] } else { REFUSED[1] };
                    self.error(line, format!("config: {name}: `{}` is not taken in a suite: {}", key.0, key.1));
                    return None;
                }
                Some((config, ConfigOrigin::File { name, locator }))
            }
            Some(value @ Value::Object(map)) => {
                for (key, why) in REFUSED {
                    if map.contains_key(key) {
                        self.error(
                            at.line(&format!("/config/{key}")),
                            format!("config.{key} is not taken in a suite: {why}"),
                        );
                        return None;
                    }
                }
                let config: Config = match deserialize(value) {
                    Ok(config) => config,
                    Err((pointer, message)) => {
                        self.error(at.line(&format!("/config{pointer}")), format!("config: {message}"));
                        return None;
                    }
                };
                for (rule, settings) in &config.settings {
                    if !settings.is_object() {
                        self.error(
                            at.line(&format!("/config/settings/{}", token(rule))),
                            format!("config.settings.{rule} must be a mapping"),
                        );
                        return None;
                    }
                }
                Some((Config { base_dir: self.base.to_path_buf(), ..config }, ConfigOrigin::Inline))
            }
            Some(other) => {
                self.error(
                    at.line("/config"),
                    format!(
                        "`config` must be a mapping (profile, settings, exceptions, ...) or the path of a configuration file, not {}",
                        crate::resources::type_name(other)
                    ),
                );
                None
            }
        }
    }

    /// The items of `resources` or `inventory`.
    fn entries(&mut self, list: &str, items: &[Value], at: &Locator, tested: bool) -> Vec<Entry> {
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let pointer = format!("/{list}/{i}");
            let line = at.line(&pointer);
            let source = match item {
                Value::String(written) => self.file_source(written),
                Value::Object(_) => {
                    let raw: RawEntry = match deserialize(item) {
                        Ok(raw) => raw,
                        Err((p, message)) => {
                            self.error(at.line(&format!("{pointer}{p}")), format!("{list}[{i}]: {message}"));
                            continue;
                        }
                    };
                    if raw.expect.is_some() && !tested {
                        self.error(
                            at.line(&format!("{pointer}/expect")),
                            "inventory objects are read by the rules, not tested: move the object to `resources` to expect results of it",
                        );
                    }
                    match (raw.file, raw.object) {
                        (Some(written), None) => self.file_source(&written),
                        (None, Some(object @ Value::Object(_))) => {
                            EntrySource::Object { value: object, pointer: format!("{pointer}/object") }
                        }
                        (None, Some(other)) => {
                            self.error(
                                at.line(&format!("{pointer}/object")),
                                format!(
                                    "`object` must be a Kubernetes object (a mapping), not {}",
                                    crate::resources::type_name(&other)
                                ),
                            );
                            continue;
                        }
                        _ => {
                            self.error(line, format!("{list}[{i}]: give either `file: PATH` or `object: {{...}}`"));
                            continue;
                        }
                    }
                }
                other => {
                    self.error(
                        line,
                        format!(
                            "{list}[{i}] must be a file path or a mapping with `file` or `object`, not {}",
                            crate::resources::type_name(other)
                        ),
                    );
                    continue;
                }
            };
            out.push(Entry { line, source });
        }
        out
    }

    fn file_source(&self, written: &str) -> EntrySource {
        EntrySource::File { written: written.to_string(), path: self.base.join(written) }
    }

    /// An item's `expect: {RULE: RESULT | {result, path, message, count}}`.
    fn entry_expectations(&mut self, i: usize, item: &Value, at: &Locator, out: &mut Vec<Expectation>) {
        let Some(expect) = item.get("expect") else { return };
        let Some(map) = expect.as_object() else {
            self.error(
                at.line(&format!("/resources/{i}/expect")),
                format!("`expect` must map rule ids to results, not {}", crate::resources::type_name(expect)),
            );
            return;
        };
        for (rule, value) in map {
            let pointer = format!("/resources/{i}/expect/{}", token(rule));
            let line = at.line(&pointer);
            let raw = match value {
                Value::String(_) => deserialize::<Verdict>(value).map(|result| RawExpect {
                    result,
                    path: None,
                    message: None,
                    count: None,
                }),
                _ => deserialize::<RawExpect>(value),
            };
            let raw = match raw {
                Ok(raw) => raw,
                Err((p, message)) => {
                    self.error(at.line(&format!("{pointer}{p}")), format!("expect.{rule}: {message}"));
                    continue;
                }
            };
            if let Some(expected) = self.expected(line, raw.result, raw.path, raw.message, raw.count) {
                out.push(Expectation { line, rule_line: line, rule: rule.clone(), target: Target::Entry(i), expected });
            }
        }
    }

    /// A result with its filters, checked.
    fn expected(
        &mut self,
        line: usize,
        verdict: Verdict,
        path: Option<String>,
        message: Option<String>,
        count: Option<usize>,
    ) -> Option<Expected> {
        let filtered = path.is_some() || message.is_some();
        if verdict == Verdict::Skip && (filtered || count.is_some()) {
            self.error(line, "`skip` takes no `path`, `message` or `count`: a skipped rule reports nothing");
            return None;
        }
        if verdict == Verdict::Pass && count.is_some() {
            self.error(line, "`pass` takes no `count`: it means no violation (of the `path` and `message` given)");
            return None;
        }
        if count == Some(0) {
            self.error(line, "`count: 0` is `pass`: write `result: pass`");
            return None;
        }
        if let Some(p) = &path
            && !p.starts_with('/')
        {
            self.error(line, format!("`path` is a JSON pointer such as /spec/containers/0/image, not {p:?}"));
            return None;
        }
        Some(Expected { verdict, path, message, count })
    }

    /// A `results` item: one expectation per rule and resource it names.
    fn result(&mut self, i: usize, item: &Value, at: &Locator, files: &[&str], out: &mut Vec<Expectation>) {
        let pointer = format!("/results/{i}");
        let line = at.line(&pointer);
        let raw: RawResult = match deserialize(item) {
            Ok(raw) => raw,
            Err((p, message)) => {
                self.error(at.line(&format!("{pointer}{p}")), format!("results[{i}]: {message}"));
                return;
            }
        };
        let mut rules: Vec<(String, usize)> = Vec::new();
        match (raw.rule, raw.rules.is_empty()) {
            (Some(rule), true) => rules.push((rule, at.line(&format!("{pointer}/rule")))),
            (None, false) => {
                for (j, rule) in raw.rules.into_iter().enumerate() {
                    rules.push((rule, at.line(&format!("{pointer}/rules/{j}"))));
                }
            }
            (Some(_), false) => return self.error(line, "give `rule` or `rules`, not both"),
            (None, true) => return self.error(line, "which rule? give `rule: ID` (or `rules: [ID, ...]`)"),
        }
        let mut names: Vec<(String, Option<String>, String)> = Vec::new();
        match (raw.resource, raw.kind, raw.resources.is_empty()) {
            (Some(resource), None, true) => {
                let parsed = resource
                    .trim()
                    .split_once(' ')
                    .map(|(kind, rest)| (kind.trim(), rest.trim()))
                    .filter(|(kind, rest)| !kind.is_empty() && !rest.is_empty() && !rest.contains(' '));
                let Some((kind, rest)) = parsed else {
                    return self.error(
                        at.line(&format!("{pointer}/resource")),
                        format!(
                            "`resource` is \"KIND [NAMESPACE/]NAME\", such as \"Pod default/web\", not {resource:?}"
                        ),
                    );
                };
                match split_name(rest) {
                    Some((ns, name)) => names.push((kind.to_string(), ns, name)),
                    None => {
                        return self.error(
                            at.line(&format!("{pointer}/resource")),
                            format!("{rest:?} is not NAME or NAMESPACE/NAME"),
                        );
                    }
                }
            }
            (None, Some(kind), false) => {
                for (j, r) in raw.resources.iter().enumerate() {
                    match split_name(r) {
                        Some((ns, name)) => names.push((kind.clone(), ns, name)),
                        None => {
                            return self.error(
                                at.line(&format!("{pointer}/resources/{j}")),
                                format!("{r:?} is not NAME or NAMESPACE/NAME"),
                            );
                        }
                    }
                }
            }
            (None, Some(_), true) => return self.error(line, "`kind` needs `resources: [NAME, NAMESPACE/NAME, ...]`"),
            (None, None, false) => return self.error(line, "`resources` needs the `kind` of the objects it names"),
            (None, None, true) => {
                return self.error(
                    line,
                    "which object? give `resource: \"KIND [NAMESPACE/]NAME\"`, or `kind` and `resources: [NAME, ...]`",
                );
            }
            (Some(_), _, _) => {
                return self.error(line, "give `resource`, or `kind` with `resources`, not both");
            }
        }
        if let Some(f) = &raw.file
            && !files.contains(&f.as_str())
        {
            let listed = if files.is_empty() { "none".to_string() } else { files.join(", ") };
            return self.error(
                at.line(&format!("{pointer}/file")),
                format!("`file: {f}` is not a file of `resources` (they are: {listed})"),
            );
        }
        if raw.document == Some(0) {
            return self.error(at.line(&format!("{pointer}/document")), "`document` counts from 1");
        }
        let Some(expected) = self.expected(line, raw.result, raw.path, raw.message, raw.count) else { return };
        for (rule, rule_line) in &rules {
            for (kind, namespace, name) in &names {
                out.push(Expectation {
                    line,
                    rule_line: *rule_line,
                    rule: rule.clone(),
                    target: Target::Selector(Selector {
                        kind: kind.clone(),
                        namespace: namespace.clone(),
                        name: name.clone(),
                        file: raw.file.clone(),
                        document: raw.document,
                    }),
                    expected: expected.clone(),
                });
            }
        }
    }
}

/// `NAME` or `NAMESPACE/NAME`.
fn split_name(text: &str) -> Option<(Option<String>, String)> {
    let text = text.trim();
    match text.split_once('/') {
        None if !text.is_empty() => Some((None, text.to_string())),
        Some((ns, name)) if !ns.is_empty() && !name.is_empty() && !name.contains('/') => {
            Some((Some(ns.to_string()), name.to_string()))
        }
        _ => None,
    }
}

impl Suite {
    /// The rules this suite's configuration selects.
    pub fn selection(&self) -> Selection {
        Selection {
            profile: self.config.profile.clone().unwrap_or_else(|| "hardened".into()),
            pss_version: self.config.pss_version.clone(),
            disable: self.config.disable.clone(),
            severity: self.config.severity.clone(),
            settings: self.config.settings.clone(),
        }
    }

    fn error(&self, line: usize, message: impl Into<String>) -> SuiteError {
        SuiteError { file: self.file.clone(), line, message: message.into() }
    }

    /// An error of the configuration (`settings.x.y: ...`, `exceptions[0].rules: ...`),
    /// placed on the line of the key it starts with.
    fn config_error(&self, message: &str) -> SuiteError {
        let key = message.split_once(": ").map_or("", |(k, _)| k);
        let pointer: String = if key.is_empty() || key.contains(' ') {
            if message.starts_with("unknown profile") { "/profile".into() } else { String::new() }
        } else {
            key.replace('[', ".").replace(']', "").split('.').map(|t| format!("/{}", token(t))).collect()
        };
        match &self.config_origin {
            ConfigOrigin::File { name, locator } => {
                let at = locator.as_ref().map_or(String::new(), |l| format!(":{}", l.line(&pointer)));
                self.error(self.locator.line("/config"), format!("config {name}{at}: {message}"))
            }
            ConfigOrigin::Inline => {
                self.error(self.locator.line(&format!("/config{pointer}")), format!("config: {message}"))
            }
            ConfigOrigin::Default => self.error(self.line, format!("config: {message}")),
        }
    }
}

/// What one rule made of one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actual {
    /// The rule evaluated it and reported these violations (none: it passed).
    Evaluated(Vec<Seen>),
    /// It gave no verdict, for this reason.
    Skip(String),
    /// It failed on the object (trap, timeout, its own error).
    Error(String),
}

/// A violation a rule reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub path: String,
    pub message: String,
    /// Covered by an exception of the configuration.
    pub exempted: bool,
}

/// One expectation on one object, and what happened.
#[derive(Debug, Clone)]
pub struct Check {
    /// The line of the expectation in the suite (of the object, for a policy
    /// error no expectation named).
    pub line: usize,
    pub resource: ResourceRef,
    /// Where the object is written.
    pub source: Source,
    pub rule: String,
    /// `None`: a policy error on a tested object, which no expectation named.
    pub expected: Option<Expected>,
    pub actual: Actual,
}

impl Check {
    pub fn agrees(&self) -> bool {
        self.expected.as_ref().is_some_and(|e| e.agrees(&self.actual))
    }

    /// The result as the expectation's filters see it: `fail`, `pass`,
    /// `exempted`, `skip` or `error`.
    pub fn actual_label(&self) -> &'static str {
        match &self.actual {
            Actual::Error(_) => "error",
            Actual::Skip(_) => "skip",
            Actual::Evaluated(seen) => match &self.expected {
                Some(e) => e.verdict_of(seen).as_str(),
                None if seen.iter().any(|v| !v.exempted) => Verdict::Fail.as_str(),
                None if seen.is_empty() => Verdict::Pass.as_str(),
                None => Verdict::Exempted.as_str(),
            },
        }
    }

    /// [`Check::actual_label`], with how many violations it selected when the
    /// expectation counts them: `fail (2 violations)`.
    pub fn actual_text(&self) -> String {
        let label = self.actual_label();
        match (&self.expected, &self.actual) {
            (Some(e @ Expected { count: Some(_), .. }), Actual::Evaluated(seen)) => {
                let exempted = label == Verdict::Exempted.as_str();
                let n = seen.iter().filter(|v| e.selects(v) && v.exempted == exempted).count();
                format!("{label} ({n} violation{})", if n == 1 { "" } else { "s" })
            }
            _ => label.to_string(),
        }
    }
}

/// The outcome of one suite.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub file: String,
    pub document: usize,
    /// The line it starts on.
    pub line: usize,
    pub name: String,
    /// The profile it ran.
    pub profile: String,
    pub checks: Vec<Check>,
    /// Violations on tested objects by rules that no expectation of the
    /// suite names for that object: shown, not compared.
    pub unasserted: usize,
    /// What the run saw beside the comparison: exceptions that matched
    /// nothing, policy errors on inventory objects.
    pub notes: Vec<String>,
}

impl Outcome {
    pub fn differences(&self) -> usize {
        self.checks.iter().filter(|c| !c.agrees()).count()
    }
}

/// Load one entry's objects into `out`; what cannot be read is an error on the entry's line.
fn load_entry(suite: &Suite, entry: &Entry, out: &mut Vec<Resource>, errors: &mut Vec<SuiteError>) {
    match &entry.source {
        EntrySource::File { written, path } => {
            if let Err(e) = std::fs::metadata(path) {
                errors.push(suite.error(entry.line, format!("{written}: cannot read {}: {e}", path.display())));
                return;
            }
            let loaded = check::load(&[path.display().to_string()], &Limits::default());
            for e in &loaded.errors {
                let at = if e.source.line > 0 {
                    format!("{}:{}", e.source.file, e.source.line)
                } else {
                    e.source.file.clone()
                };
                errors.push(suite.error(entry.line, format!("{written}: {at}: {}", e.message)));
            }
            // A file `check` would skip (a Helm values file beside a chart)
            // would leave the suite with fewer objects than it names: say so.
            for (file, why) in &loaded.skipped {
                errors.push(suite.error(entry.line, format!("{written}: {file}: not read: {why}")));
            }
            out.extend(loaded.resources);
        }
        EntrySource::Object { value, pointer } => {
            // The object's fields are found in the suite's own text, below its pointer.
            let document = Document {
                index: suite.document,
                line: entry.line,
                content: Ok(Parsed {
                    value: value.clone(),
                    item_lines: Vec::new(),
                    first_line: suite.locator.first_line,
                    steps: None,
                }),
                template: None,
                text: suite.locator.text.clone(),
            };
            let mut read = Vec::new();
            let mut problems = Vec::new();
            crate::resources::from_documents(&suite.file, vec![document], &mut read, &mut problems);
            for p in problems {
                errors.push(suite.error(entry.line, format!("object: {}", p.message)));
            }
            for mut r in read {
                if let Some(w) = &mut r.written {
                    w.prefix = format!("{pointer}{}", w.prefix);
                }
                r.source = Source { line: entry.line, ..r.source };
                out.push(r);
            }
        }
    }
}

fn describe(r: &Resource) -> String {
    format!("{} ({} document {}, line {})", ResourceRef::of(r).label(), r.source.file, r.source.document, r.source.line)
}

/// Run one suite with the rules of `catalog`: its objects are evaluated with
/// its inventory beside them, as `check` evaluates a set, and every
/// expectation is compared. A suite that cannot run is a list of errors.
pub fn run(catalog: &Catalog, suite: &Suite, threads: usize) -> Result<Outcome, Vec<SuiteError>> {
    let mut errors = Vec::new();
    let selection = suite.selection();
    let policies = match catalog.select(&selection) {
        Ok(policies) => policies,
        Err(problems) => {
            errors.extend(problems.iter().map(|p| suite.config_error(p)));
            Vec::new()
        }
    };
    let exceptions = crate::exceptions::validate(
        &suite.config.exceptions,
        |id| catalog.get(id).is_some(),
        |id| catalog.did_you_mean(id),
    );
    errors.extend(exceptions.iter().map(|p| suite.config_error(p)));
    let mut unknown = BTreeSet::new();
    for e in &suite.expectations {
        if catalog.get(&e.rule).is_none() && unknown.insert((e.rule_line, e.rule.clone())) {
            errors.push(suite.error(
                e.rule_line,
                format!(
                    "no rule {:?}{} among the loaded rules (`palisade policies` lists them; add components with --policies)",
                    e.rule,
                    catalog.did_you_mean(&e.rule)
                ),
            ));
        }
    }

    let before_loading = errors.len();
    let mut resources = Vec::new();
    let mut entry_of = Vec::new();
    for (i, entry) in suite.resources.iter().enumerate() {
        load_entry(suite, entry, &mut resources, &mut errors);
        entry_of.resize(resources.len(), i);
    }
    let tested = resources.len();
    for entry in &suite.inventory {
        load_entry(suite, entry, &mut resources, &mut errors);
    }
    // An object not found is no news when a file could not be read.
    let unread = errors.len() > before_loading;

    // Each expectation's objects, by position among the tested ones.
    let mut targets: Vec<Vec<usize>> = Vec::new();
    for e in &suite.expectations {
        let found: Vec<usize> = match &e.target {
            Target::Entry(i) => (0..tested).filter(|&r| entry_of[r] == *i).collect(),
            Target::Selector(s) => (0..tested)
                .filter(|&r| {
                    let res = &resources[r];
                    let file_ok = s.file.as_ref().is_none_or(|f| {
                        matches!(&suite.resources[entry_of[r]].source, EntrySource::File { written, .. } if written == f)
                    });
                    s.matches_identity(res) && file_ok && s.document.is_none_or(|d| res.source.document == d)
                })
                .collect(),
        };
        if found.is_empty() && !unread {
            let message = match &e.target {
                Target::Entry(_) => "this item of `resources` holds no object".to_string(),
                Target::Selector(s) => {
                    let in_inventory = resources[tested..].iter().any(|r| s.matches_identity(r));
                    let alike: Vec<String> = resources[..tested]
                        .iter()
                        .filter(|r| r.kind == s.kind)
                        .map(|r| ResourceRef::of(r).label())
                        .collect::<BTreeSet<_>>()
                        .into_iter()
                        .collect();
                    if in_inventory {
                        format!("{} is an inventory object: only the objects of `resources` are tested", s.label())
                    } else if alike.is_empty() {
                        format!("no tested object is {}: the suite tests no {}", s.label(), s.kind)
                    } else {
                        format!("no tested object is {} (the tested {}s: {})", s.label(), s.kind, alike.join(", "))
                    }
                }
            };
            errors.push(suite.error(e.line, message));
        } else if found.len() > 1 && matches!(e.target, Target::Selector(_)) {
            let Target::Selector(s) = &e.target else { continue };
            let listed: Vec<String> = found.iter().map(|&r| describe(&resources[r])).collect();
            let hint = if s.namespace.is_none() && found.iter().any(|&r| resources[r].namespace.is_some()) {
                "NAMESPACE/NAME, "
            } else {
                ""
            };
            errors.push(suite.error(
                e.line,
                format!(
                    "{} matches {} objects: {}; tell them apart with {hint}`file` or `document`",
                    s.label(),
                    found.len(),
                    listed.join(", ")
                ),
            ));
        }
        targets.push(found);
    }
    if !errors.is_empty() {
        errors.sort_by_key(|e| e.line);
        return Err(errors);
    }

    let files =
        suite.resources.iter().chain(&suite.inventory).filter(|e| matches!(e.source, EntrySource::File { .. })).count();
    let loaded = check::Loaded { files, resources, errors: Vec::new(), skipped: BTreeMap::new() };
    let report = check::run(&catalog.runtime, &policies, loaded, &suite.config.exceptions, threads);
    let active: BTreeMap<&str, &ActivePolicy> = policies.iter().map(|p| (p.id(), p)).collect();

    let error_of = |r: usize, rule: &str| -> Option<String> {
        let checked = &report.resources[r];
        report
            .errors
            .iter()
            .find(|e| {
                e.rule.as_deref() == Some(rule)
                    && e.resource.as_ref() == Some(&checked.resource)
                    && e.source == checked.source
            })
            .map(|e| e.message.clone())
    };
    let actual = |r: usize, rule: &str| -> Actual {
        let checked = &report.resources[r];
        if let Some(message) = error_of(r, rule) {
            return Actual::Error(message);
        }
        let Some(policy) = active.get(rule) else {
            let why = if suite.config.disable.iter().any(|d| d == rule) {
                "disabled by the suite's configuration".to_string()
            } else {
                format!("not in the {} profile", selection.profile)
            };
            return Actual::Skip(why);
        };
        if let Some(why) = &policy.inactive {
            return Actual::Skip(format!("inactive: {why}"));
        }
        if !checked.rules.iter().any(|x| x == rule) {
            return Actual::Skip(format!(
                "does not apply to {} (it applies to {})",
                checked.resource.kind,
                policy.policy.meta.applies_to.join(", ")
            ));
        }
        Actual::Evaluated(
            report
                .findings
                .iter()
                .filter(|f| f.resource_index == r && f.rule == rule)
                .map(|f| Seen { path: f.path.clone(), message: f.message.clone(), exempted: !f.is_active() })
                .collect(),
        )
    };

    let mut checks = Vec::new();
    let mut named = BTreeSet::new();
    for (e, found) in suite.expectations.iter().zip(&targets) {
        for &r in found {
            named.insert((r, e.rule.as_str()));
            let checked = &report.resources[r];
            checks.push(Check {
                line: e.line,
                resource: checked.resource.clone(),
                source: checked.source.clone(),
                rule: e.rule.clone(),
                expected: Some(e.expected.clone()),
                actual: actual(r, &e.rule),
            });
        }
    }
    checks.sort_by_key(|c| c.line);
    let mut notes = Vec::new();
    // A policy that fails on a tested object is a difference, named or not;
    // on an inventory object, a note.
    for error in &report.errors {
        let Some(rule) = &error.rule else { continue };
        let r = (0..report.resources.len()).find(|&r| {
            error.resource.as_ref() == Some(&report.resources[r].resource) && error.source == report.resources[r].source
        });
        match r {
            Some(r) if r < tested => {
                if !named.contains(&(r, rule.as_str())) {
                    checks.push(Check {
                        line: report.resources[r].source.line,
                        resource: report.resources[r].resource.clone(),
                        source: report.resources[r].source.clone(),
                        rule: rule.clone(),
                        expected: None,
                        actual: Actual::Error(error.message.clone()),
                    });
                }
            }
            _ => notes.push(format!(
                "{rule} failed on the inventory object {}: {}",
                error.resource.as_ref().map_or_else(|| error.source.file.clone(), ResourceRef::label),
                error.message
            )),
        }
    }
    for status in &report.exceptions {
        if status.status != "active" || status.matched == 0 {
            let what = if status.status == "expired" { "has expired" } else { "matched no violation" };
            notes.push(format!("config exceptions[{}] ({}) {what}", status.index, status.rules.join(", ")));
        }
    }
    let unasserted = report
        .findings
        .iter()
        .filter(|f| f.resource_index < tested && !named.contains(&(f.resource_index, f.rule.as_str())))
        .count();
    Ok(Outcome {
        file: suite.file.clone(),
        document: suite.document,
        line: suite.line,
        name: suite.name.clone(),
        profile: selection.profile,
        checks,
        unasserted,
        notes,
    })
}

/// A file that holds suites: its name and text.
#[derive(Debug, Clone)]
pub struct SuiteFile {
    pub name: String,
    pub text: String,
}

/// The suite files under some paths.
#[derive(Debug, Default)]
pub struct Found {
    pub files: Vec<SuiteFile>,
    pub errors: Vec<SuiteError>,
    /// YAML files of the directories that are not suites (the manifests they read).
    pub skipped: usize,
}

/// Whether a YAML text declares a suite: a line `apiVersion: palisade.dev/…`
/// at the left margin. Seen in the text, so that a suite whose YAML is broken
/// is still found, and reported.
fn declares_suite(text: &str) -> bool {
    let group = API_VERSION.split('/').next().unwrap_or(API_VERSION);
    text.lines().any(|line| {
        line.strip_prefix("apiVersion:")
            .map(|v| v.trim().trim_matches(['"', '\'']))
            .is_some_and(|v| v.split('/').next() == Some(group))
    })
}

/// The suite files `paths` name: a file is a suite; a directory's suites are
/// its `.yaml` and `.yml` files (recursively, hidden directories left out)
/// that declare `apiVersion: palisade.dev/…`.
pub fn discover(paths: &[PathBuf]) -> Found {
    let mut found = Found::default();
    for path in paths {
        let name = path.display().to_string();
        match std::fs::metadata(path) {
            Err(e) => found.errors.push(SuiteError { file: name, line: 0, message: format!("cannot read: {e}") }),
            Ok(m) if m.is_dir() => {
                let mut files = Vec::new();
                walk(path, &mut files, &mut found.errors);
                files.sort();
                let before = found.files.len();
                for file in files {
                    let name = file.display().to_string();
                    match std::fs::read_to_string(&file) {
                        Ok(text) if declares_suite(&text) => found.files.push(SuiteFile { name, text }),
                        Ok(_) => found.skipped += 1,
                        Err(e) => {
                            found.errors.push(SuiteError { file: name, line: 0, message: format!("cannot read: {e}") })
                        }
                    }
                }
                if found.files.len() == before {
                    found.errors.push(SuiteError {
                        file: name,
                        line: 0,
                        message: format!(
                            "no test suite in this directory (a suite is a YAML file with `apiVersion: {API_VERSION}`)"
                        ),
                    });
                }
            }
            Ok(_) => match std::fs::read_to_string(path) {
                Ok(text) => found.files.push(SuiteFile { name, text }),
                Err(e) => found.errors.push(SuiteError { file: name, line: 0, message: format!("cannot read: {e}") }),
            },
        }
    }
    found
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>, errors: &mut Vec<SuiteError>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            errors.push(SuiteError { file: dir.display().to_string(), line: 0, message: format!("cannot list: {e}") });
            return;
        }
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let hidden = entry.file_name().to_string_lossy().starts_with('.');
        match entry.file_type() {
            Ok(t) if t.is_dir() && !hidden => walk(&path, files, errors),
            Ok(t) if t.is_file() && matches!(path.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")) => {
                files.push(path)
            }
            _ => {}
        }
    }
}

/// A run of `palisade test`: the suites that ran, and the ones that could not.
#[derive(Debug, Default)]
pub struct TestRun {
    pub outcomes: Vec<Outcome>,
    /// Errors of broken suites (and of paths without suites).
    pub broken: Vec<SuiteError>,
    /// Files of the directories that are not suites.
    pub skipped_files: usize,
}

impl TestRun {
    /// 2 if a suite is broken, 1 if an expectation disagrees, 0 otherwise.
    pub fn exit_code(&self) -> u8 {
        if !self.broken.is_empty() {
            2
        } else if self.outcomes.iter().any(|o| o.differences() > 0) {
            1
        } else {
            0
        }
    }

    pub fn checks(&self) -> usize {
        self.outcomes.iter().map(|o| o.checks.len()).sum()
    }

    pub fn differences(&self) -> usize {
        self.outcomes.iter().map(Outcome::differences).sum()
    }

    /// Files whose suites could not run.
    pub fn broken_files(&self) -> BTreeSet<&str> {
        self.broken.iter().map(|e| e.file.as_str()).collect()
    }
}

/// Find, read and run every suite under `paths`.
pub fn run_paths(catalog: &Catalog, paths: &[PathBuf], threads: usize) -> TestRun {
    let found = discover(paths);
    let mut run_all = TestRun { broken: found.errors, skipped_files: found.skipped, ..TestRun::default() };
    for file in &found.files {
        match parse(&file.name, &file.text) {
            Err(errors) => run_all.broken.extend(errors),
            Ok(suites) => {
                for suite in &suites {
                    match run(catalog, suite, threads) {
                        Ok(outcome) => run_all.outcomes.push(outcome),
                        Err(errors) => run_all.broken.extend(errors),
                    }
                }
            }
        }
    }
    run_all
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = "apiVersion: palisade.dev/v1alpha1\nkind: Test\n";

    fn errors(text: &str) -> Vec<String> {
        match parse("s.yaml", text) {
            Ok(_) => Vec::new(),
            Err(errors) => errors.iter().map(ToString::to_string).collect(),
        }
    }

    fn suite(text: &str) -> Suite {
        let mut suites = parse("dir/s.yaml", text).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(suites.len(), 1);
        suites.remove(0)
    }

    #[test]
    fn a_suite_with_every_form() {
        let s = suite(&format!(
            "{HEAD}metadata: {{name: pods}}
config:
  profile: baseline
  settings:
    pss-sysctls: {{version: v1.30}}
resources:
  - pods.yaml
  - file: more/
  - object:
      apiVersion: v1
      kind: Pod
      metadata: {{name: inline}}
    expect:
      pss-privileged: pass
      pss-host-ports: {{result: fail, path: /spec/containers/0/ports/0/hostPort, count: 1}}
inventory:
  - object: {{apiVersion: v1, kind: Service, metadata: {{name: s}}}}
results:
  - rule: pss-privileged
    kind: Pod
    resources: [a, ns/b]
    result: fail
    message: privileged
  - rules:
      - rule-x
      - rule-y
    resource: Deployment prod/web
    result: skip
    file: pods.yaml
    document: 2
  - policy: z
    resource: ClusterRole admin
    result: exempted
"
        ));
        assert_eq!(s.name, "pods");
        assert_eq!(s.config.profile.as_deref(), Some("baseline"));
        assert_eq!(s.selection().settings["pss-sysctls"]["version"], "v1.30");
        assert_eq!(
            s.resources.iter().map(|e| (e.line, e.source.clone())).take(2).collect::<Vec<_>>(),
            [
                (9, EntrySource::File { written: "pods.yaml".into(), path: PathBuf::from("dir/pods.yaml") }),
                (10, EntrySource::File { written: "more/".into(), path: PathBuf::from("dir/more/") }),
            ]
        );
        assert!(
            matches!(&s.resources[2].source, EntrySource::Object { pointer, .. } if pointer == "/resources/2/object")
        );
        assert_eq!(s.resources[2].line, 11);
        assert_eq!(s.inventory.len(), 1);
        let summary: Vec<(usize, &str, &Target, String)> =
            s.expectations.iter().map(|e| (e.line, e.rule.as_str(), &e.target, e.expected.to_string())).collect();
        let pod = |ns: Option<&str>, name: &str| {
            Target::Selector(Selector {
                kind: "Pod".into(),
                namespace: ns.map(Into::into),
                name: name.into(),
                file: None,
                document: None,
            })
        };
        let web = Target::Selector(Selector {
            kind: "Deployment".into(),
            namespace: Some("prod".into()),
            name: "web".into(),
            file: Some("pods.yaml".into()),
            document: Some(2),
        });
        let admin = Target::Selector(Selector {
            kind: "ClusterRole".into(),
            namespace: None,
            name: "admin".into(),
            file: None,
            document: None,
        });
        assert_eq!(
            summary,
            [
                (
                    17,
                    "pss-host-ports",
                    &Target::Entry(2),
                    "fail (at /spec/containers/0/ports/0/hostPort, 1 violation)".into()
                ),
                (16, "pss-privileged", &Target::Entry(2), "pass".into()),
                (21, "pss-privileged", &pod(None, "a"), "fail (message \"privileged\")".into()),
                (21, "pss-privileged", &pod(Some("ns"), "b"), "fail (message \"privileged\")".into()),
                (26, "rule-x", &web, "skip".into()),
                (26, "rule-y", &web, "skip".into()),
                (33, "z", &admin, "exempted".into()),
            ]
        );
        assert_eq!(
            (s.expectations[4].rule_line, s.expectations[5].rule_line),
            (27, 28),
            "each rule of `rules` has its own line"
        );
    }

    #[test]
    fn errors_name_the_line() {
        let e = errors(
            "apiVersion: palisade.dev/v1alpha1\nkind: Test\nresources: [a.yaml]\nresults:\n  - rule: r\n    resource: Pod p\n    result: fial\n",
        );
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e[0].starts_with("s.yaml:7: results[0]: result: unknown variant `fial`"), "{e:?}");

        let e = errors(&format!(
            "{HEAD}resources: [a.yaml]\nresults:\n  - rule: r\n    resource: Pod p\n    reslt: fail\n"
        ));
        assert!(e[0].starts_with("s.yaml:7: results[0]: unknown field `reslt`"), "{e:?}");
        assert!(e[0].contains("did you mean `result`?"), "{e:?}");

        let e = errors(&format!(
            "{HEAD}resources: [a.yaml]\nresults:\n  - rule: r\n    resource: Pod p\n    result: fail\n  ready: [\n"
        ));
        assert!(e[0].starts_with("s.yaml:8: invalid YAML"), "{e:?}");

        let e = errors("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n");
        assert_eq!(e.len(), 1);
        assert!(e[0].starts_with("s.yaml:1: not a test suite"), "{e:?}");

        let e = errors(&format!("{HEAD}resources: [a.yaml]\n"));
        assert!(e[0].contains("no expectations"), "{e:?}");

        let e = errors(&format!("{HEAD}resources: []\nresults: []\n"));
        assert!(e[0].starts_with("s.yaml:3: `resources` is empty"), "{e:?}");

        let e = errors(&format!(
            "{HEAD}config:\n  profile: baseline\n  settings:\n    pss-sysctls: 3\nresources: [a.yaml]\nresults: [{{rule: r, resource: Pod p, result: pass}}]\n"
        ));
        assert!(e[0].starts_with("s.yaml:6: config.settings.pss-sysctls must be a mapping"), "{e:?}");

        let e = errors(&format!(
            "{HEAD}config:\n  profil: baseline\nresources: [a.yaml]\nresults: [{{rule: r, resource: Pod p, result: pass}}]\n"
        ));
        assert!(e[0].starts_with("s.yaml:4: config: unknown field `profil`"), "{e:?}");
        assert!(e[0].contains("did you mean `profile`?"), "{e:?}");

        let e = errors(&format!(
            "{HEAD}config:\n  imageVerification: {{}}\nresources: [a.yaml]\nresults: [{{rule: r, resource: Pod p, result: pass}}]\n"
        ));
        assert!(e[0].starts_with("s.yaml:4: config.imageVerification is not taken"), "{e:?}");
    }

    #[test]
    fn results_are_checked_for_sense() {
        let case = |result: &str| errors(&format!("{HEAD}resources: [a.yaml]\nresults:\n  - {result}\n"));
        let first = |result: &str| case(result).first().cloned().unwrap_or_default();
        assert!(first("{rule: r, resource: Pod p, result: skip, path: /x}").contains("`skip` takes no"));
        assert!(first("{rule: r, resource: Pod p, result: pass, count: 2}").contains("`pass` takes no `count`"));
        assert!(first("{rule: r, resource: Pod p, result: fail, count: 0}").contains("write `result: pass`"));
        assert!(first("{rule: r, resource: Pod p, result: fail, path: spec}").contains("JSON pointer"));
        assert!(first("{resource: Pod p, result: fail}").contains("which rule?"));
        assert!(first("{rule: r, rules: [s], resource: Pod p, result: fail}").contains("not both"));
        assert!(first("{rule: r, result: fail}").contains("which object?"));
        assert!(first("{rule: r, resource: Pod, result: fail}").contains("KIND [NAMESPACE/]NAME"));
        assert!(first("{rule: r, resource: Pod a/b/c, result: fail}").contains("not NAME or NAMESPACE/NAME"));
        assert!(first("{rule: r, kind: Pod, result: fail}").contains("`kind` needs `resources"));
        assert!(first("{rule: r, resources: [p], result: fail}").contains("needs the `kind`"));
        assert!(first("{rule: r, resource: Pod p, result: fail, file: b.yaml}").contains("not a file of `resources`"));
        assert!(first("{rule: r, resource: Pod p, result: fail, document: 0}").contains("counts from 1"));
        assert_eq!(case("{rule: r, resource: Pod p, result: fail, file: a.yaml, document: 1}"), Vec::<String>::new());
        let e = errors(&format!("{HEAD}resources: [a.yaml]\ninventory:\n  - {{file: b.yaml, expect: {{r: pass}}}}\n"));
        assert!(e[0].starts_with("s.yaml:5: inventory objects are read by the rules, not tested"), "{e:?}");
        let e = errors(&format!("{HEAD}resources:\n  - {{file: a.yaml, object: {{}}}}\nresults: []\n"));
        assert!(e[0].contains("give either `file: PATH` or `object"), "{e:?}");
        let e = errors(&format!("{HEAD}resources:\n  - object: [1]\n    expect: {{r: pass}}\n"));
        assert!(e[0].starts_with("s.yaml:4: `object` must be a Kubernetes object"), "{e:?}");
    }

    #[test]
    fn several_suites_in_a_file_are_named_by_document() {
        let one = format!("{HEAD}resources: [a.yaml]\nresults: [{{rule: r, resource: Pod p, result: pass}}]\n");
        let suites = parse("dir/two.yaml", &format!("{one}---\n{one}")).unwrap();
        let names: Vec<(&str, usize, usize)> = suites.iter().map(|s| (s.name.as_str(), s.document, s.line)).collect();
        assert_eq!(names, [("two#1", 1, 1), ("two#2", 2, 6)]);
        assert_eq!(suites[1].expectations[0].line, 9);
    }

    fn seen(path: &str, message: &str, exempted: bool) -> Seen {
        Seen { path: path.into(), message: message.into(), exempted }
    }

    fn expect(verdict: Verdict, path: Option<&str>, message: Option<&str>, count: Option<usize>) -> Expected {
        Expected { verdict, path: path.map(Into::into), message: message.map(Into::into), count }
    }

    #[test]
    fn verdicts_from_the_violations_the_filters_select() {
        use Verdict::*;
        let two = Actual::Evaluated(vec![seen("/a", "first problem", false), seen("/b", "second problem", true)]);
        let none = Actual::Evaluated(Vec::new());
        let agree = |e: Expected, a: &Actual| e.agrees(a);
        assert!(agree(expect(Fail, None, None, None), &two));
        assert!(agree(expect(Fail, None, None, Some(1)), &two), "only the counting violation is counted");
        assert!(!agree(expect(Fail, None, None, Some(2)), &two));
        assert!(agree(expect(Fail, Some("/a"), None, None), &two));
        assert!(!agree(expect(Fail, Some("/b"), None, None), &two), "/b is exempted");
        assert!(agree(expect(Exempted, Some("/b"), None, Some(1)), &two));
        assert!(agree(expect(Exempted, None, Some("second"), None), &two));
        assert!(agree(expect(Pass, Some("/c"), None, None), &two), "nothing about /c");
        assert!(!agree(expect(Pass, None, None, None), &two));
        assert!(!agree(expect(Skip, None, None, None), &two));
        assert!(agree(expect(Fail, None, Some("problem"), None), &two));
        assert!(!agree(expect(Fail, Some("/a"), Some("second"), None), &two), "both filters on one violation");
        assert!(agree(expect(Pass, None, None, None), &none));
        assert!(!agree(expect(Fail, None, None, None), &none));
        assert!(agree(expect(Skip, None, None, None), &Actual::Skip("not in the profile".into())));
        assert!(!agree(expect(Pass, None, None, None), &Actual::Skip("x".into())));
        for v in [Fail, Pass, Skip, Exempted] {
            assert!(!agree(expect(v, None, None, None), &Actual::Error("trap".into())), "an error never agrees");
        }
    }

    #[test]
    fn directories_hold_suites_beside_manifests() {
        let dir = std::env::temp_dir().join(format!("palisade-suite-discover-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::create_dir_all(dir.join(".hidden")).unwrap();
        std::fs::write(dir.join("a.yaml"), format!("# a suite\n{HEAD}")).unwrap();
        std::fs::write(dir.join("sub/b.yml"), "apiVersion: \"palisade.dev/v1alpha1\"\n  broken: [\n").unwrap();
        std::fs::write(dir.join("pod.yaml"), "apiVersion: v1\nkind: Pod\n").unwrap();
        std::fs::write(dir.join(".hidden/c.yaml"), HEAD).unwrap();
        std::fs::write(dir.join("notes.txt"), HEAD).unwrap();
        let found = discover(std::slice::from_ref(&dir));
        let names: Vec<String> =
            found.files.iter().map(|f| f.name.trim_start_matches(&dir.display().to_string()).to_string()).collect();
        assert_eq!(names, ["/a.yaml", "/sub/b.yml"]);
        assert_eq!(found.skipped, 1);
        assert!(found.errors.is_empty());
        let empty = dir.join("sub").join("none");
        std::fs::create_dir_all(&empty).unwrap();
        let found = discover(&[empty, dir.join("missing.yaml")]);
        assert_eq!(found.errors.len(), 2);
        assert!(found.errors[0].message.contains("no test suite in this directory"));
        assert!(found.errors[1].message.contains("cannot read"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
