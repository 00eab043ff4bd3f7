//! The offline Sigstore / cosign verifier (`palisade-sigstore`) against untrusted bytes:
//! bundles, cosign signature layers, and the parsers beneath them. The trust roots, keys
//! and artifact are real ones from the shared corpus (`$PALISADE_CORPUS/sigstore`, else
//! `../shared/corpus/sigstore` beside the repository), loaded once; without the corpus the
//! targets still run, against an empty trust root and no keys.
//!
//! What must hold, whatever the bytes: no panic, and an `Ok` is consistent with what was
//! asked (the signer is of the authority's kind, the digest is the one verified).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use palisade_sigstore::bundle::{self, Artifact, Bundle};
use palisade_sigstore::certificate::Certificate;
use palisade_sigstore::cosign::{self, LegacyOptions, LegacySignature};
use palisade_sigstore::dsse::{Envelope, Statement};
use palisade_sigstore::identity::{Authority, Matcher};
use palisade_sigstore::keys::PublicKey;
use palisade_sigstore::merkle::{self, Checkpoint};
use palisade_sigstore::rekor::RekorBundle;
use palisade_sigstore::trust::{CertificateAuthority, TransparencyLog, TrustedRoot, Validity};
use palisade_sigstore::{Signer, Verified, timestamp};
use sha2::{Digest, Sha256};

/// The production trust root snapshot (Fulcio, Rekor v1 and v2, CT logs, a TSA).
pub const PRODUCTION_ROOT: &str =
    "sigstore-python/sigstore/_store/https%3A%2F%2Ftuf-repo-cdn.sigstore.dev/trusted_root.json";
/// The artifact most conformance bundles sign.
pub const ARTIFACT: &str = "sigstore-conformance/test/assets/bundle-verify/a.txt";
/// The key of the conformance public-key bundles (checked against the production root).
pub const BUNDLE_KEY: &str = "sigstore-conformance/test/assets/bundle-verify/managed-key-happy-path/key.pub";
/// containers/image's cosign fixtures: keys, Rekor key, Fulcio CA, private PKI.
pub const FIXTURES: &str = "container-libs/image/signature/fixtures";
/// containers/image's stored form of one signature layer.
pub const CONTAINERS_MAGIC: &[u8] = b"\x00sigstore-json\n";
/// The fields of the split form of a cosign signature, in order, separated by NUL bytes:
/// the payload, then these annotations.
pub const LEGACY_FIELDS: [&str; 5] = [
    cosign::ANNOTATION_SIGNATURE,
    cosign::ANNOTATION_CERTIFICATE,
    cosign::ANNOTATION_CHAIN,
    cosign::ANNOTATION_BUNDLE,
    cosign::ANNOTATION_RFC3161,
];
/// The time a private-PKI (no transparency log) signature is checked at: inside the
/// fixtures' PKI certificate (2024-10 .. 2052).
const PKI_NOW: i64 = 1_750_000_000;

/// The corpus root's `sigstore` folder, if there is one: `$PALISADE_CORPUS/sigstore`, else
/// `shared/corpus/sigstore` beside the repository (from this crate's source, then from the
/// working directory, as `fuzz/run` runs in `fuzz/`).
pub fn corpus_dir() -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("PALISADE_CORPUS").map(PathBuf::from),
        Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus")),
        Some(PathBuf::from("../../shared/corpus")),
    ];
    candidates.into_iter().flatten().map(|c| c.join("sigstore")).find(|d| d.join("cases.tsv").is_file())
}

struct Fixtures {
    /// The production trust root (empty without the corpus).
    root: TrustedRoot,
    /// The production root plus the cosign fixtures' Rekor key, Fulcio CA and private PKI.
    cosign_root: TrustedRoot,
    artifact: Vec<u8>,
    artifact_sha256: String,
    /// Anyone with a certificate: every identity check passes, so the rest is reached.
    keyless: Authority,
    /// The conformance managed key, with a transparency log.
    bundle_key: Option<Authority>,
    /// cosign.pub (no transparency log), cosign2.pub (with one).
    cosign_keys: Vec<Authority>,
    /// The production Rekor logs' keys and checkpoint origins (hosts).
    rekor_keys: Vec<(PublicKey, String)>,
}

fn read(dir: &Option<PathBuf>, path: &str) -> Option<Vec<u8>> {
    std::fs::read(dir.as_ref()?.join(path)).ok()
}

fn read_key(dir: &Option<PathBuf>, path: &str) -> Option<PublicKey> {
    PublicKey::from_pem(&String::from_utf8(read(dir, path)?).ok()?).ok()
}

fn read_certs(dir: &Option<PathBuf>, path: &str) -> Vec<Certificate> {
    read(dir, path)
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|pem| Certificate::from_pem(&pem).ok())
        .unwrap_or_default()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn fixtures() -> &'static Fixtures {
    static FIXTURES_CELL: OnceLock<Fixtures> = OnceLock::new();
    FIXTURES_CELL.get_or_init(|| {
        let dir = corpus_dir();
        if dir.is_none() {
            eprintln!("palisade-fuzz: no Sigstore corpus (set PALISADE_CORPUS): empty trust root, no keys");
        }
        let root = read(&dir, PRODUCTION_ROOT).and_then(|b| TrustedRoot::from_json(&b).ok()).unwrap_or_default();
        if dir.is_some() && root.tlogs().is_empty() {
            eprintln!("palisade-fuzz: {PRODUCTION_ROOT} did not load: empty trust root");
        }

        let mut cosign_root = root.clone();
        if let Some(key) = read_key(&dir, &format!("{FIXTURES}/rekor.pub")) {
            cosign_root.add_tlog(TransparencyLog::from_key("rekor", key, Validity::always()));
        }
        for cert in read_certs(&dir, &format!("{FIXTURES}/fulcio_v1.crt.pem")) {
            cosign_root.add_certificate_authority(CertificateAuthority {
                chain: vec![cert.der().to_vec()],
                valid_for: Validity::always(),
                uri: String::new(),
            });
        }
        let intermediates = read_certs(&dir, &format!("{FIXTURES}/pki_intermediate_crts.pem"));
        for anchor in read_certs(&dir, &format!("{FIXTURES}/pki_root_crts.pem")) {
            let mut chain: Vec<Vec<u8>> = intermediates.iter().map(|c| c.der().to_vec()).collect();
            chain.push(anchor.der().to_vec());
            cosign_root.add_certificate_authority(CertificateAuthority {
                chain,
                valid_for: Validity::always(),
                uri: String::new(),
            });
        }

        let artifact = read(&dir, ARTIFACT).unwrap_or_else(|| b"hello, world\n".to_vec());
        let artifact_sha256 = hex(&Sha256::digest(&artifact));
        let any = || Matcher::regex(".*").expect("a valid regular expression");
        let cosign_keys = [("cosign.pub", false), ("cosign2.pub", true)]
            .into_iter()
            .filter_map(|(name, require_tlog)| {
                let key = read_key(&dir, &format!("{FIXTURES}/{name}"))?;
                Some(Authority::Key { key, require_tlog })
            })
            .collect();
        let rekor_keys =
            root.tlogs().iter().map(|log| (log.key.clone(), merkle::origin_of(&log.base_url).to_string())).collect();
        Fixtures {
            root,
            cosign_root,
            artifact,
            artifact_sha256,
            keyless: Authority::Keyless { issuer: any(), subject: any() },
            bundle_key: read_key(&dir, BUNDLE_KEY).map(|key| Authority::Key { key, require_tlog: true }),
            cosign_keys,
            rekor_keys,
        }
    })
}

/// A verification that succeeded is by a signer of the authority's kind (and key).
fn check_signer(verified: &Verified, authority: &Authority) {
    match (authority, &verified.signer) {
        (Authority::Key { key, .. }, Signer::Key { key_id }) => assert_eq!(key_id, &key.key_id()),
        (Authority::Keyless { .. }, Signer::Certificate { .. }) => {}
        (authority, signer) => panic!("verified for {authority:?}, but signed by {signer:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// sigstore_bundle

/// Bytes as a Sigstore bundle: parsed, verified as a cosign 3 image signature and for the
/// artifact (its bytes and its digest), keyless and with a key, against the production root.
pub fn sigstore_bundle(data: &[u8]) {
    let f = fixtures();
    let parsed = Bundle::from_json(data);
    if let Ok(b) = &parsed {
        for e in &b.tlog_entries {
            assert!(e.log_index >= 0, "{e:?}");
            if let Some(p) = &e.inclusion_proof {
                assert!(p.log_index >= 0 && p.tree_size >= 0, "{p:?}");
            }
        }
        let _ = b.signature();
    }
    let image_digest = format!("sha256:{}", f.artifact_sha256);
    let digest = Artifact::Digest { algorithm: "sha256", hex: &f.artifact_sha256 };
    let authorities = std::iter::once(&f.keyless).chain(&f.bundle_key);
    for authority in authorities {
        let results = [
            bundle::verify_image(data, &image_digest, &f.root, authority),
            bundle::verify(data, Artifact::Bytes(&f.artifact), &f.root, authority),
            bundle::verify(data, digest, &f.root, authority),
        ];
        for (i, result) in results.iter().enumerate() {
            let Ok(verified) = result else { continue };
            assert!(parsed.is_ok(), "verified a bundle that does not parse");
            check_signer(verified, authority);
            if i == 0 {
                assert_eq!(verified.digest, image_digest);
            } else {
                let (alg, hex) = verified.digest.split_once(':').expect("alg:hex");
                assert!(matches!(alg, "sha256" | "sha384" | "sha512"), "{verified:?}");
                assert!(!hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit()), "{verified:?}");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// cosign_signature

/// A cosign signature layer from bytes: containers/image's stored form (`\0sigstore-json\n`
/// and JSON), else the payload and the annotations of [`LEGACY_FIELDS`] separated by NUL
/// bytes (absent when the bytes end before them; none at all without a NUL).
pub fn legacy_signature(data: &[u8]) -> palisade_sigstore::Result<LegacySignature> {
    if data.starts_with(CONTAINERS_MAGIC) {
        return LegacySignature::from_containers_signature(data);
    }
    let mut parts = data.split(|b| *b == 0);
    let payload = parts.next().unwrap_or_default().to_vec();
    let values: Vec<String> = parts.map(|p| String::from_utf8_lossy(p).into_owned()).collect();
    let annotations = LEGACY_FIELDS.iter().zip(&values).map(|(name, value)| (*name, value.as_str()));
    LegacySignature::from_layer(payload, annotations)
}

/// The split form of a signature, as [`legacy_signature`] reads it (for seeds).
pub fn split_form(sig: &LegacySignature) -> Vec<u8> {
    let mut out = sig.payload.clone();
    let fields = [
        Some(&sig.signature),
        sig.certificate.as_ref(),
        sig.chain.as_ref(),
        sig.bundle.as_ref(),
        sig.rfc3161_timestamp.as_ref(),
    ];
    let last = fields.iter().rposition(Option::is_some).unwrap_or(0);
    for field in &fields[..=last] {
        out.push(0);
        out.extend_from_slice(field.map_or("", String::as_str).as_bytes());
    }
    out
}

/// Bytes as a cosign signature layer, verified for its own payload's image digest (else a
/// fixed one) with each fixture key, keyless with cosign's defaults, keyless as a private PKI
/// (no log, no SCT), and with a key but no trust root.
pub fn cosign_signature(data: &[u8]) {
    let f = fixtures();
    let Ok(sig) = legacy_signature(data) else { return };
    let simple = cosign::parse_simple_signing(&sig.payload);
    if let Ok(simple) = &simple {
        for exact in [false, true] {
            let _ = cosign::reference_matches(&simple.docker_reference, "192.168.64.2:5000/cosign-signed/key-1", exact);
            let _ = cosign::reference_matches("docker.io/library/busybox:latest", &simple.docker_reference, exact);
        }
    }
    if let Some(annotation) = &sig.rfc3161_timestamp {
        let _ = cosign::rfc3161_token(annotation);
    }
    let image_digest = match &simple {
        Ok(s) => s.manifest_digest.clone(),
        Err(_) => format!("sha256:{}", "0".repeat(64)),
    };
    let pki = LegacyOptions { keyless_require_tlog: false, require_sct: false, now: Some(PKI_NOW) };
    let mut runs: Vec<(&Authority, Option<&TrustedRoot>, LegacyOptions)> = Vec::new();
    for key in &f.cosign_keys {
        runs.push((key, Some(&f.cosign_root), LegacyOptions::default()));
    }
    runs.push((&f.keyless, Some(&f.cosign_root), LegacyOptions::default()));
    runs.push((&f.keyless, Some(&f.cosign_root), pki));
    if let Some(key) = f.cosign_keys.first() {
        runs.push((key, None, LegacyOptions::default()));
    }
    for (authority, root, options) in runs {
        let result = if options == LegacyOptions::default() {
            cosign::verify_legacy(&sig, &image_digest, root, authority)
        } else {
            cosign::verify_legacy_with(&sig, &image_digest, root, authority, &options)
        };
        let Ok(verified) = result else { continue };
        check_signer(&verified, authority);
        assert!(verified.digest.eq_ignore_ascii_case(image_digest.trim()), "{verified:?} for {image_digest}");
        assert!(verified.docker_reference.is_some());
        assert!(simple.is_ok(), "verified a payload that is not simple signing");
        if root.is_none() {
            assert_eq!(verified.signed_at, None, "a signing time without a trust root");
        }
        if matches!(authority, Authority::Keyless { .. }) && options.keyless_require_tlog {
            assert!(verified.signed_at.is_some(), "keyless without a verified signing time");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// sigstore_parsers

/// The same bytes to every parser (checkpoint, RFC 3161, X.509 DER and PEM, trust root, DSSE,
/// in-toto, keys, Rekor bundle, simple signing), and what is parsed to its readers; the first
/// 16 bytes as a Merkle inclusion proof's index and size, the rest as its hashes.
pub fn sigstore_parsers(data: &[u8]) {
    let f = fixtures();
    let text = std::str::from_utf8(data).ok();

    if let Some(text) = text
        && let Ok(cp) = Checkpoint::parse(text)
    {
        assert_eq!(cp.root_hash.len(), 32);
        assert!(!cp.signatures.is_empty() && cp.signatures.len() <= 100);
        assert!(cp.text.ends_with('\n') && text.starts_with(&cp.text), "{cp:?}");
        for (key, origin) in &f.rekor_keys {
            let _ = merkle::verify_checkpoint(&cp, key, merkle::Signer::KeyOnly, None);
            let _ = merkle::verify_checkpoint(&cp, key, merkle::Signer::Named(origin), Some([0; 4]));
        }
    }

    if timestamp::parse(data).is_ok() {
        let _ = timestamp::verify(data, b"", &f.root);
    }

    let mut certs = Vec::new();
    if let Ok(cert) = Certificate::from_der(data) {
        assert_eq!(cert.der(), data);
        certs.push(cert);
    }
    if let Some(text) = text
        && let Ok(found) = Certificate::from_pem(text)
    {
        assert!(!found.is_empty());
        certs.extend(found.into_iter().take(4));
    }
    for cert in &certs {
        if let Ok(key) = cert.public_key() {
            let _ = key.key_id();
        }
        let _ = cert.subject_alt_names();
        let _ = cert.oidc_issuer();
        let _ = cert.identity();
        let _ = cert.valid_at(cert.not_before());
        let _ = cert.valid_at(cert.not_after());
    }

    if let Ok(root) = TrustedRoot::from_json(data) {
        for log in root.tlogs() {
            assert!(root.find_tlog(&log.log_id).is_some());
        }
        for log in root.ctlogs() {
            assert!(root.find_ctlog(&log.log_id).is_some());
        }
    }
    let _ = TrustedRoot::certificate_authority_from_json(data);

    if let Ok(env) = Envelope::from_json(data) {
        let pae = env.pae();
        assert!(pae.starts_with(b"DSSEv1 ") && pae.ends_with(&env.payload));
        let _ = env.statement();
    }
    if let Ok(statement) = Statement::from_json(data) {
        assert!(!statement.subject.is_empty());
        let _ = statement.has_subject_digest("sha256", &f.artifact_sha256);
    }

    let mut keys = Vec::new();
    keys.extend(PublicKey::from_der(data).ok());
    keys.extend(PublicKey::from_pkcs1_rsa(data).ok());
    if let Some(text) = text {
        keys.extend(PublicKey::from_pem(text).ok());
    }
    for key in &keys {
        assert!(key.key_id().starts_with("sha256:"));
        let _ = key.algorithm();
        let _ = key.verify(b"message", data);
        if let Some(alg) = key.message_hash() {
            let _ = key.verify_prehashed(&alg.digest(b"message"), data);
        }
    }

    if let Ok(rekor) = RekorBundle::from_json(data) {
        let _ = rekor.verify(&f.cosign_root);
        let _ = rekor.body_json();
    }
    let _ = cosign::parse_simple_signing(data);

    if let Some((head, rest)) = data.split_first_chunk::<16>() {
        let index = u64::from_le_bytes(head[..8].try_into().expect("8 bytes"));
        let size = u64::from_le_bytes(head[8..].try_into().expect("8 bytes"));
        let (hashes, _) = rest.as_chunks::<32>();
        let leaf = merkle::leaf_hash(b"leaf");
        let _ = merkle::root_from_inclusion_proof(index, size, &leaf, hashes);
        let _ = merkle::root_from_inclusion_proof(index % 64, size % 64, &leaf, hashes);
    }
}
