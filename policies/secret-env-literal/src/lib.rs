//! No environment variable carries a literal credential.
//!
//! Source: `EnvVar.value` versus `EnvVar.valueFrom.secretKeyRef` in
//! `k8s.io/api/core/v1`; Kubernetes "Good practices for Kubernetes Secrets"
//! (<https://kubernetes.io/docs/concepts/security/secrets-good-practices/>);
//! CIS Kubernetes Benchmark 5.4.1 "Prefer using secrets as files over secrets
//! as environment variables" (a literal is worse than either). Peers: Polaris
//! `sensitiveContainerEnvVar` (its name patterns and its private-key value
//! check are among the defaults); kube-score has no such check.
//!
//! A value is judged by what it is (`palisade_sdk::credentials`): a PEM
//! private key, a token in a documented format (AWS, GitHub, Slack, JWT...), a
//! password hash or a URL with a password is reported whatever the name; under
//! a sensitive name (`DB_PASSWORD`, `dbPassword`, `default_pass`) any other
//! literal is, unless it is empty, a flag (`ALLOW_EMPTY_PASSWORD=no`), a
//! reference (`$(VAR)`), a placeholder, a file path
//! (`POSTGRES_PASSWORD_FILE=/opt/bitnami/postgresql/secrets/postgres-password`,
//! the files-over-variables pattern CIS 5.4.1 recommends), a URL without a
//! password, or a setting about a credential (`TOKEN_TTL=60`). A sensitive
//! `name=value` pair inside the value (`-Dx.password=...`, a JDBC query) is
//! reported too. Differences from Polaris: a path under a sensitive name
//! (`GOOGLE_APPLICATION_CREDENTIALS=/var/secrets/key.json`) passes here.

use palisade_sdk::credentials::{self, Credential, Detector};
use palisade_sdk::{Context, Fields, HARDENED, Metadata, PodRule, SettingsError, Severity, Violation, Workload};

pub use palisade_sdk::credentials::Settings;

pub struct SecretEnvLiteral(Detector);

impl PodRule for SecretEnvLiteral {
    type Settings = Settings;

    const READS: Fields = Fields::ENV;

    fn metadata() -> Metadata {
        Metadata {
            id: "secret-env-literal",
            title: "Secrets must not be written as literal environment values",
            description: "Fails a pod with a container environment variable whose literal `value` is a \
                          credential: a private key, a known token format, a password hash or a URL with a \
                          password whatever the name, or any other literal under a sensitive name (password, \
                          secret, token, api key, private key, credential, the configured patterns) unless \
                          it is empty, a flag, a `$(VAR)` reference, a placeholder, a file path, a URL \
                          without a password or a setting such as a TTL.",
            rationale: "A literal value lives in the manifest, the Git history, the rendered chart, the \
                        object in etcd and every `kubectl get -o yaml`: it is readable by anyone who can \
                        read the workload, not only by those who can read Secrets.",
            remediation: "Store the value in a Secret (or an external secret store) and mount it as a file \
                          (pointing a `*_FILE` variable at it), or reference it with valueFrom.secretKeyRef.",
            severity: Severity::High,
            category: "Secrets",
            applies_to: &palisade_sdk::POD_KINDS,
            reads_kinds: &[],
            settings_schema: credentials::SETTINGS_SCHEMA,
            references: &[
                "https://kubernetes.io/docs/concepts/security/secrets-good-practices/",
                "https://www.cisecurity.org/benchmark/kubernetes",
                "https://github.com/FairwindsOps/polaris/blob/master/checks/sensitiveContainerEnvVar.yaml",
            ],
            profiles: HARDENED,
        }
    }

    fn configure(s: Settings) -> Result<Self, SettingsError> {
        Detector::configure(s).map(SecretEnvLiteral)
    }

    fn check(&self, w: &Workload, _: &Context) -> Vec<Violation> {
        let mut out = Vec::new();
        for c in w.containers() {
            for (i, env) in c.container.env.iter().enumerate() {
                let Some(value) = env.value.as_deref() else { continue };
                let Some(found) = self.0.check(&env.name, value) else { continue };
                let (name, container) = (&env.name, c.name());
                const WHO: &str = "whoever can read the pod spec can read it";
                let message = match found {
                    Credential::PrivateKey => format!(
                        "container {container:?} sets {name} to a literal private key: {WHO}; mount it from a Secret"
                    ),
                    Credential::Named { pattern } => format!(
                        "container {container:?} sets {name} (matches {pattern:?}) to a literal value: {WHO}; \
                         use valueFrom.secretKeyRef"
                    ),
                    other => format!(
                        "container {container:?} sets {name} to a value holding {}: {WHO}; use valueFrom.secretKeyRef",
                        other.describe()
                    ),
                };
                out.push(Violation::new(message, c.field(&format!("env/{i}/value"))));
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
        // TOKEN_TTL=60 (env/5) was reported before: a number under a `*_TTL`
        // name is a setting about a token, not a token.
        assert_eq!(paths, ["/spec/containers/0/env/0/value", "/spec/containers/0/env/2/value"]);
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
        // Was `allow: [TOKEN_TTL]` (3 findings to 2); TOKEN_TTL=60 is no longer
        // reported, so the allow-list is shown on a real finding.
        let rule = configure_pod::<SecretEnvLiteral>(r#"{"allow":["DB_PASSWORD"]}"#).unwrap();
        assert_eq!(check_pod(rule, POD).unwrap().len(), 1);
        let rule = configure_pod::<SecretEnvLiteral>(r#"{"allow":["API-*","DB_*"]}"#).unwrap();
        assert!(check_pod(rule, POD).unwrap().is_empty());
        assert_eq!(configure_pod::<SecretEnvLiteral>(r#"{"patterns":["x","_"]}"#).err().unwrap().field, "/patterns/1");
    }

    /// Bitnami's charts (`real-world/bitnami/`): passwords as mounted files and
    /// flags about passwords, none a credential.
    #[test]
    fn files_flags_and_references_are_not_credentials() {
        let pod = r#"{"kind":"Pod","spec":{"containers":[{"name":"db","env":[
            {"name":"POSTGRES_PASSWORD_FILE","value":"/opt/bitnami/postgresql/secrets/postgres-password"},
            {"name":"KAFKA_CLIENT_PASSWORDS_FILE","value":"/opt/bitnami/kafka/config/secrets/client-passwords"},
            {"name":"ALLOW_EMPTY_PASSWORD","value":"no"},
            {"name":"REDIS_TLS_ENABLED","value":"no"},
            {"name":"REDIS_PASSWORD","value":""},
            {"name":"DB_PASSWORD","value":"$(POSTGRES_PASSWORD)"},
            {"name":"TOKEN_ENDPOINT","value":"https://auth.example.com/oauth/token"},
            {"name":"DATABASE_URL","value":"postgres://app:$(DB_PASSWORD)@db:5432/app"},
            {"name":"SECRET_NAME","value":"db-credentials"}]}]}}"#;
        let v = check_pod(configure_pod::<SecretEnvLiteral>("{}").unwrap(), pod).unwrap();
        assert!(v.is_empty(), "{v:#?}");
    }

    #[test]
    fn credentials_by_what_they_are() {
        let pod = r#"{"kind":"Pod","spec":{"containers":[{"name":"app","env":[
            {"name":"AWS_ACCESS_KEY_ID","value":"AKIAIOSFODNN7EXAMPLE"},
            {"name":"GH","value":"ghp_0123456789abcdefghijABCDEFGHIJ012345"},
            {"name":"DATABASE_URL","value":"postgres://user:pass@db:5432/app"},
            {"name":"JAVA_OPTS","value":"-Xmx1g -Dspring.datasource.password=hunter2"},
            {"name":"POSTGRES_PASSWORD_FILE","value":"hunter2"},
            {"name":"GREETING","value":"hello"}]}]}}"#;
        let v = check_pod(configure_pod::<SecretEnvLiteral>("{}").unwrap(), pod).unwrap();
        let got: Vec<_> = v.iter().map(|v| (v.path.as_str(), v.message.as_str())).collect();
        let at = |i: usize| format!("/spec/containers/0/env/{i}/value");
        assert_eq!(got.len(), 5, "{got:#?}");
        for (i, (path, message)) in got.iter().enumerate() {
            assert_eq!(*path, at(i));
            assert!(!message.contains("hunter2") && !message.contains("pass@"), "{message}");
        }
        assert!(got[0].1.contains("an AWS access key ID"), "{}", got[0].1);
        assert!(got[1].1.contains("a GitHub token"), "{}", got[1].1);
        assert!(got[2].1.contains("a URL with a password"), "{}", got[2].1);
        assert!(got[3].1.contains("Dspring.datasource.password=****"), "{}", got[3].1);
        assert_eq!(
            got[4].1,
            "container \"app\" sets POSTGRES_PASSWORD_FILE (matches \"password\") to a literal value: whoever can read \
             the pod spec can read it; use valueFrom.secretKeyRef"
        );
        assert_eq!(
            got[3].1,
            "container \"app\" sets JAVA_OPTS to a value holding Dspring.datasource.password=****, its name matching \
             \"password\": whoever can read the pod spec can read it; use valueFrom.secretKeyRef"
        );
    }
}
