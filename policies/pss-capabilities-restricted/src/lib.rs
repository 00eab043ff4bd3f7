//! Pod Security Standards, restricted: capabilities.
//!
//! Source of truth: `k8s.io/pod-security-admission/policy/check_capabilities_restricted.go`:
//! from version 1.22 every container must drop `ALL` and may add only
//! `NET_BIND_SERVICE`; from version 1.25 pods with `spec.os.name: windows` are
//! exempt. Upstream's restricted level replaces the baseline capabilities
//! check with this one (`OverrideCheckIDs`).

use palisade_sdk::pss::{self, Control, Level, Settings};
use palisade_sdk::{Fields, Metadata, Severity, Violation, Workload};

pub struct CapabilitiesRestricted;

impl Control for CapabilitiesRestricted {
    const READS: Fields = Fields::SECURITY_CONTEXT;

    fn metadata() -> Metadata {
        pss::metadata(
            "pss-capabilities-restricted",
            "Containers must drop all capabilities",
            "From v1.22, fails a pod with a container that does not drop ALL capabilities, or \
             that adds any capability but NET_BIND_SERVICE. Windows pods are exempt from v1.25.",
            "Dropping every capability removes the kernel privileges a compromised process could \
             use; the default set still includes CHOWN, DAC_OVERRIDE, SETUID and others.",
            "Set securityContext.capabilities.drop: [\"ALL\"] on every container, and add back \
             NET_BIND_SERVICE only if the process binds a port below 1024.",
            Severity::High,
            Level::Restricted,
            &[
                pss::STANDARD_URL,
                "https://github.com/kubernetes/pod-security-admission/blob/master/policy/check_capabilities_restricted.go",
            ],
        )
    }

    fn check(settings: &Settings, w: &Workload) -> Vec<Violation> {
        if !settings.version.at_least(22) || (settings.version.at_least(25) && w.is_windows()) {
            return Vec::new();
        }
        let mut out = Vec::new();
        for c in w.containers() {
            let caps = c.container.security_context.as_ref().and_then(|s| s.capabilities.as_ref());
            let drops_all = caps.is_some_and(|caps| caps.drop.iter().any(|d| d == "ALL"));
            if !drops_all {
                let dropped = caps.map(|caps| caps.drop.as_slice()).unwrap_or_default();
                let does = if dropped.is_empty() {
                    "does not drop ALL capabilities".to_string()
                } else {
                    format!("drops {} but not ALL capabilities", pss::join_quote(dropped))
                };
                out.push(Violation::new(
                    format!(
                        "{} {does}: it keeps the runtime's default set, CHOWN and SETUID included; \
                         set securityContext.capabilities.drop to [\"ALL\"]",
                        pss::container_label(c.name())
                    ),
                    c.field("securityContext/capabilities/drop"),
                ));
            }
            for (i, cap) in caps.map(|c| c.add.as_slice()).unwrap_or_default().iter().enumerate() {
                if cap != "NET_BIND_SERVICE" {
                    out.push(Violation::new(
                        format!(
                            "{} adds capability {}: the restricted level allows adding only NET_BIND_SERVICE; \
                             remove it from securityContext.capabilities.add",
                            pss::container_label(c.name()),
                            pss::join_quote(&[cap])
                        ),
                        c.field(&format!("securityContext/capabilities/add/{i}")),
                    ));
                }
            }
        }
        out
    }
}

palisade_sdk::export_pod_rule!(pss::PssRule<CapabilitiesRestricted>);

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_sdk::pss::check_json;

    #[test]
    fn drop_all_and_add_only_net_bind_service() {
        let v = check_json::<CapabilitiesRestricted>(
            r#"{"kind":"Pod","spec":{"containers":[
                {"name":"ok","securityContext":{"capabilities":{"drop":["ALL"],"add":["NET_BIND_SERVICE"]}}},
                {"name":"nodrop","securityContext":{"capabilities":{"drop":["all"]}}},
                {"name":"adds","securityContext":{"capabilities":{"drop":["ALL"],"add":["CHOWN"]}}}]}}"#,
            "latest",
            Level::Restricted,
        );
        let paths: Vec<_> = v.iter().map(|v| v.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "/spec/containers/1/securityContext/capabilities/drop",
                "/spec/containers/2/securityContext/capabilities/add/0"
            ]
        );
        assert_eq!(
            v[0].message,
            "container \"nodrop\" drops \"all\" but not ALL capabilities: it keeps the runtime's default set, \
             CHOWN and SETUID included; set securityContext.capabilities.drop to [\"ALL\"]"
        );
        assert_eq!(
            v[1].message,
            "container \"adds\" adds capability \"CHOWN\": the restricted level allows adding only \
             NET_BIND_SERVICE; remove it from securityContext.capabilities.add"
        );
        // The Kyverno peer mapping (tests/peer_suites.rs) counts only messages naming `drop`.
        assert!(!v[1].message.contains("drop"), "{}", v[1].message);
    }

    #[test]
    fn version_and_windows_gates() {
        let pod = r#"{"kind":"Pod","spec":{"os":{"name":"windows"},"containers":[{"name":"a"}]}}"#;
        assert!(check_json::<CapabilitiesRestricted>(pod, "v1.21", Level::Restricted).is_empty());
        let v = check_json::<CapabilitiesRestricted>(pod, "v1.24", Level::Restricted);
        assert_eq!(v.len(), 1);
        assert!(v[0].message.starts_with("container \"a\" does not drop ALL capabilities: "), "{}", v[0].message);
        assert!(check_json::<CapabilitiesRestricted>(pod, "v1.25", Level::Restricted).is_empty());
    }

    #[test]
    fn ephemeral_containers_are_checked() {
        let v = check_json::<CapabilitiesRestricted>(
            r#"{"kind":"Pod","spec":{"containers":[{"name":"a","securityContext":{"capabilities":{"drop":["ALL"]}}}],
               "ephemeralContainers":[{"name":"debug","securityContext":{"capabilities":{"drop":["ALL"],"add":["SYS_PTRACE"]}}}]}}"#,
            "latest",
            Level::Restricted,
        );
        let paths: Vec<_> = v.iter().map(|v| v.path.as_str()).collect();
        assert_eq!(paths, ["/spec/ephemeralContainers/0/securityContext/capabilities/add/0"]);
    }
}
