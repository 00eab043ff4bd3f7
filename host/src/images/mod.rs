//! The `image-verification` capability: what the host has verified about a
//! container image, under the trust policies of the configuration.
//!
//! A rule asks; this module resolves the reference ([`fetch`]: tag →
//! digest, signatures by the legacy `sha256-<hex>.sig` tag and as OCI
//! referrers), keeps what it fetched for offline runs ([`store`]), verifies
//! every signature against the policy's authorities with
//! [`palisade_sigstore`] (offline, against the configured trusted roots) and
//! caches the verdict for a bounded time ([`policy`] reads the policies).
//!
//! Attestations (in-toto statements in DSSE envelopes: `.att` layers and
//! Sigstore bundle referrers) are fetched with the signatures, in the same
//! resolution of the tag, so that both are about one digest; each is
//! verified against the same authorities, and the statements that verify
//! and name the digest are handed to the rules, which judge their predicates.

pub mod fetch;
pub mod layout;
pub mod policy;
pub mod store;

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use palisade_sigstore::{Error as SigError, Signer};

use crate::bundle::registry;
use policy::{TrustConfig, Unmatched};

/// Whether this run verifies images.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Enabled,
    NotConfigured,
    NotRequested,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyMatch {
    Matched(String),
    UnmatchedAllowed,
    UnmatchedDenied,
    InvalidReference(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedSignature {
    pub key_id: Option<String>,
    pub issuer: Option<String>,
    pub subject: Option<String>,
    pub signed_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedImage {
    pub reference: String,
    pub digest: String,
    pub policy: String,
    pub signatures: Vec<VerifiedSignature>,
}

/// Where an attestation was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttestationSource {
    LegacyTag,
    Referrer,
}

/// An in-toto statement that verified under the policy and names the image's digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedStatement {
    pub predicate_type: String,
    /// The statement's JSON, as signed.
    pub statement: String,
    pub signer: VerifiedSignature,
    pub source: AttestationSource,
}

/// An attestation found but not accepted, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedAttestation {
    /// As the statement or (unauthenticated) the registry says, when readable.
    pub predicate_type: Option<String>,
    pub reason: VerifyError,
}

/// The attestations of an image under a trust policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttestationSet {
    pub reference: String,
    pub digest: String,
    pub policy: String,
    /// When they were verified, in seconds since the Unix epoch.
    pub checked_at: i64,
    pub statements: Vec<VerifiedStatement>,
    pub rejected: Vec<RejectedAttestation>,
}

impl AttestationSet {
    /// Only the statements (and rejections) of these predicate types; all when `types` is empty.
    fn of_types(&self, types: &[String]) -> AttestationSet {
        let wanted = |t: &String| types.is_empty() || types.contains(t);
        AttestationSet {
            reference: self.reference.clone(),
            digest: self.digest.clone(),
            policy: self.policy.clone(),
            checked_at: self.checked_at,
            statements: self.statements.iter().filter(|s| wanted(&s.predicate_type)).cloned().collect(),
            rejected: self.rejected.iter().filter(|r| r.predicate_type.as_ref().is_none_or(wanted)).cloned().collect(),
        }
    }

    /// Bytes of the statements it holds.
    fn weight(&self) -> usize {
        self.statements.iter().map(|s| s.statement.len()).sum()
    }
}

/// Why an image did not verify (the contract's `verify-error`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("invalid image reference: {0}")]
    InvalidReference(String),
    #[error("unknown trust policy: {0}")]
    UnknownPolicy(String),
    #[error("registry unreachable: {0}")]
    Unreachable(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("no signature: {0}")]
    NoSignature(String),
    #[error("bad signature: {0}")]
    BadSignature(String),
    #[error("identity mismatch: {0}")]
    IdentityMismatch(String),
    #[error("untrusted certificate: {0}")]
    UntrustedCertificate(String),
    #[error("transparency log: {0}")]
    TransparencyLog(String),
    #[error("digest mismatch: {0}")]
    DigestMismatch(String),
    #[error("threshold not met: {0}")]
    ThresholdNotMet(String),
    #[error("not in the offline cache: {0}")]
    OfflineCacheMiss(String),
    #[error("deadline exceeded: {0}")]
    DeadlineExceeded(String),
    #[error("image verification not enabled: {0}")]
    NotEnabled(String),
}

impl VerifyError {
    /// Errors that say nothing about the image, only about this attempt: never cached.
    fn is_transient(&self) -> bool {
        matches!(self, VerifyError::Unreachable(_) | VerifyError::DeadlineExceeded(_))
    }

    /// How far verification got: the error to report among several is the one that got furthest.
    fn rank(&self) -> u8 {
        match self {
            VerifyError::IdentityMismatch(_) => 6,
            VerifyError::UntrustedCertificate(_) | VerifyError::TransparencyLog(_) => 5,
            VerifyError::DigestMismatch(_) => 4,
            VerifyError::BadSignature(_) => 3,
            _ => 1,
        }
    }
}

/// Where signatures come from in this run.
enum Source {
    /// From registries; what is fetched is also kept in the store, when there is one.
    Online { options: registry::Options, store: Option<store::Store> },
    /// From `cosign save` layouts (by digest) and the store only (`--offline`).
    Offline { store: store::Store, layouts: Vec<fetch::Material> },
}

type Verdict = Result<VerifiedImage, VerifyError>;
type Attestations = Result<AttestationSet, VerifyError>;

/// What one fetch of an image established under one policy.
#[derive(Clone)]
struct Entry {
    at: Instant,
    verdict: Verdict,
    /// `None` when the attestations were not fetched.
    attestations: Option<Arc<Attestations>>,
}

impl Entry {
    fn weight(&self) -> usize {
        self.attestations.as_deref().map_or(0, |a| a.as_ref().map_or(0, AttestationSet::weight))
    }
}

/// The verdicts kept, and the bytes of attestations they hold.
#[derive(Default)]
struct Cache {
    entries: HashMap<(String, String), Entry>,
    bytes: usize,
}

impl Cache {
    /// Keep `entry` under `key`, making room: first the expired entries go,
    /// then the oldest, until at most `max_entries` remain and their
    /// attestations hold at most [`MAX_CACHED_ATTESTATION_BYTES`].
    fn insert(&mut self, key: (String, String), entry: Entry, max_entries: usize, ttl: Duration) {
        let weight = entry.weight();
        let full = |c: &Cache| c.entries.len() >= max_entries || c.bytes + weight > MAX_CACHED_ATTESTATION_BYTES;
        if let Some(old) = self.entries.remove(&key) {
            self.bytes -= old.weight();
        }
        if full(self) {
            self.entries.retain(|_, e| e.at.elapsed() < ttl);
            self.bytes = self.entries.values().map(Entry::weight).sum();
        }
        while full(self) {
            let Some(oldest) = self.entries.iter().min_by_key(|(_, e)| e.at).map(|(k, _)| k.clone()) else {
                break;
            };
            if let Some(old) = self.entries.remove(&oldest) {
                self.bytes -= old.weight();
            }
        }
        self.bytes += weight;
        self.entries.insert(key, entry);
    }
}

/// The most bytes of attestation statements the verdict cache holds (an
/// SBOM may take megabytes): past it the oldest verdicts go first.
pub const MAX_CACHED_ATTESTATION_BYTES: usize = 256 << 20;

/// The longest one image's fetch may take, when the request has no earlier deadline.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(60);

/// Counters of the verdict cache, for `/metrics`.
#[derive(Debug, Default)]
pub struct Metrics {
    pub hits: AtomicU64,
    pub misses: AtomicU64,
    pub verified: AtomicU64,
    pub refused: AtomicU64,
}

pub struct Verifier {
    status: Status,
    trust: Option<TrustConfig>,
    source: Option<Source>,
    cache: Mutex<Cache>,
    ttl: Duration,
    max_entries: usize,
    pub metrics: Metrics,
}

/// How a run verifies images.
#[derive(Debug, Clone, Default)]
pub struct Mode {
    /// Verification asked for (`palisade check --verify-images`; always on for `serve`).
    pub requested: bool,
    /// Only the store, no registry (`--offline`).
    pub offline: bool,
    pub registry: registry::Options,
    /// Where fetched signatures are kept for offline runs (`<cache>/images`).
    pub store_dir: Option<std::path::PathBuf>,
    /// Offline: images saved with `cosign save` ([`layout`]).
    pub layouts: Vec<std::path::PathBuf>,
}

impl Verifier {
    /// No trust policy configured: the rule is inactive.
    pub fn not_configured() -> Verifier {
        Verifier {
            status: Status::NotConfigured,
            trust: None,
            source: None,
            cache: Mutex::new(Cache::default()),
            ttl: Duration::ZERO,
            max_entries: 0,
            metrics: Metrics::default(),
        }
    }

    /// Read `imageVerification` (files relative to `base`) for a run in `mode`.
    /// `None` configuration: not configured. Errors name the file and key.
    pub fn new(config: Option<&policy::ImageVerificationConfig>, base: &Path, mode: Mode) -> Result<Verifier, String> {
        let Some(config) = config else {
            return Ok(Verifier::not_configured());
        };
        let trust = policy::load(config, base)?;
        if trust.policies.is_empty() {
            return Ok(Verifier::not_configured());
        }
        if mode.offline && mode.store_dir.is_none() {
            return Err("--offline needs a cache directory (PALISADE_CACHE_DIR, XDG_CACHE_HOME or HOME)".into());
        }
        let offline_run = mode.requested && mode.offline;
        if !offline_run && !mode.layouts.is_empty() {
            return Err("--image-layout is read by offline runs only (--verify-images --offline)".into());
        }
        let layouts = mode.layouts.iter().map(|p| layout::read(p)).collect::<Result<Vec<_>, _>>()?;
        let store = mode.store_dir.map(store::Store::new);
        let (status, source) = match (mode.requested, mode.offline, store) {
            (false, _, _) => (Status::NotRequested, None),
            (true, true, Some(store)) => (Status::Enabled, Some(Source::Offline { store, layouts })),
            (true, _, store) => (Status::Enabled, Some(Source::Online { options: mode.registry, store })),
        };
        Ok(Verifier {
            status,
            ttl: Duration::from_secs(trust.cache.ttl_seconds),
            max_entries: trust.cache.max_entries,
            trust: Some(trust),
            source,
            cache: Mutex::new(Cache::default()),
            metrics: Metrics::default(),
        })
    }

    pub fn status(&self) -> Status {
        self.status
    }

    /// The most specific trust policy for `image` in `namespace` (the one
    /// with the most literal characters in its matching pattern; a policy
    /// scoped to namespaces before one for all; then the first).
    pub fn policy_for(&self, image: &str, namespace: Option<&str>) -> PolicyMatch {
        let Some(trust) = &self.trust else {
            return PolicyMatch::UnmatchedAllowed;
        };
        let (reference, repository) = match normalise(image) {
            Ok(r) => r,
            Err(e) => return PolicyMatch::InvalidReference(e.to_string()),
        };
        let mut best: Option<((usize, bool), &str)> = None;
        for p in &trust.policies {
            if let Some(score) = p.specificity(&reference, &repository, namespace)
                && best.is_none_or(|(b, _)| score > b)
            {
                best = Some((score, &p.name));
            }
        }
        match best {
            Some((_, name)) => PolicyMatch::Matched(name.to_string()),
            None if trust.unmatched == Unmatched::Allow => PolicyMatch::UnmatchedAllowed,
            None => PolicyMatch::UnmatchedDenied,
        }
    }

    /// Whether `/mutate` pins verified images to their digests (`imageVerification.mutateDigest`, default true).
    pub fn mutate_digest(&self) -> bool {
        self.trust.as_ref().is_some_and(|t| t.mutate_digest)
    }

    /// The digest to pin `image` to (as written in a manifest, in `namespace`):
    /// the one it verified at under its trust policy, when it did, and when
    /// the pinned reference (`image@digest`) falls under that same policy, so
    /// that the pinned manifest is judged by the policy that verified it. `None`:
    /// leave the image as it is.
    pub fn pin_digest(&self, image: &str, namespace: Option<&str>, deadline: Option<Instant>) -> Option<String> {
        let PolicyMatch::Matched(policy) = self.policy_for(image, namespace) else {
            return None;
        };
        let verified = self.verify(image, &policy, deadline).ok()?;
        let pinned = format!("{image}@{}", verified.digest);
        (self.policy_for(&pinned, namespace) == PolicyMatch::Matched(policy)).then_some(verified.digest)
    }

    /// The names of the trust policies (configured, whether or not this run verifies).
    pub fn trust_policies(&self) -> Vec<String> {
        self.trust.as_ref().map_or_else(Vec::new, |t| t.policies.iter().map(|p| p.name.clone()).collect())
    }

    /// The attestation requirements of the policy `name`, as a JSON array; `None`: no such policy.
    pub fn attestation_requirements(&self, name: &str) -> Option<String> {
        let policy = self.trust.as_ref()?.policies.iter().find(|p| p.name == name)?;
        Some(serde_json::Value::Array(policy.attestations.clone()).to_string())
    }

    /// The policy named `policy_name`, and the cache key of `image` under it.
    fn prepare(&self, image: &str, policy_name: &str) -> Result<Prepared<'_>, VerifyError> {
        let (Some(trust), Some(source)) = (&self.trust, &self.source) else {
            return Err(VerifyError::NotEnabled(match self.status {
                Status::NotRequested => "run with --verify-images".into(),
                _ => "no trust policy is configured (imageVerification.policies)".into(),
            }));
        };
        let Some(policy) = trust.policies.iter().find(|p| p.name == policy_name) else {
            return Err(VerifyError::UnknownPolicy(format!("no trust policy is named {policy_name:?}")));
        };
        let (reference, repository) = normalise(image)?;
        Ok(Prepared { trust, source, policy, key: (reference, policy_name.to_string()), repository })
    }

    /// Verify `image` under the policy named `policy_name`, stopping at
    /// `deadline` (at most [`FETCH_TIMEOUT`] from now when there is none).
    pub fn verify(&self, image: &str, policy_name: &str, deadline: Option<Instant>) -> Verdict {
        let p = self.prepare(image, policy_name)?;
        if let Some(entry) = self.cached(&p.key) {
            self.metrics.hits.fetch_add(1, Ordering::Relaxed);
            return entry.verdict;
        }
        self.metrics.misses.fetch_add(1, Ordering::Relaxed);
        // A policy that asks for attestations gets them from the same fetch.
        let entry = self.evaluate(&p, image, deadline, !p.policy.attestations.is_empty());
        self.remember(&p, &entry);
        entry.verdict
    }

    /// The verified attestations of `image` under the policy named
    /// `policy_name`, of the given predicate types (all when empty).
    pub fn attestations(
        &self,
        image: &str,
        policy_name: &str,
        types: &[String],
        deadline: Option<Instant>,
    ) -> Attestations {
        let p = self.prepare(image, policy_name)?;
        let entry = match self.cached(&p.key).filter(|e| e.attestations.is_some()) {
            Some(entry) => {
                self.metrics.hits.fetch_add(1, Ordering::Relaxed);
                entry
            }
            None => {
                self.metrics.misses.fetch_add(1, Ordering::Relaxed);
                let entry = self.evaluate(&p, image, deadline, true);
                self.remember(&p, &entry);
                entry
            }
        };
        match entry.attestations.as_deref() {
            Some(Ok(set)) => Ok(set.of_types(types)),
            Some(Err(e)) => Err(e.clone()),
            None => Err(VerifyError::NotEnabled("attestations were not fetched".into())),
        }
    }

    /// Fetch `image` once and verify its signatures (and attestations) under the policy.
    fn evaluate(&self, p: &Prepared<'_>, image: &str, deadline: Option<Instant>, attestations: bool) -> Entry {
        let bound = Instant::now() + FETCH_TIMEOUT;
        let deadline = Some(deadline.map_or(bound, |d| d.min(bound)));
        let entry = match self.fetch(p.source, image, deadline, attestations) {
            Err(e) => Entry {
                at: Instant::now(),
                verdict: Err(e.clone()),
                attestations: attestations.then(|| Arc::new(Err(e))),
            },
            Ok(m) => Entry {
                at: Instant::now(),
                verdict: verify_material(&m, p.policy, p.trust),
                attestations: attestations.then(|| {
                    Arc::new(match &m.attestations {
                        Some(_) => verify_attestations(&m, p.policy, p.trust),
                        // Offline, from a run that did not fetch them: the signatures still count.
                        None => Err(VerifyError::OfflineCacheMiss(format!(
                            "the attestations of {image} were never fetched by an online run \
                             (palisade check --verify-images without --offline, with attestation requirements)"
                        ))),
                    })
                }),
            },
        };
        let counter = if entry.verdict.is_ok() { &self.metrics.verified } else { &self.metrics.refused };
        counter.fetch_add(1, Ordering::Relaxed);
        entry
    }

    fn fetch(
        &self,
        source: &Source,
        image: &str,
        deadline: Option<Instant>,
        attestations: bool,
    ) -> Result<fetch::Material, VerifyError> {
        use fetch::FetchError as F;
        match source {
            Source::Offline { store, layouts } => {
                let saved = match saved_image(layouts, image) {
                    Some(material) => Ok(Some(material)),
                    None => store.load(image),
                };
                match saved {
                    Ok(Some(material)) => Ok(material),
                    Ok(None) => Err(VerifyError::OfflineCacheMiss(format!(
                        "{image} was never fetched by an online run (palisade check --verify-images without --offline), \
                     and no --image-layout holds its digest"
                    ))),
                    Err(e) => Err(VerifyError::OfflineCacheMiss(format!("{image}: the cached entry is unusable: {e}"))),
                }
            }
            Source::Online { options, store } => {
                let material = fetch::fetch(image, options, deadline, attestations).map_err(|e| match e {
                    F::InvalidReference(m) => VerifyError::InvalidReference(m),
                    F::Unreachable(m) => VerifyError::Unreachable(m),
                    // What the registry served for the image breaks the rules:
                    // a definite refusal, never "undecided".
                    F::Malformed(m) => VerifyError::NoSignature(format!("the registry's content is malformed: {m}")),
                    F::NotFound(m) => VerifyError::NotFound(m),
                    F::Deadline => VerifyError::DeadlineExceeded(format!("fetching {image}")),
                    F::Offline(m) => VerifyError::OfflineCacheMiss(m),
                })?;
                if let Some(store) = store
                    && let Err(e) = store.save(&material)
                {
                    // A store that cannot be written only costs the next offline
                    // run: said once, not for every image.
                    static WARNED: std::sync::Once = std::sync::Once::new();
                    WARNED.call_once(|| {
                        eprintln!(
                            "palisade: warning: cannot keep fetched signatures for offline runs in {}: {e}",
                            store.dir().display()
                        )
                    });
                }
                Ok(material)
            }
        }
    }

    fn cached(&self, key: &(String, String)) -> Option<Entry> {
        let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache.entries.get(key).filter(|e| e.at.elapsed() < self.ttl).cloned()
    }

    /// Keep what was established, unless it says nothing about the image (the
    /// registry or the deadline failed). A tag that verified is kept under its
    /// digest as well, so the pinned reference (`/mutate`) is not resolved again.
    fn remember(&self, p: &Prepared<'_>, entry: &Entry) {
        fn transient<T>(r: &Result<T, VerifyError>) -> bool {
            r.as_ref().is_err_and(VerifyError::is_transient)
        }
        let weight = entry.weight();
        if self.ttl.is_zero()
            || transient(&entry.verdict)
            || entry.attestations.as_deref().is_some_and(transient)
            || weight > MAX_CACHED_ATTESTATION_BYTES / 2
        {
            return;
        }
        let mut keys = vec![p.key.clone()];
        if let Ok(v) = &entry.verdict {
            let pinned = (format!("{}@{}", p.repository, v.digest), p.key.1.clone());
            if pinned != p.key {
                keys.push(pinned);
            }
        }
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        for key in keys {
            cache.insert(key, entry.clone(), self.max_entries, self.ttl);
        }
    }
}

/// The material of a `cosign save` layout for `image`, when it names that
/// image's digest (a layout names no repository), under the image's name.
fn saved_image(layouts: &[fetch::Material], image: &str) -> Option<fetch::Material> {
    let reference = fetch::parse(image).ok()?;
    let digest = reference.digest()?;
    let m = layouts.iter().find(|m| m.digest == digest)?;
    Some(fetch::Material { reference: reference.whole(), ..m.clone() })
}

/// A request's policy and cache key.
struct Prepared<'a> {
    trust: &'a TrustConfig,
    source: &'a Source,
    policy: &'a policy::TrustPolicy,
    /// (normalised reference, policy name)
    key: (String, String),
    /// `registry/repository`
    repository: String,
}

/// Verify what was fetched against every authority of `policy`. Each
/// signature counts for one authority at most (a maximum matching of
/// authorities to the signatures that verify under them), so overlapping
/// identities cannot let one signature meet a threshold of two.
fn verify_material(m: &fetch::Material, policy: &policy::TrustPolicy, trust: &TrustConfig) -> Verdict {
    if m.legacy.is_empty() && m.bundles.is_empty() {
        let skipped = if m.problems.is_empty() { String::new() } else { format!(" ({})", m.problems.join("; ")) };
        return Err(VerifyError::NoSignature(format!(
            "{} ({}) has no cosign signature (no {} tag) and no Sigstore bundle referrer{skipped}",
            m.reference,
            m.digest,
            fetch::signature_tag(&m.digest).unwrap_or_else(|_| "sha256-<hex>.sig".into())
        )));
    }
    let root = trust.root.as_ref();
    let legacy: Vec<_> = m.legacy.iter().map(legacy_signature).collect();
    // For each authority: the signatures (by index: legacy ones, then bundles) that verify under it.
    let mut verifying: Vec<Vec<(usize, palisade_sigstore::Verified)>> = Vec::new();
    let mut failures: Vec<(String, VerifyError)> = Vec::new();
    for named in &policy.authorities {
        let mut best: Option<VerifyError> = None;
        let mut found = Vec::new();
        for (i, signature) in legacy.iter().enumerate() {
            match palisade_sigstore::cosign::verify_legacy(signature, &m.digest, root, &named.authority) {
                Ok(v) => found.push((i, v)),
                Err(e) => keep(&mut best, classify(e)),
            }
        }
        if let Some(root) = root {
            for (i, bundle) in m.bundles.iter().enumerate() {
                match palisade_sigstore::bundle::verify_image(bundle, &m.digest, root, &named.authority) {
                    Ok(v) => found.push((legacy.len() + i, v)),
                    Err(e) => keep(&mut best, classify(e)),
                }
            }
        }
        if found.is_empty() {
            failures.push((
                named.label.clone(),
                best.unwrap_or_else(|| VerifyError::NoSignature("no signature to check".into())),
            ));
        }
        verifying.push(found);
    }
    let matched = match_signatures(&verifying);
    let satisfied = matched.iter().flatten().count();
    if satisfied >= policy.threshold {
        let signatures = matched
            .iter()
            .zip(&verifying)
            .filter_map(|(slot, found)| slot.and_then(|s| found.iter().find(|(i, _)| *i == s)))
            .map(|(_, v)| signature_of(v))
            .collect();
        return Ok(VerifiedImage {
            reference: m.reference.clone(),
            digest: m.digest.clone(),
            policy: policy.name.clone(),
            signatures,
        });
    }
    let mut detail = failures.iter().map(|(label, e)| format!("{label}: {e}")).collect::<Vec<_>>();
    if failures.len() < policy.authorities.len() && satisfied < policy.authorities.len() - failures.len() {
        detail.push("some authorities verified only signatures that another authority already counted".into());
    }
    let detail = detail.join("; ");
    if policy.threshold > 1 && satisfied > 0 {
        return Err(VerifyError::ThresholdNotMet(format!(
            "{satisfied} of the {} required authorities verified with distinct signatures ({detail})",
            policy.threshold
        )));
    }
    // One authority: its own error class; several: the one that got furthest.
    let (_, error) = failures
        .into_iter()
        .max_by_key(|(_, e)| e.rank())
        .unwrap_or_else(|| (String::new(), VerifyError::NoSignature(String::new())));
    Err(with_detail(error, detail))
}

/// Verify every attestation fetched for `m` under `policy`: a statement is
/// accepted when one of the policy's authorities verifies its envelope and a
/// subject names the image's digest; anything else found is rejected, with why.
/// Sigstore bundles that sign the image (cosign 3's signatures, message
/// signatures) are signatures, not attestations, and are left out.
fn verify_attestations(m: &fetch::Material, policy: &policy::TrustPolicy, trust: &TrustConfig) -> Attestations {
    use palisade_sigstore::{bundle, cosign};
    let root = trust.root.as_ref();
    let mut statements = Vec::new();
    let mut rejected = Vec::new();
    let options = cosign::LegacyOptions::default();
    for layer in m.attestations.iter().flatten() {
        let pairs = layer.annotations.iter().map(|(k, v)| (k.as_str(), v.as_str()));
        let attestation = cosign::LegacyAttestation::from_layer(layer.payload.clone(), pairs);
        let annotated = attestation.annotated_predicate_type.clone();
        let verified = first_authority(policy, |authority| {
            cosign::verify_cosign_attestation_with(&attestation, &m.digest, root, authority, &options)
        });
        let verified = verified.and_then(|(v, statement)| {
            let payload = palisade_sigstore::dsse::Envelope::from_json(&layer.payload).map_err(classify)?.payload;
            statement_of(&payload, &v, statement.predicate_type, AttestationSource::LegacyTag)
        });
        match verified {
            Ok(s) => statements.push(s),
            Err(reason) => rejected.push(RejectedAttestation { predicate_type: annotated, reason }),
        }
    }
    for raw in &m.bundles {
        // Unauthenticated, only to sort bundles: what verifies below is what counts.
        let parsed = match bundle::Bundle::from_json(raw) {
            Ok(parsed) => parsed,
            Err(e) => {
                rejected.push(RejectedAttestation { predicate_type: None, reason: classify(e) });
                continue;
            }
        };
        let bundle::Content::Dsse(envelope) = &parsed.content else {
            continue;
        };
        let claimed = envelope.statement().ok().map(|s| s.predicate_type);
        if claimed.as_deref() == Some(bundle::COSIGN_SIGN_PREDICATE_TYPE) {
            continue;
        }
        let Some(root) = root else {
            rejected.push(RejectedAttestation {
                predicate_type: claimed,
                reason: VerifyError::UntrustedCertificate(
                    "a Sigstore bundle needs a trusted root (imageVerification.trustedRoot)".into(),
                ),
            });
            continue;
        };
        let options = bundle::Options::default();
        let verified = first_authority(policy, |a| bundle::verify_dsse_bundle(&parsed, root, a, &options)).and_then(
            |(v, statement)| {
                let (alg, hex) = m.digest.split_once(':').unwrap_or(("sha256", &m.digest));
                if !statement.has_subject_digest(alg, hex) {
                    return Err(VerifyError::DigestMismatch(format!("the attestation is not about {}", m.digest)));
                }
                statement_of(&envelope.payload, &v, statement.predicate_type, AttestationSource::Referrer)
            },
        );
        match verified {
            Ok(s) => statements.push(s),
            Err(reason) => rejected.push(RejectedAttestation { predicate_type: claimed, reason }),
        }
    }
    let checked_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    Ok(AttestationSet {
        reference: m.reference.clone(),
        digest: m.digest.clone(),
        policy: policy.name.clone(),
        checked_at,
        statements,
        rejected,
    })
}

/// The first authority of `policy` under which `verify` succeeds, or the error that got furthest.
fn first_authority<T>(
    policy: &policy::TrustPolicy,
    mut verify: impl FnMut(&palisade_sigstore::identity::Authority) -> Result<T, SigError>,
) -> Result<T, VerifyError> {
    let mut best: Option<VerifyError> = None;
    for named in &policy.authorities {
        match verify(&named.authority) {
            Ok(found) => return Ok(found),
            Err(e) => keep(&mut best, classify(e)),
        }
    }
    Err(best.unwrap_or_else(|| VerifyError::NoSignature("the policy has no authority".into())))
}

/// A verified statement: its payload as signed, its type, who signed it, where it was found.
fn statement_of(
    payload: &[u8],
    verified: &palisade_sigstore::Verified,
    predicate_type: String,
    source: AttestationSource,
) -> Result<VerifiedStatement, VerifyError> {
    let statement = String::from_utf8(payload.to_vec())
        .map_err(|_| VerifyError::BadSignature("the attestation's statement is not UTF-8 JSON".into()))?;
    Ok(VerifiedStatement { predicate_type, statement, signer: signature_of(verified), source })
}

/// A maximum matching of authorities to distinct signatures (Kuhn's
/// augmenting paths; a policy has a handful of authorities, an image at most
/// 128 signatures). `result[a]`: the signature index authority `a` counts.
fn match_signatures(verifying: &[Vec<(usize, palisade_sigstore::Verified)>]) -> Vec<Option<usize>> {
    fn augment(
        a: usize,
        verifying: &[Vec<(usize, palisade_sigstore::Verified)>],
        owner: &mut HashMap<usize, usize>,
        seen: &mut Vec<usize>,
    ) -> bool {
        for (s, _) in &verifying[a] {
            if seen.contains(s) {
                continue;
            }
            seen.push(*s);
            let free = match owner.get(s).copied() {
                None => true,
                Some(other) => augment(other, verifying, owner, seen),
            };
            if free {
                owner.insert(*s, a);
                return true;
            }
        }
        false
    }
    let mut owner: HashMap<usize, usize> = HashMap::new();
    for a in 0..verifying.len() {
        augment(a, verifying, &mut owner, &mut Vec::new());
    }
    let mut result = vec![None; verifying.len()];
    for (s, a) in owner {
        result[a] = Some(s);
    }
    result
}

fn keep(best: &mut Option<VerifyError>, e: VerifyError) {
    if best.as_ref().is_none_or(|b| e.rank() > b.rank()) {
        *best = Some(e);
    }
}

fn with_detail(error: VerifyError, detail: String) -> VerifyError {
    use VerifyError as E;
    match error {
        E::IdentityMismatch(_) => E::IdentityMismatch(detail),
        E::UntrustedCertificate(_) => E::UntrustedCertificate(detail),
        E::TransparencyLog(_) => E::TransparencyLog(detail),
        E::DigestMismatch(_) => E::DigestMismatch(detail),
        E::BadSignature(_) => E::BadSignature(detail),
        E::NoSignature(_) => E::NoSignature(detail),
        other => other,
    }
}

/// The verifier's error as the contract's: the class is the variant, so the
/// message does not repeat it.
fn classify(e: SigError) -> VerifyError {
    match e {
        SigError::Malformed { .. } => VerifyError::BadSignature(e.to_string()),
        SigError::Timestamp(_) => VerifyError::TransparencyLog(e.to_string()),
        SigError::BadSignature(m) => VerifyError::BadSignature(m),
        SigError::UntrustedCertificate(m) => VerifyError::UntrustedCertificate(m),
        SigError::IdentityMismatch(m) => VerifyError::IdentityMismatch(m),
        SigError::TransparencyLog(m) => VerifyError::TransparencyLog(m),
        SigError::DigestMismatch(m) => VerifyError::DigestMismatch(m),
    }
}

fn signature_of(v: &palisade_sigstore::Verified) -> VerifiedSignature {
    match &v.signer {
        Signer::Key { key_id } => {
            VerifiedSignature { key_id: Some(key_id.clone()), issuer: None, subject: None, signed_at: v.signed_at }
        }
        Signer::Certificate { issuer, subject } => VerifiedSignature {
            key_id: None,
            issuer: Some(issuer.clone()),
            subject: Some(subject.clone()),
            signed_at: v.signed_at,
        },
    }
}

/// `(registry/repository:tag or @digest, registry/repository)`, as
/// [`fetch::parse`] reads a reference (Docker Hub's defaults filled in).
/// With a digest, the tag is left out: the runtime pulls by digest and
/// ignores it, so it must not choose the policy either.
pub fn normalise(image: &str) -> Result<(String, String), VerifyError> {
    let reference = fetch::parse(image).map_err(|e| VerifyError::InvalidReference(e.to_string()))?;
    let repository = format!("{}/{}", reference.registry(), reference.repository());
    let whole = match reference.digest() {
        Some(digest) => format!("{repository}@{digest}"),
        None => reference.whole(),
    };
    Ok((whole, repository))
}

/// The annotations of a cosign signature layer, as the verifier takes them
/// (cosign's SIGNATURE_SPEC names them).
fn legacy_signature(layer: &fetch::LegacyLayer) -> palisade_sigstore::cosign::LegacySignature {
    let get = |key: &str| layer.annotations.get(key).cloned();
    palisade_sigstore::cosign::LegacySignature {
        payload: layer.payload.clone(),
        signature: get("dev.cosignproject.cosign/signature").unwrap_or_default(),
        certificate: get("dev.sigstore.cosign/certificate"),
        chain: get("dev.sigstore.cosign/chain"),
        bundle: get("dev.sigstore.cosign/bundle"),
        rfc3161_timestamp: get("dev.sigstore.cosign/rfc3161timestamp"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verified(n: usize) -> Vec<(usize, palisade_sigstore::Verified)> {
        (0..n)
            .map(|i| {
                let v = palisade_sigstore::Verified {
                    signer: Signer::Key { key_id: format!("k{i}") },
                    digest: "sha256:00".into(),
                    docker_reference: None,
                    signed_at: None,
                };
                (i, v)
            })
            .collect()
    }

    #[test]
    fn one_signature_counts_for_one_authority() {
        // Two identities that both match signature 0: one authority counted.
        let m = match_signatures(&[verified(1), verified(1)]);
        assert_eq!(m.iter().flatten().count(), 1);
        // Authority 0 verifies 0 and 1, authority 1 only 0: both counted, by augmenting.
        let m = match_signatures(&[verified(2), verified(1)]);
        assert_eq!(m, [Some(1), Some(0)]);
    }

    #[test]
    fn the_cache_bounds_entries_and_attestation_bytes() {
        let entry = |bytes: usize| {
            let statement = VerifiedStatement {
                predicate_type: "t".into(),
                statement: "x".repeat(bytes),
                signer: VerifiedSignature { key_id: None, issuer: None, subject: None, signed_at: None },
                source: AttestationSource::Referrer,
            };
            let set = AttestationSet {
                reference: String::new(),
                digest: String::new(),
                policy: String::new(),
                checked_at: 0,
                statements: vec![statement],
                rejected: Vec::new(),
            };
            Entry {
                at: Instant::now(),
                verdict: Err(VerifyError::NotFound(String::new())),
                attestations: Some(Arc::new(Ok(set))),
            }
        };
        let key = |n: usize| (format!("image{n}"), "p".to_string());
        let ttl = Duration::from_secs(60);
        let mut cache = Cache::default();
        let big = MAX_CACHED_ATTESTATION_BYTES / 3;
        for n in 0..3 {
            cache.insert(key(n), entry(big), 10, ttl);
        }
        // The third fits (3 × a third); a fourth pushes the oldest out.
        assert_eq!(cache.entries.len(), 3);
        cache.insert(key(3), entry(big), 10, ttl);
        assert_eq!(cache.entries.len(), 3);
        assert!(!cache.entries.contains_key(&key(0)) && cache.entries.contains_key(&key(3)));
        assert_eq!(cache.bytes, 3 * big);
        // Replacing an entry does not count it twice; the entry bound holds too.
        cache.insert(key(3), entry(1), 10, ttl);
        assert_eq!(cache.bytes, 2 * big + 1);
        for n in 10..20 {
            cache.insert(key(n), entry(0), 4, ttl);
        }
        assert_eq!(cache.entries.len(), 4);
        assert_eq!(cache.bytes, cache.entries.values().map(Entry::weight).sum::<usize>());
    }

    #[test]
    fn a_digest_reference_is_matched_without_its_tag() {
        let digest = format!("sha256:{}", "a".repeat(64));
        let (whole, repository) = normalise(&format!("ghcr.io/acme/app:dev-x@{digest}")).unwrap();
        assert_eq!(whole, format!("ghcr.io/acme/app@{digest}"));
        assert_eq!(repository, "ghcr.io/acme/app");
        assert_eq!(normalise("nginx").unwrap().0, "docker.io/library/nginx:latest");
        assert!(matches!(normalise("UPPER/Case::bad"), Err(VerifyError::InvalidReference(_))));
    }
}
