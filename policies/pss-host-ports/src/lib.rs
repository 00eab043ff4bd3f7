//! Pod Security Standards, baseline: host ports.
//!
//! Source of truth: `k8s.io/pod-security-admission/policy/check_hostPorts.go`
//! (version 1.0): `ports[*].hostPort` of every container must be unset or 0.

use palisade_sdk::pss::{self, Control, Level, Settings};
use palisade_sdk::{Fields, Metadata, Severity, Violation, Workload};

pub struct HostPorts;

impl Control for HostPorts {
    const READS: Fields = Fields::PORTS;

    fn metadata() -> Metadata {
        pss::metadata(
            "pss-host-ports",
            "Containers must not bind host ports",
            "Fails a pod with a container port that sets a non-zero hostPort.",
            "A host port binds the node's network interface, bypassing Services and \
             NetworkPolicies, and limits where the pod can be scheduled.",
            "Remove hostPort and expose the port through a Service (ClusterIP, or a \
             LoadBalancer or Ingress for outside traffic).",
            Severity::High,
            Level::Baseline,
            &[
                pss::STANDARD_URL,
                "https://github.com/kubernetes/pod-security-admission/blob/master/policy/check_hostPorts.go",
            ],
        )
    }

    fn check(_: &Settings, w: &Workload) -> Vec<Violation> {
        let mut out = Vec::new();
        for c in w.containers() {
            for (i, port) in c.container.ports.iter().enumerate() {
                if let Some(host_port) = port.host_port.filter(|p| *p != 0) {
                    out.push(Violation::new(
                        format!(
                            "{} sets hostPort {host_port}: it binds the node's network interface, bypassing \
                             Services and NetworkPolicies; remove hostPort and expose the port through a Service",
                            pss::container_label(c.name())
                        ),
                        c.field(&format!("ports/{i}/hostPort")),
                    ));
                }
            }
        }
        out
    }
}

palisade_sdk::export_pod_rule!(pss::PssRule<HostPorts>);

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_sdk::pss::check_json;

    #[test]
    fn non_zero_host_ports_fail() {
        let v = check_json::<HostPorts>(
            r#"{"kind":"Pod","spec":{"containers":[{"name":"a","ports":[{"containerPort":80,"hostPort":0},{"containerPort":81,"hostPort":8081}]}]}}"#,
            "latest",
            Level::Baseline,
        );
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].path, "/spec/containers/0/ports/1/hostPort");
        assert_eq!(
            v[0].message,
            "container \"a\" sets hostPort 8081: it binds the node's network interface, bypassing Services and \
             NetworkPolicies; remove hostPort and expose the port through a Service"
        );
    }

    #[test]
    fn ephemeral_containers_are_checked() {
        let v = check_json::<HostPorts>(
            r#"{"kind":"Pod","spec":{"containers":[{"name":"a"}],
               "ephemeralContainers":[{"name":"debug","ports":[{"containerPort":80,"hostPort":80}]}]}}"#,
            "latest",
            Level::Baseline,
        );
        let paths: Vec<_> = v.iter().map(|v| v.path.as_str()).collect();
        assert_eq!(paths, ["/spec/ephemeralContainers/0/ports/0/hostPort"]);
    }
}
