//! Every container requests CPU and memory.
//!
//! Source: `ResourceRequirements.requests` in `k8s.io/api/core/v1`; the
//! scheduler places pods by their requests
//! (<https://kubernetes.io/docs/concepts/configuration/manage-resources-containers/>).
//! kube-score `container-resources`, Polaris `cpuRequestsMissing` and
//! `memoryRequestsMissing`. Init and regular containers: ephemeral containers
//! may not set `resources` ("Resources are not allowed for ephemeral
//! containers. Ephemeral containers use spare resources already allocated to
//! the pod.", `EphemeralContainerCommon` in `k8s.io/api/core/v1`), so they are
//! never reported.

use palisade_sdk::{
    ContainerKind, Context, Fields, HARDENED, Metadata, NO_SETTINGS_SCHEMA, NoSettings, PodRule, SettingsError,
    Severity, Violation, Workload,
};

pub struct ResourceRequests;

impl PodRule for ResourceRequests {
    type Settings = NoSettings;

    const READS: Fields = Fields::RESOURCES;

    fn metadata() -> Metadata {
        Metadata {
            id: "resource-requests",
            title: "Containers must request CPU and memory",
            description: "Fails a pod with an init or regular container without resources.requests.cpu \
                          or resources.requests.memory.",
            rationale: "Without requests the scheduler cannot place the pod by its needs: nodes are \
                        overcommitted, the pod is the first evicted under memory pressure \
                        (BestEffort class), and capacity planning has nothing to go on.",
            remediation: "Set resources.requests.cpu and resources.requests.memory on every container, \
                          sized from observed usage.",
            severity: Severity::Medium,
            category: "Resources",
            applies_to: &palisade_sdk::POD_KINDS,
            reads_kinds: &[],
            settings_schema: NO_SETTINGS_SCHEMA,
            references: &["https://kubernetes.io/docs/concepts/configuration/manage-resources-containers/"],
            profiles: HARDENED,
        }
    }

    fn configure(_: NoSettings) -> Result<Self, SettingsError> {
        Ok(ResourceRequests)
    }

    fn check(&self, w: &Workload, _: &Context) -> Vec<Violation> {
        let mut out = Vec::new();
        for c in w.containers().filter(|c| c.kind != ContainerKind::Ephemeral) {
            let resources = c.container.resources.as_ref();
            for name in ["cpu", "memory"] {
                if resources.and_then(|r| r.request(name)).is_none() {
                    out.push(Violation::new(
                        format!(
                            "container {:?} has no {name} request: the scheduler cannot reserve what it needs; \
                             set resources.requests.{name}",
                            c.name()
                        ),
                        c.field(&format!("resources/requests/{name}")),
                    ));
                }
            }
        }
        out
    }
}

palisade_sdk::export_pod_rule!(ResourceRequests);

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_sdk::check_pod;

    #[test]
    fn both_requests_are_needed() {
        let v = check_pod(
            ResourceRequests,
            r#"{"kind":"Pod","spec":{"containers":[
                {"name":"a","resources":{"requests":{"cpu":"100m","memory":"64Mi"}}},
                {"name":"b","resources":{"requests":{"cpu":1,"memory":null}}},
                {"name":"c"}]}}"#,
        )
        .unwrap();
        let paths: Vec<_> = v.iter().map(|v| v.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "/spec/containers/1/resources/requests/memory",
                "/spec/containers/2/resources/requests/cpu",
                "/spec/containers/2/resources/requests/memory"
            ]
        );
        assert_eq!(
            v[0].message,
            "container \"b\" has no memory request: the scheduler cannot reserve what it needs; \
             set resources.requests.memory"
        );
    }

    #[test]
    fn ephemeral_containers_are_not_reported() {
        let v = check_pod(
            ResourceRequests,
            r#"{"kind":"Pod","spec":{"containers":[{"name":"a","resources":{"requests":{"cpu":"100m","memory":"64Mi"}}}],
               "ephemeralContainers":[{"name":"debug","targetContainerName":"a"}]}}"#,
        )
        .unwrap();
        assert!(v.is_empty(), "{v:?}");
    }
}
