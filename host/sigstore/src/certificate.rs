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

/// Most certificates from the signature (distinct, and neither the leaf nor in the trusted
/// root's CA chains) a chain build accepts: more are refused, not searched.
const MAX_UNTRUSTED_INTERMEDIATES: usize = 4;

/// Most certificate signatures one chain build verifies (each `(certificate, issuer)` pair is
/// verified once); a search that needs more is refused.
const MAX_SIGNATURE_CHECKS: usize = 64;

/// Most issuer candidates (names fitting, signature verified or remembered) one chain build
/// tries: bounds the depth-first search itself, beside its signature checks.
const MAX_PATH_STEPS: usize = 1024;

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

    /// Whether this certificate names `issuer`'s subject as its issuer.
    fn names_issuer(&self, issuer: &Certificate) -> bool {
        self.cert.tbs_certificate.issuer == issuer.cert.tbs_certificate.subject
    }

    /// Whether `issuer`'s key signed this certificate (names are not compared: see
    /// [`Certificate::names_issuer`]).
    fn signed_by(&self, issuer: &Certificate) -> Result<()> {
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
///
/// The search is bounded: at most 4 distinct certificates of `intermediates` may be missing
/// from the trusted root, no certificate appears twice on a path, each `(certificate, issuer)`
/// signature is verified once, and at most 64 signatures (and 1024 issuer candidates) are
/// tried; beyond any limit the result is [`Error::UntrustedCertificate`].
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
    build_chain_with(&mut PathSearch::new(at), leaf, intermediates, root)
}

/// [`build_chain`] after the leaf's own checks, with the search's budget and memory.
fn build_chain_with(
    search: &mut PathSearch,
    leaf: &Certificate,
    intermediates: &[Certificate],
    root: &TrustedRoot,
) -> Result<Vec<Certificate>> {
    let at = search.at;
    // The certificates the signature brings that the trust root does not: each one widens
    // the search, so only a few are accepted.
    let mut untrusted: Vec<&Certificate> = Vec::new();
    for cert in intermediates {
        let known = cert.der() == leaf.der()
            || untrusted.iter().any(|c| c.der() == cert.der())
            || root.certificate_authorities().iter().any(|ca| ca.chain.iter().any(|der| der[..] == cert.der()[..]));
        if !known {
            untrusted.push(cert);
        }
    }
    if untrusted.len() > MAX_UNTRUSTED_INTERMEDIATES {
        return Err(Error::UntrustedCertificate(format!(
            "the signature brings {} intermediate certificates that are not in the trust root; at most \
             {MAX_UNTRUSTED_INTERMEDIATES} are accepted",
            untrusted.len()
        )));
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
        match search.find(leaf, anchor, &pool) {
            Ok(path) => return Ok(path),
            Err(Stop::Failed(e)) => last_error = e,
            Err(Stop::OverBudget(e)) => return Err(Error::UntrustedCertificate(e)),
        }
    }
    Err(Error::UntrustedCertificate(last_error))
}

/// Why a path search ended without a path.
#[derive(Debug)]
enum Stop {
    /// No path from here: the search goes on elsewhere.
    Failed(String),
    /// The search used up its budget: the whole chain build fails.
    OverBudget(String),
}

/// A certificate in a path search, with the SHA-256 of its DER.
struct Node<'a> {
    cert: &'a Certificate,
    fingerprint: [u8; 32],
}

impl<'a> Node<'a> {
    fn new(cert: &'a Certificate) -> Node<'a> {
        Node { cert, fingerprint: Sha256::digest(cert.der()).into() }
    }
}

/// One chain build's depth-first search state: the time, which signatures were verified
/// (and how), and how much of the budget is spent.
struct PathSearch {
    at: i64,
    /// `(certificate, issuer)` DER fingerprints → whether the issuer's key signed it.
    verified: std::collections::HashMap<([u8; 32], [u8; 32]), bool>,
    /// Signatures verified so far (at most [`MAX_SIGNATURE_CHECKS`]).
    signature_checks: usize,
    /// Issuer candidates tried so far (at most [`MAX_PATH_STEPS`]).
    steps: usize,
}

impl PathSearch {
    fn new(at: i64) -> PathSearch {
        PathSearch { at, verified: Default::default(), signature_checks: 0, steps: 0 }
    }

    /// A path from `leaf` to `anchor` through `pool` (deduplicated here): the leaf's issuer
    /// first, the anchor last.
    fn find(
        &mut self,
        leaf: &Certificate,
        anchor: &Certificate,
        pool: &[&Certificate],
    ) -> std::result::Result<Vec<Certificate>, Stop> {
        let leaf = Node::new(leaf);
        let anchor = Node::new(anchor);
        // A certificate twice in the pool (or the anchor in it) would only be tried again
        // where it already failed.
        let mut nodes: Vec<Node<'_>> = Vec::with_capacity(pool.len());
        for cert in pool {
            if cert.der() != anchor.cert.der() && !nodes.iter().any(|n| n.cert.der() == cert.der()) {
                nodes.push(Node::new(cert));
            }
        }
        let mut path = Vec::new();
        self.extend_path(&leaf, &anchor, &nodes, &mut path)?;
        Ok(path.into_iter().map(|n| n.cert.clone()).collect())
    }

    /// Whether `issuer` issued `current`: the names chain and its key signed it. Each pair's
    /// signature is verified once; every candidate whose name fits counts as a step.
    fn issued_by(&mut self, current: &Node<'_>, issuer: &Node<'_>) -> std::result::Result<bool, Stop> {
        if !current.cert.names_issuer(issuer.cert) {
            return Ok(false);
        }
        self.steps += 1;
        if self.steps > MAX_PATH_STEPS {
            return Err(Stop::OverBudget(format!(
                "the certificate path search tried more than {MAX_PATH_STEPS} issuers"
            )));
        }
        let key = (current.fingerprint, issuer.fingerprint);
        if let Some(&signed) = self.verified.get(&key) {
            return Ok(signed);
        }
        if self.signature_checks >= MAX_SIGNATURE_CHECKS {
            return Err(Stop::OverBudget(format!(
                "the certificate path search needs more than {MAX_SIGNATURE_CHECKS} signature checks"
            )));
        }
        self.signature_checks += 1;
        let signed = current.cert.signed_by(issuer.cert).is_ok();
        self.verified.insert(key, signed);
        Ok(signed)
    }

    /// Depth-first: find a CA in `pool` (or the anchor), not already on `path`, that issued
    /// `current`.
    fn extend_path<'n>(
        &mut self,
        current: &Node<'_>,
        anchor: &'n Node<'n>,
        pool: &'n [Node<'n>],
        path: &mut Vec<&'n Node<'n>>,
    ) -> std::result::Result<(), Stop> {
        if path.len() >= MAX_PATH {
            return Err(Stop::Failed("certificate path too long".into()));
        }
        let mut last_error = "the certificate's issuer is not in the trusted chain".to_string();
        let candidates = std::iter::once(anchor).chain(pool.iter());
        for (i, candidate) in candidates.enumerate() {
            let is_anchor = i == 0;
            if path.iter().any(|n| n.cert.der() == candidate.cert.der()) || !self.issued_by(current, candidate)? {
                continue;
            }
            if let Err(e) = check_ca(candidate.cert, path.len(), self.at) {
                last_error = e;
                continue;
            }
            path.push(candidate);
            if is_anchor {
                return Ok(());
            }
            if candidate.cert.is_self_issued() {
                // A self-signed certificate that is not the anchor ends nowhere.
                path.pop();
                continue;
            }
            match self.extend_path(candidate, anchor, pool, path) {
                Ok(()) => return Ok(()),
                Err(Stop::Failed(e)) => {
                    last_error = e;
                    path.pop();
                }
                Err(stop) => return Err(stop),
            }
        }
        Err(Stop::Failed(last_error))
    }
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

#[cfg(test)]
mod tests {
    use std::str::FromStr;
    use std::time::Duration;

    use der::asn1::{BitString, UtcTime};
    use p256::ecdsa::{DerSignature, SigningKey, signature::Signer};
    use p256::pkcs8::EncodePublicKey;
    use rand_core::OsRng;
    use x509_cert::certificate::{TbsCertificate, Version};
    use x509_cert::ext::Extension;
    use x509_cert::name::Name;
    use x509_cert::serial_number::SerialNumber;
    use x509_cert::spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
    use x509_cert::time::{Time, Validity};

    use super::*;
    use crate::trust::{CertificateAuthority, Validity as Window};

    const AT: i64 = 1_700_000_000;

    /// A certificate for `subject` holding `key`, signed by `signer` in the name of `issuer`:
    /// a CA (basicConstraints cA) or a code-signing leaf (keyUsage digitalSignature).
    fn make(serial: u16, subject: &str, issuer: &str, key: &SigningKey, signer: &SigningKey, ca: bool) -> Certificate {
        let time = |t: i64| Time::UtcTime(UtcTime::from_unix_duration(Duration::from_secs(t as u64)).unwrap());
        let (extn_id, extn_value) = if ca {
            (OID_BASIC_CONSTRAINTS, vec![0x30, 0x03, 0x01, 0x01, 0xff])
        } else {
            (OID_KEY_USAGE, vec![0x03, 0x02, 0x07, 0x80])
        };
        let spki = key.verifying_key().to_public_key_der().unwrap();
        let algorithm = AlgorithmIdentifierOwned { oid: OID_ECDSA_SHA256, parameters: None };
        let tbs = TbsCertificate {
            version: Version::V3,
            serial_number: SerialNumber::new(&serial.to_be_bytes()).unwrap(),
            signature: algorithm.clone(),
            issuer: Name::from_str(issuer).unwrap(),
            validity: Validity { not_before: time(AT - 3600), not_after: time(AT + 3600) },
            subject: Name::from_str(subject).unwrap(),
            subject_public_key_info: SubjectPublicKeyInfoOwned::from_der(spki.as_bytes()).unwrap(),
            issuer_unique_id: None,
            subject_unique_id: None,
            extensions: Some(vec![Extension {
                extn_id,
                critical: true,
                extn_value: OctetString::new(extn_value).unwrap(),
            }]),
        };
        let signature: DerSignature = signer.sign(&tbs.to_der().unwrap());
        let cert = x509_cert::Certificate {
            tbs_certificate: tbs,
            signature_algorithm: algorithm,
            signature: BitString::from_bytes(signature.as_bytes()).unwrap(),
        };
        Certificate::from_der(&cert.to_der().unwrap()).unwrap()
    }

    fn root_of(chain: &[&Certificate]) -> TrustedRoot {
        let mut root = TrustedRoot::default();
        root.add_certificate_authority(CertificateAuthority {
            chain: chain.iter().map(|c| c.der().to_vec()).collect(),
            valid_for: Window::always(),
            uri: String::new(),
        });
        root
    }

    #[test]
    fn chains_through_trusted_or_supplied_intermediates() {
        let root_key = SigningKey::random(&mut OsRng);
        let ca_key = SigningKey::random(&mut OsRng);
        let leaf_key = SigningKey::random(&mut OsRng);
        let anchor = make(1, "CN=Root", "CN=Root", &root_key, &root_key, true);
        let intermediate = make(2, "CN=Intermediate", "CN=Root", &ca_key, &root_key, true);
        let leaf = make(3, "CN=leaf", "CN=Intermediate", &leaf_key, &ca_key, false);

        let trusted = root_of(&[&intermediate, &anchor]);
        assert_eq!(build_chain(&leaf, &[], &trusted, AT).unwrap(), vec![intermediate.clone(), anchor.clone()]);

        let anchor_only = root_of(&[&anchor]);
        let mut search = PathSearch::new(AT);
        let path = build_chain_with(&mut search, &leaf, std::slice::from_ref(&intermediate), &anchor_only).unwrap();
        assert_eq!(path, vec![intermediate.clone(), anchor.clone()]);
        assert_eq!(search.signature_checks, 2);
        assert!(build_chain(&leaf, &[], &anchor_only, AT).is_err());
        assert!(build_chain(&leaf, &[intermediate], &anchor_only, AT + 7200).is_err());
    }

    /// `k` CA certificates named X issued by Y and `k` named Y issued by X, all under one key,
    /// and a leaf issued by X: every path alternates X and Y and never reaches the anchor.
    fn cycle(k: u16) -> (Certificate, Certificate, Vec<Certificate>) {
        let root_key = SigningKey::random(&mut OsRng);
        let key = SigningKey::random(&mut OsRng);
        let anchor = make(1, "CN=Root", "CN=Root", &root_key, &root_key, true);
        let leaf = make(2, "CN=leaf", "CN=X", &key, &key, false);
        let mut cycle = Vec::new();
        for i in 0..k {
            cycle.push(make(100 + i, "CN=X", "CN=Y", &key, &key, true));
            cycle.push(make(200 + i, "CN=Y", "CN=X", &key, &key, true));
        }
        (anchor, leaf, cycle)
    }

    #[test]
    fn cyclic_intermediates_fail_fast() {
        let (anchor, leaf, cycle) = cycle(2);
        let root = root_of(&[&anchor]);
        // Copies, and the trusted anchor, do not count against the limit on supplied certificates.
        let mut supplied = cycle.clone();
        supplied.extend(cycle.iter().cloned());
        supplied.push(anchor.clone());
        supplied.push(leaf.clone());
        let mut search = PathSearch::new(AT);
        let Err(Error::UntrustedCertificate(_)) = build_chain_with(&mut search, &leaf, &supplied, &root) else {
            panic!("a cycle of intermediates must not chain");
        };
        // Each (certificate, issuer) pair whose names fit is verified once: k + 2k² pairs.
        assert_eq!(search.signature_checks, 2 + 2 * 2 * 2);
        assert!(search.steps <= MAX_PATH_STEPS);

        // More certificates than the limit: refused before any search, naming the count.
        let (anchor, leaf, cycle) = cycle_of_five();
        let mut search = PathSearch::new(AT);
        let Err(Error::UntrustedCertificate(text)) = build_chain_with(&mut search, &leaf, &cycle, &root_of(&[&anchor]))
        else {
            panic!("too many intermediates must be refused");
        };
        assert!(text.contains("brings 5 intermediate certificates"), "{text}");
        assert_eq!((search.signature_checks, search.steps), (0, 0));
    }

    fn cycle_of_five() -> (Certificate, Certificate, Vec<Certificate>) {
        let (anchor, leaf, mut cycle) = cycle(3);
        cycle.truncate(5);
        (anchor, leaf, cycle)
    }

    #[test]
    fn path_search_stops_at_its_signature_budget() {
        // Past the limit on supplied certificates (as a large trusted chain could be): the
        // search would try some 8^7 paths; the budget ends it.
        let (anchor, leaf, cycle) = cycle(8);
        let pool: Vec<&Certificate> = cycle.iter().collect();
        let mut search = PathSearch::new(AT);
        let result = search.find(&leaf, &anchor, &pool);
        assert!(matches!(result, Err(Stop::OverBudget(_))), "{result:?}");
        assert_eq!(search.signature_checks, MAX_SIGNATURE_CHECKS);
        assert!(search.steps <= MAX_PATH_STEPS);

        // Through build_chain (the cycle in the trusted chain, past the limit on supplied
        // certificates), the exhausted budget is an UntrustedCertificate error.
        let root = root_of(&cycle.iter().chain([&anchor]).collect::<Vec<_>>());
        let Err(Error::UntrustedCertificate(text)) = build_chain(&leaf, &[], &root, AT) else {
            panic!("an exhausted budget must fail the chain");
        };
        assert!(text.contains("signature checks"), "{text}");
    }
}
