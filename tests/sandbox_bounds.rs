//! The sandbox's bounds on what a policy can make the host hold: table
//! elements, the number of violations one evaluation returns, and the size of
//! each message. A policy that goes past one is an error for that resource and
//! rule, the run goes on, and it stays fast and small.
//!
//! Each run is measured: wall time against a bound, and the process's peak
//! resident set (`ru_maxrss` from `wait4`, so no tool or package is needed).

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::measure::{proc_status_kib, run_measured};
use common::*;
use serde_json::{Value, json};

/// Peak resident set a run may reach.
const MAX_RSS_KIB: u64 = 300 << 10;
/// Resident set at which a run is killed rather than left to eat the machine.
const KILL_RSS_KIB: u64 = 1 << 20;

struct Checked {
    code: i32,
    report: Value,
    stderr: String,
    took: Duration,
    peak_rss_kib: u64,
}

/// `palisade check --format json --profile baseline --policies <component>`
/// over `input`, with `config` if given; compiled components come from the
/// tests' shared cache, which a first run over the good pod alone fills, so
/// the measured run times the evaluation, not cranelift.
fn check(component: &Path, config: Option<&str>, extra: &[&str], input: &str, limit: Duration) -> Checked {
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
    std::fs::write(&warm, THREE_PODS.split("---\n").nth(1).unwrap()).unwrap();
    let (code, report) = json_report(&mut command(&warm));
    assert_eq!(code, 1, "the good pod alone: privileged, and nothing else: {report:#}");
    assert!(errors(&report).is_empty(), "{report:#}");

    let path = dir.path().join("pods.yaml");
    std::fs::write(&path, input).unwrap();
    let m = run_measured(&mut command(&path), limit, KILL_RSS_KIB);
    let code = m.code().unwrap_or_else(|| panic!("palisade was killed: {:?}", m.out.status));
    let stderr = m.stderr();
    let report: Value = serde_json::from_slice(&m.out.stdout)
        .unwrap_or_else(|e| panic!("not a JSON report ({e}); exit {code}\nstderr: {stderr}"));
    Checked { code, report, stderr, took: m.took, peak_rss_kib: m.peak_rss_kib }
}

fn report_figures(what: &str, m: &Checked) {
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
fn assert_contained(what: &str, m: &Checked, rule: &str, expected: &str) {
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

fn assert_small(what: &str, m: &Checked) {
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
/// of the 0.2.0 contract it was written for (wit/compat/0.2.0, which the host
/// still runs) embedded in the core module, encoded (and validated) by wit-component.
fn table_grow_component(dir: &Path) -> PathBuf {
    let wat = root().join("tests").join("policies").join("table-grow.wat");
    let mut module = wat::parse_file(&wat).unwrap_or_else(|e| panic!("{}: {e}", wat.display()));
    let mut resolve = wit_parser::Resolve::default();
    let (package, _) =
        resolve.push_dir(root().join("wit").join("compat").join("0.2.0")).expect("parse wit/compat/0.2.0");
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
    let m = check(&component, None, &[], THREE_PODS, Duration::from_secs(5));
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
        THREE_PODS,
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
        THREE_PODS,
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
    assert!(message.contains("[test-misbehave] could not evaluate"), "{answer}");
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
