//! Every HorizontalPodAutoscaler scales something that exists, and keeps at
//! least two replicas.
//!
//! Source: `HorizontalPodAutoscalerSpec` of `k8s.io/api/autoscaling/v2`
//! (`minReplicas` defaults to 1, so an unset one is reported, unlike Polaris'
//! `hpaMinAvailability`); kube-score `horizontalpodautoscaler-has-target`.

use palisade_sdk::inventory::{self, Header};
use palisade_sdk::objects::HorizontalPodAutoscaler;
use palisade_sdk::{Context, HARDENED, Metadata, Rule, SettingsError, Severity, Violation};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Settings {
    #[serde(default = "two")]
    pub min_replicas: i64,
}

fn two() -> i64 {
    2
}

pub struct HpaTarget {
    min: i64,
}

impl Rule for HpaTarget {
    type Settings = Settings;

    fn metadata() -> Metadata {
        Metadata {
            id: "hpa-target",
            title: "HorizontalPodAutoscalers must target an existing workload and keep two replicas",
            description: "Fails a HorizontalPodAutoscaler whose scaleTargetRef names no object of the checked \
                          set in its namespace, or whose minReplicas (default 1) is below `minReplicas` \
                          (default 2).",
            rationale: "An HPA whose target is missing (a renamed Deployment, a typo) silently scales \
                        nothing; one that may scale down to a single replica removes all redundancy \
                        at quiet hours.",
            remediation: "Point spec.scaleTargetRef at the workload's kind and name, and set \
                          spec.minReplicas to at least 2.",
            severity: Severity::Medium,
            category: "Availability",
            applies_to: &["HorizontalPodAutoscaler"],
            reads_kinds: &["Deployment", "StatefulSet", "ReplicaSet", "ReplicationController"],
            settings_schema: r#"{"type":"object","additionalProperties":false,"properties":{
                "minReplicas":{"type":"integer","minimum":1,"default":2,"description":"Fewest minReplicas accepted."}}}"#,
            references: &["https://kubernetes.io/docs/tasks/run-application/horizontal-pod-autoscale/"],
            profiles: HARDENED,
        }
    }

    fn configure(s: Settings) -> Result<Self, SettingsError> {
        if s.min_replicas < 1 {
            return Err(SettingsError::new("/minReplicas", "must be at least 1"));
        }
        Ok(HpaTarget { min: s.min_replicas })
    }

    fn evaluate(&self, object: &str, _: &Context) -> Result<Vec<Violation>, String> {
        let hpa: HorizontalPodAutoscaler =
            serde_json::from_str(object).map_err(|e| format!("cannot read the HorizontalPodAutoscaler: {e}"))?;
        let namespace = Some(hpa.metadata.namespace.as_str()).filter(|n| !n.is_empty());
        let target = &hpa.spec.scale_target_ref;
        let mut out = Vec::new();
        let exists = !target.kind.is_empty()
            && inventory::same_namespace(&target.kind, namespace)
                .iter()
                .filter_map(|json| Header::read(json).ok())
                .any(|h| h.metadata.name == target.name);
        if !exists {
            let kind = if target.kind.is_empty() { "no kind, name" } else { target.kind.as_str() };
            out.push(Violation::new(
                format!(
                    "scaleTargetRef names {kind} {:?}, which is not in the checked set in namespace {}: the HPA \
                     scales nothing; point scaleTargetRef at the workload's kind and name",
                    target.name,
                    namespace.unwrap_or("(unset)")
                ),
                "/spec/scaleTargetRef",
            ));
        }
        let min = hpa.min_replicas();
        if min < self.min {
            let is = if hpa.spec.min_replicas.is_some() { format!("is {min}") } else { format!("is unset, so {min}") };
            out.push(Violation::new(
                format!(
                    "minReplicas {is}, below the {required} required: the HPA may scale its workload down to {min} \
                     pod{s}; set spec.minReplicas to at least {required}",
                    required = self.min,
                    s = if min == 1 { "" } else { "s" }
                ),
                "/spec/minReplicas",
            ));
        }
        Ok(out)
    }
}

palisade_sdk::export_rule!(HpaTarget);

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_sdk::configure;
    use palisade_sdk::inventory::testing;

    fn paths(hpa_spec: &str, objects: &[&str]) -> Vec<String> {
        testing::set(objects);
        let json = format!(
            r#"{{"kind":"HorizontalPodAutoscaler","metadata":{{"name":"h","namespace":"ns"}},"spec":{hpa_spec}}}"#
        );
        configure::<HpaTarget>("{}")
            .unwrap()
            .evaluate(&json, &Context::default())
            .unwrap()
            .into_iter()
            .map(|v| v.path)
            .collect()
    }

    #[test]
    fn targets_and_minimum() {
        let web = r#"{"kind":"Deployment","metadata":{"name":"web","namespace":"ns"},"spec":{}}"#;
        let spec = r#"{"minReplicas":2,"scaleTargetRef":{"apiVersion":"apps/v1","kind":"Deployment","name":"web"}}"#;
        assert!(paths(spec, &[web]).is_empty());
        assert_eq!(paths(spec, &[]), ["/spec/scaleTargetRef"]);
        let elsewhere = web.replace(r#""namespace":"ns""#, r#""namespace":"other""#);
        assert_eq!(paths(spec, &[&elsewhere]), ["/spec/scaleTargetRef"]);
        assert_eq!(paths(r#"{"scaleTargetRef":{"kind":"Deployment","name":"web"}}"#, &[web]), ["/spec/minReplicas"]);
    }

    #[test]
    fn messages_name_the_target_and_the_minimum() {
        testing::set::<&str>(&[]);
        let json = r#"{"kind":"HorizontalPodAutoscaler","metadata":{"name":"h","namespace":"ns"},
            "spec":{"scaleTargetRef":{"kind":"Deployment","name":"web"}}}"#;
        let messages: Vec<String> = configure::<HpaTarget>("{}")
            .unwrap()
            .evaluate(json, &Context::default())
            .unwrap()
            .into_iter()
            .map(|v| v.message)
            .collect();
        assert_eq!(
            messages,
            [
                "scaleTargetRef names Deployment \"web\", which is not in the checked set in namespace ns: the HPA \
                 scales nothing; point scaleTargetRef at the workload's kind and name",
                "minReplicas is unset, so 1, below the 2 required: the HPA may scale its workload down to 1 pod; \
                 set spec.minReplicas to at least 2",
            ]
        );
        // The peer mappings (tests/peer_suites.rs) tell the two apart by these words.
        assert!(!messages[0].contains("minReplicas") && !messages[1].contains("scaleTargetRef"));
    }
}
