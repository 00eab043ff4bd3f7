//! The index of the whole evaluated set, served to cross-resource rules
//! through the `inventory` import.
//!
//! Objects are kept sorted by namespace, name and apiVersion, so what a rule
//! reads never depends on the order of the input files or documents.

use std::collections::HashMap;
use std::sync::Arc;

use crate::resources::Resource;

#[derive(Debug, Clone)]
struct Entry {
    namespace: Option<String>,
    name: String,
    api_version: String,
    json: Arc<str>,
}

/// Every object of the evaluated set, by kind.
#[derive(Debug, Default)]
pub struct Inventory {
    by_kind: HashMap<String, Vec<Entry>>,
}

impl Inventory {
    pub fn new(resources: &[Resource]) -> Inventory {
        let mut by_kind: HashMap<String, Vec<Entry>> = HashMap::new();
        for r in resources {
            by_kind.entry(r.kind.clone()).or_default().push(Entry {
                namespace: r.namespace.clone(),
                name: r.name.clone(),
                api_version: r.api_version.clone(),
                json: r.json.clone(),
            });
        }
        for entries in by_kind.values_mut() {
            entries.sort_by(|a, b| {
                (&a.namespace, &a.name, &a.api_version, &a.json).cmp(&(&b.namespace, &b.name, &b.api_version, &b.json))
            });
        }
        Inventory { by_kind }
    }

    /// Objects of `kind`: in `namespace` when given, without one when it is
    /// empty, in any (or none) otherwise.
    pub fn list(&self, kind: &str, namespace: Option<&str>) -> Vec<String> {
        self.by_kind
            .get(kind)
            .map(|entries| {
                entries
                    .iter()
                    .filter(|e| match namespace {
                        None => true,
                        Some("") => e.namespace.is_none(),
                        Some(ns) => e.namespace.as_deref() == Some(ns),
                    })
                    .map(|e| e.json.to_string())
                    .collect()
            })
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::Source;

    fn resource(kind: &str, namespace: Option<&str>, name: &str) -> Resource {
        Resource {
            api_version: "v1".into(),
            kind: kind.into(),
            namespace: namespace.map(str::to_string),
            name: name.into(),
            source: Source::new("f", 1, 1),
            json: format!(r#"{{"kind":"{kind}","metadata":{{"name":"{name}"}}}}"#).into(),
            tape: Default::default(),
            written: None,
        }
    }

    #[test]
    fn namespaces_none_and_empty() {
        let inv = Inventory::new(&[
            resource("ServiceAccount", Some("b"), "x"),
            resource("ServiceAccount", None, "y"),
            resource("ServiceAccount", Some("a"), "z"),
            resource("Secret", Some("a"), "s"),
        ]);
        let names = |ns| -> Vec<String> {
            inv.list("ServiceAccount", ns)
                .iter()
                .map(|j| {
                    serde_json::from_str::<serde_json::Value>(j).unwrap()["metadata"]["name"]
                        .as_str()
                        .unwrap()
                        .to_string()
                })
                .collect()
        };
        assert_eq!(names(None), ["y", "z", "x"], "sorted by namespace (none first), then name");
        assert_eq!(names(Some("")), ["y"]);
        assert_eq!(names(Some("a")), ["z"]);
        assert!(inv.list("Role", None).is_empty());
    }
}
