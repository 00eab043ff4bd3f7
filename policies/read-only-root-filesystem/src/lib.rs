//! Every container mounts its root file system read-only.
//!
//! Source: the Kubernetes API field `SecurityContext.readOnlyRootFilesystem`
//! (`k8s.io/api/core/v1`); kube-score `container-security-context-readonlyrootfilesystem`,
//! Polaris `readOnlyRootFilesystem`, Kyverno `require-ro-rootfs`. Init,
//! regular and ephemeral containers are checked: the API lets an ephemeral
//! container set its own `securityContext` (`EphemeralContainerCommon`), and a
//! debugging container with a writable root is as good a place to stage tools
//! as any other.

use palisade_sdk::{
    Context, Fields, HARDENED, Metadata, NO_SETTINGS_SCHEMA, NoSettings, PodRule, SettingsError, Severity, Violation,
    Workload,
};

pub struct ReadOnlyRootFilesystem;

impl PodRule for ReadOnlyRootFilesystem {
    type Settings = NoSettings;

    const READS: Fields = Fields::READ_ONLY_ROOT_FILESYSTEM;

    fn metadata() -> Metadata {
        Metadata {
            id: "read-only-root-filesystem",
            title: "Containers must use a read-only root file system",
            description: "Fails a pod with an init, regular or ephemeral container that does not set \
                          securityContext.readOnlyRootFilesystem to true.",
            rationale: "A writable root file system lets an intruder drop tools and binaries, alter \
                        the application and persist across process restarts. Read-only roots make \
                        the image the only code that runs and make tampering visible.",
            remediation: "Set securityContext.readOnlyRootFilesystem: true on every container; mount \
                          an emptyDir volume at the paths the application must write to (/tmp, caches).",
            severity: Severity::Medium,
            category: "Security context",
            applies_to: &palisade_sdk::POD_KINDS,
            reads_kinds: &[],
            settings_schema: NO_SETTINGS_SCHEMA,
            references: &[
                "https://kubernetes.io/docs/reference/kubernetes-api/workload-resources/pod-v1/#security-context-1",
                "https://kubernetes.io/docs/tasks/configure-pod-container/security-context/",
            ],
            profiles: HARDENED,
        }
    }

    fn configure(_: NoSettings) -> Result<Self, SettingsError> {
        Ok(ReadOnlyRootFilesystem)
    }

    fn check(&self, w: &Workload, _: &Context) -> Vec<Violation> {
        w.containers()
            .filter_map(|c| {
                let set = match c.container.security_context.as_ref().and_then(|s| s.read_only_root_filesystem) {
                    Some(true) => return None,
                    Some(false) => "sets securityContext.readOnlyRootFilesystem to false",
                    None => "does not set securityContext.readOnlyRootFilesystem",
                };
                Some(Violation::new(
                    format!(
                        "container {:?} {set}: a compromised process can change its files; set it to true and \
                         mount an emptyDir where the container must write",
                        c.name()
                    ),
                    c.field("securityContext/readOnlyRootFilesystem"),
                ))
            })
            .collect()
    }
}

palisade_sdk::export_pod_rule!(ReadOnlyRootFilesystem);

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_sdk::check_pod;

    #[test]
    fn only_true_passes() {
        let v = check_pod(
            ReadOnlyRootFilesystem,
            r#"{"kind":"Deployment","spec":{"template":{"spec":{
                "initContainers":[{"name":"i","securityContext":{"readOnlyRootFilesystem":true}}],
                "containers":[{"name":"a","securityContext":{"readOnlyRootFilesystem":false}},{"name":"b"}],
                "ephemeralContainers":[{"name":"e"}]}}}}"#,
        )
        .unwrap();
        let paths: Vec<_> = v.iter().map(|v| v.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "/spec/template/spec/containers/0/securityContext/readOnlyRootFilesystem",
                "/spec/template/spec/containers/1/securityContext/readOnlyRootFilesystem",
                "/spec/template/spec/ephemeralContainers/0/securityContext/readOnlyRootFilesystem"
            ]
        );
        assert_eq!(
            v[0].message,
            "container \"a\" sets securityContext.readOnlyRootFilesystem to false: a compromised process can change \
             its files; set it to true and mount an emptyDir where the container must write"
        );
    }

    #[test]
    fn ephemeral_containers_are_checked() {
        let pod = |ro: &str| {
            format!(
                r#"{{"kind":"Pod","spec":{{"containers":[{{"name":"a","securityContext":{{"readOnlyRootFilesystem":true}}}}],
                   "ephemeralContainers":[{{"name":"debug","targetContainerName":"a","securityContext":{{{ro}}}}}]}}}}"#
            )
        };
        let v = check_pod(ReadOnlyRootFilesystem, &pod("")).unwrap();
        let paths: Vec<_> = v.iter().map(|v| v.path.as_str()).collect();
        assert_eq!(paths, ["/spec/ephemeralContainers/0/securityContext/readOnlyRootFilesystem"]);
        assert_eq!(
            v[0].message,
            "container \"debug\" does not set securityContext.readOnlyRootFilesystem: a compromised process can \
             change its files; set it to true and mount an emptyDir where the container must write"
        );
        assert!(check_pod(ReadOnlyRootFilesystem, &pod(r#""readOnlyRootFilesystem":true"#)).unwrap().is_empty());
    }
}
