//! Pod Security Standards, baseline: privileged containers.
//!
//! Source of truth: `k8s.io/pod-security-admission/policy/check_privileged.go`
//! (version 1.0): `securityContext.privileged` of every container, init
//! container and ephemeral container must be unset or false.

use palisade_sdk::pss::{self, Control, Level, Settings};
use palisade_sdk::{Fields, Metadata, Severity, Violation, Workload};

pub struct Privileged;

impl Control for Privileged {
    const READS: Fields = Fields::SECURITY_CONTEXT;

    fn metadata() -> Metadata {
        pss::metadata(
            "pss-privileged",
            "Containers must not run privileged",
            "Fails a pod with a container, init container or ephemeral container that sets \
             securityContext.privileged to true.",
            "A privileged container has every capability and every device of the node, without \
             seccomp or AppArmor confinement: it is root on the node.",
            "Remove securityContext.privileged or set it to false; grant only the specific \
             capabilities the workload needs.",
            Severity::Critical,
            Level::Baseline,
            &[
                pss::STANDARD_URL,
                "https://github.com/kubernetes/pod-security-admission/blob/master/policy/check_privileged.go",
            ],
        )
    }

    fn check(_: &Settings, w: &Workload) -> Vec<Violation> {
        w.containers()
            .filter(|c| c.container.security_context.as_ref().and_then(|s| s.privileged) == Some(true))
            .map(|c| {
                Violation::new(
                    format!(
                        "{} sets securityContext.privileged to true: it gets every capability and device of the \
                         node; remove securityContext.privileged or set it to false",
                        pss::container_label(c.name())
                    ),
                    c.field("securityContext/privileged"),
                )
            })
            .collect()
    }
}

palisade_sdk::export_pod_rule!(pss::PssRule<Privileged>);

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_sdk::pss::check_json;

    #[test]
    fn privileged_containers_of_every_list_fail() {
        let v = check_json::<Privileged>(
            r#"{"kind":"Pod","spec":{"initContainers":[{"name":"i","securityContext":{"privileged":true}}],
               "containers":[{"name":"a","securityContext":{"privileged":false}},{"name":"b"}],
               "ephemeralContainers":[{"name":"e","securityContext":{"privileged":true}}]}}"#,
            "latest",
            Level::Baseline,
        );
        let paths: Vec<_> = v.iter().map(|v| v.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "/spec/initContainers/0/securityContext/privileged",
                "/spec/ephemeralContainers/0/securityContext/privileged"
            ]
        );
        assert_eq!(
            v[0].message,
            "container \"i\" sets securityContext.privileged to true: it gets every capability and device of the \
             node; remove securityContext.privileged or set it to false"
        );
    }
}
