//! Pod Security Standards, restricted: run as user.
//!
//! Source of truth: `k8s.io/pod-security-admission/policy/check_runAsUser.go`
//! (versions 1.23 and 1.35): from version 1.23 neither the pod nor any init,
//! regular or ephemeral container may set `securityContext.runAsUser: 0`.
//!
//! From version 1.35 a pod in a user namespace (`spec.hostUsers: false`) is
//! allowed whatever it sets (`runAsUser1_35`, KEP-127): UID 0 inside it maps
//! to an unprivileged UID on the node. Before 1.35 that relaxation needed the
//! alpha, off-by-default `UserNamespacesPodSecurityStandards` feature gate,
//! removed in Kubernetes 1.35, so versions 1.23 to 1.34 are evaluated without
//! it (`runAsUser_1_23`).

use palisade_sdk::pss::{self, Control, Level, Settings};
use palisade_sdk::{Fields, Metadata, Severity, Violation, Workload};

pub struct RunAsUser;

impl Control for RunAsUser {
    const READS: Fields = Fields::SECURITY_CONTEXT.union(Fields::POD_SECURITY_CONTEXT);

    fn metadata() -> Metadata {
        pss::metadata(
            "pss-run-as-user",
            "Containers must not run as UID 0",
            "From v1.23, fails a pod that sets securityContext.runAsUser: 0 on the pod or a container. \
             From v1.35 a pod with spec.hostUsers: false (a user namespace) passes.",
            "UID 0 is root: runAsNonRoot alone cannot hold when the pod asks for root explicitly.",
            "Remove runAsUser: 0; set a non-zero runAsUser such as 10001, or run the pod in a user \
             namespace with spec.hostUsers: false.",
            Severity::High,
            Level::Restricted,
            &[
                pss::STANDARD_URL,
                "https://github.com/kubernetes/pod-security-admission/blob/master/policy/check_runAsUser.go",
            ],
        )
    }

    fn check(settings: &Settings, w: &Workload) -> Vec<Violation> {
        if !settings.version.at_least(23) || settings.relaxes_user_namespace(w) {
            return Vec::new();
        }
        let mut out = Vec::new();
        if w.spec.security_context.as_ref().and_then(|s| s.run_as_user) == Some(0) {
            out.push(Violation::new(
                "the pod sets securityContext.runAsUser to 0: containers that do not override it run as root; \
                 set a non-zero user ID",
                w.spec_field("securityContext/runAsUser"),
            ));
        }
        for c in w.containers() {
            if c.container.security_context.as_ref().and_then(|s| s.run_as_user) == Some(0) {
                out.push(Violation::new(
                    format!(
                        "{} sets securityContext.runAsUser to 0: it runs as root; set a non-zero user ID",
                        pss::container_label(c.name())
                    ),
                    c.field("securityContext/runAsUser"),
                ));
            }
        }
        out
    }
}

palisade_sdk::export_pod_rule!(pss::PssRule<RunAsUser>);

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_sdk::pss::check_json;

    #[test]
    fn uid_zero_fails_from_1_23() {
        let pod = r#"{"kind":"Pod","spec":{"securityContext":{"runAsUser":0},"containers":[{"name":"a","securityContext":{"runAsUser":1000}}]}}"#;
        assert_eq!(check_json::<RunAsUser>(pod, "v1.23", Level::Restricted).len(), 1);
        assert!(check_json::<RunAsUser>(pod, "v1.22", Level::Restricted).is_empty());
    }

    #[test]
    fn user_namespace_pods_pass_from_1_35() {
        let pod = r#"{"kind":"Pod","spec":{"hostUsers":false,"securityContext":{"runAsUser":0},"initContainers":[{"name":"i","securityContext":{"runAsUser":0}}]}}"#;
        assert!(check_json::<RunAsUser>(pod, "v1.35", Level::Restricted).is_empty());
        assert!(check_json::<RunAsUser>(pod, "latest", Level::Restricted).is_empty());
        assert_eq!(check_json::<RunAsUser>(pod, "v1.34", Level::Restricted).len(), 2);
        let host = pod.replace(r#""hostUsers":false"#, r#""hostUsers":true"#);
        let v = check_json::<RunAsUser>(&host, "latest", Level::Restricted);
        assert_eq!(
            v.iter().map(|v| v.message.as_str()).collect::<Vec<_>>(),
            [
                "the pod sets securityContext.runAsUser to 0: containers that do not override it run as root; \
                 set a non-zero user ID",
                "container \"i\" sets securityContext.runAsUser to 0: it runs as root; set a non-zero user ID",
            ]
        );
    }

    #[test]
    fn ephemeral_containers_are_checked() {
        let v = check_json::<RunAsUser>(
            r#"{"kind":"Pod","spec":{"containers":[{"name":"a"}],
               "ephemeralContainers":[{"name":"debug","securityContext":{"runAsUser":0}}]}}"#,
            "latest",
            Level::Restricted,
        );
        let paths: Vec<_> = v.iter().map(|v| v.path.as_str()).collect();
        assert_eq!(paths, ["/spec/ephemeralContainers/0/securityContext/runAsUser"]);
    }
}
