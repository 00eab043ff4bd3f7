//! Workload image signatures, end to end: images pushed to a real registry
//! (Debian's docker-registry on loopback), signed by material the tests make
//! themselves (cosign keys; keyless certificates from a Sigstore instance of
//! our own, with embedded SCTs and Rekor entries), then `palisade check
//! --verify-images` on workloads that use them. Each case asserts the rule id,
//! the path of the image field, the words of the message (image, trust
//! policy, reason) and the exit code.

mod common;
#[path = "common/sigstore.rs"]
mod sigstore;

use serde_json::{Value, json};
use sigstore::*;

fn verification(policies: Vec<Value>) -> Value {
    json!({"trustedRoot": ["trusted_root.json"], "policies": policies})
}

fn key_policy(name: &str, images: &[&str], keys: &[&str]) -> Value {
    json!({"name": name, "images": images, "keys": keys})
}

fn keyless_policy(name: &str, images: &[&str], keyless: Value) -> Value {
    json!({"name": name, "images": images, "keyless": keyless})
}

const SIGNED: &str = "127.0.0.1:*/signed/*";

fn assert_exit(code: i32, expected: i32, report: &Value, stderr: &str) {
    assert_eq!(
        code, expected,
        "exit code\nfindings: {:#}\nerrors: {:#}\nstderr: {stderr}",
        report["findings"], report["errors"]
    );
}

#[test]
#[cfg_attr(palisade_missing_registry, ignore = "docker-registry is not installed: apt-get install docker-registry")]
fn inactive_without_the_flag_or_without_trust_policies() {
    let fx = Fixture::start();
    let key = Key::p256();
    let pubkey = fx.key_file("cosign.pub", &key);
    let unsigned = fx.push("signed/app", "v1");
    let config = fx.config(Some(verification(vec![key_policy("prod", &[SIGNED], &[&pubkey])])));
    let manifests = fx.manifests("pods.yaml", &[pod("p", "prod", &unsigned.reference())]);

    // Configured, but no --verify-images: inactive, and saying why.
    let out = fx.palisade().args(["policies", "--format", "json", "--config"]).arg(&config).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    let rule = list.as_array().unwrap().iter().find(|p| p["id"] == RULE).expect("image-signature is listed");
    let inactive = rule["inactive"].as_str().unwrap_or_else(|| panic!("should be inactive: {rule}"));
    assert!(inactive.contains("--verify-images"), "{inactive}");
    assert!(rule["profiles"].as_array().unwrap().iter().any(|p| p == "hardened"), "{rule}");

    let out = fx
        .palisade()
        .args(["check", "--format", "json", "--insecure", "--config"])
        .arg(&config)
        .arg(&manifests)
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(signature_findings(&report, "p").is_empty(), "{report:#}");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));

    // --verify-images, but no imageVerification in the configuration.
    let bare = fx.config_named("bare.yaml", None);
    let (code, report, stderr) = fx.check(&bare, &manifests, &[]);
    assert!(signature_findings(&report, "p").is_empty(), "{report:#}");
    assert_exit(code, 0, &report, &stderr);
    let out = fx.palisade().args(["policies", "--format", "json", "--config"]).arg(&bare).output().unwrap();
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    let rule = list.as_array().unwrap().iter().find(|p| p["id"] == RULE).expect("image-signature is listed");
    let inactive = rule["inactive"].as_str().unwrap_or_else(|| panic!("should be inactive: {rule}")).to_lowercase();
    assert!(
        inactive.contains("trust polic")
            || inactive.contains("imageverification")
            || inactive.contains("--verify-images"),
        "{inactive}"
    );
}

#[test]
#[cfg_attr(palisade_missing_registry, ignore = "docker-registry is not installed: apt-get install docker-registry")]
fn key_signed_images_verify_with_the_right_key_only() {
    let fx = Fixture::start();
    let (right, wrong) = (Key::p256(), Key::p256());
    let right_pub = fx.key_file("right.pub", &right);
    let wrong_pub = fx.key_file("wrong.pub", &wrong);
    let plain = fx.push("signed/plain", "v1");
    attach_signatures(&plain, &[fx.sigstore.sign_with_key(&right, &plain.payload(), false)]);
    let logged = fx.push("signed/logged", "v1");
    attach_signatures(&logged, &[fx.sigstore.sign_with_key(&right, &logged.payload(), true)]);
    let manifests = fx.manifests(
        "pods.yaml",
        &[
            pod("by-tag", "prod", &plain.reference()),
            pod("by-digest", "prod", &plain.pinned()),
            pod("logged", "prod", &logged.reference()),
        ],
    );

    let config = fx.config(Some(verification(vec![key_policy("prod", &[SIGNED], &[&right_pub])])));
    let (code, report, stderr) = fx.check(&config, &manifests, &[]);
    for name in ["by-tag", "by-digest", "logged"] {
        assert_verified(&report, name);
    }
    assert_exit(code, 0, &report, &stderr);

    let config = fx.config(Some(verification(vec![key_policy("prod", &[SIGNED], &[&wrong_pub])])));
    let (code, report, stderr) = fx.check(&config, &manifests, &[]);
    assert_refused(&report, "by-tag", POD_IMAGE, &[&plain.reference(), "prod", "bad signature"]);
    assert_refused(&report, "by-digest", POD_IMAGE, &[&plain.pinned(), "prod", "bad signature"]);
    assert_refused(&report, "logged", POD_IMAGE, &[&logged.reference(), "prod", "bad signature"]);
    assert_exit(code, 1, &report, &stderr);
}

#[test]
#[cfg_attr(palisade_missing_registry, ignore = "docker-registry is not installed: apt-get install docker-registry")]
fn p384_and_ed25519_keys_verify_too() {
    let fx = Fixture::start();
    let keys = [("p256", Key::p256()), ("p384", Key::p384()), ("ed25519", Key::ed25519())];
    let mut pods = Vec::new();
    let mut images = Vec::new();
    for (name, key) in &keys {
        fx.key_file(&format!("{name}.pub"), key);
        let image = fx.push(&format!("signed/{name}"), "v1");
        attach_signatures(&image, &[fx.sigstore.sign_with_key(key, &image.payload(), true)]);
        pods.push(pod(name, "prod", &image.reference()));
        images.push(image);
    }
    let manifests = fx.manifests("pods.yaml", &pods);

    // One policy per repository, each with its own key: all verify.
    let policies = keys
        .iter()
        .map(|(name, _)| key_policy(name, &[&format!("127.0.0.1:*/signed/{name}:*")], &[&format!("{name}.pub")]))
        .collect();
    let (code, report, stderr) = fx.check(&fx.config(Some(verification(policies))), &manifests, &[]);
    for (name, _) in &keys {
        assert_verified(&report, name);
    }
    assert_exit(code, 0, &report, &stderr);

    // The P-256 key alone for all of them: the other two are refused.
    let config = fx.config(Some(verification(vec![key_policy("p256-only", &[SIGNED], &["p256.pub"])])));
    let (code, report, stderr) = fx.check(&config, &manifests, &[]);
    assert_verified(&report, "p256");
    assert_refused(&report, "p384", POD_IMAGE, &[&images[1].reference(), "p256-only"]);
    assert_refused(&report, "ed25519", POD_IMAGE, &[&images[2].reference(), "p256-only"]);
    assert_exit(code, 1, &report, &stderr);
}

#[test]
#[cfg_attr(palisade_missing_registry, ignore = "docker-registry is not installed: apt-get install docker-registry")]
fn a_required_transparency_log_entry_for_key_signatures() {
    let fx = Fixture::start();
    let key = Key::p256();
    let pubkey = fx.key_file("cosign.pub", &key);
    let logged = fx.push("signed/logged", "v1");
    attach_signatures(&logged, &[fx.sigstore.sign_with_key(&key, &logged.payload(), true)]);
    let unlogged = fx.push("signed/unlogged", "v1");
    attach_signatures(&unlogged, &[fx.sigstore.sign_with_key(&key, &unlogged.payload(), false)]);
    let manifests = fx.manifests(
        "pods.yaml",
        &[pod("logged", "prod", &logged.reference()), pod("unlogged", "prod", &unlogged.reference())],
    );

    let mut policy = key_policy("tlog", &[SIGNED], &[&pubkey]);
    policy["transparencyLog"] = "required".into();
    let (code, report, stderr) = fx.check(&fx.config(Some(verification(vec![policy]))), &manifests, &[]);
    assert_verified(&report, "logged");
    assert_refused(&report, "unlogged", POD_IMAGE, &[&unlogged.reference(), "tlog"]);
    assert_exit(code, 1, &report, &stderr);

    // Optional (the default): both pass.
    let policy = key_policy("tlog", &[SIGNED], &[&pubkey]);
    let (code, report, stderr) = fx.check(&fx.config(Some(verification(vec![policy]))), &manifests, &[]);
    assert_verified(&report, "logged");
    assert_verified(&report, "unlogged");
    assert_exit(code, 0, &report, &stderr);
}

#[test]
#[cfg_attr(palisade_missing_registry, ignore = "docker-registry is not installed: apt-get install docker-registry")]
fn keyless_signatures_match_issuer_and_subject_exactly_or_by_pattern() {
    let fx = Fixture::start();
    let email = "release-bot@palisade.test";
    let by_workflow = fx.push("signed/workflow", "v1");
    let leaf = fx.sigstore.leaf(&Identity::new(ISSUER, WORKFLOW));
    attach_signatures(&by_workflow, &[fx.sigstore.sign_keyless(&leaf, &by_workflow.payload(), Some(now() - 60))]);
    let by_email = fx.push("signed/email", "v1");
    let leaf = fx.sigstore.leaf(&Identity::new(ISSUER, email));
    attach_signatures(&by_email, &[fx.sigstore.sign_keyless(&leaf, &by_email.payload(), Some(now() - 60))]);
    let manifests = fx.manifests(
        "pods.yaml",
        &[pod("workflow", "prod", &by_workflow.reference()), pod("email", "prod", &by_email.reference())],
    );

    let exact = keyless_policy(
        "exact",
        &[SIGNED],
        json!([{"issuer": ISSUER, "subject": WORKFLOW}, {"issuer": ISSUER, "subject": email}]),
    );
    let (code, report, stderr) = fx.check(&fx.config(Some(verification(vec![exact]))), &manifests, &[]);
    assert_verified(&report, "workflow");
    assert_verified(&report, "email");
    assert_exit(code, 0, &report, &stderr);

    let pattern = keyless_policy(
        "pattern",
        &[SIGNED],
        json!([{
            "issuerRegExp": r"^https://issuer\.palisade\.test$",
            "subjectRegExp": r"^https://github\.com/palisade-test/[^/]+/\.github/workflows/.+@refs/heads/main$",
        }]),
    );
    let (code, report, stderr) = fx.check(&fx.config(Some(verification(vec![pattern]))), &manifests, &[]);
    assert_verified(&report, "workflow");
    assert_refused(&report, "email", POD_IMAGE, &[&by_email.reference(), "pattern", "identity mismatch"]);
    assert_exit(code, 1, &report, &stderr);
}

#[test]
#[cfg_attr(palisade_missing_registry, ignore = "docker-registry is not installed: apt-get install docker-registry")]
fn keyless_signatures_are_refused_for_the_wrong_identity_time_ca_or_no_log_entry() {
    let fx = Fixture::start();
    let t = now();
    let mut pods = Vec::new();
    let mut sign = |name: &str, leaf: &Leaf, integrated_time: Option<i64>| {
        let image = fx.push(&format!("signed/{name}"), "v1");
        attach_signatures(&image, &[fx.sigstore.sign_keyless(leaf, &image.payload(), integrated_time)]);
        pods.push(pod(name, "prod", &image.reference()));
        image
    };
    let good = sign("good", &fx.sigstore.leaf(&Identity::new(ISSUER, WORKFLOW)), Some(t - 60));
    let issuer = sign(
        "wrong-issuer",
        &fx.sigstore.leaf(&Identity::new("https://other-issuer.palisade.test", WORKFLOW)),
        Some(t - 60),
    );
    let subject = sign(
        "wrong-subject",
        &fx.sigstore.leaf(&Identity::new(
            ISSUER,
            "https://github.com/palisade-test/fork/.github/workflows/release.yml@refs/heads/main",
        )),
        Some(t - 60),
    );
    // Valid for ten minutes an hour ago, logged a minute ago: expired when signed.
    let expired =
        sign("expired", &fx.sigstore.leaf_valid(&Identity::new(ISSUER, WORKFLOW), t - 3600, t - 3000), Some(t - 60));
    // Issued by a CA the trusted root does not name (the logs are the trusted ones).
    let rogue = fx.sigstore.rogue_ca();
    let untrusted = sign("untrusted-ca", &rogue.leaf(&Identity::new(ISSUER, WORKFLOW)), Some(t - 60));
    // No Rekor entry: keyless signatures always need one.
    let unlogged = sign("unlogged", &fx.sigstore.leaf(&Identity::new(ISSUER, WORKFLOW)), None);
    let manifests = fx.manifests("pods.yaml", &pods);

    let policy = keyless_policy("release", &[SIGNED], json!([{"issuer": ISSUER, "subject": WORKFLOW}]));
    let (code, report, stderr) = fx.check(&fx.config(Some(verification(vec![policy]))), &manifests, &[]);
    assert_verified(&report, "good");
    assert_refused(&report, "wrong-issuer", POD_IMAGE, &[&issuer.reference(), "release", "identity mismatch"]);
    assert_refused(&report, "wrong-subject", POD_IMAGE, &[&subject.reference(), "release", "identity mismatch"]);
    assert_refused(&report, "expired", POD_IMAGE, &[&expired.reference(), "release", "untrusted certificate"]);
    assert_refused(&report, "untrusted-ca", POD_IMAGE, &[&untrusted.reference(), "release", "untrusted certificate"]);
    assert_refused(&report, "unlogged", POD_IMAGE, &[&unlogged.reference(), "release"]);
    assert_exit(code, 1, &report, &stderr);
    let _ = good;
}

#[test]
#[cfg_attr(palisade_missing_registry, ignore = "docker-registry is not installed: apt-get install docker-registry")]
fn keyless_signatures_need_log_evidence_that_verifies() {
    let fx = Fixture::start();
    let t = now();
    let identity = Identity::new(ISSUER, WORKFLOW);
    let policy = keyless_policy("release", &[SIGNED], json!([{"issuer": ISSUER, "subject": WORKFLOW}]));

    // The embedded SCT comes from a CT log the trusted root does not name.
    let unknown_ct = fx.push("signed/unknown-ct", "v1");
    let leaf = fx.sigstore.leaf_with_sct_from(&Log::new("https://ct.elsewhere.test"), &identity, t - 300, t + 300);
    attach_signatures(&unknown_ct, &[fx.sigstore.sign_keyless(&leaf, &unknown_ct.payload(), Some(t - 60))]);

    // The signed entry timestamp no longer matches the entry (its time was moved).
    let moved = fx.push("signed/moved", "v1");
    let leaf = fx.sigstore.leaf(&identity);
    let mut signature = fx.sigstore.sign_keyless(&leaf, &moved.payload(), Some(t - 60));
    let mut bundle: Value = serde_json::from_str(signature.bundle.as_ref().unwrap()).unwrap();
    bundle["Payload"]["integratedTime"] = (t - 30).into();
    signature.bundle = Some(bundle.to_string());
    attach_signatures(&moved, &[signature]);

    // A genuine Rekor entry, but for another signature.
    let borrowed = fx.push("signed/borrowed", "v1");
    let leaf = fx.sigstore.leaf(&identity);
    let other = fx.sigstore.sign_keyless(&leaf, &unknown_ct.payload(), Some(t - 60));
    let mut signature = fx.sigstore.sign_keyless(&leaf, &borrowed.payload(), None);
    signature.bundle = other.bundle;
    attach_signatures(&borrowed, &[signature]);

    let manifests = fx.manifests(
        "pods.yaml",
        &[
            pod("unknown-ct", "prod", &unknown_ct.reference()),
            pod("moved", "prod", &moved.reference()),
            pod("borrowed", "prod", &borrowed.reference()),
        ],
    );
    let (code, report, stderr) = fx.check(&fx.config(Some(verification(vec![policy]))), &manifests, &[]);
    assert_refused(&report, "unknown-ct", POD_IMAGE, &[&unknown_ct.reference(), "release", "transparency log"]);
    assert_refused(&report, "moved", POD_IMAGE, &[&moved.reference(), "release", "transparency log"]);
    assert_refused(&report, "borrowed", POD_IMAGE, &[&borrowed.reference(), "release", "transparency log"]);
    assert_exit(code, 1, &report, &stderr);
}

/// Sigstore bundles v0.3 attached as OCI referrers (found through the
/// referrers tag schema), as cosign 3 signs images: a DSSE envelope of an
/// in-toto statement naming the image digest.
#[test]
#[cfg_attr(palisade_missing_registry, ignore = "docker-registry is not installed: apt-get install docker-registry")]
fn cosign3_bundle_referrers_verify() {
    let content = COSIGN3_BUNDLE_CONTENT;
    let fx = Fixture::start();
    let leaf = fx.sigstore.leaf(&Identity::new(ISSUER, WORKFLOW));
    let signed = fx.push("signed/bundled", "v1");
    attach_bundles(&signed, &[(fx.sigstore.bundle(&leaf, &signed, content, now() - 60), content)]);
    // Another image's bundle attached to this one.
    let other = fx.push("signed/other", "v1");
    let misplaced = fx.push("signed/misplaced", "v1");
    attach_bundles(&misplaced, &[(fx.sigstore.bundle(&leaf, &other, content, now() - 60), content)]);
    // The right image, but somebody else's identity.
    let stranger = fx.push("signed/stranger", "v1");
    let stranger_leaf = fx.sigstore.leaf(&Identity::new(ISSUER, "mallory@palisade.test"));
    attach_bundles(&stranger, &[(fx.sigstore.bundle(&stranger_leaf, &stranger, content, now() - 60), content)]);
    // Logged after the certificate had expired.
    let late = fx.push("signed/late", "v1");
    let expired_leaf = fx.sigstore.leaf_valid(&Identity::new(ISSUER, WORKFLOW), now() - 3600, now() - 3000);
    attach_bundles(&late, &[(fx.sigstore.bundle(&expired_leaf, &late, content, now() - 60), content)]);
    let manifests = fx.manifests(
        "pods.yaml",
        &[
            pod("bundled", "prod", &signed.reference()),
            pod("misplaced", "prod", &misplaced.reference()),
            pod("stranger", "prod", &stranger.reference()),
            pod("late", "prod", &late.reference()),
        ],
    );

    let policy = keyless_policy("release", &[SIGNED], json!([{"issuer": ISSUER, "subject": WORKFLOW}]));
    let (code, report, stderr) = fx.check(&fx.config(Some(verification(vec![policy]))), &manifests, &[]);
    assert_verified(&report, "bundled");
    assert_refused(&report, "misplaced", POD_IMAGE, &[&misplaced.reference(), "release", "digest mismatch"]);
    assert_refused(&report, "stranger", POD_IMAGE, &[&stranger.reference(), "release", "identity mismatch"]);
    assert_refused(&report, "late", POD_IMAGE, &[&late.reference(), "release", "untrusted certificate"]);
    assert_exit(code, 1, &report, &stderr);
}

/// A bundle holding a bare message signature over the manifest bytes is what
/// `cosign sign-blob` of the manifest file would give: it says nothing of
/// being an image signature, and is not taken as one (cosign 3 signs images
/// with DSSE statements). Flip the expectation here if that choice changes.
#[test]
#[cfg_attr(palisade_missing_registry, ignore = "docker-registry is not installed: apt-get install docker-registry")]
fn message_signature_bundles_are_not_image_signatures() {
    let fx = Fixture::start();
    let leaf = fx.sigstore.leaf(&Identity::new(ISSUER, WORKFLOW));
    let image = fx.push("signed/blob-signed", "v1");
    let content = BundleContent::MessageSignature;
    attach_bundles(&image, &[(fx.sigstore.bundle(&leaf, &image, content, now() - 60), content)]);
    let manifests = fx.manifests("pods.yaml", &[pod("blob-signed", "prod", &image.reference())]);
    let policy = keyless_policy("release", &[SIGNED], json!([{"issuer": ISSUER, "subject": WORKFLOW}]));
    let (code, report, stderr) = fx.check(&fx.config(Some(verification(vec![policy]))), &manifests, &[]);
    assert_refused(&report, "blob-signed", POD_IMAGE, &[&image.reference(), "release"]);
    assert_exit(code, 1, &report, &stderr);
}

#[test]
#[cfg_attr(palisade_missing_registry, ignore = "docker-registry is not installed: apt-get install docker-registry")]
fn tampered_misplaced_and_missing_signatures_are_refused() {
    let fx = Fixture::start();
    let key = Key::p256();
    let pubkey = fx.key_file("cosign.pub", &key);
    let a = fx.push("signed/app", "a");
    let a_signatures = attach_signatures(&a, &[fx.sigstore.sign_with_key(&key, &a.payload(), false)]);

    // The signature is over other bytes than the payload stored beside it.
    let tampered = fx.push("signed/tampered", "v1");
    let mut signature =
        fx.sigstore.sign_with_key(&key, &simple_signing_payload(&tampered.docker_reference(), &a.digest), false);
    signature.payload = tampered.payload();
    attach_signatures(&tampered, &[signature]);

    // Image A's signatures, copied to image B's signature tag.
    let b = fx.push("signed/app", "b");
    push_signature_manifest(&b, &a_signatures);

    let missing = fx.push("signed/missing", "v1");
    let manifests = fx.manifests(
        "pods.yaml",
        &[
            pod("a", "prod", &a.reference()),
            pod("tampered", "prod", &tampered.reference()),
            pod("b", "prod", &b.reference()),
            pod("missing", "prod", &missing.reference()),
        ],
    );
    let config = fx.config(Some(verification(vec![key_policy("prod", &[SIGNED], &[&pubkey])])));
    let (code, report, stderr) = fx.check(&config, &manifests, &[]);
    assert_verified(&report, "a");
    assert_refused(&report, "tampered", POD_IMAGE, &[&tampered.reference(), "prod", "bad signature"]);
    assert_refused(&report, "b", POD_IMAGE, &[&b.reference(), "prod", "digest mismatch"]);
    assert_refused(&report, "missing", POD_IMAGE, &[&missing.reference(), "prod", "no signature"]);
    assert_exit(code, 1, &report, &stderr);
}

#[test]
#[cfg_attr(palisade_missing_registry, ignore = "docker-registry is not installed: apt-get install docker-registry")]
fn images_matching_no_policy_are_denied_unless_allowed() {
    let fx = Fixture::start();
    let key = Key::p256();
    let pubkey = fx.key_file("cosign.pub", &key);
    let signed = fx.push("signed/app", "v1");
    attach_signatures(&signed, &[fx.sigstore.sign_with_key(&key, &signed.payload(), false)]);
    let elsewhere = fx.push("elsewhere/app", "v1");
    let manifests = fx.manifests(
        "pods.yaml",
        &[pod("signed", "prod", &signed.reference()), pod("elsewhere", "prod", &elsewhere.reference())],
    );

    let mut iv = verification(vec![key_policy("prod", &[SIGNED], &[&pubkey])]);
    let (code, report, stderr) = fx.check(&fx.config(Some(iv.clone())), &manifests, &[]);
    assert_verified(&report, "signed");
    assert_refused(&report, "elsewhere", POD_IMAGE, &[&elsewhere.reference(), "does not match any trust policy"]);
    assert_exit(code, 1, &report, &stderr);

    iv["unmatched"] = "deny".into();
    let (code, report, _) = fx.check(&fx.config(Some(iv.clone())), &manifests, &[]);
    assert_refused(&report, "elsewhere", POD_IMAGE, &[&elsewhere.reference(), "does not match any trust policy"]);
    assert_eq!(code, 1);

    iv["unmatched"] = "allow".into();
    let (code, report, stderr) = fx.check(&fx.config(Some(iv)), &manifests, &[]);
    assert_verified(&report, "signed");
    assert!(signature_findings(&report, "elsewhere").is_empty(), "{report:#}");
    assert_exit(code, 0, &report, &stderr);
}

#[test]
#[cfg_attr(palisade_missing_registry, ignore = "docker-registry is not installed: apt-get install docker-registry")]
fn a_threshold_counts_distinct_authorities() {
    let fx = Fixture::start();
    let (a, b) = (Key::p256(), Key::p256());
    let (a_pub, b_pub) = (fx.key_file("a.pub", &a), fx.key_file("b.pub", &b));
    let one = fx.push("signed/one", "v1");
    attach_signatures(&one, &[fx.sigstore.sign_with_key(&a, &one.payload(), false)]);
    let twice_by_one = fx.push("signed/twice", "v1");
    attach_signatures(
        &twice_by_one,
        &[
            fx.sigstore.sign_with_key(&a, &twice_by_one.payload(), false),
            fx.sigstore.sign_with_key(&a, &twice_by_one.payload(), true),
        ],
    );
    let both = fx.push("signed/both", "v1");
    attach_signatures(
        &both,
        &[fx.sigstore.sign_with_key(&a, &both.payload(), false), fx.sigstore.sign_with_key(&b, &both.payload(), false)],
    );
    let manifests = fx.manifests(
        "pods.yaml",
        &[
            pod("one", "prod", &one.reference()),
            pod("twice", "prod", &twice_by_one.reference()),
            pod("both", "prod", &both.reference()),
        ],
    );
    let mut policy = key_policy("two-of-two", &[SIGNED], &[&a_pub, &b_pub]);
    policy["threshold"] = 2.into();
    let (code, report, stderr) = fx.check(&fx.config(Some(verification(vec![policy]))), &manifests, &[]);
    assert_verified(&report, "both");
    assert_refused(&report, "one", POD_IMAGE, &[&one.reference(), "two-of-two"]);
    assert_refused(&report, "twice", POD_IMAGE, &[&twice_by_one.reference(), "two-of-two"]);
    assert_exit(code, 1, &report, &stderr);

    // Threshold 1 (the default): one of the two keys is enough.
    let policy = key_policy("one-of-two", &[SIGNED], &[&a_pub, &b_pub]);
    let (code, report, stderr) = fx.check(&fx.config(Some(verification(vec![policy]))), &manifests, &[]);
    for name in ["one", "twice", "both"] {
        assert_verified(&report, name);
    }
    assert_exit(code, 0, &report, &stderr);
}

#[test]
#[cfg_attr(palisade_missing_registry, ignore = "docker-registry is not installed: apt-get install docker-registry")]
fn policies_apply_to_their_namespaces_only() {
    let fx = Fixture::start();
    let (prod_key, dev_key) = (Key::p256(), Key::p256());
    let prod_pub = fx.key_file("prod.pub", &prod_key);
    let dev_pub = fx.key_file("dev.pub", &dev_key);
    // Signed with the dev key only.
    let image = fx.push("signed/app", "v1");
    attach_signatures(&image, &[fx.sigstore.sign_with_key(&dev_key, &image.payload(), false)]);
    let manifests = fx.manifests(
        "pods.yaml",
        &[
            pod("in-prod", "prod", &image.reference()),
            pod("in-dev", "dev", &image.reference()),
            pod("in-staging", "staging", &image.reference()),
        ],
    );
    let mut prod = key_policy("prod-release", &[SIGNED], &[&prod_pub]);
    prod["namespaces"] = json!(["prod"]);
    let mut dev = key_policy("dev-builds", &[SIGNED], &[&dev_pub]);
    dev["namespaces"] = json!(["dev"]);
    let (code, report, stderr) = fx.check(&fx.config(Some(verification(vec![prod, dev]))), &manifests, &[]);
    assert_refused(&report, "in-prod", POD_IMAGE, &[&image.reference(), "prod-release", "bad signature"]);
    assert_verified(&report, "in-dev");
    // No policy covers staging: unmatched (deny by default).
    assert_refused(&report, "in-staging", POD_IMAGE, &[&image.reference(), "does not match any trust policy"]);
    assert_exit(code, 1, &report, &stderr);
}

#[test]
#[cfg_attr(palisade_missing_registry, ignore = "docker-registry is not installed: apt-get install docker-registry")]
fn the_most_specific_policy_wins() {
    let fx = Fixture::start();
    let (team, special) = (Key::p256(), Key::p256());
    let team_pub = fx.key_file("team.pub", &team);
    let special_pub = fx.key_file("special.pub", &special);
    let common_image = fx.push("signed/common", "v1");
    attach_signatures(&common_image, &[fx.sigstore.sign_with_key(&team, &common_image.payload(), false)]);
    let special_image = fx.push("signed/special", "v1");
    attach_signatures(&special_image, &[fx.sigstore.sign_with_key(&special, &special_image.payload(), false)]);
    // Signed by the team key, but the narrow policy asks for the special key.
    let special_by_team = fx.push("signed/special", "v2");
    attach_signatures(&special_by_team, &[fx.sigstore.sign_with_key(&team, &special_by_team.payload(), false)]);
    let nested = fx.push("signed/deep/nested", "v1");
    attach_signatures(&nested, &[fx.sigstore.sign_with_key(&team, &nested.payload(), false)]);
    let manifests = fx.manifests(
        "pods.yaml",
        &[
            pod("common", "prod", &common_image.reference()),
            pod("special", "prod", &special_image.reference()),
            pod("special-by-team", "prod", &special_by_team.reference()),
            pod("nested", "prod", &nested.reference()),
        ],
    );
    let policies = vec![
        key_policy("everything", &["127.0.0.1:*/**"], &[&team_pub]),
        key_policy("special", &["127.0.0.1:*/signed/special:*"], &[&special_pub]),
    ];
    let (code, report, stderr) = fx.check(&fx.config(Some(verification(policies))), &manifests, &[]);
    assert_verified(&report, "common");
    assert_verified(&report, "special");
    assert_verified(&report, "nested");
    assert_refused(&report, "special-by-team", POD_IMAGE, &[&special_by_team.reference(), "special", "bad signature"]);
    assert_exit(code, 1, &report, &stderr);

    // `*` does not cross `/`: signed/* does not cover signed/deep/nested.
    let policies = vec![key_policy("shallow", &[SIGNED], &[&team_pub])];
    let (_, report, _) = fx.check(&fx.config(Some(verification(policies))), &manifests, &[]);
    assert_verified(&report, "common");
    assert_refused(&report, "nested", POD_IMAGE, &[&nested.reference(), "does not match any trust policy"]);
}

#[test]
#[cfg_attr(palisade_missing_registry, ignore = "docker-registry is not installed: apt-get install docker-registry")]
fn every_container_of_every_workload_kind_is_checked() {
    let fx = Fixture::start();
    let key = Key::p256();
    let pubkey = fx.key_file("cosign.pub", &key);
    let signed = fx.push("signed/app", "v1");
    attach_signatures(&signed, &[fx.sigstore.sign_with_key(&key, &signed.payload(), false)]);
    let unsigned = fx.push("signed/unsigned", "v1");
    let (s, u) = (signed.reference(), unsigned.reference());
    let c = |image: &str| json!({"name": "c", "image": image});
    let c2 = |image: &str| json!({"name": "d", "image": image});
    let template = |spec: Value| json!({"metadata": {"labels": {"app": "x"}}, "spec": spec});
    let workload = |kind: &str, api: &str, spec: Value| json!({"apiVersion": api, "kind": kind, "metadata": {"name": kind.to_lowercase(), "namespace": "prod"}, "spec": spec});
    let selector = json!({"matchLabels": {"app": "x"}});
    let objects = vec![
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "pod", "namespace": "prod"},
            "spec": {"containers": [c(&s)], "ephemeralContainers": [c2(&u)]}}),
        workload(
            "Deployment",
            "apps/v1",
            json!({"selector": selector, "template": template(json!({"initContainers": [c2(&u)], "containers": [c(&s)]}))}),
        ),
        workload(
            "StatefulSet",
            "apps/v1",
            json!({"selector": selector, "serviceName": "x", "template": template(json!({"containers": [c(&s), c2(&u)]}))}),
        ),
        workload(
            "DaemonSet",
            "apps/v1",
            json!({"selector": selector, "template": template(json!({"containers": [c(&u)]}))}),
        ),
        workload(
            "ReplicaSet",
            "apps/v1",
            json!({"selector": selector, "template": template(json!({"containers": [c(&u)]}))}),
        ),
        workload(
            "ReplicationController",
            "v1",
            json!({"selector": {"app": "x"}, "template": template(json!({"containers": [c(&u)]}))}),
        ),
        workload(
            "Job",
            "batch/v1",
            json!({"template": template(json!({"restartPolicy": "Never", "containers": [c(&u)]}))}),
        ),
        workload(
            "CronJob",
            "batch/v1",
            json!({"schedule": "0 * * * *", "jobTemplate": {"spec": {"template": template(json!({"restartPolicy": "Never", "containers": [c(&u)]}))}}}),
        ),
        json!({"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": "podtemplate", "namespace": "prod"},
            "template": template(json!({"containers": [c(&u)]}))}),
        workload(
            "Deployment",
            "apps/v1",
            json!({"selector": selector, "template": template(json!({"initContainers": [c2(&s)], "containers": [c(&s)]}))}),
        ),
    ];
    let mut objects = objects;
    objects.last_mut().unwrap()["metadata"]["name"] = "all-signed".into();
    let manifests = fx.manifests("workloads.yaml", &objects);
    let config = fx.config(Some(verification(vec![key_policy("prod", &[SIGNED], &[&pubkey])])));
    let (code, report, stderr) = fx.check(&config, &manifests, &[]);
    let expected = [
        ("pod", "/spec/ephemeralContainers/0/image"),
        ("deployment", "/spec/template/spec/initContainers/0/image"),
        ("statefulset", "/spec/template/spec/containers/1/image"),
        ("daemonset", "/spec/template/spec/containers/0/image"),
        ("replicaset", "/spec/template/spec/containers/0/image"),
        ("replicationcontroller", "/spec/template/spec/containers/0/image"),
        ("job", "/spec/template/spec/containers/0/image"),
        ("cronjob", "/spec/jobTemplate/spec/template/spec/containers/0/image"),
        ("podtemplate", "/template/spec/containers/0/image"),
    ];
    for (name, path) in expected {
        assert_refused(&report, name, path, &[&u, "prod", "no signature"]);
    }
    assert_verified(&report, "all-signed");
    assert_exit(code, 1, &report, &stderr);
}

#[test]
#[cfg_attr(palisade_missing_registry, ignore = "docker-registry is not installed: apt-get install docker-registry")]
fn offline_runs_use_only_what_an_online_run_cached() {
    let mut fx = Fixture::start();
    let key = Key::p256();
    let pubkey = fx.key_file("cosign.pub", &key);
    let fetched = fx.push("signed/fetched", "v1");
    attach_signatures(&fetched, &[fx.sigstore.sign_with_key(&key, &fetched.payload(), true)]);
    let never_fetched = fx.push("signed/never-fetched", "v1");
    attach_signatures(&never_fetched, &[fx.sigstore.sign_with_key(&key, &never_fetched.payload(), true)]);
    let config = fx.config(Some(verification(vec![key_policy("prod", &[SIGNED], &[&pubkey])])));
    let first = fx.manifests("first.yaml", &[pod("fetched", "prod", &fetched.reference())]);
    let both = fx.manifests(
        "both.yaml",
        &[pod("fetched", "prod", &fetched.reference()), pod("never-fetched", "prod", &never_fetched.reference())],
    );

    let (code, report, stderr) = fx.check(&config, &first, &[]);
    assert_verified(&report, "fetched");
    assert_exit(code, 0, &report, &stderr);

    fx.registry.stop();
    let (code, report, stderr) = fx.check(&config, &first, &["--offline"]);
    assert_verified(&report, "fetched");
    assert_exit(code, 0, &report, &stderr);

    // Never fetched: a finding offline, never a pass.
    let (code, report, stderr) = fx.check(&config, &both, &["--offline"]);
    assert_verified(&report, "fetched");
    assert_refused(
        &report,
        "never-fetched",
        POD_IMAGE,
        &[&never_fetched.reference(), "prod", "not in the offline cache"],
    );
    assert_exit(code, 1, &report, &stderr);

    // Another cache (nothing fetched into it) offline: nothing passes.
    let empty = tempfile::tempdir().unwrap();
    let mut cmd = fx.palisade();
    cmd.env("PALISADE_CACHE_DIR", private_cache(empty.path()))
        .arg("check")
        .arg("--config")
        .arg(&config)
        .args(verify_flags())
        .args(["--offline", "--format", "json"])
        .arg(&first);
    let (code, report) = common::json_report(&mut cmd);
    assert_refused(&report, "fetched", POD_IMAGE, &[&fetched.reference(), "not in the offline cache"]);
    assert_eq!(code, 1);

    // Online with the registry down: the rule cannot decide, which is an
    // error of the run (exit 2) naming the image, never a pass.
    let (code, report, stderr) = fx.check(&config, &both, &[]);
    let errors = common::errors(&report);
    assert!(
        errors.iter().any(|e| e["rule"] == "image-signature"
            && e["message"].as_str().is_some_and(|m| m.contains(&never_fetched.reference())
                && m.contains("prod")
                && m.contains("unreachable"))),
        "{report:#}"
    );
    assert_exit(code, 2, &report, &stderr);
}

#[test]
#[cfg_attr(palisade_missing_registry, ignore = "docker-registry is not installed: apt-get install docker-registry")]
fn malformed_trust_policies_are_configuration_errors() {
    let fx = Fixture::start();
    let key = Key::p256();
    let pubkey = fx.key_file("cosign.pub", &key);
    std::fs::write(fx.dir.path().join("garbage.json"), "this is not a trusted root").unwrap();
    let good_policy = || key_policy("prod", &[SIGNED], &[&pubkey]);
    let mut unknown_in_policy = good_policy();
    unknown_in_policy["treshold"] = 1.into();
    let mut unnamed = good_policy();
    unnamed.as_object_mut().unwrap().remove("name");
    let cases: Vec<(&str, Value, Vec<&str>)> = vec![
        (
            "unknown-key.yaml",
            json!({"trustedRoot": ["trusted_root.json"], "polices": [good_policy()]}),
            vec!["polices", "unknown-key.yaml"],
        ),
        ("unknown-policy-key.yaml", verification(vec![unknown_in_policy]), vec!["treshold", "unknown-policy-key.yaml"]),
        ("unnamed.yaml", verification(vec![unnamed]), vec!["name", "unnamed.yaml"]),
        (
            "bad-regex.yaml",
            verification(vec![keyless_policy("prod", &[SIGNED], json!([{"issuer": ISSUER, "subjectRegExp": "(["}]))]),
            vec!["subjectRegExp", "bad-regex.yaml"],
        ),
        ("missing-key.yaml", verification(vec![key_policy("prod", &[SIGNED], &["missing.pub"])]), vec!["missing.pub"]),
        (
            "missing-root.yaml",
            json!({"trustedRoot": ["nowhere.json"], "policies": [good_policy()]}),
            vec!["nowhere.json"],
        ),
        (
            "garbage-root.yaml",
            json!({"trustedRoot": ["garbage.json"], "policies": [good_policy()]}),
            vec!["garbage.json"],
        ),
        (
            "same-key-twice.yaml",
            verification(vec![key_policy("prod", &[SIGNED], &[&pubkey, &pubkey])]),
            vec!["keys[1]", "listed twice", "same-key-twice.yaml"],
        ),
        (
            "bad-unmatched.yaml",
            json!({"trustedRoot": ["trusted_root.json"], "unmatched": "maybe", "policies": [good_policy()]}),
            vec!["maybe", "bad-unmatched.yaml"],
        ),
    ];
    // The manifests do not exist: a configuration error is found before any is read.
    let manifests = fx.dir.path().join("no-such-manifests.yaml");
    for (file, iv, expected) in cases {
        let config = fx.config_named(file, Some(iv));
        let out = fx
            .palisade()
            .arg("check")
            .arg("--config")
            .arg(&config)
            .args(verify_flags())
            .args(["--format", "json"])
            .arg(&manifests)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{file}: {stderr}");
        for text in expected {
            assert!(stderr.contains(text), "{file}: the error should name {text:?}: {stderr}");
        }
        assert!(!stderr.contains("no-such-manifests.yaml"), "{file}: the configuration is read first: {stderr}");
    }
}

#[test]
#[cfg_attr(palisade_missing_registry, ignore = "docker-registry is not installed: apt-get install docker-registry")]
fn an_unparsable_image_reference_is_a_finding() {
    let fx = Fixture::start();
    let key = Key::p256();
    let pubkey = fx.key_file("cosign.pub", &key);
    let signed = fx.push("signed/app", "v1");
    attach_signatures(&signed, &[fx.sigstore.sign_with_key(&key, &signed.payload(), false)]);
    let bad = "UPPER/Case::bad";
    let manifests = fx.manifests("pods.yaml", &[pod("signed", "prod", &signed.reference()), pod("bad", "prod", bad)]);
    // Even with unmatched images allowed, a reference that does not parse is refused.
    let mut iv = verification(vec![key_policy("prod", &[SIGNED], &[&pubkey])]);
    iv["unmatched"] = "allow".into();
    let (code, report, stderr) = fx.check(&fx.config(Some(iv)), &manifests, &[]);
    assert_verified(&report, "signed");
    assert_refused(&report, "bad", POD_IMAGE, &[bad]);
    assert_exit(code, 1, &report, &stderr);
}

/// Time the host spends fetching (a slow registry) is not the policy's: a
/// policy bound of 200 ms does not cut off a verification whose registry
/// answers each request after 400 ms; the rule still decides (here: the
/// image is not found, a finding).
#[test]
#[cfg_attr(palisade_missing_registry, ignore = "docker-registry is not installed: apt-get install docker-registry")]
fn a_slow_registry_does_not_count_against_the_policy_time_bound() {
    let fx = Fixture::start();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let slow = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                use std::io::{BufRead, BufReader, Write};
                let mut reader = BufReader::new(stream);
                loop {
                    // One request head, then a slow 404 on the same connection.
                    let mut line = String::new();
                    loop {
                        line.clear();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        if line == "\r\n" {
                            break;
                        }
                    }
                    std::thread::sleep(std::time::Duration::from_millis(400));
                    let answer =
                        "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}";
                    if reader.get_mut().write_all(answer.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    let key = Key::p256();
    let pubkey = fx.key_file("cosign.pub", &key);
    let image = format!("{slow}/signed/slow:v1");
    let manifests = fx.manifests("pods.yaml", &[pod("slow", "prod", &image)]);
    let config = fx.config(Some(verification(vec![key_policy("prod", &["127.0.0.1:*/signed/**"], &[&pubkey])])));
    let (code, report, stderr) = fx.check(&config, &manifests, &["--policy-timeout-ms", "200"]);
    assert_refused(&report, "slow", POD_IMAGE, &[&image, "prod", "not found"]);
    assert_exit(code, 1, &report, &stderr);
}
