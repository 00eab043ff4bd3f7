//! Image attestations, end to end: images pushed to a real registry (Debian's
//! docker-registry on loopback) and signed so that `image-signature` passes,
//! then attested with in-toto statements the tests make themselves (SLSA
//! provenance v0.2 and v1, CycloneDX and SPDX SBOMs, cosign's and in-toto's
//! vulnerability scans, a custom predicate), attached as cosign's legacy
//! `sha256-<hex>.att` tags and as Sigstore bundle referrers, signed by cosign
//! keys or keyless certificates of a test Sigstore instance. Then `palisade
//! check --verify-images` (and `palisade serve`) with trust policies that
//! declare `attestations`. Each case asserts the rule id, the path of the
//! image field, the words of the message (image, predicate type, reason),
//! that `image-signature` had nothing to say, and the exit code.
//!
//! The requirement shape is `policies/sdk/src/attest.rs`'s module doc; the
//! messages quoted here are its `Unmet` and check messages.

mod common;
#[path = "common/sigstore.rs"]
mod sigstore;

use std::path::PathBuf;

use common::registry::{Mode, Registry};
use common::server::{Server, post, start};
use serde_json::{Value, json};
use sigstore::*;

const ATTEST: &str = "image-attestation";

const SLSA_V1: &str = "https://slsa.dev/provenance/v1";
const SLSA_V02: &str = "https://slsa.dev/provenance/v0.2";
const CYCLONEDX: &str = "https://cyclonedx.org/bom";
const SPDX_23: &str = "https://spdx.dev/Document/v2.3";
const COSIGN_VULN: &str = "https://cosign.sigstore.dev/attestation/vuln/v1";
const IN_TOTO_VULNS_02: &str = "https://in-toto.io/attestation/vulns/v0.2";
const GATE: &str = "https://example.com/release-gate/v1";

const BUILDER: &str =
    "https://github.com/slsa-framework/slsa-github-generator/.github/workflows/generator_container_slsa3.yml";
const ROGUE_BUILDER: &str = "https://github.com/mallory/builder/.github/workflows/build.yml";

// ---------------------------------------------------------------------------
// Configuration and runs

/// Every rule but `image-signature` and `image-attestation` (disabled in the
/// test configurations, so the exit code speaks of images alone).
fn disabled() -> Vec<String> {
    let others = other_rules();
    assert!(
        others.iter().any(|r| r == ATTEST),
        "`palisade policies` does not list {ATTEST}: the rule is not built into this binary ({others:?})"
    );
    others.iter().filter(|r| *r != ATTEST).cloned().collect()
}

fn verification(policies: Vec<Value>) -> Value {
    json!({"trustedRoot": ["trusted_root.json"], "policies": policies})
}

fn key_policy(name: &str, images: &[&str], keys: &[&str], attestations: Value) -> Value {
    json!({"name": name, "images": images, "keys": keys, "attestations": attestations})
}

fn keyless_policy(name: &str, images: &[&str], attestations: Value) -> Value {
    json!({
        "name": name,
        "images": images,
        "keyless": [{"issuer": ISSUER, "subject": WORKFLOW}],
        "attestations": attestations,
    })
}

/// Write `name` in the fixture's directory: both image rules on, every other off.
fn write_config(fx: &Fixture, name: &str, image_verification: Value) -> PathBuf {
    let config = json!({"disable": disabled(), "imageVerification": image_verification});
    let path = fx.dir.path().join(name);
    std::fs::write(&path, serde_json::to_string_pretty(&config).unwrap()).unwrap();
    path
}

fn assert_exit(code: i32, expected: i32, report: &Value, stderr: &str) {
    assert_eq!(
        code, expected,
        "exit code\nfindings: {:#}\nerrors: {:#}\nstderr: {stderr}",
        report["findings"], report["errors"]
    );
}

fn findings<'a>(report: &'a Value, rule: &str, name: &str) -> Vec<&'a Value> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"] == rule && f["resource"]["name"] == name)
        .collect()
}

/// The object passed both image rules, and `image-attestation` evaluated it.
fn assert_attested(report: &Value, name: &str) {
    for rule in [RULE, ATTEST] {
        let found = findings(report, rule, name);
        assert!(found.is_empty(), "{name}: expected no {rule} finding, got {found:#?}\nerrors: {:#}", report["errors"]);
    }
    let resources = report["resources"].as_array().expect("resources in the report");
    let checked = resources.iter().find(|r| r["name"] == name).unwrap_or_else(|| panic!("{name} was not read"));
    assert!(
        checked["rules"].as_array().unwrap().iter().any(|r| r == ATTEST),
        "{name}: {ATTEST} did not evaluate it (inactive?): {checked}"
    );
}

/// The image's signature verified, and exactly one `image-attestation`
/// finding on `name`, at the pod's image, whose message names every string of
/// `expected`. Returns the message.
fn assert_unmet(report: &Value, name: &str, expected: &[&str]) -> String {
    let signature = findings(report, RULE, name);
    assert!(signature.is_empty(), "{name}: the image should verify, got {signature:#?}");
    let found = findings(report, ATTEST, name);
    assert_eq!(
        found.len(),
        1,
        "{name}: expected one {ATTEST} finding, got {found:#?}\nall findings: {:#}\nerrors: {:#}",
        report["findings"],
        report["errors"]
    );
    let finding = found[0];
    assert_eq!(finding["path"], POD_IMAGE, "{finding:#}");
    let message = finding["message"].as_str().unwrap().to_string();
    for text in expected {
        assert!(message.contains(text), "{name}: the message should name {text:?}: {message}");
    }
    message
}

/// Push `repository:v1` and sign it with `key` (legacy `.sig`).
fn signed(fx: &Fixture, key: &Key, repository: &str) -> Image {
    let image = fx.push(repository, "v1");
    attach_signatures(&image, &[fx.sigstore.sign_with_key(key, &image.payload(), false)]);
    image
}

// ---------------------------------------------------------------------------
// Predicates

/// SLSA provenance v1 as slsa-github-generator's container workflow writes it.
fn slsa_v1(builder: &str, repository: &str, git_ref: &str) -> Value {
    json!({
        "buildDefinition": {
            "buildType": "https://slsa-framework.github.io/github-actions-buildtypes/workflow/v1",
            "externalParameters": {
                "workflow": {"ref": git_ref, "repository": repository, "path": ".github/workflows/release.yml"},
            },
            "internalParameters": {"github": {"event_name": "push", "repository_id": "123", "repository_owner_id": "456"}},
            "resolvedDependencies": [{
                "uri": format!("git+{repository}@{git_ref}"),
                "digest": {"gitCommit": "8f7c4b6d1e2a3b4c5d6e7f8091a2b3c4d5e6f708"},
            }],
        },
        "runDetails": {
            "builder": {"id": format!("{builder}@refs/tags/v2.0.0")},
            "metadata": {"invocationId": "https://github.com/acme/app/actions/runs/1/attempts/1"},
        },
    })
}

/// SLSA provenance v0.2 as slsa-github-generator v1 writes it.
fn slsa_v02(builder: &str, repository: &str, git_ref: &str) -> Value {
    json!({
        "builder": {"id": format!("{builder}@refs/tags/v1.9.0")},
        "buildType": "https://github.com/slsa-framework/slsa-github-generator/container@v1",
        "invocation": {
            "configSource": {
                "uri": format!("git+{repository}@{git_ref}"),
                "digest": {"sha1": "8f7c4b6d1e2a3b4c5d6e7f8091a2b3c4d5e6f708"},
                "entryPoint": ".github/workflows/release.yml",
            },
            "parameters": {},
            "environment": {"github_ref": git_ref, "github_event_name": "push"},
        },
        "metadata": {"buildInvocationID": "1-1", "completeness": {"parameters": true}, "reproducible": false},
        "materials": [{"uri": format!("git+{repository}@{git_ref}")}],
    })
}

/// The provenance every test policy asks for (by any version of the builder).
fn provenance_requirement() -> Value {
    json!([{
        "predicateType": "slsaprovenance",
        "provenance": {
            "builderId": BUILDER,
            "sourceRepository": "github.com/acme/app",
            "gitRefRegExp": "refs/tags/v.*",
        },
    }])
}

fn cyclonedx(licence: &str) -> Value {
    json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "version": 1,
        "metadata": {"component": {"type": "container", "name": "app", "version": "1.2.0"}},
        "components": [
            {"type": "library", "name": "serde", "version": "1.0.200", "licenses": [{"expression": "MIT OR Apache-2.0"}]},
            {"type": "library", "name": "vendored", "version": "0.3.0", "licenses": [{"license": {"id": licence}}]},
        ],
    })
}

fn spdx(licence: &str) -> Value {
    json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": "app",
        "documentNamespace": "https://example.com/spdx/app-1.2.0",
        "creationInfo": {"created": "2024-05-01T00:00:00Z", "creators": ["Tool: syft-1.0.0"]},
        "packages": [
            {"SPDXID": "SPDXRef-a", "name": "zlib", "versionInfo": "1.3", "licenseConcluded": "Zlib", "licenseDeclared": "Zlib"},
            {"SPDXID": "SPDXRef-b", "name": "ghostscript", "versionInfo": "10.0", "licenseConcluded": format!("MIT AND {licence}"), "licenseDeclared": "NOASSERTION"},
        ],
    })
}

/// cosign's vulnerability scan record with a Trivy JSON result.
fn trivy_scan(finished: i64, vulnerabilities: &[(&str, &str)]) -> Value {
    let vulnerabilities: Vec<Value> = vulnerabilities
        .iter()
        .map(|(id, severity)| {
            json!({"VulnerabilityID": id, "PkgName": "xz-utils", "InstalledVersion": "5.6.0", "Severity": severity})
        })
        .collect();
    json!({
        "invocation": {"parameters": null, "uri": "", "event_id": "", "builder.id": ""},
        "scanner": {
            "uri": "pkg:github/aquasecurity/trivy@0.50.0",
            "version": "0.50.0",
            "db": {"uri": "", "version": ""},
            "result": {
                "SchemaVersion": 2,
                "ArtifactName": "app",
                "ArtifactType": "container_image",
                "Results": [{"Target": "app (debian 12.5)", "Class": "os-pkgs", "Type": "debian", "Vulnerabilities": vulnerabilities}],
            },
        },
        "metadata": {"scanStartedOn": rfc3339(finished - 30), "scanFinishedOn": rfc3339(finished)},
    })
}

/// in-toto's vulns predicate v0.2 (scores as the specification's example writes them: strings).
fn in_toto_scan(finished: i64, vulnerabilities: &[(&str, &str)]) -> Value {
    let result: Vec<Value> = vulnerabilities
        .iter()
        .map(|(id, score)| json!({"id": id, "severity": [{"method": "nvd", "score": score}], "annotations": []}))
        .collect();
    json!({
        "scanner": {
            "uri": "pkg:github/aquasecurity/trivy@0.50.0",
            "version": "0.50.0",
            "db": {"uri": "pkg:github/aquasecurity/trivy-db/commit/4c76bb5", "version": "v1-2024050100"},
            "result": result,
        },
        "metadata": {"scanStartedOn": rfc3339(finished - 30), "scanFinishedOn": rfc3339(finished)},
    })
}

// ---------------------------------------------------------------------------
// check

#[test]
#[cfg_attr(palisade_missing_registry, ignore = "docker-registry is not installed: apt-get install docker-registry")]
fn slsa_provenance_from_the_right_builder_source_and_ref() {
    let fx = Fixture::start();
    let key = Key::p256();
    let pubkey = fx.key_file("cosign.pub", &key);
    let repo = "https://github.com/acme/app";
    let cases: Vec<(&str, &str, Value)> = vec![
        ("v1-good", SLSA_V1, slsa_v1(BUILDER, repo, "refs/tags/v1.2.0")),
        ("v02-good", SLSA_V02, slsa_v02(BUILDER, repo, "refs/tags/v1.2.0")),
        ("wrong-builder", SLSA_V1, slsa_v1(ROGUE_BUILDER, repo, "refs/tags/v1.2.0")),
        ("wrong-repo", SLSA_V1, slsa_v1(BUILDER, "https://github.com/acme/fork", "refs/tags/v1.2.0")),
        ("wrong-ref", SLSA_V02, slsa_v02(BUILDER, repo, "refs/heads/feature")),
    ];
    let mut pods = Vec::new();
    let mut images = std::collections::BTreeMap::new();
    for (name, predicate_type, predicate) in cases {
        let image = signed(&fx, &key, &format!("prov/{name}"));
        attach_attestations(&image, &[fx.sigstore.attest_with_key(&key, &image, predicate_type, predicate, true)]);
        pods.push(pod(name, "prod", &image.reference()));
        images.insert(name, image);
    }
    let manifests = fx.manifests("pods.yaml", &pods);

    let config = write_config(
        &fx,
        "palisade.yaml",
        verification(vec![key_policy("prod", &["127.0.0.1:*/prov/*"], &[&pubkey], provenance_requirement())]),
    );
    let (code, report, stderr) = fx.check(&config, &manifests, &[]);
    assert_attested(&report, "v1-good");
    assert_attested(&report, "v02-good");
    assert_unmet(
        &report,
        "wrong-builder",
        &[&images["wrong-builder"].reference(), "prod", "slsaprovenance", "builder", ROGUE_BUILDER],
    );
    let message = assert_unmet(
        &report,
        "wrong-repo",
        &[&images["wrong-repo"].reference(), "slsaprovenance", "source", "github.com/acme/fork"],
    );
    assert!(!message.contains("builder"), "only the source is wrong: {message}");
    assert_unmet(
        &report,
        "wrong-ref",
        &[&images["wrong-ref"].reference(), "slsaprovenance", "git ref", "refs/heads/feature", "refs/tags/v.*"],
    );
    assert_eq!(report["findings"].as_array().unwrap().len(), 3, "{:#}", report["findings"]);
    assert_exit(code, 1, &report, &stderr);

    // The version aliases: v0.2 only refuses the v1 provenance, as missing.
    let config = write_config(
        &fx,
        "v02-only.yaml",
        verification(vec![key_policy(
            "prod",
            &["127.0.0.1:*/prov/*"],
            &[&pubkey],
            json!([{"predicateType": "slsaprovenance02", "provenance": {"builderId": BUILDER}}]),
        )]),
    );
    let (code, report, stderr) = fx.check(&config, &manifests, &[]);
    assert_attested(&report, "v02-good");
    assert_attested(&report, "wrong-ref");
    for name in ["v1-good", "wrong-builder", "wrong-repo"] {
        assert_unmet(
            &report,
            name,
            &[&images[name].reference(), "slsaprovenance02", SLSA_V02, "no verified attestation"],
        );
    }
    assert_exit(code, 1, &report, &stderr);
}

#[test]
#[cfg_attr(palisade_missing_registry, ignore = "docker-registry is not installed: apt-get install docker-registry")]
fn sboms_are_required_and_their_licences_checked() {
    let fx = Fixture::start();
    let key = Key::p256();
    let pubkey = fx.key_file("cosign.pub", &key);
    let attest = |image: &Image, predicate_type: &str, predicate: Value| {
        attach_attestations(image, &[fx.sigstore.attest_with_key(&key, image, predicate_type, predicate, false)]);
    };
    let cdx_ok = signed(&fx, &key, "sbom/cdx-ok");
    attest(&cdx_ok, CYCLONEDX, cyclonedx("BSD-3-Clause"));
    let cdx_gpl = signed(&fx, &key, "sbom/cdx-gpl");
    attest(&cdx_gpl, CYCLONEDX, cyclonedx("gpl-3.0-only"));
    // Attested, but not with an SBOM; and not attested at all.
    let cdx_other = signed(&fx, &key, "sbom/cdx-other");
    attest(&cdx_other, SLSA_V1, slsa_v1(BUILDER, "https://github.com/acme/app", "refs/tags/v1.0.0"));
    let cdx_none = signed(&fx, &key, "sbom/cdx-none");
    let spdx_ok = signed(&fx, &key, "sbom/spdx-ok");
    attest(&spdx_ok, SPDX_23, spdx("Apache-2.0"));
    let spdx_agpl = signed(&fx, &key, "sbom/spdx-agpl");
    attest(&spdx_agpl, SPDX_23, spdx("AGPL-3.0-only"));
    let manifests = fx.manifests(
        "pods.yaml",
        &[
            pod("cdx-ok", "prod", &cdx_ok.reference()),
            pod("cdx-gpl", "prod", &cdx_gpl.reference()),
            pod("cdx-other", "prod", &cdx_other.reference()),
            pod("cdx-none", "prod", &cdx_none.reference()),
            pod("spdx-ok", "prod", &spdx_ok.reference()),
            pod("spdx-agpl", "prod", &spdx_agpl.reference()),
        ],
    );
    let config = write_config(
        &fx,
        "palisade.yaml",
        verification(vec![
            key_policy(
                "cyclonedx",
                &["127.0.0.1:*/sbom/cdx-*"],
                &[&pubkey],
                json!([{"predicateType": "cyclonedx", "sbom": {"deniedLicenses": ["GPL-3.0-only"]}}]),
            ),
            key_policy(
                "spdx",
                &["127.0.0.1:*/sbom/spdx-*"],
                &[&pubkey],
                json!([{"predicateType": "spdx", "sbom": {"deniedLicenses": ["AGPL-3.0-only", "SSPL-1.0"]}}]),
            ),
        ]),
    );
    let (code, report, stderr) = fx.check(&config, &manifests, &[]);
    assert_attested(&report, "cdx-ok");
    assert_attested(&report, "spdx-ok");
    // Compared case-insensitively; named with the component that carries it.
    assert_unmet(&report, "cdx-gpl", &[&cdx_gpl.reference(), "cyclonedx", "denied licences", "vendored@0.3.0"]);
    for (name, image) in [("cdx-other", &cdx_other), ("cdx-none", &cdx_none)] {
        assert_unmet(&report, name, &[&image.reference(), "cyclonedx", CYCLONEDX, "no verified attestation"]);
    }
    assert_unmet(
        &report,
        "spdx-agpl",
        &[&spdx_agpl.reference(), "spdx", "denied licences", "AGPL-3.0-only", "ghostscript@10.0"],
    );
    assert_eq!(report["findings"].as_array().unwrap().len(), 4, "{:#}", report["findings"]);
    assert_exit(code, 1, &report, &stderr);
}

#[test]
#[cfg_attr(palisade_missing_registry, ignore = "docker-registry is not installed: apt-get install docker-registry")]
fn vulnerability_scans_by_age_and_severity_with_an_allow_list() {
    let fx = Fixture::start();
    let key = Key::p256();
    let pubkey = fx.key_file("cosign.pub", &key);
    let t = now();
    let attest = |name: &str, predicate_type: &str, predicate: Value| {
        let image = signed(&fx, &key, &format!("vuln/{name}"));
        attach_attestations(&image, &[fx.sigstore.attest_with_key(&key, &image, predicate_type, predicate, false)]);
        image
    };
    let fresh = attest("cosign-fresh", COSIGN_VULN, trivy_scan(t - 3600, &[("CVE-2024-1111", "MEDIUM")]));
    let stale = attest("cosign-stale", COSIGN_VULN, trivy_scan(t - 3 * 86400, &[]));
    let critical = attest(
        "cosign-critical",
        COSIGN_VULN,
        trivy_scan(t - 3600, &[("CVE-2024-3094", "CRITICAL"), ("CVE-2024-2222", "LOW")]),
    );
    // At the threshold: "at or above" high fails.
    let high = attest("cosign-high", COSIGN_VULN, trivy_scan(t - 3600, &[("CVE-2024-4444", "HIGH")]));
    let intoto_ok = attest("intoto-ok", IN_TOTO_VULNS_02, in_toto_scan(t - 3600, &[("CVE-2024-5555", "5.3")]));
    let intoto_bad = attest(
        "intoto-bad",
        IN_TOTO_VULNS_02,
        in_toto_scan(t - 3600, &[("CVE-2024-9999", "9.8"), ("CVE-2024-5555", "5.3")]),
    );
    let manifests = fx.manifests(
        "pods.yaml",
        &[
            pod("cosign-fresh", "prod", &fresh.reference()),
            pod("cosign-stale", "prod", &stale.reference()),
            pod("cosign-critical", "prod", &critical.reference()),
            pod("cosign-high", "prod", &high.reference()),
            pod("intoto-ok", "prod", &intoto_ok.reference()),
            pod("intoto-bad", "prod", &intoto_bad.reference()),
        ],
    );
    let policies = |allow: Value| {
        verification(vec![
            key_policy(
                "cosign-scan",
                &["127.0.0.1:*/vuln/cosign-*"],
                &[&pubkey],
                json!([{"predicateType": "vuln", "vulnerabilities": {"maxAge": "24h", "maxSeverity": "high", "allow": allow}}]),
            ),
            key_policy(
                "intoto-scan",
                &["127.0.0.1:*/vuln/intoto-*"],
                &[&pubkey],
                json!([{"predicateType": "https://in-toto.io/attestation/vulns", "vulnerabilities": {"maxSeverity": "critical"}}]),
            ),
        ])
    };

    let config = write_config(&fx, "palisade.yaml", policies(json!([])));
    let (code, report, stderr) = fx.check(&config, &manifests, &[]);
    assert_attested(&report, "cosign-fresh");
    assert_attested(&report, "intoto-ok");
    assert_unmet(&report, "cosign-stale", &[&stale.reference(), "vuln", "cosign-scan", "longer than maxAge 24h"]);
    let message = assert_unmet(
        &report,
        "cosign-critical",
        &[&critical.reference(), "vuln", "1 vulnerability at or above high", "CVE-2024-3094 (critical)"],
    );
    assert!(!message.contains("CVE-2024-2222"), "a low finding is below high: {message}");
    assert_unmet(&report, "cosign-high", &[&high.reference(), "vuln", "at or above high", "CVE-2024-4444 (high)"]);
    let message = assert_unmet(
        &report,
        "intoto-bad",
        &[&intoto_bad.reference(), "https://in-toto.io/attestation/vulns", "CVE-2024-9999 (critical)"],
    );
    assert!(!message.contains("CVE-2024-5555"), "a medium score is below critical: {message}");
    assert_eq!(report["findings"].as_array().unwrap().len(), 4, "{:#}", report["findings"]);
    assert_exit(code, 1, &report, &stderr);

    // The critical one allowed with a reason; the high one's allowance has expired.
    let config = write_config(
        &fx,
        "allowed.yaml",
        policies(json!([
            {"id": "CVE-2024-3094", "reason": "the backdoored sshd path is not in this image"},
            {"id": "CVE-2024-4444", "reason": "was waiting for a fix", "expires": "2020-01-01"},
        ])),
    );
    let (code, report, stderr) = fx.check(&config, &manifests, &[]);
    assert_attested(&report, "cosign-critical");
    assert_unmet(&report, "cosign-high", &[&high.reference(), "CVE-2024-4444", "expired 2020-01-01"]);
    assert_unmet(&report, "cosign-stale", &[&stale.reference(), "longer than maxAge 24h"]);
    assert_exit(code, 1, &report, &stderr);
}

#[test]
#[cfg_attr(palisade_missing_registry, ignore = "docker-registry is not installed: apt-get install docker-registry")]
fn custom_predicates_with_pointer_conditions() {
    let fx = Fixture::start();
    let key = Key::p256();
    let pubkey = fx.key_file("cosign.pub", &key);
    let gate = |name: &str, tested: Value, pipeline: &str| {
        let image = signed(&fx, &key, &format!("gate/{name}"));
        let predicate = json!({"build": {"tested": tested}, "pipeline": {"name": pipeline}, "approvals": ["alice"]});
        attach_attestations(&image, &[fx.sigstore.attest_with_key(&key, &image, GATE, predicate, true)]);
        image
    };
    let pass = gate("pass", json!(true), "release-42");
    let untested = gate("untested", json!(false), "release-42");
    // `"true"` is a string, not the boolean asked for.
    let stringly = gate("stringly", json!("true"), "release-42");
    let nightly = gate("nightly", json!(true), "nightly-7");
    let manifests = fx.manifests(
        "pods.yaml",
        &[
            pod("pass", "prod", &pass.reference()),
            pod("untested", "prod", &untested.reference()),
            pod("stringly", "prod", &stringly.reference()),
            pod("nightly", "prod", &nightly.reference()),
        ],
    );
    let config = write_config(
        &fx,
        "palisade.yaml",
        verification(vec![key_policy(
            "gated",
            &["127.0.0.1:*/gate/*"],
            &[&pubkey],
            json!([{"predicateType": GATE, "conditions": [
                {"pointer": "/build/tested", "equals": true},
                {"pointer": "/pipeline/name", "regExp": "release-.*"},
                {"pointer": "/approvals", "exists": true},
            ]}]),
        )]),
    );
    let (code, report, stderr) = fx.check(&config, &manifests, &[]);
    assert_attested(&report, "pass");
    assert_unmet(&report, "untested", &[&untested.reference(), GATE, "/build/tested is false, not true"]);
    assert_unmet(&report, "stringly", &[&stringly.reference(), GATE, "/build/tested is \"true\", not true"]);
    // Anchored: "nightly-7" does not match release-.* anywhere.
    assert_unmet(
        &report,
        "nightly",
        &[&nightly.reference(), GATE, "/pipeline/name \"nightly-7\" does not match /release-.*/"],
    );
    assert_eq!(report["findings"].as_array().unwrap().len(), 3, "{:#}", report["findings"]);
    assert_exit(code, 1, &report, &stderr);
}

#[test]
#[cfg_attr(palisade_missing_registry, ignore = "docker-registry is not installed: apt-get install docker-registry")]
fn keyless_and_referrer_attestations_and_those_rejected() {
    let fx = Fixture::start();
    let t = now();
    let leaf = fx.sigstore.leaf(&Identity::new(ISSUER, WORKFLOW));
    let good = || slsa_v1(BUILDER, "https://github.com/acme/app", "refs/tags/v1.2.0");
    // Every image is signed keyless by the trusted identity: image-signature passes.
    let signed_keyless = |name: &str| {
        let image = fx.push(&format!("keyless/{name}"), "v1");
        attach_signatures(&image, &[fx.sigstore.sign_keyless(&leaf, &image.payload(), Some(t - 60))]);
        image
    };
    let legacy = signed_keyless("legacy");
    attach_attestations(&legacy, &[fx.sigstore.attest_keyless(&leaf, &legacy, SLSA_V1, good(), Some(t - 60))]);

    // cosign 3: the signature and the attestation, both bundles, both referrers.
    let referrer = fx.push("keyless/referrer", "v1");
    attach_bundles(
        &referrer,
        &[
            (fx.sigstore.bundle(&leaf, &referrer, BundleContent::Dsse, t - 60), BundleContent::Dsse),
            (fx.sigstore.attestation_bundle(&leaf, &referrer, SLSA_V1, good(), t - 60), BundleContent::Dsse),
        ],
    );

    let stranger = signed_keyless("stranger");
    let mallory = fx.sigstore.leaf(&Identity::new(ISSUER, "mallory@palisade.test"));
    attach_attestations(&stranger, &[fx.sigstore.attest_keyless(&mallory, &stranger, SLSA_V1, good(), Some(t - 60))]);

    let rogue_ca = signed_keyless("rogue-ca");
    let rogue = fx.sigstore.rogue_ca();
    let rogue_leaf = rogue.leaf(&Identity::new(ISSUER, WORKFLOW));
    attach_attestations(&rogue_ca, &[rogue.attest_keyless(&rogue_leaf, &rogue_ca, SLSA_V1, good(), Some(t - 60))]);

    // Genuine statements, signed by the trusted identity, about another image.
    let other = fx.push("keyless/other", "v1");
    let borrowed = signed_keyless("borrowed");
    attach_attestations(&borrowed, &[fx.sigstore.attest_keyless(&leaf, &other, SLSA_V1, good(), Some(t - 60))]);
    let borrowed_referrer = signed_keyless("borrowed-referrer");
    attach_bundles(
        &borrowed_referrer,
        &[(fx.sigstore.attestation_bundle(&leaf, &other, SLSA_V1, good(), t - 60), BundleContent::Dsse)],
    );

    // A signed DSSE envelope whose payload is not an in-toto statement.
    let not_statement = signed_keyless("not-statement");
    attach_attestations(
        &not_statement,
        &[fx.sigstore.attest_payload(
            Attester::Leaf(&leaf),
            br#"{"hello": "world", "predicateType": "https://slsa.dev/provenance/v1"}"#,
            SLSA_V1,
            Some(t - 60),
        )],
    );

    // A key policy: signed by the right key, attested by another.
    let right = Key::p256();
    let wrong = Key::p256();
    let right_pub = fx.key_file("right.pub", &right);
    let wrong_key = signed(&fx, &right, "keyed/wrong-key");
    attach_attestations(&wrong_key, &[fx.sigstore.attest_with_key(&wrong, &wrong_key, SLSA_V1, good(), true)]);
    let right_key = signed(&fx, &right, "keyed/right-key");
    attach_attestations(&right_key, &[fx.sigstore.attest_with_key(&right, &right_key, SLSA_V1, good(), true)]);

    let images = [
        ("legacy", &legacy),
        ("referrer", &referrer),
        ("stranger", &stranger),
        ("rogue-ca", &rogue_ca),
        ("borrowed", &borrowed),
        ("borrowed-referrer", &borrowed_referrer),
        ("not-statement", &not_statement),
        ("wrong-key", &wrong_key),
        ("right-key", &right_key),
    ];
    let pods: Vec<Value> = images.iter().map(|(name, image)| pod(name, "prod", &image.reference())).collect();
    let manifests = fx.manifests("pods.yaml", &pods);
    let config = write_config(
        &fx,
        "palisade.yaml",
        verification(vec![
            keyless_policy("release", &["127.0.0.1:*/keyless/*"], provenance_requirement()),
            key_policy("keyed", &["127.0.0.1:*/keyed/*"], &[&right_pub], provenance_requirement()),
        ]),
    );
    let (code, report, stderr) = fx.check(&config, &manifests, &[]);
    assert_attested(&report, "legacy");
    assert_attested(&report, "referrer");
    assert_attested(&report, "right-key");
    let cases: [(&str, &Image, &[&str]); 6] = [
        ("stranger", &stranger, &["identity mismatch", "mallory@palisade.test"]),
        ("rogue-ca", &rogue_ca, &["untrusted certificate"]),
        ("borrowed", &borrowed, &["digest mismatch", other.hex()]),
        ("borrowed-referrer", &borrowed_referrer, &["digest mismatch", &borrowed_referrer.digest]),
        ("not-statement", &not_statement, &["in-toto statement"]),
        ("wrong-key", &wrong_key, &["bad signature"]),
    ];
    for (name, image, reasons) in cases {
        let message = assert_unmet(
            &report,
            name,
            &[&image.reference(), "no verified attestation of type slsaprovenance", "1 found but rejected", SLSA_V1],
        );
        for reason in reasons {
            assert!(
                message.contains(reason),
                "{name}: the message should say why it was rejected ({reason:?}): {message}"
            );
        }
    }
    assert_eq!(report["findings"].as_array().unwrap().len(), 6, "{:#}", report["findings"]);
    assert!(common::errors(&report).is_empty(), "{:#}", report["errors"]);
    // Findings, not an error of the run.
    assert_exit(code, 1, &report, &stderr);
}

#[test]
fn malformed_requirements_are_configuration_errors() {
    let dir = tempfile::tempdir().unwrap();
    let key = Key::p256();
    key.write_public(&dir.path().join("cosign.pub"));
    let disable = disabled();
    let requirement = |attestations: Value| {
        json!({
            "disable": disable,
            "imageVerification": {"policies": [
                {"name": "prod", "images": ["**"], "keys": ["cosign.pub"], "attestations": attestations},
            ]},
        })
    };
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "bad-regex.yaml",
            json!([{"predicateType": "slsaprovenance", "provenance": {"builderIdRegExp": "(["}}]),
            "attestations[0].provenance.builderIdRegExp",
        ),
        (
            "bad-severity.yaml",
            json!([{"predicateType": "vuln", "vulnerabilities": {"maxSeverity": "severe"}}]),
            "attestations[0].vulnerabilities.maxSeverity",
        ),
        (
            "bad-age.yaml",
            json!([{"predicateType": "vuln", "vulnerabilities": {"maxAge": "a week"}}]),
            "attestations[0].vulnerabilities.maxAge",
        ),
        (
            "unknown-key.yaml",
            json!([{"predicateType": "cyclonedx"}, {"predicateType": "slsaprovenance", "provenanse": {"builderId": BUILDER}}]),
            "provenanse",
        ),
        ("unknown-alias.yaml", json!([{"predicateType": "sbom"}]), "attestations[0].predicateType"),
        ("no-type.yaml", json!([{"sbom": {"deniedLicenses": ["GPL-3.0-only"]}}]), "attestations[0].predicateType"),
        (
            "block-for-another-type.yaml",
            json!([{"predicateType": "slsaprovenance", "sbom": {"deniedLicenses": ["GPL-3.0-only"]}}]),
            "attestations[0].sbom",
        ),
        (
            "two-tests.yaml",
            json!([{"predicateType": GATE, "conditions": [{"pointer": "/a", "equals": 1, "regExp": "x"}]}]),
            "attestations[0].conditions[0]",
        ),
        (
            "bad-pointer.yaml",
            json!([{"predicateType": GATE, "conditions": [{"pointer": "build/tested", "exists": true}]}]),
            "attestations[0].conditions[0].pointer",
        ),
    ];
    // The manifests do not exist: a configuration error is found before any is read.
    let manifests = dir.path().join("no-such-manifests.yaml");
    for (file, attestations, field) in cases {
        let config = dir.path().join(file);
        std::fs::write(&config, requirement(attestations).to_string()).unwrap();
        let mut cmd = common::palisade();
        cmd.arg("check").arg("--config").arg(&config).args(verify_flags()).args(["--format", "json"]).arg(&manifests);
        let out = common::run(&mut cmd);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{file}: {stderr}");
        assert!(stderr.contains(field), "{file}: the error should name {field:?}: {stderr}");
        assert!(
            stderr.contains("imageVerification.policies["),
            "{file}: the error should name the trust policy: {stderr}"
        );
        assert!(stderr.contains(file), "{file}: the error should name the configuration file: {stderr}");
        assert!(!stderr.contains("no-such-manifests.yaml"), "{file}: the configuration is read first: {stderr}");
    }
}

#[test]
#[cfg_attr(palisade_missing_registry, ignore = "docker-registry is not installed: apt-get install docker-registry")]
fn offline_runs_give_the_verdicts_of_the_online_run() {
    let mut fx = Fixture::start();
    let key = Key::p256();
    let pubkey = fx.key_file("cosign.pub", &key);
    let good = signed(&fx, &key, "prov/good");
    attach_attestations(
        &good,
        &[fx.sigstore.attest_with_key(
            &key,
            &good,
            SLSA_V1,
            slsa_v1(BUILDER, "https://github.com/acme/app", "refs/tags/v1.0.0"),
            true,
        )],
    );
    let bad = signed(&fx, &key, "prov/bad");
    attach_attestations(
        &bad,
        &[fx.sigstore.attest_with_key(
            &key,
            &bad,
            SLSA_V1,
            slsa_v1(ROGUE_BUILDER, "https://github.com/acme/app", "refs/tags/v1.0.0"),
            true,
        )],
    );
    // Signed and attested, but an online run only ever verified its signature.
    let signature_only = signed(&fx, &key, "prov/signature-only");
    attach_attestations(
        &signature_only,
        &[fx.sigstore.attest_with_key(
            &key,
            &signature_only,
            SLSA_V1,
            slsa_v1(BUILDER, "https://github.com/acme/app", "refs/tags/v1.0.0"),
            true,
        )],
    );
    let both =
        fx.manifests("both.yaml", &[pod("good", "prod", &good.reference()), pod("bad", "prod", &bad.reference())]);
    let later = fx.manifests("later.yaml", &[pod("signature-only", "prod", &signature_only.reference())]);
    let images = ["127.0.0.1:*/prov/*"];
    let config = write_config(
        &fx,
        "palisade.yaml",
        verification(vec![key_policy("prod", &images, &[&pubkey], provenance_requirement())]),
    );
    let signatures_only =
        write_config(&fx, "signatures.yaml", verification(vec![key_policy("prod", &images, &[&pubkey], json!([]))]));

    let (code, online, stderr) = fx.check(&config, &both, &[]);
    assert_attested(&online, "good");
    assert_unmet(&online, "bad", &[&bad.reference(), "slsaprovenance", "builder", ROGUE_BUILDER]);
    assert_exit(code, 1, &online, &stderr);
    let (code, report, stderr) = fx.check(&signatures_only, &later, &[]);
    assert_attested(&report, "signature-only");
    assert_exit(code, 0, &report, &stderr);

    fx.registry.stop();
    let (code, offline, stderr) = fx.check(&config, &both, &["--offline"]);
    assert_attested(&offline, "good");
    assert_unmet(&offline, "bad", &[&bad.reference(), "slsaprovenance", "builder", ROGUE_BUILDER]);
    assert_eq!(offline["findings"], online["findings"], "offline, the same findings as online");
    assert_exit(code, 1, &offline, &stderr);

    // Attestations never fetched: a finding offline, never a pass. (image-signature
    // refuses it too, for the same reason, though its signature is cached: not
    // asserted either way here.)
    let (code, report, stderr) = fx.check(&config, &later, &["--offline"]);
    let found = findings(&report, ATTEST, "signature-only");
    assert_eq!(found.len(), 1, "{:#}\nerrors: {:#}", report["findings"], report["errors"]);
    let message = found[0]["message"].as_str().unwrap();
    assert!(
        message.contains(&signature_only.reference()) && message.contains("never fetched by an online run"),
        "{message}"
    );
    assert_exit(code, 1, &report, &stderr);
}

// ---------------------------------------------------------------------------
// serve

fn deployment(name: &str, image: &str) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "prod"},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": image}]},
            },
        },
    })
}

fn admit_deployment(server: &Server, uid: &str, object: Value) -> Value {
    let review = json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
            "resource": {"group": "apps", "version": "v1", "resource": "deployments"},
            "namespace": "prod",
            "operation": "CREATE",
            "userInfo": {"username": "alice", "groups": ["system:authenticated"]},
            "object": object,
            "oldObject": null,
        },
    });
    let (status, answer) = post(server, "/validate", &review);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["response"]["uid"], uid);
    answer["response"].clone()
}

#[test]
#[cfg_attr(palisade_missing_registry, ignore = "docker-registry is not installed: apt-get install docker-registry")]
fn serve_admits_attested_deployments_and_denies_the_others() {
    let registry = Registry::start(Mode::Http);
    let sigstore = Sigstore::new();
    let dir = tempfile::tempdir().unwrap();
    let key = Key::p256();
    let key_file = dir.path().join("cosign.pub");
    key.write_public(&key_file);
    // The server keeps its cache in the shared test cache directory: tags of this run only.
    let tag = format!("v1-{}", nonce());
    let push = |repository: &str, builder: &str| {
        let image = push_image(&registry.addr, repository, &tag);
        attach_signatures(&image, &[sigstore.sign_with_key(&key, &image.payload(), true)]);
        let predicate = slsa_v1(builder, "https://github.com/acme/app", "refs/tags/v1.2.0");
        attach_attestations(&image, &[sigstore.attest_with_key(&key, &image, SLSA_V1, predicate, true)]);
        image
    };
    let good = push("prov/good", BUILDER);
    let bad = push("prov/bad", ROGUE_BUILDER);
    let config = json!({
        "disable": disabled(),
        "imageVerification": {
            "trustedRoot": [sigstore.trusted_root_path()],
            "policies": [{
                "name": "prod",
                "images": ["127.0.0.1:*/prov/*"],
                "keys": [key_file],
                "attestations": [{"predicateType": SLSA_V1, "provenance": {"builderId": BUILDER}}],
            }],
        },
    });
    let server = start(&["--insecure"], &config.to_string(), false);

    let response = admit_deployment(&server, "good", deployment("good", &good.reference()));
    assert_eq!(response["allowed"], true, "{response:#}");

    let response = admit_deployment(&server, "bad", deployment("bad", &bad.reference()));
    assert_eq!(response["allowed"], false, "{response:#}");
    assert_eq!(response["status"]["code"], 403, "{response:#}");
    let message = response["status"]["message"].as_str().unwrap_or_default();
    for text in [ATTEST, &bad.reference(), SLSA_V1, "builder", ROGUE_BUILDER] {
        assert!(message.contains(text), "the denial should name {text:?}: {message}");
    }
    assert!(!message.contains(RULE), "the signature verified, only the attestation is refused: {message}");
    let causes = response["status"]["details"]["causes"].as_array().expect("causes");
    assert!(causes.iter().any(|c| c["field"] == "spec.template.spec.containers[0].image"), "{response:#}");
}

/// The corpus's `cosign save` layout (slsa-verifier's test data): a real image
/// index with a keyless SLSA v0.2 attestation by slsa-github-generator's
/// container builder, logged in the public-good Rekor. Offline, from the layout
/// alone, against the public-good trusted root: the provenance from that
/// builder and repository is accepted; a policy naming another repository or
/// another builder identity is not. The layout holds no signature, so
/// `image-signature` says so.
#[test]
fn a_cosign_save_layout_verifies_offline() {
    let data = common::corpus().join("sigstore/slsa-verifier/cli/slsa-verifier/testdata/gha_generic_container/v2.1.0");
    let layout = data.join("container_workflow_dispatch");
    let digest = std::fs::read_to_string(data.join("container_workflow_dispatch.digest")).unwrap();
    let root = common::corpus()
        .join("sigstore/sigstore-python/sigstore/_store/https%3A%2F%2Ftuf-repo-cdn.sigstore.dev/trusted_root.json");
    let dir = tempfile::tempdir().unwrap();
    let cache = private_cache(dir.path());
    let builder = format!("{BUILDER}@refs/tags/v2.1.0");
    let manifest = dir.path().join("pod.yaml");
    let image = format!("ghcr.io/slsa-framework/example-package@{}", digest.trim());
    std::fs::write(&manifest, serde_json::to_string(&pod("saved", "prod", &image)).unwrap()).unwrap();
    let run = |repository: &str, identity: &str| -> (i32, Value) {
        let requirement = json!([{"predicateType": "slsaprovenance",
            "provenance": {"builderId": builder, "sourceRepository": repository}}]);
        let policy = json!({"name": "slsa", "images": ["ghcr.io/slsa-framework/**"],
            "keyless": [{"issuer": "https://token.actions.githubusercontent.com", "subject": identity}],
            "attestations": requirement});
        let config = json!({"disable": disabled(), "imageVerification": {"trustedRoot": [root], "policies": [policy]}});
        let path = dir.path().join("palisade.json");
        std::fs::write(&path, config.to_string()).unwrap();
        let out = common::run(
            common::palisade()
                .env("PALISADE_CACHE_DIR", &cache)
                .args(["check", "--verify-images", "--offline", "--format", "json", "--config"])
                .arg(&path)
                .arg("--image-layout")
                .arg(&layout)
                .arg(&manifest),
        );
        let report: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
        (out.status.code().unwrap(), report)
    };
    let (code, report) = run("github.com/slsa-framework/example-package", &builder);
    assert!(findings(&report, ATTEST, "saved").is_empty(), "{:#}", report["findings"]);
    let unsigned = findings(&report, RULE, "saved");
    assert_eq!(unsigned.len(), 1, "{:#}", report["findings"]);
    assert!(unsigned[0]["message"].as_str().unwrap().contains("no cosign signature"), "{}", unsigned[0]);
    assert_eq!(code, 1);
    assert!(report["errors"].as_array().unwrap().is_empty(), "{:#}", report["errors"]);

    let (_, report) = run("github.com/slsa-framework/example-packageA", &builder);
    let wrong = findings(&report, ATTEST, "saved");
    assert_eq!(wrong.len(), 1, "{:#}", report["findings"]);
    let message = wrong[0]["message"].as_str().unwrap();
    assert!(message.contains("example-packageA") && message.contains("slsaprovenance"), "{message}");

    let (_, report) = run("github.com/slsa-framework/example-package", &format!("{BUILDER}@refs/tags/v9.9.9"));
    let untrusted = findings(&report, ATTEST, "saved");
    assert_eq!(untrusted.len(), 1, "{:#}", report["findings"]);
    let message = untrusted[0]["message"].as_str().unwrap();
    assert!(message.contains("rejected") && message.contains("identity"), "{message}");
}
