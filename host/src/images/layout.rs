//! Images saved with `cosign save`: an OCI image layout
//! (<https://github.com/opencontainers/image-spec/blob/v1.1.0/image-layout.md>,
//! a directory or the same as a tar file) whose `index.json` names the image
//! and what is attached to it by an annotation `kind`
//! (cosign `pkg/oci/layout/write.go`): `dev.cosignproject.cosign/image` or
//! `/imageIndex` for the image, `/sigs` for its signature manifest, `/atts`
//! for its attestation manifest. Read as an offline source, so that air-gapped
//! CI verifies what was carried in (`palisade check --verify-images --offline
//! --image-layout DIR`).
//!
//! A layout names no repository: its material is found by digest, so a
//! manifest must reference the image by digest (`palisade check --pin` writes
//! such references). Nothing here is trusted: every blob is checked against
//! its digest and bounded, and the signatures and attestations are verified
//! as if they came from a registry.

use std::path::Path;

use super::fetch::{
    DSSE_ENVELOPE_MEDIA_TYPE, LegacyLayer, MAX_ATTESTATION_BYTES, MAX_MATERIAL_BYTES, MAX_SIGNATURE_BYTES,
    MAX_SIGNATURE_LAYERS, Material,
};
use crate::bundle::content::Fetch;
use crate::bundle::layout::Layout;
use crate::bundle::{Descriptor, MAX_MANIFEST_BYTES, Manifest, SIMPLE_SIGNING_MEDIA_TYPE, check_digest, digest_hex};

/// The annotation of an `index.json` entry that says what it is.
pub const KIND: &str = "kind";
const IMAGE: &str = "dev.cosignproject.cosign/image";
const IMAGE_INDEX: &str = "dev.cosignproject.cosign/imageIndex";
const SIGNATURES: &str = "dev.cosignproject.cosign/sigs";
const ATTESTATIONS: &str = "dev.cosignproject.cosign/atts";

/// The image a `cosign save` layout holds, with its signatures and
/// attestations; [`Material::reference`] is empty (the caller names it).
pub fn read(path: &Path) -> Result<Material, String> {
    let at = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
    let mut layout = Layout::open(path).map_err(|e| at(&e))?;
    let entries = layout.index.manifests.clone();
    let of_kind = |kinds: &[&str]| -> Vec<&Descriptor> {
        entries.iter().filter(|d| d.annotation(KIND).is_some_and(|k| kinds.contains(&k))).collect()
    };
    let image = match of_kind(&[IMAGE, IMAGE_INDEX]).as_slice() {
        [one] => (*one).clone(),
        [] => {
            return Err(at(
                &"not a `cosign save` layout: no entry of kind dev.cosignproject.cosign/image or imageIndex",
            ));
        }
        many => return Err(at(&format!("{} images; `cosign save` writes one a layout", many.len()))),
    };
    digest_hex(&image.digest).map_err(|e| at(&e))?;
    let mut budget = MAX_MATERIAL_BYTES;
    let mut layers = |kind: &str, media_type: &str, max: u64| -> Result<Option<Vec<LegacyLayer>>, String> {
        let manifest = match of_kind(&[kind]).as_slice() {
            [] => return Ok(None),
            [one] => (*one).clone(),
            many => return Err(at(&format!("{} entries of kind {kind}; at most one", many.len()))),
        };
        let bytes = layout.fetch(&manifest, MAX_MANIFEST_BYTES).map_err(|e| at(&e))?;
        check_digest(kind, &manifest, &bytes).map_err(|e| at(&e))?;
        let manifest: Manifest =
            serde_json::from_slice(&bytes).map_err(|e| at(&format!("the {kind} manifest is not a manifest: {e}")))?;
        let wanted: Vec<&Descriptor> = manifest.layers.iter().filter(|l| l.media_type == media_type).collect();
        if wanted.len() > MAX_SIGNATURE_LAYERS {
            return Err(at(&format!(
                "the {kind} manifest has {} layers; at most {MAX_SIGNATURE_LAYERS}",
                wanted.len()
            )));
        }
        let mut found = Vec::with_capacity(wanted.len());
        for layer in wanted {
            if layer.size > max.min(budget) {
                return Err(at(&format!(
                    "{}: {} bytes, over the bound of {}",
                    layer.digest,
                    layer.size,
                    max.min(budget)
                )));
            }
            let payload = layout.fetch(layer, max.min(budget)).map_err(|e| at(&e))?;
            check_digest(kind, layer, &payload).map_err(|e| at(&e))?;
            budget = budget.saturating_sub(payload.len() as u64);
            found.push(LegacyLayer { payload, annotations: layer.annotations.clone().unwrap_or_default() });
        }
        Ok(Some(found))
    };
    let legacy = layers(SIGNATURES, SIMPLE_SIGNING_MEDIA_TYPE, MAX_SIGNATURE_BYTES)?.unwrap_or_default();
    // Saved without attestations: there are none, as a registry without an `.att` tag says.
    let attestations = Some(layers(ATTESTATIONS, DSSE_ENVELOPE_MEDIA_TYPE, MAX_ATTESTATION_BYTES)?.unwrap_or_default());
    Ok(Material {
        reference: String::new(),
        digest: image.digest,
        legacy,
        bundles: Vec::new(),
        attestations,
        problems: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_what_is_not_a_cosign_layout() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read(&dir.path().join("missing")).unwrap_err().contains("missing"));
        std::fs::write(dir.path().join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        std::fs::write(dir.path().join("index.json"), r#"{"schemaVersion":2,"manifests":[]}"#).unwrap();
        assert!(read(dir.path()).unwrap_err().contains("not a `cosign save` layout"));
        let entry = |d: char| {
            format!(
                r#"{{"mediaType":"application/vnd.oci.image.index.v1+json","size":1,"digest":"sha256:{}","annotations":{{"kind":"dev.cosignproject.cosign/image"}}}}"#,
                d.to_string().repeat(64)
            )
        };
        let two = format!(r#"{{"schemaVersion":2,"manifests":[{},{}]}}"#, entry('a'), entry('b'));
        std::fs::write(dir.path().join("index.json"), two).unwrap();
        assert!(read(dir.path()).unwrap_err().contains("2 images"));
        // One image, nothing attached: no signatures, no attestations.
        let one = format!(r#"{{"schemaVersion":2,"manifests":[{}]}}"#, entry('a'));
        std::fs::write(dir.path().join("index.json"), one).unwrap();
        let m = read(dir.path()).unwrap();
        assert_eq!(m.digest, format!("sha256:{}", "a".repeat(64)));
        assert!(m.legacy.is_empty() && m.attestations == Some(Vec::new()));
    }
}
