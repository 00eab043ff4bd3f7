//! The `image-verification` capability: what the host has verified about a
//! container image, under the trust policies of the configuration.
//!
//! A rule asks; this module resolves the reference ([`fetch`]: tag →
//! digest, signatures by the legacy `sha256-<hex>.sig` tag and as OCI
//! referrers), keeps what it fetched for offline runs ([`store`]), verifies
//! every signature against the policy's authorities with
//! [`palisade_sigstore`] (offline, against the configured trusted roots) and
//! caches the verdict for a bounded time ([`policy`] reads the policies).

pub mod fetch;
pub mod policy;
pub mod store;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
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
    /// From the store only (`--offline`).
    Offline { store: store::Store },
}

type Verdict = Result<VerifiedImage, VerifyError>;

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
    cache: Mutex<HashMap<(String, String), (Instant, Verdict)>>,
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
}

impl Verifier {
    /// No trust policy configured: the rule is inactive.
    pub fn not_configured() -> Verifier {
        Verifier {
            status: Status::NotConfigured,
            trust: None,
            source: None,
            cache: Mutex::new(HashMap::new()),
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
        let store = mode.store_dir.map(store::Store::new);
        let (status, source) = match (mode.requested, mode.offline, store) {
            (false, _, _) => (Status::NotRequested, None),
            (true, true, Some(store)) => (Status::Enabled, Some(Source::Offline { store })),
            (true, _, store) => (Status::Enabled, Some(Source::Online { options: mode.registry, store })),
        };
        Ok(Verifier {
            status,
            ttl: Duration::from_secs(trust.cache.ttl_seconds),
            max_entries: trust.cache.max_entries,
            trust: Some(trust),
            source,
            cache: Mutex::new(HashMap::new()),
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

    /// Verify `image` under the policy named `policy_name`, stopping at
    /// `deadline` (at most [`FETCH_TIMEOUT`] from now when there is none).
    pub fn verify(&self, image: &str, policy_name: &str, deadline: Option<Instant>) -> Verdict {
        let bound = Instant::now() + FETCH_TIMEOUT;
        let deadline = Some(deadline.map_or(bound, |d| d.min(bound)));
        let (Some(trust), Some(source)) = (&self.trust, &self.source) else {
            return Err(VerifyError::NotEnabled(match self.status {
                Status::NotRequested => "run with --verify-images".into(),
                _ => "no trust policy is configured (imageVerification.policies)".into(),
            }));
        };
        let Some(policy) = trust.policies.iter().find(|p| p.name == policy_name) else {
            return Err(VerifyError::UnknownPolicy(format!("no trust policy is named {policy_name:?}")));
        };
        let (reference, _) = normalise(image)?;
        let key = (reference, policy_name.to_string());
        if let Some(verdict) = self.cached(&key) {
            self.metrics.hits.fetch_add(1, Ordering::Relaxed);
            return verdict;
        }
        self.metrics.misses.fetch_add(1, Ordering::Relaxed);
        let verdict = self.fetch(source, image, deadline).and_then(|m| verify_material(&m, policy, trust));
        let counter = if verdict.is_ok() { &self.metrics.verified } else { &self.metrics.refused };
        counter.fetch_add(1, Ordering::Relaxed);
        if !verdict.as_ref().is_err_and(VerifyError::is_transient) {
            self.remember(key, verdict.clone());
        }
        verdict
    }

    fn fetch(&self, source: &Source, image: &str, deadline: Option<Instant>) -> Result<fetch::Material, VerifyError> {
        use fetch::FetchError as F;
        match source {
            Source::Offline { store } => match store.load(image) {
                Ok(Some(material)) => Ok(material),
                Ok(None) => Err(VerifyError::OfflineCacheMiss(format!(
                    "{image} was never fetched by an online run (palisade check --verify-images without --offline)"
                ))),
                Err(e) => Err(VerifyError::OfflineCacheMiss(format!("{image}: the cached entry is unusable: {e}"))),
            },
            Source::Online { options, store } => {
                let material = fetch::fetch(image, options, deadline).map_err(|e| match e {
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

    fn cached(&self, key: &(String, String)) -> Option<Verdict> {
        let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache.get(key).filter(|(at, _)| at.elapsed() < self.ttl).map(|(_, v)| v.clone())
    }

    fn remember(&self, key: (String, String), verdict: Verdict) {
        if self.ttl.is_zero() {
            return;
        }
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= self.max_entries {
            let ttl = self.ttl;
            cache.retain(|_, (at, _)| at.elapsed() < ttl);
        }
        if cache.len() >= self.max_entries {
            // Still full of live verdicts: drop the oldest.
            if let Some(oldest) = cache.iter().min_by_key(|(_, (at, _))| *at).map(|(k, _)| k.clone()) {
                cache.remove(&oldest);
            }
        }
        cache.insert(key, (Instant::now(), verdict));
    }
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

fn classify(e: SigError) -> VerifyError {
    let text = e.to_string();
    match e {
        SigError::BadSignature(_) | SigError::Malformed { .. } => VerifyError::BadSignature(text),
        SigError::UntrustedCertificate(_) => VerifyError::UntrustedCertificate(text),
        SigError::IdentityMismatch(_) => VerifyError::IdentityMismatch(text),
        SigError::TransparencyLog(_) | SigError::Timestamp(_) => VerifyError::TransparencyLog(text),
        SigError::DigestMismatch(_) => VerifyError::DigestMismatch(text),
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
    fn a_digest_reference_is_matched_without_its_tag() {
        let digest = format!("sha256:{}", "a".repeat(64));
        let (whole, repository) = normalise(&format!("ghcr.io/acme/app:dev-x@{digest}")).unwrap();
        assert_eq!(whole, format!("ghcr.io/acme/app@{digest}"));
        assert_eq!(repository, "ghcr.io/acme/app");
        assert_eq!(normalise("nginx").unwrap().0, "docker.io/library/nginx:latest");
        assert!(matches!(normalise("UPPER/Case::bad"), Err(VerifyError::InvalidReference(_))));
    }
}
