//! Every container has a memory limit, and a CPU limit unless the setting
//! `requireCpuLimit` is false.
//!
//! Source: `ResourceRequirements.limits` in `k8s.io/api/core/v1`
//! (<https://kubernetes.io/docs/concepts/configuration/manage-resources-containers/>);
//! kube-score `container-resources`, Polaris `cpuLimitsMissing` and
//! `memoryLimitsMissing`. Init and regular containers: ephemeral containers
//! may not set `resources` ("Resources are not allowed for ephemeral
//! containers", `EphemeralContainerCommon` in `k8s.io/api/core/v1`), so they
//! are never reported.

use palisade_sdk::{
    ContainerKind, Context, Fields, HARDENED, Metadata, PodRule, SettingsError, Severity, Violation, Workload,
};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Settings {
    #[serde(default = "yes")]
    pub require_cpu_limit: bool,
}

fn yes() -> bool {
    true
}

pub struct ResourceLimits {
    require_cpu: bool,
}

impl PodRule for ResourceLimits {
    type Settings = Settings;

    const READS: Fields = Fields::RESOURCES;

    fn metadata() -> Metadata {
        Metadata {
            id: "resource-limits",
            title: "Containers must have memory and CPU limits",
            description: "Fails a pod with an init or regular container without resources.limits.memory, \
                          or without resources.limits.cpu when requireCpuLimit is true (the default).",
            rationale: "A container without a memory limit can exhaust its node and get its neighbours \
                        killed; one without a CPU limit can starve them. Limits bound the blast radius \
                        of a leak, a bug or an attack.",
            remediation: "Set resources.limits.memory (and resources.limits.cpu) on every container. Teams \
                          that rely on CPU requests alone for fairness can set requireCpuLimit: false.",
            severity: Severity::Medium,
            category: "Resources",
            applies_to: &palisade_sdk::POD_KINDS,
            reads_kinds: &[],
            settings_schema: r#"{"type":"object","additionalProperties":false,"properties":{
                "requireCpuLimit":{"type":"boolean","default":true,"description":"Also require resources.limits.cpu."}}}"#,
            references: &["https://kubernetes.io/docs/concepts/configuration/manage-resources-containers/"],
            profiles: HARDENED,
        }
    }

    fn configure(s: Settings) -> Result<Self, SettingsError> {
        Ok(ResourceLimits { require_cpu: s.require_cpu_limit })
    }

    fn check(&self, w: &Workload, _: &Context) -> Vec<Violation> {
        let mut out = Vec::new();
        let names: &[&str] = if self.require_cpu { &["cpu", "memory"] } else { &["memory"] };
        for c in w.containers().filter(|c| c.kind != ContainerKind::Ephemeral) {
            let resources = c.container.resources.as_ref();
            for name in names {
                if resources.and_then(|r| r.limit(name)).is_none() {
                    let why = if *name == "cpu" {
                        "it can take every core of its node"
                    } else {
                        "it can exhaust its node's memory"
                    };
                    out.push(Violation::new(
                        format!("container {:?} has no {name} limit: {why}; set resources.limits.{name}", c.name()),
                        c.field(&format!("resources/limits/{name}")),
                    ));
                }
            }
        }
        out
    }
}

palisade_sdk::export_pod_rule!(ResourceLimits);

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_sdk::{check_pod, configure_pod};

    const POD: &str = r#"{"kind":"Pod","spec":{"containers":[
        {"name":"a","resources":{"limits":{"cpu":"1","memory":"64Mi"}}},
        {"name":"b","resources":{"limits":{"memory":"64Mi"}}}]}}"#;

    #[test]
    fn cpu_limit_is_required_by_default() {
        let rule = configure_pod::<ResourceLimits>("{}").unwrap();
        let v = check_pod(rule, POD).unwrap();
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].path, "/spec/containers/1/resources/limits/cpu");
        assert_eq!(
            v[0].message,
            "container \"b\" has no cpu limit: it can take every core of its node; set resources.limits.cpu"
        );
    }

    #[test]
    fn cpu_limit_can_be_optional() {
        let rule = configure_pod::<ResourceLimits>(r#"{"requireCpuLimit":false}"#).unwrap();
        assert!(check_pod(rule, POD).unwrap().is_empty());
        assert!(configure_pod::<ResourceLimits>(r#"{"requireCpuLimit":"no"}"#).is_err());
    }

    #[test]
    fn ephemeral_containers_are_not_reported() {
        let rule = configure_pod::<ResourceLimits>("{}").unwrap();
        let v = check_pod(
            rule,
            r#"{"kind":"Pod","spec":{"containers":[{"name":"a","resources":{"limits":{"cpu":"1","memory":"64Mi"}}}],
               "ephemeralContainers":[{"name":"debug","targetContainerName":"a"}]}}"#,
        )
        .unwrap();
        assert!(v.is_empty(), "{v:?}");
    }
}
