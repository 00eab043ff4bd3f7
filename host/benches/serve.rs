//! Load benchmark of `palisade serve` (`cargo bench -p palisade --bench serve`,
//! or `just bench-serve`): the real server on loopback with TLS and the whole
//! default policy set, AdmissionReviews of a realistic Deployment sent over
//! keep-alive connections, at a fixed rate and then as fast as possible.
//! Latency is measured from each request's scheduled send time, so a stalled
//! server cannot hide its queue. Prints requests/s, p50/p95/p99 and the
//! server's peak resident memory.

#[path = "../../tests/common/mod.rs"]
mod common;

#[path = "load/mod.rs"]
mod load;

use std::sync::Arc;
use std::time::Duration;

use common::server::*;
use load::{load, report};
use serde_json::{Value, json};

/// Only the status: 200.
fn status_ok(status: u16, _: &[u8]) {
    assert_eq!(status, 200);
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` runs it once, quickly.
    let quick = !std::env::args().any(|a| a == "--bench");
    let mut server = start(&[], "profile: hardened\n", false);
    // The decision log: read it, as a log shipper would.
    if let Some(mut out) = server.stdout.take() {
        std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
    }
    let text = std::fs::read_to_string(common::root().join("examples/hardened-deployment.yaml")).unwrap();
    let deployment = palisade::documents::read_documents(&text, &Default::default()).remove(0).content.unwrap().value;
    let mut review = review("bench", "CREATE", "shop", deployment, Value::Null);
    review["request"]["kind"] = json!({"group": "apps", "version": "v1", "kind": "Deployment"});
    let body = Arc::new(review.to_string().into_bytes());
    println!("AdmissionReview of a Deployment, {} bytes, hardened profile (41 rules)", body.len());

    let seconds = if quick { 1 } else { 10 };
    let duration = Duration::from_secs(seconds);
    // Warm every worker thread's instances.
    let _ = load(&server, &body, 8, None, Duration::from_millis(if quick { 200 } else { 2000 }), status_ok);
    let fixed = load(&server, &body, 16, Some(1000.0), duration, status_ok);
    report("fixed rate 1000/s, 16 connections", &fixed, duration);
    let max = load(&server, &body, 8, None, duration, status_ok);
    report("maximum rate, 8 connections", &max, duration);

    let status = std::fs::read_to_string(format!("/proc/{}/status", server.child.id())).unwrap_or_default();
    if let Some(line) = status.lines().find(|l| l.starts_with("VmHWM:")) {
        let kib: f64 = line.split_whitespace().nth(1).and_then(|v| v.parse().ok()).unwrap_or(0.0);
        println!("server peak resident memory: {:.1} MiB", kib / 1024.0);
    }
}
