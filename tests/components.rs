//! Every component's imports and exports: policies are pure, so the only
//! import is Palisade's own `inventory` interface (and the types it uses); no
//! WASI, no clock, no file system, no network. Rules that do not read the
//! inventory do not import it at all.

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
    assert_eq!(files.len(), 40 + 1, "40 built-in rules and the test policy: {files:?}");
    for file in files {
        let name = file.file_stem().unwrap().to_string_lossy().into_owned();
        let component = Component::from_file(&engine, &file).unwrap();
        let ty = component.component_type();
        let mut imports: Vec<String> = ty.imports(&engine).map(|(name, _)| name.to_string()).collect();
        imports.sort();
        let exports: Vec<String> = ty.exports(&engine).map(|(name, _)| name.to_string()).collect();
        // A rule that never reads the inventory does not even import it; one
        // that declares kinds it reads does.
        let reads = name == "test-misbehave" || {
            let out = run(palisade().args(["explain", "--format", "json", &name]));
            let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            !meta["readsKinds"].as_array().unwrap().is_empty()
        };
        let expected: &[&str] = if reads {
            &["palisade:policy/inventory@0.2.0", "palisade:policy/types@0.2.0"]
        } else {
            &["palisade:policy/types@0.2.0"]
        };
        assert_eq!(imports, expected, "{}", file.display());
        assert_eq!(exports, ["palisade:policy/policy@0.2.0"], "{}", file.display());
    }
}
