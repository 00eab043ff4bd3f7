//! Pod Security Standards, restricted: run as user.
//!
//! Source of truth: `k8s.io/pod-security-admission/policy/check_runAsUser.go`:
//! from version 1.23 neither the pod nor any container may set
//! `securityContext.runAsUser: 0`. As with runAsNonRoot, upstream's opt-in
//! relaxation for user-namespaced pods is off by default and not applied.

use palisade_sdk::pss::{self, Control, Level, Settings};
use palisade_sdk::{Metadata, Severity, Violation, Workload};

pub struct RunAsUser;

impl Control for RunAsUser {
    fn metadata() -> Metadata {
        pss::metadata(
            "pss-run-as-user",
            "Containers must not run as UID 0",
            "From v1.23, fails a pod that sets securityContext.runAsUser: 0 on the pod or a container.",
            "UID 0 is root: runAsNonRoot alone cannot hold when the pod asks for root explicitly.",
            "Remove runAsUser: 0; set a non-zero runAsUser such as 10001.",
            Severity::High,
            Level::Restricted,
            &[
                pss::STANDARD_URL,
                "https://github.com/kubernetes/pod-security-admission/blob/master/policy/check_runAsUser.go",
            ],
        )
    }

    fn check(settings: &Settings, w: &Workload) -> Vec<Violation> {
        if !settings.version.at_least(23) {
            return Vec::new();
        }
        let mut out = Vec::new();
        if w.spec.security_context.as_ref().and_then(|s| s.run_as_user) == Some(0) {
            out.push(Violation::new(
                "runAsUser=0 (pod must not set runAsUser=0)",
                w.spec_field("securityContext/runAsUser"),
            ));
        }
        for c in w.containers() {
            if c.container.security_context.as_ref().and_then(|s| s.run_as_user) == Some(0) {
                out.push(Violation::new(
                    format!("runAsUser=0 ({} must not set runAsUser=0)", pss::container_label(c.name())),
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
}
