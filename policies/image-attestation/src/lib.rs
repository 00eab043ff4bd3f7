//! Every image's verified attestations say what its trust policy requires.
//!
//! A trust policy may list `attestations`: predicate types an image must carry
//! signed attestations of (SLSA provenance, an SBOM, a vulnerability scan, any
//! in-toto predicate), and what their predicates must say. The host verifies
//! the attestations' signatures under the policy (`image-verification.attestations`
//! in `wit/policy.wit`) and passes the requirements through unread; this rule
//! reads them (`palisade_sdk::attest`, where the configuration is documented)
//! and checks the statements that verified.
//!
//! Sources of truth: the in-toto attestation framework
//! (<https://github.com/in-toto/attestation/tree/main/spec>), SLSA provenance
//! (<https://slsa.dev/provenance/v1>), cosign's attestation specifications
//! (<https://github.com/sigstore/cosign/blob/main/specs/ATTESTATION_SPEC.md>,
//! `COSIGN_VULN_ATTESTATION_SPEC.md`) and Kyverno's `verifyImages` attestations
//! (<https://kyverno.io/docs/writing-policies/verify-images/>).
//!
//! Every container, init container and ephemeral container of the nine
//! pod-bearing kinds whose image a trust policy with attestation requirements
//! governs. An image no policy matches, or whose reference does not parse, is
//! skipped silently: `image-signature` reports those.

use std::collections::BTreeMap;

use palisade_sdk::attest::{Requirement, Requirements, Unmet};
use palisade_sdk::images::{self, AttestationSet, PolicyMatch, Status};
use palisade_sdk::{
    Context, Fields, HARDENED, Metadata, NO_SETTINGS_SCHEMA, NoSettings, Rule, SettingsError, Severity, Violation,
    Workload,
};

/// The attestation requirements of the trust policies that declare any, by policy name.
pub struct ImageAttestation {
    requirements: BTreeMap<String, Requirements>,
}

const CONFIGURATION: &str = "List the attestations an image must carry in its trust policy \
(imageVerification.policies[]; the attestations' signatures verify under the policy's keys or keyless identities):

  imageVerification:
    policies:
      - name: production
        images: [\"ghcr.io/acme/**\"]
        keyless:
          - issuer: https://token.actions.githubusercontent.com
            subjectRegExp: https://github.com/acme/.+/.github/workflows/release.yml@refs/tags/v.+
        attestations:
          - predicateType: slsaprovenance              # SLSA provenance v0.2 or v1
            provenance:
              builderId: https://github.com/slsa-framework/slsa-github-generator/.github/workflows/generator_container_slsa3.yml
              sourceRepository: github.com/acme/app    # or sourceRepositoryRegExp; also builderIdRegExp, buildType
              gitRefRegExp: refs/tags/v.*
          - predicateType: cyclonedx                   # or spdx: any version
            sbom:
              deniedLicenses: [AGPL-3.0-only, SSPL-1.0]
          - predicateType: vuln                        # cosign's scan record (Trivy or Grype JSON); or https://in-toto.io/attestation/vulns
            vulnerabilities:
              maxAge: 168h                             # units s, m, h, d
              maxSeverity: high                        # low | medium | high | critical: fail at or above
              allow:
                - {id: CVE-2023-1234, reason: not reachable, expires: 2027-01-01}
          - predicateType: https://example.com/custom/v1
            conditions:                                # JSON pointers into the predicate
              - {pointer: /build/tested, equals: true}
              - {pointer: /pipeline/name, regExp: release-.*}

Regular expressions match whole values. Predicate-type aliases are cosign's --type names \
(slsaprovenance, slsaprovenance02, slsaprovenance1, spdx, spdxjson, cyclonedx, vuln, custom). \
Attach attestations with `cosign attest --type <type> --predicate <file> <image>` or GitHub's \
actions/attest-build-provenance, and run `palisade check --verify-images`.";

impl Rule for ImageAttestation {
    type Settings = NoSettings;

    fn metadata() -> Metadata {
        Metadata {
            id: "image-attestation",
            title: "Images must carry the attestations their trust policy requires",
            description: "Reports a container whose image lacks a verified attestation its trust policy requires \
                          (imageVerification.policies[].attestations), or whose attestations do not say what the \
                          policy requires: SLSA provenance from another builder, repository or git ref; an SBOM \
                          naming a denied licence; a vulnerability scan that is too old or finds a vulnerability at \
                          or above the allowed severity; a predicate field with another value. An attestation that \
                          is not signed by a key or identity the policy trusts does not count, and the message \
                          says why it was rejected. A registry that cannot be reached makes the rule undecided. \
                          Images no trust policy matches are image-signature's findings, not this rule's.",
            rationale: "A signature says who published an image; an attestation says how it was built and what \
                        is in it. Requiring signed provenance from the organisation's build system and repository, \
                        a fresh vulnerability scan and an SBOM without forbidden licences keeps images that \
                        skipped the pipeline, or failed it, out of the cluster.",
            remediation: CONFIGURATION,
            severity: Severity::High,
            category: "Supply chain",
            applies_to: &palisade_sdk::POD_KINDS,
            reads_kinds: &[],
            settings_schema: NO_SETTINGS_SCHEMA,
            references: &[
                "https://github.com/in-toto/attestation/tree/main/spec",
                "https://slsa.dev/provenance/v1",
                "https://github.com/sigstore/cosign/blob/main/specs/ATTESTATION_SPEC.md",
                "https://github.com/sigstore/cosign/blob/main/specs/COSIGN_VULN_ATTESTATION_SPEC.md",
                "https://kyverno.io/docs/writing-policies/verify-images/",
            ],
            profiles: HARDENED,
        }
    }

    /// Reads every trust policy's requirements, so a bad one is a configuration
    /// error before anything is evaluated.
    fn configure(_: NoSettings) -> Result<Self, SettingsError> {
        let mut requirements = BTreeMap::new();
        for name in images::trust_policies() {
            let Some(json) = images::attestation_requirements(&name) else { continue };
            let parsed = Requirements::parse(&json).map_err(|e| {
                SettingsError::new(format!("imageVerification.policies[{name}].{}", e.field), e.message)
            })?;
            if !parsed.is_empty() {
                requirements.insert(name, parsed);
            }
        }
        Ok(ImageAttestation { requirements })
    }

    fn evaluate(&self, object: &str, context: &Context) -> Result<Vec<Violation>, String> {
        if images::status() != Status::Enabled || self.requirements.is_empty() {
            return Ok(Vec::new());
        }
        let found = match Workload::from_json_reading(object, READS)? {
            Some(workload) => self.check(&workload, context),
            None => Ok(Vec::new()),
        };
        #[cfg(not(target_arch = "wasm32"))]
        palisade_sdk::check_reads("image-attestation", READS, object, &found, |w| {
            w.map_or(Ok(Vec::new()), |w| self.check(w, context))
        });
        found
    }

    fn inactive_reason(&self) -> Option<String> {
        images::inactive_reason("image-attestation").or_else(|| {
            self.requirements.is_empty().then(|| {
                "no trust policy declares attestations (imageVerification.policies[].attestations; \
                 see `palisade explain image-attestation`)"
                    .into()
            })
        })
    }
}

/// The parts of a workload the rule reads (see `Fields`): the images.
const READS: Fields = Fields::CONTAINERS;

impl ImageAttestation {
    fn check(&self, workload: &Workload, context: &Context) -> Result<Vec<Violation>, String> {
        let namespace = workload.namespace().map(str::to_string).or_else(|| context.namespace.clone());
        let mut findings = images::Findings::default();
        for c in workload.containers() {
            let image = c.container.image.as_str();
            // Unmatched and unparsable references are image-signature's findings.
            let PolicyMatch::Matched(policy) = images::policy_for(image, namespace.as_deref()) else {
                continue;
            };
            let Some(requirements) = self.requirements.get(&policy) else {
                continue;
            };
            let at = format!("container {:?}: image {image:?} (trust policy {policy:?})", c.name());
            let set = match images::attestations(image, &policy, &requirements.predicate_types()) {
                Ok(set) => set,
                Err(e) => {
                    findings.error(&e, c.field("image"), |reason| {
                        format!("{at}: its attestations cannot be read: {reason}; {}", images::remedy(&e))
                    });
                    continue;
                }
            };
            for r in requirements.iter() {
                if let Err(unmet) = r.check(&set.statements, set.checked_at) {
                    findings.push(Violation::new(unmet_message(&at, r, &unmet, &set), c.field("image")));
                }
            }
        }
        findings.finish()
    }
}

/// Attestations that were found but rejected a message names at most.
const MAX_REJECTED: usize = 3;

fn unmet_message(at: &str, r: &Requirement, unmet: &Unmet, set: &AttestationSet) -> String {
    let wanted = r.describe();
    match unmet {
        Unmet::Failed { .. } => format!(
            "{at}: attestation {wanted} does not satisfy the policy: {unmet}; publish one that does, or change the \
             policy's requirement"
        ),
        Unmet::Missing => {
            // A rejected attestation whose type could not be read may be the one wanted.
            let rejected: Vec<String> = set
                .rejected
                .iter()
                .filter(|x| x.predicate_type.as_deref().is_none_or(|t| r.matches_type(t)))
                .map(|x| {
                    let kind = x.predicate_type.as_deref().unwrap_or("of unreadable type");
                    format!("{kind}: {}", images::describe(&x.reason).1)
                })
                .collect();
            let mut message = format!("{at}: no verified attestation of type {wanted}");
            if !rejected.is_empty() {
                let shown = rejected.iter().take(MAX_REJECTED).cloned().collect::<Vec<_>>().join("; ");
                message.push_str(&format!("; {} found but rejected: {shown}", rejected.len()));
                if rejected.len() > MAX_REJECTED {
                    message.push_str(&format!("; and {} more", rejected.len() - MAX_REJECTED));
                }
            }
            message.push_str("; attach one signed by a key or identity the policy trusts");
            message
        }
    }
}

palisade_sdk::export_rule!(ImageAttestation);

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_sdk::images::testing::{
        self, Answers, AttestationSource, RejectedAttestation, VerifiedSignature, VerifiedStatement, VerifyError,
    };
    use serde_json::{Value, json};

    const SLSA_V02: &str = include_str!("testdata/slsa-v0.2-container.json");
    const SLSA_V1: &str = include_str!("testdata/slsa-v1-github.json");
    const VULN_TRIVY: &str = include_str!("testdata/vuln-trivy.json");
    const CYCLONEDX: &str = include_str!("testdata/cyclonedx.json");

    const IMAGE: &str = "ghcr.io/acme/app:1.0";
    const POD: &str = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","namespace":"prod"},
        "spec":{"containers":[{"name":"app","image":"ghcr.io/acme/app:1.0"}]}}"#;
    /// 2021-08-10T00:00:00Z: three and a bit days after the scans in testdata finished.
    const CHECKED_AT: i64 = 1_628_553_600;

    fn signer() -> VerifiedSignature {
        VerifiedSignature {
            key_id: None,
            issuer: Some("https://token.actions.githubusercontent.com".into()),
            subject: Some("https://github.com/acme/app/.github/workflows/release.yml@refs/tags/v1.0".into()),
            signed_at: Some(CHECKED_AT - 3600),
        }
    }

    /// A verified statement from its JSON text (its own predicateType).
    fn verified(statement: &str) -> VerifiedStatement {
        let v: Value = serde_json::from_str(statement).unwrap();
        VerifiedStatement {
            predicate_type: v["predicateType"].as_str().unwrap().to_string(),
            statement: statement.to_string(),
            signer: signer(),
            source: AttestationSource::LegacyTag,
        }
    }

    /// A statement of `predicate_type` around `predicate`.
    fn made(predicate_type: &str, predicate: Value) -> VerifiedStatement {
        verified(
            &json!({
                "_type": "https://in-toto.io/Statement/v1",
                "subject": [{"name": "ghcr.io/acme/app", "digest": {"sha256": "3c19aa98"}}],
                "predicateType": predicate_type,
                "predicate": predicate,
            })
            .to_string(),
        )
    }

    fn set(statements: Vec<VerifiedStatement>, rejected: Vec<RejectedAttestation>) -> AttestationSet {
        AttestationSet {
            reference: "ghcr.io/acme/app:1.0".into(),
            digest: "sha256:3c19aa980a9c5709a2c96c2d0779febf6e5e453b92b172ce84cb85fdaf695373".into(),
            policy: "production".into(),
            checked_at: CHECKED_AT,
            statements,
            rejected,
        }
    }

    fn answers(requirements: Value, attestations: Result<AttestationSet, VerifyError>) -> Answers {
        Answers {
            status: Status::Enabled,
            policies: [(IMAGE.to_string(), "production".to_string())].into(),
            requirements: [("production".to_string(), requirements.to_string())].into(),
            attestations: [(IMAGE.to_string(), attestations)].into(),
            ..Default::default()
        }
    }

    /// The violations of the one-container pod, with `requirements` and these attestations.
    fn run(requirements: Value, statements: Vec<VerifiedStatement>) -> Vec<String> {
        testing::set(answers(requirements, Ok(set(statements, Vec::new()))));
        let rule = palisade_sdk::configure::<ImageAttestation>("{}").unwrap();
        let v = rule.evaluate(POD, &Context::default()).unwrap();
        assert!(v.iter().all(|v| v.path == "/spec/containers/0/image"));
        v.into_iter().map(|v| v.message).collect()
    }

    fn ok(requirements: Value, statements: Vec<VerifiedStatement>) {
        let v = run(requirements, statements);
        assert!(v.is_empty(), "{v:?}");
    }

    /// The one violation, which must contain every one of `parts`.
    fn fails(requirements: Value, statements: Vec<VerifiedStatement>, parts: &[&str]) -> String {
        let v = run(requirements, statements);
        assert_eq!(v.len(), 1, "{v:?}");
        for part in parts {
            assert!(v[0].contains(part), "{:?} not in {}", part, v[0]);
        }
        v.into_iter().next().unwrap()
    }

    const GENERATOR: &str =
        "https://github.com/slsa-framework/slsa-github-generator/.github/workflows/generator_container_slsa3.yml";

    #[test]
    fn provenance_slsa_v02() {
        let want = |p: Value| json!([{"predicateType": "slsaprovenance", "provenance": p}]);
        ok(
            want(json!({"builderId": GENERATOR, "sourceRepository": "github.com/slsa-framework/example-package",
                        "gitRefRegExp": "refs/heads/main"})),
            vec![verified(SLSA_V02)],
        );
        let m = fails(
            want(json!({"builderIdRegExp": "https://github\\.com/acme/.*"})),
            vec![verified(SLSA_V02)],
            &["container \"app\": image \"ghcr.io/acme/app:1.0\" (trust policy \"production\")", "builder \""],
        );
        assert!(m.contains("attestation slsaprovenance (https://slsa.dev/provenance/v0.2 or https://slsa.dev/provenance/v1) does not satisfy the policy"), "{m}");
        fails(
            want(json!({"sourceRepository": "github.com/acme/app"})),
            vec![verified(SLSA_V02)],
            &[
                "source \"git+https://github.com/slsa-framework/example-package@refs/heads/main\" is not \"github.com/acme/app\"",
            ],
        );
        fails(
            want(json!({"gitRefRegExp": "refs/tags/v.*"})),
            vec![verified(SLSA_V02)],
            &["git ref \"refs/heads/main\" does not match /refs/tags/v.*/"],
        );
    }

    #[test]
    fn provenance_slsa_v1() {
        let want = |p: Value| json!([{"predicateType": "https://slsa.dev/provenance/v1", "provenance": p}]);
        let builder = "https://github.com/neverendingsupport/slsa-attestations/.github/workflows/attest.yml";
        ok(
            want(json!({"builderId": builder, "sourceRepositoryRegExp": "github\\.com/neverendingsupport/.*",
                        "gitRefRegExp": "refs/tags/nes-v[0-9.]+", "buildType": "https://actions.github.io/buildtypes/workflow/v1"})),
            vec![verified(SLSA_V1)],
        );
        fails(
            want(json!({"builderId": GENERATOR})),
            vec![verified(SLSA_V1)],
            &["builder \"https://github.com/neverendingsupport/"],
        );
        fails(
            want(json!({"sourceRepository": "https://github.com/acme/nes-java-test-lib-a"})),
            vec![verified(SLSA_V1)],
            &["source \"https://github.com/neverendingsupport/nes-java-test-lib-a\" is not"],
        );
        // v0.2 provenance does not satisfy a v1 requirement: it is not of that type.
        fails(
            want(json!({"builderId": builder})),
            vec![verified(SLSA_V02)],
            &["no verified attestation of type \"https://slsa.dev/provenance/v1\""],
        );
    }

    #[test]
    fn sboms() {
        let presence = json!([{"predicateType": "cyclonedx"}]);
        ok(presence.clone(), vec![verified(CYCLONEDX)]);
        fails(
            presence,
            vec![verified(SLSA_V02)],
            &["no verified attestation of type cyclonedx (https://cyclonedx.org/bom, any version)"],
        );
        // A versioned type is fetched too: the rule asks the host for every type.
        let mut v15 = verified(CYCLONEDX);
        v15.predicate_type = "https://cyclonedx.org/bom/v1.5".into();
        ok(json!([{"predicateType": "https://cyclonedx.org/bom"}]), vec![v15]);
        fails(
            json!([{"predicateType": "cyclonedx", "sbom": {"deniedLicenses": ["AGPL-3.0-only", "SSPL-1.0"]}}]),
            vec![verified(CYCLONEDX)],
            &["denied licences: AGPL-3.0-only (github.com/acme/telemetry@v0.3.1)"],
        );
        fails(
            json!([{"predicateType": "spdx", "sbom": {"deniedLicenses": ["GPL-3.0-only"]}}]),
            vec![made("https://spdx.dev/Document", json!("SPDXVersion: SPDX-2.3\nDataLicense: CC0-1.0\n"))],
            &["cannot be checked"],
        );
    }

    fn trivy_scan() -> VerifiedStatement {
        verified(VULN_TRIVY)
    }

    #[test]
    fn vulnerability_scans() {
        let vulns = |v: Value| json!([{"predicateType": "vuln", "vulnerabilities": v}]);
        // 2021-08-06T17:50:50Z + 3 days < CHECKED_AT.
        fails(
            vulns(json!({"maxAge": "3d"})),
            vec![trivy_scan()],
            &["the scan finished 3d 6h ago", "longer than maxAge 3d"],
        );
        ok(vulns(json!({"maxAge": "4d"})), vec![trivy_scan()]);
        fails(
            vulns(json!({"maxSeverity": "critical"})),
            vec![trivy_scan()],
            &["1 vulnerability at or above critical: CVE-2021-36159 (critical)"],
        );
        ok(
            vulns(
                json!({"maxSeverity": "critical", "allow": [{"id": "CVE-2021-36159", "reason": "apk is removed", "expires": "2021-08-10"}]}),
            ),
            vec![trivy_scan()],
        );
        fails(
            vulns(
                json!({"maxSeverity": "critical", "allow": [{"id": "CVE-2021-36159", "reason": "apk is removed", "expires": "2021-08-09"}]}),
            ),
            vec![trivy_scan()],
            &["CVE-2021-36159 (critical; its allowance expired 2021-08-09)"],
        );
        fails(
            vulns(json!({"maxSeverity": "high"})),
            vec![trivy_scan()],
            &["2 vulnerabilities at or above high: CVE-2021-28831 (high), CVE-2021-36159 (critical)"],
        );
        let grype = made(
            "https://cosign.sigstore.dev/attestation/vuln/v1",
            json!({
                "scanner": {"uri": "pkg:github/anchore/grype@v0.74.0", "version": "v0.74.0", "db": {"uri": "", "version": "5"},
                    "result": {"matches": [
                        {"vulnerability": {"id": "GHSA-qppj-fm5r-hxr3", "severity": "Medium"}, "artifact": {"name": "golang.org/x/net"}},
                        {"vulnerability": {"id": "CVE-2023-44487", "severity": "High"}, "artifact": {"name": "golang.org/x/net"}}]}},
                "metadata": {"scanStartedOn": "2021-08-09T23:00:00Z", "scanFinishedOn": "2021-08-09T23:01:00Z"}
            }),
        );
        fails(vulns(json!({"maxSeverity": "high", "maxAge": "1h"})), vec![grype.clone()], &["CVE-2023-44487 (high)"]);
        ok(vulns(json!({"maxSeverity": "critical", "maxAge": "1h"})), vec![grype]);
        let null = made(
            "https://cosign.sigstore.dev/attestation/vuln/v1",
            json!({"scanner": {"uri": "", "version": "", "db": {"uri": "", "version": ""}, "result": null},
                   "metadata": {"scanStartedOn": "2021-08-09T00:00:00Z", "scanFinishedOn": "2021-08-09T00:00:00Z"}}),
        );
        ok(vulns(json!({"maxSeverity": "low", "maxAge": "1d"})), vec![null]);
        let sarif = made(
            "https://cosign.sigstore.dev/attestation/vuln/v1",
            json!({"scanner": {"uri": "", "result": {"version": "2.1.0", "runs": []}}, "metadata": {}}),
        );
        fails(
            vulns(json!({"maxSeverity": "low"})),
            vec![sarif],
            &["cannot read the scanner result: neither Trivy JSON"],
        );
    }

    #[test]
    fn in_toto_vulns_with_cvss_scores() {
        let scan = made(
            "https://in-toto.io/attestation/vulns/v0.2",
            json!({
                "scanner": {"uri": "pkg:github/aquasecurity/trivy@244fd47e07d1004f0aed9", "version": "0.19.2",
                    "db": {"uri": "pkg:github/aquasecurity/trivy-db/commit/4c76bb580b2736d67751410fa4ab66d2b6b9b27d", "version": "v1-2021080612", "lastUpdate": "2021-08-06T17:45:50.52Z"},
                    "result": [{"id": "CVE-123", "severity": [{"method": "nvd", "score": "medium"}, {"method": "cvss_score", "score": "7.2"}]}]},
                "metadata": {"scanStartedOn": "2021-08-06T17:45:50.52Z", "scanFinishedOn": "2021-08-06T17:50:50.52Z"}
            }),
        );
        let want = |max: &str| json!([{"predicateType": "https://in-toto.io/attestation/vulns", "vulnerabilities": {"maxSeverity": max}}]);
        fails(want("high"), vec![scan.clone()], &["1 vulnerability at or above high: CVE-123 (high)"]);
        ok(want("critical"), vec![scan]);
    }

    #[test]
    fn custom_conditions() {
        let want = json!([{"predicateType": "https://example.com/custom/v1", "conditions": [
            {"pointer": "/build/tested", "equals": true}, {"pointer": "/pipeline/name", "regExp": "release-.*"}]}]);
        ok(
            want.clone(),
            vec![made(
                "https://example.com/custom/v1",
                json!({"build": {"tested": true}, "pipeline": {"name": "release-12"}}),
            )],
        );
        fails(
            want,
            vec![
                made(
                    "https://example.com/custom/v1",
                    json!({"build": {"tested": false}, "pipeline": {"name": "release-12"}}),
                ),
                made(
                    "https://example.com/custom/v1",
                    json!({"build": {"tested": true}, "pipeline": {"name": "nightly"}}),
                ),
            ],
            &[
                "none of 2 verified attestations satisfies it: [1] /build/tested is false, not true; [2] /pipeline/name \"nightly\" does not match /release-.*/",
            ],
        );
    }

    #[test]
    fn rejected_attestations_say_why() {
        let rejected = vec![
            RejectedAttestation {
                predicate_type: Some("https://slsa.dev/provenance/v1".into()),
                reason: VerifyError::IdentityMismatch("signed by an identity the policy does not trust: https://github.com/mallory/app/.github/workflows/x.yml@refs/heads/main".into()),
            },
            RejectedAttestation { predicate_type: None, reason: VerifyError::BadSignature("the DSSE signature does not verify".into()) },
            RejectedAttestation {
                predicate_type: Some("https://spdx.dev/Document".into()),
                reason: VerifyError::DigestMismatch("the statement is about sha256:0000".into()),
            },
        ];
        testing::set(answers(
            json!([{"predicateType": "slsaprovenance1"}]),
            Ok(set(vec![verified(CYCLONEDX)], rejected)),
        ));
        let rule = palisade_sdk::configure::<ImageAttestation>("{}").unwrap();
        let v = rule.evaluate(POD, &Context::default()).unwrap();
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(
            v[0].message,
            "container \"app\": image \"ghcr.io/acme/app:1.0\" (trust policy \"production\"): no verified attestation of \
             type slsaprovenance1 (https://slsa.dev/provenance/v1); 2 found but rejected: https://slsa.dev/provenance/v1: \
             identity mismatch: signed by an identity the policy does not trust: \
             https://github.com/mallory/app/.github/workflows/x.yml@refs/heads/main; of unreadable type: bad signature: \
             the DSSE signature does not verify; attach one signed by a key or identity the policy trusts"
        );
        // Asked for every type (a family of versions), the rule still names only rejections of this one.
        let rejected = vec![
            RejectedAttestation {
                predicate_type: Some("https://slsa.dev/provenance/v1".into()),
                reason: VerifyError::IdentityMismatch("mallory".into()),
            },
            RejectedAttestation {
                predicate_type: Some("https://cyclonedx.org/bom/v1.5".into()),
                reason: VerifyError::UntrustedCertificate("expired before it signed".into()),
            },
        ];
        testing::set(answers(json!([{"predicateType": "cyclonedx"}]), Ok(set(Vec::new(), rejected))));
        let rule = palisade_sdk::configure::<ImageAttestation>("{}").unwrap();
        let v = rule.evaluate(POD, &Context::default()).unwrap();
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(
            v[0].message.ends_with(
                "1 found but rejected: https://cyclonedx.org/bom/v1.5: untrusted certificate: expired before it \
                 signed; attach one signed by a key or identity the policy trusts"
            ),
            "{}",
            v[0].message
        );
    }

    #[test]
    fn every_container_list_and_only_matched_images() {
        let pod = r#"{"kind":"CronJob","metadata":{"namespace":"prod"},"spec":{"jobTemplate":{"spec":{"template":{"spec":{
            "initContainers":[{"name":"init","image":"ghcr.io/acme/app:1.0"}],
            "containers":[{"name":"a","image":"ghcr.io/acme/app:1.0"},{"name":"b","image":"docker.io/library/nginx:1"},
                          {"name":"c","image":"Bad::ref"},{"name":"d","image":"ghcr.io/acme/tool:2"}],
            "ephemeralContainers":[{"name":"e","image":"ghcr.io/acme/app:1.0"}]}}}}}}"#;
        let mut a = answers(json!([{"predicateType": "cyclonedx"}]), Ok(set(Vec::new(), Vec::new())));
        // `tool` is governed by a policy without attestation requirements.
        a.policies.insert("ghcr.io/acme/tool:2".into(), "tools".into());
        testing::set(a);
        let rule = palisade_sdk::configure::<ImageAttestation>("{}").unwrap();
        let v = rule.evaluate(pod, &Context::default()).unwrap();
        let paths: Vec<_> = v.iter().map(|v| v.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "/spec/jobTemplate/spec/template/spec/initContainers/0/image",
                "/spec/jobTemplate/spec/template/spec/containers/0/image",
                "/spec/jobTemplate/spec/template/spec/ephemeralContainers/0/image"
            ]
        );
    }

    #[test]
    fn transient_errors_are_undecided_others_are_violations() {
        testing::set(answers(
            json!([{"predicateType": "vuln"}]),
            Err(VerifyError::Unreachable("connection refused".into())),
        ));
        let rule = palisade_sdk::configure::<ImageAttestation>("{}").unwrap();
        let e = rule.evaluate(POD, &Context::default()).unwrap_err();
        assert!(e.contains("its attestations cannot be read: registry unreachable: connection refused"), "{e}");
        testing::set(answers(json!([{"predicateType": "vuln"}]), Err(VerifyError::DeadlineExceeded("5s".into()))));
        assert!(rule.evaluate(POD, &Context::default()).is_err());
        testing::set(answers(json!([{"predicateType": "vuln"}]), Err(VerifyError::NotFound("no such tag".into()))));
        let v = rule.evaluate(POD, &Context::default()).unwrap();
        assert_eq!(v.len(), 1);
        assert!(v[0].message.contains("not found in the registry: no such tag"), "{}", v[0].message);
    }

    #[test]
    fn bad_requirements_are_configuration_errors_naming_the_field() {
        let cases = [
            (
                json!([{"predicateType": "slsaprovenance"}, {"predicateType": "vuln", "vulnerabilities": {"maxSeverity": "severe"}}]),
                "imageVerification.policies[production].attestations[1].vulnerabilities.maxSeverity",
                "\"severe\" is not one of low, medium, high, critical",
            ),
            (
                json!([{"predicateType": "slsaprovenance", "provenance": {"builderIdRegExp": "(unclosed"}}]),
                "imageVerification.policies[production].attestations[0].provenance.builderIdRegExp",
                "not a regular expression",
            ),
            (
                json!([{"predicateType": "x:y", "conditions": [{"pointer": "build/tested", "equals": true}]}]),
                "imageVerification.policies[production].attestations[0].conditions[0].pointer",
                "is not a JSON pointer",
            ),
            (
                json!([{"predicateType": "vuln", "vulnerabilities": {"maxAge": "a week"}}]),
                "imageVerification.policies[production].attestations[0].vulnerabilities.maxAge",
                "is not a duration",
            ),
            (
                json!([{"predicateType": "vuln", "vulnerabilities": {"maxSeverity": "high", "maxAgeDays": 7}}]),
                "imageVerification.policies[production].attestations[0].vulnerabilities.maxAgeDays",
                "unknown field",
            ),
            (
                json!([{"sbom": {"deniedLicenses": ["MIT"]}}]),
                "imageVerification.policies[production].attestations[0].predicateType",
                "missing field",
            ),
        ];
        for (requirements, field, message) in cases {
            testing::set(answers(requirements.clone(), Ok(set(Vec::new(), Vec::new()))));
            let Err(e) = palisade_sdk::configure::<ImageAttestation>("{}") else { panic!("{requirements} configured") };
            assert_eq!(e.field, field, "{requirements}");
            assert!(e.message.contains(message), "{}: {}", e.field, e.message);
        }
    }

    #[test]
    fn inactive_unless_enabled_and_required() {
        let mut a = answers(json!([{"predicateType": "vuln"}]), Ok(set(Vec::new(), Vec::new())));
        a.status = Status::NotRequested;
        testing::set(a);
        let rule = palisade_sdk::configure::<ImageAttestation>("{}").unwrap();
        assert!(rule.inactive_reason().unwrap().contains("--verify-images"));
        assert!(rule.evaluate(POD, &Context::default()).unwrap().is_empty());
        testing::set(answers(json!([]), Ok(set(Vec::new(), Vec::new()))));
        let rule = palisade_sdk::configure::<ImageAttestation>("{}").unwrap();
        assert!(rule.inactive_reason().unwrap().contains("no trust policy declares attestations"));
        assert!(rule.evaluate(POD, &Context::default()).unwrap().is_empty());
        testing::set(Answers::default());
        let rule = palisade_sdk::configure::<ImageAttestation>("{}").unwrap();
        assert!(rule.inactive_reason().unwrap().contains("no trust policy is configured"));
    }
}
