//! The sandbox every policy runs in: one wasmtime engine, components compiled
//! once and cached on disk, and instances with no capabilities but the
//! `inventory` import, a memory limit and a deadline per call. A component
//! that imports WASI runs only when the user opted it in, under a WASI context
//! that grants nothing ([`crate::wasi`]); any other is refused.
//!
//! Everything a component can grow is bounded: linear memory, table elements,
//! the number of instances, tables and memories, the time of each call (and
//! of the request it serves), and the size and number of the violations it
//! returns.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use wasmtime::component::{Component, HasSelf, Linker, ResourceAny};
use wasmtime::{Config, Engine, Store, StoreLimits, StoreLimitsBuilder, Trap};

use crate::images::{self, Verifier};
use crate::inventory::Inventory;
use crate::wasi::{Captured, WasiState};

/// The contract this host implements (`wit/policy.wit`).
mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "rule",
    });
}

/// The previous contract, kept verbatim (`wit/compat/0.2.0`), so components
/// built for it keep running. Its types are structurally those of 0.3.0 and
/// are mapped onto them, so both versions return the same Rust values.
mod bindings_v2 {
    wasmtime::component::bindgen!({
        path: "../wit/compat/0.2.0",
        world: "rule",
        with: {
            "palisade:policy/types": super::bindings::palisade::policy::types,
        },
    });
}

pub use bindings::palisade::policy::image_verification as images_wit;
pub use bindings::palisade::policy::types as wit;

/// The contract versions a component may be built for, newest first.
pub const CONTRACTS: [&str; 2] = ["0.3.2", "0.2.0"];

/// The optional export through which a rule says what it reads (`input`, since 0.3.2).
const INPUT_EXPORT: &str = "palisade:policy/input@0.3.2";

/// How long the epoch ticker sleeps between ticks: the granularity of deadlines.
const TICK: Duration = Duration::from_millis(5);

/// Limits applied to every policy instance.
#[derive(Debug, Clone, Copy)]
pub struct SandboxLimits {
    /// Linear memory one instance may grow to.
    pub memory_bytes: usize,
    /// Wall-clock budget of one call (describe, create or evaluate).
    pub call_timeout: Duration,
}

impl Default for SandboxLimits {
    fn default() -> Self {
        SandboxLimits { memory_bytes: 64 << 20, call_timeout: Duration::from_secs(1) }
    }
}

/// Elements one table may hold. A Rust or Python policy's function table has
/// a few thousand; at most 16 bytes an element this keeps every table of a
/// store (at most [`MAX_TABLES`]) within 128 MiB of host memory.
pub const MAX_TABLE_ELEMENTS: usize = 1 << 18;
/// Tables, memories and core instances one component may create.
pub const MAX_TABLES: usize = 32;
pub const MAX_MEMORIES: usize = 8;
pub const MAX_INSTANCES: usize = 32;
/// Violations one evaluation may return: more is an error of the rule, not a report.
pub const MAX_VIOLATIONS: usize = 1000;
/// Bytes of one message or path a rule returns; longer ones are cut.
pub const MAX_TEXT_BYTES: usize = 4096;
/// The largest cached metadata file read back ([`Runtime::read_cached_meta`]).
const MAX_META_BYTES: u64 = 4 << 20;

/// Why a call into a policy failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallError {
    #[error("timed out after {0:?} (execution bound exceeded)")]
    Timeout(Duration),
    #[error("stopped: the request's deadline passed")]
    Deadline,
    #[error("returned {0} violations, over the limit of {MAX_VIOLATIONS} for one evaluation")]
    TooManyViolations(usize),
    #[error("exceeded its memory limit of {0} MiB")]
    OutOfMemory(usize),
    #[error("trapped: {0}")]
    Trap(String),
    #[error("{0}")]
    Host(String),
}

/// A component imports WASI and the user did not opt it in.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "it imports {import} (WASI), which the host gives only to a component the user opts in: \
     load it with --policies-wasi PATH instead of --policies to run it under a WASI context that grants \
     nothing (docs/wasi.md); bundles cannot carry such components"
)]
pub struct WasiNotOptedIn {
    /// The first WASI interface the component imports, by name (`wasi:cli/environment@0.2.9`).
    pub import: String,
}

/// Where a policy's output (stdout and stderr of an opted-in WASI component)
/// goes after each call: the component's name (the rule id once described)
/// and what it wrote. Without one, the output is dropped, but for the last
/// line, which a failed call's error carries.
pub type PolicyLog = Arc<dyn Fn(&str, &Captured) + Send + Sync>;

/// What a store holds: its limits, the set the inventory serves, and the
/// image verifier.
pub struct StoreData {
    limits: StoreLimits,
    inventory: Arc<Inventory>,
    images: Arc<Verifier>,
    /// The request's deadline of the current call, if any.
    deadline: Option<Instant>,
    /// Time the current call spent in host imports (registry I/O): the call's
    /// own bound counts the policy's time only.
    host_time: Duration,
    /// The deny-all WASI context of an opted-in component; `None` for the others,
    /// which are linked without WASI.
    wasi: Option<Box<WasiState>>,
    /// The component's name in the policy log.
    name: Arc<str>,
    /// Host imports called so far: an answer given without any depends on
    /// the component and its arguments alone ([`Runtime::host_calls`]).
    host_calls: u32,
}

impl StoreData {
    /// Count a call of a host import (see [`Runtime::host_calls`]).
    fn called_host(&mut self) {
        self.host_calls = self.host_calls.saturating_add(1);
    }
}

impl wasmtime_wasi::WasiView for StoreData {
    fn ctx(&mut self) -> wasmtime_wasi::WasiCtxView<'_> {
        // Only the WASI linker, used for opted-in components, reaches this, and
        // their stores have a context; any other gets a deny-all one too.
        self.wasi.get_or_insert_with(|| Box::new(WasiState::deny_all())).view()
    }
}

fn wasi_state(data: &mut StoreData) -> &mut WasiState {
    data.wasi.get_or_insert_with(|| Box::new(WasiState::deny_all()))
}

impl bindings::palisade::policy::inventory::Host for StoreData {
    fn list_objects(&mut self, kind: String, namespace: Option<String>) -> Vec<String> {
        self.called_host();
        self.inventory.list(&kind, namespace.as_deref())
    }
}

impl bindings_v2::palisade::policy::inventory::Host for StoreData {
    fn list_objects(&mut self, kind: String, namespace: Option<String>) -> Vec<String> {
        self.called_host();
        self.inventory.list(&kind, namespace.as_deref())
    }
}

impl bindings::palisade::policy::types::Host for StoreData {}

impl images_wit::Host for StoreData {
    fn status(&mut self) -> images_wit::VerificationStatus {
        self.called_host();
        match self.images.status() {
            images::Status::Enabled => images_wit::VerificationStatus::Enabled,
            images::Status::NotConfigured => images_wit::VerificationStatus::NotConfigured,
            images::Status::NotRequested => images_wit::VerificationStatus::NotRequested,
        }
    }

    fn policy_for(&mut self, image: String, namespace: Option<String>) -> images_wit::PolicyMatch {
        self.called_host();
        match self.images.policy_for(&image, namespace.as_deref()) {
            images::PolicyMatch::Matched(name) => images_wit::PolicyMatch::Matched(name),
            images::PolicyMatch::UnmatchedAllowed => images_wit::PolicyMatch::UnmatchedAllowed,
            images::PolicyMatch::UnmatchedDenied => images_wit::PolicyMatch::UnmatchedDenied,
            images::PolicyMatch::InvalidReference(m) => images_wit::PolicyMatch::InvalidReference(m),
        }
    }

    fn verify(&mut self, image: String, policy: String) -> Result<images_wit::VerifiedImage, images_wit::VerifyError> {
        self.called_host();
        let started = Instant::now();
        let result = self.images.verify(&image, &policy, self.deadline);
        self.host_time += started.elapsed();
        result.map(to_wit_image).map_err(to_wit_error)
    }

    fn trust_policies(&mut self) -> Vec<String> {
        self.called_host();
        self.images.trust_policies()
    }

    fn attestation_requirements(&mut self, policy: String) -> Option<String> {
        self.called_host();
        self.images.attestation_requirements(&policy)
    }

    fn attestations(
        &mut self,
        image: String,
        policy: String,
        predicate_types: Vec<String>,
    ) -> Result<images_wit::AttestationSet, images_wit::VerifyError> {
        self.called_host();
        let started = Instant::now();
        let result = self.images.attestations(&image, &policy, &predicate_types, self.deadline);
        self.host_time += started.elapsed();
        result.map(to_wit_attestations).map_err(to_wit_error)
    }
}

fn to_wit_signature(s: images::VerifiedSignature) -> images_wit::VerifiedSignature {
    images_wit::VerifiedSignature { key_id: s.key_id, issuer: s.issuer, subject: s.subject, signed_at: s.signed_at }
}

fn to_wit_image(v: images::VerifiedImage) -> images_wit::VerifiedImage {
    images_wit::VerifiedImage {
        reference: v.reference,
        digest: v.digest,
        policy: v.policy,
        signatures: v.signatures.into_iter().map(to_wit_signature).collect(),
    }
}

fn to_wit_attestations(set: images::AttestationSet) -> images_wit::AttestationSet {
    images_wit::AttestationSet {
        reference: set.reference,
        digest: set.digest,
        policy: set.policy,
        checked_at: set.checked_at,
        statements: set
            .statements
            .into_iter()
            .map(|s| images_wit::VerifiedStatement {
                predicate_type: s.predicate_type,
                statement: s.statement,
                signer: to_wit_signature(s.signer),
                source: match s.source {
                    images::AttestationSource::LegacyTag => images_wit::AttestationSource::LegacyTag,
                    images::AttestationSource::Referrer => images_wit::AttestationSource::Referrer,
                },
            })
            .collect(),
        rejected: set
            .rejected
            .into_iter()
            .map(|r| images_wit::RejectedAttestation {
                predicate_type: r.predicate_type,
                reason: to_wit_error(r.reason),
            })
            .collect(),
    }
}

fn to_wit_error(e: images::VerifyError) -> images_wit::VerifyError {
    use images::VerifyError as E;
    use images_wit::VerifyError as W;
    match e {
        E::InvalidReference(m) => W::InvalidReference(m),
        E::UnknownPolicy(m) => W::UnknownPolicy(m),
        E::Unreachable(m) => W::Unreachable(m),
        E::NotFound(m) => W::NotFound(m),
        E::NoSignature(m) => W::NoSignature(m),
        E::BadSignature(m) => W::BadSignature(m),
        E::IdentityMismatch(m) => W::IdentityMismatch(m),
        E::UntrustedCertificate(m) => W::UntrustedCertificate(m),
        E::TransparencyLog(m) => W::TransparencyLog(m),
        E::DigestMismatch(m) => W::DigestMismatch(m),
        E::ThresholdNotMet(m) => W::ThresholdNotMet(m),
        E::OfflineCacheMiss(m) => W::OfflineCacheMiss(m),
        E::DeadlineExceeded(m) => W::DeadlineExceeded(m),
        E::NotEnabled(m) => W::NotEnabled(m),
    }
}

/// The engine and linker shared by every policy.
pub struct Runtime {
    engine: Engine,
    linker: Linker<StoreData>,
    /// `linker` and WASI, made on first use: only opted-in components get it.
    wasi_linker: std::sync::OnceLock<Linker<StoreData>>,
    cache_dir: Option<PathBuf>,
    pub limits: SandboxLimits,
    /// What `image-verification` answers; off until [`Runtime::set_images`].
    images: RwLock<Arc<Verifier>>,
    /// Told how compiling goes when components are not in the cache.
    progress: Option<Arc<dyn Fn(CompileProgress) + Send + Sync>>,
    /// Told what opted-in WASI components write.
    policy_log: Option<PolicyLog>,
}

/// How compiling the components of a run goes, for a progress line: compiling
/// takes seconds, and happens only when a component is not in the cache yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompileProgress {
    /// `total` components are to be compiled (none of them was in the cache).
    Started { total: usize },
    /// `done` of `total` are compiled.
    Compiled { done: usize, total: usize },
    /// All compiled.
    Finished { total: usize },
}

/// A component's exports, by the contract version it was built for.
#[derive(Clone)]
enum Pre {
    V3(bindings::RulePre<StoreData>),
    V2(bindings_v2::RulePre<StoreData>),
}

enum Bound {
    V3(bindings::Rule),
    V2(bindings_v2::Rule),
}

/// Run `$body` with `$p` bound to the instance's `policy` export, whichever
/// contract version it has: the types are the same.
macro_rules! with_policy {
    ($rule:expr, |$p:ident| $body:expr) => {
        match $rule {
            Bound::V3(rule) => {
                let $p = rule.palisade_policy_policy();
                $body
            }
            Bound::V2(rule) => {
                let $p = rule.palisade_policy_policy();
                $body
            }
        }
    };
}

/// A compiled component, ready to instantiate.
#[derive(Clone)]
pub struct Compiled {
    pre: Pre,
    /// The contract version the component was built for (`0.3.2`, `0.2.0`).
    pub contract: &'static str,
    /// `sha256:<hex>` of the component bytes.
    pub digest: String,
    pub size: usize,
    /// Whether the compiled code came from the on-disk cache.
    pub cached: bool,
    /// Whether it runs with (deny-all) WASI: the user opted it in.
    pub wasi: bool,
    /// Its name in the policy log: the rule id once known (set by whoever loads it).
    pub name: Arc<str>,
}

/// One live instance of a policy with its configured evaluator.
pub struct Instance {
    store: Store<StoreData>,
    /// The component instance, for exports the bindings do not name (`input`).
    component: wasmtime::component::Instance,
    rule: Bound,
    evaluator: Option<ResourceAny>,
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    palisade_sigstore::keys::hex(&Sha256::digest(bytes))
}

impl Runtime {
    /// Build the engine. `cache_dir`: where compiled components are kept, or
    /// `None` to compile every time.
    pub fn new(cache_dir: Option<PathBuf>, limits: SandboxLimits) -> anyhow::Result<Runtime> {
        let mut config = Config::new();
        config.wasm_component_model(true);
        config.epoch_interruption(true);
        config.cranelift_opt_level(wasmtime::OptLevel::Speed);
        config.max_wasm_stack(1 << 20);
        // Compiled code is half as large without the map from native to wasm
        // offsets (a trap names the function, not the byte of the component),
        // and loads faster without .eh_frame to register: on Linux that only
        // serves native unwinders, never Wasmtime's own traps or backtraces.
        config.generate_address_map(false);
        #[cfg(not(target_os = "windows"))]
        config.native_unwind_info(false);
        // For `perf record`: name the policies' compiled functions in /tmp/perf-PID.map.
        if std::env::var_os("PALISADE_PERF_MAP").is_some() {
            config.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        let engine = Engine::new(&config).map_err(|e| anyhow::anyhow!("cannot create the wasm engine: {e}"))?;
        // The only imports a policy gets: Palisade's own interfaces. No WASI.
        let linker = policy_linker(&engine)?;
        let weak = engine.weak();
        std::thread::Builder::new()
            .name("palisade-epoch".into())
            .spawn(move || {
                while let Some(engine) = weak.upgrade() {
                    engine.increment_epoch();
                    drop(engine);
                    std::thread::sleep(TICK);
                }
            })
            .map_err(|e| anyhow::anyhow!("cannot start the deadline ticker: {e}"))?;
        let cache_dir = cache_dir.map(|base| {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            engine.precompile_compatibility_hash().hash(&mut h);
            base.join(format!("wasmtime-{}-{:016x}", wasmtime_version(), h.finish()))
        });
        Ok(Runtime {
            engine,
            linker,
            wasi_linker: std::sync::OnceLock::new(),
            cache_dir,
            limits,
            images: RwLock::new(Arc::new(Verifier::not_configured())),
            progress: None,
            policy_log: None,
        })
    }

    /// Hand what opted-in WASI components write to `log`, after each call.
    pub fn with_policy_log(mut self, log: PolicyLog) -> Runtime {
        self.policy_log = Some(log);
        self
    }

    /// The linker of opted-in components: Palisade's interfaces and WASI.
    fn wasi_linker(&self) -> anyhow::Result<&Linker<StoreData>> {
        if let Some(linker) = self.wasi_linker.get() {
            return Ok(linker);
        }
        let mut linker = policy_linker(&self.engine)?;
        crate::wasi::add_to_linker(&mut linker, wasi_state)
            .map_err(|e| anyhow::anyhow!("cannot link the WASI imports: {e}"))?;
        // Two threads may get here at once; either linker will do.
        Ok(self.wasi_linker.get_or_init(|| linker))
    }

    /// Report compiling to `progress` (the command line prints a progress line).
    pub fn with_progress(mut self, progress: Arc<dyn Fn(CompileProgress) + Send + Sync>) -> Runtime {
        self.progress = Some(progress);
        self
    }

    /// Where the compiled form of the component whose SHA-256 is `hex` is cached.
    fn cached_path(&self, hex: &str) -> Option<PathBuf> {
        self.cache_dir.as_ref().map(|d| d.join(format!("{hex}.cwasm")))
    }

    /// Where the answer `what` (`meta`: `describe`; `settings-<key>`: a
    /// configuration's) of the component whose SHA-256 is `hex` is cached,
    /// next to its compiled form.
    fn answer_path(&self, hex: &str, what: &str) -> Option<PathBuf> {
        self.cache_dir.as_ref().map(|d| d.join(format!("{hex}.{what}.json")))
    }

    /// The cached metadata file of the component whose SHA-256 is `hex`, as
    /// written by [`Runtime::write_cached_meta`]; `None` if there is none (or it
    /// cannot be read, or is larger than any metadata a rule may have). The
    /// caller checks what it holds.
    pub fn read_cached_meta(&self, hex: &str) -> Option<Vec<u8>> {
        self.read_cached_answer(hex, "meta")
    }

    /// Keep the metadata file of the component whose SHA-256 is `hex`. A cache
    /// that cannot be written only costs time next run.
    pub fn write_cached_meta(&self, hex: &str, bytes: &[u8]) {
        self.write_cached_answer(hex, "meta", bytes);
    }

    /// A cached answer file (see [`Runtime::answer_path`]); the caller checks
    /// what it holds.
    pub fn read_cached_answer(&self, hex: &str, what: &str) -> Option<Vec<u8>> {
        use std::io::Read;
        let file = std::fs::File::open(self.answer_path(hex, what)?).ok()?;
        let mut bytes = Vec::new();
        file.take(MAX_META_BYTES + 1).read_to_end(&mut bytes).ok()?;
        (bytes.len() as u64 <= MAX_META_BYTES).then_some(bytes)
    }

    /// Keep an answer file; one that cannot be written only costs time next run.
    pub fn write_cached_answer(&self, hex: &str, what: &str, bytes: &[u8]) {
        if let Some(path) = self.answer_path(hex, what)
            && bytes.len() as u64 <= MAX_META_BYTES
        {
            let _ = write_atomically(&path, bytes);
        }
    }

    /// Whether the component whose SHA-256 is `hex` is compiled already.
    pub fn is_cached(&self, hex: &str) -> bool {
        self.cached_path(hex).is_some_and(|p| p.is_file())
    }

    /// The directory compiled components are kept in, if any.
    pub fn cache_dir(&self) -> Option<&Path> {
        self.cache_dir.as_deref()
    }

    pub(crate) fn report(&self, event: CompileProgress) {
        if let Some(progress) = &self.progress {
            progress(event);
        }
    }

    /// Compile a component, or load its compiled form from the cache.
    pub fn compile(&self, bytes: &[u8]) -> anyhow::Result<Compiled> {
        self.compile_hashed(bytes, &sha256_hex(bytes))
    }

    /// [`Runtime::compile`] when the SHA-256 (`hex`) of `bytes` is known already.
    pub fn compile_hashed(&self, bytes: &[u8], hex: &str) -> anyhow::Result<Compiled> {
        self.compile_opted(bytes, hex, false)
    }

    /// [`Runtime::compile_hashed`], with `wasi` true for a component the user
    /// opted into WASI. Without it, a component that imports WASI is refused
    /// with [`WasiNotOptedIn`].
    pub fn compile_opted(&self, bytes: &[u8], hex: &str, wasi: bool) -> anyhow::Result<Compiled> {
        let cached_path = self.cached_path(hex);
        let mut cached = false;
        let mut component = None;
        if let Some(path) = cached_path.as_ref().filter(|p| p.is_file()) {
            // SAFETY: the file was written by `Component::serialize` of this
            // very engine configuration (the directory name carries its hash);
            // wasmtime checks the header and version before using it.
            if let Ok(c) = unsafe { Component::deserialize_file(&self.engine, path) } {
                component = Some(c);
                cached = true;
            }
        }
        let component = match component {
            Some(c) => c,
            None => {
                // Refuse before compiling (seconds for an interpreter's component).
                if !wasi
                    && let Ok(interfaces) = crate::componentize::interfaces(bytes)
                    && let Some(import) = interfaces.imports.iter().filter(|n| n.starts_with("wasi:")).min()
                {
                    return Err(WasiNotOptedIn { import: import.clone() }.into());
                }
                let c = Component::new(&self.engine, bytes)
                    .map_err(|e| anyhow::anyhow!("not a valid policy component: {e}"))?;
                if let Some(path) = &cached_path {
                    // A cache that cannot be written only costs time next run.
                    let _ = write_cache(path, &c);
                }
                c
            }
        };
        let versions = CONTRACTS.map(|v| format!("palisade:policy/rule@{v}")).join(" or ");
        let linker = if wasi {
            self.wasi_linker()?
        } else {
            if let Some(import) = first_wasi_import(&self.engine, &component) {
                return Err(WasiNotOptedIn { import }.into());
            }
            &self.linker
        };
        let pre = linker
            .instantiate_pre(&component)
            .map_err(|e| anyhow::anyhow!("the component does not fit Palisade's contract ({versions}): {e}"))?;
        let (pre, contract) = match bindings::RulePre::new(pre.clone()) {
            Ok(v3) => (Pre::V3(v3), exported_contract(&self.engine, &component)),
            Err(e3) => match bindings_v2::RulePre::new(pre) {
                Ok(v2) => (Pre::V2(v2), CONTRACTS[1]),
                Err(_) => anyhow::bail!(
                    "the component does not export palisade:policy/policy@{} (nor @{}): {e3}",
                    CONTRACTS[0],
                    CONTRACTS[1]
                ),
            },
        };
        Ok(Compiled {
            pre,
            contract,
            digest: format!("sha256:{hex}"),
            size: bytes.len(),
            cached,
            wasi,
            name: Arc::from(hex),
        })
    }

    /// Answer `image-verification` with `verifier` from now on (instances made before keep theirs).
    pub fn set_images(&self, verifier: Arc<Verifier>) {
        *self.images.write().unwrap_or_else(|e| e.into_inner()) = verifier;
    }

    /// The verifier instances are given.
    pub fn images(&self) -> Arc<Verifier> {
        self.images.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// A fresh, sandboxed instance of a compiled component.
    pub fn instantiate(&self, compiled: &Compiled, inventory: Arc<Inventory>) -> Result<Instance, CallError> {
        let limits = StoreLimitsBuilder::new()
            .memory_size(self.limits.memory_bytes)
            .table_elements(MAX_TABLE_ELEMENTS)
            .trap_on_grow_failure(true)
            .instances(MAX_INSTANCES)
            .tables(MAX_TABLES)
            .memories(MAX_MEMORIES)
            .build();
        let data = StoreData {
            limits,
            inventory,
            images: self.images(),
            deadline: None,
            host_time: Duration::ZERO,
            wasi: compiled.wasi.then(|| Box::new(WasiState::deny_all())),
            name: compiled.name.clone(),
            host_calls: 0,
        };
        let mut store = Store::new(&self.engine, data);
        store.limiter(|s| &mut s.limits);
        // At the deadline: time spent in host imports (registry I/O) is given
        // back to the policy, up to the request's deadline; then it traps.
        store.epoch_deadline_callback(|mut store| {
            let data = store.data_mut();
            let mut credit = std::mem::take(&mut data.host_time);
            if let Some(deadline) = data.deadline {
                credit = credit.min(deadline.saturating_duration_since(Instant::now()));
            }
            let ticks = (credit.as_nanos() / TICK.as_nanos()) as u64;
            if ticks == 0 {
                return Err(Trap::Interrupt.into());
            }
            Ok(wasmtime::UpdateDeadline::Continue(ticks))
        });
        self.arm(&mut store, None);
        let instance = match &compiled.pre {
            Pre::V3(pre) => pre.instance_pre().instantiate(&mut store),
            Pre::V2(pre) => pre.instance_pre().instantiate(&mut store),
        };
        let component = self.finish(&mut store, instance, false)?;
        let rule = match &compiled.pre {
            Pre::V3(_) => bindings::Rule::new(&mut store, &component).map(Bound::V3),
            Pre::V2(_) => bindings_v2::Rule::new(&mut store, &component).map(Bound::V2),
        };
        let rule = self.finish(&mut store, rule, false)?;
        Ok(Instance { store, component, rule, evaluator: None })
    }

    /// After a call: hand the output the instance wrote to the policy log, and
    /// classify a failure, with the last line of that output when there is one
    /// (a Python rule's exception).
    fn finish<R>(
        &self,
        store: &mut Store<StoreData>,
        result: wasmtime::Result<R>,
        by_request: bool,
    ) -> Result<R, CallError> {
        let data = store.data_mut();
        let output = data.wasi.as_mut().and_then(|w| w.take_output());
        let wasi = data.wasi.is_some();
        if let (Some(log), Some(output)) = (&self.policy_log, &output) {
            log(&data.name, output);
        }
        let e = match result {
            Ok(r) => return Ok(r),
            Err(e) => e,
        };
        let root = e.root_cause().to_string();
        let mut error = self.classify(e, by_request);
        // A WASI host call that failed (a full handle table, a handle the rule
        // made up) leaves the instance as a trap does: it cannot be entered again.
        if wasi && let CallError::Host(_) = error {
            error = CallError::Trap(root.lines().next().unwrap_or("").to_string());
        }
        if let (CallError::Trap(text), Some(line)) = (&mut error, output.as_ref().and_then(Captured::last_line)) {
            let mut line = line.to_string();
            cap_text_to(&mut line, 300);
            text.push_str(&format!("; its last output: {line}"));
        }
        Err(error)
    }

    /// Set the store's epoch deadline to the call's bound, or to the request's
    /// deadline when that comes first; records which of the two it is.
    fn arm(&self, store: &mut Store<StoreData>, deadline: Option<Instant>) -> bool {
        let mut budget = self.limits.call_timeout;
        let mut by_request = false;
        if let Some(deadline) = deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            if left < budget {
                budget = left;
                by_request = true;
            }
        }
        let ticks = (budget.as_nanos() / TICK.as_nanos()) as u64;
        store.set_epoch_deadline(ticks.max(1) + 1);
        let data = store.data_mut();
        data.deadline = deadline;
        data.host_time = Duration::ZERO;
        by_request
    }

    fn classify(&self, e: wasmtime::Error, by_request: bool) -> CallError {
        if let Some(exit) = e.downcast_ref::<wasmtime_wasi::I32Exit>() {
            return CallError::Trap(format!("the rule exited (status {})", exit.0));
        }
        if let Some(trap) = e.downcast_ref::<Trap>()
            && *trap == Trap::Interrupt
        {
            if by_request {
                return CallError::Deadline;
            }
            return CallError::Timeout(self.limits.call_timeout);
        }
        let text = format!("{e:#}");
        if text.contains("forcing trap when growing memory") || text.contains("growing memory") {
            return CallError::OutOfMemory(self.limits.memory_bytes >> 20);
        }
        if text.contains("growing table") || text.contains("table grow") {
            return CallError::Trap(format!("exceeded its table limit of {MAX_TABLE_ELEMENTS} elements"));
        }
        if let Some(trap) = e.downcast_ref::<Trap>() {
            // Not the first line of `text`: that is "error while executing at wasm backtrace:".
            return CallError::Trap(trap.to_string());
        }
        if text.contains("wasm trap") {
            let first = text.lines().next().unwrap_or("").to_string();
            return CallError::Trap(first);
        }
        CallError::Host(text)
    }

    /// The interfaces a component imports and exports, as WIT names
    /// (`palisade:policy/types@0.2.0`).
    pub fn interfaces(&self, compiled: &Compiled) -> (Vec<String>, Vec<String>) {
        let component = match &compiled.pre {
            Pre::V3(pre) => pre.instance_pre().component(),
            Pre::V2(pre) => pre.instance_pre().component(),
        };
        let ty = component.component_type();
        let imports = ty.imports(&self.engine).map(|(name, _)| name.to_string()).collect();
        let exports = ty.exports(&self.engine).map(|(name, _)| name.to_string()).collect();
        (imports, exports)
    }

    /// The policy's metadata.
    pub fn describe(&self, instance: &mut Instance) -> Result<wit::Metadata, CallError> {
        self.arm(&mut instance.store, None);
        let result = with_policy!(&instance.rule, |p| p.call_describe(&mut instance.store));
        self.finish(&mut instance.store, result, false)
    }

    /// What the rule reads of an object: its `input.reads` answer, `None`
    /// when it reads whole objects or does not have the export.
    pub fn reads(&self, instance: &mut Instance) -> Result<Option<Vec<String>>, CallError> {
        let store = &mut instance.store;
        let Some(input) = instance.component.get_export_index(&mut *store, None, INPUT_EXPORT) else {
            return Ok(None);
        };
        let Some(reads) = instance.component.get_export_index(&mut *store, Some(&input), "reads") else {
            return Ok(None);
        };
        let func = instance
            .component
            .get_typed_func::<(), (Option<Vec<String>>,)>(&mut *store, &reads)
            .map_err(|e| CallError::Host(format!("its {INPUT_EXPORT} export is not the contract's: {e}")))?;
        self.arm(store, None);
        let result = func.call(&mut *store, ()).map(|(paths,)| paths);
        // Lifted whole (the instance frees it when the call returns): bounded by
        // the instance's memory limit, then by the view's ([`crate::view::View::new`]).
        self.finish(store, result, false)
    }

    /// Configure the instance's evaluator. `Ok(Err(..))`: the settings were refused.
    pub fn configure(
        &self,
        instance: &mut Instance,
        settings: &str,
    ) -> Result<Result<(), wit::SettingsError>, CallError> {
        self.arm(&mut instance.store, None);
        let created = with_policy!(&instance.rule, |p| p.evaluator().call_create(&mut instance.store, settings));
        let created = self.finish(&mut instance.store, created, false)?;
        Ok(created.map(|handle| instance.evaluator = Some(handle)).map_err(|mut e| {
            // The rule's words go into messages and "did you mean": bounded, as a violation's are.
            cap_text(&mut e.message);
            cap_text(&mut e.field);
            e
        }))
    }

    /// Evaluate one object, stopping at `deadline` if one is given.
    /// `Ok(Err(..))`: the rule reported that it could not decide.
    #[inline(never)]
    pub fn evaluate(
        &self,
        instance: &mut Instance,
        object: &str,
        context: &wit::AdmissionContext,
        deadline: Option<Instant>,
    ) -> Result<Result<Vec<wit::Violation>, String>, CallError> {
        let handle = instance
            .evaluator
            .ok_or_else(|| CallError::Host("evaluate called before the evaluator was configured".into()))?;
        let by_request = self.arm(&mut instance.store, deadline);
        let result =
            with_policy!(&instance.rule, |p| p.evaluator().call_evaluate(&mut instance.store, handle, object, context));
        match self.finish(&mut instance.store, result, by_request)? {
            Ok(violations) if violations.len() > MAX_VIOLATIONS => Err(CallError::TooManyViolations(violations.len())),
            Ok(mut violations) => {
                for v in &mut violations {
                    cap_text(&mut v.message);
                    cap_text(&mut v.path);
                }
                Ok(Ok(violations))
            }
            Err(mut message) => {
                cap_text(&mut message);
                Ok(Err(message))
            }
        }
    }
}

impl Runtime {
    /// Host imports `instance` has called since it was made.
    pub fn host_calls(&self, instance: &Instance) -> u32 {
        instance.store.data().host_calls
    }

    /// Why the configured evaluator can report nothing, if it says so.
    pub fn inactive_reason(&self, instance: &mut Instance) -> Result<Option<String>, CallError> {
        let handle = instance
            .evaluator
            .ok_or_else(|| CallError::Host("inactive_reason called before the evaluator was configured".into()))?;
        self.arm(&mut instance.store, None);
        let result = with_policy!(&instance.rule, |p| p.evaluator().call_inactive_reason(&mut instance.store, handle));
        self.finish(&mut instance.store, result, false)
    }
}

/// The linker of Palisade's own interfaces, both contract versions.
fn policy_linker(engine: &Engine) -> anyhow::Result<Linker<StoreData>> {
    let mut linker = Linker::new(engine);
    bindings::Rule::add_to_linker::<_, HasSelf<_>>(&mut linker, |s: &mut StoreData| s)
        .map_err(|e| anyhow::anyhow!("cannot link the policy imports: {e}"))?;
    bindings_v2::palisade::policy::inventory::add_to_linker::<_, HasSelf<_>>(&mut linker, |s: &mut StoreData| s)
        .map_err(|e| anyhow::anyhow!("cannot link the 0.2.0 policy imports: {e}"))?;
    Ok(linker)
}

/// The 0.3 version whose `policy` a component exports (0.3.x components link
/// under the current names, which match them semver-compatibly).
fn exported_contract(engine: &Engine, component: &Component) -> &'static str {
    const V3: [&str; 3] = ["0.3.2", "0.3.1", "0.3.0"];
    let exports: Vec<String> = component.component_type().exports(engine).map(|(name, _)| name.to_string()).collect();
    V3.into_iter()
        .find(|v| exports.iter().any(|e| e.strip_prefix("palisade:policy/policy@") == Some(v)))
        .unwrap_or(CONTRACTS[0])
}

/// The first interface of the `wasi` package a component imports, by name, if any.
pub fn first_wasi_import(engine: &Engine, component: &Component) -> Option<String> {
    component
        .component_type()
        .imports(engine)
        .map(|(name, _)| name)
        .filter(|n| n.starts_with("wasi:"))
        .min()
        .map(String::from)
}

/// Cut `text` to [`MAX_TEXT_BYTES`] on a character boundary, saying so.
fn cap_text(text: &mut String) {
    cap_text_to(text, MAX_TEXT_BYTES);
}

/// Cut `text` to `max` bytes on a character boundary, saying so.
fn cap_text_to(text: &mut String, max: usize) {
    if text.len() <= max {
        return;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let dropped = text.len() - end;
    text.truncate(end);
    text.push_str(&format!("… ({dropped} more bytes cut by the host)"));
}

fn write_cache(path: &Path, component: &Component) -> std::io::Result<()> {
    let bytes = component.serialize().map_err(std::io::Error::other)?;
    write_atomically(path, &bytes)
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    // Write then rename, so a concurrent reader never sees half a file.
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

fn wasmtime_version() -> &'static str {
    "48.0.8"
}

/// Where compiled components are cached unless told otherwise:
/// `$PALISADE_CACHE_DIR`, else `$XDG_CACHE_HOME/palisade`, else `~/.cache/palisade`.
pub fn default_cache_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("PALISADE_CACHE_DIR").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir).join("palisade"));
    }
    std::env::var_os("HOME").filter(|d| !d.is_empty()).map(|home| PathBuf::from(home).join(".cache").join("palisade"))
}
