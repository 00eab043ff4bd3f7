//! Builds every policy crate under `../policies` for `wasm32-unknown-unknown`,
//! turns each core module into a component and checks it against the contract
//! (`src/componentize.rs`, shared with `palisade build`), and generates the
//! table of built-in components the binary embeds.
//!
//! The nested cargo uses its own target directory (`target/policies`): sharing
//! the outer build's would wait forever on the lock the outer build holds.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

#[path = "build/tools.rs"]
mod tools;

#[path = "build/sha256.rs"]
mod sha256;

// The same encoding and contract check as `palisade build` (the library's `componentize`).
#[allow(dead_code)]
#[path = "src/componentize.rs"]
mod componentize;

fn main() {
    tools::detect();
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let workspace = manifest_dir.parent().expect("host/ sits in the workspace").to_path_buf();
    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("set by cargo"));
    let policies_dir = workspace.join("policies");

    println!("cargo:rerun-if-changed={}", policies_dir.display());
    println!("cargo:rerun-if-changed={}", workspace.join("wit").display());
    println!("cargo:rerun-if-changed={}", workspace.join("Cargo.lock").display());
    // The `policy` profile lives in the workspace manifest.
    println!("cargo:rerun-if-changed={}", workspace.join("Cargo.toml").display());
    println!("cargo:rerun-if-env-changed=PALISADE_POLICY_PROFILE");

    let builtin = crates_in(&policies_dir);
    // Components for tests only (misbehaving policies): built, never embedded.
    let testing_dir = workspace.join("tests").join("policies");
    println!("cargo:rerun-if-changed={}", testing_dir.display());
    let testing = crates_in(&testing_dir);
    let all: Vec<&String> = builtin.iter().chain(testing.iter()).collect();

    ensure_wasm_target(&workspace);
    let target_dir = workspace.join("target").join("policies");
    let profile = env::var("PALISADE_POLICY_PROFILE").unwrap_or_else(|_| "policy".into());
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&workspace)
        .arg("build")
        .arg("--target")
        .arg("wasm32-unknown-unknown")
        .arg("--profile")
        .arg(&profile)
        .arg("--target-dir")
        .arg(&target_dir);
    for name in &all {
        cmd.arg("-p").arg(name.as_str());
    }
    // The outer cargo's settings describe the host build, not this one.
    for (key, _) in env::vars() {
        let keep = key == "CARGO_HOME" || key == "CARGO_MAKEFLAGS" || key == "CARGO_NET_OFFLINE";
        if (key.starts_with("CARGO_") && !keep)
            || key.starts_with("RUSTC")
            || key == "RUSTFLAGS"
            || key == "RUSTDOCFLAGS"
        {
            cmd.env_remove(&key);
        }
    }
    match cmd.status() {
        Ok(status) if status.success() => {}
        Ok(_) => stop("building the policy components failed (cargo's errors are above)"),
        Err(e) => stop(&format!("cannot run cargo to build the policy components: {e}")),
    }

    let wasm_dir = target_dir.join("wasm32-unknown-unknown").join(&profile);
    let components_dir = workspace.join("target").join("components");
    if let Err(e) = fs::create_dir_all(components_dir.join("testing")) {
        stop(&format!("create {}: {e}", components_dir.display()));
    }

    let mut table = String::from("/// Built-in policy components: (crate name, component bytes).\n");
    table.push_str("pub static BUILTIN: &[(&str, &[u8])] = &[\n");
    // Hashed here, not at every start: the SHA-256 each is cached under.
    let mut hashes =
        String::from("/// The SHA-256 of each of [`BUILTIN`]'s components (same order), as 64 lowercase hex digits.\n");
    hashes.push_str("pub static BUILTIN_SHA256: &[&str] = &[\n");
    for name in &all {
        let module_path = wasm_dir.join(format!("{}.wasm", name.replace('-', "_")));
        let module = fs::read(&module_path).unwrap_or_else(|e| stop(&format!("read {}: {e}", module_path.display())));
        let component = componentize::encode(&module).unwrap_or_else(|e| stop(&format!("{name}: {e}")));
        if let Err(e) = componentize::check_contract(&component) {
            stop(&format!("{name}: {e}"));
        }
        let is_builtin = builtin.contains(name);
        let file = if is_builtin {
            components_dir.join(format!("{name}.wasm"))
        } else {
            components_dir.join("testing").join(format!("{name}.wasm"))
        };
        write_if_changed(&file, &component);
        let embedded = out_dir.join(format!("{name}.wasm"));
        write_if_changed(&embedded, &component);
        if is_builtin {
            table.push_str(&format!("    ({name:?}, include_bytes!({:?})),\n", embedded.display().to_string()));
            hashes.push_str(&format!("    {:?},\n", sha256::sha256_hex(&component)));
        }
    }
    table.push_str("];\n");
    hashes.push_str("];\n");
    table.push_str(&hashes);
    write_if_changed(&out_dir.join("builtin.rs"), table.as_bytes());
}

/// A machine may have the pinned toolchain without the `wasm32-unknown-unknown`
/// standard library, and rustup does not add a target by itself for a
/// toolchain already installed: add it, so `cargo build` works on a fresh
/// machine as the README says.
fn ensure_wasm_target(workspace: &Path) {
    let sysroot = Command::new(env::var("RUSTC").unwrap_or_else(|_| "rustc".into()))
        .current_dir(workspace)
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    if sysroot.is_some_and(|root| root.join("lib/rustlib/wasm32-unknown-unknown/lib").is_dir()) {
        return;
    }
    println!("cargo:warning=adding the wasm32-unknown-unknown target (rustup target add wasm32-unknown-unknown)");
    let added = Command::new("rustup")
        .current_dir(workspace)
        .args(["target", "add", "wasm32-unknown-unknown"])
        .status()
        .is_ok_and(|s| s.success());
    if !added {
        stop(
            "the wasm32-unknown-unknown target is missing and could not be added: \
             run `rustup target add wasm32-unknown-unknown`, then build again",
        );
    }
}

/// Ends the build with one error line, as cargo prints it: no panic, no backtrace.
fn stop(message: &str) -> ! {
    println!("cargo::error={message}");
    std::process::exit(0)
}

/// Names of the crates directly below `dir` (every folder with a Cargo.toml but the SDK).
fn crates_in(dir: &Path) -> Vec<String> {
    let mut names = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return names;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if path.join("Cargo.toml").is_file() && name != "sdk" {
            names.push(name);
        }
    }
    names.sort();
    names
}

fn write_if_changed(path: &Path, bytes: &[u8]) {
    if fs::read(path).ok().as_deref() != Some(bytes)
        && let Err(e) = fs::write(path, bytes)
    {
        stop(&format!("write {}: {e}", path.display()));
    }
}
