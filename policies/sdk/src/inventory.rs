//! Reading the other objects of the evaluated set, for cross-resource rules.

use crate::bindings::palisade::policy::inventory as host;

/// Every object of `kind` in `namespace` (every namespace when `None`), as JSON.
///
/// Only meaningful inside a component: natively there is no host to ask, and
/// the call panics. Keep rule logic testable by taking the objects as input.
pub fn list(kind: &str, namespace: Option<&str>) -> Vec<String> {
    host::list_objects(kind, namespace)
}
