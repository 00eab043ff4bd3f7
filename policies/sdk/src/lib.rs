//! The Palisade policy SDK: everything a rule crate needs besides its own logic.
//!
//! A rule crate implements [`Rule`] (or [`PodRule`] for rules about pods) and
//! calls [`export_rule!`] (or [`export_pod_rule!`]). The logic stays plain Rust,
//! unit-testable natively with `cargo test`; the macro adds the component
//! exports of `wit/policy.wit` (the contract, carried in this crate).
//!
//! A rule crate is a `cdylib` (and `rlib`, for the tests) built for
//! `wasm32-unknown-unknown`; `palisade new NAME` writes one and `palisade
//! build` makes it a component and checks it against the contract.
//!
//! ```
//! use palisade_sdk::{
//!     Context, Fields, HARDENED, Metadata, NO_SETTINGS_SCHEMA, NoSettings, POD_KINDS, PodRule, SettingsError,
//!     Severity, Violation, Workload,
//! };
//!
//! pub struct NoPrivileged;
//!
//! impl PodRule for NoPrivileged {
//!     type Settings = NoSettings;
//!
//!     // Only the containers' securityContext is built (the default, `Fields::ALL`, builds everything).
//!     const READS: Fields = Fields::SECURITY_CONTEXT;
//!
//!     fn metadata() -> Metadata {
//!         Metadata {
//!             id: "no-privileged",
//!             title: "Containers must not run privileged",
//!             description: "Fails a pod with a privileged container.",
//!             rationale: "A privileged container is root on the node.",
//!             remediation: "Remove securityContext.privileged.",
//!             severity: Severity::High,
//!             category: "Pod security",
//!             applies_to: &POD_KINDS,
//!             reads_kinds: &[],
//!             settings_schema: NO_SETTINGS_SCHEMA,
//!             references: &[],
//!             profiles: HARDENED,
//!         }
//!     }
//!
//!     fn configure(_: NoSettings) -> Result<Self, SettingsError> {
//!         Ok(NoPrivileged)
//!     }
//!
//!     fn check(&self, workload: &Workload, _: &Context) -> Vec<Violation> {
//!         workload
//!             .containers()
//!             .filter(|c| c.container.security_context.as_ref().and_then(|s| s.privileged) == Some(true))
//!             .map(|c| Violation::new(format!("container {:?} is privileged", c.name()), c.field("securityContext/privileged")))
//!             .collect()
//!     }
//! }
//!
//! // The component's exports (compiled for wasm32 only).
//! palisade_sdk::export_pod_rule!(NoPrivileged);
//!
//! # fn main() {
//! let pod = r#"{"kind":"Pod","spec":{"containers":[{"name":"app","securityContext":{"privileged":true}}]}}"#;
//! let violations = palisade_sdk::check_pod(NoPrivileged, pod).unwrap();
//! assert_eq!(violations[0].path, "/spec/containers/0/securityContext/privileged");
//! # }
//! ```

#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "wit",
        world: "rule-with-input",
        pub_export_macro: true,
        export_macro_name: "__export_rule_component",
        default_bindings_module: "palisade_sdk::bindings",
        runtime_path: "palisade_sdk::__wit_bindgen::rt",
    });
}

#[doc(hidden)]
pub use wit_bindgen as __wit_bindgen;

// The generated bindings name this crate by its external name.
extern crate self as palisade_sdk;

pub mod allocator;
pub mod attest;
pub mod cilium;
pub mod credentials;
pub mod fields;
pub mod image;
pub mod images;
pub mod inventory;
pub mod istio;
pub mod json_eq;
pub mod json_path;
pub mod json_scan;
pub mod objects;
pub mod pod;
pub mod pss;
pub mod rbac;
mod rule;
pub mod selector;
pub mod workload;

pub use fields::Fields;

/// Every component built with the SDK allocates through [`allocator`]: a
/// tenth fewer instructions an evaluation than the standard dlmalloc.
#[cfg(all(target_arch = "wasm32", feature = "allocator"))]
#[global_allocator]
static ALLOCATOR: allocator::SizeClasses = allocator::SizeClasses::new();
pub use rule::*;
pub use workload::{ContainerKind, ContainerRef, POD_KINDS, WORKLOAD_KINDS, Workload, join_kinds};
