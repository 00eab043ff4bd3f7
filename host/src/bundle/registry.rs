//! Registry access through `oci-client` (the ORAS project's OCI distribution
//! client), behind a blocking interface: the commands and `Catalog` loading
//! are synchronous, and each registry gets its own small runtime.
//!
//! Credentials, first that applies: `PALISADE_REGISTRY_USERNAME` and
//! `PALISADE_REGISTRY_PASSWORD`; the Docker configuration
//! (`$DOCKER_CONFIG/config.json` or `~/.docker/config.json`, including
//! credential helpers); anonymous.

use std::path::PathBuf;

use futures_util::StreamExt;
use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
use oci_client::errors::{DigestError, OciDistributionError, OciErrorCode};
use oci_client::manifest::{ImageIndexEntry, OciDescriptor, OciImageIndex};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};

use super::content::Fetch;
use super::{Descriptor, Error, INDEX_MEDIA_TYPE, MANIFEST_MEDIA_TYPE, MAX_MANIFEST_BYTES, Result};

/// How to reach registries.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Plain HTTP instead of HTTPS (`--insecure`).
    pub insecure: bool,
    /// Extra certificate authorities (PEM) trusted for HTTPS, besides the system's.
    pub ca_files: Vec<PathBuf>,
}

pub struct Registry {
    runtime: tokio::runtime::Runtime,
    client: Client,
    auth: RegistryAuth,
    reference: Reference,
    /// Whether push access was negotiated (a pull answers a 401 by itself; a push does not).
    push_ready: std::cell::Cell<bool>,
}

/// The error with every cause, which is where "connection refused" or a
/// certificate problem is said.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

fn is_not_found(e: &OciDistributionError) -> bool {
    match e {
        OciDistributionError::ImageManifestNotFoundError(_) => true,
        OciDistributionError::RegistryError { envelope, .. } => {
            envelope.errors.iter().any(|e| matches!(e.code, OciErrorCode::ManifestUnknown | OciErrorCode::NotFound))
        }
        OciDistributionError::ServerError { code, .. } => *code == 404,
        _ => false,
    }
}

fn credentials(registry: &str) -> RegistryAuth {
    if let (Ok(user), Ok(password)) =
        (std::env::var("PALISADE_REGISTRY_USERNAME"), std::env::var("PALISADE_REGISTRY_PASSWORD"))
    {
        return RegistryAuth::Basic(user, password);
    }
    let keys: &[&str] = if registry == "docker.io" || registry == "index.docker.io" {
        &["https://index.docker.io/v1/", "index.docker.io", "docker.io"]
    } else {
        &[registry]
    };
    for key in keys {
        match docker_credential::get_credential(key) {
            Ok(docker_credential::DockerCredential::UsernamePassword(user, password)) => {
                return RegistryAuth::Basic(user, password);
            }
            // An identity token is an OAuth refresh token, which needs a token
            // exchange this client does not do; such registries take a
            // username and password (or a helper that returns them) instead.
            Ok(docker_credential::DockerCredential::IdentityToken(_)) | Err(_) => {}
        }
    }
    RegistryAuth::Anonymous
}

impl Registry {
    pub fn connect(reference: &Reference, options: &Options) -> Result<Registry> {
        // reqwest is built without a crypto provider of its own: use the ring
        // one the server side uses too (no C build). Installing twice is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut extra_root_certificates = Vec::new();
        for path in &options.ca_files {
            let data = std::fs::read(path).map_err(|e| super::io_error(path, format!("cannot read CA file: {e}")))?;
            extra_root_certificates.push(Certificate { encoding: CertificateEncoding::Pem, data });
        }
        let config = ClientConfig {
            protocol: if options.insecure { ClientProtocol::Http } else { ClientProtocol::Https },
            extra_root_certificates,
            connect_timeout: Some(std::time::Duration::from_secs(10)),
            read_timeout: Some(std::time::Duration::from_secs(60)),
            user_agent: concat!("palisade/", env!("CARGO_PKG_VERSION")),
            ..ClientConfig::default()
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::Format(format!("cannot start the registry client: {e}")))?;
        let auth = credentials(reference.resolve_registry());
        Ok(Registry {
            runtime,
            client: Client::new(config),
            auth,
            reference: reference.clone(),
            push_ready: std::cell::Cell::new(false),
        })
    }

    fn failed(&self, doing: &str, e: &dyn std::error::Error) -> Error {
        Error::Registry {
            reference: format!("oci://{}", self.reference.whole()),
            message: format!("{doing}: {}", chain(e)),
        }
    }

    pub fn at_digest(&self, digest: &str) -> Reference {
        Reference::with_digest(
            self.reference.registry().to_string(),
            self.reference.repository().to_string(),
            digest.to_string(),
        )
    }

    pub fn at_tag(&self, tag: &str) -> Reference {
        Reference::with_tag(
            self.reference.registry().to_string(),
            self.reference.repository().to_string(),
            tag.to_string(),
        )
    }

    pub fn reference(&self) -> &Reference {
        &self.reference
    }

    /// The repository as cosign names it in a signature payload.
    pub fn repository_name(&self) -> String {
        format!("{}/{}", self.reference.registry(), self.reference.repository())
    }

    fn pull_manifest(&self, reference: &Reference) -> std::result::Result<(Vec<u8>, String), OciDistributionError> {
        self.runtime
            .block_on(self.client.pull_manifest_raw(reference, &self.auth, &[INDEX_MEDIA_TYPE, MANIFEST_MEDIA_TYPE]))
            .map(|(bytes, digest)| (bytes.to_vec(), digest))
    }

    /// The descriptor and bytes of what the reference names (by tag or digest).
    pub fn resolve(&self) -> Result<(Descriptor, Vec<u8>)> {
        self.manifest_at(&self.reference.clone())?.ok_or_else(|| Error::Registry {
            reference: format!("oci://{}", self.reference.whole()),
            message: "not found".into(),
        })
    }

    /// A manifest by tag, or `None` when the registry has no such tag.
    pub fn manifest_at_tag(&self, tag: &str) -> Result<Option<(Descriptor, Vec<u8>)>> {
        self.manifest_at(&self.at_tag(tag))
    }

    fn manifest_at(&self, reference: &Reference) -> Result<Option<(Descriptor, Vec<u8>)>> {
        let (bytes, _) = match self.pull_manifest(reference) {
            Ok(found) => found,
            Err(e) if is_not_found(&e) => return Ok(None),
            Err(e) => return Err(self.failed(&format!("fetching the manifest {}", reference.whole()), &e)),
        };
        if bytes.len() as u64 > MAX_MANIFEST_BYTES {
            return Err(Error::Format(format!("{}: manifest over {MAX_MANIFEST_BYTES} bytes", reference.whole())));
        }
        #[derive(serde::Deserialize)]
        struct MediaType {
            #[serde(rename = "mediaType")]
            media_type: Option<String>,
        }
        let media_type = serde_json::from_slice::<MediaType>(&bytes)
            .map_err(|e| Error::Format(format!("{}: the manifest is not JSON: {e}", reference.whole())))?
            .media_type
            .ok_or_else(|| Error::Format(format!("{}: the manifest has no mediaType", reference.whole())))?;
        let descriptor = Descriptor::of(&media_type, &bytes);
        if let Some(digest) = reference.digest()
            && digest != descriptor.digest
        {
            return Err(Error::Digest {
                what: format!("oci://{}", reference.whole()),
                expected: digest.to_string(),
                actual: descriptor.digest,
            });
        }
        Ok(Some((descriptor, bytes)))
    }

    fn fetch_blob(&self, descriptor: &Descriptor, limit: u64) -> Result<Vec<u8>> {
        let reference = self.at_digest(&descriptor.digest);
        let layer = OciDescriptor {
            media_type: descriptor.media_type.clone(),
            digest: descriptor.digest.clone(),
            size: descriptor.size as i64,
            ..OciDescriptor::default()
        };
        self.runtime.block_on(async {
            let mut stream = self
                .client
                .pull_blob_stream(&reference, &layer)
                .await
                .map_err(|e| self.failed(&format!("fetching blob {}", descriptor.digest), &e))?;
            let mut bytes = Vec::with_capacity(descriptor.size.min(limit) as usize);
            while let Some(chunk) = stream.stream.next().await {
                let chunk = chunk.map_err(|e| self.failed(&format!("reading blob {}", descriptor.digest), &e))?;
                bytes.extend_from_slice(&chunk);
                if bytes.len() as u64 > limit.min(descriptor.size) {
                    return Err(Error::Format(format!(
                        "blob {}: the registry sent more than the {} bytes its descriptor names",
                        descriptor.digest, descriptor.size
                    )));
                }
            }
            Ok(bytes)
        })
    }

    fn prepare_push(&self) -> Result<()> {
        if !self.push_ready.get() {
            self.runtime
                .block_on(self.client.auth(&self.reference, &self.auth, oci_client::RegistryOperation::Push))
                .map_err(|e| self.failed("authenticating for push", &e))?;
            self.push_ready.set(true);
        }
        Ok(())
    }

    pub fn push_blob(&self, descriptor: &Descriptor, bytes: &[u8]) -> Result<()> {
        self.prepare_push()?;
        let reference = self.at_digest(&descriptor.digest);
        let exists = self.runtime.block_on(self.client.blob_exists(&reference, &descriptor.digest)).unwrap_or(false);
        if exists {
            return Ok(());
        }
        self.runtime
            .block_on(self.client.push_blob(&reference, bytes.to_vec(), &descriptor.digest))
            .map_err(|e| self.failed(&format!("pushing blob {}", descriptor.digest), &e))?;
        Ok(())
    }

    /// Push a manifest or index under its digest, or under `tag`.
    pub fn push_manifest(&self, descriptor: &Descriptor, bytes: &[u8], tag: Option<&str>) -> Result<()> {
        self.prepare_push()?;
        let reference = match tag {
            Some(tag) => self.at_tag(tag),
            None => self.at_digest(&descriptor.digest),
        };
        let content_type = descriptor.media_type.parse().map_err(|_| {
            Error::Format(format!("media type {:?} is not a valid header value", descriptor.media_type))
        })?;
        self.runtime
            .block_on(self.client.push_manifest_raw(&reference, bytes.to_vec(), content_type))
            .map_err(|e| self.failed(&format!("pushing manifest {}", reference.whole()), &e))?;
        Ok(())
    }
}

impl Fetch for Registry {
    fn fetch(&mut self, descriptor: &Descriptor, limit: u64) -> Result<Vec<u8>> {
        if descriptor.is_index() || descriptor.is_manifest() {
            let reference = self.at_digest(&descriptor.digest);
            return match self.manifest_at(&reference)? {
                Some((_, bytes)) => Ok(bytes),
                None => Err(Error::Registry {
                    reference: format!("oci://{}", reference.whole()),
                    message: "manifest not found".into(),
                }),
            };
        }
        self.fetch_blob(descriptor, limit)
    }
}

/// Why a read with [`Registry::pull_manifest_until`], [`Registry::pull_blob_until`]
/// or [`Registry::referrers_until`] failed, sorted by what a caller can do about it.
/// Each message says what was being done and every cause.
#[derive(Debug, Clone)]
pub enum PullError {
    /// The registry says the repository, manifest or blob is not there.
    NotFound(String),
    /// No usable answer: connection refused, TLS failure, timeout, 5xx, access denied.
    Unreachable(String),
    /// An answer that breaks the rules: over its size bound, not matching its
    /// digest, not the JSON it should be.
    Malformed(String),
    /// The caller's deadline passed first.
    Deadline,
}

impl std::fmt::Display for PullError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PullError::NotFound(m) | PullError::Unreachable(m) | PullError::Malformed(m) => f.write_str(m),
            PullError::Deadline => f.write_str("the deadline passed"),
        }
    }
}

fn classify(doing: &str, e: &OciDistributionError) -> PullError {
    let message = format!("{doing}: {}", chain(e));
    let missing = |code: &OciErrorCode| {
        matches!(
            code,
            OciErrorCode::ManifestUnknown
                | OciErrorCode::NotFound
                | OciErrorCode::NameUnknown
                | OciErrorCode::BlobUnknown
        )
    };
    match e {
        _ if is_not_found(e) => PullError::NotFound(message),
        OciDistributionError::RegistryError { envelope, .. } if envelope.errors.iter().any(|e| missing(&e.code)) => {
            PullError::NotFound(message)
        }
        OciDistributionError::UnauthorizedError { .. }
        | OciDistributionError::AuthenticationFailure(_)
        | OciDistributionError::RegistryTokenDecodeError(_) => PullError::Unreachable(format!(
            "{message} (the registry refused access: credentials are missing or wrong, or the repository does not \
             exist)"
        )),
        OciDistributionError::DigestError(_)
        | OciDistributionError::ManifestParsingError(_)
        | OciDistributionError::VersionedParsingError(_)
        | OciDistributionError::SpecViolationError(_)
        | OciDistributionError::JsonError(_)
        | OciDistributionError::ManifestEncodingError(_)
        | OciDistributionError::UnsupportedMediaTypeError(_)
        | OciDistributionError::UnsupportedSchemaVersionError(_)
        | OciDistributionError::HeaderValueError(_) => PullError::Malformed(message),
        OciDistributionError::IoError(io) if io.get_ref().is_some_and(|inner| inner.is::<DigestError>()) => {
            PullError::Malformed(message)
        }
        _ => PullError::Unreachable(message),
    }
}

/// Reads bounded by a deadline, for callers that must answer in time
/// (image signature material). Every network step runs under
/// `tokio::time::timeout_at` on this registry's private runtime, so these
/// must not be called from an asynchronous context (plain threads and
/// `spawn_blocking` threads are fine).
impl Registry {
    fn until<F: std::future::Future>(
        &self,
        deadline: Option<std::time::Instant>,
        future: F,
    ) -> std::result::Result<F::Output, PullError> {
        let Some(deadline) = deadline else {
            return Ok(self.runtime.block_on(future));
        };
        if std::time::Instant::now() >= deadline {
            return Err(PullError::Deadline);
        }
        self.runtime
            .block_on(async { tokio::time::timeout_at(tokio::time::Instant::from_std(deadline), future).await })
            .map_err(|_| PullError::Deadline)
    }

    /// A manifest's bytes, by tag or digest, accepting the given media types.
    /// At most [`MAX_MANIFEST_BYTES`]; when `reference` has a digest the bytes
    /// are checked against it (a `sha256` one).
    pub fn pull_manifest_until(
        &self,
        reference: &Reference,
        accept: &[&str],
        deadline: Option<std::time::Instant>,
    ) -> std::result::Result<Vec<u8>, PullError> {
        let doing = format!("fetching the manifest {}", reference.whole());
        let bytes = self
            .until(deadline, self.client.pull_manifest_raw(reference, &self.auth, accept))?
            .map_err(|e| classify(&doing, &e))?
            .0;
        if bytes.len() as u64 > MAX_MANIFEST_BYTES {
            return Err(PullError::Malformed(format!("{doing}: the manifest is over {MAX_MANIFEST_BYTES} bytes")));
        }
        if let Some(digest) = reference.digest() {
            let actual = super::digest_of(&bytes);
            if actual != digest {
                return Err(PullError::Malformed(format!(
                    "{doing}: the registry sent content whose digest is {actual}"
                )));
            }
        }
        Ok(bytes.to_vec())
    }

    /// A blob of this repository, read as a stream and stopped past
    /// `min(size, limit)` bytes, then checked against `digest` and `size`.
    /// `digest` must be a `sha256` digest.
    pub fn pull_blob_until(
        &self,
        digest: &str,
        size: u64,
        limit: u64,
        deadline: Option<std::time::Instant>,
    ) -> std::result::Result<Vec<u8>, PullError> {
        let doing = format!("fetching blob {digest} from {}", self.repository_name());
        if size > limit {
            return Err(PullError::Malformed(format!("{doing}: its descriptor says {size} bytes, over {limit}")));
        }
        super::digest_hex(digest).map_err(|e| PullError::Malformed(format!("{doing}: {e}")))?;
        let reference = self.at_digest(digest);
        let layer = OciDescriptor { digest: digest.to_string(), size: size as i64, ..OciDescriptor::default() };
        let bytes = self.until(deadline, async {
            // The blob endpoint does not authenticate by itself.
            self.client.store_auth_if_needed(self.reference.resolve_registry(), &self.auth).await;
            let mut stream =
                self.client.pull_blob_stream(&reference, &layer).await.map_err(|e| classify(&doing, &e))?;
            let mut bytes = Vec::with_capacity(size as usize);
            while let Some(chunk) = stream.stream.next().await {
                let chunk = chunk.map_err(|e| classify(&doing, &OciDistributionError::IoError(e)))?;
                bytes.extend_from_slice(&chunk);
                if bytes.len() as u64 > size {
                    return Err(PullError::Malformed(format!(
                        "{doing}: the registry sent more than the {size} bytes its descriptor names"
                    )));
                }
            }
            Ok(bytes)
        })??;
        let actual = super::digest_of(&bytes);
        if actual != digest || bytes.len() as u64 != size {
            return Err(PullError::Malformed(format!(
                "{doing}: the registry sent {} bytes whose digest is {actual}, not the {size} bytes of {digest}",
                bytes.len()
            )));
        }
        Ok(bytes)
    }

    /// The referrers of `digest` in this repository (OCI distribution spec
    /// 1.1): through the referrers API, or, for registries without one, the
    /// index tagged `sha256-<hex>` (the referrers tag schema). No referrers:
    /// an empty list.
    pub fn referrers_until(
        &self,
        digest: &str,
        deadline: Option<std::time::Instant>,
    ) -> std::result::Result<Vec<ImageIndexEntry>, PullError> {
        let hex = super::digest_hex(digest).map_err(|e| PullError::Malformed(e.to_string()))?;
        let doing = format!("listing the referrers of {}@{digest}", self.repository_name());
        let subject = self.at_digest(digest);
        // On a 404 `pull_referrers` falls back to the tag schema by itself;
        // registries that refuse the endpoint otherwise (400, 405) get that
        // fallback here, with the size bound of every manifest.
        let native = self.until(deadline, async {
            self.client.store_auth_if_needed(self.reference.resolve_registry(), &self.auth).await;
            self.client.pull_referrers(&subject, None).await
        })?;
        let index = match native {
            Ok(index) => {
                // The client reads the answer whole; bound what is kept.
                let size = serde_json::to_vec(&index).map(|v| v.len() as u64).unwrap_or(u64::MAX);
                if size > MAX_MANIFEST_BYTES {
                    return Err(PullError::Malformed(format!(
                        "{doing}: the referrers list is over {MAX_MANIFEST_BYTES} bytes"
                    )));
                }
                index
            }
            Err(e) if refuses_referrers_api(&e) => {
                let fallback = self.at_tag(&format!("sha256-{hex}"));
                match self.pull_manifest_until(&fallback, &[INDEX_MEDIA_TYPE], deadline) {
                    Ok(bytes) => serde_json::from_slice::<OciImageIndex>(&bytes).map_err(|e| {
                        PullError::Malformed(format!(
                            "{doing}: the index tagged sha256-{hex} is not an image index: {e}"
                        ))
                    })?,
                    Err(PullError::NotFound(_)) => return Ok(Vec::new()),
                    Err(e) => return Err(e),
                }
            }
            Err(e) => return Err(classify(&doing, &e)),
        };
        Ok(index.manifests)
    }

    /// Stop this registry's runtime without waiting for its background work
    /// (a name lookup stuck in the resolver), for callers with a deadline.
    pub fn close(self) {
        self.runtime.shutdown_background();
    }
}

/// Whether the referrers endpoint answered in a way that means "not
/// supported here" (the spec says 404, which the client handles itself).
fn refuses_referrers_api(e: &OciDistributionError) -> bool {
    match e {
        OciDistributionError::ServerError { code, .. } => matches!(code, 400 | 404 | 405 | 406 | 501),
        OciDistributionError::RegistryError { envelope, .. } => {
            envelope.errors.iter().any(|e| matches!(e.code, OciErrorCode::Unsupported | OciErrorCode::NameUnknown))
        }
        _ => false,
    }
}
