//! `docs/write-a-rule.md`, run: every `sh` block of the guide, in order, in a
//! temporary directory, through the real binary and the real toolchain
//! (`palisade new` → `cargo test` → `palisade build` → `palisade test` →
//! `palisade check --policies` → a signed bundle), so the guide cannot rot. Then
//! what the guide promises beyond its happy path: a suite expecting the wrong
//! verdict fails naming the resource and rule, a WASI import is refused by name,
//! a missing wasm target says how to add it.
//!
//! The generated crates build in one target directory shared by every run
//! (`target/scaffold`), offline (the registry cache the workspace's own build
//! filled holds every crate the SDK needs), so a rerun builds only the crate.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;

/// A command of the guide and the exit code its comment announces (`# exit 1: ...`; else 0).
struct Step {
    command: String,
    exit: i32,
}

/// The lines of the guide's `sh` blocks.
fn guide_steps() -> Vec<Step> {
    let guide = std::fs::read_to_string(root().join("docs/write-a-rule.md")).expect("read docs/write-a-rule.md");
    let mut steps = Vec::new();
    let mut in_sh = false;
    for line in guide.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("```") {
            in_sh = !in_sh && trimmed == "```sh";
            continue;
        }
        if !in_sh || trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let (command, comment) = trimmed.split_once(" # ").unwrap_or((trimmed, ""));
        let exit = comment
            .trim()
            .strip_prefix("exit ")
            .map(|rest| rest.split(':').next().unwrap_or(rest).trim().parse().expect("`# exit N` in the guide"))
            .unwrap_or(0);
        steps.push(Step { command: command.trim().to_string(), exit });
    }
    steps
}

/// Where the commands run: `palisade` is the binary under test, `cargo` and
/// `rustc` the toolchain running this test.
struct Shell {
    dir: PathBuf,
    bin: PathBuf,
}

impl Shell {
    fn new(dir: &Path) -> Shell {
        let bin = dir.join("bin");
        std::fs::create_dir_all(&bin).expect("create bin/");
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_palisade"), bin.join("palisade")).expect("link palisade");
        Shell { dir: dir.to_path_buf(), bin }
    }

    fn command(&self, line: &str) -> Command {
        let cargo = PathBuf::from(std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into()));
        let mut path = vec![self.bin.clone()];
        path.extend(cargo.parent().map(Path::to_path_buf));
        path.extend(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()));
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(line)
            .current_dir(&self.dir)
            .env("PATH", std::env::join_paths(path).expect("PATH"))
            .env("CARGO_TARGET_DIR", root().join("target").join("scaffold"))
            .env("CARGO_NET_OFFLINE", "true")
            .env("PALISADE_CACHE_DIR", root().join("target").join("test-cache"))
            .env("NO_COLOR", "1")
            .stdin(std::process::Stdio::null());
        cmd
    }

    /// `cd DIR` moves the shell.
    fn step(&mut self, line: &str, exit: i32) -> Option<Output> {
        if let Some(dir) = line.strip_prefix("cd ") {
            self.dir = self.dir.join(dir.trim());
            assert!(self.dir.is_dir(), "{line}: no such directory");
            return None;
        }
        Some(self.run(line, exit))
    }

    /// Run `line`, which must exit with `exit`.
    fn run(&self, line: &str, exit: i32) -> Output {
        let out = run(&mut self.command(line));
        assert_eq!(
            out.status.code(),
            Some(exit),
            "{line} (in {})\nstdout:\n{}\nstderr:\n{}",
            self.dir.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }
}

/// What a command of the guide must show: given the shell's directory after it and its output.
type Check = fn(&Path, &str);

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

/// A line of `out` holding every one of `parts`.
fn has_line(out: &str, parts: &[&str]) -> bool {
    out.lines().any(|line| parts.iter().all(|p| line.contains(p)))
}

#[test]
fn the_guide_runs_as_written() {
    let temp = tempfile::tempdir().expect("temp dir");
    let mut shell = Shell::new(temp.path());
    let steps = guide_steps();
    // What each command of the guide must show, beyond its exit code; every
    // one must be in the guide.
    let mut expected: Vec<(&str, Check)> = vec![
        ("palisade new memory-limits", |dir, _| {
            assert!(dir.join("memory-limits/tests/memory-limits-test.yaml").is_file());
        }),
        ("cargo test", |_, out| assert!(out.contains("test result: ok. 3 passed"), "{out}")),
        ("palisade build", |dir, out| {
            assert!(dir.join("target/palisade/memory-limits.wasm").is_file(), "{out}");
            assert!(has_line(out, &["id:", "memory-limits"]), "{out}");
            assert!(has_line(out, &["contract:", "palisade:policy@0.3.2"]), "{out}");
        }),
        ("palisade test --policies", |_, out| {
            assert!(has_line(out, &["ok", "Deployment shop/unlimited", "memory-limits", "fail", "fail"]), "{out}");
            assert!(has_line(out, &["ok", "Deployment shop/limited", "memory-limits", "pass", "pass"]), "{out}");
            assert!(out.contains("2 checks: 2 agree, 0 differ"), "{out}");
        }),
        ("palisade check --policies", |_, out| {
            assert!(has_line(out, &["memory-limits", "container \"app\" sets no memory limit"]), "{out}");
        }),
        ("palisade explain --policies", |_, out| {
            assert!(out.contains("memory-limits: Containers must set a memory limit"), "{out}");
        }),
        ("palisade bundle verify", |_, out| assert!(out.contains("signed by team.pub"), "{out}")),
        ("palisade check --bundle", |_, out| {
            assert!(has_line(out, &["memory-limits", "container \"app\" sets no memory limit"]), "{out}");
            assert!(out.contains("signature verified with team.pub"), "{out}");
            assert!(out.contains("in 1 of 2 resources (1 file, 1 rule, 2 evaluations)"), "{out}");
        }),
    ];
    for step in &steps {
        let Some(out) = shell.step(&step.command, step.exit) else { continue };
        if let Some(i) = expected.iter().position(|(prefix, _)| step.command.starts_with(prefix)) {
            let (_, check) = expected.remove(i);
            check(&shell.dir, &text(&out));
        }
    }
    let missing: Vec<&str> = expected.iter().map(|(prefix, _)| *prefix).collect();
    assert!(missing.is_empty(), "the guide no longer runs {missing:?}");
    let crate_dir = temp.path().join("memory-limits");
    assert_eq!(shell.dir, crate_dir, "the guide works in the crate it made");

    // A suite expecting the wrong verdict: a difference (exit 1) naming the
    // resource and the rule.
    std::fs::create_dir(crate_dir.join("wrong")).expect("mkdir wrong");
    let suite = std::fs::read_to_string(crate_dir.join("tests/memory-limits-test.yaml")).expect("read the suite");
    assert_eq!(suite.matches("result: pass").count(), 1, "{suite}");
    let wrong =
        suite.replace("result: pass", "result: fail").replace("file: manifests.yaml", "file: ../tests/manifests.yaml");
    std::fs::write(crate_dir.join("wrong/memory-limits-test.yaml"), wrong).expect("write the wrong suite");
    let out = shell.run("palisade test --policies target/palisade/memory-limits.wasm wrong/", 1);
    let out = text(&out);
    assert!(has_line(&out, &["DIFF", "Deployment shop/limited", "memory-limits", "fail", "pass"]), "{out}");
    assert!(has_line(&out, &["ok", "Deployment shop/unlimited", "memory-limits"]), "{out}");

    // A rule importing WASI (here by hand, as a crate reading the environment
    // through a WASI binding would) is refused, by the import's name.
    let mut lib = std::fs::read_to_string(crate_dir.join("src/lib.rs")).expect("read src/lib.rs");
    lib.push_str(
        r#"
#[cfg(target_arch = "wasm32")]
#[link(wasm_import_module = "wasi:cli/environment@0.2.0")]
unsafe extern "C" {
    #[link_name = "get-arguments"]
    fn get_arguments(ret: *mut u8);
}

#[cfg(target_arch = "wasm32")]
#[unsafe(no_mangle)]
pub extern "C" fn read_arguments() {
    let mut buffer = [0u8; 8];
    unsafe { get_arguments(buffer.as_mut_ptr()) };
}
"#,
    );
    std::fs::write(crate_dir.join("src/lib.rs"), lib).expect("write src/lib.rs");
    let out = shell.run("palisade build --output target/wasi.wasm", 2);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("the rule imports wasi:cli/environment@0.2.0, which the host does not provide"), "{err}");
    assert!(!crate_dir.join("target/wasi.wasm").exists(), "a refused component is not written");
}

#[test]
fn a_missing_wasm_target_says_how_to_add_it() {
    let temp = tempfile::tempdir().expect("temp dir");
    let out = run(palisade().args(["new", "memory-limits", "--dir"]).arg(temp.path().join("rule")));
    assert!(out.status.success(), "{}", text(&out));
    // A toolchain whose sysroot has no wasm32-unknown-unknown standard library.
    let sysroot = temp.path().join("sysroot");
    std::fs::create_dir_all(sysroot.join("lib/rustlib/x86_64-unknown-linux-gnu/lib")).expect("sysroot");
    let rustc = temp.path().join("rustc");
    std::fs::write(&rustc, format!("#!/bin/sh\necho '{}'\n", sysroot.display())).expect("write rustc");
    let mut permissions = std::fs::metadata(&rustc).expect("rustc").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
    std::fs::set_permissions(&rustc, permissions).expect("chmod rustc");
    let out = run(palisade().arg("build").arg(temp.path().join("rule")).env("RUSTC", &rustc));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("run `rustup target add wasm32-unknown-unknown`"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
}

#[test]
fn new_refuses_a_bad_name_and_a_used_directory() {
    let temp = tempfile::tempdir().expect("temp dir");
    let out = run(palisade().args(["new", "Memory_Limits", "--dir"]).arg(temp.path().join("a")));
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("\"Memory_Limits\" is not a rule id"), "{}", text(&out));
    std::fs::write(temp.path().join("keep"), "").expect("write");
    let out = run(palisade().args(["new", "memory-limits", "--dir"]).arg(temp.path()));
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("the directory is not empty"), "{}", text(&out));
    assert_eq!(std::fs::read_dir(temp.path()).expect("list").count(), 1, "nothing written");
}
