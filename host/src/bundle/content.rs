//! A root descriptor and every piece of content it references, read through
//! some source and checked piece by piece against the digests that name it.

use super::{
    Descriptor, Error, Index, MAX_BLOB_BYTES, MAX_ENTRIES, MAX_MANIFEST_BYTES, Manifest, Result,
    WASM_CONFIG_MEDIA_TYPE, WASM_LAYER_MEDIA_TYPE, WasmConfig, annotations, check_contract, check_digest, check_hashed,
};

/// Where content comes from: a layout, the cache, a registry. Implementations
/// may refuse anything over `limit` bytes before reading it all.
pub trait Fetch {
    fn fetch(&mut self, descriptor: &Descriptor, limit: u64) -> Result<Vec<u8>>;

    /// Whether what `fetch` returns was already checked against its digest
    /// (so it is not hashed a second time).
    fn checks_digests(&self) -> bool {
        false
    }

    /// Each of `layers` fetched and, unless the source checks digests
    /// itself, given to `check`; the first error in their order is the error.
    /// Here they are read one after another, then checked on as many threads
    /// as there are cores. A source that can read several at once does, each
    /// layer checked on the thread that read it.
    fn fetch_layers(&mut self, layers: &[Descriptor], limit: u64, check: CheckLayer) -> Result<Vec<Vec<u8>>> {
        let blobs = layers.iter().map(|d| self.fetch(d, limit)).collect::<Result<Vec<_>>>()?;
        if !self.checks_digests() {
            let pairs: Vec<(&Descriptor, &[u8])> = layers.iter().zip(blobs.iter().map(Vec::as_slice)).collect();
            crate::parallel::map_largest_first(&pairs, |(_, bytes)| bytes.len() as u64, |(d, bytes)| check(d, bytes))
                .into_iter()
                .collect::<Result<()>>()?;
        }
        Ok(blobs)
    }
}

/// What [`Fetch::fetch_layers`] does with each layer it read: compare it with its digest.
pub type CheckLayer<'a> = &'a (dyn Fn(&Descriptor, &[u8]) -> Result<()> + Sync);

/// A layer's bytes against its descriptor's digest.
pub(crate) fn check_layer(descriptor: &Descriptor, bytes: &[u8]) -> Result<()> {
    check_digest(&format!("layer {}", descriptor.digest), descriptor, bytes)
}

/// [`check_layer`] for a layer hashed as it was read: `digest` is what it
/// hashed to, `size` how many bytes it had.
pub(crate) fn check_layer_hashed(descriptor: &Descriptor, digest: String, size: u64) -> Result<()> {
    check_hashed(&format!("layer {}", descriptor.digest), descriptor, digest, size)
}

/// A closed set of content: `pieces` holds every manifest, config and layer,
/// leaves before what references them, the root last.
#[derive(Debug, Clone)]
pub struct Content {
    pub root: Descriptor,
    pub pieces: Vec<(Descriptor, Vec<u8>)>,
}

/// One policy of a bundle, as its manifest describes it.
#[derive(Debug, Clone)]
pub struct PolicyArtifact {
    pub id: String,
    pub manifest: Descriptor,
    pub annotations: std::collections::BTreeMap<String, String>,
    pub config: WasmConfig,
    /// The layer the component was read from; its digest was checked against the bytes.
    pub layer: Descriptor,
    pub component: Vec<u8>,
}

fn fetch_checked(source: &mut dyn Fetch, what: &str, descriptor: &Descriptor, limit: u64) -> Result<Vec<u8>> {
    let bytes = fetch_unchecked(source, what, descriptor, limit)?;
    if !source.checks_digests() {
        check_digest(&format!("{what} {}", descriptor.digest), descriptor, &bytes)?;
    }
    Ok(bytes)
}

/// The bytes, not yet checked against the digest unless the source does it.
fn fetch_unchecked(source: &mut dyn Fetch, what: &str, descriptor: &Descriptor, limit: u64) -> Result<Vec<u8>> {
    refuse_early(what, descriptor, limit)?;
    source.fetch(descriptor, limit)
}

/// What can be refused before reading: a digest that is not one, a size over the limit.
fn refuse_early(what: &str, descriptor: &Descriptor, limit: u64) -> Result<()> {
    super::digest_hex(&descriptor.digest)?;
    if descriptor.size > limit {
        return Err(Error::Format(format!(
            "{what} {}: {} bytes, over the limit of {limit}",
            descriptor.digest, descriptor.size
        )));
    }
    Ok(())
}

fn parse<T: serde::de::DeserializeOwned>(what: &str, descriptor: &Descriptor, bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes)
        .map_err(|e| Error::Format(format!("{what} {}: not a valid {what}: {e}", descriptor.digest)))
}

impl Content {
    /// Read `root` and everything under it (an index of manifests, or one manifest).
    pub fn walk(root: &Descriptor, source: &mut dyn Fetch) -> Result<Content> {
        let mut pieces = Vec::new();
        // Layers not read yet (by index in `pieces`, left empty there): read
        // and checked together before anything is returned.
        let mut layers = Vec::new();
        if root.is_index() {
            let bytes = fetch_checked(source, "index", root, MAX_MANIFEST_BYTES)?;
            let index: Index = parse("index", root, &bytes)?;
            if index.manifests.len() > MAX_ENTRIES {
                return Err(Error::Format(format!("index {}: more than {MAX_ENTRIES} manifests", root.digest)));
            }
            for entry in &index.manifests {
                if !entry.is_manifest() {
                    return Err(Error::Format(format!(
                        "index {}: entry {} is a {:?}, not an image manifest",
                        root.digest, entry.digest, entry.media_type
                    )));
                }
                Self::walk_manifest(entry, source, &mut pieces, &mut layers)?;
            }
            pieces.push((root.clone(), bytes));
        } else if root.is_manifest() {
            Self::walk_manifest(root, source, &mut pieces, &mut layers)?;
        } else {
            return Err(Error::Format(format!(
                "{}: a {:?}, neither an OCI image index nor a manifest",
                root.digest, root.media_type
            )));
        }
        let descriptors: Vec<Descriptor> = layers.iter().map(|&i| pieces[i].0.clone()).collect();
        let blobs = source.fetch_layers(&descriptors, MAX_BLOB_BYTES, &check_layer)?;
        for (i, bytes) in layers.into_iter().zip(blobs) {
            pieces[i].1 = bytes;
        }
        Ok(Content { root: root.clone(), pieces })
    }

    fn walk_manifest(
        descriptor: &Descriptor,
        source: &mut dyn Fetch,
        pieces: &mut Vec<(Descriptor, Vec<u8>)>,
        layers: &mut Vec<usize>,
    ) -> Result<()> {
        let bytes = fetch_checked(source, "manifest", descriptor, MAX_MANIFEST_BYTES)?;
        let manifest: Manifest = parse("manifest", descriptor, &bytes)?;
        if manifest.schema_version != 2 {
            return Err(Error::Format(format!("manifest {}: schemaVersion is not 2", descriptor.digest)));
        }
        if manifest.layers.len() > MAX_ENTRIES {
            return Err(Error::Format(format!("manifest {}: more than {MAX_ENTRIES} layers", descriptor.digest)));
        }
        let config = fetch_checked(source, "config", &manifest.config, MAX_MANIFEST_BYTES)?;
        pieces.push((manifest.config.clone(), config));
        for layer in &manifest.layers {
            refuse_early("layer", layer, MAX_BLOB_BYTES)?;
            layers.push(pieces.len());
            pieces.push((layer.clone(), Vec::new()));
        }
        pieces.push((descriptor.clone(), bytes));
        Ok(())
    }

    pub fn get(&self, digest: &str) -> Option<&[u8]> {
        self.pieces.iter().find(|(d, _)| d.digest == digest).map(|(_, b)| b.as_slice())
    }

    pub fn root_bytes(&self) -> &[u8] {
        self.pieces.last().map_or(&[], |(_, b)| b.as_slice())
    }

    /// The root as an index, when it is one.
    pub fn index(&self) -> Option<Index> {
        if !self.root.is_index() {
            return None;
        }
        serde_json::from_slice(self.root_bytes()).ok()
    }

    /// Check that the content was built for a contract this host implements.
    pub fn check_contract(&self) -> Result<()> {
        let contract = match self.index() {
            Some(index) => index.annotation(annotations::CONTRACT).map(str::to_string),
            None => serde_json::from_slice::<Manifest>(self.root_bytes())
                .ok()
                .and_then(|m| m.annotation(annotations::CONTRACT).map(str::to_string)),
        };
        match contract {
            Some(contract) => check_contract(&contract),
            None => Err(Error::Contract(format!(
                "{}: no {} annotation, so the WIT contract its policies need is unknown",
                self.root.digest,
                annotations::CONTRACT
            ))),
        }
    }

    /// Every policy in the bundle (or the one policy, when the root is a manifest).
    pub fn policies(&self) -> Result<Vec<PolicyArtifact>> {
        let mut policies = self.artifacts()?;
        for p in &mut policies {
            p.component = self.get(&p.layer.digest).ok_or_else(|| missing(&p.layer))?.to_vec();
        }
        Ok(policies)
    }

    /// [`Content::policies`], the components moved out of the content rather than copied.
    pub fn into_policies(mut self) -> Result<Vec<PolicyArtifact>> {
        let mut policies = self.artifacts()?;
        // Layer digest -> the policy that took its bytes (two manifests may share a layer).
        let mut taken: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
        for i in 0..policies.len() {
            let digest = policies[i].layer.digest.clone();
            policies[i].component = match taken.get(&digest) {
                Some(&first) => policies[first].component.clone(),
                None => {
                    let piece = self.pieces.iter_mut().find(|(d, _)| d.digest == digest);
                    let (_, bytes) = piece.ok_or_else(|| missing(&policies[i].layer))?;
                    taken.insert(digest, i);
                    std::mem::take(bytes)
                }
            };
        }
        Ok(policies)
    }

    /// The policies, their components left empty.
    fn artifacts(&self) -> Result<Vec<PolicyArtifact>> {
        let manifests: Vec<Descriptor> = match self.index() {
            Some(index) => index.manifests,
            None if self.root.is_manifest() => vec![self.root.clone()],
            None => return Err(Error::Format(format!("{}: the index cannot be read", self.root.digest))),
        };
        let mut policies = Vec::new();
        for descriptor in manifests {
            let bytes = self.get(&descriptor.digest).ok_or_else(|| missing(&descriptor))?;
            let manifest: Manifest = parse("manifest", &descriptor, bytes)?;
            let what = format!("manifest {}", descriptor.digest);
            if manifest.config.media_type != WASM_CONFIG_MEDIA_TYPE {
                return Err(Error::Format(format!(
                    "{what}: config is a {:?}, not a Wasm config ({WASM_CONFIG_MEDIA_TYPE})",
                    manifest.config.media_type
                )));
            }
            let [layer] = manifest.layers.as_slice() else {
                return Err(Error::Format(format!("{what}: a policy has exactly one layer")));
            };
            if layer.media_type != WASM_LAYER_MEDIA_TYPE {
                return Err(Error::Format(format!(
                    "{what}: layer is a {:?}, not {WASM_LAYER_MEDIA_TYPE}",
                    layer.media_type
                )));
            }
            let config_bytes = self.get(&manifest.config.digest).ok_or_else(|| missing(&manifest.config))?;
            let config: WasmConfig = parse("Wasm config", &manifest.config, config_bytes)?;
            if config.layer_digests != [layer.digest.clone()] {
                return Err(Error::Format(format!("{what}: the config's layerDigests do not name its layer")));
            }
            let annotations = manifest.annotations.clone().unwrap_or_default();
            let id = annotations
                .get(annotations::POLICY_ID)
                .cloned()
                .ok_or_else(|| Error::Format(format!("{what}: no {} annotation", annotations::POLICY_ID)))?;
            policies.push(PolicyArtifact {
                id,
                manifest: descriptor,
                annotations,
                config,
                layer: layer.clone(),
                component: Vec::new(),
            });
        }
        Ok(policies)
    }
}

fn missing(descriptor: &Descriptor) -> Error {
    Error::Format(format!("{}: referenced but not present", descriptor.digest))
}

#[cfg(test)]
mod tests {
    use crate::bundle::assemble::{self, BundleInfo};
    use crate::bundle::digest_of;
    use crate::runtime::{Runtime, SandboxLimits};

    /// Content held in memory, as a source.
    struct Memory(Vec<(crate::bundle::Descriptor, Vec<u8>)>);

    impl super::Fetch for Memory {
        fn fetch(&mut self, descriptor: &crate::bundle::Descriptor, _: u64) -> crate::bundle::Result<Vec<u8>> {
            let found = self.0.iter().find(|(d, _)| d.digest == descriptor.digest);
            found.map(|(_, b)| b.clone()).ok_or_else(|| crate::bundle::Error::Format("absent".into()))
        }
    }

    #[test]
    fn layers_checked_together_report_the_first_mismatch() {
        use super::Fetch;
        use crate::bundle::{Descriptor, Error};
        let pieces: Vec<(Descriptor, Vec<u8>)> = (0..7u8)
            .map(|n| {
                let bytes = vec![n; 1000 + usize::from(n)];
                (Descriptor::of(crate::bundle::WASM_LAYER_MEDIA_TYPE, &bytes), bytes)
            })
            .collect();
        let all: Vec<Descriptor> = pieces.iter().map(|(d, _)| d.clone()).collect();
        let mut source = Memory(pieces.clone());
        let read = source.fetch_layers(&all, u64::MAX, &super::check_layer).unwrap();
        assert_eq!(read, pieces.iter().map(|(_, b)| b.clone()).collect::<Vec<_>>(), "in the layers' order");
        assert!(source.fetch_layers(&[], u64::MAX, &super::check_layer).unwrap().is_empty());
        // Two damaged layers (checked on different threads): the first in order is named.
        source.0[5].1[0] ^= 1;
        source.0[2].1[10] ^= 1;
        for _ in 0..5 {
            match source.fetch_layers(&all, u64::MAX, &super::check_layer) {
                Err(Error::Digest { what, .. }) => assert!(what.contains(&all[2].digest), "{what}"),
                other => panic!("{other:?}"),
            }
        }
        // Only the layers named are checked.
        let sound: Vec<Descriptor> = [0, 1, 3, 4, 6].iter().map(|&i| all[i].clone()).collect();
        assert!(source.fetch_layers(&sound, u64::MAX, &super::check_layer).is_ok());
        assert!(source.fetch_layers(&all[5..6], u64::MAX, &super::check_layer).is_err());
    }

    #[test]
    fn policies_moved_out_are_the_policies_copied() {
        let runtime = Runtime::new(None, SandboxLimits::default()).unwrap();
        let mut builtin: Vec<_> = crate::builtin::BUILTIN.iter().collect();
        builtin.sort_by_key(|(_, bytes)| bytes.len());
        let components: Vec<(String, Vec<u8>)> =
            builtin.iter().take(2).map(|(name, bytes)| (format!("builtin:{name}"), bytes.to_vec())).collect();
        let info = BundleInfo { name: "two".into(), version: "1.0.0".into(), source: None, licenses: None };
        let content = assemble::bundle(&runtime, &components, &info).unwrap();
        let copied = content.policies().unwrap();
        let moved = content.into_policies().unwrap();
        assert_eq!(copied.len(), 2);
        assert_eq!(moved.len(), 2);
        for (c, m) in copied.iter().zip(&moved) {
            assert_eq!((&c.id, &c.layer.digest, &c.component), (&m.id, &m.layer.digest, &m.component));
            assert_eq!(digest_of(&m.component), m.layer.digest);
            assert!(components.iter().any(|(_, bytes)| *bytes == m.component));
        }
    }
}
