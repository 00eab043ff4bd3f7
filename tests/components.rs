//! Every component's imports and exports: policies are pure, so the only
//! imports are Palisade's own `inventory` and `image-verification` interfaces
//! (and the types they use); no WASI, no clock, no file system, no network.
//! Rules that do not read the inventory or ask about images do not import them.

mod common;

use common::*;
use wasmtime::component::Component;
use wasmtime::{Config, Engine};

fn component_files() -> Vec<std::path::PathBuf> {
    let dir = root().join("target").join("components");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .chain(std::fs::read_dir(dir.join("testing")).unwrap())
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "wasm"))
        .collect();
    files.sort();
    files
}

#[test]
fn components_import_only_the_palisade_interfaces() {
    let mut config = Config::new();
    config.wasm_component_model(true);
    let engine = Engine::new(&config).unwrap();
    let files = component_files();
    assert_eq!(files.len(), 51 + 2, "51 built-in rules and the two test policies: {files:?}");
    for file in files {
        let name = file.file_stem().unwrap().to_string_lossy().into_owned();
        let component = Component::from_file(&engine, &file).unwrap();
        let ty = component.component_type();
        let mut imports: Vec<String> = ty.imports(&engine).map(|(name, _)| name.to_string()).collect();
        imports.sort();
        let mut exports: Vec<String> = ty.exports(&engine).map(|(name, _)| name.to_string()).collect();
        exports.sort();
        // The component built for the previous contract keeps its version.
        let version = if name == "test-compat-v2" { "0.2.0" } else { "0.3.2" };
        // A rule that never reads the inventory does not even import it; one
        // that declares kinds it reads does. Only the image rule asks the
        // host about images.
        let reads = name == "test-misbehave" || name == "test-compat-v2" || {
            let out = run(palisade().args(["explain", "--format", "json", &name]));
            let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            !meta["readsKinds"].as_array().unwrap().is_empty()
        };
        let mut expected = Vec::new();
        if name == "image-signature" || name == "image-attestation" {
            expected.push(format!("palisade:policy/image-verification@{version}"));
        }
        if reads {
            expected.push(format!("palisade:policy/inventory@{version}"));
        }
        expected.push(format!("palisade:policy/types@{version}"));
        assert_eq!(imports, expected, "{}", file.display());
        // Components built with the Rust SDK say what they read (`input`, since 0.3.2).
        let mut expected = vec![format!("palisade:policy/policy@{version}")];
        if version != "0.2.0" {
            expected.insert(0, format!("palisade:policy/input@{version}"));
        }
        assert_eq!(exports, expected, "{}", file.display());
    }
}

/// A component built for the previous contract (0.2.0, `wit/compat/0.2.0`)
/// still loads and runs, with its inventory import, beside the 0.3.2 rules.
#[test]
fn a_component_built_for_the_previous_contract_still_runs() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("cm.yaml");
    std::fs::write(
        &manifest,
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: ns, labels: {compat: legacy}}\n---\n\
         apiVersion: v1\nkind: ConfigMap\nmetadata: {name: b, namespace: ns}\n",
    )
    .unwrap();
    let component = testing_component("test-compat-v2");
    let (code, report) =
        json_report(palisade().args(["check", "--format", "json", "--policies"]).arg(&component).arg(&manifest));
    assert_eq!(code, 1, "{report}");
    let findings: Vec<&serde_json::Value> =
        report["findings"].as_array().unwrap().iter().filter(|f| f["rule"] == "test-compat-v2").collect();
    assert_eq!(findings.len(), 1, "{report}");
    assert!(findings[0]["message"].as_str().unwrap().contains("(2 ConfigMaps in the namespace)"), "{report}");
    let out = run(palisade().args(["policies", "--format", "json", "--policies"]).arg(&component));
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(list.as_array().unwrap().iter().any(|p| p["id"] == "test-compat-v2"), "{list}");
}
