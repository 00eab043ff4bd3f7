//! Every namespace that runs workloads denies traffic by default, for ingress
//! and for egress: a pod no one wrote a policy for is then isolated, not open.
//!
//! Sources. Kubernetes: `NetworkPolicySpec` of `k8s.io/api/networking/v1`
//! (`types.go`: an empty `podSelector` selects every pod of the namespace;
//! without `policyTypes` a policy affects Ingress, and Egress when it has
//! egress rules; a policy type listed without rules allows nothing) and the
//! "Default policies" of
//! <https://kubernetes.io/docs/concepts/services-networking/network-policies/#default-policies>.
//! Cilium: `pkg/policy/api/rule.go` (`enableDefaultDeny`: "If not specified,
//! the default is true for each traffic direction that has rules"), the policy
//! enforcement modes of <https://docs.cilium.io/en/stable/security/policy/intro/>
//! and "Ingress/Egress Default Deny" of
//! <https://docs.cilium.io/en/stable/security/policy/language/>; the reading of
//! both lives in `palisade_sdk::cilium`. Peer: kubeaudit `netpols`
//! (`MissingDefaultDeny{Ingress,Egress,IngressAndEgress}NetworkPolicy`).
//!
//! What counts as the default deny of a direction, per namespace:
//! - a NetworkPolicy of the namespace with an empty (or absent) `podSelector`
//!   that affects the direction and has no rules for it (the documented
//!   default-deny policies; `ingress: [{}]` is an allow-all, not a deny);
//! - a CiliumNetworkPolicy of the namespace, or a CiliumClusterwideNetworkPolicy,
//!   with a rule whose `endpointSelector` selects every pod of the namespace
//!   (`{}`, or only namespace-wide keys the namespace satisfies, such as
//!   `io.kubernetes.pod.namespace NotIn [kube-system]`), that has rules of that
//!   direction (allow or deny: this puts the endpoints into Cilium's default
//!   deny), does not set `enableDefaultDeny` to `false` for it, and whose allow
//!   rules do not add up to every peer (entity `all`, or `cluster` and `world`).
//!   In Cilium `ingress: [{}]` allows nothing: it is the documented deny-all.
//!
//! The two differ on purpose, each following its own documentation. A
//! Kubernetes default deny is rule-less, as in the documented default-deny
//! policies and kubeaudit; a `podSelector: {}` policy with allow rules (such
//! as Kyverno's generated `allow-dns`) isolates every pod too but is an allow
//! policy, to pair with a default deny. In Cilium default deny is the mode a
//! selecting rule puts endpoints in, whatever it allows (Cilium's own
//! cluster-wide "default-deny" example allows DNS), so only allowing every
//! peer disqualifies a rule.
//!
//! Where a finding goes. A namespace is not always an object of the checked
//! set, so the rule evaluates Namespaces and workloads: a namespace's findings
//! go on its Namespace object when the checked set has one (a declared
//! namespace is one meant to run workloads, and its deny must be there before
//! its first pod; kubeaudit audits Namespaces the same way), and otherwise on
//! its first workload, in the order of `WORKLOAD_KINDS` (Pod,
//! ReplicationController, ReplicaSet, Deployment, DaemonSet, StatefulSet, Job,
//! CronJob) and then the inventory's (namespace, name); a workload the set
//! does not hold (nothing else reports for it) counts as first. That is one
//! finding per namespace and missing direction rather than one per workload,
//! and the same finding whatever the order of the inputs. Exceptions therefore
//! name that Namespace or that workload (kubeaudit's override labels on the
//! Namespace are not read: Palisade's exceptions live in its configuration).

use palisade_sdk::cilium::{Direction, NamespaceInfo, PolicySet, READ_KINDS, WORKLOAD_KINDS, namespace_object};
use palisade_sdk::inventory::{self, Header};
use palisade_sdk::{Context, HARDENED, Metadata, Rule, SettingsError, Severity, Violation};
use serde::Deserialize;

/// Namespaces, then the workload kinds in the order that picks a namespace's first workload.
const APPLIES_TO: [&str; 9] = palisade_sdk::join_kinds(["Namespace"], WORKLOAD_KINDS);
const READS: [&str; 12] = palisade_sdk::join_kinds(READ_KINDS, WORKLOAD_KINDS);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    #[serde(default = "both")]
    pub directions: Vec<Direction>,
}

fn both() -> Vec<Direction> {
    Direction::BOTH.to_vec()
}

impl Default for Settings {
    fn default() -> Self {
        Settings { directions: both() }
    }
}

pub struct NetworkDefaultDeny {
    directions: Vec<Direction>,
}

impl NetworkDefaultDeny {
    /// The checked directions for which `namespace` has no default deny among `policies`.
    pub fn missing(&self, namespace: &NamespaceInfo, policies: &PolicySet) -> Result<Vec<Direction>, String> {
        let mut out = Vec::new();
        for &d in &self.directions {
            if !policies.network_policies.iter().any(|p| p.denies_all(d)) && !cilium_denies(d, namespace, policies)? {
                out.push(d);
            }
        }
        Ok(out)
    }
}

/// Whether a Cilium rule puts every pod of `namespace` into default deny for `d`.
fn cilium_denies(d: Direction, namespace: &NamespaceInfo, policies: &PolicySet) -> Result<bool, String> {
    for policy in &policies.cilium {
        for (_, rule) in policy.rules() {
            if rule.default_deny(d) && !rule.allows_every_peer(d) && policy.selects_namespace(rule, namespace)? {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// Whether `header` is the first workload of its namespace in the checked set
/// (or is not in it, as nothing else would report for its namespace then).
fn is_first_workload(header: &Header) -> Result<bool, String> {
    for kind in WORKLOAD_KINDS {
        if let Some(first) = inventory::same_namespace_shared(kind, header.namespace()).first() {
            let first = Header::read(first)?;
            return Ok(first.kind == header.kind && first.metadata.name == header.metadata.name);
        }
    }
    Ok(true)
}

impl Rule for NetworkDefaultDeny {
    type Settings = Settings;

    fn metadata() -> Metadata {
        Metadata {
            id: "network-default-deny",
            title: "Namespaces must deny ingress and egress by default",
            description: "Fails a namespace of the checked set that has no default deny for a direction of the \
                          setting directions (both by default), once per namespace and direction: on its \
                          Namespace object, or, when the set has none, on its first workload. A default deny is \
                          a NetworkPolicy of the namespace with podSelector {} that affects the direction \
                          (policyTypes; Ingress when unset) and has no rules for it, or a CiliumNetworkPolicy of \
                          the namespace or CiliumClusterwideNetworkPolicy whose endpointSelector selects every \
                          pod of the namespace and that has rules of that direction, without enableDefaultDeny \
                          false for it and without allowing every peer (entity all).",
            rationale: "Kubernetes lets every pod that no NetworkPolicy selects send and receive anything. \
                        Policies written workload by workload leave each new or renamed workload open until \
                        someone writes its own; a namespace-wide default deny isolates it from its first \
                        packet, so traffic flows only where an allow policy says it may.",
            remediation: "Add a NetworkPolicy named default-deny to each namespace with podSelector: {} and \
                          policyTypes: [Ingress, Egress] and no rules (with Cilium, a CiliumNetworkPolicy with \
                          endpointSelector: {}, ingress: [{}] and egress: [{}] does the same), then allow each \
                          flow, DNS egress included, with its own policy.",
            severity: Severity::Medium,
            category: "Network",
            applies_to: &APPLIES_TO,
            reads_kinds: &READS,
            settings_schema: r#"{"type":"object","additionalProperties":false,"properties":{
                "directions":{"type":"array","items":{"enum":["Ingress","Egress"]},"uniqueItems":true,
                "default":["Ingress","Egress"],"description":"The directions each namespace must deny by default."}}}"#,
            references: &[
                "https://kubernetes.io/docs/concepts/services-networking/network-policies/#default-policies",
                "https://kubernetes.io/docs/reference/kubernetes-api/policy-resources/network-policy-v1/",
                "https://docs.cilium.io/en/stable/security/policy/intro/",
                "https://docs.cilium.io/en/stable/security/policy/language/",
                "https://github.com/Shopify/kubeaudit/blob/main/docs/auditors/netpols.md",
            ],
            profiles: HARDENED,
        }
    }

    fn configure(s: Settings) -> Result<Self, SettingsError> {
        let mut directions = s.directions;
        directions.sort();
        directions.dedup();
        Ok(NetworkDefaultDeny { directions })
    }

    fn inactive_reason(&self) -> Option<String> {
        self.directions.is_empty().then(|| "the setting directions is empty: no direction is checked".to_string())
    }

    fn evaluate(&self, object: &str, _: &Context) -> Result<Vec<Violation>, String> {
        if self.directions.is_empty() {
            return Ok(Vec::new());
        }
        let header = Header::read(object)?;
        let (namespace, path, on_workload) = if header.kind == "Namespace" {
            (NamespaceInfo::from_meta(&header.metadata), "/metadata/name", String::new())
        } else if WORKLOAD_KINDS.contains(&header.kind.as_str()) {
            let name = header.namespace();
            if name.map(namespace_object).transpose()?.flatten().is_some() || !is_first_workload(&header)? {
                return Ok(Vec::new());
            }
            let note = format!(
                " (reported on {} {:?}, the namespace's first workload, as the checked set has no Namespace for it)",
                header.kind, header.metadata.name
            );
            (NamespaceInfo::read(name)?, if name.is_some() { "/metadata/namespace" } else { "/metadata" }, note)
        } else {
            return Ok(Vec::new());
        };
        let policies = PolicySet::read(namespace.name.as_deref())?;
        let missing = self.missing(&namespace, &policies)?;
        Ok(missing
            .into_iter()
            .map(|d| {
                Violation::new(
                    format!(
                        "namespace {} has no default deny for {dir}: neither a NetworkPolicy nor a Cilium policy \
                         denies {dir} to all its pods by default; add a NetworkPolicy with podSelector {{}}, {} in \
                         policyTypes and no {dir} rules{on_workload}",
                        namespace.display(),
                        d.as_str(),
                        dir = d.field(),
                    ),
                    path,
                )
            })
            .collect())
    }
}

palisade_sdk::export_rule!(NetworkDefaultDeny);

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_sdk::configure;
    use palisade_sdk::inventory::testing;

    const SHOP: &str =
        r#"{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"shop","labels":{"team":"payments"}}}"#;

    const DEFAULT_DENY: &str = r#"{"apiVersion":"networking.k8s.io/v1","kind":"NetworkPolicy",
        "metadata":{"name":"default-deny","namespace":"shop"},
        "spec":{"podSelector":{},"policyTypes":["Ingress","Egress"]}}"#;

    const WEB: &str = r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","namespace":"shop"},
        "spec":{"selector":{"matchLabels":{"app":"web"}},"template":{"metadata":{"labels":{"app":"web"}},
        "spec":{"containers":[{"name":"web","image":"nginx:1.27"}]}}}}"#;

    const API: &str = r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"api","namespace":"shop"},
        "spec":{"template":{"metadata":{"labels":{"app":"api"}},"spec":{"containers":[{"name":"api"}]}}}}"#;

    fn netpol(name: &str, spec: &str) -> String {
        format!(
            r#"{{"apiVersion":"networking.k8s.io/v1","kind":"NetworkPolicy","metadata":{{"name":"{name}","namespace":"shop"}},"spec":{spec}}}"#
        )
    }

    fn cnp(spec: &str) -> String {
        format!(
            r#"{{"apiVersion":"cilium.io/v2","kind":"CiliumNetworkPolicy","metadata":{{"name":"deny","namespace":"shop"}},"spec":{spec}}}"#
        )
    }

    fn ccnp(spec: &str) -> String {
        format!(
            r#"{{"apiVersion":"cilium.io/v2","kind":"CiliumClusterwideNetworkPolicy","metadata":{{"name":"deny"}},"spec":{spec}}}"#
        )
    }

    /// The missing directions reported for `object`, with `others` as the rest of the checked set.
    fn missing_with(rule: &NetworkDefaultDeny, object: &str, others: &[&str]) -> Vec<String> {
        let mut set: Vec<&str> = others.to_vec();
        set.push(object);
        testing::set(&set);
        rule.evaluate(object, &Context::default())
            .unwrap()
            .iter()
            .map(|v| v.message.split(':').next().unwrap().rsplit(' ').next().unwrap().to_string())
            .collect()
    }

    fn missing(object: &str, others: &[&str]) -> Vec<String> {
        missing_with(&configure::<NetworkDefaultDeny>("{}").unwrap(), object, others)
    }

    #[test]
    fn a_namespace_without_policies_misses_both() {
        assert_eq!(missing(SHOP, &[]), ["ingress", "egress"]);
        testing::set(&[SHOP]);
        let v = configure::<NetworkDefaultDeny>("{}").unwrap().evaluate(SHOP, &Context::default()).unwrap();
        assert_eq!(v[0].path, "/metadata/name");
        assert_eq!(
            v[0].message,
            "namespace shop has no default deny for ingress: neither a NetworkPolicy nor a Cilium policy denies \
             ingress to all its pods by default; add a NetworkPolicy with podSelector {}, Ingress in policyTypes and \
             no ingress rules"
        );
    }

    #[test]
    fn kubernetes_default_deny_policies() {
        assert!(missing(SHOP, &[DEFAULT_DENY]).is_empty());
        let ingress_only = netpol("deny-in", r#"{"podSelector":{},"policyTypes":["Ingress"]}"#);
        assert_eq!(missing(SHOP, &[&ingress_only]), ["egress"]);
        let implied = netpol("deny-in", r#"{"podSelector":{}}"#);
        assert_eq!(missing(SHOP, &[&implied]), ["egress"], "Ingress is implied without policyTypes");
        let some_pods =
            netpol("deny-web", r#"{"podSelector":{"matchLabels":{"app":"web"}},"policyTypes":["Ingress","Egress"]}"#);
        assert_eq!(missing(SHOP, &[&some_pods]), ["ingress", "egress"]);
        let allow_all = netpol(
            "allow-all",
            r#"{"podSelector":{},"policyTypes":["Ingress","Egress"],"ingress":[{}],"egress":[{}]}"#,
        );
        assert_eq!(missing(SHOP, &[&allow_all]), ["ingress", "egress"], "rules are not a deny");
        // A default deny next to an allow-all still is one: the allow-all is network-policy-permissive's finding.
        assert!(missing(SHOP, &[DEFAULT_DENY, &allow_all]).is_empty());
        let elsewhere = DEFAULT_DENY.replace(r#""namespace":"shop""#, r#""namespace":"other""#);
        assert_eq!(missing(SHOP, &[&elsewhere]).len(), 2);
    }

    /// The missing directions reported for `object` when the checked set is `set`, in that order.
    fn missing_in(set: &[&str], object: &str) -> Vec<String> {
        testing::set(set);
        let v = configure::<NetworkDefaultDeny>("{}").unwrap().evaluate(object, &Context::default()).unwrap();
        v.iter().map(|v| v.message.split(':').next().unwrap().rsplit(' ').next().unwrap().to_string()).collect()
    }

    #[test]
    fn workloads_carry_the_finding_only_without_a_namespace_object_and_only_the_first() {
        // The host lists objects sorted by namespace and name; the test inventory keeps this order.
        assert_eq!(missing_in(&[API, WEB], API), ["ingress", "egress"]);
        assert!(missing_in(&[API, WEB], WEB).is_empty(), "api is the namespace's first workload");
        assert!(missing_in(&[SHOP, API, WEB], API).is_empty(), "the Namespace carries the finding");
        assert!(missing_in(&[API, WEB, DEFAULT_DENY], API).is_empty());
        let pod = r#"{"kind":"Pod","metadata":{"name":"zz","namespace":"shop"},"spec":{"containers":[{"name":"c"}]}}"#;
        assert_eq!(missing_in(&[API, pod], pod).len(), 2, "Pods come before Deployments");
        assert!(missing_in(&[API, pod], API).is_empty());
        let other = API.replace(r#""namespace":"shop""#, r#""namespace":"other""#);
        assert_eq!(missing_in(&[API, &other], &other).len(), 2, "each namespace has its first workload");
        assert_eq!(missing_in(&[], API).len(), 2, "a workload missing from the set reports for its namespace");
        testing::set(&[API]);
        let v = configure::<NetworkDefaultDeny>("{}").unwrap().evaluate(API, &Context::default()).unwrap();
        assert_eq!(v[0].path, "/metadata/namespace");
        assert!(
            v[0].message.ends_with(
                r#"no ingress rules (reported on Deployment "api", the namespace's first workload, as the checked set has no Namespace for it)"#
            ),
            "{}",
            v[0].message
        );
        // Neither a workload nor a Namespace.
        assert!(missing(r#"{"kind":"Service","metadata":{"name":"s","namespace":"shop"}}"#, &[]).is_empty());
        assert!(missing(r#"{"kind":"PodTemplate","metadata":{"name":"t","namespace":"shop"}}"#, &[]).is_empty());
    }

    #[test]
    fn manifests_without_namespaces_go_together() {
        let job = r#"{"kind":"Job","metadata":{"name":"migrate"},"spec":{"template":{"spec":{"containers":[{"name":"m"}]}}}}"#;
        let deny = r#"{"kind":"NetworkPolicy","metadata":{"name":"d"},"spec":{"podSelector":{},"policyTypes":["Ingress","Egress"]}}"#;
        assert!(missing(job, &[deny]).is_empty());
        assert!(missing(job, &[DEFAULT_DENY]).len() == 2, "shop's deny is not the unset namespace's");
        testing::set(&[job]);
        let v = configure::<NetworkDefaultDeny>("{}").unwrap().evaluate(job, &Context::default()).unwrap();
        assert_eq!(v[0].path, "/metadata");
        assert!(v[0].message.starts_with("namespace (unset"), "{}", v[0].message);
    }

    #[test]
    fn cilium_policies_of_the_namespace() {
        // The Cilium connectivity test's all-ingress-deny and all-egress-deny, in one rule.
        let deny = cnp(r#"{"endpointSelector":{},"ingress":[{}],"egress":[{}]}"#);
        assert!(missing(SHOP, &[&deny]).is_empty());
        let ingress_only = cnp(r#"{"endpointSelector":{},"ingress":[{}]}"#);
        assert_eq!(missing(SHOP, &[&ingress_only]), ["egress"]);
        let opted_out =
            cnp(r#"{"endpointSelector":{},"ingress":[{}],"egress":[{}],"enableDefaultDeny":{"ingress":false}}"#);
        assert_eq!(missing(SHOP, &[&opted_out]), ["ingress"]);
        // Default deny with allow rules is still default deny; allowing every peer is not.
        let allows_dns = cnp(
            r#"{"endpointSelector":{},"egress":[{"toEndpoints":[{"matchLabels":{"k8s:io.kubernetes.pod.namespace":"kube-system","k8s-app":"kube-dns"}}],
            "toPorts":[{"ports":[{"port":"53","protocol":"UDP"}]}]}],"ingressDeny":[{"fromEntities":["world"]}]}"#,
        );
        assert!(missing(SHOP, &[&allows_dns]).is_empty());
        let allows_all = cnp(r#"{"endpointSelector":{},"ingress":[{"fromEntities":["all"]}],"egress":[{}]}"#);
        assert_eq!(missing(SHOP, &[&allows_all]), ["ingress"]);
        let some_pods = cnp(r#"{"endpointSelector":{"matchLabels":{"app":"web"}},"ingress":[{}],"egress":[{}]}"#);
        assert_eq!(missing(SHOP, &[&some_pods]).len(), 2);
        let specs = r#"{"apiVersion":"cilium.io/v2","kind":"CiliumNetworkPolicy","metadata":{"name":"d","namespace":"shop"},
            "specs":[{"endpointSelector":{},"ingress":[{}]},{"endpointSelector":{},"egressDeny":[{"toEntities":["all"]}]}]}"#;
        assert!(missing(SHOP, &[specs]).is_empty());
        let elsewhere = deny.replace(r#""namespace":"shop""#, r#""namespace":"other""#);
        assert_eq!(missing(SHOP, &[&elsewhere]).len(), 2);
    }

    #[test]
    fn cilium_clusterwide_policies() {
        // Cilium's documented cluster-wide default deny, kube-system exempted.
        let deny = ccnp(
            r#"{"endpointSelector":{"matchExpressions":[{"key":"io.kubernetes.pod.namespace","operator":"NotIn","values":["kube-system"]}]},
            "ingress":[{}],"egress":[{"toEndpoints":[{"matchLabels":{"io.kubernetes.pod.namespace":"kube-system","k8s-app":"kube-dns"}}],
            "toPorts":[{"ports":[{"port":"53","protocol":"UDP"}],"rules":{"dns":[{"matchPattern":"*"}]}}]}]}"#,
        );
        assert!(missing(SHOP, &[&deny]).is_empty());
        let kube_system = r#"{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"kube-system"}}"#;
        assert_eq!(missing(kube_system, &[&deny]).len(), 2);
        let by_label = ccnp(
            r#"{"endpointSelector":{"matchLabels":{"io.cilium.k8s.namespace.labels.team":"payments"}},"ingress":[{}],"egress":[{}]}"#,
        );
        assert!(missing(SHOP, &[&by_label]).is_empty(), "the Namespace's labels count");
        assert_eq!(missing(kube_system, &[&by_label]).len(), 2);
        let pods = ccnp(r#"{"endpointSelector":{"matchLabels":{"app":"web"}},"ingress":[{}],"egress":[{}]}"#);
        assert_eq!(missing(SHOP, &[&pods]).len(), 2);
        let hosts = ccnp(r#"{"nodeSelector":{},"ingress":[{}],"egress":[{}]}"#);
        assert_eq!(missing(SHOP, &[&hosts]).len(), 2, "a host policy selects no pod");
    }

    #[test]
    fn settings() {
        let ingress = configure::<NetworkDefaultDeny>(r#"{"directions":["Ingress"]}"#).unwrap();
        assert_eq!(missing_with(&ingress, SHOP, &[]), ["ingress"]);
        let twice = configure::<NetworkDefaultDeny>(r#"{"directions":["Egress","Ingress","Egress"]}"#).unwrap();
        assert_eq!(missing_with(&twice, SHOP, &[]), ["ingress", "egress"]);
        let none = configure::<NetworkDefaultDeny>(r#"{"directions":[]}"#).unwrap();
        assert!(none.inactive_reason().unwrap().contains("directions"));
        assert!(missing_with(&none, SHOP, &[]).is_empty());
        assert!(configure::<NetworkDefaultDeny>("{}").unwrap().inactive_reason().is_none());
        let err = configure::<NetworkDefaultDeny>(r#"{"directions":["Ingres"]}"#).err().unwrap();
        assert!(err.field.starts_with("/directions"), "{}", err.field);
        assert!(err.message.contains("unknown variant"), "{}", err.message);
        let err = configure::<NetworkDefaultDeny>(r#"{"direction":["Ingress"]}"#).err().unwrap();
        assert_eq!(err.field, "/direction");
    }

    #[test]
    fn unreadable_policies_are_errors_that_name_them() {
        let broken = netpol("broken", r#"{"podSelector":{"matchLabels":"web"}}"#);
        testing::set(&[SHOP, &broken]);
        let err = configure::<NetworkDefaultDeny>("{}").unwrap().evaluate(SHOP, &Context::default()).unwrap_err();
        assert!(err.contains(r#"NetworkPolicy "broken""#), "{err}");
    }

    #[test]
    fn metadata_lists_namespaces_workloads_and_what_it_reads() {
        let m = NetworkDefaultDeny::metadata();
        assert_eq!(
            m.applies_to,
            [
                "Namespace",
                "Pod",
                "ReplicationController",
                "ReplicaSet",
                "Deployment",
                "DaemonSet",
                "StatefulSet",
                "Job",
                "CronJob"
            ]
        );
        assert_eq!(
            &m.reads_kinds[..4],
            ["NetworkPolicy", "CiliumNetworkPolicy", "CiliumClusterwideNetworkPolicy", "Namespace"]
        );
        assert_eq!(&m.reads_kinds[4..], &m.applies_to[1..]);
        let schema: serde_json::Value = serde_json::from_str(m.settings_schema).unwrap();
        assert_eq!(schema["properties"]["directions"]["default"], serde_json::json!(["Ingress", "Egress"]));
        assert_eq!(m.profiles, HARDENED);
    }
}
