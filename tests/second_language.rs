//! A rule in a second language (issue 15): `image-tag` written again in Python
//! (examples/rule-python, built with componentize-py) gives the Rust rule's
//! findings on the whole real-world corpus, and the WASI context the host runs
//! such a component in (`--policies-wasi`, docs/wasi.md) denies files, the
//! environment and the network, never lets a sleep hold a call, fixes clocks and
//! random numbers, and bounds what the rule prints.
//!
//! The components are built by `examples/rule-python/build.sh` (componentize-py
//! from PyPI into a virtual environment under target/; needs python3 with venv)
//! when missing or older than their sources; CI builds them before the tests.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use common::*;
use serde_json::Value;

/// The Python `image-tag` component.
fn python_image_tag() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let out = target_dir().join("rule-python").join("image-tag.wasm");
        let sources = [root().join("examples/rule-python/src"), root().join("wit")];
        build(&out, &sources, &[]);
        out
    })
}

/// The hostile probe (tests/policies-python/hostile), compiled once into the
/// tests' cache before any test runs it (so parallel tests do not each spend
/// seconds compiling it).
fn hostile() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let out = target_dir().join("rule-python").join("hostile.wasm");
        let app = root().join("tests/policies-python/hostile");
        build(&out, &[app.clone(), root().join("wit")], &["--app".as_ref(), app.as_os_str()]);
        let mut cmd = palisade();
        cmd.args(["policies", "--no-builtin", "--policies-wasi"]).arg(&out);
        let listing = run(&mut cmd);
        let listed = succeeded(&cmd, &listing);
        assert!(listed.contains("hostile-probe"), "{listed}");
        out
    })
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root().join("target"), PathBuf::from)
}

/// Run build.sh for `out` unless it is newer than every file under `sources`.
fn build(out: &Path, sources: &[PathBuf], args: &[&std::ffi::OsStr]) {
    let script = root().join("examples/rule-python/build.sh");
    let built = std::fs::metadata(out).and_then(|m| m.modified()).ok();
    let mut newest = modified(&script);
    for source in sources {
        newest = newest.max(newest_under(source));
    }
    if built.is_some_and(|b| Some(b) >= newest) {
        return;
    }
    let mut cmd = Command::new(&script);
    cmd.args(args).arg("--out").arg(out);
    let status = cmd.status().unwrap_or_else(|e| panic!("run {}: {e} (needs bash and python3)", script.display()));
    assert!(status.success(), "{cmd:?} failed ({status}): it needs python3 with venv, and PyPI the first time");
}

fn modified(path: &Path) -> Option<std::time::SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

fn newest_under(path: &Path) -> Option<std::time::SystemTime> {
    let mut newest = modified(path);
    if let Ok(entries) = std::fs::read_dir(path) {
        for entry in entries.flatten() {
            newest = newest.max(newest_under(&entry.path()));
        }
    }
    newest
}

/// A finding as the comparison sees it: file, document, resource, rule, path, message.
type Key = (String, u64, String, String, String, String);

fn findings(report: &Value) -> BTreeSet<Key> {
    let list = report["findings"].as_array().unwrap_or_else(|| panic!("no findings array: {report:#}"));
    list.iter()
        .map(|f| {
            let r = &f["resource"];
            let resource = format!(
                "{} {} {}/{}",
                r["apiVersion"].as_str().unwrap_or(""),
                r["kind"].as_str().unwrap_or(""),
                r["namespace"].as_str().unwrap_or(""),
                r["name"].as_str().unwrap_or("")
            );
            (
                f["source"]["file"].as_str().unwrap_or("").to_string(),
                f["source"]["document"].as_u64().unwrap_or(0),
                resource,
                f["rule"].as_str().unwrap_or("").to_string(),
                f["path"].as_str().unwrap_or("").to_string(),
                f["message"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// The messages of the policy errors of a report, with the resource's name.
fn policy_errors(report: &Value) -> Vec<(String, String)> {
    errors(report)
        .iter()
        .filter(|e| e["kind"] == "policy")
        .map(|e| {
            (e["resource"]["name"].as_str().unwrap_or("").to_string(), e["message"].as_str().unwrap_or("").to_string())
        })
        .collect()
}

#[test]
#[cfg_attr(
    palisade_missing_python,
    ignore = "python3 is not on PATH: the Python rule is built with componentize-py in a venv (apt-get install python3 python3-venv)"
)]
fn the_python_rule_agrees_with_the_rust_rule_on_the_real_world_corpus() {
    let corpus = corpus().join("real-world");
    let rust = root().join("target/components/image-tag.wasm");
    assert!(rust.is_file(), "{} was not built", rust.display());
    let (_, by_rust) = json_report(
        palisade().args(["check", "--format", "json", "--no-builtin", "--policies"]).arg(&rust).arg(&corpus),
    );
    let (_, by_python) = json_report(
        palisade()
            .args(["check", "--format", "json", "--no-builtin", "--policies-wasi"])
            .arg(python_image_tag())
            .arg(&corpus),
    );
    let (rust_findings, python_findings) = (findings(&by_rust), findings(&by_python));
    assert!(rust_findings.len() >= 50, "the corpus should give the rule work: {} findings", rust_findings.len());
    let only_rust: Vec<_> = rust_findings.difference(&python_findings).collect();
    let only_python: Vec<_> = python_findings.difference(&rust_findings).collect();
    assert!(
        only_rust.is_empty() && only_python.is_empty(),
        "the rules disagree\nonly Rust: {only_rust:#?}\nonly Python: {only_python:#?}"
    );
    assert_eq!(policy_errors(&by_python), policy_errors(&by_rust), "neither rule fails on an object");
    assert_eq!(by_python["summary"]["evaluations"], by_rust["summary"]["evaluations"], "the same objects evaluated");
}

#[test]
#[cfg_attr(
    palisade_missing_python,
    ignore = "python3 is not on PATH: the Python rule is built with componentize-py in a venv (apt-get install python3 python3-venv)"
)]
fn without_the_opt_in_a_component_that_imports_wasi_is_refused_naming_the_import() {
    for component in [python_image_tag(), hostile()] {
        let out =
            run(palisade().args(["check", "--no-builtin", "--policies"]).arg(component).arg(root().join("examples")));
        assert_eq!(out.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!("{}: it imports wasi:cli/environment@0.2.9 (WASI)", component.display())),
            "{stderr}"
        );
        assert!(stderr.contains("load it with --policies-wasi PATH instead of --policies"), "{stderr}");
        assert!(out.stdout.is_empty(), "nothing is checked");
    }
    // Nor can a bundle carry one: it has no way to say the user opted it in.
    let dir = tempfile::tempdir().expect("temp dir");
    let out = run(palisade()
        .args(["bundle", "build", "--name", "python", "--version", "1.0.0", "--policies"])
        .arg(python_image_tag())
        .arg("--output")
        .arg(dir.path().join("bundle")));
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("it imports wasi:cli/environment@0.2.9 (WASI)"), "{stderr}");
    assert!(stderr.contains("bundles cannot carry such components"), "{stderr}");
}

/// Pods named after what the probe tries, with `path` to try reading.
fn probe_pods(dir: &Path, names: &[&str], path: &Path) -> PathBuf {
    let pods: Vec<String> = names
        .iter()
        .map(|name| {
            format!(
                "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  annotations: {{path: {:?}}}\n\
                 spec:\n  containers: [{{name: c, image: x}}]\n",
                path.display().to_string()
            )
        })
        .collect();
    let file = dir.join("pods.yaml");
    std::fs::write(&file, pods.join("---\n")).expect("write the pods");
    file
}

/// The probe's report on `names`: (exit code, report, stderr).
fn probe(names: &[&str], extra: &[&str]) -> (i32, Value, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let secret = dir.path().join("secret.txt");
    std::fs::write(&secret, "the secret content").expect("write the secret");
    let pods = probe_pods(dir.path(), names, &secret);
    let out = run(palisade()
        .args(["check", "--format", "json", "--no-builtin", "--policies-wasi"])
        .arg(hostile())
        .args(extra)
        .arg(&pods)
        .current_dir(dir.path())
        .env("PALISADE_PROBE_SECRET", "hunter2"));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("not a JSON report ({e}): {}", String::from_utf8_lossy(&out.stderr));
    });
    let text = report.to_string();
    assert!(!text.contains("the secret content") && !text.contains("hunter2"), "a secret leaked: {report:#}");
    (out.status.code().unwrap_or(-1), report, String::from_utf8_lossy(&out.stderr).into_owned())
}

/// The probe's outcomes on the pod `name`: what it tried → what happened.
fn outcomes(report: &Value, name: &str) -> Vec<(String, String)> {
    report["findings"]
        .as_array()
        .map(|list| list.as_slice())
        .unwrap_or_default()
        .iter()
        .filter(|f| f["resource"]["name"] == name)
        .filter_map(|f| f["message"].as_str()?.split_once(" -> ").map(|(a, b)| (a.to_string(), b.to_string())))
        .collect()
}

fn outcome<'a>(outcomes: &'a [(String, String)], what: &str) -> &'a str {
    outcomes.iter().find(|(w, _)| w == what).map_or_else(|| panic!("no outcome for {what}: {outcomes:#?}"), |(_, o)| o)
}

#[test]
#[cfg_attr(
    palisade_missing_python,
    ignore = "python3 is not on PATH: the Python rule is built with componentize-py in a venv (apt-get install python3 python3-venv)"
)]
fn the_wasi_context_denies_files_the_environment_and_the_network() {
    let (code, report, _) = probe(&["read-files", "environment", "network"], &[]);
    assert_eq!(code, 1, "findings, no errors: {report:#}");
    assert!(policy_errors(&report).is_empty(), "{report:#}");

    let files = outcomes(&report, "read-files");
    assert_eq!(files.len(), 4, "{files:#?}");
    for (what, result) in &files {
        // No preopened directory: no path resolves, not even the root.
        assert!(result.starts_with("FileNotFoundError: "), "{what} -> {result}");
    }

    let env = outcomes(&report, "environment");
    assert_eq!(outcome(&env, "environ"), "ok: {}");
    assert_eq!(outcome(&env, "argv"), "ok: []");
    assert_eq!(outcome(&env, "stdin"), "ok: ''");

    let net = outcomes(&report, "network");
    assert_eq!(outcome(&net, "import socket"), "ModuleNotFoundError: No module named 'socket'");
    // WASI sockets, called directly: the host refuses them.
    assert_eq!(outcome(&net, "tcp connect 127.0.0.1:22"), "Err: ACCESS_DENIED");
    assert_eq!(outcome(&net, "udp socket"), "Err: ACCESS_DENIED");
    assert!(outcome(&net, "resolve localhost").starts_with("Err: "), "{net:#?}");
}

#[test]
#[cfg_attr(
    palisade_missing_python,
    ignore = "python3 is not on PATH: the Python rule is built with componentize-py in a venv (apt-get install python3 python3-venv)"
)]
fn a_sleep_returns_at_once_on_a_virtual_clock_and_random_numbers_are_fixed() {
    // Ten seconds asked for, a second's bound a call: a real sleep would time out.
    let (code, report, _) = probe(&["sleep"], &["--policy-timeout-ms", "1000"]);
    assert_eq!(code, 1, "{report:#}");
    assert!(policy_errors(&report).is_empty(), "the sleep did not hold the call: {report:#}");
    assert_eq!(outcome(&outcomes(&report, "sleep"), "slept"), "monotonic 10.0 s, wall 10.0 s");

    let first = outcomes(&probe(&["clock-and-random"], &[]).1, "clock-and-random");
    let second = outcomes(&probe(&["clock-and-random"], &[]).1, "clock-and-random");
    assert_eq!(first, second, "the same values every run");
    assert_eq!(outcome(&first, "time"), "ok: 0.0", "the wall clock starts at the Unix epoch");
}

#[test]
#[cfg_attr(
    palisade_missing_python,
    ignore = "python3 is not on PATH: the Python rule is built with componentize-py in a venv (apt-get install python3 python3-venv)"
)]
fn output_is_bounded_and_goes_to_the_policy_log_only_when_asked() {
    let names = ["flood", "raise", "exit", "quiet"];
    let (_, report, quiet) = probe(&names, &["--threads", "1"]);
    assert!(!quiet.contains("[hostile-probe]"), "no --policy-log, no output: {quiet}");
    let (code, logged, stderr) = probe(&names, &["--threads", "1", "--policy-log"]);
    assert_eq!(code, 2, "the rule failed on two pods: {logged:#}");
    assert_eq!(outcomes(&logged, "flood"), outcomes(&report, "flood"), "the log changes nothing in the report");
    assert_eq!(policy_errors(&logged), policy_errors(&report));

    // The flood: 1 MB to stdout and 100 KB to stderr, kept to the first and the
    // last 8 KiB, the call itself unharmed.
    assert_eq!(outcome(&outcomes(&logged, "flood"), "flooded"), "done");
    let lines: Vec<&str> = stderr.lines().filter_map(|l| l.strip_prefix("[hostile-probe] ")).collect();
    let kept: usize = lines.iter().map(|l| l.len() + 1).sum();
    assert!(kept < 2 * 16 * 1024, "{kept} bytes logged");
    assert!(lines.first().is_some_and(|l| l.starts_with("line 0 ")), "the start is kept: {lines:?}");
    assert!(lines.contains(&"the last line"), "the end is kept");
    assert!(lines.iter().any(|l| l.contains("bytes dropped by the host")), "what was dropped is counted");

    // An uncaught exception: the call fails with the exception's line; its
    // traceback is in the log; the instance is made anew for the next pod.
    let errors = policy_errors(&logged);
    let error = |name: &str| {
        errors.iter().find(|(n, _)| n == name).map_or_else(|| panic!("no error for {name}: {errors:#?}"), |(_, m)| m)
    };
    assert_eq!(
        error("raise"),
        "trapped: wasm trap: wasm `unreachable` instruction executed; its last output: \
         RuntimeError: a bug in the rule, raised on purpose"
    );
    assert!(lines.contains(&"Traceback (most recent call last):"), "{lines:?}");
    assert_eq!(error("exit"), "trapped: the rule exited (status 1)");
    assert_eq!(errors.len(), 2, "the pods after the failures were evaluated: {errors:#?}");
}

/// `palisade serve` runs an opted-in component too: its evaluations run on the
/// server's blocking threads, where WASI's host calls find the server's runtime.
#[test]
#[cfg_attr(
    palisade_missing_python,
    ignore = "python3 is not on PATH: the Python rule is built with componentize-py in a venv (apt-get install python3 python3-venv)"
)]
fn the_server_runs_an_opted_in_component_under_the_same_context() {
    use common::server::{pod, post, review, start};
    let component = hostile().display().to_string();
    let server = start(&["--no-builtin", "--policies-wasi", &component], "", false);
    for (name, expected) in
        [("environment", "hostile-probe: environ -> ok: {}"), ("sleep", "hostile-probe: slept -> monotonic 10.0 s")]
    {
        let object = pod(name, "shop", Value::Null, Value::Null);
        let (status, answer) = post(&server, "/validate", &review(name, "CREATE", "shop", object, Value::Null));
        assert_eq!(status, 200, "{answer}");
        // A low-severity rule: warnings, not a denial.
        let warnings = answer["response"]["warnings"].as_array().map(Vec::as_slice).unwrap_or_default();
        assert!(warnings.iter().any(|w| w.as_str().is_some_and(|w| w.starts_with(expected))), "{answer:#}");
    }
}
