//! Image signature benchmark (`cargo bench -p palisade --bench images`, or
//! `just bench-images`), on a real registry (Debian's docker-registry on
//! loopback) with images signed by the test Sigstore instance:
//!
//! 1. the first verification of an image through the library, in process: a
//!    fresh `Verifier` per round, so nothing is cached (resolve the digest,
//!    fetch the signatures, verify them), for a key-signed image and keyless
//!    ones (legacy `.sig` tag and Sigstore bundle referrer); then the cached
//!    `verify` of the same `Verifier`;
//! 2. the latency a cached verdict adds at admission: `palisade serve` with
//!    the whole default policy set and a trust policy covering the signed
//!    image, against the same server with no `imageVerification` (the rule
//!    inactive). A Pod AdmissionReview using the signed image, verified once
//!    (the warm-up request), then sent at a fixed rate over keep-alive TLS
//!    connections (500/s, or `PALISADE_BENCH_RATE`), the two servers
//!    alternating in one-second slices; then one request at a time on one
//!    connection (the time the server takes, without queueing). Every answer
//!    must allow the Pod, and none may verify again (the cache-miss counter).
//!
//! Skipped, saying so, when the build found no docker-registry
//! (`host/build/tools.rs`); a failure under `CI` or `PALISADE_REQUIRE_TOOLS`,
//! as in the tests.

#[path = "../../tests/common/mod.rs"]
mod common;
#[path = "load/mod.rs"]
mod load;
#[path = "../../tests/common/sigstore.rs"]
mod sigstore;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::server::{Server, get, review, start};
use load::{load, percentile, report};
use palisade::images::{Mode, PolicyMatch, Verifier, policy::ImageVerificationConfig};
use serde_json::{Value, json};
use sigstore::*;

/// The server flags: the test registry is plain HTTP.
const SERVE_FLAGS: [&str; 1] = ["--insecure"];
const MISSES: &str = "palisade_image_verification_cache_misses_total";
const HITS: &str = "palisade_image_verification_cache_hits_total";

/// An admission answer: 200 and the Pod allowed. Anything else means the
/// benchmark measures the wrong thing.
fn allowed(status: u16, body: &[u8]) {
    let answer: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    assert!(
        status == 200 && answer["response"]["allowed"] == true,
        "the benchmark Pod was not admitted (status {status}): {}",
        String::from_utf8_lossy(body)
    );
}

/// The sum of a counter's samples in `/metrics`.
fn counter(server: &Server, name: &str) -> f64 {
    let (status, metrics) = get(server, "/metrics");
    assert_eq!(status, 200, "{metrics}");
    metrics
        .lines()
        .filter(|l| l.split(['{', ' ']).next() == Some(name))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// A Pod as a ReplicaSet of the hardened example Deployment makes it (about
/// 1.8 KB as an AdmissionReview), running `image`.
fn pod(image: &str) -> Value {
    let text = std::fs::read_to_string(common::root().join("examples/hardened-deployment.yaml")).unwrap();
    let deployment = palisade::documents::read_documents(&text, &Default::default()).remove(0).content.unwrap().value;
    let mut spec = deployment["spec"]["template"]["spec"].clone();
    spec["containers"][0]["image"] = image.into();
    spec["nodeName"] = "worker-3".into();
    spec["serviceAccountName"] = "default".into();
    spec["restartPolicy"] = "Always".into();
    spec["dnsPolicy"] = "ClusterFirst".into();
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "web-hardened-7d9f8b6c5d-x2k4q",
            "namespace": "shop",
            "uid": "5b0c6f4e-1f0a-4d1e-9a57-3c2f3b1d9e11",
            "labels": {"app": "web-hardened", "pod-template-hash": "7d9f8b6c5d"},
            "ownerReferences": [{
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "name": "web-hardened-7d9f8b6c5d",
                "uid": "0e6f1c2a-8b3d-4c5e-a7f9-1d2b3c4e5f60",
                "controller": true,
                "blockOwnerDeletion": true,
            }],
        },
        "spec": spec,
    })
}

/// Median and p99 of `samples` (sorted here).
fn quantiles(samples: &mut [Duration]) -> (Duration, Duration) {
    samples.sort();
    let at = |p: f64| samples[((samples.len() as f64 - 1.0) * p).round() as usize];
    (at(0.5), at(0.99))
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` runs it once, quickly.
    let quick = !std::env::args().any(|a| a == "--bench");
    if cfg!(palisade_missing_registry) {
        println!("images benchmark skipped: docker-registry is not installed (apt-get install docker-registry)");
        return;
    }
    let fx = Fixture::start();
    let started = Instant::now();

    // Three signed images: a cosign key (with a Rekor entry, cosign's
    // default), keyless with the legacy .sig tag, keyless as a bundle referrer.
    let key = Key::p256();
    let key_file = fx.dir.path().join("cosign.pub");
    key.write_public(&key_file);
    let keyed = fx.push("signed/app", "v1");
    attach_signatures(&keyed, &[fx.sigstore.sign_with_key(&key, &keyed.payload(), true)]);
    let leaf = fx.sigstore.leaf(&Identity::new(ISSUER, WORKFLOW));
    let legacy = fx.push("keyless/legacy", "v1");
    attach_signatures(&legacy, &[fx.sigstore.sign_keyless(&leaf, &legacy.payload(), Some(now() - 60))]);
    let bundled = fx.push("keyless/bundled", "v1");
    attach_bundles(
        &bundled,
        &[(fx.sigstore.bundle(&leaf, &bundled, COSIGN3_BUNDLE_CONTENT, now() - 60), COSIGN3_BUNDLE_CONTENT)],
    );
    let verification = json!({
        "trustedRoot": [fx.sigstore.trusted_root_path()],
        "policies": [
            {"name": "prod", "images": ["127.0.0.1:*/signed/*"], "keys": [key_file]},
            {"name": "release", "images": ["127.0.0.1:*/keyless/*"], "keyless": [{"issuer": ISSUER, "subject": WORKFLOW}]},
        ],
    });

    // 1. In process: the first verification (a fresh Verifier each round), then cached.
    let config: ImageVerificationConfig = serde_json::from_value(verification.clone()).unwrap();
    let mode = Mode {
        requested: true,
        offline: false,
        registry: palisade::bundle::registry::Options { insecure: true, ca_files: Vec::new() },
        store_dir: None,
        layouts: Vec::new(),
    };
    let fresh = || Verifier::new(Some(&config), fx.dir.path(), mode.clone()).unwrap();
    let cases = [
        ("key-signed (cosign key, .sig tag)", keyed.pinned(), "prod"),
        ("keyless (Fulcio cert, .sig tag)", legacy.pinned(), "release"),
        ("keyless (Sigstore bundle referrer)", bundled.pinned(), "release"),
    ];
    let verify = |verifier: &Verifier, image: &str, policy: &str| {
        let deadline = Some(Instant::now() + Duration::from_secs(30));
        let verdict = verifier.verify(image, policy, deadline);
        assert!(verdict.is_ok(), "{image} did not verify under {policy}: {verdict:?}");
    };
    for (_, image, policy) in &cases {
        assert_eq!(fresh().policy_for(image, Some("shop")), PolicyMatch::Matched(policy.to_string()), "{image}");
        verify(&fresh(), image, policy); // one round uncounted: the process's own first-use costs
    }
    let rounds = if quick { 3 } else { 50 };
    let mut first: Vec<Vec<Duration>> = vec![Vec::new(); cases.len()];
    for _ in 0..rounds {
        for ((_, image, policy), samples) in cases.iter().zip(&mut first) {
            let verifier = fresh();
            let t = Instant::now();
            verify(&verifier, image, policy);
            samples.push(t.elapsed());
        }
    }
    let verifier = fresh();
    let (_, image, policy) = &cases[0];
    verify(&verifier, image, policy);
    let calls = if quick { 1_000 } else { 20_000 };
    let mut cached: Vec<Duration> = (0..calls)
        .map(|_| {
            let t = Instant::now();
            verify(&verifier, image, policy);
            t.elapsed()
        })
        .collect();
    assert_eq!(verifier.metrics.misses.load(std::sync::atomic::Ordering::Relaxed), 1, "cached calls missed the cache");

    // 2. Admission: the whole default policy set, with and without the trust policy.
    let with =
        start(&SERVE_FLAGS, &json!({"profile": "hardened", "imageVerification": verification}).to_string(), false);
    let without = start(&SERVE_FLAGS, &json!({"profile": "hardened"}).to_string(), false);
    let mut servers = [with, without];
    for server in &mut servers {
        // The decision log: read it, as a log shipper would.
        if let Some(mut out) = server.stdout.take() {
            std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
        }
    }
    let review = review("bench", "CREATE", "shop", pod(&keyed.pinned()), Value::Null);
    let body = Arc::new(review.to_string().into_bytes());
    // The one request that verifies (a cache miss); every later one is a hit.
    for server in &servers {
        let mut conn = load::Conn::open(&server.addr, common::server::client_config(&server.pki, None));
        let (status, answer) = conn.post(&body);
        allowed(status, &answer);
    }
    let misses = counter(&servers[0], MISSES);
    assert_eq!(misses, 1.0, "the warm-up request should be the only verification");
    assert_eq!(counter(&servers[1], MISSES), 0.0, "the server without imageVerification verified an image");
    // Warm every worker thread's instances, on both.
    for server in &servers {
        let _ = load(server, &body, 8, None, Duration::from_millis(if quick { 200 } else { 1000 }), allowed);
    }
    // Fixed rate: the two servers alternate in one-second slices (ABBA), so
    // what else the machine does falls on both alike; p99 over all slices.
    let rate: f64 = std::env::var("PALISADE_BENCH_RATE").ok().and_then(|r| r.parse().ok()).unwrap_or(500.0);
    let connections = 8;
    let slice = Duration::from_secs(1);
    let slices = if quick { 2 } else { 20 };
    let labels = ["image-signature active (cached verdict)", "image-signature inactive"];
    let mut latencies: [Vec<Duration>; 2] = Default::default();
    let mut slice_p99: [Vec<f64>; 2] = Default::default();
    for k in 0..slices {
        let order = if k % 2 == 0 { [0, 1] } else { [1, 0] };
        for i in order {
            let run = load(&servers[i], &body, connections, Some(rate), slice, allowed);
            slice_p99[i].push(percentile(&run, 0.99));
            latencies[i].extend(run);
        }
    }
    for (i, run) in latencies.iter_mut().enumerate() {
        run.sort();
        report(&format!("{}, {rate:.0}/s", labels[i]), run, slice * slices);
    }
    // One request at a time on one connection: the time each request takes
    // the server, without queueing (alternating in blocks of 100).
    let requests = if quick { 200 } else { 3000 };
    let mut sequential: [Vec<Duration>; 2] = Default::default();
    let mut conns: Vec<load::Conn> =
        servers.iter().map(|s| load::Conn::open(&s.addr, common::server::client_config(&s.pki, None))).collect();
    for k in 0..requests / 100 {
        let order = if k % 2 == 0 { [0, 1] } else { [1, 0] };
        for i in order {
            for _ in 0..100 {
                let t = Instant::now();
                let (status, answer) = conns[i].post(&body);
                sequential[i].push(t.elapsed());
                allowed(status, &answer);
            }
        }
    }
    for run in &mut sequential {
        run.sort();
    }
    assert_eq!(counter(&servers[0], MISSES), misses, "a request under load verified again (cache miss)");
    let hits = counter(&servers[0], HITS);
    assert!(hits >= latencies[0].len() as f64, "{hits} cache hits for {} requests", latencies[0].len());

    // The summary.
    println!();
    println!("Image signatures: loopback docker-registry, {rounds} rounds, a fresh Verifier each");
    println!("{:<50} {:>10} {:>10}", "first verification (resolve, fetch, verify)", "median", "p99");
    for ((label, _, _), samples) in cases.iter().zip(&mut first) {
        let (median, p99) = quantiles(samples);
        println!("  {label:<48} {:>7.2} ms {:>7.2} ms", ms(median), ms(p99));
    }
    let (median, p99) = quantiles(&mut cached);
    println!(
        "  {:<48} {:>7.2} µs {:>7.2} µs",
        format!("cached verify, same Verifier ({calls} calls)"),
        median.as_secs_f64() * 1e6,
        p99.as_secs_f64() * 1e6
    );
    println!();
    println!(
        "Admission: a Pod AdmissionReview of {} bytes (signed image, by digest), hardened profile (every default rule)",
        body.len()
    );
    let table = |title: String, runs: &[Vec<Duration>; 2]| {
        println!("{title:<50} {:>10} {:>10} {:>9}", "p50", "p99", "requests");
        for (label, run) in labels.iter().zip(runs) {
            println!(
                "  {label:<48} {:>7.2} ms {:>7.2} ms {:>9}",
                percentile(run, 0.50),
                percentile(run, 0.99),
                run.len()
            );
        }
        let added = |p| percentile(&runs[0], p) - percentile(&runs[1], p);
        println!("  {:<48} {:>7.2} ms {:>7.2} ms", "added", added(0.50), added(0.99));
        added(0.99)
    };
    let added_p99 =
        table(format!("{rate:.0} requests/s, {connections} TLS connections, {slices} × 1 s each"), &latencies);
    let spread = |v: &[f64]| {
        let (lo, hi) = v.iter().fold((f64::MAX, 0.0f64), |(lo, hi), x| (lo.min(*x), hi.max(*x)));
        format!("{lo:.1}–{hi:.1} ms")
    };
    println!("  (p99 of single 1-s slices: active {}, inactive {})", spread(&slice_p99[0]), spread(&slice_p99[1]));
    table(format!("one request at a time, 1 connection, {requests} each"), &sequential);
    println!(
        "added p99 at {rate:.0} requests/s under 1 ms: {} (every answer allowed; 1 verification, {hits:.0} cache hits)",
        if added_p99 < 1.0 { "yes" } else { "NO" },
    );
    println!("(benchmark run time {:.0} s)", started.elapsed().as_secs_f64());
}
