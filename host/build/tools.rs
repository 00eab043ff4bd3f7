//! The external tools some end-to-end tests need. For each one missing, a
//! `palisade_missing_<tool>` cfg, which those tests turn into
//! `#[cfg_attr(palisade_missing_<tool>, ignore = "...")]`: `cargo test` then
//! lists them as ignored, with the reason, in its own summary, rather than
//! passing them without running them. With `PALISADE_REQUIRE_TOOLS` or `CI`
//! set no such cfg is emitted: the tests run and fail on a missing tool.
//!
//! The script reruns (recompiling the host crate, so never on every build)
//! when PATH or those variables change, when a file appears, vanishes or
//! changes in a PATH directory, and when dpkg installs or removes a package
//! (the fixed paths under /usr). Only paths that exist are watched: cargo
//! reruns a build script on every build while a path it watches is missing.

use std::collections::BTreeSet;
use std::env;
use std::path::{Path, PathBuf};

/// Where a tool is looked for: as the tests look for it.
enum Find {
    /// A file of that name in a directory of PATH.
    OnPath(&'static str),
    /// A fixed path (the tests use Debian's packages by path).
    File(&'static str),
}

/// The cfg suffix of each tool, and where it is found.
const TOOLS: &[(&str, Find)] = &[
    ("registry", Find::File("/usr/bin/docker-registry")),
    ("skopeo", Find::File("/usr/bin/skopeo")),
    ("openssl", Find::File("/usr/bin/openssl")),
    (
        "image_spec",
        Find::File("/usr/share/gocode/src/github.com/opencontainers/image-spec/schema/image-manifest-schema.json"),
    ),
    ("kubectl", Find::OnPath("kubectl")),
    ("helm", Find::OnPath("helm")),
    // The Python rule of tests/second_language.rs (componentize-py, from PyPI, in a venv).
    ("python", Find::OnPath("python3")),
];

/// The file dpkg rewrites on every install and removal.
const DPKG_STATUS: &str = "/var/lib/dpkg/status";

/// Emit a `palisade_missing_<tool>` cfg for each missing tool (none when
/// tools are required), and what should make cargo look again.
pub fn detect() {
    println!("cargo::rerun-if-env-changed=PATH");
    println!("cargo::rerun-if-env-changed=PALISADE_REQUIRE_TOOLS");
    println!("cargo::rerun-if-env-changed=CI");
    let path_dirs = path_dirs();
    for dir in &path_dirs {
        println!("cargo::rerun-if-changed={}", dir.display());
    }
    if Path::new(DPKG_STATUS).is_file() {
        println!("cargo::rerun-if-changed={DPKG_STATUS}");
    }

    let required = env::var_os("PALISADE_REQUIRE_TOOLS").is_some() || env::var_os("CI").is_some();
    for (name, find) in TOOLS {
        println!("cargo::rustc-check-cfg=cfg(palisade_missing_{name})");
        let present = match find {
            Find::OnPath(file) => path_dirs.iter().any(|dir| dir.join(file).is_file()),
            Find::File(path) => Path::new(path).is_file(),
        };
        if !present && !required {
            println!("cargo::rustc-cfg=palisade_missing_{name}");
        }
    }
}

/// The existing absolute directories of PATH, each once (`/bin` and
/// `/usr/bin` are often one directory).
fn path_dirs() -> Vec<PathBuf> {
    let Some(path) = env::var_os("PATH") else { return Vec::new() };
    let mut seen = BTreeSet::new();
    env::split_paths(&path)
        .filter(|dir| dir.is_absolute())
        .filter_map(|dir| dir.canonicalize().ok())
        .filter(|dir| dir.is_dir() && seen.insert(dir.clone()))
        .collect()
}
