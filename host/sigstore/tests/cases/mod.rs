//! The Sigstore corpus (`../shared/corpus/sigstore/cases.tsv`): one case a
//! line, columns `case_id`, `kind`, `files` (`role=path`, comma-separated),
//! `expected` (`pass`/`fail`), `identity` (`key=value` pairs), `note`.

#![allow(dead_code)]

use std::path::PathBuf;

use palisade_sigstore::Result;
use palisade_sigstore::identity::{Authority, Matcher};
use palisade_sigstore::keys::PublicKey;

pub struct Case {
    pub id: String,
    pub kind: String,
    /// `(role, value)`: a path relative to the corpus folder, or for `digest`, the digest itself.
    pub files: Vec<(String, String)>,
    pub pass: bool,
    pub identity: Vec<(String, String)>,
    pub note: String,
}

impl Case {
    /// Every value of `role`, in order.
    pub fn all(&self, role: &str) -> Vec<&str> {
        self.files.iter().filter(|(r, _)| r == role).map(|(_, v)| v.as_str()).collect()
    }

    pub fn one(&self, role: &str) -> Option<&str> {
        self.all(role).into_iter().next()
    }

    /// The bytes of the first file of `role`.
    pub fn read(&self, role: &str) -> Option<Vec<u8>> {
        let path = corpus().join(self.one(role)?);
        Some(std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
    }

    pub fn identity(&self, key: &str) -> Option<&str> {
        self.identity.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// The policies to try: any listed `key` may have signed; else the
    /// identity (`issuer`/`issuer_regex`, `san`/`san_regex`), its regular
    /// expressions built by `regex` (anchored like Palisade, or searched like Go).
    pub fn authorities(&self, regex: fn(&str) -> Result<Matcher>) -> Result<Vec<Authority>> {
        let keys = self.all("key");
        if !keys.is_empty() {
            return keys
                .iter()
                .map(|path| {
                    let text = std::fs::read_to_string(corpus().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
                    Ok(Authority::Key { key: PublicKey::from_pem(&text)?, require_tlog: true })
                })
                .collect();
        }
        let matcher = |exact: &str, pattern: &str| match (self.identity(exact), self.identity(pattern)) {
            (Some(value), _) => Ok(Matcher::Exact(value.to_string())),
            (None, Some(pattern)) => regex(pattern),
            // No identity: the upstream applied none (the case fails before one is looked at).
            (None, None) => regex(".*"),
        };
        Ok(vec![Authority::Keyless {
            issuer: matcher("issuer", "issuer_regex")?,
            subject: matcher("san", "san_regex")?,
        }])
    }

    /// `[policy]` in the note: the expectation is one client's choice.
    pub fn is_policy_choice(&self) -> bool {
        self.note.contains("[policy]")
    }
}

/// The corpus folder: `$PALISADE_CORPUS/sigstore`, else `../shared/corpus/sigstore`
/// beside the repository.
pub fn corpus() -> PathBuf {
    if let Some(dir) = std::env::var_os("PALISADE_CORPUS") {
        return PathBuf::from(dir).join("sigstore");
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus/sigstore")
}

/// Every case of `kind`.
pub fn cases(kind: &str) -> Vec<Case> {
    let path = corpus().join("cases.tsv");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut out = Vec::new();
    for line in text.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        if cols.len() < 5 || cols[1] != kind {
            continue;
        }
        let pairs = |text: &str, sep: char| -> Vec<(String, String)> {
            text.split(sep)
                .filter(|p| !p.is_empty())
                .filter_map(|p| p.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
                .collect()
        };
        out.push(Case {
            id: cols[0].to_string(),
            kind: cols[1].to_string(),
            files: pairs(cols[2], ','),
            pass: cols[3] == "pass",
            identity: pairs(cols[4], ' '),
            note: cols.get(5).unwrap_or(&"").to_string(),
        });
    }
    assert!(!out.is_empty(), "no case of kind {kind} in {}", path.display());
    out
}
