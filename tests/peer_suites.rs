//! Peer suites as oracles for the hardening catalog: kube-score's fixtures
//! (`kube-score/expectations.tsv`), Polaris' `test/checks` success and failure
//! files, and Kyverno's `best-practices` and `other` tests. Each peer check is
//! mapped to the Palisade rules that implement the same control in the tables
//! below; a peer "fail" must get a finding from one of them, a peer "pass"
//! none. Where Palisade differs on purpose the case is listed in
//! `DELIBERATE` with the reason; every other disagreement fails the test.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::*;
use serde_json::Value;

/// A peer check and what implements it in Palisade.
struct Map {
    /// Peer check (kube-score display name, Polaris check id, Kyverno test folder).
    peer: &'static str,
    /// Palisade rules whose findings count.
    rules: &'static [&'static str],
    /// Only findings whose message or path contains this count (a peer check
    /// that covers part of a rule).
    part: &'static str,
    /// Configuration to run with (YAML), beyond `profile: hardened`.
    config: &'static str,
}

const fn m(peer: &'static str, rules: &'static [&'static str]) -> Map {
    Map { peer, rules, part: "", config: "" }
}

const fn part(peer: &'static str, rules: &'static [&'static str], part: &'static str) -> Map {
    Map { peer, rules, part, config: "" }
}

const fn cfg(peer: &'static str, rules: &'static [&'static str], config: &'static str) -> Map {
    Map { peer, rules, part: "", config }
}

const KUBE_SCORE: &[Map] = &[
    m("Pod NetworkPolicy", &["network-policy-coverage"]),
    m("Pod Probes", &["readiness-probe", "liveness-probe"]),
    part("Pod Probes Identical", &["liveness-probe"], "identical"),
    m("Deployment has PodDisruptionBudget", &["pdb-coverage"]),
    m("StatefulSet has PodDisruptionBudget", &["pdb-coverage"]),
    m("Deployment has host PodAntiAffinity", &["pod-anti-affinity"]),
    m("StatefulSet has host PodAntiAffinity", &["pod-anti-affinity"]),
    part("HorizontalPodAutoscaler has target", &["hpa-target"], "scaleTargetRef"),
    cfg("HorizontalPodAutoscaler Replicas", &["hpa-target"], ""),
    m("Container Resources", &["resource-requests", "resource-limits"]),
    m("Container Image Tag", &["image-tag"]),
    part("Service Type", &["service-type"], "NodePort"),
];

const POLARIS: &[Map] = &[
    m("automountServiceAccountToken", &["service-account-token"]),
    part("cpuLimitsMissing", &["resource-limits"], "cpu limit"),
    part("cpuRequestsMissing", &["resource-requests"], "cpu request"),
    part("memoryLimitsMissing", &["resource-limits"], "memory limit"),
    part("memoryRequestsMissing", &["resource-requests"], "memory request"),
    part("hostIPCSet", &["pss-host-namespaces"], "hostIPC"),
    part("hostNetworkSet", &["pss-host-namespaces"], "hostNetwork"),
    part("hostPIDSet", &["pss-host-namespaces"], "hostPID"),
    m("hostPathSet", &["pss-host-path-volumes"]),
    m("hostPortSet", &["pss-host-ports"]),
    m("hostProcess", &["pss-windows-host-process"]),
    m("livenessProbeMissing", &["liveness-probe"]),
    m("readinessProbeMissing", &["readiness-probe"]),
    m("missingNetworkPolicy", &["network-policy-coverage"]),
    m("missingPodDisruptionBudget", &["pdb-coverage"]),
    m("notReadOnlyRootFilesystem", &["read-only-root-filesystem"]),
    m("privilegeEscalationAllowed", &["pss-allow-privilege-escalation"]),
    m("procMount", &["pss-proc-mount"]),
    m("runAsPrivileged", &["pss-privileged"]),
    m("runAsRootAllowed", &["pss-run-as-non-root"]),
    m("tagNotSpecified", &["image-tag"]),
    m("sensitiveContainerEnvVar", &["secret-env-literal"]),
    m("tlsSettingsMissing", &["ingress-tls"]),
    m("pdbDisruptionsIsZero", &["pdb-disruption-allowed"]),
    part("hpaMinAvailability", &["hpa-target"], "minReplicas"),
    m("deploymentMissingReplicas", &["replicas-minimum"]),
    m("sensitiveConfigmapContent", &["configmap-credentials"]),
    // RBAC. Polaris' three binding-based exec checks judge a binding by the
    // role it names; Palisade judges the role itself (rolePodExecAttach,
    // clusterrolePodExecAttach), so those three are not mapped.
    part("clusterrolePodExecAttach", &["rbac-privilege-escalation"], "running containers"),
    part("rolePodExecAttach", &["rbac-privilege-escalation"], "running containers"),
    m("clusterrolebindingClusterAdmin", &["rbac-cluster-admin-binding"]),
    m("rolebindingClusterAdminClusterRole", &["rbac-cluster-admin-binding"]),
    m("rolebindingClusterAdminRole", &["rbac-cluster-admin-binding"]),
];

const KYVERNO: &[Map] = &[
    m("best-practices/require-ro-rootfs", &["read-only-root-filesystem"]),
    m("best-practices/disallow-latest-tag", &["image-tag"]),
    cfg(
        "best-practices/require-pod-requests-limits",
        &["resource-requests", "resource-limits"],
        "settings: {resource-limits: {requireCpuLimit: false}}\n",
    ),
    m("best-practices/restrict-service-external-ips", &["service-external-ips"]),
    cfg(
        "best-practices/restrict-image-registries",
        &["image-registry"],
        "settings: {image-registry: {allowed: [eu.foo.io, bar.io]}}\n",
    ),
    part("best-practices/restrict-node-port", &["service-type"], "NodePort"),
    m("best-practices/require-probes", &["readiness-probe", "liveness-probe"]),
    part("best-practices/require-drop-all", &["pss-capabilities-restricted"], "drop"),
    part("other/ensure-probes-different", &["liveness-probe"], "identical"),
    m("other/ingress-host-match-tls", &["ingress-tls"]),
    part("other/restrict-loadbalancer", &["service-type"], "LoadBalancer"),
    m("other/require-pdb", &["pdb-coverage"]),
    part("other/pdb-maxunavailable", &["pdb-disruption-allowed"], "maxUnavailable"),
    m("other/require-deployments-have-multiple-replicas", &["replicas-minimum"]),
    m("other/restrict-automount-sa-token", &["service-account-token"]),
    m("other/require-image-checksum", &["image-digest"]),
    part("other/require-storageclass", &["storage-encryption"], "names no storageClassName"),
    m("other/require-netpol", &["network-policy-coverage"]),
    // RBAC
    part("other/restrict-wildcard-verbs", &["rbac-wildcard"], "verbs"),
    part("other/restrict-wildcard-resources", &["rbac-wildcard"], "resources"),
    m("other/restrict-secret-role-verbs", &["rbac-secrets-access"]),
    part("other/restrict-escalation-verbs-roles", &["rbac-privilege-escalation"], "verb"),
    part("other/restrict-clusterrole-nodesproxy", &["rbac-privilege-escalation"], "nodes/proxy"),
    part("other/restrict-clusterrole-csr", &["rbac-privilege-escalation"], "certificatesigningrequests/approval"),
    part(
        "other/restrict-clusterrole-mutating-validating-admission-webhooks",
        &["rbac-privilege-escalation"],
        "webhookconfigurations",
    ),
    part("other/restrict-binding-clusteradmin", &["rbac-cluster-admin-binding"], "cluster-admin"),
    part("other/restrict-binding-system-groups", &["rbac-cluster-admin-binding"], "system:masters"),
    // Istio
    m("istio/enforce-strict-mtls", &["mesh-mtls-strict"]),
    m("istio/enforce-tls-hosts-host-subnets", &["mesh-mtls-strict"]),
    Map {
        peer: "istio/prevent-disabling-injection-pods",
        rules: &["mesh-mtls-strict"],
        part: "sidecar.istio.io/inject",
        config: "settings: {mesh-mtls-strict: {mesh: istio}}\n",
    },
];

/// kubeaudit's `netpols` auditor. Its overridden forms (`...Allowed`, a
/// Namespace label) are still reported by kubeaudit, and so by Palisade,
/// whose exceptions live in its configuration.
const KUBEAUDIT: &[Map] = &[
    part("MissingDefaultDenyIngressNetworkPolicy", &["network-default-deny"], "default deny for ingress"),
    part("MissingDefaultDenyEgressNetworkPolicy", &["network-default-deny"], "default deny for egress"),
    part("AllowAllIngressNetworkPolicyExists", &["network-policy-permissive"], "/ingress/"),
    part("AllowAllEgressNetworkPolicyExists", &["network-policy-permissive"], "/egress/"),
];

/// Cases where Palisade differs from the peer on purpose: (suite, case id
/// prefix, why). Only listed cases may disagree.
const DELIBERATE: &[(&str, &str, &str)] = &[
    (
        "kube-score",
        "pod-probes-",
        "kube-score grades probes only for pods a Service targets, and accepts a readiness probe on one \
         container and a liveness probe on another; Palisade requires both probes on every regular \
         container of every long-running workload, Service or not (Polaris' and Kyverno's reading)",
    ),
    (
        "kube-score",
        "statefulset-host-antiaffinity-undefined-replicas.yaml",
        "kube-score treats an unset spec.replicas as replicated; Palisade applies the API default of 1",
    ),
    (
        "kube-score",
        "deployment-poddisruptionbudget-",
        "the Deployment leaves spec.replicas unset (1 by the API default): Palisade asks for a \
         PodDisruptionBudget only for more than one replica, as the issue specifies",
    ),
    ("kube-score", "statefulset-poddisruptionbudget-", "as above, for StatefulSets with spec.replicas unset"),
    (
        "polaris",
        "missingPodDisruptionBudget/failure",
        "Polaris asks every Deployment for a PodDisruptionBudget; Palisade only replicated ones (these \
         have spec.replicas unset, so 1)",
    ),
    (
        "polaris",
        "missingNetworkPolicy/failure.netpol_missing_",
        "Polaris fails a NetworkPolicy that lists Ingress or Egress in policyTypes without rules for it; \
         in Kubernetes that policy denies all such traffic, the strictest isolation, so Palisade passes it",
    ),
    (
        "polaris",
        "hpaMinAvailability/success.minReplicaAbsent",
        "an unset minReplicas is 1 by the API default, a single replica at quiet hours; Palisade reports it",
    ),
    (
        "kyverno",
        "best-practices/require-probes",
        "Kyverno accepts any one of liveness, readiness or startup probe; Palisade requires readiness and \
         liveness probes (with kube-score and Polaris)",
    ),
    (
        "kyverno",
        "other/require-pdb",
        "the Kyverno test mocks a PodDisruptionBudget that exists in the cluster (pdb_count: 1); offline, \
         the checked manifests hold none",
    ),
    (
        "polaris",
        "clusterrolePodExecAttach/success.gce_calico",
        "Polaris exempts GKE's gce:podsecuritypolicy:calico-sa by name; Palisade has no vendor exemptions \
         (allowedRoles or an exception admits it)",
    ),
    ("polaris", "rolePodExecAttach/success.gce_calico", "as above"),
    ("polaris", "clusterrolebindingClusterAdmin/success.gce_calico", "as above"),
    ("polaris", "rolebindingClusterAdminClusterRole/success.gce_calico", "as above"),
    ("polaris", "rolebindingClusterAdminRole/success.gce_calico", "as above"),
    (
        "kyverno",
        "other/restrict-clusterrole-csr ClusterRole/violating-clusterrole",
        "the fixture grants certificatesigningrequests/approval and signers in the core group, where they do \
         not exist (the CSR API is certificates.k8s.io), so the role grants nothing; Kyverno ignores apiGroups",
    ),
    (
        "kyverno",
        "other/restrict-binding-clusteradmin RoleBinding/badrb0",
        "a roleRef of kind Role named cluster-admin is a namespace's own Role, not the ClusterRole; Palisade \
         judges such a Role by its rules when it is in the checked set",
    ),
    (
        "kyverno",
        "other/restrict-binding-system-groups ClusterRoleBinding/badcrb0",
        "bindings to system:anonymous and system:unauthenticated: rbac-cluster-admin-binding reports \
         cluster-admin and system:masters only",
    ),
    ("kyverno", "other/restrict-binding-system-groups RoleBinding/badrb0", "as above"),
];

struct Case {
    id: String,
    /// Checked together, as the peer applies them (a Kyverno test's resources).
    files: Vec<PathBuf>,
    /// Restrict to objects of this kind and name (Kyverno names its resources).
    object: Option<(String, String)>,
    expect_fail: bool,
}

fn failed(report: &Value, map: &Map, object: &Option<(String, String)>) -> Vec<String> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| map.rules.contains(&f["rule"].as_str().unwrap()))
        .filter(|f| {
            map.part.is_empty()
                || f["message"].as_str().unwrap().contains(map.part)
                || f["path"].as_str().unwrap().contains(map.part)
        })
        .filter(|f| {
            // Kyverno names namespaced objects `namespace/name`.
            object.as_ref().is_none_or(|(kind, name)| {
                let (namespace, name) = name.split_once('/').map_or((None, name.as_str()), |(ns, n)| (Some(ns), n));
                f["resource"]["kind"] == kind.as_str()
                    && f["resource"]["name"] == name
                    // The Kyverno CLI puts objects without a namespace in `default`.
                    && namespace.is_none_or(|ns| {
                        f["resource"]["namespace"] == ns || (ns == "default" && f["resource"].get("namespace").is_none())
                    })
            })
        })
        .map(|f| format!("{}: {}", f["rule"].as_str().unwrap(), f["message"].as_str().unwrap()))
        .collect()
}

/// Run every case of a suite; returns (agree, total, disagreements).
fn judge(suite: &'static str, maps: &[Map], cases: Vec<(usize, Case)>) -> (usize, usize, usize, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let mut reports: BTreeMap<(usize, Vec<PathBuf>), Value> = BTreeMap::new();
    let (mut agree, mut deliberate, mut wrong) = (0, 0, Vec::new());
    let total = cases.len();
    for (i, case) in cases {
        let map = &maps[i];
        let report = reports.entry((i, case.files.clone())).or_insert_with(|| {
            let config = dir.path().join(format!("{suite}-{i}.yaml"));
            std::fs::write(&config, format!("profile: hardened\n{}", map.config)).unwrap();
            json_report(palisade().args(["check", "--format", "json", "--config"]).arg(&config).args(&case.files)).1
        });
        let found = failed(report, map, &case.object);
        if found.is_empty() != case.expect_fail {
            agree += 1;
        } else if DELIBERATE.iter().any(|(s, id, _)| *s == suite && case.id.starts_with(id)) {
            deliberate += 1;
        } else {
            wrong.push(format!(
                "{} [{}]: peer expects {}, Palisade found {:?}",
                case.id,
                map.peer,
                if case.expect_fail { "fail" } else { "pass" },
                found
            ));
        }
    }
    println!("{suite}: {agree}/{total} agree, {deliberate} deliberate differences, {} disagreements", wrong.len());
    (agree, total, deliberate, wrong)
}

fn read_yaml(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap();
    palisade::documents::read_documents(&text, &Default::default()).remove(0).content.unwrap().value
}

#[test]
fn kube_score_fixtures() {
    let base = corpus().join("kube-score");
    let tsv = std::fs::read_to_string(base.join("expectations.tsv")).unwrap();
    let mut cases = Vec::new();
    for line in tsv.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        let [file, check, grade] = cols[..] else { continue };
        let Some(i) = KUBE_SCORE.iter().position(|m| m.peer == check) else { continue };
        if grade == "skipped" {
            continue;
        }
        cases.push((
            i,
            Case {
                id: format!("{file} {check}"),
                files: vec![base.join("score/testdata").join(file)],
                object: None,
                expect_fail: grade != "ok",
            },
        ));
    }
    let (_, total, _, wrong) = judge("kube-score", KUBE_SCORE, cases);
    assert!(total > 50, "{total}");
    assert!(wrong.is_empty(), "{} disagreements:\n{}", wrong.len(), wrong.join("\n"));
}

#[test]
fn polaris_checks() {
    let base = corpus().join("polaris/test/checks");
    let mut cases = Vec::new();
    for (i, map) in POLARIS.iter().enumerate() {
        for file in yaml_files(&base.join(map.peer)) {
            let name = file.file_name().unwrap().to_string_lossy().into_owned();
            let expect_fail = match name.split('.').next() {
                Some("failure") => true,
                Some("success") => false,
                _ => continue,
            };
            cases.push((i, Case { id: format!("{}/{name}", map.peer), files: vec![file], object: None, expect_fail }));
        }
    }
    let (_, total, _, wrong) = judge("polaris", POLARIS, cases);
    assert!(total > 50, "{total}");
    assert!(wrong.is_empty(), "{} disagreements:\n{}", wrong.len(), wrong.join("\n"));
}

#[test]
fn kyverno_best_practices_and_other() {
    let base = corpus().join("kyverno");
    let mut cases = Vec::new();
    for (i, map) in KYVERNO.iter().enumerate() {
        let dir = base.join(map.peer).join(".kyverno-test");
        let test = read_yaml(&dir.join("kyverno-test.yaml"));
        let resources: Vec<PathBuf> =
            test["resources"].as_array().unwrap().iter().map(|r| dir.join(r.as_str().unwrap())).collect();
        for r in test["results"].as_array().unwrap() {
            let expect_fail = match r["result"].as_str().unwrap() {
                "fail" => true,
                "pass" => false,
                _ => continue,
            };
            // All of a test's resources in one run, as `kyverno test` applies them.
            for name in r["resources"].as_array().unwrap() {
                let name = name.as_str().unwrap().to_string();
                let kind = r["kind"].as_str().unwrap().to_string();
                cases.push((
                    i,
                    Case {
                        id: format!("{} {kind}/{name}", map.peer),
                        files: resources.clone(),
                        object: Some((kind.clone(), name.clone())),
                        expect_fail,
                    },
                ));
            }
        }
    }
    let (_, total, _, wrong) = judge("kyverno", KYVERNO, cases);
    assert!(total > 50, "{total}");
    assert!(wrong.is_empty(), "{} disagreements:\n{}", wrong.len(), wrong.join("\n"));
}

#[test]
fn kubeaudit_netpols() {
    let base = corpus().join("kubeaudit");
    let tsv = std::fs::read_to_string(base.join("expectations.tsv")).unwrap();
    let mut seen = std::collections::BTreeSet::new();
    let mut cases = Vec::new();
    for line in tsv.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        let [file, _auditor, expected, ..] = cols[..] else { continue };
        if !seen.insert(file.to_string()) {
            continue;
        }
        // The names kubeaudit reports for the whole file, overridden or not;
        // the combined ingress-and-egress name counts for both.
        let names: Vec<String> = expected
            .split(',')
            .filter(|n| *n != "none")
            .map(|n| n.trim_end_matches("Allowed").to_string())
            .flat_map(|n| match n.as_str() {
                "MissingDefaultDenyIngressAndEgressNetworkPolicy" => vec![
                    "MissingDefaultDenyIngressNetworkPolicy".to_string(),
                    "MissingDefaultDenyEgressNetworkPolicy".to_string(),
                ],
                _ => vec![n],
            })
            .collect();
        for (i, map) in KUBEAUDIT.iter().enumerate() {
            cases.push((
                i,
                Case {
                    id: format!("{file} {}", map.peer),
                    files: vec![base.join(file)],
                    object: None,
                    expect_fail: names.iter().any(|n| n == map.peer),
                },
            ));
        }
    }
    let (_, total, _, wrong) = judge("kubeaudit", KUBEAUDIT, cases);
    assert_eq!(total, 36);
    assert!(wrong.is_empty(), "{} disagreements:\n{}", wrong.len(), wrong.join("\n"));
}
