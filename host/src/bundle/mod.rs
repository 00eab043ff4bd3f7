//! Policy bundles as OCI artifacts: built from components, kept in OCI image
//! layouts (directories or tarballs) and registries, cached by digest, signed
//! and verified the way cosign does it with keys.
//!
//! Each policy is one artifact in the CNCF TAG Runtime Wasm OCI format (config
//! `application/vnd.wasm.config.v0+json`, one `application/wasm` layer:
//! <https://tag-runtime.cncf.io/wgs/wasm/deliverables/wasm-oci-artifact/>); a
//! bundle is an OCI image index of those manifests, annotated with its name,
//! version and the WIT contract it needs
//! (<https://github.com/opencontainers/image-spec/blob/v1.1.0/image-index.md>).
//!
//! [`reference`] names where content is, [`content`] holds a root and every
//! piece it references, each checked against its digest; [`layout`],
//! [`store`] and [`registry`] read and write it; [`assemble`] makes a bundle
//! from components; [`signature`] signs and verifies; [`source`] strings them
//! together for the commands and for `check`/`serve --bundle`.

pub mod assemble;
pub mod content;
pub mod layout;
pub mod reference;
pub mod registry;
pub mod signature;
pub mod source;
pub mod store;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub const INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";
pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
pub const WASM_CONFIG_MEDIA_TYPE: &str = "application/vnd.wasm.config.v0+json";
pub const WASM_LAYER_MEDIA_TYPE: &str = "application/wasm";
pub const IMAGE_CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";
/// The layer of a cosign signature manifest: the simple signing payload.
pub const SIMPLE_SIGNING_MEDIA_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";

/// The WIT package every Palisade policy implements, as bundles record it.
pub const CONTRACT_PACKAGE: &str = "palisade:policy";
/// The contract version this host implements (`wit/policy.wit`).
pub const CONTRACT_VERSION: &str = crate::runtime::CONTRACTS[0];

pub mod annotations {
    pub const TITLE: &str = "org.opencontainers.image.title";
    pub const VERSION: &str = "org.opencontainers.image.version";
    pub const DESCRIPTION: &str = "org.opencontainers.image.description";
    pub const SOURCE: &str = "org.opencontainers.image.source";
    pub const LICENSES: &str = "org.opencontainers.image.licenses";
    pub const CREATED: &str = "org.opencontainers.image.created";
    pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
    pub const POLICY_ID: &str = "io.palisade.policy.id";
    pub const POLICY_SEVERITY: &str = "io.palisade.policy.severity";
    pub const POLICY_CATEGORY: &str = "io.palisade.policy.category";
    pub const POLICY_KINDS: &str = "io.palisade.policy.kinds";
    pub const BUNDLE_NAME: &str = "io.palisade.bundle.name";
    pub const BUNDLE_VERSION: &str = "io.palisade.bundle.version";
    /// `palisade:policy@<semver>`: the contract every policy in the bundle was built against.
    pub const CONTRACT: &str = "io.palisade.contract";
    /// Where cosign keeps a signature of the payload, on the payload layer.
    pub const COSIGN_SIGNATURE: &str = "dev.cosignproject.cosign/signature";
}

/// The largest manifest or index accepted (the distribution spec lets
/// registries refuse manifests over 4 MiB).
pub const MAX_MANIFEST_BYTES: u64 = 4 << 20;
/// The largest blob accepted: a policy component is a few hundred KiB.
pub const MAX_BLOB_BYTES: u64 = 64 << 20;
/// The most manifests one bundle may reference.
pub const MAX_ENTRIES: usize = 1024;

/// Errors of the bundle layer; each names what it was about.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{what}: content does not match its digest (expected {expected}, got {actual})")]
    Digest { what: String, expected: String, actual: String },
    #[error("{0}")]
    Format(String),
    #[error("{path}: {message}")]
    Io { path: String, message: String },
    #[error("{reference}: {message}")]
    Registry { reference: String, message: String },
    #[error("{0}")]
    Signature(String),
    #[error("{0}")]
    Contract(String),
    /// Content the cache lacks, when there is no registry to ask.
    #[error("{0}: not in the local cache, and no registry to fetch it from")]
    NotCached(String),
}

pub type Result<T> = std::result::Result<T, Error>;

pub(crate) fn io_error(path: &std::path::Path, e: impl std::fmt::Display) -> Error {
    Error::Io { path: path.display().to_string(), message: e.to_string() }
}

/// `sha256:<hex>` of some bytes.
pub fn digest_of(bytes: &[u8]) -> String {
    format!("sha256:{}", crate::runtime::sha256_hex(bytes))
}

/// The hex part of a `sha256:<64 hex>` digest, or an error for anything else
/// (which also keeps digests safe to use as file names).
pub fn digest_hex(digest: &str) -> Result<&str> {
    match digest.strip_prefix("sha256:") {
        Some(hex) if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) => {
            Ok(hex)
        }
        _ => Err(Error::Format(format!("{digest:?} is not a sha256 digest (sha256:<64 lowercase hex digits>)"))),
    }
}

/// Check bytes against the descriptor that named them.
pub fn check_digest(what: &str, descriptor: &Descriptor, bytes: &[u8]) -> Result<()> {
    check_hashed(what, descriptor, digest_of(bytes), bytes.len() as u64)
}

/// [`check_digest`] for content hashed as it was read: `actual` is its
/// digest, `size` how many bytes it had.
pub fn check_hashed(what: &str, descriptor: &Descriptor, actual: String, size: u64) -> Result<()> {
    if actual != descriptor.digest {
        return Err(Error::Digest { what: what.to_string(), expected: descriptor.digest.clone(), actual });
    }
    if size != descriptor.size {
        return Err(Error::Format(format!("{what}: {size} bytes, but its descriptor says {}", descriptor.size)));
    }
    Ok(())
}

/// An OCI content descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

impl Descriptor {
    pub fn of(media_type: &str, bytes: &[u8]) -> Descriptor {
        Descriptor {
            media_type: media_type.to_string(),
            digest: digest_of(bytes),
            size: bytes.len() as u64,
            platform: None,
            annotations: None,
        }
    }

    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations.as_ref()?.get(key).map(String::as_str)
    }

    pub fn is_index(&self) -> bool {
        self.media_type == INDEX_MEDIA_TYPE
    }

    pub fn is_manifest(&self) -> bool {
        self.media_type == MANIFEST_MEDIA_TYPE
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
}

/// An OCI image manifest.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// An OCI image index.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub manifests: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

impl Index {
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations.as_ref()?.get(key).map(String::as_str)
    }
}

impl Manifest {
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations.as_ref()?.get(key).map(String::as_str)
    }
}

/// The Wasm OCI artifact config (`application/vnd.wasm.config.v0+json`).
/// `rootfs` is not part of that format; it is there so that tools which read
/// every config as an OCI image config (skopeo, the image-spec schema) accept
/// it, and it names the same single uncompressed layer.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WasmConfig {
    pub created: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    pub architecture: String,
    pub os: String,
    pub layer_digests: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component: Option<ComponentInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rootfs: Option<RootFs>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ComponentInfo {
    pub exports: Vec<String>,
    pub imports: Vec<String>,
    #[serde(default)]
    pub target: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RootFs {
    #[serde(rename = "type")]
    pub kind: String,
    pub diff_ids: Vec<String>,
}

/// Whether a bundle built for `contract` (`palisade:policy@X.Y.Z`) can run on
/// this host: the same package, and a version one of the host's contracts
/// ([`crate::runtime::CONTRACTS`]: the current one and the previous one it
/// still runs) accepts under Cargo's caret rule (same major; for 0.x the
/// same minor), no newer than it.
pub fn check_contract(contract: &str) -> Result<()> {
    let refuse = |why: &str| {
        Err(Error::Contract(format!(
            "the bundle was built for the WIT contract {contract:?}, {why}; this palisade implements \
             {CONTRACT_PACKAGE}@{CONTRACT_VERSION} (rebuild the bundle with this palisade, or use a palisade \
             that implements that contract)"
        )))
    };
    let Some((package, version)) = contract.split_once('@') else {
        return refuse("which names no version");
    };
    if package != CONTRACT_PACKAGE {
        return refuse("a different contract");
    }
    let parse = |v: &str| -> Option<(u64, u64, u64)> {
        let core = v.split(['-', '+']).next()?;
        let mut parts = core.split('.').map(|p| p.parse::<u64>().ok());
        let version = (parts.next()??, parts.next()??, parts.next()??);
        parts.next().is_none().then_some(version)
    };
    let Some(theirs) = parse(version) else {
        return refuse("whose version is not semantic");
    };
    let accepts = |ours: (u64, u64, u64)| {
        let compatible = if ours.0 == 0 { theirs.0 == 0 && theirs.1 == ours.1 } else { theirs.0 == ours.0 };
        compatible && theirs <= ours
    };
    if !crate::runtime::CONTRACTS.iter().filter_map(|v| parse(v)).any(accepts) {
        return refuse("which is incompatible");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contract_versions() {
        assert!(check_contract("palisade:policy@0.3.2").is_ok());
        assert!(check_contract("palisade:policy@0.3.1").is_ok());
        assert!(check_contract("palisade:policy@0.3.0").is_ok());
        assert!(check_contract("palisade:policy@0.2.0").is_ok());
        assert!(check_contract("palisade:policy@0.1.0").is_err());
        assert!(check_contract("palisade:policy@0.4.0").is_err());
        assert!(check_contract("palisade:policy@0.3.3").is_err());
        assert!(check_contract("palisade:policy@0.2.9").is_err());
        assert!(check_contract("palisade:policy@1.0.0").is_err());
        assert!(check_contract("other:policy@0.2.0").is_err());
        assert!(check_contract("palisade:policy").is_err());
        let message = check_contract("palisade:policy@9.0.0").unwrap_err().to_string();
        assert!(message.contains("9.0.0") && message.contains(CONTRACT_VERSION), "{message}");
    }

    #[test]
    fn digests_are_checked() {
        assert!(digest_hex("sha256:abc").is_err());
        assert!(digest_hex(&format!("sha256:{}", "A".repeat(64))).is_err());
        assert!(digest_hex(&format!("sha256:../{}", "a".repeat(61))).is_err());
        let d = Descriptor::of("x", b"hello");
        assert!(check_digest("x", &d, b"hello").is_ok());
        assert!(matches!(check_digest("x", &d, b"hellO"), Err(Error::Digest { .. })));
    }
}
