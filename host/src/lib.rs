//! Palisade's host: reads Kubernetes manifests and runs policy components on them.
//!
//! The data path, one module per step:
//! [`input`] (paths → bytes) → [`documents`] (bytes → documents with positions)
//! → [`resources`] (documents → objects, `List`s expanded) → [`inventory`]
//! (the index of the whole set) → [`evaluate`] (every applicable policy on
//! every object, in the [`runtime`] sandbox) → [`findings`] → [`exceptions`]
//! → [`report`].
//! [`check`] strings the steps together; [`policy_set`] loads and configures
//! the policies; [`bundle`] brings them from OCI registries and layouts,
//! checked by digest and signature; [`config`] reads the configuration file;
//! [`images`] answers the policies' questions about image signatures.
//! [`scaffold`] writes and builds rule crates of one's own, made components
//! and checked against the contract by [`componentize`], as the built-in ones are.

pub mod bundle;

pub mod builtin {
    //! The policy components built from `policies/` and embedded in the binary.
    include!(concat!(env!("OUT_DIR"), "/builtin.rs"));
}

pub mod check;
pub mod componentize;
pub mod config;
pub mod documents;
pub mod evaluate;
pub mod exceptions;
pub mod export;
pub mod findings;
pub mod helm;
pub mod images;
pub mod input;
pub mod inventory;
/// The SDK's byte-level JSON scanning, which the host's tape shares ([`view`]).
pub(crate) use palisade_sdk::json_scan;
#[cfg(test)]
mod locate_walk;
pub(crate) mod parallel;
pub mod pin;
pub mod policy_set;
pub mod report;
pub mod resources;
pub mod runtime;
pub mod scaffold;
pub mod serve;
pub mod severity;
pub mod suggest;
pub mod suite;
pub mod view;
pub mod wasi;
