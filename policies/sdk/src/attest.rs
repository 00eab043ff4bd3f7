//! What an image's attestations must say: the `attestations` of a trust policy,
//! read and checked against the in-toto statements the host verified.
//!
//! The host verifies the signatures of an image's attestations under the trust
//! policy that governs it and hands over the statements that verified
//! ([`crate::images::attestations`]); it passes each policy's `attestations`
//! array through unread ([`crate::images::attestation_requirements`]). This module
//! gives that array its meaning, so a rule can refuse a bad one at configuration
//! time and check statements at evaluation time. Pure: no host call, no clock
//! (the host's `checked-at` is the only time).
//!
//! # Configuration
//!
//! Each entry names a predicate type and, optionally, what its predicate must
//! say. An entry is met when at least one verified statement of a matching
//! type satisfies every condition of the entry; every entry must be met. Keys
//! are camelCase and unknown keys are errors, as in the rest of the
//! configuration file. Kyverno users will recognise `verifyImages[].attestations`
//! (`predicateType` plus `conditions`), slsa-verifier users its `--builder-id`
//! and `--source-uri`.
//!
//! ```yaml
//! attestations:
//!   - predicateType: slsaprovenance                 # SLSA provenance v0.2 or v1
//!     provenance:                                   # at least one of:
//!       builderId: https://github.com/slsa-framework/slsa-github-generator/.github/workflows/generator_container_slsa3.yml
//!       # builderIdRegExp: ...                      # (or) over the whole builder id, `@ref` included
//!       sourceRepository: github.com/acme/app       # (or sourceRepositoryRegExp: github\.com/acme/.*)
//!       buildType: https://github.com/slsa-framework/slsa-github-generator/container@v1
//!       gitRefRegExp: refs/tags/v.*
//!   - predicateType: cyclonedx                      # any CycloneDX version
//!     sbom:
//!       deniedLicenses: [AGPL-3.0-only, SSPL-1.0]
//!   - predicateType: vuln                           # cosign's vulnerability scan record
//!     vulnerabilities:                              # at least one of maxAge, maxSeverity
//!       maxAge: 168h                                # s, m, h, d; may combine: 1d12h
//!       maxSeverity: high                           # low | medium | high | critical
//!       allow:
//!         - {id: CVE-2023-1234, reason: not reachable, expires: 2027-01-01}
//!   - predicateType: https://example.com/custom/v1
//!     conditions:                                   # for any type, next to the blocks above
//!       - {pointer: /build/tested, equals: true}
//!       - {pointer: /pipeline/name, regExp: "release-.*"}
//!       - {pointer: /approvals, exists: true}
//! ```
//!
//! ## Predicate types
//!
//! `predicateType` is a URI, compared exactly, or one of cosign's `--type`
//! names (`cmd/cosign/cli/options/predicate.go`):
//!
//! | alias | matches |
//! |---|---|
//! | `slsaprovenance` | `https://slsa.dev/provenance/v0.2` and `https://slsa.dev/provenance/v1` (cosign: v0.2 only) |
//! | `slsaprovenance02` | `https://slsa.dev/provenance/v0.2` |
//! | `slsaprovenance1` | `https://slsa.dev/provenance/v1` |
//! | `spdx`, `spdxjson` | `https://spdx.dev/Document` and its versions |
//! | `cyclonedx` | `https://cyclonedx.org/bom` and its versions |
//! | `vuln` | `https://cosign.sigstore.dev/attestation/vuln/v1` |
//! | `custom` | `https://cosign.sigstore.dev/attestation/v1` |
//!
//! The unversioned URIs `https://cyclonedx.org/bom`, `https://spdx.dev/Document`
//! and `https://in-toto.io/attestation/vulns` also match their versions
//! (`.../bom/v1.4`, `.../Document/v2.3`, `.../vulns/v0.2`), as the in-toto
//! predicate specifications version them. cosign's `link` and `openvex` are not
//! aliases here: write their URIs.
//!
//! ## Conditions
//!
//! Every regular expression (`...RegExp`) must match the whole value: it is
//! compiled as `^(?:pattern)$`, as the host compiles a trust policy's
//! `subjectRegExp`, once, when the configuration is read. The syntax is the
//! host's (Rust `regex`) but for Unicode classes (`\p{Greek}`), which components
//! leave out for size: a pattern using one is refused then.
//!
//! - `provenance` (SLSA provenance v0.2 and v1, <https://slsa.dev/provenance/v1>,
//!   <https://slsa.dev/spec/v0.2/provenance>), compared the way slsa-verifier
//!   (`verifiers/internal/gha/provenance.go`) and the host's
//!   `palisade_sigstore::dsse::check_provenance` compare them:
//!   - `builderId`: v0.2 `predicate.builder.id`, v1 `predicate.runDetails.builder.id`.
//!     Without `@` it matches any version of that builder (`...@refs/tags/v2.1.0`),
//!     with `@` it must be equal. `builderIdRegExp` matches the whole id.
//!   - `sourceRepository`: v0.2 `predicate.invocation.configSource.uri`; v1
//!     `buildDefinition.externalParameters.workflow.repository` (GitHub's
//!     generators and artifact attestations), else `buildDefinition.resolvedDependencies[0].uri`.
//!     Both sides are compared without `git+`, the scheme, the `@ref`, a trailing
//!     `/` or `.git`: `github.com/acme/app` matches `git+https://github.com/acme/app@refs/heads/main`.
//!     `sourceRepositoryRegExp` matches that normalised form.
//!   - `buildType`: v0.2 `predicate.buildType`, v1 `buildDefinition.buildType`; equal.
//!   - `gitRefRegExp`: the ref built (`refs/tags/v1.2.0`, `refs/heads/main`): v0.2
//!     `invocation.environment.github_ref` (slsa-github-generator) or `GITHUB_REF`
//!     (npm), else the `@ref` of `configSource.uri`; v1 `externalParameters.workflow.ref`,
//!     else the `@ref` of `resolvedDependencies[0].uri`.
//! - `sbom` (in-toto's CycloneDX and SPDX predicates, whose predicate is the
//!   document): `deniedLicenses` fails a BOM naming any of these SPDX licence ids,
//!   compared case-insensitively: CycloneDX `components[].licenses[]` (`license.id`,
//!   `license.name`, `expression`; nested components and `metadata.component` too),
//!   SPDX 2 `packages[].licenseConcluded` and `licenseDeclared` (an expression: a
//!   denied id fails as one of its terms). A document that is not JSON (SPDX
//!   tag-value, CycloneDX XML, carried as a string) still proves presence but
//!   fails a deny-list, which cannot be checked.
//! - `vulnerabilities`, for cosign's vulnerability scan record
//!   (<https://github.com/sigstore/cosign/blob/main/specs/COSIGN_VULN_ATTESTATION_SPEC.md>)
//!   and in-toto's vulns predicate v0.1 and v0.2
//!   (<https://github.com/in-toto/attestation/blob/main/spec/predicates/vulns_02.md>):
//!   - `maxAge`: `metadata.scanFinishedOn` (RFC 3339) no longer ago than this
//!     before the host's check; more than 5 minutes in the future fails too.
//!   - `maxSeverity`: a finding at or above it fails, unless `allow` lists its id
//!     (with a `reason`; from the day after `expires`, UTC, the entry no longer
//!     allows, as an exception's `expires` works). Findings are read from cosign's
//!     free-form `scanner.result`: Trivy JSON (`Results[].Vulnerabilities[]
//!     .{VulnerabilityID,Severity}`), Grype JSON (`matches[].vulnerability.{id,severity}`)
//!     or `null` (nothing found); from in-toto's `scanner.result[]` as
//!     `{id, severity: [{method, score}]}` (v0.2) or `{vulnerability: {id, severity}}`
//!     (v0.1), taking the highest of the methods' scores. A severity is a name
//!     (unknown < negligible < low < medium (moderate) < high < critical, any
//!     case) or a CVSS score (below 4 low, below 7 medium, below 9 high, else
//!     critical). `unknown` ranks below `low`, so it never fails `maxSeverity`.
//!     A result in any other shape fails: "cannot read the scanner result".
//! - `conditions`, for any type: `pointer` is a JSON pointer (RFC 6901) into the
//!   statement's `predicate`, with one of `equals` (any JSON value), `regExp` (the
//!   value must be a string) or `exists` (`true` or `false`).
//!
//! Sources: the in-toto attestation framework
//! (<https://github.com/in-toto/attestation/tree/main/spec>) for statements and
//! predicate types, the predicates cited above, cosign's attestation
//! specifications, and Kyverno's `verifyImages` attestations
//! (<https://kyverno.io/docs/writing-policies/verify-images/>).

use std::collections::BTreeSet;
use std::fmt;

use regex::Regex;
use serde::Deserialize;
use serde_json::Value;

use crate::images::VerifiedStatement;

const SLSA_V02: &str = "https://slsa.dev/provenance/v0.2";
const SLSA_V1: &str = "https://slsa.dev/provenance/v1";
const CYCLONEDX: &str = "https://cyclonedx.org/bom";
const SPDX: &str = "https://spdx.dev/Document";
const COSIGN_VULN: &str = "https://cosign.sigstore.dev/attestation/vuln/v1";
const COSIGN_CUSTOM: &str = "https://cosign.sigstore.dev/attestation/v1";
const IN_TOTO_VULNS: &str = "https://in-toto.io/attestation/vulns";

/// Predicate types whose unversioned URI also matches its versions.
const FAMILIES: [&str; 3] = [CYCLONEDX, SPDX, IN_TOTO_VULNS];

/// How long in the future a scan may claim to have finished (clock skew).
const FUTURE_SKEW: i64 = 5 * 60;
/// Candidates whose failure a message details; findings and licences it lists.
const MAX_LISTED: usize = 3;

/// A requirement the configuration refuses, with where: `attestations[2].vulnerabilities.maxSeverity`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The key path from `attestations`, e.g. `attestations[1].provenance.builderIdRegExp`.
    pub field: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Why a requirement is not met.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unmet {
    /// No verified statement has a matching predicate type.
    Missing,
    /// Verified statements of the type exist, and none satisfies every condition:
    /// why each failed (at most a few), and how many more failed.
    Failed { reasons: Vec<String>, more: usize },
}

impl fmt::Display for Unmet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unmet::Missing => f.write_str("no verified attestation of this type"),
            Unmet::Failed { reasons, more } if reasons.len() == 1 && *more == 0 => f.write_str(&reasons[0]),
            Unmet::Failed { reasons, more } => {
                write!(f, "none of {} verified attestations satisfies it: ", reasons.len() + more)?;
                for (i, r) in reasons.iter().enumerate() {
                    if i > 0 {
                        f.write_str("; ")?;
                    }
                    write!(f, "[{}] {r}", i + 1)?;
                }
                if *more > 0 {
                    write!(f, "; and {more} more")?;
                }
                Ok(())
            }
        }
    }
}

/// The `attestations` of one trust policy.
#[derive(Debug, Clone, Default)]
pub struct Requirements(pub Vec<Requirement>);

impl Requirements {
    /// Read and check the JSON array a trust policy declares (`[]` when none).
    pub fn parse(json: &str) -> Result<Requirements, ConfigError> {
        let at = |field: String, message: String| ConfigError { field, message };
        let value: Value =
            serde_json::from_str(json).map_err(|e| at("attestations".into(), format!("not valid JSON: {e}")))?;
        let items = match value {
            Value::Null => return Ok(Requirements::default()),
            Value::Array(items) => items,
            other => return Err(at("attestations".into(), format!("must be a list, not {}", kind(&other)))),
        };
        items
            .iter()
            .enumerate()
            .map(|(i, item)| Requirement::from_value(item, &format!("attestations[{i}]")))
            .collect::<Result<Vec<_>, _>>()
            .map(Requirements)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Requirement> {
        self.0.iter()
    }

    /// The predicate types to ask the host for: every type any requirement
    /// matches, or none (meaning every type) when one matches a family of versions.
    pub fn predicate_types(&self) -> Vec<String> {
        let mut all = BTreeSet::new();
        for r in &self.0 {
            let types = r.predicate_types();
            if types.is_empty() {
                return Vec::new();
            }
            all.extend(types);
        }
        all.into_iter().collect()
    }
}

/// One entry of a trust policy's `attestations`.
#[derive(Debug, Clone)]
pub struct Requirement {
    /// `predicateType` as written (a URI or an alias).
    pub predicate_type: String,
    exact: Vec<&'static str>,
    custom: Option<String>,
    family: Option<&'static str>,
    provenance: Option<ProvenanceCheck>,
    sbom: Option<SbomCheck>,
    vulnerabilities: Option<VulnCheck>,
    conditions: Vec<Condition>,
}

impl Requirement {
    /// The predicate types to ask the host for; none (every type) when the
    /// requirement matches a family of versions, which the host cannot filter.
    pub fn predicate_types(&self) -> Vec<String> {
        if self.family.is_some() {
            return Vec::new();
        }
        self.exact.iter().map(|t| t.to_string()).chain(self.custom.clone()).collect()
    }

    /// Whether a statement of this predicate type is a candidate.
    pub fn matches_type(&self, predicate_type: &str) -> bool {
        self.exact.contains(&predicate_type)
            || self.custom.as_deref() == Some(predicate_type)
            || self.family.is_some_and(|f| in_family(f, predicate_type))
    }

    /// The predicate type for a person: the alias with what it stands for.
    pub fn describe(&self) -> String {
        match (&self.family, self.exact.as_slice(), &self.custom) {
            (_, _, Some(uri)) => format!("{uri:?}"),
            (Some(f), _, None) if *f == self.predicate_type => format!("{f:?} (any version)"),
            (Some(f), _, None) => format!("{} ({f}, any version)", self.predicate_type),
            (None, [one], None) if *one == self.predicate_type => format!("{one:?}"),
            (None, types, None) => format!("{} ({})", self.predicate_type, types.join(" or ")),
        }
    }

    /// Met when at least one of `statements` has a matching type and satisfies
    /// every condition; `checked_at` (seconds since the Unix epoch) is when the
    /// host verified them.
    pub fn check(&self, statements: &[VerifiedStatement], checked_at: i64) -> Result<(), Unmet> {
        let mut reasons = Vec::new();
        let mut failed = 0;
        for s in statements.iter().filter(|s| self.matches_type(&s.predicate_type)) {
            let verdict = serde_json::from_str::<Value>(&s.statement)
                .map_err(|e| format!("the statement is not JSON: {e}"))
                .and_then(|statement| {
                    let predicate = statement.get("predicate").unwrap_or(&Value::Null);
                    self.check_predicate(&s.predicate_type, predicate, checked_at)
                });
            match verdict {
                Ok(()) => return Ok(()),
                Err(reason) => {
                    failed += 1;
                    if reasons.len() < MAX_LISTED {
                        reasons.push(reason);
                    }
                }
            }
        }
        if failed == 0 {
            Err(Unmet::Missing)
        } else {
            let more = failed - reasons.len();
            Err(Unmet::Failed { reasons, more })
        }
    }

    /// Every condition on one predicate; the failures joined.
    pub fn check_predicate(&self, predicate_type: &str, predicate: &Value, checked_at: i64) -> Result<(), String> {
        let mut failures = Vec::new();
        if let Some(p) = &self.provenance
            && let Err(e) = p.check(predicate_type, predicate)
        {
            failures.push(e);
        }
        if let Some(s) = &self.sbom
            && let Err(e) = s.check(predicate_type, predicate)
        {
            failures.push(e);
        }
        if let Some(v) = &self.vulnerabilities
            && let Err(e) = v.check(predicate_type, predicate, checked_at)
        {
            failures.push(e);
        }
        failures.extend(self.conditions.iter().filter_map(|c| c.check(predicate).err()));
        if failures.is_empty() { Ok(()) } else { Err(failures.join("; ")) }
    }

    fn from_value(item: &Value, at: &str) -> Result<Requirement, ConfigError> {
        let raw: RawRequirement = from_value_at(item, at)?;
        let err = |field: &str, message: String| ConfigError { field: format!("{at}.{field}"), message };
        let (exact, custom, family) = resolve_type(&raw.predicate_type).map_err(|m| err("predicateType", m))?;
        let kinds: Vec<Kind> = match family {
            Some(f) => vec![kind_of(f)],
            None => exact.iter().map(|t| kind_of(t)).chain(custom.as_deref().map(kind_of)).collect(),
        };
        let only = |block: &str, want: Kind, what: &str| {
            if kinds.iter().all(|k| *k == want) {
                Ok(())
            } else {
                Err(err(block, format!("applies to {what} only, not to predicate type {:?}", raw.predicate_type)))
            }
        };
        let provenance = match raw.provenance {
            None => None,
            Some(p) => {
                only("provenance", Kind::Provenance, "SLSA provenance v0.2 and v1 (slsaprovenance)")?;
                Some(ProvenanceCheck::new(p, &|f: &str, m: String| err(&format!("provenance.{f}"), m))?)
            }
        };
        let sbom = match raw.sbom {
            None => None,
            Some(s) => {
                only("sbom", Kind::Sbom, "SBOMs (cyclonedx, spdx)")?;
                if s.denied_licenses.is_empty() {
                    return Err(err(
                        "sbom.deniedLicenses",
                        "required and not empty (leave `sbom` out to require only that an SBOM exists)".into(),
                    ));
                }
                if let Some(i) = s.denied_licenses.iter().position(|l| l.trim().is_empty()) {
                    return Err(err(&format!("sbom.deniedLicenses[{i}]"), "empty".into()));
                }
                Some(SbomCheck { denied: s.denied_licenses })
            }
        };
        let vulnerabilities = match raw.vulnerabilities {
            None => None,
            Some(v) => {
                only(
                    "vulnerabilities",
                    Kind::Vulns,
                    "vulnerability scans (vuln, https://in-toto.io/attestation/vulns)",
                )?;
                Some(VulnCheck::new(v, &|f: &str, m: String| err(&format!("vulnerabilities.{f}"), m))?)
            }
        };
        let conditions = raw
            .conditions
            .into_iter()
            .enumerate()
            .map(|(i, c)| Condition::new(c, &|f: &str, m: String| err(&format!("conditions[{i}]{f}"), m)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Requirement {
            predicate_type: raw.predicate_type,
            exact,
            custom,
            family,
            provenance,
            sbom,
            vulnerabilities,
            conditions,
        })
    }
}

// --- Reading the configuration ------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawRequirement {
    predicate_type: String,
    #[serde(default)]
    provenance: Option<RawProvenance>,
    #[serde(default)]
    sbom: Option<RawSbom>,
    #[serde(default)]
    vulnerabilities: Option<RawVulns>,
    #[serde(default)]
    conditions: Vec<RawCondition>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawProvenance {
    builder_id: Option<String>,
    builder_id_reg_exp: Option<String>,
    source_repository: Option<String>,
    source_repository_reg_exp: Option<String>,
    build_type: Option<String>,
    git_ref_reg_exp: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawSbom {
    #[serde(default)]
    denied_licenses: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawVulns {
    max_age: Option<String>,
    max_severity: Option<String>,
    #[serde(default)]
    allow: Vec<RawAllow>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawAllow {
    id: String,
    reason: String,
    expires: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawCondition {
    pointer: String,
    /// `Some(Value::Null)` for `equals: null`, `None` when left out.
    #[serde(default, deserialize_with = "present")]
    equals: Option<Value>,
    reg_exp: Option<String>,
    exists: Option<bool>,
}

fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// Deserialize `item`, naming the key path below `at` on failure.
fn from_value_at<T: serde::de::DeserializeOwned>(item: &Value, at: &str) -> Result<T, ConfigError> {
    // From one line of text, so the error's column names the field (see `json_path`).
    let text = item.to_string();
    serde_json::from_str::<T>(&text).map_err(|e| {
        let offset = if e.line() == 1 { e.column() } else { 0 };
        let message = e.to_string();
        let message = message.rsplit_once(" at line ").map_or(message.as_str(), |(m, _)| m).to_string();
        let mut field = crate::json_path::path_at(&text, offset);
        if message.starts_with("unknown field") || message.starts_with("missing field") {
            // Named in backticks, at the level above them.
            let named = message.split('`').nth(1).unwrap_or_default();
            if !named.is_empty() && !field.ends_with(named) {
                field = if field.is_empty() { named.to_string() } else { format!("{field}.{named}") };
            }
        }
        let field = if field.is_empty() { at.to_string() } else { format!("{at}.{field}") };
        ConfigError { field, message }
    })
}

/// An exact value or a regular expression over the whole value.
#[derive(Debug, Clone)]
enum Matcher {
    Exact(String),
    /// The pattern as written, and its anchored form.
    Regex(String, Regex),
}

impl Matcher {
    fn describe(&self) -> String {
        match self {
            Matcher::Exact(s) => format!("{s:?}"),
            Matcher::Regex(p, _) => format!("/{p}/"),
        }
    }
}

/// `pattern` compiled to match whole values (`^(?:pattern)$`). It must compile on
/// its own first, so it cannot close the wrapping group (`a)|(b`).
fn anchored(pattern: &str) -> Result<Regex, String> {
    Regex::new(pattern).map_err(|e| format!("not a regular expression: {}", one_line(&e.to_string())))?;
    Regex::new(&format!("^(?:{pattern})$"))
        .map_err(|e| format!("not a regular expression: {}", one_line(&e.to_string())))
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Either `exact` or `regExp`, not both; `None` when neither.
fn matcher(
    exact: Option<String>,
    regex: Option<String>,
    name: &str,
    err: &dyn Fn(&str, String) -> ConfigError,
) -> Result<Option<Matcher>, ConfigError> {
    match (exact, regex) {
        (Some(_), Some(_)) => Err(err(name, format!("give either {name} or {name}RegExp, not both"))),
        (Some(s), None) if s.is_empty() => Err(err(name, "empty".into())),
        (Some(s), None) => Ok(Some(Matcher::Exact(s))),
        (None, Some(p)) => {
            anchored(&p).map(|re| Some(Matcher::Regex(p, re))).map_err(|m| err(&format!("{name}RegExp"), m))
        }
        (None, None) => Ok(None),
    }
}

/// What a predicate type is, for the blocks that read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Provenance,
    Sbom,
    Vulns,
    Other,
}

fn kind_of(predicate_type: &str) -> Kind {
    match predicate_type {
        SLSA_V02 | SLSA_V1 => Kind::Provenance,
        t if in_family(CYCLONEDX, t) || in_family(SPDX, t) => Kind::Sbom,
        t if t == COSIGN_VULN || in_family(IN_TOTO_VULNS, t) => Kind::Vulns,
        _ => Kind::Other,
    }
}

/// `family` itself or a version of it (`family/...`).
fn in_family(family: &str, predicate_type: &str) -> bool {
    predicate_type.strip_prefix(family).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

type ResolvedType = (Vec<&'static str>, Option<String>, Option<&'static str>);

/// `predicateType` as exact types, a custom URI, or a family of versions.
fn resolve_type(written: &str) -> Result<ResolvedType, String> {
    Ok(match written {
        "slsaprovenance" => (vec![SLSA_V02, SLSA_V1], None, None),
        "slsaprovenance02" => (vec![SLSA_V02], None, None),
        "slsaprovenance1" => (vec![SLSA_V1], None, None),
        "spdx" | "spdxjson" => (Vec::new(), None, Some(SPDX)),
        "cyclonedx" => (Vec::new(), None, Some(CYCLONEDX)),
        "vuln" => (vec![COSIGN_VULN], None, None),
        "custom" => (vec![COSIGN_CUSTOM], None, None),
        t if FAMILIES.contains(&t) => (Vec::new(), None, FAMILIES.iter().copied().find(|f| *f == t)),
        t if t.contains(':') && !t.chars().any(char::is_whitespace) => {
            match [SLSA_V02, SLSA_V1, COSIGN_VULN].into_iter().find(|k| *k == t) {
                Some(known) => (vec![known], None, None),
                None => (Vec::new(), Some(t.to_string()), None),
            }
        }
        "" => return Err("required".into()),
        other => {
            return Err(format!(
                "{other:?} is neither a URI nor one of slsaprovenance, slsaprovenance02, slsaprovenance1, spdx, \
                 spdxjson, cyclonedx, vuln, custom"
            ));
        }
    })
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn str_at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(value, |v, key| v.get(key))?.as_str()
}

// --- SLSA provenance -----------------------------------------------------------

#[derive(Debug, Clone)]
struct ProvenanceCheck {
    builder: Option<Matcher>,
    source: Option<Matcher>,
    build_type: Option<String>,
    git_ref: Option<(String, Regex)>,
}

impl ProvenanceCheck {
    fn new(raw: RawProvenance, err: &dyn Fn(&str, String) -> ConfigError) -> Result<ProvenanceCheck, ConfigError> {
        let builder = matcher(raw.builder_id, raw.builder_id_reg_exp, "builderId", err)?;
        let source = matcher(raw.source_repository, raw.source_repository_reg_exp, "sourceRepository", err)?;
        let build_type = match raw.build_type {
            Some(t) if t.is_empty() => return Err(err("buildType", "empty".into())),
            t => t,
        };
        let git_ref = match raw.git_ref_reg_exp {
            None => None,
            Some(p) => Some((p.clone(), anchored(&p).map_err(|m| err("gitRefRegExp", m))?)),
        };
        if builder.is_none() && source.is_none() && build_type.is_none() && git_ref.is_none() {
            return Err(err(
                "",
                "give at least one of builderId(RegExp), sourceRepository(RegExp), buildType, gitRefRegExp \
                 (leave `provenance` out to require only that provenance exists)"
                    .into(),
            )
            .trim_field());
        }
        Ok(ProvenanceCheck { builder, source, build_type, git_ref })
    }

    fn check(&self, predicate_type: &str, p: &Value) -> Result<(), String> {
        let facts = Provenance::read(predicate_type, p)?;
        let mut failures = Vec::new();
        match (&self.builder, facts.builder) {
            (None, _) => {}
            (Some(want), None) => failures.push(format!("provenance names no builder, {} wanted", want.describe())),
            (Some(want), Some(have)) => {
                let ok = match want {
                    // slsa-verifier's loose match: without `@`, any version of the builder.
                    Matcher::Exact(w) if w.contains('@') => have == w.as_str(),
                    Matcher::Exact(w) => have.split_once('@').map_or(have, |(id, _)| id) == w.as_str(),
                    Matcher::Regex(_, re) => re.is_match(have),
                };
                if !ok {
                    failures.push(format!("builder {have:?} is not {}", want.describe()));
                }
            }
        }
        match (&self.source, facts.source) {
            (None, _) => {}
            (Some(want), None) => failures.push(format!("provenance names no source, {} wanted", want.describe())),
            (Some(want), Some(have)) => {
                let ok = match want {
                    Matcher::Exact(w) => normalize_source(have) == normalize_source(w),
                    Matcher::Regex(_, re) => re.is_match(normalize_source(have)),
                };
                if !ok {
                    failures.push(format!("source {have:?} is not {}", want.describe()));
                }
            }
        }
        match (&self.build_type, facts.build_type) {
            (None, _) => {}
            (Some(want), Some(have)) if have == want.as_str() => {}
            (Some(want), have) => failures.push(format!("build type {have:?} is not {want:?}")),
        }
        match (&self.git_ref, facts.git_ref) {
            (None, _) => {}
            (Some((_, re)), Some(have)) if re.is_match(have) => {}
            (Some((p, _)), Some(have)) => failures.push(format!("git ref {have:?} does not match /{p}/")),
            (Some((p, _)), None) => failures.push(format!("provenance names no git ref, /{p}/ wanted")),
        }
        if failures.is_empty() { Ok(()) } else { Err(failures.join("; ")) }
    }
}

impl ConfigError {
    /// `x.provenance.` → `x.provenance` for an error about the block itself.
    fn trim_field(mut self) -> ConfigError {
        if self.field.ends_with('.') {
            self.field.pop();
        }
        self
    }
}

/// What a SLSA provenance predicate says about the build.
struct Provenance<'a> {
    builder: Option<&'a str>,
    build_type: Option<&'a str>,
    source: Option<&'a str>,
    git_ref: Option<&'a str>,
}

impl<'a> Provenance<'a> {
    /// Field locations: SLSA provenance v0.2 (<https://slsa.dev/spec/v0.2/provenance>)
    /// and v1 (<https://slsa.dev/spec/v1.0/provenance>, GitHub's build type
    /// <https://slsa-framework.github.io/github-actions-buildtypes/workflow/v1>).
    fn read(predicate_type: &str, p: &'a Value) -> Result<Provenance<'a>, String> {
        if !p.is_object() {
            return Err(format!("the provenance predicate is {}, not an object", kind(p)));
        }
        match predicate_type {
            SLSA_V02 => {
                let config_uri = str_at(p, &["invocation", "configSource", "uri"]);
                Ok(Provenance {
                    builder: str_at(p, &["builder", "id"]),
                    build_type: str_at(p, &["buildType"]),
                    source: config_uri,
                    git_ref: str_at(p, &["invocation", "environment", "github_ref"])
                        .or_else(|| str_at(p, &["invocation", "environment", "GITHUB_REF"]))
                        .or_else(|| config_uri.and_then(uri_ref)),
                })
            }
            SLSA_V1 => {
                let dependency = p.pointer("/buildDefinition/resolvedDependencies/0/uri").and_then(Value::as_str);
                let workflow = &["buildDefinition", "externalParameters", "workflow"];
                let at = |key: &str| str_at(p, &[workflow[0], workflow[1], workflow[2], key]);
                Ok(Provenance {
                    builder: str_at(p, &["runDetails", "builder", "id"]),
                    build_type: str_at(p, &["buildDefinition", "buildType"]),
                    source: at("repository").or(dependency),
                    git_ref: at("ref").or_else(|| dependency.and_then(uri_ref)),
                })
            }
            other => Err(format!("predicate type {other:?} is not SLSA provenance v0.2 or v1")),
        }
    }
}

/// The part of a source URI after the scheme (and `git+`), and its `@ref` if any.
/// An `@` before the first `/` is user information (`git@github.com`), not a ref.
fn split_source(uri: &str) -> (&str, Option<&str>) {
    let uri = uri.strip_prefix("git+").unwrap_or(uri);
    let rest = uri.split_once("://").map_or(uri, |(_, rest)| rest);
    let rest = match (rest.find('@'), rest.find('/')) {
        (Some(at), Some(slash)) if at < slash => &rest[at + 1..],
        _ => rest,
    };
    match rest.find('/').and_then(|slash| rest[slash..].find('@').map(|at| slash + at)) {
        Some(at) => (&rest[..at], Some(&rest[at + 1..])),
        None => (rest, None),
    }
}

fn uri_ref(uri: &str) -> Option<&str> {
    split_source(uri).1.filter(|r| !r.is_empty())
}

/// `github.com/org/repo` from `git+https://github.com/org/repo@refs/heads/main`,
/// `https://github.com/org/repo.git` or `github.com/org/repo/`.
fn normalize_source(uri: &str) -> &str {
    split_source(uri).0.trim_end_matches('/').trim_end_matches(".git")
}

// --- SBOMs -----------------------------------------------------------------------

#[derive(Debug, Clone)]
struct SbomCheck {
    denied: Vec<String>,
}

impl SbomCheck {
    fn check(&self, predicate_type: &str, predicate: &Value) -> Result<(), String> {
        let parsed;
        let document = match predicate {
            Value::String(text) => match serde_json::from_str::<Value>(text) {
                Ok(v @ Value::Object(_)) => {
                    parsed = v;
                    &parsed
                }
                _ => {
                    return Err("the SBOM is not JSON (SPDX tag-value or CycloneDX XML?), so deniedLicenses \
                                cannot be checked"
                        .into());
                }
            },
            Value::Object(_) => predicate,
            other => return Err(format!("the SBOM predicate is {}, not a document", kind(other))),
        };
        // (licence term, where it appears)
        let mut found: Vec<(String, String)> = Vec::new();
        if in_family(CYCLONEDX, predicate_type) {
            if document.get("bomFormat").and_then(Value::as_str) != Some("CycloneDX") {
                return Err("the predicate is not a CycloneDX JSON BOM (no bomFormat: CycloneDX)".into());
            }
            if let Some(c) = document.pointer("/metadata/component") {
                cyclonedx_licences(c, &mut found, 0);
            }
            for c in document.get("components").and_then(Value::as_array).into_iter().flatten() {
                cyclonedx_licences(c, &mut found, 0);
            }
        } else {
            match document.get("spdxVersion").and_then(Value::as_str) {
                Some(v) if v.starts_with("SPDX-2.") => {}
                v => {
                    return Err(format!(
                        "licences of this SPDX document (spdxVersion {v:?}) cannot be read: only SPDX 2 JSON is"
                    ));
                }
            }
            for p in document.get("packages").and_then(Value::as_array).into_iter().flatten() {
                let name = package_name(p, "name", "versionInfo");
                for key in ["licenseConcluded", "licenseDeclared"] {
                    if let Some(expr) = p.get(key).and_then(Value::as_str) {
                        found.extend(licence_terms(expr).map(|t| (t.to_string(), name.clone())));
                    }
                }
            }
        }
        let mut denied: Vec<String> = Vec::new();
        let mut seen = BTreeSet::new();
        for (term, place) in &found {
            if self.denied.iter().any(|d| d.eq_ignore_ascii_case(term)) && seen.insert((term.clone(), place.clone())) {
                denied.push(format!("{term} ({place})"));
            }
        }
        if denied.is_empty() {
            return Ok(());
        }
        Err(format!("denied licences: {}", listed(&denied)))
    }
}

/// A component's licences, and those of the components nested in it.
fn cyclonedx_licences(component: &Value, found: &mut Vec<(String, String)>, depth: usize) {
    let name = package_name(component, "name", "version");
    for l in component.get("licenses").and_then(Value::as_array).into_iter().flatten() {
        if let Some(expr) = l.get("expression").and_then(Value::as_str) {
            found.extend(licence_terms(expr).map(|t| (t.to_string(), name.clone())));
        }
        for key in ["id", "name"] {
            if let Some(id) = l.pointer(&format!("/license/{key}")).and_then(Value::as_str) {
                found.push((id.trim().to_string(), name.clone()));
            }
        }
    }
    // BOMs nest components; a bound keeps a hostile one from exhausting the stack.
    if depth < 32 {
        for c in component.get("components").and_then(Value::as_array).into_iter().flatten() {
            cyclonedx_licences(c, found, depth + 1);
        }
    }
}

fn package_name(p: &Value, name: &str, version: &str) -> String {
    match (p.get(name).and_then(Value::as_str), p.get(version).and_then(Value::as_str)) {
        (Some(n), Some(v)) => format!("{n}@{v}"),
        (Some(n), None) => n.to_string(),
        _ => "unnamed component".into(),
    }
}

/// The licence ids of an SPDX licence expression (`MIT OR (GPL-2.0-only WITH X)`).
fn licence_terms(expression: &str) -> impl Iterator<Item = &str> {
    expression
        .split(|c: char| c.is_whitespace() || c == '(' || c == ')')
        .filter(|t| !t.is_empty())
        .filter(|t| !["AND", "OR", "WITH", "NOASSERTION", "NONE"].iter().any(|k| k.eq_ignore_ascii_case(t)))
}

/// Up to [`MAX_LISTED`] items, and how many more.
fn listed(items: &[String]) -> String {
    let shown = items.iter().take(MAX_LISTED).cloned().collect::<Vec<_>>().join(", ");
    match items.len().saturating_sub(MAX_LISTED) {
        0 => shown,
        more => format!("{shown} and {more} more"),
    }
}

// --- Vulnerability scans --------------------------------------------------------------

/// A vulnerability's severity, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum VulnSeverity {
    Unknown,
    Negligible,
    Low,
    Medium,
    High,
    Critical,
}

impl VulnSeverity {
    /// A name (any case; Trivy's, Grype's, GitHub's `moderate`) or a CVSS score.
    pub fn parse(text: &str) -> Option<VulnSeverity> {
        let text = text.trim();
        Some(match text.to_ascii_lowercase().as_str() {
            "unknown" => VulnSeverity::Unknown,
            "negligible" | "none" => VulnSeverity::Negligible,
            "low" => VulnSeverity::Low,
            "medium" | "moderate" => VulnSeverity::Medium,
            "high" | "important" => VulnSeverity::High,
            "critical" => VulnSeverity::Critical,
            _ => return text.parse::<f64>().ok().and_then(VulnSeverity::from_score),
        })
    }

    /// A CVSS base score: below 4 low, below 7 medium, below 9 high, else critical.
    pub fn from_score(score: f64) -> Option<VulnSeverity> {
        if !(0.0..=10.0).contains(&score) {
            return None;
        }
        Some(match score {
            s if s < 4.0 => VulnSeverity::Low,
            s if s < 7.0 => VulnSeverity::Medium,
            s if s < 9.0 => VulnSeverity::High,
            _ => VulnSeverity::Critical,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            VulnSeverity::Unknown => "unknown",
            VulnSeverity::Negligible => "negligible",
            VulnSeverity::Low => "low",
            VulnSeverity::Medium => "medium",
            VulnSeverity::High => "high",
            VulnSeverity::Critical => "critical",
        }
    }
}

#[derive(Debug, Clone)]
struct VulnCheck {
    max_age: Option<(String, i64)>,
    max_severity: Option<VulnSeverity>,
    allow: Vec<Allowance>,
}

#[derive(Debug, Clone)]
struct Allowance {
    id: String,
    /// As written, and the first second it no longer allows.
    expires: Option<(String, i64)>,
}

/// One finding of a scan.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Finding {
    id: String,
    severity: VulnSeverity,
}

impl VulnCheck {
    fn new(raw: RawVulns, err: &dyn Fn(&str, String) -> ConfigError) -> Result<VulnCheck, ConfigError> {
        let max_age = match raw.max_age {
            None => None,
            Some(text) => {
                let secs = parse_duration(&text).ok_or_else(|| {
                    err(
                        "maxAge",
                        format!("{text:?} is not a duration (a number and a unit s, m, h or d: 168h, 7d, 1d12h)"),
                    )
                })?;
                if secs == 0 {
                    return Err(err("maxAge", "must be more than 0".into()));
                }
                Some((text, secs))
            }
        };
        let max_severity = match raw.max_severity {
            None => None,
            Some(text) => match text.to_ascii_lowercase().as_str() {
                "low" => Some(VulnSeverity::Low),
                "medium" => Some(VulnSeverity::Medium),
                "high" => Some(VulnSeverity::High),
                "critical" => Some(VulnSeverity::Critical),
                _ => return Err(err("maxSeverity", format!("{text:?} is not one of low, medium, high, critical"))),
            },
        };
        if max_age.is_none() && max_severity.is_none() {
            return Err(err(
                "",
                "give maxAge, maxSeverity or both (leave `vulnerabilities` out to require only that a scan exists)"
                    .into(),
            )
            .trim_field());
        }
        if !raw.allow.is_empty() && max_severity.is_none() {
            return Err(err("allow", "allows findings above maxSeverity, which is not set".into()));
        }
        let mut allow = Vec::new();
        for (i, a) in raw.allow.into_iter().enumerate() {
            if a.id.trim().is_empty() {
                return Err(err(&format!("allow[{i}].id"), "empty".into()));
            }
            if a.reason.trim().is_empty() {
                return Err(err(&format!("allow[{i}].reason"), "empty: say why the finding is acceptable".into()));
            }
            let expires = match a.expires {
                None => None,
                Some(text) => {
                    // A date allows through that day (UTC), as an exception's `expires` does.
                    let end = parse_date(&text).map(|d| d + 86_400).or_else(|| parse_rfc3339(&text));
                    let end = end.ok_or_else(|| {
                        err(
                            &format!("allow[{i}].expires"),
                            format!("{text:?} is not a date (YYYY-MM-DD) or an RFC 3339 time"),
                        )
                    })?;
                    Some((text, end))
                }
            };
            allow.push(Allowance { id: a.id.trim().to_string(), expires });
        }
        Ok(VulnCheck { max_age, max_severity, allow })
    }

    fn check(&self, predicate_type: &str, p: &Value, checked_at: i64) -> Result<(), String> {
        if !p.is_object() {
            return Err(format!("the scan predicate is {}, not an object", kind(p)));
        }
        let mut failures = Vec::new();
        if let Some((written, max)) = &self.max_age {
            match str_at(p, &["metadata", "scanFinishedOn"]) {
                None => failures.push("the scan has no metadata.scanFinishedOn".to_string()),
                Some(text) => match parse_rfc3339(text) {
                    None => failures.push(format!("metadata.scanFinishedOn {text:?} is not an RFC 3339 time")),
                    Some(t) if t > checked_at + FUTURE_SKEW => failures
                        .push(format!("the scan finished in the future ({text}, {} ahead)", human(t - checked_at))),
                    Some(t) if checked_at - t > *max => failures.push(format!(
                        "the scan finished {} ago ({text}), longer than maxAge {written}",
                        human(checked_at - t)
                    )),
                    Some(_) => {}
                },
            }
        }
        if let Some(max) = self.max_severity {
            match findings(predicate_type, p) {
                Err(e) => failures.push(format!("cannot read the scanner result: {e}")),
                Ok(found) => {
                    let mut over: Vec<String> = Vec::new();
                    let mut seen = BTreeSet::new();
                    for f in found.iter().filter(|f| f.severity >= max) {
                        if !seen.insert(f.id.to_ascii_uppercase()) {
                            continue;
                        }
                        let entry = self.allow.iter().find(|a| a.id.eq_ignore_ascii_case(&f.id));
                        match entry.map(|a| &a.expires) {
                            Some(None) => {}
                            Some(Some((_, end))) if checked_at < *end => {}
                            Some(Some((written, _))) => over.push(format!(
                                "{} ({}; its allowance expired {written})",
                                f.id,
                                f.severity.as_str()
                            )),
                            None => over.push(format!("{} ({})", f.id, f.severity.as_str())),
                        }
                    }
                    if !over.is_empty() {
                        failures.push(format!(
                            "{} {} at or above {}: {}",
                            over.len(),
                            if over.len() == 1 { "vulnerability" } else { "vulnerabilities" },
                            max.as_str(),
                            listed(&over)
                        ));
                    }
                }
            }
        }
        if failures.is_empty() { Ok(()) } else { Err(failures.join("; ")) }
    }
}

/// The findings of a scan predicate: cosign's (a scanner's own JSON) or in-toto's list.
fn findings(predicate_type: &str, p: &Value) -> Result<Vec<Finding>, String> {
    // cosign's Go type has one `scanner`; its specification's text shows a `scanners` list.
    let results: Vec<&Value> = match (p.get("scanner"), p.get("scanners")) {
        (Some(s), _) if s.is_object() => vec![s.get("result").unwrap_or(&Value::Null)],
        (_, Some(Value::Array(list))) => list.iter().map(|s| s.get("result").unwrap_or(&Value::Null)).collect(),
        _ => return Err("the predicate has no scanner".into()),
    };
    let mut found = Vec::new();
    for result in results {
        if predicate_type == COSIGN_VULN {
            found.extend(scanner_json(result)?);
        } else {
            found.extend(in_toto_results(result)?);
        }
    }
    Ok(found)
}

/// cosign's free-form `scanner.result`: Trivy JSON, Grype JSON, an in-toto-style
/// list, or null.
fn scanner_json(result: &Value) -> Result<Vec<Finding>, String> {
    match result {
        Value::Null => Ok(Vec::new()),
        Value::Array(_) => in_toto_results(result),
        Value::Object(o) if o.contains_key("Results") || o.contains_key("SchemaVersion") => {
            // Trivy: https://trivy.dev/latest/docs/configuration/reporting/#json
            let mut found = Vec::new();
            for (i, r) in array_or_null(o.get("Results"), "Results")?.iter().enumerate() {
                let vulns = array_or_null(r.get("Vulnerabilities"), &format!("Results[{i}].Vulnerabilities"))?;
                for (j, v) in vulns.iter().enumerate() {
                    let at = format!("Results[{i}].Vulnerabilities[{j}]");
                    let id = v.get("VulnerabilityID").and_then(Value::as_str);
                    let id = id.ok_or_else(|| format!("{at} has no VulnerabilityID"))?;
                    found.push(Finding { id: id.to_string(), severity: severity_value(v.get("Severity"), &at)? });
                }
            }
            Ok(found)
        }
        Value::Object(o) if o.contains_key("matches") => {
            // Grype: `matches[].vulnerability.{id,severity}`.
            let mut found = Vec::new();
            for (i, m) in array_or_null(o.get("matches"), "matches")?.iter().enumerate() {
                let at = format!("matches[{i}].vulnerability");
                let v = m.get("vulnerability").ok_or_else(|| format!("{at} is missing"))?;
                let id = v.get("id").and_then(Value::as_str).ok_or_else(|| format!("{at} has no id"))?;
                found.push(Finding { id: id.to_string(), severity: severity_value(v.get("severity"), &at)? });
            }
            Ok(found)
        }
        Value::Object(o) => {
            let keys: Vec<&str> = o.keys().take(5).map(String::as_str).collect();
            Err(format!(
                "neither Trivy JSON (Results) nor Grype JSON (matches): an object with keys {}",
                if keys.is_empty() { "none".to_string() } else { keys.join(", ") }
            ))
        }
        other => Err(format!("{} is neither Trivy JSON, Grype JSON nor null", kind(other))),
    }
}

/// in-toto's `scanner.result`: `[{id, severity: [{method, score}]}]` (v0.2) or
/// `[{vulnerability: {id, severity}}]` (v0.1's schema).
fn in_toto_results(result: &Value) -> Result<Vec<Finding>, String> {
    let mut found = Vec::new();
    for (i, item) in array_or_null(Some(result), "result")?.iter().enumerate() {
        let at = format!("result[{i}]");
        let v = item.get("vulnerability").filter(|v| v.is_object()).unwrap_or(item);
        let id = v.get("id").and_then(Value::as_str).ok_or_else(|| format!("{at} has no id"))?;
        let severity = match v.get("severity") {
            None | Some(Value::Null) => VulnSeverity::Unknown,
            Some(Value::Array(methods)) => methods
                .iter()
                .map(|m| severity_value(m.get("score"), &format!("{at}.severity")))
                .collect::<Result<Vec<_>, _>>()?
                .into_iter()
                .max()
                .unwrap_or(VulnSeverity::Unknown),
            Some(one @ Value::Object(_)) => severity_value(one.get("score"), &format!("{at}.severity"))?,
            Some(other) => severity_value(Some(other), &format!("{at}.severity"))?,
        };
        found.push(Finding { id: id.to_string(), severity });
    }
    Ok(found)
}

fn array_or_null<'a>(value: Option<&'a Value>, at: &str) -> Result<&'a [Value], String> {
    match value {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(items)) => Ok(items),
        Some(other) => Err(format!("{at} is {}, not a list", kind(other))),
    }
}

fn severity_value(value: Option<&Value>, at: &str) -> Result<VulnSeverity, String> {
    match value {
        None | Some(Value::Null) => Ok(VulnSeverity::Unknown),
        Some(Value::String(s)) => VulnSeverity::parse(s).ok_or_else(|| format!("{at}: severity {s:?} is not known")),
        Some(Value::Number(n)) => n
            .as_f64()
            .and_then(VulnSeverity::from_score)
            .ok_or_else(|| format!("{at}: score {n} is not between 0 and 10")),
        Some(other) => Err(format!("{at}: severity is {}", kind(other))),
    }
}

// --- Custom conditions ------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Condition {
    pointer: String,
    test: Test,
}

#[derive(Debug, Clone)]
enum Test {
    Equals(Value),
    RegExp(String, Regex),
    Exists(bool),
}

impl Condition {
    fn new(raw: RawCondition, err: &dyn Fn(&str, String) -> ConfigError) -> Result<Condition, ConfigError> {
        check_pointer(&raw.pointer).map_err(|m| err(".pointer", m))?;
        let test = match (raw.equals, raw.reg_exp, raw.exists) {
            (Some(v), None, None) => Test::Equals(v),
            (None, Some(p), None) => Test::RegExp(p.clone(), anchored(&p).map_err(|m| err(".regExp", m))?),
            (None, None, Some(b)) => Test::Exists(b),
            _ => return Err(err("", "give exactly one of equals, regExp, exists".into())),
        };
        Ok(Condition { pointer: raw.pointer, test })
    }

    fn check(&self, predicate: &Value) -> Result<(), String> {
        let at = if self.pointer.is_empty() { "the predicate".to_string() } else { self.pointer.clone() };
        let value = predicate.pointer(&self.pointer);
        match (&self.test, value) {
            (Test::Exists(want), v) if v.is_some() == *want => Ok(()),
            (Test::Exists(true), _) => Err(format!("{at} is missing")),
            (Test::Exists(false), _) => Err(format!("{at} is present")),
            (_, None) => Err(format!("{at} is missing")),
            (Test::Equals(want), Some(have)) if have == want => Ok(()),
            (Test::Equals(want), Some(have)) => Err(format!("{at} is {}, not {want}", short(have))),
            (Test::RegExp(_, re), Some(Value::String(s))) if re.is_match(s) => Ok(()),
            (Test::RegExp(p, _), Some(Value::String(s))) => Err(format!("{at} {s:?} does not match /{p}/")),
            (Test::RegExp(p, _), Some(other)) => Err(format!("{at} is {}, not a string to match /{p}/", kind(other))),
        }
    }
}

/// A value for a message, cut short.
fn short(v: &Value) -> String {
    let text = v.to_string();
    match text.char_indices().nth(80) {
        Some((end, _)) => format!("{}...", &text[..end]),
        None => text,
    }
}

/// RFC 6901: empty (the whole value) or `/`-separated tokens where `~` is `~0` or `~1`.
fn check_pointer(pointer: &str) -> Result<(), String> {
    if !pointer.is_empty() && !pointer.starts_with('/') {
        return Err(format!(
            "{pointer:?} is not a JSON pointer (RFC 6901: empty or starting with /, e.g. /build/tested)"
        ));
    }
    let mut chars = pointer.chars();
    while let Some(c) = chars.next() {
        if c == '~' && !matches!(chars.next(), Some('0' | '1')) {
            return Err(format!("{pointer:?} is not a JSON pointer (RFC 6901: ~ must be followed by 0 or 1)"));
        }
    }
    Ok(())
}

// --- Time --------------------------------------------------------------------------------

/// Seconds since the Unix epoch of an RFC 3339 date-time (`2021-08-06T17:50:50.52Z`,
/// `2021-08-06t19:50:50+02:00`); fractions of a second are dropped (floor).
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if !text.is_ascii() || b.len() < 20 || !matches!(b[10], b'T' | b't' | b' ') || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let date = parse_date(&text[..10])?;
    let (hour, minute, second) = (digits(&b[11..13])?, digits(&b[14..16])?, digits(&b[17..19])?);
    // 60: a leap second.
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut i = 19;
    if b.get(i) == Some(&b'.') {
        let start = i + 1;
        i = start;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return None;
        }
    }
    let offset = match &b[i..] {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let (h, m) = (digits(&[*h1, *h2])?, digits(&[*m1, *m2])?);
            if h > 23 || m > 59 {
                return None;
            }
            let secs = h * 3600 + m * 60;
            if *sign == b'-' { -secs } else { secs }
        }
        _ => return None,
    };
    Some(date + hour * 3600 + minute * 60 + second - offset)
}

/// Seconds since the Unix epoch of 00:00 UTC on a `YYYY-MM-DD` date.
pub fn parse_date(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (y, m, d) = (digits(&b[..4])?, digits(&b[5..7])?, digits(&b[8..10])?);
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days_in_month = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    if !(1..=12).contains(&m) || d < 1 || d > days_in_month[m as usize - 1] {
        return None;
    }
    Some(days_from_civil(y, m, d) * 86_400)
}

fn digits(b: &[u8]) -> Option<i64> {
    b.iter().try_fold(0i64, |n, c| c.is_ascii_digit().then(|| n * 10 + i64::from(c - b'0')))
}

/// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `168h`, `7d`, `1d12h`, `90s`: whole numbers with units s, m, h, d, largest first or not.
pub fn parse_duration(text: &str) -> Option<i64> {
    let mut total: i64 = 0;
    let mut number: Option<i64> = None;
    for c in text.trim().chars() {
        match c {
            '0'..='9' => number = Some(number.unwrap_or(0).checked_mul(10)?.checked_add(i64::from(c as u8 - b'0'))?),
            's' | 'm' | 'h' | 'd' => {
                let unit = match c {
                    's' => 1,
                    'm' => 60,
                    'h' => 3600,
                    _ => 86_400,
                };
                total = total.checked_add(number.take()?.checked_mul(unit)?)?;
            }
            _ => return None,
        }
    }
    // A trailing number without a unit, or nothing at all, is not a duration.
    (number.is_none() && !text.trim().is_empty()).then_some(total)
}

/// `3d 4h`, `5h 12m`, `40s`: a span for a person.
fn human(secs: i64) -> String {
    let secs = secs.abs();
    let (d, h, m) = (secs / 86_400, secs % 86_400 / 3600, secs % 3600 / 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{secs}s"),
        (0, 0, m) => format!("{m}m"),
        (0, h, m) => format!("{h}h {m}m"),
        (d, h, _) => format!("{d}d {h}h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::images::{AttestationSource, VerifiedSignature};
    use serde_json::json;

    fn parse(json: Value) -> Result<Requirements, ConfigError> {
        Requirements::parse(&json.to_string())
    }

    fn one(json: Value) -> Requirement {
        parse(json!([json])).unwrap().0.remove(0)
    }

    fn field_of(json: Value) -> String {
        let e = parse(json).unwrap_err();
        assert!(!e.message.is_empty());
        e.field
    }

    fn statement(predicate_type: &str, predicate: Value) -> VerifiedStatement {
        VerifiedStatement {
            predicate_type: predicate_type.into(),
            statement: json!({
                "_type": "https://in-toto.io/Statement/v1",
                "subject": [{"name": "ghcr.io/acme/app", "digest": {"sha256": "ab"}}],
                "predicateType": predicate_type,
                "predicate": predicate,
            })
            .to_string(),
            signer: VerifiedSignature { key_id: None, issuer: None, subject: None, signed_at: None },
            source: AttestationSource::Referrer,
        }
    }

    #[test]
    fn rfc3339_times() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        // `date -u -d 2021-08-06T17:50:50Z +%s`
        assert_eq!(parse_rfc3339("2021-08-06T17:50:50.52Z"), Some(1_628_272_250));
        assert_eq!(parse_rfc3339("2021-08-06t19:50:50+02:00"), Some(1_628_272_250));
        assert_eq!(parse_rfc3339("2021-08-06T12:20:50.123456789-05:30"), Some(1_628_272_250));
        assert_eq!(parse_rfc3339("2024-02-29T00:00:00Z"), Some(1_709_164_800));
        assert_eq!(parse_rfc3339("1969-12-31T23:59:59Z"), Some(-1));
        // cosign's zero time.
        assert_eq!(parse_rfc3339("0001-01-01T00:00:00Z"), Some(-62_135_596_800));
        for bad in [
            "2021-08-06",
            "2021-08-06T17:50:50",
            "2021-08-06T17:50Z",
            "2021-02-29T00:00:00Z",
            "2021-13-01T00:00:00Z",
            "2021-08-06T24:00:00Z",
            "2021-08-06T17:50:50.Z",
            "2021-08-06T17:50:50+0200",
            "2021-08-06T17:50:50+24:00",
            "2021-08-06T17:50:50ZZ",
            "2021-08-06X17:50:50Z",
            "२०२१-08-06T17:50:50Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
        assert_eq!(parse_date("2027-01-01"), Some(1_798_761_600));
        assert_eq!(parse_date("2027-1-01"), None);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("168h"), Some(168 * 3600));
        assert_eq!(parse_duration("7d"), Some(7 * 86_400));
        assert_eq!(parse_duration("1d12h30m5s"), Some(86_400 + 12 * 3600 + 30 * 60 + 5));
        for bad in ["", "h", "10", "7days", "1.5h", "-1h", "99999999999999999999d"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn severities() {
        assert_eq!(VulnSeverity::parse("CRITICAL"), Some(VulnSeverity::Critical));
        assert_eq!(VulnSeverity::parse("Negligible"), Some(VulnSeverity::Negligible));
        assert_eq!(VulnSeverity::parse("moderate"), Some(VulnSeverity::Medium));
        assert_eq!(VulnSeverity::parse("3.9"), Some(VulnSeverity::Low));
        assert_eq!(VulnSeverity::parse("4.0"), Some(VulnSeverity::Medium));
        assert_eq!(VulnSeverity::parse("7"), Some(VulnSeverity::High));
        assert_eq!(VulnSeverity::parse("9.0"), Some(VulnSeverity::Critical));
        assert_eq!(VulnSeverity::parse("10.1"), None);
        assert_eq!(VulnSeverity::parse("severe"), None);
        assert!(VulnSeverity::Unknown < VulnSeverity::Low);
    }

    #[test]
    fn sources_normalize_as_slsa_verifier_compares_them() {
        assert_eq!(normalize_source("git+https://github.com/o/r@refs/heads/main"), "github.com/o/r");
        assert_eq!(normalize_source("https://github.com/o/r.git"), "github.com/o/r");
        assert_eq!(normalize_source("github.com/o/r/"), "github.com/o/r");
        assert_eq!(normalize_source("git+ssh://git@github.com/o/r@refs/tags/v1"), "github.com/o/r");
        assert_eq!(uri_ref("git+https://github.com/o/r@refs/tags/v1.2.0"), Some("refs/tags/v1.2.0"));
        assert_eq!(uri_ref("git+ssh://git@github.com/o/r"), None);
    }

    #[test]
    fn predicate_types_and_aliases() {
        let r = one(json!({"predicateType": "slsaprovenance"}));
        assert_eq!(r.predicate_types(), [SLSA_V02, SLSA_V1]);
        assert!(r.matches_type(SLSA_V1) && !r.matches_type("https://slsa.dev/provenance/v0.1"));
        assert!(r.describe().contains("slsaprovenance (https://slsa.dev/provenance/v0.2 or"), "{}", r.describe());
        let sbom = one(json!({"predicateType": "cyclonedx"}));
        assert!(sbom.matches_type("https://cyclonedx.org/bom/v1.4") && sbom.matches_type(CYCLONEDX));
        assert!(!sbom.matches_type("https://cyclonedx.org/bomb"));
        assert!(sbom.predicate_types().is_empty(), "a family is asked for as every type");
        let vulns = one(json!({"predicateType": "https://in-toto.io/attestation/vulns"}));
        assert!(vulns.matches_type("https://in-toto.io/attestation/vulns/v0.2"));
        let exact = one(json!({"predicateType": "https://cyclonedx.org/bom/v1.4"}));
        assert_eq!(exact.predicate_types(), ["https://cyclonedx.org/bom/v1.4"]);
        assert!(!exact.matches_type("https://cyclonedx.org/bom/v1.5"));
        let all = parse(json!([{"predicateType": "vuln"}, {"predicateType": "slsaprovenance1"}])).unwrap();
        assert_eq!(all.predicate_types(), [COSIGN_VULN, SLSA_V1]);
        let with_family = parse(json!([{"predicateType": "vuln"}, {"predicateType": "spdx"}])).unwrap();
        assert!(with_family.predicate_types().is_empty());
        assert!(parse(json!(null)).unwrap().is_empty());
    }

    #[test]
    fn bad_requirements_name_their_field() {
        let cases = [
            (json!({}), "attestations"),
            (json!([{"provenance": {"builderId": "x"}}]), "attestations[0].predicateType"),
            (json!([{"predicateType": "slsaprovenence"}]), "attestations[0].predicateType"),
            (json!([{"predicateType": "vuln"}, {"predicateType": "vuln", "vulnz": {}}]), "attestations[1].vulnz"),
            (
                json!([{"predicateType": "slsaprovenance", "provenance": {"builderID": "x"}}]),
                "attestations[0].provenance.builderID",
            ),
            (
                json!([{"predicateType": "slsaprovenance", "provenance": {"builderIdRegExp": "a("}}]),
                "attestations[0].provenance.builderIdRegExp",
            ),
            (
                json!([{"predicateType": "slsaprovenance", "provenance": {"builderId": "a", "builderIdRegExp": "a"}}]),
                "attestations[0].provenance.builderId",
            ),
            (json!([{"predicateType": "slsaprovenance", "provenance": {}}]), "attestations[0].provenance"),
            (
                json!([{"predicateType": "slsaprovenance", "provenance": {"gitRefRegExp": "a)|(b"}}]),
                "attestations[0].provenance.gitRefRegExp",
            ),
            (json!([{"predicateType": "vuln", "provenance": {"builderId": "x"}}]), "attestations[0].provenance"),
            (json!([{"predicateType": "cyclonedx", "sbom": {}}]), "attestations[0].sbom.deniedLicenses"),
            (json!([{"predicateType": "slsaprovenance", "sbom": {"deniedLicenses": ["x"]}}]), "attestations[0].sbom"),
            (
                json!([{"predicateType": "a:b"}, {"predicateType": "a:b"}, {"predicateType": "vuln", "vulnerabilities": {"maxSeverity": "severe"}}]),
                "attestations[2].vulnerabilities.maxSeverity",
            ),
            (
                json!([{"predicateType": "vuln", "vulnerabilities": {"maxAge": "7 days"}}]),
                "attestations[0].vulnerabilities.maxAge",
            ),
            (
                json!([{"predicateType": "vuln", "vulnerabilities": {"maxAge": 7}}]),
                "attestations[0].vulnerabilities.maxAge",
            ),
            (json!([{"predicateType": "vuln", "vulnerabilities": {}}]), "attestations[0].vulnerabilities"),
            (
                json!([{"predicateType": "vuln", "vulnerabilities": {"maxSeverity": "high", "allow": [{"id": "CVE-1"}]}}]),
                "attestations[0].vulnerabilities.allow[0].reason",
            ),
            (
                json!([{"predicateType": "vuln", "vulnerabilities": {"maxSeverity": "high", "allow": [{"id": "CVE-1", "reason": " "}]}}]),
                "attestations[0].vulnerabilities.allow[0].reason",
            ),
            (
                json!([{"predicateType": "vuln", "vulnerabilities": {"maxSeverity": "high", "allow": [{"id": "CVE-1", "reason": "r", "expires": "next year"}]}}]),
                "attestations[0].vulnerabilities.allow[0].expires",
            ),
            (
                json!([{"predicateType": "vuln", "vulnerabilities": {"maxAge": "1d", "allow": [{"id": "CVE-1", "reason": "r"}]}}]),
                "attestations[0].vulnerabilities.allow",
            ),
            (
                json!([{"predicateType": "x:y", "conditions": [{"pointer": "/a", "equals": 1}, {"pointer": "build", "equals": 1}]}]),
                "attestations[0].conditions[1].pointer",
            ),
            (
                json!([{"predicateType": "x:y", "conditions": [{"pointer": "/a~2", "exists": true}]}]),
                "attestations[0].conditions[0].pointer",
            ),
            (
                json!([{"predicateType": "x:y", "conditions": [{"pointer": "/a", "regExp": "("}]}]),
                "attestations[0].conditions[0].regExp",
            ),
            (json!([{"predicateType": "x:y", "conditions": [{"pointer": "/a"}]}]), "attestations[0].conditions[0]"),
            (
                json!([{"predicateType": "x:y", "conditions": [{"pointer": "/a", "equals": 1, "exists": true}]}]),
                "attestations[0].conditions[0]",
            ),
            (
                json!([{"predicateType": "x:y", "conditions": [{"pointer": "/a", "matches": "x"}]}]),
                "attestations[0].conditions[0].matches",
            ),
        ];
        for (json, field) in cases {
            assert_eq!(field_of(json.clone()), field, "{json}");
        }
        let e = parse(json!([{"predicateType": "vuln", "vulnerabilities": {"maxSeverity": "severe"}}])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "attestations[0].vulnerabilities.maxSeverity: \"severe\" is not one of low, medium, high, critical"
        );
        // `equals: null` is a condition, not a missing one.
        one(json!({"predicateType": "x:y", "conditions": [{"pointer": "/a", "equals": null}]}));
    }

    // Trimmed from the slsa-github-generator container provenance in slsa-verifier's
    // testdata (gha_generic_container/v2.1.0/container_workflow_dispatch).
    fn slsa_v02() -> Value {
        json!({
            "builder": {"id": "https://github.com/slsa-framework/slsa-github-generator/.github/workflows/generator_container_slsa3.yml@refs/tags/v2.1.0"},
            "buildType": "https://github.com/slsa-framework/slsa-github-generator/container@v1",
            "invocation": {
                "configSource": {
                    "uri": "git+https://github.com/slsa-framework/example-package@refs/heads/main",
                    "digest": {"sha1": "4d329c75e7ec1725f7c9ce917a8799d408d06be3"},
                    "entryPoint": ".github/workflows/verifier-e2e.all.workflow_dispatch.main.all.slsa3.yml"
                },
                "environment": {"github_event_name": "workflow_dispatch", "github_ref": "refs/heads/main", "github_ref_type": "branch"}
            }
        })
    }

    // Trimmed from the GitHub artifact attestation of sigstore-js 2.1.0 (the gh CLI's testdata).
    fn slsa_v1() -> Value {
        json!({
            "buildDefinition": {
                "buildType": "https://slsa-framework.github.io/github-actions-buildtypes/workflow/v1",
                "externalParameters": {"workflow": {"ref": "refs/tags/v2.1.0", "repository": "https://github.com/sigstore/sigstore-js", "path": ".github/workflows/release.yml"}},
                "internalParameters": {"github": {"event_name": "push"}},
                "resolvedDependencies": [{"uri": "git+https://github.com/sigstore/sigstore-js@refs/tags/v2.1.0", "digest": {"gitCommit": "26d16513386ffaa790b1c32f927544f1322e4194"}}]
            },
            "runDetails": {"builder": {"id": "https://github.com/actions/runner/github-hosted"}, "metadata": {"invocationId": "https://github.com/sigstore/sigstore-js/actions/runs/6014488666/attempts/1"}}
        })
    }

    #[test]
    fn provenance_v02() {
        let generator =
            "https://github.com/slsa-framework/slsa-github-generator/.github/workflows/generator_container_slsa3.yml";
        let ok = one(json!({"predicateType": "slsaprovenance", "provenance": {
            "builderId": generator, "sourceRepository": "github.com/slsa-framework/example-package",
            "buildType": "https://github.com/slsa-framework/slsa-github-generator/container@v1",
            "gitRefRegExp": "refs/heads/main"}}));
        assert_eq!(ok.check_predicate(SLSA_V02, &slsa_v02(), 0), Ok(()));
        let pinned = one(
            json!({"predicateType": "slsaprovenance02", "provenance": {"builderId": format!("{generator}@refs/tags/v2.1.0")}}),
        );
        assert_eq!(pinned.check_predicate(SLSA_V02, &slsa_v02(), 0), Ok(()));
        let other_version = one(
            json!({"predicateType": "slsaprovenance02", "provenance": {"builderId": format!("{generator}@refs/tags/v1.9.0")}}),
        );
        let e = other_version.check_predicate(SLSA_V02, &slsa_v02(), 0).unwrap_err();
        assert!(e.starts_with("builder ") && e.contains("v1.9.0"), "{e}");
        let wrong = one(json!({"predicateType": "slsaprovenance", "provenance": {
            "builderIdRegExp": "https://github\\.com/acme/.*", "sourceRepository": "https://github.com/acme/example-package.git",
            "gitRefRegExp": "refs/tags/v.*"}}));
        let e = wrong.check_predicate(SLSA_V02, &slsa_v02(), 0).unwrap_err();
        assert!(e.contains("/https://github\\.com/acme/.*/"), "{e}");
        assert!(e.contains("source \"git+https://github.com/slsa-framework/example-package@refs/heads/main\""), "{e}");
        assert!(e.contains("git ref \"refs/heads/main\" does not match /refs/tags/v.*/"), "{e}");
        // The ref from configSource.uri when the environment does not name it (npm's v0.2 uses GITHUB_REF).
        let mut bare = slsa_v02();
        bare["invocation"]["environment"] = json!({});
        let heads = one(json!({"predicateType": "slsaprovenance", "provenance": {"gitRefRegExp": "refs/heads/.*"}}));
        assert_eq!(heads.check_predicate(SLSA_V02, &bare, 0), Ok(()));
        bare["invocation"] = json!({});
        let e = heads.check_predicate(SLSA_V02, &bare, 0).unwrap_err();
        assert_eq!(e, "provenance names no git ref, /refs/heads/.*/ wanted");
    }

    #[test]
    fn provenance_v1() {
        let r = one(json!({"predicateType": "slsaprovenance1", "provenance": {
            "builderId": "https://github.com/actions/runner/github-hosted",
            "sourceRepository": "github.com/sigstore/sigstore-js", "gitRefRegExp": "refs/tags/v[0-9.]+",
            "buildType": "https://slsa-framework.github.io/github-actions-buildtypes/workflow/v1"}}));
        assert_eq!(r.check_predicate(SLSA_V1, &slsa_v1(), 0), Ok(()));
        // Without externalParameters.workflow: resolvedDependencies[0].
        let mut p = slsa_v1();
        p["buildDefinition"]["externalParameters"] = json!({});
        assert_eq!(r.check_predicate(SLSA_V1, &p, 0), Ok(()));
        let fork = one(
            json!({"predicateType": "slsaprovenance", "provenance": {"sourceRepositoryRegExp": "github\\.com/acme/.*"}}),
        );
        let e = fork.check_predicate(SLSA_V1, &slsa_v1(), 0).unwrap_err();
        assert!(e.contains("source \"https://github.com/sigstore/sigstore-js\" is not /github\\.com/acme/.*/"), "{e}");
        let e = r.check_predicate(SLSA_V1, &json!("text"), 0).unwrap_err();
        assert!(e.contains("not an object"), "{e}");
    }

    #[test]
    fn one_matching_statement_suffices_and_failures_are_bounded() {
        let r = one(
            json!({"predicateType": "slsaprovenance", "provenance": {"sourceRepository": "github.com/sigstore/sigstore-js"}}),
        );
        let v02 = statement(SLSA_V02, slsa_v02());
        let v1 = statement(SLSA_V1, slsa_v1());
        assert_eq!(r.check(&[v02.clone(), v1.clone()], 0), Ok(()));
        assert_eq!(r.check(&[], 0), Err(Unmet::Missing));
        assert_eq!(r.check(&[statement("https://example.com/x", json!({}))], 0), Err(Unmet::Missing));
        let many = vec![v02.clone(); 5];
        let Err(Unmet::Failed { reasons, more }) = r.check(&many, 0) else { panic!() };
        assert_eq!((reasons.len(), more), (3, 2));
        let text = Unmet::Failed { reasons, more }.to_string();
        assert!(text.starts_with("none of 5 verified attestations satisfies it: [1] source"), "{text}");
        let Err(single) = r.check(&[v02], 0) else { panic!() };
        assert!(single.to_string().starts_with("source \"git+https://github.com/slsa-framework/"), "{single}");
        let mut broken = v1;
        broken.statement = "{".into();
        let Err(e) = r.check(&[broken], 0) else { panic!() };
        assert!(e.to_string().contains("not JSON"), "{e}");
    }

    fn cyclonedx() -> Value {
        json!({
            "bomFormat": "CycloneDX", "specVersion": "1.4", "version": 1,
            "metadata": {"component": {"type": "container", "name": "ghcr.io/acme/app"}},
            "components": [
                {"type": "library", "name": "serde", "version": "1.0.200", "licenses": [{"expression": "MIT OR Apache-2.0"}]},
                {"type": "library", "name": "mongo-driver", "version": "4.0", "licenses": [{"license": {"id": "Apache-2.0"}}],
                 "components": [{"type": "library", "name": "mongo-core", "version": "4.0", "licenses": [{"license": {"id": "SSPL-1.0"}}]}]},
                {"type": "library", "name": "left-pad", "licenses": [{"license": {"name": "WTFPL"}}]}
            ]
        })
    }

    fn spdx(licence: &str) -> Value {
        json!({
            "spdxVersion": "SPDX-2.3", "SPDXID": "SPDXRef-DOCUMENT", "name": "ghcr.io/acme/app",
            "packages": [
                {"SPDXID": "SPDXRef-Package-1", "name": "busybox", "versionInfo": "1.36.1-r2", "licenseConcluded": "NOASSERTION", "licenseDeclared": "GPL-2.0-only"},
                {"SPDXID": "SPDXRef-Package-2", "name": "agent", "versionInfo": "3.1", "licenseDeclared": licence}
            ]
        })
    }

    #[test]
    fn sbom_licences() {
        let r = one(json!({"predicateType": "cyclonedx", "sbom": {"deniedLicenses": ["sspl-1.0", "AGPL-3.0-only"]}}));
        let e = r.check_predicate("https://cyclonedx.org/bom/v1.4", &cyclonedx(), 0).unwrap_err();
        assert_eq!(e, "denied licences: SSPL-1.0 (mongo-core@4.0)");
        let ok = one(json!({"predicateType": "cyclonedx", "sbom": {"deniedLicenses": ["GPL-3.0-only"]}}));
        assert_eq!(ok.check_predicate(CYCLONEDX, &cyclonedx(), 0), Ok(()));
        // A CycloneDX BOM carried as a JSON string still reads.
        let as_text = Value::String(cyclonedx().to_string());
        assert!(r.check_predicate(CYCLONEDX, &as_text, 0).is_err());
        let e = r.check_predicate(CYCLONEDX, &json!({"Data": "x"}), 0).unwrap_err();
        assert!(e.contains("not a CycloneDX JSON BOM"), "{e}");

        let s = one(json!({"predicateType": "spdx", "sbom": {"deniedLicenses": ["AGPL-3.0-only"]}}));
        assert_eq!(s.check_predicate("https://spdx.dev/Document/v2.3", &spdx("MIT"), 0), Ok(()));
        let e = s.check_predicate(SPDX, &spdx("(MIT AND AGPL-3.0-only) OR LicenseRef-x"), 0).unwrap_err();
        assert_eq!(e, "denied licences: AGPL-3.0-only (agent@3.1)");
        // Tag-value: present, but a deny-list cannot be checked.
        let tag_value = json!("SPDXVersion: SPDX-2.3\nDataLicense: CC0-1.0\nPackageName: agent\n");
        let e = s.check_predicate(SPDX, &tag_value, 0).unwrap_err();
        assert!(e.contains("not JSON") && e.contains("cannot be checked"), "{e}");
        let presence = one(json!({"predicateType": "spdx"}));
        assert_eq!(presence.check(&[statement(SPDX, tag_value)], 0), Ok(()));
        let e = s.check_predicate(SPDX, &json!({"@context": "https://spdx.org/rdf/3.0.1/spdx-context.jsonld"}), 0);
        assert!(e.unwrap_err().contains("only SPDX 2 JSON"));
    }

    // 2021-08-13T17:50:50Z: a week after the scans below finished.
    const WEEK_LATER: i64 = 1_628_272_250 + 7 * 86_400;

    fn cosign_vuln(result: Value) -> Value {
        json!({
            "invocation": {"parameters": null, "uri": "", "event_id": "", "builder.id": ""},
            "scanner": {"uri": "pkg:github/aquasecurity/trivy@v0.50.1", "version": "0.50.1",
                        "db": {"uri": "", "version": ""}, "result": result},
            "metadata": {"scanStartedOn": "2021-08-06T17:45:50.52Z", "scanFinishedOn": "2021-08-06T17:50:50.52Z"}
        })
    }

    // Trivy's JSON report, shaped as cosign's vulnerability attestation specification shows it.
    fn trivy() -> Value {
        json!({
            "SchemaVersion": 2, "ArtifactName": "alpine:3.12", "ArtifactType": "container_image",
            "Results": [
                {"Target": "alpine:3.12 (alpine 3.12.9)", "Class": "os-pkgs", "Type": "alpine", "Vulnerabilities": [
                    {"VulnerabilityID": "CVE-2021-28831", "PkgName": "busybox", "InstalledVersion": "1.31.1-r21", "FixedVersion": "1.32.1-r4", "Severity": "HIGH"},
                    {"VulnerabilityID": "CVE-2021-28831", "PkgName": "ssl_client", "InstalledVersion": "1.31.1-r21", "FixedVersion": "1.32.1-r4", "Severity": "HIGH"},
                    {"VulnerabilityID": "CVE-2021-36159", "PkgName": "apk-tools", "InstalledVersion": "2.10.6-r0", "FixedVersion": "2.10.7-r0", "Severity": "CRITICAL"}
                ]},
                {"Target": "app", "Class": "lang-pkgs", "Type": "gobinary", "Vulnerabilities": null}
            ]
        })
    }

    fn grype() -> Value {
        json!({
            "matches": [
                {"vulnerability": {"id": "CVE-2023-44487", "dataSource": "https://nvd.nist.gov/vuln/detail/CVE-2023-44487", "severity": "High"},
                 "artifact": {"name": "golang.org/x/net", "version": "v0.8.0", "type": "go-module"}},
                {"vulnerability": {"id": "CVE-2022-48174", "severity": "Negligible"}, "artifact": {"name": "busybox"}}
            ],
            "source": {"type": "image"}, "distro": {"name": "alpine"}, "descriptor": {"name": "grype", "version": "0.74.0"}
        })
    }

    #[test]
    fn cosign_vuln_scans() {
        let r = one(json!({"predicateType": "vuln", "vulnerabilities": {"maxAge": "168h", "maxSeverity": "critical"}}));
        let e = r.check_predicate(COSIGN_VULN, &cosign_vuln(trivy()), WEEK_LATER).unwrap_err();
        assert_eq!(e, "1 vulnerability at or above critical: CVE-2021-36159 (critical)");
        let high = one(json!({"predicateType": "vuln", "vulnerabilities": {"maxSeverity": "HIGH", "allow": [
            {"id": "CVE-2021-36159", "reason": "apk is not in the runtime image"},
            {"id": "cve-2021-28831", "reason": "no gzip input", "expires": "2021-08-12"}]}}));
        // The date allows through its day, UTC (2021-08-13T00:00:00Z is 1_628_812_800).
        assert_eq!(high.check_predicate(COSIGN_VULN, &cosign_vuln(trivy()), 1_628_812_799), Ok(()));
        let e = high.check_predicate(COSIGN_VULN, &cosign_vuln(trivy()), 1_628_812_800).unwrap_err();
        assert_eq!(e, "1 vulnerability at or above high: CVE-2021-28831 (high; its allowance expired 2021-08-12)");
        // Too old by a second.
        let e = r.check_predicate(COSIGN_VULN, &cosign_vuln(Value::Null), WEEK_LATER + 1).unwrap_err();
        assert_eq!(e, "the scan finished 7d 0h ago (2021-08-06T17:50:50.52Z), longer than maxAge 168h");
        assert_eq!(r.check_predicate(COSIGN_VULN, &cosign_vuln(Value::Null), WEEK_LATER), Ok(()));
        // In the future: 5 minutes of skew pass, more do not.
        let finished = 1_628_272_250;
        assert_eq!(r.check_predicate(COSIGN_VULN, &cosign_vuln(Value::Null), finished - 300), Ok(()));
        let e = r.check_predicate(COSIGN_VULN, &cosign_vuln(Value::Null), finished - 301).unwrap_err();
        assert!(e.contains("in the future"), "{e}");
        // Grype.
        let medium = one(json!({"predicateType": "vuln", "vulnerabilities": {"maxSeverity": "medium"}}));
        let e = medium.check_predicate(COSIGN_VULN, &cosign_vuln(grype()), 0).unwrap_err();
        assert_eq!(e, "1 vulnerability at or above medium: CVE-2023-44487 (high)");
        // Something else.
        let e = medium.check_predicate(COSIGN_VULN, &cosign_vuln(json!({"runs": []})), 0).unwrap_err();
        assert!(e.starts_with("cannot read the scanner result: neither Trivy JSON"), "{e}");
        let e = medium.check_predicate(COSIGN_VULN, &json!({"metadata": {}}), 0).unwrap_err();
        assert_eq!(e, "cannot read the scanner result: the predicate has no scanner");
        // The specification's text shows a `scanners` list: every scanner's findings count.
        let two = json!({"scanners": [{"uri": "trivy", "result": null}, {"uri": "grype", "result": grype()}]});
        let e = medium.check_predicate(COSIGN_VULN, &two, 0).unwrap_err();
        assert_eq!(e, "1 vulnerability at or above medium: CVE-2023-44487 (high)");
    }

    #[test]
    fn cosign_vuln_from_the_corpus() {
        // cosign's pkg/policy/testdata/valid/vuln: an empty scan at Go's zero time.
        let predicate = json!({
            "invocation": {"parameters": null, "uri": "", "event_id": "", "builder.id": ""},
            "scanner": {"uri": "", "version": "", "db": {"uri": "", "version": ""}, "result": null},
            "metadata": {"scanStartedOn": "0001-01-01T00:00:00Z", "scanFinishedOn": "0001-01-01T00:00:00Z"}
        });
        let severity = one(json!({"predicateType": "vuln", "vulnerabilities": {"maxSeverity": "low"}}));
        assert_eq!(severity.check_predicate(COSIGN_VULN, &predicate, WEEK_LATER), Ok(()));
        let fresh = one(json!({"predicateType": "vuln", "vulnerabilities": {"maxAge": "30d"}}));
        let e = fresh.check_predicate(COSIGN_VULN, &predicate, WEEK_LATER).unwrap_err();
        assert!(e.contains("longer than maxAge 30d"), "{e}");
    }

    #[test]
    fn in_toto_vuln_scans() {
        let v02 = json!({
            "scanner": {"uri": "pkg:github/aquasecurity/trivy@244fd47e07d1004f0aed9", "version": "0.19.2",
                "db": {"uri": "pkg:github/aquasecurity/trivy-db/commit/4c76bb580b2736d67751410fa4ab66d2b6b9b27d", "version": "v1-2021080612", "lastUpdate": "2021-08-06T17:45:50.52Z"},
                "result": [
                    {"id": "CVE-123", "severity": [{"method": "nvd", "score": "medium"}, {"method": "cvss_score", "score": "9.1"}]},
                    {"id": "GHSA-fxph-q3j8-mv87", "severity": [{"method": "nvd", "score": "low"}]}
                ]},
            "metadata": {"scanStartedOn": "2021-08-06T17:45:50.52Z", "scanFinishedOn": "2021-08-06T17:50:50.52Z"}
        });
        let r = one(
            json!({"predicateType": "https://in-toto.io/attestation/vulns", "vulnerabilities": {"maxSeverity": "critical", "maxAge": "7d"}}),
        );
        let t = "https://in-toto.io/attestation/vulns/v0.2";
        let e = r.check_predicate(t, &v02, WEEK_LATER).unwrap_err();
        assert_eq!(e, "1 vulnerability at or above critical: CVE-123 (critical)");
        // v0.1's schema nests each finding under `vulnerability`.
        let mut v01 = v02.clone();
        v01["scanner"]["result"] =
            json!([{"vulnerability": {"id": "CVE-9", "severity": [{"method": "cvss_score", "score": 9.8}]}}]);
        let e = r.check_predicate("https://in-toto.io/attestation/vulns/v0.1", &v01, WEEK_LATER).unwrap_err();
        assert_eq!(e, "1 vulnerability at or above critical: CVE-9 (critical)");
        v01["scanner"]["result"] = json!([]);
        assert_eq!(r.check_predicate("https://in-toto.io/attestation/vulns/v0.1", &v01, WEEK_LATER), Ok(()));
        v01["scanner"]["result"] = json!({"matches": []});
        let e = r.check_predicate("https://in-toto.io/attestation/vulns/v0.1", &v01, WEEK_LATER).unwrap_err();
        assert!(e.contains("cannot read the scanner result: result is an object, not a list"), "{e}");
    }

    #[test]
    fn custom_conditions() {
        let r = one(json!({"predicateType": "https://example.com/custom/v1", "conditions": [
            {"pointer": "/build/tested", "equals": true},
            {"pointer": "/pipeline/name", "regExp": "release-.*"},
            {"pointer": "/skipped", "exists": false}]}));
        assert_eq!(r.predicate_types(), ["https://example.com/custom/v1"]);
        let good = json!({"build": {"tested": true}, "pipeline": {"name": "release-7"}});
        assert_eq!(r.check_predicate("https://example.com/custom/v1", &good, 0), Ok(()));
        let bad = json!({"build": {"tested": "yes"}, "pipeline": {"name": "nightly release-7"}, "skipped": []});
        let e = r.check_predicate("https://example.com/custom/v1", &bad, 0).unwrap_err();
        assert_eq!(
            e,
            "/build/tested is \"yes\", not true; /pipeline/name \"nightly release-7\" does not match /release-.*/; \
             /skipped is present"
        );
        let e = r.check_predicate("https://example.com/custom/v1", &json!({}), 0).unwrap_err();
        assert!(e.starts_with("/build/tested is missing; /pipeline/name is missing"), "{e}");
        // Alternation is anchored as a whole.
        let alt = one(json!({"predicateType": "x:y", "conditions": [{"pointer": "/a", "regExp": "b|c"}]}));
        assert!(alt.check_predicate("x:y", &json!({"a": "cd"}), 0).is_err());
        assert!(alt.check_predicate("x:y", &json!({"a": "c"}), 0).is_ok());
        // Conditions apply next to a block, too.
        let entry = one(json!({"predicateType": "slsaprovenance", "conditions": [
            {"pointer": "/invocation/configSource/entryPoint", "regExp": "\\.github/workflows/release\\.yml"}]}));
        let e = entry.check_predicate(SLSA_V02, &slsa_v02(), 0).unwrap_err();
        assert!(e.starts_with("/invocation/configSource/entryPoint \".github/workflows/verifier-e2e"), "{e}");
    }
}
