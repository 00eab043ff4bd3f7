//! Loading policy components, reading their metadata, and choosing and
//! configuring the set one run evaluates.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::inventory::Inventory;
use crate::runtime::{CompileProgress, Compiled, Runtime, wit};
use crate::severity::Severity;

/// A rule's metadata as the host keeps it (see `metadata` in `wit/policy.wit`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyMeta {
    pub id: String,
    pub title: String,
    pub description: String,
    pub rationale: String,
    pub remediation: String,
    pub severity: Severity,
    pub category: String,
    pub applies_to: Vec<String>,
    pub reads_kinds: Vec<String>,
    pub settings_schema: Value,
    pub references: Vec<String>,
    /// Built-in profile name → the settings the rule takes in it.
    pub profiles: BTreeMap<String, Value>,
}

/// A compiled policy and what it says of itself.
#[derive(Clone)]
pub struct LoadedPolicy {
    pub meta: PolicyMeta,
    /// `builtin:<crate>` or the file it was loaded from.
    pub origin: String,
    pub compiled: Compiled,
    /// What it reads of an object (its `input.reads`); `None`: whole objects.
    pub view: Option<crate::view::View>,
}

/// A policy chosen for a run, with its effective severity and settings.
#[derive(Clone)]
pub struct ActivePolicy {
    pub policy: Arc<LoadedPolicy>,
    pub severity: Severity,
    /// The settings object passed to the evaluator, as JSON.
    pub settings: String,
    /// The rule's own word that, so configured, it can report nothing.
    pub inactive: Option<String>,
    applies: HashSet<String>,
}

impl ActivePolicy {
    pub fn applies_to(&self, kind: &str) -> bool {
        self.applies.contains(kind) || self.applies.contains("*")
    }

    /// Whether `evaluate` need not be called: the rule says that, so
    /// configured, it can report nothing (`inactive-reason`), and its contract
    /// lets the host take that word (0.3 does; a 0.2.0 rule, whose contract
    /// only shows the reason, is still called). Such a rule counts as
    /// evaluated, with no findings.
    pub fn needs_no_call(&self) -> bool {
        self.inactive.is_some() && self.policy.compiled.contract != "0.2.0"
    }

    pub fn id(&self) -> &str {
        &self.policy.meta.id
    }
}

/// The profiles Palisade knows; a rule lists the ones it belongs to.
pub const PROFILES: [&str; 3] = ["baseline", "restricted", "hardened"];

/// `Err` naming the known profiles (and the closest) unless `name` is one.
pub fn check_profile(name: &str) -> Result<(), String> {
    if PROFILES.contains(&name) {
        return Ok(());
    }
    let hint = crate::suggest::closest(name, PROFILES).map(|p| format!("; did you mean {p:?}?")).unwrap_or_default();
    Err(format!("unknown profile {name:?} (expected one of {}{hint})", PROFILES.join(", ")))
}

/// What a run asks for.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub profile: String,
    /// Passed as the `version` setting to every rule whose settings schema has one.
    pub pss_version: Option<String>,
    pub disable: Vec<String>,
    pub severity: BTreeMap<String, Severity>,
    pub settings: BTreeMap<String, Value>,
}

/// Every policy available to a run: the built-in ones, with any from
/// `--policies` added or replacing a built-in one of the same id.
pub struct Catalog {
    pub runtime: Arc<Runtime>,
    pub policies: Vec<Arc<LoadedPolicy>>,
    /// Ids that came from `--policies`: active whatever the profile.
    pub explicit: HashSet<String>,
}

fn meta_from_wit(m: wit::Metadata) -> Result<PolicyMeta, String> {
    let settings_schema: Value =
        serde_json::from_str(&m.settings_schema).map_err(|e| format!("its settings schema is not JSON: {e}"))?;
    let mut profiles = BTreeMap::new();
    for p in m.profiles {
        let settings: Value = serde_json::from_str(&p.settings)
            .map_err(|e| format!("its settings for profile {} are not JSON: {e}", p.profile))?;
        if !settings.is_object() {
            return Err(format!("its settings for profile {} are not an object", p.profile));
        }
        profiles.insert(p.profile, settings);
    }
    if m.id.is_empty() || !m.id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
        return Err(format!("its id {:?} is not kebab-case", m.id));
    }
    Ok(PolicyMeta {
        id: m.id,
        title: m.title,
        description: m.description,
        rationale: m.rationale,
        remediation: m.remediation,
        severity: m.severity.into(),
        category: m.category,
        applies_to: m.applies_to,
        reads_kinds: m.reads_kinds,
        settings_schema,
        references: m.references,
        profiles,
    })
}

/// Compile and describe one component (refused if it imports WASI).
pub fn load_component(runtime: &Runtime, origin: &str, bytes: &[u8]) -> anyhow::Result<LoadedPolicy> {
    load_hashed(runtime, origin, bytes, &crate::runtime::sha256_hex(bytes), false)
}

/// [`load_component`] when the SHA-256 (`hex`) of `bytes` is known already;
/// `wasi`: the user opted the component into (deny-all) WASI.
fn load_hashed(runtime: &Runtime, origin: &str, bytes: &[u8], hex: &str, wasi: bool) -> anyhow::Result<LoadedPolicy> {
    let mut compiled = runtime.compile_opted(bytes, hex, wasi).map_err(|e| anyhow::anyhow!("{origin}: {e}"))?;
    compiled.name = Arc::from(origin);
    // `describe` is pure: its answer is kept next to the compiled form, under
    // the same digest. An opted-in WASI component is described every time, so
    // what it writes while doing so reaches the policy log as before.
    // So is its `input.reads` answer.
    let cached = if wasi { None } else { runtime.read_cached_meta(hex).and_then(|b| cached_meta::read(&b, hex)) };
    let (meta, reads) = match cached {
        Some(described) => described,
        None => {
            let mut instance = runtime
                .instantiate(&compiled, Arc::new(Inventory::default()))
                .map_err(|e| anyhow::anyhow!("{origin}: cannot instantiate: {e}"))?;
            let meta =
                runtime.describe(&mut instance).map_err(|e| anyhow::anyhow!("{origin}: describe failed: {e}"))?;
            let reads =
                runtime.reads(&mut instance).map_err(|e| anyhow::anyhow!("{origin}: its input.reads failed: {e}"))?;
            // Only an answer that makes a view is kept.
            if let Some(paths) = &reads {
                crate::view::View::new(paths).map_err(|e| anyhow::anyhow!("{origin}: {e}"))?;
            }
            if !wasi && let Some(file) = cached_meta::write(&meta, reads.as_deref(), hex) {
                runtime.write_cached_meta(hex, &file);
            }
            (meta, reads)
        }
    };
    let meta = meta_from_wit(meta).map_err(|e| anyhow::anyhow!("{origin}: {e}"))?;
    let view =
        reads.map(|paths| crate::view::View::new(&paths)).transpose().map_err(|e| anyhow::anyhow!("{origin}: {e}"))?;
    // Its output is logged under its rule id from now on.
    compiled.name = Arc::from(meta.id.as_str());
    Ok(LoadedPolicy { meta, origin: origin.to_string(), compiled, view })
}

/// The metadata file kept next to a compiled component (`<hex>.meta.json`):
/// the component's digest, the metadata as JSON text, and the SHA-256 of that
/// text. A file that is damaged, truncated, or for another component is not
/// used (the component is described again); what it holds goes through the
/// same checks as a fresh `describe` answer ([`meta_from_wit`]).
mod cached_meta {
    use serde::{Deserialize, Serialize};

    use crate::runtime::{sha256_hex, wit};
    use crate::severity::Severity;

    #[derive(Serialize, Deserialize)]
    struct File {
        component: String,
        sha256: String,
        metadata: String,
    }

    /// `wit::Metadata`, field for field.
    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Meta {
        id: String,
        title: String,
        description: String,
        rationale: String,
        remediation: String,
        severity: Severity,
        category: String,
        applies_to: Vec<String>,
        reads_kinds: Vec<String>,
        settings_schema: String,
        references: Vec<String>,
        profiles: Vec<(String, String)>,
        /// The `input.reads` answer (none: whole objects). Required: a file
        /// written before it existed is described again, not read as "whole".
        #[serde(deserialize_with = "Option::deserialize")]
        reads: Option<Vec<String>>,
    }

    pub(super) fn write(m: &wit::Metadata, reads: Option<&[String]>, hex: &str) -> Option<Vec<u8>> {
        let meta = Meta {
            id: m.id.clone(),
            title: m.title.clone(),
            description: m.description.clone(),
            rationale: m.rationale.clone(),
            remediation: m.remediation.clone(),
            severity: m.severity.into(),
            category: m.category.clone(),
            applies_to: m.applies_to.clone(),
            reads_kinds: m.reads_kinds.clone(),
            settings_schema: m.settings_schema.clone(),
            references: m.references.clone(),
            profiles: m.profiles.iter().map(|p| (p.profile.clone(), p.settings.clone())).collect(),
            reads: reads.map(<[String]>::to_vec),
        };
        let metadata = serde_json::to_string(&meta).ok()?;
        let file = File { component: hex.to_string(), sha256: sha256_hex(metadata.as_bytes()), metadata };
        serde_json::to_vec(&file).ok()
    }

    /// The metadata and `input.reads` answer in `bytes`, if they are a whole,
    /// undamaged file for the component `hex`.
    pub(super) fn read(bytes: &[u8], hex: &str) -> Option<(wit::Metadata, Option<Vec<String>>)> {
        let file: File = serde_json::from_slice(bytes).ok()?;
        if file.component != hex || file.sha256 != sha256_hex(file.metadata.as_bytes()) {
            return None;
        }
        let m: Meta = serde_json::from_str(&file.metadata).ok()?;
        let meta = wit::Metadata {
            id: m.id,
            title: m.title,
            description: m.description,
            rationale: m.rationale,
            remediation: m.remediation,
            severity: m.severity.into(),
            category: m.category,
            applies_to: m.applies_to,
            reads_kinds: m.reads_kinds,
            settings_schema: m.settings_schema,
            references: m.references,
            profiles: m
                .profiles
                .into_iter()
                .map(|(profile, settings)| wit::ProfileMembership { profile, settings })
                .collect(),
        };
        Some((meta, m.reads))
    }
}

/// A rule's acceptance of its settings, kept next to its compiled component
/// (`<hex>.settings-<key>.json`) by [`Catalog::validate`]: the key is the
/// SHA-256 of the sandbox limits and the settings text, and the file holds
/// the component's digest, that key and the inactive reason. A file that is
/// damaged or for anything else is not used (the rule is asked again).
mod configured {
    use serde::{Deserialize, Serialize};

    use crate::runtime::{Compiled, Runtime, SandboxLimits, sha256_hex};

    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct File {
        component: String,
        key: String,
        inactive: Option<String>,
    }

    pub(super) struct Key {
        hex: String,
        key: String,
    }

    impl Key {
        /// None where nothing is kept: no cache, or a component opted into
        /// WASI (what it writes while configured goes to the policy log).
        pub(super) fn new(runtime: &Runtime, compiled: &Compiled, settings: &str) -> Option<Key> {
            if compiled.wasi || runtime.cache_dir().is_none() {
                return None;
            }
            let hex = compiled.digest.strip_prefix("sha256:")?.to_string();
            let SandboxLimits { memory_bytes, call_timeout } = runtime.limits;
            let text = format!("memory {memory_bytes}\ntimeout {}\nsettings {settings}", call_timeout.as_nanos());
            Some(Key { hex, key: sha256_hex(text.as_bytes()) })
        }

        pub(super) fn name(&self) -> String {
            format!("settings-{}", &self.key[..32])
        }

        /// The inactive reason kept for this key, if a whole file for it is there.
        pub(super) fn read(&self, runtime: &Runtime) -> Option<Option<String>> {
            let bytes = runtime.read_cached_answer(&self.hex, &self.name())?;
            let file: File = serde_json::from_slice(&bytes).ok()?;
            (file.component == self.hex && file.key == self.key).then_some(file.inactive)
        }

        pub(super) fn write(&self, runtime: &Runtime, inactive: Option<&str>) {
            let file =
                File { component: self.hex.clone(), key: self.key.clone(), inactive: inactive.map(str::to_string) };
            if let Ok(bytes) = serde_json::to_vec(&file) {
                runtime.write_cached_answer(&self.hex, &self.name(), &bytes);
            }
        }
    }
}

/// The `.wasm` files a `--policies` path names (a file, or a directory's files).
pub fn component_files(path: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let meta = std::fs::metadata(path).map_err(|e| anyhow::anyhow!("{}: cannot read: {e}", path.display()))?;
    if !meta.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(|e| anyhow::anyhow!("{}: cannot list: {e}", path.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "wasm") && p.is_file())
        .collect();
    files.sort();
    if files.is_empty() {
        anyhow::bail!("{}: no .wasm policy components in this directory", path.display());
    }
    Ok(files)
}

/// A component from a bundle, with the id its manifest gives it.
pub struct Bundled {
    /// `oci://registry/repo@sha256:…#id`, or the layout path and digest.
    pub origin: String,
    pub id: String,
    /// The SHA-256 of the component in hex: the layer digest the bundle was
    /// checked against when it was read, so it is not hashed again.
    pub hex: String,
    pub component: BundledBytes,
}

/// A bundled component's bytes, or what stands for them when the bundle was
/// read without keeping them.
pub enum BundledBytes {
    Kept(Vec<u8>),
    /// Checked against the digest and not kept, its compiled form being in
    /// the cache: `size` bytes, and how to read (and check) them again should
    /// that compiled form not load after all.
    Unkept {
        size: u64,
        reread: Reread,
    },
}

/// Reads a bundled component again; see [`BundledBytes::Unkept`].
pub type Reread = Box<dyn Fn() -> anyhow::Result<Vec<u8>> + Send + Sync>;

/// A component to load.
struct Source {
    origin: String,
    component: Component,
    /// The SHA-256 of the component, in hex.
    hex: Cow<'static, str>,
    /// Given on the command line (`--policies`), not a base set's.
    extra: bool,
    /// Opted into (deny-all) WASI.
    wasi: bool,
}

/// A [`Source`]'s component: its bytes, or (bundled, not kept) its size and
/// how to read it again.
enum Component {
    Bytes(Cow<'static, [u8]>),
    Unkept { size: u64, reread: Reread },
}

impl Source {
    fn new(origin: String, bytes: Cow<'static, [u8]>, hex: Cow<'static, str>, extra: bool, wasi: bool) -> Source {
        Source { origin, component: Component::Bytes(bytes), hex, extra, wasi }
    }

    fn size(&self) -> u64 {
        match &self.component {
            Component::Bytes(bytes) => bytes.len() as u64,
            Component::Unkept { size, .. } => *size,
        }
    }

    /// Compiled (or its compiled form loaded) and described. A component
    /// without its bytes is loaded from the cache, and read again (and
    /// checked again) when that fails: the cache entry went, or is damaged.
    fn load(&self, runtime: &Runtime) -> anyhow::Result<LoadedPolicy> {
        let (size, reread) = match &self.component {
            Component::Bytes(bytes) => return load_hashed(runtime, &self.origin, bytes, &self.hex, self.wasi),
            Component::Unkept { size, reread } => (size, reread),
        };
        let mut loaded = match load_hashed(runtime, &self.origin, &[], &self.hex, false) {
            Ok(loaded) => loaded,
            Err(_) => load_hashed(runtime, &self.origin, &reread()?, &self.hex, false)?,
        };
        loaded.compiled.size = usize::try_from(*size).unwrap_or(usize::MAX);
        Ok(loaded)
    }
}

impl Catalog {
    /// Load the built-in components (or those of a bundle) and those at
    /// `extra` paths, compiling in parallel.
    pub fn load(runtime: Arc<Runtime>, builtin: bool, extra: &[PathBuf]) -> anyhow::Result<Catalog> {
        Catalog::load_with(runtime, builtin, Vec::new(), extra)
    }

    /// As [`Catalog::load`], with the components of a bundle as the base set.
    pub fn load_with(
        runtime: Arc<Runtime>,
        builtin: bool,
        bundled: Vec<Bundled>,
        extra: &[PathBuf],
    ) -> anyhow::Result<Catalog> {
        Catalog::load_opted(runtime, builtin, bundled, extra, &[])
    }

    /// As [`Catalog::load_with`], with `extra_wasi`: components (files or
    /// directories) the user opted into WASI (`--policies-wasi`). They run under
    /// the deny-all context of [`crate::wasi`]; a component that imports WASI
    /// from anywhere else is refused.
    pub fn load_opted(
        runtime: Arc<Runtime>,
        builtin: bool,
        bundled: Vec<Bundled>,
        extra: &[PathBuf],
        extra_wasi: &[PathBuf],
    ) -> anyhow::Result<Catalog> {
        let mut sources: Vec<Source> = Vec::new();
        if builtin {
            for (i, (name, bytes)) in crate::builtin::BUILTIN.iter().enumerate() {
                // Hashed by the build script; the fallback is never taken.
                let hex = crate::builtin::BUILTIN_SHA256
                    .get(i)
                    .map_or_else(|| Cow::Owned(crate::runtime::sha256_hex(bytes)), |hex| Cow::Borrowed(*hex));
                sources.push(Source::new(format!("builtin:{name}"), Cow::Borrowed(*bytes), hex, false, false));
            }
        }
        let mut expected_ids = std::collections::HashMap::new();
        for b in bundled {
            expected_ids.insert(b.origin.clone(), b.id);
            let component = match b.component {
                BundledBytes::Kept(bytes) => Component::Bytes(Cow::Owned(bytes)),
                BundledBytes::Unkept { size, reread } => Component::Unkept { size, reread },
            };
            sources.push(Source { origin: b.origin, component, hex: Cow::Owned(b.hex), extra: false, wasi: false });
        }
        let extras = extra.iter().map(|p| (p, false)).chain(extra_wasi.iter().map(|p| (p, true)));
        for (path, wasi) in extras {
            for file in component_files(path)? {
                let bytes =
                    std::fs::read(&file).map_err(|e| anyhow::anyhow!("{}: cannot read: {e}", file.display()))?;
                let hex = crate::runtime::sha256_hex(&bytes);
                sources.push(Source::new(file.display().to_string(), Cow::Owned(bytes), Cow::Owned(hex), true, wasi));
            }
        }
        let to_compile = sources.iter().filter(|s| !runtime.is_cached(&s.hex)).count();
        if to_compile > 0 {
            runtime.report(CompileProgress::Started { total: to_compile });
        }
        let compiled = std::sync::atomic::AtomicUsize::new(0);
        // The largest first: compiling (or loading the compiled form) takes time with the size.
        let results = crate::parallel::map_largest_first(&sources, Source::size, |source| {
            let loaded = source.load(&runtime);
            if loaded.as_ref().is_ok_and(|l| !l.compiled.cached) && to_compile > 0 {
                let done = compiled.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                runtime.report(CompileProgress::Compiled { done: done.min(to_compile), total: to_compile });
            }
            loaded
        });
        if to_compile > 0 {
            runtime.report(CompileProgress::Finished { total: to_compile });
        }
        let mut policies: Vec<Arc<LoadedPolicy>> = Vec::new();
        let mut explicit = HashSet::new();
        for (result, Source { extra: is_extra, .. }) in results.into_iter().zip(&sources) {
            let loaded = result?;
            let id = loaded.meta.id.clone();
            if let Some(expected) = expected_ids.get(&loaded.origin)
                && *expected != id
            {
                anyhow::bail!("{}: the bundle names it {expected}, but the component says it is {id}", loaded.origin);
            }
            if *is_extra {
                if explicit.contains(&id) {
                    anyhow::bail!("{}: a second policy with the id {id}", loaded.origin);
                }
                explicit.insert(id.clone());
                policies.retain(|p| p.meta.id != id);
            } else if policies.iter().any(|p| p.meta.id == id) {
                anyhow::bail!("{}: a second policy with the id {id} in the base set", loaded.origin);
            }
            policies.push(Arc::new(loaded));
        }
        policies.sort_by(|a, b| a.meta.id.cmp(&b.meta.id));
        Ok(Catalog { runtime, policies, explicit })
    }

    pub fn get(&self, id: &str) -> Option<&Arc<LoadedPolicy>> {
        self.policies.iter().find(|p| p.meta.id == id)
    }

    /// `" (did you mean \"rule\"?)"` for a mistyped rule id, else nothing.
    pub fn did_you_mean(&self, id: &str) -> String {
        crate::suggest::did_you_mean(id, self.policies.iter().map(|p| p.meta.id.as_str()))
    }

    /// Choose and configure the policies of a run. Every problem is returned,
    /// each naming the rule and the key.
    pub fn select(&self, selection: &Selection) -> Result<Vec<ActivePolicy>, Vec<String>> {
        let mut errors = Vec::new();
        if let Err(e) = check_profile(&selection.profile) {
            errors.push(e);
        }
        let known = |id: &str| self.get(id).is_some();
        let hint = |id: &str| self.did_you_mean(id);
        for id in &selection.disable {
            if !known(id) {
                errors.push(format!("disable: no rule with the id {id:?}{}", hint(id)));
            }
        }
        for id in selection.severity.keys() {
            if !known(id) {
                errors.push(format!("severity.{id}: no rule with this id{}", hint(id)));
            }
        }
        for id in selection.settings.keys() {
            if !known(id) {
                errors.push(format!("settings.{id}: no rule with this id{}", hint(id)));
            }
        }
        // The settings of each chosen rule, then each rule asked about them: an
        // instance each, made on as many threads as there are cores.
        let mut chosen = Vec::new();
        for policy in &self.policies {
            let meta = &policy.meta;
            let in_profile = meta.profiles.get(&selection.profile);
            if !(in_profile.is_some() || self.explicit.contains(&meta.id)) || selection.disable.contains(&meta.id) {
                continue;
            }
            let mut settings = Map::new();
            if let Some(Value::Object(profile_settings)) = in_profile {
                settings.extend(profile_settings.clone());
            }
            let takes_version = meta.settings_schema.get("properties").and_then(|p| p.get("version")).is_some();
            if let (Some(v), true) = (&selection.pss_version, takes_version) {
                settings.insert("version".into(), Value::String(v.clone()));
            }
            if let Some(Value::Object(user)) = selection.settings.get(&meta.id) {
                settings.extend(user.clone());
            }
            chosen.push((policy, Value::Object(settings).to_string()));
        }
        let validated = crate::parallel::map(&chosen, |(policy, settings)| self.validate(policy, settings));
        let mut active = Vec::new();
        for ((policy, settings), inactive) in chosen.into_iter().zip(validated) {
            let inactive = match inactive {
                Ok(inactive) => inactive,
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            };
            let meta = &policy.meta;
            active.push(ActivePolicy {
                policy: policy.clone(),
                severity: selection.severity.get(&meta.id).copied().unwrap_or(meta.severity),
                settings,
                inactive,
                applies: meta.applies_to.iter().cloned().collect(),
            });
        }
        if errors.is_empty() { Ok(active) } else { Err(errors) }
    }

    /// Ask the policy itself whether it accepts `settings` (once per load), and
    /// whether, so configured, it can report anything.
    ///
    /// An acceptance given without calling a host import depends on the
    /// component, the settings and the sandbox limits alone (a rule has no
    /// clock, no randomness and no other input): it is kept next to the
    /// compiled code ([`configured`]), and a later start with the same three
    /// reads it instead of making an instance to ask again. A rule that asks
    /// the image verifier (about its trust policies) is asked at every start.
    fn validate(&self, policy: &LoadedPolicy, settings: &str) -> Result<Option<String>, String> {
        let id = &policy.meta.id;
        let kept = configured::Key::new(&self.runtime, &policy.compiled, settings);
        if let Some(inactive) = kept.as_ref().and_then(|key| key.read(&self.runtime)) {
            return Ok(inactive);
        }
        let mut instance = self
            .runtime
            .instantiate(&policy.compiled, Arc::new(Inventory::default()))
            .map_err(|e| format!("{id}: cannot instantiate: {e}"))?;
        match self.runtime.configure(&mut instance, settings) {
            Ok(Ok(())) => {
                let inactive = self
                    .runtime
                    .inactive_reason(&mut instance)
                    .map_err(|e| format!("{id}: asking whether the rule is configured failed: {e}"))?;
                if let Some(key) = kept
                    && self.runtime.host_calls(&instance) == 0
                {
                    key.write(&self.runtime, inactive.as_deref());
                }
                Ok(inactive)
            }
            Ok(Err(e)) => {
                // A pointer names a setting of the rule; anything else, a key of
                // the configuration file outside `settings` the rule reads
                // through the host (a trust policy's `attestations`).
                let key = if !e.field.is_empty() && !e.field.starts_with('/') {
                    e.field.clone()
                } else {
                    let field = e.field.trim_start_matches('/').replace('/', ".");
                    if field.is_empty() { format!("settings.{id}") } else { format!("settings.{id}.{field}") }
                };
                Err(format!("{key}: {}", crate::suggest::unknown_field(&e.message)))
            }
            Err(e) => Err(format!("{id}: configuring the rule failed: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::{SandboxLimits, sha256_hex};

    /// The build script's own SHA-256, checked against `sha2` here.
    mod build_sha256 {
        include!(concat!(env!("CARGO_MANIFEST_DIR"), "/build/sha256.rs"));
    }

    #[test]
    fn the_build_scripts_sha256_is_sha256() {
        assert_eq!(build_sha256::sha256_hex(b""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        assert_eq!(
            build_sha256::sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        // Every way the padding can fall: lengths around one and two blocks.
        let data: Vec<u8> = (0..300u32).map(|i| (i * 7 + 3) as u8).collect();
        for len in [1, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 129, 300] {
            assert_eq!(build_sha256::sha256_hex(&data[..len]), sha256_hex(&data[..len]), "{len} bytes");
        }
    }

    #[test]
    fn built_in_hashes_are_those_of_the_built_in_components() {
        let builtin = crate::builtin::BUILTIN;
        assert_eq!(crate::builtin::BUILTIN_SHA256.len(), builtin.len());
        for ((name, bytes), hex) in builtin.iter().zip(crate::builtin::BUILTIN_SHA256) {
            assert_eq!(*hex, sha256_hex(bytes), "{name}");
        }
    }

    fn metadata() -> wit::Metadata {
        wit::Metadata {
            id: "a-rule".into(),
            title: "A \"rule\"\nover lines".into(),
            description: "d".into(),
            rationale: "r".into(),
            remediation: "fix ✓".into(),
            severity: wit::Severity::High,
            category: "c".into(),
            applies_to: vec!["Pod".into(), "Deployment".into()],
            reads_kinds: vec![],
            settings_schema: r#"{"type":"object"}"#.into(),
            references: vec!["https://example.com".into()],
            profiles: vec![wit::ProfileMembership { profile: "hardened".into(), settings: r#"{"x":1}"#.into() }],
        }
    }

    fn same(a: &wit::Metadata, b: &wit::Metadata) -> bool {
        let (a, b) = (meta_from_wit(a.clone()).unwrap(), meta_from_wit(b.clone()).unwrap());
        serde_json::to_value(a).unwrap() == serde_json::to_value(b).unwrap()
    }

    #[test]
    fn cached_metadata_round_trips_and_damage_is_refused() {
        let hex = "ab".repeat(32);
        let reads = vec!["/kind".to_string(), "/spec/containers/*/image".to_string()];
        let file = cached_meta::write(&metadata(), Some(&reads), &hex).unwrap();
        let (read, read_paths) = cached_meta::read(&file, &hex).expect("read back");
        assert!(same(&read, &metadata()));
        assert_eq!(read_paths, Some(reads));
        let whole = cached_meta::write(&metadata(), None, &hex).unwrap();
        assert_eq!(cached_meta::read(&whole, &hex).expect("read back").1, None);
        // Another component's file, a truncated one, garbage.
        assert!(cached_meta::read(&file, &"cd".repeat(32)).is_none());
        assert!(cached_meta::read(&file[..file.len() - 1], &hex).is_none());
        assert!(cached_meta::read(b"\0\xff not json", &hex).is_none());
        assert!(cached_meta::read(b"{}", &hex).is_none());
        // One character of the metadata changed (the file still parses): its checksum no longer matches.
        let text = String::from_utf8(file.clone()).unwrap();
        let flipped = text.replacen("hardened", "hardenes", 1);
        assert_ne!(flipped, text);
        assert!(serde_json::from_str::<Value>(&flipped).is_ok());
        assert!(cached_meta::read(flipped.as_bytes(), &hex).is_none());
    }

    /// The smallest built-in component.
    fn small_builtin() -> (&'static str, &'static [u8], &'static str) {
        let i = (0..crate::builtin::BUILTIN.len()).min_by_key(|&i| crate::builtin::BUILTIN[i].1.len()).unwrap();
        let (name, bytes) = crate::builtin::BUILTIN[i];
        (name, bytes, crate::builtin::BUILTIN_SHA256[i])
    }

    #[test]
    fn describe_is_cached_by_digest_and_a_damaged_cache_is_described_again() {
        let cache = tempfile::tempdir().unwrap();
        let runtime = Runtime::new(Some(cache.path().to_path_buf()), SandboxLimits::default()).unwrap();
        let (name, bytes, hex) = small_builtin();
        let fresh = load_hashed(&runtime, name, bytes, hex, false).unwrap();
        let dir = runtime.cache_dir().unwrap().to_path_buf();
        let meta_file = dir.join(format!("{hex}.meta.json"));
        let written = std::fs::read(&meta_file).expect("the metadata is kept next to the compiled component");
        assert!(dir.join(format!("{hex}.cwasm")).is_file());

        // A valid file is used as it is: no instance, no call.
        let (mut changed, reads) = cached_meta::read(&written, hex).unwrap();
        assert_eq!(fresh.view.is_some(), reads.is_some());
        changed.title = "from the cache".into();
        let paths = vec!["/kind".to_string()];
        std::fs::write(&meta_file, cached_meta::write(&changed, Some(&paths), hex).unwrap()).unwrap();
        let loaded = load_hashed(&runtime, name, bytes, hex, false).unwrap();
        assert!(loaded.compiled.cached);
        assert_eq!(loaded.meta.title, "from the cache");
        assert_eq!(loaded.view, Some(crate::view::View::new(&paths).unwrap()));
        assert_eq!(&*loaded.compiled.name, fresh.meta.id.as_str());

        // Damaged, truncated, or another component's: described again, and the file rewritten.
        let other = cached_meta::write(&changed, None, &"0".repeat(64)).unwrap();
        for damaged in [b"garbage".to_vec(), written[..written.len() / 2].to_vec(), other] {
            std::fs::write(&meta_file, &damaged).unwrap();
            let loaded = load_hashed(&runtime, name, bytes, hex, false).unwrap();
            assert_eq!(serde_json::to_value(&loaded.meta).unwrap(), serde_json::to_value(&fresh.meta).unwrap());
            assert_eq!(loaded.view, fresh.view);
            assert_eq!(std::fs::read(&meta_file).unwrap(), written);
        }
    }

    #[test]
    fn an_acceptance_given_without_host_calls_is_kept_and_read_back() {
        let cache = tempfile::tempdir().unwrap();
        let runtime = Arc::new(Runtime::new(Some(cache.path().to_path_buf()), SandboxLimits::default()).unwrap());
        let load = |name: &str| {
            let i = crate::builtin::BUILTIN.iter().position(|(n, _)| *n == name).expect(name);
            let (_, bytes) = crate::builtin::BUILTIN[i];
            Arc::new(load_hashed(&runtime, name, bytes, crate::builtin::BUILTIN_SHA256[i], false).unwrap())
        };
        // image-registry answers from its settings alone; image-signature asks the
        // image verifier about its trust policies.
        let (registry, signature) = (load("image-registry"), load("image-signature"));
        let catalog = Catalog { runtime: runtime.clone(), policies: vec![], explicit: HashSet::new() };
        let kept = |policy: &LoadedPolicy| -> Vec<std::path::PathBuf> {
            let hex = policy.compiled.digest.trim_start_matches("sha256:");
            std::fs::read_dir(runtime.cache_dir().unwrap())
                .unwrap()
                .flatten()
                .map(|e| e.path())
                .filter(|p| {
                    let name = p.file_name().unwrap().to_string_lossy();
                    name.starts_with(hex) && name.contains(".settings-")
                })
                .collect()
        };
        let unset = catalog.validate(&registry, "{}").unwrap();
        assert!(unset.is_some(), "no allowed registries: inactive");
        assert_eq!(kept(&registry).len(), 1);
        let set = catalog.validate(&registry, r#"{"allowed":["registry.example.com"]}"#).unwrap();
        assert_eq!(set, None);
        assert_eq!(kept(&registry).len(), 2, "one answer per settings");
        assert!(catalog.validate(&signature, "{}").unwrap().is_some());
        assert!(kept(&signature).is_empty(), "an answer that called the host is not kept");
        // Refused settings are not kept either.
        assert!(catalog.validate(&registry, r#"{"allowed":7}"#).is_err());
        assert_eq!(kept(&registry).len(), 2);

        // A kept answer is read back: no instance is made to ask again.
        let key = configured::Key::new(&runtime, &registry.compiled, "{}").unwrap();
        key.write(&runtime, Some("from the cache"));
        assert_eq!(catalog.validate(&registry, "{}").unwrap().as_deref(), Some("from the cache"));
        // Other limits are another key.
        let strict = Runtime::new(
            Some(cache.path().to_path_buf()),
            SandboxLimits { memory_bytes: 32 << 20, ..SandboxLimits::default() },
        )
        .unwrap();
        assert_ne!(
            configured::Key::new(&strict, &registry.compiled, "{}").unwrap().name(),
            key.name(),
            "the limits are part of the key"
        );
        // Damaged or another key's: asked again, and the answer written anew.
        let dir = runtime.cache_dir().unwrap();
        let hex = registry.compiled.digest.trim_start_matches("sha256:");
        let file = dir.join(format!("{hex}.{}.json", key.name()));
        let other =
            configured::Key::new(&runtime, &registry.compiled, r#"{"allowed":["registry.example.com"]}"#).unwrap();
        let other = std::fs::read(dir.join(format!("{hex}.{}.json", other.name()))).unwrap();
        for damaged in [b"garbage".to_vec(), other] {
            std::fs::write(&file, damaged).unwrap();
            assert_eq!(catalog.validate(&registry, "{}").unwrap(), unset);
            assert_eq!(key.read(&runtime), Some(unset.clone()));
        }
    }

    #[test]
    fn built_in_pod_rules_say_what_they_read_and_object_rules_read_whole_objects() {
        let runtime = Runtime::new(None, SandboxLimits::default()).unwrap();
        let load = |name: &str| {
            let i = crate::builtin::BUILTIN.iter().position(|(n, _)| *n == name).expect(name);
            let (_, bytes) = crate::builtin::BUILTIN[i];
            load_hashed(&runtime, name, bytes, crate::builtin::BUILTIN_SHA256[i], false).unwrap()
        };
        // pss-privileged reads each container's name and securityContext (and
        // what every pod rule reads), not its image.
        let view = load("pss-privileged").view.expect("a pod rule answers input.reads");
        let pod = serde_json::json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "labels": {"a": "b"}, "managedFields": [{"manager": "kubectl"}]},
            "spec": {"hostNetwork": true, "containers": [
                {"name": "c", "image": "i", "env": [{"name": "E"}], "securityContext": {"privileged": true}}
            ]},
            "status": {"phase": "Running"}
        })
        .to_string();
        assert_eq!(
            view.prune(&pod, &crate::view::Tape::read(&pod)),
            r#"{"kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"c","securityContext":{"privileged":true}}],"hostNetwork":true}}"#
        );
        assert!(load("rbac-wildcard").view.is_none(), "an object rule reads whole objects");
    }
}
