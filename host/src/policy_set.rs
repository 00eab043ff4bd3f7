//! Loading policy components, reading their metadata, and choosing and
//! configuring the set one run evaluates.

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
        severity: match m.severity {
            wit::Severity::Info => Severity::Info,
            wit::Severity::Low => Severity::Low,
            wit::Severity::Medium => Severity::Medium,
            wit::Severity::High => Severity::High,
            wit::Severity::Critical => Severity::Critical,
        },
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
    let mut instance = runtime
        .instantiate(&compiled, Arc::new(Inventory::default()))
        .map_err(|e| anyhow::anyhow!("{origin}: cannot instantiate: {e}"))?;
    let meta = runtime.describe(&mut instance).map_err(|e| anyhow::anyhow!("{origin}: describe failed: {e}"))?;
    let meta = meta_from_wit(meta).map_err(|e| anyhow::anyhow!("{origin}: {e}"))?;
    // Its output is logged under its rule id from now on.
    compiled.name = Arc::from(meta.id.as_str());
    Ok(LoadedPolicy { meta, origin: origin.to_string(), compiled })
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
    pub bytes: Vec<u8>,
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
        // (origin, bytes, from the command line, opted into WASI)
        let mut sources: Vec<(String, std::borrow::Cow<'static, [u8]>, bool, bool)> = Vec::new();
        if builtin {
            for (name, bytes) in crate::builtin::BUILTIN {
                sources.push((format!("builtin:{name}"), std::borrow::Cow::Borrowed(*bytes), false, false));
            }
        }
        let mut expected_ids = std::collections::HashMap::new();
        for b in bundled {
            expected_ids.insert(b.origin.clone(), b.id);
            sources.push((b.origin, std::borrow::Cow::Owned(b.bytes), false, false));
        }
        let extras = extra.iter().map(|p| (p, false)).chain(extra_wasi.iter().map(|p| (p, true)));
        for (path, wasi) in extras {
            for file in component_files(path)? {
                let bytes =
                    std::fs::read(&file).map_err(|e| anyhow::anyhow!("{}: cannot read: {e}", file.display()))?;
                sources.push((file.display().to_string(), std::borrow::Cow::Owned(bytes), true, wasi));
            }
        }
        let hashes: Vec<String> = sources.iter().map(|(_, bytes, _, _)| crate::runtime::sha256_hex(bytes)).collect();
        let to_compile = hashes.iter().filter(|hex| !runtime.is_cached(hex)).count();
        if to_compile > 0 {
            runtime.report(CompileProgress::Started { total: to_compile });
        }
        let compiled = std::sync::atomic::AtomicUsize::new(0);
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get()).min(sources.len().max(1));
        let next = std::sync::atomic::AtomicUsize::new(0);
        let mut results: Vec<Option<anyhow::Result<LoadedPolicy>>> = (0..sources.len()).map(|_| None).collect();
        let slots: Vec<std::sync::Mutex<&mut Option<anyhow::Result<LoadedPolicy>>>> =
            results.iter_mut().map(std::sync::Mutex::new).collect();
        std::thread::scope(|scope| {
            for _ in 0..threads {
                scope.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some((origin, bytes, _, wasi)) = sources.get(i) else {
                            break;
                        };
                        let loaded = load_hashed(&runtime, origin, bytes, &hashes[i], *wasi);
                        if loaded.as_ref().is_ok_and(|l| !l.compiled.cached) && to_compile > 0 {
                            let done = compiled.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                            runtime.report(CompileProgress::Compiled { done: done.min(to_compile), total: to_compile });
                        }
                        if let Ok(mut slot) = slots[i].lock() {
                            **slot = Some(loaded);
                        }
                    }
                });
            }
        });
        drop(slots);
        if to_compile > 0 {
            runtime.report(CompileProgress::Finished { total: to_compile });
        }
        let mut policies: Vec<Arc<LoadedPolicy>> = Vec::new();
        let mut explicit = HashSet::new();
        for (result, (_, _, is_extra, _)) in results.into_iter().zip(&sources) {
            let loaded = result.ok_or_else(|| anyhow::anyhow!("a policy was not loaded"))??;
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
        let mut active = Vec::new();
        for policy in &self.policies {
            let meta = &policy.meta;
            let in_profile = meta.profiles.get(&selection.profile);
            let chosen = in_profile.is_some() || self.explicit.contains(&meta.id);
            if !chosen || selection.disable.contains(&meta.id) {
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
            let settings = Value::Object(settings).to_string();
            let inactive = match self.validate(policy, &settings) {
                Ok(inactive) => inactive,
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            };
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
    fn validate(&self, policy: &LoadedPolicy, settings: &str) -> Result<Option<String>, String> {
        let id = &policy.meta.id;
        let mut instance = self
            .runtime
            .instantiate(&policy.compiled, Arc::new(Inventory::default()))
            .map_err(|e| format!("{id}: cannot instantiate: {e}"))?;
        match self.runtime.configure(&mut instance, settings) {
            Ok(Ok(())) => self
                .runtime
                .inactive_reason(&mut instance)
                .map_err(|e| format!("{id}: asking whether the rule is configured failed: {e}")),
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
