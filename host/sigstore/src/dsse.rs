//! DSSE envelopes, in-toto statements and SLSA provenance checks.
//!
//! Sources of truth:
//! - DSSE v1.0, <https://github.com/secure-systems-lab/dsse/blob/master/envelope.md> and
//!   `protocol.md`: the envelope `{payload, payloadType, signatures: [{keyid, sig}]}` with base64
//!   (standard or URL-safe) payload and signatures, and the signature over
//!   `PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body` (lengths in ASCII decimal);
//! - in-toto Statement v1 and v0.1, <https://github.com/in-toto/attestation/blob/main/spec/v1/statement.md>:
//!   `_type`, `subject: [{name, digest: {alg: hex}}]`, `predicateType`, `predicate`;
//! - SLSA provenance v0.2 (`predicate.builder.id`, `predicate.invocation.configSource.uri`,
//!   `predicate.invocation.environment.github_ref`) and v1 (`runDetails.builder.id`,
//!   `buildDefinition.externalParameters.workflow.{repository,ref}`), checked the way
//!   slsa-verifier (`verifiers/internal/gha/provenance.go`) checks source, branch, tag and builder id.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use serde::Deserialize;

use crate::{Error, Result, malformed};

/// The payload type of an in-toto statement.
pub const IN_TOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
/// `_type` of in-toto statements v1 and v0.1.
pub const STATEMENT_V1: &str = "https://in-toto.io/Statement/v1";
pub const STATEMENT_V01: &str = "https://in-toto.io/Statement/v0.1";

/// One signature of an envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvelopeSignature {
    pub keyid: String,
    pub sig: Vec<u8>,
}

/// A DSSE envelope with its payload and signatures decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub payload_type: String,
    pub payload: Vec<u8>,
    pub signatures: Vec<EnvelopeSignature>,
}

#[derive(Deserialize)]
struct RawEnvelope {
    payload: String,
    #[serde(rename = "payloadType")]
    payload_type: String,
    #[serde(default)]
    signatures: Vec<RawSignature>,
}

#[derive(Deserialize)]
struct RawSignature {
    #[serde(default)]
    keyid: Option<String>,
    sig: String,
}

/// Standard or URL-safe base64, padded or not (DSSE accepts either).
pub(crate) fn decode_b64(what: &'static str, text: &str) -> Result<Vec<u8>> {
    let trimmed = text.trim_end_matches('=');
    let unpadded =
        base64::engine::GeneralPurpose::new(&base64::alphabet::STANDARD, base64::engine::general_purpose::NO_PAD);
    let unpadded_url =
        base64::engine::GeneralPurpose::new(&base64::alphabet::URL_SAFE, base64::engine::general_purpose::NO_PAD);
    STANDARD
        .decode(text)
        .or_else(|_| URL_SAFE.decode(text))
        .or_else(|_| unpadded.decode(trimmed))
        .or_else(|_| unpadded_url.decode(trimmed))
        .map_err(|e| malformed(what, format!("not base64: {e}")))
}

impl Envelope {
    /// Parses a DSSE envelope's JSON.
    pub fn from_json(json: &[u8]) -> Result<Envelope> {
        let value: serde_json::Value = serde_json::from_slice(json).map_err(|e| malformed("DSSE envelope", e))?;
        Envelope::from_value(&value)
    }

    /// Parses a DSSE envelope from JSON already read (a bundle's `dsseEnvelope`).
    pub fn from_value(value: &serde_json::Value) -> Result<Envelope> {
        let raw = RawEnvelope::deserialize(value).map_err(|e| malformed("DSSE envelope", e))?;
        let payload = decode_b64("DSSE payload", &raw.payload)?;
        let signatures = raw
            .signatures
            .into_iter()
            .map(|s| {
                Ok(EnvelopeSignature { keyid: s.keyid.unwrap_or_default(), sig: decode_b64("DSSE signature", &s.sig)? })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Envelope { payload_type: raw.payload_type, payload, signatures })
    }

    /// The bytes each signature signs.
    pub fn pae(&self) -> Vec<u8> {
        pae(&self.payload_type, &self.payload)
    }

    /// The payload as an in-toto statement (the payload type must say it is one).
    pub fn statement(&self) -> Result<Statement> {
        if self.payload_type != IN_TOTO_PAYLOAD_TYPE {
            return Err(malformed(
                "DSSE envelope",
                format!("payload type {:?} is not {IN_TOTO_PAYLOAD_TYPE}", self.payload_type),
            ));
        }
        Statement::from_json(&self.payload)
    }
}

/// DSSE's pre-authentication encoding.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + payload_type.len() + 32);
    out.extend_from_slice(format!("DSSEv1 {} {payload_type} {} ", payload_type.len(), payload.len()).as_bytes());
    out.extend_from_slice(payload);
    out
}

/// One subject of a statement: a name and its digests (`sha256` → lower-case hex).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Subject {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub digest: BTreeMap<String, String>,
}

/// An in-toto statement.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Statement {
    #[serde(rename = "_type")]
    pub statement_type: String,
    pub subject: Vec<Subject>,
    #[serde(rename = "predicateType", default)]
    pub predicate_type: String,
    #[serde(default)]
    pub predicate: serde_json::Value,
}

impl Statement {
    pub fn from_json(json: &[u8]) -> Result<Statement> {
        let statement: Statement = serde_json::from_slice(json).map_err(|e| malformed("in-toto statement", e))?;
        if statement.statement_type != STATEMENT_V1 && statement.statement_type != STATEMENT_V01 {
            return Err(malformed("in-toto statement", format!("unknown _type {:?}", statement.statement_type)));
        }
        if statement.subject.is_empty() {
            return Err(malformed("in-toto statement", "no subject"));
        }
        Ok(statement)
    }

    /// Whether a subject has this digest (`algorithm` as in-toto names it: `sha256`, `sha512`).
    pub fn has_subject_digest(&self, algorithm: &str, hex: &str) -> bool {
        self.subject.iter().any(|s| {
            s.digest.iter().any(|(alg, value)| alg.eq_ignore_ascii_case(algorithm) && value.eq_ignore_ascii_case(hex))
        })
    }
}

/// What SLSA provenance must say (slsa-verifier's `--source-uri`, `--source-branch`,
/// `--source-tag`, `--builder-id`); `None` checks nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProvenancePolicy {
    /// The source repository, e.g. `github.com/org/repo` (a scheme or `git+` is ignored).
    pub source: Option<String>,
    pub branch: Option<String>,
    pub tag: Option<String>,
    /// The builder, e.g. `https://github.com/slsa-framework/slsa-github-generator/.github/workflows/generator_container_slsa3.yml`,
    /// optionally with `@refs/tags/vX`; without a ref any version of it matches.
    pub builder_id: Option<String>,
}

const SLSA_V02: &str = "https://slsa.dev/provenance/v0.2";
const SLSA_V1: &str = "https://slsa.dev/provenance/v1";

/// `github.com/org/repo` from `git+https://github.com/org/repo@refs/heads/main` or `https://github.com/org/repo`.
fn normalize_source(uri: &str) -> &str {
    let uri = uri.strip_prefix("git+").unwrap_or(uri);
    let uri = uri.split_once("://").map_or(uri, |(_, rest)| rest);
    let uri = uri.split_once('@').map_or(uri, |(repo, _)| repo);
    uri.trim_end_matches('/').trim_end_matches(".git")
}

fn str_at<'a>(value: &'a serde_json::Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(value, |v, key| v.get(key))?.as_str()
}

/// Checks SLSA provenance (v0.2 or v1) in a verified statement against `policy`.
pub fn check_provenance(statement: &Statement, policy: &ProvenancePolicy) -> Result<()> {
    let p = &statement.predicate;
    let mismatch = |what: String| Err(Error::IdentityMismatch(what));
    let (builder, source, git_ref, base_ref) = match statement.predicate_type.as_str() {
        SLSA_V02 => (
            str_at(p, &["builder", "id"]),
            str_at(p, &["invocation", "configSource", "uri"]),
            str_at(p, &["invocation", "environment", "github_ref"]),
            str_at(p, &["invocation", "environment", "github_event_payload", "base_ref"]),
        ),
        SLSA_V1 => (
            str_at(p, &["runDetails", "builder", "id"]),
            str_at(p, &["buildDefinition", "externalParameters", "workflow", "repository"]),
            str_at(p, &["buildDefinition", "externalParameters", "workflow", "ref"]),
            str_at(p, &["buildDefinition", "internalParameters", "github", "event_payload", "base_ref"]),
        ),
        other => return mismatch(format!("predicate type {other:?} is not SLSA provenance v0.2 or v1")),
    };

    if let Some(want) = &policy.builder_id {
        let Some(have) = builder else { return mismatch("provenance names no builder".into()) };
        let ok =
            if want.contains('@') { have == want } else { have.split_once('@').map_or(have, |(id, _)| id) == want };
        if !ok {
            return mismatch(format!("builder {have:?} is not {want:?}"));
        }
    }
    if let Some(want) = &policy.source {
        let Some(have) = source else { return mismatch("provenance names no source".into()) };
        if normalize_source(have) != normalize_source(want) {
            return mismatch(format!("source {have:?} is not {want:?}"));
        }
    }
    if let Some(want) = &policy.tag {
        let tag = git_ref.and_then(|r| r.strip_prefix("refs/tags/"));
        match tag {
            Some(tag) if tag == want => {}
            Some(tag) => return mismatch(format!("tag {tag:?} is not {want:?}")),
            None => return mismatch(format!("the build was not of a tag (ref {git_ref:?}), {want:?} wanted")),
        }
    }
    if let Some(want) = &policy.branch {
        // A branch build names it in its ref; a tag build in the event's base ref, if anywhere.
        let branch = git_ref
            .and_then(|r| r.strip_prefix("refs/heads/"))
            .or_else(|| base_ref.and_then(|r| r.strip_prefix("refs/heads/")));
        match branch {
            Some(branch) if branch == want => {}
            Some(branch) => return mismatch(format!("branch {branch:?} is not {want:?}")),
            None => return mismatch(format!("provenance names no branch, {want:?} wanted")),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pae_matches_the_spec_example() {
        // DSSE protocol.md test vector.
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world".to_vec()
        );
    }

    #[test]
    fn statements() {
        let json = br#"{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"a","digest":{"sha256":"AB"}}],"predicateType":"x","predicate":{}}"#;
        let s = Statement::from_json(json).unwrap();
        assert!(s.has_subject_digest("sha256", "ab"));
        assert!(!s.has_subject_digest("sha512", "ab"));
        assert!(Statement::from_json(br#"{"_type":"other","subject":[]}"#).is_err());
    }

    #[test]
    fn sources_normalize() {
        assert_eq!(normalize_source("git+https://github.com/o/r@refs/heads/main"), "github.com/o/r");
        assert_eq!(normalize_source("github.com/o/r"), "github.com/o/r");
    }
}
