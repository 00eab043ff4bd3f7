//! Signing material for the image-verification tests, made offline by the
//! test itself (there is no cosign binary here): a Sigstore instance of our
//! own (a Fulcio-like CA, a certificate-transparency log and a Rekor log,
//! and the `trusted_root.json` naming them), cosign key pairs, minimal OCI
//! images, and cosign's two ways of attaching signatures and attestations to
//! them (the legacy `sha256-<hex>.sig` and `sha256-<hex>.att` tags, and a
//! Sigstore bundle v0.3 as an OCI referrer).
//!
//! Declared by the test crates themselves (`#[path = "common/sigstore.rs"]
//! mod sigstore;`) after `mod common;`.
//!
//! What each piece follows:
//! - `trusted_root.json`: protobuf-specs `TrustedRoot` (JSON mapping: camelCase,
//!   bytes in base64, 64-bit integers as strings);
//! - leaf certificates: Fulcio's profile (empty subject, critical SAN, key usage
//!   digitalSignature, EKU codeSigning, OIDC issuer in 1.3.6.1.4.1.57264.1.1 and
//!   .1.8) with an embedded SCT (RFC 6962 §3.2–3.3: the log signs the precertificate
//!   entry, the leaf's TBSCertificate without the SCT list extension);
//! - Rekor: `hashedrekord` and `dsse` 0.0.1 bodies (canonical JSON), the signed
//!   entry timestamp over `{body, integratedTime, logID, logIndex}`, RFC 6962
//!   inclusion proofs and a signed-note checkpoint;
//! - cosign's SIGNATURE_SPEC (simple signing payload, `.sig` manifest and its
//!   annotations) and BUNDLE_SPEC (referrer manifest, referrers tag schema);
//! - cosign `attest` (before cosign 3): an in-toto statement in a DSSE envelope
//!   (PAE over `application/vnd.in-toto+json`), one layer of media type
//!   `application/vnd.dsse.envelope.v1+json` of the `.att` manifest, annotated
//!   `predicateType`, an empty `dev.cosignproject.cosign/signature`, and the
//!   certificate, chain and Rekor `dsse` entry's SET as for a signature.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use base64::Engine as _;
use palisade::bundle::Descriptor;
use palisade::bundle::registry as oci;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::common::registry::{Mode, Registry};
use crate::common::{palisade, root};

// ---------------------------------------------------------------------------
// Small utilities

pub fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// PEM with 64-character lines.
pub fn pem(label: &str, der: &[u8]) -> String {
    let text = b64(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in text.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// RFC 3339, UTC, whole seconds.
pub fn rfc3339(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0).unwrap().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn offset_time(secs: i64) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(secs).unwrap()
}

/// Canonical JSON (RFC 8785 for the values used here: object keys sorted, no
/// white space), whatever serde_json's map ordering is in this build.
pub fn canonical_json(value: &Value) -> String {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let items: Vec<String> =
                keys.into_iter().map(|k| format!("{}:{}", Value::String(k.clone()), canonical_json(&map[k]))).collect();
            format!("{{{}}}", items.join(","))
        }
        Value::Array(items) => format!("[{}]", items.iter().map(canonical_json).collect::<Vec<_>>().join(",")),
        other => other.to_string(),
    }
}

/// A short random hex string (unique image contents and tags per run).
pub fn nonce() -> String {
    let mut bytes = [0u8; 8];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut bytes);
    hex(&bytes)
}

// ---------------------------------------------------------------------------
// DER, as much as certificates with custom extensions need

fn der_length(len: usize) -> Vec<u8> {
    match len {
        0..=0x7f => vec![len as u8],
        0x80..=0xff => vec![0x81, len as u8],
        0x100..=0xffff => vec![0x82, (len >> 8) as u8, len as u8],
        _ => vec![0x83, (len >> 16) as u8, (len >> 8) as u8, len as u8],
    }
}

fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    out.extend(der_length(content.len()));
    out.extend_from_slice(content);
    out
}

/// (tag, header length, content length) of the element at the start of `data`.
fn der_header(data: &[u8]) -> (u8, usize, usize) {
    let tag = data[0];
    let first = data[1] as usize;
    if first < 0x80 {
        return (tag, 2, first);
    }
    let n = first & 0x7f;
    let len = data[2..2 + n].iter().fold(0usize, |acc, b| (acc << 8) | *b as usize);
    (tag, 2 + n, len)
}

/// The elements inside a constructed element (SEQUENCE, [3], ...).
fn der_children(element: &[u8]) -> Vec<&[u8]> {
    let (_, header, len) = der_header(element);
    let mut rest = &element[header..header + len];
    let mut out = Vec::new();
    while !rest.is_empty() {
        let (_, h, l) = der_header(rest);
        out.push(&rest[..h + l]);
        rest = &rest[h + l..];
    }
    out
}

/// The TBSCertificate of a DER certificate.
pub fn tbs_certificate(cert_der: &[u8]) -> Vec<u8> {
    der_children(cert_der)[0].to_vec()
}

/// The TBSCertificate with its last extension removed: how a verifier
/// rebuilds the precertificate entry from a certificate whose SCT list is
/// its last extension.
pub fn tbs_without_last_extension(tbs: &[u8]) -> Vec<u8> {
    let mut content = Vec::new();
    for element in der_children(tbs) {
        if element[0] == 0xa3 {
            let extensions = der_children(element)[0];
            let kept = der_children(extensions);
            let kept: Vec<u8> = kept[..kept.len() - 1].concat();
            content.extend(der(0xa3, &der(0x30, &kept)));
        } else {
            content.extend_from_slice(element);
        }
    }
    der(0x30, &content)
}

// ---------------------------------------------------------------------------
// Keys

/// A cosign signing key.
#[derive(Clone)]
pub enum Key {
    /// ECDSA P-256, signing with SHA-256 (cosign's default).
    P256(p256::ecdsa::SigningKey),
    /// ECDSA P-384, signing with SHA-384.
    P384(p384::ecdsa::SigningKey),
    /// Ed25519 (pure).
    Ed25519(ed25519_dalek::SigningKey),
}

impl Key {
    pub fn p256() -> Key {
        Key::P256(p256::ecdsa::SigningKey::random(&mut rand_core::OsRng))
    }

    pub fn p384() -> Key {
        Key::P384(p384::ecdsa::SigningKey::random(&mut rand_core::OsRng))
    }

    pub fn ed25519() -> Key {
        let mut seed = [0u8; 32];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut seed);
        Key::Ed25519(ed25519_dalek::SigningKey::from_bytes(&seed))
    }

    /// The DER SubjectPublicKeyInfo.
    pub fn spki(&self) -> Vec<u8> {
        match self {
            Key::P256(k) => {
                use p256::pkcs8::EncodePublicKey as _;
                k.verifying_key().to_public_key_der().unwrap().as_bytes().to_vec()
            }
            Key::P384(k) => {
                use p384::pkcs8::EncodePublicKey as _;
                k.verifying_key().to_public_key_der().unwrap().as_bytes().to_vec()
            }
            Key::Ed25519(k) => {
                // SEQUENCE { SEQUENCE { OID 1.3.101.112 }, BIT STRING { key } } (RFC 8410)
                let mut spki = vec![0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];
                spki.extend_from_slice(k.verifying_key().as_bytes());
                spki
            }
        }
    }

    pub fn public_pem(&self) -> String {
        pem("PUBLIC KEY", &self.spki())
    }

    /// Write the public key (PEM) to `path`.
    pub fn write_public(&self, path: &Path) {
        std::fs::write(path, self.public_pem()).unwrap();
    }

    /// A signature as cosign makes it: ECDSA as ASN.1 DER, Ed25519 raw.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        use ed25519_dalek::Signer as _;
        match self {
            Key::P256(k) => {
                let signature: p256::ecdsa::DerSignature = k.sign(message);
                signature.as_bytes().to_vec()
            }
            Key::P384(k) => {
                let signature: p384::ecdsa::DerSignature = k.sign(message);
                signature.as_bytes().to_vec()
            }
            Key::Ed25519(k) => k.sign(message).to_bytes().to_vec(),
        }
    }
}

// ---------------------------------------------------------------------------
// Transparency logs (Rekor, and a certificate-transparency log)

/// A log of our own: its key, id, and (for Rekor) the leaves appended so far.
#[derive(Clone)]
pub struct Log {
    pub key: p256::ecdsa::SigningKey,
    /// DER SubjectPublicKeyInfo.
    pub spki: Vec<u8>,
    /// SHA-256 of the DER SubjectPublicKeyInfo (Rekor's logID, RFC 6962's LogID).
    pub id: [u8; 32],
    pub base_url: String,
    leaves: Arc<Mutex<Vec<[u8; 32]>>>,
}

fn leaf_hash(data: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(data);
    h.finalize().into()
}

fn node_hash(left: &[u8; 32], right: &[u8; 32]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The largest power of two smaller than n (n > 1).
fn split(n: usize) -> usize {
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

/// RFC 6962 §2.1 MTH over leaf hashes.
fn merkle_root(leaves: &[[u8; 32]]) -> [u8; 32] {
    if leaves.len() == 1 {
        return leaves[0];
    }
    let k = split(leaves.len());
    node_hash(&merkle_root(&leaves[..k]), &merkle_root(&leaves[k..]))
}

/// RFC 6962 §2.1.1 PATH(m, D[n]), leaf to root.
fn inclusion_path(m: usize, leaves: &[[u8; 32]]) -> Vec<[u8; 32]> {
    if leaves.len() <= 1 {
        return Vec::new();
    }
    let k = split(leaves.len());
    if m < k {
        let mut path = inclusion_path(m, &leaves[..k]);
        path.push(merkle_root(&leaves[k..]));
        path
    } else {
        let mut path = inclusion_path(m - k, &leaves[k..]);
        path.push(merkle_root(&leaves[..k]));
        path
    }
}

impl Log {
    /// A new log (its key made here) at `base_url`.
    pub fn new(base_url: &str) -> Log {
        use p256::pkcs8::EncodePublicKey as _;
        let key = p256::ecdsa::SigningKey::random(&mut rand_core::OsRng);
        let spki = key.verifying_key().to_public_key_der().unwrap().as_bytes().to_vec();
        let id = sha256(&spki);
        Log { key, spki, id, base_url: base_url.to_string(), leaves: Arc::default() }
    }

    fn sign(&self, message: &[u8]) -> Vec<u8> {
        use p256::ecdsa::signature::Signer as _;
        let signature: p256::ecdsa::DerSignature = self.key.sign(message);
        signature.as_bytes().to_vec()
    }

    /// The `tlogs` / `ctlogs` entry of a trusted root.
    fn trusted_root_entry(&self, valid_from: i64) -> Value {
        json!({
            "baseUrl": self.base_url,
            "hashAlgorithm": "SHA2_256",
            "publicKey": {
                "rawBytes": b64(&self.spki),
                "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                "validFor": {"start": rfc3339(valid_from)},
            },
            "logId": {"keyId": b64(&self.id)},
        })
    }

    /// RFC 6962 §3.2: the serialized SignedCertificateTimestamp of a precertificate.
    fn sct(&self, issuer_spki: &[u8], precert_tbs: &[u8], timestamp_ms: u64) -> Vec<u8> {
        let mut signed = vec![0u8, 0u8]; // v1, certificate_timestamp
        signed.extend(timestamp_ms.to_be_bytes());
        signed.extend([0u8, 1u8]); // precert_entry
        signed.extend(sha256(issuer_spki));
        let len = precert_tbs.len();
        signed.extend([(len >> 16) as u8, (len >> 8) as u8, len as u8]);
        signed.extend_from_slice(precert_tbs);
        signed.extend([0u8, 0u8]); // no CtExtensions
        let signature = self.sign(&signed);

        let mut sct = vec![0u8]; // v1
        sct.extend(self.id);
        sct.extend(timestamp_ms.to_be_bytes());
        sct.extend([0u8, 0u8]); // no extensions
        sct.extend([4u8, 3u8]); // sha256, ecdsa
        sct.extend((signature.len() as u16).to_be_bytes());
        sct.extend(signature);
        sct
    }

    /// Append an entry (a Rekor body, canonical JSON) and return all the
    /// evidence Rekor would give for it.
    pub fn append(&self, kind: &'static str, body: &Value, integrated_time: i64) -> TlogEntry {
        let body = canonical_json(body).into_bytes();
        let (log_index, tree_size, root_hash, hashes) = {
            let mut leaves = self.leaves.lock().unwrap();
            leaves.push(leaf_hash(&body));
            let index = leaves.len() - 1;
            (index as u64, leaves.len() as u64, merkle_root(&leaves), inclusion_path(index, &leaves))
        };
        let set_payload = json!({
            "body": b64(&body),
            "integratedTime": integrated_time,
            "logID": hex(&self.id),
            "logIndex": log_index,
        });
        let signed_entry_timestamp = self.sign(canonical_json(&set_payload).as_bytes());
        // A signed note (Rekor v1's checkpoint): origin, size, root; then the
        // signature line with a 4-byte key hint (the start of the log id).
        let host = self.base_url.trim_start_matches("https://");
        let note = format!("{host} - 2605736670972794746\n{tree_size}\n{}\n", b64(&root_hash));
        let mut hinted = self.id[..4].to_vec();
        hinted.extend(self.sign(note.as_bytes()));
        let checkpoint = format!("{note}\n\u{2014} {host} {}\n", b64(&hinted));
        TlogEntry {
            kind,
            body,
            log_index,
            log_id: self.id,
            integrated_time,
            signed_entry_timestamp,
            tree_size,
            root_hash,
            hashes,
            checkpoint,
        }
    }
}

/// One Rekor entry with its promise (SET) and proof.
#[derive(Clone, Debug)]
pub struct TlogEntry {
    /// `hashedrekord` or `dsse`.
    pub kind: &'static str,
    /// The canonicalized body.
    pub body: Vec<u8>,
    pub log_index: u64,
    pub log_id: [u8; 32],
    pub integrated_time: i64,
    pub signed_entry_timestamp: Vec<u8>,
    pub tree_size: u64,
    pub root_hash: [u8; 32],
    pub hashes: Vec<[u8; 32]>,
    pub checkpoint: String,
}

impl TlogEntry {
    /// cosign's `dev.sigstore.cosign/bundle` annotation.
    pub fn cosign_annotation(&self) -> String {
        json!({
            "SignedEntryTimestamp": b64(&self.signed_entry_timestamp),
            "Payload": {
                "body": b64(&self.body),
                "integratedTime": self.integrated_time,
                "logIndex": self.log_index,
                "logID": hex(&self.log_id),
            },
        })
        .to_string()
    }

    /// The `tlogEntries` item of a Sigstore bundle (protobuf JSON: int64 as strings).
    pub fn bundle_entry(&self) -> Value {
        json!({
            "logIndex": self.log_index.to_string(),
            "logId": {"keyId": b64(&self.log_id)},
            "kindVersion": {"kind": self.kind, "version": "0.0.1"},
            "integratedTime": self.integrated_time.to_string(),
            "inclusionPromise": {"signedEntryTimestamp": b64(&self.signed_entry_timestamp)},
            "inclusionProof": {
                "logIndex": self.log_index.to_string(),
                "rootHash": b64(&self.root_hash),
                "treeSize": self.tree_size.to_string(),
                "hashes": self.hashes.iter().map(|h| b64(h)).collect::<Vec<_>>(),
                "checkpoint": {"envelope": self.checkpoint},
            },
            "canonicalizedBody": b64(&self.body),
        })
    }
}

/// A `hashedrekord` 0.0.1 body: the SHA-256 of what was signed, the
/// signature, and the PEM (certificate or public key) that verifies it.
pub fn hashedrekord(signed: &[u8], signature: &[u8], verifier_pem: &str) -> Value {
    json!({
        "apiVersion": "0.0.1",
        "kind": "hashedrekord",
        "spec": {
            "data": {"hash": {"algorithm": "sha256", "value": hex(&sha256(signed))}},
            "signature": {"content": b64(signature), "publicKey": {"content": b64(verifier_pem.as_bytes())}},
        },
    })
}

/// A `dsse` 0.0.1 body: the envelope's and payload's SHA-256, and the one
/// signature with the PEM (certificate or public key) that verifies it.
pub fn dsse_body(envelope: &Value, payload: &[u8], signature: &[u8], verifier_pem: &str) -> Value {
    json!({
        "apiVersion": "0.0.1",
        "kind": "dsse",
        "spec": {
            "envelopeHash": {"algorithm": "sha256", "value": hex(&sha256(canonical_json(envelope).as_bytes()))},
            "payloadHash": {"algorithm": "sha256", "value": hex(&sha256(payload))},
            "signatures": [{"signature": b64(signature), "verifier": b64(verifier_pem.as_bytes())}],
        },
    })
}

/// An in-toto Statement v1 about `image` (its docker reference and digest).
pub fn statement(image: &Image, predicate_type: &str, predicate: Value) -> String {
    json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": image.docker_reference(), "digest": {"sha256": image.hex()}}],
        "predicateType": predicate_type,
        "predicate": predicate,
    })
    .to_string()
}

/// A DSSE envelope (as cosign writes it) of `payload`, with one signature by `attester`; and that signature.
pub fn dsse_envelope(attester: Attester<'_>, payload: &[u8]) -> (Value, Vec<u8>) {
    let signature = attester.sign(&pae(IN_TOTO_PAYLOAD_TYPE, payload));
    let envelope = json!({
        "payloadType": IN_TOTO_PAYLOAD_TYPE,
        "payload": b64(payload),
        "signatures": [{"keyid": "", "sig": b64(&signature)}],
    });
    (envelope, signature)
}

// ---------------------------------------------------------------------------
// The test Sigstore instance

/// Who a keyless certificate names: the OIDC issuer, and the subject (an
/// email address when it has an `@` and no scheme, else a URI).
#[derive(Clone, Debug)]
pub struct Identity {
    pub issuer: String,
    pub subject: String,
}

impl Identity {
    pub fn new(issuer: &str, subject: &str) -> Identity {
        Identity { issuer: issuer.to_string(), subject: subject.to_string() }
    }

    fn is_email(&self) -> bool {
        self.subject.contains('@') && !self.subject.contains("://")
    }
}

pub const ISSUER: &str = "https://issuer.palisade.test";
pub const WORKFLOW: &str = "https://github.com/palisade-test/app/.github/workflows/release.yml@refs/heads/main";

/// A keyless signing certificate and its key.
pub struct Leaf {
    pub key: p256::ecdsa::SigningKey,
    pub der: Vec<u8>,
    pub pem: String,
    /// Intermediate and root, PEM (cosign's `dev.sigstore.cosign/chain`).
    pub chain_pem: String,
    pub identity: Identity,
    pub not_before: i64,
    pub not_after: i64,
}

impl Leaf {
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        use p256::ecdsa::signature::Signer as _;
        let signature: p256::ecdsa::DerSignature = self.key.sign(message);
        signature.as_bytes().to_vec()
    }
}

/// Who signs an attestation: a cosign key, or a keyless certificate.
#[derive(Clone, Copy)]
pub enum Attester<'a> {
    Key(&'a Key),
    Leaf(&'a Leaf),
}

impl Attester<'_> {
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        match self {
            Attester::Key(key) => key.sign(message),
            Attester::Leaf(leaf) => leaf.sign(message),
        }
    }

    /// The PEM a Rekor entry names: the public key, or the certificate.
    pub fn verifier_pem(&self) -> String {
        match self {
            Attester::Key(key) => key.public_pem(),
            Attester::Leaf(leaf) => leaf.pem.clone(),
        }
    }
}

struct Ca {
    root: rcgen::Certificate,
    root_key: rcgen::KeyPair,
    intermediate: rcgen::Certificate,
    intermediate_key: rcgen::KeyPair,
}

impl Ca {
    /// A Fulcio-like chain: a P-384 root and a P-384 intermediate (codeSigning EKU).
    fn new(name: &str, valid_from: i64) -> Ca {
        let root_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
        let mut params = rcgen::CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(rcgen::DnType::OrganizationName, "palisade.test");
        params.distinguished_name.push(rcgen::DnType::CommonName, format!("{name}-root"));
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(1));
        params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::CrlSign];
        params.not_before = offset_time(valid_from);
        params.not_after = offset_time(valid_from + 10 * 365 * 86400);
        let root = params.self_signed(&root_key).unwrap();

        let intermediate_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
        let mut params = rcgen::CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(rcgen::DnType::OrganizationName, "palisade.test");
        params.distinguished_name.push(rcgen::DnType::CommonName, format!("{name}-intermediate"));
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
        params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::CrlSign];
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::CodeSigning];
        params.use_authority_key_identifier_extension = true;
        params.not_before = offset_time(valid_from);
        params.not_after = offset_time(valid_from + 5 * 365 * 86400);
        let intermediate = params.signed_by(&intermediate_key, &root, &root_key).unwrap();
        Ca { root, root_key, intermediate, intermediate_key }
    }

    fn chain_pem(&self) -> String {
        format!("{}{}", pem("CERTIFICATE", self.intermediate.der()), pem("CERTIFICATE", self.root.der()))
    }
}

/// What a Sigstore bundle attached to an image holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BundleContent {
    /// A DSSE envelope of an in-toto statement about the image digest, predicate
    /// `https://sigstore.dev/cosign/sign/v1`, logged as a `dsse` entry: what
    /// `cosign sign` (v3, the new bundle format) attaches.
    Dsse,
    /// A message signature over the image manifest (its digest), logged as a
    /// `hashedrekord` entry: the shape of `cosign sign-blob` bundles.
    MessageSignature,
}

/// What cosign 3 writes for an image: change it here if the bundle shape changes.
pub const COSIGN3_BUNDLE_CONTENT: BundleContent = BundleContent::Dsse;
pub const BUNDLE_MEDIA_TYPE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
pub const SIGN_PREDICATE: &str = "https://sigstore.dev/cosign/sign/v1";
pub const IN_TOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";

pub struct Sigstore {
    /// Holds `trusted_root.json`.
    pub dir: tempfile::TempDir,
    ca: Ca,
    pub rekor: Log,
    pub ctlog: Log,
    valid_from: i64,
    serial: AtomicU64,
}

impl Sigstore {
    pub fn new() -> Sigstore {
        Sigstore::with_logs(
            "palisade-test-fulcio",
            Log::new("https://rekor.palisade.test"),
            Log::new("https://ctfe.palisade.test"),
        )
    }

    fn with_logs(name: &str, rekor: Log, ctlog: Log) -> Sigstore {
        let valid_from = now() - 86400;
        let sigstore = Sigstore {
            dir: tempfile::tempdir().unwrap(),
            ca: Ca::new(name, valid_from),
            rekor,
            ctlog,
            valid_from,
            serial: AtomicU64::new(1),
        };
        std::fs::write(sigstore.trusted_root_path(), serde_json::to_string_pretty(&sigstore.trusted_root()).unwrap())
            .unwrap();
        sigstore
    }

    /// Another CA (not in this instance's trusted root) whose certificates the
    /// same logs vouch for: a certificate from it is untrusted, and for that
    /// reason alone.
    pub fn rogue_ca(&self) -> Sigstore {
        Sigstore::with_logs("rogue-fulcio", self.rekor.clone(), self.ctlog.clone())
    }

    pub fn trusted_root_path(&self) -> PathBuf {
        self.dir.path().join("trusted_root.json")
    }

    /// protobuf-specs TrustedRoot (JSON).
    pub fn trusted_root(&self) -> Value {
        json!({
            "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
            "tlogs": [self.rekor.trusted_root_entry(self.valid_from)],
            "certificateAuthorities": [{
                "subject": {"organization": "palisade.test", "commonName": "palisade-test-fulcio"},
                "uri": "https://fulcio.palisade.test",
                "certChain": {"certificates": [
                    {"rawBytes": b64(self.ca.intermediate.der())},
                    {"rawBytes": b64(self.ca.root.der())},
                ]},
                "validFor": {"start": rfc3339(self.valid_from)},
            }],
            "ctlogs": [self.ctlog.trusted_root_entry(self.valid_from)],
            "timestampAuthorities": [],
        })
    }

    /// A Fulcio-like leaf valid from `not_before` to `not_after` (Unix seconds).
    pub fn leaf_valid(&self, identity: &Identity, not_before: i64, not_after: i64) -> Leaf {
        self.leaf_with_sct_from(&self.ctlog, identity, not_before, not_after)
    }

    /// [`Sigstore::leaf_valid`] with the SCT signed by `ctlog` (another log: an SCT nobody trusts).
    pub fn leaf_with_sct_from(&self, ctlog: &Log, identity: &Identity, not_before: i64, not_after: i64) -> Leaf {
        let key_pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let key = {
            use p256::pkcs8::DecodePrivateKey as _;
            p256::ecdsa::SigningKey::from_pkcs8_der(&key_pair.serialize_der()).unwrap()
        };
        let serial = self.serial.fetch_add(1, Ordering::SeqCst);
        let mut serial_bytes = sha256(format!("{}{serial}", nonce()).as_bytes())[..16].to_vec();
        serial_bytes[0] &= 0x7f;

        // Subject alternative name (critical, as the subject is empty), OIDC
        // issuer in both of Fulcio's extensions.
        let general_name = if identity.is_email() {
            der(0x81, identity.subject.as_bytes())
        } else {
            der(0x86, identity.subject.as_bytes())
        };
        let mut san = rcgen::CustomExtension::from_oid_content(&[2, 5, 29, 17], der(0x30, &general_name));
        san.set_criticality(true);
        let extensions = vec![
            san,
            rcgen::CustomExtension::from_oid_content(
                &[1, 3, 6, 1, 4, 1, 57264, 1, 1],
                identity.issuer.as_bytes().to_vec(),
            ),
            rcgen::CustomExtension::from_oid_content(
                &[1, 3, 6, 1, 4, 1, 57264, 1, 8],
                der(0x0c, identity.issuer.as_bytes()),
            ),
        ];
        let params = |extensions: Vec<rcgen::CustomExtension>| {
            let mut params = rcgen::CertificateParams::default();
            params.distinguished_name = rcgen::DistinguishedName::new();
            params.serial_number = Some(rcgen::SerialNumber::from_slice(&serial_bytes));
            params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
            params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::CodeSigning];
            params.use_authority_key_identifier_extension = true;
            params.not_before = offset_time(not_before);
            params.not_after = offset_time(not_after);
            params.custom_extensions = extensions;
            params
        };
        // The precertificate's TBS is the leaf's without the SCT list: make
        // the leaf once without it, have the log sign that, then again with
        // the SCT list appended last.
        let precert =
            params(extensions.clone()).signed_by(&key_pair, &self.ca.intermediate, &self.ca.intermediate_key).unwrap();
        let precert_tbs = tbs_certificate(precert.der());
        let sct = ctlog.sct(&self.ca.intermediate_key.public_key_der(), &precert_tbs, not_before as u64 * 1000);
        let mut list = ((sct.len() + 2) as u16).to_be_bytes().to_vec();
        list.extend((sct.len() as u16).to_be_bytes());
        list.extend(sct);
        let mut with_sct = extensions;
        with_sct.push(rcgen::CustomExtension::from_oid_content(&[1, 3, 6, 1, 4, 1, 11129, 2, 4, 2], der(0x04, &list)));
        let cert = params(with_sct).signed_by(&key_pair, &self.ca.intermediate, &self.ca.intermediate_key).unwrap();
        let der_bytes = cert.der().to_vec();
        assert_eq!(
            tbs_without_last_extension(&tbs_certificate(&der_bytes)),
            precert_tbs,
            "the leaf without its SCT list must be the precertificate the log signed"
        );
        Leaf {
            key,
            pem: pem("CERTIFICATE", &der_bytes),
            der: der_bytes,
            chain_pem: self.ca.chain_pem(),
            identity: identity.clone(),
            not_before,
            not_after,
        }
    }

    /// A leaf valid for ten minutes around now (Fulcio's lifetime).
    pub fn leaf(&self, identity: &Identity) -> Leaf {
        let t = now();
        self.leaf_valid(identity, t - 300, t + 300)
    }

    /// A Rekor entry for a signature.
    pub fn log(&self, kind: &'static str, body: &Value, integrated_time: i64) -> TlogEntry {
        self.rekor.append(kind, body, integrated_time)
    }

    /// A cosign key-based signature of `payload`; with `tlog`, uploaded to
    /// Rekor (the bundle annotation carries the SET).
    pub fn sign_with_key(&self, key: &Key, payload: &[u8], tlog: bool) -> LegacySignature {
        let signature = key.sign(payload);
        let bundle = tlog.then(|| {
            self.log("hashedrekord", &hashedrekord(payload, &signature, &key.public_pem()), now() - 60)
                .cosign_annotation()
        });
        LegacySignature { payload: payload.to_vec(), signature, certificate: None, chain: None, bundle }
    }

    /// A cosign keyless signature of `payload`, logged at `integrated_time`
    /// (None: no Rekor entry at all).
    pub fn sign_keyless(&self, leaf: &Leaf, payload: &[u8], integrated_time: Option<i64>) -> LegacySignature {
        let signature = leaf.sign(payload);
        let bundle = integrated_time
            .map(|t| self.log("hashedrekord", &hashedrekord(payload, &signature, &leaf.pem), t).cosign_annotation());
        LegacySignature {
            payload: payload.to_vec(),
            signature,
            certificate: Some(leaf.pem.clone()),
            chain: Some(leaf.chain_pem.clone()),
            bundle,
        }
    }

    /// A Sigstore bundle v0.3 signing `image` with `leaf`, logged at `integrated_time`.
    pub fn bundle(&self, leaf: &Leaf, image: &Image, content: BundleContent, integrated_time: i64) -> Value {
        match content {
            BundleContent::Dsse => self.attestation_bundle(leaf, image, SIGN_PREDICATE, json!({}), integrated_time),
            BundleContent::MessageSignature => {
                let signature = leaf.sign(&image.manifest);
                let body = hashedrekord(&image.manifest, &signature, &leaf.pem);
                let message = json!({
                    "messageSignature": {
                        "messageDigest": {"algorithm": "SHA2_256", "digest": b64(&sha256(&image.manifest))},
                        "signature": b64(&signature),
                    }
                });
                leaf_bundle(leaf, &self.log("hashedrekord", &body, integrated_time), message)
            }
        }
    }

    /// A Sigstore bundle v0.3 holding an attestation about `image` (a DSSE
    /// envelope of an in-toto statement of `predicate_type`) signed with
    /// `leaf`, logged as a `dsse` entry at `integrated_time`: what
    /// `cosign attest --new-bundle-format` attaches.
    pub fn attestation_bundle(
        &self,
        leaf: &Leaf,
        image: &Image,
        predicate_type: &str,
        predicate: Value,
        integrated_time: i64,
    ) -> Value {
        let (statement, envelope, signature) =
            self.attestation_envelope(Attester::Leaf(leaf), image, predicate_type, predicate);
        let body = dsse_body(&envelope, statement.as_bytes(), &signature, &leaf.pem);
        leaf_bundle(leaf, &self.log("dsse", &body, integrated_time), json!({"dsseEnvelope": envelope}))
    }

    /// An in-toto Statement v1 about `image` signed by `attester` as a DSSE
    /// envelope: (the statement JSON, the envelope, the signature bytes).
    pub fn attestation_envelope(
        &self,
        attester: Attester<'_>,
        image: &Image,
        predicate_type: &str,
        predicate: Value,
    ) -> (String, Value, Vec<u8>) {
        let statement = statement(image, predicate_type, predicate);
        let (envelope, signature) = dsse_envelope(attester, statement.as_bytes());
        (statement, envelope, signature)
    }

    /// A cosign attestation (`.att` layer) of `payload`, whatever it is: a
    /// statement about another image, or no statement at all, for the
    /// negative tests. Annotated `predicate_type`; logged at `integrated_time`
    /// (None: no Rekor entry).
    pub fn attest_payload(
        &self,
        attester: Attester<'_>,
        payload: &[u8],
        predicate_type: &str,
        integrated_time: Option<i64>,
    ) -> LegacyAttestation {
        let (envelope, signature) = dsse_envelope(attester, payload);
        let bundle = integrated_time.map(|t| {
            let body = dsse_body(&envelope, payload, &signature, &attester.verifier_pem());
            self.log("dsse", &body, t).cosign_annotation()
        });
        let (certificate, chain) = match attester {
            Attester::Key(_) => (None, None),
            Attester::Leaf(leaf) => (Some(leaf.pem.clone()), Some(leaf.chain_pem.clone())),
        };
        LegacyAttestation {
            envelope: envelope.to_string().into_bytes(),
            predicate_type: predicate_type.to_string(),
            certificate,
            chain,
            bundle,
        }
    }

    /// A cosign key-based attestation about `image`; with `tlog`, uploaded to
    /// Rekor (the bundle annotation carries the SET).
    pub fn attest_with_key(
        &self,
        key: &Key,
        image: &Image,
        predicate_type: &str,
        predicate: Value,
        tlog: bool,
    ) -> LegacyAttestation {
        let statement = statement(image, predicate_type, predicate);
        self.attest_payload(Attester::Key(key), statement.as_bytes(), predicate_type, tlog.then(|| now() - 60))
    }

    /// A cosign keyless attestation about `image`, logged at `integrated_time`
    /// (None: no Rekor entry at all).
    pub fn attest_keyless(
        &self,
        leaf: &Leaf,
        image: &Image,
        predicate_type: &str,
        predicate: Value,
        integrated_time: Option<i64>,
    ) -> LegacyAttestation {
        let statement = statement(image, predicate_type, predicate);
        self.attest_payload(Attester::Leaf(leaf), statement.as_bytes(), predicate_type, integrated_time)
    }
}

/// A Sigstore bundle v0.3 signed by `leaf`, with its log entry and `content`
/// (`dsseEnvelope` or `messageSignature`).
fn leaf_bundle(leaf: &Leaf, entry: &TlogEntry, content: Value) -> Value {
    let mut bundle = json!({
        "mediaType": BUNDLE_MEDIA_TYPE,
        "verificationMaterial": {
            "certificate": {"rawBytes": b64(&leaf.der)},
            "tlogEntries": [entry.bundle_entry()],
            "timestampVerificationData": {},
        },
    });
    bundle.as_object_mut().unwrap().extend(content.as_object().unwrap().clone());
    bundle
}

impl Default for Sigstore {
    fn default() -> Self {
        Sigstore::new()
    }
}

/// DSSE's pre-authentication encoding.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!("DSSEv1 {} {payload_type} {} ", payload_type.len(), payload.len()).into_bytes();
    out.extend_from_slice(payload);
    out
}

// ---------------------------------------------------------------------------
// Images and their signatures in a registry

pub const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const IMAGE_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
pub const DSSE_ENVELOPE: &str = "application/vnd.dsse.envelope.v1+json";
pub const EMPTY: &str = "application/vnd.oci.empty.v1+json";

/// An image pushed to the test registry.
#[derive(Clone, Debug)]
pub struct Image {
    /// `127.0.0.1:PORT`
    pub registry: String,
    pub repository: String,
    pub tag: String,
    pub digest: String,
    pub manifest: Vec<u8>,
}

impl Image {
    /// `registry/repository:tag`, as a container's `image` field names it.
    pub fn reference(&self) -> String {
        format!("{}/{}:{}", self.registry, self.repository, self.tag)
    }

    /// `registry/repository@sha256:…`
    pub fn pinned(&self) -> String {
        format!("{}/{}@{}", self.registry, self.repository, self.digest)
    }

    /// `registry/repository`: cosign's `docker-reference`.
    pub fn docker_reference(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    pub fn hex(&self) -> &str {
        self.digest.strip_prefix("sha256:").unwrap()
    }

    /// cosign's simple signing payload for this image.
    pub fn payload(&self) -> Vec<u8> {
        simple_signing_payload(&self.docker_reference(), &self.digest)
    }

    /// The tag cosign keeps the legacy signatures under.
    pub fn signature_tag(&self) -> String {
        format!("sha256-{}.sig", self.hex())
    }

    /// The tag cosign keeps the legacy attestations under.
    pub fn attestation_tag(&self) -> String {
        format!("sha256-{}.att", self.hex())
    }

    /// The referrers tag schema's tag.
    pub fn referrers_tag(&self) -> String {
        format!("sha256-{}", self.hex())
    }

    fn descriptor(&self) -> Value {
        json!({"mediaType": MANIFEST, "digest": self.digest, "size": self.manifest.len()})
    }
}

pub fn simple_signing_payload(docker_reference: &str, digest: &str) -> Vec<u8> {
    json!({
        "critical": {
            "identity": {"docker-reference": docker_reference},
            "image": {"docker-manifest-digest": digest},
            "type": "cosign container image signature",
        },
        "optional": null,
    })
    .to_string()
    .into_bytes()
}

/// A blob or manifest to push.
#[derive(Clone, Debug)]
pub struct Blob {
    pub media_type: String,
    pub bytes: Vec<u8>,
}

impl Blob {
    fn new(media_type: &str, bytes: Vec<u8>) -> Blob {
        Blob { media_type: media_type.to_string(), bytes }
    }

    fn descriptor(&self) -> Descriptor {
        Descriptor::of(&self.media_type, &self.bytes)
    }

    fn json_descriptor(&self) -> Value {
        let d = self.descriptor();
        json!({"mediaType": d.media_type, "digest": d.digest, "size": d.size})
    }
}

/// One layer of a legacy `.sig` manifest.
#[derive(Clone, Debug)]
pub struct LegacySignature {
    pub payload: Vec<u8>,
    /// Raw signature bytes (the annotation is their base64).
    pub signature: Vec<u8>,
    /// PEM leaf certificate (keyless).
    pub certificate: Option<String>,
    /// PEM intermediates and root (keyless).
    pub chain: Option<String>,
    /// `dev.sigstore.cosign/bundle` (the Rekor SET and entry).
    pub bundle: Option<String>,
}

/// One layer of a legacy `.att` manifest.
#[derive(Clone, Debug)]
pub struct LegacyAttestation {
    /// The DSSE envelope, JSON.
    pub envelope: Vec<u8>,
    /// The `predicateType` annotation (cosign's `--type`, not signed).
    pub predicate_type: String,
    /// PEM leaf certificate (keyless).
    pub certificate: Option<String>,
    /// PEM intermediates and root (keyless).
    pub chain: Option<String>,
    /// `dev.sigstore.cosign/bundle` (the Rekor SET and entry).
    pub bundle: Option<String>,
}

impl LegacyAttestation {
    /// The layer's annotations, as `cosign attest` writes them.
    pub fn annotations(&self) -> Value {
        let mut annotations = json!({
            "dev.cosignproject.cosign/signature": "",
            "predicateType": self.predicate_type,
        });
        evidence_annotations(
            &mut annotations,
            self.certificate.as_deref(),
            self.chain.as_deref(),
            self.bundle.as_deref(),
        );
        annotations
    }
}

/// cosign's evidence annotations, those present.
fn evidence_annotations(annotations: &mut Value, certificate: Option<&str>, chain: Option<&str>, bundle: Option<&str>) {
    let a = annotations.as_object_mut().unwrap();
    for (name, value) in [
        ("dev.sigstore.cosign/certificate", certificate),
        ("dev.sigstore.cosign/chain", chain),
        ("dev.sigstore.cosign/bundle", bundle),
    ] {
        if let Some(value) = value {
            a.insert(name.into(), value.into());
        }
    }
}

/// A `.sig` or `.att` manifest with the blobs it references, ready to push under any tag.
#[derive(Clone, Debug)]
pub struct SignatureManifest {
    pub manifest: Blob,
    pub blobs: Vec<Blob>,
}

impl SignatureManifest {
    pub fn new(signatures: &[LegacySignature]) -> SignatureManifest {
        SignatureManifest::of_layers(
            signatures
                .iter()
                .map(|s| {
                    let mut annotations = json!({"dev.cosignproject.cosign/signature": b64(&s.signature)});
                    evidence_annotations(
                        &mut annotations,
                        s.certificate.as_deref(),
                        s.chain.as_deref(),
                        s.bundle.as_deref(),
                    );
                    (Blob::new(SIMPLE_SIGNING, s.payload.clone()), annotations)
                })
                .collect(),
        )
    }

    /// The `.att` manifest of attestations.
    pub fn attestations(attestations: &[LegacyAttestation]) -> SignatureManifest {
        SignatureManifest::of_layers(
            attestations.iter().map(|a| (Blob::new(DSSE_ENVELOPE, a.envelope.clone()), a.annotations())).collect(),
        )
    }

    /// cosign's manifest of signature-like layers, each with its annotations.
    fn of_layers(layers: Vec<(Blob, Value)>) -> SignatureManifest {
        let config = Blob::new(
            IMAGE_CONFIG,
            json!({
                "architecture": "",
                "created": "0001-01-01T00:00:00Z",
                "history": [{"created": "0001-01-01T00:00:00Z"}],
                "os": "",
                "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|(l, _)| l.descriptor().digest).collect::<Vec<_>>()},
                "config": {},
            })
            .to_string()
            .into_bytes(),
        );
        let layer_descriptors: Vec<Value> = layers
            .iter()
            .map(|(layer, annotations)| {
                let mut d = layer.json_descriptor();
                d["annotations"] = annotations.clone();
                d
            })
            .collect();
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST,
            "config": config.json_descriptor(),
            "layers": layer_descriptors,
        });
        let mut blobs = vec![config];
        blobs.extend(layers.into_iter().map(|(layer, _)| layer));
        SignatureManifest { manifest: Blob::new(MANIFEST, manifest.to_string().into_bytes()), blobs }
    }
}

/// A client for one repository of a plain-HTTP registry (Palisade's own).
pub fn repository(addr: &str, repository: &str) -> oci::Registry {
    let location = palisade::bundle::reference::parse(&format!("oci://{addr}/{repository}:latest")).unwrap();
    let palisade::bundle::reference::Location::Registry(reference) = location else { unreachable!() };
    oci::Registry::connect(&reference, &oci::Options { insecure: true, ca_files: Vec::new() }).unwrap()
}

fn push_blobs(repo: &oci::Registry, blobs: &[Blob]) {
    for blob in blobs {
        repo.push_blob(&blob.descriptor(), &blob.bytes).unwrap();
    }
}

fn push_manifest(repo: &oci::Registry, manifest: &Blob, tag: Option<&str>) {
    repo.push_manifest(&manifest.descriptor(), &manifest.bytes, tag).unwrap();
}

/// Push a small OCI image (its content unique to this call) under `tag`.
pub fn push_image(addr: &str, repository_name: &str, tag: &str) -> Image {
    let repo = repository(addr, repository_name);
    let layer = Blob::new(
        "application/vnd.oci.image.layer.v1.tar",
        format!("a layer of {repository_name}:{tag} {}", nonce()).into_bytes(),
    );
    let config = Blob::new(
        IMAGE_CONFIG,
        json!({
            "architecture": "amd64",
            "os": "linux",
            "config": {"Labels": {"test.palisade/nonce": nonce()}},
            "rootfs": {"type": "layers", "diff_ids": [layer.descriptor().digest]},
        })
        .to_string()
        .into_bytes(),
    );
    let manifest = Blob::new(
        MANIFEST,
        json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST,
            "config": config.json_descriptor(),
            "layers": [layer.json_descriptor()],
        })
        .to_string()
        .into_bytes(),
    );
    push_blobs(&repo, &[config, layer]);
    push_manifest(&repo, &manifest, Some(tag));
    Image {
        registry: addr.to_string(),
        repository: repository_name.to_string(),
        tag: tag.to_string(),
        digest: manifest.descriptor().digest,
        manifest: manifest.bytes,
    }
}

/// Push a `.sig` manifest under `image`'s signature tag (whatever image it was made for).
pub fn push_signature_manifest(image: &Image, signatures: &SignatureManifest) {
    push_cosign_manifest(image, signatures, &image.signature_tag());
}

/// Push a `.att` manifest under `image`'s attestation tag (whatever image it was made for).
pub fn push_attestation_manifest(image: &Image, attestations: &SignatureManifest) {
    push_cosign_manifest(image, attestations, &image.attestation_tag());
}

fn push_cosign_manifest(image: &Image, manifest: &SignatureManifest, tag: &str) {
    let repo = repository(&image.registry, &image.repository);
    push_blobs(&repo, &manifest.blobs);
    push_manifest(&repo, &manifest.manifest, Some(tag));
}

/// Attach legacy cosign signatures to `image` (replacing any there).
pub fn attach_signatures(image: &Image, signatures: &[LegacySignature]) -> SignatureManifest {
    let manifest = SignatureManifest::new(signatures);
    push_signature_manifest(image, &manifest);
    manifest
}

/// Attach legacy cosign attestations to `image` (replacing any there).
pub fn attach_attestations(image: &Image, attestations: &[LegacyAttestation]) -> SignatureManifest {
    let manifest = SignatureManifest::attestations(attestations);
    push_attestation_manifest(image, &manifest);
    manifest
}

/// Attach Sigstore bundles to `image` as OCI referrers: each bundle's
/// manifest pushed by digest, and the referrers tag schema's index listing
/// them (Debian's registry 2.8 has no referrers API).
pub fn attach_bundles(image: &Image, bundles: &[(Value, BundleContent)]) {
    let repo = repository(&image.registry, &image.repository);
    let empty = Blob::new(EMPTY, b"{}".to_vec());
    push_blobs(&repo, std::slice::from_ref(&empty));
    let created = rfc3339(now());
    let mut listed = Vec::new();
    for (bundle, content) in bundles {
        let layer = Blob::new(BUNDLE_MEDIA_TYPE, bundle.to_string().into_bytes());
        let mut annotations = json!({
            "dev.sigstore.bundle.content": match content {
                BundleContent::Dsse => "dsse-envelope",
                BundleContent::MessageSignature => "message-signature",
            },
            "org.opencontainers.image.created": created,
        });
        if *content == BundleContent::Dsse
            && let Some(predicate_type) = bundle_predicate_type(bundle)
        {
            annotations["dev.sigstore.bundle.predicateType"] = predicate_type.into();
        }
        let mut layer_descriptor = layer.json_descriptor();
        layer_descriptor["annotations"] = json!({
            "org.opencontainers.image.title": format!("sha256-{}.sigstore.json", hex(&sha256(&layer.bytes))),
        });
        let manifest = Blob::new(
            MANIFEST,
            json!({
                "schemaVersion": 2,
                "mediaType": MANIFEST,
                "artifactType": BUNDLE_MEDIA_TYPE,
                "config": empty.json_descriptor(),
                "layers": [layer_descriptor],
                "subject": image.descriptor(),
                "annotations": annotations,
            })
            .to_string()
            .into_bytes(),
        );
        push_blobs(&repo, std::slice::from_ref(&layer));
        push_manifest(&repo, &manifest, None);
        let mut entry = manifest.json_descriptor();
        entry["artifactType"] = BUNDLE_MEDIA_TYPE.into();
        entry["annotations"] = annotations;
        listed.push(entry);
    }
    let index =
        Blob::new(INDEX, json!({"schemaVersion": 2, "mediaType": INDEX, "manifests": listed}).to_string().into_bytes());
    push_manifest(&repo, &index, Some(&image.referrers_tag()));
}

/// The predicate type of the statement in a bundle's DSSE envelope (what
/// cosign annotates the referrer with), if it holds one.
fn bundle_predicate_type(bundle: &Value) -> Option<String> {
    let payload = bundle.pointer("/dsseEnvelope/payload")?.as_str()?;
    let payload = base64::engine::general_purpose::STANDARD.decode(payload).ok()?;
    let statement: Value = serde_json::from_slice(&payload).ok()?;
    statement["predicateType"].as_str().map(str::to_string)
}

// ---------------------------------------------------------------------------
// Running palisade on it

pub const RULE: &str = "image-signature";

/// The flags every image-verification run of `check` needs (the test registry is plain HTTP).
pub fn verify_flags() -> [&'static str; 2] {
    ["--verify-images", "--insecure"]
}

/// Every other rule of the default profile (disabled in the test configurations,
/// so the exit code speaks of image signatures alone).
pub fn other_rules() -> &'static Vec<String> {
    static RULES: OnceLock<Vec<String>> = OnceLock::new();
    RULES.get_or_init(|| {
        let out = palisade().args(["policies", "--format", "json"]).output().expect("run palisade policies");
        assert!(out.status.success(), "palisade policies: {}", String::from_utf8_lossy(&out.stderr));
        let list: Value = serde_json::from_slice(&out.stdout).unwrap();
        list.as_array().unwrap().iter().map(|p| p["id"].as_str().unwrap().to_string()).filter(|id| id != RULE).collect()
    })
}

/// A cache directory of its own (image verification results are kept in
/// `$PALISADE_CACHE_DIR`), sharing the compiled components of the test run.
pub fn private_cache(dir: &Path) -> PathBuf {
    let cache = dir.join("cache");
    std::fs::create_dir_all(&cache).unwrap();
    let shared = root().join("target").join("test-cache");
    std::fs::create_dir_all(&shared).unwrap();
    other_rules(); // compiles the built-in components into the shared cache
    for entry in std::fs::read_dir(&shared).unwrap().flatten() {
        if entry.file_name().to_string_lossy().starts_with("wasmtime-") {
            std::os::unix::fs::symlink(entry.path(), cache.join(entry.file_name())).unwrap();
        }
    }
    cache
}

/// A running registry, a Sigstore instance, and a configuration directory
/// holding `trusted_root.json` (configurations name it relative to themselves).
pub struct Fixture {
    pub registry: Registry,
    pub sigstore: Sigstore,
    pub dir: tempfile::TempDir,
    pub cache: PathBuf,
}

impl Fixture {
    /// Start one (the test fails when docker-registry is not installed).
    pub fn start() -> Fixture {
        let registry = Registry::start(Mode::Http);
        let sigstore = Sigstore::new();
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(sigstore.trusted_root_path(), dir.path().join("trusted_root.json")).unwrap();
        let cache = private_cache(dir.path());
        Fixture { registry, sigstore, dir, cache }
    }

    pub fn addr(&self) -> &str {
        &self.registry.addr
    }

    pub fn push(&self, repository: &str, tag: &str) -> Image {
        push_image(&self.registry.addr, repository, tag)
    }

    /// Write a public key as `<name>` in the configuration directory; returns the name.
    pub fn key_file(&self, name: &str, key: &Key) -> String {
        key.write_public(&self.dir.path().join(name));
        name.to_string()
    }

    /// Write `palisade.yaml` (JSON is YAML): the other rules disabled, and
    /// `imageVerification` as given (None: no such key).
    pub fn config(&self, image_verification: Option<Value>) -> PathBuf {
        self.config_named("palisade.yaml", image_verification)
    }

    pub fn config_named(&self, name: &str, image_verification: Option<Value>) -> PathBuf {
        let mut config = json!({"disable": other_rules()});
        if let Some(iv) = image_verification {
            config["imageVerification"] = iv;
        }
        let path = self.dir.path().join(name);
        std::fs::write(&path, serde_json::to_string_pretty(&config).unwrap()).unwrap();
        path
    }

    /// Write objects as a multi-document YAML file (each a JSON document).
    pub fn manifests(&self, name: &str, objects: &[Value]) -> PathBuf {
        let text: String = objects.iter().map(|o| format!("---\n{o}\n")).collect();
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// `palisade` with this fixture's cache.
    pub fn palisade(&self) -> Command {
        let mut cmd = palisade();
        cmd.env("PALISADE_CACHE_DIR", &self.cache);
        cmd
    }

    /// `palisade check --config CONFIG --verify-images --insecure --format json EXTRA… MANIFESTS`.
    pub fn check(&self, config: &Path, manifests: &Path, extra: &[&str]) -> (i32, Value, String) {
        let mut cmd = self.palisade();
        cmd.arg("check")
            .arg("--config")
            .arg(config)
            .args(verify_flags())
            .args(["--format", "json"])
            .args(extra)
            .arg(manifests);
        let out = cmd.output().expect("run palisade check");
        let code = out.status.code().expect("exit code");
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "{cmd:?}: not a JSON report ({e}); exit {code}\nstdout: {}\nstderr: {stderr}",
                String::from_utf8_lossy(&out.stdout)
            )
        });
        (code, report, stderr)
    }
}

// ---------------------------------------------------------------------------
// Workloads and reading reports

pub fn pod(name: &str, namespace: &str, image: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"containers": [{"name": "app", "image": image}]},
    })
}

/// The `image-signature` findings of the object named `name`.
pub fn signature_findings<'a>(report: &'a Value, name: &str) -> Vec<&'a Value> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"] == RULE && f["resource"]["name"] == name)
        .collect()
}

/// The object passed: no `image-signature` finding, and the rule evaluated it.
pub fn assert_verified(report: &Value, name: &str) {
    let found = signature_findings(report, name);
    assert!(found.is_empty(), "{name}: expected no {RULE} finding, got {found:#?}");
    let resources = report["resources"].as_array().expect("resources in the report");
    let checked = resources.iter().find(|r| r["name"] == name).unwrap_or_else(|| panic!("{name} was not read"));
    assert!(
        checked["rules"].as_array().unwrap().iter().any(|r| r == RULE),
        "{name}: {RULE} did not evaluate it (inactive?): {checked}"
    );
}

/// Exactly one `image-signature` finding on `name`, at `path`, whose message
/// names every string of `expected` (the image, the policy, the reason).
pub fn assert_refused<'a>(report: &'a Value, name: &str, path: &str, expected: &[&str]) -> &'a Value {
    let found = signature_findings(report, name);
    assert_eq!(
        found.len(),
        1,
        "{name}: expected one {RULE} finding, got {found:#?}\nall findings: {:#}\nerrors: {:#}",
        report["findings"],
        report["errors"]
    );
    let finding = found[0];
    assert_eq!(finding["path"], path, "{finding:#}");
    let message = finding["message"].as_str().unwrap();
    for text in expected {
        assert!(message.contains(text), "{name}: the message should name {text:?}: {message}");
    }
    finding
}

pub const POD_IMAGE: &str = "/spec/containers/0/image";
