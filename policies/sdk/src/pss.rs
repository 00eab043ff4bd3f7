//! What the Pod Security Standards rules share: the level and version they are
//! evaluated at, and the message helpers of the upstream admission library.
//!
//! Source of truth: `k8s.io/pod-security-admission` (`policy/registry.go`,
//! `policy/helpers.go`, `api/helpers.go`). A check has versions, each with a
//! minimum policy version; evaluating at version V runs the newest check
//! version whose minimum is at most V. `latest` is the newest of all.
//!
//! Container-level controls visit init, regular and ephemeral containers, as
//! upstream's `visitContainers` (`policy/visitor.go`) does, through
//! [`crate::Workload::containers`]; fields the API forbids on ephemeral
//! containers (ports, probes, lifecycle) are still read there, as upstream
//! reads them.

use serde::Deserialize;

/// A Pod Security Standards policy version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Version {
    /// `v1.<minor>`.
    V1(u32),
    /// `latest`: newer than every numbered version.
    Latest,
}

impl Version {
    /// Parse `latest` or `v1.N` (as Kubernetes' `api.ParseVersion` does).
    pub fn parse(text: &str) -> Result<Version, String> {
        if text == "latest" {
            return Ok(Version::Latest);
        }
        let minor = text
            .strip_prefix("v1.")
            .filter(|m| !m.is_empty() && m.bytes().all(|b| b.is_ascii_digit()) && m.len() <= 4)
            .and_then(|m| m.parse::<u32>().ok())
            .ok_or_else(|| {
                format!("{text:?} is not a Pod Security Standards version (latest, or v1.N such as v1.30)")
            })?;
        Ok(Version::V1(minor))
    }

    /// True when a check version with minimum `v1.<minor>` applies at this version.
    pub fn at_least(self, minor: u32) -> bool {
        match self {
            Version::Latest => true,
            Version::V1(m) => m >= minor,
        }
    }
}

/// The policy version from which upstream relaxes checks for pods in a user
/// namespace: `runAsNonRoot` and `runAsUser` (restricted) and the baseline
/// `procMount` check each gained a 1.35 version that allows such a pod
/// (`policy/check_runAsNonRoot.go`, `check_runAsUser.go`,
/// `check_procMount_baseline.go`). Before 1.35 the relaxation hung on the
/// alpha, off-by-default `UserNamespacesPodSecurityStandards` feature gate,
/// which Kubernetes 1.35 removed: earlier policy versions are evaluated
/// without it, as that gate's default left them.
pub const USER_NAMESPACE_RELAXATION: u32 = 35;

/// Upstream's `relaxPolicyForUserNamespacePod` (`policy/helpers.go`): the pod
/// sets `spec.hostUsers: false`, so it runs in a user namespace. Unset means
/// the host's user namespace.
pub fn in_user_namespace(w: &crate::Workload) -> bool {
    w.spec.host_users == Some(false)
}

/// The Pod Security Standards level a rule is evaluated at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    #[default]
    Baseline,
    Restricted,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSettings {
    #[serde(default = "latest")]
    version: String,
    #[serde(default)]
    level: Level,
}

fn latest() -> String {
    "latest".into()
}

/// The settings every Pod Security Standards rule takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    pub version: Version,
    pub level: Level,
}

impl Settings {
    /// Whether upstream's user-namespace relaxation applies to `w` at this
    /// version: from policy version 1.35, a pod with `spec.hostUsers: false`.
    pub fn relaxes_user_namespace(&self, w: &crate::Workload) -> bool {
        self.version.at_least(USER_NAMESPACE_RELAXATION) && in_user_namespace(w)
    }
}

impl<'de> Deserialize<'de> for Settings {
    fn deserialize<D: serde::Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        let raw = RawSettings::deserialize(de)?;
        let version = Version::parse(&raw.version)
            .map_err(|e| serde::de::Error::custom(format!("invalid value for `version`: {e}")))?;
        Ok(Settings { version, level: raw.level })
    }
}

/// JSON Schema of [`Settings`].
pub const SETTINGS_SCHEMA: &str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "additionalProperties": false,
  "properties": {
    "version": {
      "description": "Pod Security Standards version to evaluate: latest, or v1.0 to v1.37 (a newer v1.N is evaluated as latest).",
      "type": "string",
      "pattern": "^(latest|v1\\.[0-9]+)$",
      "default": "latest"
    },
    "level": {
      "description": "Level the control is evaluated at. Set by the built-in profiles: restricted-level checks that supersede a baseline check take over from it.",
      "enum": ["baseline", "restricted"],
      "default": "baseline"
    }
  }
}"#;

/// The profiles every baseline control belongs to, with the level each evaluates it at.
pub const BASELINE_PROFILES: &[(&str, &str)] = &[
    ("baseline", r#"{"level":"baseline"}"#),
    ("restricted", r#"{"level":"restricted"}"#),
    ("hardened", r#"{"level":"restricted"}"#),
];

/// The profiles every restricted control belongs to.
pub const RESTRICTED_PROFILES: &[(&str, &str)] =
    &[("restricted", r#"{"level":"restricted"}"#), ("hardened", r#"{"level":"restricted"}"#)];

/// Upstream's `joinQuote`: `"a", "b"`.
pub fn join_quote<S: AsRef<str>>(items: &[S]) -> String {
    if items.is_empty() {
        return String::new();
    }
    let inner: Vec<&str> = items.iter().map(|s| s.as_ref()).collect();
    format!("\"{}\"", inner.join("\", \""))
}

/// Upstream's `pluralize`.
pub fn pluralize<'a>(singular: &'a str, plural: &'a str, count: usize) -> &'a str {
    if count == 1 { singular } else { plural }
}

/// The subject of a message about one container's setting: `container "app"`,
/// as upstream names it. Messages about a pod-level setting say `the pod`.
pub fn container_label(name: &str) -> String {
    format!("container {}", join_quote(&[name]))
}

/// One Pod Security Standards control: its documentation and its check.
pub trait Control: 'static {
    /// The parts of the workload `check` reads, as [`crate::PodRule::READS`].
    const READS: crate::Fields = crate::Fields::ALL;

    fn metadata() -> crate::Metadata;
    fn check(settings: &Settings, workload: &crate::Workload) -> Vec<crate::Violation>;
}

/// A [`Control`] as a [`crate::PodRule`], configured with [`Settings`].
pub struct PssRule<C> {
    settings: Settings,
    control: std::marker::PhantomData<C>,
}

impl<C: Control> crate::PodRule for PssRule<C> {
    type Settings = Settings;

    const READS: crate::Fields = C::READS;

    fn metadata() -> crate::Metadata {
        C::metadata()
    }

    fn configure(settings: Settings) -> Result<Self, crate::SettingsError> {
        Ok(PssRule { settings, control: std::marker::PhantomData })
    }

    fn check(&self, workload: &crate::Workload, _context: &crate::Context) -> Vec<crate::Violation> {
        C::check(&self.settings, workload)
    }
}

/// The Pod Security Standards page every control references.
pub const STANDARD_URL: &str = "https://kubernetes.io/docs/concepts/security/pod-security-standards/";

/// Metadata shared by every control; `level` is the level the control belongs to.
#[allow(clippy::too_many_arguments)]
pub const fn metadata(
    id: &'static str,
    title: &'static str,
    description: &'static str,
    rationale: &'static str,
    remediation: &'static str,
    severity: crate::Severity,
    level: Level,
    references: &'static [&'static str],
) -> crate::Metadata {
    crate::Metadata {
        id,
        title,
        description,
        rationale,
        remediation,
        severity,
        category: "pod-security",
        applies_to: &crate::POD_KINDS,
        reads_kinds: &[],
        settings_schema: SETTINGS_SCHEMA,
        references,
        profiles: match level {
            Level::Baseline => BASELINE_PROFILES,
            Level::Restricted => RESTRICTED_PROFILES,
        },
    }
}

/// Run a control natively on a JSON object, for unit tests.
/// Natively it also checks the control's `READS`, as `check_reads` does.
pub fn check_json<C: Control>(json: &str, version: &str, level: Level) -> Vec<crate::Violation> {
    let workload = crate::Workload::from_json_reading(json, C::READS)
        .expect("test object is readable")
        .expect("test object is a workload");
    let settings = Settings { version: Version::parse(version).expect("test version is valid"), level };
    let violations = C::check(&settings, &workload);
    #[cfg(not(target_arch = "wasm32"))]
    {
        crate::check_reads(C::metadata().id, C::READS, json, &violations, |w| {
            w.map(|w| C::check(&settings, w)).unwrap_or_default()
        });
        crate::fields::check_input(C::metadata().id, C::READS, json, |pruned| {
            crate::Workload::from_json_reading(pruned, C::READS).map(|w| w.map(|w| C::check(&settings, &w)))
        });
    }
    violations
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_and_order() {
        assert_eq!(Version::parse("latest"), Ok(Version::Latest));
        assert_eq!(Version::parse("v1.0"), Ok(Version::V1(0)));
        assert_eq!(Version::parse("v1.37"), Ok(Version::V1(37)));
        for bad in ["", "1.2", "v2.0", "v1.", "v1.x", "v1.-1", "LATEST"] {
            assert!(Version::parse(bad).is_err(), "{bad}");
        }
        assert!(Version::Latest > Version::V1(99));
        assert!(Version::V1(25).at_least(25));
        assert!(!Version::V1(24).at_least(25));
        assert!(Version::Latest.at_least(1000));
    }

    fn parse(json: &str) -> Result<Settings, crate::SettingsError> {
        crate::parse_settings::<Settings>(json)
    }

    #[test]
    fn settings_default_and_errors_name_the_field() {
        let s = parse("{}").unwrap();
        assert_eq!(s.version, Version::Latest);
        assert_eq!(s.level, Level::Baseline);
        let s = parse(r#"{"version":"v1.25","level":"restricted"}"#).unwrap();
        assert_eq!(s.version, Version::V1(25));
        assert_eq!(s.level, Level::Restricted);
        let e = parse(r#"{"version":"1.25"}"#).unwrap_err();
        assert_eq!(e.field, "/version");
        let e = parse(r#"{"versoin":"v1.25"}"#).unwrap_err();
        assert_eq!(e.field, "/versoin");
        let e = parse(r#"{"level":"privileged"}"#).unwrap_err();
        assert!(e.message.contains("privileged"), "{e:?}");
        assert!(parse("[]").is_err());
    }

    #[test]
    fn user_namespace_relaxation_needs_host_users_false_and_1_35() {
        let pod = |host_users: &str| {
            let json = format!(r#"{{"kind":"Pod","spec":{{{host_users}"containers":[{{"name":"a"}}]}}}}"#);
            crate::Workload::from_json(&json).unwrap().unwrap()
        };
        let at = |version: &str| Settings { version: Version::parse(version).unwrap(), level: Level::Restricted };
        let userns = pod(r#""hostUsers":false,"#);
        assert!(in_user_namespace(&userns));
        assert!(at("v1.35").relaxes_user_namespace(&userns));
        assert!(at("latest").relaxes_user_namespace(&userns));
        assert!(!at("v1.34").relaxes_user_namespace(&userns));
        for other in [pod(r#""hostUsers":true,"#), pod(""), pod(r#""hostUsers":null,"#)] {
            assert!(!in_user_namespace(&other));
            assert!(!at("latest").relaxes_user_namespace(&other));
        }
    }

    #[test]
    fn join_quote_matches_upstream() {
        assert_eq!(join_quote::<&str>(&[]), "");
        assert_eq!(join_quote(&["a"]), "\"a\"");
        assert_eq!(join_quote(&["a", "b"]), "\"a\", \"b\"");
    }
}
