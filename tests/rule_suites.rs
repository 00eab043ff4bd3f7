//! `palisade test`, end to end: suites of expected verdicts run through the
//! real binary. The repository's own suites (tests/suites) agree; a wrong
//! expectation exits 1 naming the resource and rule; a broken suite exits 2
//! with its file and line; inventory objects, settings and exceptions change
//! verdicts; `--policies` components and bundles are tested like built-in
//! rules; the JUnit output parses.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::*;

const HEAD: &str = "apiVersion: palisade.dev/v1alpha1\nkind: Test\n";

/// A privileged Pod and a plain one, in namespace app.
const PODS: &str = "\
apiVersion: v1
kind: Pod
metadata: {name: privileged, namespace: app}
spec:
  containers: [{name: a, image: nginx:1.27, securityContext: {privileged: true}}]
---
apiVersion: v1
kind: Pod
metadata: {name: plain, namespace: app}
spec:
  containers: [{name: a, image: nginx:1.27}]
";

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn test_run(args: &[&str], paths: &[&Path]) -> Run {
    let out: Output = run(palisade().arg("test").args(args).args(paths));
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A directory with `pods.yaml` and the suite `suite.yaml` (`HEAD` prepended).
fn suite_dir(suite: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("pods.yaml"), PODS).unwrap();
    let path = dir.path().join("suite.yaml");
    std::fs::write(&path, format!("{HEAD}{suite}")).unwrap();
    (dir, path)
}

fn test_suite(suite: &str) -> Run {
    let (_dir, path) = suite_dir(suite);
    test_run(&[], &[&path])
}

/// The line of `text` (1-based) where `needle` first appears.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines().position(|l| l.contains(needle)).unwrap_or_else(|| panic!("{needle:?} not in {text}")) + 1
}

#[test]
fn the_repository_suites_agree() {
    let suites = root().join("tests").join("suites");
    let r = test_run(&[], &[&suites]);
    assert_eq!(r.code, Some(0), "{}{}", r.stdout, r.stderr);
    // Counts to update when a suite grows: every check is listed in the table.
    assert!(
        r.stdout
            .contains("31 suites run, 312 checks: 312 agree, 0 differ (4 YAML files of the directories not suites)"),
        "{}",
        r.stdout
    );
    assert_eq!(r.stdout.lines().filter(|l| l.starts_with("  ok  ")).count(), 312);
    // Every rule of the catalog is named, and all but the two image-verification
    // rules (which need trust policies) get a verdict other than skip.
    let rows: Vec<Vec<&str>> =
        r.stdout.lines().filter(|l| l.starts_with("  ok  ")).map(|l| l.split_whitespace().collect()).collect();
    let named: std::collections::BTreeSet<&str> = rows.iter().map(|cells| cells[4]).collect();
    assert_eq!(named.len(), 51, "{named:?}");
    let judged: std::collections::BTreeSet<&str> =
        rows.iter().filter(|cells| cells[6] != "skip").map(|cells| cells[4]).collect();
    let unjudged: Vec<&&str> = named.difference(&judged).collect();
    assert_eq!(unjudged, [&"image-attestation", &"image-signature"]);

    let junit = test_run(&["--format", "junit"], &[&suites]);
    assert_eq!(junit.code, Some(0), "{}", junit.stderr);
    let doc = roxmltree::Document::parse(&junit.stdout).unwrap();
    let top = doc.root_element();
    assert_eq!(top.attribute("tests"), Some("312"));
    assert_eq!(top.attribute("failures"), Some("0"));
    assert_eq!(top.children().filter(|n| n.has_tag_name("testsuite")).count(), 31);
}

#[test]
fn a_wrong_expectation_exits_1_naming_the_resource_and_rule() {
    let suite = "resources: [pods.yaml]
results:
  - {rule: pss-privileged, resource: Pod app/privileged, result: fail}
  - {rule: pss-privileged, resource: Pod app/plain, result: fail}
  - {rule: pss-host-ports, kind: Pod, resources: [privileged, plain], result: pass}
";
    let r = test_suite(suite);
    assert_eq!(r.code, Some(1), "{}{}", r.stdout, r.stderr);
    let line = line_of(&format!("{HEAD}{suite}"), "app/plain");
    let diff: Vec<&str> = r.stdout.lines().filter(|l| l.starts_with("  DIFF")).collect();
    assert_eq!(diff.len(), 1, "{}", r.stdout);
    let cells: Vec<&str> = diff[0].split_whitespace().collect();
    assert_eq!(cells, ["DIFF", &line.to_string(), "Pod", "app/plain", "pss-privileged", "fail", "pass"]);
    assert!(r.stdout.contains("pss-privileged reported no violation"), "{}", r.stdout);
    assert!(r.stdout.contains("1 suite run, 4 checks: 3 agree, 1 differs"), "{}", r.stdout);

    // The other way round: a violation where none is expected is shown with its path.
    let r = test_suite(
        "resources: [pods.yaml]\nresults:\n  - {rule: pss-privileged, resource: Pod app/privileged, result: pass}\n",
    );
    assert_eq!(r.code, Some(1), "{}", r.stdout);
    assert!(r.stdout.contains("/spec/containers/0/securityContext/privileged: container \"a\" sets"), "{}", r.stdout);

    // A path or a count that does not match is a difference too.
    for narrowed in ["path: /spec/containers/1/securityContext/privileged", "count: 2", "message: hostPort"] {
        let r = test_suite(&format!(
            "resources: [pods.yaml]\nresults:\n  - {{rule: pss-privileged, resource: Pod app/privileged, result: fail, {narrowed}}}\n"
        ));
        assert_eq!(r.code, Some(1), "{narrowed}: {}", r.stdout);
    }
}

#[test]
fn junit_output_parses_and_carries_the_difference() {
    let (_dir, path) = suite_dir(
        "resources: [pods.yaml]
results:
  - {rule: pss-privileged, resource: Pod app/privileged, result: fail}
  - {rule: pss-privileged, resource: Pod app/plain, result: exempted}
",
    );
    let r = test_run(&["--format", "junit"], &[&path]);
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    let doc = roxmltree::Document::parse(&r.stdout).unwrap_or_else(|e| panic!("{e}: {}", r.stdout));
    let top = doc.root_element();
    assert_eq!(
        (top.attribute("tests"), top.attribute("failures"), top.attribute("errors")),
        (Some("2"), Some("1"), Some("0"))
    );
    let cases: Vec<roxmltree::Node> = doc.descendants().filter(|n| n.has_tag_name("testcase")).collect();
    assert_eq!(cases.len(), 2);
    assert!(cases[0].children().all(|c| !c.is_element()), "the agreeing case is empty");
    let failure = cases[1].children().find(|c| c.has_tag_name("failure")).expect("a failure");
    assert_eq!(failure.attribute("message"), Some("expected exempted, got pass"));
    assert_eq!(cases[1].attribute("name"), Some("pss-privileged: Pod app/plain expects exempted"));
    assert!(
        cases[1].attribute("classname").unwrap().ends_with("suite.yaml:6"),
        "{:?}",
        cases[1].attribute("classname")
    );
}

#[test]
fn broken_suites_exit_2_with_file_and_line() {
    let cases = [
        (
            "resources: [pods.yaml]\nresults:\n  - {rule: pss-privilegd, resource: Pod app/plain, result: pass}\n",
            "pss-privilegd",
            "no rule \"pss-privilegd\" (did you mean \"pss-privileged\"?)",
        ),
        (
            "resources:\n  - pods.yaml\n  - missing.yaml\nresults:\n  - {rule: pss-privileged, resource: Pod app/plain, result: pass}\n",
            "missing.yaml",
            "missing.yaml: cannot read",
        ),
        (
            "resources: [pods.yaml]\nresults:\n  - rule: pss-privileged\n    result: pass: now\n    resource: Pod app/plain\n",
            "pass: now",
            "invalid YAML: mapping values are not allowed in this context",
        ),
        (
            "resources: [pods.yaml]\nresults:\n  - {rule: pss-privileged, resource: Pod app/plain, reslt: pass}\n",
            "reslt",
            "unknown field `reslt`",
        ),
        (
            "resources: [pods.yaml]\nresults:\n  - {rule: pss-privileged, resource: Pod app/nowhere, result: pass}\n",
            "nowhere",
            "no tested object is Pod app/nowhere (the tested Pods: Pod app/plain, Pod app/privileged)",
        ),
        (
            "config:\n  settings:\n    resource-limits: {requireCpuLimt: false}\nresources: [pods.yaml]\nresults:\n  - {rule: resource-limits, resource: Pod app/plain, result: fail}\n",
            "requireCpuLimt",
            "config: settings.resource-limits.requireCpuLimt",
        ),
    ];
    for (suite, at, message) in cases {
        let (_dir, path) = suite_dir(suite);
        let r = test_run(&[], &[&path]);
        assert_eq!(r.code, Some(2), "{suite}\n{}{}", r.stdout, r.stderr);
        let text = format!("{HEAD}{suite}");
        let line = line_of(&text, at);
        let place = format!("broken suite: {}:{line}: ", path.display());
        let reported =
            r.stdout.lines().find(|l| l.starts_with(&place)).unwrap_or_else(|| panic!("{place}\n{}", r.stdout));
        assert!(reported.contains(message), "{reported}");
        assert!(r.stdout.contains("0 suites run") && r.stdout.contains("1 file with broken suites"), "{}", r.stdout);
    }

    // Broken beside agreeing: the others still run, and 2 wins.
    let (dir, broken) =
        suite_dir("resources: [pods.yaml]\nresults: [{rule: nope, resource: Pod app/plain, result: pass}]\n");
    let good = dir.path().join("good.yaml");
    std::fs::write(
        &good,
        format!(
            "{HEAD}resources: [pods.yaml]\nresults: [{{rule: pss-privileged, resource: Pod app/plain, result: pass}}]\n"
        ),
    )
    .unwrap();
    let r = test_run(&[], &[dir.path()]);
    assert_eq!(r.code, Some(2), "{}", r.stdout);
    assert!(
        r.stdout.contains("1 suite run, 1 check: 1 agree, 0 differ; 1 file with broken suites (1 YAML file"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains(&format!("{}:4: no rule \"nope\"", broken.display())), "{}", r.stdout);
    let junit = test_run(&["--format", "junit"], &[dir.path()]);
    assert_eq!(junit.code, Some(2));
    let doc = roxmltree::Document::parse(&junit.stdout).unwrap();
    assert_eq!(doc.root_element().attribute("errors"), Some("1"));
    assert!(junit.stderr.contains("broken suite:"), "{}", junit.stderr);

    // A directory without suites is an error, not a pass.
    let empty = tempfile::tempdir().unwrap();
    std::fs::write(empty.path().join("pods.yaml"), PODS).unwrap();
    let r = test_run(&[], &[empty.path()]);
    assert_eq!(r.code, Some(2));
    assert!(r.stdout.contains("no test suite in this directory"), "{}", r.stdout);
}

#[test]
fn inventory_objects_and_configuration_take_effect() {
    // Each case twice: with the inventory object, setting or exception, and
    // without it, where the same expectation must not hold.
    let deployment = "  - object:
      apiVersion: apps/v1
      kind: Deployment
      metadata: {name: web, namespace: shop}
      spec:
        replicas: 1
        selector: {matchLabels: {app: web}}
        template:
          metadata: {labels: {app: web}}
          spec:
            containers: [{name: web, image: nginx:1.27, resources: {limits: {memory: 64Mi}}}]
";
    let policy = "inventory:
  - object:
      apiVersion: networking.k8s.io/v1
      kind: NetworkPolicy
      metadata: {name: default-deny, namespace: shop}
      spec: {podSelector: {}, policyTypes: [Ingress, Egress]}
";
    let results = "results:
  - {rule: network-policy-coverage, resource: Deployment shop/web, result: pass}
";
    let with = test_suite(&format!("resources:\n{deployment}{policy}{results}"));
    assert_eq!(with.code, Some(0), "{}", with.stdout);
    let without = test_suite(&format!("resources:\n{deployment}{results}"));
    assert_eq!(without.code, Some(1), "{}", without.stdout);
    // Inventory objects are read, not tested.
    let r = test_suite(&format!(
        "resources:\n{deployment}{policy}results:\n  - {{rule: network-policy-permissive, resource: NetworkPolicy shop/default-deny, result: pass}}\n"
    ));
    assert_eq!(r.code, Some(2), "{}", r.stdout);
    assert!(r.stdout.contains("NetworkPolicy shop/default-deny is an inventory object"), "{}", r.stdout);

    let results = "results:\n  - {rule: resource-limits, resource: Deployment shop/web, result: pass}\n";
    let with = test_suite(&format!(
        "config:\n  settings:\n    resource-limits: {{requireCpuLimit: false}}\nresources:\n{deployment}{results}"
    ));
    assert_eq!(with.code, Some(0), "{}", with.stdout);
    let without = test_suite(&format!("resources:\n{deployment}{results}"));
    assert_eq!(without.code, Some(1), "{}", without.stdout);

    let exception = "config:
  exceptions:
    - {rules: [pss-privileged], names: [privileged], reason: tested}
";
    let results = "resources: [pods.yaml]\nresults:\n  - {rule: pss-privileged, resource: Pod app/privileged, result: exempted, count: 1}\n";
    let with = test_suite(&format!("{exception}{results}"));
    assert_eq!(with.code, Some(0), "{}", with.stdout);
    let without = test_suite(results);
    assert_eq!(without.code, Some(1), "{}", without.stdout);
    assert!(without.stdout.contains("exempted  fail"), "{}", without.stdout);

    // The profile decides which rules give a verdict.
    let results = "resources: [pods.yaml]\nresults:\n  - {rule: read-only-root-filesystem, resource: Pod app/plain, result: skip}\n";
    assert_eq!(test_suite(&format!("config: {{profile: baseline}}\n{results}")).code, Some(0));
    let hardened = test_suite(results);
    assert_eq!(hardened.code, Some(1));
    assert!(hardened.stdout.contains("skip      fail"), "{}", hardened.stdout);
}

#[test]
fn components_and_bundles_are_tested_like_built_in_rules() {
    // A --policies component: active whatever the profile; it reads the
    // inventory, and a policy error on a tested object is a difference.
    let misbehave = testing_component("test-misbehave");
    let suite = "config:
  profile: baseline
  settings:
    test-misbehave: {mode: inventory, kind: ServiceAccount}
resources: [pods.yaml]
inventory:
  - object: {apiVersion: v1, kind: ServiceAccount, metadata: {name: robot, namespace: app}}
results:
  - {rule: test-misbehave, resource: Pod app/plain, result: fail, message: 'sees ServiceAccount: [robot]'}
";
    let (_dir, path) = suite_dir(suite);
    let r = test_run(&["--policies", misbehave.to_str().unwrap()], &[&path]);
    assert_eq!(r.code, Some(0), "{}{}", r.stdout, r.stderr);
    // Without the component, the rule is unknown: a broken suite.
    let r = test_run(&[], &[&path]);
    assert_eq!(r.code, Some(2), "{}", r.stdout);

    let trap = "config:\n  settings:\n    test-misbehave: {mode: trap}\nresources:
  - object: {apiVersion: v1, kind: Pod, metadata: {name: bad-pod, namespace: app}, spec: {containers: [{name: a, image: x:1}]}}
    expect: {pss-privileged: pass}
";
    let (_dir, path) = suite_dir(trap);
    let r = test_run(&["--policies", misbehave.to_str().unwrap()], &[&path]);
    assert_eq!(r.code, Some(1), "{}{}", r.stdout, r.stderr);
    let diff = r.stdout.lines().find(|l| l.starts_with("  DIFF")).unwrap_or_else(|| panic!("{}", r.stdout));
    assert!(diff.contains("Pod app/bad-pod") && diff.contains("test-misbehave") && diff.contains("error"), "{diff}");
    assert!(r.stdout.contains("test-misbehave failed:"), "{}", r.stdout);

    // A bundle holding pss-privileged only: its rules are the run's rules.
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("bundle");
    let component = root().join("target").join("components").join("pss-privileged.wasm");
    let out = run(palisade()
        .args(["bundle", "build", "--name", "one", "--version", "1.0.0", "--policies"])
        .arg(&component)
        .arg("--output")
        .arg(&layout));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let bundle = ["--bundle", layout.to_str().unwrap()];
    let (_d, path) = suite_dir(
        "resources: [pods.yaml]\nresults:\n  - {rule: pss-privileged, resource: Pod app/privileged, result: fail}\n",
    );
    let r = test_run(&bundle, &[&path]);
    assert_eq!(r.code, Some(0), "{}{}", r.stdout, r.stderr);
    let (_d, path) = suite_dir(
        "resources: [pods.yaml]\nresults:\n  - {rule: pss-host-ports, resource: Pod app/privileged, result: pass}\n",
    );
    let r = test_run(&bundle, &[&path]);
    assert_eq!(r.code, Some(2), "{}", r.stdout);
    assert!(r.stdout.contains("no rule \"pss-host-ports\""), "{}", r.stdout);
}
