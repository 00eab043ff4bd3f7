//! Every workload is selected by a NetworkPolicy that covers ingress and one
//! that covers egress, in its namespace.
//!
//! Source: `NetworkPolicySpec` of `k8s.io/api/networking/v1`: `podSelector` is
//! a required struct, so an absent or empty one selects every pod of the
//! namespace; without `policyTypes`, a policy covers Ingress always and Egress
//! when it has egress rules
//! (<https://kubernetes.io/docs/concepts/services-networking/network-policies/>).
//! Label selectors follow `k8s.io/apimachinery` (In, NotIn, Exists, DoesNotExist).
//! kube-score `pod-networkpolicy`. A policy that lists a direction in
//! `policyTypes` without rules for it denies that traffic: the strictest
//! isolation, which Palisade counts as coverage (Polaris does not).

use palisade_sdk::inventory;
use palisade_sdk::selector::LabelSelector;
use palisade_sdk::{
    Context, HARDENED, Metadata, NO_SETTINGS_SCHEMA, NoSettings, PodRule, SettingsError, Severity, Violation, Workload,
};
use serde::Deserialize;
use serde::de::IgnoredAny;

#[derive(Deserialize, Default)]
pub struct NetworkPolicy {
    #[serde(default)]
    metadata: palisade_sdk::pod::ObjectMeta,
    #[serde(default)]
    spec: Option<Spec>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Spec {
    pod_selector: Option<LabelSelector>,
    policy_types: Option<Vec<String>>,
    egress: Option<Vec<IgnoredAny>>,
}

impl NetworkPolicy {
    fn covers(&self, direction: &str) -> bool {
        let spec = self.spec.as_ref();
        match spec.and_then(|s| s.policy_types.as_ref()) {
            Some(types) => types.iter().any(|t| t == direction),
            None => direction == "Ingress" || spec.and_then(|s| s.egress.as_ref()).is_some_and(|e| !e.is_empty()),
        }
    }

    fn selects(&self, w: &Workload) -> Result<bool, String> {
        let selector = self.spec.as_ref().and_then(|s| s.pod_selector.clone()).unwrap_or_default();
        selector.matches(&w.pod_meta.labels).map_err(|e| format!("NetworkPolicy {:?}: {e}", self.metadata.name))
    }
}

pub const KINDS: [&str; 8] =
    ["Pod", "ReplicationController", "ReplicaSet", "Deployment", "DaemonSet", "StatefulSet", "Job", "CronJob"];

pub struct NetworkPolicyCoverage;

impl NetworkPolicyCoverage {
    pub fn check_with(w: &Workload, policies: &[NetworkPolicy]) -> Result<Vec<Violation>, String> {
        let mut out = Vec::new();
        for direction in ["Ingress", "Egress"] {
            let mut covered = false;
            for p in policies.iter().filter(|p| p.covers(direction)) {
                if p.selects(w)? {
                    covered = true;
                    break;
                }
            }
            if !covered {
                out.push(Violation::new(
                    format!(
                        "no NetworkPolicy in namespace {} selects the pods of {} {:?} for {}",
                        w.namespace().unwrap_or("(unset)"),
                        w.kind,
                        w.name(),
                        direction.to_lowercase()
                    ),
                    format!("{}/labels", w.meta_path),
                ));
            }
        }
        Ok(out)
    }
}

impl PodRule for NetworkPolicyCoverage {
    type Settings = NoSettings;

    fn metadata() -> Metadata {
        Metadata {
            id: "network-policy-coverage",
            title: "Workloads must be isolated by NetworkPolicies for ingress and egress",
            description: "Fails a workload whose pods no NetworkPolicy of the same namespace (in the \
                          checked set) selects for ingress, or none for egress.",
            rationale: "Pods accept traffic from, and send it to, anything in the cluster until a \
                        NetworkPolicy selects them. Without isolation one compromised pod can reach \
                        every database and the cloud metadata service.",
            remediation: "Add a default-deny NetworkPolicy (podSelector: {}, policyTypes: [Ingress, \
                          Egress]) to the namespace and policies that allow the flows each workload needs.",
            severity: Severity::High,
            category: "Network",
            applies_to: &KINDS,
            reads_kinds: &["NetworkPolicy"],
            settings_schema: NO_SETTINGS_SCHEMA,
            references: &[
                "https://kubernetes.io/docs/concepts/services-networking/network-policies/",
                "https://kubernetes.io/docs/reference/kubernetes-api/policy-resources/network-policy-v1/",
            ],
            profiles: HARDENED,
        }
    }

    fn configure(_: NoSettings) -> Result<Self, SettingsError> {
        Ok(NetworkPolicyCoverage)
    }

    fn check(&self, w: &Workload, _: &Context) -> Vec<Violation> {
        if w.kind == "PodTemplate" {
            return Vec::new();
        }
        let objects = inventory::same_namespace("NetworkPolicy", w.namespace());
        let result = inventory::parse_all::<NetworkPolicy>("NetworkPolicy", &objects)
            .and_then(|policies| Self::check_with(w, &policies));
        result.unwrap_or_else(|e| {
            vec![Violation::new(format!("cannot decide coverage: {e}"), format!("{}/labels", w.meta_path))]
        })
    }
}

palisade_sdk::export_pod_rule!(NetworkPolicyCoverage);

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_sdk::check_pod;
    use palisade_sdk::inventory::testing;

    const DEPLOY: &str = r#"{"kind":"Deployment","metadata":{"name":"web","namespace":"shop"},
        "spec":{"template":{"metadata":{"labels":{"app":"web","tier":"front"}},"spec":{"containers":[{"name":"c"}]}}}}"#;

    fn directions(objects: &[&str]) -> Vec<String> {
        testing::set(objects);
        check_pod(NetworkPolicyCoverage, DEPLOY)
            .unwrap()
            .iter()
            .map(|v| v.message.rsplit(' ').next().unwrap().to_string())
            .collect()
    }

    #[test]
    fn nothing_selects_means_both_directions_fail() {
        assert_eq!(directions(&[]), ["ingress", "egress"]);
    }

    #[test]
    fn empty_selector_and_default_policy_types() {
        let deny_all =
            r#"{"kind":"NetworkPolicy","metadata":{"name":"d","namespace":"shop"},"spec":{"podSelector":{}}}"#;
        assert_eq!(directions(&[deny_all]), ["egress"], "without policyTypes and egress rules: ingress only");
        let both = r#"{"kind":"NetworkPolicy","metadata":{"name":"d","namespace":"shop"},"spec":{"podSelector":{},"policyTypes":["Ingress","Egress"]}}"#;
        assert!(directions(&[both]).is_empty());
        let egress_rules =
            r#"{"kind":"NetworkPolicy","metadata":{"name":"e","namespace":"shop"},"spec":{"egress":[{}]}}"#;
        assert!(directions(&[egress_rules]).is_empty(), "no podSelector selects all; egress rules imply Egress");
    }

    #[test]
    fn other_namespaces_and_selectors() {
        let elsewhere = r#"{"kind":"NetworkPolicy","metadata":{"name":"d","namespace":"other"},"spec":{"podSelector":{},"policyTypes":["Ingress","Egress"]}}"#;
        assert_eq!(directions(&[elsewhere]).len(), 2);
        let expr = r#"{"kind":"NetworkPolicy","metadata":{"name":"x","namespace":"shop"},"spec":{"podSelector":{"matchExpressions":[{"key":"tier","operator":"In","values":["front"]},{"key":"legacy","operator":"DoesNotExist"}]},"policyTypes":["Egress"]}}"#;
        assert_eq!(directions(&[expr]), ["ingress"]);
        let miss = r#"{"kind":"NetworkPolicy","metadata":{"name":"x","namespace":"shop"},"spec":{"podSelector":{"matchLabels":{"app":"db"}},"policyTypes":["Ingress","Egress"]}}"#;
        assert_eq!(directions(&[miss]).len(), 2);
        let not_in = r#"{"kind":"NetworkPolicy","metadata":{"name":"x","namespace":"shop"},"spec":{"podSelector":{"matchExpressions":[{"key":"app","operator":"NotIn","values":["web"]}]},"policyTypes":["Ingress"]}}"#;
        assert_eq!(directions(&[not_in]).len(), 2);
    }
}
