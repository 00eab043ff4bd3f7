//! Every TLS secret an Ingress names exists, or cert-manager will create it.
//!
//! Source: `IngressTLS.secretName` of `k8s.io/api/networking/v1`; cert-manager's
//! ingress-shim (annotations `cert-manager.io/cluster-issuer` and
//! `cert-manager.io/issuer` on the Ingress) and its `Certificate.spec.secretName`
//! (<https://cert-manager.io/docs/usage/ingress/>).

use palisade_sdk::inventory::{self, Header};
use palisade_sdk::{
    Context, HARDENED, Metadata, NO_SETTINGS_SCHEMA, NoSettings, Rule, SettingsError, Severity, Violation,
};
use serde::Deserialize;

#[derive(Deserialize, Default)]
struct Ingress {
    #[serde(default)]
    metadata: palisade_sdk::pod::ObjectMeta,
    spec: Option<Spec>,
}

#[derive(Deserialize, Default)]
struct Spec {
    tls: Option<Vec<Tls>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Tls {
    secret_name: Option<String>,
}

#[derive(Deserialize, Default)]
struct Certificate {
    #[serde(rename = "apiVersion", default)]
    api_version: String,
    spec: Option<CertificateSpec>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct CertificateSpec {
    secret_name: Option<String>,
}

const ISSUER_ANNOTATIONS: [&str; 2] = ["cert-manager.io/cluster-issuer", "cert-manager.io/issuer"];

pub struct IngressTlsSecret;

impl Rule for IngressTlsSecret {
    type Settings = NoSettings;

    fn metadata() -> Metadata {
        Metadata {
            id: "ingress-tls-secret",
            title: "Ingress TLS secrets must exist or be issued by cert-manager",
            description: "Fails an Ingress whose spec.tls[].secretName is neither a Secret of the checked set \
                          in its namespace, nor the secretName of a cert-manager Certificate there, nor \
                          covered by a cert-manager.io/cluster-issuer or cert-manager.io/issuer annotation.",
            rationale: "An Ingress whose certificate secret is missing is served with the controller's \
                        default, self-signed certificate: clients either fail or learn to click through \
                        certificate warnings.",
            remediation: "Ship the Secret with the release, add a cert-manager Certificate with that \
                          secretName, or annotate the Ingress with cert-manager.io/cluster-issuer.",
            severity: Severity::Medium,
            category: "Network",
            applies_to: &["Ingress"],
            reads_kinds: &["Secret", "Certificate"],
            settings_schema: NO_SETTINGS_SCHEMA,
            references: &[
                "https://kubernetes.io/docs/concepts/services-networking/ingress/#tls",
                "https://cert-manager.io/docs/usage/ingress/",
            ],
            profiles: HARDENED,
        }
    }

    fn configure(_: NoSettings) -> Result<Self, SettingsError> {
        Ok(IngressTlsSecret)
    }

    fn evaluate(&self, object: &str, _: &Context) -> Result<Vec<Violation>, String> {
        let ingress: Ingress = serde_json::from_str(object).map_err(|e| format!("cannot read the Ingress: {e}"))?;
        let annotations = &ingress.metadata.annotations;
        if ISSUER_ANNOTATIONS.iter().any(|a| annotations.get(*a).is_some_and(|v| !v.is_empty())) {
            return Ok(Vec::new());
        }
        let namespace = Some(ingress.metadata.namespace.as_str()).filter(|n| !n.is_empty());
        let secrets: Vec<String> = inventory::same_namespace("Secret", namespace)
            .iter()
            .filter_map(|j| Header::read(j).ok())
            .map(|h| h.metadata.name)
            .collect();
        let certificates: Vec<Certificate> =
            inventory::parse_all("Certificate", &inventory::same_namespace("Certificate", namespace))?;
        let issued: Vec<&str> = certificates
            .iter()
            .filter(|c| c.api_version.starts_with("cert-manager.io/"))
            .filter_map(|c| c.spec.as_ref().and_then(|s| s.secret_name.as_deref()))
            .collect();
        let mut out = Vec::new();
        for (i, tls) in ingress.spec.and_then(|s| s.tls).unwrap_or_default().iter().enumerate() {
            let Some(name) = tls.secret_name.as_deref().filter(|n| !n.is_empty()) else { continue };
            if !secrets.iter().any(|s| s == name) && !issued.contains(&name) {
                out.push(Violation::new(
                    format!(
                        "TLS secret {name:?} is neither in the checked set nor produced by a cert-manager \
                         Certificate or issuer annotation: clients get the controller's default certificate; \
                         ship the Secret or let cert-manager issue it"
                    ),
                    format!("/spec/tls/{i}/secretName"),
                ));
            }
        }
        Ok(out)
    }
}

palisade_sdk::export_rule!(IngressTlsSecret);

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_sdk::inventory::testing;

    fn count(annotations: &str, objects: &[&str]) -> usize {
        testing::set(objects);
        let json = format!(
            r#"{{"kind":"Ingress","metadata":{{"name":"i","namespace":"ns","annotations":{annotations}}},"spec":{{"tls":[{{"hosts":["a.example.com"],"secretName":"a-tls"}},{{"hosts":["b"]}}]}}}}"#
        );
        IngressTlsSecret.evaluate(&json, &Context::default()).unwrap().len()
    }

    #[test]
    fn sources_of_the_secret() {
        assert_eq!(count("{}", &[]), 1);
        let json =
            r#"{"kind":"Ingress","metadata":{"name":"i","namespace":"ns"},"spec":{"tls":[{"secretName":"a-tls"}]}}"#;
        assert_eq!(
            IngressTlsSecret.evaluate(json, &Context::default()).unwrap()[0].message,
            "TLS secret \"a-tls\" is neither in the checked set nor produced by a cert-manager Certificate or issuer \
             annotation: clients get the controller's default certificate; ship the Secret or let cert-manager issue it"
        );
        assert_eq!(count("{}", &[r#"{"kind":"Secret","metadata":{"name":"a-tls","namespace":"ns"}}"#]), 0);
        assert_eq!(count("{}", &[r#"{"kind":"Secret","metadata":{"name":"a-tls","namespace":"other"}}"#]), 1);
        assert_eq!(count(r#"{"cert-manager.io/cluster-issuer":"letsencrypt"}"#, &[]), 0);
        let cert = r#"{"apiVersion":"cert-manager.io/v1","kind":"Certificate","metadata":{"name":"c","namespace":"ns"},"spec":{"secretName":"a-tls"}}"#;
        assert_eq!(count("{}", &[cert]), 0);
    }
}
