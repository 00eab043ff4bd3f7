//! Trust roots: which CAs, transparency logs, CT logs and timestamp authorities to
//! believe, and when.
//!
//! Source of truth: protobuf-specs `sigstore_trustroot.proto` (`TrustedRoot`,
//! `ClientTrustConfig`, `TransparencyLogInstance`, `CertificateAuthority`) and
//! `sigstore_common.proto` (`PublicKey`, `TimeRange`, `LogId`), in their canonical
//! proto3 JSON form (camelCase names, bytes in base64, timestamps in RFC 3339), as
//! `trusted_root.json` is distributed over Sigstore's TUF repositories.
//!
//! Policy, like sigstore-go and sigstore-python: a log whose key type is not supported
//! is left out (it can never vouch for anything) rather than failing the whole root; a
//! missing `validFor.start` is an error (an absent start must not read as "always").

use base64::Engine;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::keys::PublicKey;
use crate::{Result, malformed};

/// The trusted root media types this reader understands.
const TRUSTED_ROOT_MEDIA_TYPES: &[&str] = &[
    "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
    "application/vnd.dev.sigstore.trustedroot.v0.2+json",
];
const TRUST_CONFIG_MEDIA_TYPES: &[&str] = &["application/vnd.dev.sigstore.clienttrustconfig.v0.1+json"];

/// A closed time interval in seconds since the epoch; no end means still valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    pub start: i64,
    pub end: Option<i64>,
}

impl Validity {
    /// Valid from `start` on, for ever.
    pub fn since(start: i64) -> Validity {
        Validity { start, end: None }
    }

    /// Always valid (for keys and CAs a caller configures without a window).
    pub fn always() -> Validity {
        Validity { start: i64::MIN, end: None }
    }

    /// `start <= t <= end` (both ends inclusive, as Sigstore clients read `TimeRange`).
    pub fn contains(&self, t: i64) -> bool {
        t >= self.start && self.end.is_none_or(|end| t <= end)
    }
}

/// A certificate authority (Fulcio, a private CA) or a timestamp authority.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateAuthority {
    /// DER certificates, leaf (issuing CA) first, root last, as in the JSON.
    pub chain: Vec<Vec<u8>>,
    pub valid_for: Validity,
    /// `uri`, when given (informational).
    pub uri: String,
}

/// A transparency log (Rekor) or a certificate transparency log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransparencyLog {
    pub base_url: String,
    /// `logId.keyId`: for Rekor v1 and CT logs the SHA-256 of the DER SPKI.
    pub log_id: Vec<u8>,
    pub key: PublicKey,
    /// The key's `validFor`.
    pub valid_for: Validity,
    /// `checkpointKeyId.keyId`, when given (Rekor v2's signed-note key hint source).
    pub checkpoint_key_id: Option<Vec<u8>>,
}

impl TransparencyLog {
    /// A log known only by its key (cosign's `--rekor-key`, a CT log key): the log id is
    /// the SHA-256 of the key's DER SPKI, as Rekor v1 and RFC 6962 define it.
    pub fn from_key(base_url: impl Into<String>, key: PublicKey, valid_for: Validity) -> TransparencyLog {
        TransparencyLog {
            base_url: base_url.into(),
            log_id: Sha256::digest(key.der()).to_vec(),
            key,
            valid_for,
            checkpoint_key_id: None,
        }
    }
}

/// The parsed trust root.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedRoot {
    tlogs: Vec<TransparencyLog>,
    certificate_authorities: Vec<CertificateAuthority>,
    ctlogs: Vec<TransparencyLog>,
    timestamp_authorities: Vec<CertificateAuthority>,
}

impl TrustedRoot {
    /// A `TrustedRoot` JSON, or a `ClientTrustConfig` JSON whose `trustedRoot` is used.
    pub fn from_json(bytes: &[u8]) -> Result<TrustedRoot> {
        let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| malformed("trusted root", e))?;
        let media_type = value.get("mediaType").and_then(|m| m.as_str()).unwrap_or_default();
        let root_value = if let Some(inner) = value.get("trustedRoot") {
            if !TRUST_CONFIG_MEDIA_TYPES.contains(&media_type) {
                return Err(malformed("trusted root", format!("unknown ClientTrustConfig media type {media_type:?}")));
            }
            inner.clone()
        } else {
            value
        };
        let raw: RawTrustedRoot = serde_json::from_value(root_value).map_err(|e| malformed("trusted root", e))?;
        if !TRUSTED_ROOT_MEDIA_TYPES.contains(&raw.media_type.as_str()) {
            return Err(malformed("trusted root", format!("unknown media type {:?}", raw.media_type)));
        }
        let mut root = TrustedRoot::default();
        for log in raw.tlogs {
            if let Some(log) = log.convert()? {
                root.tlogs.push(log);
            }
        }
        for log in raw.ctlogs {
            if let Some(log) = log.convert()? {
                root.ctlogs.push(log);
            }
        }
        for ca in raw.certificate_authorities {
            root.certificate_authorities.push(ca.convert()?);
        }
        for ca in raw.timestamp_authorities {
            root.timestamp_authorities.push(ca.convert()?);
        }
        Ok(root)
    }

    /// A single `CertificateAuthority` JSON object (protobuf-specs), as some clients
    /// configure one CA on its own.
    pub fn certificate_authority_from_json(bytes: &[u8]) -> Result<CertificateAuthority> {
        let raw: RawCertificateAuthority =
            serde_json::from_slice(bytes).map_err(|e| malformed("certificate authority", e))?;
        raw.convert()
    }

    /// Adds everything `other` trusts.
    pub fn merge(&mut self, other: TrustedRoot) {
        self.tlogs.extend(other.tlogs);
        self.certificate_authorities.extend(other.certificate_authorities);
        self.ctlogs.extend(other.ctlogs);
        self.timestamp_authorities.extend(other.timestamp_authorities);
    }

    pub fn add_tlog(&mut self, log: TransparencyLog) {
        self.tlogs.push(log);
    }

    pub fn add_ctlog(&mut self, log: TransparencyLog) {
        self.ctlogs.push(log);
    }

    pub fn add_certificate_authority(&mut self, ca: CertificateAuthority) {
        self.certificate_authorities.push(ca);
    }

    pub fn add_timestamp_authority(&mut self, tsa: CertificateAuthority) {
        self.timestamp_authorities.push(tsa);
    }

    pub fn certificate_authorities(&self) -> &[CertificateAuthority] {
        &self.certificate_authorities
    }

    pub fn tlogs(&self) -> &[TransparencyLog] {
        &self.tlogs
    }

    pub fn ctlogs(&self) -> &[TransparencyLog] {
        &self.ctlogs
    }

    pub fn timestamp_authorities(&self) -> &[CertificateAuthority] {
        &self.timestamp_authorities
    }

    /// The Rekor log with this id (the first, if several share it).
    pub fn find_tlog(&self, log_id: &[u8]) -> Option<&TransparencyLog> {
        self.tlogs.iter().find(|l| l.log_id == log_id)
    }

    /// The CT log with this id.
    pub fn find_ctlog(&self, log_id: &[u8]) -> Option<&TransparencyLog> {
        self.ctlogs.iter().find(|l| l.log_id == log_id)
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawTrustedRoot {
    #[serde(default)]
    media_type: String,
    #[serde(default)]
    tlogs: Vec<RawLog>,
    #[serde(default)]
    certificate_authorities: Vec<RawCertificateAuthority>,
    #[serde(default)]
    ctlogs: Vec<RawLog>,
    #[serde(default)]
    timestamp_authorities: Vec<RawCertificateAuthority>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawLog {
    #[serde(default)]
    base_url: String,
    #[serde(default)]
    hash_algorithm: Option<String>,
    public_key: Option<RawPublicKey>,
    log_id: Option<RawLogId>,
    checkpoint_key_id: Option<RawLogId>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawPublicKey {
    raw_bytes: Option<String>,
    #[serde(default)]
    key_details: String,
    valid_for: Option<RawTimeRange>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawLogId {
    key_id: String,
}

#[derive(Deserialize)]
struct RawTimeRange {
    start: Option<String>,
    end: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawCertificateAuthority {
    #[serde(default)]
    uri: String,
    cert_chain: Option<RawChain>,
    valid_for: Option<RawTimeRange>,
}

#[derive(Deserialize)]
struct RawChain {
    #[serde(default)]
    certificates: Vec<RawCertificate>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawCertificate {
    raw_bytes: String,
}

fn b64(what: &'static str, text: &str) -> Result<Vec<u8>> {
    base64::engine::general_purpose::STANDARD.decode(text.trim()).map_err(|e| malformed(what, e))
}

impl RawTimeRange {
    fn convert(&self, what: &'static str) -> Result<Validity> {
        let start = self.start.as_deref().ok_or_else(|| malformed(what, "validFor has no start"))?;
        let start = parse_rfc3339(start).ok_or_else(|| malformed(what, format!("bad time {start:?}")))?;
        let end = match &self.end {
            None => None,
            Some(end) => Some(parse_rfc3339(end).ok_or_else(|| malformed(what, format!("bad time {end:?}")))?),
        };
        if end.is_some_and(|end| end < start) {
            return Err(malformed(what, "validFor ends before it starts"));
        }
        Ok(Validity { start, end })
    }
}

impl RawLog {
    /// `None` for a log whose key this crate cannot use.
    fn convert(self) -> Result<Option<TransparencyLog>> {
        const WHAT: &str = "trusted root log";
        if let Some(hash) = &self.hash_algorithm
            && hash != "SHA2_256"
        {
            return Ok(None);
        }
        let key = self.public_key.ok_or_else(|| malformed(WHAT, "no publicKey"))?;
        let valid_for = key
            .valid_for
            .as_ref()
            .ok_or_else(|| malformed(WHAT, format!("{}: key without validFor", self.base_url)))?
            .convert(WHAT)?;
        let Some(raw) = key.raw_bytes.as_deref() else {
            return Ok(None);
        };
        let raw = b64(WHAT, raw)?;
        let Ok(public_key) = PublicKey::from_trust_root(&raw, &key.key_details) else {
            return Ok(None);
        };
        let log_id = match &self.log_id {
            Some(id) => b64(WHAT, &id.key_id)?,
            None => Sha256::digest(public_key.der()).to_vec(),
        };
        let checkpoint_key_id = match &self.checkpoint_key_id {
            Some(id) => Some(b64(WHAT, &id.key_id)?),
            None => None,
        };
        Ok(Some(TransparencyLog { base_url: self.base_url, log_id, key: public_key, valid_for, checkpoint_key_id }))
    }
}

impl RawCertificateAuthority {
    fn convert(self) -> Result<CertificateAuthority> {
        const WHAT: &str = "certificate authority";
        let chain = self
            .cert_chain
            .map(|c| c.certificates)
            .unwrap_or_default()
            .iter()
            .map(|c| b64(WHAT, &c.raw_bytes))
            .collect::<Result<Vec<_>>>()?;
        if chain.is_empty() {
            return Err(malformed(WHAT, format!("{}: missing a certificate", self.uri)));
        }
        let valid_for = self.valid_for.as_ref().ok_or_else(|| malformed(WHAT, "no validFor"))?.convert(WHAT)?;
        Ok(CertificateAuthority { chain, valid_for, uri: self.uri })
    }
}

/// RFC 3339 (`2021-03-07T03:20:29Z`, `...29.999Z`, `...29+02:00`) to seconds since the
/// epoch; fractions of a second are dropped.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    let b = text.trim().as_bytes();
    if b.len() < 20 {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let s = b.get(r)?;
        if !s.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(s).ok()?.parse().ok()
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut rest = &b[19..];
    if rest.first() == Some(&b'.') {
        let digits = rest[1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return None;
        }
        rest = &rest[1 + digits..];
    }
    let offset = match rest {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let digits = [*h1, *h2, *m1, *m2];
            if !digits.iter().all(u8::is_ascii_digit) {
                return None;
            }
            let v = |a: u8, b: u8| i64::from(a - b'0') * 10 + i64::from(b - b'0');
            let off = v(*h1, *h2) * 3600 + v(*m1, *m2) * 60;
            if *sign == b'+' { off } else { -off }
        }
        _ => return None,
    };
    Some(days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second - offset)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
pub(crate) fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339("2021-03-07T03:20:29Z"), Some(1615087229));
        assert_eq!(parse_rfc3339("2022-12-31T23:59:59.999Z"), Some(1672531199));
        assert_eq!(parse_rfc3339("2021-03-07T05:20:29+02:00"), Some(1615087229));
        assert_eq!(parse_rfc3339("2021-03-07"), None);
        assert_eq!(parse_rfc3339("2021-03-07T03:20:29"), None);
    }

    #[test]
    fn validity_is_closed() {
        let v = Validity { start: 10, end: Some(20) };
        assert!(v.contains(10) && v.contains(20) && !v.contains(9) && !v.contains(21));
        assert!(Validity::since(5).contains(i64::MAX));
    }
}
