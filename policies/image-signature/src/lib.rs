//! Every image of every container is signed by someone a trust policy trusts.
//!
//! The rule asks the host (`image-verification` in `wit/policy.wit`), which
//! resolves the reference to a digest and verifies cosign signatures and
//! Sigstore bundles offline against the configured keys and trusted roots.
//! Sources of truth: cosign's signature specification
//! (<https://github.com/sigstore/cosign/blob/main/specs/SIGNATURE_SPEC.md>),
//! the Sigstore client specification
//! (<https://github.com/sigstore/architecture-docs/blob/main/client-spec.md>),
//! and the trust-policy shape of Connaisseur and Kyverno `verifyImages`.
//! Every container, init container and ephemeral container of the nine
//! pod-bearing kinds.

use palisade_sdk::images::{self, PolicyMatch, Status};
use palisade_sdk::{
    Context, Fields, HARDENED, Metadata, NO_SETTINGS_SCHEMA, NoSettings, Rule, SettingsError, Severity, Violation,
    Workload,
};

pub struct ImageSignature;

const CONFIGURATION: &str = "Configure trust policies in the configuration file (paths relative to it):

  imageVerification:
    trustedRoot: [trusted_root.json]     # Sigstore trusted roots, read offline
    unmatched: deny                      # an image no policy matches: deny (default) or allow
    policies:
      - name: production
        images: [\"ghcr.io/acme/**\"]      # globs on registry/repository:tag; * stays within a path segment
        namespaces: [\"prod-*\"]           # optional; every namespace when left out
        keys: [cosign.pub]               # cosign public keys (PEM): ECDSA, RSA or Ed25519
        keyless:                         # Fulcio certificates, logged in Rekor
          - issuer: https://token.actions.githubusercontent.com
            subjectRegExp: https://github.com/acme/.+/.github/workflows/release.yml@refs/tags/v.+
        threshold: 1                     # authorities that must verify
        transparencyLog: optional        # keys: require a Rekor entry (required) or not

The most specific matching policy applies (most literal characters; a namespaced policy before one for all). \
Run `palisade check --verify-images` (add `--offline` to use only signatures an earlier run fetched); \
`palisade serve` verifies at admission and caches verdicts (imageVerification.cache.ttlSeconds, maxEntries).";

impl Rule for ImageSignature {
    type Settings = NoSettings;

    fn metadata() -> Metadata {
        Metadata {
            id: "image-signature",
            title: "Images must be signed by a trusted key or identity",
            description: "Reports a container whose image does not verify under the trust policy that governs it: \
                          no signature, a signature by a key or identity the policy does not trust, a certificate \
                          that does not chain to the trusted root at the signing time, no transparency-log proof, or \
                          a signature over another digest. An image that no trust policy matches is reported unless \
                          `unmatched: allow`. A registry that cannot be reached makes the rule undecided, which \
                          admission treats by the rule's failurePolicy (fail closed by default).",
            rationale: "A name or tag says nothing about who built an image. A signature made by the organisation's \
                        CI (a key, or a keyless Fulcio certificate bound to the CI workflow and logged in Rekor) \
                        proves the image comes from where it claims, and stops images pushed by anyone else.",
            remediation: CONFIGURATION,
            severity: Severity::High,
            category: "Supply chain",
            applies_to: &palisade_sdk::POD_KINDS,
            reads_kinds: &[],
            settings_schema: NO_SETTINGS_SCHEMA,
            references: &[
                "https://github.com/sigstore/cosign/blob/main/specs/SIGNATURE_SPEC.md",
                "https://github.com/sigstore/architecture-docs/blob/main/client-spec.md",
                "https://kyverno.io/docs/writing-policies/verify-images/sigstore/",
            ],
            profiles: HARDENED,
        }
    }

    fn configure(_: NoSettings) -> Result<Self, SettingsError> {
        Ok(ImageSignature)
    }

    fn evaluate(&self, object: &str, context: &Context) -> Result<Vec<Violation>, String> {
        if images::status() != Status::Enabled {
            return Ok(Vec::new());
        }
        let found = match Workload::from_json_reading(object, READS)? {
            Some(workload) => self.check(&workload, context),
            None => Ok(Vec::new()),
        };
        #[cfg(not(target_arch = "wasm32"))]
        palisade_sdk::check_reads("image-signature", READS, object, &found, |w| {
            w.map_or(Ok(Vec::new()), |w| self.check(w, context))
        });
        found
    }

    fn inactive_reason(&self) -> Option<String> {
        images::inactive_reason("image-signature")
    }
}

/// The parts of a workload the rule reads (see `Fields`): the images.
const READS: Fields = Fields::CONTAINERS;

impl ImageSignature {
    fn check(&self, workload: &Workload, context: &Context) -> Result<Vec<Violation>, String> {
        let namespace = workload.namespace().map(str::to_string).or_else(|| context.namespace.clone());
        let mut findings = images::Findings::default();
        for c in workload.containers() {
            let image = c.container.image.as_str();
            let at = format!("container {:?}: image {image:?}", c.name());
            let policy = match images::policy_for(image, namespace.as_deref()) {
                PolicyMatch::Matched(policy) => policy,
                PolicyMatch::UnmatchedAllowed => continue,
                PolicyMatch::InvalidReference(m) => {
                    findings.push(Violation::new(
                        format!("{at}: the reference does not parse: {m}; fix the image reference"),
                        c.field("image"),
                    ));
                    continue;
                }
                PolicyMatch::UnmatchedDenied => {
                    findings.push(Violation::new(
                        format!(
                            "{at} does not match any trust policy, so it cannot be verified; add a policy whose \
                             images match it to imageVerification.policies, or set `unmatched: allow` to admit such \
                             images unverified"
                        ),
                        c.field("image"),
                    ));
                    continue;
                }
            };
            if let Err(e) = images::verify(image, &policy) {
                findings.error(&e, c.field("image"), |reason| {
                    format!("{at} (trust policy {policy:?}): {reason}; {}", images::remedy(&e))
                });
            }
        }
        findings.finish()
    }
}

palisade_sdk::export_rule!(ImageSignature);

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_sdk::images::testing::{self, Answers, VerifiedImage, VerifyError};
    use std::collections::BTreeMap;

    fn answers(verdicts: &[(&str, Result<(), VerifyError>)], policies: &[(&str, &str)]) -> Answers {
        Answers {
            status: Status::Enabled,
            policies: policies.iter().map(|(i, p)| (i.to_string(), p.to_string())).collect(),
            unmatched_allowed: false,
            verdicts: verdicts
                .iter()
                .map(|(i, v)| {
                    let v = v.clone().map(|()| VerifiedImage {
                        reference: i.to_string(),
                        digest: "sha256:00".into(),
                        policy: "prod".into(),
                        signatures: Vec::new(),
                    });
                    (i.to_string(), v)
                })
                .collect::<BTreeMap<_, _>>(),
            ..Default::default()
        }
    }

    const POD: &str = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","namespace":"prod"},"spec":{
        "initContainers":[{"name":"init","image":"signed:1"}],
        "containers":[{"name":"a","image":"signed:1"},{"name":"b","image":"unsigned:1"},{"name":"c","image":"stranger:1"},
            {"name":"d","image":"Bad::ref"}],
        "ephemeralContainers":[{"name":"e","image":"forged:1"}]}}"#;

    #[test]
    fn every_container_list_is_verified() {
        testing::set(answers(
            &[
                ("signed:1", Ok(())),
                ("unsigned:1", Err(VerifyError::NoSignature("none".into()))),
                ("forged:1", Err(VerifyError::BadSignature("wrong key".into()))),
            ],
            &[("signed:1", "prod"), ("unsigned:1", "prod"), ("forged:1", "prod")],
        ));
        let v = ImageSignature.evaluate(POD, &Context::default()).unwrap();
        let paths: Vec<_> = v.iter().map(|v| v.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "/spec/containers/1/image",
                "/spec/containers/2/image",
                "/spec/containers/3/image",
                "/spec/ephemeralContainers/0/image"
            ]
        );
        assert_eq!(
            v[0].message,
            "container \"b\": image \"unsigned:1\" (trust policy \"prod\"): no signature: none; sign the image with a \
             key or identity the policy trusts"
        );
        assert!(v[1].message.contains("does not match any trust policy"), "{}", v[1].message);
        assert!(v[2].message.contains("does not parse"), "{}", v[2].message);
        assert!(v[3].message.contains("bad signature"), "{}", v[3].message);
    }

    #[test]
    fn an_unreachable_registry_is_undecided_not_a_pass() {
        testing::set(answers(
            &[("signed:1", Err(VerifyError::Unreachable("refused".into())))],
            &[("signed:1", "prod")],
        ));
        let pod = r#"{"kind":"Pod","spec":{"containers":[{"name":"a","image":"signed:1"}]}}"#;
        let e = ImageSignature.evaluate(pod, &Context::default()).unwrap_err();
        assert!(e.contains("registry unreachable"), "{e}");
    }

    #[test]
    fn inactive_unless_enabled() {
        let mut a = answers(&[], &[]);
        a.status = Status::NotRequested;
        testing::set(a);
        assert!(ImageSignature.inactive_reason().unwrap().contains("--verify-images"));
        assert!(ImageSignature.evaluate(POD, &Context::default()).unwrap().is_empty());
    }
}
