//! Pod Security Standards, baseline (v1.34 and later): probes and lifecycle
//! handlers must not target another host.
//!
//! Source of truth: `k8s.io/pod-security-admission/policy/check_hostProbesAndHostLifecycle.go`
//! (version 1.34): the `host` of `httpGet` and `tcpSocket` in every container's
//! liveness, readiness and startup probes and postStart/preStop handlers must be
//! unset or empty. Any value, including a loopback address, is forbidden: the
//! kubelet makes these requests from the node, so a host field turns the pod
//! into a way to make the node call arbitrary addresses.

use palisade_sdk::pod::Handler;
use palisade_sdk::pss::{self, Control, Level, Settings};
use palisade_sdk::{ContainerRef, Fields, Metadata, Severity, Violation, Workload};

pub struct HostProbesLifecycle;

fn check_handler(c: &ContainerRef<'_>, where_: &str, handler: Option<&Handler>, out: &mut Vec<Violation>) {
    let Some(handler) = handler else { return };
    for (kind, field) in [("httpGet", &handler.http_get), ("tcpSocket", &handler.tcp_socket)] {
        let Some(field) = field else { continue };
        if !field.host.is_empty() {
            out.push(Violation::new(
                format!(
                    "{} sets {where_}.{kind}.host to {}: the kubelet connects there from the node's network; \
                     remove the host field so the kubelet targets the pod's own IP",
                    pss::container_label(c.name()),
                    pss::join_quote(&[&field.host])
                ),
                c.field(&format!("{}/{kind}/host", where_.replace('.', "/"))),
            ));
        }
    }
}

impl Control for HostProbesLifecycle {
    const READS: Fields = Fields::PROBES.union(Fields::LIFECYCLE);

    fn metadata() -> Metadata {
        pss::metadata(
            "pss-host-probes-lifecycle",
            "Probes and lifecycle handlers must not set a host",
            "From v1.34, fails a pod with a container whose liveness, readiness or startup probe, \
             or postStart or preStop handler, sets httpGet.host or tcpSocket.host.",
            "The kubelet runs probes and handlers from the node's network: a host field lets a \
             pod make the node connect to any address, including the node's own services.",
            "Remove the host field; the kubelet then targets the pod's own IP.",
            Severity::High,
            Level::Baseline,
            &[
                pss::STANDARD_URL,
                "https://github.com/kubernetes/pod-security-admission/blob/master/policy/check_hostProbesAndHostLifecycle.go",
            ],
        )
    }

    fn check(settings: &Settings, w: &Workload) -> Vec<Violation> {
        if !settings.version.at_least(34) {
            return Vec::new();
        }
        let mut out = Vec::new();
        for c in w.containers() {
            let k = c.container;
            check_handler(&c, "livenessProbe", k.liveness_probe.as_ref().map(|p| &p.handler), &mut out);
            check_handler(&c, "readinessProbe", k.readiness_probe.as_ref().map(|p| &p.handler), &mut out);
            check_handler(&c, "startupProbe", k.startup_probe.as_ref().map(|p| &p.handler), &mut out);
            if let Some(lifecycle) = &k.lifecycle {
                check_handler(&c, "lifecycle.postStart", lifecycle.post_start.as_ref(), &mut out);
                check_handler(&c, "lifecycle.preStop", lifecycle.pre_stop.as_ref(), &mut out);
            }
        }
        out
    }
}

palisade_sdk::export_pod_rule!(pss::PssRule<HostProbesLifecycle>);

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_sdk::pss::check_json;

    const POD: &str = r#"{"kind":"Pod","spec":{"containers":[{"name":"a",
        "readinessProbe":{"httpGet":{"host":"127.0.0.1","port":80}},
        "livenessProbe":{"tcpSocket":{"port":80}},
        "lifecycle":{"preStop":{"tcpSocket":{"host":"10.0.0.1","port":1}}}}]}}"#;

    #[test]
    fn any_host_is_forbidden_from_1_34() {
        let v = check_json::<HostProbesLifecycle>(POD, "v1.34", Level::Baseline);
        let paths: Vec<_> = v.iter().map(|v| v.path.as_str()).collect();
        assert_eq!(
            paths,
            ["/spec/containers/0/readinessProbe/httpGet/host", "/spec/containers/0/lifecycle/preStop/tcpSocket/host"]
        );
        assert_eq!(
            v[0].message,
            "container \"a\" sets readinessProbe.httpGet.host to \"127.0.0.1\": the kubelet connects there from \
             the node's network; remove the host field so the kubelet targets the pod's own IP"
        );
        assert!(v[1].message.starts_with("container \"a\" sets lifecycle.preStop.tcpSocket.host to \"10.0.0.1\": "));
        assert!(check_json::<HostProbesLifecycle>(POD, "v1.33", Level::Baseline).is_empty());
    }

    #[test]
    fn ephemeral_containers_are_checked() {
        let v = check_json::<HostProbesLifecycle>(
            r#"{"kind":"Pod","spec":{"containers":[{"name":"a"}],
               "ephemeralContainers":[{"name":"debug","lifecycle":{"postStart":{"httpGet":{"host":"169.254.169.254","port":80}}}}]}}"#,
            "latest",
            Level::Baseline,
        );
        let paths: Vec<_> = v.iter().map(|v| v.path.as_str()).collect();
        assert_eq!(paths, ["/spec/ephemeralContainers/0/lifecycle/postStart/httpGet/host"]);
    }
}
