//! Fetching what verifying a workload image's signatures needs, from its
//! registry: the digest its reference resolves to, cosign's legacy
//! signatures (the manifest tagged `sha256-<hex>.sig`,
//! <https://github.com/sigstore/cosign/blob/main/specs/SIGNATURE_SPEC.md>) and
//! Sigstore bundles attached as OCI referrers (cosign 3,
//! `--new-bundle-format`), and, when asked, cosign's legacy attestations
//! (DSSE envelopes, the layers of the manifest tagged `sha256-<hex>.att`;
//! attestation bundles are referrers like signature bundles). Nothing here
//! verifies anything: every byte is checked against its digest and bounded
//! in size, and handed on.

use std::collections::BTreeMap;
use std::time::Instant;

use oci_client::Reference;
use serde::{Deserialize, Serialize};

use crate::bundle::registry::{Options, PullError, Registry};
use crate::bundle::{INDEX_MEDIA_TYPE, MANIFEST_MEDIA_TYPE, MAX_MANIFEST_BYTES, SIMPLE_SIGNING_MEDIA_TYPE, digest_hex};

/// Docker's image manifest (v2 schema 2), which registries still serve for many images.
pub const DOCKER_MANIFEST_MEDIA_TYPE: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker's multi-platform manifest list.
pub const DOCKER_MANIFEST_LIST_MEDIA_TYPE: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// What the artifact type of a Sigstore bundle referrer starts with
/// (`application/vnd.dev.sigstore.bundle.v0.3+json`, and the older
/// `application/vnd.dev.sigstore.bundle+json;version=0.x`).
pub const BUNDLE_ARTIFACT_TYPE_PREFIX: &str = "application/vnd.dev.sigstore.bundle";
/// The largest signature layer accepted.
pub const MAX_SIGNATURE_BYTES: u64 = 1 << 20;
/// The largest attestation layer or Sigstore bundle accepted (an SBOM can be large).
pub const MAX_ATTESTATION_BYTES: u64 = 16 << 20;
/// The most bytes of attestations and bundles read for one image.
pub const MAX_MATERIAL_BYTES: u64 = 64 << 20;
/// The media type of a layer of cosign's `.att` manifest: a DSSE envelope.
pub const DSSE_ENVELOPE_MEDIA_TYPE: &str = "application/vnd.dsse.envelope.v1+json";
/// The most simple-signing layers read from one signature manifest.
pub const MAX_SIGNATURE_LAYERS: usize = 64;
/// The most Sigstore bundle referrers read for one digest.
pub const MAX_REFERRERS: usize = 64;

/// Everything fetched about one image: what the tag resolved to and every
/// signature-like thing attached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Material {
    /// The reference as given, normalised (`registry/repository:tag` or
    /// `@digest`, Docker Hub's defaults filled in: `nginx` is
    /// `docker.io/library/nginx:latest`). See [`normalize`].
    pub reference: String,
    /// `sha256:<hex>`: the digest of the manifest (or index) the reference
    /// names, as the registry serves it: what cosign signs.
    pub digest: String,
    /// cosign's legacy signatures: the simple-signing layers of the manifest
    /// tagged `sha256-<hex>.sig` in the same repository.
    pub legacy: Vec<LegacyLayer>,
    /// Sigstore bundles (JSON), the first layer of each referrer of the
    /// digest whose artifact type is a Sigstore bundle.
    #[serde(with = "base64_list")]
    pub bundles: Vec<Vec<u8>>,
    /// cosign's legacy attestations: the DSSE envelope layers of the manifest
    /// tagged `sha256-<hex>.att`; `None` when they were not fetched.
    #[serde(default)]
    pub attestations: Option<Vec<LegacyLayer>>,
    /// Sources skipped because what the registry served broke the rules.
    #[serde(default)]
    pub problems: Vec<String>,
}

/// One layer of a cosign signature manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LegacyLayer {
    /// The layer blob: the simple-signing payload that was signed (a
    /// signature), or the DSSE envelope (an attestation).
    #[serde(with = "base64_bytes")]
    pub payload: Vec<u8>,
    /// The layer's annotations as the manifest has them:
    /// `dev.cosignproject.cosign/signature` (base64), `dev.sigstore.cosign/certificate`,
    /// `dev.sigstore.cosign/chain`, `dev.sigstore.cosign/bundle`,
    /// `dev.sigstore.cosign/rfc3161timestamp`, and any others.
    pub annotations: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// The image reference cannot be read.
    #[error("{0}")]
    InvalidReference(String),
    /// The registry could not be asked: connection refused, TLS failure, timeout, 5xx, access denied.
    #[error("{0}")]
    Unreachable(String),
    /// The registry has no such repository or tag.
    #[error("{0}")]
    NotFound(String),
    /// The deadline passed before everything was fetched.
    #[error("the deadline for fetching image signatures passed")]
    Deadline,
    /// Offline, and nothing cached for the image.
    #[error("{0}")]
    Offline(String),
    /// The registry (or the cache) holds something that breaks the rules:
    /// content not matching its digest, over a bound, not the JSON it should be.
    #[error("{0}")]
    Malformed(String),
}

/// Read an image reference as Kubernetes and Docker do (Docker Hub's
/// defaults, `:latest` when there is neither tag nor digest). A digest must
/// be `sha256:<64 lowercase hex>`.
pub fn parse(image: &str) -> Result<Reference, FetchError> {
    let reference: Reference =
        image.parse().map_err(|e| FetchError::InvalidReference(format!("{image:?} is not an image reference: {e}")))?;
    if let Some(digest) = reference.digest() {
        digest_hex(digest).map_err(|e| FetchError::InvalidReference(format!("{image:?}: {e}")))?;
    }
    Ok(reference)
}

/// The normalised form of an image reference (what [`Material::reference`] holds).
pub fn normalize(image: &str) -> Result<String, FetchError> {
    Ok(parse(image)?.whole())
}

fn pull_error(image: &str, e: PullError) -> FetchError {
    match e {
        PullError::NotFound(m) => FetchError::NotFound(format!("{image}: {m}")),
        PullError::Unreachable(m) => FetchError::Unreachable(format!("{image}: {m}")),
        PullError::Malformed(m) => FetchError::Malformed(format!("{image}: {m}")),
        PullError::Deadline => FetchError::Deadline,
    }
}

/// Fetch the digest `image` resolves to and every signature attached to it,
/// and its legacy attestations too when `attestations` is set.
///
/// No signatures is not an error (empty lists). Every network step stops at
/// `deadline`. Credentials and extra CAs are the bundle commands' ones
/// ([`crate::bundle::registry`]). Safe to call from plain threads, from
/// `spawn_blocking`, and (though it blocks the thread) from async code: the
/// registry client runs on a private runtime, on a thread of its own when
/// the caller's thread belongs to a tokio runtime.
pub fn fetch(
    image: &str,
    options: &Options,
    deadline: Option<Instant>,
    attestations: bool,
) -> Result<Material, FetchError> {
    let reference = parse(image)?;
    if deadline.is_some_and(|d| Instant::now() >= d) {
        return Err(FetchError::Deadline);
    }
    if tokio::runtime::Handle::try_current().is_err() {
        return fetch_reference(&reference, options, deadline, attestations);
    }
    // Inside a runtime's worker, starting another runtime panics; on a
    // blocking-pool thread it would not, but a thread of our own is safe
    // wherever we are.
    std::thread::scope(|scope| {
        match std::thread::Builder::new()
            .name("palisade-image-fetch".into())
            .spawn_scoped(scope, || fetch_reference(&reference, options, deadline, attestations))
        {
            Ok(thread) => thread.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            Err(e) => Err(FetchError::Unreachable(format!("{}: cannot start a thread to fetch it: {e}", reference))),
        }
    })
}

fn fetch_reference(
    reference: &Reference,
    options: &Options,
    deadline: Option<Instant>,
    attestations: bool,
) -> Result<Material, FetchError> {
    let image = reference.whole();
    let registry = Registry::connect(reference, options)
        .map_err(|e| FetchError::Unreachable(format!("{image}: cannot set up the registry client: {e}")))?;
    let material = fetch_with(&registry, reference, deadline, attestations);
    registry.close();
    material
}

fn fetch_with(
    registry: &Registry,
    reference: &Reference,
    deadline: Option<Instant>,
    attestations: bool,
) -> Result<Material, FetchError> {
    let image = reference.whole();
    let digest = resolve(registry, reference, deadline).map_err(|e| pull_error(&image, e))?;
    // A source that breaks the rules (content not matching its digest, over
    // a bound) is skipped, not fatal: the other may hold a valid signature,
    // and a registry cannot turn "not signed" into "undecided" with it.
    let mut problems = Vec::new();
    let mut budget = MAX_MATERIAL_BYTES;
    let legacy = skip_malformed(
        legacy_layers(registry, &digest, &SIGNATURES, deadline, &mut budget),
        &image,
        "the cosign signature tag",
        &mut problems,
    )?;
    let bundles = skip_malformed(
        referrer_bundles(registry, &digest, deadline, &mut budget),
        &image,
        "the Sigstore bundle referrers",
        &mut problems,
    )?;
    let attestations = if attestations {
        Some(skip_malformed(
            legacy_layers(registry, &digest, &ATTESTATIONS, deadline, &mut budget),
            &image,
            "the cosign attestation tag",
            &mut problems,
        )?)
    } else {
        None
    };
    Ok(Material { reference: image, digest, legacy, bundles, attestations, problems })
}

/// A source whose content breaks the rules is an empty source and a problem
/// noted; unreachable or missing stays an error.
fn skip_malformed<T>(
    result: Result<Vec<T>, PullError>,
    image: &str,
    what: &str,
    problems: &mut Vec<String>,
) -> Result<Vec<T>, FetchError> {
    match result {
        Err(PullError::Malformed(m)) => {
            problems.push(format!("{what} skipped: {m}"));
            Ok(Vec::new())
        }
        other => other.map_err(|e| pull_error(image, e)),
    }
}

/// The top level of a manifest or index: enough to know what it is.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Versioned {
    schema_version: u32,
    #[serde(default)]
    media_type: Option<String>,
}

/// The digest of what the reference names: the bytes the registry serves
/// for the tag (or for the digest, which must match), never a platform's
/// manifest inside an index.
fn resolve(registry: &Registry, reference: &Reference, deadline: Option<Instant>) -> Result<String, PullError> {
    let accept = [INDEX_MEDIA_TYPE, MANIFEST_MEDIA_TYPE, DOCKER_MANIFEST_LIST_MEDIA_TYPE, DOCKER_MANIFEST_MEDIA_TYPE];
    let bytes = registry.pull_manifest_until(reference, &accept, deadline)?;
    let versioned: Versioned = serde_json::from_slice(&bytes)
        .map_err(|e| PullError::Malformed(format!("the image manifest is not a manifest or index: {e}")))?;
    if versioned.schema_version != 2 {
        return Err(PullError::Malformed(format!(
            "the image manifest has schema version {} (only version 2, which cosign signs, is read)",
            versioned.schema_version
        )));
    }
    if let Some(media_type) = &versioned.media_type
        && !accept.contains(&media_type.as_str())
    {
        return Err(PullError::Malformed(format!("the image manifest has the media type {media_type:?}")));
    }
    // pull_manifest_until checked the bytes against a digest in the reference.
    Ok(crate::bundle::digest_of(&bytes))
}

/// The tag cosign keeps signatures of `digest` under.
pub fn signature_tag(digest: &str) -> Result<String, FetchError> {
    crate::bundle::layout::signature_tag(digest).map_err(|e| FetchError::Malformed(e.to_string()))
}

/// One kind of cosign's legacy attachments: the tag suffix, the media type
/// of its layers, and the largest layer read.
struct LegacyKind {
    what: &'static str,
    suffix: &'static str,
    media_type: &'static str,
    max_bytes: u64,
}

const SIGNATURES: LegacyKind = LegacyKind {
    what: "signature",
    suffix: "sig",
    media_type: SIMPLE_SIGNING_MEDIA_TYPE,
    max_bytes: MAX_SIGNATURE_BYTES,
};
const ATTESTATIONS: LegacyKind = LegacyKind {
    what: "attestation",
    suffix: "att",
    media_type: DSSE_ENVELOPE_MEDIA_TYPE,
    max_bytes: MAX_ATTESTATION_BYTES,
};

/// The tag cosign keeps attestations of `digest` under.
pub fn attestation_tag(digest: &str) -> Result<String, FetchError> {
    Ok(format!("sha256-{}.att", digest_hex(digest).map_err(|e| FetchError::Malformed(e.to_string()))?))
}

/// The layers of the manifest tagged `sha256-<hex>.<suffix>` that have the
/// kind's media type; none when there is no such tag. `budget`: the bytes
/// the image may still read.
fn legacy_layers(
    registry: &Registry,
    digest: &str,
    kind: &LegacyKind,
    deadline: Option<Instant>,
    budget: &mut u64,
) -> Result<Vec<LegacyLayer>, PullError> {
    let tag =
        format!("sha256-{}.{}", digest_hex(digest).map_err(|e| PullError::Malformed(e.to_string()))?, kind.suffix);
    let bytes = match registry.pull_manifest_until(
        &registry.at_tag(&tag),
        &[MANIFEST_MEDIA_TYPE, DOCKER_MANIFEST_MEDIA_TYPE],
        deadline,
    ) {
        Ok(bytes) => bytes,
        Err(PullError::NotFound(_)) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let manifest: crate::bundle::Manifest = serde_json::from_slice(&bytes)
        .map_err(|e| PullError::Malformed(format!("the {} manifest {tag} is not an image manifest: {e}", kind.what)))?;
    let layers: Vec<_> = manifest.layers.iter().filter(|l| l.media_type == kind.media_type).collect();
    if layers.len() > MAX_SIGNATURE_LAYERS {
        return Err(PullError::Malformed(format!(
            "the {} manifest {tag} has {} {}s; at most {MAX_SIGNATURE_LAYERS} are read",
            kind.what,
            layers.len(),
            kind.what
        )));
    }
    let mut found = Vec::with_capacity(layers.len());
    for layer in layers {
        let limit = kind.max_bytes.min(*budget);
        let payload =
            registry.pull_blob_until(&layer.digest, layer.size, limit, deadline).map_err(|e| in_signature(&tag, e))?;
        *budget = budget.saturating_sub(payload.len() as u64);
        found.push(LegacyLayer { payload, annotations: layer.annotations.clone().unwrap_or_default() });
    }
    Ok(found)
}

/// A blob the signature manifest names but the registry lacks is a broken
/// signature, not a missing image.
fn in_signature(what: &str, e: PullError) -> PullError {
    match e {
        PullError::NotFound(m) => PullError::Malformed(format!("{what} names content the registry does not have: {m}")),
        e => e,
    }
}

/// A referrer manifest: what it is, what it refers to, its layers.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReferrerManifest {
    #[serde(default)]
    artifact_type: Option<String>,
    config: crate::bundle::Descriptor,
    layers: Vec<crate::bundle::Descriptor>,
    #[serde(default)]
    subject: Option<crate::bundle::Descriptor>,
}

fn referrer_bundles(
    registry: &Registry,
    digest: &str,
    deadline: Option<Instant>,
    budget: &mut u64,
) -> Result<Vec<Vec<u8>>, PullError> {
    let referrers = registry.referrers_until(digest, deadline)?;
    let candidates: Vec<_> = referrers
        .iter()
        .filter(|r| r.artifact_type.as_deref().is_some_and(|t| t.starts_with(BUNDLE_ARTIFACT_TYPE_PREFIX)))
        .collect();
    if candidates.len() > MAX_REFERRERS {
        return Err(PullError::Malformed(format!(
            "{digest} has {} Sigstore bundle referrers; at most {MAX_REFERRERS} are read",
            candidates.len()
        )));
    }
    let mut bundles = Vec::with_capacity(candidates.len());
    for entry in candidates {
        let what = format!("the referrer {}", entry.digest);
        digest_hex(&entry.digest).map_err(|e| PullError::Malformed(format!("{what}: {e}")))?;
        if entry.media_type != MANIFEST_MEDIA_TYPE {
            return Err(PullError::Malformed(format!("{what} has the media type {:?}", entry.media_type)));
        }
        if !(0..=MAX_MANIFEST_BYTES as i64).contains(&entry.size) {
            return Err(PullError::Malformed(format!("{what} is {} bytes", entry.size)));
        }
        let bytes = registry
            .pull_manifest_until(&registry.at_digest(&entry.digest), &[MANIFEST_MEDIA_TYPE], deadline)
            .map_err(|e| in_signature(&what, e))?;
        if bytes.len() as i64 != entry.size {
            return Err(PullError::Malformed(format!(
                "{what} is {} bytes, but the referrers list says {}",
                bytes.len(),
                entry.size
            )));
        }
        let manifest: ReferrerManifest = serde_json::from_slice(&bytes)
            .map_err(|e| PullError::Malformed(format!("{what} is not an image manifest: {e}")))?;
        let artifact_type = manifest.artifact_type.as_deref().unwrap_or(&manifest.config.media_type);
        // Listed as a bundle for this digest but not one, or about something
        // else: not a bundle of this image.
        if !artifact_type.starts_with(BUNDLE_ARTIFACT_TYPE_PREFIX)
            || manifest.subject.as_ref().is_none_or(|s| s.digest != digest)
        {
            continue;
        }
        let Some(layer) = manifest.layers.first() else {
            return Err(PullError::Malformed(format!("{what} has no layers (the bundle is its first)")));
        };
        let limit = MAX_ATTESTATION_BYTES.min(*budget);
        let bundle =
            registry.pull_blob_until(&layer.digest, layer.size, limit, deadline).map_err(|e| in_signature(&what, e))?;
        *budget = budget.saturating_sub(bundle.len() as u64);
        bundles.push(bundle);
    }
    Ok(bundles)
}

/// Bytes as standard base64 in JSON (the cache's format).
mod base64_bytes {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(deserializer)?;
        STANDARD.decode(text).map_err(serde::de::Error::custom)
    }
}

mod base64_list {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::ser::SerializeSeq;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(list: &[Vec<u8>], serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(list.len()))?;
        for bytes in list {
            seq.serialize_element(&STANDARD.encode(bytes))?;
        }
        seq.end()
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<Vec<u8>>, D::Error> {
        let texts = Vec::<String>::deserialize(deserializer)?;
        texts.into_iter().map(|text| STANDARD.decode(text).map_err(serde::de::Error::custom)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_normalised() {
        let digest = format!("sha256:{}", "a".repeat(64));
        let cases = [
            ("nginx", "docker.io/library/nginx:latest".to_string()),
            ("nginx:1.27", "docker.io/library/nginx:1.27".to_string()),
            ("library/nginx:1.27", "docker.io/library/nginx:1.27".to_string()),
            ("index.docker.io/library/nginx", "docker.io/library/nginx:latest".to_string()),
            ("bitnami/redis:7", "docker.io/bitnami/redis:7".to_string()),
            ("ghcr.io/org/app:v1", "ghcr.io/org/app:v1".to_string()),
            ("localhost/app", "localhost/app:latest".to_string()),
            ("127.0.0.1:5000/x/y:1", "127.0.0.1:5000/x/y:1".to_string()),
            (&format!("registry.k8s.io/pause@{digest}") as &str, format!("registry.k8s.io/pause@{digest}")),
            (&format!("nginx:1.27@{digest}"), format!("docker.io/library/nginx:1.27@{digest}")),
        ];
        for (given, expected) in cases {
            assert_eq!(normalize(given).as_deref(), Ok(expected.as_str()), "{given}");
        }
        for bad in [
            "",
            "Nginx",
            "nginx:",
            "ghcr.io/org/app@sha256:abc",
            &format!("nginx@sha256:{}", "A".repeat(64)),
            &format!("nginx@sha512:{}", "a".repeat(128)),
            "a b",
        ] {
            assert!(matches!(normalize(bad), Err(FetchError::InvalidReference(_))), "{bad:?}: {:?}", normalize(bad));
        }
        assert_eq!(signature_tag(&digest).as_deref(), Ok(format!("sha256-{}.sig", "a".repeat(64)).as_str()));
    }

    #[test]
    fn material_is_json_with_base64() {
        let material = Material {
            reference: "docker.io/library/nginx:latest".into(),
            digest: format!("sha256:{}", "b".repeat(64)),
            legacy: vec![LegacyLayer {
                payload: b"{\"critical\":{}}".to_vec(),
                annotations: BTreeMap::from([("dev.cosignproject.cosign/signature".into(), "MEUC".into())]),
            }],
            bundles: vec![vec![0, 1, 2, 255]],
            attestations: None,
            problems: Vec::new(),
        };
        let json = serde_json::to_value(&material).unwrap();
        assert_eq!(json["bundles"][0], "AAEC/w==");
        assert_eq!(json["legacy"][0]["payload"], "eyJjcml0aWNhbCI6e319");
        assert_eq!(serde_json::from_value::<Material>(json).unwrap(), material);
    }

    /// Nothing listens on the port: Unreachable, from a plain thread, from
    /// `spawn_blocking` and from inside async code alike (no nested-runtime
    /// panic); a passed deadline is Deadline.
    #[test]
    fn unreachable_from_any_thread() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let image = format!("127.0.0.1:{port}/nothing:1");
        let options = Options { insecure: true, ca_files: Vec::new() };
        let soon = Some(Instant::now() + std::time::Duration::from_secs(20));
        assert!(matches!(fetch(&image, &options, soon, false), Err(FetchError::Unreachable(_))));
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let (i, o) = (image.clone(), options.clone());
        let blocking =
            runtime.block_on(async { tokio::task::spawn_blocking(move || fetch(&i, &o, soon, false)).await }).unwrap();
        assert!(matches!(blocking, Err(FetchError::Unreachable(_))), "{blocking:?}");
        let (i, o) = (image.clone(), options.clone());
        let in_task =
            runtime.block_on(async { tokio::spawn(async move { fetch(&i, &o, soon, false) }).await }).unwrap();
        assert!(matches!(in_task, Err(FetchError::Unreachable(_))), "{in_task:?}");
        let current = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let (i, o) = (image.clone(), options.clone());
        let blocking =
            current.block_on(async { tokio::task::spawn_blocking(move || fetch(&i, &o, soon, false)).await }).unwrap();
        assert!(matches!(blocking, Err(FetchError::Unreachable(_))), "{blocking:?}");
        assert_eq!(fetch(&image, &options, Some(Instant::now()), false), Err(FetchError::Deadline));
        let message = fetch(&image, &options, None, false).unwrap_err().to_string();
        assert!(message.contains(&image), "{message}");
    }

    /// A listener that accepts and never answers: the deadline stops the fetch.
    #[test]
    fn deadline_stops_a_silent_registry() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let image = format!("{}/silent:1", listener.local_addr().unwrap());
        let options = Options { insecure: true, ca_files: Vec::new() };
        let start = Instant::now();
        let result = fetch(&image, &options, Some(start + std::time::Duration::from_millis(300)), false);
        assert_eq!(result, Err(FetchError::Deadline));
        assert!(start.elapsed() < std::time::Duration::from_secs(5), "{:?}", start.elapsed());
        drop(listener);
    }
}
