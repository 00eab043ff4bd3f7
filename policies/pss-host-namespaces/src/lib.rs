//! Pod Security Standards, baseline: host namespaces.
//!
//! Source of truth: `k8s.io/pod-security-admission/policy/check_hostNamespaces.go`
//! (version 1.0, unchanged since): `spec.hostNetwork`, `spec.hostPID` and
//! `spec.hostIPC` must be unset or false.

use palisade_sdk::pss::{self, Control, Level, Settings};
use palisade_sdk::{Fields, Metadata, Severity, Violation, Workload};

pub struct HostNamespaces;

impl Control for HostNamespaces {
    const READS: Fields = Fields::NONE;

    fn metadata() -> Metadata {
        pss::metadata(
            "pss-host-namespaces",
            "Host namespaces must not be shared",
            "Fails a pod that sets spec.hostNetwork, spec.hostPID or spec.hostIPC to true.",
            "Sharing the node's network, process or IPC namespace lets a container see and reach \
             everything on the node: other pods' processes and traffic, host-only services, shared memory.",
            "Remove hostNetwork, hostPID and hostIPC from the pod spec, or set them to false.",
            Severity::High,
            Level::Baseline,
            &[
                pss::STANDARD_URL,
                "https://github.com/kubernetes/pod-security-admission/blob/master/policy/check_hostNamespaces.go",
            ],
        )
    }

    fn check(_: &Settings, w: &Workload) -> Vec<Violation> {
        [
            ("hostNetwork", "network", w.spec.host_network),
            ("hostPID", "process", w.spec.host_pid),
            ("hostIPC", "IPC", w.spec.host_ipc),
        ]
        .into_iter()
        .filter(|(_, _, value)| *value == Some(true))
        .map(|(field, namespace, _)| {
            Violation::new(
                format!(
                    "{field} is true: the pod shares the node's {namespace} namespace; \
                     remove spec.{field} or set it to false"
                ),
                w.spec_field(field),
            )
        })
        .collect()
    }
}

palisade_sdk::export_pod_rule!(pss::PssRule<HostNamespaces>);

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_sdk::pss::check_json;

    #[test]
    fn each_namespace_is_reported_with_its_path() {
        let v = check_json::<HostNamespaces>(
            r#"{"kind":"Deployment","spec":{"template":{"spec":{"hostNetwork":true,"hostPID":false,"hostIPC":true}}}}"#,
            "latest",
            Level::Baseline,
        );
        let paths: Vec<_> = v.iter().map(|v| v.path.as_str()).collect();
        assert_eq!(paths, ["/spec/template/spec/hostNetwork", "/spec/template/spec/hostIPC"]);
        assert_eq!(
            v[0].message,
            "hostNetwork is true: the pod shares the node's network namespace; \
             remove spec.hostNetwork or set it to false"
        );
        assert_eq!(
            v[1].message,
            "hostIPC is true: the pod shares the node's IPC namespace; remove spec.hostIPC or set it to false"
        );
    }

    #[test]
    fn unset_and_false_pass() {
        let v = check_json::<HostNamespaces>(
            r#"{"kind":"Pod","spec":{"hostNetwork":false,"containers":[]}}"#,
            "v1.0",
            Level::Baseline,
        );
        assert!(v.is_empty());
    }
}
