//! The sandbox, end to end: a policy that loops, hoards memory, traps or
//! errors is contained to an error for that resource and rule, the run goes
//! on, and the exit code says the input was not fully checked.

mod common;

use common::*;
use serde_json::Value;

fn run_mode(mode: &str) -> (i32, Value) {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("pods.yaml");
    std::fs::write(&input, THREE_PODS).unwrap();
    let config = dir.path().join("palisade.yaml");
    std::fs::write(&config, format!("settings:\n  test-misbehave: {{mode: {mode}}}\n")).unwrap();
    json_report(
        palisade()
            .args([
                "check",
                "--format",
                "json",
                "--profile",
                "baseline",
                "--policy-timeout-ms",
                "300",
                "--policy-memory-mib",
                "32",
            ])
            .arg("--policies")
            .arg(testing_component("test-misbehave"))
            .arg("--config")
            .arg(&config)
            .arg(&input),
    )
}

fn assert_contained(mode: &str, expected: &str) {
    let (code, report) = run_mode(mode);
    assert_eq!(code, 2, "{mode}: a policy failure must fail the run: {report:#}");
    let errors = errors(&report);
    let failed: Vec<(&str, &str)> =
        errors.iter().map(|e| (e["resource"]["name"].as_str().unwrap(), e["rule"].as_str().unwrap())).collect();
    assert_eq!(failed, [("bad-one", "test-misbehave"), ("bad-two", "test-misbehave")], "{mode}: {errors:#?}");
    for e in errors {
        assert_eq!(e["kind"], "policy");
        assert!(e["message"].as_str().unwrap().contains(expected), "{mode}: {e:#}");
        assert_eq!(e["source"]["line"], if e["resource"]["name"] == "bad-one" { 1 } else { 13 });
    }
    // The built-in rules still ran on every pod, before and after the failures.
    let by_resource = rules_by_resource(&report);
    for name in ["bad-one", "good"] {
        assert!(
            by_resource[&("Pod".to_string(), name.to_string())].contains("pss-privileged"),
            "{mode}: {name} was not checked: {by_resource:?}"
        );
    }
}

#[test]
fn an_endless_loop_times_out() {
    assert_contained("loop", "timed out");
}

#[test]
fn unbounded_allocation_hits_the_memory_limit() {
    assert_contained("alloc", "memory limit of 32 MiB");
}

#[test]
fn a_panic_is_a_trap() {
    assert_contained("trap", "trapped");
}

#[test]
fn a_policy_error_is_reported() {
    assert_contained("error", "deliberate error");
}

#[test]
fn invalid_settings_are_a_load_error_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("palisade.yaml");
    std::fs::write(&config, "settings:\n  test-misbehave: {mode: dance}\n  pss-sysctls: {version: '1.30'}\n").unwrap();
    let out = run(palisade()
        .args(["check", "--profile", "baseline", "--policies"])
        .arg(testing_component("test-misbehave"))
        .arg("--config")
        .arg(&config)
        .arg(root().join("examples")));
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("settings.test-misbehave.mode: unknown mode \"dance\""), "{stderr}");
    assert!(stderr.contains("settings.pss-sysctls.version"), "{stderr}");
    assert!(out.stdout.is_empty(), "nothing is checked with a bad configuration");
}

/// The inventory import: a policy sees the other objects of the checked set,
/// filtered by namespace, in an order that does not depend on the input's.
#[test]
fn the_inventory_serves_the_whole_set_in_a_stable_order() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("palisade.yaml");
    std::fs::write(&config, "settings:\n  test-misbehave: {mode: inventory, kind: ConfigMap}\n").unwrap();
    let cm = |name: &str, ns: &str| {
        format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}, namespace: {ns}}}\n")
    };
    let docs = [cm("b", "one"), cm("a", "one"), cm("x", "two"), cm("c", "one")];
    let mut seen = Vec::new();
    for order in [[0, 1, 2, 3], [3, 2, 1, 0]] {
        // Split across two files too, in the given order.
        let first: Vec<String> = order[..2].iter().map(|&i| docs[i].clone()).collect();
        let second: Vec<String> = order[2..].iter().map(|&i| docs[i].clone()).collect();
        std::fs::write(dir.path().join("1.yaml"), first.join("---\n")).unwrap();
        std::fs::write(dir.path().join("2.yaml"), second.join("---\n")).unwrap();
        let (code, report) = json_report(
            palisade()
                .args(["check", "--format", "json", "--fail-on", "info", "--no-builtin", "--policies"])
                .arg(testing_component("test-misbehave"))
                .arg("--config")
                .arg(&config)
                .arg(dir.path().join("1.yaml"))
                .arg(dir.path().join("2.yaml")),
        );
        assert_eq!(code, 1, "{report:#}");
        let mut messages: Vec<(String, String)> = report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| (f["resource"]["name"].as_str().unwrap().to_string(), f["message"].as_str().unwrap().to_string()))
            .collect();
        messages.sort();
        seen.push(messages);
    }
    assert_eq!(
        seen[0],
        [
            ("a".to_string(), "sees ConfigMap: [a,b,c]".to_string()),
            ("b".to_string(), "sees ConfigMap: [a,b,c]".to_string()),
            ("c".to_string(), "sees ConfigMap: [a,b,c]".to_string()),
            ("x".to_string(), "sees ConfigMap: [x]".to_string()),
        ]
    );
    assert_eq!(seen[0], seen[1], "the order of the inputs changed what the policy saw");
}
