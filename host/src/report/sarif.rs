//! SARIF 2.1.0 (OASIS), the format code-scanning services read: one rule entry
//! per policy with its help text, one result per finding located at its file
//! and line; exempted findings carry a suppression with the reason.
//! Specification: <https://docs.oasis-open.org/sarif/sarif/v2.1.0/sarif-v2.1.0.html>.

use serde_json::{Value, json};

use crate::check::Report;
use crate::policy_set::ActivePolicy;
use crate::severity::Severity;

/// SARIF's three levels: critical and high are errors, medium warnings, the rest notes.
fn level(s: Severity) -> &'static str {
    match s {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low | Severity::Info => "note",
    }
}

/// A SARIF artifact URI for a path as given: relative paths stay relative
/// (to the working directory, `%SRCROOT%`), `\` becomes `/`.
fn uri(file: &str) -> String {
    let file = file.replace('\\', "/");
    let mut out = String::new();
    for c in file.chars() {
        match c {
            ' ' => out.push_str("%20"),
            '#' => out.push_str("%23"),
            '?' => out.push_str("%3F"),
            '%' => out.push_str("%25"),
            _ => out.push(c),
        }
    }
    out
}

/// A finding's region: its field's line and column.
fn region(source: &crate::resources::Source) -> Value {
    let mut region = json!({"startLine": source.line.max(1)});
    if let Some(column) = source.column {
        region["startColumn"] = json!(column);
    }
    region
}

pub fn sarif(report: &Report, policies: &[ActivePolicy]) -> String {
    let rules: Vec<Value> = policies
        .iter()
        .map(|p| {
            let m = &p.policy.meta;
            let mut rule = json!({
                "id": m.id,
                "name": m.title,
                "shortDescription": {"text": m.title},
                "fullDescription": {"text": m.description},
                "help": {
                    "text": format!("{}\n\nWhy: {}\n\nFix: {}", m.description, m.rationale, m.remediation),
                    "markdown": format!("**{}**\n\n{}\n\n**Why it matters.** {}\n\n**How to fix.** {}", m.title, m.description, m.rationale, m.remediation),
                },
                "defaultConfiguration": {"level": level(p.severity)},
                "properties": {"category": m.category, "severity": p.severity, "tags": ["kubernetes", "security", m.category]},
            });
            if let Some(url) = m.references.first() {
                rule["helpUri"] = json!(url);
            }
            rule
        })
        .collect();
    let index = |id: &str| policies.iter().position(|p| p.id() == id);
    let results: Vec<Value> = report
        .findings
        .iter()
        .map(|f| {
            let r = &f.resource;
            let logical =
                format!("{}/{}{}", r.kind, r.namespace.as_deref().map(|n| format!("{n}/")).unwrap_or_default(), r.name);
            let mut result = json!({
                "ruleId": f.rule,
                "level": level(f.severity),
                "message": {"text": format!("{} {}: {}", r.kind, r.name, f.message)},
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": {"uri": uri(f.source.template.as_deref().unwrap_or(&f.source.file))},
                        "region": region(&f.source),
                    },
                    "logicalLocations": [{"fullyQualifiedName": format!("{logical}{}", f.path), "kind": "object"}],
                }],
                "partialFingerprints": {"palisade/v1": format!("{}|{}|{}", f.rule, logical, f.path)},
                "properties": {"severity": f.severity, "path": f.path, "document": f.source.document},
            });
            if f.source.template.is_some() {
                // The location is the chart's template; the line is the rendered
                // output's, which is not the template's: kept as a property.
                if let Some(location) = result["locations"][0]["physicalLocation"].as_object_mut() {
                    location.remove("region");
                }
                result["properties"]["renderedFile"] = json!(f.source.file);
                result["properties"]["renderedLine"] = json!(f.source.line);
            }
            if let Some(i) = index(&f.rule) {
                result["ruleIndex"] = json!(i);
            }
            if let Some(x) = &f.exemption {
                result["suppressions"] = json!([{"kind": "external", "status": "accepted", "justification": x.reason}]);
            }
            result
        })
        .collect();
    let notifications: Vec<Value> = report
        .errors
        .iter()
        .map(|e| {
            let mut n = json!({
                "level": "error",
                "message": {"text": match &e.rule { Some(rule) => format!("{rule}: {}", e.message), None => e.message.clone() }},
                "locations": [{"physicalLocation": {"artifactLocation": {"uri": uri(&e.source.file)}}}],
            });
            if e.source.line > 0 {
                n["locations"][0]["physicalLocation"]["region"] = json!({"startLine": e.source.line});
            }
            n
        })
        .collect();
    let doc = json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "palisade",
                "version": env!("CARGO_PKG_VERSION"),
                "informationUri": "https://github.com/palisade-dev/palisade",
                "rules": rules,
            }},
            "invocations": [{
                "executionSuccessful": report.errors.is_empty(),
                "toolExecutionNotifications": notifications,
            }],
            "results": results,
        }],
    });
    serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n"
}
