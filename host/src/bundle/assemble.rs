//! Making OCI artifacts of policy components: one Wasm OCI artifact per
//! policy, and an index of them for a bundle. The output is reproducible: the
//! same components, name and version give the same digests (times come from
//! `SOURCE_DATE_EPOCH`, else the Unix epoch).

use std::collections::BTreeMap;

use super::content::Content;
use super::{
    CONTRACT_PACKAGE, CONTRACT_VERSION, ComponentInfo, Descriptor, Error, INDEX_MEDIA_TYPE, Index, MANIFEST_MEDIA_TYPE,
    Manifest, Platform, Result, RootFs, WASM_CONFIG_MEDIA_TYPE, WASM_LAYER_MEDIA_TYPE, WasmConfig, annotations,
};
use crate::policy_set::{PolicyMeta, load_component};
use crate::runtime::Runtime;

/// What a bundle says about itself.
#[derive(Debug, Clone)]
pub struct BundleInfo {
    pub name: String,
    pub version: String,
    /// `org.opencontainers.image.source`: where the policies' source is.
    pub source: Option<String>,
    /// `org.opencontainers.image.licenses`, an SPDX expression.
    pub licenses: Option<String>,
}

impl BundleInfo {
    /// The source and licence annotations, on a policy manifest or the index.
    fn annotate(&self, notes: &mut BTreeMap<String, String>) {
        if let Some(source) = &self.source {
            notes.insert(annotations::SOURCE.into(), source.clone());
        }
        if let Some(licenses) = &self.licenses {
            notes.insert(annotations::LICENSES.into(), licenses.clone());
        }
    }

    pub fn check(&self) -> Result<()> {
        let name_ok = !self.name.is_empty()
            && self.name.len() <= 128
            && self.name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-._".contains(&b));
        if !name_ok {
            return Err(Error::Format(format!(
                "bundle name {:?}: use lowercase letters, digits, '-', '.' and '_'",
                self.name
            )));
        }
        if !is_semver(&self.version) {
            return Err(Error::Format(format!(
                "bundle version {:?} is not a semantic version (MAJOR.MINOR.PATCH, as 1.4.0 or 2.0.0-rc.1)",
                self.version
            )));
        }
        Ok(())
    }
}

/// MAJOR.MINOR.PATCH with an optional pre-release and build part, which is
/// also a valid OCI tag once `+` is avoided (tags cannot hold it).
pub fn is_semver(version: &str) -> bool {
    let (core, rest) = match version.find(['-', '+']) {
        Some(i) => (&version[..i], &version[i..]),
        None => (version, ""),
    };
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && (p.len() == 1 || !p.starts_with('0')))
        && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b"-.+".contains(&b))
        && !rest.contains('+')
        && version.len() <= 128
}

/// `SOURCE_DATE_EPOCH` as RFC 3339, else the Unix epoch.
pub fn created() -> String {
    let seconds = std::env::var("SOURCE_DATE_EPOCH").ok().and_then(|s| s.trim().parse::<i64>().ok()).unwrap_or(0);
    chrono::DateTime::from_timestamp(seconds, 0).unwrap_or_default().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn contract() -> String {
    format!("{CONTRACT_PACKAGE}@{CONTRACT_VERSION}")
}

/// One policy as a Wasm OCI artifact: its config, its layer and its manifest,
/// the manifest last.
pub fn policy_artifact(
    runtime: &Runtime,
    origin: &str,
    component: &[u8],
    info: &BundleInfo,
) -> anyhow::Result<(PolicyMeta, Content)> {
    let loaded = load_component(runtime, origin, component)?;
    let meta = loaded.meta;
    let (imports, exports) = runtime.interfaces(&loaded.compiled);
    let layer = Descriptor::of(WASM_LAYER_MEDIA_TYPE, component);
    let created = created();
    let config = WasmConfig {
        created: created.clone(),
        author: None,
        architecture: "wasm".into(),
        os: "wasip2".into(),
        layer_digests: vec![layer.digest.clone()],
        component: Some(ComponentInfo {
            exports,
            imports,
            target: Some(format!("{CONTRACT_PACKAGE}/rule@{CONTRACT_VERSION}")),
        }),
        rootfs: Some(RootFs { kind: "layers".into(), diff_ids: vec![layer.digest.clone()] }),
    };
    let config_bytes = serde_json::to_vec(&config)?;
    let config_descriptor = Descriptor::of(WASM_CONFIG_MEDIA_TYPE, &config_bytes);
    let mut notes = BTreeMap::from([
        (annotations::TITLE.to_string(), meta.title.clone()),
        (annotations::VERSION.to_string(), info.version.clone()),
        (annotations::DESCRIPTION.to_string(), meta.description.clone()),
        (annotations::CREATED.to_string(), created),
        (annotations::POLICY_ID.to_string(), meta.id.clone()),
        (annotations::POLICY_SEVERITY.to_string(), meta.severity.to_string()),
        (annotations::POLICY_CATEGORY.to_string(), meta.category.clone()),
        (annotations::POLICY_KINDS.to_string(), meta.applies_to.join(",")),
        (annotations::CONTRACT.to_string(), contract()),
    ]);
    info.annotate(&mut notes);
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(MANIFEST_MEDIA_TYPE.into()),
        config: config_descriptor.clone(),
        layers: vec![layer.clone()],
        annotations: Some(notes),
    };
    let manifest_bytes = serde_json::to_vec(&manifest)?;
    let root = Descriptor::of(MANIFEST_MEDIA_TYPE, &manifest_bytes);
    let pieces = vec![(config_descriptor, config_bytes), (layer, component.to_vec()), (root.clone(), manifest_bytes)];
    Ok((meta, Content { root, pieces }))
}

/// A bundle: every component as an artifact, and the index of them.
pub fn bundle(runtime: &Runtime, components: &[(String, Vec<u8>)], info: &BundleInfo) -> anyhow::Result<Content> {
    info.check()?;
    let mut policies = Vec::new();
    for (origin, bytes) in components {
        policies.push(policy_artifact(runtime, origin, bytes, info)?);
    }
    policies.sort_by(|a, b| a.0.id.cmp(&b.0.id));
    if let Some(pair) = policies.windows(2).find(|w| w[0].0.id == w[1].0.id) {
        anyhow::bail!(
            "two policies with the id {} ({} and {})",
            pair[0].0.id,
            pair[0].1.root.digest,
            pair[1].1.root.digest
        );
    }
    if policies.is_empty() {
        anyhow::bail!("no policies to bundle");
    }
    let mut pieces = Vec::new();
    let mut entries = Vec::new();
    for (meta, content) in policies {
        let mut entry = content.root.clone();
        entry.platform = Some(Platform { architecture: "wasm".into(), os: "wasip2".into() });
        entry.annotations = Some(BTreeMap::from([
            (annotations::POLICY_ID.to_string(), meta.id.clone()),
            (annotations::TITLE.to_string(), meta.title.clone()),
        ]));
        entries.push(entry);
        pieces.extend(content.pieces);
    }
    let mut notes = BTreeMap::from([
        (annotations::TITLE.to_string(), info.name.clone()),
        (annotations::VERSION.to_string(), info.version.clone()),
        (annotations::CREATED.to_string(), created()),
        (annotations::BUNDLE_NAME.to_string(), info.name.clone()),
        (annotations::BUNDLE_VERSION.to_string(), info.version.clone()),
        (annotations::CONTRACT.to_string(), contract()),
    ]);
    info.annotate(&mut notes);
    let index = Index {
        schema_version: 2,
        media_type: Some(INDEX_MEDIA_TYPE.into()),
        manifests: entries,
        annotations: Some(notes),
    };
    let bytes = serde_json::to_vec(&index)?;
    let root = Descriptor::of(INDEX_MEDIA_TYPE, &bytes);
    pieces.push((root.clone(), bytes));
    Ok(Content { root, pieces })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        for good in ["1.0.0", "0.2.10", "2.0.0-rc.1"] {
            assert!(is_semver(good), "{good}");
        }
        for bad in ["1.0", "01.0.0", "1.0.0+build", "v1.0.0", "1.0.0/x", ""] {
            assert!(!is_semver(bad), "{bad}");
        }
    }

    #[test]
    fn contract_matches_the_wit() {
        let wit = include_str!("../../../wit/policy.wit");
        assert!(wit.contains(&format!("package {};", contract())), "CONTRACT_VERSION differs from wit/policy.wit");
    }
}
