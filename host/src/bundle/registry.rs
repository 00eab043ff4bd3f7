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
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::manifest::OciDescriptor;
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

    fn at_digest(&self, digest: &str) -> Reference {
        Reference::with_digest(
            self.reference.registry().to_string(),
            self.reference.repository().to_string(),
            digest.to_string(),
        )
    }

    fn at_tag(&self, tag: &str) -> Reference {
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
