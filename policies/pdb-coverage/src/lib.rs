//! Every replicated Deployment and StatefulSet is selected by a
//! PodDisruptionBudget in its namespace.
//!
//! Source: `PodDisruptionBudgetSpec.selector` of `k8s.io/api/policy/v1` (an
//! empty selector selects every pod of the namespace, a null one none);
//! `spec.replicas` defaults to 1; an HPA's `minReplicas` defaults to 1
//! (<https://kubernetes.io/docs/concepts/workloads/pods/disruptions/>).
//! kube-score `deployment-has-poddisruptionbudget`,
//! `statefulset-has-poddisruptionbudget`.
//!
//! Deliberate difference (see `tests/peer_suites.rs`): kube-score and Polaris
//! also ask single-replica workloads (`spec.replicas` unset) for a budget;
//! Palisade applies the API default of one replica and asks only replicated ones.

use palisade_sdk::inventory;
use palisade_sdk::objects::{PodDisruptionBudget, hpa_for};
use palisade_sdk::{
    Context, Fields, HARDENED, Metadata, NO_SETTINGS_SCHEMA, NoSettings, PodRule, SettingsError, Severity, Violation,
    Workload,
};

pub struct PdbCoverage;

impl PdbCoverage {
    fn evaluate(w: &Workload) -> Result<Vec<Violation>, String> {
        let replicas = w.desired_replicas().unwrap_or(1);
        let hpa_min = hpa_for(&w.kind, w.name(), w.namespace())?.map(|h| h.min_replicas());
        if replicas <= 1 && hpa_min.is_none_or(|m| m <= 1) {
            return Ok(Vec::new());
        }
        let pdbs = inventory::same_namespace_cached::<PodDisruptionBudget>("PodDisruptionBudget", w.namespace())?;
        for pdb in pdbs.iter() {
            if let Some(selector) = pdb.spec.selector.as_ref()
                && selector
                    .matches(&w.pod_meta.labels)
                    .map_err(|e| format!("PodDisruptionBudget {:?}: {e}", pdb.metadata.name))?
            {
                return Ok(Vec::new());
            }
        }
        let scale = match hpa_min {
            Some(m) if m > replicas => format!("at least {m} replicas, its HPA's minimum,"),
            _ => format!("{replicas} replicas"),
        };
        Ok(vec![Violation::new(
            format!(
                "{} {:?} runs {scale} but no PodDisruptionBudget selects its pods: a node drain may evict them all \
                 at once; add one with maxUnavailable: 1 whose selector matches its pod labels",
                w.kind,
                w.name()
            ),
            format!("{}/labels", w.meta_path),
        )])
    }
}

impl PodRule for PdbCoverage {
    type Settings = NoSettings;

    const READS: Fields = Fields::LABELS;

    fn metadata() -> Metadata {
        Metadata {
            id: "pdb-coverage",
            title: "Replicated workloads must have a PodDisruptionBudget",
            description: "Fails a Deployment or StatefulSet with more than one replica (or scaled by an HPA \
                          whose minReplicas is above one) that no PodDisruptionBudget of its namespace selects.",
            rationale: "Node drains, upgrades and autoscaler scale-downs evict pods voluntarily. Without a \
                        PodDisruptionBudget they may evict every replica at once and take the service down.",
            remediation: "Add a PodDisruptionBudget whose selector matches the pod template's labels, with \
                          maxUnavailable: 1 (or a minAvailable below the replica count).",
            severity: Severity::Medium,
            category: "Availability",
            applies_to: &["Deployment", "StatefulSet"],
            reads_kinds: &["PodDisruptionBudget", "HorizontalPodAutoscaler"],
            settings_schema: NO_SETTINGS_SCHEMA,
            references: &["https://kubernetes.io/docs/concepts/workloads/pods/disruptions/"],
            profiles: HARDENED,
        }
    }

    fn configure(_: NoSettings) -> Result<Self, SettingsError> {
        Ok(PdbCoverage)
    }

    fn check(&self, w: &Workload, _: &Context) -> Vec<Violation> {
        if !matches!(w.kind.as_str(), "Deployment" | "StatefulSet") {
            return Vec::new();
        }
        Self::evaluate(w).unwrap_or_else(|e| {
            vec![Violation::new(format!("cannot decide PDB coverage: {e}"), format!("{}/labels", w.meta_path))]
        })
    }
}

palisade_sdk::export_pod_rule!(PdbCoverage);

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_sdk::check_pod;
    use palisade_sdk::inventory::testing;

    fn deploy(replicas: i64) -> String {
        format!(
            r#"{{"kind":"Deployment","metadata":{{"name":"web","namespace":"ns"}},"spec":{{"replicas":{replicas},"template":{{"metadata":{{"labels":{{"app":"web"}}}},"spec":{{}}}}}}}}"#
        )
    }

    fn count(replicas: i64, objects: &[&str]) -> usize {
        testing::set(objects);
        check_pod(PdbCoverage, &deploy(replicas)).unwrap().len()
    }

    const PDB: &str = r#"{"kind":"PodDisruptionBudget","metadata":{"name":"p","namespace":"ns"},"spec":{"maxUnavailable":1,"selector":{"matchLabels":{"app":"web"}}}}"#;
    const HPA: &str = r#"{"kind":"HorizontalPodAutoscaler","metadata":{"name":"h","namespace":"ns"},"spec":{"minReplicas":3,"scaleTargetRef":{"kind":"Deployment","name":"web"}}}"#;

    #[test]
    fn coverage() {
        assert_eq!(count(1, &[]), 0, "a single replica needs no PDB");
        assert_eq!(count(3, &[]), 1);
        assert_eq!(count(3, &[PDB]), 0);
        assert_eq!(count(1, &[HPA]), 1, "an HPA with minReplicas 3 replicates it");
        assert_eq!(count(1, &[HPA, PDB]), 0);
        let null_selector =
            r#"{"kind":"PodDisruptionBudget","metadata":{"name":"p","namespace":"ns"},"spec":{"maxUnavailable":1}}"#;
        assert_eq!(count(3, &[null_selector]), 1, "a null selector selects nothing");
        let other_ns = PDB.replace(r#""namespace":"ns""#, r#""namespace":"other""#);
        assert_eq!(count(3, &[&other_ns]), 1);
    }

    #[test]
    fn messages_say_how_many_replicas_and_what_to_add() {
        testing::set(&[HPA]);
        assert_eq!(
            check_pod(PdbCoverage, &deploy(1)).unwrap()[0].message,
            "Deployment \"web\" runs at least 3 replicas, its HPA's minimum, but no PodDisruptionBudget selects its \
             pods: a node drain may evict them all at once; add one with maxUnavailable: 1 whose selector matches its \
             pod labels"
        );
        testing::set::<&str>(&[]);
        assert!(
            check_pod(PdbCoverage, &deploy(3)).unwrap()[0]
                .message
                .starts_with("Deployment \"web\" runs 3 replicas but no PodDisruptionBudget selects its pods: ")
        );
    }
}
