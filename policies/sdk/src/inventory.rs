//! Reading the other objects of the evaluated set, for cross-resource rules.
//!
//! Inside a component the objects come from the host's `inventory` import.
//! Natively (unit tests) they come from [`testing::set`], so cross-resource
//! logic is tested with `cargo test` like any other rule.
//!
//! # Memo
//!
//! A cross-resource rule reads the same lists for object after object: every
//! workload of a namespace asks for its network policies. The host promises
//! that the set is fixed for the lifetime of a component instance (see
//! `list-objects` in `wit/policy.wit`), so each (kind, namespace) list is
//! fetched from the host once per instance and kept ([`list_shared`]), and so
//! is each parse of it ([`parse_all_cached`], [`headers_cached`]): what was
//! quadratic in the size of the set becomes linear. An error is kept as well,
//! and is the same message the uncached reading gives. The memo holds at most
//! one copy of each listed object and one parse of it per type, and no more
//! than [`MEMO_BYTES`] of listed objects in all: an instance's memory is
//! bounded (64 MiB by default), so past that a list is read again on each
//! call, as without a memo, instead of filling the memory with a huge set.
//!
//! Natively the memo is the same; [`testing::set`] clears it, as it replaces
//! the set, so each test reads its own objects (and the memo is tested too).

use std::any::{Any, TypeId};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::pod::{ObjectMeta, nullable};

/// A list: kind and namespace, as `list-objects` takes them.
type ListKey = (String, Option<String>);

/// What was read from the inventory in this instance. A `BTreeMap`, not a
/// `HashMap`: the components import no source of randomness for its hasher.
#[derive(Default)]
struct Memo {
    lists: BTreeMap<ListKey, Rc<[String]>>,
    /// Values computed from one list, by their type (see [`derived`]).
    derived: BTreeMap<(TypeId, ListKey), Rc<dyn Any>>,
    /// Bytes of listed objects kept: each list kept counts its size, and each
    /// derived value the size of the list it was computed from.
    bytes: usize,
}

/// The most bytes of listed objects the memo keeps (see the module documentation).
pub const MEMO_BYTES: usize = 8 << 20;

impl Memo {
    /// Whether `size` more bytes may be kept; if so, they are counted.
    fn take(&mut self, size: usize) -> bool {
        let fits = self.bytes.saturating_add(size) <= MEMO_BYTES;
        if fits {
            self.bytes += size;
        }
        fits
    }
}

fn size(objects: &[String]) -> usize {
    objects.iter().map(String::len).sum()
}

thread_local! {
    static MEMO: RefCell<Memo> = RefCell::new(Memo::default());
}

fn key(kind: &str, namespace: Option<&str>) -> ListKey {
    (kind.to_string(), namespace.map(str::to_string))
}

fn fetch(kind: &str, namespace: Option<&str>) -> Vec<String> {
    #[cfg(target_arch = "wasm32")]
    {
        crate::bindings::palisade::policy::inventory::list_objects(kind, namespace)
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        testing::list(kind, namespace)
    }
}

/// Every object of `kind` in `namespace` (every namespace when `None`), as
/// JSON: fetched from the host on the first call, then shared.
pub fn list_shared(kind: &str, namespace: Option<&str>) -> Rc<[String]> {
    let key = key(kind, namespace);
    if let Some(found) = MEMO.with(|m| m.borrow().lists.get(&key).cloned()) {
        return found;
    }
    let fetched: Rc<[String]> = fetch(kind, namespace).into();
    MEMO.with(|m| {
        let mut memo = m.borrow_mut();
        if memo.take(size(&fetched)) {
            memo.lists.insert(key, fetched.clone());
        }
    });
    fetched
}

/// Every object of `kind` in `namespace` (every namespace when `None`), as JSON.
/// A copy of [`list_shared`].
pub fn list(kind: &str, namespace: Option<&str>) -> Vec<String> {
    list_shared(kind, namespace).to_vec()
}

/// The objects of `kind` in the same namespace as an object in `namespace`.
/// An object without a namespace is matched only with others without one
/// (rendered charts often leave the namespace to `kubectl -n` or Helm).
pub fn same_namespace(kind: &str, namespace: Option<&str>) -> Vec<String> {
    list(kind, Some(namespace.unwrap_or("")))
}

/// [`same_namespace`], shared (see [`list_shared`]).
pub fn same_namespace_shared(kind: &str, namespace: Option<&str>) -> Rc<[String]> {
    list_shared(kind, Some(namespace.unwrap_or("")))
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

/// [`parse_all`] of [`list_shared`]`(kind, namespace)`, parsed once per
/// instance and type and shared; an error is kept and returned again.
pub fn parse_all_cached<T: DeserializeOwned + 'static>(
    kind: &str,
    namespace: Option<&str>,
) -> Result<Rc<Vec<T>>, String> {
    (*derived(kind, namespace, |objects| parse_all::<T>(kind, objects).map(Rc::new))).clone()
}

/// [`parse_all_cached`] of the objects [`same_namespace`] lists.
pub fn same_namespace_cached<T: DeserializeOwned + 'static>(
    kind: &str,
    namespace: Option<&str>,
) -> Result<Rc<Vec<T>>, String> {
    parse_all_cached(kind, Some(namespace.unwrap_or("")))
}

/// [`Header::read`] of each object of [`list_shared`]`(kind, namespace)`, in
/// order, read once per instance and shared.
pub fn headers_cached(kind: &str, namespace: Option<&str>) -> Rc<Vec<Result<Header, String>>> {
    derived(kind, namespace, |objects| objects.iter().map(|json| Header::read(json)).collect())
}

/// A value computed from [`list_shared`]`(kind, namespace)` by `compute`,
/// computed once per instance and shared. The memo knows the value by its
/// type: within the crate, each type `V` is computed by one function only.
/// `compute` may read the inventory itself.
pub(crate) fn derived<V: 'static>(kind: &str, namespace: Option<&str>, compute: impl FnOnce(&[String]) -> V) -> Rc<V> {
    let key = (TypeId::of::<V>(), key(kind, namespace));
    if let Some(found) = MEMO.with(|m| m.borrow().derived.get(&key).cloned())
        && let Ok(value) = found.downcast::<V>()
    {
        return value;
    }
    // No borrow of the memo is held here: `compute` may fill it.
    let objects = list_shared(kind, namespace);
    let value = Rc::new(compute(&objects));
    MEMO.with(|m| {
        let mut memo = m.borrow_mut();
        if memo.take(size(&objects)) {
            memo.derived.insert(key, value.clone() as Rc<dyn Any>);
        }
    });
    value
}

/// Forget what was read (the set changed: only in native tests).
#[cfg(not(target_arch = "wasm32"))]
fn forget() {
    MEMO.with(|m| *m.borrow_mut() = Memo::default());
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

    /// Make `objects` (JSON) the evaluated set for this thread, and forget
    /// what was read from the previous one.
    pub fn set<S: AsRef<str>>(objects: &[S]) {
        OBJECTS.with(|o| *o.borrow_mut() = objects.iter().map(|s| s.as_ref().to_string()).collect());
        super::forget();
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

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = r#"{"kind":"ServiceAccount","metadata":{"name":"a","namespace":"shop"}}"#;
    const B: &str = r#"{"kind":"ServiceAccount","metadata":{"name":"b","namespace":"shop"}}"#;
    const BAD: &str = r#"{"kind":"ServiceAccount","metadata":{"name":"bad","namespace":"shop"},"secrets":"x"}"#;

    #[derive(Debug, Deserialize)]
    struct Named {
        metadata: ObjectMeta,
        /// A list, so that [`BAD`] does not read as `Named` but reads as `Header`.
        #[serde(default, rename = "secrets")]
        _secrets: Vec<serde_json::Value>,
    }

    fn names(kind: &str, namespace: Option<&str>) -> Result<Vec<String>, String> {
        Ok(parse_all_cached::<Named>(kind, namespace)?.iter().map(|n| n.metadata.name.clone()).collect())
    }

    #[test]
    fn a_list_and_its_parse_are_read_once_and_shared() {
        testing::set(&[A, B]);
        let first = list_shared("ServiceAccount", Some("shop"));
        assert!(Rc::ptr_eq(&first, &list_shared("ServiceAccount", Some("shop"))));
        assert_eq!(list("ServiceAccount", Some("shop")), vec![A.to_string(), B.to_string()]);
        let parsed = parse_all_cached::<Named>("ServiceAccount", Some("shop")).unwrap();
        assert!(Rc::ptr_eq(&parsed, &parse_all_cached::<Named>("ServiceAccount", Some("shop")).unwrap()));
        assert_eq!(names("ServiceAccount", Some("shop")).unwrap(), ["a", "b"]);
        // Another namespace, another type: other entries.
        assert!(list_shared("ServiceAccount", Some("")).is_empty());
        let headers = headers_cached("ServiceAccount", Some("shop"));
        assert_eq!(headers.iter().map(|h| h.as_ref().unwrap().metadata.name.as_str()).collect::<Vec<_>>(), ["a", "b"]);
    }

    #[test]
    fn setting_the_set_forgets_what_was_read() {
        testing::set(&[A]);
        assert_eq!(names("ServiceAccount", Some("shop")).unwrap(), ["a"]);
        testing::set(&[A, B]);
        assert_eq!(list_shared("ServiceAccount", Some("shop")).len(), 2);
        assert_eq!(names("ServiceAccount", Some("shop")).unwrap(), ["a", "b"]);
        testing::set::<&str>(&[]);
        assert_eq!(names("ServiceAccount", Some("shop")).unwrap(), Vec::<String>::new());
    }

    #[test]
    fn past_its_budget_the_memo_reads_again_instead_of_keeping() {
        // One list of a little more than the budget: read, and not kept.
        let padding = "x".repeat(1 << 20);
        let big: Vec<String> = (0..=MEMO_BYTES >> 20)
            .map(|i| format!(r#"{{"kind":"ConfigMap","metadata":{{"name":"c{i}","namespace":"shop"}},"data":{{"k":"{padding}"}}}}"#))
            .collect();
        testing::set(&big);
        let first = list_shared("ConfigMap", Some("shop"));
        assert_eq!(first.len(), big.len());
        assert!(!Rc::ptr_eq(&first, &list_shared("ConfigMap", Some("shop"))));
        let parsed = parse_all_cached::<Named>("ConfigMap", Some("shop")).unwrap();
        assert!(!Rc::ptr_eq(&parsed, &parse_all_cached::<Named>("ConfigMap", Some("shop")).unwrap()));
        // A small list beside it is still kept.
        testing::set(&[A]);
        assert!(Rc::ptr_eq(&list_shared("ServiceAccount", Some("shop")), &list_shared("ServiceAccount", Some("shop"))));
    }

    #[test]
    fn a_cached_error_is_the_uncached_one_every_time() {
        testing::set(&[A, BAD]);
        let uncached = parse_all::<Named>("ServiceAccount", &list("ServiceAccount", Some("shop"))).unwrap_err();
        assert!(uncached.starts_with("cannot read ServiceAccount \"bad\" from the checked set:"), "{uncached}");
        assert_eq!(parse_all_cached::<Named>("ServiceAccount", Some("shop")).unwrap_err(), uncached);
        assert_eq!(same_namespace_cached::<Named>("ServiceAccount", Some("shop")).unwrap_err(), uncached);
        // A type that reads the object is not kept from it by another's error.
        assert_eq!(parse_all_cached::<Header>("ServiceAccount", Some("shop")).unwrap().len(), 2);
    }
}
