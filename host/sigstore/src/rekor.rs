//! Rekor transparency log entries: signed entry timestamps (SET) and the consistency
//! of an entry's body with the signature being verified.
//!
//! Sources of truth:
//! - Rekor's SET: the log's signature over the RFC 8785 canonical JSON of
//!   `{"body","integratedTime","logID","logIndex"}` (rekor `pkg/api/entries.go`,
//!   sigstore-go `pkg/tlog/entry.go` `VerifySET`, cosign `pkg/cosign/tlog.go`);
//! - Rekor's `hashedrekord` type schemas: 0.0.1 (`spec.signature.content`,
//!   `spec.signature.publicKey.content` = base64 of a PEM certificate or key,
//!   `spec.data.hash {algorithm, value}`) and 0.0.2 (Rekor v2, protobuf-specs
//!   `rekor/v2/hashedrekord.proto`: `spec.hashedRekordV002 {data {algorithm, digest},
//!   signature {content, verifier {publicKey|x509Certificate {rawBytes}}}}`).

use serde_json::Value;

use crate::keys::{base64_decode, hex, pem_blocks, unhex};
use crate::trust::TrustedRoot;
use crate::{Error, Result, malformed};

/// The canonical JSON a SET signs (keys sorted, no white space).
pub fn set_payload(body_b64: &str, integrated_time: i64, log_index: i64, log_id_hex: &str) -> String {
    let body = Value::String(body_b64.to_string());
    let log_id = Value::String(log_id_hex.to_string());
    format!("{{\"body\":{body},\"integratedTime\":{integrated_time},\"logID\":{log_id},\"logIndex\":{log_index}}}")
}

/// Verifies a signed entry timestamp: `set` is the log's signature over
/// [`set_payload`]; the log is found in the trust root by `log_id_hex` and must be
/// valid at `integrated_time`.
pub fn verify_set(
    body_b64: &str,
    integrated_time: i64,
    log_index: i64,
    log_id_hex: &str,
    set: &[u8],
    root: &TrustedRoot,
) -> Result<()> {
    if log_index < 0 {
        return Err(Error::TransparencyLog(format!("negative log index {log_index}")));
    }
    let log_id_hex = log_id_hex.to_ascii_lowercase();
    let log_id =
        unhex(&log_id_hex).ok_or_else(|| malformed("Rekor entry", format!("log id {log_id_hex:?} is not hex")))?;
    let log = root
        .find_tlog(&log_id)
        .ok_or_else(|| Error::TransparencyLog(format!("log {log_id_hex} is not in the trust root")))?;
    if !log.valid_for.contains(integrated_time) {
        return Err(Error::TransparencyLog(format!(
            "log {} was not trusted at the entry's integrated time {integrated_time}",
            log.base_url
        )));
    }
    let payload = set_payload(body_b64, integrated_time, log_index, &log_id_hex);
    log.key
        .verify(payload.as_bytes(), set)
        .map_err(|e| Error::TransparencyLog(format!("signed entry timestamp from {}: {e}", log.base_url)))
}

/// What signed, as a hashedrekord entry names it.
#[derive(Debug, Clone, Copy)]
pub enum Verifier<'a> {
    /// DER certificate.
    Certificate(&'a [u8]),
    /// DER SubjectPublicKeyInfo.
    PublicKey(&'a [u8]),
}

fn b64(what: &'static str, text: &str) -> Result<Vec<u8>> {
    base64_decode(text).map_err(|e| malformed(what, e))
}

/// Splits `sha256:<hex>` (or a bare hex digest, whose length says the algorithm).
fn split_digest(digest: &str) -> Result<(&str, Vec<u8>)> {
    let (alg, hex_text) = match digest.split_once(':') {
        Some((alg, hex_text)) => (alg, hex_text),
        None => (
            match digest.len() {
                64 => "sha256",
                96 => "sha384",
                128 => "sha512",
                _ => return Err(malformed("digest", format!("{digest:?}"))),
            },
            digest,
        ),
    };
    let bytes = unhex(hex_text).ok_or_else(|| malformed("digest", format!("{digest:?} is not hex")))?;
    Ok((alg, bytes))
}

/// Checks that a Rekor `hashedrekord` entry body (the decoded JSON, version 0.0.1 or
/// 0.0.2) is about this signature: same signature bytes, same verifier (certificate or
/// key, compared as DER), same artifact digest (`sha256:<hex>`, `sha384:`, `sha512:`, or
/// bare hex). Any difference is `TransparencyLog` (the log vouches for something else).
pub fn check_hashedrekord(body: &[u8], signature: &[u8], verifier: Verifier<'_>, digest: &str) -> Result<()> {
    let value: Value = serde_json::from_slice(body).map_err(|e| malformed("Rekor entry body", e))?;
    let kind = value.get("kind").and_then(Value::as_str).unwrap_or_default();
    let version = value.get("apiVersion").and_then(Value::as_str).unwrap_or_default();
    if kind != "hashedrekord" {
        return Err(Error::TransparencyLog(format!("the log entry is a {kind:?}, not a hashedrekord")));
    }
    let spec = value.get("spec").ok_or_else(|| malformed("Rekor entry body", "no spec"))?;
    let text = |v: Option<&Value>, what: &'static str| -> Result<String> {
        v.and_then(Value::as_str).map(str::to_string).ok_or_else(|| malformed("Rekor entry body", format!("no {what}")))
    };
    let (entry_sig, entry_verifier, entry_alg, entry_digest) = match version {
        "0.0.1" => {
            let sig = b64("Rekor entry body", &text(spec.pointer("/signature/content"), "signature content")?)?;
            let pem = b64("Rekor entry body", &text(spec.pointer("/signature/publicKey/content"), "public key")?)?;
            let pem = String::from_utf8(pem).map_err(|e| malformed("Rekor entry body", e))?;
            let (label, der) = pem_blocks(&pem)?
                .into_iter()
                .next()
                .ok_or_else(|| malformed("Rekor entry body", "the public key is not PEM"))?;
            let entry_verifier = match label.as_str() {
                "CERTIFICATE" => EntryVerifier::Certificate(der),
                "PUBLIC KEY" => EntryVerifier::PublicKey(der),
                other => return Err(malformed("Rekor entry body", format!("unsupported PEM {other}"))),
            };
            let alg = text(spec.pointer("/data/hash/algorithm"), "data hash algorithm")?;
            let value = text(spec.pointer("/data/hash/value"), "data hash value")?;
            let digest = unhex(&value).ok_or_else(|| malformed("Rekor entry body", "data hash is not hex"))?;
            (sig, entry_verifier, alg, digest)
        }
        "0.0.2" => {
            let spec =
                spec.get("hashedRekordV002").ok_or_else(|| malformed("Rekor entry body", "no hashedRekordV002"))?;
            let sig = b64("Rekor entry body", &text(spec.pointer("/signature/content"), "signature content")?)?;
            let v = spec.pointer("/signature/verifier").ok_or_else(|| malformed("Rekor entry body", "no verifier"))?;
            let entry_verifier = if let Some(raw) = v.pointer("/x509Certificate/rawBytes") {
                EntryVerifier::Certificate(b64("Rekor entry body", &text(Some(raw), "certificate")?)?)
            } else if let Some(raw) = v.pointer("/publicKey/rawBytes") {
                EntryVerifier::PublicKey(b64("Rekor entry body", &text(Some(raw), "public key")?)?)
            } else {
                return Err(malformed("Rekor entry body", "the verifier has neither a certificate nor a key"));
            };
            let alg = match text(spec.pointer("/data/algorithm"), "data algorithm")?.as_str() {
                "SHA2_256" => "sha256".to_string(),
                "SHA2_384" => "sha384".to_string(),
                "SHA2_512" => "sha512".to_string(),
                other => return Err(malformed("Rekor entry body", format!("unsupported digest algorithm {other}"))),
            };
            let digest = b64("Rekor entry body", &text(spec.pointer("/data/digest"), "data digest")?)?;
            (sig, entry_verifier, alg, digest)
        }
        other => return Err(Error::TransparencyLog(format!("unsupported hashedrekord version {other:?}"))),
    };
    if entry_sig != signature {
        return Err(Error::TransparencyLog("the log entry is for another signature".into()));
    }
    let same_verifier = match (&entry_verifier, verifier) {
        (EntryVerifier::Certificate(a), Verifier::Certificate(b)) => a == b,
        (EntryVerifier::PublicKey(a), Verifier::PublicKey(b)) => a == b,
        _ => false,
    };
    if !same_verifier {
        return Err(Error::TransparencyLog("the log entry names another certificate or key".into()));
    }
    let (alg, expected) = split_digest(digest)?;
    if !alg.eq_ignore_ascii_case(&entry_alg) || expected != entry_digest {
        return Err(Error::TransparencyLog(format!(
            "the log entry is for artifact {entry_alg}:{}, not {alg}:{}",
            hex(&entry_digest),
            hex(&expected)
        )));
    }
    Ok(())
}

enum EntryVerifier {
    Certificate(Vec<u8>),
    PublicKey(Vec<u8>),
}

/// cosign's `dev.sigstore.cosign/bundle` annotation: a Rekor SET with the entry it covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RekorBundle {
    /// The signed entry timestamp (decoded).
    pub signed_entry_timestamp: Vec<u8>,
    /// The entry body, base64, as signed.
    pub body: String,
    pub integrated_time: i64,
    pub log_index: i64,
    /// Hex log id.
    pub log_id: String,
}

impl RekorBundle {
    /// `{"SignedEntryTimestamp": b64, "Payload": {"body": b64, "integratedTime", "logIndex", "logID": hex}}`.
    pub fn from_json(text: &[u8]) -> Result<RekorBundle> {
        let value: Value = serde_json::from_slice(text).map_err(|e| malformed("Rekor bundle", e))?;
        let str_field = |pointer: &str| -> Result<String> {
            value
                .pointer(pointer)
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| malformed("Rekor bundle", format!("no {pointer}")))
        };
        let int_field = |pointer: &str| -> Result<i64> {
            value
                .pointer(pointer)
                .and_then(Value::as_i64)
                .ok_or_else(|| malformed("Rekor bundle", format!("no integer {pointer}")))
        };
        Ok(RekorBundle {
            signed_entry_timestamp: b64("Rekor bundle", &str_field("/SignedEntryTimestamp")?)?,
            body: str_field("/Payload/body")?,
            integrated_time: int_field("/Payload/integratedTime")?,
            log_index: int_field("/Payload/logIndex")?,
            log_id: str_field("/Payload/logID")?,
        })
    }

    /// Verifies the SET against the trust root's logs ([`verify_set`]).
    pub fn verify(&self, root: &TrustedRoot) -> Result<()> {
        verify_set(&self.body, self.integrated_time, self.log_index, &self.log_id, &self.signed_entry_timestamp, root)
    }

    /// The decoded entry body.
    pub fn body_json(&self) -> Result<Vec<u8>> {
        b64("Rekor bundle", &self.body)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn canonical_set_payload() {
        assert_eq!(
            set_payload("eyJh", 1674251859, 11608800, "c0d23d6a"),
            r#"{"body":"eyJh","integratedTime":1674251859,"logID":"c0d23d6a","logIndex":11608800}"#
        );
    }

    /// A trusted root whose only log signs with `key`, and that log's hex id.
    pub(crate) fn log_with(key: &p256::ecdsa::SigningKey, valid_for: crate::trust::Validity) -> (TrustedRoot, String) {
        use p256::pkcs8::EncodePublicKey;
        let der = key.verifying_key().to_public_key_der().unwrap();
        let public = crate::keys::PublicKey::from_der(der.as_bytes()).unwrap();
        let log = crate::trust::TransparencyLog::from_key("https://rekor.example", public, valid_for);
        let id = hex(&log.log_id);
        let mut root = TrustedRoot::default();
        root.add_tlog(log);
        (root, id)
    }

    #[test]
    fn set_signature_over_canonical_json() {
        use p256::ecdsa::{DerSignature, SigningKey, signature::Signer};
        use rand_core::OsRng;
        let key = SigningKey::random(&mut OsRng);
        let (root, id) = log_with(&key, crate::trust::Validity::since(1000));
        let sig: DerSignature = key.sign(set_payload("Ym9keQ==", 2000, 7, &id).as_bytes());
        verify_set("Ym9keQ==", 2000, 7, &id, sig.as_bytes(), &root).unwrap();
        // Upper-case log ids name the same log.
        verify_set("Ym9keQ==", 2000, 7, &id.to_uppercase(), sig.as_bytes(), &root).unwrap();
        // Any field changed: the signature no longer covers it.
        assert!(matches!(verify_set("Ym9keQ==", 2001, 7, &id, sig.as_bytes(), &root), Err(Error::TransparencyLog(_))));
        assert!(matches!(verify_set("Ym9keR==", 2000, 7, &id, sig.as_bytes(), &root), Err(Error::TransparencyLog(_))));
        assert!(matches!(verify_set("Ym9keQ==", 2000, 8, &id, sig.as_bytes(), &root), Err(Error::TransparencyLog(_))));
        // A log not trusted at the integrated time, an unknown log, a negative index.
        let (late, late_id) = log_with(&key, crate::trust::Validity::since(3000));
        assert!(verify_set("Ym9keQ==", 2000, 7, &late_id, sig.as_bytes(), &late).is_err());
        assert!(verify_set("Ym9keQ==", 2000, 7, &"00".repeat(32), sig.as_bytes(), &root).is_err());
        assert!(verify_set("Ym9keQ==", 2000, -1, &id, sig.as_bytes(), &root).is_err());
        // Same log id, another key (a wrongly configured Rekor key).
        let other = SigningKey::random(&mut OsRng);
        let (mut wrong, _) = log_with(&other, crate::trust::Validity::since(0));
        let mut log = wrong.tlogs()[0].clone();
        log.log_id = unhex(&id).unwrap();
        wrong = TrustedRoot::default();
        wrong.add_tlog(log);
        assert!(matches!(verify_set("Ym9keQ==", 2000, 7, &id, sig.as_bytes(), &wrong), Err(Error::TransparencyLog(_))));
    }

    #[test]
    fn digest_forms() {
        let hex64 = "ab".repeat(32);
        assert_eq!(split_digest(&format!("sha256:{hex64}")).unwrap().0, "sha256");
        assert_eq!(split_digest(&hex64).unwrap().0, "sha256");
        assert_eq!(split_digest(&"AB".repeat(48)).unwrap().0, "sha384");
        assert!(split_digest("sha256:zz").is_err());
    }
}
