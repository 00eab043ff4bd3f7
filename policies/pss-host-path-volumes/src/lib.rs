//! Pod Security Standards, baseline: hostPath volumes.
//!
//! Source of truth: `k8s.io/pod-security-admission/policy/check_hostPathVolumes.go`
//! (version 1.0): no volume may set `hostPath`.

use palisade_sdk::pss::{self, Control, Level, Settings};
use palisade_sdk::{Fields, Metadata, Severity, Violation, Workload};

pub struct HostPathVolumes;

impl Control for HostPathVolumes {
    const READS: Fields = Fields::VOLUMES;

    fn metadata() -> Metadata {
        pss::metadata(
            "pss-host-path-volumes",
            "Pods must not mount hostPath volumes",
            "Fails a pod with a volume of type hostPath.",
            "A hostPath volume exposes the node's file system to the container: the kubelet's \
             credentials, the container runtime socket, other pods' data.",
            "Replace the hostPath volume with an emptyDir, a ConfigMap or Secret, or a \
             PersistentVolumeClaim; node agents that need the host file system belong in a \
             namespace with the privileged level.",
            Severity::High,
            Level::Baseline,
            &[
                pss::STANDARD_URL,
                "https://github.com/kubernetes/pod-security-admission/blob/master/policy/check_hostPathVolumes.go",
            ],
        )
    }

    fn check(_: &Settings, w: &Workload) -> Vec<Violation> {
        w.spec
            .volumes
            .iter()
            .enumerate()
            .filter(|(_, v)| v.has_source("hostPath"))
            .map(|(i, v)| {
                Violation::new(
                    format!(
                        "volume {} is a hostPath volume: it mounts a directory of the node into the pod; \
                         use a persistentVolumeClaim, configMap, secret or emptyDir volume instead",
                        pss::join_quote(&[&v.name])
                    ),
                    w.spec_field(&format!("volumes/{i}/hostPath")),
                )
            })
            .collect()
    }
}

palisade_sdk::export_pod_rule!(pss::PssRule<HostPathVolumes>);

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_sdk::pss::check_json;

    #[test]
    fn host_path_volumes_fail_and_null_is_unset() {
        let v = check_json::<HostPathVolumes>(
            r#"{"kind":"CronJob","spec":{"jobTemplate":{"spec":{"template":{"spec":{"volumes":[
                {"name":"a","emptyDir":{}},{"name":"b","hostPath":{"path":"/"}},{"name":"c","hostPath":null}]}}}}}}"#,
            "latest",
            Level::Baseline,
        );
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].path, "/spec/jobTemplate/spec/template/spec/volumes/1/hostPath");
        assert_eq!(
            v[0].message,
            "volume \"b\" is a hostPath volume: it mounts a directory of the node into the pod; \
             use a persistentVolumeClaim, configMap, secret or emptyDir volume instead"
        );
    }
}
