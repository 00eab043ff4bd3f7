//! Documents → resources: Kubernetes objects with their identity and where
//! they came from; `List` and `*List` documents are expanded into their items.

use std::sync::{Arc, OnceLock};

use serde_json::Value;

use crate::documents::{Document, Locator, Parsed, Steps};
use crate::view::Tape;

/// Where a resource, or an error, was found.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct Source {
    pub file: String,
    /// 1-based document index in the file.
    pub document: usize,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, when the position is a field's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<usize>,
    /// The Helm template the document was rendered from (`# Source:`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
}

impl Source {
    pub fn new(file: &str, document: usize, line: usize) -> Source {
        Source { file: file.to_string(), document, line, column: None, template: None }
    }
}

/// Where an object is written: its document's text, and the pointer of the
/// object within the document (`/items/3` for an item of a List).
#[derive(Debug, Clone)]
pub struct Written {
    pub text: Arc<str>,
    /// The line of the file the text starts on.
    pub first_line: usize,
    pub prefix: String,
    /// Where each node of `text` is, read on the first finding placed in the
    /// document and shared by the items of a List (`None`: the text does not
    /// parse). Build a `Written` with [`Written::new`].
    pub locator: SharedLocator,
    /// The parser's events of the text's first reading, from which the
    /// locator is made; `None`: the locator reads the text.
    pub steps: Option<Arc<Steps>>,
}

/// A document's [`Locator`], made on first use and shared by its resources.
pub type SharedLocator = Arc<OnceLock<Option<Locator>>>;

impl Written {
    /// The whole document `text`, starting on line `first_line` of its file.
    pub fn new(text: Arc<str>, first_line: usize) -> Written {
        Written { text, first_line, prefix: String::new(), locator: Arc::default(), steps: None }
    }

    /// Where `pointer` (from the document's root) is written: see [`Locator::locate`].
    fn locate(&self, pointer: &str) -> Option<(usize, usize)> {
        self.locator
            .get_or_init(|| match &self.steps {
                Some(steps) => Locator::from_steps(steps),
                None => Locator::new(&self.text),
            })
            .as_ref()?
            .locate(pointer)
    }
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
    /// Where each value of `json` is, written with it: what pruning the
    /// object to a rule's view reads ([`crate::view`]).
    pub tape: Arc<Tape>,
    /// Where it is written, to place a finding on the line of its field.
    pub written: Option<Written>,
}

impl Resource {
    /// Where the field `path` (a JSON pointer into the object) is written: the
    /// source with the line and column of that field, or of its deepest
    /// ancestor that is written (see [`crate::documents::locate`]). The
    /// document's locator is made for that once, on its first call, from the
    /// parser events kept when the document was read.
    pub fn source_of(&self, path: &str) -> Source {
        let Some(w) = &self.written else {
            return self.source.clone();
        };
        match w.locate(&format!("{}{path}", w.prefix)) {
            Some((line, column)) => {
                Source { line: w.first_line + line - 1, column: Some(column), ..self.source.clone() }
            }
            None => self.source.clone(),
        }
    }
}

/// Copies of `resources` whose documents are not yet read for positions,
/// the items of a List still sharing one reading: a clone of a resource
/// shares the index its first findings built, so a benchmark that evaluates
/// clones round after round would leave that reading out of every round but
/// the first.
pub fn unlocated_copies(resources: &[Resource]) -> Vec<Resource> {
    let mut fresh: std::collections::HashMap<*const OnceLock<Option<Locator>>, SharedLocator> =
        std::collections::HashMap::new();
    resources
        .iter()
        .map(|r| {
            let mut copy = r.clone();
            if let Some(w) = &mut copy.written {
                w.locator = fresh.entry(Arc::as_ptr(&w.locator)).or_default().clone();
            }
            copy
        })
        .collect()
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
        let source = Source { template: doc.template, ..Source::new(file, doc.index, doc.line) };
        match doc.content {
            Err(e) => errors.push(ResourceError {
                source: Source { line: e.line, ..source },
                message: format!("{} (column {})", e.message, e.column),
            }),
            Ok(parsed) => {
                let written = Written { steps: parsed.steps.clone(), ..Written::new(doc.text, parsed.first_line) };
                from_value(parsed, source, written, out, errors)
            }
        }
    }
}

fn is_list(value: &Value) -> bool {
    value.get("kind").and_then(Value::as_str).is_some_and(|k| k.ends_with("List")) && value.get("items").is_some()
}

fn from_value(
    parsed: Parsed,
    source: Source,
    written: Written,
    out: &mut Vec<Resource>,
    errors: &mut Vec<ResourceError>,
) {
    let Parsed { value, item_lines, .. } = parsed;
    if !is_list(&value) {
        match resource(value, source.clone(), written) {
            Ok(r) => out.push(r),
            Err(message) => errors.push(ResourceError { source, message }),
        }
        return;
    }
    expand_list(value, &item_lines, &source, &written, "", out, errors);
}

/// The items of a `List` (or `*List`), and of the lists among them, as
/// kubectl's resource builder flattens them (`FlattenListVisitor`).
/// `item_lines` are the lines of the top-level list's items; nested items take
/// the line of the item that holds them. Depth is bounded by the document's.
fn expand_list(
    value: Value,
    item_lines: &[usize],
    source: &Source,
    written: &Written,
    within: &str,
    out: &mut Vec<Resource>,
    errors: &mut Vec<ResourceError>,
) {
    let Value::Object(mut map) = value else {
        return;
    };
    let items = match map.remove("items") {
        Some(Value::Array(items)) => items,
        Some(Value::Null) => Vec::new(),
        _ => {
            errors.push(ResourceError {
                source: source.clone(),
                message: format!("{within}a List's `items` must be a list of objects"),
            });
            return;
        }
    };
    let lines_match = item_lines.len() == items.len();
    for (i, item) in items.into_iter().enumerate() {
        let item_source = Source { line: if lines_match { item_lines[i] } else { source.line }, ..source.clone() };
        let label = format!("{within}item {} of the List: ", i + 1);
        let item_written = Written { prefix: format!("{}/items/{i}", written.prefix), ..written.clone() };
        if is_list(&item) {
            expand_list(item, &[], &item_source, &item_written, &label, out, errors);
            continue;
        }
        match resource(item, item_source.clone(), item_written) {
            Ok(r) => out.push(r),
            Err(message) => errors.push(ResourceError { source: item_source, message: format!("{label}{message}") }),
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

fn resource(value: Value, source: Source, written: Written) -> Result<Resource, String> {
    if !value.is_object() {
        return Err(format!("not a Kubernetes object: the document is {}", type_name(&value)));
    }
    let kind = string_field(&value, "kind")?
        .filter(|k| !k.is_empty())
        .ok_or("not a Kubernetes object: no `kind`")?
        .to_string();
    check_kind(&kind)?;
    let api_version = string_field(&value, "apiVersion")?
        .filter(|k| !k.is_empty())
        .ok_or_else(|| format!("{kind} has no `apiVersion`"))?
        .to_string();
    check_api_version(&api_version).map_err(|e| format!("{kind}: {e}"))?;
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
    let (json, tape) = Tape::write(&value);
    Ok(Resource {
        api_version,
        kind,
        namespace,
        name,
        source,
        json: json.into(),
        tape: Arc::new(tape),
        written: Some(written),
    })
}

/// One DNS label's characters: `[a-z0-9]([-a-z0-9]*[a-z0-9])?`.
fn is_label(label: &str) -> bool {
    let b = label.as_bytes();
    !b.is_empty()
        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// RFC 1035 label: a label that starts with a letter, at most 63 characters.
fn is_dns1035_label(s: &str) -> bool {
    s.len() <= 63 && s.as_bytes().first().is_some_and(u8::is_ascii_lowercase) && is_label(s)
}

/// RFC 1123 subdomain: dot-separated labels, at most 253 characters.
fn is_dns1123_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_label)
}

/// A kind as the API can serve it: CustomResourceDefinition validation
/// (`k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/validation`,
/// `ValidateCustomResourceDefinitionNames`: the kind "may have mixed case, but
/// should otherwise match" an RFC 1035 label), which every built-in kind
/// meets too. Anything else (a stray space, a Unicode break) is no kind a
/// rule would recognise, so it is an input error instead of an object that
/// silently matches no rule.
fn check_kind(kind: &str) -> Result<(), String> {
    if is_dns1035_label(&kind.to_ascii_lowercase()) {
        return Ok(());
    }
    Err(format!(
        "`kind` {kind:?} is not a valid Kubernetes kind (letters, digits and inner hyphens, such as Deployment)"
    ))
}

/// `apiVersion` is `VERSION` (the core group) or `GROUP/VERSION`, the group an
/// RFC 1123 subdomain and the version an RFC 1035 label, as CRD validation
/// requires of `spec.group` and `spec.versions[].name`.
fn check_api_version(api_version: &str) -> Result<(), String> {
    let (group, version) = match api_version.split_once('/') {
        Some((g, v)) => (Some(g), v),
        None => (None, api_version),
    };
    if group.is_none_or(is_dns1123_subdomain) && is_dns1035_label(version) {
        return Ok(());
    }
    Err(format!("`apiVersion` {api_version:?} is not a valid API version (GROUP/VERSION, such as apps/v1, or v1)"))
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
    fn lists_in_lists_are_expanded() {
        let (r, e) = load(
            "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: List\n  items:\n  - apiVersion: v1\n    kind: List\n    items:\n    - {apiVersion: v1, kind: Pod, metadata: {name: deep}}\n- {apiVersion: v1, kind: Service, metadata: {name: s}}\n",
        );
        assert!(e.is_empty(), "{e:?}");
        let got: Vec<_> = r.iter().map(|r| (r.kind.as_str(), r.name.as_str(), r.source.line)).collect();
        assert_eq!(got, [("Pod", "deep", 4), ("Service", "s", 11)]);
        let (_, e) = load("apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: List, items: [{kind: Pod}]}\n");
        assert_eq!(e[0].message, "item 1 of the List: item 1 of the List: Pod has no `apiVersion`");
    }

    #[test]
    fn malformed_kinds_and_api_versions_are_errors() {
        // (A raw U+2028 never gets this far: the document reader refuses it. Escaped, it does.)
        for bad in [r#""Pod\u2028""#, r#""Pod ""#, "Po d", "Pod-", "1Pod", "Pód", r#""Pod\t""#, "Pod.v1"] {
            let (r, e) = load(&format!("apiVersion: v1\nkind: {bad}\nmetadata: {{name: p}}\n"));
            assert!(r.is_empty(), "{bad:?}");
            assert!(e[0].message.contains("not a valid Kubernetes kind"), "{bad:?}: {e:?}");
        }
        for bad in ["v1 ", "V1", "apps/", "/v1", "apps/v1/x", "Apps/v1", "apps..io/v1", "apps/1"] {
            let (r, e) = load(&format!("apiVersion: {}\nkind: Pod\nmetadata: {{name: p}}\n", serde_json::json!(bad)));
            assert!(r.is_empty(), "{bad:?}");
            assert!(e[0].message.contains("not a valid API version"), "{bad:?}: {e:?}");
        }
        for kind in ["Pod", "pod", "K8sRequiredLabels", "Cilium-Policy"] {
            let (r, e) = load(&format!("apiVersion: v1\nkind: {kind}\nmetadata: {{name: p}}\n"));
            assert_eq!(r.len(), 1, "{kind}: {e:?}");
        }
        for good in ["v1", "apps/v1", "networking.k8s.io/v1", "cilium.io/v2alpha1", "x-y.example.com/v1beta1"] {
            let (r, e) = load(&format!("apiVersion: {good}\nkind: CiliumNetworkPolicy\nmetadata: {{name: p}}\n"));
            assert_eq!(r.len(), 1, "{good}: {e:?}");
        }
    }

    #[test]
    fn findings_in_list_items_are_placed_with_one_reading_of_the_document() {
        let (r, e) = load(
            "# head\napiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Pod\n  metadata: {name: a}\n  spec:\n    containers:\n    - name: c\n      image: x\n- {apiVersion: v1, kind: Pod, metadata: {name: b}}\n---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: d\n",
        );
        assert!(e.is_empty(), "{e:?}");
        let placed = |r: &Resource, path: &str| {
            let s = r.source_of(path);
            (s.line, s.column)
        };
        // Before any finding, no document has been read for positions.
        assert!(r.iter().all(|r| r.written.as_ref().is_some_and(|w| w.locator.get().is_none())));
        assert_eq!(placed(&r[0], "/spec/containers/0/image"), (11, Some(7)));
        assert_eq!(placed(&r[0], "/spec/containers/0/securityContext"), (10, Some(7)));
        assert_eq!(placed(&r[0], ""), (5, Some(3)));
        assert_eq!(placed(&r[1], "/metadata/name"), (12, Some(42)));
        assert_eq!(placed(&r[1], "/spec"), (12, Some(3)));
        assert_eq!(placed(&r[2], "/metadata/name"), (17, Some(3)));
        let (w0, w1, w2) =
            (r[0].written.as_ref().unwrap(), r[1].written.as_ref().unwrap(), r[2].written.as_ref().unwrap());
        // The items of the List share the one index of their document; the next document has its own.
        assert!(Arc::ptr_eq(&w0.locator, &w1.locator) && w0.locator.get().is_some_and(Option::is_some));
        assert!(!Arc::ptr_eq(&w0.locator, &w2.locator));
        // Copies for another run share nothing read yet, but List items still share.
        let copies = unlocated_copies(&r);
        let (c0, c1) = (copies[0].written.as_ref().unwrap(), copies[1].written.as_ref().unwrap());
        assert!(Arc::ptr_eq(&c0.locator, &c1.locator) && c0.locator.get().is_none());
        assert!(!Arc::ptr_eq(&c0.locator, &w0.locator));
        assert_eq!(placed(&copies[1], "/metadata/name"), (12, Some(42)));
        // A resource read from no text keeps its own source.
        let bare = Resource { written: None, ..r[2].clone() };
        assert_eq!(bare.source_of("/metadata/name"), r[2].source);
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
