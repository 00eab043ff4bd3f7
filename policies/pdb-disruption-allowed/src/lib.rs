//! No PodDisruptionBudget forbids every voluntary eviction.
//!
//! Source: `PodDisruptionBudgetSpec` of `k8s.io/api/policy/v1` and the
//! disruption controller (`pkg/controller/disruption`): percentages scale
//! against the expected pod count and round up
//! (`intstr.GetScaledValueFromIntOrPercent(..., roundUp=true)`); disruptions
//! are allowed while healthy pods exceed the desired healthy count
//! (<https://kubernetes.io/docs/tasks/run-application/configure-pdb/>).
//! The expected count is the replicas of the Deployments, StatefulSets,
//! ReplicaSets and ReplicationControllers of the checked set that the budget
//! selects (an HPA's minReplicas when one scales them: the low point is when
//! a drain blocks).

use palisade_sdk::objects::{PodDisruptionBudget, hpa_for, workloads_reading};
use palisade_sdk::{
    Context, Fields, HARDENED, Metadata, NO_SETTINGS_SCHEMA, NoSettings, Rule, SettingsError, Severity, Violation,
};
use serde_json::Value;

/// An IntOrString: a count, or a percentage like "50%".
#[derive(Debug, PartialEq)]
enum Amount {
    Count(i64),
    Percent(i64),
}

fn amount(field: &str, v: &Value) -> Result<Option<Amount>, String> {
    match v {
        Value::Null => Ok(None),
        Value::Number(n) => {
            n.as_i64().map(|n| Some(Amount::Count(n))).ok_or_else(|| format!("{field}: {n} is not an integer"))
        }
        Value::String(s) => match s.strip_suffix('%') {
            Some(p) => {
                p.parse().map(|p| Some(Amount::Percent(p))).map_err(|_| format!("{field}: {s:?} is not a percentage"))
            }
            None => s
                .parse()
                .map(|n| Some(Amount::Count(n)))
                .map_err(|_| format!("{field}: {s:?} is not a count or a percentage")),
        },
        other => Err(format!("{field}: {other} is not an integer or a percentage")),
    }
}

fn scaled(a: &Amount, total: i64) -> i64 {
    match a {
        Amount::Count(n) => *n,
        Amount::Percent(p) => (p * total + 99) / 100,
    }
}

pub struct PdbDisruptionAllowed;

impl Rule for PdbDisruptionAllowed {
    type Settings = NoSettings;

    fn metadata() -> Metadata {
        Metadata {
            id: "pdb-disruption-allowed",
            title: "PodDisruptionBudgets must allow at least one eviction",
            description: "Fails a PodDisruptionBudget with maxUnavailable 0 or 0%, minAvailable 100%, or a \
                          minAvailable at or above the replicas of the workloads it selects in the checked set.",
            rationale: "A budget that allows no disruption blocks every node drain: cluster upgrades and \
                        security patching stall until someone deletes the budget by hand, which defeats \
                        its purpose.",
            remediation: "Use maxUnavailable: 1 (or a percentage that rounds to at least one pod), or keep \
                          minAvailable below the replica count.",
            severity: Severity::Medium,
            category: "Availability",
            applies_to: &["PodDisruptionBudget"],
            reads_kinds: &[
                "Deployment",
                "StatefulSet",
                "ReplicaSet",
                "ReplicationController",
                "HorizontalPodAutoscaler",
            ],
            settings_schema: NO_SETTINGS_SCHEMA,
            references: &[
                "https://kubernetes.io/docs/tasks/run-application/configure-pdb/",
                "https://kubernetes.io/docs/concepts/workloads/pods/disruptions/",
            ],
            profiles: HARDENED,
        }
    }

    fn configure(_: NoSettings) -> Result<Self, SettingsError> {
        Ok(PdbDisruptionAllowed)
    }

    fn evaluate(&self, object: &str, _: &Context) -> Result<Vec<Violation>, String> {
        let found = Self::evaluate_reading(object, READS);
        #[cfg(not(target_arch = "wasm32"))]
        assert_eq!(
            found,
            Self::evaluate_reading(object, Fields::ALL),
            "pdb-disruption-allowed reads a field outside its READS"
        );
        found
    }
}

/// The parts of the selected workloads the rule reads (see `Fields`): their
/// pods' labels (kind, name and replicas are always read).
const READS: Fields = Fields::LABELS;

impl PdbDisruptionAllowed {
    fn evaluate_reading(object: &str, reads: Fields) -> Result<Vec<Violation>, String> {
        let pdb: PodDisruptionBudget =
            serde_json::from_str(object).map_err(|e| format!("cannot read the PodDisruptionBudget: {e}"))?;
        let name = &pdb.metadata.name;
        let spec = pdb.spec;
        if let Some(max) = spec.max_unavailable.as_ref().map(|v| amount("maxUnavailable", v)).transpose()?.flatten()
            && matches!(max, Amount::Count(n) | Amount::Percent(n) if n <= 0)
        {
            let value = match max {
                Amount::Count(n) => n.to_string(),
                Amount::Percent(p) => format!("{p}%"),
            };
            return Ok(vec![Violation::new(
                format!(
                    "PodDisruptionBudget {name:?} sets maxUnavailable to {value}: no pod may ever be evicted, so \
                     node drains stall; set maxUnavailable to 1 or more"
                ),
                "/spec/maxUnavailable",
            )]);
        }
        let Some(min) = spec.min_available.as_ref().map(|v| amount("minAvailable", v)).transpose()?.flatten() else {
            return Ok(Vec::new());
        };
        if let Amount::Percent(p) = min
            && p >= 100
        {
            return Ok(vec![Violation::new(
                format!(
                    "PodDisruptionBudget {name:?} sets minAvailable to {p}%: no pod may ever be evicted, so node \
                     drains stall; set minAvailable below 100%"
                ),
                "/spec/minAvailable",
            )]);
        }
        let Some(selector) = spec.selector else { return Ok(Vec::new()) };
        let namespace = Some(pdb.metadata.namespace.as_str()).filter(|n| !n.is_empty());
        let mut total = 0;
        let mut selected = Vec::new();
        for w in
            workloads_reading(&["Deployment", "StatefulSet", "ReplicaSet", "ReplicationController"], namespace, reads)?
        {
            if selector.matches(&w.pod_meta.labels)? {
                let replicas = match hpa_for(&w.kind, w.name(), namespace)? {
                    Some(h) => h.min_replicas(),
                    None => w.desired_replicas().unwrap_or(1),
                };
                total += replicas;
                selected.push(format!("{} {}", w.kind, w.name()));
            }
        }
        if selected.is_empty() {
            return Ok(Vec::new());
        }
        let required = scaled(&min, total);
        if required >= total {
            return Ok(vec![Violation::new(
                format!(
                    "PodDisruptionBudget {name:?} requires {required} available of the {total} pods it selects, in \
                     {}: no pod may be evicted, so node drains stall; {}",
                    selected.join(", "),
                    if total > 0 { format!("set minAvailable below {total}") } else { "lower minAvailable".into() }
                ),
                "/spec/minAvailable",
            )]);
        }
        Ok(Vec::new())
    }
}

palisade_sdk::export_rule!(PdbDisruptionAllowed);

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_sdk::inventory::testing;

    fn pdb(spec: &str) -> String {
        format!(r#"{{"kind":"PodDisruptionBudget","metadata":{{"name":"p","namespace":"ns"}},"spec":{spec}}}"#)
    }

    const DEPLOY3: &str = r#"{"kind":"Deployment","metadata":{"name":"web","namespace":"ns"},"spec":{"replicas":3,"template":{"metadata":{"labels":{"app":"web"}},"spec":{}}}}"#;

    fn count(spec: &str) -> usize {
        testing::set(&[DEPLOY3]);
        PdbDisruptionAllowed.evaluate(&pdb(spec), &Context::default()).unwrap().len()
    }

    #[test]
    fn budgets() {
        let sel = r#""selector":{"matchLabels":{"app":"web"}}"#;
        assert_eq!(count(&format!(r#"{{{sel},"maxUnavailable":0}}"#)), 1);
        assert_eq!(count(&format!(r#"{{{sel},"maxUnavailable":"0%"}}"#)), 1);
        assert_eq!(count(&format!(r#"{{{sel},"maxUnavailable":-1}}"#)), 1, "negative: invalid, and blocks");
        assert_eq!(count(&format!(r#"{{{sel},"maxUnavailable":"10%"}}"#)), 0, "10% of 3 rounds up to 1");
        assert_eq!(count(&format!(r#"{{{sel},"minAvailable":"100%"}}"#)), 1);
        assert_eq!(count(&format!(r#"{{{sel},"minAvailable":3}}"#)), 1);
        assert_eq!(count(&format!(r#"{{{sel},"minAvailable":2}}"#)), 0);
        assert_eq!(count(&format!(r#"{{{sel},"minAvailable":"90%"}}"#)), 1, "90% of 3 rounds up to 3");
        assert_eq!(count(&format!(r#"{{{sel},"minAvailable":"50%"}}"#)), 0);
        assert_eq!(count(r#"{"selector":{"matchLabels":{"app":"db"}},"minAvailable":5}"#), 0, "selects nothing known");
        testing::set::<&str>(&[]);
        assert!(PdbDisruptionAllowed.evaluate(&pdb(r#"{"maxUnavailable":"x%"}"#), &Context::default()).is_err());
    }

    #[test]
    fn messages_say_what_blocks_and_what_to_set() {
        testing::set(&[DEPLOY3]);
        let message =
            |spec: &str| PdbDisruptionAllowed.evaluate(&pdb(spec), &Context::default()).unwrap()[0].message.clone();
        let sel = r#""selector":{"matchLabels":{"app":"web"}}"#;
        assert_eq!(
            message(&format!(r#"{{{sel},"maxUnavailable":"0%"}}"#)),
            "PodDisruptionBudget \"p\" sets maxUnavailable to 0%: no pod may ever be evicted, so node drains stall; \
             set maxUnavailable to 1 or more"
        );
        assert_eq!(
            message(&format!(r#"{{{sel},"minAvailable":3}}"#)),
            "PodDisruptionBudget \"p\" requires 3 available of the 3 pods it selects, in Deployment web: no pod may \
             be evicted, so node drains stall; set minAvailable below 3"
        );
        // The Kyverno mapping (tests/peer_suites.rs) counts only messages naming maxUnavailable.
        assert!(!message(&format!(r#"{{{sel},"minAvailable":"100%"}}"#)).contains("maxUnavailable"));
    }
}
