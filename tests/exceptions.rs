//! Exceptions of the configuration file, end to end: what they cover, how
//! exempted findings show in reports, expiry, and validation.

mod common;

use std::io::Write;

use common::*;
use serde_json::Value;

const POD: &str = "apiVersion: v1
kind: Pod
metadata: {name: edge, namespace: ingress, labels: {tier: edge}}
spec:
  hostNetwork: true
  containers:
  - {name: proxy, image: envoyproxy/envoy:v1.30, securityContext: {privileged: true}}
  - {name: app, image: registry.example.com/app:1, securityContext: {privileged: true}}
";

fn check(config: &str) -> (i32, Value, String) {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("pod.yaml");
    std::fs::write(&manifest, POD).unwrap();
    let cfg = dir.path().join("palisade.yaml");
    let mut f = std::fs::File::create(&cfg).unwrap();
    f.write_all(format!("profile: baseline\n{config}").as_bytes()).unwrap();
    let (code, report) =
        json_report(palisade().args(["check", "--format", "json", "--config"]).arg(&cfg).arg(&manifest));
    let text = run(palisade().args(["check", "--config"]).arg(&cfg).arg(&manifest));
    (code, report, String::from_utf8_lossy(&text.stdout).into_owned())
}

fn exempted(report: &Value) -> Vec<(String, String)> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f.get("exempted").is_some())
        .map(|f| (f["rule"].as_str().unwrap().to_string(), f["path"].as_str().unwrap().to_string()))
        .collect()
}

#[test]
fn without_exceptions_everything_counts() {
    let (code, report, _) = check("");
    assert_eq!(code, 1);
    assert_eq!(report["summary"]["findings"], 3, "{report}");
    assert_eq!(report["summary"]["exempted"], 0);
}

#[test]
fn an_exception_for_a_container_and_image() {
    let (code, report, text) = check(
        "exceptions:
  - rules: [pss-privileged]
    kinds: [Pod]
    namespaces: [ingr*]
    containers: [proxy]
    images: [envoyproxy/*]
    reason: Envoy needs NET_ADMIN via privileged mode (SEC-42)
    expires: 2999-12-31
",
    );
    assert_eq!(code, 1, "the app container and hostNetwork still count");
    assert_eq!(
        exempted(&report),
        [("pss-privileged".to_string(), "/spec/containers/0/securityContext/privileged".to_string())]
    );
    let f = report["findings"].as_array().unwrap().iter().find(|f| f.get("exempted").is_some()).unwrap();
    assert_eq!(f["exempted"]["reason"], "Envoy needs NET_ADMIN via privileged mode (SEC-42)");
    assert_eq!(f["exempted"]["expires"], "2999-12-31");
    assert_eq!(report["summary"]["findings"], 2);
    assert_eq!(report["summary"]["exempted"], 1);
    assert_eq!(report["exceptions"][0]["status"], "active");
    assert!(text.contains("exempted  pss-privileged"), "{text}");
    assert!(text.contains("exception 0: Envoy needs NET_ADMIN"), "{text}");
    assert!(text.contains("and 1 exempted"), "{text}");
}

#[test]
fn exempting_everything_passes_the_run() {
    let (code, report, _) = check(
        "exceptions:
  - rules: ['*']
    selector: {matchExpressions: [{key: tier, operator: In, values: [edge]}]}
    names: [edge]
    reason: The edge tier is reviewed separately
",
    );
    assert_eq!(code, 0, "{report}");
    assert_eq!(exempted(&report).len(), 3);
    assert_eq!(report["summary"]["resourcesFailing"], 0);
}

#[test]
fn selectors_and_names_narrow() {
    let (_, report, text) = check(
        "exceptions:
  - rules: ['*']
    selector: {matchLabels: {tier: backend}}
    reason: backend only
  - rules: ['*']
    names: [other-*]
    reason: others only
",
    );
    assert!(exempted(&report).is_empty());
    assert_eq!(report["exceptions"][0]["status"], "unused");
    assert!(text.contains("note: exception 0 (backend only) matched no finding"), "{text}");
}

#[test]
fn expired_exceptions_no_longer_apply_and_say_so() {
    let (code, report, text) = check(
        "exceptions:
  - rules: [pss-host-namespaces]
    reason: Temporary, until the migration
    expires: 2020-06-30
",
    );
    assert_eq!(code, 1);
    assert!(exempted(&report).is_empty());
    assert_eq!(report["exceptions"][0]["status"], "expired");
    assert_eq!(report["exceptions"][0]["matched"], 1);
    assert!(text.contains("warning: exception 0 (Temporary, until the migration) expired on 2020-06-30"), "{text}");
}

#[test]
fn invalid_exceptions_are_configuration_errors() {
    for (config, expected) in [
        ("exceptions:\n  - rules: [pss-privileged]\n", "missing field `reason`"),
        ("exceptions:\n  - rules: [pss-privileged]\n    reason: ''\n", "exceptions[0].reason"),
        ("exceptions:\n  - rules: [pss-nope]\n    reason: x\n", "no rule with the id \"pss-nope\""),
        ("exceptions:\n  - rules: ['*']\n    reason: x\n    expires: 2026-02-30\n", "exceptions[0].expires"),
        (
            "exceptions:\n  - rules: ['*']\n    reason: x\n    namespace: [a]\n",
            "exceptions[0].namespace: unknown field",
        ),
        (
            "exceptions:\n  - rules: ['*']\n    reason: x\n    selector: {matchExpressions: [{key: a, operator: Is}]}\n",
            "exceptions[0].selector",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("c.yaml");
        std::fs::write(&cfg, config).unwrap();
        let out = run(palisade().args(["check", "--config"]).arg(&cfg).arg(root().join("examples")));
        assert_eq!(out.status.code(), Some(2), "{config}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(expected), "{config:?}: {err}");
    }
}

#[test]
fn explain_config_shows_the_effective_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.yaml");
    std::fs::write(
        &cfg,
        "profile: hardened\nfailOn: high\nseverity: {image-digest: info}\nsettings: {resource-limits: {requireCpuLimit: false}}\n\
         exceptions:\n  - {rules: [image-tag], reason: old, expires: 2001-01-01}\n",
    )
    .unwrap();
    let out = run(palisade().args(["check", "--explain-config", "--format", "json", "--config"]).arg(&cfg));
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["failOn"], "high");
    let rule = |id: &str| v["rules"].as_array().unwrap().iter().find(|r| r["id"] == id).unwrap().clone();
    assert_eq!(rule("image-digest")["severity"], "info");
    assert_eq!(rule("resource-limits")["settings"]["requireCpuLimit"], false);
    assert_eq!(rule("pss-sysctls")["settings"]["level"], "restricted");
    assert!(rule("image-registry")["inactive"].as_str().unwrap().contains("unconfigured"));
    assert_eq!(v["exceptions"][0]["status"], "expired");
}
