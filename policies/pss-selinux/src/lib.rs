//! Pod Security Standards, baseline: SELinux.
//!
//! Source of truth: `k8s.io/pod-security-admission/policy/check_seLinuxOptions.go`:
//! `seLinuxOptions.type` of the pod and every container must be empty,
//! `container_t`, `container_init_t` or `container_kvm_t` (version 1.0), and
//! also `container_engine_t` from version 1.31; `user` and `role` must be empty.

use palisade_sdk::pod::SeLinuxOptions;
use palisade_sdk::pss::{self, Control, Level, Settings};
use palisade_sdk::{Fields, Metadata, Severity, Violation, Workload};

const TYPES_1_0: [&str; 4] = ["", "container_t", "container_init_t", "container_kvm_t"];

pub struct SeLinux;

/// The message about one `seLinuxOptions` set by `subject` (`the pod`,
/// `container "a"`): the forbidden type, user and role it sets, and what to
/// set instead; `None` when it sets nothing forbidden.
fn message(settings: &Settings, subject: &str, opts: &SeLinuxOptions) -> Option<String> {
    let engine = settings.version.at_least(31);
    let allowed = TYPES_1_0.contains(&opts.type_.as_str()) || (engine && opts.type_ == "container_engine_t");
    let mut set = Vec::new();
    let mut fixes = Vec::new();
    if !allowed {
        set.push(format!("type {}", pss::join_quote(&[&opts.type_])));
        let types = if engine {
            "container_t, container_init_t, container_kvm_t or container_engine_t"
        } else {
            "container_t, container_init_t or container_kvm_t"
        };
        fixes.push(format!("use type {types}, or none"));
    }
    let mut remove = Vec::new();
    for (field, value) in [("user", &opts.user), ("role", &opts.role)] {
        if !value.is_empty() {
            set.push(format!("{field} {}", pss::join_quote(&[value])));
            remove.push(field);
        }
    }
    if !remove.is_empty() {
        fixes.push(format!("remove {}", remove.join(" and ")));
    }
    if set.is_empty() {
        return None;
    }
    Some(format!(
        "{subject} sets securityContext.seLinuxOptions {}: a custom SELinux label can lift the runtime's \
         confinement; {}",
        set.join(" and "),
        fixes.join(", and ")
    ))
}

impl Control for SeLinux {
    const READS: Fields = Fields::SECURITY_CONTEXT.union(Fields::POD_SECURITY_CONTEXT);

    fn metadata() -> Metadata {
        pss::metadata(
            "pss-selinux",
            "SELinux options must not be customised",
            "Fails a pod whose seLinuxOptions (pod or container) set a type other than \
             container_t, container_init_t, container_kvm_t or (from v1.31) container_engine_t, \
             or set a user or role.",
            "A custom SELinux type, user or role can lift the confinement the container runtime \
             applies and give the container access to host resources.",
            "Remove seLinuxOptions.user and .role, and use one of the allowed types or none.",
            Severity::High,
            Level::Baseline,
            &[
                pss::STANDARD_URL,
                "https://github.com/kubernetes/pod-security-admission/blob/master/policy/check_seLinuxOptions.go",
            ],
        )
    }

    fn check(settings: &Settings, w: &Workload) -> Vec<Violation> {
        let mut out = Vec::new();
        if let Some(opts) = w.spec.security_context.as_ref().and_then(|s| s.se_linux_options.as_ref())
            && let Some(m) = message(settings, "the pod", opts)
        {
            out.push(Violation::new(m, w.spec_field("securityContext/seLinuxOptions")));
        }
        for c in w.containers() {
            if let Some(opts) = c.container.security_context.as_ref().and_then(|s| s.se_linux_options.as_ref())
                && let Some(m) = message(settings, &pss::container_label(c.name()), opts)
            {
                out.push(Violation::new(m, c.field("securityContext/seLinuxOptions")));
            }
        }
        out
    }
}

palisade_sdk::export_pod_rule!(pss::PssRule<SeLinux>);

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_sdk::pss::check_json;

    const ENGINE: &str = r#"{"kind":"Pod","spec":{"containers":[{"name":"a","securityContext":{"seLinuxOptions":{"type":"container_engine_t"}}}]}}"#;

    #[test]
    fn container_engine_t_is_allowed_from_1_31() {
        let v = check_json::<SeLinux>(ENGINE, "v1.30", Level::Baseline);
        assert_eq!(
            v.iter().map(|v| v.message.as_str()).collect::<Vec<_>>(),
            ["container \"a\" sets securityContext.seLinuxOptions type \"container_engine_t\": a custom SELinux \
              label can lift the runtime's confinement; use type container_t, container_init_t or container_kvm_t, \
              or none"]
        );
        assert!(check_json::<SeLinux>(ENGINE, "v1.31", Level::Baseline).is_empty());
        assert!(check_json::<SeLinux>(ENGINE, "latest", Level::Baseline).is_empty());
    }

    #[test]
    fn user_and_role_are_forbidden() {
        let v = check_json::<SeLinux>(
            r#"{"kind":"Pod","spec":{"securityContext":{"seLinuxOptions":{"user":"u","role":"r","level":"s0"}}}}"#,
            "latest",
            Level::Baseline,
        );
        assert_eq!(v.len(), 1);
        assert_eq!(
            v[0].message,
            "the pod sets securityContext.seLinuxOptions user \"u\" and role \"r\": a custom SELinux label can lift \
             the runtime's confinement; remove user and role"
        );
        let v = check_json::<SeLinux>(
            r#"{"kind":"Pod","spec":{"securityContext":{"seLinuxOptions":{"type":"spc_t","role":"r"}}}}"#,
            "latest",
            Level::Baseline,
        );
        assert!(
            v[0].message.ends_with(
                "type \"spc_t\" and role \"r\": a custom SELinux label can lift the runtime's confinement; use type \
                 container_t, container_init_t, container_kvm_t or container_engine_t, or none, and remove role"
            ),
            "{}",
            v[0].message
        );
    }

    #[test]
    fn ephemeral_containers_are_checked() {
        let v = check_json::<SeLinux>(
            r#"{"kind":"Pod","spec":{"containers":[{"name":"a"}],
               "ephemeralContainers":[{"name":"debug","securityContext":{"seLinuxOptions":{"type":"spc_t"}}}]}}"#,
            "latest",
            Level::Baseline,
        );
        let paths: Vec<_> = v.iter().map(|v| v.path.as_str()).collect();
        assert_eq!(paths, ["/spec/ephemeralContainers/0/securityContext/seLinuxOptions"]);
    }
}
