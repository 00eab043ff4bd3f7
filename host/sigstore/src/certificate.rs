//! X.509 certificates: chains to a trusted CA at a given time, Fulcio identities,
//! embedded signed certificate timestamps.
//!
//! Sources of truth:
//! - RFC 5280 (certificate profile, path validation: validity, basicConstraints,
//!   keyUsage, extKeyUsage), applied like Go's `crypto/x509` as sigstore-go and cosign
//!   use it: every certificate on the path valid at the signing time, CA certificates
//!   with `cA`, an extKeyUsage (where present) that allows code signing;
//! - sigstore-go `pkg/verify/certificate.go`: the trusted root's CA chain is the
//!   authority (its last certificate the anchor, the others intermediates), and the
//!   CA's `validFor` must contain the signing time;
//! - Fulcio's OID registry, <https://github.com/sigstore/fulcio/blob/main/docs/oid-info.md>:
//!   issuer `1.3.6.1.4.1.57264.1.8` (DER UTF8String), deprecated `1.3.6.1.4.1.57264.1.1`
//!   (raw string bytes), otherName SAN username `1.3.6.1.4.1.57264.1.7`;
//! - RFC 6962 §3.2-3.3 (precertificate SCTs embedded in extension
//!   `1.3.6.1.4.1.11129.2.4.2`): the signed data is over the TBSCertificate without that
//!   extension and the SHA-256 of the issuer's SubjectPublicKeyInfo.

use der::asn1::{OctetString, Utf8StringRef};
use der::{Decode, Encode};
use sha2::{Digest, Sha256};
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAltName};

use crate::keys::{HashAlg, PublicKey, pem_blocks};
use crate::trust::TrustedRoot;
use crate::{Error, Result, malformed};

use const_oid::ObjectIdentifier as Oid;

const OID_FULCIO_ISSUER_V2: Oid = Oid::new_unwrap("1.3.6.1.4.1.57264.1.8");
const OID_FULCIO_ISSUER_V1: Oid = Oid::new_unwrap("1.3.6.1.4.1.57264.1.1");
const OID_FULCIO_USERNAME: Oid = Oid::new_unwrap("1.3.6.1.4.1.57264.1.7");
const OID_SCT_LIST: Oid = Oid::new_unwrap("1.3.6.1.4.1.11129.2.4.2");
const OID_SAN: Oid = Oid::new_unwrap("2.5.29.17");
const OID_KEY_USAGE: Oid = Oid::new_unwrap("2.5.29.15");
const OID_EXT_KEY_USAGE: Oid = Oid::new_unwrap("2.5.29.37");
const OID_BASIC_CONSTRAINTS: Oid = Oid::new_unwrap("2.5.29.19");
const OID_EKU_CODE_SIGNING: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.3.3");
const OID_EKU_ANY: Oid = Oid::new_unwrap("2.5.29.37.0");

const OID_ECDSA_SHA256: Oid = Oid::new_unwrap("1.2.840.10045.4.3.2");
const OID_ECDSA_SHA384: Oid = Oid::new_unwrap("1.2.840.10045.4.3.3");
const OID_ECDSA_SHA512: Oid = Oid::new_unwrap("1.2.840.10045.4.3.4");
const OID_RSA_SHA256: Oid = Oid::new_unwrap("1.2.840.113549.1.1.11");
const OID_RSA_SHA384: Oid = Oid::new_unwrap("1.2.840.113549.1.1.12");
const OID_RSA_SHA512: Oid = Oid::new_unwrap("1.2.840.113549.1.1.13");
const OID_ED25519: Oid = Oid::new_unwrap("1.3.101.112");

/// Longest certificate path tried (leaf, intermediates, anchor).
const MAX_PATH: usize = 8;

/// A subject alternative name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum San {
    Uri(String),
    Email(String),
    Dns(String),
    /// Fulcio's otherName username (`1.3.6.1.4.1.57264.1.7`).
    Username(String),
}

/// A parsed X.509 certificate with its original DER.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Certificate {
    der: Vec<u8>,
    cert: x509_cert::Certificate,
}

impl Certificate {
    pub fn from_der(der: &[u8]) -> Result<Certificate> {
        let cert = x509_cert::Certificate::from_der(der).map_err(|e| malformed("certificate", e))?;
        Ok(Certificate { der: der.to_vec(), cert })
    }

    /// Every `CERTIFICATE` block of a PEM text, in order; at least one.
    pub fn from_pem(text: &str) -> Result<Vec<Certificate>> {
        let certs = pem_blocks(text)?
            .into_iter()
            .filter(|(label, _)| label == "CERTIFICATE")
            .map(|(_, der)| Certificate::from_der(&der))
            .collect::<Result<Vec<_>>>()?;
        if certs.is_empty() {
            return Err(malformed("certificate", "no PEM CERTIFICATE block"));
        }
        Ok(certs)
    }

    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The subject's key.
    pub fn public_key(&self) -> Result<PublicKey> {
        let spki =
            self.cert.tbs_certificate.subject_public_key_info.to_der().map_err(|e| malformed("certificate", e))?;
        PublicKey::from_der(&spki)
    }

    /// notBefore, seconds since the epoch.
    pub fn not_before(&self) -> i64 {
        unix(self.cert.tbs_certificate.validity.not_before)
    }

    /// notAfter, seconds since the epoch.
    pub fn not_after(&self) -> i64 {
        unix(self.cert.tbs_certificate.validity.not_after)
    }

    /// `not_before <= t <= not_after`.
    pub fn valid_at(&self, t: i64) -> bool {
        self.not_before() <= t && t <= self.not_after()
    }

    fn extension(&self, oid: Oid) -> Option<&x509_cert::ext::Extension> {
        self.cert.tbs_certificate.extensions.as_ref()?.iter().find(|e| e.extn_id == oid)
    }

    fn decode_extension<'a, T: Decode<'a>>(&'a self, oid: Oid, what: &'static str) -> Result<Option<T>> {
        match self.extension(oid) {
            None => Ok(None),
            Some(ext) => T::from_der(ext.extn_value.as_bytes())
                .map(Some)
                .map_err(|e| malformed("certificate", format!("{what}: {e}"))),
        }
    }

    /// Every subject alternative name of a supported kind, in order.
    pub fn subject_alt_names(&self) -> Result<Vec<San>> {
        let Some(SubjectAltName(names)) = self.decode_extension::<SubjectAltName>(OID_SAN, "subjectAltName")? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for name in names {
            match name {
                GeneralName::UniformResourceIdentifier(uri) => out.push(San::Uri(uri.to_string())),
                GeneralName::Rfc822Name(email) => out.push(San::Email(email.to_string())),
                GeneralName::DnsName(dns) => out.push(San::Dns(dns.to_string())),
                GeneralName::OtherName(other) if other.type_id == OID_FULCIO_USERNAME => {
                    let text = other
                        .value
                        .decode_as::<Utf8StringRef<'_>>()
                        .map_err(|e| malformed("certificate", format!("otherName username: {e}")))?;
                    out.push(San::Username(text.to_string()));
                }
                _ => {}
            }
        }
        Ok(out)
    }

    /// The OIDC issuer: Fulcio's extension `1.3.6.1.4.1.57264.1.8` (a DER UTF8String),
    /// else the deprecated `1.3.6.1.4.1.57264.1.1` (the raw string); `None` when neither
    /// is present (a certificate from a private CA).
    pub fn oidc_issuer(&self) -> Result<Option<String>> {
        if let Some(ext) = self.extension(OID_FULCIO_ISSUER_V2) {
            let text = Utf8StringRef::from_der(ext.extn_value.as_bytes())
                .map_err(|e| malformed("certificate", format!("OIDC issuer extension: {e}")))?;
            return Ok(Some(text.to_string()));
        }
        if let Some(ext) = self.extension(OID_FULCIO_ISSUER_V1) {
            let text = std::str::from_utf8(ext.extn_value.as_bytes())
                .map_err(|e| malformed("certificate", format!("OIDC issuer extension: {e}")))?;
            return Ok(Some(text.to_string()));
        }
        Ok(None)
    }

    /// `(issuer, subject)`: the OIDC issuer (empty when the certificate has none) and the
    /// first URI, email or Fulcio username SAN.
    pub fn identity(&self) -> Result<(String, String)> {
        let issuer = self.oidc_issuer()?.unwrap_or_default();
        let subject = self
            .subject_alt_names()?
            .into_iter()
            .find_map(|san| match san {
                San::Uri(s) | San::Email(s) | San::Username(s) => Some(s),
                San::Dns(_) => None,
            })
            .ok_or_else(|| malformed("certificate", "no URI, email or username subject alternative name"))?;
        Ok((issuer, subject))
    }

    fn is_self_issued(&self) -> bool {
        self.cert.tbs_certificate.subject == self.cert.tbs_certificate.issuer
    }

    /// Whether `issuer` signed this certificate (names chain and the signature verifies).
    fn issued_by(&self, issuer: &Certificate) -> Result<()> {
        if self.cert.tbs_certificate.issuer != issuer.cert.tbs_certificate.subject {
            return Err(Error::UntrustedCertificate("issuer name does not match".into()));
        }
        let tbs = first_element(&self.der)?;
        let signature = self
            .cert
            .signature
            .as_bytes()
            .ok_or_else(|| malformed("certificate", "signature BIT STRING has unused bits"))?;
        let key = issuer.public_key()?;
        let alg = self.cert.signature_algorithm.oid;
        let checked = if alg == OID_ED25519 {
            key.verify(tbs, signature)
        } else {
            let hash = if alg == OID_ECDSA_SHA256 || alg == OID_RSA_SHA256 {
                HashAlg::Sha256
            } else if alg == OID_ECDSA_SHA384 || alg == OID_RSA_SHA384 {
                HashAlg::Sha384
            } else if alg == OID_ECDSA_SHA512 || alg == OID_RSA_SHA512 {
                HashAlg::Sha512
            } else {
                return Err(Error::UntrustedCertificate(format!("unsupported signature algorithm {alg}")));
            };
            let is_ecdsa = alg == OID_ECDSA_SHA256 || alg == OID_ECDSA_SHA384 || alg == OID_ECDSA_SHA512;
            if is_ecdsa != key.algorithm().starts_with("ecdsa") {
                return Err(Error::UntrustedCertificate(format!(
                    "signature algorithm {alg} does not fit the issuer's {} key",
                    key.algorithm()
                )));
            }
            key.verify_prehashed(&hash.digest(tbs), signature)
        };
        checked.map_err(|e| Error::UntrustedCertificate(format!("certificate signature: {e}")))
    }

    fn key_usage(&self) -> Result<Option<KeyUsage>> {
        self.decode_extension::<KeyUsage>(OID_KEY_USAGE, "keyUsage")
    }

    /// RFC 5280 / Go: a certificate without extKeyUsage allows any; with one, it must name
    /// code signing or anyExtendedKeyUsage.
    fn allows_code_signing(&self) -> Result<bool> {
        Ok(match self.decode_extension::<ExtendedKeyUsage>(OID_EXT_KEY_USAGE, "extKeyUsage")? {
            None => true,
            Some(ExtendedKeyUsage(oids)) => oids.iter().any(|o| *o == OID_EKU_CODE_SIGNING || *o == OID_EKU_ANY),
        })
    }

    /// The basic constraints when the certificate is a CA (`cA` true).
    fn ca_constraints(&self) -> Result<Option<BasicConstraints>> {
        Ok(self.decode_extension::<BasicConstraints>(OID_BASIC_CONSTRAINTS, "basicConstraints")?.filter(|bc| bc.ca))
    }

    /// The `(log_id, timestamp ms, signed data, hash/sig alg, signature)` of every embedded SCT.
    fn embedded_scts(&self, issuer: &Certificate) -> Result<Vec<Sct>> {
        let Some(ext) = self.extension(OID_SCT_LIST) else {
            return Ok(Vec::new());
        };
        let list = OctetString::from_der(ext.extn_value.as_bytes())
            .map_err(|e| malformed("certificate", format!("SCT list: {e}")))?;
        let scts = parse_sct_list(list.as_bytes())?;
        // RFC 6962 §3.2: the precertificate's TBSCertificate is the certificate's without
        // the SCT list extension.
        let mut tbs = self.cert.tbs_certificate.clone();
        if let Some(exts) = tbs.extensions.as_mut() {
            exts.retain(|e| e.extn_id != OID_SCT_LIST);
        }
        let tbs = tbs.to_der().map_err(|e| malformed("certificate", e))?;
        let issuer_key_hash = Sha256::digest(issuer.public_key()?.der());
        let tbs_len = u32::try_from(tbs.len())
            .ok()
            .filter(|l| *l < 1 << 24)
            .ok_or_else(|| malformed("certificate", "TBSCertificate too long for an SCT"))?;
        Ok(scts
            .into_iter()
            .map(|mut sct| {
                let mut signed = Vec::with_capacity(tbs.len() + 64);
                signed.push(0); // version v1
                signed.push(0); // signature_type certificate_timestamp
                signed.extend_from_slice(&sct.timestamp_ms.to_be_bytes());
                signed.extend_from_slice(&1u16.to_be_bytes()); // entry_type precert_entry
                signed.extend_from_slice(&issuer_key_hash);
                signed.extend_from_slice(&tbs_len.to_be_bytes()[1..]);
                signed.extend_from_slice(&tbs);
                let ext_len = u16::try_from(sct.extensions.len()).unwrap_or(u16::MAX);
                signed.extend_from_slice(&ext_len.to_be_bytes());
                signed.extend_from_slice(&sct.extensions);
                sct.signed = signed;
                sct
            })
            .collect())
    }
}

struct Sct {
    log_id: Vec<u8>,
    timestamp_ms: u64,
    extensions: Vec<u8>,
    hash: u8,
    signature: Vec<u8>,
    signed: Vec<u8>,
}

/// RFC 6962 §3.3 `SignedCertificateTimestampList` (TLS presentation language).
fn parse_sct_list(bytes: &[u8]) -> Result<Vec<Sct>> {
    let bad = |d: &str| malformed("SCT list", d.to_string());
    let mut r = TlsReader(bytes);
    let mut list = TlsReader(r.vec16().ok_or_else(|| bad("truncated"))?);
    if !r.0.is_empty() {
        return Err(bad("trailing bytes"));
    }
    let mut out = Vec::new();
    while !list.0.is_empty() {
        let mut s = TlsReader(list.vec16().ok_or_else(|| bad("truncated SCT"))?);
        let version = s.take(1).ok_or_else(|| bad("truncated SCT"))?[0];
        if version != 0 {
            // Unknown versions are skipped, as RFC 6962 §5.3 has clients do.
            continue;
        }
        let log_id = s.take(32).ok_or_else(|| bad("truncated SCT"))?.to_vec();
        let ts = s.take(8).ok_or_else(|| bad("truncated SCT"))?;
        let mut ts_bytes = [0u8; 8];
        ts_bytes.copy_from_slice(ts);
        let extensions = s.vec16().ok_or_else(|| bad("truncated SCT"))?.to_vec();
        let algs = s.take(2).ok_or_else(|| bad("truncated SCT"))?;
        let hash = algs[0];
        let signature = s.vec16().ok_or_else(|| bad("truncated SCT"))?.to_vec();
        if !s.0.is_empty() {
            return Err(bad("trailing bytes in an SCT"));
        }
        out.push(Sct {
            log_id,
            timestamp_ms: u64::from_be_bytes(ts_bytes),
            extensions,
            hash,
            signature,
            signed: Vec::new(),
        });
    }
    Ok(out)
}

struct TlsReader<'a>(&'a [u8]);

impl<'a> TlsReader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn vec16(&mut self) -> Option<&'a [u8]> {
        let len = self.take(2)?;
        let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
        self.take(len)
    }
}

fn unix(time: x509_cert::time::Time) -> i64 {
    i64::try_from(time.to_unix_duration().as_secs()).unwrap_or(i64::MAX)
}

/// The first element (TLV bytes) inside the outer DER SEQUENCE: a certificate's TBS.
fn first_element(der: &[u8]) -> Result<&[u8]> {
    let bad = || malformed("certificate", "bad DER framing");
    let (_, inner) = der_tlv(der).ok_or_else(bad)?;
    let (len, _) = der_tlv(inner).ok_or_else(bad)?;
    inner.get(..len).ok_or_else(bad)
}

/// `(total length of the TLV at the start of bytes, its contents)`.
fn der_tlv(bytes: &[u8]) -> Option<(usize, &[u8])> {
    let first = *bytes.get(1)?;
    let (header, len) = if first < 0x80 {
        (2, usize::from(first))
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let mut len = 0usize;
        for b in bytes.get(2..2 + n)? {
            len = (len << 8) | usize::from(*b);
        }
        (2 + n, len)
    };
    let contents = bytes.get(header..header.checked_add(len)?)?;
    Some((header + len, contents))
}

/// Checks that `leaf` chains, at time `at`, to one of the trusted root's certificate
/// authorities valid at `at`, and is a code-signing leaf. See [`build_chain`].
pub fn verify_chain(leaf: &Certificate, intermediates: &[Certificate], root: &TrustedRoot, at: i64) -> Result<()> {
    build_chain(leaf, intermediates, root, at).map(|_| ())
}

/// Like [`verify_chain`], returning the path: the leaf's issuer first, the trust anchor
/// (the last certificate of the CA's chain in the trusted root) last.
///
/// The leaf must be valid at `at`, have a keyUsage with digitalSignature, and an
/// extKeyUsage (if any) allowing code signing. Each CA certificate on the path must be
/// valid at `at`, have basicConstraints `cA` (and a keyCertSign keyUsage, if it has a
/// keyUsage), a path length constraint that the path respects, and an extKeyUsage (if
/// any) allowing code signing. The CA's `validFor` in the trusted root must contain `at`.
/// Intermediates come from the trusted root's CA chain; `intermediates` (from the
/// signature) are used only where the trusted chain lacks one, and never as an anchor.
pub fn build_chain(
    leaf: &Certificate,
    intermediates: &[Certificate],
    root: &TrustedRoot,
    at: i64,
) -> Result<Vec<Certificate>> {
    if !leaf.valid_at(at) {
        return Err(Error::UntrustedCertificate(format!(
            "the certificate is valid from {} to {}, not at {at}",
            leaf.not_before(),
            leaf.not_after()
        )));
    }
    match leaf.key_usage()? {
        Some(ku) if ku.digital_signature() => {}
        _ => {
            return Err(Error::UntrustedCertificate(
                "the certificate's keyUsage does not allow digital signatures".into(),
            ));
        }
    }
    if !leaf.allows_code_signing()? {
        return Err(Error::UntrustedCertificate("the certificate's extKeyUsage does not allow code signing".into()));
    }
    if leaf.ca_constraints()?.is_some() {
        return Err(Error::UntrustedCertificate("the signing certificate is a CA".into()));
    }
    let mut last_error = format!("no certificate authority of the trust root is valid at {at}");
    for ca in root.certificate_authorities() {
        if !ca.valid_for.contains(at) {
            continue;
        }
        let chain = match ca.chain.iter().map(|der| Certificate::from_der(der)).collect::<Result<Vec<_>>>() {
            Ok(chain) => chain,
            Err(e) => {
                last_error = e.to_string();
                continue;
            }
        };
        let Some((anchor, trusted)) = chain.split_last() else {
            continue;
        };
        let pool: Vec<&Certificate> = trusted.iter().chain(intermediates.iter()).collect();
        let mut path = Vec::new();
        match extend_path(leaf, anchor, &pool, at, &mut path) {
            Ok(()) => return Ok(path),
            Err(e) => last_error = e,
        }
    }
    Err(Error::UntrustedCertificate(last_error))
}

/// Depth-first: find a CA in `pool` (or the anchor) that issued `current`.
fn extend_path(
    current: &Certificate,
    anchor: &Certificate,
    pool: &[&Certificate],
    at: i64,
    path: &mut Vec<Certificate>,
) -> std::result::Result<(), String> {
    if path.len() >= MAX_PATH {
        return Err("certificate path too long".into());
    }
    let mut last_error = "the certificate's issuer is not in the trusted chain".to_string();
    let candidates = std::iter::once(anchor).chain(pool.iter().copied());
    for (i, candidate) in candidates.enumerate() {
        let is_anchor = i == 0;
        if path.contains(candidate) || current.issued_by(candidate).is_err() {
            continue;
        }
        if let Err(e) = check_ca(candidate, path.len(), at) {
            last_error = e;
            continue;
        }
        path.push(candidate.clone());
        if is_anchor {
            return Ok(());
        }
        if candidate.is_self_issued() {
            // A self-signed certificate that is not the anchor ends nowhere.
            path.pop();
            continue;
        }
        match extend_path(candidate, anchor, pool, at, path) {
            Ok(()) => return Ok(()),
            Err(e) => {
                last_error = e;
                path.pop();
            }
        }
    }
    Err(last_error)
}

/// `below`: how many CA certificates (other than self-issued) sit between it and the leaf.
fn check_ca(ca: &Certificate, below: usize, at: i64) -> std::result::Result<(), String> {
    if !ca.valid_at(at) {
        return Err(format!("a CA certificate is valid from {} to {}, not at {at}", ca.not_before(), ca.not_after()));
    }
    let bc = ca
        .ca_constraints()
        .map_err(|e| e.to_string())?
        .ok_or("an issuing certificate is not a CA (basicConstraints)")?;
    if let Some(max) = bc.path_len_constraint
        && below > usize::from(max)
    {
        return Err("a CA's path length constraint is exceeded".into());
    }
    if let Some(ku) = ca.key_usage().map_err(|e| e.to_string())?
        && !ku.key_cert_sign()
    {
        return Err("a CA certificate's keyUsage does not allow certificate signing".into());
    }
    if !ca.allows_code_signing().map_err(|e| e.to_string())? {
        return Err("a CA certificate's extKeyUsage does not allow code signing".into());
    }
    Ok(())
}

/// Checks that `leaf` carries at least one embedded SCT (RFC 6962 precertificate form,
/// `issuer` being the certificate that issued it) signed by a CT log of the trusted root
/// whose validity contains the SCT's time.
pub fn verify_scts(leaf: &Certificate, issuer: &Certificate, root: &TrustedRoot) -> Result<()> {
    let scts = leaf.embedded_scts(issuer)?;
    if scts.is_empty() {
        return Err(Error::Timestamp("the certificate has no embedded SCT".into()));
    }
    let mut last_error = String::from("no SCT is from a CT log of the trust root");
    for sct in &scts {
        let at = i64::try_from(sct.timestamp_ms / 1000).unwrap_or(i64::MAX);
        let Some(log) = root.ctlogs().iter().find(|l| l.log_id == sct.log_id && l.valid_for.contains(at)) else {
            continue;
        };
        // RFC 5246 HashAlgorithm 4 = sha256; every CT log signs with SHA-256.
        if sct.hash != 4 {
            last_error = format!("SCT hash algorithm {} is not SHA-256", sct.hash);
            continue;
        }
        match log.key.verify(&sct.signed, &sct.signature) {
            Ok(()) => return Ok(()),
            Err(e) => last_error = format!("SCT from {}: {e}", log.base_url),
        }
    }
    Err(Error::Timestamp(last_error))
}
