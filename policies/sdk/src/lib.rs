//! The Palisade policy SDK: everything a rule crate needs besides its own logic.
//!
//! A rule crate implements [`Rule`] (or [`PodRule`] for rules about pods) and
//! calls [`export_rule!`] (or [`export_pod_rule!`]). The logic stays plain Rust,
//! unit-testable natively with `cargo test`; the macro adds the component
//! exports of `wit/policy.wit`.

#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "rule",
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

pub mod attest;
pub mod cilium;
pub mod credentials;
pub mod image;
pub mod images;
pub mod inventory;
pub mod istio;
pub mod json_path;
pub mod objects;
pub mod pod;
pub mod pss;
pub mod rbac;
mod rule;
pub mod selector;
pub mod workload;

pub use rule::*;
pub use workload::{ContainerKind, ContainerRef, POD_KINDS, WORKLOAD_KINDS, Workload, join_kinds};
