//! Helpers shared by the end-to-end tests: the real `palisade` binary, the
//! shared corpus, and reading its JSON reports.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};

use serde_json::Value;

pub mod measure;
pub mod registry;
pub mod server;

/// Three Pods, in this order (a policy that misbehaves on `bad-*` names fails
/// on the first and last, and leaves the middle one to the other rules):
/// `bad-one` (line 1) and `good` privileged, `bad-two` (line 13) not.
pub const THREE_PODS: &str = "\
apiVersion: v1
kind: Pod
metadata: {name: bad-one, namespace: ns}
spec:
  containers: [{name: c, image: x, securityContext: {privileged: true}}]
---
apiVersion: v1
kind: Pod
metadata: {name: good, namespace: ns}
spec:
  containers: [{name: c, image: x, securityContext: {privileged: true}}]
---
apiVersion: v1
kind: Pod
metadata: {name: bad-two, namespace: ns}
spec:
  containers: [{name: c, image: x}]
";

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// `../shared/corpus`, beside the checkout.
pub fn corpus() -> PathBuf {
    let dir = root().join("..").join("shared").join("corpus");
    assert!(dir.is_dir(), "the shared corpus is missing at {}", dir.display());
    dir
}

/// Components built for tests only (misbehaving and inventory-reading policies).
pub fn testing_component(name: &str) -> PathBuf {
    let path = root().join("target").join("components").join("testing").join(format!("{name}.wasm"));
    assert!(path.is_file(), "{} was not built", path.display());
    path
}

/// The real binary, with a compile cache shared by every test of the run.
/// `PALISADE_BENCH_BIN` names another binary instead (an A/B benchmark
/// against an earlier build).
pub fn palisade() -> Command {
    let bin = std::env::var_os("PALISADE_BENCH_BIN").unwrap_or_else(|| env!("CARGO_BIN_EXE_palisade").into());
    let mut cmd = Command::new(bin);
    cmd.env("PALISADE_CACHE_DIR", root().join("target").join("test-cache"));
    cmd.env("NO_COLOR", "1");
    cmd.stdin(Stdio::null());
    cmd
}

/// `palisade ARGS` with `input` on standard input.
pub fn with_stdin(args: &[&str], input: &str) -> Output {
    use std::io::Write;
    let mut child = palisade()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn palisade");
    child.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("write stdin");
    child.wait_with_output().expect("wait for palisade")
}

pub fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("run palisade")
}

/// The stdout (trimmed) of `cmd`'s `out`, failing the test unless it succeeded.
pub fn succeeded(cmd: &Command, out: &Output) -> String {
    assert!(
        out.status.success(),
        "{cmd:?} failed ({:?}):\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Run and parse a JSON report, checking the exit code is one `check` may give.
pub fn json_report(cmd: &mut Command) -> (i32, Value) {
    let out = run(cmd);
    let code = out.status.code().expect("exit code");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not a JSON report ({e}); exit {code}\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (code, report)
}

/// Findings of a report grouped by file: file → set of rules.
pub fn rules_by_file(report: &Value) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in report["findings"].as_array().unwrap() {
        out.entry(f["source"]["file"].as_str().unwrap().to_string())
            .or_default()
            .insert(f["rule"].as_str().unwrap().to_string());
    }
    out
}

/// Findings grouped by (kind, name): → set of rules.
pub fn rules_by_resource(report: &Value) -> BTreeMap<(String, String), BTreeSet<String>> {
    let mut out: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for f in report["findings"].as_array().unwrap() {
        let r = &f["resource"];
        out.entry((r["kind"].as_str().unwrap().to_string(), r["name"].as_str().unwrap().to_string()))
            .or_default()
            .insert(f["rule"].as_str().unwrap().to_string());
    }
    out
}

pub fn errors(report: &Value) -> &Vec<Value> {
    report["errors"].as_array().unwrap()
}

/// Directories of `dir`, sorted by version (`v1.2` before `v1.10`).
pub fn version_dirs(dir: &Path) -> Vec<(String, PathBuf)> {
    let mut out: Vec<(u32, String, PathBuf)> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let minor = name.trim_start_matches("v1.").parse().unwrap_or(u32::MAX);
            (minor, name, e.path())
        })
        .collect();
    out.sort();
    out.into_iter().map(|(_, n, p)| (n, p)).collect()
}

pub fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|e| e == "yaml")).collect())
        .unwrap_or_default();
    files.sort();
    files
}

/// A spawned child whose stdout and stderr go to files in a directory of its
/// own (files, not pipes: a child that writes much never blocks on a full
/// pipe while the test polls it).
pub struct Captured {
    pub child: Child,
    dir: tempfile::TempDir,
}

impl Captured {
    pub fn spawn(cmd: &mut Command) -> Captured {
        let dir = tempfile::tempdir().expect("temp dir");
        let child = cmd
            .stdout(std::fs::File::create(dir.path().join("stdout")).expect("stdout file"))
            .stderr(std::fs::File::create(dir.path().join("stderr")).expect("stderr file"))
            .spawn()
            .expect("spawn palisade");
        Captured { child, dir }
    }

    /// What the child wrote, once it has exited with `status`.
    pub fn output(self, status: ExitStatus) -> Output {
        Output {
            status,
            stdout: std::fs::read(self.dir.path().join("stdout")).expect("read stdout"),
            stderr: std::fs::read(self.dir.path().join("stderr")).expect("read stderr"),
        }
    }
}

/// Run, failing the test if the process outlives `limit` (a hang, not a slow run).
pub fn run_within(cmd: &mut Command, limit: std::time::Duration) -> Output {
    let mut run = Captured::spawn(cmd);
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(status) = run.child.try_wait().expect("wait") {
            break status;
        }
        if start.elapsed() > limit {
            let _ = run.child.kill();
            panic!("palisade did not finish within {limit:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    run.output(status)
}

/// Copy an OCI layout directory: `oci-layout`, `index.json` and the files
/// of `blobs/sha256`.
pub fn copy_layout(from: &Path, to: &Path) {
    std::fs::create_dir_all(to.join("blobs/sha256")).unwrap();
    for file in ["oci-layout", "index.json"] {
        std::fs::copy(from.join(file), to.join(file)).unwrap();
    }
    for entry in std::fs::read_dir(from.join("blobs/sha256")).unwrap().flatten() {
        std::fs::copy(entry.path(), to.join("blobs/sha256").join(entry.file_name())).unwrap();
    }
}
