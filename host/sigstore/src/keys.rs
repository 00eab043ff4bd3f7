//! Public keys and signature checks.
//!
//! Sources of truth: the key types and signature schemes Sigstore names in
//! protobuf-specs `sigstore_common.proto` (`PublicKeyDetails`: ECDSA P-256/SHA-256,
//! P-384/SHA-384, P-521/SHA-512, RSA PKCS#1 v1.5 and PSS with SHA-256, Ed25519);
//! keys are DER SubjectPublicKeyInfo (RFC 5280 §4.1.2.7) or PEM `PUBLIC KEY`
//! (RFC 7468 §13); ECDSA signatures are ASN.1 DER `Ecdsa-Sig-Value` (RFC 5480 §2.2.3,
//! what Go's `ecdsa.VerifyASN1` and cosign produce) or, leniently, fixed-size `r || s`;
//! RSA follows RFC 8017; Ed25519 is PureEdDSA (RFC 8032). A key's id is cosign's and
//! Palisade's `sha256:<hex of SHA-256 of the DER SPKI>`.
//!
//! Every implementation is RustCrypto (pure Rust).

use std::fmt;

use der::Decode;
use sha2::{Digest, Sha256, Sha384, Sha512};
use signature::hazmat::PrehashVerifier;
use spki::{ObjectIdentifier, SubjectPublicKeyInfoRef};

use crate::{Error, Result, malformed};

const OID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const OID_P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const OID_P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const OID_P521: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.35");
const OID_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const OID_RSA_PSS: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.10");
const OID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");

/// A hash function used with a signature scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashAlg {
    Sha256,
    Sha384,
    Sha512,
}

impl HashAlg {
    pub fn digest(self, message: &[u8]) -> Vec<u8> {
        match self {
            HashAlg::Sha256 => Sha256::digest(message).to_vec(),
            HashAlg::Sha384 => Sha384::digest(message).to_vec(),
            HashAlg::Sha512 => Sha512::digest(message).to_vec(),
        }
    }

    /// The hash whose output has this many bytes.
    pub fn from_len(len: usize) -> Option<HashAlg> {
        match len {
            32 => Some(HashAlg::Sha256),
            48 => Some(HashAlg::Sha384),
            64 => Some(HashAlg::Sha512),
            _ => None,
        }
    }

    /// The digest prefix Palisade and OCI use: `sha256`, `sha384`, `sha512`.
    pub fn name(self) -> &'static str {
        match self {
            HashAlg::Sha256 => "sha256",
            HashAlg::Sha384 => "sha384",
            HashAlg::Sha512 => "sha512",
        }
    }
}

/// ECDSA over a digest: the signature in DER, else fixed-size `r || s`.
macro_rules! ecdsa_verify {
    ($curve:ty, $key:expr, $digest:expr, $signature:expr) => {{
        let sig = match ecdsa::Signature::<$curve>::from_der($signature) {
            Ok(sig) => Ok(sig),
            Err(_) => ecdsa::Signature::<$curve>::from_slice($signature),
        };
        sig.and_then(|sig| $key.verify_prehash($digest, &sig))
    }};
}

#[derive(Clone)]
enum Kind {
    P256(ecdsa::VerifyingKey<p256::NistP256>),
    P384(ecdsa::VerifyingKey<p384::NistP384>),
    P521(ecdsa::VerifyingKey<p521::NistP521>),
    Rsa { key: rsa::RsaPublicKey, pss: bool, hash: HashAlg },
    Ed25519(ed25519_dalek::VerifyingKey),
}

/// A public key that can check signatures. Two keys are equal when their DER
/// SubjectPublicKeyInfo is.
#[derive(Clone)]
pub struct PublicKey {
    der: Vec<u8>,
    kind: Kind,
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.der == other.der
    }
}

impl Eq for PublicKey {}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({} {})", self.algorithm(), self.key_id())
    }
}

impl PublicKey {
    /// A DER SubjectPublicKeyInfo: EC (P-256, P-384, P-521), RSA or Ed25519.
    /// RSA keys verify PKCS#1 v1.5 signatures with SHA-256 (PSS for an `id-RSASSA-PSS` key).
    pub fn from_der(spki: &[u8]) -> Result<PublicKey> {
        let info = SubjectPublicKeyInfoRef::from_der(spki).map_err(|e| malformed("public key", e))?;
        let bits = info
            .subject_public_key
            .as_bytes()
            .ok_or_else(|| malformed("public key", "the key's BIT STRING has unused bits"))?;
        let oid = info.algorithm.oid;
        let kind = if oid == OID_EC_PUBLIC_KEY {
            let curve: ObjectIdentifier = info
                .algorithm
                .parameters_oid()
                .map_err(|e| malformed("public key", format!("EC key without a named curve: {e}")))?;
            let bad = |e: ecdsa::Error| malformed("public key", format!("EC point: {e}"));
            if curve == OID_P256 {
                Kind::P256(ecdsa::VerifyingKey::from_sec1_bytes(bits).map_err(bad)?)
            } else if curve == OID_P384 {
                Kind::P384(ecdsa::VerifyingKey::from_sec1_bytes(bits).map_err(bad)?)
            } else if curve == OID_P521 {
                Kind::P521(ecdsa::VerifyingKey::from_sec1_bytes(bits).map_err(bad)?)
            } else {
                return Err(malformed("public key", format!("unsupported EC curve {curve}")));
            }
        } else if oid == OID_RSA || oid == OID_RSA_PSS {
            let key = rsa_from_pkcs1(bits)?;
            Kind::Rsa { key, pss: oid == OID_RSA_PSS, hash: HashAlg::Sha256 }
        } else if oid == OID_ED25519 {
            let bytes: &[u8; 32] =
                bits.try_into().map_err(|_| malformed("public key", "an Ed25519 key is 32 bytes"))?;
            Kind::Ed25519(ed25519_dalek::VerifyingKey::from_bytes(bytes).map_err(|e| malformed("public key", e))?)
        } else {
            return Err(malformed("public key", format!("unsupported key algorithm {oid}")));
        };
        Ok(PublicKey { der: spki.to_vec(), kind })
    }

    /// A PEM `PUBLIC KEY` (SubjectPublicKeyInfo) or `RSA PUBLIC KEY` (PKCS#1). The first
    /// key block is used; text around it is ignored. Certificates are not keys.
    pub fn from_pem(text: &str) -> Result<PublicKey> {
        for (label, der) in pem_blocks(text)? {
            match label.as_str() {
                "PUBLIC KEY" => return PublicKey::from_der(&der),
                "RSA PUBLIC KEY" => return PublicKey::from_pkcs1_rsa(&der),
                _ => {}
            }
        }
        Err(malformed("public key", "no PEM PUBLIC KEY block"))
    }

    /// A DER PKCS#1 `RSAPublicKey` (protobuf-specs' deprecated `PKCS1_RSA_PKCS1V5`).
    pub fn from_pkcs1_rsa(der: &[u8]) -> Result<PublicKey> {
        use rsa::pkcs8::EncodePublicKey;
        let key = rsa_from_pkcs1(der)?;
        let spki = key.to_public_key_der().map_err(|e| malformed("public key", e))?;
        PublicKey::from_der(spki.as_bytes())
    }

    /// A key from a trusted root: `rawBytes` with its `keyDetails` (protobuf-specs
    /// `PublicKeyDetails` name). The details choose RSA's padding and hash and must agree
    /// with the key's type; an unspecified or empty name takes the type from the key.
    pub fn from_trust_root(raw: &[u8], details: &str) -> Result<PublicKey> {
        let details = details.trim();
        if details.starts_with("PKCS1_RSA_") {
            let mut key = PublicKey::from_pkcs1_rsa(raw)?;
            key.set_rsa(details.ends_with("PSS"), HashAlg::Sha256);
            return Ok(key);
        }
        let mut key = PublicKey::from_der(raw)?;
        let mismatch =
            || malformed("public key", format!("key details {details} do not match a {} key", key.algorithm()));
        match details {
            "" | "PUBLIC_KEY_DETAILS_UNSPECIFIED" => {}
            "PKIX_ECDSA_P256_SHA_256" | "PKIX_ECDSA_P256_HMAC_SHA_256" => {
                if !matches!(key.kind, Kind::P256(_)) {
                    return Err(mismatch());
                }
            }
            "PKIX_ECDSA_P384_SHA_384" => {
                if !matches!(key.kind, Kind::P384(_)) {
                    return Err(mismatch());
                }
            }
            "PKIX_ECDSA_P521_SHA_512" => {
                if !matches!(key.kind, Kind::P521(_)) {
                    return Err(mismatch());
                }
            }
            "PKIX_ED25519" => {
                if !matches!(key.kind, Kind::Ed25519(_)) {
                    return Err(mismatch());
                }
            }
            "PKIX_RSA_PKCS1V5"
            | "PKIX_RSA_PKCS1V15_2048_SHA256"
            | "PKIX_RSA_PKCS1V15_3072_SHA256"
            | "PKIX_RSA_PKCS1V15_4096_SHA256" => {
                if !matches!(key.kind, Kind::Rsa { .. }) {
                    return Err(mismatch());
                }
                key.set_rsa(false, HashAlg::Sha256);
            }
            "PKIX_RSA_PSS" | "PKIX_RSA_PSS_2048_SHA256" | "PKIX_RSA_PSS_3072_SHA256" | "PKIX_RSA_PSS_4096_SHA256" => {
                if !matches!(key.kind, Kind::Rsa { .. }) {
                    return Err(mismatch());
                }
                key.set_rsa(true, HashAlg::Sha256);
            }
            other => return Err(malformed("public key", format!("unsupported key details {other}"))),
        }
        Ok(key)
    }

    fn set_rsa(&mut self, use_pss: bool, with: HashAlg) {
        if let Kind::Rsa { pss, hash, .. } = &mut self.kind {
            *pss = use_pss;
            *hash = with;
        }
    }

    /// `sha256:` and the hex SHA-256 of the DER SubjectPublicKeyInfo.
    pub fn key_id(&self) -> String {
        format!("sha256:{}", hex(&Sha256::digest(&self.der)))
    }

    /// The DER SubjectPublicKeyInfo.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// A short name of the key type: `ecdsa-p256`, `ecdsa-p384`, `ecdsa-p521`, `rsa`, `ed25519`.
    pub fn algorithm(&self) -> &'static str {
        match self.kind {
            Kind::P256(_) => "ecdsa-p256",
            Kind::P384(_) => "ecdsa-p384",
            Kind::P521(_) => "ecdsa-p521",
            Kind::Rsa { .. } => "rsa",
            Kind::Ed25519(_) => "ed25519",
        }
    }

    /// The hash this key signs messages with (ECDSA: by curve; RSA: SHA-256 unless its
    /// details say otherwise); `None` for Ed25519, which hashes internally.
    pub fn message_hash(&self) -> Option<HashAlg> {
        match &self.kind {
            Kind::P256(_) => Some(HashAlg::Sha256),
            Kind::P384(_) => Some(HashAlg::Sha384),
            Kind::P521(_) => Some(HashAlg::Sha512),
            Kind::Rsa { hash, .. } => Some(*hash),
            Kind::Ed25519(_) => None,
        }
    }

    /// Checks `signature` over `message`: ECDSA with the curve's hash (P-256/SHA-256,
    /// P-384/SHA-384, P-521/SHA-512), RSA with its hash, Ed25519 over the message itself.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<()> {
        match &self.kind {
            Kind::Ed25519(key) => {
                let sig = ed25519_dalek::Signature::from_slice(signature)
                    .map_err(|_| Error::BadSignature("an Ed25519 signature is 64 bytes".into()))?;
                key.verify_strict(message, &sig)
                    .map_err(|_| Error::BadSignature("Ed25519 signature does not verify".into()))
            }
            _ => {
                let hash = self.message_hash().unwrap_or(HashAlg::Sha256);
                self.verify_prehashed(&hash.digest(message), signature)
            }
        }
    }

    /// Checks `signature` over a message known only by its digest (ECDSA, RSA; the digest's
    /// length says the hash for RSA). Ed25519 signs the message itself, so this fails for it.
    pub fn verify_prehashed(&self, digest: &[u8], signature: &[u8]) -> Result<()> {
        let failed =
            |what: &str| Error::BadSignature(format!("{what} signature does not verify with key {}", self.key_id()));
        match &self.kind {
            Kind::P256(key) => ecdsa_verify!(p256::NistP256, key, digest, signature).map_err(|_| failed("ECDSA P-256")),
            Kind::P384(key) => ecdsa_verify!(p384::NistP384, key, digest, signature).map_err(|_| failed("ECDSA P-384")),
            Kind::P521(key) => ecdsa_verify!(p521::NistP521, key, digest, signature).map_err(|_| failed("ECDSA P-521")),
            Kind::Rsa { key, pss, .. } => {
                let hash = HashAlg::from_len(digest.len())
                    .ok_or_else(|| Error::BadSignature(format!("no SHA-2 digest is {} bytes", digest.len())))?;
                let result = match (pss, hash) {
                    (false, HashAlg::Sha256) => key.verify(rsa::Pkcs1v15Sign::new::<Sha256>(), digest, signature),
                    (false, HashAlg::Sha384) => key.verify(rsa::Pkcs1v15Sign::new::<Sha384>(), digest, signature),
                    (false, HashAlg::Sha512) => key.verify(rsa::Pkcs1v15Sign::new::<Sha512>(), digest, signature),
                    (true, HashAlg::Sha256) => key.verify(rsa::Pss::new::<Sha256>(), digest, signature),
                    (true, HashAlg::Sha384) => key.verify(rsa::Pss::new::<Sha384>(), digest, signature),
                    (true, HashAlg::Sha512) => key.verify(rsa::Pss::new::<Sha512>(), digest, signature),
                };
                result.map_err(|_| failed(if *pss { "RSA-PSS" } else { "RSA PKCS#1 v1.5" }))
            }
            Kind::Ed25519(_) => {
                Err(Error::BadSignature("an Ed25519 key signs the message itself, not a digest of it".into()))
            }
        }
    }
}

fn rsa_from_pkcs1(der: &[u8]) -> Result<rsa::RsaPublicKey> {
    use rsa::pkcs1::DecodeRsaPublicKey;
    rsa::RsaPublicKey::from_pkcs1_der(der).map_err(|e| malformed("public key", format!("RSA: {e}")))
}

/// Every PEM block of `text`: (label, DER), in order.
pub(crate) fn pem_blocks(text: &str) -> Result<Vec<(String, Vec<u8>)>> {
    use base64::Engine;
    let mut out = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let line = line.trim();
        let Some(label) = line.strip_prefix("-----BEGIN ").and_then(|l| l.strip_suffix("-----")) else {
            continue;
        };
        let end = format!("-----END {label}-----");
        let mut body = String::new();
        let mut closed = false;
        for inner in lines.by_ref() {
            let inner = inner.trim();
            if inner == end {
                closed = true;
                break;
            }
            // RFC 1421 headers (`Proc-Type: ...`) are not base64.
            if inner.contains(':') {
                continue;
            }
            body.push_str(inner);
        }
        if !closed {
            return Err(malformed("PEM", format!("no END line for {label}")));
        }
        let der = base64::engine::general_purpose::STANDARD
            .decode(body.as_bytes())
            .map_err(|e| malformed("PEM", format!("{label}: {e}")))?;
        out.push((label.to_string(), der));
    }
    Ok(out)
}

/// Standard base64 (with padding), skipping line breaks as Go's decoder does
/// (cosign writes some annotations wrapped at 76 columns).
pub(crate) fn base64_decode(text: &str) -> std::result::Result<Vec<u8>, base64::DecodeError> {
    use base64::Engine;
    let compact: String = text.trim().chars().filter(|c| *c != '\n' && *c != '\r').collect();
    base64::engine::general_purpose::STANDARD.decode(compact.as_bytes())
}

/// Lower-case hex (also the host's, for digests).
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 15) as usize] as char);
    }
    out
}

/// Hex to bytes (either case).
pub(crate) fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    text.as_bytes().chunks(2).map(|p| Some(nibble(p[0])? << 4 | nibble(p[1])?)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::OsRng;

    fn roundtrip(key: &PublicKey, sign: impl Fn(&[u8]) -> Vec<u8>, other: &PublicKey) {
        let message = b"a simple-signing payload";
        let signature = sign(message);
        key.verify(message, &signature).unwrap();
        assert!(matches!(key.verify(b"another payload", &signature), Err(Error::BadSignature(_))));
        assert!(matches!(other.verify(message, &signature), Err(Error::BadSignature(_))));
        if let Some(hash) = key.message_hash() {
            key.verify_prehashed(&hash.digest(message), &signature).unwrap();
        } else {
            assert!(key.verify_prehashed(&Sha256::digest(message), &signature).is_err());
        }
        // PEM round trip and the key id.
        let pem = format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, key.der())
        );
        let again = PublicKey::from_pem(&pem).unwrap();
        assert_eq!(&again, key);
        assert_eq!(again.key_id(), format!("sha256:{}", hex(&Sha256::digest(key.der()))));
    }

    fn ec(der: spki::Document) -> PublicKey {
        PublicKey::from_der(der.as_bytes()).unwrap()
    }

    #[test]
    fn ecdsa_p256_der_and_fixed_signatures() {
        use p256::ecdsa::{DerSignature, Signature, SigningKey, signature::Signer};
        use p256::pkcs8::EncodePublicKey;
        let sk = SigningKey::random(&mut OsRng);
        let key = ec(sk.verifying_key().to_public_key_der().unwrap());
        let other_sk = SigningKey::random(&mut OsRng);
        let other = ec(other_sk.verifying_key().to_public_key_der().unwrap());
        assert_eq!(key.algorithm(), "ecdsa-p256");
        roundtrip(
            &key,
            |m| {
                let s: DerSignature = sk.sign(m);
                s.as_bytes().to_vec()
            },
            &other,
        );
        // Fixed-size r || s is accepted too.
        let fixed: Signature = sk.sign(b"m");
        key.verify(b"m", &fixed.to_bytes()).unwrap();
        assert!(key.verify(b"m", &[0u8; 10]).is_err());
    }

    #[test]
    fn ecdsa_p384() {
        use p384::ecdsa::{DerSignature, SigningKey, signature::Signer};
        use p384::pkcs8::EncodePublicKey;
        let sk = SigningKey::random(&mut OsRng);
        let key = ec(sk.verifying_key().to_public_key_der().unwrap());
        let other = ec(SigningKey::random(&mut OsRng).verifying_key().to_public_key_der().unwrap());
        assert_eq!(key.message_hash(), Some(HashAlg::Sha384));
        roundtrip(
            &key,
            |m| {
                let s: DerSignature = sk.sign(m);
                s.as_bytes().to_vec()
            },
            &other,
        );
    }

    #[test]
    fn ecdsa_p521() {
        use p521::ecdsa::{Signature, SigningKey, VerifyingKey, signature::Signer};
        use p521::pkcs8::EncodePublicKey;
        let spki = |sk: &SigningKey| {
            let vk = VerifyingKey::from(sk);
            let pk = p521::PublicKey::from_sec1_bytes(vk.to_encoded_point(false).as_bytes()).unwrap();
            pk.to_public_key_der().unwrap()
        };
        let sk = SigningKey::random(&mut OsRng);
        let key = ec(spki(&sk));
        let other = ec(spki(&SigningKey::random(&mut OsRng)));
        assert_eq!(key.message_hash(), Some(HashAlg::Sha512));
        roundtrip(
            &key,
            |m| {
                let s: Signature = sk.sign(m);
                s.to_der().as_bytes().to_vec()
            },
            &other,
        );
    }

    #[test]
    fn ed25519() {
        use ed25519_dalek::pkcs8::EncodePublicKey;
        use ed25519_dalek::{Signer, SigningKey};
        let sk = SigningKey::generate(&mut OsRng);
        let key = PublicKey::from_der(sk.verifying_key().to_public_key_der().unwrap().as_bytes()).unwrap();
        let other_sk = SigningKey::generate(&mut OsRng);
        let other = PublicKey::from_der(other_sk.verifying_key().to_public_key_der().unwrap().as_bytes()).unwrap();
        assert_eq!(key.algorithm(), "ed25519");
        roundtrip(&key, |m| sk.sign(m).to_bytes().to_vec(), &other);
    }

    #[test]
    fn rsa_pkcs1v15_and_pss() {
        use rsa::pkcs1::EncodeRsaPublicKey;
        use rsa::pkcs8::EncodePublicKey;
        use rsa::signature::{RandomizedSigner, SignatureEncoding, Signer};
        let sk = rsa::RsaPrivateKey::new(&mut OsRng, 2048).unwrap();
        let pk = sk.to_public_key();
        let key = PublicKey::from_der(pk.to_public_key_der().unwrap().as_bytes()).unwrap();
        let other_pk = rsa::RsaPrivateKey::new(&mut OsRng, 2048).unwrap().to_public_key();
        let other = PublicKey::from_der(other_pk.to_public_key_der().unwrap().as_bytes()).unwrap();
        let signer = rsa::pkcs1v15::SigningKey::<Sha256>::new(sk.clone());
        roundtrip(&key, |m| signer.sign(m).to_vec(), &other);

        // A digest of another length selects that hash.
        let signer512 = rsa::pkcs1v15::SigningKey::<Sha512>::new(sk.clone());
        let sig = signer512.sign(b"m").to_vec();
        key.verify_prehashed(&Sha512::digest(b"m"), &sig).unwrap();

        // PKCS#1 "RSA PUBLIC KEY" PEM names the same key.
        let pkcs1 = pk.to_pkcs1_pem(rsa::pkcs8::LineEnding::LF).unwrap();
        assert_eq!(PublicKey::from_pem(&pkcs1).unwrap(), key);

        // PSS when the trust root's key details say so.
        let pss_key = PublicKey::from_trust_root(key.der(), "PKIX_RSA_PSS_2048_SHA256").unwrap();
        let pss_signer = rsa::pss::SigningKey::<Sha256>::new(sk);
        let sig = pss_signer.sign_with_rng(&mut OsRng, b"m").to_vec();
        pss_key.verify(b"m", &sig).unwrap();
        assert!(key.verify(b"m", &sig).is_err());
    }

    #[test]
    fn trust_root_key_details_must_fit() {
        use p256::pkcs8::EncodePublicKey;
        let sk = p256::ecdsa::SigningKey::random(&mut OsRng);
        let der = sk.verifying_key().to_public_key_der().unwrap();
        assert!(PublicKey::from_trust_root(der.as_bytes(), "PKIX_ECDSA_P256_SHA_256").is_ok());
        assert!(PublicKey::from_trust_root(der.as_bytes(), "PKIX_ED25519").is_err());
        assert!(PublicKey::from_trust_root(der.as_bytes(), "ML_DSA_65").is_err());
    }

    #[test]
    fn malformed_keys() {
        assert!(matches!(PublicKey::from_der(b"garbage"), Err(Error::Malformed { .. })));
        assert!(PublicKey::from_pem("there are limits").is_err());
        assert!(PublicKey::from_pem("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n").is_err());
    }

    #[test]
    fn hex_round_trip() {
        assert_eq!(hex(&[0, 0xab, 0xff]), "00abff");
        assert_eq!(unhex("00ABff"), Some(vec![0, 0xab, 0xff]));
        assert_eq!(unhex("0"), None);
        assert_eq!(unhex("zz"), None);
    }
}
