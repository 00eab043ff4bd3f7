//! The README's two commands compile each dependency once: after `cargo run -p palisade`
//! (or `cargo build`), `cargo test --workspace` reuses every crate the first one compiled
//! (wasmtime, Cranelift, rustls, tokio, regex...) instead of compiling it again with the
//! features the test-only dependencies add (host/Cargo.toml lists those features in the
//! binary's dependencies).
//!
//! Read from Cargo's unit graph (`--unit-graph`, unstable, hence `RUSTC_BOOTSTRAP=1`):
//! nothing is compiled and the target directory's lock is not taken. A unit is reused when
//! its package, target, mode, platform, profile settings and features are the same and so
//! are those of its dependencies, recursively: that is the identity compared here.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;
use sha2::{Digest, Sha256};

/// The workspace root. Read at run time (`cargo test` sets it), so the same test binary can
/// be pointed at another checkout of the workspace.
fn root() -> PathBuf {
    let manifest_dir =
        std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    manifest_dir.parent().map(PathBuf::from).unwrap_or_else(|| panic!("{} has no parent", manifest_dir.display()))
}

/// The units `cargo ARGS` would compile, from the workspace root.
fn unit_graph(args: &[&str]) -> Graph {
    // The cargo running this test (set at run time by `cargo test`).
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into());
    let out = Command::new(&cargo)
        .current_dir(root())
        .args(args)
        .args(["--unit-graph", "-Z", "unstable-options", "--offline", "--quiet"])
        .env("RUSTC_BOOTSTRAP", "1")
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", cargo.to_string_lossy()));
    let command = format!("cargo {}", args.join(" "));
    assert!(out.status.success(), "{command} --unit-graph failed:\n{}", String::from_utf8_lossy(&out.stderr));
    let graph: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{command} --unit-graph: not JSON: {e}"));
    Graph::new(command, &graph)
}

/// One compiled unit: what it is, for reports, and its identity.
struct Unit {
    /// `name version`.
    package: String,
    /// `name version (target kind, mode)`.
    label: String,
    /// Package, target kind and mode: the units that compile the same code.
    family: String,
    /// Everything but the dependencies (and the profile's name: `dev` and `test` share units).
    own: String,
    features: Vec<String>,
    /// `own` and the identities of the dependencies, recursively.
    identity: String,
}

struct Graph {
    command: String,
    units: Vec<Unit>,
}

impl Graph {
    fn new(command: String, graph: &Value) -> Self {
        let raw = graph["units"].as_array().unwrap_or_else(|| panic!("{command}: no `units` in the unit graph"));
        let mut identities: Vec<Option<String>> = vec![None; raw.len()];
        let units = (0..raw.len()).map(|i| unit(&command, raw, i, &mut identities)).collect();
        Graph { command, units }
    }

    fn identities(&self) -> BTreeSet<&str> {
        self.units.iter().map(|u| u.identity.as_str()).collect()
    }
}

fn unit(command: &str, raw: &[Value], index: usize, identities: &mut Vec<Option<String>>) -> Unit {
    let value = &raw[index];
    let text = |v: &Value| v.as_str().map(String::from).unwrap_or_else(|| v.to_string());
    let pkg_id = text(&value["pkg_id"]);
    // `registry+https://...#serde@1.0.229`, `path+file:///.../host#palisade@0.1.0`, or
    // `path+file:///.../policies/pss-sysctls#0.1.0` when the folder has the package's name.
    let (url, fragment) = pkg_id.rsplit_once('#').unwrap_or(("", &pkg_id));
    let package = match fragment.split_once('@') {
        Some((name, version)) => format!("{name} {version}"),
        None => format!("{} {fragment}", url.rsplit('/').next().unwrap_or(url)),
    };
    let kind = value["target"]["kind"]
        .as_array()
        .map(|k| k.iter().map(text).collect::<Vec<_>>().join(","))
        .unwrap_or_default();
    let mode = text(&value["mode"]);
    let features = value["features"].as_array().map(|f| f.iter().map(text).collect()).unwrap_or_default();
    Unit {
        label: format!("{package} ({kind}, {mode})"),
        package,
        family: format!("{pkg_id} {kind} {mode}"),
        identity: identity(command, raw, index, identities),
        own: own(value),
        features,
    }
}

/// A unit without its dependencies, as JSON, and without its profile's name (`cargo test`
/// names it `test`, `cargo build` `dev`; Cargo reuses units across them when the settings agree).
fn own(unit: &Value) -> String {
    let mut own = unit.clone();
    if let Some(map) = own.as_object_mut() {
        map.remove("dependencies");
    }
    if let Some(profile) = own.get_mut("profile").and_then(Value::as_object_mut) {
        profile.remove("name");
    }
    own.to_string()
}

/// The unit's own description followed by its dependencies' identities, sorted.
fn identity(command: &str, raw: &[Value], index: usize, memo: &mut Vec<Option<String>>) -> String {
    if let Some(known) = &memo[index] {
        return known.clone();
    }
    let value = &raw[index];
    let mut deps = Vec::new();
    for dep in value["dependencies"].as_array().map(Vec::as_slice).unwrap_or_default() {
        let dep_index = dep["index"]
            .as_u64()
            .and_then(|i| usize::try_from(i).ok())
            .filter(|&i| i < raw.len())
            .unwrap_or_else(|| panic!("{command}: unit {index} has a dependency without a valid index: {dep}"));
        deps.push(format!("{}={}", dep["extern_crate_name"], identity(command, raw, dep_index, memo)));
    }
    deps.sort();
    // Identities nest: a digest keeps them short.
    let id = format!("{:x}", Sha256::digest(format!("{}[{}]", own(value), deps.join(","))));
    memo[index] = Some(id.clone());
    id
}

/// The units of `test` that `build` compiles too (same package, target kind and mode) but
/// differently: the test build would compile them a second time. None when all is reused.
fn compiled_again(test: &Graph, build: &Graph) -> Option<String> {
    let built = build.identities();
    let own_built: BTreeSet<&str> = build.units.iter().map(|u| u.own.as_str()).collect();
    let mut families: HashMap<&str, Vec<&Unit>> = HashMap::new();
    for unit in &build.units {
        families.entry(unit.family.as_str()).or_default().push(unit);
    }
    let mut again = BTreeSet::new();
    let mut crates = BTreeSet::new();
    // Crates whose units differ themselves, not only through a dependency: what to fix.
    let mut causes = BTreeMap::new();
    for unit in &test.units {
        let Some(variants) = families.get(unit.family.as_str()) else { continue };
        if built.contains(unit.identity.as_str()) {
            continue;
        }
        again.insert(unit.label.as_str());
        crates.insert(unit.package.as_str());
        if !own_built.contains(unit.own.as_str()) {
            causes.entry(unit.package.as_str()).or_insert_with(|| feature_difference(unit, variants));
        }
    }
    if again.is_empty() {
        return None;
    }
    let heavy: Vec<&str> = crates.iter().copied().filter(|c| is_heavy(c)).collect();
    let mut report = format!(
        "after `{}`, `{}` would compile {} units of {} crates again, among them: {}\n",
        build.command,
        test.command,
        again.len(),
        crates.len(),
        if heavy.is_empty() { String::from("no heavy one") } else { heavy.join(", ") },
    );
    report.push_str(
        "because the test build turns on other features in these crates (turn them on in host/Cargo.toml's \
         [dependencies], or [build-dependencies] for build scripts and proc macros):\n",
    );
    for (package, difference) in causes {
        report.push_str(&format!("  {package}: {difference}\n"));
    }
    Some(report)
}

/// How `unit`'s features differ from those of the closest of `variants` (`+` the test build's
/// only, `-` the other's only).
fn feature_difference(unit: &Unit, variants: &[&Unit]) -> String {
    let ours: BTreeSet<&String> = unit.features.iter().collect();
    let closest = variants
        .iter()
        .map(|v| v.features.iter().collect::<BTreeSet<_>>())
        .min_by_key(|theirs| ours.symmetric_difference(theirs).count());
    let Some(theirs) = closest else { return String::from("no such unit") };
    let added = ours.difference(&theirs).map(|f| format!("+{f}"));
    let removed = theirs.difference(&ours).map(|f| format!("-{f}"));
    let difference: Vec<String> = added.chain(removed).collect();
    if difference.is_empty() {
        // Same features, other settings (profile, target...): the units say which.
        format!("same features, other settings: {}", unit.own)
    } else {
        difference.join(" ")
    }
}

/// The crates a failure names first: minutes of compilation each.
fn is_heavy(package: &str) -> bool {
    let name = package.split(' ').next().unwrap_or(package);
    ["wasmtime", "cranelift", "pulley", "wasmparser", "wasm-encoder", "wit-", "rustls", "tokio", "hyper", "reqwest"]
        .iter()
        .any(|prefix| name.starts_with(prefix))
        || ["ring", "oci-client", "regex", "regex-automata", "serde", "palisade", "palisade-sigstore"].contains(&name)
}

#[test]
fn the_test_build_reuses_every_crate_of_cargo_run_and_cargo_build() {
    let test = unit_graph(&["test", "--workspace", "--no-run"]);
    // What `cargo run -p palisade` builds (`cargo run` cannot print its unit graph).
    let run = unit_graph(&["build", "-p", "palisade", "--bin", "palisade"]);
    let build = unit_graph(&["build"]);
    // No vacuous pass on an empty or foreign graph.
    for graph in [&test, &run, &build] {
        assert!(
            graph.units.iter().any(|u| u.label.starts_with("wasmtime ") && u.label.ends_with("(lib, build)")),
            "`{}` compiles no wasmtime: is this still the palisade workspace?",
            graph.command
        );
    }
    let problems: Vec<String> = [&run, &build].into_iter().filter_map(|b| compiled_again(&test, b)).collect();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
