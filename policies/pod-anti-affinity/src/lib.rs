//! A replicated workload spreads its pods across nodes.
//!
//! Source: `PodAntiAffinity` and `TopologySpreadConstraint` of
//! `k8s.io/api/core/v1`; the well-known label `kubernetes.io/hostname`
//! (<https://kubernetes.io/docs/concepts/scheduling-eviction/assign-pod-node/#inter-pod-affinity-and-anti-affinity>,
//! <https://kubernetes.io/docs/concepts/scheduling-eviction/topology-spread-constraints/>).
//! kube-score `deployment-has-host-podantiaffinity`,
//! `statefulset-has-host-podantiaffinity`. The term's selector must select
//! the workload's own pods, or it spreads nothing. An unset `spec.replicas` is
//! one replica (the API default), where kube-score assumes several.

use palisade_sdk::selector::LabelSelector;
use palisade_sdk::{
    Context, Fields, HARDENED, Metadata, NO_SETTINGS_SCHEMA, NoSettings, PodRule, SettingsError, Severity, Violation,
    Workload,
};

const HOSTNAME: &str = "kubernetes.io/hostname";

pub struct PodAntiAffinity;

fn selects_own(selector: &Option<LabelSelector>, w: &Workload) -> bool {
    selector.as_ref().is_some_and(|s| s.matches(&w.pod_meta.labels).unwrap_or(false))
}

impl PodRule for PodAntiAffinity {
    type Settings = NoSettings;

    const READS: Fields = Fields::LABELS.union(Fields::AFFINITY).union(Fields::TOPOLOGY_SPREAD);

    fn metadata() -> Metadata {
        Metadata {
            id: "pod-anti-affinity",
            title: "Replicated workloads must spread across nodes",
            description: "Fails a Deployment, StatefulSet, ReplicaSet or ReplicationController with more than \
                          one replica whose pods have neither a pod anti-affinity term (required or \
                          preferred) on kubernetes.io/hostname selecting its own pods, nor a topology \
                          spread constraint on that key selecting them.",
            rationale: "Replicas scheduled on the same node fail together when that node does: the \
                        replication buys no availability.",
            remediation: "Add a preferredDuringSchedulingIgnoredDuringExecution pod anti-affinity term with \
                          topologyKey: kubernetes.io/hostname and a labelSelector matching the pod \
                          template's labels, or a topologySpreadConstraint on kubernetes.io/hostname.",
            severity: Severity::Medium,
            category: "Availability",
            applies_to: &["Deployment", "StatefulSet", "ReplicaSet", "ReplicationController"],
            reads_kinds: &[],
            settings_schema: NO_SETTINGS_SCHEMA,
            references: &[
                "https://kubernetes.io/docs/concepts/scheduling-eviction/assign-pod-node/#inter-pod-affinity-and-anti-affinity",
                "https://kubernetes.io/docs/concepts/scheduling-eviction/topology-spread-constraints/",
            ],
            profiles: HARDENED,
        }
    }

    fn configure(_: NoSettings) -> Result<Self, SettingsError> {
        Ok(PodAntiAffinity)
    }

    fn check(&self, w: &Workload, _: &Context) -> Vec<Violation> {
        let replicas = w.desired_replicas().unwrap_or(1);
        if replicas <= 1 {
            return Vec::new();
        }
        let anti = w.spec.affinity.as_ref().and_then(|a| a.pod_anti_affinity.as_ref());
        let by_affinity = anti.is_some_and(|a| {
            a.required_during_scheduling_ignored_during_execution
                .iter()
                .chain(a.preferred_during_scheduling_ignored_during_execution.iter().map(|p| &p.pod_affinity_term))
                .any(|t| t.topology_key == HOSTNAME && selects_own(&t.label_selector, w))
        });
        let by_spread = w
            .spec
            .topology_spread_constraints
            .iter()
            .any(|c| c.topology_key == HOSTNAME && selects_own(&c.label_selector, w));
        if by_affinity || by_spread {
            return Vec::new();
        }
        vec![Violation::new(
            format!(
                "{} {:?} runs {replicas} replicas without pod anti-affinity or a topology spread constraint on \
                 {HOSTNAME} for its own pods: one node failure can stop them all; add a preferred anti-affinity \
                 term on that key",
                w.kind,
                w.name()
            ),
            w.spec_field("affinity/podAntiAffinity"),
        )]
    }
}

palisade_sdk::export_pod_rule!(PodAntiAffinity);

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_sdk::check_pod;

    fn count(replicas: i64, extra: &str) -> usize {
        let json = format!(
            r#"{{"kind":"Deployment","metadata":{{"name":"web"}},"spec":{{"replicas":{replicas},"template":{{"metadata":{{"labels":{{"app":"web"}}}},"spec":{{"containers":[]{extra}}}}}}}}}"#
        );
        check_pod(PodAntiAffinity, &json).unwrap().len()
    }

    #[test]
    fn spreading() {
        assert_eq!(count(1, ""), 0);
        assert_eq!(count(2, ""), 1);
        let json = r#"{"kind":"Deployment","metadata":{"name":"web"},"spec":{"replicas":2,"template":{"spec":{}}}}"#;
        assert_eq!(
            check_pod(PodAntiAffinity, json).unwrap()[0].message,
            "Deployment \"web\" runs 2 replicas without pod anti-affinity or a topology spread constraint on \
             kubernetes.io/hostname for its own pods: one node failure can stop them all; add a preferred \
             anti-affinity term on that key"
        );
        let preferred = r#","affinity":{"podAntiAffinity":{"preferredDuringSchedulingIgnoredDuringExecution":[{"weight":100,"podAffinityTerm":{"topologyKey":"kubernetes.io/hostname","labelSelector":{"matchLabels":{"app":"web"}}}}]}}"#;
        assert_eq!(count(2, preferred), 0);
        let zone = preferred.replace("kubernetes.io/hostname", "topology.kubernetes.io/zone");
        assert_eq!(count(2, &zone), 1, "zones are not nodes");
        let other = preferred.replace(r#"{"app":"web"}"#, r#"{"app":"db"}"#);
        assert_eq!(count(2, &other), 1, "must select its own pods");
        let required = r#","affinity":{"podAntiAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":[{"topologyKey":"kubernetes.io/hostname","labelSelector":{"matchExpressions":[{"key":"app","operator":"In","values":["web"]}]}}]}}"#;
        assert_eq!(count(3, required), 0);
        let spread = r#","topologySpreadConstraints":[{"maxSkew":1,"topologyKey":"kubernetes.io/hostname","whenUnsatisfiable":"ScheduleAnyway","labelSelector":{"matchLabels":{"app":"web"}}}]"#;
        assert_eq!(count(2, spread), 0);
    }
}
