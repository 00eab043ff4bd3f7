//! Robustness on real rendered manifests (`../shared/corpus/real-world/`):
//! every file is read without a crash or a hang, and every non-empty document
//! either yields resources that were checked or is reported as an error that
//! names its file, document and line.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use common::*;
use serde_json::Value;

/// Indices (1-based) of the documents of a YAML stream that hold more than
/// comments, found without a YAML parser so the test does not share the
/// host's reading of the input.
fn non_empty_documents(text: &str) -> BTreeSet<usize> {
    let mut out = BTreeSet::new();
    let mut index = 1;
    let mut started = false;
    for line in text.lines() {
        if line == "---" || line.starts_with("--- ") || line.starts_with("---\t") {
            if started {
                index += 1;
            }
            started = true;
            // Content after the marker on the same line belongs to the new document.
            let rest = line[3..].trim();
            if !rest.is_empty() && !rest.starts_with('#') {
                out.insert(index);
            }
            continue;
        }
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') || t == "..." || t.starts_with('%') {
            continue;
        }
        // Comments before the first `---` do not make a document of their own.
        started = true;
        out.insert(index);
    }
    out
}

fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().flatten().map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            files(&p, out);
        } else if p.extension().is_some_and(|e| e == "yaml" || e == "yml" || e == "json") {
            out.push(p);
        }
    }
}

#[test]
fn every_real_world_document_is_checked_or_reported() {
    let dir = corpus().join("real-world");
    let out = run_within(palisade().args(["check", "--format", "json"]).arg(&dir), Duration::from_secs(300));
    let code = out.status.code().unwrap_or_else(|| panic!("palisade died: {:?}", out.status));
    assert!(code <= 2, "exit {code}");
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON report");

    // Which documents of which file were accounted for.
    let mut seen: BTreeMap<String, BTreeSet<usize>> = BTreeMap::new();
    for r in report["resources"].as_array().unwrap() {
        let s = &r["source"];
        seen.entry(s["file"].as_str().unwrap().to_string())
            .or_default()
            .insert(s["document"].as_u64().unwrap() as usize);
    }
    let mut reported: BTreeMap<String, BTreeSet<usize>> = BTreeMap::new();
    for e in errors(&report) {
        let s = &e["source"];
        let file = s["file"].as_str().unwrap().to_string();
        assert_eq!(e["kind"], "input", "a built-in rule failed: {e}");
        assert!(s["line"].as_u64().unwrap() > 0, "an input error without a line: {e}");
        assert!(!e["message"].as_str().unwrap().is_empty());
        reported.entry(file).or_default().insert(s["document"].as_u64().unwrap() as usize);
    }

    let mut all = Vec::new();
    files(&dir, &mut all);
    assert!(all.len() > 300, "the corpus has {} manifest files", all.len());
    assert_eq!(report["summary"]["files"].as_u64().unwrap() as usize, all.len());
    let mut missing = Vec::new();
    for path in &all {
        let name = path.to_string_lossy().into_owned();
        let text = std::fs::read_to_string(path).unwrap();
        let expected = if name.ends_with(".json") {
            if text.trim().is_empty() { BTreeSet::new() } else { BTreeSet::from([1]) }
        } else {
            non_empty_documents(&text)
        };
        let empty = BTreeSet::new();
        let got: BTreeSet<usize> =
            seen.get(&name).unwrap_or(&empty).union(reported.get(&name).unwrap_or(&empty)).copied().collect();
        for doc in expected.difference(&got) {
            missing.push(format!("{name} document {doc}"));
        }
    }
    assert!(missing.is_empty(), "documents neither checked nor reported:\n{}", missing.join("\n"));

    // The Cilium and Istio manifests are read whole: no error names them.
    for e in errors(&report) {
        let file = e["source"]["file"].as_str().unwrap();
        assert!(!file.contains("/cilium/") && !file.contains("/istio"), "{e}");
    }
    // Most of the corpus is valid; the errors are the known-bad files only.
    let resources = report["resources"].as_array().unwrap().len();
    assert!(resources > 700, "only {resources} resources read");
    assert!(errors(&report).len() < 20, "{} errors", errors(&report).len());
}

/// kube-prometheus has an unquoted `- =` list item that YAML 1.1 parsers
/// reject; YAML 1.2 reads it as the string "=".
#[test]
fn yaml_1_2_reads_the_bare_equals_sign() {
    let file =
        corpus().join("real-world/kube-prometheus/manifests/setup/0alertmanagerConfigCustomResourceDefinition.yaml");
    let (code, report) = json_report(palisade().args(["check", "--format", "json"]).arg(&file));
    assert_eq!(code, 0, "{report}");
    assert!(errors(&report).is_empty(), "{report}");
    let resources = report["resources"].as_array().unwrap();
    assert_eq!(resources.len(), 1);
    assert_eq!(resources[0]["kind"], "CustomResourceDefinition");
}

/// Templates and malformed files under kubernetes-examples are rejected with
/// the line of the problem, and the valid files beside them are still read.
#[test]
fn broken_examples_are_reported_with_their_position() {
    let dir = corpus().join("real-world/kubernetes-examples/_archived/openshift-origin");
    let (code, report) = json_report(palisade().args(["check", "--format", "json"]).arg(&dir));
    assert_eq!(code, 2);
    let errs = errors(&report);
    let dup = errs
        .iter()
        .find(|e| e["source"]["file"].as_str().unwrap().ends_with("etcd-controller.yaml"))
        .expect("etcd-controller.yaml is reported");
    assert!(dup["message"].as_str().unwrap().contains("duplicate key \"selector\""), "{dup}");
    assert!(dup["source"]["line"].as_u64().unwrap() > 6, "{dup}");
    assert!(!report["resources"].as_array().unwrap().is_empty(), "the other files are still read");
}

/// The Cilium connectivity test's workloads, with the labels cilium-cli gives
/// them (`kind: client`, `kind: echo`, `other: client`), under its own
/// CiliumNetworkPolicies: covered where a policy selects them in a direction
/// (and enables Cilium's default deny there), reported where none does.
#[test]
fn cilium_connectivity_workloads_are_covered_by_their_cilium_policies() {
    let manifests = corpus().join("real-world/cilium/cilium-cli/connectivity/builder/manifests");
    let dir = tempfile::tempdir().unwrap();
    let workloads = dir.path().join("workloads.yaml");
    let deployment = |name: &str, labels: &str| {
        format!(
            "---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {name}}}\nspec:\n  selector: {{matchLabels: {{name: {name}}}}}\n  \
             template:\n    metadata: {{labels: {{name: {name}, {labels}}}}}\n    spec: {{containers: [{{name: app, image: quay.io/cilium/json-mock:v1.3.8}}]}}\n"
        )
    };
    let text = [
        deployment("client", "kind: client"),
        deployment("client2", "kind: client, other: client"),
        deployment("echo-same-node", "kind: echo"),
    ]
    .concat();
    std::fs::write(&workloads, text).unwrap();
    let coverage = |policies: &[&str]| -> Vec<(String, String)> {
        let mut cmd = palisade();
        cmd.args(["check", "--format", "json", "--exit-zero"]).arg(&workloads);
        for p in policies {
            cmd.arg(manifests.join(p));
        }
        let report = json_report(&mut cmd).1;
        assert!(errors(&report).is_empty(), "{report}");
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["rule"] == "network-policy-coverage")
            .map(|f| (f["resource"]["name"].as_str().unwrap().to_string(), f["message"].as_str().unwrap().to_string()))
            .collect()
    };
    // Egress of the clients, ingress of the clients and of echo: echo's egress is open.
    let found = coverage(&[
        "client-egress-to-echo.yaml",
        "client-ingress-from-client2.yaml",
        "echo-ingress-from-other-client.yaml",
    ]);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0].0, "echo-same-node");
    assert!(found[0].1.to_lowercase().contains("egress"), "{found:#?}");
    // With the test's deny-all policies every workload is covered both ways.
    let found = coverage(&["client-egress-to-echo.yaml", "deny-all-egress.yaml", "deny-all-ingress.yaml"]);
    assert!(found.is_empty(), "{found:#?}");
    // No policy: every workload, both ways.
    let found = coverage(&[]);
    assert_eq!(found.iter().map(|(n, _)| n.as_str()).collect::<BTreeSet<_>>().len(), 3, "{found:#?}");
}
