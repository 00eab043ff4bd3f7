//! Digest pinning of container images: `nginx:1.27` becomes
//! `nginx:1.27@sha256:…`, so that what runs is what was checked.
//!
//! Three views of the same fields:
//! - [`image_sites`]: every container image of one of the nine pod-bearing
//!   kinds, with its JSON pointer (the pod spec sits where
//!   `palisade_sdk::workload` finds it; the kind is matched exactly and
//!   `apiVersion` is not looked at, as there).
//! - [`pin_patch`]: the RFC 6902 patch an admission webhook (`/mutate`)
//!   returns: a `test` and a `replace` for each image pinned, nothing else.
//! - [`pin_text`]: the same for manifest text (`palisade check --pin`),
//!   without re-serialising: `@sha256:…` is inserted right after the image
//!   scalar and every other byte (comments, key order, quoting, CRLF, BOM) is
//!   left as it was. A scalar is edited only when the text at the parser's
//!   position reads exactly as its value; anything else (block scalars,
//!   escapes, multi-line scalars, anchors, aliases, merge keys, duplicate
//!   keys) is reported in [`PinnedText::skipped`] with its line, never guessed.
//!
//! Documents are cut at `---` lines and numbered as [`crate::documents`]
//! numbers them, so a document number here names the same document there.

use std::collections::HashMap;
use std::fmt;

use serde_json::{Map, Number, Value};
use yaml_rust2::parser::{Event, Parser, Tag};
use yaml_rust2::scanner::TScalarStyle;

/// Container lists of a pod spec, in the order Kubernetes' `visitContainers`
/// walks them (as `Workload::containers` does).
pub const CONTAINER_LISTS: [&str; 3] = ["initContainers", "containers", "ephemeralContainers"];

/// JSON pointer of the pod spec of a pod-bearing kind; `None` for other kinds.
pub fn pod_spec_pointer(kind: &str) -> Option<&'static str> {
    match kind {
        "Pod" => Some("/spec"),
        "PodTemplate" => Some("/template/spec"),
        "ReplicationController" | "ReplicaSet" | "Deployment" | "DaemonSet" | "StatefulSet" | "Job" => {
            Some("/spec/template/spec")
        }
        "CronJob" => Some("/spec/jobTemplate/spec/template/spec"),
        _ => None,
    }
}

/// One container image and where it is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSite {
    /// RFC 6901 pointer of the `image` field, e.g. `/spec/template/spec/containers/0/image`;
    /// in manifest text, relative to the `List` item when [`ImageSite::item`] is set.
    pub pointer: String,
    /// The container's `name` (empty when it has none).
    pub container: String,
    /// `initContainers`, `containers` or `ephemeralContainers`.
    pub list: &'static str,
    pub image: String,
    /// In manifest text, the 0-based index of the `items` entry of a `List`
    /// document the object is (`/items/N`); `None` for an object that is the
    /// whole document, and always `None` from [`image_sites`].
    pub item: Option<usize>,
    /// The object's `metadata.namespace`, which chooses the trust policy.
    pub namespace: Option<String>,
}

fn namespace_of(object: &Value) -> Option<String> {
    object.pointer("/metadata/namespace").and_then(Value::as_str).filter(|n| !n.is_empty()).map(str::to_string)
}

/// Every container of a pod-bearing object that has an `image` other than
/// null: (pointer of the image, container name, list, image value).
fn image_fields(object: &Value) -> Vec<(String, String, &'static str, &Value)> {
    let Some(spec_path) = object.get("kind").and_then(Value::as_str).and_then(pod_spec_pointer) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let Some(spec) = object.pointer(spec_path) else {
        return out;
    };
    for list in CONTAINER_LISTS {
        let Some(containers) = spec.get(list).and_then(Value::as_array) else {
            continue;
        };
        for (n, container) in containers.iter().enumerate() {
            let Some(image) = container.get("image").filter(|i| !i.is_null()) else {
                continue;
            };
            let name = container.get("name").and_then(Value::as_str).unwrap_or_default().to_string();
            out.push((format!("{spec_path}/{list}/{n}/image"), name, list, image));
        }
    }
    out
}

/// The images of an object of one of the nine pod-bearing kinds, init
/// containers first; empty for any other kind (including `List`). An image
/// that is not a string is left out.
pub fn image_sites(object: &Value) -> Vec<ImageSite> {
    image_fields(object)
        .into_iter()
        .filter_map(|(pointer, container, list, image)| {
            let image = image.as_str()?.to_string();
            Some(ImageSite { pointer, container, list, image, item: None, namespace: namespace_of(object) })
        })
        .collect()
}

/// Whether an image reference already names a digest (`name@sha256:…`).
pub fn is_pinned(image: &str) -> bool {
    image.contains('@')
}

/// Whether `digest` is `sha256:` and 64 lowercase hex digits.
pub fn is_sha256_digest(digest: &str) -> bool {
    digest
        .strip_prefix("sha256:")
        .is_some_and(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
}

/// The JSON Patch (RFC 6902) that pins the images of `object`, for an
/// admission webhook's response.
///
/// An image is offered to `pin` when it names no digest yet and, on UPDATE
/// (`old_object` given), differs from the image at the same pointer of the old
/// object: pinning an unchanged image would restart its containers. When `pin`
/// returns a well-formed `sha256:` digest the patch gets a `test` of the image
/// as it was and a `replace` with `image@digest`; a digest of any other form
/// is ignored. Nothing else is ever emitted.
pub fn pin_patch(
    object: &Value,
    old_object: Option<&Value>,
    pin: &mut dyn FnMut(&ImageSite) -> Option<String>,
) -> Vec<Value> {
    let mut ops = Vec::new();
    for site in image_sites(object) {
        if site.image.is_empty() || is_pinned(&site.image) {
            continue;
        }
        if old_object.is_some_and(|old| old.pointer(&site.pointer).and_then(Value::as_str) == Some(&site.image)) {
            continue;
        }
        let Some(digest) = pin(&site).filter(|d| is_sha256_digest(d)) else {
            continue;
        };
        let pinned = format!("{}@{digest}", site.image);
        ops.push(serde_json::json!({"op": "test", "path": site.pointer, "value": site.image}));
        ops.push(serde_json::json!({"op": "replace", "path": site.pointer, "value": pinned}));
    }
    ops
}

/// Manifest text with its images pinned, and what was and was not done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinnedText {
    /// The input with `@sha256:…` inserted after each pinned image.
    pub text: String,
    pub pinned: Vec<PinnedAt>,
    /// Images (or unreadable documents) left as they were, with the reason.
    pub skipped: Vec<Skipped>,
    /// Images that already named a digest.
    pub already_pinned: usize,
}

/// An image that was pinned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinnedAt {
    /// 1-based line of the image scalar.
    pub line: usize,
    /// 1-based document of the file.
    pub document: usize,
    /// 0-based `items` index within a `List` document.
    pub item: Option<usize>,
    /// Pointer of the image within the object (the item, for a `List`).
    pub pointer: String,
    pub from: String,
    pub to: String,
}

/// An image, or a whole document, that was not pinned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// 1-based line: the image scalar's, or the nearest enclosing node's.
    pub line: usize,
    /// 1-based document of the file.
    pub document: usize,
    pub item: Option<usize>,
    /// Pointer of the image within the object; for a document that could not
    /// be read, empty or the pointer (in the document) of the duplicated key.
    pub pointer: String,
    pub reason: SkipReason,
}

/// Why an image in manifest text was not pinned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    /// The document could not be read as YAML; none of its images were looked at.
    Unreadable(String),
    /// The image is empty, or not a string.
    NotAnImage,
    /// The document has a NEL, LS or PS character, which kubectl reads as a
    /// line break and this parser does not.
    LineBreaks,
    /// The value comes from an alias or a merge key, not from text at this place.
    NotWrittenHere,
    /// The scalar, or a node around it, has an anchor: editing it would change
    /// its aliases too.
    Anchored,
    /// A key is written more than once in a mapping, on these lines: kubectl
    /// refuses the document, and none of its images are pinned.
    Duplicate(Vec<usize>),
    /// A literal (`|`) or folded (`>`) block scalar.
    BlockScalar,
    /// A tag other than `!!str`.
    Tagged(String),
    /// The text at the scalar's position does not read as its value on one
    /// line (escapes, quotes inside, a multi-line scalar).
    NotVerbatim,
    /// `pin` gave no digest.
    NoDigest,
    /// `pin` gave something other than `sha256:` and 64 lowercase hex digits.
    BadDigest(String),
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::Unreadable(e) => write!(f, "the document cannot be read: {e}"),
            SkipReason::NotAnImage => f.write_str("the image is empty or not a string"),
            SkipReason::LineBreaks => {
                f.write_str("the document has a NEL, LS or PS character, a line break to kubectl but not here")
            }
            SkipReason::NotWrittenHere => f.write_str("the image comes from an alias or a merge key"),
            SkipReason::Anchored => {
                f.write_str("the image is inside an anchored node; editing it would change its aliases")
            }
            SkipReason::Duplicate(lines) => {
                let lines: Vec<String> = lines.iter().map(usize::to_string).collect();
                write!(f, "the document has a duplicate key (lines {}); kubectl refuses it", lines.join(", "))
            }
            SkipReason::BlockScalar => f.write_str("the image is a block scalar (| or >)"),
            SkipReason::Tagged(tag) => write!(f, "the image has the tag {tag}"),
            SkipReason::NotVerbatim => {
                f.write_str("the image is not written verbatim on one line (escapes or a multi-line scalar)")
            }
            SkipReason::NoDigest => f.write_str("no digest was found for the image"),
            SkipReason::BadDigest(d) => write!(f, "{d:?} is not a sha256 digest"),
        }
    }
}

/// Pin the images of every pod-bearing object in multi-document YAML text
/// (`List` items included) by inserting `@digest` after each image scalar.
/// `pin` is asked, with the 1-based document number, only for images that
/// can be edited in place; it returns `sha256:…` or `None`.
pub fn pin_text(text: &str, pin: &mut dyn FnMut(&ImageSite, usize) -> Option<String>) -> PinnedText {
    let bom = if text.starts_with('\u{feff}') { '\u{feff}'.len_utf8() } else { 0 };
    let body = &text[bom..];
    let mut out = PinnedText { text: String::new(), pinned: Vec::new(), skipped: Vec::new(), already_pinned: 0 };
    // (byte offset in `text`, what to insert)
    let mut inserts: Vec<(usize, String)> = Vec::new();
    for chunk in split(body) {
        let chunk_text = &body[chunk.start..chunk.end];
        let document = chunk.index;
        let global_line = |local: usize| chunk.first_line + local.saturating_sub(1);
        let doc = match parse_document(chunk_text) {
            Ok(Some(doc)) => doc,
            Ok(None) => continue,
            Err((line, pointer, reason)) => {
                let reason = match reason {
                    SkipReason::Duplicate(lines) => SkipReason::Duplicate(lines.into_iter().map(global_line).collect()),
                    other => other,
                };
                out.skipped.push(Skipped { line: global_line(line), document, item: None, pointer, reason });
                continue;
            }
        };
        let odd_breaks = chunk_text.contains(['\u{85}', '\u{2028}', '\u{2029}']);
        let ascii = chunk_text.is_ascii();
        for (item, prefix, object) in objects(&doc.value, None, String::new()) {
            let item_pointer = item.map(|i| format!("/items/{i}")).unwrap_or_default();
            for (pointer, container, list, image) in image_fields(object) {
                let pointer = format!("{prefix}{pointer}");
                let in_document = format!("{item_pointer}{pointer}");
                let line = global_line(doc.line_of(&in_document));
                let mut skip = |reason| {
                    out.skipped.push(Skipped { line, document, item, pointer: pointer.clone(), reason });
                };
                let Some(image) = image.as_str().filter(|i| !i.is_empty()) else {
                    skip(SkipReason::NotAnImage);
                    continue;
                };
                if is_pinned(image) {
                    out.already_pinned += 1;
                    continue;
                }
                if odd_breaks {
                    skip(SkipReason::LineBreaks);
                    continue;
                }
                let at = match doc.insertion_point(chunk_text, ascii, &in_document, image) {
                    Ok(at) => chunk.start + at,
                    Err(reason) => {
                        skip(reason);
                        continue;
                    }
                };
                let site = ImageSite {
                    pointer: pointer.clone(),
                    container,
                    list,
                    image: image.to_string(),
                    item,
                    namespace: namespace_of(object),
                };
                match pin(&site, document) {
                    None => skip(SkipReason::NoDigest),
                    Some(d) if !is_sha256_digest(&d) => skip(SkipReason::BadDigest(d)),
                    Some(digest) => {
                        inserts.push((bom + at, format!("@{digest}")));
                        out.pinned.push(PinnedAt {
                            line,
                            document,
                            item,
                            pointer,
                            from: site.image,
                            to: format!("{image}@{digest}"),
                        });
                    }
                }
            }
        }
    }
    inserts.sort_by_key(|(at, _)| *at);
    let mut result = String::with_capacity(text.len() + inserts.iter().map(|(_, s)| s.len()).sum::<usize>());
    let mut from = 0;
    for (at, insert) in inserts {
        result.push_str(&text[from..at]);
        result.push_str(&insert);
        from = at;
    }
    result.push_str(&text[from..]);
    out.text = result;
    out
}

/// `kind` ending in `List` with `items`, as `resources` expands it.
fn is_list(value: &Value) -> bool {
    value.get("kind").and_then(Value::as_str).is_some_and(|k| k.ends_with("List")) && value.get("items").is_some()
}

/// The objects of a document: itself, or the items of a `List` (nested lists
/// flattened): (top-level item, pointer prefix within that item, object).
fn objects(value: &Value, item: Option<usize>, prefix: String) -> Vec<(Option<usize>, String, &Value)> {
    if !is_list(value) {
        return vec![(item, prefix, value)];
    }
    let Some(items) = value.get("items").and_then(Value::as_array) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, v) in items.iter().enumerate() {
        match item {
            None => out.extend(objects(v, Some(i), String::new())),
            Some(_) => out.extend(objects(v, item, format!("{prefix}/items/{i}"))),
        }
    }
    out
}

// ---------------------------------------------------------------------------
// Cutting the text into documents, as `documents::split` does.

/// The lines of `text` as kubectl's reader breaks them (LF, CRLF, CR, NEL):
/// (start, end of content, end including the break).
fn lines(text: &str) -> Vec<(usize, usize, usize)> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let end = match c {
            '\n' | '\u{85}' => i + c.len_utf8(),
            '\r' if chars.peek().is_some_and(|&(_, n)| n == '\n') => {
                chars.next();
                i + 2
            }
            '\r' => i + 1,
            _ => continue,
        };
        out.push((start, i, end));
        start = end;
    }
    if start < text.len() {
        out.push((start, text.len(), text.len()));
    }
    out
}

fn is_separator(line: &str) -> bool {
    line.strip_prefix("---").is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t']))
}

struct Chunk {
    /// 1-based document number.
    index: usize,
    first_line: usize,
    start: usize,
    end: usize,
}

/// Cut at `---` lines; a leading part with only directives goes with the
/// document after it, and a part with nothing in it is not numbered.
fn split(text: &str) -> Vec<Chunk> {
    let lines = lines(text);
    let mut starts = vec![(0usize, 0usize)]; // (line index, byte offset)
    for (i, &(s, e, _)) in lines.iter().enumerate().skip(1) {
        if is_separator(&text[s..e]) {
            starts.push((i, s));
        }
    }
    let mut chunks = Vec::new();
    let mut carry: Option<(usize, usize)> = None;
    for (n, &(first, start)) in starts.iter().enumerate() {
        let (last, end) = starts.get(n + 1).map_or((lines.len(), text.len()), |&(l, s)| (l, s));
        let body: Vec<&str> = lines[first..last].iter().map(|&(s, e, _)| &text[s..e]).collect();
        let has_content = body.iter().any(|l| {
            let t = l.trim();
            !(t.is_empty() || t.starts_with('#') || is_separator(l) || l.starts_with('%') || t == "...")
        });
        let has_directive = body.iter().any(|l| l.starts_with('%'));
        let opens = body.first().is_some_and(|l| is_separator(l));
        let (first, start) = carry.take().unwrap_or((first, start));
        if !has_content && has_directive {
            carry = Some((first, start));
            continue;
        }
        if has_content || opens {
            chunks.push(Chunk { index: chunks.len() + 1, first_line: first + 1, start, end });
        }
    }
    chunks
}

// ---------------------------------------------------------------------------
// Reading one document: its value, and how each image field is written.

const MAX_DEPTH: usize = 100;
const MAX_NODES: usize = 1_000_000;

/// How the value of an `image` key is written.
#[derive(Debug)]
struct Written {
    /// Char index of the node in the document text, and its 1-based line.
    index: usize,
    line: usize,
    /// Text and style of a scalar; `None` for an alias or a collection.
    scalar: Option<(String, TScalarStyle)>,
    tag: Option<String>,
    /// The node or one around it has an anchor.
    anchored: bool,
}

struct Document {
    value: Value,
    /// Pointer → how it is written, for the values of every `image` key.
    images: HashMap<String, Vec<Written>>,
    /// Pointer → line, for every collection and alias.
    lines: HashMap<String, usize>,
}

impl Document {
    /// The line of the node at `pointer`, or of the nearest node around it.
    fn line_of(&self, pointer: &str) -> usize {
        if let Some(w) = self.images.get(pointer).and_then(|w| w.first()) {
            return w.line;
        }
        let mut p = pointer;
        loop {
            if let Some(line) = self.lines.get(p) {
                return *line;
            }
            match p.rfind('/') {
                Some(i) => p = &p[..i],
                None => return 1,
            }
        }
    }

    /// Byte offset in `text` (the document's; `ascii` if it is all ASCII) at
    /// which `@digest` goes for the image at `pointer`.
    fn insertion_point(&self, text: &str, ascii: bool, pointer: &str, image: &str) -> Result<usize, SkipReason> {
        let written = match self.images.get(pointer).map(Vec::as_slice) {
            None | Some([]) => return Err(SkipReason::NotWrittenHere),
            Some([w]) => w,
            Some(many) => return Err(SkipReason::Duplicate(many.iter().map(|w| w.line).collect())),
        };
        if written.anchored {
            return Err(SkipReason::Anchored);
        }
        let Some((value, style)) = &written.scalar else {
            return Err(SkipReason::NotWrittenHere);
        };
        if let Some(tag) = written.tag.as_ref().filter(|t| *t != "!!str") {
            return Err(SkipReason::Tagged(tag.clone()));
        }
        if value != image {
            return Err(SkipReason::NotVerbatim);
        }
        let at = if ascii {
            Some(written.index).filter(|&i| i <= text.len())
        } else {
            text.char_indices().map(|(b, _)| b).chain([text.len()]).nth(written.index)
        };
        let (at, rest) = at.and_then(|at| Some((at, text.get(at..)?))).ok_or(SkipReason::NotVerbatim)?;
        let inside = match style {
            TScalarStyle::Literal | TScalarStyle::Folded => return Err(SkipReason::BlockScalar),
            TScalarStyle::Plain => rest
                .strip_prefix(value.as_str())
                .filter(|after| {
                    after.chars().next().is_none_or(|c| matches!(c, ' ' | '\t' | '\r' | '\n' | '#' | ',' | ']' | '}'))
                })
                .map(|_| 0),
            TScalarStyle::SingleQuoted | TScalarStyle::DoubleQuoted => {
                let quote = if *style == TScalarStyle::SingleQuoted { '\'' } else { '"' };
                let clean = !value.contains([quote, '\\', '\n', '\r']);
                rest.strip_prefix(quote)
                    .and_then(|r| r.strip_prefix(value.as_str()))
                    .filter(|r| clean && r.starts_with(quote))
                    .map(|_| 1)
            }
        };
        inside.map(|q| at + q + value.len()).ok_or(SkipReason::NotVerbatim)
    }
}

enum Key {
    /// The key and its line.
    Plain(String, usize),
    Merge,
}

enum Frame {
    Seq { items: Vec<Value>, anchor: usize },
    Map { entries: Vec<(String, Value, usize)>, merges: Vec<Value>, key: Option<Key>, anchor: usize },
}

impl Frame {
    fn anchor(&self) -> usize {
        match self {
            Frame::Seq { anchor, .. } | Frame::Map { anchor, .. } => *anchor,
        }
    }
}

struct Builder {
    stack: Vec<Frame>,
    anchors: HashMap<usize, (Value, usize)>,
    nodes: usize,
    root: Option<Value>,
    images: HashMap<String, Vec<Written>>,
    lines: HashMap<String, usize>,
}

/// Why a document cannot be read: line, pointer of the offending key (or
/// empty), reason.
type ReadError = (usize, String, SkipReason);

fn unreadable(line: usize, message: impl Into<String>) -> ReadError {
    (line, String::new(), SkipReason::Unreadable(message.into()))
}

fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

impl Builder {
    /// Pointer of the node about to be placed; `None` where a key is expected.
    fn here(&self) -> Option<String> {
        let mut p = String::new();
        for frame in &self.stack {
            p.push('/');
            match frame {
                Frame::Seq { items, .. } => p.push_str(&items.len().to_string()),
                Frame::Map { key: Some(Key::Plain(k, _)), .. } => p.push_str(&escape(k)),
                Frame::Map { key: Some(Key::Merge), .. } => p.push_str("<<"),
                Frame::Map { key: None, .. } => return None,
            }
        }
        Some(p)
    }

    fn is_image_value(&self) -> bool {
        matches!(self.stack.last(), Some(Frame::Map { key: Some(Key::Plain(k, _)), .. }) if k == "image")
    }

    fn count(&mut self, n: usize, line: usize) -> Result<(), ReadError> {
        self.nodes += n;
        if self.nodes > MAX_NODES {
            return Err(unreadable(line, format!("the document expands to more than {MAX_NODES} nodes")));
        }
        Ok(())
    }

    fn open(&mut self, frame: Frame, line: usize) -> Result<(), ReadError> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(unreadable(line, format!("the document nests deeper than {MAX_DEPTH} levels")));
        }
        self.count(1, line)?;
        if let Some(p) = self.here() {
            self.lines.insert(p, line);
        }
        self.stack.push(frame);
        Ok(())
    }

    fn finish(&mut self, value: Value, anchor: usize, line: usize) -> Result<(), ReadError> {
        if anchor > 0 {
            let size = crate::documents::count_nodes(&value);
            self.anchors.insert(anchor, (value.clone(), size));
        }
        self.place(value, line)
    }

    fn place(&mut self, value: Value, line: usize) -> Result<(), ReadError> {
        match self.stack.last_mut() {
            None => self.root = Some(value),
            Some(Frame::Seq { items, .. }) => items.push(value),
            Some(Frame::Map { entries, merges, key, .. }) => match key.take() {
                None => {
                    let k = match value {
                        Value::String(s) => s,
                        Value::Number(n) => n.to_string(),
                        Value::Bool(b) => b.to_string(),
                        Value::Null => return Err(unreadable(line, "a mapping key cannot be null")),
                        _ => return Err(unreadable(line, "a mapping or sequence cannot be a mapping key")),
                    };
                    *key = Some(Key::Plain(k, line));
                }
                Some(Key::Plain(k, at)) => entries.push((k, value, at)),
                Some(Key::Merge) => merges.push(value),
            },
        }
        Ok(())
    }

    fn close_map(&mut self, line: usize) -> Result<(), ReadError> {
        let Some(Frame::Map { entries, merges, anchor, .. }) = self.stack.pop() else {
            return Err(unreadable(line, "unbalanced mapping end"));
        };
        // A duplicate key makes kubectl (and `documents`) refuse the document.
        let mut map = Map::new();
        let mut first_line = HashMap::new();
        for (k, v, at) in entries {
            if let Some(first) = first_line.get(&k) {
                let pointer = format!("{}/{}", self.here().unwrap_or_default(), escape(&k));
                return Err((*first, pointer, SkipReason::Duplicate(vec![*first, at])));
            }
            first_line.insert(k.clone(), at);
            map.insert(k, v);
        }
        let bad_merge = || unreadable(line, "a merge key (<<) takes a mapping or a list of mappings");
        for merged in merges {
            let sources = match merged {
                Value::Object(o) => vec![o],
                Value::Array(list) => list
                    .into_iter()
                    .map(|v| if let Value::Object(o) = v { Ok(o) } else { Err(bad_merge()) })
                    .collect::<Result<_, _>>()?,
                _ => return Err(bad_merge()),
            };
            for source in sources {
                for (k, v) in source {
                    map.entry(k).or_insert(v);
                }
            }
        }
        self.finish(Value::Object(map), anchor, line)
    }
}

fn tag_name(tag: &Tag) -> String {
    if tag.handle == "tag:yaml.org,2002:" {
        format!("!!{}", tag.suffix)
    } else {
        format!("{}{}", tag.handle, tag.suffix)
    }
}

/// Read one document (the text between two `---` lines). `Ok(None)` for an
/// empty one; errors carry the 1-based line within `text`.
fn parse_document(text: &str) -> Result<Option<Document>, ReadError> {
    let mut parser = Parser::new_from_str(text);
    let mut b = Builder {
        stack: Vec::new(),
        anchors: HashMap::new(),
        nodes: 0,
        root: None,
        images: HashMap::new(),
        lines: HashMap::new(),
    };
    let mut documents = 0;
    loop {
        let (event, mark) =
            parser.next_token().map_err(|e| unreadable(e.marker().line(), format!("invalid YAML: {}", e.info())))?;
        let line = mark.line();
        match event {
            Event::StreamStart | Event::Nothing | Event::DocumentEnd => {}
            Event::StreamEnd => break,
            Event::DocumentStart => {
                documents += 1;
                if documents > 1 {
                    return Err(unreadable(line, "a second document without a `---` line before it"));
                }
            }
            Event::Alias(id) => {
                let (value, size) =
                    b.anchors.get(&id).cloned().ok_or_else(|| unreadable(line, "alias to an unknown anchor"))?;
                b.count(size, line)?;
                if let Some(p) = b.here() {
                    if b.is_image_value() {
                        let w = Written { index: mark.index(), line, scalar: None, tag: None, anchored: false };
                        b.images.entry(p.clone()).or_default().push(w);
                    }
                    b.lines.insert(p, line);
                }
                b.place(value, line)?;
            }
            Event::Scalar(text, style, anchor, tag) => {
                b.count(1, line)?;
                let expecting_key = matches!(b.stack.last(), Some(Frame::Map { key: None, .. }));
                if expecting_key && style == TScalarStyle::Plain && text == "<<" && tag.is_none() {
                    if let Some(Frame::Map { key, .. }) = b.stack.last_mut() {
                        *key = Some(Key::Merge);
                    }
                    continue;
                }
                if b.is_image_value()
                    && let Some(p) = b.here()
                {
                    let anchored = anchor > 0 || b.stack.iter().any(|f| f.anchor() > 0);
                    let tag = tag.as_ref().map(tag_name);
                    let w = Written { index: mark.index(), line, scalar: Some((text.clone(), style)), tag, anchored };
                    b.images.entry(p).or_default().push(w);
                }
                let value = resolve_scalar(text, style, tag.as_ref());
                b.finish(value, anchor, line)?;
            }
            Event::SequenceStart(anchor, _) => b.open(Frame::Seq { items: Vec::new(), anchor }, line)?,
            Event::SequenceEnd => {
                let Some(Frame::Seq { items, anchor }) = b.stack.pop() else {
                    return Err(unreadable(line, "unbalanced sequence end"));
                };
                b.finish(Value::Array(items), anchor, line)?;
            }
            Event::MappingStart(anchor, _) => {
                b.open(Frame::Map { entries: Vec::new(), merges: Vec::new(), key: None, anchor }, line)?;
            }
            Event::MappingEnd => b.close_map(line)?,
        }
    }
    Ok(match b.root {
        None | Some(Value::Null) => None,
        Some(value) => Some(Document { value, images: b.images, lines: b.lines }),
    })
}

/// A scalar's type as kubectl's go-yaml v2 reads it, near enough to tell
/// strings from the rest (the exact numbers do not matter here): quoted and
/// `!!str` scalars are strings; plain null words, YAML 1.1 booleans and
/// numbers are not.
fn resolve_scalar(text: String, style: TScalarStyle, tag: Option<&Tag>) -> Value {
    let core = tag.filter(|t| t.handle == "tag:yaml.org,2002:" || t.handle == "!!").map(|t| t.suffix.as_str());
    if matches!(core, Some("str" | "binary" | "timestamp")) || (tag.is_some() && core.is_none()) {
        return Value::String(text);
    }
    if style != TScalarStyle::Plain && core.is_none() {
        return Value::String(text);
    }
    match text.as_str() {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "y" | "Y" | "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => return Value::Bool(true),
        "n" | "N" | "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            return Value::Bool(false);
        }
        _ => {}
    }
    if text.starts_with(|c: char| c.is_ascii_digit() || matches!(c, '+' | '-' | '.')) {
        let plain: String = text.chars().filter(|c| *c != '_').collect();
        let digits = plain.trim_start_matches(['+', '-']);
        let radix = [("0x", 16), ("0o", 8), ("0b", 2)]
            .into_iter()
            .find_map(|(p, r)| digits.strip_prefix(p).and_then(|d| i64::from_str_radix(d, r).ok()));
        if let Some(n) = plain.parse::<i64>().ok().or(radix) {
            return Value::Number(n.into());
        }
        if let Some(n) = plain.parse::<f64>().ok().and_then(Number::from_f64) {
            return Value::Number(n);
        }
    }
    Value::String(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const DIGEST_A: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

    /// A deterministic stand-in for a registry: a digest made from the image.
    fn fake_digest(image: &str) -> String {
        let mut words = [0u64; 4];
        for (seed, word) in words.iter_mut().enumerate() {
            let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ seed as u64;
            for b in image.bytes() {
                h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
            }
            *word = h;
        }
        format!("sha256:{:016x}{:016x}{:016x}{:016x}", words[0], words[1], words[2], words[3])
    }

    fn apply(object: &Value, ops: &[Value]) -> Value {
        let patch: json_patch::Patch = serde_json::from_value(Value::Array(ops.to_vec())).unwrap();
        let mut doc = object.clone();
        json_patch::patch(&mut doc, &patch).unwrap();
        doc
    }

    fn pin_all(site: &ImageSite) -> Option<String> {
        Some(fake_digest(&site.image))
    }

    fn pinned(image: &str) -> String {
        format!("{image}@{}", fake_digest(image))
    }

    // ----- image_sites and pin_patch -----

    #[test]
    fn sites_in_all_nine_kinds() {
        let pod = json!({"containers": [{"name": "a", "image": "nginx"}]});
        let cases = [
            ("Pod", json!({"kind": "Pod", "spec": pod}), "/spec/containers/0/image"),
            (
                "PodTemplate",
                json!({"kind": "PodTemplate", "template": {"spec": pod}}),
                "/template/spec/containers/0/image",
            ),
            (
                "CronJob",
                json!({"kind": "CronJob", "spec": {"jobTemplate": {"spec": {"template": {"spec": pod}}}}}),
                "/spec/jobTemplate/spec/template/spec/containers/0/image",
            ),
        ];
        for (kind, object, pointer) in cases {
            let sites = image_sites(&object);
            assert_eq!(sites.len(), 1, "{kind}");
            assert_eq!(sites[0].pointer, pointer);
            assert_eq!(object.pointer(pointer), Some(&json!("nginx")));
        }
        for kind in ["ReplicationController", "ReplicaSet", "Deployment", "DaemonSet", "StatefulSet", "Job"] {
            let object = json!({"kind": kind, "spec": {"template": {"spec": pod}}});
            let sites = image_sites(&object);
            assert_eq!(sites.len(), 1, "{kind}");
            assert_eq!(sites[0].pointer, "/spec/template/spec/containers/0/image");
        }
        // Kind matched exactly; no pod spec, a null list, a non-string image: no sites.
        assert!(image_sites(&json!({"kind": "deployment", "spec": {"template": {"spec": pod}}})).is_empty());
        assert!(image_sites(&json!({"kind": "Deployment", "spec": null})).is_empty());
        assert!(image_sites(&json!({"kind": "Pod", "spec": {"containers": null}})).is_empty());
        assert!(
            image_sites(&json!({"kind": "Pod", "spec": {"containers": [{"image": 5}, {"image": null}]}})).is_empty()
        );
    }

    #[test]
    fn deployment_patch() {
        let object = json!({
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"replicas": 2, "template": {"spec": {"containers": [
                {"name": "web", "image": "nginx:1.27"},
                {"name": "proxy", "image": "envoyproxy/envoy:v1.31"}
            ]}}}
        });
        let ops = pin_patch(&object, None, &mut pin_all);
        assert_eq!(ops.len(), 4);
        assert_eq!(
            ops[0],
            json!({"op": "test", "path": "/spec/template/spec/containers/0/image", "value": "nginx:1.27"})
        );
        assert_eq!(ops[1]["op"], "replace");
        let mut expected = object.clone();
        expected["spec"]["template"]["spec"]["containers"][0]["image"] = json!(pinned("nginx:1.27"));
        expected["spec"]["template"]["spec"]["containers"][1]["image"] = json!(pinned("envoyproxy/envoy:v1.31"));
        assert_eq!(apply(&object, &ops), expected);
        // The test operations guard against the object having changed in between.
        let mut changed = object.clone();
        changed["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:1.28");
        let patch: json_patch::Patch = serde_json::from_value(Value::Array(ops)).unwrap();
        assert!(json_patch::patch(&mut changed, &patch).is_err());
    }

    #[test]
    fn cronjob_patch() {
        let object = json!({"kind": "CronJob", "spec": {"schedule": "@daily", "jobTemplate": {"spec": {"template": {
            "spec": {"containers": [{"name": "job", "image": "busybox"}], "restartPolicy": "Never"}}}}}});
        let mut expected = object.clone();
        expected["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["image"] =
            json!(pinned("busybox"));
        assert_eq!(apply(&object, &pin_patch(&object, None, &mut pin_all)), expected);
    }

    #[test]
    fn pod_with_init_and_ephemeral_containers() {
        let object = json!({"kind": "Pod", "spec": {
            "containers": [{"name": "app", "image": "app:1"}],
            "initContainers": [{"name": "init", "image": "init:1"}],
            "ephemeralContainers": [{"name": "debug", "image": "busybox:1.36"}]
        }});
        let sites = image_sites(&object);
        let order: Vec<_> = sites.iter().map(|s| (s.list, s.container.as_str())).collect();
        assert_eq!(order, [("initContainers", "init"), ("containers", "app"), ("ephemeralContainers", "debug")]);
        let mut expected = object.clone();
        expected["spec"]["containers"][0]["image"] = json!(pinned("app:1"));
        expected["spec"]["initContainers"][0]["image"] = json!(pinned("init:1"));
        expected["spec"]["ephemeralContainers"][0]["image"] = json!(pinned("busybox:1.36"));
        assert_eq!(apply(&object, &pin_patch(&object, None, &mut pin_all)), expected);
    }

    #[test]
    fn update_pins_only_changed_images() {
        let old = json!({"kind": "Deployment", "spec": {"template": {"spec": {"containers": [
            {"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}]}}}});
        let mut new = old.clone();
        new["spec"]["template"]["spec"]["containers"][1]["image"] = json!("b:2");
        let mut asked = Vec::new();
        let ops = pin_patch(&new, Some(&old), &mut |s| {
            asked.push(s.image.clone());
            pin_all(s)
        });
        assert_eq!(asked, ["b:2"]);
        let mut expected = new.clone();
        expected["spec"]["template"]["spec"]["containers"][1]["image"] = json!(pinned("b:2"));
        assert_eq!(apply(&new, &ops), expected);
    }

    #[test]
    fn declined_bad_and_already_pinned_images() {
        let already = format!("c:1@{DIGEST_A}");
        let object = json!({"kind": "ReplicaSet", "spec": {"template": {"spec": {"containers": [
            {"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"},
            {"name": "c", "image": already}, {"name": "d", "image": "d:1"}, {"name": "e", "image": ""}]}}}});
        let mut asked = Vec::new();
        let ops = pin_patch(&object, None, &mut |s| {
            asked.push(s.image.clone());
            match s.container.as_str() {
                "a" => None,
                "d" => Some(DIGEST_A.to_uppercase().replace("SHA256", "sha256")),
                _ => pin_all(s),
            }
        });
        assert_eq!(asked, ["a:1", "b:1", "d:1"], "a pinned image and an empty one are not offered");
        let mut expected = object.clone();
        expected["spec"]["template"]["spec"]["containers"][1]["image"] = json!(pinned("b:1"));
        assert_eq!(apply(&object, &ops), expected);
        assert_eq!(ops.len(), 2);
    }

    #[test]
    fn lists_and_other_kinds_have_no_sites() {
        let list = json!({"kind": "List", "items": [{"kind": "Pod", "spec": {"containers": [{"image": "x"}]}}]});
        assert!(image_sites(&list).is_empty());
        assert!(pin_patch(&list, None, &mut pin_all).is_empty());
        assert!(pin_patch(&json!({"kind": "Service"}), None, &mut pin_all).is_empty());
    }

    #[test]
    fn digest_form() {
        assert!(is_sha256_digest(DIGEST_A));
        assert!(!is_sha256_digest(&DIGEST_A[..70]));
        assert!(!is_sha256_digest(&DIGEST_A.replace('a', "A")));
        assert!(!is_sha256_digest(&DIGEST_A.replace("sha256", "sha512")));
        assert!(!is_sha256_digest(&format!("{DIGEST_A}\n")));
    }

    // ----- pin_text -----

    fn pin_text_all(text: &str) -> PinnedText {
        pin_text(text, &mut |s, _| Some(fake_digest(&s.image)))
    }

    /// The text with `@digest` after each listed image (found in order).
    fn expect(text: &str, images: &[&str]) -> String {
        let mut out = String::new();
        let mut rest = text;
        for image in images {
            let at = rest.find(image).unwrap() + image.len();
            out.push_str(&rest[..at]);
            out.push('@');
            out.push_str(&fake_digest(image));
            rest = &rest[at..];
        }
        out.push_str(rest);
        out
    }

    fn reasons(p: &PinnedText) -> Vec<(usize, SkipReason)> {
        p.skipped.iter().map(|s| (s.line, s.reason.clone())).collect()
    }

    #[test]
    fn keeps_comments_quotes_and_order() {
        let text = "# leading comment\n\
                    kind: Deployment   # trailing\n\
                    apiVersion: apps/v1\n\
                    spec:\n  template:\n    spec:\n      containers:\n\
                    \x20       - image: nginx:1.27 # the web server\n\
                    \x20         name: web\n\
                    \x20       - name: sidecar\n\
                    \x20         image: \"envoy:v1\"\n\
                    \x20       - {name: q, image: 'redis:7'}\n\
                    \x20     initContainers:\n\
                    \x20     - name: init\n\
                    \x20       image:   !!str busybox\n";
        let p = pin_text_all(text);
        assert_eq!(p.text, expect(text, &["nginx:1.27", "envoy:v1", "redis:7", "busybox"]));
        assert!(p.skipped.is_empty(), "{:?}", p.skipped);
        let got: Vec<_> = p.pinned.iter().map(|x| (x.line, x.pointer.as_str(), x.document)).collect();
        assert_eq!(
            got,
            [
                (15, "/spec/template/spec/initContainers/0/image", 1),
                (8, "/spec/template/spec/containers/0/image", 1),
                (11, "/spec/template/spec/containers/1/image", 1),
                (12, "/spec/template/spec/containers/2/image", 1),
            ]
        );
        assert_eq!(p.pinned[1].to, pinned("nginx:1.27"));
    }

    #[test]
    fn crlf_bom_and_non_ascii() {
        let text = "\u{feff}kind: Pod\r\nmetadata: {name: \"café\", labels: {ünï: cödé}}\r\nspec:\r\n  containers:\r\n  - image: app:1\r\n    name: a\r\n";
        let p = pin_text_all(text);
        assert_eq!(p.text, expect(text, &["app:1"]));
        assert!(p.text.starts_with('\u{feff}') && p.text.contains("\r\n    name: a\r\n"));
        assert_eq!(p.pinned[0].line, 5);
        // A lone CR is a line break too (as kubectl reads it), `---` lines included.
        let text =
            "kind: Pod\rspec:\r  containers:\r  - image: a:1\r---\rkind: Pod\rspec: {containers: [{image: b:1}]}\r";
        let p = pin_text_all(text);
        assert_eq!(p.text, expect(text, &["a:1", "b:1"]));
        let at: Vec<_> = p.pinned.iter().map(|x| (x.document, x.line)).collect();
        assert_eq!(at, [(1, 4), (2, 7)]);
    }

    #[test]
    fn flow_style_document() {
        let text = "{kind: Pod, spec: {containers: [{name: a, image: nginx:1}, {image: \"b:2\",name: b}]}}\n";
        let p = pin_text_all(text);
        assert_eq!(p.text, expect(text, &["nginx:1", "b:2"]));
    }

    #[test]
    fn multi_document_and_list() {
        let text = "# only a comment\n---\n\
                    kind: Service\n---\n\
                    kind: List\napiVersion: v1\nitems:\n\
                    - kind: ConfigMap\n\
                    - kind: Pod\n  spec:\n    containers:\n    - image: one:1\n\
                    ---\n\
                    kind: Job\nspec:\n  template:\n    spec:\n      containers: [{image: two:2}]\n";
        let mut docs = Vec::new();
        let p = pin_text(text, &mut |s, d| {
            docs.push((d, s.item, s.pointer.clone()));
            Some(fake_digest(&s.image))
        });
        assert_eq!(p.text, expect(text, &["one:1", "two:2"]));
        assert_eq!(
            docs,
            [
                (2, Some(1), "/spec/containers/0/image".to_string()),
                (3, None, "/spec/template/spec/containers/0/image".to_string())
            ]
        );
        assert_eq!(p.pinned.iter().map(|x| x.line).collect::<Vec<_>>(), [12, 18]);
    }

    /// Lines joined with LF, ending in LF.
    fn yaml(lines: &[&str]) -> String {
        lines.iter().map(|l| format!("{l}\n")).collect()
    }

    #[test]
    fn anchors_aliases_and_merge_keys_are_skipped() {
        let text = yaml(&[
            "kind: Pod",
            "spec:",
            "  containers:",
            "  - &c {name: a, image: a:1}",
            "  - *c",
            "  - name: b",
            "    image: &i b:1",
            "  - name: c",
            "    image: *i",
            "  - <<: {name: d, image: d:1}",
            "  - <<: {image: e:0}",
            "    image: e:1",
            "  - {name: f, image: f:1}",
        ]);
        let p = pin_text_all(&text);
        assert_eq!(p.text, expect(&text, &["e:1", "f:1"]));
        assert_eq!(
            reasons(&p),
            [
                (4, SkipReason::Anchored),
                (5, SkipReason::NotWrittenHere),
                (7, SkipReason::Anchored),
                (9, SkipReason::NotWrittenHere),
                (10, SkipReason::NotWrittenHere),
            ]
        );
    }

    #[test]
    fn block_scalars_escapes_and_multi_line_are_skipped() {
        let text = yaml(&[
            "kind: Pod",
            "spec:",
            "  containers:",
            "  - image: |-",
            "      a:1",
            "  - image: >-",
            "      b:1",
            "  - image: \"c\\x3a1\"",
            "  - image: 'it''s'",
            "  - image: d",
            "      x:1",
            "  - image: \"e:1",
            "      x\"",
            "  - image: !custom f:1",
            "  - image: 7",
            "  - image: null",
            "  - image: \"\"",
            "  - image: 'x'''",
        ]);
        let p = pin_text_all(&text);
        assert_eq!(p.text, text);
        assert_eq!(
            reasons(&p),
            [
                (5, SkipReason::BlockScalar),
                (7, SkipReason::BlockScalar),
                (8, SkipReason::NotVerbatim),
                (9, SkipReason::NotVerbatim),
                (10, SkipReason::NotVerbatim),
                (12, SkipReason::NotVerbatim),
                (14, SkipReason::Tagged("!custom".into())),
                (15, SkipReason::NotAnImage),
                (17, SkipReason::NotAnImage),
                (18, SkipReason::NotVerbatim),
            ]
        );
    }

    #[test]
    fn duplicate_image_keys_are_skipped() {
        let text = "kind: Pod\nspec:\n  containers:\n  - name: a\n    image: a:1\n    image: a:2\n  - image: b:1\n\
                    ---\nkind: Pod\nspec: {containers: [{image: c:1}]}\nspec: {}\n";
        let p = pin_text_all(text);
        assert_eq!(p.text, text);
        assert_eq!(reasons(&p), [(5, SkipReason::Duplicate(vec![5, 6])), (10, SkipReason::Duplicate(vec![10, 11]))]);
        assert_eq!(p.skipped[0].pointer, "/spec/containers/0/image");
        assert_eq!(p.skipped[1].pointer, "/spec");
    }

    #[test]
    fn unreadable_documents_declined_and_bad_digests_are_reported() {
        let text = "kind: Pod\nspec:\n  containers:\n  - image: a:1\n  - image: b:1\n  - image: c:1\n\
                    ---\nkind: Pod\nspec: [unclosed\n\
                    ---\nkind: Pod\nspec: {containers: [{image: d:1}]}\n";
        let p = pin_text(text, &mut |s, _| match s.image.as_str() {
            "a:1" => None,
            "b:1" => Some("sha256:abc".into()),
            _ => Some(fake_digest(&s.image)),
        });
        assert_eq!(p.text, expect(text, &["c:1", "d:1"]));
        let got: Vec<_> = p.skipped.iter().map(|s| (s.document, s.line, s.pointer.as_str())).collect();
        assert_eq!(got, [(1, 4, "/spec/containers/0/image"), (1, 5, "/spec/containers/1/image"), (2, 10, "")]);
        assert_eq!(p.skipped[0].reason, SkipReason::NoDigest);
        assert_eq!(p.skipped[1].reason, SkipReason::BadDigest("sha256:abc".into()));
        assert!(matches!(p.skipped[2].reason, SkipReason::Unreadable(_)));
        assert_eq!(p.pinned.iter().map(|x| x.document).collect::<Vec<_>>(), [1, 3]);
    }

    #[test]
    fn already_pinned_and_odd_line_breaks() {
        let text = format!("kind: Pod\nspec:\n  containers:\n  - image: a:1@{DIGEST_A}\n");
        let p = pin_text_all(&text);
        assert_eq!((p.text.as_str(), p.already_pinned, p.pinned.len()), (text.as_str(), 1, 0));
        let text = "kind: Pod\nmetadata: {name: \"a\u{85}b\"}\nspec:\n  containers:\n  - image: a:1\n";
        let p = pin_text_all(text);
        assert_eq!(p.text, text);
        assert_eq!(p.skipped[0].reason, SkipReason::LineBreaks);
    }

    // ----- the corpus -----

    /// Every node of two YAML trees equal except where a string `a` became
    /// `a@digest`: those differences as (pointer, from, to).
    fn diff(a: &yaml_rust2::Yaml, b: &yaml_rust2::Yaml, at: String, out: &mut Vec<(String, String, String)>) {
        use yaml_rust2::Yaml;
        match (a, b) {
            (Yaml::Hash(x), Yaml::Hash(y)) => {
                assert_eq!(x.len(), y.len(), "{at}");
                for ((ka, va), (kb, vb)) in x.iter().zip(y.iter()) {
                    assert_eq!(ka, kb, "{at}");
                    let token = ka.as_str().map_or_else(|| format!("{ka:?}"), escape);
                    diff(va, vb, format!("{at}/{token}"), out);
                }
            }
            (Yaml::Array(x), Yaml::Array(y)) => {
                assert_eq!(x.len(), y.len(), "{at}");
                for (i, (va, vb)) in x.iter().zip(y).enumerate() {
                    diff(va, vb, format!("{at}/{i}"), out);
                }
            }
            (Yaml::String(x), Yaml::String(y)) if x != y => out.push((at, x.clone(), y.clone())),
            _ => assert_eq!(a, b, "{at}"),
        }
    }

    fn yaml_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        let mut entries: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                yaml_files(&path, out);
            } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                out.push(path);
            }
        }
    }

    #[test]
    fn real_world_corpus() {
        let root = std::path::Path::new("/work/shared/corpus/real-world");
        if !root.is_dir() {
            assert!(std::env::var_os("PALISADE_REQUIRE_TOOLS").is_none(), "{} is missing", root.display());
            eprintln!("skipped: {} is missing", root.display());
            return;
        }
        let mut files = Vec::new();
        yaml_files(root, &mut files);
        assert!(!files.is_empty());
        let (mut images, mut already, mut unreadable) = (0, 0, 0);
        let mut skips: Vec<String> = Vec::new();
        for path in &files {
            let name = path.strip_prefix(root).unwrap_or(path).display().to_string();
            let Ok(input) = std::fs::read_to_string(path) else {
                skips.push(format!("{name}: not UTF-8"));
                continue;
            };
            let mut issued = std::collections::HashSet::new();
            let out = pin_text(&input, &mut |s, _| {
                let d = fake_digest(&s.image);
                issued.insert(d.clone());
                Some(d)
            });
            // (a) Taking out every inserted `@digest` gives the input back, byte for byte.
            let mut restored = out.text.clone();
            let mut removed = 0;
            for d in &issued {
                let needle = format!("@{d}");
                removed += restored.matches(&needle).count();
                restored = restored.replace(&needle, "");
            }
            assert_eq!(removed, out.pinned.len(), "{name}");
            assert!(restored == input, "{name}: the text changed outside the inserted digests");
            // (b) Read again, each document is the same except at the pinned pointers.
            let body = |t: &str| t.strip_prefix('\u{feff}').unwrap_or(t).to_string();
            let (before, after) = (body(&input), body(&out.text));
            let (ca, cb) = (split(&before), split(&after));
            assert_eq!(ca.len(), cb.len(), "{name}");
            let mut found = Vec::new();
            for (x, y) in ca.iter().zip(&cb) {
                let ya = yaml_rust2::YamlLoader::load_from_str(&before[x.start..x.end]);
                let yb = yaml_rust2::YamlLoader::load_from_str(&after[y.start..y.end]);
                let (Ok(ya), Ok(yb)) = (ya, yb) else {
                    assert!(!out.pinned.iter().any(|p| p.document == x.index), "{name}: pinned in a bad document");
                    continue;
                };
                assert_eq!(ya.len(), yb.len(), "{name}");
                for (da, db) in ya.iter().zip(&yb) {
                    let mut d = Vec::new();
                    diff(da, db, String::new(), &mut d);
                    found.extend(d.into_iter().map(|(p, f, t)| (x.index, p, f, t)));
                }
            }
            let mut expected: Vec<_> = out
                .pinned
                .iter()
                .map(|p| {
                    let item = p.item.map(|i| format!("/items/{i}")).unwrap_or_default();
                    (p.document, format!("{item}{}", p.pointer), p.from.clone(), p.to.clone())
                })
                .collect();
            for p in &out.pinned {
                assert_eq!(p.to, format!("{}@{}", p.from, fake_digest(&p.from)), "{name}");
            }
            expected.sort();
            found.sort();
            assert_eq!(found, expected, "{name}");
            images += out.pinned.len();
            already += out.already_pinned;
            for s in &out.skipped {
                if matches!(s.reason, SkipReason::Unreadable(_)) {
                    unreadable += 1;
                }
                skips.push(format!("{name}:{} document {} {}: {}", s.line, s.document, s.pointer, s.reason));
            }
        }
        eprintln!(
            "corpus: {} files, {images} images pinned, {already} already pinned, {} skipped ({unreadable} unreadable documents)",
            files.len(),
            skips.len()
        );
        for s in &skips {
            eprintln!("  skipped {s}");
        }
        assert!(images > 100, "too few images pinned: {images}");
        assert!(skips.len() * 20 < images, "too many skipped: {}", skips.len());
    }
}
