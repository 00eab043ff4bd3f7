//! Rule crates of one's own: written from templates (`palisade new`) and built
//! into a component checked against the contract (`palisade build`).
//!
//! A rule crate is a standalone cargo project (its own workspace) depending on
//! the SDK (`policies/sdk`, crate `palisade-sdk`), built for
//! `wasm32-unknown-unknown` with plain cargo and made a component by
//! [`componentize`](crate::componentize), as the built-in rules are.

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::Deserialize;
use thiserror::Error;

use crate::componentize;

/// The target rule crates are built for.
pub const WASM_TARGET: &str = "wasm32-unknown-unknown";

/// The SDK source this binary was built from, if it is still there.
const BUILT_SDK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../policies/sdk");

/// The repository this binary was built from (`repository` of its package), if set.
const REPOSITORY: &str = env!("CARGO_PKG_REPOSITORY");

/// What the generated rule looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A `PodRule` over the pod spec of the nine pod-bearing kinds.
    Pod,
    /// A `Rule` over whole objects, with a setting.
    Object,
}

/// Where the generated crate takes the SDK from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sdk {
    /// A directory holding the SDK crate (`policies/sdk` of a checkout).
    Path(PathBuf),
    /// A git repository holding it, optionally pinned to a revision.
    Git { url: String, rev: Option<String> },
}

impl Sdk {
    /// The SDK this binary was built from, else its repository.
    pub fn default_source() -> Result<Sdk, Error> {
        let built = Path::new(BUILT_SDK);
        if built.join("Cargo.toml").is_file() {
            return Sdk::path(built);
        }
        if !REPOSITORY.is_empty() {
            return Ok(Sdk::Git { url: REPOSITORY.to_string(), rev: None });
        }
        Err(Error::NoSdk(built.to_path_buf()))
    }

    /// A path source, made absolute so the crate can be anywhere.
    pub fn path(dir: &Path) -> Result<Sdk, Error> {
        let manifest = dir.join("Cargo.toml");
        let text = fs::read_to_string(&manifest).map_err(|e| Error::Io(manifest.clone(), e))?;
        if !text.lines().any(|line| line.replace(' ', "") == "name=\"palisade-sdk\"") {
            return Err(Error::NotTheSdk(dir.to_path_buf()));
        }
        let dir = fs::canonicalize(dir).map_err(|e| Error::Io(dir.to_path_buf(), e))?;
        Ok(Sdk::Path(dir))
    }

    /// The `palisade-sdk = ...` line of `Cargo.toml`.
    fn dependency(&self) -> String {
        match self {
            Sdk::Path(dir) => format!("palisade-sdk = {{ path = {} }}", toml_string(&dir.to_string_lossy())),
            Sdk::Git { url, rev: None } => format!("palisade-sdk = {{ git = {} }}", toml_string(url)),
            Sdk::Git { url, rev: Some(rev) } => {
                format!("palisade-sdk = {{ git = {}, rev = {} }}", toml_string(url), toml_string(rev))
            }
        }
    }

    /// The dependency section: the SDK line, the other source commented out.
    fn dependencies(&self, kind: Kind) -> String {
        let url = if REPOSITORY.is_empty() { "https://GIT-HOST/palisade.git" } else { REPOSITORY };
        let mut out = String::new();
        match self {
            Sdk::Path(_) => {
                out.push_str("# The Palisade SDK, from a checkout of Palisade (`palisade new --sdk-path DIR`):\n");
                out.push_str(&self.dependency());
                out.push_str("\n# or from its git repository, pinned to a commit (`--sdk-git URL --sdk-rev REV`):\n");
                out.push_str(&format!("# palisade-sdk = {{ git = {}, rev = \"COMMIT\" }}\n", toml_string(url)));
            }
            Sdk::Git { .. } => {
                out.push_str(
                    "# The Palisade SDK, from its git repository (`palisade new --sdk-git URL --sdk-rev REV`):\n",
                );
                out.push_str(&self.dependency());
                out.push_str("\n# or from a checkout of Palisade (`--sdk-path DIR`):\n");
                out.push_str("# palisade-sdk = { path = \"/path/to/palisade/policies/sdk\" }\n");
            }
        }
        if kind == Kind::Object {
            out.push_str("# The settings type derives `Deserialize`.\n");
            out.push_str("serde = { version = \"1\", features = [\"derive\"] }\n");
        }
        out
    }
}

/// What `palisade new` makes.
#[derive(Debug, Clone)]
pub struct NewRule {
    /// The rule's id, also the crate's name (kebab-case).
    pub name: String,
    pub kind: Kind,
    /// The crate's directory: created, or empty.
    pub dir: PathBuf,
    pub sdk: Sdk,
}

#[derive(Debug, Error)]
pub enum Error {
    #[error(
        "{0:?} is not a rule id: use lowercase letters, digits and single hyphens, starting with a letter \
         (e.g. memory-limits)"
    )]
    BadName(String),
    #[error("{0:?} cannot be a crate's name (cargo or the SDK uses it): choose another")]
    ReservedName(String),
    #[error("{}: the directory is not empty: choose another with --dir", .0.display())]
    NotEmpty(PathBuf),
    #[error(
        "the Palisade SDK source this palisade was built from ({}) is not there, and no repository is \
         known: pass --sdk-path DIR (policies/sdk of a Palisade checkout) or --sdk-git URL",
        .0.display()
    )]
    NoSdk(PathBuf),
    #[error("{}: not the Palisade SDK (its Cargo.toml does not name palisade-sdk)", .0.display())]
    NotTheSdk(PathBuf),
    #[error("{path}: {1}", path = .0.display())]
    Io(PathBuf, std::io::Error),
    #[error("{}: no Cargo.toml: give the rule crate's directory (`palisade new` makes one)", .0.display())]
    NoCrate(PathBuf),
    #[error(
        "the {WASM_TARGET} target is not installed for the toolchain of {}: run `rustup target add \
         {WASM_TARGET}`, then build again",
        .0.display()
    )]
    MissingTarget(PathBuf),
    #[error("cannot run {0}: {1} (is the Rust toolchain installed? https://rustup.rs)")]
    Tool(String, std::io::Error),
    #[error("cargo build failed (its errors are above)")]
    CargoFailed,
    #[error(
        "{}: cargo built no WebAssembly library: the crate needs `[lib] crate-type = [\"cdylib\", \"rlib\"]`",
        .0.display()
    )]
    NoModule(PathBuf),
    #[error("{path}: {1}", path = .0.display())]
    Component(PathBuf, componentize::Error),
}

/// Rust keywords and names cargo or the SDK keeps for itself.
const RESERVED: [&str; 9] = ["alloc", "core", "std", "test", "proc-macro", "self", "crate", "super", "palisade-sdk"];

/// Check a rule id: what `policy_set` accepts (kebab-case), starting with a
/// letter so it is a crate name too.
pub fn check_name(name: &str) -> Result<(), Error> {
    let valid = name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.ends_with('-')
        && !name.contains("--");
    if !valid {
        return Err(Error::BadName(name.to_string()));
    }
    if RESERVED.contains(&name) {
        return Err(Error::ReservedName(name.to_string()));
    }
    Ok(())
}

/// `memory-limits` → `MemoryLimits`.
/// A name the templates use already (the SDK's types they import, the
/// object template's own types, the prelude's) gets `Rule` after it, so that
/// every valid id makes a crate that compiles (`result` → `ResultRule`).
fn type_name(name: &str) -> String {
    const TAKEN: &[&str] = &[
        "ContainerKind",
        "Context",
        "Metadata",
        "NoSettings",
        "PodRule",
        "SettingsError",
        "Severity",
        "Violation",
        "Workload",
        "Rule",
        "Header",
        "Settings",
        "Deserialize",
        "Default",
        "Result",
        "Option",
        "String",
        "Vec",
        "Box",
        "Ok",
        "Err",
        "Some",
        "None",
        "Self",
    ];
    let mut type_name: String = name
        .split('-')
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map(|first| first.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
        })
        .collect();
    if TAKEN.contains(&type_name.as_str()) {
        type_name.push_str("Rule");
    }
    type_name
}

/// A TOML basic string.
fn toml_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

const CARGO_TOML: &str = include_str!("../templates/rule/Cargo.toml.in");
const GITIGNORE: &str = include_str!("../templates/rule/gitignore.in");
const README: &str = include_str!("../templates/rule/README.md.in");
const POD_RS: &str = include_str!("../templates/rule/pod.rs.in");
const POD_TEST: &str = include_str!("../templates/rule/pod-test.yaml.in");
const POD_MANIFESTS: &str = include_str!("../templates/rule/pod-manifests.yaml.in");
const OBJECT_RS: &str = include_str!("../templates/rule/object.rs.in");
const OBJECT_TEST: &str = include_str!("../templates/rule/object-test.yaml.in");
const OBJECT_MANIFESTS: &str = include_str!("../templates/rule/object-manifests.yaml.in");

/// The files of a new rule crate: (path relative to the crate, contents).
pub fn files(rule: &NewRule) -> Result<Vec<(PathBuf, String)>, Error> {
    check_name(&rule.name)?;
    let type_name = type_name(&rule.name);
    let render = |template: &str| {
        template
            .replace("{{name}}", &rule.name)
            .replace("{{type}}", &type_name)
            .replace("{{dependencies}}", &rule.sdk.dependencies(rule.kind))
    };
    let (lib, suite, manifests) = match rule.kind {
        Kind::Pod => (POD_RS, POD_TEST, POD_MANIFESTS),
        Kind::Object => (OBJECT_RS, OBJECT_TEST, OBJECT_MANIFESTS),
    };
    Ok(vec![
        (PathBuf::from("Cargo.toml"), render(CARGO_TOML)),
        (PathBuf::from(".gitignore"), render(GITIGNORE)),
        (PathBuf::from("README.md"), render(README)),
        (PathBuf::from("src/lib.rs"), render(lib)),
        (PathBuf::from(format!("tests/{}-test.yaml", rule.name)), render(suite)),
        (PathBuf::from("tests/manifests.yaml"), render(manifests)),
    ])
}

/// Write a new rule crate; returns the files written (absolute paths).
pub fn create(rule: &NewRule) -> Result<Vec<PathBuf>, Error> {
    let files = files(rule)?;
    match fs::read_dir(&rule.dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(Error::NotEmpty(rule.dir.clone()));
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::Io(rule.dir.clone(), e)),
    }
    let mut written = Vec::new();
    for (relative, contents) in files {
        let path = rule.dir.join(relative);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(|e| Error::Io(parent.to_path_buf(), e))?;
        }
        fs::write(&path, contents).map_err(|e| Error::Io(path.clone(), e))?;
        written.push(path);
    }
    Ok(written)
}

/// A rule crate built: its module and the component made of it.
#[derive(Debug, Clone)]
pub struct Built {
    /// The core module cargo wrote.
    pub module: PathBuf,
    /// The component, checked against the contract.
    pub component: PathBuf,
    pub bytes: Vec<u8>,
    /// The contract version it exports (`0.3.2`).
    pub contract: String,
}

/// Where the toolchain that builds `dir` keeps the standard libraries, if `rustc` says.
fn sysroot(dir: &Path) -> Result<Option<PathBuf>, Error> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let out = Command::new(&rustc)
        .current_dir(dir)
        .args(["--print", "sysroot"])
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| Error::Tool(rustc.to_string_lossy().into_owned(), e))?;
    Ok(out.status.success().then(|| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())))
}

/// One line of `cargo build --message-format=json` that matters here.
#[derive(Deserialize)]
struct Message {
    reason: String,
    #[serde(default)]
    manifest_path: Option<PathBuf>,
    #[serde(default)]
    target: Option<Target>,
    #[serde(default)]
    filenames: Vec<PathBuf>,
}

#[derive(Deserialize)]
struct Target {
    crate_types: Vec<String>,
}

/// Build the rule crate in `dir` for [`WASM_TARGET`] in release, make its module a
/// component, check it against the contract and write it to `output` (default:
/// `DIR/target/palisade/CRATE.wasm`). Cargo's progress and errors go to stderr.
pub fn build(dir: &Path, output: Option<&Path>) -> Result<Built, Error> {
    let manifest = dir.join("Cargo.toml");
    if !manifest.is_file() {
        return Err(Error::NoCrate(dir.to_path_buf()));
    }
    let manifest = fs::canonicalize(&manifest).map_err(|e| Error::Io(manifest.clone(), e))?;
    let dir = manifest.parent().unwrap_or(dir);
    if let Some(root) = sysroot(dir)?
        && !root.join("lib/rustlib").join(WASM_TARGET).join("lib").is_dir()
    {
        return Err(Error::MissingTarget(dir.to_path_buf()));
    }

    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut child = Command::new(&cargo)
        .current_dir(dir)
        .args(["build", "--release", "--target", WASM_TARGET, "--message-format=json-render-diagnostics"])
        .arg("--manifest-path")
        .arg(&manifest)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| Error::Tool(cargo.to_string_lossy().into_owned(), e))?;
    let mut module = None;
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines() {
            let line = line.map_err(|e| Error::Tool(cargo.to_string_lossy().into_owned(), e))?;
            let Ok(message) = serde_json::from_str::<Message>(&line) else { continue };
            let ours = message
                .manifest_path
                .as_deref()
                .is_some_and(|p| fs::canonicalize(p).ok().as_deref() == Some(&manifest));
            let cdylib = message.target.as_ref().is_some_and(|t| t.crate_types.iter().any(|c| c == "cdylib"));
            if message.reason == "compiler-artifact" && ours && cdylib {
                module = message.filenames.into_iter().find(|f| f.extension().is_some_and(|e| e == "wasm"));
            }
        }
    }
    let status = child.wait().map_err(|e| Error::Tool(cargo.to_string_lossy().into_owned(), e))?;
    if !status.success() {
        return Err(Error::CargoFailed);
    }
    let module = module.ok_or_else(|| Error::NoModule(dir.to_path_buf()))?;

    let bytes = fs::read(&module).map_err(|e| Error::Io(module.clone(), e))?;
    let component = componentize::encode(&bytes).map_err(|e| Error::Component(module.clone(), e))?;
    let contract = componentize::check_contract(&component).map_err(|e| Error::Component(module.clone(), e))?;
    let path = match output {
        Some(path) => path.to_path_buf(),
        None => default_output(dir, &module),
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).map_err(|e| Error::Io(parent.to_path_buf(), e))?;
    }
    fs::write(&path, &component).map_err(|e| Error::Io(path.clone(), e))?;
    Ok(Built { module, component: path, bytes: component, contract })
}

/// `DIR/target/palisade/CRATE.wasm` (named as the crate is, with hyphens), in
/// the crate's directory whatever cargo's target directory: a path the crate's
/// README, test suites and scripts can name.
fn default_output(dir: &Path, module: &Path) -> PathBuf {
    let stem = module.file_stem().map(|s| s.to_string_lossy().replace('_', "-")).unwrap_or_default();
    dir.join("target").join("palisade").join(format!("{stem}.wasm"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_rule_ids_and_crate_names() {
        for good in ["memory-limits", "a", "team-owner-2"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in ["", "Memory", "2fast", "-a", "a-", "a--b", "a_b", "a b", "é"] {
            assert!(matches!(check_name(bad), Err(Error::BadName(_))), "{bad}");
        }
        assert!(matches!(check_name("palisade-sdk"), Err(Error::ReservedName(_))));
        assert!(matches!(check_name("std"), Err(Error::ReservedName(_))));
        assert_eq!(type_name("team-owner-2"), "TeamOwner2");
        assert_eq!(type_name("result"), "ResultRule");
        assert_eq!(type_name("violation"), "ViolationRule");
        assert_eq!(type_name("pod-rule"), "PodRuleRule");
    }

    #[test]
    fn the_sdk_line_names_its_source_and_shows_the_other() {
        let rule = |sdk| NewRule { name: "memory-limits".into(), kind: Kind::Pod, dir: PathBuf::new(), sdk };
        let written = files(&rule(Sdk::Path(PathBuf::from("/src/pal \"isade\"/policies/sdk")))).unwrap();
        let cargo = &written[0].1;
        assert!(cargo.contains("\npalisade-sdk = { path = \"/src/pal \\\"isade\\\"/policies/sdk\" }\n"), "{cargo}");
        assert!(cargo.contains("\n# palisade-sdk = { git = "), "{cargo}");
        assert!(cargo.contains("name = \"memory-limits\""), "{cargo}");
        assert!(!cargo.contains("serde"), "{cargo}");
        let git = Sdk::Git { url: "https://example.com/palisade.git".into(), rev: Some("abc123".into()) };
        let written = files(&NewRule { kind: Kind::Object, ..rule(git) }).unwrap();
        let cargo = &written[0].1;
        assert!(
            cargo.contains("\npalisade-sdk = { git = \"https://example.com/palisade.git\", rev = \"abc123\" }\n"),
            "{cargo}"
        );
        assert!(cargo.contains("\n# palisade-sdk = { path = "), "{cargo}");
        assert!(cargo.contains("\nserde = "), "{cargo}");
        let lib = &written[3].1;
        assert!(lib.contains("pub struct MemoryLimits {") && lib.contains("id: \"memory-limits\","), "{lib}");
        assert!(!written.iter().any(|(_, text)| text.contains("{{")), "a placeholder left");
    }

    #[test]
    fn the_built_sdk_is_the_default_and_a_wrong_path_is_refused() {
        assert!(matches!(Sdk::default_source(), Ok(Sdk::Path(dir)) if dir.ends_with("policies/sdk")));
        let host = Path::new(env!("CARGO_MANIFEST_DIR"));
        assert!(matches!(Sdk::path(host), Err(Error::NotTheSdk(_))));
        assert!(matches!(Sdk::path(&host.join("missing")), Err(Error::Io(..))));
    }

    #[test]
    fn a_non_empty_directory_is_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("keep.txt"), "mine").unwrap();
        let rule = NewRule {
            name: "memory-limits".into(),
            kind: Kind::Pod,
            dir: dir.path().to_path_buf(),
            sdk: Sdk::Path(PathBuf::from("/sdk")),
        };
        assert!(matches!(create(&rule), Err(Error::NotEmpty(_))));
        let rule = NewRule { dir: dir.path().join("new"), ..rule };
        let written = create(&rule).unwrap();
        assert_eq!(written.len(), 6);
        assert!(rule.dir.join("tests/memory-limits-test.yaml").is_file());
    }

    #[test]
    fn build_needs_a_crate() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(build(dir.path(), None), Err(Error::NoCrate(_))));
    }

    #[test]
    fn the_component_goes_to_the_crate_target_directory() {
        let module = Path::new("/shared/wasm32-unknown-unknown/release/memory_limits.wasm");
        assert_eq!(
            default_output(Path::new("/src/rule"), module),
            Path::new("/src/rule/target/palisade/memory-limits.wasm")
        );
    }
}
