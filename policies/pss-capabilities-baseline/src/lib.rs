//! Pod Security Standards, baseline: added capabilities.
//!
//! Source of truth: `k8s.io/pod-security-admission/policy/check_capabilities_baseline.go`
//! (version 1.0): every capability in `securityContext.capabilities.add` of any
//! container must be in the default set below (compared as written, so
//! `CAP_CHOWN` is not `CHOWN`). At the restricted level from v1.22 upstream's
//! `capabilities_restricted` check overrides this one (`OverrideCheckIDs`), so
//! with `level: restricted` this rule defers to `pss-capabilities-restricted`
//! from v1.22 on, which exempts Windows pods from v1.25.

use palisade_sdk::pss::{self, Control, Level, Settings};
use palisade_sdk::{Fields, Metadata, Severity, Violation, Workload};

/// Upstream's `capabilities_allowed_1_0`.
const ALLOWED: [&str; 13] = [
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

pub struct CapabilitiesBaseline;

impl Control for CapabilitiesBaseline {
    const READS: Fields = Fields::SECURITY_CONTEXT;

    fn metadata() -> Metadata {
        pss::metadata(
            "pss-capabilities-baseline",
            "Containers must not add capabilities beyond the default set",
            "Fails a pod with a container that adds a Linux capability outside the container \
             runtime's default set (AUDIT_WRITE, CHOWN, DAC_OVERRIDE, FOWNER, FSETID, KILL, MKNOD, \
             NET_BIND_SERVICE, SETFCAP, SETGID, SETPCAP, SETUID, SYS_CHROOT).",
            "Capabilities such as SYS_ADMIN, NET_ADMIN or SYS_PTRACE let a container escape its \
             isolation or tamper with the node and other workloads.",
            "Remove the capability from securityContext.capabilities.add; if the workload truly \
             needs it, run it in a namespace with a less strict level and document why.",
            Severity::High,
            Level::Baseline,
            &[
                pss::STANDARD_URL,
                "https://github.com/kubernetes/pod-security-admission/blob/master/policy/check_capabilities_baseline.go",
            ],
        )
    }

    fn check(settings: &Settings, w: &Workload) -> Vec<Violation> {
        if settings.level == Level::Restricted && settings.version.at_least(22) {
            return Vec::new();
        }
        let mut out = Vec::new();
        for c in w.containers() {
            let Some(caps) = c.container.security_context.as_ref().and_then(|s| s.capabilities.as_ref()) else {
                continue;
            };
            for (i, cap) in caps.add.iter().enumerate() {
                if !ALLOWED.contains(&cap.as_str()) {
                    out.push(Violation::new(
                        format!(
                            "{} adds capability {}, outside the runtime's default set: it can weaken the \
                             container's isolation; remove it from securityContext.capabilities.add",
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

palisade_sdk::export_pod_rule!(pss::PssRule<CapabilitiesBaseline>);

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_sdk::pss::check_json;

    const POD: &str = r#"{"kind":"Pod","spec":{"containers":[{"name":"a","securityContext":{"capabilities":{"add":["CHOWN","SYS_ADMIN","CAP_KILL"]}}}]}}"#;

    #[test]
    fn only_the_default_set_may_be_added() {
        let v = check_json::<CapabilitiesBaseline>(POD, "latest", Level::Baseline);
        let paths: Vec<_> = v.iter().map(|v| v.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "/spec/containers/0/securityContext/capabilities/add/1",
                "/spec/containers/0/securityContext/capabilities/add/2"
            ]
        );
        assert_eq!(
            v[0].message,
            "container \"a\" adds capability \"SYS_ADMIN\", outside the runtime's default set: it can weaken the \
             container's isolation; remove it from securityContext.capabilities.add"
        );
    }

    #[test]
    fn restricted_level_defers_to_the_restricted_check_from_1_22() {
        assert!(check_json::<CapabilitiesBaseline>(POD, "v1.22", Level::Restricted).is_empty());
        assert_eq!(check_json::<CapabilitiesBaseline>(POD, "v1.21", Level::Restricted).len(), 2);
    }

    #[test]
    fn ephemeral_containers_are_checked() {
        let v = check_json::<CapabilitiesBaseline>(
            r#"{"kind":"Pod","spec":{"containers":[{"name":"a"}],
               "ephemeralContainers":[{"name":"debug","securityContext":{"capabilities":{"add":["SYS_PTRACE"]}}}]}}"#,
            "latest",
            Level::Baseline,
        );
        let paths: Vec<_> = v.iter().map(|v| v.path.as_str()).collect();
        assert_eq!(paths, ["/spec/ephemeralContainers/0/securityContext/capabilities/add/0"]);
    }
}
