//! Pod Security Standards, baseline: sysctls.
//!
//! Source of truth: `k8s.io/pod-security-admission/policy/check_sysctls.go`:
//! every `spec.securityContext.sysctls[*].name` must be in the safe set of the
//! evaluated version. The set grows: v1.0 five sysctls, v1.27 adds
//! `net.ipv4.ip_local_reserved_ports`, v1.29 the TCP keepalive and FIN timeout
//! ones, v1.32 `net.ipv4.tcp_rmem` and `net.ipv4.tcp_wmem`, v1.37
//! `net.ipv4.tcp_slow_start_after_idle` and `net.ipv4.tcp_notsent_lowat`.

use palisade_sdk::pss::{self, Control, Level, Settings};
use palisade_sdk::{Fields, Metadata, Severity, Violation, Workload};

/// (minimum minor version, sysctl) pairs.
const SAFE: &[(u32, &str)] = &[
    (0, "kernel.shm_rmid_forced"),
    (0, "net.ipv4.ip_local_port_range"),
    (0, "net.ipv4.tcp_syncookies"),
    (0, "net.ipv4.ping_group_range"),
    (0, "net.ipv4.ip_unprivileged_port_start"),
    (27, "net.ipv4.ip_local_reserved_ports"),
    (29, "net.ipv4.tcp_keepalive_time"),
    (29, "net.ipv4.tcp_fin_timeout"),
    (29, "net.ipv4.tcp_keepalive_intvl"),
    (29, "net.ipv4.tcp_keepalive_probes"),
    (32, "net.ipv4.tcp_rmem"),
    (32, "net.ipv4.tcp_wmem"),
    (37, "net.ipv4.tcp_slow_start_after_idle"),
    (37, "net.ipv4.tcp_notsent_lowat"),
];

pub struct Sysctls;

pub fn allowed(settings: &Settings, name: &str) -> bool {
    SAFE.iter().any(|(since, safe)| *safe == name && settings.version.at_least(*since))
}

impl Control for Sysctls {
    const READS: Fields = Fields::POD_SECURITY_CONTEXT;

    fn metadata() -> Metadata {
        pss::metadata(
            "pss-sysctls",
            "Only safe sysctls may be set",
            "Fails a pod whose spec.securityContext.sysctls names a sysctl outside the safe set \
             of the evaluated Pod Security Standards version.",
            "Unsafe sysctls are not isolated between pods: setting them changes the node's kernel \
             for every workload on it, or disables security mechanisms.",
            "Remove the sysctl, or set it on the nodes through their configuration instead of \
             from a pod.",
            Severity::High,
            Level::Baseline,
            &[
                pss::STANDARD_URL,
                "https://github.com/kubernetes/pod-security-admission/blob/master/policy/check_sysctls.go",
            ],
        )
    }

    fn check(settings: &Settings, w: &Workload) -> Vec<Violation> {
        let Some(sc) = w.spec.security_context.as_ref() else {
            return Vec::new();
        };
        sc.sysctls
            .iter()
            .enumerate()
            .filter(|(_, s)| !allowed(settings, &s.name))
            .map(|(i, s)| {
                Violation::new(
                    format!(
                        "the pod sets sysctl {}, outside the safe set: it can change the node's kernel for other \
                         pods; remove it from securityContext.sysctls, or set it on the nodes",
                        pss::join_quote(&[&s.name])
                    ),
                    w.spec_field(&format!("securityContext/sysctls/{i}/name")),
                )
            })
            .collect()
    }
}

palisade_sdk::export_pod_rule!(pss::PssRule<Sysctls>);

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_sdk::pss::check_json;

    fn pod(name: &str) -> String {
        format!(r#"{{"kind":"Pod","spec":{{"securityContext":{{"sysctls":[{{"name":"{name}","value":"1"}}]}}}}}}"#)
    }

    #[test]
    fn the_safe_set_grows_with_the_version() {
        let cases = [
            ("kernel.shm_rmid_forced", "v1.0"),
            ("net.ipv4.ip_local_reserved_ports", "v1.27"),
            ("net.ipv4.tcp_fin_timeout", "v1.29"),
            ("net.ipv4.tcp_wmem", "v1.32"),
            ("net.ipv4.tcp_notsent_lowat", "v1.37"),
        ];
        for (name, since) in cases {
            let minor: u32 = since[3..].parse().unwrap();
            assert!(check_json::<Sysctls>(&pod(name), since, Level::Baseline).is_empty(), "{name}");
            assert!(check_json::<Sysctls>(&pod(name), "latest", Level::Baseline).is_empty(), "{name}");
            if minor > 0 {
                let before = format!("v1.{}", minor - 1);
                assert_eq!(check_json::<Sysctls>(&pod(name), &before, Level::Baseline).len(), 1, "{name}");
            }
        }
        let v = check_json::<Sysctls>(&pod("kernel.msgmax"), "latest", Level::Baseline);
        assert_eq!(
            v.iter().map(|v| v.message.as_str()).collect::<Vec<_>>(),
            ["the pod sets sysctl \"kernel.msgmax\", outside the safe set: it can change the node's kernel for other \
              pods; remove it from securityContext.sysctls, or set it on the nodes"]
        );
        assert_eq!(check_json::<Sysctls>(&pod(""), "latest", Level::Baseline).len(), 1);
    }
}
