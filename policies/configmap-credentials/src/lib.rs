//! No ConfigMap carries a credential.
//!
//! Source: the `ConfigMap` type of `k8s.io/api/core/v1` (`data`,
//! `binaryData`); the Kubernetes ConfigMap documentation ("ConfigMap does not
//! provide secrecy or encryption. If the data you want to store are
//! confidential, use a Secret rather than a ConfigMap",
//! <https://kubernetes.io/docs/concepts/configuration/configmap/>) and "Good
//! practices for Kubernetes Secrets"
//! (<https://kubernetes.io/docs/concepts/security/secrets-good-practices/>).
//! CIS Kubernetes Benchmark 5.4.1 "Prefer using secrets as files over secrets
//! as environment variables": a configuration file that needs a credential
//! gets it from a mounted Secret, not from the ConfigMap it is rendered into.
//! Peer: Polaris `sensitiveConfigmapContent` (sensitive key names, private-key
//! values; its fixtures all agree); kube-score has no such check.
//!
//! Each `data` entry is judged with `palisade_sdk::credentials`, as
//! `secret-env-literal` judges an environment variable:
//! - a one-line value as `key = value`: a private key, a known token, a
//!   password hash or a URL with a password whatever the key; any other
//!   literal under a sensitive key (`db_password`, `AWS_SECRET_ACCESS_KEY`);
//!   a sensitive `name=value` pair inside it (a JDBC URL, a JVM option);
//! - a multi-line value as an embedded configuration file (`rabbitmq.conf`,
//!   `application.properties`, `config.json`, `.env`, YAML): each line that
//!   assigns a literal to a sensitive name (`default_pass = CHANGEME`,
//!   `"password": "x"`), and each line holding a private key, token, hash or
//!   URL with a password. The key of a file is not evidence: a file named
//!   `secret-rotation.sh` is read like any other.
//!
//! Not credentials, as for environment variables: empty values, flags, file
//! paths, URLs without a password, settings about a credential (`token_ttl: 60`),
//! and references resolved elsewhere: `$(VAR)`, `${PASSWORD}` (expanded by the
//! application or an init container from a Secret), `{{ .Values.x }}` (an
//! unrendered template: the value is not in the manifest). Placeholders that
//! an init container replaces (Bitnami's `password-placeholder-0` in
//! `server.properties`) and masks (`****`) are not values either; a default
//! that ships (`CHANGEME`, `guest`) is one, since everyone knows it.
//!
//! `binaryData` is not read: the API server keeps there the bytes that are not
//! UTF-8 text, so lines and names cannot be read in it, and a binary keystore
//! (`keystore.p12`, `truststore.jks`) is opaque: whether it holds a private
//! key or only CA certificates cannot be told without its password.
//!
//! A finding names the key (`/data/<key>`, JSON-pointer escaped) and, for an
//! embedded file, the lines within it, with the name assigned there; it never
//! shows the value.

use std::collections::BTreeMap;

use palisade_sdk::credentials::{self, Credential, Detector, Settings};
use palisade_sdk::inventory::Header;
use palisade_sdk::workload::escape_pointer;
use palisade_sdk::{Context, HARDENED, Metadata, Rule, SettingsError, Severity, Violation};
use serde::Deserialize;

/// How many lines of one embedded file a finding lists.
const MAX_LINES: usize = 10;

#[derive(Deserialize)]
struct ConfigMap {
    data: Option<BTreeMap<String, String>>,
}

pub struct ConfigMapCredentials(Detector);

impl ConfigMapCredentials {
    fn check_entry(&self, key: &str, value: &str) -> Option<String> {
        if self.0.allowed(key) {
            return None;
        }
        if !value.trim_end().contains('\n') {
            return self.0.check(key, value).map(|c| match c {
                Credential::Named { pattern } => format!("a literal value (key matches {pattern:?})"),
                other => other.describe(),
            });
        }
        let hits = self.0.scan_text(value);
        if hits.is_empty() {
            return None;
        }
        let mut lines: Vec<String> = hits.iter().take(MAX_LINES).map(|h| h.describe()).collect();
        if hits.len() > MAX_LINES {
            lines.push(format!("and {} more lines", hits.len() - MAX_LINES));
        }
        Some(format!("credentials ({})", lines.join("; ")))
    }
}

impl Rule for ConfigMapCredentials {
    type Settings = Settings;

    fn metadata() -> Metadata {
        Metadata {
            id: "configmap-credentials",
            title: "ConfigMaps must not carry credentials",
            description: "Fails a ConfigMap with a `data` entry that is a credential: a private key, a known \
                          token format, a password hash or a URL with a password whatever the key, a literal \
                          under a sensitive key (password, secret, token, api key, *_pass, the configured \
                          patterns), or, in an embedded configuration file (INI, properties, .env, YAML, \
                          JSON), a line that assigns a literal to a sensitive name. Empty values, flags, file \
                          paths, references such as ${VAR} or {{ .Values.x }} and placeholders pass. \
                          `binaryData` is not read.",
            rationale: "A ConfigMap provides no secrecy: it is readable by every subject that may read \
                        ConfigMaps (often far more than may read Secrets), is not encrypted at rest by \
                        Secret encryption configuration, and is printed by `kubectl describe`. A credential \
                        in it is also in the manifest, the Git history and the rendered chart.",
            remediation: "Move the value to a Secret (or an external secret store) and mount it as a file or \
                          reference it; in a configuration file, read it from the mounted Secret or expand it \
                          from an environment variable set with valueFrom.secretKeyRef (`${PASSWORD}`).",
            severity: Severity::High,
            category: "Secrets",
            applies_to: &["ConfigMap"],
            reads_kinds: &[],
            settings_schema: credentials::SETTINGS_SCHEMA,
            references: &[
                "https://kubernetes.io/docs/concepts/configuration/configmap/",
                "https://kubernetes.io/docs/concepts/security/secrets-good-practices/",
                "https://www.cisecurity.org/benchmark/kubernetes",
                "https://github.com/FairwindsOps/polaris/blob/master/checks/sensitiveConfigmapContent.yaml",
            ],
            profiles: HARDENED,
        }
    }

    fn configure(s: Settings) -> Result<Self, SettingsError> {
        Detector::configure(s).map(ConfigMapCredentials)
    }

    fn evaluate(&self, object: &str, _: &Context) -> Result<Vec<Violation>, String> {
        let header = Header::read(object)?;
        if header.kind != "ConfigMap" {
            return Ok(Vec::new());
        }
        let map: ConfigMap = serde_json::from_str(object).map_err(|e| format!("cannot read the ConfigMap: {e}"))?;
        let name = &header.metadata.name;
        Ok(map
            .data
            .unwrap_or_default()
            .iter()
            .filter_map(|(key, value)| {
                let found = self.check_entry(key, value)?;
                Some(Violation::new(
                    format!(
                        "ConfigMap {name:?} key {key:?} holds {found}: whoever may read ConfigMaps can read it; \
                         move it to a Secret"
                    ),
                    format!("/data/{}", escape_pointer(key)),
                ))
            })
            .collect())
    }
}

palisade_sdk::export_rule!(ConfigMapCredentials);

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_sdk::configure;

    fn eval_with(settings: &str, json: &str) -> Vec<Violation> {
        configure::<ConfigMapCredentials>(settings).unwrap().evaluate(json, &Context::default()).unwrap()
    }

    fn eval(json: &str) -> Vec<Violation> {
        eval_with("{}", json)
    }

    fn cm(data: serde_json::Value) -> String {
        serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}, "data": data})
            .to_string()
    }

    /// Polaris' `test/checks/sensitiveConfigmapContent` fixtures.
    #[test]
    fn polaris_fixtures() {
        use serde_json::json;
        for data in [
            json!({"AWS_SECRET_ACCESS_KEY": "xxxxx"}),
            json!({"AZURE_BATCH_KEY": "xxxxx"}),
            json!({"OCI_CLI_KEY_CONTENT": "xxxxx"}),
            json!({"db_username": "postgres", "db_password": "abc123"}),
            json!({"a_key": "and value that are ok",
                   "ssh_access": "-----BEGIN PRIVATE KEY-----\nxxxxxxxx\n-----END OPENSSH PRIVATE KEY-----\n"}),
        ] {
            assert_eq!(eval(&cm(data.clone())).len(), 1, "{data}");
        }
        let key =
            eval(&cm(json!({"ssh_access": "-----BEGIN PRIVATE KEY-----\nxxxxxxxx\n-----END PRIVATE KEY-----\n"})));
        assert_eq!(
            key[0].message,
            r#"ConfigMap "cfg" key "ssh_access" holds credentials (line 1: a PEM private key): whoever may read ConfigMaps can read it; move it to a Secret"#
        );
        let named = eval(&cm(json!({"db_password": "abc123"})));
        assert_eq!(
            named[0].message,
            r#"ConfigMap "cfg" key "db_password" holds a literal value (key matches "password"): whoever may read ConfigMaps can read it; move it to a Secret"#
        );
        assert!(eval(r#"{"kind":"ConfigMap","metadata":{"name":"test-config"}}"#).is_empty());
        assert!(eval(&cm(json!({"message": "This is a test", "db_user": "postgres"}))).is_empty());
    }

    #[test]
    fn names_the_key_and_line_never_the_value() {
        let rabbit = "loopback_users.guest = false\ndefault_user = admin\ndefault_pass = CHANGEME\n";
        let json = "{\n  \"user\": \"app\",\n  \"password\": \"hunter2\"\n}\n";
        let v = eval(&cm(serde_json::json!({
            "rabbitmq.conf": rabbit,
            "config.json": json,
            "DATABASE_URL": "postgres://app:hunter2@db/app",
        })));
        let got: Vec<_> = v.iter().map(|v| (v.path.as_str(), v.message.as_str())).collect();
        assert_eq!(
            got,
            [
                (
                    "/data/DATABASE_URL",
                    r#"ConfigMap "cfg" key "DATABASE_URL" holds a URL with a password in it: whoever may read ConfigMaps can read it; move it to a Secret"#
                ),
                (
                    "/data/config.json",
                    r#"ConfigMap "cfg" key "config.json" holds credentials (line 3: password = ****, its name matching "password"): whoever may read ConfigMaps can read it; move it to a Secret"#
                ),
                (
                    "/data/rabbitmq.conf",
                    r#"ConfigMap "cfg" key "rabbitmq.conf" holds credentials (line 3: default_pass = ****, its name matching "*_pass"): whoever may read ConfigMaps can read it; move it to a Secret"#
                ),
            ]
        );
        assert!(got.iter().all(|(_, m)| !m.contains("hunter2") && !m.contains("CHANGEME")));
        let v = eval(&cm(serde_json::json!({"a/b~token": "abc"})));
        assert_eq!(v[0].path, "/data/a~1b~0token");
    }

    #[test]
    fn long_files_are_summarised() {
        let file: String = (0..13).map(|i| format!("user{i}_password = p{i}\n")).collect();
        let v = eval(&cm(serde_json::json!({ "users.properties": file })));
        assert_eq!(v.len(), 1);
        assert!(v[0].message.contains("line 10: user9_password") && v[0].message.contains("; and 3 more lines)"));
        assert!(!v[0].message.contains("line 11"));
    }

    /// References, placeholders, flags and scripts from Bitnami's charts
    /// (`real-world/bitnami/`) and kube-score's `configmap-multi-dash.yaml`.
    #[test]
    fn references_and_placeholders_are_not_credentials() {
        let properties = "\
listener.name.controller.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username=\"controller_user\" password=\"controller-password-placeholder\" user_controller_user=\"controller-password-placeholder\";
sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512
";
        let script = "\
#!/bin/bash
[[ -f $REDIS_PASSWORD_FILE ]] && export REDIS_PASSWORD=\"$(< \"${REDIS_PASSWORD_FILE}\")\"
[[ -n \"$REDIS_PASSWORD\" ]] && export REDISCLI_AUTH=\"$REDIS_PASSWORD\"
ARGS+=(\"--requirepass\" \"${REDIS_PASSWORD}\")
";
        let yaml = "\
database:
  password: ${DB_PASSWORD}
  token: {{ .Values.token }}
  passwordFile: /run/secrets/db
  allowEmptyPassword: false
  existingSecret: db-auth
";
        let v = eval(&cm(serde_json::json!({
            "server.properties": properties,
            "start-master.sh": script,
            "app.yaml": yaml,
            "awesome.crt": "-----BEGIN CERTIFICATE-----\nTEST_DATA\n-----END CERTIFICATE-----\n",
            "ALLOW_EMPTY_PASSWORD": "no",
            "REDIS_PASSWORD_FILE": "/opt/bitnami/redis/secrets/redis-password",
            "users.acl": "",
        })));
        assert!(v.is_empty(), "{v:#?}");
    }

    #[test]
    fn allow_list_and_patterns() {
        let data = serde_json::json!({
            "db_password": "abc123",
            "app.properties": "spring.datasource.password=abc\nsession.token=def\n",
        });
        assert_eq!(eval(&cm(data.clone())).len(), 2);
        assert_eq!(eval_with(r#"{"allow":["db_*"]}"#, &cm(data.clone())).len(), 1);
        let v = eval_with(r#"{"allow":["db_password","spring.datasource.password"]}"#, &cm(data.clone()));
        assert_eq!(v.len(), 1);
        assert!(v[0].message.contains("line 2: session.token") && !v[0].message.contains("line 1"), "{v:?}");
        assert!(eval_with(r#"{"allow":["app.properties","db_password"]}"#, &cm(data.clone())).is_empty());
        let v = eval_with(r#"{"patterns":["session"]}"#, &cm(data));
        assert_eq!(v.len(), 1, "{v:?}");
        let e = configure::<ConfigMapCredentials>(r#"{"patterns":[".."]}"#).err().unwrap();
        assert_eq!(e.field, "/patterns/0");
    }

    #[test]
    fn other_kinds_and_bad_shapes() {
        assert!(eval(r#"{"kind":"Secret","metadata":{"name":"s"},"stringData":{"password":"x"}}"#).is_empty());
        let binary = r#"{"kind":"ConfigMap","metadata":{"name":"k"},"binaryData":{"keystore.p12":"MIIK"}}"#;
        assert!(eval(binary).is_empty());
        let rule = configure::<ConfigMapCredentials>("{}").unwrap();
        let bad = rule.evaluate(r#"{"kind":"ConfigMap","data":{"port":8080}}"#, &Context::default());
        assert!(bad.unwrap_err().contains("cannot read the ConfigMap"));
    }
}
