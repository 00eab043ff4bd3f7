//! Asking the host what it verified about an image (signatures under the
//! user's trust policies).
//!
//! Inside a component the answers come from the host's `image-verification`
//! import. Natively (unit tests) they come from [`testing::set`], so a rule
//! that asks is tested with `cargo test` like any other.

pub use crate::bindings::palisade::policy::image_verification::{
    PolicyMatch, VerificationStatus as Status, VerifiedImage, VerifiedSignature, VerifyError,
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

#[cfg(not(target_arch = "wasm32"))]
pub mod testing {
    //! A stand-in for the host's image verifier in native unit tests: the
    //! contract's types, answers set by the test.
    use std::cell::RefCell;
    use std::collections::BTreeMap;

    pub use super::{PolicyMatch, Status, VerifiedImage, VerifiedSignature, VerifyError};

    /// What the stand-in answers.
    #[derive(Debug, Clone)]
    pub struct Answers {
        pub status: Status,
        /// Policy by image; an image not listed matches none.
        pub policies: BTreeMap<String, String>,
        pub unmatched_allowed: bool,
        /// Verdict by image.
        pub verdicts: BTreeMap<String, Result<VerifiedImage, VerifyError>>,
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
}
