//! OpenReports (`openreports.io/v1alpha1`): a `Report` per namespace and a
//! `ClusterReport` for cluster-scoped objects (and objects the manifests leave
//! without a namespace), as a YAML stream `kubectl apply` accepts. One result
//! per finding (`fail`, or `skip` when exempted, with the reason), one `pass`
//! per object and rule without findings, one `error` per rule that could not
//! evaluate an object. Schema: the CRDs of openreports/reports-api
//! (`config/crd/openreports.io_reports.yaml`, `..._clusterreports.yaml`).

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::check::Report;
use crate::findings::ResourceRef;

fn object_ref(r: &ResourceRef) -> Value {
    let mut v = json!({"apiVersion": r.api_version, "kind": r.kind, "name": r.name});
    if let Some(ns) = &r.namespace {
        v["namespace"] = json!(ns);
    }
    v
}

fn result(policy: &str, r: &ResourceRef, outcome: &str, message: Option<&str>, severity: Option<&str>) -> Value {
    let mut v = json!({
        "source": "palisade",
        "policy": policy,
        "result": outcome,
        "scored": true,
        "resources": [object_ref(r)],
    });
    if let Some(m) = message {
        v["message"] = json!(m);
    }
    if let Some(s) = severity {
        v["severity"] = json!(s);
    }
    v
}

/// Kubernetes object names: lower case alphanumerics and `-`, at most 253.
fn dns_name(text: &str) -> String {
    let mut out: String =
        text.to_ascii_lowercase().chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
    out.truncate(200);
    out.trim_matches('-').to_string()
}

pub fn openreports(report: &Report) -> String {
    // namespace (None: cluster) → results
    let mut groups: BTreeMap<Option<String>, Vec<Value>> = BTreeMap::new();
    let mut with_findings: std::collections::HashSet<(String, usize, String)> = Default::default();
    for f in &report.findings {
        // Keyed by the resource's line: a finding's own line is its field's.
        let line = report.resources.get(f.resource_index).map_or(f.source.line, |r| r.source.line);
        with_findings.insert((f.source.file.clone(), line, f.rule.clone()));
        let mut v = match &f.exemption {
            None => result(&f.rule, &f.resource, "fail", Some(&f.message), Some(f.severity.as_str())),
            Some(x) => {
                let mut v = result(&f.rule, &f.resource, "skip", Some(&f.message), Some(f.severity.as_str()));
                v["properties"] = json!({"exempted": x.reason});
                v
            }
        };
        v["resources"][0]["fieldPath"] = json!(f.path);
        if !f.path.is_empty() {
            v["properties"]["path"] = json!(f.path);
        }
        v["properties"]["file"] = json!(format!("{}:{}", f.source.file, f.source.line));
        groups.entry(f.resource.namespace.clone()).or_default().push(v);
    }
    for e in &report.errors {
        if let (Some(rule), Some(r)) = (&e.rule, &e.resource) {
            with_findings.insert((e.source.file.clone(), e.source.line, rule.clone()));
            groups.entry(r.namespace.clone()).or_default().push(result(rule, r, "error", Some(&e.message), None));
        }
    }
    for c in &report.resources {
        for rule in &c.rules {
            if !with_findings.contains(&(c.source.file.clone(), c.source.line, rule.clone())) {
                groups.entry(c.resource.namespace.clone()).or_default().push(result(
                    rule,
                    &c.resource,
                    "pass",
                    None,
                    None,
                ));
            }
        }
    }
    let mut out = String::new();
    for (namespace, results) in groups {
        let mut summary = Map::new();
        for key in ["pass", "fail", "warn", "error", "skip"] {
            let n = results.iter().filter(|r| r["result"] == key).count();
            summary.insert(key.into(), json!(n));
        }
        let mut doc = json!({
            "apiVersion": "openreports.io/v1alpha1",
            "kind": if namespace.is_some() { "Report" } else { "ClusterReport" },
            "metadata": {
                "name": match &namespace { Some(ns) => dns_name(&format!("palisade-{ns}")), None => "palisade-cluster".into() },
                "labels": {"app.kubernetes.io/managed-by": "palisade"},
            },
            "source": "palisade",
            "summary": summary,
            "results": results,
        });
        if let Some(ns) = &namespace {
            doc["metadata"]["namespace"] = json!(ns);
        }
        out.push_str(&crate::documents::to_yaml(&doc));
    }
    out
}
