//! Who must have signed: a public key, or a certificate's OIDC issuer and subject.
//!
//! Sources of truth: cosign's `--certificate-identity[-regexp]` and
//! `--certificate-oidc-issuer[-regexp]` (exact strings, or Go regular expressions that
//! must match the whole value, as sigstore-go's `SubjectAlternativeNameMatcher` anchors
//! them), and Fulcio's OID registry
//! (<https://github.com/sigstore/fulcio/blob/main/docs/oid-info.md>) for what the issuer
//! and subject of a certificate are (see [`crate::certificate::Certificate::identity`]).

use crate::keys::PublicKey;
use crate::{Error, Result, Signer};

/// One expected value: exact, or a regular expression over the whole value.
#[derive(Debug, Clone)]
pub enum Matcher {
    Exact(String),
    /// Compiled anchored: build it with [`Matcher::regex`].
    Regex(regex::Regex),
}

impl Matcher {
    /// A regular expression that must match the whole value (wrapped as `^(?:...)$`).
    pub fn regex(pattern: &str) -> Result<Matcher> {
        regex::Regex::new(&format!("^(?:{pattern})$"))
            .map(Matcher::Regex)
            .map_err(|e| crate::malformed("identity regular expression", e))
    }

    /// A Go-style regular expression that may match anywhere in the value (as Go's
    /// `regexp.MatchString`, which sigstore-go and cosign use for `--certificate-identity-regexp`),
    /// unless the pattern anchors itself with `^`/`$`. Built as a [`Matcher::Regex`] that matches
    /// the whole value: `(?s:.*?)(?:pattern)(?s:.*)`. The pattern must compile on its own, so it
    /// cannot close the wrapping group.
    pub fn regex_search(pattern: &str) -> Result<Matcher> {
        regex::Regex::new(pattern).map_err(|e| crate::malformed("identity regular expression", e))?;
        Matcher::regex(&format!("(?s:.*?)(?:{pattern})(?s:.*)"))
    }

    pub fn matches(&self, value: &str) -> bool {
        match self {
            Matcher::Exact(expected) => expected == value,
            Matcher::Regex(re) => {
                // Anchored whatever way the Regex was built: the whole value must match. The
                // leftmost match may be shorter than a whole-value one (`a|ab`, `a+?`), so a
                // miss is settled by the anchored form, compiled once per pattern.
                re.find(value).is_some_and(|m| m.range() == (0..value.len()))
                    || anchored(re).is_some_and(|re| re.is_match(value))
            }
        }
    }

    fn describe(&self) -> String {
        match self {
            Matcher::Exact(s) => format!("{s:?}"),
            Matcher::Regex(re) => format!("/{}/", re.as_str()),
        }
    }
}

/// Most anchored forms kept; the cache starts over when full (patterns come from policies,
/// so there are few).
const MAX_ANCHORED: usize = 256;

/// `^(?:pattern)$` for `re`'s pattern, compiled the first time it is asked for; `None` when it
/// does not compile (the value then does not match).
fn anchored(re: &regex::Regex) -> Option<regex::Regex> {
    use std::collections::HashMap;
    use std::sync::{LazyLock, Mutex};
    static CACHE: LazyLock<Mutex<HashMap<String, Option<regex::Regex>>>> = LazyLock::new(Default::default);

    let lock = || CACHE.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(compiled) = lock().get(re.as_str()) {
        return compiled.clone();
    }
    // Compiled without the lock held; two threads may both compile a new pattern once.
    let compiled = regex::Regex::new(&format!("^(?:{})$", re.as_str())).ok();
    let mut cache = lock();
    if cache.len() >= MAX_ANCHORED {
        cache.clear();
    }
    cache.insert(re.as_str().to_string(), compiled.clone());
    compiled
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Matcher::Exact(a), Matcher::Exact(b)) => a == b,
            (Matcher::Regex(a), Matcher::Regex(b)) => a.as_str() == b.as_str(),
            _ => false,
        }
    }
}

/// Who a policy trusts to sign.
#[derive(Debug, Clone, PartialEq)]
pub enum Authority {
    /// A public key; `require_tlog`: a transparency log entry (Rekor SET or inclusion
    /// proof) must vouch for the signature.
    Key { key: PublicKey, require_tlog: bool },
    /// A certificate (Fulcio or a CA of the trust root) whose OIDC issuer and subject match.
    Keyless { issuer: Matcher, subject: Matcher },
}

/// Checks that `signer` is who `authority` names; `IdentityMismatch` says expected vs found.
pub fn check(authority: &Authority, signer: &Signer) -> Result<()> {
    match (authority, signer) {
        (Authority::Key { key, .. }, Signer::Key { key_id }) => {
            let expected = key.key_id();
            if &expected == key_id {
                Ok(())
            } else {
                Err(Error::IdentityMismatch(format!("expected key {expected}, signed by key {key_id}")))
            }
        }
        (
            Authority::Keyless { issuer, subject },
            Signer::Certificate { issuer: found_issuer, subject: found_subject },
        ) => {
            if !issuer.matches(found_issuer) {
                return Err(Error::IdentityMismatch(format!(
                    "expected OIDC issuer {}, found {found_issuer:?}",
                    issuer.describe()
                )));
            }
            if !subject.matches(found_subject) {
                return Err(Error::IdentityMismatch(format!(
                    "expected subject {}, found {found_subject:?}",
                    subject.describe()
                )));
            }
            Ok(())
        }
        (Authority::Key { key, .. }, Signer::Certificate { issuer, subject }) => Err(Error::IdentityMismatch(format!(
            "expected key {}, signed by certificate of {subject:?} (issuer {issuer:?})",
            key.key_id()
        ))),
        (Authority::Keyless { issuer, subject }, Signer::Key { key_id }) => Err(Error::IdentityMismatch(format!(
            "expected a certificate for subject {} (issuer {}), signed by key {key_id}",
            subject.describe(),
            issuer.describe()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert(issuer: &str, subject: &str) -> Signer {
        Signer::Certificate { issuer: issuer.into(), subject: subject.into() }
    }

    #[test]
    fn exact_and_anchored_regex() {
        let exact = Matcher::Exact("https://accounts.google.com".into());
        assert!(exact.matches("https://accounts.google.com"));
        assert!(!exact.matches("https://accounts.google.com/"));

        let re = Matcher::regex("https://github.com/sigstore/.*").unwrap();
        assert!(re.matches("https://github.com/sigstore/sigstore-js/.github/workflows/release.yml@refs/heads/main"));
        assert!(!re.matches("evil https://github.com/sigstore/x"));
        // Alternation is anchored as a whole, not per branch.
        let alt = Matcher::regex("a|b").unwrap();
        assert!(alt.matches("a") && alt.matches("b") && !alt.matches("ab") && !alt.matches("xa"));
        // An unanchored Regex built by hand still has to match the whole value.
        let raw = Matcher::Regex(regex::Regex::new("b+").unwrap());
        assert!(raw.matches("bbb") && !raw.matches("abbb"));
        // The leftmost match is not the whole value, an anchored one is.
        let lazy = Matcher::Regex(regex::Regex::new("a|ab").unwrap());
        assert!(lazy.matches("ab") && lazy.matches("ab") && !lazy.matches("abc"));
        // A pattern that closes Matcher::regex's group is still anchored as a whole.
        let escaping = Matcher::regex("a)|(b").unwrap();
        assert!(escaping.matches("a") && escaping.matches("b") && !escaping.matches("xb") && !escaping.matches("ax"));
        assert!(Matcher::regex("(").is_err());
    }

    #[test]
    fn search_regex_matches_anywhere_unless_anchored() {
        let prefix = Matcher::regex_search("^https://github.com/sigstore/sigstore-js/").unwrap();
        assert!(
            prefix.matches("https://github.com/sigstore/sigstore-js/.github/workflows/release.yml@refs/heads/main")
        );
        assert!(!prefix.matches("https://evil.example/https://github.com/sigstore/sigstore-js/"));
        let inner = Matcher::regex_search("sigstore").unwrap();
        assert!(inner.matches("https://github.com/sigstore/x") && !inner.matches("https://github.com/other/x"));
        let suffix = Matcher::regex_search("@refs/heads/main$").unwrap();
        assert!(suffix.matches("x.yml@refs/heads/main") && !suffix.matches("x.yml@refs/heads/main2"));
        assert!(Matcher::regex_search("a)|(b").is_err());
        assert!(Matcher::regex_search("(").is_err());
        // Matcher::regex itself still anchors.
        assert!(!Matcher::regex("sigstore").unwrap().matches("https://github.com/sigstore/x"));
    }

    #[test]
    fn check_reports_expected_and_found() {
        let authority = Authority::Keyless {
            issuer: Matcher::Exact("https://token.actions.githubusercontent.com".into()),
            subject: Matcher::Exact("me@example.com".into()),
        };
        assert!(check(&authority, &cert("https://token.actions.githubusercontent.com", "me@example.com")).is_ok());
        let Err(Error::IdentityMismatch(text)) =
            check(&authority, &cert("https://token.actions.githubusercontent.com", "you@example.com"))
        else {
            panic!("expected a mismatch");
        };
        assert!(text.contains("me@example.com") && text.contains("you@example.com"), "{text}");
        let Err(Error::IdentityMismatch(text)) =
            check(&authority, &cert("https://accounts.google.com", "me@example.com"))
        else {
            panic!("expected a mismatch");
        };
        assert!(text.contains("accounts.google.com"), "{text}");
        assert!(matches!(
            check(&authority, &Signer::Key { key_id: "sha256:00".into() }),
            Err(Error::IdentityMismatch(_))
        ));
    }
}
