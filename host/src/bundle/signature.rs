//! Signatures in cosign's key-based scheme, so cosign key pairs and tooling
//! work with Palisade bundles and the other way round.
//!
//! - A signature is ECDSA P-256 over SHA-256 (ASN.1 DER, base64) of the
//!   "simple signing" payload that names the signed digest
//!   (<https://github.com/sigstore/cosign/blob/main/specs/SIGNATURE_SPEC.md>).
//! - It is stored as a layer (`application/vnd.dev.cosign.simplesigning.v1+json`,
//!   the signature in the `dev.cosignproject.cosign/signature` annotation) of
//!   an image manifest tagged `sha256-<hex>.sig` in the same repository.
//! - Private keys are read in the formats cosign writes and imports: its
//!   encrypted PEM (`ENCRYPTED SIGSTORE PRIVATE KEY`, or the older
//!   `ENCRYPTED COSIGN PRIVATE KEY`: scrypt, then NaCl secretbox over the
//!   PKCS#8 key, the password from `COSIGN_PASSWORD`), PKCS#8 and SEC1 PEM.
//!   Public keys are PEM SubjectPublicKeyInfo, as `cosign.pub`.
//!
//! The cryptography is RustCrypto's (`p256`, `scrypt`, `crypto_secretbox`);
//! only the encodings are here. Verification is the one workload images get
//! ([`palisade_sigstore::cosign::verify_legacy`]), so a policy bundle may be
//! signed with any key type cosign uses (ECDSA, RSA, Ed25519).

use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use crypto_secretbox::aead::{Aead, KeyInit};
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use p256::pkcs8::der::pem;
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey};
use rand_core::{OsRng, RngCore};
use serde::{Deserialize, Serialize};

use super::content::Content;
use super::{
    Descriptor, Error, IMAGE_CONFIG_MEDIA_TYPE, MANIFEST_MEDIA_TYPE, Manifest, Result, SIMPLE_SIGNING_MEDIA_TYPE,
    annotations,
};

const SIGNATURE_TYPE: &str = "cosign container image signature";
const ENCRYPTED_LABELS: [&str; 2] = ["ENCRYPTED SIGSTORE PRIVATE KEY", "ENCRYPTED COSIGN PRIVATE KEY"];

pub struct PrivateKey(SigningKey);

#[derive(Clone)]
pub struct PublicKey {
    key: palisade_sigstore::keys::PublicKey,
    /// Where the key came from, for messages.
    pub name: String,
}

impl PublicKey {
    /// The first 16 hex digits of the SHA-256 of the key's DER form.
    pub fn fingerprint(&self) -> String {
        crate::runtime::sha256_hex(self.key.der())[..16].to_string()
    }
}

fn key_error(path: &Path, message: impl std::fmt::Display) -> Error {
    Error::Signature(format!("{}: {message}", path.display()))
}

#[derive(Serialize, Deserialize)]
struct Encrypted {
    kdf: Kdf,
    cipher: Cipher,
    ciphertext: String,
}

#[derive(Serialize, Deserialize)]
struct Kdf {
    name: String,
    params: ScryptParams,
    salt: String,
}

#[derive(Serialize, Deserialize)]
struct ScryptParams {
    #[serde(rename = "N")]
    n: u64,
    r: u32,
    p: u32,
}

#[derive(Serialize, Deserialize)]
struct Cipher {
    name: String,
    nonce: String,
}

fn secretbox_key(password: &[u8], salt: &[u8], params: &ScryptParams) -> std::result::Result<[u8; 32], String> {
    if !params.n.is_power_of_two() || params.n < 2 || params.n > 1 << 22 {
        return Err(format!("scrypt N={} is not a power of two in the range cosign uses", params.n));
    }
    let log_n = params.n.trailing_zeros() as u8;
    let params = scrypt::Params::new(log_n, params.r, params.p, 32).map_err(|e| format!("scrypt parameters: {e}"))?;
    let mut key = [0u8; 32];
    scrypt::scrypt(password, salt, &params, &mut key).map_err(|e| format!("scrypt: {e}"))?;
    Ok(key)
}

fn decrypt(body: &[u8], password: &[u8]) -> std::result::Result<Vec<u8>, String> {
    let sealed: Encrypted =
        serde_json::from_slice(body).map_err(|e| format!("not cosign's encrypted key format: {e}"))?;
    if sealed.kdf.name != "scrypt" || sealed.cipher.name != "nacl/secretbox" {
        return Err(format!("unsupported key encryption {} / {}", sealed.kdf.name, sealed.cipher.name));
    }
    let decode = |what: &str, text: &str| BASE64.decode(text).map_err(|e| format!("{what} is not base64: {e}"));
    let salt = decode("salt", &sealed.kdf.salt)?;
    let nonce = decode("nonce", &sealed.cipher.nonce)?;
    let ciphertext = decode("ciphertext", &sealed.ciphertext)?;
    if nonce.len() != 24 {
        return Err("the nonce is not 24 bytes".into());
    }
    let key = secretbox_key(password, &salt, &sealed.kdf.params)?;
    let cipher = crypto_secretbox::XSalsa20Poly1305::new(&key.into());
    cipher
        .decrypt(crypto_secretbox::Nonce::from_slice(&nonce), ciphertext.as_slice())
        .map_err(|_| "wrong password (set COSIGN_PASSWORD), or the key file is damaged".to_string())
}

fn encrypt(plaintext: &[u8], password: &[u8]) -> std::result::Result<Vec<u8>, String> {
    let mut salt = [0u8; 32];
    let mut nonce = [0u8; 24];
    OsRng.fill_bytes(&mut salt);
    OsRng.fill_bytes(&mut nonce);
    // cosign's own defaults for new keys.
    let params = ScryptParams { n: 65536, r: 8, p: 1 };
    let key = secretbox_key(password, &salt, &params)?;
    let cipher = crypto_secretbox::XSalsa20Poly1305::new(&key.into());
    let ciphertext = cipher
        .encrypt(crypto_secretbox::Nonce::from_slice(&nonce), plaintext)
        .map_err(|_| "encryption failed".to_string())?;
    let sealed = Encrypted {
        kdf: Kdf { name: "scrypt".into(), params, salt: BASE64.encode(salt) },
        cipher: Cipher { name: "nacl/secretbox".into(), nonce: BASE64.encode(nonce) },
        ciphertext: BASE64.encode(ciphertext),
    };
    serde_json::to_vec(&sealed).map_err(|e| e.to_string())
}

/// The password for an encrypted key: `COSIGN_PASSWORD`, as cosign reads it
/// (unset means the empty password).
pub fn password_from_env() -> Vec<u8> {
    std::env::var_os("COSIGN_PASSWORD").map(|p| p.into_encoded_bytes()).unwrap_or_default()
}

pub fn read_private_key(path: &Path, password: &[u8]) -> Result<PrivateKey> {
    let text = std::fs::read(path).map_err(|e| key_error(path, format!("cannot read the key: {e}")))?;
    let (label, body) = pem::decode_vec(&text).map_err(|e| key_error(path, format!("not a PEM key: {e}")))?;
    let key = if ENCRYPTED_LABELS.contains(&label) {
        let der = decrypt(&body, password).map_err(|e| key_error(path, e))?;
        SigningKey::from_pkcs8_der(&der).map_err(|e| key_error(path, format!("not an ECDSA P-256 key: {e}")))?
    } else if label == "PRIVATE KEY" {
        SigningKey::from_pkcs8_der(&body).map_err(|e| key_error(path, format!("not an ECDSA P-256 key: {e}")))?
    } else if label == "EC PRIVATE KEY" {
        p256::SecretKey::from_sec1_der(&body)
            .map(SigningKey::from)
            .map_err(|e| key_error(path, format!("not an ECDSA P-256 key: {e}")))?
    } else {
        return Err(key_error(path, format!("a PEM {label:?}, not a private key")));
    };
    Ok(PrivateKey(key))
}

pub fn read_public_key(path: &Path) -> Result<PublicKey> {
    let text = std::fs::read_to_string(path).map_err(|e| key_error(path, format!("cannot read the key: {e}")))?;
    let key = palisade_sigstore::keys::PublicKey::from_pem(&text)
        .map_err(|e| key_error(path, format!("not a PEM public key (ECDSA, RSA or Ed25519, as cosign.pub): {e}")))?;
    Ok(PublicKey { key, name: path.display().to_string() })
}

/// A new key pair: cosign's encrypted private key PEM and the public key PEM.
pub fn generate(password: &[u8]) -> Result<(String, String)> {
    let key = SigningKey::random(&mut OsRng);
    let der = key.to_pkcs8_der().map_err(|e| Error::Signature(format!("encoding the key: {e}")))?;
    let sealed = encrypt(der.as_bytes(), password).map_err(Error::Signature)?;
    let private = pem::encode_string(ENCRYPTED_LABELS[0], pem::LineEnding::LF, &sealed)
        .map_err(|e| Error::Signature(format!("encoding the key: {e}")))?;
    let public = key
        .verifying_key()
        .to_public_key_pem(pem::LineEnding::LF)
        .map_err(|e| Error::Signature(format!("encoding the key: {e}")))?;
    Ok((private, public))
}

/// The simple signing payload for `digest` in `repository`.
pub fn payload(repository: &str, digest: &str) -> Vec<u8> {
    serde_json::json!({
        "critical": {
            "identity": {"docker-reference": repository},
            "image": {"docker-manifest-digest": digest},
            "type": SIGNATURE_TYPE,
        },
        "optional": null,
    })
    .to_string()
    .into_bytes()
}

/// The signature manifest with one more signature of `digest` added to those
/// already there (`existing`), as cosign appends them.
pub fn sign(key: &PrivateKey, repository: &str, digest: &str, existing: Option<&Content>) -> Result<Content> {
    let payload = payload(repository, digest);
    let signature: Signature = key.0.sign(&payload);
    let signature = BASE64.encode(signature.to_der().as_bytes());
    let mut pieces: Vec<(Descriptor, Vec<u8>)> = Vec::new();
    let mut layers = Vec::new();
    if let Some(existing) = existing {
        let manifest: Manifest = serde_json::from_slice(existing.root_bytes())
            .map_err(|e| Error::Format(format!("the existing signature manifest: {e}")))?;
        for layer in manifest.layers {
            if let Some(bytes) = existing.get(&layer.digest)
                && layer.media_type == SIMPLE_SIGNING_MEDIA_TYPE
            {
                pieces.push((layer.clone(), bytes.to_vec()));
                layers.push(layer);
            }
        }
    }
    let mut layer = Descriptor::of(SIMPLE_SIGNING_MEDIA_TYPE, &payload);
    layer.annotations = Some(BTreeMap::from([(annotations::COSIGN_SIGNATURE.to_string(), signature)]));
    if !layers.contains(&layer) {
        pieces.push((layer.clone(), payload));
        layers.push(layer);
    }
    let config = serde_json::json!({
        "architecture": "",
        "config": {},
        "created": "0001-01-01T00:00:00Z",
        "history": [{"created": "0001-01-01T00:00:00Z"}],
        "os": "",
        "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|l| l.digest.clone()).collect::<Vec<_>>()},
    })
    .to_string()
    .into_bytes();
    let config_descriptor = Descriptor::of(IMAGE_CONFIG_MEDIA_TYPE, &config);
    pieces.insert(0, (config_descriptor.clone(), config));
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(MANIFEST_MEDIA_TYPE.into()),
        config: config_descriptor,
        layers,
        annotations: None,
    };
    let bytes = serde_json::to_vec(&manifest).map_err(|e| Error::Format(e.to_string()))?;
    let root = Descriptor::of(MANIFEST_MEDIA_TYPE, &bytes);
    pieces.push((root.clone(), bytes));
    Ok(Content { root, pieces })
}

/// Which key verified a signature of `digest` among `signatures`, or every
/// reason none did.
pub fn verify(signatures: &Content, digest: &str, keys: &[PublicKey]) -> Result<PublicKey> {
    use palisade_sigstore::Error as E;
    use palisade_sigstore::cosign::{LegacySignature, verify_legacy};
    use palisade_sigstore::identity::Authority;
    let manifest: Manifest = serde_json::from_slice(signatures.root_bytes())
        .map_err(|e| Error::Signature(format!("signature manifest {}: not a manifest: {e}", signatures.root.digest)))?;
    let mut failures = Vec::new();
    for (n, layer) in manifest.layers.iter().enumerate().filter(|(_, l)| l.media_type == SIMPLE_SIGNING_MEDIA_TYPE) {
        let which = format!("signature {}", n + 1);
        let Some(payload) = signatures.get(&layer.digest) else {
            failures.push(format!("{which}: its payload is missing"));
            continue;
        };
        let Some(signature) = layer.annotation(annotations::COSIGN_SIGNATURE) else {
            failures.push(format!("{which}: no {} annotation", annotations::COSIGN_SIGNATURE));
            continue;
        };
        let signature =
            LegacySignature { payload: payload.to_vec(), signature: signature.to_string(), ..Default::default() };
        // The reason that got furthest: signed by a trusted key, but for something else.
        let mut reason = format!("{which}: made with none of the trusted keys");
        for key in keys {
            let authority = Authority::Key { key: key.key.clone(), require_tlog: false };
            match verify_legacy(&signature, digest, None, &authority) {
                Ok(_) => return Ok(key.clone()),
                Err(E::BadSignature(_)) => {}
                Err(e @ E::Malformed { what: "cosign signature", .. }) => reason = format!("{which}: {e}"),
                Err(e) => {
                    reason = format!("{which}: signed by {} but not for {digest}: {e}", key.name);
                    break;
                }
            }
        }
        failures.push(reason);
    }
    if failures.is_empty() {
        failures.push("the signature manifest holds no signatures".into());
    }
    Err(Error::Signature(format!(
        "{digest}: no valid signature by {}: {}",
        keys.iter().map(|k| k.name.as_str()).collect::<Vec<_>>().join(", "),
        failures.join("; ")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keypair(dir: &Path, name: &str) -> (PrivateKey, PublicKey) {
        let (private, public) = generate(b"secret").unwrap();
        std::fs::write(dir.join(format!("{name}.key")), private).unwrap();
        std::fs::write(dir.join(format!("{name}.pub")), public).unwrap();
        (
            read_private_key(&dir.join(format!("{name}.key")), b"secret").unwrap(),
            read_public_key(&dir.join(format!("{name}.pub"))).unwrap(),
        )
    }

    #[test]
    fn sign_verify_and_refuse() {
        let dir = tempfile::tempdir().unwrap();
        let (private, public) = keypair(dir.path(), "a");
        let (_, other) = keypair(dir.path(), "b");
        assert!(read_private_key(&dir.path().join("a.key"), b"wrong").is_err());
        let digest = format!("sha256:{}", "1".repeat(64));
        let signed = sign(&private, "registry.example/p", &digest, None).unwrap();
        assert!(verify(&signed, &digest, std::slice::from_ref(&public)).is_ok());
        assert!(verify(&signed, &digest, std::slice::from_ref(&other)).is_err());
        let elsewhere = format!("sha256:{}", "2".repeat(64));
        let message = verify(&signed, &elsewhere, std::slice::from_ref(&public)).err().unwrap().to_string();
        assert!(message.contains(&digest), "{message}");
        // A second signature is appended; either key then verifies.
        let (private_b, _) = (read_private_key(&dir.path().join("b.key"), b"secret").unwrap(), ());
        let both = sign(&private_b, "registry.example/p", &digest, Some(&signed)).unwrap();
        assert!(verify(&both, &digest, &[other]).is_ok());
        assert!(verify(&both, &digest, &[public]).is_ok());
    }

    #[test]
    fn payload_is_cosigns() {
        let text = String::from_utf8(payload("r.example/x", "sha256:00")).unwrap();
        assert_eq!(
            text,
            r#"{"critical":{"identity":{"docker-reference":"r.example/x"},"image":{"docker-manifest-digest":"sha256:00"},"type":"cosign container image signature"},"optional":null}"#
        );
    }
}
