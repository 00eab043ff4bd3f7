//! Offline verification of Sigstore bundles and cosign signatures against
//! configured trust roots: no network, no clock but the one a caller passes.
//!
//! Modules, one per concern (see each for its source of truth):
//! - [`trust`]: Sigstore `trusted_root.json` (CAs, Rekor logs, CT logs, TSAs, validity windows);
//! - [`keys`]: public keys (ECDSA P-256/P-384/P-521, RSA, Ed25519) and signature checks;
//! - [`certificate`]: X.509 chains to a trusted CA at a time, Fulcio identity, embedded SCTs;
//! - [`rekor`]: Rekor entries: signed entry timestamps (SET) and body consistency;
//! - [`merkle`]: RFC 6962 inclusion proofs and signed-note checkpoints;
//! - [`timestamp`]: RFC 3161 signed timestamps;
//! - [`dsse`]: DSSE envelopes and in-toto statements;
//! - [`bundle`]: Sigstore bundles v0.1, v0.2 and v0.3;
//! - [`cosign`]: cosign's legacy image signatures and attestations (`.sig` and `.att` layers);
//! - [`identity`]: who must have signed: keys, or certificate issuer and subject.

pub mod bundle;
pub mod certificate;
pub mod cosign;
pub mod dsse;
pub mod identity;
pub mod keys;
pub mod merkle;
pub mod rekor;
pub mod timestamp;
pub mod trust;

/// Why a verification failed. Each variant is a class a caller can act on
/// (the host maps them onto the contract's error kinds); the text says what.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The input does not parse (JSON, base64, DER, PEM, a missing field).
    #[error("malformed {what}: {detail}")]
    Malformed { what: &'static str, detail: String },
    /// A signature does not verify with the key or certificate it names.
    #[error("bad signature: {0}")]
    BadSignature(String),
    /// The certificate does not chain to a trusted CA at the signing time, or is not a code-signing leaf.
    #[error("untrusted certificate: {0}")]
    UntrustedCertificate(String),
    /// Signed by someone, but not by the identity or key the policy asks for.
    #[error("identity mismatch: {0}")]
    IdentityMismatch(String),
    /// No acceptable transparency log evidence (SET, inclusion proof, checkpoint), or it does not verify.
    #[error("transparency log: {0}")]
    TransparencyLog(String),
    /// A signed timestamp or certificate transparency proof is missing or does not verify.
    #[error("timestamp: {0}")]
    Timestamp(String),
    /// The signature is over another artifact or image digest.
    #[error("digest mismatch: {0}")]
    DigestMismatch(String),
}

pub type Result<T> = std::result::Result<T, Error>;

pub(crate) fn malformed(what: &'static str, detail: impl std::fmt::Display) -> Error {
    Error::Malformed { what, detail: detail.to_string() }
}

/// Who a verified signature came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signer {
    /// A public key: its id is `sha256:` and the hex SHA-256 of its DER SubjectPublicKeyInfo.
    Key { key_id: String },
    /// A certificate (Fulcio or a private CA): the OIDC issuer extension and the subject (SAN).
    Certificate { issuer: String, subject: String },
}

/// What one signature proved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub signer: Signer,
    /// The digest the signature covers, `sha256:<hex>` (or `sha512:`).
    pub digest: String,
    /// cosign's `critical.identity.docker-reference`, when the payload is simple signing.
    pub docker_reference: Option<String>,
    /// The verified signing time (Rekor integrated time or RFC 3161), seconds since the epoch.
    pub signed_at: Option<i64>,
}
