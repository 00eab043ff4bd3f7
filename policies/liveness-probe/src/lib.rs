//! Every regular container of a long-running workload has a liveness probe,
//! and it is not the same as its readiness probe.
//!
//! Source: `Container.livenessProbe` in `k8s.io/api/core/v1`
//! (<https://kubernetes.io/docs/concepts/configuration/liveness-readiness-startup-probes/>);
//! kube-score `pod-probes` (which also reports identical liveness and
//! readiness probes), Polaris `livenessProbeMissing`. Jobs, CronJobs and pods
//! that run to completion are exempt. Ephemeral containers are never
//! reported: the API forbids probes on them ("Probes are not allowed for
//! ephemeral containers", `EphemeralContainerCommon` in `k8s.io/api/core/v1`).

use palisade_sdk::{
    ContainerKind, Context, Fields, HARDENED, Metadata, NO_SETTINGS_SCHEMA, NoSettings, PodRule, SettingsError,
    Severity, Violation, Workload,
};

pub struct LivenessProbe;

impl PodRule for LivenessProbe {
    type Settings = NoSettings;

    const READS: Fields = Fields::LIVENESS_PROBE.union(Fields::READINESS_PROBE);

    fn metadata() -> Metadata {
        Metadata {
            id: "liveness-probe",
            title: "Long-running containers must have a distinct liveness probe",
            description: "Fails a long-running workload with a regular container that has no livenessProbe, \
                          or whose livenessProbe is identical to its readinessProbe.",
            rationale: "Without a liveness probe a hung container is never restarted. A liveness probe \
                        identical to the readiness probe restarts containers that are only busy or \
                        waiting on a dependency, turning a slowdown into cascading restarts.",
            remediation: "Add a livenessProbe that checks only that the process itself is healthy (not \
                          its dependencies), with a higher failureThreshold than the readiness probe.",
            severity: Severity::Medium,
            category: "Probes",
            applies_to: &palisade_sdk::POD_KINDS,
            reads_kinds: &[],
            settings_schema: NO_SETTINGS_SCHEMA,
            references: &[
                "https://kubernetes.io/docs/concepts/configuration/liveness-readiness-startup-probes/",
                "https://github.com/zegl/kube-score/blob/master/README_PROBES.md",
            ],
            profiles: HARDENED,
        }
    }

    fn configure(_: NoSettings) -> Result<Self, SettingsError> {
        Ok(LivenessProbe)
    }

    fn check(&self, w: &Workload, _: &Context) -> Vec<Violation> {
        if !w.is_long_running() {
            return Vec::new();
        }
        let mut out = Vec::new();
        for c in w.containers().filter(|c| c.kind == ContainerKind::Regular) {
            match (&c.container.liveness_probe, &c.container.readiness_probe) {
                (None, _) => out.push(Violation::new(
                    format!(
                        "container {:?} has no livenessProbe: the kubelet cannot restart it when it hangs; \
                         add a livenessProbe",
                        c.name()
                    ),
                    c.field("livenessProbe"),
                )),
                (Some(live), Some(ready)) if live.same_as(ready) => out.push(Violation::new(
                    format!(
                        "container {:?} has a livenessProbe identical to its readinessProbe: a slow container is \
                         restarted, not only taken out of its Services; give the livenessProbe a longer period or \
                         another check",
                        c.name()
                    ),
                    c.field("livenessProbe"),
                )),
                _ => {}
            }
        }
        out
    }
}

palisade_sdk::export_pod_rule!(LivenessProbe);

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_sdk::check_pod;

    #[test]
    fn missing_and_identical_probes() {
        let v = check_pod(
            LivenessProbe,
            r#"{"kind":"StatefulSet","spec":{"template":{"spec":{"containers":[
                {"name":"ok","livenessProbe":{"tcpSocket":{"port":80}},"readinessProbe":{"httpGet":{"path":"/ready","port":80}}},
                {"name":"same","livenessProbe":{"httpGet":{"path":"/h","port":80}},"readinessProbe":{"httpGet":{"port":80,"path":"/h"}}},
                {"name":"none"}]}}}}"#,
        )
        .unwrap();
        let messages: Vec<_> = v.iter().map(|v| v.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "container \"same\" has a livenessProbe identical to its readinessProbe: a slow container is \
                 restarted, not only taken out of its Services; give the livenessProbe a longer period or another \
                 check",
                "container \"none\" has no livenessProbe: the kubelet cannot restart it when it hangs; \
                 add a livenessProbe"
            ]
        );
        let pod = r#"{"kind":"Pod","spec":{"restartPolicy":"OnFailure","containers":[{"name":"x"}]}}"#;
        assert!(check_pod(LivenessProbe, pod).unwrap().is_empty(), "a run-to-completion pod is exempt");
    }

    #[test]
    fn ephemeral_containers_are_not_reported() {
        let v = check_pod(
            LivenessProbe,
            r#"{"kind":"Pod","spec":{"containers":[{"name":"a","livenessProbe":{"tcpSocket":{"port":80}}}],
               "ephemeralContainers":[{"name":"debug","targetContainerName":"a"}]}}"#,
        )
        .unwrap();
        assert!(v.is_empty(), "{v:?}");
    }
}
