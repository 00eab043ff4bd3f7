//! Pod Security Standards, restricted: seccomp.
//!
//! Source of truth: `k8s.io/pod-security-admission/policy/check_seccompProfile_restricted.go`:
//! from version 1.19 the pod, or every container, must set
//! `securityContext.seccompProfile.type` to `RuntimeDefault` or `Localhost`,
//! and no container may set another type; from version 1.25 pods with
//! `spec.os.name: windows` are exempt. Upstream's restricted level replaces
//! the baseline seccomp check with this one (`OverrideCheckIDs`).

use palisade_sdk::pss::{self, Control, Level, Settings};
use palisade_sdk::{Fields, Metadata, Severity, Violation, Workload};

pub struct SeccompRestricted;

fn valid(t: &str) -> bool {
    t == "RuntimeDefault" || t == "Localhost"
}

/// What a `seccompProfile.type` other than RuntimeDefault or Localhost set by `subject` does, and the fix.
fn invalid_message(subject: &str, type_: &str) -> String {
    let why = if type_ == "Unconfined" {
        "seccomp filtering is off"
    } else {
        "only RuntimeDefault and Localhost are allowed"
    };
    format!(
        "{subject} sets securityContext.seccompProfile.type to {}: {why}; set it to RuntimeDefault or Localhost",
        pss::join_quote(&[type_])
    )
}

impl Control for SeccompRestricted {
    const READS: Fields = Fields::SECURITY_CONTEXT.union(Fields::POD_SECURITY_CONTEXT);

    fn metadata() -> Metadata {
        pss::metadata(
            "pss-seccomp-restricted",
            "Seccomp must be RuntimeDefault or Localhost",
            "From v1.19, fails a pod unless the pod, or each container, sets \
             seccompProfile.type to RuntimeDefault or Localhost; a container may not set another \
             type. Windows pods are exempt from v1.25.",
            "The runtime's default seccomp profile blocks system calls that containers do not need \
             and that kernel exploits do; without an explicit profile the kubelet runs containers \
             Unconfined.",
            "Set spec.securityContext.seccompProfile.type: RuntimeDefault (or Localhost with a \
             profile on the nodes).",
            Severity::High,
            Level::Restricted,
            &[
                pss::STANDARD_URL,
                "https://github.com/kubernetes/pod-security-admission/blob/master/policy/check_seccompProfile_restricted.go",
            ],
        )
    }

    fn check(settings: &Settings, w: &Workload) -> Vec<Violation> {
        if !settings.version.at_least(19) || (settings.version.at_least(25) && w.is_windows()) {
            return Vec::new();
        }
        let mut out = Vec::new();
        let mut pod_set = false;
        if let Some(p) = w.spec.security_context.as_ref().and_then(|s| s.seccomp_profile.as_ref()) {
            if valid(&p.type_) {
                pod_set = true;
            } else {
                out.push(Violation::new(
                    invalid_message("the pod", &p.type_),
                    w.spec_field("securityContext/seccompProfile/type"),
                ));
            }
        }
        for c in w.containers() {
            match c.container.security_context.as_ref().and_then(|s| s.seccomp_profile.as_ref()) {
                Some(p) if !valid(&p.type_) => out.push(Violation::new(
                    invalid_message(&pss::container_label(c.name()), &p.type_),
                    c.field("securityContext/seccompProfile/type"),
                )),
                None if !pod_set => out.push(Violation::new(
                    format!(
                        "neither the pod nor {} sets securityContext.seccompProfile.type to RuntimeDefault or \
                         Localhost: the container may run without seccomp; set it on the pod or on the container",
                        pss::container_label(c.name())
                    ),
                    c.field("securityContext/seccompProfile"),
                )),
                _ => {}
            }
        }
        out
    }
}

palisade_sdk::export_pod_rule!(pss::PssRule<SeccompRestricted>);

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_sdk::pss::check_json;

    #[test]
    fn pod_level_profile_covers_containers() {
        let ok = r#"{"kind":"Pod","spec":{"securityContext":{"seccompProfile":{"type":"RuntimeDefault"}},"containers":[{"name":"a"}]}}"#;
        assert!(check_json::<SeccompRestricted>(ok, "latest", Level::Restricted).is_empty());
        let bad = r#"{"kind":"Pod","spec":{"securityContext":{"seccompProfile":{"type":"RuntimeDefault"}},"containers":[{"name":"a","securityContext":{"seccompProfile":{"type":"Unconfined"}}}]}}"#;
        let v = check_json::<SeccompRestricted>(bad, "latest", Level::Restricted);
        assert_eq!(
            v.iter().map(|v| v.message.as_str()).collect::<Vec<_>>(),
            ["container \"a\" sets securityContext.seccompProfile.type to \"Unconfined\": seccomp filtering is off; \
              set it to RuntimeDefault or Localhost"]
        );
        let other = bad.replace("Unconfined", "Custom");
        let v = check_json::<SeccompRestricted>(&other, "latest", Level::Restricted);
        assert!(
            v[0].message.contains("\"Custom\": only RuntimeDefault and Localhost are allowed;"),
            "{}",
            v[0].message
        );
    }

    #[test]
    fn missing_profile_fails_and_windows_is_exempt_from_1_25() {
        let pod = r#"{"kind":"Pod","spec":{"os":{"name":"windows"},"containers":[{"name":"a"}]}}"#;
        assert!(check_json::<SeccompRestricted>(pod, "v1.25", Level::Restricted).is_empty());
        let v = check_json::<SeccompRestricted>(pod, "v1.24", Level::Restricted);
        assert_eq!(
            v.iter().map(|v| v.message.as_str()).collect::<Vec<_>>(),
            ["neither the pod nor container \"a\" sets securityContext.seccompProfile.type to RuntimeDefault or \
              Localhost: the container may run without seccomp; set it on the pod or on the container"]
        );
        assert!(check_json::<SeccompRestricted>(pod, "v1.18", Level::Restricted).is_empty());
    }

    #[test]
    fn ephemeral_containers_are_checked() {
        let v = check_json::<SeccompRestricted>(
            r#"{"kind":"Pod","spec":{"securityContext":{"seccompProfile":{"type":"RuntimeDefault"}},"containers":[{"name":"a"}],
               "ephemeralContainers":[{"name":"debug","securityContext":{"seccompProfile":{"type":"Unconfined"}}}]}}"#,
            "latest",
            Level::Restricted,
        );
        let paths: Vec<_> = v.iter().map(|v| v.path.as_str()).collect();
        assert_eq!(paths, ["/spec/ephemeralContainers/0/securityContext/seccompProfile/type"]);
    }
}
