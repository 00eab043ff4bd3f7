//! Sigstore bundles (v0.1, v0.2, v0.3): parsing and offline verification.
//!
//! Sources of truth:
//! - protobuf-specs `sigstore_bundle.proto`, `sigstore_rekor.proto`, `sigstore_common.proto` in
//!   their proto3 JSON form (camelCase, int64 as strings, bytes as base64), and the bundle media
//!   types `application/vnd.dev.sigstore.bundle+json;version=0.1|0.2|0.3` and
//!   `application/vnd.dev.sigstore.bundle.v0.3+json`;
//! - sigstore-go `pkg/verify/signed_entity.go` (`Verify`: log entries, then verified times, then
//!   the certificate chain at every verified time, SCTs, the signature, the identity),
//!   `pkg/verify/tlog.go` (each entry's signature and key must be the bundle's; the integrated time
//!   is a verified time only under a valid SET), `pkg/tlog/entry.go` (entry kinds, negative log
//!   indexes, an inclusion proof needs a checkpoint; Rekor v2 entries `hashedrekord`/`dsse` 0.0.2
//!   have no SET and no integrated time), `pkg/verify/tsa.go` (at most 32 timestamps, no duplicates,
//!   a timestamp that does not verify is skipped) and `pkg/verify/signature.go` (a message signature
//!   over the artifact or its digest; a DSSE signature over PAE, the statement naming the artifact);
//! - sigstore-python `sigstore/verify/verifier.py` and the sigstore-conformance suite for the
//!   stricter offline choices made here: every log entry must carry an inclusion proof with a
//!   signed checkpoint (a SET alone, as some v0.1 bundles have, is not accepted), and a bundle
//!   signed through a Rekor v2 log must carry an RFC 3161 timestamp. These are the defaults;
//!   [`Options`] relaxes some of them explicitly for the `_with` variants (sigstore-go's
//!   promise-only v0.1 entries and leaf-only chains, instances without a log or CT logs, a
//!   minimum bundle version), never the need for a verified signing time;
//! - cosign 3 (`cmd/cosign/cli/sign/sign.go`, `signDigestBundle`): `cosign sign` with the new
//!   bundle format signs an image as a DSSE envelope holding an in-toto Statement v1 whose only
//!   subject is the image manifest digest (`{"sha256": hex}`, no name) with predicate type
//!   `https://sigstore.dev/cosign/sign/v1` and an empty predicate; see [`verify_image`].
//!
//! A keyless certificate must carry an embedded SCT from a CT log of the trusted root, as cosign's
//! legacy signatures must ([`crate::cosign::LegacyOptions`]): a root without CT logs (GitHub's, a
//! test CA) verifies no keyless bundle.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::certificate::{self, Certificate};
use crate::cosign;
use crate::dsse::{Envelope, Statement};
use crate::identity::{self, Authority};
use crate::keys::{HashAlg, PublicKey, hex, pem_blocks, unhex};
use crate::merkle;
use crate::rekor;
use crate::timestamp;
use crate::trust::TrustedRoot;
use crate::{Error, Result, Signer, Verified, malformed};

/// The predicate type of cosign 3's image signatures.
pub const COSIGN_SIGN_PREDICATE_TYPE: &str = "https://sigstore.dev/cosign/sign/v1";
/// At most this many log entries and this many timestamps (sigstore-go's limits).
const MAX_ENTRIES: usize = 32;
const MAX_TIMESTAMPS: usize = 32;

/// What was signed: the artifact's bytes, or its digest (`algorithm` `sha256`, `sha384` or
/// `sha512`, `hex` lower- or upper-case).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Artifact<'a> {
    Bytes(&'a [u8]),
    Digest { algorithm: &'a str, hex: &'a str },
}

/// A bundle's version, from its media type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Version {
    V0_1,
    V0_2,
    V0_3,
}

/// Verification choices that differ between Sigstore clients. [`Options::default`] is this
/// crate's strict policy, the one [`verify`], [`verify_dsse`] and [`verify_image`] apply; the
/// `_with` variants take another, explicitly.
///
/// Whatever the options, a certificate needs at least one verified signing time: a SET over a
/// verified log entry or a verified RFC 3161 timestamp. A bundle with no time evidence never
/// verifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Accept a log entry of a v0.1 bundle that has a SET (inclusion promise) but no inclusion
    /// proof, as sigstore-go does (the bundle spec leaves this optional; sigstore-python and
    /// sigstore-java refuse it). The SET must verify and its integrated time is the signing time.
    /// Default `false`.
    pub allow_promise_only_v01: bool,
    /// A keyless bundle needs a verified transparency log entry (for a key, both this and
    /// [`Authority::Key`]'s `require_tlog` must ask for one). `false` serves instances without a
    /// log (GitHub's private Sigstore instance): the signing time then comes from RFC 3161
    /// timestamps. Log entries the bundle carries are still verified. Default `true`.
    pub require_tlog: bool,
    /// A keyless certificate needs an embedded SCT from a CT log of the trusted root. `false`
    /// serves instances without CT logs. Default `true`.
    pub require_sct: bool,
    /// Use only the leaf of a certificate chain the bundle carries and build the path from the
    /// trusted root's CAs alone, as sigstore-go does (its bundle's verification content is the
    /// first certificate); old v0.1 bundles carry their whole chain, root included. `false`
    /// refuses a chain that includes a root and lets the bundle's intermediates help build the
    /// path. Default `false`.
    pub leaf_only: bool,
    /// The oldest bundle version accepted (the gh CLI refuses v0.1). Default [`Version::V0_1`].
    pub min_version: Version,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            allow_promise_only_v01: false,
            require_tlog: true,
            require_sct: true,
            leaf_only: false,
            min_version: Version::V0_1,
        }
    }
}

/// Who signed, as the bundle says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Material {
    /// A leaf certificate (DER) and the rest of its chain as the bundle carries it.
    Certificate { leaf: Vec<u8>, chain: Vec<Vec<u8>> },
    /// A key the verifier must already have; the hint is informational.
    PublicKey { hint: String },
}

/// What is signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// A signature over the artifact; `digest` is the bundle's unauthenticated hint.
    MessageSignature {
        digest: Option<(HashAlg, Vec<u8>)>,
        signature: Vec<u8>,
    },
    Dsse(Envelope),
}

/// An inclusion proof with its checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InclusionProof {
    pub log_index: i64,
    pub root_hash: Vec<u8>,
    pub tree_size: i64,
    pub hashes: Vec<[u8; 32]>,
    pub checkpoint: Option<String>,
}

/// One transparency log entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlogEntry {
    pub log_index: i64,
    pub log_id: Vec<u8>,
    pub kind: String,
    pub version: String,
    /// 0 when absent (Rekor v2).
    pub integrated_time: i64,
    pub signed_entry_timestamp: Option<Vec<u8>>,
    pub inclusion_proof: Option<InclusionProof>,
    pub canonicalized_body: Vec<u8>,
}

impl TlogEntry {
    /// A Rekor v2 (tiles) entry: no SET, no integrated time.
    pub fn is_rekor_v2(&self) -> bool {
        self.version == "0.0.2" && (self.kind == "hashedrekord" || self.kind == "dsse")
    }
}

/// A parsed bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bundle {
    pub version: Version,
    pub material: Material,
    pub tlog_entries: Vec<TlogEntry>,
    /// DER RFC 3161 timestamps.
    pub timestamps: Vec<Vec<u8>>,
    pub content: Content,
}

// ---------------------------------------------------------------------------------------------
// Parsing.

fn field<'a>(v: &'a Value, camel: &str, snake: &str) -> Option<&'a Value> {
    v.get(camel).or_else(|| v.get(snake)).filter(|v| !v.is_null())
}

fn int64(what: &'static str, v: Option<&Value>) -> Result<i64> {
    match v {
        None => Ok(0),
        Some(Value::Number(n)) => n.as_i64().ok_or_else(|| malformed(what, format!("{n} is not an int64"))),
        Some(Value::String(s)) => s.parse().map_err(|_| malformed(what, format!("{s:?} is not an int64"))),
        Some(other) => Err(malformed(what, format!("{other} is not an int64"))),
    }
}

fn bytes(what: &'static str, v: Option<&Value>) -> Result<Vec<u8>> {
    let text = v.and_then(Value::as_str).ok_or_else(|| malformed(what, "missing"))?;
    // Go's decoder (protojson) skips line breaks; so does this one.
    let text: String = text.chars().filter(|c| *c != '\n' && *c != '\r').collect();
    B64.decode(&text)
        .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(&text))
        .map_err(|e| malformed(what, format!("not base64: {e}")))
}

fn hash_alg(name: &str) -> Option<HashAlg> {
    match name {
        "SHA2_256" => Some(HashAlg::Sha256),
        "SHA2_384" => Some(HashAlg::Sha384),
        "SHA2_512" => Some(HashAlg::Sha512),
        _ => None,
    }
}

impl Bundle {
    pub fn from_json(json: &[u8]) -> Result<Bundle> {
        let v: Value = serde_json::from_slice(json).map_err(|e| malformed("bundle", e))?;
        let media_type = field(&v, "mediaType", "media_type").and_then(Value::as_str).unwrap_or_default();
        let version = match media_type {
            "application/vnd.dev.sigstore.bundle+json;version=0.1" => Version::V0_1,
            "application/vnd.dev.sigstore.bundle+json;version=0.2" => Version::V0_2,
            "application/vnd.dev.sigstore.bundle+json;version=0.3"
            | "application/vnd.dev.sigstore.bundle.v0.3+json" => Version::V0_3,
            other => return Err(malformed("bundle", format!("unsupported media type {other:?}"))),
        };
        let vm = field(&v, "verificationMaterial", "verification_material")
            .ok_or_else(|| malformed("bundle", "no verificationMaterial"))?;

        let chain = field(vm, "x509CertificateChain", "x509_certificate_chain");
        let single = field(vm, "certificate", "certificate");
        let key = field(vm, "publicKey", "public_key");
        let material = match (chain, single, key) {
            (Some(chain), None, None) => {
                let certs = chain.get("certificates").and_then(Value::as_array).cloned().unwrap_or_default();
                let mut ders = certs
                    .iter()
                    .map(|c| bytes("bundle certificate", field(c, "rawBytes", "raw_bytes")))
                    .collect::<Result<Vec<_>>>()?;
                if ders.is_empty() {
                    return Err(malformed("bundle", "empty certificate chain"));
                }
                let leaf = ders.remove(0);
                Material::Certificate { leaf, chain: ders }
            }
            (None, Some(cert), None) => Material::Certificate {
                leaf: bytes("bundle certificate", field(cert, "rawBytes", "raw_bytes"))?,
                chain: Vec::new(),
            },
            (None, None, Some(key)) => {
                Material::PublicKey { hint: key.get("hint").and_then(Value::as_str).unwrap_or_default().to_string() }
            }
            _ => {
                return Err(malformed(
                    "bundle",
                    "verificationMaterial needs exactly one of a certificate chain, a certificate or a public key",
                ));
            }
        };

        let mut tlog_entries = Vec::new();
        for e in field(vm, "tlogEntries", "tlog_entries").and_then(Value::as_array).into_iter().flatten() {
            tlog_entries.push(parse_entry(e)?);
        }

        let mut timestamps = Vec::new();
        if let Some(tvd) = field(vm, "timestampVerificationData", "timestamp_verification_data") {
            for t in
                field(tvd, "rfc3161Timestamps", "rfc3161_timestamps").and_then(Value::as_array).into_iter().flatten()
            {
                timestamps.push(bytes("RFC 3161 timestamp", field(t, "signedTimestamp", "signed_timestamp"))?);
            }
        }

        let content =
            match (field(&v, "messageSignature", "message_signature"), field(&v, "dsseEnvelope", "dsse_envelope")) {
                (Some(ms), None) => {
                    let digest = match field(ms, "messageDigest", "message_digest") {
                        Some(md) => {
                            let alg = md.get("algorithm").and_then(Value::as_str).unwrap_or_default();
                            let alg = hash_alg(alg).ok_or_else(|| {
                                malformed("bundle", format!("unsupported message digest algorithm {alg:?}"))
                            })?;
                            Some((alg, bytes("message digest", md.get("digest"))?))
                        }
                        None => None,
                    };
                    Content::MessageSignature { digest, signature: bytes("message signature", ms.get("signature"))? }
                }
                (None, Some(env)) => Content::Dsse(Envelope::from_value(env)?),
                _ => return Err(malformed("bundle", "content needs exactly one of messageSignature and dsseEnvelope")),
            };
        Ok(Bundle { version, material, tlog_entries, timestamps, content })
    }

    /// The signature bytes (a DSSE envelope must have exactly one).
    pub fn signature(&self) -> Result<&[u8]> {
        match &self.content {
            Content::MessageSignature { signature, .. } => Ok(signature),
            Content::Dsse(env) => match env.signatures.as_slice() {
                [one] => Ok(&one.sig),
                _ => Err(Error::BadSignature("a DSSE envelope in a bundle must have exactly one signature".into())),
            },
        }
    }
}

fn parse_entry(e: &Value) -> Result<TlogEntry> {
    const WHAT: &str = "tlog entry";
    let log_index = int64(WHAT, field(e, "logIndex", "log_index"))?;
    if log_index < 0 {
        return Err(malformed(WHAT, format!("negative log index {log_index}")));
    }
    let log_id = bytes("tlog entry log id", field(e, "logId", "log_id").and_then(|l| field(l, "keyId", "key_id")))?;
    let kv = field(e, "kindVersion", "kind_version").ok_or_else(|| malformed(WHAT, "no kindVersion"))?;
    let kind = kv.get("kind").and_then(Value::as_str).unwrap_or_default().to_string();
    let version = kv.get("version").and_then(Value::as_str).unwrap_or_default().to_string();
    let integrated_time = int64(WHAT, field(e, "integratedTime", "integrated_time"))?;
    let signed_entry_timestamp = match field(e, "inclusionPromise", "inclusion_promise") {
        Some(p) => Some(bytes("signed entry timestamp", field(p, "signedEntryTimestamp", "signed_entry_timestamp"))?),
        None => None,
    };
    let inclusion_proof = match field(e, "inclusionProof", "inclusion_proof") {
        Some(p) => {
            let log_index = int64(WHAT, field(p, "logIndex", "log_index"))?;
            let tree_size = int64(WHAT, field(p, "treeSize", "tree_size"))?;
            if log_index < 0 || tree_size < 0 {
                return Err(malformed(WHAT, "negative inclusion proof index or tree size"));
            }
            let hashes = p
                .get("hashes")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|h| {
                    let raw = bytes("inclusion proof hash", Some(h))?;
                    <[u8; 32]>::try_from(raw.as_slice())
                        .map_err(|_| malformed(WHAT, "an inclusion proof hash is not 32 bytes"))
                })
                .collect::<Result<Vec<_>>>()?;
            let checkpoint = p
                .get("checkpoint")
                .and_then(|c| c.get("envelope"))
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string);
            Some(InclusionProof {
                log_index,
                root_hash: bytes("inclusion proof root hash", field(p, "rootHash", "root_hash"))?,
                tree_size,
                hashes,
                checkpoint,
            })
        }
        None => None,
    };
    let canonicalized_body = bytes("tlog entry body", field(e, "canonicalizedBody", "canonicalized_body"))?;
    Ok(TlogEntry {
        log_index,
        log_id,
        kind,
        version,
        integrated_time,
        signed_entry_timestamp,
        inclusion_proof,
        canonicalized_body,
    })
}

// ---------------------------------------------------------------------------------------------
// Log entry bodies: is the entry about this signature?

/// What a log entry must be about.
pub(crate) struct Expect<'a> {
    pub signature: &'a [u8],
    /// DER certificate or SPKI.
    pub verifier: rekor::Verifier<'a>,
    /// For hashedrekord entries: `alg:hex` of the artifact.
    pub artifact_digest: Option<String>,
    /// For DSSE entries: the envelope.
    pub envelope: Option<&'a Envelope>,
}

fn verifier_der<'a>(v: &rekor::Verifier<'a>) -> &'a [u8] {
    match v {
        rekor::Verifier::Certificate(d) | rekor::Verifier::PublicKey(d) => d,
    }
}

/// The DER in a PEM text (certificate or key), as Rekor v1 bodies name verifiers.
fn pem_der(pem_b64: &str) -> Result<Vec<u8>> {
    let pem = B64.decode(pem_b64.trim()).map_err(|e| malformed("Rekor entry body", e))?;
    let pem = String::from_utf8(pem).map_err(|e| malformed("Rekor entry body", e))?;
    pem_blocks(&pem)?
        .into_iter()
        .next()
        .map(|(_, der)| der)
        .ok_or_else(|| malformed("Rekor entry body", "the verifier is not PEM"))
}

/// A signature in a log entry body and the DER of its verifier.
type SignedBy = (Vec<u8>, Vec<u8>);

fn mismatch(what: &str) -> Error {
    Error::TransparencyLog(format!("the log entry is for another {what}"))
}

/// Checks a Rekor entry body (`hashedrekord` 0.0.1/0.0.2, `dsse` 0.0.1, `intoto` 0.0.2) against
/// the signature being verified.
pub(crate) fn check_body(kind: &str, version: &str, body: &[u8], expect: &Expect<'_>) -> Result<()> {
    let v: Value = serde_json::from_slice(body).map_err(|e| malformed("Rekor entry body", e))?;
    let body_kind = v.get("kind").and_then(Value::as_str).unwrap_or_default();
    let body_version = v.get("apiVersion").and_then(Value::as_str).unwrap_or_default();
    if body_kind != kind || body_version != version {
        return Err(Error::TransparencyLog(format!(
            "the entry says {kind} {version} but its body is {body_kind} {body_version}"
        )));
    }
    let spec = v.get("spec").ok_or_else(|| malformed("Rekor entry body", "no spec"))?;
    let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_string);
    match (kind, version) {
        ("hashedrekord", "0.0.1") => {
            if expect.envelope.is_some() {
                return Err(Error::TransparencyLog("a hashedrekord 0.0.1 entry for a DSSE envelope".into()));
            }
            let digest = expect.artifact_digest.as_deref().ok_or_else(|| mismatch("artifact"))?;
            rekor::check_hashedrekord(body, expect.signature, expect.verifier, digest)
        }
        ("hashedrekord", "0.0.2") => match expect.envelope {
            // Rekor v2 logs a DSSE envelope as a hashedrekord over its PAE (rekor-tiles
            // `CLIENTS.md`, "hashedrekord-over-DSSE"), hashed as the entry says.
            Some(env) => {
                let alg = text(spec.pointer("/hashedRekordV002/data/algorithm")).unwrap_or_default();
                let alg =
                    hash_alg(&alg).ok_or_else(|| malformed("Rekor entry body", format!("digest algorithm {alg:?}")))?;
                let digest = format!("{}:{}", alg.name(), hex(&alg.digest(&env.pae())));
                rekor::check_hashedrekord(body, expect.signature, expect.verifier, &digest)
            }
            None => {
                let digest = expect.artifact_digest.as_deref().ok_or_else(|| mismatch("artifact"))?;
                rekor::check_hashedrekord(body, expect.signature, expect.verifier, digest)
            }
        },
        ("dsse", "0.0.2") => Err(Error::TransparencyLog(
            "a dsse 0.0.2 entry: Rekor v2 logs DSSE envelopes as hashedrekord 0.0.2 over the PAE".into(),
        )),
        ("dsse", "0.0.1") | ("intoto", "0.0.2") => {
            let env =
                expect.envelope.ok_or_else(|| Error::TransparencyLog("a DSSE entry for a message signature".into()))?;
            let payload_sha256 = Sha256::digest(&env.payload).to_vec();
            // (payload hash, [(signature, verifier DER)])
            let (hash, sigs): (Vec<u8>, Vec<SignedBy>) = match (kind, version) {
                ("dsse", "0.0.1") => {
                    let alg = text(spec.pointer("/payloadHash/algorithm")).unwrap_or_default();
                    if alg != "sha256" {
                        return Err(malformed("Rekor entry body", format!("payload hash algorithm {alg:?}")));
                    }
                    let hash = text(spec.pointer("/payloadHash/value"))
                        .and_then(|h| unhex(&h))
                        .ok_or_else(|| malformed("Rekor entry body", "payload hash"))?;
                    let mut sigs = Vec::new();
                    for s in spec.get("signatures").and_then(Value::as_array).into_iter().flatten() {
                        let sig = bytes("Rekor entry body", s.get("signature"))?;
                        let ver = pem_der(
                            &text(s.get("verifier")).ok_or_else(|| malformed("Rekor entry body", "no verifier"))?,
                        )?;
                        sigs.push((sig, ver));
                    }
                    (hash, sigs)
                }
                _ => {
                    let content = spec.get("content").ok_or_else(|| malformed("Rekor entry body", "no content"))?;
                    let alg = text(content.pointer("/payloadHash/algorithm")).unwrap_or_default();
                    if alg != "sha256" {
                        return Err(malformed("Rekor entry body", format!("payload hash algorithm {alg:?}")));
                    }
                    let hash = text(content.pointer("/payloadHash/value"))
                        .and_then(|h| unhex(&h))
                        .ok_or_else(|| malformed("Rekor entry body", "payload hash"))?;
                    let envelope =
                        content.get("envelope").ok_or_else(|| malformed("Rekor entry body", "no envelope"))?;
                    if text(envelope.get("payloadType")).as_deref() != Some(env.payload_type.as_str()) {
                        return Err(mismatch("payload type"));
                    }
                    let mut sigs = Vec::new();
                    for s in envelope.get("signatures").and_then(Value::as_array).into_iter().flatten() {
                        // The signature is base64 twice over (the JSON of a base64 string of bytes).
                        let once = bytes("Rekor entry body", s.get("sig"))?;
                        let sig =
                            std::str::from_utf8(&once).ok().and_then(|t| B64.decode(t.trim()).ok()).unwrap_or(once);
                        let ver = pem_der(
                            &text(s.get("publicKey")).ok_or_else(|| malformed("Rekor entry body", "no public key"))?,
                        )?;
                        sigs.push((sig, ver));
                    }
                    (hash, sigs)
                }
            };
            if hash != payload_sha256 {
                return Err(mismatch("DSSE payload"));
            }
            let [(sig, ver)] = sigs.as_slice() else {
                return Err(Error::TransparencyLog("a DSSE log entry must have exactly one signature".into()));
            };
            if sig.as_slice() != expect.signature {
                return Err(mismatch("signature"));
            }
            if ver.as_slice() != verifier_der(&expect.verifier) {
                return Err(mismatch("certificate or key"));
            }
            Ok(())
        }
        _ => Err(Error::TransparencyLog(format!("unsupported log entry kind {kind} {version}"))),
    }
}

// ---------------------------------------------------------------------------------------------
// Log entries: inclusion, checkpoint, SET.

/// What a verified entry proves: `Some(integrated time)` when a valid SET vouches for it.
fn verify_entry(
    entry: &TlogEntry,
    root: &TrustedRoot,
    expect: &Expect<'_>,
    promise_only_ok: bool,
) -> Result<Option<i64>> {
    let log = root
        .find_tlog(&entry.log_id)
        .ok_or_else(|| Error::TransparencyLog(format!("log {} is not in the trusted root", hex(&entry.log_id))))?;
    let v2 = entry.is_rekor_v2();

    let Some(proof) = entry.inclusion_proof.as_ref() else {
        // An inclusion promise alone (v0.1, when the options accept it): the SET must vouch for
        // the entry, and the body must be of this signature.
        let set = match &entry.signed_entry_timestamp {
            Some(set) if promise_only_ok && !v2 => set,
            _ => return Err(Error::TransparencyLog("the log entry has no inclusion proof".into())),
        };
        check_body(&entry.kind, &entry.version, &entry.canonicalized_body, expect)?;
        let body_b64 = B64.encode(&entry.canonicalized_body);
        rekor::verify_set(&body_b64, entry.integrated_time, entry.log_index, &hex(&entry.log_id), set, root)?;
        return Ok(Some(entry.integrated_time));
    };
    let envelope = proof
        .checkpoint
        .as_deref()
        .ok_or_else(|| Error::TransparencyLog("the inclusion proof has no checkpoint".into()))?;
    // Both non-negative (checked on parsing).
    let (index, size) = (proof.log_index as u64, proof.tree_size as u64);
    merkle::verify_inclusion(index, size, &entry.canonicalized_body, &proof.hashes, &proof.root_hash)?;
    let checkpoint = merkle::Checkpoint::parse(envelope)?;
    let origin = merkle::origin_of(&log.base_url);
    let signer = if v2 { merkle::Signer::Named(origin) } else { merkle::Signer::KeyOnly };
    let hint_source = log.checkpoint_key_id.as_deref().unwrap_or(&log.log_id);
    let hint = <[u8; 4]>::try_from(hint_source.get(..4).unwrap_or_default()).ok();
    merkle::verify_checkpoint(&checkpoint, &log.key, signer, hint)?;
    if checkpoint.size != size || checkpoint.root_hash != proof.root_hash {
        return Err(Error::TransparencyLog("the checkpoint is not of the inclusion proof's tree".into()));
    }

    check_body(&entry.kind, &entry.version, &entry.canonicalized_body, expect)?;

    if v2 {
        return Ok(None);
    }
    match &entry.signed_entry_timestamp {
        Some(set) => {
            let body_b64 = B64.encode(&entry.canonicalized_body);
            rekor::verify_set(&body_b64, entry.integrated_time, entry.log_index, &hex(&entry.log_id), set, root)?;
            Ok(Some(entry.integrated_time))
        }
        None => Ok(None),
    }
}

// ---------------------------------------------------------------------------------------------
// Verification.

/// The digest a message signature is checked against: `(hash, digest)`.
fn artifact_digest(artifact: Artifact<'_>, want: HashAlg) -> Result<(HashAlg, Vec<u8>)> {
    match artifact {
        Artifact::Bytes(b) => Ok((want, want.digest(b))),
        Artifact::Digest { algorithm, hex: text } => {
            let alg = match algorithm.to_ascii_lowercase().as_str() {
                "sha256" => HashAlg::Sha256,
                "sha384" => HashAlg::Sha384,
                "sha512" => HashAlg::Sha512,
                other => return Err(malformed("artifact digest", format!("unsupported algorithm {other:?}"))),
            };
            let digest = unhex(text).ok_or_else(|| malformed("artifact digest", "not hex"))?;
            if digest.len() != alg.digest(b"").len() {
                return Err(malformed("artifact digest", "wrong length for its algorithm"));
            }
            Ok((alg, digest))
        }
    }
}

struct Checked {
    signer: Signer,
    key: PublicKey,
    signed_at: Option<i64>,
}

/// Everything but the signature over the content: log entries, timestamps, certificate,
/// identity. `expect` is built from the key the bundle is checked with.
fn verify_material(
    bundle: &Bundle,
    root: &TrustedRoot,
    authority: &Authority,
    artifact_digest: Option<String>,
    options: &Options,
) -> Result<Checked> {
    if bundle.version < options.min_version {
        return Err(malformed("bundle", format!("unsupported bundle version {:?}", bundle.version)));
    }
    let signature = bundle.signature()?;
    let envelope = match &bundle.content {
        Content::Dsse(env) => Some(env),
        Content::MessageSignature { .. } => None,
    };

    // Who signed.
    let (key, cert, intermediates) = match (&bundle.material, authority) {
        (Material::Certificate { leaf, chain }, Authority::Keyless { .. }) => {
            let cert = Certificate::from_der(leaf)?;
            let chain: &[Vec<u8>] = if options.leaf_only { &[] } else { chain };
            let intermediates = chain.iter().map(|c| Certificate::from_der(c)).collect::<Result<Vec<_>>>()?;
            for c in chain {
                if timestamp::is_self_issued(c)? {
                    return Err(Error::UntrustedCertificate("the bundle's certificate chain includes a root".into()));
                }
            }
            (cert.public_key()?, Some(cert), intermediates)
        }
        (Material::PublicKey { .. }, Authority::Key { key, .. }) => (key.clone(), None, Vec::new()),
        (Material::Certificate { .. }, Authority::Key { .. }) => {
            return Err(Error::IdentityMismatch("a key was expected, the bundle is signed with a certificate".into()));
        }
        (Material::PublicKey { .. }, Authority::Keyless { .. }) => {
            return Err(Error::IdentityMismatch(
                "a certificate identity was expected, the bundle is signed with a key".into(),
            ));
        }
    };
    let verifier = match (&bundle.material, &cert) {
        (Material::Certificate { leaf, .. }, _) => rekor::Verifier::Certificate(leaf),
        _ => rekor::Verifier::PublicKey(key.der()),
    };
    let expect = Expect { signature, verifier, artifact_digest, envelope };

    // Signed timestamps.
    if bundle.timestamps.len() > MAX_TIMESTAMPS {
        return Err(Error::Timestamp("too many signed timestamps".into()));
    }
    let fingerprints: Vec<[u8; 32]> = bundle.timestamps.iter().map(|t| timestamp::fingerprint(t)).collect();
    for (i, f) in fingerprints.iter().enumerate() {
        if fingerprints[..i].contains(f) {
            return Err(Error::Timestamp("duplicate signed timestamps".into()));
        }
    }
    let mut tsa_times = Vec::new();
    let mut tsa_error = None;
    for ts in &bundle.timestamps {
        match timestamp::verify(ts, signature, root) {
            Ok(t) => tsa_times.push(t),
            Err(e) => tsa_error = Some(e),
        }
    }
    // Transparency log entries.
    if bundle.tlog_entries.len() > MAX_ENTRIES {
        return Err(Error::TransparencyLog("too many log entries".into()));
    }
    for (i, a) in bundle.tlog_entries.iter().enumerate() {
        if bundle.tlog_entries[..i].iter().any(|b| a.log_id == b.log_id && a.log_index == b.log_index) {
            return Err(Error::TransparencyLog("duplicate log entries".into()));
        }
    }
    let mut times = Vec::new();
    let mut entries_verified = 0;
    let mut rekor_v2 = false;
    let mut last_error = None;
    for entry in &bundle.tlog_entries {
        if root.find_tlog(&entry.log_id).is_none() {
            // An entry the trusted root cannot check does not count (sigstore-go skips it).
            last_error = Some(Error::TransparencyLog(format!("log {} is not in the trusted root", hex(&entry.log_id))));
            continue;
        }
        let promise_only_ok = options.allow_promise_only_v01 && bundle.version == Version::V0_1;
        if let Some(t) = verify_entry(entry, root, &expect, promise_only_ok)? {
            times.push(t);
        }
        if entry.is_rekor_v2() {
            // No integrated time: the log's key must have been trusted when a TSA saw the signature.
            let log = root.find_tlog(&entry.log_id).ok_or_else(|| Error::TransparencyLog("log not found".into()))?;
            if !tsa_times.is_empty() && !tsa_times.iter().any(|t| log.valid_for.contains(*t)) {
                return Err(Error::TransparencyLog(format!(
                    "log {} was not trusted at the signed timestamp",
                    log.base_url
                )));
            }
            rekor_v2 = true;
        }
        entries_verified += 1;
    }
    let tlog_required = match authority {
        Authority::Key { require_tlog, .. } => *require_tlog && options.require_tlog,
        Authority::Keyless { .. } => options.require_tlog,
    };
    if tlog_required && entries_verified == 0 {
        return Err(
            last_error.unwrap_or_else(|| Error::TransparencyLog("the bundle has no transparency log entry".into()))
        );
    }

    if rekor_v2 && tsa_times.is_empty() {
        return Err(tsa_error.unwrap_or_else(|| {
            Error::Timestamp("a Rekor v2 entry has no integrated time: a signed timestamp is required".into())
        }));
    }
    times.extend(&tsa_times);

    // The certificate, at every verified time.
    let signer = match &cert {
        Some(cert) => {
            if times.is_empty() {
                return Err(tsa_error.unwrap_or_else(|| {
                    Error::Timestamp("no verified signing time (no valid SET or signed timestamp)".into())
                }));
            }
            let mut path = Vec::new();
            for t in &times {
                path = certificate::build_chain(cert, &intermediates, root, *t)?;
            }
            let issuer = path.first().ok_or_else(|| Error::UntrustedCertificate("empty certificate path".into()))?;
            if options.require_sct {
                certificate::verify_scts(cert, issuer, root)?;
            }
            let (issuer, subject) = cert.identity()?;
            Signer::Certificate { issuer, subject }
        }
        None => Signer::Key { key_id: key.key_id() },
    };
    identity::check(authority, &signer)?;
    Ok(Checked { signer, key, signed_at: times.iter().min().copied() })
}

/// Verifies a bundle for an artifact: a message signature over it, or a DSSE envelope whose
/// statement names its digest (`sha256`, or the algorithm given).
pub fn verify(
    bundle_json: &[u8],
    artifact: Artifact<'_>,
    root: &TrustedRoot,
    authority: &Authority,
) -> Result<Verified> {
    verify_with(bundle_json, artifact, root, authority, &Options::default())
}

/// [`verify`] under explicit [`Options`].
pub fn verify_with(
    bundle_json: &[u8],
    artifact: Artifact<'_>,
    root: &TrustedRoot,
    authority: &Authority,
    options: &Options,
) -> Result<Verified> {
    let bundle = Bundle::from_json(bundle_json)?;
    match &bundle.content {
        Content::MessageSignature { digest, signature } => {
            // The hash the signature uses: the key's (a digest given by the caller must be of it).
            let key_hash = match (&bundle.material, authority) {
                (Material::PublicKey { .. }, Authority::Key { key, .. }) => key.message_hash(),
                (Material::Certificate { leaf, .. }, _) => Certificate::from_der(leaf)?.public_key()?.message_hash(),
                _ => None,
            };
            let want = digest.as_ref().map(|(alg, _)| *alg).or(key_hash).unwrap_or(HashAlg::Sha256);
            let (alg, artifact_hash) = artifact_digest(artifact, want)?;
            if let Some((hint_alg, hint)) = digest
                && (*hint_alg != alg || *hint != artifact_hash)
            {
                return Err(Error::DigestMismatch(format!(
                    "the bundle's message digest {}:{} is not the artifact's {}:{}",
                    hint_alg.name(),
                    hex(hint),
                    alg.name(),
                    hex(&artifact_hash)
                )));
            }
            let digest_text = format!("{}:{}", alg.name(), hex(&artifact_hash));
            let checked = verify_material(&bundle, root, authority, Some(digest_text.clone()), options)?;
            match (artifact, checked.key.message_hash()) {
                // Ed25519 signs the message itself.
                (Artifact::Bytes(b), None) => checked.key.verify(b, signature)?,
                (Artifact::Digest { .. }, None) => {
                    return Err(Error::BadSignature("an Ed25519 signature needs the artifact, not its digest".into()));
                }
                _ => checked.key.verify_prehashed(&artifact_hash, signature)?,
            }
            Ok(Verified {
                signer: checked.signer,
                digest: digest_text,
                docker_reference: None,
                signed_at: checked.signed_at,
            })
        }
        Content::Dsse(_) => {
            let (verified, statement) = verify_dsse_bundle(&bundle, root, authority, options)?;
            // The artifact's digest in each algorithm the caller or a subject uses.
            let candidates = match artifact {
                Artifact::Bytes(_) => vec![HashAlg::Sha256, HashAlg::Sha384, HashAlg::Sha512],
                Artifact::Digest { .. } => vec![HashAlg::Sha256],
            };
            let mut first = None;
            for want in candidates {
                let (alg, digest) = artifact_digest(artifact, want)?;
                let digest_text = format!("{}:{}", alg.name(), hex(&digest));
                if statement.has_subject_digest(alg.name(), &hex(&digest)) {
                    return Ok(Verified { digest: digest_text, ..verified });
                }
                first.get_or_insert(digest_text);
            }
            Err(Error::DigestMismatch(format!(
                "no subject of the statement is the artifact {}",
                first.unwrap_or_default()
            )))
        }
    }
}

/// [`verify_dsse_with`] on a bundle already parsed (one parse, whatever the
/// number of authorities tried).
pub fn verify_dsse_bundle(
    bundle: &Bundle,
    root: &TrustedRoot,
    authority: &Authority,
    options: &Options,
) -> Result<(Verified, Statement)> {
    let Content::Dsse(env) = &bundle.content else {
        return Err(malformed("bundle", "a DSSE envelope was expected, the bundle holds a message signature"));
    };
    let checked = verify_material(bundle, root, authority, None, options)?;
    checked.key.verify(&env.pae(), bundle.signature()?)?;
    let statement = env.statement()?;
    let digest = format!("sha256:{}", hex(&Sha256::digest(&env.payload)));
    Ok((Verified { signer: checked.signer, digest, docker_reference: None, signed_at: checked.signed_at }, statement))
}

/// Verifies a bundle holding a DSSE envelope (an attestation) and returns its in-toto
/// statement; the caller checks its subjects and predicate. `Verified::digest` is the SHA-256
/// of the payload.
pub fn verify_dsse(bundle_json: &[u8], root: &TrustedRoot, authority: &Authority) -> Result<(Verified, Statement)> {
    verify_dsse_with(bundle_json, root, authority, &Options::default())
}

/// [`verify_dsse`] under explicit [`Options`].
pub fn verify_dsse_with(
    bundle_json: &[u8],
    root: &TrustedRoot,
    authority: &Authority,
    options: &Options,
) -> Result<(Verified, Statement)> {
    verify_dsse_bundle(&Bundle::from_json(bundle_json)?, root, authority, options)
}

/// Verifies cosign 3's signature of an image (`cosign sign`, new bundle format, stored as an OCI
/// referrer with artifact type `application/vnd.dev.sigstore.bundle.v0.3+json`): a DSSE
/// in-toto statement of predicate type [`COSIGN_SIGN_PREDICATE_TYPE`] whose subject is
/// `image_digest` (`sha256:<hex>`).
pub fn verify_image(
    bundle_json: &[u8],
    image_digest: &str,
    root: &TrustedRoot,
    authority: &Authority,
) -> Result<Verified> {
    let (alg, digest_hex) = image_digest
        .split_once(':')
        .ok_or_else(|| malformed("image digest", format!("{image_digest:?} is not <algorithm>:<hex>")))?;
    let bundle = Bundle::from_json(bundle_json)?;
    let (verified, statement) = verify_dsse_bundle(&bundle, root, authority, &Options::default())?;
    if statement.predicate_type != COSIGN_SIGN_PREDICATE_TYPE {
        return Err(Error::DigestMismatch(format!(
            "the statement is a {:?}, not a cosign image signature",
            statement.predicate_type
        )));
    }
    if !statement.has_subject_digest(alg, digest_hex) {
        return Err(Error::DigestMismatch(format!("the signature is not for image {image_digest}")));
    }
    Ok(Verified { digest: format!("{}:{}", alg.to_ascii_lowercase(), digest_hex.to_ascii_lowercase()), ..verified })
}

/// Verifies a keyless cosign attestation as `cosign attest` (before cosign 3) stores it in an
/// `.att` image: a DSSE envelope layer with the annotations `dev.sigstore.cosign/certificate`
/// (PEM), `dev.sigstore.cosign/chain` (PEM) and `dev.sigstore.cosign/bundle` (Rekor SET with its
/// entry), under cosign's defaults (a SET and an SCT required). The statement must name
/// `image_digest`; the certificate must chain to a CA of the trusted root at the integrated time.
/// [`crate::cosign::verify_cosign_attestation_with`] takes keys, RFC 3161 timestamps and options.
pub fn verify_cosign_attestation(
    envelope_json: &[u8],
    certificate_pem: &str,
    chain_pem: Option<&str>,
    rekor_bundle_json: &[u8],
    image_digest: &str,
    root: &TrustedRoot,
    authority: &Authority,
) -> Result<(Verified, Statement)> {
    let present = |text: &str| Some(text.to_string()).filter(|t| !t.trim().is_empty());
    let att = cosign::LegacyAttestation {
        envelope: envelope_json.to_vec(),
        certificate: present(certificate_pem),
        chain: chain_pem.and_then(present),
        bundle: present(&String::from_utf8_lossy(rekor_bundle_json)),
        ..Default::default()
    };
    cosign::verify_cosign_attestation_with(&att, image_digest, Some(root), authority, &Default::default())
}
