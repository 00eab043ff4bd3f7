//! Every regular container of a long-running workload has a readiness probe.
//!
//! Source: `Container.readinessProbe` in `k8s.io/api/core/v1`; without one a
//! container is considered ready as soon as it starts
//! (<https://kubernetes.io/docs/concepts/configuration/liveness-readiness-startup-probes/>).
//! kube-score `pod-probes`, Polaris `readinessProbeMissing`. Only regular
//! containers are checked: ephemeral containers cannot have one ("Probes are
//! not allowed for ephemeral containers", `EphemeralContainerCommon` in
//! `k8s.io/api/core/v1`), nor can init containers other than sidecars; Jobs,
//! CronJobs and pods that run to completion are exempt.
//!
//! Deliberate differences (see `tests/peer_suites.rs`): kube-score grades
//! probes only for pods a Service targets; Kyverno's `require-probes` accepts
//! any one probe. Palisade requires a readiness probe on every regular
//! container of every long-running workload.

use palisade_sdk::{
    ContainerKind, Context, Fields, HARDENED, Metadata, NO_SETTINGS_SCHEMA, NoSettings, PodRule, SettingsError,
    Severity, Violation, Workload,
};

pub struct ReadinessProbe;

impl PodRule for ReadinessProbe {
    type Settings = NoSettings;

    const READS: Fields = Fields::READINESS_PROBE;

    fn metadata() -> Metadata {
        Metadata {
            id: "readiness-probe",
            title: "Long-running containers must have a readiness probe",
            description: "Fails a long-running workload (not a Job, CronJob or run-to-completion pod) with a \
                          regular container that has no readinessProbe.",
            rationale: "Without a readiness probe a container receives traffic as soon as it starts, \
                        before it can serve, and keeps receiving it when it can no longer serve; \
                        rolling updates proceed on pods that are not working.",
            remediation: "Add a readinessProbe (httpGet, tcpSocket, grpc or exec) that succeeds only when \
                          the container can serve requests.",
            severity: Severity::Medium,
            category: "Probes",
            applies_to: &palisade_sdk::POD_KINDS,
            reads_kinds: &[],
            settings_schema: NO_SETTINGS_SCHEMA,
            references: &["https://kubernetes.io/docs/concepts/configuration/liveness-readiness-startup-probes/"],
            profiles: HARDENED,
        }
    }

    fn configure(_: NoSettings) -> Result<Self, SettingsError> {
        Ok(ReadinessProbe)
    }

    fn check(&self, w: &Workload, _: &Context) -> Vec<Violation> {
        if !w.is_long_running() {
            return Vec::new();
        }
        w.containers()
            .filter(|c| c.kind == ContainerKind::Regular && c.container.readiness_probe.is_none())
            .map(|c| {
                Violation::new(
                    format!(
                        "container {:?} has no readinessProbe: its Services send it traffic before it is ready; \
                         add a readinessProbe",
                        c.name()
                    ),
                    c.field("readinessProbe"),
                )
            })
            .collect()
    }
}

palisade_sdk::export_pod_rule!(ReadinessProbe);

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_sdk::check_pod;

    #[test]
    fn regular_containers_of_long_running_workloads() {
        let spec = r#"{"initContainers":[{"name":"i"}],"containers":[{"name":"a","readinessProbe":{"tcpSocket":{"port":80}}},{"name":"b"}]}"#;
        let v =
            check_pod(ReadinessProbe, &format!(r#"{{"kind":"Deployment","spec":{{"template":{{"spec":{spec}}}}}}}"#))
                .unwrap();
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].path, "/spec/template/spec/containers/1/readinessProbe");
        assert_eq!(
            v[0].message,
            "container \"b\" has no readinessProbe: its Services send it traffic before it is ready; \
             add a readinessProbe"
        );
        let job = format!(r#"{{"kind":"Job","spec":{{"template":{{"spec":{spec}}}}}}}"#);
        assert!(check_pod(ReadinessProbe, &job).unwrap().is_empty());
        let cron =
            format!(r#"{{"kind":"CronJob","spec":{{"jobTemplate":{{"spec":{{"template":{{"spec":{spec}}}}}}}}}}}"#);
        assert!(check_pod(ReadinessProbe, &cron).unwrap().is_empty());
    }

    #[test]
    fn ephemeral_containers_are_not_reported() {
        let v = check_pod(
            ReadinessProbe,
            r#"{"kind":"Pod","spec":{"containers":[{"name":"a","readinessProbe":{"tcpSocket":{"port":80}}}],
               "ephemeralContainers":[{"name":"debug","targetContainerName":"a"}]}}"#,
        )
        .unwrap();
        assert!(v.is_empty(), "{v:?}");
    }
}
