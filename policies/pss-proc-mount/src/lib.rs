//! Pod Security Standards, baseline (and restricted from v1.35): /proc mount type.
//!
//! Source of truth: `k8s.io/pod-security-admission/policy/check_procMount_baseline.go`
//! and `check_procMount_restricted.go`: `securityContext.procMount` of every
//! init, regular and ephemeral container must be unset or `Default`. From
//! v1.35 the baseline level allows any value in a pod that runs in a user
//! namespace (`spec.hostUsers: false`, `procMount1_35baseline`); the
//! restricted level does not (upstream's `procMount_restricted`, v1.35).
//! Evaluated with `level: restricted` (as the restricted profile does) this rule
//! therefore never applies the user-namespace relaxation.

use palisade_sdk::pss::{self, Control, Level, Settings};
use palisade_sdk::{Fields, Metadata, Severity, Violation, Workload};

pub struct ProcMount;

impl Control for ProcMount {
    const READS: Fields = Fields::SECURITY_CONTEXT;

    fn metadata() -> Metadata {
        pss::metadata(
            "pss-proc-mount",
            "Containers must keep the default /proc mask",
            "Fails a pod with a container whose securityContext.procMount is set to anything but \
             Default. From v1.35, at the baseline level, a pod with spec.hostUsers: false may set \
             it (the restricted level still forbids it).",
            "The default /proc masks hide kernel interfaces that leak information about the node \
             or let a process reconfigure it; Unmasked removes them.",
            "Remove securityContext.procMount or set it to Default.",
            Severity::High,
            Level::Baseline,
            &[
                pss::STANDARD_URL,
                "https://github.com/kubernetes/pod-security-admission/blob/master/policy/check_procMount_baseline.go",
                "https://github.com/kubernetes/pod-security-admission/blob/master/policy/check_procMount_restricted.go",
            ],
        )
    }

    fn check(settings: &Settings, w: &Workload) -> Vec<Violation> {
        if settings.level == Level::Baseline && settings.relaxes_user_namespace(w) {
            return Vec::new();
        }
        w.containers()
            .filter_map(|c| {
                let mount = c.container.security_context.as_ref()?.proc_mount.as_ref()?;
                (mount != "Default").then(|| {
                    let why = if mount == "Unmasked" {
                        "the node's kernel interfaces under /proc are not masked"
                    } else {
                        "only Default is allowed"
                    };
                    Violation::new(
                        format!(
                            "{} sets securityContext.procMount to {}: {why}; \
                             set securityContext.procMount to Default or remove it",
                            pss::container_label(c.name()),
                            pss::join_quote(&[mount])
                        ),
                        c.field("securityContext/procMount"),
                    )
                })
            })
            .collect()
    }
}

palisade_sdk::export_pod_rule!(pss::PssRule<ProcMount>);

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_sdk::pss::check_json;

    const USERNS: &str = r#"{"kind":"Pod","spec":{"hostUsers":false,"containers":[{"name":"a","securityContext":{"procMount":"Unmasked"}},{"name":"b","securityContext":{"procMount":"Default"}}]}}"#;

    #[test]
    fn user_namespace_relaxation_is_baseline_only_from_1_35() {
        assert!(check_json::<ProcMount>(USERNS, "v1.35", Level::Baseline).is_empty());
        assert_eq!(check_json::<ProcMount>(USERNS, "v1.34", Level::Baseline).len(), 1);
        assert_eq!(check_json::<ProcMount>(USERNS, "latest", Level::Restricted).len(), 1);
        let host = USERNS.replace("\"hostUsers\":false", "\"hostUsers\":true");
        let v = check_json::<ProcMount>(&host, "latest", Level::Baseline);
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].path, "/spec/containers/0/securityContext/procMount");
        assert_eq!(
            v[0].message,
            "container \"a\" sets securityContext.procMount to \"Unmasked\": the node's kernel interfaces under \
             /proc are not masked; set securityContext.procMount to Default or remove it"
        );
    }

    #[test]
    fn ephemeral_containers_are_checked() {
        let v = check_json::<ProcMount>(
            r#"{"kind":"Pod","spec":{"containers":[{"name":"a"}],
               "ephemeralContainers":[{"name":"debug","securityContext":{"procMount":"Unmasked"}}]}}"#,
            "latest",
            Level::Baseline,
        );
        let paths: Vec<_> = v.iter().map(|v| v.path.as_str()).collect();
        assert_eq!(paths, ["/spec/ephemeralContainers/0/securityContext/procMount"]);
    }
}
