//! Every workload is selected, in its namespace, by a network policy that
//! isolates it for ingress and by one that isolates it for egress: a
//! Kubernetes NetworkPolicy, a CiliumNetworkPolicy or a
//! CiliumClusterwideNetworkPolicy.
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
//!
//! Cilium (`pkg/policy/api` `rule.go`, `selector.go`; the agent's translation in
//! `pkg/k8s/apis/cilium.io/utils`; <https://docs.cilium.io/en/stable/security/policy/intro/>):
//! a rule (`spec` or each of `specs`) isolates the pods its `endpointSelector`
//! selects for a direction when it has rules of that direction (allow or deny)
//! and does not set `enableDefaultDeny` to `false` for it. Selector keys may
//! carry a source prefix (`k8s:`, `any:`); `io.kubernetes.pod.namespace`
//! selects the namespace, `io.cilium.k8s.namespace.labels.*` its labels (from
//! the Namespace object of the checked set), `io.cilium.k8s.policy.serviceaccount`
//! the service account. A CiliumNetworkPolicy applies in its own namespace, a
//! clusterwide one in every namespace. The reading lives in `palisade_sdk::cilium`.

use palisade_sdk::cilium::{Direction, Endpoint, NamespaceInfo, PolicySet, READ_KINDS, WORKLOAD_KINDS};
use palisade_sdk::{
    Context, Fields, HARDENED, Metadata, NO_SETTINGS_SCHEMA, NoSettings, PodRule, SettingsError, Severity, Violation,
    Workload,
};

pub const KINDS: [&str; 8] = WORKLOAD_KINDS;

pub struct NetworkPolicyCoverage;

impl NetworkPolicyCoverage {
    /// Whether a policy of `policies` isolates the pods of `w` for `d`.
    fn covered(d: Direction, w: &Workload, endpoint: &Endpoint, policies: &PolicySet) -> Result<bool, String> {
        for p in policies.network_policies.iter().filter(|p| p.affects(d)) {
            if p.selects(&w.pod_meta.labels)? {
                return Ok(true);
            }
        }
        for p in &policies.cilium {
            for (_, rule) in p.rules() {
                if rule.default_deny(d) && p.selects(rule, endpoint)? {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    pub fn check_with(w: &Workload, namespace: &NamespaceInfo, policies: &PolicySet) -> Result<Vec<Violation>, String> {
        let endpoint = Endpoint::of(w, namespace);
        let mut out = Vec::new();
        for d in Direction::BOTH {
            if !Self::covered(d, w, &endpoint, policies)? {
                let open = match d {
                    Direction::Ingress => "whatever can reach them may connect",
                    Direction::Egress => "they may connect anywhere",
                };
                out.push(Violation::new(
                    format!(
                        "no NetworkPolicy or CiliumNetworkPolicy in namespace {}, nor CiliumClusterwideNetworkPolicy, \
                         selects the pods of {} {:?} for {}: {open}; add a NetworkPolicy selecting them, with {} in \
                         policyTypes",
                        namespace.display(),
                        w.kind,
                        w.name(),
                        d.field(),
                        d.as_str()
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

    const READS: Fields = Fields::LABELS.union(Fields::SERVICE_ACCOUNT);

    fn metadata() -> Metadata {
        Metadata {
            id: "network-policy-coverage",
            title: "Workloads must be isolated by network policies for ingress and egress",
            description: "Fails a workload whose pods no network policy of the checked set isolates for ingress, \
                          or none for egress: a NetworkPolicy of the same namespace that selects them and affects \
                          the direction, or a CiliumNetworkPolicy of the same namespace or \
                          CiliumClusterwideNetworkPolicy whose endpointSelector selects them and that has rules \
                          of the direction without enableDefaultDeny false for it.",
            rationale: "Pods accept traffic from, and send it to, anything in the cluster until a \
                        network policy selects them. Without isolation one compromised pod can reach \
                        every database and the cloud metadata service.",
            remediation: "Add a default-deny NetworkPolicy (podSelector: {}, policyTypes: [Ingress, \
                          Egress]) to the namespace and policies that allow the flows each workload needs \
                          (or the Cilium equivalents: endpointSelector: {} with ingress: [{}] and egress: [{}]).",
            severity: Severity::High,
            category: "Network",
            applies_to: &KINDS,
            reads_kinds: &READ_KINDS,
            settings_schema: NO_SETTINGS_SCHEMA,
            references: &[
                "https://kubernetes.io/docs/concepts/services-networking/network-policies/",
                "https://kubernetes.io/docs/reference/kubernetes-api/policy-resources/network-policy-v1/",
                "https://docs.cilium.io/en/stable/security/policy/intro/",
                "https://docs.cilium.io/en/stable/security/policy/language/",
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
        let result = NamespaceInfo::read(w.namespace()).and_then(|namespace| {
            let policies = PolicySet::read(w.namespace())?;
            Self::check_with(w, &namespace, &policies)
        });
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
            .map(|v| v.message.split(':').next().unwrap().rsplit(' ').next().unwrap().to_string())
            .collect()
    }

    #[test]
    fn nothing_selects_means_both_directions_fail() {
        assert_eq!(directions(&[]), ["ingress", "egress"]);
        let messages: Vec<String> =
            check_pod(NetworkPolicyCoverage, DEPLOY).unwrap().into_iter().map(|v| v.message).collect();
        assert_eq!(
            messages,
            [
                "no NetworkPolicy or CiliumNetworkPolicy in namespace shop, nor CiliumClusterwideNetworkPolicy, \
                 selects the pods of Deployment \"web\" for ingress: whatever can reach them may connect; add a \
                 NetworkPolicy selecting them, with Ingress in policyTypes",
                "no NetworkPolicy or CiliumNetworkPolicy in namespace shop, nor CiliumClusterwideNetworkPolicy, \
                 selects the pods of Deployment \"web\" for egress: they may connect anywhere; add a NetworkPolicy \
                 selecting them, with Egress in policyTypes",
            ]
        );
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

    fn cnp(namespace: &str, spec: &str) -> String {
        format!(
            r#"{{"apiVersion":"cilium.io/v2","kind":"CiliumNetworkPolicy","metadata":{{"name":"web","namespace":"{namespace}"}},"spec":{spec}}}"#
        )
    }

    fn ccnp(spec: &str) -> String {
        format!(
            r#"{{"apiVersion":"cilium.io/v2","kind":"CiliumClusterwideNetworkPolicy","metadata":{{"name":"c"}},"spec":{spec}}}"#
        )
    }

    #[test]
    fn cilium_network_policies_of_the_namespace() {
        let both = cnp(
            "shop",
            r#"{"endpointSelector":{"matchLabels":{"app":"web"}},"ingress":[{"fromEndpoints":[{"matchLabels":{"app":"lb"}}]}],"egress":[{}]}"#,
        );
        assert!(directions(&[&both]).is_empty());
        let prefixed = cnp(
            "shop",
            r#"{"endpointSelector":{"matchLabels":{"k8s:app":"web","any:tier":"front"}},"ingress":[{}],"egress":[{}]}"#,
        );
        assert!(directions(&[&prefixed]).is_empty());
        let every_pod = cnp("shop", r#"{"endpointSelector":{},"ingressDeny":[{"fromEntities":["world"]}]}"#);
        assert_eq!(directions(&[&every_pod]), ["egress"], "a deny rule puts the pods into default deny too");
        let elsewhere = cnp("other", r#"{"endpointSelector":{},"ingress":[{}],"egress":[{}]}"#);
        assert_eq!(directions(&[&elsewhere]).len(), 2);
        let opted_out = cnp(
            "shop",
            r#"{"endpointSelector":{},"ingress":[{"fromEntities":["cluster"]}],"egress":[{"toEntities":["cluster"]}],"enableDefaultDeny":{"ingress":false,"egress":false}}"#,
        );
        assert_eq!(directions(&[&opted_out]).len(), 2, "enableDefaultDeny: false isolates nothing");
        let other_pods =
            cnp("shop", r#"{"endpointSelector":{"matchLabels":{"app":"db"}},"ingress":[{}],"egress":[{}]}"#);
        assert_eq!(directions(&[&other_pods]).len(), 2);
        let no_rules = cnp("shop", r#"{"endpointSelector":{},"enableDefaultDeny":{"ingress":true,"egress":true}}"#);
        assert_eq!(directions(&[&no_rules]).len(), 2, "a rule without ingress or egress has no effect");
        let specs = r#"{"apiVersion":"cilium.io/v2","kind":"CiliumNetworkPolicy","metadata":{"name":"s","namespace":"shop"},
            "specs":[{"endpointSelector":{"matchLabels":{"app":"web"}},"egress":[{}]},
                     {"endpointSelector":{"matchLabels":{"io.cilium.k8s.policy.serviceaccount":"default"}},"ingress":[{}]}]}"#;
        assert!(directions(&[specs]).is_empty(), "specs and the default service account");
    }

    #[test]
    fn cilium_clusterwide_policies() {
        let here = ccnp(
            r#"{"endpointSelector":{"matchLabels":{"k8s:io.kubernetes.pod.namespace":"shop","app":"web"}},"ingress":[{}],"egress":[{}]}"#,
        );
        assert!(directions(&[&here]).is_empty());
        let there = ccnp(
            r#"{"endpointSelector":{"matchLabels":{"io.kubernetes.pod.namespace":"other"}},"ingress":[{}],"egress":[{}]}"#,
        );
        assert_eq!(directions(&[&there]).len(), 2);
        let everywhere = ccnp(
            r#"{"endpointSelector":{"matchExpressions":[{"key":"io.kubernetes.pod.namespace","operator":"NotIn","values":["kube-system"]}]},"egress":[{}]}"#,
        );
        assert_eq!(directions(&[&everywhere]), ["ingress"]);
        let by_team = ccnp(
            r#"{"endpointSelector":{"matchLabels":{"io.cilium.k8s.namespace.labels.team":"payments"}},"ingress":[{}],"egress":[{}]}"#,
        );
        assert_eq!(directions(&[&by_team]).len(), 2, "no Namespace object, no namespace labels");
        let shop = r#"{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"shop","labels":{"team":"payments"}}}"#;
        assert!(directions(&[&by_team, shop]).is_empty());
        let hosts = ccnp(r#"{"nodeSelector":{},"ingress":[{}],"egress":[{}]}"#);
        assert_eq!(directions(&[&hosts]).len(), 2);
    }

    #[test]
    fn unreadable_cilium_policies_are_reported() {
        let bad = cnp(
            "shop",
            r#"{"endpointSelector":{"matchExpressions":[{"key":"app","operator":"Equals","values":["web"]}]},"ingress":[{}]}"#,
        );
        testing::set(&[&bad]);
        let v = check_pod(NetworkPolicyCoverage, DEPLOY).unwrap();
        assert_eq!(v.len(), 1);
        assert!(
            v[0].message.starts_with("cannot decide coverage: CiliumNetworkPolicy \"web\": unknown selector operator"),
            "{}",
            v[0].message
        );
    }
}
