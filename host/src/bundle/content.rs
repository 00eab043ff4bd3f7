//! A root descriptor and every piece of content it references, read through
//! some source and checked piece by piece against the digests that name it.

use super::{
    Descriptor, Error, Index, MAX_BLOB_BYTES, MAX_ENTRIES, MAX_MANIFEST_BYTES, Manifest, Result,
    WASM_CONFIG_MEDIA_TYPE, WASM_LAYER_MEDIA_TYPE, WasmConfig, annotations, check_contract, check_digest,
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
    super::digest_hex(&descriptor.digest)?;
    if descriptor.size > limit {
        return Err(Error::Format(format!(
            "{what} {}: {} bytes, over the limit of {limit}",
            descriptor.digest, descriptor.size
        )));
    }
    source.fetch(descriptor, limit)
}

/// Check the layers `pieces[i]` for each `i` of `layers` against their
/// digests, on as many threads as there are cores (a bundle's layers are
/// megabytes of components, where hashing is most of the time it takes to
/// open it). The first mismatch in the order of the pieces is the error.
fn check_layers(pieces: &[(Descriptor, Vec<u8>)], layers: &[usize]) -> Result<()> {
    let check = |i: &usize| {
        let (descriptor, bytes) = &pieces[*i];
        check_digest(&format!("layer {}", descriptor.digest), descriptor, bytes)
    };
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get()).min(layers.len());
    if threads <= 1 {
        return layers.iter().try_for_each(check);
    }
    let results: Vec<Vec<(usize, Result<()>)>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let check = &check;
                // Every `threads`-th layer: the layers of a bundle are of similar sizes.
                scope.spawn(move || {
                    layers.iter().enumerate().skip(t).step_by(threads).map(|(n, i)| (n, check(i))).collect()
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))).collect()
    });
    let mut results: Vec<(usize, Result<()>)> = results.into_iter().flatten().collect();
    results.sort_by_key(|(n, _)| *n);
    results.into_iter().try_for_each(|(_, result)| result)
}

fn parse<T: serde::de::DeserializeOwned>(what: &str, descriptor: &Descriptor, bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes)
        .map_err(|e| Error::Format(format!("{what} {}: not a valid {what}: {e}", descriptor.digest)))
}

impl Content {
    /// Read `root` and everything under it (an index of manifests, or one manifest).
    pub fn walk(root: &Descriptor, source: &mut dyn Fetch) -> Result<Content> {
        let mut pieces = Vec::new();
        // Layers read but not checked yet (by index in `pieces`): checked
        // together before anything is returned.
        let mut unchecked = Vec::new();
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
                Self::walk_manifest(entry, source, &mut pieces, &mut unchecked)?;
            }
            pieces.push((root.clone(), bytes));
        } else if root.is_manifest() {
            Self::walk_manifest(root, source, &mut pieces, &mut unchecked)?;
        } else {
            return Err(Error::Format(format!(
                "{}: a {:?}, neither an OCI image index nor a manifest",
                root.digest, root.media_type
            )));
        }
        check_layers(&pieces, &unchecked)?;
        Ok(Content { root: root.clone(), pieces })
    }

    fn walk_manifest(
        descriptor: &Descriptor,
        source: &mut dyn Fetch,
        pieces: &mut Vec<(Descriptor, Vec<u8>)>,
        unchecked: &mut Vec<usize>,
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
            let blob = fetch_unchecked(source, "layer", layer, MAX_BLOB_BYTES)?;
            if !source.checks_digests() {
                unchecked.push(pieces.len());
            }
            pieces.push((layer.clone(), blob));
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

    #[test]
    fn layers_checked_together_report_the_first_mismatch() {
        use crate::bundle::{Descriptor, Error};
        let mut pieces: Vec<(Descriptor, Vec<u8>)> = (0..7u8)
            .map(|n| {
                let bytes = vec![n; 1000 + usize::from(n)];
                (Descriptor::of(crate::bundle::WASM_LAYER_MEDIA_TYPE, &bytes), bytes)
            })
            .collect();
        let all: Vec<usize> = (0..pieces.len()).collect();
        assert!(super::check_layers(&pieces, &all).is_ok());
        assert!(super::check_layers(&pieces, &[]).is_ok());
        // Two damaged layers (on different threads): the first in order is named.
        pieces[5].1[0] ^= 1;
        pieces[2].1[10] ^= 1;
        for _ in 0..5 {
            match super::check_layers(&pieces, &all) {
                Err(Error::Digest { what, .. }) => assert!(what.contains(&pieces[2].0.digest), "{what}"),
                other => panic!("{other:?}"),
            }
        }
        // Only the layers named are checked.
        assert!(super::check_layers(&pieces, &[0, 1, 3, 4, 6]).is_ok());
        assert!(super::check_layers(&pieces, &[5]).is_err());
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
