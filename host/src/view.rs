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
use std::sync::atomic::AtomicU32;
use std::sync::atomic::Ordering::Relaxed;

use serde_json::Value;

use crate::json_scan::{bytes_below, bytes_equal, string_end};

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
    hash: u32,
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
    fn member<'t>(&self, hash: u32, key: impl FnOnce() -> std::borrow::Cow<'t, str>) -> Option<&Node> {
        let mut candidates = self.keys.iter().filter(|m| m.hash == hash).peekable();
        candidates.peek()?;
        let key = key();
        candidates.find(|m| *m.key == *key).map(|m| &m.node)
    }
}

/// A key's hash (its text unescaped), for [`Node::member`]: a multiply and
/// rotate per 8 bytes, the high half of the last product, never 0 (which the
/// [`Tape`] keeps for "not yet made"). Two keys with one hash are told apart
/// by their text.
fn key_hash(key: &[u8]) -> u32 {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let mut hash = key.len() as u64;
    let mut chunks = key.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        hash = (hash.rotate_left(5) ^ u64::from_le_bytes(word)).wrapping_mul(K);
    }
    let rest = chunks.remainder();
    let mut word = [0u8; 8];
    word[..rest.len()].copy_from_slice(rest);
    hash = (hash.rotate_left(5) ^ u64::from_le_bytes(word)).wrapping_mul(K);
    ((hash >> 32) as u32).max(1)
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
    let bytes = text.as_bytes();
    let value = &tape.values[v];
    let span = &bytes[value.start as usize..value.end as usize];
    if node.whole {
        out.extend_from_slice(span);
        return;
    }
    match span.first() {
        Some(b'{') => {
            out.push(b'{');
            let mut first = true;
            for member in tape.children(v) {
                let kept = &tape.values[member];
                let (key_start, key_end) = (kept.key_start as usize, kept.key_end as usize);
                let named = if node.keys.is_empty() {
                    None
                } else {
                    node.member(tape.key_hash(text, member), || unquote(text, key_start..key_end))
                };
                let Some(below) = named.or(node.any.as_deref()) else {
                    continue;
                };
                if !first {
                    out.push(b',');
                }
                first = false;
                if below.whole && kept.start as usize == key_end + 1 && bytes[key_end] == b':' {
                    // `"key":value` as written, in one copy.
                    out.extend_from_slice(&bytes[key_start..kept.end as usize]);
                    continue;
                }
                out.extend_from_slice(&bytes[key_start..key_end]);
                out.push(b':');
                write(text, tape, member, below, out);
            }
            out.push(b'}');
        }
        // A key needs an object: an array under one is kept as written.
        Some(b'[') if node.keys.is_empty() => {
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

/// A key as the tree holds it: the text between the quotes of the key at
/// `key` (a range of `text`), unescaped when it has escapes.
fn unquote(text: &str, key: std::ops::Range<usize>) -> std::borrow::Cow<'_, str> {
    match text.get(key.start + 1..key.end - 1) {
        Some(inner) if !inner.contains('\\') => std::borrow::Cow::Borrowed(inner),
        _ => std::borrow::Cow::Owned(serde_json::from_slice::<String>(&text.as_bytes()[key]).unwrap_or_default()),
    }
}

/// Where each value of a JSON text sits, in document order (a value's
/// members or elements follow it): what pruning needs to copy kept values as
/// written and to step over the others. Made as the host writes an object's
/// text ([`Tape::write`]), or read from a text in one pass without building
/// the values ([`Tape::read`]). Any JSON text reads; text that is not JSON gives an empty
/// tape (the object then goes whole to every rule), but for scalars, which
/// are not checked: the host hands over only text a JSON reader wrote.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Tape {
    values: Vec<TapeValue>,
}

/// The largest buffers [`Tape::write`] keeps for the next object: 1 MiB of text.
const SCRATCH_KEPT: usize = 1 << 20;

/// One value of a [`Tape`]. Its shape is that of its first byte: `{` an
/// object, `[` an array, anything else a scalar.
#[derive(Debug, Clone, PartialEq, Eq)]
struct TapeValue {
    /// Byte range of the value.
    start: u32,
    end: u32,
    /// The index after its last member or element: its next sibling's.
    after: u32,
    /// Byte range of its key with the quotes, for an object's member (an
    /// empty range for any other value: a key has at least its two quotes).
    key_start: u32,
    key_end: u32,
    /// The [`key_hash`] of that key unescaped, made on first use ([`Tape::key_hash`]),
    /// but for a key with escapes, which is hashed as it is read or written.
    key_hash: LazyHash,
}

/// A key's hash, 0 until made ([`key_hash`] is never 0): the keys of what
/// no view visits (`managedFields`, `status`, most of the object for most
/// views) are never hashed. Atomic only so that a tape can be shared between
/// threads; any thread makes the same hash.
#[derive(Debug, Default)]
struct LazyHash(AtomicU32);

impl LazyHash {
    fn new(hash: u32) -> LazyHash {
        LazyHash(AtomicU32::new(hash))
    }

    fn get(&self) -> u32 {
        self.0.load(Relaxed)
    }
}

impl Clone for LazyHash {
    fn clone(&self) -> LazyHash {
        LazyHash::new(self.get())
    }
}

impl PartialEq for LazyHash {
    fn eq(&self, other: &LazyHash) -> bool {
        self.get() == other.get()
    }
}

impl Eq for LazyHash {}

impl Tape {
    /// The tape of `text`; empty when it is not one JSON value (or is 4 GiB or more).
    pub fn read(text: &str) -> Tape {
        Tape::try_read(text).unwrap_or_default()
    }

    /// `value` written as JSON, byte for byte as `serde_json::to_string`
    /// writes it, with its tape, made as it is written: no second pass over
    /// the text. (The tape is empty past 4 GiB of text.)
    pub fn write(value: &Value) -> (String, Tape) {
        thread_local! {
            /// Buffers kept from one object to the next, so that neither grows by
            /// copying: the results are copied out at their exact sizes.
            static SCRATCH: std::cell::RefCell<(Vec<u8>, Vec<TapeValue>)> = const {
                std::cell::RefCell::new((Vec::new(), Vec::new()))
            };
        }
        let (text, values) = SCRATCH.with(|scratch| {
            let mut scratch = scratch.borrow_mut();
            let (out, values) = &mut *scratch;
            out.clear();
            values.clear();
            put(value, (0, 0, 0), out, values);
            let written = (String::from_utf8(out.clone()), values.clone());
            if out.capacity() > SCRATCH_KEPT {
                *out = Vec::new();
                *values = Vec::new();
            }
            written
        });
        let Ok(text) = text else {
            // serde_json writes only UTF-8: not reached.
            return (value.to_string(), Tape::default());
        };
        if u32::try_from(text.len()).is_err() {
            return (text, Tape::default());
        }
        (text, Tape { values })
    }

    fn try_read(text: &str) -> Option<Tape> {
        let b = text.as_bytes();
        u32::try_from(b.len()).ok()?;
        // About one value per 10 bytes of what a JSON writer writes.
        let mut values: Vec<TapeValue> = Vec::with_capacity(b.len() / 10 + 1);
        // Open containers: (index, an object).
        let mut open: Vec<(usize, bool)> = Vec::new();
        let mut key = (0u32, 0u32, 0u32);
        let mut i = skip_space(b, 0);
        loop {
            // A value at `i`, with `key` if it is a member.
            let index = values.len();
            let c = *b.get(i)?;
            let end = match c {
                b'{' | b'[' => i + 1,
                b'"' => string_end(b, i)?.0,
                _ => scalar_end(b, i)?,
            };
            values.push(TapeValue {
                start: i as u32,
                end: end as u32,
                after: index as u32 + 1,
                key_start: key.0,
                key_end: key.1,
                key_hash: LazyHash::new(key.2),
            });
            key = (0, 0, 0);
            i = skip_space(b, end);
            if c == b'{' || c == b'[' {
                let object = c == b'{';
                if b.get(i) != Some(if object { &b'}' } else { &b']' }) {
                    open.push((index, object));
                    if object {
                        key = read_key(text, &mut i)?;
                    }
                    continue;
                }
                // Empty.
                values[index].end = i as u32 + 1;
                i = skip_space(b, i + 1);
            }
            // Then: closing brackets, and a comma before the next member or element.
            loop {
                let Some(&(container, object)) = open.last() else {
                    // The top value is done: only space may follow.
                    return (i == b.len()).then_some(Tape { values });
                };
                match *b.get(i)? {
                    b',' => {
                        i = skip_space(b, i + 1);
                        key = if object { read_key(text, &mut i)? } else { (0, 0, 0) };
                        break;
                    }
                    b'}' if object => {}
                    b']' if !object => {}
                    _ => return None,
                }
                values[container].end = i as u32 + 1;
                values[container].after = values.len() as u32;
                open.pop();
                i = skip_space(b, i + 1);
            }
        }
    }

    /// The [`key_hash`] of member `v`'s key as [`unquote`] reads it, made on
    /// first use (see [`LazyHash`]).
    fn key_hash(&self, text: &str, v: usize) -> u32 {
        let value = &self.values[v];
        let known = value.key_hash.get();
        if known != 0 {
            return known;
        }
        // A key with escapes was hashed when it was read or written: this one is plain.
        let inner = text.as_bytes().get(value.key_start as usize + 1..(value.key_end as usize).saturating_sub(1));
        let hash = key_hash(inner.unwrap_or_default());
        value.key_hash.0.store(hash, Relaxed);
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

/// Write `value` (a member with `key`: its range and hash) as serde_json
/// does, and its tape.
fn put(value: &Value, key: (u32, u32, u32), out: &mut Vec<u8>, values: &mut Vec<TapeValue>) {
    let index = values.len();
    values.push(TapeValue {
        start: out.len() as u32,
        end: 0,
        after: 0,
        key_start: key.0,
        key_end: key.1,
        key_hash: LazyHash::new(key.2),
    });
    match value {
        Value::Object(map) => {
            out.push(b'{');
            for (i, (k, v)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                let start = out.len();
                put_str(k, out);
                let end = out.len();
                out.push(b':');
                // Hashed now only if escaped: see `LazyHash`.
                let hash = if end - start == k.len() + 2 { 0 } else { key_hash(k.as_bytes()) };
                put(v, (start as u32, end as u32, hash), out, values);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                put(item, (0, 0, 0), out, values);
            }
            out.push(b']');
        }
        Value::String(text) => put_str(text, out),
        scalar => put_scalar(scalar, out),
    }
    values[index].end = out.len() as u32;
    values[index].after = values.len() as u32;
}

/// A string as serde_json writes it: one copy when nothing in it needs an
/// escape ([`needs_escape`]), else escaped by serde_json itself.
fn put_str(text: &str, out: &mut Vec<u8>) {
    let b = text.as_bytes();
    if needs_escape(b) {
        put_scalar(text, out);
        return;
    }
    out.reserve(b.len() + 2);
    out.push(b'"');
    out.extend_from_slice(b);
    out.push(b'"');
}

/// Whether `b` holds a byte JSON escapes: a control character (below 0x20),
/// a quote or a backslash. Eight bytes at a time, the last word overlapping
/// the one before it; a text shorter than eight bytes is read as two
/// overlapping halves.
#[inline]
fn needs_escape(b: &[u8]) -> bool {
    let any = |w: u64| bytes_below(w, 0x20) | bytes_equal(w, b'"') | bytes_equal(w, b'\\') != 0;
    let word = |at: usize| b.get(at..).and_then(<[u8]>::first_chunk::<8>).map_or(0, |w| u64::from_le_bytes(*w));
    let half = |at: usize| b.get(at..).and_then(<[u8]>::first_chunk::<4>).map_or(0, |w| u32::from_le_bytes(*w));
    match b.len() {
        n @ 8.. => (0..n / 8).any(|i| any(word(8 * i))) || (n % 8 != 0 && any(word(n - 8))),
        n @ 4..8 => any(u64::from(half(0)) | u64::from(half(n - 4)) << 32),
        _ => b.iter().any(|&c| c < 0x20 || c == b'"' || c == b'\\'),
    }
}

/// A string or scalar, escaped and formatted by serde_json itself.
fn put_scalar(scalar: &(impl serde::Serialize + ?Sized), out: &mut Vec<u8>) {
    // Writing a string, number, boolean or null into a Vec does not fail.
    let written = serde_json::to_writer(&mut *out, scalar);
    debug_assert!(written.is_ok());
}

/// The key at `*i` (a string, then `:`), with `*i` moved to the value after
/// it: its byte range with the quotes, and its [`key_hash`] if it has
/// escapes (else 0, see [`LazyHash`]).
fn read_key(text: &str, i: &mut usize) -> Option<(u32, u32, u32)> {
    let b = text.as_bytes();
    if b.get(*i) != Some(&b'"') {
        return None;
    }
    let start = *i;
    let (end, escaped) = string_end(b, start)?;
    let hash = if escaped { key_hash(unquote(text, start..end).as_bytes()) } else { 0 };
    *i = skip_space(b, end);
    if b.get(*i) != Some(&b':') {
        return None;
    }
    *i = skip_space(b, *i + 1);
    Some((start as u32, end as u32, hash))
}

#[inline]
fn skip_space(b: &[u8], mut i: usize) -> usize {
    while matches!(b.get(i), Some(b' ' | b'\n' | b'\r' | b'\t')) {
        i += 1;
    }
    i
}

/// The end of the number, `true`, `false` or `null` at `b[i]`.
fn scalar_end(b: &[u8], i: usize) -> Option<usize> {
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
/// made once, on first use, from the object's [`Tape`].
pub struct Object<'a> {
    text: std::borrow::Cow<'a, str>,
    tape: std::borrow::Cow<'a, Tape>,
    /// Each view's text; `None` when the text is not one JSON value (handed whole).
    pruned: Vec<OnceCell<Option<String>>>,
}

impl<'a> Object<'a> {
    /// An object given as JSON text with its tape ([`Tape::write`]), as
    /// `check`'s resources are.
    pub fn from_written(text: &'a str, tape: &'a Tape, views: &Views) -> Object<'a> {
        Object::new(std::borrow::Cow::Borrowed(text), std::borrow::Cow::Borrowed(tape), views)
    }

    /// An object given as JSON text that a JSON reader wrote (see [`Tape`]),
    /// read once here.
    #[cfg(test)]
    pub fn from_text(text: &'a str, views: &Views) -> Object<'a> {
        Object::new(std::borrow::Cow::Borrowed(text), std::borrow::Cow::Owned(Tape::read(text)), views)
    }

    /// An object given parsed (written as JSON once, with its tape).
    pub fn from_value(value: &Value, views: &Views) -> Object<'a> {
        let (text, tape) = Tape::write(value);
        Object::new(std::borrow::Cow::Owned(text), std::borrow::Cow::Owned(tape), views)
    }

    fn new(text: std::borrow::Cow<'a, str>, tape: std::borrow::Cow<'a, Tape>, views: &Views) -> Object<'a> {
        Object { text, tape, pruned: (0..views.len()).map(|_| OnceCell::new()).collect() }
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
        let pruned = cell.get_or_init(|| (!self.tape.is_empty()).then(|| views.views[v].prune(&self.text, &self.tape)));
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
        assert_eq!(tape.values[1].key_hash.get(), key_hash(b"k/s"), "escaped: hashed as read");
        assert_eq!(tape.values[2].key_hash.get(), 0, "plain: hashed on first use");
        assert_eq!(tape.key_hash(text, 2), key_hash(b"plain"));
        assert_eq!(tape.values[2].key_hash.get(), key_hash(b"plain"), "kept once made");
        let value: Value = serde_json::from_str(text).unwrap();
        let (written, tape) = Tape::write(&value);
        assert_eq!(written, r#"{"k/s":1,"plain":2}"#);
        assert_eq!(tape.key_hash(&written, 1), key_hash(b"k/s"));
        let value = json!({"a\"b": 1});
        let (written, tape) = Tape::write(&value);
        assert_eq!(tape.values[1].key_hash.get(), key_hash(b"a\"b"), "escaped: hashed as written");
        assert_eq!(tape.key_hash(&written, 1), key_hash(b"a\"b"));
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
        assert_eq!(Tape::write(&value), (text.clone(), Tape::read(&text)));
        assert_eq!(view(&["/a", "/b"]).prune(&text, &Tape::read(&text)), text);
        let spaced = " { \"a\" : [ 1 , { \"b\" : 2 , \"c\" : 3 } ] , \"d\" : { } }\n";
        assert_eq!(view(&["/a/*/c"]).prune(spaced, &Tape::read(spaced)), r#"{"a":[1,{"c":3}]}"#);
        assert_eq!(view(&["/d"]).prune(spaced, &Tape::read(spaced)), r#"{"d":{ }}"#);
        // Escaped keys match their unescaped paths.
        let text = r#"{"k\u002fs":1,"k":2}"#;
        assert_eq!(view(&["/k~1s"]).prune(text, &Tape::read(text)), r#"{"k\u002fs":1}"#);
    }

    #[test]
    fn strings_are_written_as_serde_json_writes_them() {
        let mut every: Vec<String> = (0u8..=0x7f).map(|c| char::from(c).to_string()).collect();
        every.extend(["é", "\u{2028}", "\u{10ffff}", "", "plain text of some length"].map(str::to_string));
        for c in every.clone() {
            for len in 0..20 {
                for at in [0, len / 2, len] {
                    let mut text = "y".repeat(len);
                    text.insert_str(at, &c);
                    let value = json!({ text.clone(): [text.clone()] });
                    assert_eq!(Tape::write(&value).0, value.to_string(), "{text:?}");
                }
            }
        }
    }

    #[test]
    fn the_tape_reads_strings_of_every_length_and_escape_placement() {
        // The string scan goes eight bytes at a time: quotes and escapes at every
        // offset of a word, and across words.
        for len in 0..40 {
            for at in 0..len {
                for escape in [r#"\""#, r"\\", r"\u00e9", r#"\\\""#, "\u{e9}"] {
                    let mut inner: String = "x".repeat(len);
                    inner.insert_str(at, escape);
                    let text = format!(r#"{{"k{inner}":["{inner}",{{"{inner}":"{inner}"}}],"z":1}}"#);
                    let value: Value = serde_json::from_str(&text).unwrap();
                    let tape = Tape::read(&text);
                    assert!(!tape.is_empty(), "{text}");
                    assert_eq!(view(&[""]).prune(&text, &tape), text);
                    assert_eq!(view(&["/z"]).prune(&text, &tape), r#"{"z":1}"#);
                    let key = value.as_object().unwrap().keys().next().unwrap();
                    let pointer = format!("/{}", key.replace('~', "~0").replace('/', "~1"));
                    assert_eq!(
                        serde_json::from_str::<Value>(&view(&[pointer.as_str()]).prune(&text, &tape)).unwrap(),
                        reference_prune(&value, std::slice::from_ref(&pointer)),
                        "{text}"
                    );
                }
            }
        }
        // Unterminated strings and escapes at the very end are not JSON.
        for bad in [r#"{"a":"abcdefghijkl"#, r#"{"a":"abcdefghijkl\"#, r#"{"abcdefghijkl\":1}"#, r#"""#] {
            assert!(Tape::read(bad).is_empty(), "{bad}");
        }
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
                // Written with its tape: the same text and the same tape as read from it.
                assert_eq!(Tape::write(&value), (r.json.to_string(), tape.clone()));
                assert_eq!(*r.tape, tape);
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
