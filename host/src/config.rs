//! The configuration file: which profile, which rules, their severities and settings.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use crate::documents::{Limits, read_documents};
use crate::severity::Severity;

/// `palisade check --config FILE`. Every key is optional; unknown keys are errors.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Config {
    /// `baseline`, `restricted` or `hardened`.
    pub profile: Option<String>,
    /// Pod Security Standards version: `latest` or `v1.N`.
    pub pss_version: Option<String>,
    /// Lowest severity that fails the run.
    pub fail_on: Option<Severity>,
    /// Rule ids not to run.
    #[serde(default)]
    pub disable: Vec<String>,
    /// Severity overrides by rule id.
    #[serde(default)]
    pub severity: BTreeMap<String, Severity>,
    /// Settings by rule id (each a mapping, merged over the profile's).
    #[serde(default)]
    pub settings: BTreeMap<String, Value>,
    /// Findings not to count, each with its reason and optional expiry.
    #[serde(default)]
    pub exceptions: Vec<crate::exceptions::Exception>,
    /// How `palisade serve` acts on findings.
    #[serde(default)]
    pub admission: Admission,
    /// Signatures policies must carry before anything of them runs.
    #[serde(default)]
    pub verify: Verify,
    /// Signatures workload images must carry (the `image-signature` rule).
    pub image_verification: Option<crate::images::policy::ImageVerificationConfig>,
    /// The configuration file's directory: relative paths in it are read from there.
    #[serde(skip)]
    pub base_dir: std::path::PathBuf,
}

/// `verify: {keys: [cosign.pub, ...]}`: with any key set, policies load only
/// from a bundle signed by one of them; relative paths are read from the
/// configuration file's directory.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Verify {
    #[serde(default)]
    pub keys: Vec<std::path::PathBuf>,
}

/// What an admission finding does, as Pod Security admission's enforce/warn/audit
/// and Gatekeeper's enforcementAction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Deny the request.
    #[default]
    Enforce,
    /// Allow it, with a warning to the client.
    Warn,
    /// Allow it; only logs and metrics record the finding.
    Audit,
}

/// What a policy failure (trap, timeout, error) does to the decision.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FailurePolicy {
    /// Deny (fail closed).
    #[default]
    Fail,
    /// Allow, and record the failure.
    Ignore,
}

/// `admission:` in the configuration file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Admission {
    /// The mode of every rule without its own.
    #[serde(default)]
    pub mode: Mode,
    /// In enforce mode, findings of a lower severity warn instead of denying
    /// (default `high`: what Pod Security's high and critical controls deny
    /// is denied, the rest is a warning; `info` denies on every finding).
    /// A rule's own `mode` is not affected.
    pub enforce_from: Option<Severity>,
    /// Per rule: `mode` and `failurePolicy`.
    #[serde(default)]
    pub rules: BTreeMap<String, RuleAdmission>,
    #[serde(default)]
    pub exemptions: Exemptions,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RuleAdmission {
    pub mode: Option<Mode>,
    pub failure_policy: Option<FailurePolicy>,
}

/// Requests admitted without evaluation, as Pod Security admission's exemptions.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Exemptions {
    #[serde(default)]
    pub namespaces: Vec<String>,
    #[serde(default)]
    pub usernames: Vec<String>,
}

impl Admission {
    /// `enforceFrom`, `high` unless set.
    pub fn enforce_from(&self) -> Severity {
        self.enforce_from.unwrap_or(Severity::High)
    }

    /// What a finding of `rule`, at `severity`, does: the rule's own mode if
    /// it has one; else `admission.mode`, where enforce warns below `enforceFrom`.
    pub fn mode(&self, rule: &str, severity: Severity) -> Mode {
        match self.rules.get(rule).and_then(|r| r.mode) {
            Some(mode) => mode,
            None if self.mode == Mode::Enforce && severity < self.enforce_from() => Mode::Warn,
            None => self.mode,
        }
    }

    pub fn failure_policy(&self, rule: &str) -> FailurePolicy {
        self.rules.get(rule).and_then(|r| r.failure_policy).unwrap_or_default()
    }
}

impl Config {
    pub fn load(path: &Path) -> anyhow::Result<Config> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("{}: cannot read the configuration: {e}", path.display()))?;
        let mut config = Config::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        config.base_dir = base.to_path_buf();
        for key in &mut config.verify.keys {
            if key.is_relative() {
                *key = base.join(&*key);
            }
        }
        Ok(config)
    }

    pub fn parse(text: &str) -> Result<Config, String> {
        let mut docs = read_documents(text, &Limits::default());
        if docs.len() > 1 {
            return Err("the configuration must be a single YAML document".into());
        }
        let Some(doc) = docs.pop() else {
            return Ok(Config::default());
        };
        let parsed = doc.content.map_err(|e| format!("line {}: {}", e.line, e.message))?;
        let config: Config = serde_path_to_error::deserialize(&parsed.value).map_err(|e| {
            let path = e.path().to_string();
            let at = if path.is_empty() || path == "." { String::new() } else { format!("{path}: ") };
            format!("invalid configuration: {at}{}", crate::suggest::unknown_field(&e.inner().to_string()))
        })?;
        for (rule, settings) in &config.settings {
            if !settings.is_object() {
                return Err(format!("invalid configuration: settings.{rule} must be a mapping"));
            }
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_named() {
        let e = Config::parse("profile: baseline\nfailOn: high\nprofil: x\n").unwrap_err();
        assert!(e.contains("`profil`"), "{e}");
        let e = Config::parse("failOn: severe\n").unwrap_err();
        assert!(e.contains("severe"), "{e}");
        let e = Config::parse("settings:\n  pss-sysctls: 3\n").unwrap_err();
        assert!(e.contains("settings.pss-sysctls"), "{e}");
    }

    #[test]
    fn admission_enforces_from_a_severity() {
        let a = Config::parse("admission: {}\n").unwrap().admission;
        assert_eq!(a.enforce_from(), Severity::High);
        assert_eq!(a.mode("image-digest", Severity::Low), Mode::Warn);
        assert_eq!(a.mode("pss-host-ports", Severity::Medium), Mode::Warn);
        assert_eq!(a.mode("pss-privileged", Severity::Critical), Mode::Enforce);
        assert_eq!(a.mode("pss-run-as-non-root", Severity::High), Mode::Enforce);

        let a = Config::parse("admission:\n  enforceFrom: info\n  rules:\n    pss-privileged: {mode: audit}\n")
            .unwrap()
            .admission;
        assert_eq!(a.mode("image-digest", Severity::Info), Mode::Enforce);
        // A rule's own mode stands, whatever its severity.
        assert_eq!(a.mode("pss-privileged", Severity::Critical), Mode::Audit);
        let a = Config::parse("admission:\n  rules:\n    image-digest: {mode: enforce}\n").unwrap().admission;
        assert_eq!(a.mode("image-digest", Severity::Low), Mode::Enforce);
        // Warn and audit are not made harsher or softer by the threshold.
        let a = Config::parse("admission: {mode: audit, enforceFrom: low}\n").unwrap().admission;
        assert_eq!(a.mode("image-digest", Severity::Low), Mode::Audit);
        assert_eq!(a.mode("pss-privileged", Severity::Critical), Mode::Audit);

        let e = Config::parse("admission:\n  enforceFrom: severe\n").unwrap_err();
        assert!(e.contains("admission.enforceFrom") && e.contains("severe"), "{e}");
        assert!(e.contains("info") && e.contains("critical"), "the error lists the severities: {e}");
    }

    #[test]
    fn a_full_configuration() {
        let c = Config::parse(
            "profile: restricted\npssVersion: v1.30\nfailOn: medium\ndisable: [pss-apparmor]\nseverity: {pss-host-ports: low}\nsettings:\n  pss-sysctls: {version: v1.27}\n",
        )
        .unwrap();
        assert_eq!(c.profile.as_deref(), Some("restricted"));
        assert_eq!(c.fail_on, Some(Severity::Medium));
        assert_eq!(c.severity["pss-host-ports"], Severity::Low);
        assert_eq!(c.disable, ["pss-apparmor"]);
    }
}
