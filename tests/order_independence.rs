//! Cross-resource rules read the whole checked set through the inventory;
//! their verdicts must not depend on the order of files or of documents.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::*;
use serde_json::Value;

/// Findings without their source positions, which move when files are reordered.
fn verdicts(report: &Value) -> BTreeSet<String> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| format!("{} {} {} {}", f["rule"], f["resource"], f["path"], f["message"]))
        .collect()
}

/// Split a YAML stream at its `---` lines.
fn documents(text: &str) -> Vec<String> {
    let mut docs = vec![String::new()];
    for line in text.lines() {
        if line == "---" || line.starts_with("--- ") {
            docs.push(String::new());
        } else {
            let last = docs.last_mut().unwrap();
            last.push_str(line);
            last.push('\n');
        }
    }
    docs.retain(|d| d.lines().any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#')));
    docs
}

fn gather(dir: &Path, out: &mut Vec<String>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().flatten().map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            gather(&p, out);
        } else if p.extension().is_some_and(|e| e == "yaml") {
            out.extend(documents(&std::fs::read_to_string(&p).unwrap()));
        }
    }
}

#[test]
fn shuffled_files_and_documents_give_the_same_findings() {
    // Bundles with NetworkPolicies, PDBs, HPAs, ServiceAccounts, Secrets and
    // StorageClasses beside the workloads they concern.
    let mut docs = Vec::new();
    for dir in ["real-world/kube-prometheus", "real-world/argo-cd", "real-world/istio", "kube-score/score/testdata"] {
        gather(&corpus().join(dir), &mut docs);
    }
    gather(&root().join("examples"), &mut docs);
    assert!(docs.len() > 300, "{}", docs.len());

    let dir = tempfile::tempdir().unwrap();
    // One layout: every document in its own file, in order.
    let ordered = dir.path().join("ordered");
    std::fs::create_dir(&ordered).unwrap();
    for (i, d) in docs.iter().enumerate() {
        std::fs::write(ordered.join(format!("{i:05}.yaml")), d).unwrap();
    }
    // Another: documents reversed and interleaved, several per file.
    let shuffled = dir.path().join("shuffled");
    std::fs::create_dir(&shuffled).unwrap();
    let mut order: Vec<usize> = (0..docs.len()).rev().collect();
    let half = order.len() / 2;
    order.rotate_left(half);
    for (n, chunk) in order.chunks(7).enumerate() {
        let text: Vec<&str> = chunk.iter().map(|&i| docs[i].as_str()).collect();
        std::fs::write(shuffled.join(format!("{n:04}.yaml")), text.join("---\n")).unwrap();
    }

    let (_, a) = json_report(palisade().args(["check", "--format", "json"]).arg(&ordered));
    let (_, b) = json_report(palisade().args(["check", "--format", "json"]).arg(&shuffled));
    let (va, vb) = (verdicts(&a), verdicts(&b));
    let cross =
        ["network-policy-coverage", "pdb-coverage", "hpa-target", "service-account-token", "storage-encryption"];
    for rule in cross {
        assert!(va.iter().any(|v| v.starts_with(&format!("\"{rule}\""))), "{rule} found nothing to compare");
    }
    let only_a: Vec<_> = va.difference(&vb).collect();
    let only_b: Vec<_> = vb.difference(&va).collect();
    assert!(only_a.is_empty() && only_b.is_empty(), "ordered only: {only_a:#?}\nshuffled only: {only_b:#?}");
    assert_eq!(a["summary"]["findings"], b["summary"]["findings"]);
}
