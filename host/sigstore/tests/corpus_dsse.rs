//! Every `dsse-attestation` case of the Sigstore corpus (`../shared/corpus/sigstore/cases.tsv`):
//! verify the bundle (each line of a `bundles_jsonl`), then the artifact's digest must be one of
//! the in-toto statement's subjects. Conformance cases with an artifact run twice, as upstream
//! does: with the bytes and with their `sha256:` digest. Cases without an artifact (upstream
//! verified with none) check the bundle alone.
//!
//! Each case runs under the policy of the client whose test it comes from, chosen explicitly in
//! [`policy`] with the reason; the crate's default ([`bundle::Options::default`], anchored
//! regular expressions) is the strict policy of sigstore-conformance, sigstore-python and
//! sigstore-java.

mod cases;

use cases::{Case, cases};
use palisade_sigstore::bundle::{self, Artifact, Bundle, Options, Version};
use palisade_sigstore::identity::{Authority, Matcher};
use palisade_sigstore::trust::TrustedRoot;
use palisade_sigstore::{Error, Result};
use sha2::{Digest, Sha256};

/// How identity regular expressions are read.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Regexes {
    /// Whole-value match ([`Matcher::regex`]): this crate's and sigstore-python's reading.
    Anchored,
    /// Go's `regexp.MatchString`, a search anywhere in the value ([`Matcher::regex_search`]):
    /// sigstore-go, cosign and the gh CLI.
    GoSearch,
}

/// One upstream client's policy.
struct Policy {
    options: Options,
    regexes: Regexes,
    why: &'static str,
}

fn strict(why: &'static str) -> Policy {
    Policy { options: Options::default(), regexes: Regexes::Anchored, why }
}

/// The policy of the client whose test the case comes from, with the reason.
fn policy(case: &Case) -> Policy {
    let id = case.id.as_str();
    let no_log_instance = Options { require_tlog: false, require_sct: false, ..Options::default() };
    match id {
        // sigstore-java's GitHub test verifies with a policy that asks for neither a log entry nor
        // an SCT: GitHub's private instance has no Rekor and no CT log, only a TSA (the
        // timestamp is still required).
        "sigstore-java/github-private-no-tlog" => Policy {
            options: no_log_instance,
            regexes: Regexes::Anchored,
            why: "sigstore-java, GitHub instance: no tlog, no SCT, RFC 3161 timestamp required",
        },
        // The same bundle under sigstore-java's default policy, which requires a log entry.
        "sigstore-java/github-private-no-tlog-default-policy" => strict("sigstore-java default policy: tlog required"),
        // The gh CLI verifies GitHub-instance attestations against GitHub's trust root, which has
        // no log and no CT log: the TSA timestamp is the only time evidence. It refuses v0.1.
        "gh-cli/github-provenance-demo" => Policy {
            options: Options { min_version: Version::V0_2, ..no_log_instance },
            regexes: Regexes::GoSearch,
            why: "gh CLI, GitHub instance: no tlog, no SCT, RFC 3161 timestamp required; v0.2+",
        },
        _ if id.starts_with("gh-cli/") => Policy {
            options: Options { min_version: Version::V0_2, ..Options::default() },
            regexes: Regexes::GoSearch,
            why: "gh CLI (public good): refuses v0.1 bundles ('unsupported bundle version'); Go regexps",
        },
        // sigstore-go accepts a v0.1 bundle whose entry has an inclusion promise (SET) only, takes
        // only the leaf of a bundle's certificate chain (old v0.1 bundles carry the root too) and
        // builds the path from the trusted root, and matches `--certificate-identity-regexp`
        // with Go's unanchored `MatchString`.
        _ if id.starts_with("sigstore-go/") => Policy {
            options: Options { allow_promise_only_v01: true, leaf_only: true, ..Options::default() },
            regexes: Regexes::GoSearch,
            why: "sigstore-go: v0.1 promise-only entries accepted; bundle chain: leaf only; Go (unanchored) regexps",
        },
        // cosign is Go: its identity regexps search (the note's '.*' and 'wrong' behave the same).
        _ if id.starts_with("cosign/") => Policy {
            options: Options::default(),
            regexes: Regexes::GoSearch,
            why: "cosign: default verification; Go (unanchored) regexps",
        },
        _ if id.starts_with("conformance/") => strict("sigstore-conformance: strict default"),
        _ if id.starts_with("sigstore-python/") => strict("sigstore-python: strict default"),
        _ if id.starts_with("sigstore-java/") => strict("sigstore-java: default policy"),
        _ if id.starts_with("sigstore-rs/") => strict("sigstore-rs: default"),
        _ => panic!("{id}: no upstream policy chosen for this source"),
    }
}

/// The trust root: the case's file, or the line of `trusted_root_jsonl` the notes name (the one
/// whose CA is GitHub's `fulcio.githubapp.com`); `None` when the case gives none.
fn trusted_root(case: &Case) -> Option<Result<TrustedRoot>> {
    if let Some(bytes) = case.read("trusted_root").or_else(|| case.read("trust_config")) {
        return Some(TrustedRoot::from_json(&bytes));
    }
    let jsonl = String::from_utf8(case.read("trusted_root_jsonl")?).expect("UTF-8");
    let line = jsonl
        .lines()
        .find(|line| {
            let v: serde_json::Value = serde_json::from_str(line).unwrap_or_default();
            v["certificateAuthorities"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|ca| ca["uri"].as_str().is_some_and(|u| u.contains("fulcio.githubapp.com")))
        })
        .unwrap_or_else(|| panic!("{}: no fulcio.githubapp.com line in trusted_root_jsonl", case.id));
    Some(TrustedRoot::from_json(line.as_bytes()))
}

impl Regexes {
    fn build(self) -> fn(&str) -> Result<Matcher> {
        match self {
            Regexes::Anchored => Matcher::regex,
            Regexes::GoSearch => Matcher::regex_search,
        }
    }
}

fn authorities(case: &Case, regexes: Regexes) -> Result<Vec<Authority>> {
    case.authorities(regexes.build())
}

/// Each way upstream runs the case: `""` with the artifact's bytes, else a digest; `None` when
/// there is no artifact at all.
fn artifacts(case: &Case) -> Vec<Option<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    if let Some(bytes) = case.read("artifact") {
        out.push(Some((String::new(), bytes.clone())));
        if case.id.starts_with("conformance/") {
            out.push(Some((format!("sha256:{}", hex(&Sha256::digest(&bytes))), Vec::new())));
        }
    }
    if let Some(digest) = case.one("digest") {
        out.push(Some((digest.to_string(), Vec::new())));
    }
    if out.is_empty() {
        out.push(None);
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The bundles of the case: one file, or every line of a JSON Lines file.
fn bundles(case: &Case) -> Vec<Vec<u8>> {
    if let Some(bytes) = case.read("bundle") {
        return vec![bytes];
    }
    let jsonl = case.read("bundles_jsonl").unwrap_or_else(|| panic!("{}: no bundle", case.id));
    jsonl.split(|b| *b == b'\n').filter(|l| !l.iter().all(u8::is_ascii_whitespace)).map(<[u8]>::to_vec).collect()
}

fn verify_case(case: &Case, policy: &Policy, artifact: Option<&(String, Vec<u8>)>) -> Result<()> {
    let bundles = bundles(case);
    let Some(root) = trusted_root(case) else {
        // No trust root: the upstream expects the bundles not to load. Loading is all there is to
        // check (a bundle that loads is reported as verifying, so a disagreement shows).
        for json in &bundles {
            Bundle::from_json(json)?;
        }
        return Ok(());
    };
    let root = root?;
    let authorities = authorities(case, policy.regexes)?;
    let artifact = artifact.map(|(digest, bytes)| {
        if digest.is_empty() {
            Artifact::Bytes(bytes)
        } else {
            let (algorithm, hex) = digest.split_once(':').unwrap_or(("sha256", digest));
            Artifact::Digest { algorithm, hex }
        }
    });
    for json in &bundles {
        let mut last = Error::IdentityMismatch("no policy".into());
        let mut ok = false;
        for authority in &authorities {
            let r = match artifact {
                Some(artifact) => bundle::verify_with(json, artifact, &root, authority, &policy.options).map(|_| ()),
                None => bundle::verify_dsse_with(json, &root, authority, &policy.options).map(|_| ()),
            };
            match r {
                Ok(()) => {
                    ok = true;
                    break;
                }
                Err(e) => last = e,
            }
        }
        if !ok {
            return Err(last);
        }
    }
    Ok(())
}

#[test]
fn dsse_attestation_cases_agree() {
    let all = cases("dsse-attestation");
    assert!(!all.is_empty(), "no dsse-attestation cases");
    let mut agree = 0;
    let mut bad = Vec::new();
    for case in &all {
        let policy = policy(case);
        let runs: Vec<(String, Result<()>)> = artifacts(case)
            .iter()
            .map(|a| {
                let how = match a {
                    None => "bundle".to_string(),
                    Some((d, _)) if d.is_empty() => "bytes".to_string(),
                    Some((d, _)) => d.split_once(':').map_or("digest", |(alg, _)| alg).to_string(),
                };
                (how, verify_case(case, &policy, a.as_ref()))
            })
            .collect();
        let ok = runs.iter().all(|(_, r)| r.is_ok() == case.pass);
        if ok {
            agree += 1;
        } else {
            for (how, r) in &runs {
                bad.push(format!(
                    "{} ({how}): expected {}, got {r:?}",
                    case.id,
                    if case.pass { "pass" } else { "fail" }
                ));
            }
        }
        println!(
            "{} {} [{}] ({}) {}",
            if ok { "agree   " } else { "DISAGREE" },
            case.id,
            if case.pass { "pass" } else { "fail" },
            policy.why,
            runs.iter()
                .map(|(how, r)| format!("{how}={}", r.as_ref().err().map_or("ok".to_string(), |e| e.to_string())))
                .collect::<Vec<_>>()
                .join("; ")
        );
    }
    println!("dsse-attestation: {agree}/{} cases agree", all.len());
    assert!(bad.is_empty(), "{} disagreements:\n{}", bad.len(), bad.join("\n"));
}

/// The options are opt-in: under the defaults, the promise-only v0.1 bundle, the GitHub-instance
/// bundle and the v0.1 copy the gh CLI refuses behave as before (strict), and relaxing the log
/// and SCT requirements still needs a verified RFC 3161 timestamp.
#[test]
fn options_are_opt_in_and_keep_time_evidence() {
    let all = cases("dsse-attestation");
    let find = |id: &str| all.iter().find(|c| c.id == id).unwrap_or_else(|| panic!("{id} in the corpus"));

    // GitHub instance: strict default fails, relaxed passes; without its timestamp it fails.
    let case = find("sigstore-java/github-private-no-tlog");
    let root = trusted_root(case).expect("trust root").expect("parses");
    let json = case.read("bundle").expect("bundle");
    let authority = authorities(case, Regexes::Anchored).expect("identity").remove(0);
    let relaxed = Options { require_tlog: false, require_sct: false, ..Options::default() };
    assert!(bundle::verify_dsse(&json, &root, &authority).is_err());
    assert!(bundle::verify_dsse_with(&json, &root, &authority, &relaxed).is_ok());
    let mut value: serde_json::Value = serde_json::from_slice(&json).expect("JSON");
    value["verificationMaterial"].as_object_mut().expect("object").remove("timestampVerificationData");
    let stripped = serde_json::to_vec(&value).expect("JSON");
    assert!(matches!(bundle::verify_dsse_with(&stripped, &root, &authority, &relaxed), Err(Error::Timestamp(_))));

    // Promise-only v0.1: refused by default, accepted when asked for.
    let case = find("sigstore-go/dsse");
    let root = trusted_root(case).expect("trust root").expect("parses");
    let json = case.read("bundle").expect("bundle");
    let authority = authorities(case, Regexes::Anchored).expect("identity").remove(0);
    assert!(bundle::verify_dsse(&json, &root, &authority).is_err());
    let leaf_only = Options { leaf_only: true, ..Options::default() };
    assert!(matches!(bundle::verify_dsse_with(&json, &root, &authority, &leaf_only), Err(Error::TransparencyLog(_))));
    let promise = Options { allow_promise_only_v01: true, leaf_only: true, ..Options::default() };
    assert!(bundle::verify_dsse_with(&json, &root, &authority, &promise).is_ok());
    // ... but not a promise-only entry whose SET is gone.
    let mut value: serde_json::Value = serde_json::from_slice(&json).expect("JSON");
    for entry in value["verificationMaterial"]["tlogEntries"].as_array_mut().expect("entries") {
        entry.as_object_mut().expect("object").remove("inclusionPromise");
    }
    let no_set = serde_json::to_vec(&value).expect("JSON");
    assert!(bundle::verify_dsse_with(&no_set, &root, &authority, &promise).is_err());

    // A minimum version refuses an otherwise valid v0.1 bundle.
    let case = find("gh-cli/sigstore-js-2.1.0-v0.1");
    let root = trusted_root(case).expect("trust root").expect("parses");
    let json = case.read("bundle").expect("bundle");
    let authority = authorities(case, Regexes::Anchored).expect("identity").remove(0);
    assert!(bundle::verify_dsse(&json, &root, &authority).is_ok());
    let v02 = Options { min_version: Version::V0_2, ..Options::default() };
    assert!(bundle::verify_dsse_with(&json, &root, &authority, &v02).is_err());
}
