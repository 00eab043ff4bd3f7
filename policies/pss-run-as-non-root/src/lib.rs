//! Pod Security Standards, restricted: run as non-root.
//!
//! Source of truth: `k8s.io/pod-security-admission/policy/check_runAsNonRoot.go`
//! (versions 1.0 and 1.35): the pod or every container must set
//! `securityContext.runAsNonRoot: true`, and none may set it to false. A
//! container inherits the pod's `true` unless it sets its own value. Upstream
//! visits init, regular and ephemeral containers alike (`visitContainers`).
//!
//! From version 1.35 a pod in a user namespace (`spec.hostUsers: false`) is
//! allowed whatever it sets (`runAsNonRoot1_35`, KEP-127): its root is not
//! the node's. Before 1.35 that relaxation needed the alpha, off-by-default
//! `UserNamespacesPodSecurityStandards` feature gate, removed in Kubernetes
//! 1.35, so earlier versions are evaluated without it (`runAsNonRoot_1_0`).

use palisade_sdk::pss::{self, Control, Level, Settings};
use palisade_sdk::{Fields, Metadata, Severity, Violation, Workload};

pub struct RunAsNonRoot;

impl Control for RunAsNonRoot {
    const READS: Fields = Fields::SECURITY_CONTEXT.union(Fields::POD_SECURITY_CONTEXT);

    fn metadata() -> Metadata {
        pss::metadata(
            "pss-run-as-non-root",
            "Containers must run as non-root",
            "Fails a pod that sets securityContext.runAsNonRoot: false on the pod or a container, \
             or where a container runs without runAsNonRoot: true from itself or the pod. From \
             v1.35 a pod with spec.hostUsers: false (a user namespace) passes.",
            "A process running as root in a container is root on the node once it escapes, and \
             can modify the container's own file system and tools.",
            "Set spec.securityContext.runAsNonRoot: true (and a non-zero runAsUser, or an image \
             whose USER is numeric and non-zero), or run the pod in a user namespace with \
             spec.hostUsers: false.",
            Severity::High,
            Level::Restricted,
            &[
                pss::STANDARD_URL,
                "https://github.com/kubernetes/pod-security-admission/blob/master/policy/check_runAsNonRoot.go",
            ],
        )
    }

    fn check(settings: &Settings, w: &Workload) -> Vec<Violation> {
        if settings.relaxes_user_namespace(w) {
            return Vec::new();
        }
        let mut out = Vec::new();
        let pod = w.spec.security_context.as_ref().and_then(|s| s.run_as_non_root);
        if pod == Some(false) {
            out.push(Violation::new(
                "the pod sets securityContext.runAsNonRoot to false: containers that do not override it may run \
                 as root; set securityContext.runAsNonRoot to true",
                w.spec_field("securityContext/runAsNonRoot"),
            ));
        }
        let pod_true = pod == Some(true);
        for c in w.containers() {
            match c.container.security_context.as_ref().and_then(|s| s.run_as_non_root) {
                Some(false) => out.push(Violation::new(
                    format!(
                        "{} sets securityContext.runAsNonRoot to false: it may run as root; \
                         set securityContext.runAsNonRoot to true",
                        pss::container_label(c.name())
                    ),
                    c.field("securityContext/runAsNonRoot"),
                )),
                None if !pod_true => out.push(Violation::new(
                    format!(
                        "neither the pod nor {} sets securityContext.runAsNonRoot to true: the container may run \
                         as root; set securityContext.runAsNonRoot to true on the pod or on the container",
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
        let v = check_json::<RunAsNonRoot>(bad, "latest", Level::Restricted);
        assert_eq!(v.len(), 1);
        assert_eq!(
            v[0].message,
            "container \"a\" sets securityContext.runAsNonRoot to false: it may run as root; \
             set securityContext.runAsNonRoot to true"
        );
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
        assert_eq!(
            v[0].message,
            "neither the pod nor container \"a\" sets securityContext.runAsNonRoot to true: the container may run \
             as root; set securityContext.runAsNonRoot to true on the pod or on the container"
        );
    }

    #[test]
    fn user_namespace_pods_pass_from_1_35() {
        let pod = r#"{"kind":"Pod","spec":{"hostUsers":false,"securityContext":{"runAsNonRoot":false},"containers":[{"name":"a"}]}}"#;
        assert!(check_json::<RunAsNonRoot>(pod, "v1.35", Level::Restricted).is_empty());
        assert!(check_json::<RunAsNonRoot>(pod, "latest", Level::Restricted).is_empty());
        assert_eq!(check_json::<RunAsNonRoot>(pod, "v1.34", Level::Restricted).len(), 2);
        let host = pod.replace(r#""hostUsers":false"#, r#""hostUsers":true"#);
        assert_eq!(check_json::<RunAsNonRoot>(&host, "latest", Level::Restricted).len(), 2);
        let unset = pod.replace(r#""hostUsers":false,"#, "");
        let v = check_json::<RunAsNonRoot>(&unset, "latest", Level::Restricted);
        assert_eq!(v.len(), 2);
        assert!(v[0].message.starts_with("the pod sets securityContext.runAsNonRoot to false: "), "{}", v[0].message);
    }

    #[test]
    fn ephemeral_containers_are_checked() {
        let v = check_json::<RunAsNonRoot>(
            r#"{"kind":"Pod","spec":{"securityContext":{"runAsNonRoot":true},"containers":[{"name":"a"}],
               "ephemeralContainers":[{"name":"debug","securityContext":{"runAsNonRoot":false}}]}}"#,
            "latest",
            Level::Restricted,
        );
        let paths: Vec<_> = v.iter().map(|v| v.path.as_str()).collect();
        assert_eq!(paths, ["/spec/ephemeralContainers/0/securityContext/runAsNonRoot"]);
        assert!(v[0].message.contains("container \"debug\""), "{}", v[0].message);
    }
}
