//! A bundle reference turned into checked content, and the operations the
//! `palisade bundle` commands and `--bundle` are made of.

use super::content::{Content, PolicyArtifact};
use super::content::{Fetch, check_layer};
use super::layout::{Keep, Layout, signature_tag};
use super::reference::Location;
use super::registry::{self, Registry};
use super::signature::{self, PrivateKey, PublicKey};
use super::store::{Cached, Store};
use super::{Descriptor, Error, Result, annotations};

/// How to reach bundles.
#[derive(Default)]
pub struct Options {
    pub registry: registry::Options,
    /// The content cache; `None` keeps nothing between runs.
    pub store: Option<Store>,
}

/// A bundle (or single policy) read in full and checked against its digests,
/// with the signatures stored beside it, if any.
pub struct Opened {
    pub location: Location,
    pub content: Content,
    pub signatures: Option<Content>,
    /// The repository, as a signature payload names it.
    pub repository: String,
}

impl Opened {
    pub fn digest(&self) -> &str {
        &self.content.root.digest
    }

    /// `oci://registry/repo@sha256:…`, or the layout path with the digest.
    pub fn pinned(&self) -> String {
        match &self.location {
            Location::Registry(r) => format!("oci://{}/{}@{}", r.registry(), r.repository(), self.digest()),
            Location::Layout(path) => format!("{}@{}", path.display(), self.digest()),
        }
    }

    /// Check that a signature by one of `keys` covers this content; with
    /// digests checked all the way down, that covers every byte of it.
    pub fn verify(&self, keys: &[PublicKey]) -> Result<PublicKey> {
        match &self.signatures {
            Some(signatures) => signature::verify(signatures, self.digest(), keys),
            None => Err(Error::Signature(format!(
                "{}: not signed (no {} next to it)",
                self.pinned(),
                signature_tag(self.digest())?
            ))),
        }
    }

    /// The policies, after checking the contract (and the signature, when keys are given).
    pub fn policies(&self, keys: &[PublicKey]) -> Result<Vec<PolicyArtifact>> {
        self.content.check_contract().map_err(|e| Error::Contract(format!("{}: {e}", self.pinned())))?;
        if !keys.is_empty() {
            self.verify(keys)?;
        }
        self.content.policies()
    }

    /// [`Opened::policies`], the components moved out rather than copied.
    pub fn into_policies(self, keys: &[PublicKey]) -> Result<Vec<PolicyArtifact>> {
        self.content.check_contract().map_err(|e| Error::Contract(format!("{}: {e}", self.pinned())))?;
        if !keys.is_empty() {
            self.verify(keys)?;
        }
        self.content.into_policies()
    }

    /// The tag a layout entry or a pushed copy gets by default: the bundle version.
    pub fn default_tag(&self) -> Option<String> {
        let version = match self.content.index() {
            Some(index) => index.annotation(annotations::VERSION).map(str::to_string),
            None => serde_json::from_slice::<super::Manifest>(self.content.root_bytes())
                .ok()
                .and_then(|m| m.annotation(annotations::VERSION).map(str::to_string)),
        };
        version.or_else(|| match &self.location {
            Location::Registry(r) => r.tag().map(str::to_string),
            Location::Layout(_) => None,
        })
    }
}

/// What a layout's signature payload names as the repository: the bundle's name.
fn bundle_name(content: &Content) -> String {
    content
        .index()
        .and_then(|i| i.annotation(annotations::BUNDLE_NAME).map(str::to_string))
        .unwrap_or_else(|| "bundle".into())
}

/// Read a bundle. A registry reference by digest whose content is all in the
/// cache is read without the network; anything else is fetched (and cached).
/// `want_signatures`: also find the signatures (a network round trip for a
/// digest reference whose signatures were never cached).
pub fn open(location: &Location, options: &Options, want_signatures: bool) -> Result<Opened> {
    open_keeping(location, options, want_signatures, None)
}

/// [`open`] for a start: of a layout, the policy layers `keep` says no to
/// are checked as every layer is, but not kept ([`Layout::keep_only`]; their
/// components' bytes are empty). A registry reference is opened as [`open`]
/// opens it. Not for content that is saved or pushed.
pub fn open_for_start(location: &Location, options: &Options, want_signatures: bool, keep: Keep) -> Result<Opened> {
    open_keeping(location, options, want_signatures, Some(keep))
}

/// The layer `layer` of the layout bundle at `location`, read and checked
/// against its digest again (for a component [`open_for_start`] did not keep).
pub fn reread_layer(location: &Location, layer: &Descriptor) -> Result<Vec<u8>> {
    let Location::Layout(path) = location else {
        return Err(Error::Format(format!("{location}: only a layout's layers are read again")));
    };
    let mut layout = Layout::open(path)?;
    let bytes = layout.fetch(layer, super::MAX_BLOB_BYTES)?;
    check_layer(layer, &bytes)?;
    Ok(bytes)
}

fn open_keeping(location: &Location, options: &Options, want_signatures: bool, keep: Option<Keep>) -> Result<Opened> {
    match location {
        Location::Layout(path) => {
            let mut layout = Layout::open(path)?;
            let root = layout.root()?;
            let signature = layout.signature_for(&root.digest)?;
            if let Some(keep) = keep {
                layout.keep_only(keep);
            }
            let content = Content::walk(&root, &mut layout)?;
            let signatures = match signature {
                Some(d) => Some(Content::walk(&d, &mut layout)?),
                None => None,
            };
            let repository = bundle_name(&content);
            Ok(Opened { location: location.clone(), content, signatures, repository })
        }
        Location::Registry(reference) => {
            let store = options.store.as_ref();
            let repository = format!("{}/{}", reference.registry(), reference.repository());
            if let (Some(digest), Some(store)) = (reference.digest(), store)
                && let Some(opened) = open_cached(location, store, digest, &repository, want_signatures)?
            {
                return Ok(opened);
            }
            let mut remote = Registry::connect(reference, &options.registry)?;
            let (root, bytes) = remote.resolve().map_err(|e| offline_hint(e, reference))?;
            if let Some(store) = store {
                store.write(&root, &bytes)?;
            }
            let content = Content::walk(&root, &mut Cached { store, remote: Some(&mut remote) })?;
            let signatures = match remote.manifest_at_tag(&signature_tag(&root.digest)?)? {
                Some((descriptor, bytes)) => {
                    if let Some(store) = store {
                        store.write(&descriptor, &bytes)?;
                        store.remember_signature(&root.digest, &descriptor)?;
                    }
                    Some(Content::walk(&descriptor, &mut Cached { store, remote: Some(&mut remote) })?)
                }
                None => None,
            };
            Ok(Opened { location: location.clone(), content, signatures, repository })
        }
    }
}

fn offline_hint(e: Error, reference: &oci_client::Reference) -> Error {
    match e {
        Error::Registry { reference: r, message } if reference.digest().is_none() => Error::Registry {
            reference: r,
            message: format!(
                "{message} (a tag is looked up in the registry every time; a digest reference, oci://…@sha256:…, \
                 pulled once, is read from the local cache without the registry)"
            ),
        },
        other => other,
    }
}

fn open_cached(
    location: &Location,
    store: &Store,
    digest: &str,
    repository: &str,
    want_signatures: bool,
) -> Result<Option<Opened>> {
    let Some(root) = cached_root(store, digest)? else { return Ok(None) };
    let content = match Content::walk(&root, &mut Cached { store: Some(store), remote: None }) {
        Ok(content) => content,
        // Partly cached: fetch the rest. Damaged entries are errors, never skipped.
        Err(Error::NotCached(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    let signatures = match store.signature(digest)? {
        Some(d) => match Content::walk(&d, &mut Cached { store: Some(store), remote: None }) {
            Ok(s) => Some(s),
            Err(Error::NotCached(_)) => None,
            Err(e) => return Err(e),
        },
        None => None,
    };
    if want_signatures && signatures.is_none() {
        return Ok(None);
    }
    Ok(Some(Opened { location: location.clone(), content, signatures, repository: repository.to_string() }))
}

/// The descriptor of a cached root known only by its digest: its size comes
/// from the bytes and its media type from the JSON, and the digest check
/// (with removal of a damaged entry) is the store's.
fn cached_root(store: &Store, digest: &str) -> Result<Option<Descriptor>> {
    let path = store.dir().join("blobs").join("sha256").join(super::digest_hex(digest)?);
    let Ok(size) = std::fs::metadata(&path).map(|m| m.len()) else { return Ok(None) };
    let probe =
        Descriptor { media_type: String::new(), digest: digest.into(), size, platform: None, annotations: None };
    let Some(bytes) = store.read(&probe)? else { return Ok(None) };
    let media_type = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| v.get("mediaType").and_then(|m| m.as_str()).map(str::to_string));
    Ok(match media_type.as_deref() {
        Some(t @ (super::INDEX_MEDIA_TYPE | super::MANIFEST_MEDIA_TYPE)) => Some(Descriptor::of(t, &bytes)),
        _ => None,
    })
}

/// Push content (and its signatures) to a registry reference, the root under
/// the reference's tag. Returns the pushed digest.
pub fn push(opened: &Opened, target: &oci_client::Reference, options: &Options) -> Result<String> {
    let tag = target
        .tag()
        .map(str::to_string)
        .or_else(|| opened.default_tag())
        .ok_or_else(|| Error::Format(format!("oci://{}: give a tag to push to", target.whole())))?;
    if let Some(digest) = target.digest()
        && digest != opened.digest()
    {
        return Err(Error::Format(format!("oci://{}: the content's digest is {}", target.whole(), opened.digest())));
    }
    let remote = Registry::connect(target, &options.registry)?;
    push_content(&remote, &opened.content, &tag)?;
    if let Some(signatures) = &opened.signatures {
        push_content(&remote, signatures, &signature_tag(opened.digest())?)?;
    }
    Ok(opened.digest().to_string())
}

fn push_content(remote: &Registry, content: &Content, tag: &str) -> Result<()> {
    for (descriptor, bytes) in &content.pieces {
        if descriptor.digest == content.root.digest {
            continue;
        }
        if descriptor.is_manifest() || descriptor.is_index() {
            remote.push_manifest(descriptor, bytes, None)?;
        } else {
            remote.push_blob(descriptor, bytes)?;
        }
    }
    remote.push_manifest(&content.root, content.root_bytes(), Some(tag))
}

/// Write content and its signatures to a layout directory or `.tar`.
pub fn save(opened: &Opened, output: &std::path::Path) -> Result<()> {
    let mut layout = Layout::create(output);
    let name = opened.default_tag().unwrap_or_else(|| "latest".into());
    layout.add(&name, &opened.content);
    if let Some(signatures) = &opened.signatures {
        layout.add(&signature_tag(opened.digest())?, signatures);
    }
    layout.save()
}

/// Sign what `location` names, storing the signature beside it. Returns the signed digest.
pub fn sign(location: &Location, options: &Options, key: &PrivateKey) -> Result<String> {
    match location {
        Location::Layout(path) => {
            let opened = open(location, options, true)?;
            let signed = signature::sign(key, &opened.repository, opened.digest(), opened.signatures.as_ref())?;
            // A tarball is read whole and written anew; a directory gets the new blobs.
            let mut layout = Layout::open(path)?;
            layout.add(&signature_tag(opened.digest())?, &signed);
            layout.save()?;
            Ok(opened.digest().to_string())
        }
        Location::Registry(reference) => {
            let mut remote = Registry::connect(reference, &options.registry)?;
            let (root, _) = remote.resolve()?;
            let tag = signature_tag(&root.digest)?;
            let existing = match remote.manifest_at_tag(&tag)? {
                Some((d, _)) => Some(Content::walk(&d, &mut remote)?),
                None => None,
            };
            let signed = signature::sign(key, &remote.repository_name(), &root.digest, existing.as_ref())?;
            push_content(&remote, &signed, &tag)?;
            if let Some(store) = &options.store {
                for (descriptor, bytes) in &signed.pieces {
                    store.write(descriptor, bytes)?;
                }
                store.remember_signature(&root.digest, &signed.root)?;
            }
            Ok(root.digest)
        }
    }
}
