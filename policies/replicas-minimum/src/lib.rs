//! Deployments and StatefulSets run at least `min` replicas unless an HPA
//! scales them.
//!
//! Source: `DeploymentSpec.replicas` / `StatefulSetSpec.replicas` of
//! `k8s.io/api/apps/v1` (default 1); an HPA owns the replica count of its
//! target (<https://kubernetes.io/docs/tasks/run-application/horizontal-pod-autoscale/>).

use palisade_sdk::objects::hpa_for;
use palisade_sdk::{Context, Fields, HARDENED, Metadata, PodRule, SettingsError, Severity, Violation, Workload};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    #[serde(default = "two")]
    pub min: i64,
}

fn two() -> i64 {
    2
}

pub struct ReplicasMinimum {
    min: i64,
}

impl PodRule for ReplicasMinimum {
    type Settings = Settings;

    const READS: Fields = Fields::NONE;

    fn metadata() -> Metadata {
        Metadata {
            id: "replicas-minimum",
            title: "Deployments and StatefulSets should run several replicas",
            description: "Reports a Deployment or StatefulSet whose spec.replicas (default 1) is below `min` \
                          (default 2), unless a HorizontalPodAutoscaler in the checked set scales it.",
            rationale: "A single replica is down during every rollout, node drain and crash: the service \
                        has no redundancy.",
            remediation: "Set spec.replicas to at least `min`, or let a HorizontalPodAutoscaler with \
                          minReplicas ≥ 2 manage it.",
            severity: Severity::Low,
            category: "Availability",
            applies_to: &["Deployment", "StatefulSet"],
            reads_kinds: &["HorizontalPodAutoscaler"],
            settings_schema: r#"{"type":"object","additionalProperties":false,"properties":{
                "min":{"type":"integer","minimum":1,"default":2,"description":"Fewest replicas accepted."}}}"#,
            references: &["https://kubernetes.io/docs/concepts/workloads/controllers/deployment/#replicas"],
            profiles: HARDENED,
        }
    }

    fn configure(s: Settings) -> Result<Self, SettingsError> {
        if s.min < 1 {
            return Err(SettingsError::new("/min", "must be at least 1"));
        }
        Ok(ReplicasMinimum { min: s.min })
    }

    fn check(&self, w: &Workload, _: &Context) -> Vec<Violation> {
        if !matches!(w.kind.as_str(), "Deployment" | "StatefulSet") {
            return Vec::new();
        }
        match hpa_for(&w.kind, w.name(), w.namespace()) {
            Ok(Some(_)) => return Vec::new(),
            Ok(None) => {}
            Err(e) => return vec![Violation::new(format!("cannot look for an HPA: {e}"), "/spec/replicas")],
        }
        let replicas = w.replicas.unwrap_or(1);
        if replicas >= self.min {
            return Vec::new();
        }
        let runs = format!("{replicas} replica{}", if replicas == 1 { "" } else { "s" });
        let runs = match w.replicas {
            Some(_) => format!("runs {runs}"),
            None => format!("leaves spec.replicas unset, so it runs {runs}"),
        };
        vec![Violation::new(
            format!(
                "{} {:?} {runs}, fewer than the {min} required: one pod or node failure can stop it; \
                 set spec.replicas to at least {min}",
                w.kind,
                w.name(),
                min = self.min
            ),
            "/spec/replicas",
        )]
    }
}

palisade_sdk::export_pod_rule!(ReplicasMinimum);

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_sdk::inventory::testing;
    use palisade_sdk::{check_pod, configure_pod};

    fn count(settings: &str, replicas: &str, objects: &[&str]) -> usize {
        testing::set(objects);
        let json = format!(
            r#"{{"kind":"StatefulSet","metadata":{{"name":"db","namespace":"ns"}},"spec":{{{replicas}"template":{{"spec":{{}}}}}}}}"#
        );
        check_pod(configure_pod::<ReplicasMinimum>(settings).unwrap(), &json).unwrap().len()
    }

    #[test]
    fn minimum() {
        assert_eq!(count("{}", "", &[]), 1, "unset means 1");
        assert_eq!(count("{}", r#""replicas":2,"#, &[]), 0);
        assert_eq!(count(r#"{"min":3}"#, r#""replicas":2,"#, &[]), 1);
        let hpa = r#"{"kind":"HorizontalPodAutoscaler","metadata":{"name":"h","namespace":"ns"},"spec":{"scaleTargetRef":{"kind":"StatefulSet","name":"db"}}}"#;
        assert_eq!(count("{}", r#""replicas":1,"#, &[hpa]), 0);
        assert!(configure_pod::<ReplicasMinimum>(r#"{"min":0}"#).is_err());
    }

    #[test]
    fn messages_say_the_count_and_what_to_set() {
        testing::set::<&str>(&[]);
        let message = |replicas: &str| {
            let json =
                format!(r#"{{"kind":"Deployment","metadata":{{"name":"web"}},"spec":{{{replicas}"template":{{}}}}}}"#);
            check_pod(configure_pod::<ReplicasMinimum>("{}").unwrap(), &json).unwrap().remove(0).message
        };
        assert_eq!(
            message(""),
            "Deployment \"web\" leaves spec.replicas unset, so it runs 1 replica, fewer than the 2 required: one pod \
             or node failure can stop it; set spec.replicas to at least 2"
        );
        assert_eq!(
            message(r#""replicas":0,"#),
            "Deployment \"web\" runs 0 replicas, fewer than the 2 required: one pod or node failure can stop it; \
             set spec.replicas to at least 2"
        );
    }
}
