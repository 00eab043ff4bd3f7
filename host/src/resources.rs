//! Documents → resources: Kubernetes objects with their identity and where
//! they came from; `List` and `*List` documents are expanded into their items.

use std::sync::Arc;

use serde_json::Value;

use crate::documents::{Document, Parsed};

/// Where a resource, or an error, was found.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct Source {
    pub file: String,
    /// 1-based document index in the file.
    pub document: usize,
    /// 1-based line.
    pub line: usize,
}

/// One Kubernetes object to evaluate.
#[derive(Debug, Clone)]
pub struct Resource {
    pub api_version: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
    pub source: Source,
    /// The object as JSON, shared with the inventory.
    pub json: Arc<str>,
}

/// A document or list item that is not a usable Kubernetes object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceError {
    pub source: Source,
    pub message: String,
}

/// Turn the documents of one file into resources.
pub fn from_documents(file: &str, documents: Vec<Document>, out: &mut Vec<Resource>, errors: &mut Vec<ResourceError>) {
    for doc in documents {
        let source = Source { file: file.to_string(), document: doc.index, line: doc.line };
        match doc.content {
            Err(e) => errors.push(ResourceError {
                source: Source { line: e.line, ..source },
                message: format!("{} (column {})", e.message, e.column),
            }),
            Ok(parsed) => from_value(parsed, source, out, errors),
        }
    }
}

fn from_value(parsed: Parsed, source: Source, out: &mut Vec<Resource>, errors: &mut Vec<ResourceError>) {
    let Parsed { value, item_lines } = parsed;
    let is_list =
        value.get("kind").and_then(Value::as_str).is_some_and(|k| k.ends_with("List")) && value.get("items").is_some();
    if !is_list {
        match resource(value, source.clone()) {
            Ok(r) => out.push(r),
            Err(message) => errors.push(ResourceError { source, message }),
        }
        return;
    }
    let Value::Object(mut map) = value else {
        return;
    };
    let items = match map.remove("items") {
        Some(Value::Array(items)) => items,
        Some(Value::Null) => Vec::new(),
        _ => {
            errors.push(ResourceError { source, message: "a List's `items` must be a list of objects".into() });
            return;
        }
    };
    let lines_match = item_lines.len() == items.len();
    for (i, item) in items.into_iter().enumerate() {
        let item_source = Source { line: if lines_match { item_lines[i] } else { source.line }, ..source.clone() };
        match resource(item, item_source.clone()) {
            Ok(r) => out.push(r),
            Err(message) => errors
                .push(ResourceError { source: item_source, message: format!("item {} of the List: {message}", i + 1) }),
        }
    }
}

fn string_field<'a>(value: &'a Value, field: &str) -> Result<Option<&'a str>, String> {
    match value.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(format!("`{field}` must be a string, not {}", type_name(other))),
    }
}

pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

fn resource(value: Value, source: Source) -> Result<Resource, String> {
    if !value.is_object() {
        return Err(format!("not a Kubernetes object: the document is {}", type_name(&value)));
    }
    let kind = string_field(&value, "kind")?
        .filter(|k| !k.is_empty())
        .ok_or("not a Kubernetes object: no `kind`")?
        .to_string();
    let api_version = string_field(&value, "apiVersion")?
        .filter(|k| !k.is_empty())
        .ok_or_else(|| format!("{kind} has no `apiVersion`"))?
        .to_string();
    let (namespace, name) = match value.get("metadata") {
        None | Some(Value::Null) => (None, String::new()),
        Some(meta @ Value::Object(_)) => {
            let ns = string_field(meta, "namespace").map_err(|e| format!("metadata: {e}"))?;
            let name = string_field(meta, "name").map_err(|e| format!("metadata: {e}"))?;
            let generate = string_field(meta, "generateName").map_err(|e| format!("metadata: {e}"))?;
            (ns.filter(|n| !n.is_empty()).map(str::to_string), name.or(generate).unwrap_or_default().to_string())
        }
        Some(other) => {
            return Err(format!("`metadata` must be a mapping, not {}", type_name(other)));
        }
    };
    let json: Arc<str> = serde_json::to_string(&value).map_err(|e| format!("cannot serialise the object: {e}"))?.into();
    Ok(Resource { api_version, kind, namespace, name, source, json })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::documents::{Limits, read_documents};

    fn load(text: &str) -> (Vec<Resource>, Vec<ResourceError>) {
        let mut out = Vec::new();
        let mut errors = Vec::new();
        from_documents("f.yaml", read_documents(text, &Limits::default()), &mut out, &mut errors);
        (out, errors)
    }

    #[test]
    fn lists_are_expanded_with_item_lines() {
        let (r, e) = load(
            "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Pod\n  metadata: {name: a, namespace: x}\n- apiVersion: v1\n  kind: Service\n  metadata: {name: b}\n",
        );
        assert!(e.is_empty(), "{e:?}");
        let got: Vec<_> = r.iter().map(|r| (r.kind.as_str(), r.name.as_str(), r.source.line)).collect();
        assert_eq!(got, [("Pod", "a", 4), ("Service", "b", 7)]);
        assert_eq!(r[0].namespace.as_deref(), Some("x"));
    }

    #[test]
    fn typed_lists_expand_too() {
        let (r, _) =
            load("apiVersion: v1\nkind: PodList\nitems:\n- {apiVersion: v1, kind: Pod, metadata: {name: p}}\n");
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].kind, "Pod");
    }

    #[test]
    fn non_objects_are_errors_with_their_position() {
        let (r, e) = load(
            "apiVersion: v1\nkind: Pod\n---\n- a\n---\nkind: 3\n---\nmetadata: {}\n---\napiVersion: v1\nkind: X\nmetadata: []\n",
        );
        assert_eq!(r.len(), 1);
        let msgs: Vec<_> = e.iter().map(|e| (e.source.document, e.message.as_str())).collect();
        assert_eq!(
            msgs,
            [
                (2, "not a Kubernetes object: the document is a list"),
                (3, "`kind` must be a string, not a number"),
                (4, "not a Kubernetes object: no `kind`"),
                (5, "`metadata` must be a mapping, not a list"),
            ]
        );
    }
}
