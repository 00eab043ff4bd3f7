//! Differential test against kubectl: every object kubectl reads from a
//! manifest is either evaluated by `palisade check` or refused by it with an
//! input error (exit 2), never silently dropped.
//!
//! The reference reader is `kubectl kustomize DIR`, run offline on a directory
//! holding the input and a `kustomization.yaml` that lists it under
//! `resources:`: kubectl's own YAML stack (kustomize's reader on go-yaml)
//! reads the file and prints the objects it sees. That output is canonical
//! YAML, read here with yaml-rust2, so the test does not share palisade's
//! reading of the input.
//!
//! Inputs: the real-world corpus, hand-made hostile files (each a privileged
//! Pod written the way a naive reader gets wrong), and the fuzz seeds under
//! `fuzz/corpus/documents/` when they exist.

mod common;

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;
use yaml_rust2::{Yaml, YamlLoader};

const THREADS: usize = 4;

/// An object as kubectl sees it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Id {
    kind: String,
    name: String,
    namespace: Option<String>,
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{:?} {ns}/{:?}", self.kind, self.name),
            None => write!(f, "{:?} {:?}", self.kind, self.name),
        }
    }
}

/// What kubectl saw in one object: its identity and whether its first
/// container is privileged (for the hostile cases, which are all privileged Pods).
#[derive(Debug, Clone)]
struct Seen {
    id: Id,
    privileged: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// Read, and at least one rule evaluated it.
    Evaluated,
    /// Read, of a kind no built-in rule applies to.
    ReadNoRule,
    /// Palisade exited 2 with an input error naming the file, a document and a line.
    Refused,
    /// Palisade exited 2 with an input error naming the file, but only as a
    /// whole (document 0 or line 0): not enough to find what was refused.
    RefusedWithoutPosition,
    /// Neither: kubectl would apply it and palisade said nothing.
    SilentLoss,
}

/// One input run through both readers.
struct Outcome {
    file: String,
    /// kubectl's objects, or why it refused the file.
    kubectl: Result<Vec<Seen>, String>,
    /// Palisade's exit code and report; `Err` when it crashed or printed no report.
    palisade: Result<(i32, Value), String>,
    verdicts: Vec<(Id, Verdict)>,
    /// Evaluated privileged Pods for which palisade reported no `pss-privileged`
    /// finding: read, but not as kubectl reads them (hostile cases only).
    misread: Vec<Id>,
}

fn scalar(y: &Yaml) -> Option<String> {
    match y {
        Yaml::String(s) | Yaml::Real(s) => Some(s.clone()),
        Yaml::Integer(i) => Some(i.to_string()),
        Yaml::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

/// `kubectl kustomize` on a directory holding `input` and a kustomization
/// listing it: the objects it prints, or its error.
fn kubectl_sees(input: &Path) -> Result<Vec<Seen>, String> {
    let dir = tempfile::tempdir().expect("temp dir");
    let ext = input.extension().and_then(|e| e.to_str()).filter(|e| !e.is_empty()).unwrap_or("yaml");
    let resource = format!("resource.{ext}");
    std::fs::copy(input, dir.path().join(&resource)).expect("copy input");
    std::fs::write(dir.path().join("kustomization.yaml"), format!("resources:\n- {resource}\n"))
        .expect("write kustomization");
    let out = Command::new("kubectl")
        .arg("kustomize")
        .arg(dir.path())
        .env("KUBECONFIG", "/dev/null")
        .output()
        .expect("run kubectl");
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        // `E1129 12:00:00.000000  123 run.go:72] "command failed" err="…"`: keep the message
        // (`err=<` when it continues on the next lines).
        let mut lines = err.lines().map(str::trim).filter(|l| !l.is_empty());
        let first = lines.next().unwrap_or("");
        let mut msg = first.split_once("err=").map_or(first, |(_, m)| m);
        if msg == "<" {
            msg = lines.next().unwrap_or(msg);
        }
        return Err(format!("exit {:?}: {msg}", out.status.code()));
    }
    let text = String::from_utf8(out.stdout).expect("kubectl prints UTF-8");
    let docs =
        YamlLoader::load_from_str(&text).unwrap_or_else(|e| panic!("kubectl's output is not YAML ({e}):\n{text}"));
    let mut seen = Vec::new();
    for doc in docs {
        if matches!(doc, Yaml::Null | Yaml::BadValue) {
            continue;
        }
        let meta = &doc["metadata"];
        let id = Id {
            kind: scalar(&doc["kind"]).unwrap_or_default(),
            name: scalar(&meta["name"]).or_else(|| scalar(&meta["generateName"])).unwrap_or_default(),
            namespace: scalar(&meta["namespace"]).filter(|n| !n.is_empty()),
        };
        let privileged = doc["spec"]["containers"][0]["securityContext"]["privileged"].as_bool() == Some(true);
        seen.push(Seen { id, privileged });
    }
    Ok(seen)
}

/// `palisade check --format json FILE`: exit code and report, or how it crashed.
fn palisade_check(input: &Path) -> Result<(i32, Value), String> {
    let out = run_within(palisade().args(["check", "--format", "json"]).arg(input), Duration::from_secs(120));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let Some(code) = out.status.code() else {
        return Err(format!("killed by a signal ({:?}); stderr: {stderr}", out.status));
    };
    if code > 2 || stderr.contains("panicked") {
        return Err(format!("exit {code}; stderr: {stderr}"));
    }
    serde_json::from_slice(&out.stdout)
        .map(|report| (code, report))
        .map_err(|e| format!("exit {code} without a JSON report ({e}); stderr: {stderr}"))
}

fn str_of<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// Kinds at least one built-in rule applies to (`"*"` included if a rule takes every kind).
fn rule_kinds() -> BTreeSet<String> {
    let (code, list) = json_report(palisade().args(["policies", "--format", "json"]));
    assert_eq!(code, 0, "palisade policies: {list}");
    let ids: Vec<String> = list.as_array().unwrap().iter().map(|p| p["id"].as_str().unwrap().to_string()).collect();
    assert!(ids.iter().any(|i| i == "pss-privileged"), "{ids:?}");
    let kinds = parallel(&ids, |id| {
        let (code, meta) = json_report(palisade().args(["explain", "--format", "json", id]));
        assert_eq!(code, 0, "palisade explain {id}: {meta}");
        meta["appliesTo"]
            .as_array()
            .unwrap_or_else(|| panic!("no appliesTo for {id}: {meta}"))
            .iter()
            .map(|k| k.as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    });
    let kinds: BTreeSet<String> = kinds.into_iter().flatten().collect();
    assert!(kinds.contains("Pod"), "{kinds:?}");
    kinds
}

/// Map `f` over `items` on [`THREADS`] threads, keeping the order.
fn parallel<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let next = AtomicUsize::new(0);
    let mut out: Vec<(usize, R)> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..THREADS)
            .map(|_| {
                s.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(item) = items.get(i) else { break };
                        done.push((i, f(item)));
                    }
                    done
                })
            })
            .collect();
        workers.into_iter().flat_map(|w| w.join().expect("worker panicked")).collect()
    });
    out.sort_by_key(|(i, _)| *i);
    out.into_iter().map(|(_, r)| r).collect()
}

/// Run one input through kubectl and palisade and classify what kubectl saw.
fn compare(path: &Path, rule_kinds: &BTreeSet<String>, check_privileged: bool) -> Outcome {
    let file = path.to_string_lossy().into_owned();
    let kubectl = kubectl_sees(path);
    let palisade = palisade_check(path);
    let mut verdicts = Vec::new();
    let mut misread = Vec::new();
    if let (Ok(seen), Ok((code, report))) = (&kubectl, &palisade) {
        let resources: Vec<&Value> = report["resources"]
            .as_array()
            .expect("resources[]")
            .iter()
            .filter(|r| str_of(&r["source"], "file") == Some(file.as_str()))
            .collect();
        let input_errors: Vec<&Value> = report["errors"]
            .as_array()
            .expect("errors[]")
            .iter()
            .filter(|e| str_of(e, "kind") == Some("input") && str_of(&e["source"], "file") == Some(file.as_str()))
            .collect();
        let refused = *code == 2
            && input_errors.iter().any(|e| {
                e["source"]["document"].as_u64().is_some_and(|d| d > 0)
                    && e["source"]["line"].as_u64().is_some_and(|l| l > 0)
            });
        let refused_whole = *code == 2 && !input_errors.is_empty();
        for obj in seen {
            let id = &obj.id;
            let same: Vec<&&Value> = resources
                .iter()
                .filter(|r| {
                    str_of(r, "kind") == Some(id.kind.as_str())
                        && str_of(r, "name") == Some(id.name.as_str())
                        && str_of(r, "namespace") == id.namespace.as_deref()
                })
                .collect();
            let has_rules = same.iter().any(|r| r["rules"].as_array().is_some_and(|a| !a.is_empty()));
            let no_rule_kind = !rule_kinds.contains(&id.kind) && !rule_kinds.contains("*");
            let verdict = if has_rules {
                Verdict::Evaluated
            } else if !same.is_empty() && no_rule_kind {
                Verdict::ReadNoRule
            } else if refused {
                Verdict::Refused
            } else if refused_whole {
                Verdict::RefusedWithoutPosition
            } else {
                Verdict::SilentLoss
            };
            if check_privileged && verdict == Verdict::Evaluated && obj.privileged {
                let flagged = report["findings"].as_array().expect("findings[]").iter().any(|f| {
                    str_of(f, "rule") == Some("pss-privileged")
                        && str_of(&f["resource"], "kind") == Some(id.kind.as_str())
                        && str_of(&f["resource"], "name") == Some(id.name.as_str())
                });
                if !flagged {
                    misread.push(id.clone());
                }
            }
            verdicts.push((id.clone(), verdict));
        }
    }
    Outcome { file, kubectl, palisade, verdicts, misread }
}

/// What palisade did with a file, in one line.
fn palisade_summary(o: &Outcome) -> String {
    match &o.palisade {
        Err(e) => format!("CRASH: {e}"),
        Ok((code, report)) => {
            let resources: Vec<String> = report["resources"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| {
                    let rules = r["rules"].as_array().map_or(0, Vec::len);
                    let privileged = report["findings"].as_array().unwrap().iter().any(|f| {
                        f["rule"] == "pss-privileged"
                            && f["resource"]["kind"] == r["kind"]
                            && f["resource"]["name"] == r["name"]
                    });
                    format!(
                        "{:?} {:?} (doc {} line {}, {rules} rules{})",
                        str_of(r, "kind").unwrap_or(""),
                        str_of(r, "name").unwrap_or(""),
                        r["source"]["document"],
                        r["source"]["line"],
                        if privileged { ", pss-privileged" } else { "" }
                    )
                })
                .collect();
            let errors: Vec<String> = report["errors"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| {
                    format!(
                        "{} error doc {} line {}: {}",
                        str_of(e, "kind").unwrap_or("?"),
                        e["source"]["document"],
                        e["source"]["line"],
                        str_of(e, "message").unwrap_or("")
                    )
                })
                .collect();
            format!("exit {code}; read [{}]; errors [{}]", resources.join(", "), errors.join("; "))
        }
    }
}

fn kubectl_summary(o: &Outcome) -> String {
    match &o.kubectl {
        Err(e) => format!("refused ({e})"),
        Ok(seen) => {
            let ids: Vec<String> =
                seen.iter().map(|s| format!("{}{}", s.id, if s.privileged { " privileged" } else { "" })).collect();
            format!("[{}]", ids.join(", "))
        }
    }
}

fn manifest_files(dir: &Path, all_files: bool, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().flatten().map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            manifest_files(&p, all_files, out);
        } else if all_files || p.extension().is_some_and(|e| e == "yaml" || e == "yml" || e == "json") {
            out.push(p);
        }
    }
}

const POD: &str = "apiVersion: v1
kind: Pod
metadata:
  name: p
spec:
  containers:
  - name: c
    image: nginx
    securityContext:
      privileged: true
";

/// The privileged Pod, named `name`.
fn pod(name: &str) -> String {
    POD.replace("  name: p\n", &format!("  name: {name}\n"))
}

/// Every line break of `text` replaced by `brk`.
fn breaks(text: &str, brk: &str) -> String {
    text.replace('\n', brk)
}

fn utf16le_with_bom(text: &str) -> Vec<u8> {
    let mut out = vec![0xFF, 0xFE];
    for u in text.encode_utf16() {
        out.extend_from_slice(&u.to_le_bytes());
    }
    out
}

/// What kubectl (v1.32) is expected to make of a hostile case: checked so
/// that a case that no longer reaches kubectl's objects is noticed.
enum Expect {
    /// Exactly these Pods, privileged.
    Pods(&'static [&'static str]),
    /// Whatever kubectl does is recorded, not required.
    Record,
}

struct Case {
    name: &'static str,
    ext: &'static str,
    bytes: Vec<u8>,
    expect: Expect,
}

fn case(name: &'static str, ext: &'static str, text: impl Into<Vec<u8>>, expect: Expect) -> Case {
    Case { name, ext, bytes: text.into(), expect }
}

fn hostile_cases() -> Vec<Case> {
    use Expect::*;
    let list_of = |inner: &str| format!("apiVersion: v1\nkind: List\nitems:\n{}", indent_item(inner));
    vec![
        // Unicode line breaks: go-yaml breaks lines at LS, PS and NEL.
        case("u2028-after-kind", "yaml", POD.replacen("kind: Pod\n", "kind: Pod\u{2028}", 1), Pods(&["p"])),
        case("u2029-after-kind", "yaml", POD.replacen("kind: Pod\n", "kind: Pod\u{2029}", 1), Pods(&["p"])),
        case("nel-after-kind", "yaml", POD.replacen("kind: Pod\n", "kind: Pod\u{85}", 1), Pods(&["p"])),
        case("u2028-everywhere", "yaml", breaks(POD, "\u{2028}"), Pods(&["p"])),
        case("nel-everywhere", "yaml", breaks(POD, "\u{85}"), Pods(&["p"])),
        // kustomize cuts documents at "\n---\n" only, so it reads the first document alone.
        case("nel-multi-document", "yaml", breaks(&format!("{}---\n{}", pod("p"), pod("q")), "\u{85}"), Pods(&["p"])),
        // A break inside a comment ends the comment: the field after it is real.
        case(
            "u2028-ends-comment",
            "yaml",
            POD.replace("      privileged: true\n", "      # hardened\u{2028}      privileged: true\n"),
            Pods(&["p"]),
        ),
        case(
            "nel-ends-comment",
            "yaml",
            POD.replace("      privileged: true\n", "      # hardened\u{85}      privileged: true\n"),
            Pods(&["p"]),
        ),
        case(
            "cr-ends-comment",
            "yaml",
            POD.replace("      privileged: true\n", "      # hardened\r      privileged: true\n"),
            Pods(&["p"]),
        ),
        // Inside a quoted value LS is kept as a character (a break folded to itself).
        case(
            "u2028-in-quoted-value",
            "yaml",
            POD.replace("  name: p\n", "  name: p\n  annotations:\n    note: \"a\u{2028}b\"\n"),
            Pods(&["p"]),
        ),
        // Lists: kubectl expands nested Lists and any `*List` with items.
        case("nested-list", "yaml", list_of(&list_of(POD)), Pods(&["p"])),
        case("pod-list", "yaml", list_of(POD).replace("kind: List\n", "kind: PodList\n"), Pods(&["p"])),
        // Line endings.
        case("cr-only-comment-first", "yaml", breaks(&format!("# comment\n{POD}"), "\r"), Pods(&["p"])),
        case("cr-only-yaml-1.1-directive", "yaml", breaks(&format!("%YAML 1.1\n---\n{POD}"), "\r"), Pods(&["p"])),
        case("cr-only-yaml-1.2-directive", "yaml", breaks(&format!("%YAML 1.2\n---\n{POD}"), "\r"), Record),
        case("lf-yaml-1.1-directive", "yaml", format!("%YAML 1.1\n---\n{POD}"), Record),
        case("cr-only-plain", "yaml", breaks(POD, "\r"), Pods(&["p"])),
        // As with NEL: one chunk to kustomize, of which it reads the first document.
        case("cr-only-multi-document", "yaml", breaks(&format!("{}---\n{}", pod("p"), pod("q")), "\r"), Pods(&["p"])),
        case("crlf", "yaml", breaks(POD, "\r\n"), Pods(&["p"])),
        case(
            "crlf-multi-document",
            "yaml",
            breaks(&format!("{}---\n{}", pod("p"), pod("q")), "\r\n"),
            Pods(&["p", "q"]),
        ),
        // Malformed identity: kustomize keeps them as they are (the API server would not).
        case("kind-trailing-space", "yaml", POD.replace("kind: Pod\n", "kind: \"Pod \"\n"), Record),
        case("kind-inner-space", "yaml", POD.replace("kind: Pod\n", "kind: 'Po d'\n"), Record),
        case("apiversion-trailing-space", "yaml", POD.replace("apiVersion: v1\n", "apiVersion: \"v1 \"\n"), Record),
        // Tabs, BOM, document end markers, JSON, comments on separators, UTF-16.
        case(
            "tabs",
            "yaml",
            "apiVersion: v1\nkind:\tPod\nmetadata:\n  name:\tp\nspec:\n  containers:\n  - name: c\n    image:\tnginx\n    securityContext: {\tprivileged: true }\n",
            Pods(&["p"]),
        ),
        case("bom", "yaml", format!("\u{FEFF}{POD}"), Pods(&["p"])),
        case("document-end-markers", "yaml", format!("{}...\n---\n{}...\n", pod("p"), pod("q")), Pods(&["p", "q"])),
        case(
            "json",
            "json",
            r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"c","image":"nginx","securityContext":{"privileged":true}}]}}"#,
            Pods(&["p"]),
        ),
        case(
            "comment-separators",
            "yaml",
            format!("--- # first\n{}--- # second\n{}---\t# third\n{}", pod("p"), pod("q"), pod("r")),
            Pods(&["p", "q", "r"]),
        ),
        case("utf-16le-bom", "yaml", utf16le_with_bom(POD), Pods(&["p"])),
    ]
}

/// `text` as the first item of a list at indentation 0: `- ` then two spaces.
fn indent_item(text: &str) -> String {
    let mut out = String::new();
    for (i, line) in text.lines().enumerate() {
        out.push_str(if i == 0 { "- " } else { "  " });
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// Fail the test, saying how to get it, unless `kubectl` runs.
fn require_kubectl() {
    let runs = Command::new("kubectl").args(["version", "--client"]).output().is_ok_and(|o| o.status.success());
    assert!(runs, "kubectl is not on PATH (or does not run): apt-get install kubernetes-client");
}

#[derive(Default)]
struct Tally {
    inputs: usize,
    objects: usize,
    evaluated: usize,
    read_no_rule: usize,
    refused: usize,
    kubectl_refused: usize,
    losses: Vec<String>,
    misread: Vec<String>,
    crashes: Vec<String>,
}

impl Tally {
    fn add(&mut self, label: &str, o: &Outcome) {
        self.inputs += 1;
        if let Err(e) = &o.palisade {
            self.crashes.push(format!("{label}: {e}"));
        }
        if o.kubectl.is_err() {
            self.kubectl_refused += 1;
        }
        for (id, verdict) in &o.verdicts {
            self.objects += 1;
            match verdict {
                Verdict::Evaluated => self.evaluated += 1,
                Verdict::ReadNoRule => self.read_no_rule += 1,
                Verdict::Refused => self.refused += 1,
                Verdict::SilentLoss => self.losses.push(format!("{label}: {id} (palisade: {})", palisade_summary(o))),
                Verdict::RefusedWithoutPosition => self.losses.push(format!(
                    "{label}: {id} refused only as a whole file, without a document and line (palisade: {})",
                    palisade_summary(o)
                )),
            }
        }
        for id in &o.misread {
            self.misread.push(format!(
                "{label}: {id} is privileged to kubectl, palisade evaluated it without a pss-privileged finding ({})",
                palisade_summary(o)
            ));
        }
    }
}

#[test]
#[cfg_attr(palisade_missing_kubectl, ignore = "kubectl is not on PATH: apt-get install kubernetes-client")]
fn nothing_kubectl_reads_slips_past_check() {
    require_kubectl();
    let start = Instant::now();
    let kinds = rule_kinds();
    let mut tally = Tally::default();
    let mut construction = Vec::new();

    // 1. The real-world corpus.
    let mut corpus_files = Vec::new();
    manifest_files(&corpus().join("real-world"), false, &mut corpus_files);
    assert!(corpus_files.len() > 300, "the corpus has {} manifest files", corpus_files.len());
    let outcomes = parallel(&corpus_files, |p| compare(p, &kinds, false));
    let before = tally.objects;
    for o in &outcomes {
        tally.add(&o.file, o);
        if let Err(e) = &o.kubectl {
            println!("real-world: kubectl refused {}: {e}", o.file);
        }
    }
    println!(
        "real-world: {} files, {} objects seen by kubectl ({:.1} s)",
        outcomes.len(),
        tally.objects - before,
        start.elapsed().as_secs_f64()
    );

    // 2. Hostile inputs, each a privileged Pod.
    let dir = tempfile::tempdir().expect("temp dir");
    let cases = hostile_cases();
    let paths: Vec<PathBuf> = cases
        .iter()
        .map(|c| {
            let path = dir.path().join(format!("{}.{}", c.name, c.ext));
            std::fs::write(&path, &c.bytes).expect("write case");
            path
        })
        .collect();
    let outcomes = parallel(&paths, |p| compare(p, &kinds, true));
    for (c, o) in cases.iter().zip(&outcomes) {
        let verdicts: Vec<String> = o.verdicts.iter().map(|(id, v)| format!("{id}: {v:?}")).collect();
        println!("hostile {}:", c.name);
        println!("    kubectl saw {}", kubectl_summary(o));
        println!("    palisade {}", palisade_summary(o));
        println!("    => {}", if verdicts.is_empty() { "nothing to account for".into() } else { verdicts.join(", ") });
        tally.add(&format!("hostile {}", c.name), o);
        if let Expect::Pods(names) = c.expect {
            let ok = o.kubectl.as_ref().is_ok_and(|seen| {
                seen.iter().all(|s| s.id.kind == "Pod" && s.privileged)
                    && seen.iter().map(|s| s.id.name.as_str()).collect::<BTreeSet<_>>()
                        == names.iter().copied().collect::<BTreeSet<_>>()
            });
            if !ok {
                construction.push(format!(
                    "{}: expected kubectl to see privileged Pods {names:?}, it saw {}",
                    c.name,
                    kubectl_summary(o)
                ));
            }
        }
    }

    // 3. The fuzz seeds of the documents target, when present.
    let fuzz = root().join("fuzz").join("corpus").join("documents");
    if fuzz.is_dir() {
        let mut found = Vec::new();
        manifest_files(&fuzz, true, &mut found);
        // A fuzzer may be adding and removing files right now, and a long run
        // leaves thousands: take a snapshot of an even sample (every hostile
        // seed included), PALISADE_DIFF_FUZZ_MAX files at most (default 600).
        let max: usize = std::env::var("PALISADE_DIFF_FUZZ_MAX").ok().and_then(|v| v.parse().ok()).unwrap_or(600);
        let step = found.len().div_ceil(max.max(1)).max(1);
        let snapshot = tempfile::tempdir().expect("temp dir");
        let mut seeds = Vec::new();
        for (i, path) in found.iter().enumerate() {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
            if i % step != 0 && !name.starts_with("hostile-") {
                continue;
            }
            if let Ok(bytes) = std::fs::read(path) {
                let copy = snapshot.path().join(format!("{name}.yaml"));
                std::fs::write(&copy, bytes).expect("write snapshot");
                seeds.push(copy);
            }
        }
        let outcomes = parallel(&seeds, |p| compare(p, &kinds, false));
        let refused = outcomes.iter().filter(|o| o.kubectl.is_err()).count();
        for o in &outcomes {
            tally.add(&o.file, o);
        }
        println!(
            "fuzz corpus: {} of {} files, {refused} refused by kubectl (nothing required of those)",
            outcomes.len(),
            found.len()
        );
    } else {
        println!("fuzz seeds: {} absent, skipped", fuzz.display());
    }

    println!(
        "kubectl-differential: {} inputs, {} objects seen by kubectl: {} evaluated, {} read (no rule applies), \
         {} refused with exit 2, {} silent losses; kubectl refused {} inputs ({:.1} s)",
        tally.inputs,
        tally.objects,
        tally.evaluated,
        tally.read_no_rule,
        tally.refused,
        tally.losses.len(),
        tally.kubectl_refused,
        start.elapsed().as_secs_f64()
    );

    let mut failures = Vec::new();
    if !tally.crashes.is_empty() {
        failures.push(format!("palisade crashed or printed no report:\n  {}", tally.crashes.join("\n  ")));
    }
    if !tally.losses.is_empty() {
        failures.push(format!(
            "SILENT LOSS: objects kubectl reads that palisade neither evaluated nor refused:\n  {}",
            tally.losses.join("\n  ")
        ));
    }
    if !tally.misread.is_empty() {
        failures.push(format!("MISREAD: objects read differently from kubectl:\n  {}", tally.misread.join("\n  ")));
    }
    if !construction.is_empty() {
        failures.push(format!("hostile cases kubectl no longer reads as written:\n  {}", construction.join("\n  ")));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
