//! Reading the other objects of the evaluated set, for cross-resource rules.
//!
//! Inside a component the objects come from the host's `inventory` import.
//! Natively (unit tests) they come from [`testing::set`], so cross-resource
//! logic is tested with `cargo test` like any other rule.

use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::pod::{ObjectMeta, nullable};

/// Every object of `kind` in `namespace` (every namespace when `None`), as JSON.
pub fn list(kind: &str, namespace: Option<&str>) -> Vec<String> {
    #[cfg(target_arch = "wasm32")]
    {
        crate::bindings::palisade::policy::inventory::list_objects(kind, namespace)
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        testing::list(kind, namespace)
    }
}

/// The objects of `kind` in the same namespace as an object in `namespace`.
/// An object without a namespace is matched only with others without one
/// (rendered charts often leave the namespace to `kubectl -n` or Helm).
pub fn same_namespace(kind: &str, namespace: Option<&str>) -> Vec<String> {
    list(kind, Some(namespace.unwrap_or("")))
}

/// Parse each object as `T`. An object that does not parse is reported by the
/// rules that evaluate it, so here it is an error naming it.
pub fn parse_all<T: DeserializeOwned>(kind: &str, objects: &[String]) -> Result<Vec<T>, String> {
    objects
        .iter()
        .map(|json| {
            serde_json::from_str(json).map_err(|e| {
                let name = Header::read(json).map(|h| h.metadata.name).unwrap_or_default();
                format!("cannot read {kind} {name:?} from the checked set: {e}")
            })
        })
        .collect()
}

/// The identity of any object: kind and metadata.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Header {
    #[serde(default, deserialize_with = "nullable")]
    pub api_version: String,
    #[serde(default, deserialize_with = "nullable")]
    pub kind: String,
    #[serde(default, deserialize_with = "nullable")]
    pub metadata: ObjectMeta,
}

impl Header {
    pub fn read(json: &str) -> Result<Header, String> {
        serde_json::from_str(json).map_err(|e| format!("cannot read the object: {e}"))
    }

    pub fn namespace(&self) -> Option<&str> {
        Some(self.metadata.namespace.as_str()).filter(|n| !n.is_empty())
    }
}

#[cfg(not(target_arch = "wasm32"))]
pub mod testing {
    //! A stand-in for the host's inventory in native unit tests.
    use std::cell::RefCell;

    thread_local! {
        static OBJECTS: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
    }

    /// Make `objects` (JSON) the evaluated set for this thread.
    pub fn set<S: AsRef<str>>(objects: &[S]) {
        OBJECTS.with(|o| *o.borrow_mut() = objects.iter().map(|s| s.as_ref().to_string()).collect());
    }

    pub(super) fn list(kind: &str, namespace: Option<&str>) -> Vec<String> {
        OBJECTS.with(|o| {
            o.borrow()
                .iter()
                .filter(|json| {
                    let Ok(h) = super::Header::read(json) else { return false };
                    h.kind == kind
                        && match namespace {
                            None => true,
                            Some("") => h.namespace().is_none(),
                            Some(ns) => h.namespace() == Some(ns),
                        }
                })
                .cloned()
                .collect()
        })
    }
}
