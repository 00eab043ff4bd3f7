//! Image signatures in `palisade serve`: the admission webhook, the
//! Gatekeeper provider and the Kyverno service verify the images of the
//! workloads they are sent against a real registry (Debian's docker-registry
//! on loopback), cache what they verified, and deny when they cannot verify
//! (fail closed).

mod common;
#[path = "common/sigstore.rs"]
mod sigstore;

use std::path::Path;
use std::time::Duration;

use common::registry::{Mode, Registry};
use common::server::{Pki, Server, get, post, review, start};
use serde_json::{Value, json};
use sigstore::*;

/// `palisade serve` flags for the test registry (plain HTTP).
fn serve_flags() -> [&'static str; 1] {
    ["--insecure"]
}
const HITS: &str = "palisade_image_verification_cache_hits_total";
const MISSES: &str = "palisade_image_verification_cache_misses_total";

/// The sum of a counter's samples (every label set), or None when absent.
fn counter(metrics: &str, name: &str) -> Option<f64> {
    let samples: Vec<f64> = metrics
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let metric = series.split('{').next()?;
            (metric == name).then(|| value.parse::<f64>().ok()).flatten()
        })
        .collect();
    (!samples.is_empty()).then(|| samples.iter().sum())
}

fn counters(server: &Server) -> (f64, f64) {
    let (status, metrics) = get(server, "/metrics");
    assert_eq!(status, 200);
    (counter(&metrics, HITS).unwrap_or(0.0), counter(&metrics, MISSES).unwrap_or(0.0))
}

/// A server configuration (JSON is YAML) with absolute paths: the server
/// helper writes it in a directory of its own.
fn config(sigstore: &Sigstore, key_file: &Path) -> String {
    json!({
        "disable": other_rules(),
        "imageVerification": {
            "trustedRoot": [sigstore.trusted_root_path()],
            "policies": [{"name": "prod", "images": ["127.0.0.1:*/signed/**"], "keys": [key_file]}],
        },
    })
    .to_string()
}

fn admit(server: &Server, uid: &str, pod: Value) -> Value {
    let (status, answer) = post(server, "/validate", &review(uid, "CREATE", "prod", pod, Value::Null));
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["response"]["uid"], uid);
    answer["response"].clone()
}

/// Denied, with a message naming the rule, the image and each of `expected`.
fn assert_denied(response: &Value, image: &str, expected: &[&str]) {
    assert_eq!(response["allowed"], false, "{response:#}");
    let message = response["status"]["message"].as_str().unwrap_or_default();
    for text in [RULE, image].iter().chain(expected) {
        assert!(message.contains(text), "the denial should name {text:?}: {message}");
    }
}

/// Denied for a finding: 403, and the image field as the cause.
fn assert_denied_for_finding(response: &Value, image: &str, expected: &[&str]) {
    assert_denied(response, image, expected);
    assert_eq!(response["status"]["code"], 403, "{response:#}");
    let causes = response["status"]["details"]["causes"].as_array().expect("causes");
    assert!(causes.iter().any(|c| c["field"] == "spec.containers[0].image"), "{response:#}");
}

/// A test Sigstore instance and a cosign key pair, its public key written
/// to a file of the returned directory (kept alive by the caller).
fn key_setup() -> (Sigstore, Key, std::path::PathBuf, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let key = Key::p256();
    let key_file = dir.path().join("cosign.pub");
    key.write_public(&key_file);
    (Sigstore::new(), key, key_file, dir)
}

/// Every test pushes images under tags of its own: the server keeps its
/// cache in the shared test cache directory.
fn tag() -> String {
    format!("v1-{}", nonce())
}

#[test]
#[cfg_attr(palisade_missing_registry, ignore = "docker-registry is not installed: apt-get install docker-registry")]
fn signed_images_are_admitted_unsigned_ones_denied_and_verifications_cached() {
    let registry = Registry::start(Mode::Http);
    let (sigstore, key, key_file, _dir) = key_setup();
    let signed = push_image(&registry.addr, "signed/app", &tag());
    attach_signatures(&signed, &[sigstore.sign_with_key(&key, &signed.payload(), true)]);
    let unsigned = push_image(&registry.addr, "signed/unsigned", &tag());
    let server = start(&serve_flags(), &config(&sigstore, &key_file), false);

    let (hits0, misses0) = counters(&server);
    let response = admit(&server, "signed-1", pod("signed", "prod", &signed.reference()));
    assert_eq!(response["allowed"], true, "{response:#}");
    let (hits1, misses1) = counters(&server);
    assert!(misses1 > misses0, "the first verification is a cache miss ({misses0} → {misses1})");

    // The same image again: answered from the cache.
    let response = admit(&server, "signed-2", pod("signed-again", "prod", &signed.reference()));
    assert_eq!(response["allowed"], true, "{response:#}");
    let (hits2, _) = counters(&server);
    assert!(hits2 > hits1, "the second verification is a cache hit ({hits1} → {hits2})");
    let (_, metrics) = get(&server, "/metrics");
    assert!(counter(&metrics, HITS).is_some() && counter(&metrics, MISSES).is_some(), "{metrics}");
    let _ = hits0;

    let response = admit(&server, "unsigned", pod("unsigned", "prod", &unsigned.reference()));
    assert_denied_for_finding(&response, &unsigned.reference(), &["prod", "no signature"]);

    // The Gatekeeper external data provider answers the same.
    let signed_pod = pod("signed", "prod", &signed.reference());
    let unsigned_pod = pod("unsigned", "prod", &unsigned.reference());
    let request = json!({
        "apiVersion": "externaldata.gatekeeper.sh/v1beta1",
        "kind": "ProviderRequest",
        "request": {"keys": [signed_pod.to_string(), unsigned_pod.to_string()]},
    });
    let (status, answer) = post(&server, "/gatekeeper/v1/provider", &request);
    assert_eq!(status, 200, "{answer}");
    let items = answer["response"]["items"].as_array().unwrap_or_else(|| panic!("{answer:#}"));
    assert_eq!(items.len(), 2, "{answer:#}");
    assert_eq!(items[0]["value"], json!([]), "{answer:#}");
    let violations = items[1]["value"].as_array().unwrap_or_else(|| panic!("{answer:#}"));
    assert!(violations.iter().any(|v| v["rule"] == RULE), "{answer:#}");

    // And the Kyverno service.
    let (status, answer) =
        post(&server, "/kyverno/v1/validate", &json!({"object": unsigned_pod, "operation": "CREATE"}));
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["allowed"], false, "{answer:#}");
    let violation = answer["violations"].as_array().unwrap().iter().find(|v| v["rule"] == RULE).expect("a violation");
    assert_eq!(violation["path"], "/spec/containers/0/image");
    assert!(answer["message"].as_str().unwrap().contains(&unsigned.reference()), "{answer:#}");
    let (_, answer) = post(&server, "/kyverno/v1/validate", &json!({"object": signed_pod, "operation": "CREATE"}));
    assert_eq!(answer["allowed"], true, "{answer:#}");
    assert_eq!(answer["violations"], json!([]));
}

#[test]
#[cfg_attr(palisade_missing_registry, ignore = "docker-registry is not installed: apt-get install docker-registry")]
fn keyless_signatures_are_admitted_by_identity() {
    let registry = Registry::start(Mode::Http);
    let sigstore = Sigstore::new();
    let leaf = sigstore.leaf(&Identity::new(ISSUER, WORKFLOW));
    let legacy = push_image(&registry.addr, "signed/legacy", &tag());
    attach_signatures(&legacy, &[sigstore.sign_keyless(&leaf, &legacy.payload(), Some(now() - 60))]);
    let bundled = push_image(&registry.addr, "signed/bundled", &tag());
    attach_bundles(
        &bundled,
        &[(sigstore.bundle(&leaf, &bundled, COSIGN3_BUNDLE_CONTENT, now() - 60), COSIGN3_BUNDLE_CONTENT)],
    );
    let stranger = push_image(&registry.addr, "signed/stranger", &tag());
    let stranger_leaf = sigstore.leaf(&Identity::new(ISSUER, "mallory@palisade.test"));
    attach_signatures(&stranger, &[sigstore.sign_keyless(&stranger_leaf, &stranger.payload(), Some(now() - 60))]);
    let config = json!({
        "disable": other_rules(),
        "imageVerification": {
            "trustedRoot": [sigstore.trusted_root_path()],
            "policies": [{"name": "release", "images": ["127.0.0.1:*/signed/*"], "keyless": [{"issuer": ISSUER, "subject": WORKFLOW}]}],
        },
    });
    let server = start(&serve_flags(), &config.to_string(), false);
    let response = admit(&server, "legacy", pod("legacy", "prod", &legacy.reference()));
    assert_eq!(response["allowed"], true, "{response:#}");
    let response = admit(&server, "bundled", pod("bundled", "prod", &bundled.reference()));
    assert_eq!(response["allowed"], true, "{response:#}");
    let response = admit(&server, "stranger", pod("stranger", "prod", &stranger.reference()));
    assert_denied_for_finding(&response, &stranger.reference(), &["release", "identity mismatch"]);
}

#[test]
#[cfg_attr(palisade_missing_registry, ignore = "docker-registry is not installed: apt-get install docker-registry")]
fn a_registry_that_is_down_fails_closed_for_images_not_yet_verified() {
    let mut registry = Registry::start(Mode::Http);
    let (sigstore, key, key_file, _dir) = key_setup();
    let first = push_image(&registry.addr, "signed/first", &tag());
    attach_signatures(&first, &[sigstore.sign_with_key(&key, &first.payload(), true)]);
    // Signed as well, but never asked about before the registry goes away.
    let second = push_image(&registry.addr, "signed/second", &tag());
    attach_signatures(&second, &[sigstore.sign_with_key(&key, &second.payload(), true)]);
    let server = start(&serve_flags(), &config(&sigstore, &key_file), false);

    let response = admit(&server, "first", pod("first", "prod", &first.reference()));
    assert_eq!(response["allowed"], true, "{response:#}");

    registry.stop();
    let started = std::time::Instant::now();
    let response = admit(&server, "second", pod("second", "prod", &second.reference()));
    // The rule could not decide: failurePolicy fail (the default) denies, with code 500.
    assert_denied(&response, &second.reference(), &["prod", "unreachable"]);
    assert_eq!(response["status"]["code"], 500, "{response:#}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "a refused connection should not take {:?}",
        started.elapsed()
    );
    // The server is still healthy.
    assert_eq!(get(&server, "/healthz").0, 200);
}

#[test]
fn a_malformed_trust_policy_keeps_the_server_from_starting() {
    let pki = Pki::new();
    let config = pki.path("palisade.yaml");
    std::fs::write(
        &config,
        json!({"imageVerification": {"trustedRoot": ["nowhere.json"], "policies": [{"name": "prod", "images": ["**"], "keys": ["missing.pub"]}]}})
            .to_string(),
    )
    .unwrap();
    let mut cmd = common::palisade();
    cmd.args(["serve", "--addr", "127.0.0.1:0", "--tls-cert"])
        .arg(pki.path("server.pem"))
        .arg("--tls-key")
        .arg(pki.path("server-key.pem"))
        .arg("--config")
        .arg(&config)
        .args(serve_flags());
    let out = common::run_within(&mut cmd, Duration::from_secs(60));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("nowhere.json") || stderr.contains("missing.pub"), "{stderr}");
    assert!(!stderr.contains(r#""msg":"listening""#), "{stderr}");
}

/// A tag pushed again is resolved again once its verdict's TTL has passed:
/// the cache never vouches for a tag longer than `cache.ttlSeconds`.
#[test]
#[cfg_attr(palisade_missing_registry, ignore = "docker-registry is not installed: apt-get install docker-registry")]
fn a_tag_pushed_again_is_resolved_again_after_the_ttl() {
    let registry = Registry::start(Mode::Http);
    let (sigstore, key, key_file, _dir) = key_setup();
    let tag = tag();
    let signed = push_image(&registry.addr, "signed/moving", &tag);
    attach_signatures(&signed, &[sigstore.sign_with_key(&key, &signed.payload(), true)]);
    let mut config: Value = serde_json::from_str(&config(&sigstore, &key_file)).unwrap();
    config["imageVerification"]["cache"] = json!({"ttlSeconds": 1});
    let server = start(&serve_flags(), &config.to_string(), false);

    let response = admit(&server, "before", pod("before", "prod", &signed.reference()));
    assert_eq!(response["allowed"], true, "{response:#}");
    // Someone pushes unsigned content under the same tag.
    let moved = push_image(&registry.addr, "signed/moving", &tag);
    assert_eq!(moved.reference(), signed.reference());
    assert_ne!(moved.digest, signed.digest);
    std::thread::sleep(Duration::from_millis(1100));
    let response = admit(&server, "after", pod("after", "prod", &moved.reference()));
    assert_denied_for_finding(&response, &moved.reference(), &["prod", "no signature"]);
}
