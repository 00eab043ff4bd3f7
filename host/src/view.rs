//! What each rule is handed of an object: the parts it reads.
//!
//! A rule may say which parts of an object it reads (the contract's optional
//! `input.reads`, in `wit/policy.wit`): JSON pointers, `*` standing for every
//! array element or object member. The host then hands it the object with
//! every other key left out, so the rule's component does not scan what it
//! would skip: `metadata.managedFields`, `status`, the fields other rules read.
//! The host does not know what the paths mean; it only prunes by them. Every
//! array element is kept (pruned), so indices, and so violation paths, stay
//! the same; a value is kept whole where a path goes on below it but the value
//! is not of the type the path needs, so a rule sees a wrongly typed field as
//! written. Pruning keeps the order of the kept keys and never adds anything:
//! a pruned text is never longer than the whole one.
//!
//! Rules with the same paths share one [`View`]; an [`Object`] makes each
//! view's text once, on first use, from one parse of the object.

use std::cell::OnceCell;
use std::collections::BTreeMap;

use serde_json::Value;

/// Bounds of a rule's `input.reads` answer and of the tree made from it: far
/// more than any rule needs (the SDK's widest answer is about 200 paths, 8 KiB
/// and 300 nodes), and small enough that a component cannot make the host
/// build a large tree or prune slowly.
pub const MAX_PATHS: usize = 4096;
pub const MAX_PATH_BYTES: usize = 1024;
pub const MAX_TOTAL_BYTES: usize = 64 << 10;
pub const MAX_NODES: usize = 16 << 10;

/// A rule's paths as a tree: what to keep of an object. Where a node has both
/// keys and `*`, what `*` keeps is merged into each key's node, so one node
/// alone says what to keep of each value.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct View {
    root: Node,
}

/// A node of the tree as paths are added to it.
#[derive(Debug, Default, Clone)]
struct Draft {
    /// A path ends here: the value is kept whole.
    whole: bool,
    /// Members, by key.
    keys: BTreeMap<String, Draft>,
    /// `*`: every array element, and every object member not in `keys`.
    any: Option<Box<Draft>>,
}

/// A node of the finished tree, as pruning reads it: each member with the
/// hash of its key ([`key_hash`]), which the [`Tape`] keeps for each key it
/// is asked about, so a key not in the view is passed over without comparing
/// text, by every view after the first.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Node {
    whole: bool,
    /// In the order of the keys.
    keys: Vec<Member>,
    any: Option<Box<Node>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Member {
    hash: u64,
    key: Box<str>,
    node: Node,
}

/// What no path reaches: nothing is kept of an object, an array's elements
/// are pruned alike, a scalar is kept.
static NOTHING: Node = Node { whole: false, keys: Vec::new(), any: None };

impl View {
    /// The view of a rule's `input.reads` answer. `Err` says which path is not
    /// a JSON pointer, or that the list breaks the bounds ([`MAX_PATHS`] and the others).
    pub fn new(paths: &[String]) -> Result<View, String> {
        let over = || {
            format!(
                "input.reads is over the limit of {MAX_PATHS} paths, {MAX_PATH_BYTES} bytes a path, \
                 {MAX_TOTAL_BYTES} bytes in all and {MAX_NODES} tree nodes"
            )
        };
        if paths.len() > MAX_PATHS || paths.iter().map(String::len).sum::<usize>() > MAX_TOTAL_BYTES {
            return Err(over());
        }
        let mut root = Draft::default();
        let mut nodes = 1;
        for path in paths {
            if path.len() > MAX_PATH_BYTES {
                return Err(over());
            }
            if !path.is_empty() && !path.starts_with('/') {
                return Err(format!(
                    "input.reads lists {path:?}, which is not a JSON pointer (it must start with `/`)"
                ));
            }
            let mut node = &mut root;
            for segment in path.split('/').skip(1) {
                let key = unescape(segment)
                    .ok_or_else(|| format!("input.reads lists {path:?}, whose `~` is neither `~0` nor `~1`"))?;
                let next = if key == "*" { node.any.is_none() } else { !node.keys.contains_key(&key) };
                nodes += usize::from(next);
                node = if key == "*" {
                    node.any.get_or_insert_with(Box::default)
                } else {
                    node.keys.entry(key).or_default()
                };
            }
            node.whole = true;
        }
        if nodes > MAX_NODES || !root.spread(&mut nodes) {
            return Err(over());
        }
        Ok(View { root: root.finish() })
    }

    /// The JSON text `text` (with its [`Tape`]) pruned to this view. `text`
    /// must be JSON (the tape does not check its scalars).
    pub fn prune(&self, text: &str, tape: &Tape) -> String {
        // Never longer than the text: one allocation.
        let mut out = Vec::with_capacity(text.len());
        if !tape.is_empty() {
            write(text, tape, 0, &self.root, &mut out);
        }
        // Whole values and keys are copied from valid UTF-8 at token boundaries.
        String::from_utf8(out).unwrap_or_else(|_| text.to_string())
    }
}

impl Draft {
    /// Merge what `*` keeps into each key's node, below this one, keeping
    /// the tree's size (`nodes`) within [`MAX_NODES`]; false past it.
    fn spread(&mut self, nodes: &mut usize) -> bool {
        if let Some(any) = self.any.as_deref()
            && !self.keys.is_empty()
        {
            let added = any.size().saturating_mul(self.keys.len());
            *nodes = nodes.saturating_add(added);
            if *nodes > MAX_NODES {
                return false;
            }
            let any = any.clone();
            for child in self.keys.values_mut() {
                child.merge(&any);
            }
        }
        self.keys.values_mut().all(|child| child.spread(nodes)) && self.any.as_mut().is_none_or(|a| a.spread(nodes))
    }

    fn merge(&mut self, other: &Draft) {
        self.whole |= other.whole;
        for (key, child) in &other.keys {
            self.keys.entry(key.clone()).or_default().merge(child);
        }
        if let Some(any) = &other.any {
            self.any.get_or_insert_with(Box::default).merge(any);
        }
    }

    fn size(&self) -> usize {
        1 + self.keys.values().map(Draft::size).sum::<usize>() + self.any.as_ref().map_or(0, |a| a.size())
    }

    fn finish(self) -> Node {
        Node {
            whole: self.whole,
            keys: self
                .keys
                .into_iter()
                .map(|(key, draft)| Member { hash: key_hash(key.as_bytes()), key: key.into(), node: draft.finish() })
                .collect(),
            any: self.any.map(|any| Box::new(any.finish())),
        }
    }
}

impl Node {
    #[cfg(test)]
    fn size(&self) -> usize {
        1 + self.keys.iter().map(|m| m.node.size()).sum::<usize>() + self.any.as_ref().map_or(0, |a| a.size())
    }

    /// The node of the member whose key hashes to `hash` and reads as `key`.
    fn member<'t>(&self, hash: u64, key: impl FnOnce() -> std::borrow::Cow<'t, str>) -> Option<&Node> {
        let mut candidates = self.keys.iter().filter(|m| m.hash == hash).peekable();
        candidates.peek()?;
        let key = key();
        candidates.find(|m| *m.key == *key).map(|m| &m.node)
    }
}

/// A key's hash (its text unescaped), for [`Node::member`]: a multiply and
/// rotate per 8 bytes. Two keys with one hash are told apart by their text.
fn key_hash(key: &[u8]) -> u64 {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let mut hash = key.len() as u64;
    let mut word = [0u8; 8];
    let mut chunks = key.chunks_exact(8);
    for chunk in &mut chunks {
        word.copy_from_slice(chunk);
        hash = (hash.rotate_left(5) ^ u64::from_le_bytes(word)).wrapping_mul(K);
    }
    let rest = chunks.remainder();
    word = [0u8; 8];
    word[..rest.len()].copy_from_slice(rest);
    (hash.rotate_left(5) ^ u64::from_le_bytes(word)).wrapping_mul(K)
}

/// A pointer segment unescaped (RFC 6901): `~1` is `/`, `~0` is `~`; `None`
/// for any other `~`.
fn unescape(segment: &str) -> Option<String> {
    let mut out = String::with_capacity(segment.len());
    let mut chars = segment.chars();
    while let Some(c) = chars.next() {
        out.push(if c != '~' {
            c
        } else {
            match chars.next() {
                Some('0') => '~',
                Some('1') => '/',
                _ => return None,
            }
        });
    }
    Some(out)
}

/// Write what `node` (the tree node that reaches value `v` of `tape`) keeps of it.
fn write(text: &str, tape: &Tape, v: usize, node: &Node, out: &mut Vec<u8>) {
    let value = &tape.values[v];
    let span = &text.as_bytes()[value.start as usize..value.end as usize];
    if node.whole {
        out.extend_from_slice(span);
        return;
    }
    match value.shape {
        Shape::Object => {
            out.push(b'{');
            let mut first = true;
            for member in tape.children(v) {
                let kept = &tape.values[member];
                let Some(k) = &kept.key else { continue };
                let Some(below) = node.member(tape.key_hash(text, member), || unquote(text, k)).or(node.any.as_deref())
                else {
                    continue;
                };
                if !first {
                    out.push(b',');
                }
                first = false;
                let (key_start, key_end) = (k.start as usize, k.end as usize);
                if below.whole && kept.start as usize == key_end + 1 && text.as_bytes()[key_end] == b':' {
                    // `"key":value` as written, in one copy.
                    out.extend_from_slice(&text.as_bytes()[key_start..kept.end as usize]);
                    continue;
                }
                out.extend_from_slice(&text.as_bytes()[key_start..key_end]);
                out.push(b':');
                write(text, tape, member, below, out);
            }
            out.push(b'}');
        }
        // A key needs an object: an array under one is kept as written.
        Shape::Array if node.keys.is_empty() => {
            let below = node.any.as_deref().unwrap_or(&NOTHING);
            out.push(b'[');
            for (i, item) in tape.children(v).enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write(text, tape, item, below, out);
            }
            out.push(b']');
        }
        // A path goes on, but the value is not of the type it needs: kept as written.
        _ => out.extend_from_slice(span),
    }
}

/// A key as the tree holds it: the text between the quotes of `key` (a range
/// of `text`), unescaped when it has escapes.
fn unquote<'t>(text: &'t str, key: &std::ops::Range<u32>) -> std::borrow::Cow<'t, str> {
    let (start, end) = (key.start as usize, key.end as usize);
    match text.get(start + 1..end - 1) {
        Some(inner) if !inner.contains('\\') => std::borrow::Cow::Borrowed(inner),
        _ => {
            std::borrow::Cow::Owned(serde_json::from_slice::<String>(&text.as_bytes()[start..end]).unwrap_or_default())
        }
    }
}

/// Where each value of a JSON text sits, in document order (a value's
/// members or elements follow it), read in one pass without building the
/// values: what pruning needs to copy kept values as written and to step
/// over the others. Any JSON text reads; text that is not JSON gives an empty
/// tape (the object then goes whole to every rule), but for scalars, which
/// are not checked: the host hands over only text a JSON reader wrote.
#[derive(Debug, Default)]
pub struct Tape {
    values: Vec<TapeValue>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Object,
    Array,
    Scalar,
}

#[derive(Debug)]
struct TapeValue {
    shape: Shape,
    /// Byte range of the value.
    start: u32,
    end: u32,
    /// The index after its last member or element: its next sibling's.
    after: u32,
    /// Byte range of its key with the quotes, for an object's member.
    key: Option<std::ops::Range<u32>>,
    /// The [`key_hash`] of that key unescaped, once asked for (0: not yet).
    key_hash: std::cell::Cell<u64>,
}

impl Tape {
    /// The tape of `text`; empty when it is not one JSON value (or is 4 GiB or more).
    pub fn read(text: &str) -> Tape {
        Tape::try_read(text.as_bytes()).unwrap_or_default()
    }

    fn try_read(b: &[u8]) -> Option<Tape> {
        u32::try_from(b.len()).ok()?;
        let mut values: Vec<TapeValue> = Vec::with_capacity(b.len() / 12);
        // Open containers: (index, an object, has a member or element yet).
        let mut open: Vec<(usize, bool, bool)> = Vec::new();
        let mut key: Option<std::ops::Range<u32>> = None;
        let mut i = skip_space(b, 0);
        loop {
            // A value at `i`.
            let index = values.len();
            let (shape, end) = match *b.get(i)? {
                b'{' => (Shape::Object, i + 1),
                b'[' => (Shape::Array, i + 1),
                _ => (Shape::Scalar, scalar_end(b, i)?),
            };
            let after = if shape == Shape::Scalar { index as u32 + 1 } else { 0 };
            values.push(TapeValue {
                shape,
                start: i as u32,
                end: end as u32,
                after,
                key: key.take(),
                key_hash: std::cell::Cell::new(0),
            });
            if shape != Shape::Scalar {
                open.push((index, shape == Shape::Object, false));
            }
            i = end;
            // Then: closing brackets, and a comma or a container's first member.
            loop {
                i = skip_space(b, i);
                let Some(top) = open.last_mut() else {
                    // The top value is done: only space may follow.
                    return (i == b.len()).then_some(Tape { values });
                };
                let (container, in_object, has_child) = *top;
                match *b.get(i)? {
                    c @ (b'}' | b']') => {
                        if (c == b'}') != in_object {
                            return None;
                        }
                        i += 1;
                        values[container].end = i as u32;
                        values[container].after = values.len() as u32;
                        open.pop();
                        continue;
                    }
                    b',' if has_child => i = skip_space(b, i + 1),
                    _ if !has_child => {}
                    _ => return None,
                }
                top.2 = true;
                if in_object {
                    if b.get(i) != Some(&b'"') {
                        return None;
                    }
                    let k = i;
                    i = string_end(b, k)?;
                    key = Some(k as u32..i as u32);
                    i = skip_space(b, i);
                    if b.get(i) != Some(&b':') {
                        return None;
                    }
                    i = skip_space(b, i + 1);
                }
                break;
            }
        }
    }

    /// The [`key_hash`] of member `v`'s key as [`unquote`] reads it (0 for a
    /// value that is not a member), made on first use: the keys of what no
    /// view visits (`managedFields`, `status`) are never hashed.
    fn key_hash(&self, text: &str, v: usize) -> u64 {
        let value = &self.values[v];
        let Some(k) = &value.key else { return 0 };
        let known = value.key_hash.get();
        if known != 0 {
            return known;
        }
        let hash = key_hash(unquote(text, k).as_bytes());
        value.key_hash.set(hash);
        hash
    }

    /// Whether the text did not read as one JSON value.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The members or elements of value `v`, by index.
    fn children(&self, v: usize) -> impl Iterator<Item = usize> + '_ {
        let after = self.values[v].after as usize;
        let mut next = v + 1;
        std::iter::from_fn(move || {
            if next >= after {
                return None;
            }
            let this = next;
            next = self.values[this].after as usize;
            Some(this)
        })
    }
}

fn skip_space(b: &[u8], mut i: usize) -> usize {
    while matches!(b.get(i), Some(b' ' | b'\n' | b'\r' | b'\t')) {
        i += 1;
    }
    i
}

/// The end of the string starting at `b[i]` (a quote), after its closing quote.
fn string_end(b: &[u8], i: usize) -> Option<usize> {
    let mut j = i + 1;
    loop {
        j += memchr::memchr2(b'"', b'\\', b.get(j..)?)?;
        if b[j] == b'"' {
            return Some(j + 1);
        }
        j += 2;
    }
}

/// The end of the string, number, `true`, `false` or `null` at `b[i]`.
fn scalar_end(b: &[u8], i: usize) -> Option<usize> {
    if b[i] == b'"' {
        return string_end(b, i);
    }
    let mut j = i;
    while let Some(c) = b.get(j) {
        match c {
            b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E' | b'a'..=b'z' => j += 1,
            _ => break,
        }
    }
    (j > i).then_some(j)
}

/// The distinct views of a run's policies.
#[derive(Debug, Default)]
pub struct Views {
    views: Vec<View>,
    /// For each policy: its view, or `None` (it reads whole objects).
    of_policy: Vec<Option<usize>>,
}

impl Views {
    /// The views of a run's policies, given in order (`None`: whole objects).
    pub fn new<'v>(policies: impl IntoIterator<Item = Option<&'v View>>) -> Views {
        let mut views: Vec<View> = Vec::new();
        let of_policy = policies
            .into_iter()
            .map(|view| {
                let view = view?;
                Some(views.iter().position(|v| v == view).unwrap_or_else(|| {
                    views.push(view.clone());
                    views.len() - 1
                }))
            })
            .collect();
        Views { views, of_policy }
    }

    /// How many distinct views there are.
    pub fn len(&self) -> usize {
        self.views.len()
    }

    pub fn is_empty(&self) -> bool {
        self.views.is_empty()
    }
}

/// One object as the rules receive it: whole, and pruned to each view, each
/// made once, on first use, from one [`Tape`] of its text.
pub struct Object<'a> {
    text: std::borrow::Cow<'a, str>,
    tape: OnceCell<Tape>,
    /// Each view's text; `None` when the text is not one JSON value (handed whole).
    pruned: Vec<OnceCell<Option<String>>>,
}

impl<'a> Object<'a> {
    /// An object given as JSON text that a JSON reader wrote (as `check`'s
    /// resources are): see [`Tape`].
    pub fn from_text(text: &'a str, views: &Views) -> Object<'a> {
        Object::new(std::borrow::Cow::Borrowed(text), views)
    }

    /// An object given parsed (written as JSON once).
    pub fn from_value(value: &Value, views: &Views) -> Object<'a> {
        Object::new(std::borrow::Cow::Owned(value.to_string()), views)
    }

    fn new(text: std::borrow::Cow<'a, str>, views: &Views) -> Object<'a> {
        Object { text, tape: OnceCell::new(), pruned: (0..views.len()).map(|_| OnceCell::new()).collect() }
    }

    /// The whole object as JSON.
    pub fn whole(&self) -> &str {
        &self.text
    }

    /// What policy `p` of `views` is handed: its view of the object, or the
    /// whole object (also when the text is not one JSON value).
    #[inline(never)]
    pub fn for_policy(&self, views: &Views, p: usize) -> &str {
        let Some(v) = views.of_policy.get(p).copied().flatten() else {
            return self.whole();
        };
        let Some(cell) = self.pruned.get(v) else {
            return self.whole();
        };
        let pruned = cell.get_or_init(|| {
            let tape = self.tape.get_or_init(|| Tape::read(&self.text));
            (!tape.is_empty()).then(|| views.views[v].prune(&self.text, tape))
        });
        pruned.as_deref().unwrap_or(&self.text)
    }
}

/// The contract's rule written as plainly as possible, over a parsed value and
/// the list of paths, apart from the tape and the tree: the reference the
/// tests and the fuzzer compare [`View::prune`] with.
pub fn reference_prune(value: &Value, paths: &[String]) -> Value {
    fn keep(value: &Value, paths: &[Vec<String>]) -> Value {
        if paths.iter().any(Vec::is_empty) {
            return value.clone();
        }
        match value {
            Value::Object(map) => Value::Object(
                map.iter()
                    .filter_map(|(k, v)| {
                        let below: Vec<Vec<String>> =
                            paths.iter().filter(|p| p[0] == "*" || p[0] == *k).map(|p| p[1..].to_vec()).collect();
                        (!below.is_empty()).then(|| (k.clone(), keep(v, &below)))
                    })
                    .collect(),
            ),
            Value::Array(items) if paths.iter().all(|p| p[0] == "*") => {
                let below: Vec<Vec<String>> = paths.iter().map(|p| p[1..].to_vec()).collect();
                Value::Array(items.iter().map(|v| keep(v, &below)).collect())
            }
            other => other.clone(),
        }
    }
    let split: Vec<Vec<String>> =
        paths.iter().map(|p| p.split('/').skip(1).map(|s| s.replace("~1", "/").replace("~0", "~")).collect()).collect();
    keep(value, &split)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn view(paths: &[&str]) -> View {
        View::new(&paths.iter().map(|p| p.to_string()).collect::<Vec<_>>()).unwrap()
    }

    impl View {
        /// `value` as the host writes it, pruned.
        fn pruned(&self, value: &Value) -> String {
            let text = value.to_string();
            self.prune(&text, &Tape::read(&text))
        }
    }

    #[test]
    fn keeps_only_the_paths_with_every_array_element() {
        let pod = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "managedFields": [{"manager": "kubectl"}], "labels": {"a": "b"}},
            "spec": {"containers": [
                {"name": "a", "image": "x", "securityContext": {"privileged": true}, "env": [{"name": "K"}]},
                {"name": "b", "volumeMounts": [{"name": "v"}]}
            ]},
            "status": {"phase": "Running"}
        });
        let v = view(&["/kind", "/metadata/name", "/spec/containers/*/name", "/spec/containers/*/securityContext"]);
        assert_eq!(
            v.pruned(&pod),
            r#"{"kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"a","securityContext":{"privileged":true}},{"name":"b"}]}}"#
        );
    }

    #[test]
    fn a_value_of_another_type_than_the_path_needs_is_kept_whole() {
        let v = view(&["/spec/containers/*/name", "/metadata/name"]);
        assert_eq!(v.pruned(&json!({"spec": "text", "metadata": [1, 2]})), r#"{"metadata":[1,2],"spec":"text"}"#);
        assert_eq!(v.pruned(&json!({"spec": {"containers": 7}})), r#"{"spec":{"containers":7}}"#);
        assert_eq!(v.pruned(&json!({"spec": {"containers": ["x", null]}})), r#"{"spec":{"containers":["x",null]}}"#);
        // `*` on an object: every member.
        assert_eq!(
            v.pruned(&json!({"spec": {"containers": {"a": {"name": "n", "image": "i"}}}})),
            r#"{"spec":{"containers":{"a":{"name":"n"}}}}"#
        );
        // A key on an array: the array as written.
        assert_eq!(view(&["/spec/x"]).pruned(&json!({"spec": [1, {"x": 2, "y": 3}]})), r#"{"spec":[1,{"x":2,"y":3}]}"#);
    }

    #[test]
    fn paths_merge_and_escape() {
        let v = view(&["/a/*/x", "/a/0/y", "/m/k~1s~0t"]);
        // A key and `*` at one node: on an array the key needs an object, so the array is whole.
        assert_eq!(v.pruned(&json!({"a": [{"x": 1, "y": 2, "z": 3}]})), r#"{"a":[{"x":1,"y":2,"z":3}]}"#);
        // On an object both apply.
        assert_eq!(
            v.pruned(&json!({"a": {"0": {"x": 1, "y": 2, "z": 3}, "1": {"x": 4, "y": 5}}})),
            r#"{"a":{"0":{"x":1,"y":2},"1":{"x":4}}}"#
        );
        assert_eq!(v.pruned(&json!({"m": {"k/s~t": 1, "k": 2}})), r#"{"m":{"k/s~t":1}}"#);
        assert_eq!(view(&[""]).pruned(&json!({"a": 1})), r#"{"a":1}"#);
        assert_eq!(view(&[]).pruned(&json!({"a": 1})), "{}");
    }

    #[test]
    fn keys_with_one_hash_are_told_apart_by_their_text() {
        let leaf = |whole| Node { whole, keys: Vec::new(), any: None };
        let node = Node {
            whole: false,
            keys: vec![
                Member { hash: 7, key: "a".into(), node: leaf(false) },
                Member { hash: 7, key: "b".into(), node: leaf(true) },
            ],
            any: None,
        };
        assert_eq!(node.member(7, || "b".into()), Some(&leaf(true)));
        assert_eq!(node.member(7, || "a".into()), Some(&leaf(false)));
        assert_eq!(node.member(7, || "c".into()), None);
        assert_eq!(node.member(8, || unreachable!("no member has the hash: the key is not read")), None);
        // The tape hashes a key as the tree does, escaped or not.
        let text = r#"{"k\u002fs":1,"plain":2}"#;
        let tape = Tape::read(text);
        assert_eq!(tape.key_hash(text, 1), key_hash(b"k/s"));
        assert_eq!(tape.key_hash(text, 2), key_hash(b"plain"));
        assert_eq!(tape.values[2].key_hash.get(), key_hash(b"plain"), "kept once made");
        assert_eq!(tape.key_hash(text, 0), 0, "the root is no member");
        assert_ne!(key_hash(b""), key_hash(b"\0"), "the length is hashed");
    }

    #[test]
    fn a_pruned_text_is_the_whole_text_when_everything_is_read() {
        let value = json!({"b": [1, {"c": "\u{e9}\"\n"}], "a": null});
        assert_eq!(view(&["/a", "/b"]).pruned(&value), value.to_string());
    }

    #[test]
    fn no_paths_keep_nothing_of_objects_whatever_the_root() {
        assert_eq!(view(&[]).pruned(&json!([{"a": 1}, [{"b": 2}], 3])), "[{},[{}],3]");
        assert_eq!(view(&[]).pruned(&json!({"a": [1]})), "{}");
    }

    #[test]
    fn bad_paths_are_refused() {
        for bad in ["/a~", "/a~2", "/~x/b"] {
            assert!(View::new(&[bad.to_string()]).unwrap_err().contains("neither"), "{bad}");
        }
        assert!(View::new(&vec!["/a".repeat(500); 200]).unwrap_err().contains("over the limit"));
        // Keys and `*` mixed at every level of a chain: what `*` keeps is merged into
        // each key, level after level, which would grow the tree past its bound.
        let mut mixed: Vec<String> = (0..14).map(|d| format!("{}/x", "/*".repeat(d))).collect();
        mixed.extend((0..14).map(|d| format!("{}/y", "/k".repeat(d))));
        assert!(View::new(&mixed).unwrap_err().contains("over the limit"));
        // Mixed as rules mix them: fine.
        let usual = ["/metadata/*", "/metadata/labels/app", "/spec/*/name", "/spec/containers/*/image"];
        assert!(view(&usual).root.size() < 20);
        let hostile: Vec<String> =
            (0..4000).map(|i| format!("/{}/{i}", "*/k/".repeat(8).trim_end_matches('/'))).collect();
        assert!(View::new(&hostile).unwrap_err().contains("over the limit"));
        assert!(View::new(&["kind".to_string()]).unwrap_err().contains("not a JSON pointer"));
        assert!(View::new(&vec!["/a".to_string(); MAX_PATHS + 1]).unwrap_err().contains("over the limit"));
        assert!(View::new(&[format!("/{}", "a".repeat(MAX_PATH_BYTES))]).unwrap_err().contains("over the limit"));
    }

    #[test]
    fn an_object_is_read_once_and_pruned_once_per_view() {
        let views =
            Views { views: vec![view(&["/kind"]), view(&["/spec"])], of_policy: vec![Some(0), None, Some(1), Some(0)] };
        let text = r#"{"kind":"Pod","spec":{"x":[1,{"y":"}"}]},"status":{}}"#;
        let object = Object::from_text(text, &views);
        assert_eq!(object.for_policy(&views, 0), r#"{"kind":"Pod"}"#);
        assert_eq!(object.for_policy(&views, 1), text);
        assert_eq!(object.for_policy(&views, 2), r#"{"spec":{"x":[1,{"y":"}"}]}}"#);
        assert!(std::ptr::eq(object.for_policy(&views, 3), object.for_policy(&views, 0)));
        // Deeper than any parser's nesting limit: read all the same.
        let deep = format!(r#"{{"kind":"Pod","spec":{}1{}}}"#, "[".repeat(5000), "]".repeat(5000));
        assert_eq!(Object::from_text(&deep, &views).for_policy(&views, 0), r#"{"kind":"Pod"}"#);
        // Not JSON: whole to every rule.
        for bad in [
            r#"{"kind":"Pod""#,
            r#"{"kind":"Pod"} x"#,
            r#"{"kind" "Pod"}"#,
            r#"{"a":[1,]}"#,
            r#"{,}"#,
            "",
            r#"{"a":1]"#,
        ] {
            assert_eq!(Object::from_text(bad, &views).for_policy(&views, 0), bad, "{bad}");
        }
        let value = json!({"kind": "Pod", "spec": 1});
        let object = Object::from_value(&value, &views);
        assert_eq!(object.for_policy(&views, 0), r#"{"kind":"Pod"}"#);
        assert_eq!(object.whole(), value.to_string());
    }

    #[test]
    fn the_tape_reads_what_serde_json_writes_and_spacing() {
        let value = json!({"a": [1, -2.5e-3, true, false, null, "x\"\\\u{1}é", {}, []], "b": {"c": {"d": [[]]}}});
        let text = value.to_string();
        assert_eq!(view(&["/a", "/b"]).prune(&text, &Tape::read(&text)), text);
        let spaced = " { \"a\" : [ 1 , { \"b\" : 2 , \"c\" : 3 } ] , \"d\" : { } }\n";
        assert_eq!(view(&["/a/*/c"]).prune(spaced, &Tape::read(spaced)), r#"{"a":[1,{"c":3}]}"#);
        assert_eq!(view(&["/d"]).prune(spaced, &Tape::read(spaced)), r#"{"d":{ }}"#);
        // Escaped keys match their unescaped paths.
        let text = r#"{"k\u002fs":1,"k":2}"#;
        assert_eq!(view(&["/k~1s"]).prune(text, &Tape::read(text)), r#"{"k\u002fs":1}"#);
    }

    #[test]
    fn prunes_the_real_world_corpus_as_the_contract_says() {
        let views: [&[&str]; 5] = [
            &[
                "/kind",
                "/metadata/name",
                "/spec/containers/*/securityContext",
                "/spec/template/spec/containers/*/image",
            ],
            &["/metadata/labels", "/spec/template", "/spec/*/metadata/*"],
            &["/kind"],
            &["/*/*/*/*/*", "/spec/template/spec/volumes/*/name"],
            &["/data", "/rules/*/verbs", "/subjects"],
        ];
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/real-world");
        let mut files = vec![root];
        let (mut objects, mut kept, mut whole) = (0, 0, 0);
        while let Some(path) = files.pop() {
            if path.is_dir() {
                files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
                continue;
            }
            let Ok(text) = std::fs::read_to_string(&path) else { continue };
            let (mut resources, mut errors) = (Vec::new(), Vec::new());
            let documents = crate::documents::read_documents(&text, &crate::documents::Limits::default());
            crate::resources::from_documents("f", documents, &mut resources, &mut errors);
            for r in resources {
                let value: Value = serde_json::from_str(&r.json).unwrap();
                let tape = Tape::read(&r.json);
                for paths in views {
                    let got = view(paths).prune(&r.json, &tape);
                    let owned: Vec<String> = paths.iter().map(|p| p.to_string()).collect();
                    assert_eq!(got, reference_prune(&value, &owned).to_string(), "{paths:?} of {}", r.json);
                    kept += got.len();
                    whole += r.json.len();
                }
                objects += 1;
            }
        }
        assert!(objects > 800, "{objects} objects");
        assert!(kept < whole / 2, "{kept} of {whole} bytes kept");
    }
}
