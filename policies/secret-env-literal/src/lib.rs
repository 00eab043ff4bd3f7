//! No environment variable with a sensitive-looking name carries a literal value.
//!
//! Source: `EnvVar.value` versus `EnvVar.valueFrom.secretKeyRef` in
//! `k8s.io/api/core/v1`; the Kubernetes guidance on Secrets
//! (<https://kubernetes.io/docs/concepts/security/secrets-good-practices/>).
//! Names are compared case-insensitively with `_`, `-` and `.` removed, so
//! `DB_PASSWORD`, `db-password` and `dbPassword` all contain `password`.
//! Whatever its name, a value holding a PEM private key (`PRIVATE KEY`
//! after `BEGIN`, as in Polaris' `sensitiveContainerEnvVar`) is reported.

use palisade_sdk::{Context, HARDENED, Metadata, PodRule, SettingsError, Severity, Violation, Workload};
use serde::Deserialize;

const DEFAULT_PATTERNS: [&str; 7] = ["password", "passwd", "secret", "token", "apikey", "privatekey", "credential"];

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Replaces the default patterns.
    pub patterns: Option<Vec<String>>,
    /// Variable names (exact) that may carry a literal, e.g. `TOKEN_TTL`.
    #[serde(default)]
    pub allow: Vec<String>,
}

pub struct SecretEnvLiteral {
    patterns: Vec<String>,
    allow: Vec<String>,
}

fn normalise(name: &str) -> String {
    name.chars().filter(|c| !matches!(c, '_' | '-' | '.')).flat_map(char::to_lowercase).collect()
}

/// A PEM-style private key: `-----BEGIN RSA PRIVATE KEY-----` and the like.
fn looks_like_private_key(value: &str) -> bool {
    value.match_indices("PRIVATE KEY").any(|(i, _)| {
        value[..i]
            .rfind("BEGIN ")
            .is_some_and(|b| value[b + 6..i].chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == ' '))
    })
}

impl SecretEnvLiteral {
    fn sensitive(&self, name: &str) -> Option<&str> {
        if self.allow.iter().any(|a| a == name) {
            return None;
        }
        let n = normalise(name);
        self.patterns.iter().find(|p| n.contains(p.as_str())).map(String::as_str)
    }
}

impl PodRule for SecretEnvLiteral {
    type Settings = Settings;

    fn metadata() -> Metadata {
        Metadata {
            id: "secret-env-literal",
            title: "Secrets must not be written as literal environment values",
            description: "Fails a pod with a container environment variable whose name looks sensitive \
                          (password, passwd, secret, token, api key, private key, credential, or the \
                          configured patterns) and that carries a literal, non-empty `value`.",
            rationale: "A literal value lives in the manifest, the Git history, the rendered chart, the \
                        object in etcd and every `kubectl get -o yaml`: it is readable by anyone who can \
                        read the workload, not only by those who can read Secrets.",
            remediation: "Store the value in a Secret (or an external secret store) and reference it with \
                          valueFrom.secretKeyRef, or mount it as a file.",
            severity: Severity::High,
            category: "Secrets",
            applies_to: &palisade_sdk::POD_KINDS,
            reads_kinds: &[],
            settings_schema: r#"{"type":"object","additionalProperties":false,"properties":{
                "patterns":{"type":"array","items":{"type":"string","minLength":1},
                  "description":"Substrings of variable names that mark them sensitive, compared case-insensitively without _ - and . (replaces the defaults: password, passwd, secret, token, apikey, privatekey, credential)."},
                "allow":{"type":"array","items":{"type":"string"},"description":"Exact variable names exempt from the rule."}}}"#,
            references: &["https://kubernetes.io/docs/concepts/security/secrets-good-practices/"],
            profiles: HARDENED,
        }
    }

    fn configure(s: Settings) -> Result<Self, SettingsError> {
        let patterns: Vec<String> = match s.patterns {
            Some(p) => p.iter().map(|p| normalise(p)).collect(),
            None => DEFAULT_PATTERNS.iter().map(|p| p.to_string()).collect(),
        };
        if let Some(i) = patterns.iter().position(String::is_empty) {
            return Err(SettingsError::new(format!("/patterns/{i}"), "a pattern cannot be empty"));
        }
        Ok(SecretEnvLiteral { patterns, allow: s.allow })
    }

    fn check(&self, w: &Workload, _: &Context) -> Vec<Violation> {
        let mut out = Vec::new();
        for c in w.containers() {
            for (i, env) in c.container.env.iter().enumerate() {
                let value = env.value.as_deref().unwrap_or_default();
                if looks_like_private_key(value) && !self.allow.contains(&env.name) {
                    out.push(Violation::new(
                        format!(
                            "container {:?} sets {} to a literal private key; mount it from a Secret",
                            c.name(),
                            env.name
                        ),
                        c.field(&format!("env/{i}/value")),
                    ));
                    continue;
                }
                if let (true, Some(pattern)) = (!value.is_empty(), self.sensitive(&env.name)) {
                    out.push(Violation::new(
                        format!(
                            "container {:?} sets {} (matches {pattern:?}) to a literal value; use valueFrom.secretKeyRef",
                            c.name(),
                            env.name
                        ),
                        c.field(&format!("env/{i}/value")),
                    ));
                }
            }
        }
        out
    }
}

palisade_sdk::export_pod_rule!(SecretEnvLiteral);

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_sdk::{check_pod, configure_pod};

    const POD: &str = r#"{"kind":"Pod","spec":{"containers":[{"name":"a","env":[
        {"name":"DB_PASSWORD","value":"hunter2"},
        {"name":"dbPassword","valueFrom":{"secretKeyRef":{"name":"db","key":"pw"}}},
        {"name":"API-KEY","value":"k"},
        {"name":"LOG_LEVEL","value":"debug"},
        {"name":"GITHUB_TOKEN","value":""},
        {"name":"TOKEN_TTL","value":"60"}]}]}}"#;

    #[test]
    fn default_patterns() {
        let v = check_pod(configure_pod::<SecretEnvLiteral>("{}").unwrap(), POD).unwrap();
        let paths: Vec<_> = v.iter().map(|v| v.path.as_str()).collect();
        assert_eq!(
            paths,
            ["/spec/containers/0/env/0/value", "/spec/containers/0/env/2/value", "/spec/containers/0/env/5/value"]
        );
    }

    #[test]
    fn private_keys_whatever_the_name() {
        let pod = r#"{"kind":"Pod","spec":{"containers":[{"name":"a","env":[
            {"name":"the_good_stuff","value":"---BEGIN OPENSSH PRIVATE KEY---\nxxx\n---END OPENSSH PRIVATE KEY---"},
            {"name":"PEM","value":"-----BEGIN RSA PRIVATE KEY-----\n..."},
            {"name":"DOC","value":"never put a private key here"}]}]}}"#;
        let v = check_pod(configure_pod::<SecretEnvLiteral>("{}").unwrap(), pod).unwrap();
        let paths: Vec<_> = v.iter().map(|v| v.path.as_str()).collect();
        assert_eq!(paths, ["/spec/containers/0/env/0/value", "/spec/containers/0/env/1/value"]);
    }

    #[test]
    fn patterns_and_allow_list() {
        let rule = configure_pod::<SecretEnvLiteral>(r#"{"patterns":["LOG_LEVEL"],"allow":[]}"#).unwrap();
        let v = check_pod(rule, POD).unwrap();
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].path, "/spec/containers/0/env/3/value");
        let rule = configure_pod::<SecretEnvLiteral>(r#"{"allow":["TOKEN_TTL"]}"#).unwrap();
        assert_eq!(check_pod(rule, POD).unwrap().len(), 2);
    }
}
