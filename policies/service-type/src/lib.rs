//! No NodePort Services; LoadBalancer Services only when allowed.
//!
//! Source: `ServiceSpec.type` of `k8s.io/api/core/v1`
//! (<https://kubernetes.io/docs/concepts/services-networking/service/#publishing-services-service-types>);
//! kube-score `service-type`, Kyverno `restrict-node-port` and
//! `restrict-loadbalancer` (best-practices/other).

use palisade_sdk::inventory::Header;
use palisade_sdk::{Context, HARDENED, Metadata, Rule, SettingsError, Severity, Violation};
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Settings {
    #[serde(default)]
    pub allow_load_balancer: bool,
}

#[derive(Deserialize, Default)]
struct Service {
    spec: Option<Spec>,
}

#[derive(Deserialize, Default)]
struct Spec {
    #[serde(rename = "type")]
    type_: Option<String>,
}

pub struct ServiceType {
    allow_load_balancer: bool,
}

impl Rule for ServiceType {
    type Settings = Settings;

    fn metadata() -> Metadata {
        Metadata {
            id: "service-type",
            title: "Services must not be NodePort, nor LoadBalancer unless allowed",
            description: "Fails a Service of type NodePort, and one of type LoadBalancer unless the \
                          setting allowLoadBalancer is true.",
            rationale: "A NodePort opens the same port on every node, bypassing the ingress layer, its \
                        TLS and its access controls; a LoadBalancer exposes the Service outside the \
                        cluster directly. Both should be deliberate, reviewed exceptions.",
            remediation: "Use type ClusterIP behind an Ingress or Gateway. Where a cloud load balancer is \
                          the design, set allowLoadBalancer: true (and restrict it with \
                          loadBalancerSourceRanges).",
            severity: Severity::Medium,
            category: "Network",
            applies_to: &["Service"],
            reads_kinds: &[],
            settings_schema: r#"{"type":"object","additionalProperties":false,"properties":{
                "allowLoadBalancer":{"type":"boolean","default":false,"description":"Accept Services of type LoadBalancer."}}}"#,
            references: &[
                "https://kubernetes.io/docs/concepts/services-networking/service/#publishing-services-service-types",
            ],
            profiles: HARDENED,
        }
    }

    fn configure(s: Settings) -> Result<Self, SettingsError> {
        Ok(ServiceType { allow_load_balancer: s.allow_load_balancer })
    }

    fn evaluate(&self, object: &str, _: &Context) -> Result<Vec<Violation>, String> {
        let header = Header::read(object)?;
        if header.kind != "Service" {
            return Ok(Vec::new());
        }
        let service: Service = serde_json::from_str(object).map_err(|e| format!("cannot read the Service: {e}"))?;
        let kind = service.spec.and_then(|s| s.type_).unwrap_or_default();
        let name = &header.metadata.name;
        Ok(match kind.as_str() {
            "NodePort" => vec![Violation::new(
                format!(
                    "Service {name:?} is of type NodePort: it opens a port on every node; use type ClusterIP \
                     behind an Ingress or a Gateway"
                ),
                "/spec/type",
            )],
            "LoadBalancer" if !self.allow_load_balancer => vec![Violation::new(
                format!(
                    "Service {name:?} is of type LoadBalancer, which the setting allowLoadBalancer does not allow: \
                     it gets an address reachable from outside the cluster; use type ClusterIP behind an Ingress \
                     or a Gateway"
                ),
                "/spec/type",
            )],
            _ => Vec::new(),
        })
    }
}

palisade_sdk::export_rule!(ServiceType);

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_sdk::configure;

    fn eval(rule: &ServiceType, kind: &str) -> usize {
        let json = format!(r#"{{"kind":"Service","metadata":{{"name":"s"}},"spec":{{"type":"{kind}"}}}}"#);
        rule.evaluate(&json, &Context::default()).unwrap().len()
    }

    #[test]
    fn types() {
        let strict = configure::<ServiceType>("{}").unwrap();
        assert_eq!([eval(&strict, "ClusterIP"), eval(&strict, "NodePort"), eval(&strict, "LoadBalancer")], [0, 1, 1]);
        let lenient = configure::<ServiceType>(r#"{"allowLoadBalancer":true}"#).unwrap();
        assert_eq!([eval(&lenient, "NodePort"), eval(&lenient, "LoadBalancer")], [1, 0]);
    }

    #[test]
    fn messages_say_what_to_use() {
        let strict = configure::<ServiceType>("{}").unwrap();
        let message = |kind: &str| {
            let json = format!(r#"{{"kind":"Service","metadata":{{"name":"s"}},"spec":{{"type":"{kind}"}}}}"#);
            strict.evaluate(&json, &Context::default()).unwrap().remove(0).message
        };
        assert_eq!(
            message("NodePort"),
            "Service \"s\" is of type NodePort: it opens a port on every node; use type ClusterIP behind an Ingress \
             or a Gateway"
        );
        assert_eq!(
            message("LoadBalancer"),
            "Service \"s\" is of type LoadBalancer, which the setting allowLoadBalancer does not allow: it gets an \
             address reachable from outside the cluster; use type ClusterIP behind an Ingress or a Gateway"
        );
        // The peer mappings (tests/peer_suites.rs) tell the two apart by the type's name.
        assert!(!message("NodePort").contains("LoadBalancer") && !message("LoadBalancer").contains("NodePort"));
    }
}
