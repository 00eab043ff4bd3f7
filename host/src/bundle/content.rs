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
    pub component: Vec<u8>,
}

fn fetch_checked(source: &mut dyn Fetch, what: &str, descriptor: &Descriptor, limit: u64) -> Result<Vec<u8>> {
    super::digest_hex(&descriptor.digest)?;
    if descriptor.size > limit {
        return Err(Error::Format(format!(
            "{what} {}: {} bytes, over the limit of {limit}",
            descriptor.digest, descriptor.size
        )));
    }
    let bytes = source.fetch(descriptor, limit)?;
    if !source.checks_digests() {
        check_digest(&format!("{what} {}", descriptor.digest), descriptor, &bytes)?;
    }
    Ok(bytes)
}

fn parse<T: serde::de::DeserializeOwned>(what: &str, descriptor: &Descriptor, bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes)
        .map_err(|e| Error::Format(format!("{what} {}: not a valid {what}: {e}", descriptor.digest)))
}

impl Content {
    /// Read `root` and everything under it (an index of manifests, or one manifest).
    pub fn walk(root: &Descriptor, source: &mut dyn Fetch) -> Result<Content> {
        let mut pieces = Vec::new();
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
                Self::walk_manifest(entry, source, &mut pieces)?;
            }
            pieces.push((root.clone(), bytes));
        } else if root.is_manifest() {
            Self::walk_manifest(root, source, &mut pieces)?;
        } else {
            return Err(Error::Format(format!(
                "{}: a {:?}, neither an OCI image index nor a manifest",
                root.digest, root.media_type
            )));
        }
        Ok(Content { root: root.clone(), pieces })
    }

    fn walk_manifest(
        descriptor: &Descriptor,
        source: &mut dyn Fetch,
        pieces: &mut Vec<(Descriptor, Vec<u8>)>,
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
            let blob = fetch_checked(source, "layer", layer, MAX_BLOB_BYTES)?;
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
            let component = self.get(&layer.digest).ok_or_else(|| missing(layer))?.to_vec();
            policies.push(PolicyArtifact { id, manifest: descriptor, annotations, config, component });
        }
        Ok(policies)
    }
}

fn missing(descriptor: &Descriptor) -> Error {
    Error::Format(format!("{}: referenced but not present", descriptor.digest))
}
