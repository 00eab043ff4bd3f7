//! Every `cosign-key-signature` and `cosign-keyless-signature` case of the Sigstore
//! corpus (containers/image's cosign fixtures): verify as containers/image's
//! `sigstoreSigned` policy would, and agree with the upstream expectation.
//!
//! A case passes when some signature file verifies with some configured key (or the
//! configured CA), is for the manifest's digest, and its signed docker reference matches
//! the case's `docker_reference` (`match=repository` or `match=exact`).

mod cases;

use palisade_sigstore::certificate::{Certificate, San};
use palisade_sigstore::cosign::{self, LegacyOptions, LegacySignature};
use palisade_sigstore::identity::{Authority, Matcher};
use palisade_sigstore::keys::PublicKey;
use palisade_sigstore::trust::{CertificateAuthority, TransparencyLog, TrustedRoot, Validity};
use sha2::{Digest, Sha256};

/// The production trust root snapshot: its CT logs vouch for the Fulcio certificate's
/// SCT (containers/image does not check SCTs; cosign does, and so does Palisade).
const PRODUCTION_ROOT: &str =
    "sigstore-python/sigstore/_store/https%3A%2F%2Ftuf-repo-cdn.sigstore.dev/trusted_root.json";

fn text(case: &cases::Case, role: &str) -> Option<String> {
    case.read(role).map(|b| String::from_utf8(b).expect("a text file"))
}

/// The image's manifest digest, as containers/image computes it; `None` without a
/// manifest, or for a schema-1 manifest (its digest is over the payload without the JWS
/// signatures, which this test does not strip: containers/image fails on this one too,
/// because its embedded signatures are invalid).
fn manifest_digest(case: &cases::Case) -> Option<String> {
    let bytes = case.read("manifest")?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    if value.get("schemaVersion").and_then(serde_json::Value::as_i64) == Some(1) {
        return None;
    }
    Some(format!("sha256:{}", hex(&Sha256::digest(&bytes))))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Trust root from the case's separate files (`rekor_key`, `fulcio_ca`, `ca_roots`,
/// `ca_intermediates`), like containers/image's policy fields.
fn trust_root(case: &cases::Case) -> Option<TrustedRoot> {
    let mut root = TrustedRoot::default();
    let mut any = false;
    if let Some(pem) = text(case, "rekor_key") {
        let key = PublicKey::from_pem(&pem).expect("rekor key");
        root.add_tlog(TransparencyLog::from_key("rekor", key, Validity::always()));
        any = true;
    }
    if let Some(pem) = text(case, "fulcio_ca") {
        for cert in Certificate::from_pem(&pem).expect("fulcio CA") {
            root.add_certificate_authority(CertificateAuthority {
                chain: vec![cert.der().to_vec()],
                valid_for: Validity::always(),
                uri: String::new(),
            });
        }
        let production = std::fs::read(cases::corpus().join(PRODUCTION_ROOT)).expect("production root");
        for log in TrustedRoot::from_json(&production).expect("production root").ctlogs() {
            root.add_ctlog(log.clone());
        }
        any = true;
    }
    if let Some(pem) = text(case, "ca_roots") {
        let intermediates = match text(case, "ca_intermediates") {
            Some(pem) => Certificate::from_pem(&pem).expect("intermediates"),
            None => Vec::new(),
        };
        for anchor in Certificate::from_pem(&pem).expect("CA roots") {
            let mut chain: Vec<Vec<u8>> = intermediates.iter().map(|c| c.der().to_vec()).collect();
            chain.push(anchor.der().to_vec());
            root.add_certificate_authority(CertificateAuthority {
                chain,
                valid_for: Validity::always(),
                uri: String::new(),
            });
        }
        any = true;
    }
    any.then_some(root)
}

fn now() -> i64 {
    let elapsed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock");
    i64::try_from(elapsed.as_secs()).expect("time")
}

/// Runs one case: `Ok(())` when it verifies, else why not.
fn run(case: &cases::Case) -> Result<(), String> {
    let digest = manifest_digest(case);
    let expected_reference = case.identity("docker_reference").ok_or("no docker_reference")?;
    let exact = case.identity("match") == Some("exact");
    let root = trust_root(case);

    let mut authorities = Vec::new();
    for path in case.all("key") {
        let pem = std::fs::read_to_string(cases::corpus().join(path)).map_err(|e| e.to_string())?;
        let key = PublicKey::from_pem(&pem).map_err(|e| e.to_string())?;
        authorities.push(Authority::Key { key, require_tlog: case.one("rekor_key").is_some() });
    }
    let keyless = case.one("fulcio_ca").is_some() || case.one("ca_roots").is_some();
    if keyless {
        let issuer = match case.identity("issuer") {
            Some(issuer) => Matcher::Exact(issuer.to_string()),
            // A private CA's certificate names no OIDC issuer.
            None => Matcher::regex(".*").map_err(|e| e.to_string())?,
        };
        let email = case.identity("email").ok_or("keyless case without an email")?;
        authorities.push(Authority::Keyless { issuer, subject: Matcher::Exact(email.to_string()) });
    }
    // containers/image's `pki` policy needs no transparency log nor SCT; Fulcio does.
    let options = if case.one("ca_roots").is_some() {
        LegacyOptions { keyless_require_tlog: false, require_sct: false, now: Some(now()) }
    } else {
        LegacyOptions::default()
    };

    let signatures = case.all("signature");
    if signatures.is_empty() {
        return Err("no signature".into());
    }
    let mut reasons = Vec::new();
    for path in signatures {
        let bytes = std::fs::read(cases::corpus().join(path)).map_err(|e| e.to_string())?;
        let sig = match LegacySignature::from_containers_signature(&bytes) {
            Ok(sig) => sig,
            Err(e) => {
                reasons.push(format!("{path}: {e}"));
                continue;
            }
        };
        // Without a manifest the case fails, but the rest is still checked against the
        // payload's own digest, so that the log says what else is wrong.
        let image_digest = match &digest {
            Some(digest) => digest.clone(),
            None => cosign::parse_simple_signing(&sig.payload).map(|p| p.manifest_digest).unwrap_or_default(),
        };
        for authority in &authorities {
            let verified = match cosign::verify_legacy_with(&sig, &image_digest, root.as_ref(), authority, &options) {
                Ok(v) => v,
                Err(e) => {
                    reasons.push(format!("{path}: {e}"));
                    continue;
                }
            };
            let signed_reference = verified.docker_reference.as_deref().unwrap_or_default();
            if !cosign::reference_matches(signed_reference, expected_reference, exact) {
                reasons.push(format!("{path}: signed for {signed_reference}, not {expected_reference}"));
                continue;
            }
            if let Some(hostname) = case.identity("hostname") {
                let pem = sig.certificate.as_deref().ok_or("no certificate")?;
                let cert = Certificate::from_pem(pem).map_err(|e| e.to_string())?.remove(0);
                let sans = cert.subject_alt_names().map_err(|e| e.to_string())?;
                if !sans.contains(&San::Dns(hostname.to_string())) {
                    reasons.push(format!("{path}: no DNS name {hostname}"));
                    continue;
                }
            }
            if digest.is_none() {
                reasons.push(format!("{path}: verifies for its own payload digest"));
                continue;
            }
            return Ok(());
        }
    }
    if digest.is_none() {
        reasons.insert(0, "no manifest, or an undigestable one".into());
    }
    Err(reasons.join("; "))
}

fn run_kind(kind: &str) {
    let all = cases::cases(kind);
    let mut agree = 0;
    let mut disagreements = Vec::new();
    for case in &all {
        let outcome = run(case);
        let ok = outcome.is_ok() == case.pass;
        println!(
            "{} {} (expected {}): {}",
            if ok { "agree   " } else { "DISAGREE" },
            case.id,
            if case.pass { "pass" } else { "fail" },
            outcome.as_ref().map_or_else(String::clone, |()| "verified".to_string())
        );
        if ok {
            agree += 1;
        } else {
            // No case of these kinds is a [policy] choice: every one must agree.
            disagreements.push(case.id.clone());
        }
    }
    println!("{kind}: {agree}/{} agree", all.len());
    assert!(disagreements.is_empty(), "{kind}: disagreements: {disagreements:?}");
}

/// `unknown-cosign-key` has no manifest, so it fails whatever happens: check that it
/// also fails for the reason it was written for, the key.
#[test]
fn unknown_key_is_a_bad_signature() {
    let all = cases::cases("cosign-key-signature");
    let case = all.iter().find(|c| c.id.ends_with("/unknown-cosign-key")).expect("the case");
    let sig = LegacySignature::from_containers_signature(&case.read("signature").expect("signature")).expect("parses");
    let digest = cosign::parse_simple_signing(&sig.payload).expect("payload").manifest_digest;
    let key = PublicKey::from_pem(&text(case, "key").expect("key")).expect("key");
    let authority = Authority::Key { key, require_tlog: false };
    let outcome = cosign::verify_legacy(&sig, &digest, None, &authority);
    assert!(matches!(outcome, Err(palisade_sigstore::Error::BadSignature(_))), "{outcome:?}");
}

#[test]
fn cosign_key_signature_cases() {
    run_kind("cosign-key-signature");
}

#[test]
fn cosign_keyless_signature_cases() {
    run_kind("cosign-keyless-signature");
}

// ---------------------------------------------------------------------------------
// The other corpus kinds that exercise this crate's trust, rekor and certificate
// modules on their own: trusted-root-parse, rekor-set, fulcio-certificate.
// ---------------------------------------------------------------------------------

fn agreement(kind: &str, run: impl Fn(&cases::Case) -> Result<(), String>) {
    let all = cases::cases(kind);
    let mut disagreements = Vec::new();
    for case in &all {
        let outcome = run(case);
        let ok = outcome.is_ok() == case.pass;
        println!("{} {}: {:?}", if ok { "agree   " } else { "DISAGREE" }, case.id, outcome);
        if !ok {
            disagreements.push(case.id.clone());
        }
    }
    println!("{kind}: {}/{} agree", all.len() - disagreements.len(), all.len());
    assert!(disagreements.is_empty(), "{kind}: disagreements: {disagreements:?}");
}

#[test]
fn trusted_root_parse_cases() {
    agreement("trusted-root-parse", |case| {
        if let Some(bytes) = case.read("certificate_authority") {
            return TrustedRoot::certificate_authority_from_json(&bytes).map(|_| ()).map_err(|e| e.to_string());
        }
        let bytes = case.read("trusted_root").or_else(|| case.read("trust_config")).ok_or("no file")?;
        let root = TrustedRoot::from_json(&bytes).map_err(|e| e.to_string())?;
        if root.tlogs().is_empty() || root.certificate_authorities().is_empty() {
            return Err("nothing trusted".into());
        }
        Ok(())
    });
}

#[test]
fn every_corpus_trust_root_loads() {
    // Production: Rekor v1 (P-256) and v2 (Ed25519), 2 Fulcio CAs, 2 CT logs, 1 TSA.
    let production = TrustedRoot::from_json(&std::fs::read(cases::corpus().join(PRODUCTION_ROOT)).unwrap()).unwrap();
    assert_eq!(production.tlogs().len(), 2);
    assert_eq!(production.certificate_authorities().len(), 2);
    assert_eq!(production.ctlogs().len(), 2);
    assert_eq!(production.timestamp_authorities().len(), 1);
    let rekor_v1 = base64_decode("wNI9atQGlz+VWfO6LRygH4QUfY/8W4RFwiT5i5WRgB0=");
    let log = production.find_tlog(&rekor_v1).expect("rekor.sigstore.dev");
    assert_eq!(log.base_url, "https://rekor.sigstore.dev");
    assert_eq!(log.key.algorithm(), "ecdsa-p256");
    assert!(log.valid_for.contains(1_700_000_000) && !log.valid_for.contains(1_600_000_000));
    assert!(production.tlogs().iter().any(|l| l.key.algorithm() == "ed25519"));

    // Staging's first CT log key is a PKCS#1 RSA key (deprecated PKCS1_RSA_PKCS1V5).
    let staging = std::fs::read(
        cases::corpus()
            .join("sigstore-python/sigstore/_store/https%3A%2F%2Ftuf-repo-cdn.sigstage.dev/trusted_root.json"),
    )
    .unwrap();
    let staging = TrustedRoot::from_json(&staging).unwrap();
    assert!(staging.ctlogs().iter().any(|l| l.key.algorithm() == "rsa"));

    // A missing validity start must be rejected, not read as "always".
    let missing_start = std::fs::read(cases::corpus().join(
        "sigstore-conformance/test/assets/bundle-verify/trust-root-tlog-missing-validity-start_fail/trusted_root.json",
    ))
    .unwrap();
    assert!(TrustedRoot::from_json(&missing_start).is_err());

    // Every other trust root of the corpus loads (JSON Lines: each line).
    let mut loaded = 0;
    for line in std::fs::read_to_string(cases::corpus().join("SOURCES.tsv")).unwrap().lines().skip(1) {
        let path = line.split('\t').next().unwrap();
        let name = path.rsplit('/').next().unwrap();
        if !(name.starts_with("trusted_root") && (name.ends_with(".json") || name.ends_with(".jsonl"))) {
            continue;
        }
        if path.contains("missing-validity-start") {
            continue;
        }
        let text = std::fs::read_to_string(cases::corpus().join(path)).unwrap();
        let docs: Vec<&str> = if name.ends_with(".jsonl") { text.lines().collect() } else { vec![&text] };
        for doc in docs {
            TrustedRoot::from_json(doc.as_bytes()).unwrap_or_else(|e| panic!("{path}: {e}"));
            loaded += 1;
        }
    }
    assert!(loaded > 30, "{loaded}");
}

fn base64_decode(text: &str) -> Vec<u8> {
    base64::Engine::decode(&base64::engine::general_purpose::STANDARD, text).unwrap()
}

#[test]
fn rekor_set_cases() {
    use palisade_sigstore::rekor::{RekorBundle, Verifier, check_hashedrekord};
    agreement("rekor-set", |case| {
        let root = trust_root(case).ok_or("no rekor key")?;
        let bundle = RekorBundle::from_json(&case.read("set").ok_or("no set")?).map_err(|e| e.to_string())?;
        bundle.verify(&root).map_err(|e| e.to_string())?;
        let cert =
            Certificate::from_pem(&text(case, "certificate").ok_or("no certificate")?).map_err(|e| e.to_string())?;
        let signature = base64_decode(text(case, "signature").ok_or("no signature")?.trim());
        let digest = format!("sha256:{}", hex(&Sha256::digest(case.read("payload").ok_or("no payload")?)));
        let body = bundle.body_json().map_err(|e| e.to_string())?;
        check_hashedrekord(&body, &signature, Verifier::Certificate(cert[0].der()), &digest)
            .map_err(|e| e.to_string())?;
        // The same entry is not about another payload, signature or certificate.
        let other = format!("sha256:{}", hex(&Sha256::digest(b"other")));
        assert!(check_hashedrekord(&body, &signature, Verifier::Certificate(cert[0].der()), &other).is_err());
        assert!(check_hashedrekord(&body, b"other", Verifier::Certificate(cert[0].der()), &digest).is_err());
        assert!(check_hashedrekord(&body, &signature, Verifier::PublicKey(cert[0].der()), &digest).is_err());
        assert_eq!(bundle.integrated_time, 1670870899);
        Ok(())
    });
}

#[test]
fn fulcio_certificate_cases() {
    use palisade_sigstore::certificate::verify_chain;
    agreement("fulcio-certificate", |case| {
        let root = trust_root(case).ok_or("no CA")?;
        let leaf = Certificate::from_pem(&text(case, "certificate").ok_or("no certificate")?)
            .map_err(|e| e.to_string())?
            .remove(0);
        let chain = Certificate::from_pem(&text(case, "chain").ok_or("no chain")?).map_err(|e| e.to_string())?;
        verify_chain(&leaf, &chain, &root, 1670870899).map_err(|e| e.to_string())?;
        // The same certificate an hour later has expired; without the intermediate it does not chain.
        assert!(verify_chain(&leaf, &chain, &root, 1670870899 + 3600).is_err());
        assert!(verify_chain(&leaf, &[], &root, 1670870899).is_err());
        let (issuer, subject) = leaf.identity().map_err(|e| e.to_string())?;
        if Some(issuer.as_str()) != case.identity("issuer") || Some(subject.as_str()) != case.identity("email") {
            return Err(format!("identity {issuer} {subject}"));
        }
        Ok(())
    });
}

/// A current Fulcio certificate (issuer in extension .1.8, URI SAN) chains through the
/// production trust root's CA chain at its Rekor integrated time, with a valid SCT.
#[test]
fn modern_fulcio_certificate_against_production_root() {
    use palisade_sigstore::certificate::{build_chain, verify_chain, verify_scts};
    let production = TrustedRoot::from_json(&std::fs::read(cases::corpus().join(PRODUCTION_ROOT)).unwrap()).unwrap();
    let bundle: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            cases::corpus().join("sigstore-conformance/test/assets/bundle-verify/happy-path-v0.3/bundle.sigstore.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let der = base64_decode(bundle["verificationMaterial"]["certificate"]["rawBytes"].as_str().unwrap());
    let leaf = Certificate::from_der(&der).unwrap();
    let at = 1710869186;
    let path = build_chain(&leaf, &[], &production, at).unwrap();
    assert_eq!(path.len(), 2, "intermediate and root from the trusted root");
    verify_scts(&leaf, &path[0], &production).unwrap();
    // Using the root as the SCT issuer changes issuer_key_hash: the SCT no longer verifies.
    assert!(verify_scts(&leaf, &path[1], &production).is_err());
    // A trust root without CT logs cannot vouch for the SCT.
    let mut no_ct = TrustedRoot::default();
    for ca in production.certificate_authorities() {
        no_ct.add_certificate_authority(ca.clone());
    }
    assert!(matches!(verify_scts(&leaf, &path[0], &no_ct), Err(palisade_sigstore::Error::Timestamp(_))));
    // Outside the certificate's ten minutes it does not verify.
    assert!(verify_chain(&leaf, &[], &production, leaf.not_after() + 1).is_err());
    assert!(verify_chain(&leaf, &[], &production, leaf.not_before() - 1).is_err());
    let (issuer, subject) = leaf.identity().unwrap();
    assert_eq!(issuer, "https://token.actions.githubusercontent.com");
    assert_eq!(
        subject,
        "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main"
    );
}

/// sigstore-go's scaffolding certificate has an otherName SAN (Fulcio username).
#[test]
fn othername_subject() {
    let bundle: serde_json::Value = serde_json::from_slice(
        &std::fs::read(cases::corpus().join("sigstore-go/pkg/testing/data/bundles/othername.sigstore.json")).unwrap(),
    )
    .unwrap();
    let material = &bundle["verificationMaterial"];
    let raw = material["certificate"]["rawBytes"]
        .as_str()
        .or_else(|| material["x509CertificateChain"]["certificates"][0]["rawBytes"].as_str())
        .unwrap();
    let leaf = Certificate::from_der(&base64_decode(raw)).unwrap();
    assert_eq!(leaf.identity().unwrap(), ("http://oidc.local:8080".to_string(), "foo!oidc.local".to_string()));
}

/// The keyless fixture, altered: each piece of evidence matters.
#[test]
fn keyless_evidence_is_required() {
    use palisade_sigstore::Error;
    let all = cases::cases("cosign-keyless-signature");
    let case = all.iter().find(|c| c.id.ends_with("/dir-img-cosign-fulcio-rekor-valid")).unwrap();
    let root = trust_root(case).unwrap();
    let digest = manifest_digest(case).unwrap();
    let sig = LegacySignature::from_containers_signature(&case.read("signature").unwrap()).unwrap();
    let authority = Authority::Keyless {
        issuer: Matcher::Exact("https://github.com/login/oauth".into()),
        subject: Matcher::Exact("mitr@redhat.com".into()),
    };
    let verified = cosign::verify_legacy(&sig, &digest, Some(&root), &authority).unwrap();
    assert_eq!(verified.signed_at, Some(1674247893));
    assert_eq!(verified.digest, digest);
    assert!(matches!(verified.signer, palisade_sigstore::Signer::Certificate { .. }));

    // No Rekor bundle: keyless has no signing time.
    let no_bundle = LegacySignature { bundle: None, ..sig.clone() };
    assert!(matches!(
        cosign::verify_legacy(&no_bundle, &digest, Some(&root), &authority),
        Err(Error::TransparencyLog(_))
    ));

    // The Rekor bundle of another signature (the key-signed fixture, same production log):
    // its SET verifies, but its entry is for another signature and key.
    let other = LegacySignature::from_containers_signature(
        &std::fs::read(
            cases::corpus().join("container-libs/image/signature/fixtures/dir-img-cosign-key-rekor-valid/signature-1"),
        )
        .unwrap(),
    )
    .unwrap();
    let swapped = LegacySignature { bundle: other.bundle.clone(), ..sig.clone() };
    assert!(matches!(
        cosign::verify_legacy(&swapped, &digest, Some(&root), &authority),
        Err(Error::TransparencyLog(_))
    ));

    // A tampered integrated time breaks the SET.
    let bundle = sig.bundle.clone().unwrap();
    let tampered =
        LegacySignature { bundle: Some(bundle.replace("\"integratedTime\":", "\"integratedTime\":1")), ..sig.clone() };
    assert!(cosign::verify_legacy(&tampered, &digest, Some(&root), &authority).is_err());

    // No CT log: no SCT can be checked.
    let mut no_ct = TrustedRoot::default();
    for ca in root.certificate_authorities() {
        no_ct.add_certificate_authority(ca.clone());
    }
    for log in root.tlogs() {
        no_ct.add_tlog(log.clone());
    }
    assert!(matches!(cosign::verify_legacy(&sig, &digest, Some(&no_ct), &authority), Err(Error::Timestamp(_))));

    // A CA whose validity window ends before the signing time.
    let mut expired_ca = TrustedRoot::default();
    for ca in root.certificate_authorities() {
        expired_ca.add_certificate_authority(CertificateAuthority {
            valid_for: Validity { start: 0, end: Some(1_600_000_000) },
            ..ca.clone()
        });
    }
    for log in root.tlogs() {
        expired_ca.add_tlog(log.clone());
    }
    for log in root.ctlogs() {
        expired_ca.add_ctlog(log.clone());
    }
    assert!(matches!(
        cosign::verify_legacy(&sig, &digest, Some(&expired_ca), &authority),
        Err(Error::UntrustedCertificate(_))
    ));

    // Another issuer, a regex subject.
    let wrong_issuer = Authority::Keyless {
        issuer: Matcher::Exact("https://accounts.google.com".into()),
        subject: Matcher::regex(".*@redhat\\.com").unwrap(),
    };
    assert!(matches!(
        cosign::verify_legacy(&sig, &digest, Some(&root), &wrong_issuer),
        Err(Error::IdentityMismatch(_))
    ));
    let regex = Authority::Keyless {
        issuer: Matcher::Exact("https://github.com/login/oauth".into()),
        subject: Matcher::regex(".*@redhat\\.com").unwrap(),
    };
    assert!(cosign::verify_legacy(&sig, &digest, Some(&root), &regex).is_ok());

    // A key authority does not accept the certificate's signature.
    let key = PublicKey::from_pem(
        &std::fs::read_to_string(cases::corpus().join("container-libs/image/signature/fixtures/cosign.pub")).unwrap(),
    )
    .unwrap();
    let by_key = Authority::Key { key, require_tlog: false };
    assert!(matches!(cosign::verify_legacy(&sig, &digest, Some(&root), &by_key), Err(Error::BadSignature(_))));
}

/// The RFC 3161 annotation path, with a conformance bundle's pieces laid out as cosign
/// annotations (a keyless signature over `a.txt` from staging, timestamped by staging's
/// TSA, no Rekor SET): everything up to the payload verifies, then the payload is not a
/// simple-signing one. A timestamp over other bytes is refused.
#[test]
fn rfc3161_annotation_gives_the_signing_time() {
    use palisade_sigstore::Error;
    let dir = cases::corpus().join("sigstore-conformance/test/assets/bundle-verify");
    let bundle: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.join("rekor2-timestamp-with-embedded-cert/bundle.sigstore.json")).unwrap(),
    )
    .unwrap();
    let root = TrustedRoot::from_json(
        &std::fs::read(dir.join("rekor2-timestamp-with-embedded-cert/trusted_root.json")).unwrap(),
    )
    .unwrap();
    let material = &bundle["verificationMaterial"];
    let cert_b64 = material["certificate"]["rawBytes"].as_str().unwrap();
    let pem = format!("-----BEGIN CERTIFICATE-----\n{cert_b64}\n-----END CERTIFICATE-----\n");
    let token = material["timestampVerificationData"]["rfc3161Timestamps"][0]["signedTimestamp"].as_str().unwrap();
    let sig = LegacySignature {
        payload: std::fs::read(dir.join("a.txt")).unwrap(),
        signature: bundle["messageSignature"]["signature"].as_str().unwrap().to_string(),
        certificate: Some(pem),
        rfc3161_timestamp: Some(format!("{{\"SignedRFC3161Timestamp\":\"{token}\"}}")),
        ..Default::default()
    };
    let leaf = Certificate::from_pem(sig.certificate.as_deref().unwrap()).unwrap().remove(0);
    let (issuer, subject) = leaf.identity().unwrap();
    let authority = Authority::Keyless { issuer: Matcher::Exact(issuer), subject: Matcher::Exact(subject) };
    let options = LegacyOptions { keyless_require_tlog: false, require_sct: true, now: None };
    let digest = "sha256:0000000000000000000000000000000000000000000000000000000000000000";
    let outcome = cosign::verify_legacy_with(&sig, digest, Some(&root), &authority, &options);
    assert!(
        matches!(&outcome, Err(Error::Malformed { what: "simple signing payload", .. })),
        "everything but the payload verifies: {outcome:?}"
    );

    // The timestamp of another signature (same TSA): not over these signature bytes.
    let other: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.join("rekor2-timestamp-payload-mismatch_fail/bundle.sigstore.json")).unwrap(),
    )
    .unwrap();
    let other_token =
        other["verificationMaterial"]["timestampVerificationData"]["rfc3161Timestamps"][0]["signedTimestamp"]
            .as_str()
            .unwrap();
    if other_token != token {
        let swapped = LegacySignature {
            rfc3161_timestamp: Some(format!("{{\"SignedRFC3161Timestamp\":\"{other_token}\"}}")),
            ..sig.clone()
        };
        let outcome = cosign::verify_legacy_with(&swapped, digest, Some(&root), &authority, &options);
        assert!(matches!(outcome, Err(Error::Timestamp(_))), "{outcome:?}");
    }

    // Without any timestamp, keyless has no signing time unless told `now`.
    let bare = LegacySignature { rfc3161_timestamp: None, ..sig.clone() };
    let outcome = cosign::verify_legacy_with(&bare, digest, Some(&root), &authority, &options);
    assert!(matches!(outcome, Err(Error::TransparencyLog(_))), "{outcome:?}");
}
