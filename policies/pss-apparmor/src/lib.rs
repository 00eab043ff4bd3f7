//! Pod Security Standards, baseline: AppArmor.
//!
//! Source of truth: `k8s.io/pod-security-admission/policy/check_appArmorProfile.go`
//! (version 1.0, which covers both the `appArmorProfile` fields added in
//! Kubernetes 1.30 and the beta annotations):
//! - `securityContext.appArmorProfile.type` of the pod and of every container
//!   must be `RuntimeDefault` or `Localhost` when set;
//! - every annotation `container.apparmor.security.beta.kubernetes.io/*` must be
//!   empty, `runtime/default` or `localhost/*`.

use palisade_sdk::pod::AppArmorProfile;
use palisade_sdk::pss::{self, Control, Level, Settings};
use palisade_sdk::{Fields, Metadata, Severity, Violation, Workload};

const ANNOTATION_PREFIX: &str = "container.apparmor.security.beta.kubernetes.io/";

pub struct AppArmor;

fn allowed_type(profile: &AppArmorProfile) -> bool {
    matches!(profile.type_.as_str(), "RuntimeDefault" | "Localhost")
}

fn allowed_annotation(value: &str) -> bool {
    value.is_empty() || value == "runtime/default" || value.starts_with("localhost/")
}

/// What a `securityContext.appArmorProfile` of `subject` (`the pod`, `container "a"`) does wrong, and the fix.
fn field_message(subject: &str, profile: &AppArmorProfile) -> String {
    let why = if profile.type_ == "Unconfined" {
        "AppArmor confinement is off"
    } else {
        "only RuntimeDefault and Localhost are allowed"
    };
    format!(
        "{subject} sets securityContext.appArmorProfile.type to {}: {why}; set it to RuntimeDefault, \
         or Localhost with a profile loaded on the nodes",
        pss::join_quote(&[&profile.type_])
    )
}

impl Control for AppArmor {
    const READS: Fields = Fields::SECURITY_CONTEXT.union(Fields::POD_SECURITY_CONTEXT).union(Fields::ANNOTATIONS);

    fn metadata() -> Metadata {
        pss::metadata(
            "pss-apparmor",
            "AppArmor must not be disabled or overridden",
            "Fails a pod whose securityContext.appArmorProfile (pod or container) has a type \
             other than RuntimeDefault or Localhost, or whose \
             container.apparmor.security.beta.kubernetes.io/* annotation is not runtime/default \
             or localhost/<profile>.",
            "On nodes with AppArmor, the runtime's default profile confines what a container can \
             do; Unconfined removes that layer of defence.",
            "Remove the Unconfined profile; use RuntimeDefault, or a Localhost profile loaded on \
             the nodes.",
            Severity::High,
            Level::Baseline,
            &[
                pss::STANDARD_URL,
                "https://github.com/kubernetes/pod-security-admission/blob/master/policy/check_appArmorProfile.go",
            ],
        )
    }

    fn check(_: &Settings, w: &Workload) -> Vec<Violation> {
        let mut out = Vec::new();
        if let Some(p) = w.spec.security_context.as_ref().and_then(|s| s.app_armor_profile.as_ref())
            && !allowed_type(p)
        {
            out.push(Violation::new(field_message("the pod", p), w.spec_field("securityContext/appArmorProfile/type")));
        }
        for c in w.containers() {
            if let Some(p) = c.container.security_context.as_ref().and_then(|s| s.app_armor_profile.as_ref())
                && !allowed_type(p)
            {
                out.push(Violation::new(
                    field_message(&pss::container_label(c.name()), p),
                    c.field("securityContext/appArmorProfile/type"),
                ));
            }
        }
        for (key, value) in &w.pod_meta.annotations {
            if key.starts_with(ANNOTATION_PREFIX) && !allowed_annotation(value) {
                let why = if value == "unconfined" {
                    "AppArmor confinement is off"
                } else {
                    "only runtime/default and localhost/<profile> are allowed"
                };
                out.push(Violation::new(
                    format!(
                        "annotation {key} is {}: {why}; set it to runtime/default or localhost/<profile>, \
                         or use securityContext.appArmorProfile",
                        pss::join_quote(&[value])
                    ),
                    w.annotation_path(key),
                ));
            }
        }
        out
    }
}

palisade_sdk::export_pod_rule!(pss::PssRule<AppArmor>);

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_sdk::pss::check_json;

    #[test]
    fn fields_and_annotations() {
        let v = check_json::<AppArmor>(
            r#"{"kind":"Pod","metadata":{"annotations":{
                "container.apparmor.security.beta.kubernetes.io/a":"unconfined",
                "container.apparmor.security.beta.kubernetes.io/b":"localhost/x",
                "container.apparmor.security.beta.kubernetes.io/c":"runtime/default",
                "other":"unconfined"}},
              "spec":{"securityContext":{"appArmorProfile":{"type":"Unconfined"}},
                "containers":[{"name":"a","securityContext":{"appArmorProfile":{"type":"Localhost","localhostProfile":"p"}}},
                              {"name":"b","securityContext":{"appArmorProfile":{"type":"Unconfined"}}}]}}"#,
            "latest",
            Level::Baseline,
        );
        let paths: Vec<_> = v.iter().map(|v| v.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "/spec/securityContext/appArmorProfile/type",
                "/spec/containers/1/securityContext/appArmorProfile/type",
                "/metadata/annotations/container.apparmor.security.beta.kubernetes.io~1a",
            ]
        );
        let messages: Vec<_> = v.iter().map(|v| v.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "the pod sets securityContext.appArmorProfile.type to \"Unconfined\": AppArmor confinement is off; \
                 set it to RuntimeDefault, or Localhost with a profile loaded on the nodes",
                "container \"b\" sets securityContext.appArmorProfile.type to \"Unconfined\": AppArmor confinement \
                 is off; set it to RuntimeDefault, or Localhost with a profile loaded on the nodes",
                "annotation container.apparmor.security.beta.kubernetes.io/a is \"unconfined\": AppArmor confinement \
                 is off; set it to runtime/default or localhost/<profile>, or use securityContext.appArmorProfile",
            ]
        );
    }

    #[test]
    fn ephemeral_containers_are_checked() {
        let v = check_json::<AppArmor>(
            r#"{"kind":"Pod","spec":{"containers":[{"name":"a"}],
               "ephemeralContainers":[{"name":"debug","securityContext":{"appArmorProfile":{"type":"Unconfined"}}}]}}"#,
            "latest",
            Level::Baseline,
        );
        let paths: Vec<_> = v.iter().map(|v| v.path.as_str()).collect();
        assert_eq!(paths, ["/spec/ephemeralContainers/0/securityContext/appArmorProfile/type"]);
    }
}
