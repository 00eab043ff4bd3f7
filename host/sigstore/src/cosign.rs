//! cosign's legacy container-image signatures: a simple-signing payload signed with a
//! key or a Fulcio / private-CA certificate, stored as one layer of a `.sig` image
//! with its evidence in annotations.
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

use crate::certificate::{Certificate, build_chain, verify_scts};
use crate::identity::{self, Authority};
use crate::keys::{base64_decode, hex};
use crate::rekor::{RekorBundle, Verifier, check_hashedrekord};
use crate::trust::TrustedRoot;
use crate::{Error, Result, Signer, Verified, malformed};

pub const ANNOTATION_SIGNATURE: &str = "dev.cosignproject.cosign/signature";
pub const ANNOTATION_CERTIFICATE: &str = "dev.sigstore.cosign/certificate";
pub const ANNOTATION_CHAIN: &str = "dev.sigstore.cosign/chain";
pub const ANNOTATION_BUNDLE: &str = "dev.sigstore.cosign/bundle";
pub const ANNOTATION_RFC3161: &str = "dev.sigstore.cosign/rfc3161timestamp";
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
            match name {
                ANNOTATION_SIGNATURE => {
                    sig.signature = value.to_string();
                    has_signature = true;
                }
                ANNOTATION_CERTIFICATE if !value.trim().is_empty() => sig.certificate = Some(value.to_string()),
                ANNOTATION_CHAIN if !value.trim().is_empty() => sig.chain = Some(value.to_string()),
                ANNOTATION_BUNDLE if !value.trim().is_empty() => sig.bundle = Some(value.to_string()),
                ANNOTATION_RFC3161 if !value.trim().is_empty() => sig.rfc3161_timestamp = Some(value.to_string()),
                _ => {}
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

    let leaf = match authority {
        Authority::Key { .. } => None,
        Authority::Keyless { .. } => {
            let pem = sig
                .certificate
                .as_deref()
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
    key.verify(&sig.payload, &signature)?;

    // The transparency log.
    let tlog_required = match authority {
        Authority::Key { require_tlog, .. } => *require_tlog,
        Authority::Keyless { .. } => options.keyless_require_tlog,
    };
    let mut signed_at = None;
    match (&sig.bundle, root) {
        (Some(bundle), Some(root)) => {
            let bundle = RekorBundle::from_json(bundle.as_bytes())?;
            bundle.verify(root)?;
            let verifier = match &leaf {
                Some(cert) => Verifier::Certificate(cert.der()),
                None => Verifier::PublicKey(key.der()),
            };
            let payload_digest = format!("sha256:{}", hex(&Sha256::digest(&sig.payload)));
            check_hashedrekord(&bundle.body_json()?, &signature, verifier, &payload_digest)?;
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

    // Verified signing times: the SET's integrated time, an RFC 3161 timestamp over the
    // signature bytes (cosign `VerifyRFC3161Timestamp`).
    let mut times: Vec<i64> = signed_at.into_iter().collect();
    if let (Some(annotation), Some(root)) = (&sig.rfc3161_timestamp, root) {
        let token = rfc3161_token(annotation)?;
        let at = crate::timestamp::verify(&token, &signature, root)?;
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
            let intermediates = match &sig.chain {
                Some(pem) => Certificate::from_pem(pem)?,
                None => Vec::new(),
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
}
