//! Conformance with the upstream Pod Security admission fixtures
//! (`../shared/corpus/pss/test/testdata/<level>/<version>/<pass|fail>/*.yaml`),
//! through the real binary: every `fail/` fixture is denied and every `pass/`
//! fixture allowed, at its level and version; then the same with each fixture
//! wrapped into the eight other pod-bearing kinds.
//!
//! The upstream fixtures do not exercise everything the upstream checks
//! (`k8s.io/pod-security-admission/policy/check_*.go`) decide. `tests/pss-extra/`
//! holds the cases read from those sources instead, in the same layout (a
//! `latest` folder is run with `--pss-version latest`), each file citing the
//! check it follows: the 1.35 user-namespace relaxations of `runAsNonRoot`
//! and `runAsUser`, `image` volumes in `restrictedVolumes`, SELinux
//! `container_engine_t` from 1.31, and ephemeral containers, which upstream's
//! `visitContainers` visits and no upstream fixture has.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use common::*;
use serde_json::{Value, json};

/// The Palisade rules that may deny a fixture of an upstream check. A baseline
/// check's fixtures are denied at the restricted level by the restricted check
/// that overrides it.
fn expected_rules(check: &str) -> &'static [&'static str] {
    match check {
        "allowprivilegeescalation" => &["pss-allow-privilege-escalation"],
        "apparmorprofile" => &["pss-apparmor"],
        "capabilities_baseline" => &["pss-capabilities-baseline", "pss-capabilities-restricted"],
        "capabilities_restricted" => &["pss-capabilities-restricted"],
        "hostnamespaces" => &["pss-host-namespaces"],
        "hostpathvolumes" => &["pss-host-path-volumes", "pss-volume-types"],
        "hostports" => &["pss-host-ports"],
        "hostprobesandhostlifecycle" => &["pss-host-probes-lifecycle"],
        "privileged" => &["pss-privileged"],
        "procmount" | "procmount_restricted" => &["pss-proc-mount"],
        "restrictedvolumes" => &["pss-volume-types"],
        "runasnonroot" => &["pss-run-as-non-root"],
        "runasuser" => &["pss-run-as-user"],
        "seccompprofile_baseline" => &["pss-seccomp-baseline", "pss-seccomp-restricted"],
        "seccompprofile_restricted" => &["pss-seccomp-restricted"],
        "selinuxoptions" => &["pss-selinux"],
        "sysctls" => &["pss-sysctls"],
        "windowshostprocess" => &["pss-windows-host-process"],
        other => panic!("no mapping for upstream check {other:?}"),
    }
}

fn check_name(file: &Path) -> String {
    let stem = file.file_stem().unwrap().to_string_lossy();
    stem.trim_end_matches(|c: char| c.is_ascii_digit()).to_string()
}

struct Tally {
    fixtures: usize,
    agree: usize,
    disagreements: Vec<String>,
}

fn testdata() -> PathBuf {
    corpus().join("pss").join("test").join("testdata")
}

/// Cases the upstream fixtures do not exercise, from the upstream sources.
fn extra() -> PathBuf {
    root().join("tests").join("pss-extra")
}

/// Run every fixture under `root` (`<level>/<version>/<pass|fail>/`) at its
/// level and version, and compare with its verdict.
fn verdicts(root: &Path) -> Tally {
    let mut tally = Tally { fixtures: 0, agree: 0, disagreements: Vec::new() };
    for level in ["baseline", "restricted"] {
        for (version, dir) in version_dirs(&root.join(level)) {
            let mut cmd = palisade();
            cmd.args(["check", "--format", "json", "--profile", level, "--pss-version", &version]);
            // A version of tests/pss-extra may hold only passing or only failing cases.
            cmd.args(["pass", "fail"].map(|sub| dir.join(sub)).into_iter().filter(|d| d.is_dir()));
            let (code, report) = json_report(&mut cmd);
            assert!(errors(&report).is_empty(), "{level}/{version}: {:#}", report["errors"]);
            assert!(code == 0 || code == 1, "{level}/{version}: exit {code}");
            let by_file = rules_by_file(&report);
            for (verdict, sub) in [("pass", "pass"), ("fail", "fail")] {
                for file in yaml_files(&dir.join(sub)) {
                    tally.fixtures += 1;
                    let name = file.display().to_string();
                    let rules = by_file.get(&name).cloned().unwrap_or_default();
                    let ok = if verdict == "pass" {
                        rules.is_empty()
                    } else {
                        let check = check_name(&file);
                        let base = check.trim_start_matches("base");
                        !base.is_empty() && expected_rules(&check).iter().any(|r| rules.contains(*r))
                    };
                    if ok {
                        tally.agree += 1;
                    } else {
                        tally.disagreements.push(format!(
                            "{level}/{version}/{sub}/{}: {:?}",
                            file.file_name().unwrap().to_string_lossy(),
                            rules
                        ));
                    }
                }
            }
        }
    }
    tally
}

#[test]
fn every_upstream_fixture_gets_the_upstream_verdict() {
    let tally = verdicts(&testdata());
    println!("PSS conformance: {}/{} fixtures agree", tally.agree, tally.fixtures);
    assert_eq!(tally.fixtures, 4537, "the corpus README promises 4,537 fixtures");
    assert!(
        tally.disagreements.is_empty(),
        "{} disagreements:\n{}",
        tally.disagreements.len(),
        tally.disagreements.join("\n")
    );
}

/// Wrap a Pod into another pod-bearing kind, keeping its metadata on the template.
fn wrap(kind: &str, name: &str, pod: &Value) -> Value {
    let template = json!({"metadata": pod["metadata"], "spec": pod["spec"]});
    let selector = json!({"matchLabels": {"app": "x"}});
    let meta = json!({"name": name, "namespace": "conformance"});
    match kind {
        "PodTemplate" => {
            json!({"apiVersion": "v1", "kind": kind, "metadata": meta, "template": template})
        }
        "ReplicationController" => {
            json!({"apiVersion": "v1", "kind": kind, "metadata": meta, "spec": {"replicas": 1, "template": template}})
        }
        "ReplicaSet" | "Deployment" | "StatefulSet" | "DaemonSet" => {
            json!({"apiVersion": "apps/v1", "kind": kind, "metadata": meta, "spec": {"selector": selector, "template": template}})
        }
        "Job" => {
            json!({"apiVersion": "batch/v1", "kind": kind, "metadata": meta, "spec": {"template": template}})
        }
        "CronJob" => json!({"apiVersion": "batch/v1", "kind": kind, "metadata": meta,
            "spec": {"schedule": "0 * * * *", "jobTemplate": {"spec": {"template": template}}}}),
        other => panic!("unknown kind {other}"),
    }
}

const WRAPPERS: [&str; 8] =
    ["PodTemplate", "ReplicationController", "ReplicaSet", "Deployment", "DaemonSet", "StatefulSet", "Job", "CronJob"];

#[test]
fn extra_cases_get_the_verdict_of_the_upstream_sources() {
    let tally = verdicts(&extra());
    println!("PSS sources: {}/{} cases agree", tally.agree, tally.fixtures);
    assert_eq!(tally.fixtures, 33, "tests/pss-extra holds 33 cases");
    assert!(
        tally.disagreements.is_empty(),
        "{} disagreements:\n{}",
        tally.disagreements.len(),
        tally.disagreements.join("\n")
    );
}

/// Wrap every fixture under `root` into the eight other kinds and run them at
/// the fixture's level and version: (wrappings checked, disagreements).
fn wrapped_verdicts(root: &Path) -> (usize, Vec<String>) {
    let tmp = tempfile::tempdir().unwrap();
    let mut checked = 0;
    let mut disagreements = Vec::new();
    for level in ["baseline", "restricted"] {
        for (version, dir) in version_dirs(&root.join(level)) {
            let mut expected_fail = BTreeSet::new();
            let mut all = Vec::new();
            let mut stream = String::new();
            for sub in ["pass", "fail"] {
                for file in yaml_files(&dir.join(sub)) {
                    let text = std::fs::read_to_string(&file).unwrap();
                    let docs = palisade::documents::read_documents(&text, &Default::default());
                    let pod = docs[0].content.as_ref().unwrap().value.clone();
                    let stem = file.file_stem().unwrap().to_string_lossy().replace('_', "-");
                    for kind in WRAPPERS {
                        let name = format!("{sub}-{stem}");
                        if sub == "fail" {
                            expected_fail.insert((kind.to_string(), name.clone()));
                        }
                        all.push((kind.to_string(), name.clone()));
                        stream.push_str("---\n");
                        stream.push_str(&serde_json::to_string(&wrap(kind, &name, &pod)).unwrap());
                        stream.push('\n');
                    }
                }
            }
            let path = tmp.path().join(format!("{level}-{version}.yaml"));
            std::fs::write(&path, stream).unwrap();
            let (_, report) = json_report(
                palisade()
                    .args(["check", "--format", "json", "--profile", level, "--pss-version", &version])
                    .arg(&path),
            );
            assert!(errors(&report).is_empty(), "{level}/{version}: {:#}", report["errors"]);
            let failed = rules_by_resource(&report);
            for key in all {
                checked += 1;
                let denied = failed.contains_key(&key);
                if denied != expected_fail.contains(&key) {
                    disagreements.push(format!("{level}/{version} {} {}: denied={denied}", key.0, key.1));
                }
            }
        }
    }
    (checked, disagreements)
}

#[test]
fn wrapped_fixtures_get_the_same_verdict_as_the_bare_pod() {
    let (checked, disagreements) = wrapped_verdicts(&testdata());
    println!("wrapped PSS fixtures: {} of {checked} agree", checked - disagreements.len());
    assert_eq!(checked, 4537 * 8);
    assert!(disagreements.is_empty(), "{} disagreements:\n{}", disagreements.len(), disagreements.join("\n"));
}

#[test]
fn wrapped_extra_cases_get_the_same_verdict_as_the_bare_pod() {
    let (checked, disagreements) = wrapped_verdicts(&extra());
    println!("wrapped PSS source cases: {} of {checked} agree", checked - disagreements.len());
    assert_eq!(checked, 33 * 8);
    assert!(disagreements.is_empty(), "{} disagreements:\n{}", disagreements.len(), disagreements.join("\n"));
}
