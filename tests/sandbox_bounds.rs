//! The sandbox's bounds on what a policy can make the host hold: table
//! elements, the number of violations one evaluation returns, and the size of
//! each message. A policy that goes past one is an error for that resource and
//! rule, the run goes on, and it stays fast and small.
//!
//! Each run is measured: wall time against a bound, and the process's peak
//! resident set (`ru_maxrss` from `wait4`, so no tool or package is needed).

mod common;

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};

const INPUT: &str = "\
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

/// Peak resident set a run may reach.
const MAX_RSS_KIB: u64 = 300 << 10;
/// Resident set at which a run is killed rather than left to eat the machine.
const KILL_RSS_KIB: u64 = 1 << 20;

struct Measured {
    code: i32,
    report: Value,
    stderr: String,
    took: Duration,
    peak_rss_kib: u64,
}

/// Like `run_within`, and also reads the child's peak resident set from the
/// `rusage` that `wait4` returns when it reaps it.
// The child is reaped by `wait4`, which clippy does not see.
#[allow(clippy::zombie_processes)]
fn run_measured(cmd: &mut Command, limit: Duration) -> (Output, Duration, u64) {
    let dir = tempfile::tempdir().expect("temp dir");
    let out_path = dir.path().join("stdout");
    let err_path = dir.path().join("stderr");
    let mut child = cmd
        .stdout(std::fs::File::create(&out_path).expect("stdout file"))
        .stderr(std::fs::File::create(&err_path).expect("stderr file"))
        .spawn()
        .expect("spawn palisade");
    let pid = child.id() as libc::pid_t;
    let start = Instant::now();
    let reap = |flags: libc::c_int| -> Option<(ExitStatus, u64)> {
        let mut status: libc::c_int = 0;
        // SAFETY: plain out-parameters; `pid` is our own unreaped child.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        let got = unsafe { libc::wait4(pid, &mut status, flags, &mut usage) };
        assert!(got >= 0, "wait4: {}", std::io::Error::last_os_error());
        // Linux reports ru_maxrss in KiB.
        (got == pid).then(|| (ExitStatus::from_raw(status), usage.ru_maxrss as u64))
    };
    let (status, peak) = loop {
        if let Some(done) = reap(libc::WNOHANG) {
            break done;
        }
        // A run that lost its bound must not take the machine's memory with it.
        let rss = proc_status_kib(child.id(), "VmRSS:").unwrap_or(0);
        if start.elapsed() > limit || rss > KILL_RSS_KIB {
            let _ = child.kill();
            let (_, peak) = reap(0).expect("reap the killed child");
            panic!(
                "palisade killed after {:.0} ms (bound {limit:?}), resident {} MiB, peak {} MiB",
                start.elapsed().as_secs_f64() * 1e3,
                rss >> 10,
                peak >> 10
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let took = start.elapsed();
    let out = Output {
        status,
        stdout: std::fs::read(&out_path).expect("read stdout"),
        stderr: std::fs::read(&err_path).expect("read stderr"),
    };
    (out, took, peak)
}

/// `palisade check --format json --profile baseline --policies <component>`
/// over `input`, with `config` if given; compiled components come from the
/// tests' shared cache, which a first run over the good pod alone fills, so
/// the measured run times the evaluation, not cranelift.
fn check(component: &Path, config: Option<&str>, extra: &[&str], input: &str, limit: Duration) -> Measured {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("palisade.yaml");
    if let Some(config) = config {
        std::fs::write(&cfg, config).unwrap();
    }
    let command = |input: &Path| {
        let mut cmd = palisade();
        cmd.args(["check", "--format", "json", "--profile", "baseline"]).args(extra).arg("--policies").arg(component);
        if config.is_some() {
            cmd.arg("--config").arg(&cfg);
        }
        cmd.arg(input);
        cmd
    };
    let warm = dir.path().join("warm.yaml");
    std::fs::write(&warm, INPUT.split("---\n").nth(1).unwrap()).unwrap();
    let (code, report) = json_report(&mut command(&warm));
    assert_eq!(code, 1, "the good pod alone: privileged, and nothing else: {report:#}");
    assert!(errors(&report).is_empty(), "{report:#}");

    let path = dir.path().join("pods.yaml");
    std::fs::write(&path, input).unwrap();
    let (out, took, peak_rss_kib) = run_measured(&mut command(&path), limit);
    let code = out.status.code().unwrap_or_else(|| panic!("palisade was killed: {:?}", out.status));
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not a JSON report ({e}); exit {code}\nstderr: {stderr}"));
    Measured { code, report, stderr, took, peak_rss_kib }
}

fn report_figures(what: &str, m: &Measured) {
    println!(
        "{what}: exit {}, {:.0} ms, peak RSS {:.1} MiB",
        m.code,
        m.took.as_secs_f64() * 1e3,
        m.peak_rss_kib as f64 / 1024.0
    );
}

/// Both bad pods failed with a policy error of `rule` containing `expected`,
/// the good pod was evaluated by it without one, and the built-in rules ran
/// on all three.
fn assert_contained(what: &str, m: &Measured, rule: &str, expected: &str) {
    let report = &m.report;
    assert_eq!(m.code, 2, "{what}: a policy failure must fail the run: {report:#}\n{}", m.stderr);
    let errors = errors(report);
    let failed: Vec<(&str, &str)> =
        errors.iter().map(|e| (e["resource"]["name"].as_str().unwrap(), e["rule"].as_str().unwrap())).collect();
    assert_eq!(failed, [("bad-one", rule), ("bad-two", rule)], "{what}: {errors:#?}");
    for e in errors {
        assert_eq!(e["kind"], "policy", "{what}: {e:#}");
        let message = e["message"].as_str().unwrap();
        assert!(message.contains(expected), "{what}: {e:#}");
        assert!(message.len() < 1000, "{what}: a long error message: {} bytes", message.len());
    }
    for checked in report["resources"].as_array().unwrap() {
        let rules: Vec<&str> = checked["rules"].as_array().unwrap().iter().map(|r| r.as_str().unwrap()).collect();
        assert!(rules.contains(&rule), "{what}: {checked:#} was not evaluated by {rule}");
        assert!(rules.contains(&"pss-privileged"), "{what}: {checked:#} was not checked by the built-in rules");
    }
    let by_resource = rules_by_resource(report);
    for name in ["bad-one", "good"] {
        assert!(
            by_resource[&("Pod".to_string(), name.to_string())].contains("pss-privileged"),
            "{what}: {name} has no pss-privileged finding: {by_resource:?}"
        );
    }
    assert!(
        report["findings"].as_array().unwrap().iter().all(|f| f["rule"] != rule),
        "{what}: {rule} reported findings"
    );
}

fn assert_small(what: &str, m: &Measured) {
    assert!(
        m.peak_rss_kib < MAX_RSS_KIB,
        "{what}: peak RSS {} MiB, over {} MiB",
        m.peak_rss_kib >> 10,
        MAX_RSS_KIB >> 10
    );
}

// ---------------------------------------------------------------------------
// Table elements: a hand-written component that grows its function table.

/// tests/policies/table-grow.wat as a component of world `rule`: the WIT
/// of wit/ embedded in the core module, encoded (and validated) by wit-component.
fn table_grow_component(dir: &Path) -> PathBuf {
    let wat = root().join("tests").join("policies").join("table-grow.wat");
    let mut module = wat::parse_file(&wat).unwrap_or_else(|e| panic!("{}: {e}", wat.display()));
    let mut resolve = wit_parser::Resolve::default();
    let (package, _) = resolve.push_dir(root().join("wit")).expect("parse wit/");
    let world = resolve.select_world(&[package], Some("rule")).expect("world rule");
    wit_component::embed_component_metadata(&mut module, &resolve, world, wit_component::StringEncoding::UTF8, false)
        .expect("embed the WIT");
    let component = wit_component::ComponentEncoder::default()
        .module(&module)
        .and_then(|e| e.validate(true).encode())
        .unwrap_or_else(|e| panic!("encode table-grow as a component: {e:?}"));
    let path = dir.join("table-grow.wasm");
    std::fs::write(&path, component).unwrap();
    path
}

#[test]
fn growing_the_table_hits_the_table_limit() {
    let dir = tempfile::tempdir().unwrap();
    let component = table_grow_component(dir.path());
    let m = check(&component, None, &[], INPUT, Duration::from_secs(5));
    report_figures("table-grow", &m);
    assert_contained("table-grow", &m, "test-table-grow", "exceeded its table limit of 262144 elements");
    assert_small("table-grow", &m);
}

// ---------------------------------------------------------------------------
// Violations: too many in one evaluation, and too long a message.

fn misbehave_config(mode: &str) -> String {
    format!("settings:\n  test-misbehave: {{mode: {mode}}}\n")
}

/// Room for the flood to be built: its million violations take between 64 and
/// 80 MiB of the guest's memory (so at the default 64 MiB it fails on memory
/// first), and 0.5 to 2 s on a loaded machine (the default bound is 1 s).
const FLOOD_ROOM: [&str; 4] = ["--policy-memory-mib", "96", "--policy-timeout-ms", "10000"];

/// The host's share of a flood is the copy wasmtime lifts of the returned
/// list (whole, before its length can be checked, since the guest frees it
/// right after): about as much again as the guest's memory. So a run's peak is
/// bounded by threads × about twice the memory limit, plus the host's own
/// ~60 MiB; with one thread and 96 MiB, under 300 MiB (measured: ~240 MiB;
/// two threads reach ~415 MiB, as the bound predicts).
#[test]
fn a_flood_of_violations_is_an_error() {
    let mut flags = FLOOD_ROOM.to_vec();
    flags.extend(["--threads", "1"]);
    let m = check(
        &testing_component("test-misbehave"),
        Some(&misbehave_config("flood")),
        &flags,
        INPUT,
        Duration::from_secs(10),
    );
    report_figures("flood", &m);
    assert_contained("flood", &m, "test-misbehave", "returned 1000000 violations, over the limit of 1000");
    assert_small("flood", &m);
}

#[test]
fn a_long_message_is_cut() {
    let m = check(
        &testing_component("test-misbehave"),
        Some(&misbehave_config("long")),
        &[],
        INPUT,
        Duration::from_secs(10),
    );
    report_figures("long", &m);
    assert_small("long", &m);
    // Exit 1: the built-in rules' findings on the privileged pods. No error:
    // a long message is cut, not refused.
    assert_eq!(m.code, 1, "{:#}\n{}", m.report, m.stderr);
    assert!(errors(&m.report).is_empty(), "{:#}", m.report);
    let long: Vec<&Value> =
        m.report["findings"].as_array().unwrap().iter().filter(|f| f["rule"] == "test-misbehave").collect();
    let names: Vec<&str> = long.iter().map(|f| f["resource"]["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["bad-one", "bad-two"], "{long:#?}");
    for f in long {
        let message = f["message"].as_str().unwrap();
        println!("long: message of {} bytes, ending {:?}", message.len(), &message[message.len() - 40..]);
        assert!(message.len() <= 4096 + 60, "{} bytes", message.len());
        assert!(message.starts_with(&"x".repeat(4096)), "the kept part is the start of the message");
        assert!(message.ends_with("… (1044480 more bytes cut by the host)"), "{}", &message[4000..]);
        assert_eq!(f["path"], "/spec");
    }
}

/// The same flood through `palisade serve`: the request is refused (fail
/// closed) with the policy's error, and the server stays small and healthy.
#[test]
fn a_flood_of_violations_fails_an_admission_closed() {
    use common::server::*;
    let misbehave = testing_component("test-misbehave");
    let config = format!("profile: baseline\n{}", misbehave_config("flood"));
    let mut extra = vec!["--policies", misbehave.to_str().unwrap()];
    extra.extend(FLOOD_ROOM);
    let server = start(&extra, &config, false);
    let bad = pod("bad-x", "shop", json!({}), json!({}));
    let t = Instant::now();
    let (status, answer) = post(&server, "/validate", &review("f", "CREATE", "shop", bad, Value::Null));
    let took = t.elapsed();
    let hwm = vm_hwm_kib(server.child.id());
    println!(
        "serve flood: HTTP {status} in {:.0} ms, server peak RSS {:.1} MiB",
        took.as_secs_f64() * 1e3,
        hwm as f64 / 1024.0
    );
    assert_eq!(status, 200, "{answer}");
    let r = &answer["response"];
    assert_eq!(r["allowed"], false, "{answer}");
    assert_eq!(r["status"]["code"], 500, "{answer}");
    let message = r["status"]["message"].as_str().unwrap();
    assert!(message.contains("test-misbehave failed"), "{answer}");
    assert!(message.contains("over the limit of 1000"), "{answer}");
    assert!(took < Duration::from_secs(10), "took {took:?}");
    assert!(hwm < MAX_RSS_KIB, "server peak RSS {} MiB", hwm >> 10);
    let fine = pod("fine", "shop", json!({}), json!({}));
    let (_, answer) = post(&server, "/validate", &review("g", "CREATE", "shop", fine, Value::Null));
    assert_eq!(answer["response"]["allowed"], true, "{answer}");
}

/// A live process's peak resident set, from /proc.
fn vm_hwm_kib(pid: u32) -> u64 {
    proc_status_kib(pid, "VmHWM:").expect("VmHWM in /proc/PID/status")
}

/// A field in kB of /proc/PID/status; none once the process is gone.
fn proc_status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| l.strip_prefix(field)).and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}
