//! No Secret with data in the checked manifests.
//!
//! Source: the `Secret` type of `k8s.io/api/core/v1` (`data`, `stringData`);
//! Kubernetes "Good practices for Kubernetes Secrets"
//! (<https://kubernetes.io/docs/concepts/security/secrets-good-practices/>).
//! Secret values in manifests end up in Git and CI logs; they belong in an
//! existing Secret or an external store (External Secrets Operator, Vault, a
//! sealed-secrets controller). Exempt a named Secret with a config exception.

use palisade_sdk::inventory::Header;
use palisade_sdk::{
    Context, HARDENED, Metadata, NO_SETTINGS_SCHEMA, NoSettings, Rule, SettingsError, Severity, Violation,
};
use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Secret {
    data: Option<serde_json::Map<String, Value>>,
    string_data: Option<serde_json::Map<String, Value>>,
}

pub struct SecretInManifest;

impl Rule for SecretInManifest {
    type Settings = NoSettings;

    fn metadata() -> Metadata {
        Metadata {
            id: "secret-in-manifest",
            title: "Secret values must not be kept in manifests",
            description: "Reports a Secret in the checked manifests that carries `data` or `stringData`.",
            rationale: "Manifests are stored in Git, rendered in CI logs and copied between \
                        environments; base64 is an encoding, not encryption. A secret value in a \
                        manifest is readable by everyone who can read the repository.",
            remediation: "Create the Secret out of band, or deliver it with External Secrets Operator, \
                          Sealed Secrets or the Secrets Store CSI driver, and reference it by name. \
                          Exempt a Secret that must stay (a placeholder, a public CA bundle) with an \
                          exception that gives the reason.",
            severity: Severity::Medium,
            category: "Secrets",
            applies_to: &["Secret"],
            reads_kinds: &[],
            settings_schema: NO_SETTINGS_SCHEMA,
            references: &[
                "https://kubernetes.io/docs/concepts/security/secrets-good-practices/",
                "https://external-secrets.io/",
            ],
            profiles: HARDENED,
        }
    }

    fn configure(_: NoSettings) -> Result<Self, SettingsError> {
        Ok(SecretInManifest)
    }

    fn evaluate(&self, object: &str, _: &Context) -> Result<Vec<Violation>, String> {
        let header = Header::read(object)?;
        if header.kind != "Secret" {
            return Ok(Vec::new());
        }
        let secret: Secret = serde_json::from_str(object).map_err(|e| format!("cannot read the Secret: {e}"))?;
        let mut out = Vec::new();
        for (field, map) in [("data", &secret.data), ("stringData", &secret.string_data)] {
            if let Some(map) = map.as_ref().filter(|m| !m.is_empty()) {
                let keys: Vec<&str> = map.keys().map(String::as_str).collect();
                let one = keys.len() == 1;
                out.push(Violation::new(
                    format!(
                        "Secret {:?} carries {} {field} key{} in the manifest, {}: whoever can read the manifest can \
                         read {}; create the Secret at deploy time or from a secret store instead",
                        header.metadata.name,
                        keys.len(),
                        if one { "" } else { "s" },
                        keys.join(", "),
                        if one { "it" } else { "them" }
                    ),
                    format!("/{field}"),
                ));
            }
        }
        Ok(out)
    }
}

palisade_sdk::export_rule!(SecretInManifest);

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(json: &str) -> Vec<Violation> {
        SecretInManifest.evaluate(json, &Context::default()).unwrap()
    }

    #[test]
    fn data_and_string_data() {
        let v = eval(
            r#"{"kind":"Secret","metadata":{"name":"db"},"data":{"pw":"aHVudGVyMg=="},"stringData":{"user":"x"}}"#,
        );
        let paths: Vec<_> = v.iter().map(|v| v.path.as_str()).collect();
        assert_eq!(paths, ["/data", "/stringData"]);
        assert_eq!(
            v[0].message,
            "Secret \"db\" carries 1 data key in the manifest, pw: whoever can read the manifest can read it; create \
             the Secret at deploy time or from a secret store instead"
        );
        assert!(eval(r#"{"kind":"Secret","metadata":{"name":"empty"},"data":{}}"#).is_empty());
        assert!(eval(r#"{"kind":"Secret","metadata":{"name":"tls"},"type":"kubernetes.io/tls"}"#).is_empty());
        assert!(SecretInManifest.evaluate(r#"{"kind":"Secret","data":[1]}"#, &Context::default()).is_err());
    }
}
