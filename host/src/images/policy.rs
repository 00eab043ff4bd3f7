//! Trust policies: which images must be signed by whom (`imageVerification`
//! in the configuration file), read and checked before any manifest is.
//!
//! The shape follows what users of Connaisseur and Kyverno `verifyImages`
//! know: image patterns (globs, the most specific match wins, as in
//! Connaisseur), namespaces, and authorities that are cosign public keys or
//! keyless identities (issuer and subject, exact or regular expression, as
//! Kyverno's `keyless.issuer`/`subjectRegExp`), with a threshold.

use std::path::{Path, PathBuf};

use palisade_sigstore::identity::{Authority, Matcher};
use palisade_sigstore::keys::PublicKey;
use palisade_sigstore::trust::TrustedRoot;
use serde::Deserialize;

/// `imageVerification:` in the configuration file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ImageVerificationConfig {
    /// Sigstore `trusted_root.json` files (read offline, never fetched).
    #[serde(default)]
    pub trusted_root: Vec<PathBuf>,
    /// What an image that matches no policy gets.
    #[serde(default)]
    pub unmatched: Unmatched,
    #[serde(default)]
    pub policies: Vec<TrustPolicyConfig>,
    /// Verdicts kept by `palisade serve`.
    #[serde(default)]
    pub cache: CacheConfig,
    /// Whether `palisade serve`'s `/mutate` pins verified images to their
    /// digest, and `palisade export webhook` wires it in (default: true).
    pub mutate_digest: Option<bool>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Unmatched {
    #[default]
    Deny,
    Allow,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CacheConfig {
    /// How long a verdict (and the tag → digest resolution under it) is reused.
    #[serde(default = "default_ttl")]
    pub ttl_seconds: u64,
    /// Verdicts kept at most.
    #[serde(default = "default_entries")]
    pub max_entries: usize,
}

fn default_ttl() -> u64 {
    300
}

fn default_entries() -> usize {
    10_000
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig { ttl_seconds: default_ttl(), max_entries: default_entries() }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TrustPolicyConfig {
    pub name: String,
    /// Globs on the normalised reference (`registry/repository:tag`).
    pub images: Vec<String>,
    /// Globs on namespace names; none: every namespace.
    #[serde(default)]
    pub namespaces: Vec<String>,
    /// cosign public keys (PEM files).
    #[serde(default)]
    pub keys: Vec<PathBuf>,
    #[serde(default)]
    pub keyless: Vec<KeylessConfig>,
    /// How many authorities (each key, each keyless entry) must verify; default 1.
    pub threshold: Option<usize>,
    /// Key-based signatures: whether a Rekor entry is required (keyless always requires one).
    #[serde(default)]
    pub transparency_log: TransparencyLog,
    /// What the image's attestations must show. Passed to the rules as written
    /// (`image-attestation` gives them meaning); the host reads only each
    /// entry's `predicateType`.
    #[serde(default)]
    pub attestations: Vec<serde_json::Value>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TransparencyLog {
    #[default]
    Optional,
    Required,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct KeylessConfig {
    pub issuer: Option<String>,
    pub issuer_reg_exp: Option<String>,
    pub subject: Option<String>,
    pub subject_reg_exp: Option<String>,
}

/// A shell-style pattern: `*` matches within one path segment (not `/`),
/// `**` across segments, `?` one character other than `/`.
#[derive(Debug, Clone)]
pub struct Glob {
    pub text: String,
}

impl Glob {
    pub fn new(text: &str) -> Glob {
        Glob { text: text.to_string() }
    }

    pub fn matches(&self, candidate: &str) -> bool {
        glob_match(self.text.as_bytes(), candidate.as_bytes())
    }

    /// Characters that are not wildcards: the more, the more specific.
    pub fn specificity(&self) -> usize {
        self.text.chars().filter(|c| !matches!(c, '*' | '?')).count()
    }
}

/// Glob matching in O(pattern × text) time, whatever the pattern (no
/// backtracking): `reachable[j]` says whether the pattern read so far can
/// end at text position `j`.
fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    let mut reachable = vec![false; text.len() + 1];
    reachable[0] = true;
    let mut p = 0;
    while p < pattern.len() {
        let mut next = vec![false; text.len() + 1];
        match pattern[p] {
            b'*' if pattern.get(p + 1) == Some(&b'*') => {
                // `**`: any run of characters.
                let mut on = false;
                for j in 0..=text.len() {
                    on |= reachable[j];
                    next[j] = on;
                }
                p += 2;
            }
            b'*' => {
                // `*`: any run without `/`.
                let mut on = false;
                for j in 0..=text.len() {
                    on |= reachable[j];
                    next[j] = on;
                    if text.get(j) == Some(&b'/') {
                        on = false;
                    }
                }
                p += 1;
            }
            c => {
                for j in 0..text.len() {
                    next[j + 1] = reachable[j] && if c == b'?' { text[j] != b'/' } else { text[j] == c };
                }
                p += 1;
            }
        }
        reachable = next;
    }
    reachable[text.len()]
}

/// One authority of a policy, with the label messages use for it.
pub struct NamedAuthority {
    pub label: String,
    pub authority: Authority,
}

/// A trust policy, checked and with its keys read.
pub struct TrustPolicy {
    pub name: String,
    pub images: Vec<Glob>,
    pub namespaces: Vec<Glob>,
    pub authorities: Vec<NamedAuthority>,
    pub threshold: usize,
    /// `attestations` as configured (each entry an object with a `predicateType`).
    pub attestations: Vec<serde_json::Value>,
}

impl TrustPolicy {
    /// How specifically this policy matches `reference` (normalised) and
    /// `repository` (`registry/repository`) in `namespace`; `None`: it does not.
    pub fn specificity(&self, reference: &str, repository: &str, namespace: Option<&str>) -> Option<(usize, bool)> {
        let namespaced = !self.namespaces.is_empty();
        if namespaced {
            let namespace = namespace?;
            if !self.namespaces.iter().any(|g| g.matches(namespace)) {
                return None;
            }
        }
        self.images
            .iter()
            .filter(|g| g.matches(reference) || (!has_tag_or_digest(&g.text) && g.matches(repository)))
            .map(Glob::specificity)
            .max()
            .map(|s| (s, namespaced))
    }
}

/// Whether a pattern names a tag or digest (`:` after the last `/`, or `@`).
fn has_tag_or_digest(pattern: &str) -> bool {
    let last = pattern.rsplit('/').next().unwrap_or(pattern);
    pattern.contains('@') || last.contains(':')
}

/// Everything `imageVerification` configures, read and checked.
pub struct TrustConfig {
    pub policies: Vec<TrustPolicy>,
    pub root: Option<TrustedRoot>,
    pub unmatched: Unmatched,
    pub cache: CacheConfig,
    /// `/mutate` pins verified images to their digests.
    pub mutate_digest: bool,
}

/// Read the policies' keys and trusted roots (paths relative to `base`).
/// Every error names the file or the key (`imageVerification.policies[1].keys[0]`).
pub fn load(config: &ImageVerificationConfig, base: &Path) -> Result<TrustConfig, String> {
    let resolve = |p: &Path| if p.is_relative() { base.join(p) } else { p.to_path_buf() };
    let mut root: Option<TrustedRoot> = None;
    for (i, path) in config.trusted_root.iter().enumerate() {
        let path = resolve(path);
        let at = format!("imageVerification.trustedRoot[{i}] ({})", path.display());
        let bytes = read_bounded(&path).map_err(|e| format!("{at}: {e}"))?;
        let parsed = TrustedRoot::from_json(&bytes).map_err(|e| format!("{at}: not a Sigstore trusted root: {e}"))?;
        match &mut root {
            Some(r) => r.merge(parsed),
            None => root = Some(parsed),
        }
    }
    if config.policies.is_empty() && (!config.trusted_root.is_empty() || config.unmatched == Unmatched::Allow) {
        return Err("imageVerification: no policies: give at least one under imageVerification.policies".into());
    }
    let mut policies = Vec::new();
    for (i, p) in config.policies.iter().enumerate() {
        let at = format!("imageVerification.policies[{i}]");
        if p.name.trim().is_empty() {
            return Err(format!("{at}.name: must not be empty"));
        }
        if policies.iter().any(|q: &TrustPolicy| q.name == p.name) {
            return Err(format!("{at}.name: {:?} is used by an earlier policy", p.name));
        }
        if p.images.is_empty() {
            return Err(format!("{at}.images: give at least one image pattern"));
        }
        let mut authorities: Vec<NamedAuthority> = Vec::new();
        for (k, path) in p.keys.iter().enumerate() {
            let path = resolve(path);
            let key_at = format!("{at}.keys[{k}] ({})", path.display());
            let bytes = read_bounded(&path).map_err(|e| format!("{key_at}: {e}"))?;
            let text = String::from_utf8(bytes).map_err(|_| format!("{key_at}: not a PEM file"))?;
            let key = PublicKey::from_pem(&text).map_err(|e| format!("{key_at}: not a public key: {e}"))?;
            // The same key twice would let one signature count twice towards the threshold.
            if authorities
                .iter()
                .any(|a| matches!(&a.authority, Authority::Key { key: k, .. } if k.key_id() == key.key_id()))
            {
                return Err(format!("{key_at}: the same key is listed twice"));
            }
            authorities.push(NamedAuthority {
                label: format!("key {}", path.display()),
                authority: Authority::Key { key, require_tlog: p.transparency_log == TransparencyLog::Required },
            });
        }
        for (k, identity) in p.keyless.iter().enumerate() {
            let key_at = format!("{at}.keyless[{k}]");
            let issuer = matcher(&identity.issuer, &identity.issuer_reg_exp, &format!("{key_at}.issuer"))?;
            let subject = matcher(&identity.subject, &identity.subject_reg_exp, &format!("{key_at}.subject"))?;
            let same = |m: &Matcher, n: &Matcher| describe(m) == describe(n);
            if authorities.iter().any(
                |a| matches!(&a.authority, Authority::Keyless { issuer: i, subject: s } if same(i, &issuer) && same(s, &subject)),
            ) {
                return Err(format!("{key_at}: the same identity is listed twice"));
            }
            if root.is_none() {
                return Err(format!(
                    "{key_at}: keyless verification needs a Sigstore trusted root: set imageVerification.trustedRoot"
                ));
            }
            authorities.push(NamedAuthority {
                label: format!("keyless issuer {} subject {}", describe(&issuer), describe(&subject)),
                authority: Authority::Keyless { issuer, subject },
            });
        }
        if authorities.is_empty() {
            return Err(format!("{at}: give at least one authority (keys or keyless)"));
        }
        let threshold = p.threshold.unwrap_or(1);
        if threshold == 0 || threshold > authorities.len() {
            return Err(format!(
                "{at}.threshold: {threshold} is not between 1 and the policy's {} authorities",
                authorities.len()
            ));
        }
        for (k, requirement) in p.attestations.iter().enumerate() {
            let predicate_type = requirement.get("predicateType").and_then(serde_json::Value::as_str);
            if predicate_type.is_none_or(|t| t.trim().is_empty()) {
                return Err(format!("{at}.attestations[{k}].predicateType: required (the predicate type to look for)"));
            }
        }
        policies.push(TrustPolicy {
            name: p.name.clone(),
            images: p.images.iter().map(|g| Glob::new(g)).collect(),
            namespaces: p.namespaces.iter().map(|g| Glob::new(g)).collect(),
            authorities,
            threshold,
            attestations: p.attestations.clone(),
        });
    }
    if config.cache.max_entries == 0 {
        return Err("imageVerification.cache.maxEntries: must be at least 1".into());
    }
    Ok(TrustConfig {
        policies,
        root,
        unmatched: config.unmatched,
        cache: config.cache.clone(),
        mutate_digest: config.mutate_digest.unwrap_or(true),
    })
}

fn describe(m: &Matcher) -> String {
    match m {
        Matcher::Exact(s) => format!("{s:?}"),
        Matcher::Regex(r) => format!("~/{}/", r.as_str()),
    }
}

fn matcher(exact: &Option<String>, regex: &Option<String>, at: &str) -> Result<Matcher, String> {
    match (exact, regex) {
        (Some(_), Some(_)) => Err(format!("{at}: give either the exact value or the RegExp, not both")),
        (Some(s), None) if !s.is_empty() => Ok(Matcher::Exact(s.clone())),
        (None, Some(r)) => {
            let anchored = format!("^(?:{r})$");
            regex::Regex::new(&anchored).map(Matcher::Regex).map_err(|e| format!("{at}RegExp: {e}"))
        }
        _ => Err(format!("{at}: required (exact, or {}RegExp)", at.rsplit('.').next().unwrap_or(""))),
    }
}

/// Key and trust-root files are small; a larger one is a mistake, not a key.
fn read_bounded(path: &Path) -> Result<Vec<u8>, String> {
    const MAX: u64 = 16 << 20;
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read: {e}"))?;
    if meta.len() > MAX {
        return Err(format!("{} bytes, over the limit of {MAX}", meta.len()));
    }
    std::fs::read(path).map_err(|e| format!("cannot read: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        let g = Glob::new("ghcr.io/acme/*");
        assert!(g.matches("ghcr.io/acme/api"));
        assert!(!g.matches("ghcr.io/acme/team/api"));
        assert!(Glob::new("ghcr.io/acme/**").matches("ghcr.io/acme/team/api:1"));
        assert!(Glob::new("127.0.0.1:*/signed/*").matches("127.0.0.1:5000/signed/app:1"));
        assert!(!Glob::new("docker.io/library/nginx:1.?").matches("docker.io/library/nginx:1.25"));
        assert!(Glob::new("*").matches("x") && !Glob::new("*").matches("a/b"));
        assert!(Glob::new("ghcr.io/acme/api").specificity() > Glob::new("ghcr.io/acme/*").specificity());
        assert!(Glob::new("a*b*c").matches("aXbYc") && !Glob::new("a*b*c").matches("aXbY/c"));
        assert!(Glob::new("**/x").matches("a/b/x") && Glob::new("**").matches("") && !Glob::new("?").matches(""));
    }

    #[test]
    fn hostile_patterns_match_in_polynomial_time() {
        // Recursive backtracking takes ~L^5 steps here; the table takes 10 × 400.
        let text = "x".repeat(400);
        assert!(!Glob::new("**********a").matches(&text));
        assert!(!Glob::new("*?*?*?*?*?a").matches(&text));
    }

    #[test]
    fn repository_patterns_match_any_tag() {
        let p = TrustPolicy {
            name: "p".into(),
            images: vec![Glob::new("ghcr.io/acme/*")],
            namespaces: vec![Glob::new("prod-*")],
            authorities: Vec::new(),
            threshold: 1,
            attestations: Vec::new(),
        };
        assert!(p.specificity("ghcr.io/acme/api:1", "ghcr.io/acme/api", Some("prod-eu")).is_some());
        assert!(p.specificity("ghcr.io/acme/api:1", "ghcr.io/acme/api", Some("dev")).is_none());
        assert!(p.specificity("ghcr.io/acme/api:1", "ghcr.io/acme/api", None).is_none());
        assert!(has_tag_or_digest("a/b:1") && has_tag_or_digest("a@sha256:0") && !has_tag_or_digest("a:5000/b"));
    }

    #[test]
    fn configuration_errors_name_the_key() {
        let parse = |y: &str| -> ImageVerificationConfig { serde_json::from_str(y).unwrap() };
        let base = Path::new("/nonexistent");
        let e = load(&parse(r#"{"policies":[{"name":"a","images":["*"]}]}"#), base).err().unwrap();
        assert!(e.contains("policies[0]") && e.contains("authority"), "{e}");
        let e = load(&parse(r#"{"policies":[{"name":"a","images":["*"],"keys":["k.pub"]}]}"#), base).err().unwrap();
        assert!(e.contains("policies[0].keys[0]") && e.contains("k.pub"), "{e}");
        let e = load(
            &parse(r#"{"policies":[{"name":"a","images":["*"],"keyless":[{"issuer":"x","subjectRegExp":"("}]}]}"#),
            base,
        )
        .err()
        .unwrap();
        assert!(e.contains("policies[0].keyless[0]"), "{e}");
    }
}
