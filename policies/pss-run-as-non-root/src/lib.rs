//! Pod Security Standards, restricted: run as non-root.
//!
//! Source of truth: `k8s.io/pod-security-admission/policy/check_runAsNonRoot.go`
//! (version 1.0): the pod or every container must set
//! `securityContext.runAsNonRoot: true`, and none may set it to false. A
//! container inherits the pod's `true` unless it sets its own value.
//!
//! Upstream relaxes this check for user-namespaced pods only when the
//! administrator opts in (`RelaxPolicyForUserNamespacePods`, off by default);
//! Palisade evaluates the default, unrelaxed policy.

use palisade_sdk::pss::{self, Control, Level, Settings};
use palisade_sdk::{Metadata, Severity, Violation, Workload};

pub struct RunAsNonRoot;

impl Control for RunAsNonRoot {
    fn metadata() -> Metadata {
        pss::metadata(
            "pss-run-as-non-root",
            "Containers must run as non-root",
            "Fails a pod that sets securityContext.runAsNonRoot: false on the pod or a container, \
             or where a container runs without runAsNonRoot: true from itself or the pod.",
            "A process running as root in a container is root on the node once it escapes, and \
             can modify the container's own file system and tools.",
            "Set spec.securityContext.runAsNonRoot: true (and a non-zero runAsUser, or an image \
             whose USER is numeric and non-zero).",
            Severity::High,
            Level::Restricted,
            &[
                pss::STANDARD_URL,
                "https://github.com/kubernetes/pod-security-admission/blob/master/policy/check_runAsNonRoot.go",
            ],
        )
    }

    fn check(_: &Settings, w: &Workload) -> Vec<Violation> {
        let mut out = Vec::new();
        let pod = w.spec.security_context.as_ref().and_then(|s| s.run_as_non_root);
        if pod == Some(false) {
            out.push(Violation::new(
                "runAsNonRoot != true (pod must not set securityContext.runAsNonRoot=false)",
                w.spec_field("securityContext/runAsNonRoot"),
            ));
        }
        let pod_true = pod == Some(true);
        for c in w.containers() {
            match c.container.security_context.as_ref().and_then(|s| s.run_as_non_root) {
                Some(false) => out.push(Violation::new(
                    format!(
                        "runAsNonRoot != true ({} must not set securityContext.runAsNonRoot=false)",
                        pss::container_label(c.name())
                    ),
                    c.field("securityContext/runAsNonRoot"),
                )),
                None if !pod_true => out.push(Violation::new(
                    format!(
                        "runAsNonRoot != true (pod or {} must set securityContext.runAsNonRoot=true)",
                        pss::container_label(c.name())
                    ),
                    c.field("securityContext/runAsNonRoot"),
                )),
                _ => {}
            }
        }
        out
    }
}

palisade_sdk::export_pod_rule!(pss::PssRule<RunAsNonRoot>);

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_sdk::pss::check_json;

    #[test]
    fn containers_inherit_the_pod_value() {
        let ok = r#"{"kind":"Pod","spec":{"securityContext":{"runAsNonRoot":true},"containers":[{"name":"a"}]}}"#;
        assert!(check_json::<RunAsNonRoot>(ok, "latest", Level::Restricted).is_empty());
        let bad = r#"{"kind":"Pod","spec":{"securityContext":{"runAsNonRoot":true},"containers":[{"name":"a","securityContext":{"runAsNonRoot":false}}]}}"#;
        assert_eq!(check_json::<RunAsNonRoot>(bad, "latest", Level::Restricted).len(), 1);
    }

    #[test]
    fn unset_everywhere_fails_per_container() {
        let v = check_json::<RunAsNonRoot>(
            r#"{"kind":"Pod","spec":{"containers":[{"name":"a"},{"name":"b","securityContext":{"runAsNonRoot":true}}]}}"#,
            "v1.0",
            Level::Restricted,
        );
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].path, "/spec/containers/0/securityContext/runAsNonRoot");
    }
}
