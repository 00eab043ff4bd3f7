//! Pod Security Standards, baseline: seccomp.
//!
//! Source of truth: `k8s.io/pod-security-admission/policy/check_seccompProfile_baseline.go`:
//! - version 1.0 (before seccomp fields existed): the annotations
//!   `seccomp.security.alpha.kubernetes.io/pod` and
//!   `container.seccomp.security.alpha.kubernetes.io/*` must not be `unconfined`;
//! - version 1.19: `securityContext.seccompProfile.type` of the pod and every
//!   container must not be `Unconfined`.
//!
//! At the restricted level upstream's `seccompProfile_restricted` (v1.19)
//! overrides this check, so with `level: restricted` this rule defers to
//! `pss-seccomp-restricted` from v1.19 on.

use palisade_sdk::pss::{self, Control, Level, Settings};
use palisade_sdk::{Fields, Metadata, Severity, Violation, Workload};

const POD_ANNOTATION: &str = "seccomp.security.alpha.kubernetes.io/pod";
const CONTAINER_ANNOTATION_PREFIX: &str = "container.seccomp.security.alpha.kubernetes.io/";

pub struct SeccompBaseline;

impl Control for SeccompBaseline {
    const READS: Fields = Fields::SECURITY_CONTEXT.union(Fields::POD_SECURITY_CONTEXT).union(Fields::ANNOTATIONS);

    fn metadata() -> Metadata {
        pss::metadata(
            "pss-seccomp-baseline",
            "Seccomp must not be disabled",
            "Fails a pod that sets seccompProfile.type Unconfined on the pod or a container \
             (v1.19 and later), or the seccomp annotations to unconfined (before v1.19).",
            "Seccomp filters the system calls a container may make; Unconfined exposes the whole \
             kernel surface to a compromised process.",
            "Remove the Unconfined profile; set seccompProfile.type: RuntimeDefault on the pod.",
            Severity::High,
            Level::Baseline,
            &[
                pss::STANDARD_URL,
                "https://github.com/kubernetes/pod-security-admission/blob/master/policy/check_seccompProfile_baseline.go",
            ],
        )
    }

    fn check(settings: &Settings, w: &Workload) -> Vec<Violation> {
        let fields = settings.version.at_least(19);
        if fields && settings.level == Level::Restricted {
            return Vec::new();
        }
        let mut out = Vec::new();
        if !fields {
            for (key, value) in &w.pod_meta.annotations {
                let applies = key == POD_ANNOTATION || key.starts_with(CONTAINER_ANNOTATION_PREFIX);
                if applies && value == "unconfined" {
                    out.push(Violation::new(
                        format!(
                            "annotation {key} is \"unconfined\": seccomp filtering is off; \
                             set it to runtime/default or use securityContext.seccompProfile"
                        ),
                        w.annotation_path(key),
                    ));
                }
            }
            return out;
        }
        let unconfined = |t: &str| t == "Unconfined";
        if let Some(p) = w.spec.security_context.as_ref().and_then(|s| s.seccomp_profile.as_ref())
            && unconfined(&p.type_)
        {
            out.push(Violation::new(
                "the pod sets securityContext.seccompProfile.type to \"Unconfined\": seccomp filtering is off; \
                 set it to RuntimeDefault or Localhost",
                w.spec_field("securityContext/seccompProfile/type"),
            ));
        }
        for c in w.containers() {
            if let Some(p) = c.container.security_context.as_ref().and_then(|s| s.seccomp_profile.as_ref())
                && unconfined(&p.type_)
            {
                out.push(Violation::new(
                    format!(
                        "{} sets securityContext.seccompProfile.type to \"Unconfined\": seccomp filtering is off; \
                         set it to RuntimeDefault or Localhost",
                        pss::container_label(c.name())
                    ),
                    c.field("securityContext/seccompProfile/type"),
                ));
            }
        }
        out
    }
}

palisade_sdk::export_pod_rule!(pss::PssRule<SeccompBaseline>);

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_sdk::pss::check_json;

    const ANNOTATED: &str = r#"{"kind":"Pod","metadata":{"annotations":{"seccomp.security.alpha.kubernetes.io/pod":"unconfined"}},"spec":{}}"#;
    const FIELD: &str = r#"{"kind":"Pod","spec":{"containers":[{"name":"a","securityContext":{"seccompProfile":{"type":"Unconfined"}}}]}}"#;

    #[test]
    fn annotations_before_1_19_fields_after() {
        let v = check_json::<SeccompBaseline>(ANNOTATED, "v1.18", Level::Baseline);
        assert_eq!(
            v.iter().map(|v| v.message.as_str()).collect::<Vec<_>>(),
            ["annotation seccomp.security.alpha.kubernetes.io/pod is \"unconfined\": seccomp filtering is off; \
              set it to runtime/default or use securityContext.seccompProfile"]
        );
        assert!(check_json::<SeccompBaseline>(ANNOTATED, "v1.19", Level::Baseline).is_empty());
        assert!(check_json::<SeccompBaseline>(FIELD, "v1.18", Level::Baseline).is_empty());
        let v = check_json::<SeccompBaseline>(FIELD, "v1.19", Level::Baseline);
        assert_eq!(
            v.iter().map(|v| v.message.as_str()).collect::<Vec<_>>(),
            ["container \"a\" sets securityContext.seccompProfile.type to \"Unconfined\": seccomp filtering is off; \
              set it to RuntimeDefault or Localhost"]
        );
    }

    #[test]
    fn restricted_level_defers_from_1_19() {
        assert!(check_json::<SeccompBaseline>(FIELD, "latest", Level::Restricted).is_empty());
        assert_eq!(check_json::<SeccompBaseline>(ANNOTATED, "v1.18", Level::Restricted).len(), 1);
    }

    #[test]
    fn ephemeral_containers_are_checked() {
        let v = check_json::<SeccompBaseline>(
            r#"{"kind":"Pod","spec":{"containers":[{"name":"a"}],
               "ephemeralContainers":[{"name":"debug","securityContext":{"seccompProfile":{"type":"Unconfined"}}}]}}"#,
            "latest",
            Level::Baseline,
        );
        let paths: Vec<_> = v.iter().map(|v| v.path.as_str()).collect();
        assert_eq!(paths, ["/spec/ephemeralContainers/0/securityContext/seccompProfile/type"]);
    }
}
