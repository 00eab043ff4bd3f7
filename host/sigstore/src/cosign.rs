//! cosign's legacy container-image signatures and attestations: a simple-signing payload
//! (`.sig` image) or a DSSE envelope of an in-toto statement (`.att` image), signed with a
//! key or a Fulcio / private-CA certificate and stored as one layer with its evidence in
//! annotations.
//!
//! Sources of truth:
//! - cosign `specs/SIGNATURE_SPEC.md`
//!   (<https://github.com/sigstore/cosign/blob/main/specs/SIGNATURE_SPEC.md>): the
//!   payload (`critical.identity.docker-reference`, `critical.image.docker-manifest-digest`,
//!   `critical.type = "cosign container image signature"`, `optional`), and the layer
//!   annotations `dev.cosignproject.cosign/signature` (base64 signature over the payload
//!   bytes), `dev.sigstore.cosign/certificate`, `dev.sigstore.cosign/chain` (PEM),
//!   `dev.sigstore.cosign/bundle` (Rekor SET with its entry),
//!   `dev.sigstore.cosign/rfc3161timestamp`;
//! - cosign `pkg/cosign/verify.go` (`VerifyImageSignature`): the signature is checked
//!   with the key or the certificate's key; a keyless certificate must chain to a trusted
//!   CA at the signing time, which the verified Rekor SET's integrated time gives; the
//!   Rekor entry must be for this signature, verifier and payload digest;
//! - containers/image `signature/sigstore` and `docker/reference` (the `\0sigstore-json\n`
//!   stored form of one signature layer; `matchRepository` / `matchExact` of
//!   `signedIdentity`, and docker reference normalisation).

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::bundle::{Expect, check_body};
use crate::certificate::{Certificate, build_chain, verify_scts};
use crate::dsse::{Envelope, Statement};
use crate::identity::{self, Authority};
use crate::keys::{base64_decode, hex};
use crate::rekor::{RekorBundle, Verifier};
use crate::trust::TrustedRoot;
use crate::{Error, Result, Signer, Verified, malformed};

pub const ANNOTATION_SIGNATURE: &str = "dev.cosignproject.cosign/signature";
pub const ANNOTATION_CERTIFICATE: &str = "dev.sigstore.cosign/certificate";
pub const ANNOTATION_CHAIN: &str = "dev.sigstore.cosign/chain";
pub const ANNOTATION_BUNDLE: &str = "dev.sigstore.cosign/bundle";
pub const ANNOTATION_RFC3161: &str = "dev.sigstore.cosign/rfc3161timestamp";
/// An attestation layer's statement type, as the attester said it (not signed).
pub const ANNOTATION_PREDICATE_TYPE: &str = "predicateType";
/// The media type of an attestation layer.
pub const DSSE_MEDIA_TYPE: &str = "application/vnd.dsse.envelope.v1+json";
/// The media type of a simple-signing signature layer.
pub const SIMPLE_SIGNING_MEDIA_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// `critical.type` of a cosign image signature.
pub const SIGNATURE_TYPE: &str = "cosign container image signature";
/// The first bytes of containers/image's stored sigstore signature.
const CONTAINERS_MAGIC: &[u8] = b"\x00sigstore-json\n";

/// The parts of a simple-signing payload that matter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimpleSigning {
    /// `critical.identity.docker-reference`.
    pub docker_reference: String,
    /// `critical.image.docker-manifest-digest` (`sha256:<hex>`).
    pub manifest_digest: String,
    /// `optional`, as given (often `null`).
    pub optional: Value,
}

/// Parses a simple-signing payload and checks its `critical.type`.
pub fn parse_simple_signing(payload: &[u8]) -> Result<SimpleSigning> {
    const WHAT: &str = "simple signing payload";
    let value: Value = serde_json::from_slice(payload).map_err(|e| malformed(WHAT, e))?;
    let critical = value.get("critical").ok_or_else(|| malformed(WHAT, "no critical"))?;
    let field = |pointer: &str| -> Result<String> {
        critical
            .pointer(pointer)
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| malformed(WHAT, format!("no string critical{pointer}")))
    };
    let kind = field("/type")?;
    if kind != SIGNATURE_TYPE {
        return Err(malformed(WHAT, format!("type {kind:?} is not {SIGNATURE_TYPE:?}")));
    }
    let manifest_digest = field("/image/docker-manifest-digest")?;
    Ok(SimpleSigning {
        docker_reference: field("/identity/docker-reference")?,
        manifest_digest,
        optional: value.get("optional").cloned().unwrap_or(Value::Null),
    })
}

/// One cosign signature layer: its payload and annotations.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LegacySignature {
    /// The layer's bytes: the simple-signing JSON.
    pub payload: Vec<u8>,
    /// `dev.cosignproject.cosign/signature`: base64.
    pub signature: String,
    /// `dev.sigstore.cosign/certificate`: PEM.
    pub certificate: Option<String>,
    /// `dev.sigstore.cosign/chain`: PEM, issuer first.
    pub chain: Option<String>,
    /// `dev.sigstore.cosign/bundle`: `{"SignedEntryTimestamp", "Payload": {...}}`.
    pub bundle: Option<String>,
    /// `dev.sigstore.cosign/rfc3161timestamp`.
    pub rfc3161_timestamp: Option<String>,
}

impl LegacySignature {
    /// From a layer's bytes and its annotations (name, value).
    pub fn from_layer<'a>(payload: Vec<u8>, annotations: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Self> {
        let mut sig = LegacySignature { payload, ..Default::default() };
        let mut has_signature = false;
        for (name, value) in annotations {
            if name == ANNOTATION_SIGNATURE {
                sig.signature = value.to_string();
                has_signature = true;
            } else {
                let slots = [&mut sig.certificate, &mut sig.chain, &mut sig.bundle, &mut sig.rfc3161_timestamp];
                read_evidence(slots, name, value);
            }
        }
        if !has_signature {
            return Err(malformed("cosign signature", format!("no {ANNOTATION_SIGNATURE} annotation")));
        }
        Ok(sig)
    }

    /// containers/image's stored form of one signature layer (`dir:` and
    /// `registries.d` sigstore attachments): the bytes `0x00 "sigstore-json" 0x0a` and JSON
    /// `{"mimeType", "payload" (base64), "annotations"}`. Only simple-signing layers are
    /// signatures; any other `mimeType` (or a GPG signature, which lacks the prefix) is
    /// rejected as malformed.
    pub fn from_containers_signature(bytes: &[u8]) -> Result<Self> {
        const WHAT: &str = "containers/image signature";
        let json = bytes
            .strip_prefix(CONTAINERS_MAGIC)
            .ok_or_else(|| malformed(WHAT, "not a sigstore signature (no \\0sigstore-json prefix)"))?;
        let value: Value = serde_json::from_slice(json).map_err(|e| malformed(WHAT, e))?;
        let mime = value.get("mimeType").and_then(Value::as_str).unwrap_or_default();
        if mime != SIMPLE_SIGNING_MEDIA_TYPE {
            return Err(malformed(WHAT, format!("media type {mime:?} is not a cosign signature")));
        }
        let payload = value.get("payload").and_then(Value::as_str).ok_or_else(|| malformed(WHAT, "no payload"))?;
        let payload = base64_decode(payload).map_err(|e| malformed(WHAT, format!("payload: {e}")))?;
        let annotations =
            value.get("annotations").and_then(Value::as_object).ok_or_else(|| malformed(WHAT, "no annotations"))?;
        let pairs = annotations.iter().filter_map(|(k, v)| v.as_str().map(|v| (k.as_str(), v)));
        LegacySignature::from_layer(payload, pairs)
    }
}

/// Puts an evidence annotation (certificate, chain, Rekor bundle, RFC 3161 timestamp, in the
/// order of `slots`) where it belongs; an empty value is no evidence, another name is ignored.
fn read_evidence(slots: [&mut Option<String>; 4], name: &str, value: &str) {
    const NAMES: [&str; 4] = [ANNOTATION_CERTIFICATE, ANNOTATION_CHAIN, ANNOTATION_BUNDLE, ANNOTATION_RFC3161];
    if let Some(index) = NAMES.iter().position(|n| *n == name)
        && !value.trim().is_empty()
    {
        *slots[index] = Some(value.to_string());
    }
}

/// One cosign attestation layer of an `.att` image: a DSSE envelope and its annotations.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LegacyAttestation {
    /// The layer's bytes: the DSSE envelope JSON (media type [`DSSE_MEDIA_TYPE`]).
    pub envelope: Vec<u8>,
    /// `dev.sigstore.cosign/certificate`: PEM.
    pub certificate: Option<String>,
    /// `dev.sigstore.cosign/chain`: PEM, issuer first.
    pub chain: Option<String>,
    /// `dev.sigstore.cosign/bundle`: `{"SignedEntryTimestamp", "Payload": {...}}`.
    pub bundle: Option<String>,
    /// `dev.sigstore.cosign/rfc3161timestamp`.
    pub rfc3161_timestamp: Option<String>,
    /// `predicateType`, as the attester annotated it: not signed, so good for choosing which
    /// layers to verify, never for a decision (the verified statement's own type is).
    pub annotated_predicate_type: Option<String>,
}

impl LegacyAttestation {
    /// From a layer's bytes and its annotations (name, value). cosign writes an empty
    /// `dev.cosignproject.cosign/signature` on attestations (the signature is in the
    /// envelope): it is ignored, as are annotations this crate does not read.
    pub fn from_layer<'a>(envelope: Vec<u8>, annotations: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut att = LegacyAttestation { envelope, ..Default::default() };
        for (name, value) in annotations {
            if name == ANNOTATION_PREDICATE_TYPE {
                att.annotated_predicate_type = Some(value.to_string()).filter(|v| !v.trim().is_empty());
            } else {
                let slots = [&mut att.certificate, &mut att.chain, &mut att.bundle, &mut att.rfc3161_timestamp];
                read_evidence(slots, name, value);
            }
        }
        att
    }
}

/// What a legacy verification demands beyond the authority.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LegacyOptions {
    /// Keyless: demand a verified Rekor SET (its integrated time is the signing time).
    /// When `false` and there is no SET, the certificate chain is checked at `now`
    /// (a private PKI without a transparency log).
    pub keyless_require_tlog: bool,
    /// Keyless: demand an embedded SCT from a CT log of the trust root.
    pub require_sct: bool,
    /// The time to check a certificate at when no transparency log gives one.
    pub now: Option<i64>,
}

impl Default for LegacyOptions {
    /// cosign's defaults: keyless needs a Rekor SET and an SCT.
    fn default() -> Self {
        LegacyOptions { keyless_require_tlog: true, require_sct: true, now: None }
    }
}

/// Verifies one cosign signature of the image whose manifest digest is `image_digest`
/// (`sha256:<hex>`), with cosign's defaults ([`LegacyOptions::default`]).
pub fn verify_legacy(
    sig: &LegacySignature,
    image_digest: &str,
    root: Option<&TrustedRoot>,
    authority: &Authority,
) -> Result<Verified> {
    verify_legacy_with(sig, image_digest, root, authority, &LegacyOptions::default())
}

/// Verifies one cosign signature:
/// 1. the signature over the payload bytes, with the authority's key or the certificate's key;
/// 2. the Rekor SET, if present (required for a key with `require_tlog`, and for keyless
///    unless `options` say otherwise): signed by a log of `root` valid at its integrated
///    time, and its hashedrekord entry is for this signature, key or certificate, and payload;
/// 3. an RFC 3161 timestamp, if present (and `root` is given), over the signature bytes
///    from a timestamp authority of `root`;
/// 4. keyless: the certificate chains to a CA of `root` at every verified signing time (the
///    SET's integrated time, the RFC 3161 time; with neither, `options.now`), has an SCT from a CT log of `root` (unless
///    `options.require_sct` is false), and its issuer and subject match the authority;
/// 5. the payload is a cosign simple-signing payload for `image_digest` (else `DigestMismatch`).
///
/// The docker reference is returned, not checked: see [`reference_matches`].
pub fn verify_legacy_with(
    sig: &LegacySignature,
    image_digest: &str,
    root: Option<&TrustedRoot>,
    authority: &Authority,
    options: &LegacyOptions,
) -> Result<Verified> {
    let signature = base64_decode(&sig.signature).map_err(|e| malformed("cosign signature", e))?;
    if signature.is_empty() {
        return Err(malformed("cosign signature", "empty signature"));
    }
    let evidence = Evidence::of([&sig.certificate, &sig.chain, &sig.bundle, &sig.rfc3161_timestamp]);
    let (signer, signed_at) =
        verify_evidence(&evidence, &signature, Signed::Payload(&sig.payload), &signature, root, authority, options)?;

    let simple = parse_simple_signing(&sig.payload)?;
    if !simple.manifest_digest.eq_ignore_ascii_case(image_digest.trim()) {
        return Err(Error::DigestMismatch(format!(
            "the signature is for image {}, not {image_digest}",
            simple.manifest_digest
        )));
    }
    Ok(Verified {
        signer,
        digest: simple.manifest_digest.to_ascii_lowercase(),
        docker_reference: Some(simple.docker_reference),
        signed_at,
    })
}

/// Verifies one cosign attestation (an `.att` layer) of the image whose manifest digest is
/// `image_digest` (`sha256:<hex>`), and returns its in-toto statement (the caller checks the
/// predicate). The steps of [`verify_legacy_with`], under the same options:
/// 1. the envelope has exactly one signature, over its PAE, by the authority's key or the
///    certificate's key;
/// 2. the Rekor SET, if present (required as for a signature): its `dsse` 0.0.1 or `intoto`
///    0.0.2 entry is for this envelope's payload, signature, and key or certificate;
/// 3. an RFC 3161 timestamp, if present (and `root` is given), over the layer's bytes (the
///    envelope JSON, as cosign timestamps attestations) from a timestamp authority of `root`;
/// 4. keyless: the certificate chain at every verified time, the SCT, the identity;
/// 5. the payload is an in-toto statement (`application/vnd.in-toto+json`) with a subject whose
///    digest is `image_digest` (else `DigestMismatch`).
///
/// `Verified::digest` is `image_digest`, lower-cased.
pub fn verify_cosign_attestation_with(
    att: &LegacyAttestation,
    image_digest: &str,
    root: Option<&TrustedRoot>,
    authority: &Authority,
    options: &LegacyOptions,
) -> Result<(Verified, Statement)> {
    let (alg, digest_hex) = image_digest
        .trim()
        .split_once(':')
        .ok_or_else(|| malformed("image digest", format!("{image_digest:?} is not <algorithm>:<hex>")))?;
    let env = Envelope::from_json(&att.envelope)?;
    let [signature] = env.signatures.as_slice() else {
        return Err(Error::BadSignature(format!(
            "the attestation envelope must have exactly one signature, it has {}",
            env.signatures.len()
        )));
    };
    let evidence = Evidence::of([&att.certificate, &att.chain, &att.bundle, &att.rfc3161_timestamp]);
    let (signer, signed_at) =
        verify_evidence(&evidence, &signature.sig, Signed::Envelope(&env), &att.envelope, root, authority, options)?;

    let statement = env.statement()?;
    if !statement.has_subject_digest(alg, digest_hex) {
        let subjects: Vec<String> = statement
            .subject
            .iter()
            .flat_map(|s| s.digest.iter().map(|(alg, value)| format!("{alg}:{value}")))
            .collect();
        return Err(Error::DigestMismatch(format!(
            "the attestation is about {}, not {image_digest}",
            if subjects.is_empty() { "no digest".to_string() } else { subjects.join(", ") }
        )));
    }
    let verified = Verified {
        signer,
        digest: format!("{}:{}", alg.to_ascii_lowercase(), digest_hex.to_ascii_lowercase()),
        docker_reference: None,
        signed_at,
    };
    Ok((verified, statement))
}

/// The evidence annotations beside a signature or an attestation.
struct Evidence<'a> {
    certificate: Option<&'a str>,
    chain: Option<&'a str>,
    bundle: Option<&'a str>,
    rfc3161_timestamp: Option<&'a str>,
}

impl<'a> Evidence<'a> {
    /// From the annotations read (in [`read_evidence`]'s order).
    fn of([certificate, chain, bundle, rfc3161_timestamp]: [&'a Option<String>; 4]) -> Evidence<'a> {
        Evidence {
            certificate: certificate.as_deref(),
            chain: chain.as_deref(),
            bundle: bundle.as_deref(),
            rfc3161_timestamp: rfc3161_timestamp.as_deref(),
        }
    }
}

/// What a signature is over: a simple-signing payload, or a DSSE envelope's PAE.
#[derive(Clone, Copy)]
enum Signed<'a> {
    Payload(&'a [u8]),
    Envelope(&'a Envelope),
}

/// The steps a cosign signature and attestation share: the signature (over the payload or
/// the PAE) with the authority's key or the certificate's, the Rekor SET and its entry, the
/// RFC 3161 timestamp over `timestamped`, and for a certificate its chain at every verified
/// time, its SCT and its identity. Returns the signer and the first verified signing time.
fn verify_evidence(
    evidence: &Evidence<'_>,
    signature: &[u8],
    signed: Signed<'_>,
    timestamped: &[u8],
    root: Option<&TrustedRoot>,
    authority: &Authority,
    options: &LegacyOptions,
) -> Result<(Signer, Option<i64>)> {
    let leaf = match authority {
        Authority::Key { .. } => None,
        Authority::Keyless { .. } => {
            let pem = evidence
                .certificate
                .ok_or_else(|| Error::UntrustedCertificate("keyless verification needs a certificate".into()))?;
            let mut certs = Certificate::from_pem(pem)?;
            Some(certs.remove(0))
        }
    };
    let key = match (authority, &leaf) {
        (Authority::Key { key, .. }, _) => key.clone(),
        (_, Some(cert)) => cert.public_key()?,
        (_, None) => return Err(Error::UntrustedCertificate("no certificate".into())),
    };
    let (expect_digest, envelope) = match signed {
        Signed::Payload(payload) => {
            key.verify(payload, signature)?;
            (Some(format!("sha256:{}", hex(&Sha256::digest(payload)))), None)
        }
        Signed::Envelope(env) => {
            key.verify(&env.pae(), signature)?;
            (None, Some(env))
        }
    };

    // The transparency log.
    let tlog_required = match authority {
        Authority::Key { require_tlog, .. } => *require_tlog,
        Authority::Keyless { .. } => options.keyless_require_tlog,
    };
    let mut signed_at = None;
    match (evidence.bundle, root) {
        (Some(bundle), Some(root)) => {
            let bundle = RekorBundle::from_json(bundle.as_bytes())?;
            bundle.verify(root)?;
            let verifier = match &leaf {
                Some(cert) => Verifier::Certificate(cert.der()),
                None => Verifier::PublicKey(key.der()),
            };
            let expect = Expect { signature, verifier, artifact_digest: expect_digest, envelope };
            let body = bundle.body_json()?;
            let head: Value = serde_json::from_slice(&body).map_err(|e| malformed("Rekor entry body", e))?;
            let kind = head.get("kind").and_then(Value::as_str).unwrap_or_default();
            let version = head.get("apiVersion").and_then(Value::as_str).unwrap_or_default();
            check_body(kind, version, &body, &expect)?;
            signed_at = Some(bundle.integrated_time);
        }
        (None, _) if tlog_required => {
            return Err(Error::TransparencyLog("no Rekor bundle (signed entry timestamp) on the signature".into()));
        }
        (Some(_), None) if tlog_required => {
            return Err(Error::TransparencyLog("no transparency log is trusted to check the Rekor bundle".into()));
        }
        _ => {}
    }

    // Verified signing times: the SET's integrated time, an RFC 3161 timestamp (cosign
    // `VerifyRFC3161Timestamp`).
    let mut times: Vec<i64> = signed_at.into_iter().collect();
    if let (Some(annotation), Some(root)) = (evidence.rfc3161_timestamp, root) {
        let token = rfc3161_token(annotation)?;
        let at = crate::timestamp::verify(&token, timestamped, root)?;
        times.push(at);
        signed_at = signed_at.or(Some(at));
    }

    let signer = match (&leaf, authority) {
        (Some(cert), Authority::Keyless { .. }) => {
            let root = root.ok_or_else(|| Error::UntrustedCertificate("no trust root for a certificate".into()))?;
            if times.is_empty() {
                times.push(options.now.ok_or_else(|| {
                    Error::TransparencyLog(
                        "keyless verification needs a verified Rekor entry for the signing time".into(),
                    )
                })?);
            }
            let intermediates = match evidence.chain {
                Some(pem) if !pem.trim().is_empty() => Certificate::from_pem(pem)?,
                _ => Vec::new(),
            };
            // The certificate must have been valid, and chained, at every verified time.
            let mut path = Vec::new();
            for at in &times {
                path = build_chain(cert, &intermediates, root, *at)?;
            }
            if options.require_sct {
                let issuer =
                    path.first().ok_or_else(|| Error::UntrustedCertificate("empty certificate path".into()))?;
                verify_scts(cert, issuer, root)?;
            }
            let (issuer, subject) = cert.identity()?;
            Signer::Certificate { issuer, subject }
        }
        _ => Signer::Key { key_id: key.key_id() },
    };
    identity::check(authority, &signer)?;
    Ok((signer, signed_at))
}

/// cosign's `dev.sigstore.cosign/rfc3161timestamp` annotation,
/// `{"SignedRFC3161Timestamp": "<base64 DER TimeStampResp or token>"}`: the DER.
pub fn rfc3161_token(annotation: &str) -> Result<Vec<u8>> {
    const WHAT: &str = "RFC 3161 timestamp annotation";
    let value: Value = serde_json::from_str(annotation).map_err(|e| malformed(WHAT, e))?;
    let b64 = value
        .get("SignedRFC3161Timestamp")
        .and_then(Value::as_str)
        .ok_or_else(|| malformed(WHAT, "no SignedRFC3161Timestamp"))?;
    base64_decode(b64).map_err(|e| malformed(WHAT, e))
}

/// Whether the signed `docker-reference` names the expected image, as containers/image's
/// `signedIdentity` does: `exact` (`matchExact`) demands the same normalised reference,
/// and the expected one must carry a tag or digest; otherwise (`matchRepository`) the
/// same normalised repository (`docker.io/library/` added to short names).
pub fn reference_matches(signed: &str, expected: &str, exact: bool) -> bool {
    let (Some(signed), Some(expected)) = (normalize_reference(signed), normalize_reference(expected)) else {
        return false;
    };
    if exact { expected.1.is_some() && signed == expected } else { signed.0 == expected.0 }
}

/// `(repository, tag or digest suffix with its ':' or '@')`, normalised like docker's
/// `ParseNormalizedNamed`; `None` for a malformed reference.
fn normalize_reference(reference: &str) -> Option<(String, Option<String>)> {
    let reference = reference.trim();
    if reference.is_empty() || reference.chars().any(char::is_whitespace) {
        return None;
    }
    let (name, digest) = match reference.split_once('@') {
        Some((name, digest)) => (name, Some(format!("@{digest}"))),
        None => (reference, None),
    };
    let last_slash = name.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match name[last_slash..].rfind(':') {
        Some(i) => (&name[..last_slash + i], Some(format!(":{}", &name[last_slash + i + 1..]))),
        None => (name, None),
    };
    if name.is_empty() || tag.as_deref() == Some(":") {
        return None;
    }
    let (domain, path) = match name.split_once('/') {
        Some((first, rest)) if first.contains('.') || first.contains(':') || first == "localhost" => {
            (first.to_string(), rest.to_string())
        }
        _ => ("docker.io".to_string(), name.to_string()),
    };
    let domain = if domain == "index.docker.io" { "docker.io".to_string() } else { domain };
    let path = if domain == "docker.io" && !path.contains('/') { format!("library/{path}") } else { path };
    if path.is_empty() || path.chars().any(|c| c.is_ascii_uppercase()) {
        return None;
    }
    // A digest pins the image: a tag beside it does not change what is named.
    let suffix = digest.or(tag);
    Some((format!("{domain}/{path}"), suffix))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references() {
        assert!(reference_matches("busybox", "docker.io/library/busybox:latest", false));
        assert!(reference_matches("192.168.64.2:5000/a/b", "192.168.64.2:5000/a/b:tag", false));
        assert!(!reference_matches("192.168.64.2:5000/a/b", "192.168.64.2:5000/a/c", false));
        assert!(!reference_matches("192.168.64.2:5000/a/b", "192.168.64.2:5000/a/b", true));
        assert!(reference_matches("example.com/a:tag", "example.com/a:tag", true));
        assert!(!reference_matches("example.com/a:tag", "example.com/a:other", true));
        assert!(!reference_matches("example.com/a", "testing/manifest:latest", false));
        assert!(reference_matches("localhost:5000/test", "localhost:5000/test", false));
        assert!(!reference_matches("", "x", false));
    }

    #[test]
    fn simple_signing_type_is_checked() {
        let good = br#"{"critical":{"identity":{"docker-reference":"r"},"image":{"docker-manifest-digest":"sha256:ab"},"type":"cosign container image signature"},"optional":null}"#;
        let parsed = parse_simple_signing(good).unwrap();
        assert_eq!(parsed.docker_reference, "r");
        assert_eq!(parsed.manifest_digest, "sha256:ab");
        let bad = br#"{"critical":{"identity":{"docker-reference":"r"},"image":{"docker-manifest-digest":"sha256:ab"},"type":"atomic container signature"}}"#;
        assert!(parse_simple_signing(bad).is_err());
        assert!(parse_simple_signing(b"not json").is_err());
    }
    /// Attestations signed with a key of our own, and a Rekor log of our own to vouch for them.
    mod attestations {
        use base64::Engine;
        use base64::engine::general_purpose::STANDARD as B64;
        use p256::ecdsa::{DerSignature, SigningKey, signature::Signer as _};
        use p256::pkcs8::EncodePublicKey;
        use rand_core::OsRng;
        use serde_json::json;

        use super::super::*;
        use crate::dsse::{IN_TOTO_PAYLOAD_TYPE, pae};
        use crate::identity::Matcher;
        use crate::keys::PublicKey;
        use crate::rekor::set_payload;
        use crate::rekor::tests::log_with;
        use crate::trust::Validity;

        const IMAGE: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
        const OTHER: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
        const LOGGED_AT: i64 = 1_700_000_000;

        struct Attester {
            key: SigningKey,
        }

        impl Attester {
            fn new() -> Attester {
                Attester { key: SigningKey::random(&mut OsRng) }
            }

            fn public(&self) -> PublicKey {
                PublicKey::from_der(self.key.verifying_key().to_public_key_der().unwrap().as_bytes()).unwrap()
            }

            fn pem(&self) -> String {
                let der = self.key.verifying_key().to_public_key_der().unwrap();
                format!("-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n", B64.encode(der.as_bytes()))
            }

            fn authority(&self, require_tlog: bool) -> Authority {
                Authority::Key { key: self.public(), require_tlog }
            }

            fn sign(&self, message: &[u8]) -> Vec<u8> {
                let signature: DerSignature = self.key.sign(message);
                signature.as_bytes().to_vec()
            }

            /// A DSSE envelope of `payload`, signed `signatures` times; and the first signature.
            fn envelope(&self, payload_type: &str, payload: &[u8], signatures: usize) -> (Vec<u8>, Vec<u8>) {
                let sigs: Vec<Vec<u8>> = (0..signatures).map(|_| self.sign(&pae(payload_type, payload))).collect();
                let envelope = json!({
                    "payloadType": payload_type,
                    "payload": B64.encode(payload),
                    "signatures": sigs.iter().map(|s| json!({"keyid": "", "sig": B64.encode(s)})).collect::<Vec<_>>(),
                });
                (envelope.to_string().into_bytes(), sigs.into_iter().next().unwrap_or_default())
            }
        }

        fn statement(digest: &str) -> Vec<u8> {
            let (alg, hex) = digest.split_once(':').unwrap();
            json!({
                "_type": "https://in-toto.io/Statement/v1",
                "subject": [{"name": "registry.example/app", "digest": {alg: hex}}],
                "predicateType": "https://example.com/review/v1",
                "predicate": {"approved": true},
            })
            .to_string()
            .into_bytes()
        }

        /// A Rekor body for one signature (payload, signature, verifier PEM).
        type Body = fn(&[u8], &[u8], &str) -> serde_json::Value;

        /// `dsse` 0.0.1 and `intoto` 0.0.2 Rekor bodies for one signature of `payload`.
        fn dsse_body(payload: &[u8], signature: &[u8], pem: &str) -> serde_json::Value {
            json!({
                "apiVersion": "0.0.1",
                "kind": "dsse",
                "spec": {
                    "payloadHash": {"algorithm": "sha256", "value": hex(&Sha256::digest(payload))},
                    "signatures": [{"signature": B64.encode(signature), "verifier": B64.encode(pem)}],
                },
            })
        }

        fn intoto_body(payload: &[u8], signature: &[u8], pem: &str) -> serde_json::Value {
            json!({
                "apiVersion": "0.0.2",
                "kind": "intoto",
                "spec": {"content": {
                    "envelope": {
                        "payloadType": IN_TOTO_PAYLOAD_TYPE,
                        // base64 of the envelope's base64 signature
                        "signatures": [{"sig": B64.encode(B64.encode(signature)), "publicKey": B64.encode(pem)}],
                    },
                    "hash": {"algorithm": "sha256", "value": "00"},
                    "payloadHash": {"algorithm": "sha256", "value": hex(&Sha256::digest(payload))},
                }},
            })
        }

        /// cosign's bundle annotation for `body`, signed by the log of `root`.
        fn logged(log: &SigningKey, log_id: &str, body: &serde_json::Value) -> String {
            let body = B64.encode(body.to_string());
            let set: DerSignature = log.sign(set_payload(&body, LOGGED_AT, 7, log_id).as_bytes());
            json!({
                "SignedEntryTimestamp": B64.encode(set.as_bytes()),
                "Payload": {"body": body, "integratedTime": LOGGED_AT, "logIndex": 7, "logID": log_id},
            })
            .to_string()
        }

        struct World {
            signer: Attester,
            log: SigningKey,
            root: TrustedRoot,
            log_id: String,
        }

        impl World {
            fn new() -> World {
                let log = SigningKey::random(&mut OsRng);
                let (root, log_id) = log_with(&log, Validity::since(0));
                World { signer: Attester::new(), log, root, log_id }
            }

            /// An attestation of `payload`; with `body`, logged under that Rekor body.
            fn attest(&self, payload: &[u8], body: Option<Body>) -> LegacyAttestation {
                let (envelope, signature) = self.signer.envelope(IN_TOTO_PAYLOAD_TYPE, payload, 1);
                let bundle = body.map(|b| logged(&self.log, &self.log_id, &b(payload, &signature, &self.signer.pem())));
                LegacyAttestation { envelope, bundle, ..Default::default() }
            }

            fn verify(&self, att: &LegacyAttestation, authority: &Authority) -> Result<(Verified, Statement)> {
                verify_cosign_attestation_with(att, IMAGE, Some(&self.root), authority, &LegacyOptions::default())
            }
        }

        #[test]
        fn key_signed_attestation_with_or_without_a_set() {
            let w = World::new();
            let authority = w.signer.authority(false);

            let bare = w.attest(&statement(IMAGE), None);
            let (verified, statement_read) = w.verify(&bare, &authority).unwrap();
            assert_eq!(verified.signer, Signer::Key { key_id: w.signer.public().key_id() });
            assert_eq!((verified.digest.as_str(), verified.signed_at), (IMAGE, None));
            assert_eq!(statement_read.predicate_type, "https://example.com/review/v1");
            // No trust root at all: a key needs none.
            verify_cosign_attestation_with(&bare, IMAGE, None, &authority, &LegacyOptions::default()).unwrap();

            for body in [dsse_body as Body, intoto_body] {
                let logged = w.attest(&statement(IMAGE), Some(body));
                let (verified, _) = w.verify(&logged, &w.signer.authority(true)).unwrap();
                assert_eq!(verified.signed_at, Some(LOGGED_AT));
            }
        }

        #[test]
        fn require_tlog_refuses_an_unlogged_attestation() {
            let w = World::new();
            let bare = w.attest(&statement(IMAGE), None);
            assert!(matches!(w.verify(&bare, &w.signer.authority(true)), Err(Error::TransparencyLog(_))));
            // A SET nobody can check is no log either.
            let logged = w.attest(&statement(IMAGE), Some(dsse_body));
            let unchecked =
                verify_cosign_attestation_with(&logged, IMAGE, None, &w.signer.authority(true), &Default::default());
            assert!(matches!(unchecked, Err(Error::TransparencyLog(_))), "{unchecked:?}");
            // Keyless needs the certificate before anything else.
            let keyless =
                Authority::Keyless { issuer: Matcher::Exact("i".into()), subject: Matcher::Exact("s".into()) };
            assert!(matches!(w.verify(&logged, &keyless), Err(Error::UntrustedCertificate(_))));
        }

        #[test]
        fn a_set_must_be_of_this_signature_and_key() {
            let w = World::new();
            // The log vouches for another signature of the same payload and key.
            let mut att = w.attest(&statement(IMAGE), None);
            let body = dsse_body(&statement(IMAGE), &w.signer.sign(b"something else"), &w.signer.pem());
            att.bundle = Some(logged(&w.log, &w.log_id, &body));
            let r = w.verify(&att, &w.signer.authority(false));
            assert!(matches!(&r, Err(Error::TransparencyLog(t)) if t.contains("signature")), "{r:?}");
            // Of another payload.
            let body = dsse_body(&statement(OTHER), &w.signer.sign(b"something else"), &w.signer.pem());
            att.bundle = Some(logged(&w.log, &w.log_id, &body));
            let r = w.verify(&att, &w.signer.authority(false));
            assert!(matches!(&r, Err(Error::TransparencyLog(t)) if t.contains("payload")), "{r:?}");
            // A body of a signature by another key, logged for this envelope.
            let other = Attester::new();
            let (envelope, signature) = w.signer.envelope(IN_TOTO_PAYLOAD_TYPE, &statement(IMAGE), 1);
            let body = dsse_body(&statement(IMAGE), &signature, &other.pem());
            let att =
                LegacyAttestation { envelope, bundle: Some(logged(&w.log, &w.log_id, &body)), ..Default::default() };
            let r = w.verify(&att, &w.signer.authority(false));
            assert!(matches!(r, Err(Error::TransparencyLog(_))), "{r:?}");
            // A tampered SET.
            let mut att = w.attest(&statement(IMAGE), Some(intoto_body));
            att.bundle = att.bundle.map(|b| b.replace(&LOGGED_AT.to_string(), &(LOGGED_AT + 1).to_string()));
            let r = w.verify(&att, &w.signer.authority(false));
            assert!(matches!(r, Err(Error::TransparencyLog(_))), "{r:?}");
        }

        #[test]
        fn another_key_is_refused() {
            let w = World::new();
            let att = w.attest(&statement(IMAGE), Some(dsse_body));
            let r = w.verify(&att, &Attester::new().authority(false));
            assert!(matches!(r, Err(Error::BadSignature(_))), "{r:?}");
        }

        #[test]
        fn the_subject_must_be_the_image() {
            let w = World::new();
            let att = w.attest(&statement(OTHER), Some(dsse_body));
            let Err(Error::DigestMismatch(text)) = w.verify(&att, &w.signer.authority(true)) else {
                panic!("expected a digest mismatch");
            };
            assert!(text.contains(OTHER) && text.contains(IMAGE), "{text}");
            // The digest compared without regard to case.
            let upper = IMAGE.to_ascii_uppercase().replacen("SHA256", "sha256", 1);
            let att = w.attest(&statement(IMAGE), None);
            let options = LegacyOptions::default();
            let (verified, _) =
                verify_cosign_attestation_with(&att, &upper, None, &w.signer.authority(false), &options).unwrap();
            assert_eq!(verified.digest, IMAGE);
        }

        #[test]
        fn a_payload_that_is_not_a_statement_is_an_error() {
            let w = World::new();
            let authority = w.signer.authority(false);
            for payload in [&b"not json"[..], br#"{"_type":"https://in-toto.io/Statement/v1","subject":[]}"#, b"{}"] {
                let att = w.attest(payload, Some(dsse_body));
                let r = w.verify(&att, &authority);
                assert!(matches!(r, Err(Error::Malformed { what: "in-toto statement", .. })), "{r:?}");
            }
            // A statement, but not said to be one.
            let (envelope, _) = w.signer.envelope("application/json", &statement(IMAGE), 1);
            let att = LegacyAttestation { envelope, ..Default::default() };
            let r = w.verify(&att, &authority);
            assert!(matches!(&r, Err(Error::Malformed { detail, .. }) if detail.contains("payload type")), "{r:?}");
            // Not an envelope.
            let att = LegacyAttestation { envelope: b"[1, 2]".to_vec(), ..Default::default() };
            assert!(matches!(w.verify(&att, &authority), Err(Error::Malformed { .. })));
        }

        #[test]
        fn exactly_one_signature() {
            let w = World::new();
            let authority = w.signer.authority(false);
            for count in [0, 2] {
                let (envelope, _) = w.signer.envelope(IN_TOTO_PAYLOAD_TYPE, &statement(IMAGE), count);
                let att = LegacyAttestation { envelope, ..Default::default() };
                let r = w.verify(&att, &authority);
                assert!(matches!(&r, Err(Error::BadSignature(t)) if t.contains("exactly one")), "{r:?}");
            }
        }

        #[test]
        fn layer_annotations() {
            let annotations = [
                (ANNOTATION_SIGNATURE, ""),
                (ANNOTATION_PREDICATE_TYPE, "https://slsa.dev/provenance/v1"),
                (ANNOTATION_CERTIFICATE, "CERT"),
                (ANNOTATION_CHAIN, " "),
                (ANNOTATION_BUNDLE, "SET"),
                (ANNOTATION_RFC3161, "TSA"),
                ("org.example/other", "x"),
            ];
            let att = LegacyAttestation::from_layer(b"{}".to_vec(), annotations);
            assert_eq!(
                att,
                LegacyAttestation {
                    envelope: b"{}".to_vec(),
                    certificate: Some("CERT".into()),
                    chain: None,
                    bundle: Some("SET".into()),
                    rfc3161_timestamp: Some("TSA".into()),
                    annotated_predicate_type: Some("https://slsa.dev/provenance/v1".into()),
                }
            );
            // The same evidence annotations on a signature layer.
            let sig = LegacySignature::from_layer(b"{}".to_vec(), annotations).unwrap();
            assert_eq!((sig.certificate, sig.chain, sig.bundle), (Some("CERT".into()), None, Some("SET".into())));
            assert_eq!(sig.rfc3161_timestamp.as_deref(), Some("TSA"));
        }
    }
}
