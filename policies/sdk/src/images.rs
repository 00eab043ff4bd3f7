//! Asking the host what it verified about an image (signatures and
//! attestations under the user's trust policies).
//!
//! Inside a component the answers come from the host's `image-verification`
//! import. Natively (unit tests) they come from [`testing::set`], so a rule
//! that asks is tested with `cargo test` like any other. What an attestation
//! must say is the business of [`crate::attest`].

pub use crate::bindings::palisade::policy::image_verification::{
    AttestationSet, AttestationSource, PolicyMatch, RejectedAttestation, VerificationStatus as Status, VerifiedImage,
    VerifiedSignature, VerifiedStatement, VerifyError,
};

/// Whether the host verifies images in this run.
pub fn status() -> Status {
    #[cfg(target_arch = "wasm32")]
    {
        crate::bindings::palisade::policy::image_verification::status()
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        testing::status()
    }
}

/// The trust policy for `image` in `namespace`.
pub fn policy_for(image: &str, namespace: Option<&str>) -> PolicyMatch {
    #[cfg(target_arch = "wasm32")]
    {
        crate::bindings::palisade::policy::image_verification::policy_for(image, namespace)
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        testing::policy_for(image, namespace)
    }
}

/// Verify `image` under the trust policy `policy`.
pub fn verify(image: &str, policy: &str) -> Result<VerifiedImage, VerifyError> {
    #[cfg(target_arch = "wasm32")]
    {
        crate::bindings::palisade::policy::image_verification::verify(image, policy)
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        testing::verify(image, policy)
    }
}

/// The names of the configured trust policies (also when verification was not requested).
pub fn trust_policies() -> Vec<String> {
    #[cfg(target_arch = "wasm32")]
    {
        crate::bindings::palisade::policy::image_verification::trust_policies()
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        testing::trust_policies()
    }
}

/// The attestation requirements of the trust policy `policy`, as the JSON array
/// the user wrote (`imageVerification.policies[].attestations`; `[]` when none);
/// `None` when no trust policy has this name. [`crate::attest::Requirements::parse`] reads it.
pub fn attestation_requirements(policy: &str) -> Option<String> {
    #[cfg(target_arch = "wasm32")]
    {
        crate::bindings::palisade::policy::image_verification::attestation_requirements(policy)
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        testing::attestation_requirements(policy)
    }
}

/// The verified (and the rejected) attestations of `image` under the trust
/// policy `policy`, of the given predicate types (every type when empty).
/// An error only when nothing could be fetched.
pub fn attestations(image: &str, policy: &str, predicate_types: &[String]) -> Result<AttestationSet, VerifyError> {
    #[cfg(target_arch = "wasm32")]
    {
        crate::bindings::palisade::policy::image_verification::attestations(image, policy, predicate_types)
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        testing::attestations(image, policy, predicate_types)
    }
}

/// Whether a verification error says nothing about the image (the registry or
/// the deadline failed, so a rule is undecided rather than violated), and the
/// reason for a person.
pub fn describe(e: &VerifyError) -> (bool, String) {
    match e {
        VerifyError::Unreachable(m) => (true, format!("registry unreachable: {m}")),
        VerifyError::DeadlineExceeded(m) => (true, format!("verification did not finish in time: {m}")),
        VerifyError::InvalidReference(m) => (false, format!("the reference does not parse: {m}")),
        VerifyError::UnknownPolicy(m) => (false, format!("unknown trust policy: {m}")),
        VerifyError::NotFound(m) => (false, format!("not found in the registry: {m}")),
        VerifyError::NoSignature(m) => (false, format!("no signature: {m}")),
        VerifyError::BadSignature(m) => (false, format!("bad signature: {m}")),
        VerifyError::IdentityMismatch(m) => (false, format!("identity mismatch: {m}")),
        VerifyError::UntrustedCertificate(m) => (false, format!("untrusted certificate: {m}")),
        VerifyError::TransparencyLog(m) => (false, format!("transparency log: {m}")),
        VerifyError::DigestMismatch(m) => (false, format!("digest mismatch: {m}")),
        VerifyError::ThresholdNotMet(m) => (false, format!("threshold not met: {m}")),
        VerifyError::OfflineCacheMiss(m) => (false, format!("not in the offline cache: {m}")),
        VerifyError::NotEnabled(m) => (false, format!("image verification is not enabled: {m}")),
    }
}

/// What to do about a verification error, for the end of a finding's message.
pub fn remedy(e: &VerifyError) -> &'static str {
    match e {
        VerifyError::Unreachable(_) => "make the registry reachable, or verify offline from the cache (--offline)",
        VerifyError::DeadlineExceeded(_) => "check again, or verify offline from the cache (--offline)",
        VerifyError::InvalidReference(_) => "fix the image reference",
        VerifyError::UnknownPolicy(_) => "name a trust policy of imageVerification.policies",
        VerifyError::NotFound(_) => "push the image, or fix its reference",
        VerifyError::NoSignature(_) => "sign the image with a key or identity the policy trusts",
        VerifyError::BadSignature(_) => "sign the image again with a key the policy trusts",
        VerifyError::IdentityMismatch(_) => "sign it with an identity the policy trusts, or add that identity to it",
        VerifyError::UntrustedCertificate(_) => "sign it with a certificate that chains to a root the policy trusts",
        VerifyError::TransparencyLog(_) => {
            "sign it again with transparency log or timestamp evidence the policy accepts"
        }
        VerifyError::DigestMismatch(_) => "sign the digest the image reference resolves to",
        VerifyError::ThresholdNotMet(_) => "add signatures from more of the policy's authorities",
        VerifyError::OfflineCacheMiss(_) => "run once online to fill the cache, or give the image with --image-layout",
        VerifyError::NotEnabled(_) => "run with --verify-images and a trust policy",
    }
}

/// The findings of a rule about images. A container whose verification
/// could not finish (the registry, the deadline) makes the rule undecided,
/// unless another container has a definite finding: then both are reported.
#[derive(Debug, Default)]
pub struct Findings {
    violations: Vec<crate::Violation>,
    undecided: Vec<crate::Violation>,
}

impl Findings {
    pub fn push(&mut self, violation: crate::Violation) {
        self.violations.push(violation);
    }

    /// A verification error at `path`, reported as `message(reason)`.
    pub fn error(&mut self, e: &VerifyError, path: String, message: impl FnOnce(&str) -> String) {
        let (transient, reason) = describe(e);
        let violation = crate::Violation::new(message(&reason), path);
        if transient { self.undecided.push(violation) } else { self.violations.push(violation) }
    }

    /// The violations, or the rule's error when all it has is undecided.
    pub fn finish(mut self) -> Result<Vec<crate::Violation>, String> {
        if self.violations.is_empty() && !self.undecided.is_empty() {
            let messages: Vec<String> = self.undecided.into_iter().map(|v| v.message).collect();
            return Err(messages.join("; "));
        }
        self.violations.append(&mut self.undecided);
        Ok(self.violations)
    }
}

/// Why a rule about images reports nothing in this run (`rule`: its id, for
/// `palisade explain`); `None` when verification is on.
pub fn inactive_reason(rule: &str) -> Option<String> {
    match status() {
        Status::Enabled => None,
        Status::NotConfigured => Some(format!(
            "no trust policy is configured (imageVerification.policies in the configuration file; \
             see `palisade explain {rule}`)"
        )),
        Status::NotRequested => {
            Some("image verification was not requested: run `palisade check --verify-images`".into())
        }
    }
}

#[cfg(not(target_arch = "wasm32"))]
pub mod testing {
    //! A stand-in for the host's image verifier in native unit tests: the
    //! contract's types, answers set by the test.
    use std::cell::RefCell;
    use std::collections::BTreeMap;

    pub use super::{
        AttestationSet, AttestationSource, PolicyMatch, RejectedAttestation, Status, VerifiedImage, VerifiedSignature,
        VerifiedStatement, VerifyError,
    };

    /// What the stand-in answers. `Answers { status: Status::Enabled, ..Default::default() }`
    /// starts from no policies, no verdicts and no attestations.
    #[derive(Debug, Clone)]
    pub struct Answers {
        pub status: Status,
        /// Policy by image; an image not listed matches none.
        pub policies: BTreeMap<String, String>,
        pub unmatched_allowed: bool,
        /// Verdict by image.
        pub verdicts: BTreeMap<String, Result<VerifiedImage, VerifyError>>,
        /// Attestation requirements (the JSON array) by trust policy. The trust
        /// policies are the names here and in `policies`; one named only in
        /// `policies` declares `[]`.
        pub requirements: BTreeMap<String, String>,
        /// Attestations by image, before the predicate-type filter the host applies
        /// (exact types; every type when the rule asks for none).
        pub attestations: BTreeMap<String, Result<AttestationSet, VerifyError>>,
    }

    impl Default for Answers {
        fn default() -> Self {
            Answers {
                status: Status::NotConfigured,
                policies: BTreeMap::new(),
                unmatched_allowed: false,
                verdicts: BTreeMap::new(),
                requirements: BTreeMap::new(),
                attestations: BTreeMap::new(),
            }
        }
    }

    thread_local! {
        static ANSWERS: RefCell<Option<Answers>> = const { RefCell::new(None) };
    }

    /// Answer with `answers` on this thread.
    pub fn set(answers: Answers) {
        ANSWERS.with(|a| *a.borrow_mut() = Some(answers));
    }

    pub(super) fn status() -> Status {
        ANSWERS.with(|a| a.borrow().as_ref().map_or(Status::NotConfigured, |a| a.status))
    }

    pub(super) fn policy_for(image: &str, _namespace: Option<&str>) -> PolicyMatch {
        ANSWERS.with(|a| match a.borrow().as_ref() {
            None => PolicyMatch::UnmatchedAllowed,
            Some(_) if image.contains("::") => PolicyMatch::InvalidReference(format!("{image:?} does not parse")),
            Some(a) => match a.policies.get(image) {
                Some(p) => PolicyMatch::Matched(p.clone()),
                None if a.unmatched_allowed => PolicyMatch::UnmatchedAllowed,
                None => PolicyMatch::UnmatchedDenied,
            },
        })
    }

    pub(super) fn verify(image: &str, policy: &str) -> Result<VerifiedImage, VerifyError> {
        ANSWERS.with(|a| {
            a.borrow()
                .as_ref()
                .and_then(|a| a.verdicts.get(image).cloned())
                .unwrap_or_else(|| Err(VerifyError::UnknownPolicy(format!("no answer for {image} under {policy}"))))
        })
    }

    pub(super) fn trust_policies() -> Vec<String> {
        ANSWERS.with(|a| {
            let a = a.borrow();
            let Some(a) = a.as_ref() else { return Vec::new() };
            let names: std::collections::BTreeSet<&String> = a.requirements.keys().chain(a.policies.values()).collect();
            names.into_iter().cloned().collect()
        })
    }

    pub(super) fn attestation_requirements(policy: &str) -> Option<String> {
        ANSWERS.with(|a| {
            let a = a.borrow();
            let a = a.as_ref()?;
            match a.requirements.get(policy) {
                Some(r) => Some(r.clone()),
                None => a.policies.values().any(|p| p == policy).then(|| "[]".to_string()),
            }
        })
    }

    pub(super) fn attestations(
        image: &str,
        policy: &str,
        predicate_types: &[String],
    ) -> Result<AttestationSet, VerifyError> {
        let wanted =
            |t: Option<&str>| predicate_types.is_empty() || t.is_none_or(|t| predicate_types.iter().any(|p| p == t));
        ANSWERS.with(|a| {
            let answer = a.borrow().as_ref().and_then(|a| a.attestations.get(image).cloned());
            let mut set = answer
                .unwrap_or_else(|| Err(VerifyError::UnknownPolicy(format!("no answer for {image} under {policy}"))))?;
            set.statements.retain(|s| wanted(Some(&s.predicate_type)));
            set.rejected.retain(|r| wanted(r.predicate_type.as_deref()));
            Ok(set)
        })
    }
}
