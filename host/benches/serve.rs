//! Load benchmark of `palisade serve` (`cargo bench -p palisade --bench serve`,
//! or `just bench-serve`): the real server on loopback with TLS and the whole
//! default policy set, AdmissionReviews sent over keep-alive connections.
//!
//! The body is a Pod as the API server sends it to a validating webhook on
//! CREATE from a ReplicaSet (`fixtures/pod-admission.json`: generated name,
//! owner reference, managed fields, defaults, the projected API token volume,
//! tolerations). Phases: the maximum rate over 2, 4, 8 and 16 connections (the
//! best is the headline), a fixed 1,000 requests/s on 16 connections (p50, p99,
//! p99.9, max), then shorter phases for continuity: the same Pod stripped to
//! 1.9 KB (`pod-admission-stripped.json`) and the hardened Deployment of
//! earlier figures. Each phase says what share of the cores the load generator
//! (this process) and the server took. Latency is measured from each request's
//! scheduled send time, so a stalled server cannot hide its queue.
//!
//! `PALISADE_BENCH_BIN=path` runs another server binary under the same load
//! (an A/B against an earlier build).

#[path = "../../tests/common/mod.rs"]
mod common;

#[path = "load/mod.rs"]
mod load;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use common::server::*;
use load::{Cpu, Summary, load, memory_mib, summary};
use serde_json::{Value, json};

/// Only the status: 200.
fn status_ok(status: u16, _: &[u8]) {
    assert_eq!(status, 200);
}

fn fixture(name: &str) -> Arc<Vec<u8>> {
    let path = common::root().join("host/benches/fixtures").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let review: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    // As the API server sends it: compact.
    Arc::new(review.to_string().into_bytes())
}

fn shell(program: &str, args: &[&str]) -> String {
    std::process::Command::new(program)
        .args(args)
        .current_dir(common::root())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

/// The command, the commit, the binary and the machine, printed before any figure.
fn preamble() -> String {
    let mut command = "cargo bench -p palisade --bench serve".to_string();
    let binary = match std::env::var("PALISADE_BENCH_BIN") {
        Ok(bin) => {
            command = format!("PALISADE_BENCH_BIN={bin} {command}");
            bin
        }
        Err(_) => env!("CARGO_BIN_EXE_palisade").to_string(),
    };
    let mut commit = shell("git", &["rev-parse", "--short", "HEAD"]);
    if !shell("git", &["status", "--porcelain", "--untracked-files=no"]).is_empty() {
        commit.push_str(" + uncommitted changes");
    }
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name").and_then(|r| r.split_once(':')).map(|(_, m)| m.trim()))
        .unwrap_or("unknown CPU");
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("command: {command}");
    println!("commit {commit}; server binary {binary}");
    println!("machine: {cores} cores, {model}; load average {}", shell("cat", &["/proc/loadavg"]));
    format!("[{command} @ {commit}]")
}

/// `palisade_evaluations_total` of /validate, summed by result.
fn evaluations(server: &Server) -> BTreeMap<String, u64> {
    let (_, text) = get(server, "/metrics");
    let mut by_result = BTreeMap::new();
    for line in text.lines().filter(|l| l.starts_with("palisade_evaluations_total{endpoint=\"validate\"")) {
        let Some((labels, value)) = line.rsplit_once(' ') else { continue };
        let result = labels.split("result=\"").nth(1).and_then(|r| r.split('"').next()).unwrap_or("?");
        *by_result.entry(result.to_string()).or_insert(0) += value.parse::<u64>().unwrap_or(0);
    }
    by_result
}

fn line(label: &str, s: &Summary, cpu: &str, tag: &str) {
    println!(
        "{label}: {} requests, {:.0} requests/s, p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms; {cpu} {tag}",
        s.requests, s.rate, s.p50, s.p99, s.p999, s.max
    );
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` runs it once, quickly.
    let quick = !std::env::args().any(|a| a == "--bench");
    let tag = preamble();
    // Start and stop a server once, so the compile cache is warm and the
    // measured server's peak memory is serving, not compiling.
    drop(start(&[], "profile: hardened\n", false));
    let (mut server, stderr) = start_logged(&[], "profile: hardened\n", false, None);
    let pid = server.child.id();
    // The decision log: read it, as a log shipper would.
    if let Some(mut out) = server.stdout.take() {
        std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
    }
    let ready = wait_for_line(&stderr, |l| l["msg"] == "ready");

    let pod = fixture("pod-admission.json");
    let stripped = fixture("pod-admission-stripped.json");
    let text = std::fs::read_to_string(common::root().join("examples/hardened-deployment.yaml")).unwrap();
    let deployment = palisade::documents::read_documents(&text, &Default::default()).remove(0).content.unwrap().value;
    let mut review = review("bench", "CREATE", "shop", deployment, Value::Null);
    review["request"]["kind"] = json!({"group": "apps", "version": "v1", "kind": "Deployment"});
    let deployment = Arc::new(review.to_string().into_bytes());

    // What one Pod request runs, from the server's own counters.
    let before = evaluations(&server);
    let (status, _) = load::Conn::open(&server.addr, client_config(&server.pki, None)).post(&pod);
    status_ok(status, &[]);
    let after = evaluations(&server);
    let per: BTreeMap<&String, u64> = after.iter().map(|(k, v)| (k, v - before.get(k).copied().unwrap_or(0))).collect();
    println!(
        "Pod AdmissionReview (CREATE from a ReplicaSet), {} bytes; stripped Pod {} bytes; Deployment {} bytes",
        pod.len(),
        stripped.len(),
        deployment.len()
    );
    println!(
        "policy set: hardened profile, {} rules loaded; one Pod request (from /metrics): {}",
        ready["rules"],
        per.iter().map(|(k, v)| format!("{v} {k}")).collect::<Vec<_>>().join(", ")
    );

    let seconds = if quick { 1 } else { 10 };
    let duration = Duration::from_secs(seconds);
    let short = Duration::from_secs(if quick { 1 } else { 5 });
    // Warm every pooled instance set.
    let _ = load(&server, &pod, 16, None, Duration::from_millis(if quick { 200 } else { 2000 }), status_ok);

    let mut best = (0.0, 0);
    for connections in if quick { vec![2, 8] } else { vec![2, 4, 8, 16] } {
        let cpu = Cpu::now(pid);
        let s = summary(&load(&server, &pod, connections, None, duration, status_ok), duration);
        line(&format!("Pod, maximum rate, {connections} connections"), &s, &cpu.shares_since(pid), &tag);
        if s.rate > best.0 {
            best = (s.rate, connections);
        }
    }
    println!("Pod, maximum rate: {:.0} requests/s at {} connections (aim >= 4400) {tag}", best.0, best.1);

    let cpu = Cpu::now(pid);
    let s = summary(&load(&server, &pod, 16, Some(1000.0), duration, status_ok), duration);
    line("Pod, fixed rate 1000/s, 16 connections", &s, &cpu.shares_since(pid), &tag);
    println!("Pod, p99 at 1000/s: {:.2} ms (aim <= 5 ms) {tag}", s.p99);

    let cpu = Cpu::now(pid);
    let s = summary(&load(&server, &stripped, best.1, None, short, status_ok), short);
    line(&format!("stripped Pod, maximum rate, {} connections", best.1), &s, &cpu.shares_since(pid), &tag);

    let cpu = Cpu::now(pid);
    let s = summary(&load(&server, &deployment, 8, None, short, status_ok), short);
    line("Deployment, maximum rate, 8 connections", &s, &cpu.shares_since(pid), &tag);

    let hwm = memory_mib(pid, "VmHWM").unwrap_or(0.0);
    let rss = memory_mib(pid, "VmRSS").unwrap_or(0.0);
    println!("server memory: peak resident {hwm:.1} MiB (aim < 150), resident now {rss:.1} MiB {tag}");
}
