//! Pod Security Standards, baseline: Windows HostProcess containers.
//!
//! Source of truth: `k8s.io/pod-security-admission/policy/check_windowsHostProcess.go`
//! (version 1.0): `securityContext.windowsOptions.hostProcess` of the pod and
//! of every container must be unset or false.

use palisade_sdk::pss::{self, Control, Level, Settings};
use palisade_sdk::{Fields, Metadata, Severity, Violation, Workload};

pub struct WindowsHostProcess;

impl Control for WindowsHostProcess {
    const READS: Fields = Fields::SECURITY_CONTEXT.union(Fields::POD_SECURITY_CONTEXT);

    fn metadata() -> Metadata {
        pss::metadata(
            "pss-windows-host-process",
            "Windows HostProcess containers are not allowed",
            "Fails a pod that sets securityContext.windowsOptions.hostProcess to true on the pod \
             or on a container.",
            "A Windows HostProcess container runs directly on the host with the privileges of a \
             host process: the Windows equivalent of a privileged container.",
            "Remove windowsOptions.hostProcess or set it to false.",
            Severity::Critical,
            Level::Baseline,
            &[
                pss::STANDARD_URL,
                "https://github.com/kubernetes/pod-security-admission/blob/master/policy/check_windowsHostProcess.go",
            ],
        )
    }

    fn check(_: &Settings, w: &Workload) -> Vec<Violation> {
        let mut out = Vec::new();
        let pod =
            w.spec.security_context.as_ref().and_then(|s| s.windows_options.as_ref()).and_then(|o| o.host_process);
        if pod == Some(true) {
            out.push(Violation::new(
                "the pod sets securityContext.windowsOptions.hostProcess to true: its containers run on the Windows \
                 host with host privileges; set it to false or remove it",
                w.spec_field("securityContext/windowsOptions/hostProcess"),
            ));
        }
        for c in w.containers() {
            let set = c
                .container
                .security_context
                .as_ref()
                .and_then(|s| s.windows_options.as_ref())
                .and_then(|o| o.host_process);
            if set == Some(true) {
                out.push(Violation::new(
                    format!(
                        "{} sets securityContext.windowsOptions.hostProcess to true: it runs on the Windows host \
                         with host privileges; set it to false or remove it",
                        pss::container_label(c.name())
                    ),
                    c.field("securityContext/windowsOptions/hostProcess"),
                ));
            }
        }
        out
    }
}

palisade_sdk::export_pod_rule!(pss::PssRule<WindowsHostProcess>);

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_sdk::pss::check_json;

    #[test]
    fn pod_and_container_level() {
        let v = check_json::<WindowsHostProcess>(
            r#"{"kind":"Pod","spec":{"securityContext":{"windowsOptions":{"hostProcess":true}},
               "containers":[{"name":"a","securityContext":{"windowsOptions":{"hostProcess":false}}},
                             {"name":"b","securityContext":{"windowsOptions":{"hostProcess":true}}}]}}"#,
            "latest",
            Level::Baseline,
        );
        let paths: Vec<_> = v.iter().map(|v| v.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "/spec/securityContext/windowsOptions/hostProcess",
                "/spec/containers/1/securityContext/windowsOptions/hostProcess"
            ]
        );
        assert_eq!(
            v[1].message,
            "container \"b\" sets securityContext.windowsOptions.hostProcess to true: it runs on the Windows host \
             with host privileges; set it to false or remove it"
        );
    }

    #[test]
    fn ephemeral_containers_are_checked() {
        let v = check_json::<WindowsHostProcess>(
            r#"{"kind":"Pod","spec":{"containers":[{"name":"a"}],
               "ephemeralContainers":[{"name":"debug","securityContext":{"windowsOptions":{"hostProcess":true}}}]}}"#,
            "latest",
            Level::Baseline,
        );
        let paths: Vec<_> = v.iter().map(|v| v.path.as_str()).collect();
        assert_eq!(paths, ["/spec/ephemeralContainers/0/securityContext/windowsOptions/hostProcess"]);
    }
}
