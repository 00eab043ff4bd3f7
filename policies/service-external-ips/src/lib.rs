//! No Service sets `externalIPs`.
//!
//! Source: `ServiceSpec.externalIPs` of `k8s.io/api/core/v1`; CVE-2020-8554
//! (a user who can set externalIPs can intercept traffic to any IP), mitigated
//! upstream only by admission control
//! (<https://github.com/kubernetes/kubernetes/issues/97076>); Kyverno
//! `restrict-external-ips`.

use palisade_sdk::inventory::Header;
use palisade_sdk::{
    Context, HARDENED, Metadata, NO_SETTINGS_SCHEMA, NoSettings, Rule, SettingsError, Severity, Violation,
};
use serde::Deserialize;

#[derive(Deserialize, Default)]
struct Service {
    spec: Option<Spec>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Spec {
    #[serde(rename = "externalIPs")]
    external_ips: Option<Vec<String>>,
}

pub struct ServiceExternalIps;

impl Rule for ServiceExternalIps {
    type Settings = NoSettings;

    fn metadata() -> Metadata {
        Metadata {
            id: "service-external-ips",
            title: "Services must not set externalIPs",
            description: "Fails a Service whose spec.externalIPs is not empty.",
            rationale: "Any IP in externalIPs is routed to the Service by every node: whoever can create \
                        a Service can intercept traffic meant for other addresses (CVE-2020-8554).",
            remediation: "Remove spec.externalIPs; expose the Service through an Ingress, a Gateway or a \
                          LoadBalancer instead.",
            severity: Severity::High,
            category: "Network",
            applies_to: &["Service"],
            reads_kinds: &[],
            settings_schema: NO_SETTINGS_SCHEMA,
            references: &[
                "https://github.com/kubernetes/kubernetes/issues/97076",
                "https://kubernetes.io/docs/concepts/services-networking/service/#external-ips",
            ],
            profiles: HARDENED,
        }
    }

    fn configure(_: NoSettings) -> Result<Self, SettingsError> {
        Ok(ServiceExternalIps)
    }

    fn evaluate(&self, object: &str, _: &Context) -> Result<Vec<Violation>, String> {
        let header = Header::read(object)?;
        if header.kind != "Service" {
            return Ok(Vec::new());
        }
        let service: Service = serde_json::from_str(object).map_err(|e| format!("cannot read the Service: {e}"))?;
        let ips = service.spec.and_then(|s| s.external_ips).unwrap_or_default();
        if ips.is_empty() {
            return Ok(Vec::new());
        }
        Ok(vec![Violation::new(
            format!(
                "Service {:?} sets externalIPs {}: every node routes those addresses to it, whoever owns them; \
                 remove spec.externalIPs and expose it through an Ingress, a Gateway or a LoadBalancer",
                header.metadata.name,
                ips.join(", ")
            ),
            "/spec/externalIPs",
        )])
    }
}

palisade_sdk::export_rule!(ServiceExternalIps);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn external_ips() {
        let eval = |spec: &str| {
            ServiceExternalIps
                .evaluate(
                    &format!(r#"{{"kind":"Service","metadata":{{"name":"s"}},"spec":{spec}}}"#),
                    &Context::default(),
                )
                .unwrap()
                .len()
        };
        assert_eq!(eval(r#"{"externalIPs":["1.2.3.4"]}"#), 1);
        assert_eq!(eval(r#"{"externalIPs":[]}"#), 0);
        let json = r#"{"kind":"Service","metadata":{"name":"s"},"spec":{"externalIPs":["1.2.3.4","5.6.7.8"]}}"#;
        assert_eq!(
            ServiceExternalIps.evaluate(json, &Context::default()).unwrap()[0].message,
            "Service \"s\" sets externalIPs 1.2.3.4, 5.6.7.8: every node routes those addresses to it, whoever owns \
             them; remove spec.externalIPs and expose it through an Ingress, a Gateway or a LoadBalancer"
        );
        assert_eq!(eval(r#"{"type":"ClusterIP"}"#), 0);
    }
}
