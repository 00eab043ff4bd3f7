//! Every finding points at the line of the field its path names, or of the
//! deepest ancestor of it that is written (a missing field): checked on every
//! finding of the real-world corpus (block and flow YAML, JSON, Lists), and
//! on the example whose 23 findings once all pointed at `kind:`.

mod common;

use std::collections::HashMap;

use common::*;
use serde_json::Value;

/// The JSON pointer tokens of `path`.
fn tokens(path: &str) -> Vec<String> {
    path.split('/').skip(1).map(|t| t.replace("~1", "/").replace("~0", "~")).collect()
}

/// What the text at a finding's line and column must show: the key of the
/// deepest existing field, or, for an item of a list, the item.
fn check_position(text: &str, object: &Value, path: &str, line: usize, column: usize) -> Result<(), String> {
    let tokens = tokens(path);
    let mut node = object;
    let mut last: Option<(&String, bool)> = None; // (token, parent is a mapping)
    for t in &tokens {
        let next = match node {
            Value::Object(map) => map.get(t).map(|v| (v, true)),
            Value::Array(items) => t.parse::<usize>().ok().and_then(|i| items.get(i)).map(|v| (v, false)),
            _ => None,
        };
        let Some((v, in_map)) = next else { break };
        last = Some((t, in_map));
        node = v;
    }
    let Some(at) = text.lines().nth(line - 1) else {
        return Err(format!("line {line} is past the end"));
    };
    let rest: String = at.chars().skip(column - 1).collect();
    match last {
        None => Ok(()),
        Some((key, true)) => {
            let written = rest.strip_prefix(['"', '\'']).unwrap_or(&rest);
            if written.starts_with(key.as_str()) {
                Ok(())
            } else {
                Err(format!("expected key {key:?} at {line}:{column}: {at:?}"))
            }
        }
        // A list item: the column is where the item starts, after `- `, `[` or `,`.
        Some((_, false)) => {
            let before: String = at.chars().take(column - 1).collect();
            let before = before.trim_end();
            if before.ends_with('-') || before.ends_with('[') || before.ends_with(',') || before.is_empty() {
                Ok(())
            } else {
                Err(format!("expected a list item at {line}:{column}: {at:?}"))
            }
        }
    }
}

#[test]
fn findings_point_at_their_field() {
    let dir = corpus().join("real-world");
    let out = run(palisade().args(["check", "--format", "json", "--exit-zero"]).arg(&dir));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut files: HashMap<String, (String, Vec<palisade::resources::Resource>)> = HashMap::new();
    let (mut checked, mut located) = (0, 0);
    let mut wrong = Vec::new();
    for f in report["findings"].as_array().unwrap() {
        let file = f["source"]["file"].as_str().unwrap().to_string();
        let (text, resources) = files.entry(file.clone()).or_insert_with(|| {
            let text = std::fs::read_to_string(&file).unwrap();
            let mut resources = Vec::new();
            let docs = palisade::documents::read_documents(&text, &Default::default());
            palisade::resources::from_documents(&file, docs, &mut resources, &mut Vec::new());
            (text.replace("\r\n", "\n").replace('\r', "\n"), resources)
        });
        let r = &f["resource"];
        let Some(resource) = resources
            .iter()
            .find(|x| x.kind == r["kind"] && x.name == r["name"] && x.namespace.as_deref() == r["namespace"].as_str())
        else {
            continue;
        };
        let object: Value = serde_json::from_str(&resource.json).unwrap();
        let path = f["path"].as_str().unwrap();
        let line = f["source"]["line"].as_u64().unwrap() as usize;
        checked += 1;
        let Some(column) = f["source"]["column"].as_u64() else {
            wrong.push(format!("{file}: {path}: no column"));
            continue;
        };
        located += 1;
        if let Err(e) = check_position(text, &object, path, line, column as usize) {
            wrong.push(format!("{file}: {} {}: {path}: {e}", r["kind"], r["name"]));
        }
    }
    println!("field lines: {checked} findings checked, {located} with a column, {} misplaced", wrong.len());
    assert!(checked > 1000, "{checked}");
    assert!(wrong.is_empty(), "{} misplaced:\n{}", wrong.len(), wrong[..wrong.len().min(30)].join("\n"));
}

#[test]
fn the_example_findings_are_spread_over_their_fields() {
    let example = root().join("examples/insecure-deployment.yaml");
    let out = run(palisade().args(["check", "--format", "json", "--exit-zero"]).arg(&example));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let lines: std::collections::BTreeSet<u64> =
        report["findings"].as_array().unwrap().iter().map(|f| f["source"]["line"].as_u64().unwrap()).collect();
    assert!(lines.len() > 5, "findings on {} distinct lines: {lines:?}", lines.len());
    // JSON input: the same positions, in JSON's own layout.
    let text = std::fs::read_to_string(&example).unwrap();
    let docs = palisade::documents::read_documents(&text, &Default::default());
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("d.json");
    let value = &docs[0].content.as_ref().unwrap().value;
    std::fs::write(&json, serde_json::to_string_pretty(value).unwrap()).unwrap();
    let out = run(palisade().args(["check", "--format", "json", "--exit-zero"]).arg(&json));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let written = std::fs::read_to_string(&json).unwrap();
    for f in report["findings"].as_array().unwrap() {
        let (line, column) = (f["source"]["line"].as_u64().unwrap(), f["source"]["column"].as_u64().unwrap());
        check_position(&written, value, f["path"].as_str().unwrap(), line as usize, column as usize).unwrap();
    }
}
