//! RFC 3161 signed timestamps, checked against a trusted root's timestamp authorities.
//!
//! Sources of truth:
//! - RFC 3161 §2.4.1-2.4.2 (`TimeStampResp`, `TimeStampToken`, `TSTInfo` with its `messageImprint`
//!   and `genTime`) and §2.3 (the TSA certificate's only, critical, extended key usage is
//!   `id-kp-timeStamping`);
//! - RFC 5652 §5 (CMS `SignedData`, `SignerInfo`; §5.4: with signed attributes the signature is
//!   over their DER as a `SET OF`, the `message-digest` attribute holds the digest of the
//!   encapsulated content and `content-type` its type);
//! - RFC 5280 §4.1 (certificates, validity) for the TSA chain;
//! - Sigstore's use, `sigstore-go/pkg/verify/tsa.go` and `pkg/root/timestamping_authority.go` and
//!   `sigstore/timestamp-authority/pkg/verification/verify.go`: the timestamp is over the bundle's
//!   signature bytes (the imprint is their hash), the signer is the trusted authority's leaf (an
//!   embedded certificate must be that leaf), the chain is validated at `genTime`, and `genTime`
//!   must lie in the authority's validity in the trusted root (a closed interval).
//!
//! The DER is read by hand (a small reader below) so that the exact bytes of the signed
//! attributes and of each certificate's `TBSCertificate` are the ones verified.

use sha2::{Digest, Sha256};

use crate::keys::{HashAlg, PublicKey};
use crate::trust::TrustedRoot;
use crate::{Error, Result, malformed};

// ---------------------------------------------------------------------------------------------
// A minimal DER reader.

pub(crate) const SEQUENCE: u8 = 0x30;
pub(crate) const SET: u8 = 0x31;
pub(crate) const INTEGER: u8 = 0x02;
pub(crate) const OID: u8 = 0x06;
pub(crate) const OCTET_STRING: u8 = 0x04;
pub(crate) const BIT_STRING: u8 = 0x03;
pub(crate) const BOOLEAN: u8 = 0x01;
pub(crate) const UTC_TIME: u8 = 0x17;
pub(crate) const GENERALIZED_TIME: u8 = 0x18;

/// One TLV: its tag, its contents, and all of its bytes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tlv<'a> {
    pub tag: u8,
    pub value: &'a [u8],
    pub raw: &'a [u8],
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Der<'a> {
    data: &'a [u8],
    what: &'static str,
}

impl<'a> Der<'a> {
    pub fn new(what: &'static str, data: &'a [u8]) -> Der<'a> {
        Der { data, what }
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    pub fn peek_tag(&self) -> Option<u8> {
        self.data.first().copied()
    }

    pub fn read(&mut self) -> Result<Tlv<'a>> {
        let bad = |d: &str| malformed(self.what, format!("DER: {d}"));
        let data = self.data;
        let (&tag, rest) = data.split_first().ok_or_else(|| bad("unexpected end"))?;
        if tag & 0x1f == 0x1f {
            return Err(bad("high tag numbers are not supported"));
        }
        let (&first, rest) = rest.split_first().ok_or_else(|| bad("no length"))?;
        let (len, rest) = if first < 0x80 {
            (first as usize, rest)
        } else {
            let n = (first & 0x7f) as usize;
            if n == 0 || n > 4 || rest.len() < n {
                return Err(bad("unsupported length"));
            }
            let len = rest[..n].iter().fold(0usize, |acc, b| (acc << 8) | *b as usize);
            (len, &rest[n..])
        };
        if rest.len() < len {
            return Err(bad("length past the end"));
        }
        let header = data.len() - rest.len();
        let tlv = Tlv { tag, value: &rest[..len], raw: &data[..header + len] };
        self.data = &rest[len..];
        Ok(tlv)
    }

    pub fn expect(&mut self, tag: u8) -> Result<Tlv<'a>> {
        let tlv = self.read()?;
        if tlv.tag != tag {
            return Err(malformed(self.what, format!("DER: tag {:#04x} where {tag:#04x} was expected", tlv.tag)));
        }
        Ok(tlv)
    }

    pub fn optional(&mut self, tag: u8) -> Result<Option<Tlv<'a>>> {
        if self.peek_tag() == Some(tag) { self.read().map(Some) } else { Ok(None) }
    }

    /// The contents of the next TLV, which must have `tag`, as a reader.
    pub fn enter(&mut self, tag: u8) -> Result<Der<'a>> {
        Ok(Der::new(self.what, self.expect(tag)?.value))
    }
}

/// Seconds since the epoch of a UTCTime or GeneralizedTime (fractions dropped).
pub(crate) fn parse_time(tlv: &Tlv<'_>) -> Result<i64> {
    let bad = || malformed("time", format!("{:?}", String::from_utf8_lossy(tlv.value)));
    let text = std::str::from_utf8(tlv.value).map_err(|_| bad())?;
    let text = text.strip_suffix('Z').ok_or_else(bad)?;
    let (year, rest) = match tlv.tag {
        UTC_TIME => {
            let yy: i64 = text.get(..2).and_then(|s| s.parse().ok()).ok_or_else(bad)?;
            (if yy < 50 { 2000 + yy } else { 1900 + yy }, &text[2..])
        }
        GENERALIZED_TIME => (text.get(..4).and_then(|s| s.parse().ok()).ok_or_else(bad)?, &text[4.min(text.len())..]),
        _ => return Err(bad()),
    };
    let rest = rest.split_once('.').map_or(rest, |(whole, _)| whole);
    if rest.len() != 10 || !rest.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let field = |i: usize| -> i64 { rest[i..i + 2].parse().unwrap_or(0) };
    let (month, day, hour, minute, second) = (field(0), field(2), field(4), field(6), field(8));
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return Err(bad());
    }
    Ok(days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

// ---------------------------------------------------------------------------------------------
// Object identifiers (DER contents).

const OID_SIGNED_DATA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02];
const OID_TST_INFO: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x10, 0x01, 0x04];
const OID_CONTENT_TYPE: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x03];
const OID_MESSAGE_DIGEST: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x04];
const OID_SHA256: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01];
const OID_SHA384: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02];
const OID_SHA512: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03];
const OID_ECDSA_SHA256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
const OID_ECDSA_SHA384: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03];
const OID_ECDSA_SHA512: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x04];
const OID_RSA_SHA256: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b];
const OID_RSA_SHA384: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0c];
const OID_RSA_SHA512: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0d];
const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];
const OID_EXT_KEY_USAGE: &[u8] = &[0x55, 0x1d, 0x25];
const OID_KP_TIME_STAMPING: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x08];
const OID_SUBJECT_KEY_ID: &[u8] = &[0x55, 0x1d, 0x0e];

fn digest_alg(oid: &[u8]) -> Option<HashAlg> {
    match oid {
        OID_SHA256 => Some(HashAlg::Sha256),
        OID_SHA384 => Some(HashAlg::Sha384),
        OID_SHA512 => Some(HashAlg::Sha512),
        _ => None,
    }
}

/// The hash a signature algorithm names: `Some(None)` for Ed25519 (no prehash), `None` when
/// the algorithm names no hash (plain `rsaEncryption`, `id-ecPublicKey`).
fn signature_hash(oid: &[u8]) -> Option<Option<HashAlg>> {
    match oid {
        OID_ECDSA_SHA256 | OID_RSA_SHA256 => Some(Some(HashAlg::Sha256)),
        OID_ECDSA_SHA384 | OID_RSA_SHA384 => Some(Some(HashAlg::Sha384)),
        OID_ECDSA_SHA512 | OID_RSA_SHA512 => Some(Some(HashAlg::Sha512)),
        OID_ED25519 => Some(None),
        _ => None,
    }
}

/// Checks `signature` by `key` over `message` with the hash `alg` names (else `fallback`).
fn verify_with(key: &PublicKey, alg: &[u8], fallback: Option<HashAlg>, message: &[u8], signature: &[u8]) -> Result<()> {
    match signature_hash(alg) {
        Some(None) => key.verify(message, signature),
        Some(Some(hash)) => key.verify_prehashed(&hash.digest(message), signature),
        None => match fallback {
            Some(hash) => key.verify_prehashed(&hash.digest(message), signature),
            None => Err(Error::BadSignature("unsupported signature algorithm".into())),
        },
    }
}

// ---------------------------------------------------------------------------------------------
// Certificates, as far as a TSA chain needs them.

struct Cert<'a> {
    raw: &'a [u8],
    tbs: &'a [u8],
    sig_alg: &'a [u8],
    signature: &'a [u8],
    serial: &'a [u8],
    issuer: &'a [u8],
    subject: &'a [u8],
    not_before: i64,
    not_after: i64,
    spki: &'a [u8],
    ext_key_usage: Option<(bool, Vec<&'a [u8]>)>,
    subject_key_id: Option<&'a [u8]>,
}

fn parse_cert(raw: &[u8]) -> Result<Cert<'_>> {
    const WHAT: &str = "certificate";
    let cert_tlv = Der::new(WHAT, raw).expect(SEQUENCE)?;
    let mut cert = Der::new(WHAT, cert_tlv.value);
    let tbs = cert.expect(SEQUENCE)?;
    let sig_alg = cert.enter(SEQUENCE)?.expect(OID)?.value;
    let sig_bits = cert.expect(BIT_STRING)?.value;
    let signature = match sig_bits.split_first() {
        Some((0, rest)) => rest,
        _ => return Err(malformed(WHAT, "signature BIT STRING")),
    };
    let mut t = Der::new(WHAT, tbs.value);
    t.optional(0xa0)?; // version
    let serial = t.expect(INTEGER)?.value;
    t.expect(SEQUENCE)?; // signature algorithm
    let issuer = t.expect(SEQUENCE)?.raw;
    let mut validity = t.enter(SEQUENCE)?;
    let not_before = parse_time(&validity.read()?)?;
    let not_after = parse_time(&validity.read()?)?;
    let subject = t.expect(SEQUENCE)?.raw;
    let spki = t.expect(SEQUENCE)?.raw;
    let mut ext_key_usage = None;
    let mut subject_key_id = None;
    while let Ok(field) = t.read() {
        if field.tag != 0xa3 {
            continue;
        }
        let mut exts = Der::new(WHAT, field.value).enter(SEQUENCE)?;
        while !exts.is_empty() {
            let mut ext = exts.enter(SEQUENCE)?;
            let oid = ext.expect(OID)?.value;
            let critical = match ext.optional(BOOLEAN)? {
                Some(b) => b.value.first().is_some_and(|v| *v != 0),
                None => false,
            };
            let value = ext.expect(OCTET_STRING)?.value;
            if oid == OID_EXT_KEY_USAGE {
                let mut seq = Der::new(WHAT, value).enter(SEQUENCE)?;
                let mut usages = Vec::new();
                while !seq.is_empty() {
                    usages.push(seq.expect(OID)?.value);
                }
                ext_key_usage = Some((critical, usages));
            } else if oid == OID_SUBJECT_KEY_ID {
                subject_key_id = Some(Der::new(WHAT, value).expect(OCTET_STRING)?.value);
            }
        }
    }
    Ok(Cert {
        raw: cert_tlv.raw,
        tbs: tbs.raw,
        sig_alg,
        signature,
        serial,
        issuer,
        subject,
        not_before,
        not_after,
        spki,
        ext_key_usage,
        subject_key_id,
    })
}

/// Whether a DER certificate's issuer and subject names are the same (a root, or a
/// self-issued CA certificate).
pub(crate) fn is_self_issued(der: &[u8]) -> Result<bool> {
    let cert = parse_cert(der)?;
    Ok(cert.issuer == cert.subject)
}

impl Cert<'_> {
    fn valid_at(&self, t: i64) -> bool {
        self.not_before <= t && t <= self.not_after
    }

    fn public_key(&self) -> Result<PublicKey> {
        PublicKey::from_der(self.spki)
    }

    /// Whether `issuer` signed this certificate.
    fn signed_by(&self, issuer: &Cert<'_>) -> Result<()> {
        if self.issuer != issuer.subject {
            return Err(Error::Timestamp("TSA certificate chain: issuer and subject names differ".into()));
        }
        verify_with(&issuer.public_key()?, self.sig_alg, None, self.tbs, self.signature)
            .map_err(|_| Error::Timestamp("TSA certificate chain: a signature does not verify".into()))
    }
}

/// Validates a trusted authority's chain (`[leaf, intermediates.., root]`, DER) at `at`.
fn verify_tsa_chain(chain: &[Cert<'_>], at: i64) -> Result<()> {
    let Some(leaf) = chain.first() else {
        return Err(Error::Timestamp("timestamp authority without certificates".into()));
    };
    match &leaf.ext_key_usage {
        Some((_, usages)) if usages.as_slice() == [OID_KP_TIME_STAMPING] => {}
        _ => return Err(Error::Timestamp("the TSA certificate's only extended key usage must be timeStamping".into())),
    }
    for (i, cert) in chain.iter().enumerate() {
        if !cert.valid_at(at) {
            return Err(Error::Timestamp(format!(
                "TSA certificate {i} of the chain is not valid at the timestamp ({at})"
            )));
        }
        let issuer = chain.get(i + 1).unwrap_or(cert);
        cert.signed_by(issuer)?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Timestamp tokens.

/// What a timestamp token says, before it is verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimestampInfo {
    /// `genTime`, seconds since the epoch.
    pub gen_time: i64,
    pub imprint_hash: HashAlg,
    pub imprint: Vec<u8>,
}

struct SignerInfo<'a> {
    /// `IssuerAndSerialNumber`: (issuer name, serial), or a subject key identifier.
    issuer_serial: Option<(&'a [u8], &'a [u8])>,
    subject_key_id: Option<&'a [u8]>,
    digest: HashAlg,
    signed_attrs: Option<Tlv<'a>>,
    sig_alg: &'a [u8],
    signature: &'a [u8],
}

struct Token<'a> {
    tst_info: &'a [u8],
    certificates: Vec<&'a [u8]>,
    signer: SignerInfo<'a>,
    info: TimestampInfo,
}

/// The token (a CMS `ContentInfo`) of a `TimeStampResp`, or the token itself.
fn token_bytes(data: &[u8]) -> Result<&[u8]> {
    const WHAT: &str = "RFC 3161 timestamp";
    let mut seq = Der::new(WHAT, data).enter(SEQUENCE)?;
    if seq.peek_tag() == Some(OID) {
        return Ok(data);
    }
    // TimeStampResp ::= SEQUENCE { status PKIStatusInfo, timeStampToken ContentInfo OPTIONAL }
    let mut status = seq.enter(SEQUENCE)?;
    let code = status.expect(INTEGER)?.value;
    if code != [0] && code != [1] {
        return Err(Error::Timestamp("the timestamp response's status is not granted".into()));
    }
    Ok(seq.expect(SEQUENCE).map_err(|_| Error::Timestamp("the timestamp response holds no token".into()))?.raw)
}

fn parse_token(data: &[u8]) -> Result<Token<'_>> {
    const WHAT: &str = "RFC 3161 timestamp";
    let bad = |d: &str| malformed(WHAT, d);
    let mut content_info = Der::new(WHAT, token_bytes(data)?).enter(SEQUENCE)?;
    if content_info.expect(OID)?.value != OID_SIGNED_DATA {
        return Err(bad("the token is not CMS SignedData"));
    }
    let mut signed_data = content_info.enter(0xa0)?.enter(SEQUENCE)?;
    signed_data.expect(INTEGER)?;
    signed_data.expect(SET)?; // digestAlgorithms
    let mut encap = signed_data.enter(SEQUENCE)?;
    if encap.expect(OID)?.value != OID_TST_INFO {
        return Err(bad("the signed content is not a TSTInfo"));
    }
    let tst_info = encap.enter(0xa0)?.expect(OCTET_STRING)?.value;
    let mut certificates = Vec::new();
    if let Some(certs) = signed_data.optional(0xa0)? {
        let mut certs = Der::new(WHAT, certs.value);
        while !certs.is_empty() {
            let cert = certs.read()?;
            if cert.tag == SEQUENCE {
                certificates.push(cert.raw);
            }
        }
    }
    signed_data.optional(0xa1)?; // crls
    let mut signer_infos = signed_data.enter(SET)?;
    let mut si = signer_infos.enter(SEQUENCE)?;
    if !signer_infos.is_empty() {
        return Err(bad("more than one signer"));
    }
    si.expect(INTEGER)?;
    let sid = si.read()?;
    let (issuer_serial, subject_key_id) = match sid.tag {
        SEQUENCE => {
            let mut ias = Der::new(WHAT, sid.value);
            let issuer = ias.expect(SEQUENCE)?.raw;
            let serial = ias.expect(INTEGER)?.value;
            (Some((issuer, serial)), None)
        }
        0x80 => (None, Some(sid.value)),
        _ => return Err(bad("unknown signer identifier")),
    };
    let digest_oid = si.enter(SEQUENCE)?.expect(OID)?.value;
    let digest = digest_alg(digest_oid).ok_or_else(|| bad("unsupported digest algorithm"))?;
    let signed_attrs = si.optional(0xa0)?;
    let sig_alg = si.enter(SEQUENCE)?.expect(OID)?.value;
    let signature = si.expect(OCTET_STRING)?.value;

    // TSTInfo ::= SEQUENCE { version, policy, messageImprint, serialNumber, genTime, ... }
    let mut tst = Der::new(WHAT, tst_info).enter(SEQUENCE)?;
    tst.expect(INTEGER)?;
    tst.expect(OID)?;
    let mut imprint = tst.enter(SEQUENCE)?;
    let imprint_oid = imprint.enter(SEQUENCE)?.expect(OID)?.value;
    let imprint_hash = digest_alg(imprint_oid).ok_or_else(|| bad("unsupported message imprint hash"))?;
    let imprint = imprint.expect(OCTET_STRING)?.value.to_vec();
    tst.expect(INTEGER)?;
    let gen_time = parse_time(&tst.expect(GENERALIZED_TIME)?)?;

    Ok(Token {
        tst_info,
        certificates,
        signer: SignerInfo { issuer_serial, subject_key_id, digest, signed_attrs, sig_alg, signature },
        info: TimestampInfo { gen_time, imprint_hash, imprint },
    })
}

/// Reads a timestamp (response or token) without verifying it.
pub fn parse(signed_timestamp: &[u8]) -> Result<TimestampInfo> {
    Ok(parse_token(signed_timestamp)?.info)
}

impl SignerInfo<'_> {
    fn names(&self, cert: &Cert<'_>) -> bool {
        match (self.issuer_serial, self.subject_key_id) {
            (Some((issuer, serial)), _) => issuer == cert.issuer && serial == cert.serial,
            (None, Some(ski)) => cert.subject_key_id == Some(ski),
            (None, None) => false,
        }
    }

    /// Checks the signature (over the signed attributes, or the content without them).
    fn verify(&self, key: &PublicKey, content: &[u8]) -> Result<()> {
        let bad = |d: &str| Error::Timestamp(d.to_string());
        let Some(attrs) = self.signed_attrs else {
            return verify_with(key, self.sig_alg, Some(self.digest), content, self.signature)
                .map_err(|_| bad("the timestamp's signature does not verify"));
        };
        let mut reader = Der::new("RFC 3161 timestamp", attrs.value);
        let (mut content_type_ok, mut digest_ok) = (false, false);
        while !reader.is_empty() {
            let mut attr = reader.enter(SEQUENCE)?;
            let oid = attr.expect(OID)?.value;
            let mut values = attr.enter(SET)?;
            if oid == OID_CONTENT_TYPE {
                content_type_ok = values.expect(OID)?.value == OID_TST_INFO;
            } else if oid == OID_MESSAGE_DIGEST {
                digest_ok = values.expect(OCTET_STRING)?.value == self.digest.digest(content).as_slice();
            }
        }
        if !content_type_ok {
            return Err(bad("the signed content-type attribute is not TSTInfo"));
        }
        if !digest_ok {
            return Err(bad("the signed message-digest attribute does not match the TSTInfo"));
        }
        // The signature covers the attributes' DER with the SET OF tag, not the [0] IMPLICIT one.
        let mut signed = attrs.raw.to_vec();
        signed[0] = SET;
        verify_with(key, self.sig_alg, Some(self.digest), &signed, self.signature)
            .map_err(|_| bad("the timestamp's signature does not verify"))
    }
}

/// Verifies a signed timestamp over `signature` (the bundle's signature bytes) against the
/// trusted root's timestamp authorities; returns its `genTime` (seconds since the epoch).
pub fn verify(signed_timestamp: &[u8], signature: &[u8], root: &TrustedRoot) -> Result<i64> {
    let token = parse_token(signed_timestamp)?;
    let info = &token.info;
    if token.info.imprint != info.imprint_hash.digest(signature) {
        return Err(Error::Timestamp("the timestamp is over other bytes than the signature".into()));
    }
    let embedded: Vec<Cert<'_>> = token.certificates.iter().map(|c| parse_cert(c)).collect::<Result<_>>()?;
    let embedded_signer = embedded.iter().find(|c| token.signer.names(c));
    if !embedded.is_empty() && embedded_signer.is_none() {
        return Err(Error::Timestamp("no embedded certificate is the timestamp's signer".into()));
    }

    let mut last = Error::Timestamp("the trusted root has no timestamp authority".into());
    for authority in root.timestamp_authorities() {
        let attempt = || -> Result<()> {
            let chain: Vec<Cert<'_>> = authority.chain.iter().map(|c| parse_cert(c)).collect::<Result<_>>()?;
            let leaf = chain.first().ok_or_else(|| Error::Timestamp("authority without certificates".into()))?;
            match embedded_signer {
                Some(signer) if signer.raw != leaf.raw && signer.tbs != leaf.tbs => {
                    return Err(Error::Timestamp("the embedded signer is not this authority's".into()));
                }
                None if !token.signer.names(leaf) => {
                    return Err(Error::Timestamp("the timestamp's signer is not this authority's".into()));
                }
                _ => {}
            }
            if !authority.valid_for.contains(info.gen_time) {
                return Err(Error::Timestamp(format!(
                    "the timestamp ({}) is outside the authority's validity in the trusted root",
                    info.gen_time
                )));
            }
            verify_tsa_chain(&chain, info.gen_time)?;
            token.signer.verify(&leaf.public_key()?, token.tst_info)
        };
        match attempt() {
            Ok(()) => return Ok(info.gen_time),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// A stable identity of a timestamp, to find duplicates.
pub(crate) fn fingerprint(signed_timestamp: &[u8]) -> [u8; 32] {
    Sha256::digest(signed_timestamp).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        let t = |tag, s: &str| parse_time(&Tlv { tag, value: s.as_bytes(), raw: &[] }).unwrap();
        assert_eq!(t(GENERALIZED_TIME, "19700101000000Z"), 0);
        assert_eq!(t(GENERALIZED_TIME, "20250612120220Z"), 1_749_729_740);
        assert_eq!(t(GENERALIZED_TIME, "20250612120220.123Z"), 1_749_729_740);
        assert_eq!(t(UTC_TIME, "250612120220Z"), 1_749_729_740);
        assert!(parse_time(&Tlv { tag: UTC_TIME, value: b"2506121202Z", raw: &[] }).is_err());
    }
}
