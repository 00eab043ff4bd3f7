//! Pod Security Standards, restricted: privilege escalation.
//!
//! Source of truth: `k8s.io/pod-security-admission/policy/check_allowPrivilegeEscalation.go`:
//! from version 1.8 every container must set
//! `securityContext.allowPrivilegeEscalation: false`; from version 1.25 pods
//! with `spec.os.name: windows` are exempt.

use palisade_sdk::pss::{self, Control, Level, Settings};
use palisade_sdk::{Fields, Metadata, Severity, Violation, Workload};

pub struct AllowPrivilegeEscalation;

impl Control for AllowPrivilegeEscalation {
    const READS: Fields = Fields::SECURITY_CONTEXT;

    fn metadata() -> Metadata {
        pss::metadata(
            "pss-allow-privilege-escalation",
            "Containers must forbid privilege escalation",
            "From v1.8, fails a pod with a container that does not set \
             securityContext.allowPrivilegeEscalation: false. Windows pods are exempt from v1.25.",
            "Without no_new_privs a process can gain privileges through setuid binaries or file \
             capabilities, turning a foothold into root.",
            "Set securityContext.allowPrivilegeEscalation: false on every container, init \
             container and ephemeral container.",
            Severity::High,
            Level::Restricted,
            &[
                pss::STANDARD_URL,
                "https://github.com/kubernetes/pod-security-admission/blob/master/policy/check_allowPrivilegeEscalation.go",
            ],
        )
    }

    fn check(settings: &Settings, w: &Workload) -> Vec<Violation> {
        if !settings.version.at_least(8) || (settings.version.at_least(25) && w.is_windows()) {
            return Vec::new();
        }
        w.containers()
            .filter_map(|c| {
                let set = match c.container.security_context.as_ref().and_then(|s| s.allow_privilege_escalation) {
                    Some(false) => return None,
                    Some(true) => "sets securityContext.allowPrivilegeEscalation to true",
                    None => "does not set securityContext.allowPrivilegeEscalation",
                };
                Some(Violation::new(
                    format!(
                        "{} {set}: its processes can gain privileges through setuid binaries; \
                         set securityContext.allowPrivilegeEscalation to false",
                        pss::container_label(c.name())
                    ),
                    c.field("securityContext/allowPrivilegeEscalation"),
                ))
            })
            .collect()
    }
}

palisade_sdk::export_pod_rule!(pss::PssRule<AllowPrivilegeEscalation>);

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_sdk::pss::check_json;

    const POD: &str = r#"{"kind":"Pod","spec":{"containers":[{"name":"a","securityContext":{"allowPrivilegeEscalation":false}},{"name":"b"}]}}"#;

    #[test]
    fn must_be_explicitly_false_from_1_8() {
        let v = check_json::<AllowPrivilegeEscalation>(POD, "latest", Level::Restricted);
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].path, "/spec/containers/1/securityContext/allowPrivilegeEscalation");
        assert_eq!(
            v[0].message,
            "container \"b\" does not set securityContext.allowPrivilegeEscalation: its processes can gain \
             privileges through setuid binaries; set securityContext.allowPrivilegeEscalation to false"
        );
        let explicit =
            POD.replace(r#"{"name":"b"}"#, r#"{"name":"b","securityContext":{"allowPrivilegeEscalation":true}}"#);
        let v = check_json::<AllowPrivilegeEscalation>(&explicit, "latest", Level::Restricted);
        assert!(v[0].message.starts_with("container \"b\" sets securityContext.allowPrivilegeEscalation to true: "));
        assert!(check_json::<AllowPrivilegeEscalation>(POD, "v1.7", Level::Restricted).is_empty());
    }

    #[test]
    fn windows_pods_are_exempt_from_1_25() {
        let win = POD.replace(r#""spec":{"#, r#""spec":{"os":{"name":"windows"},"#);
        assert!(check_json::<AllowPrivilegeEscalation>(&win, "v1.25", Level::Restricted).is_empty());
        assert_eq!(check_json::<AllowPrivilegeEscalation>(&win, "v1.24", Level::Restricted).len(), 1);
    }

    #[test]
    fn ephemeral_containers_are_checked() {
        let v = check_json::<AllowPrivilegeEscalation>(
            r#"{"kind":"Pod","spec":{"containers":[{"name":"a","securityContext":{"allowPrivilegeEscalation":false}}],
               "ephemeralContainers":[{"name":"debug"}]}}"#,
            "latest",
            Level::Restricted,
        );
        let paths: Vec<_> = v.iter().map(|v| v.path.as_str()).collect();
        assert_eq!(paths, ["/spec/ephemeralContainers/0/securityContext/allowPrivilegeEscalation"]);
    }
}
