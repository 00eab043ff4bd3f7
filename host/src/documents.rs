//! Bytes → documents: multi-document YAML (merge keys; scalars resolved as
//! kubectl's go-yaml v2 resolves them) read into JSON values, each with the
//! line it starts on.
//!
//! Line breaks are read as kubectl's YAML library (go-yaml, a port of libyaml)
//! reads them: CR, LF, CRLF and NEL are breaks, normalised to LF before
//! anything else (its `read_line`); LS and PS are breaks to it too but are
//! kept inside values, which no other reader here reproduces, so a document
//! holding a raw U+2028 or U+2029 is refused with its line rather than read a
//! third way.
//!
//! A file is then cut at its `---` lines (as kubectl's YAML reader does) so
//! that one unreadable document is reported and the others are still read.
//! The YAML event parser is driven iteratively and the value is built with an
//! explicit stack, so nesting depth, alias expansion (billion-laughs) and size
//! are bounded by [`Limits`] rather than by the call stack or memory.

use std::collections::HashMap;
use std::hash::BuildHasher as _;

use serde_json::{Map, Number, Value};
use yaml_rust2::parser::{Event, Parser, Tag};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// Bounds on what one document may cost to read.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Bytes of YAML text in one document.
    pub max_document_bytes: usize,
    /// Nesting depth of mappings and sequences.
    pub max_depth: usize,
    /// Nodes in one document, counting every node an alias copies.
    pub max_nodes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            // The API server refuses requests over 3 MiB and etcd objects over 1.5 MiB.
            max_document_bytes: 8 << 20,
            // Leaves room below serde_json's recursion limit (128) inside the policies.
            max_depth: 100,
            max_nodes: 1_000_000,
        }
    }
}

/// One document of a file: where it starts, and its value or why it could not be read.
#[derive(Debug, Clone)]
pub struct Document {
    /// 1-based position of the document in its file.
    pub index: usize,
    /// 1-based line the document starts on.
    pub line: usize,
    pub content: Result<Parsed, ReadError>,
    /// The template it was rendered from: the last `# Source: CHART/templates/FILE`
    /// comment before its content, as `helm template` writes it.
    pub template: Option<String>,
    /// Its text (line breaks normalised), from its first line: where [`locate`]
    /// finds the line of a field.
    pub text: std::sync::Arc<str>,
}

/// A document's value, with the lines of the items of a top-level `items` list.
#[derive(Debug, Clone)]
pub struct Parsed {
    pub value: Value,
    pub item_lines: Vec<usize>,
    /// The line of the file the document's text starts on.
    pub first_line: usize,
    /// The parser's events of the reading, kept to place findings without
    /// reading the text again ([`Locator::from_steps`]); `None` for a value
    /// that was not read from the text.
    pub steps: Option<std::sync::Arc<Steps>>,
}

/// Why a document could not be read, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// Split `text` into documents and read each. Empty and comment-only documents
/// are skipped (they still count for numbering).
pub fn read_documents(text: &str, limits: &Limits) -> Vec<Document> {
    let text = normalize_breaks(text);
    let mut out = Vec::new();
    for chunk in split(&text) {
        let first_line = chunk.first_line;
        let template = helm_source(chunk.text);
        let shared: std::sync::Arc<str> = std::sync::Arc::from(chunk.text);
        let document = |line: usize, content: Result<Parsed, ReadError>| Document {
            index: chunk.index,
            line,
            content,
            template: template.clone(),
            text: shared.clone(),
        };
        if chunk.text.len() > limits.max_document_bytes {
            out.push(document(
                first_line,
                Err(ReadError {
                    line: first_line,
                    column: 1,
                    message: format!(
                        "document is {} bytes, over the limit of {} bytes",
                        chunk.text.len(),
                        limits.max_document_bytes
                    ),
                }),
            ));
            continue;
        }
        if let Some(e) = unicode_break(chunk.text) {
            out.push(document(first_line, Err(ReadError { line: first_line + e.line - 1, ..e })));
            continue;
        }
        match parse_chunk(chunk.text, limits) {
            Ok(Some((parsed, start))) => out.push(document(
                first_line + start.saturating_sub(1),
                Ok(Parsed {
                    value: parsed.value,
                    item_lines: parsed.item_lines.into_iter().map(|l| first_line + l - 1).collect(),
                    first_line,
                    steps: Some(std::sync::Arc::new(parsed.steps)),
                }),
            )),
            Ok(None) => {}
            Err(mut e) => {
                e.line = first_line + e.line.saturating_sub(1);
                out.push(document(first_line, Err(e)));
            }
        }
    }
    out
}

/// CR LF, a lone CR and NEL (U+0085) become LF, as go-yaml's `read_line` makes
/// them; line numbers do not change.
fn normalize_breaks(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains(['\r', '\u{85}']) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                out.push('\n');
            }
            '\u{85}' => out.push('\n'),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// The first raw LS (U+2028) or PS (U+2029) of a document: a line break to
/// kubectl's reader, a plain character to most others.
fn unicode_break(text: &str) -> Option<ReadError> {
    let (at, c) = text.char_indices().find(|(_, c)| matches!(c, '\u{2028}' | '\u{2029}'))?;
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    let name = if c == '\u{2028}' { "LINE SEPARATOR" } else { "PARAGRAPH SEPARATOR" };
    let code = u32::from(c);
    Some(ReadError {
        line,
        column,
        message: format!(
            "a raw {name} (U+{code:04X}): kubectl's YAML reader breaks the line there, other readers do not; \
             write a newline, or the escape \\u{code:04X} inside a double-quoted string"
        ),
    })
}

/// `helm template` names the template each document comes from in a
/// `# Source: CHART/templates/FILE` comment before it: the last such comment
/// before the first line of content.
fn helm_source(chunk: &str) -> Option<String> {
    let mut found = None;
    for line in chunk.lines() {
        if is_separator(line) {
            continue;
        }
        if !is_blank_or_comment(line) {
            break;
        }
        if let Some(path) = line.trim().strip_prefix("# Source:") {
            let path = path.trim();
            if !path.is_empty() {
                found = Some(path.to_string());
            }
        }
    }
    found
}

/// Where the node a JSON pointer names is written in a document's `text`: the
/// 1-based line and column of its key, for a field of a mapping; of the item
/// itself, for an item of a sequence; of the document's first node, for the
/// empty pointer. A node that is not written there (a missing field, one a
/// merge key brings in) is placed at the deepest ancestor that is. `None`
/// when the text does not parse.
///
/// Each call reads the whole text: to place many pointers in one document,
/// build a [`Locator`] once.
pub fn locate(text: &str, pointer: &str) -> Option<(usize, usize)> {
    Locator::new(text)?.locate(pointer)
}

/// Where every written node of one document is, from a single walk of its
/// text: [`Locator::locate`] places a pointer as [`locate`] does, without
/// reading the text again.
///
/// The nodes form a tree of paths: each node is found by its parent and its
/// token (a key as read, or an item's index), so neither making the locator
/// nor placing a pointer builds a path, and the whole index is three
/// allocations. A path written twice (the same key spelt two ways that read
/// as different fields, such as `1` and `"1"`; a second document in the
/// text) is one node, which keeps the place of the node read last, since the
/// placement of [`locate`] is that of the last written node on the pointer's
/// path.
pub struct Locator {
    /// The written nodes; the document's root, when there is one, first.
    nodes: Vec<Node>,
    /// The nodes' tokens, one after another (unescaped).
    tokens: String,
    /// Each node (an index into `nodes`) by its parent and token.
    children: hashbrown::HashTable<u32>,
    hasher: foldhash::fast::RandomState,
}

/// A written node of a [`Locator`].
struct Node {
    /// Its parent's index (the root's is its own).
    parent: u32,
    /// Its token: `tokens[token.0..token.1]`.
    token: (u32, u32),
    /// The hash of (parent, token).
    hash: u64,
    /// When it was read: its order among the nodes.
    order: u32,
    /// Its 1-based line and column.
    at: (u32, u32),
}

impl std::fmt::Debug for Locator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Locator({} nodes)", self.nodes.len())
    }
}

/// One event of the YAML parser, with what placing a field needs of it.
#[derive(Debug, Clone)]
enum Step {
    /// A collection starts; `block`: a mapping written in block style (not
    /// one that opens with `{` where the parser marks it).
    Open {
        map: bool,
        block: bool,
    },
    Close,
    Scalar(Box<str>),
    Alias,
}

/// A document's parser events in order, each with its 1-based line and
/// column: recorded while the document is read, so that placing a finding
/// ([`Locator`]) does not read the text a second time.
#[derive(Debug, Clone, Default)]
pub struct Steps(Vec<(Step, (u32, u32))>);

impl Steps {
    /// Note `event`, read at `mark` in `text` (the events a [`Locator`] does
    /// not use are left out).
    fn push(&mut self, event: &Event, mark: &Marker, text: &mut Marked<'_>) {
        let step = match event {
            Event::SequenceStart(..) => Step::Open { map: false, block: false },
            Event::MappingStart(..) => Step::Open { map: true, block: !text.opens_flow(mark) },
            Event::SequenceEnd | Event::MappingEnd => Step::Close,
            Event::Scalar(text, ..) => Step::Scalar(text.as_str().into()),
            Event::Alias(_) => Step::Alias,
            _ => return,
        };
        let narrow = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        self.0.push((step, (narrow(mark.line()), narrow(mark.col() + 1))));
    }

    /// Every event of `text`; `None` when it does not parse.
    fn read(text: &str) -> Option<Steps> {
        let mut parser = Parser::new_from_str(text);
        let mut steps = Steps::default();
        let mut marked = Marked::new(text);
        loop {
            let (event, mark) = parser.next_token().ok()?;
            if event == Event::StreamEnd {
                return Some(steps);
            }
            steps.push(&event, &mark, &mut marked);
        }
    }
}

/// A text the parser reads, to look at the character a mark points to.
struct Marked<'t> {
    text: &'t str,
    /// All ASCII: a mark's character index is its byte offset.
    ascii: bool,
    /// Otherwise, the byte offset of each line read so far.
    lines: Vec<usize>,
}

impl<'t> Marked<'t> {
    fn new(text: &'t str) -> Marked<'t> {
        Marked { text, ascii: text.is_ascii(), lines: Vec::new() }
    }

    /// Whether the character at `mark` (its line and column) is `{`.
    fn opens_flow(&mut self, mark: &Marker) -> bool {
        if self.ascii {
            // Line and column agree with the index in a text without multi-byte characters.
            return self.text.as_bytes().get(mark.index()) == Some(&b'{');
        }
        let Some(line) = self.line(mark.line()) else { return false };
        line.chars().nth(mark.col()) == Some('{')
    }

    /// The 1-based line `n` of the text, without its break (as [`str::lines`] has it).
    fn line(&mut self, n: usize) -> Option<&'t str> {
        if self.lines.is_empty() {
            self.lines.push(0);
        }
        while self.lines.len() < n {
            let last = *self.lines.last()?;
            let end = memchr::memchr(b'\n', self.text.as_bytes().get(last..)?)?;
            self.lines.push(last + end + 1);
        }
        let start = *self.lines.get(n.checked_sub(1)?)?;
        let rest = self.text.get(start..)?;
        if rest.is_empty() {
            return None;
        }
        let line = rest.split('\n').next()?;
        Some(line.strip_suffix('\r').unwrap_or(line))
    }
}

impl Locator {
    /// Read `text` once, recording where each node on a path of plain
    /// tokens is written. `None` when the text does not parse.
    pub fn new(text: &str) -> Option<Locator> {
        Locator::from_steps(&Steps::read(text)?)
    }

    /// The child of node `parent` with `token`, if it was written.
    fn child(&self, parent: u32, token: &str) -> Option<u32> {
        let hash = self.hasher.hash_one((parent, token));
        self.children.find(hash, |&i| self.is(i, parent, token)).copied()
    }

    /// Whether node `i` is the child `token` of `parent`.
    fn is(&self, i: u32, parent: u32, token: &str) -> bool {
        let node = &self.nodes[i as usize];
        node.parent == parent && self.tokens.get(node.token.0 as usize..node.token.1 as usize) == Some(token)
    }

    /// Node `parent`'s child `token`, now read as the `order`th node at
    /// `at`: a new node, or the one already on that path.
    fn write(&mut self, parent: u32, token: &str, order: u32, at: (u32, u32)) -> Option<u32> {
        let hash = self.hasher.hash_one((parent, token));
        if let Some(&i) = self.children.find(hash, |&i| self.is(i, parent, token)) {
            let node = &mut self.nodes[i as usize];
            (node.order, node.at) = (order, at);
            return Some(i);
        }
        let i = u32::try_from(self.nodes.len()).ok()?;
        let start = u32::try_from(self.tokens.len()).ok()?;
        self.tokens.push_str(token);
        let end = u32::try_from(self.tokens.len()).ok()?;
        self.nodes.push(Node { parent, token: (start, end), hash, order, at });
        let nodes = &self.nodes;
        self.children.insert_unique(hash, i, |&j| nodes[j as usize].hash);
        Some(i)
    }

    /// The locator of a text from the events its reading recorded (the same
    /// as [`Locator::new`] reading it again).
    ///
    /// The placement rules are [`locate`]'s: a field is at its key (only
    /// keys that are scalars name a field; nothing inside a key counts), a
    /// sequence item at itself, except that a block mapping (an item, or
    /// the document) is at its first key, since the parser marks it after
    /// that key; an alias is written where it is but its content is not
    /// (nor that of a merge key, whose token is `<<`).
    pub fn from_steps(steps: &Steps) -> Option<Locator> {
        /// The key a mapping's next value is under: `None` while a key is
        /// expected, `Some(None)` for a key that is not a scalar.
        type PendingKey<'s> = Option<Option<&'s str>>;
        /// A collection being read.
        struct Open<'s> {
            /// Mapping: the key of the value being read, `None` while a key is
            /// expected; and where the key is.
            map: Option<(PendingKey<'s>, (u32, u32))>,
            /// Sequence: the index of the next item.
            next: usize,
            /// Its node, when it is a written node (not inside a key, nor
            /// under a key that is not a scalar).
            node: Option<u32>,
            /// A collection used as a mapping key: nothing inside it counts.
            in_key: bool,
        }
        const ROOT: u32 = 0;
        // At most one node a step: never grown.
        let mut locator = Locator {
            nodes: Vec::with_capacity(steps.0.len()),
            tokens: String::with_capacity(steps.0.len() * 8),
            children: hashbrown::HashTable::with_capacity(steps.0.len()),
            hasher: foldhash::fast::RandomState::default(),
        };
        let mut stack: Vec<Open> = Vec::new();
        let mut order: u32 = 0;
        // Block mappings waiting for their first key: (node, order). Any
        // key read next is that key, whatever it belongs to.
        let mut at_first_key: Vec<(u32, u32)> = Vec::new();
        let mut index = String::new();
        for &(ref step, here) in &steps.0 {
            let collection = matches!(step, Step::Open { .. });
            let block_mapping = matches!(step, Step::Open { map: true, block: true });
            match step {
                Step::Close => {
                    let closed = stack.pop()?;
                    if let Some(parent) = stack.last_mut()
                        && let Some((key, _)) = &mut parent.map
                    {
                        // The collection was a key (its value follows), or a value (a key follows).
                        *key = if closed.in_key { Some(None) } else { None };
                    }
                }
                Step::Scalar(_) | Step::Alias | Step::Open { .. } => {
                    // A key of a mapping?
                    if let Some(parent) = stack.last_mut()
                        && let Some((key, at)) = &mut parent.map
                        && key.is_none()
                    {
                        if collection {
                            stack.push(Open { map: None, next: 0, node: None, in_key: true });
                            if let Step::Open { map: true, .. } = step {
                                stack.last_mut()?.map = Some((None, here));
                            }
                        } else {
                            let name = match step {
                                Step::Scalar(text) => Some(&**text),
                                _ => None,
                            };
                            *key = Some(name);
                            *at = here;
                        }
                        for (node, when) in at_first_key.drain(..) {
                            let node = &mut locator.nodes[node as usize];
                            if node.order == when {
                                node.at = here;
                            }
                        }
                        continue;
                    }
                    // A value: of the root, of a mapping's key, or a sequence's next item.
                    let (node, in_key) = match stack.last_mut() {
                        None => {
                            if locator.nodes.is_empty() {
                                order += 1;
                                locator.nodes.push(Node { parent: ROOT, token: (0, 0), hash: 0, order, at: here });
                                if block_mapping {
                                    at_first_key.push((ROOT, order));
                                }
                            }
                            (Some(ROOT), false)
                        }
                        Some(parent) => {
                            let (token, at) = match &mut parent.map {
                                Some((key, at)) => (key.take().flatten(), *at),
                                None => {
                                    parent.next += 1;
                                    index.clear();
                                    {
                                        use std::fmt::Write as _;
                                        let _ = write!(index, "{}", parent.next - 1);
                                    }
                                    (Some(index.as_str()), here)
                                }
                            };
                            let node = match (parent.node, token) {
                                (Some(within), Some(token)) if !parent.in_key => {
                                    order += 1;
                                    let node = locator.write(within, token, order, at)?;
                                    // A mapping item of a sequence: at its first key.
                                    if parent.map.is_none() && block_mapping {
                                        at_first_key.push((node, order));
                                    }
                                    Some(node)
                                }
                                _ => None,
                            };
                            (node, parent.in_key)
                        }
                    };
                    if collection {
                        let map = matches!(step, Step::Open { map: true, .. }).then_some((None, here));
                        stack.push(Open { map, next: 0, node, in_key });
                    }
                }
            }
        }
        Some(locator)
    }

    /// Where the node `pointer` names is written, or its deepest written
    /// ancestor: as [`locate`] places it. `None` for a text with no node.
    pub fn locate(&self, pointer: &str) -> Option<(usize, usize)> {
        let root = self.nodes.first()?;
        let mut best = root;
        let mut at = 0;
        for token in pointer.split('/').skip(1) {
            let child = if token.contains('~') {
                self.child(at, &token.replace("~1", "/").replace("~0", "~"))
            } else {
                self.child(at, token)
            };
            let Some(child) = child else {
                break;
            };
            at = child;
            let node = &self.nodes[child as usize];
            if node.order > best.order {
                best = node;
            }
        }
        Some((best.at.0 as usize, best.at.1 as usize))
    }
}

struct Chunk<'a> {
    index: usize,
    first_line: usize,
    text: &'a str,
}

/// A `---` line: `---` at the start of a line, then nothing or a blank. (The
/// YAML parser refuses the rarer `---#comment`, so that is never a third reading.)
fn is_separator(line: &str) -> bool {
    let line = line.trim_end_matches(['\n', '\r']);
    line.strip_prefix("---").is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t', '\r']))
}

fn is_blank_or_comment(line: &str) -> bool {
    let t = line.trim();
    t.is_empty() || t.starts_with('#')
}

/// Cut at `---` lines. A leading part with only directives is kept with the
/// document that follows; a leading part with nothing in it is not numbered.
fn split(text: &str) -> Vec<Chunk<'_>> {
    let mut starts = vec![(0usize, 1usize)];
    let mut offset = 0;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        if i > 0 && is_separator(line) {
            starts.push((offset, i + 1));
        }
        offset += line.len();
    }
    let mut chunks = Vec::new();
    let mut carry: Option<(usize, usize)> = None;
    for (n, &(start, line)) in starts.iter().enumerate() {
        let end = starts.get(n + 1).map_or(text.len(), |s| s.0);
        let body = &text[start..end];
        let has_content = body
            .lines()
            .any(|l| !is_blank_or_comment(l) && !is_separator(l) && !l.starts_with('%') && l.trim() != "...");
        let has_directive = body.lines().any(|l| l.starts_with('%'));
        let opens = is_separator(body.lines().next().unwrap_or(""));
        let (start, line) = carry.take().unwrap_or((start, line));
        if !has_content && has_directive {
            carry = Some((start, line));
            continue;
        }
        // Number documents as a reader counts them: the part before the first
        // `---` counts only when it holds something.
        let counted = has_content || opens;
        if counted {
            chunks.push(Chunk { index: chunks.len() + 1, first_line: line, text: &text[start..end] });
        }
    }
    chunks
}

struct Built {
    value: Value,
    item_lines: Vec<usize>,
    steps: Steps,
}

enum Frame {
    Seq {
        items: Vec<Value>,
        anchor: usize,
    },
    Map {
        entries: Vec<(String, Value, (usize, usize))>,
        merges: Vec<Value>,
        key: Option<Key>,
        anchor: usize,
        line: usize,
    },
}

enum Key {
    /// The key and where it stands (line, column), for duplicate-key errors.
    Plain(String, (usize, usize)),
    Merge,
}

struct Builder<'l> {
    limits: &'l Limits,
    stack: Vec<Frame>,
    anchors: HashMap<usize, (Value, usize)>,
    nodes: usize,
    root: Option<Value>,
    item_lines: Vec<usize>,
}

fn err(mark: &Marker, message: impl Into<String>) -> ReadError {
    ReadError { line: mark.line(), column: mark.col() + 1, message: message.into() }
}

/// Nodes of a value (each scalar, sequence and mapping counts one).
pub(crate) fn count_nodes(v: &Value) -> usize {
    let mut n = 0;
    let mut todo = vec![v];
    while let Some(v) = todo.pop() {
        n += 1;
        match v {
            Value::Array(a) => todo.extend(a.iter()),
            Value::Object(o) => todo.extend(o.values()),
            _ => {}
        }
    }
    n
}

impl Builder<'_> {
    fn count(&mut self, n: usize, mark: &Marker) -> Result<(), ReadError> {
        self.nodes += n;
        if self.nodes > self.limits.max_nodes {
            return Err(err(
                mark,
                format!(
                    "document expands to more than {} nodes (an alias bomb or an oversized document)",
                    self.limits.max_nodes
                ),
            ));
        }
        Ok(())
    }

    fn open(&mut self, frame: Frame, mark: &Marker) -> Result<(), ReadError> {
        // The line of each item of a top-level `items` list, for `kind: List`.
        if self.stack.len() == 2
            && let (Frame::Map { key: Some(Key::Plain(k, _)), .. }, Frame::Seq { .. }) =
                (&self.stack[0], &self.stack[1])
            && k == "items"
        {
            self.item_lines.push(mark.line());
        }
        if self.stack.len() >= self.limits.max_depth {
            return Err(err(mark, format!("document nests deeper than {} levels", self.limits.max_depth)));
        }
        self.count(1, mark)?;
        self.stack.push(frame);
        Ok(())
    }

    /// A finished node: remember it under its anchor, and put it in its parent.
    fn finish(&mut self, value: Value, anchor: usize, mark: &Marker) -> Result<(), ReadError> {
        if anchor > 0 {
            let size = count_nodes(&value);
            self.anchors.insert(anchor, (value.clone(), size));
        }
        self.place(value, mark)
    }

    fn place(&mut self, value: Value, mark: &Marker) -> Result<(), ReadError> {
        match self.stack.last_mut() {
            None => self.root = Some(value),
            Some(Frame::Seq { items, .. }) => items.push(value),
            Some(Frame::Map { entries, merges, key, .. }) => match key.take() {
                None => {
                    let at = (mark.line(), mark.col() + 1);
                    let k = match value {
                        Value::String(s) => Key::Plain(s, at),
                        Value::Number(n) => Key::Plain(n.to_string(), at),
                        Value::Bool(b) => Key::Plain(b.to_string(), at),
                        // sigs.k8s.io/yaml refuses a null key ("unsupported map key").
                        Value::Null => {
                            return Err(err(mark, "a mapping key cannot be null (kubectl refuses it too)"));
                        }
                        _ => {
                            return Err(err(mark, "a mapping or sequence cannot be a mapping key"));
                        }
                    };
                    *key = Some(k);
                }
                Some(Key::Plain(k, at)) => entries.push((k, value, at)),
                Some(Key::Merge) => merges.push(value),
            },
        }
        Ok(())
    }

    fn scalar(
        &mut self,
        text: String,
        style: TScalarStyle,
        anchor: usize,
        tag: Option<Tag>,
        mark: &Marker,
    ) -> Result<(), ReadError> {
        self.count(1, mark)?;
        let expecting_key = matches!(self.stack.last(), Some(Frame::Map { key: None, .. }));
        if expecting_key && style == TScalarStyle::Plain && text == "<<" && tag.is_none() {
            if let Some(Frame::Map { key, .. }) = self.stack.last_mut() {
                *key = Some(Key::Merge);
            }
            return Ok(());
        }
        let value = resolve_scalar(text, style, tag.as_ref(), mark)?;
        self.finish(value, anchor, mark)
    }

    fn close_map(&mut self, mark: &Marker) -> Result<(), ReadError> {
        let Some(Frame::Map { entries, merges, anchor, line, .. }) = self.stack.pop() else {
            return Err(err(mark, "unbalanced mapping end"));
        };
        let mut map = Map::new();
        for (k, v, (key_line, key_column)) in entries {
            if map.contains_key(&k) {
                return Err(ReadError {
                    line: key_line,
                    column: key_column,
                    message: format!("duplicate key {k:?} in the mapping that starts on line {line}"),
                });
            }
            map.insert(k, v);
        }
        // Merge keys (`<<`): explicit keys win, then earlier merged mappings.
        for merged in merges {
            let sources = match merged {
                Value::Object(o) => vec![o],
                Value::Array(list) => {
                    let mut maps = Vec::new();
                    for item in list {
                        match item {
                            Value::Object(o) => maps.push(o),
                            _ => {
                                return Err(err(mark, "a merge key (<<) takes a mapping or a list of mappings"));
                            }
                        }
                    }
                    maps
                }
                _ => {
                    return Err(err(mark, "a merge key (<<) takes a mapping or a list of mappings"));
                }
            };
            for source in sources {
                for (k, v) in source {
                    map.entry(k).or_insert(v);
                }
            }
        }
        self.finish(Value::Object(map), anchor, mark)
    }
}

type Chunked = Option<(Built, usize)>;

/// The column to report for a parse error at (`line`, `column`), 1-based. The
/// parser stops at the `:` of a misindented or misplaced key ("mapping values
/// are not allowed in this context", "did not find expected key"); what is
/// wrong is the key, so its first character is the column that helps.
fn key_column(text: &str, line: usize, column: usize) -> usize {
    let Some(chars) = text.lines().nth(line.wrapping_sub(1)).map(|l| l.chars().collect::<Vec<_>>()) else {
        return column;
    };
    if chars.get(column.wrapping_sub(1)) != Some(&':') {
        return column;
    }
    let mut start = column - 1;
    while start > 0 && !matches!(chars[start - 1], ' ' | '\t' | '{' | ',' | '[') {
        start -= 1;
    }
    if start == column - 1 { column } else { start + 1 }
}

fn parse_chunk(text: &str, limits: &Limits) -> Result<Chunked, ReadError> {
    let mut parser = Parser::new_from_str(text);
    let mut builder =
        Builder { limits, stack: Vec::new(), anchors: HashMap::new(), nodes: 0, root: None, item_lines: Vec::new() };
    let mut start_line = 1;
    let mut documents = 0;
    let mut steps = Steps::default();
    let mut marked = Marked::new(text);
    loop {
        let (event, mark) = match parser.next_token() {
            Ok(x) => x,
            Err(e) => {
                let message = if e.info().contains("recursion limit") {
                    "document nests deeper than the YAML parser allows".to_string()
                } else {
                    format!("invalid YAML: {}", e.info())
                };
                let (line, column) = (e.marker().line(), e.marker().col() + 1);
                return Err(ReadError { line, column: key_column(text, line, column), message });
            }
        };
        steps.push(&event, &mark, &mut marked);
        match event {
            Event::StreamStart | Event::Nothing | Event::DocumentEnd => {}
            Event::StreamEnd => break,
            Event::DocumentStart => {
                documents += 1;
                if documents > 1 {
                    return Err(err(&mark, "a second document without a `---` line before it"));
                }
            }
            Event::Alias(id) => {
                let Some((value, size)) = builder.anchors.get(&id).map(|(v, s)| (v.clone(), *s)) else {
                    return Err(err(&mark, "alias to an unknown anchor"));
                };
                builder.count(size, &mark)?;
                builder.place(value, &mark)?;
            }
            Event::Scalar(text, style, anchor, tag) => {
                if builder.stack.is_empty() {
                    start_line = mark.line();
                }
                builder.scalar(text, style, anchor, tag, &mark)?;
            }
            Event::SequenceStart(anchor, _) => {
                if builder.stack.is_empty() {
                    start_line = mark.line();
                }
                builder.open(Frame::Seq { items: Vec::new(), anchor }, &mark)?;
            }
            Event::SequenceEnd => {
                let Some(Frame::Seq { items, anchor }) = builder.stack.pop() else {
                    return Err(err(&mark, "unbalanced sequence end"));
                };
                builder.finish(Value::Array(items), anchor, &mark)?;
            }
            Event::MappingStart(anchor, _) => {
                if builder.stack.is_empty() {
                    start_line = mark.line();
                }
                let line = mark.line();
                builder.open(Frame::Map { entries: Vec::new(), merges: Vec::new(), key: None, anchor, line }, &mark)?;
            }
            Event::MappingEnd => builder.close_map(&mark)?,
        }
    }
    Ok(match builder.root {
        None | Some(Value::Null) => None,
        Some(value) => Some((Built { value, item_lines: builder.item_lines, steps }, start_line)),
    })
}

/// Resolve a scalar as kubectl does. `kubectl apply` turns YAML into JSON
/// with `sigs.k8s.io/yaml`, which decodes with go-yaml v2 into untyped values
/// (`resolve.go`): so a plain `yes`, `on` or `y` is `true` (YAML 1.1
/// booleans), `010` is 8 (a leading zero is octal), `1_000` is 1000, `0b101`
/// is 5, and a number too large for an integer is a float. The JSON it sends
/// writes an integral float as an integer, and so does this. Quoted scalars
/// are strings; explicit `!!` tags are honoured.
fn resolve_scalar(text: String, style: TScalarStyle, tag: Option<&Tag>, mark: &Marker) -> Result<Value, ReadError> {
    if let Some(tag) = tag
        && (tag.handle == "tag:yaml.org,2002:" || tag.handle == "!!")
    {
        return match tag.suffix.as_str() {
            "str" | "binary" | "timestamp" => Ok(Value::String(text)),
            "null" if is_null(&text) => Ok(Value::Null),
            "null" => Err(err(mark, format!("{text:?} is not a !!null"))),
            "bool" => match parse_bool(&text) {
                Some(b) => Ok(Value::Bool(b)),
                None => Err(err(mark, format!("{text:?} is not a !!bool"))),
            },
            "int" => match parse_number(&text) {
                Some(n @ Value::Number(_)) if n.is_i64() || n.is_u64() => Ok(n),
                _ => Err(err(mark, format!("{text:?} is not an !!int"))),
            },
            "float" => match parse_number(&text) {
                Some(n @ Value::Number(_)) => Ok(n),
                _ => Err(err(mark, format!("{text:?} is not a !!float"))),
            },
            _ => Ok(Value::String(text)),
        };
    }
    if style != TScalarStyle::Plain {
        return Ok(Value::String(text));
    }
    if is_null(&text) {
        return Ok(Value::Null);
    }
    if let Some(b) = parse_bool(&text) {
        return Ok(Value::Bool(b));
    }
    Ok(parse_number(&text).unwrap_or(Value::String(text)))
}

fn is_null(t: &str) -> bool {
    matches!(t, "" | "~" | "null" | "Null" | "NULL")
}

/// go-yaml v2's booleans: YAML 1.1's words.
fn parse_bool(t: &str) -> Option<bool> {
    match t {
        "y" | "Y" | "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => Some(true),
        "n" | "N" | "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => Some(false),
        _ => None,
    }
}

/// A number as go-yaml v2 reads a plain scalar that starts with a digit, a
/// sign or a dot: underscores dropped, then Go's `strconv.ParseInt(s, 0, 64)`
/// (sign; `0x`, `0o`, `0b` or a leading `0` for octal), then `ParseUint`, then
/// a float of YAML's form. Infinities and NaN have no JSON form: kept as text.
fn parse_number(t: &str) -> Option<Value> {
    if matches!(t, ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" | "-.inf" | "-.Inf" | "-.INF")
        || matches!(t, ".nan" | ".NaN" | ".NAN")
    {
        return Some(Value::String(t.to_string()));
    }
    let first = t.bytes().next()?;
    if first == b'.' {
        return float_value(t);
    }
    if !(first.is_ascii_digit() || first == b'+' || first == b'-') {
        return None;
    }
    let plain: String = t.chars().filter(|c| *c != '_').collect();
    if let Some(n) = go_parse_int(&plain) {
        return Some(n);
    }
    float_value(&plain)
}

/// Go's `ParseInt(s, 0, 64)`, falling back to `ParseUint(s, 0, 64)` for
/// values above `i64::MAX`.
fn go_parse_int(s: &str) -> Option<Value> {
    let (negative, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let lower = body.get(..2).map(str::to_ascii_lowercase);
    let (digits, radix) = match lower.as_deref() {
        Some("0x") => (&body[2..], 16),
        Some("0o") => (&body[2..], 8),
        Some("0b") => (&body[2..], 2),
        _ if body.len() > 1 && body.starts_with('0') => (&body[1..], 8),
        _ => (body, 10),
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let magnitude = u64::from_str_radix(digits, radix).ok()?;
    if negative {
        let limit = i64::MIN.unsigned_abs();
        return match magnitude {
            m if m == limit => Some(Value::Number(i64::MIN.into())),
            m if m < limit => Some(Value::Number((-(m as i64)).into())),
            _ => None,
        };
    }
    Some(Value::Number(magnitude.into()))
}

/// `[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?`, as a JSON number
/// written the way Go's encoder writes a float64: integral values as integers.
fn float_value(t: &str) -> Option<Value> {
    let body = t.strip_prefix(['-', '+']).unwrap_or(t);
    let bytes = body.as_bytes();
    let mut i = 0;
    let int_digits = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
    i += int_digits;
    let mut frac_digits = 0;
    if bytes.get(i) == Some(&b'.') {
        i += 1;
        frac_digits = bytes[i..].iter().take_while(|b| b.is_ascii_digit()).count();
        i += frac_digits;
    }
    if int_digits == 0 && frac_digits == 0 {
        return None;
    }
    if matches!(bytes.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(bytes.get(i), Some(b'-' | b'+')) {
            i += 1;
        }
        let exp = bytes[i..].iter().take_while(|b| b.is_ascii_digit()).count();
        if exp == 0 {
            return None;
        }
        i += exp;
    }
    if i != bytes.len() {
        return None;
    }
    let f = t.parse::<f64>().ok().filter(|f| f.is_finite())?;
    // Go's encoding/json writes 1500.0 as 1500 (and uses an exponent only from 1e21).
    if f.fract() == 0.0 && f.abs() < 1e21 {
        if f.abs() < 9.007_199_254_740_992e15 {
            return Some(Value::Number((f as i64).into()));
        }
        if f >= 0.0 && f <= u64::MAX as f64 {
            return Some(Value::Number((f as u64).into()));
        }
    }
    Number::from_f64(f).map(Value::Number)
}

fn to_yaml_node(v: &Value) -> yaml_rust2::Yaml {
    use yaml_rust2::Yaml;
    match v {
        Value::Null => Yaml::Null,
        Value::Bool(b) => Yaml::Boolean(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Yaml::Integer(i),
            None => Yaml::Real(n.to_string()),
        },
        Value::String(s) => Yaml::String(s.clone()),
        Value::Array(a) => Yaml::Array(a.iter().map(to_yaml_node).collect()),
        Value::Object(o) => Yaml::Hash(o.iter().map(|(k, v)| (Yaml::String(k.clone()), to_yaml_node(v))).collect()),
    }
}

/// One YAML document (starting with `---`) for a JSON value, for output that
/// `kubectl apply -f -` reads.
pub fn to_yaml(v: &Value) -> String {
    let mut text = String::new();
    let mut emitter = yaml_rust2::YamlEmitter::new(&mut text);
    emitter.multiline_strings(true);
    // Writing to a String cannot fail.
    let _ = emitter.dump(&to_yaml_node(v));
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::locate_walk::{locate_walk, pointers};
    use serde_json::json;

    fn values(text: &str) -> Vec<Result<Value, ReadError>> {
        read_documents(text, &Limits::default()).into_iter().map(|d| d.content.map(|p| p.value)).collect()
    }

    /// Pointers that are not plain paths of a value.
    const ODD_POINTERS: [&str; 9] = ["", "/", "//", "x", "/~2", "/a~1b", "/a~0b", "/0/", "/items/01"];

    /// The [`Locator`] against the walk per pointer, on `text` for
    /// `pointers`; the mismatches, described. The locator is made from
    /// `steps`, the events of the text's reading, or else by reading it.
    fn disagreements<'a>(
        text: &str,
        steps: Option<&Steps>,
        pointers: impl IntoIterator<Item = &'a str>,
    ) -> Vec<String> {
        let locator = match steps {
            Some(steps) => Locator::from_steps(steps),
            None => Locator::new(text),
        };
        let mut wrong = Vec::new();
        for pointer in pointers {
            let indexed = locator.as_ref().and_then(|l| l.locate(pointer));
            let walked = locate_walk(text, pointer);
            if indexed != walked {
                wrong.push(format!("{pointer:?}: index {indexed:?}, walk {walked:?}"));
            }
        }
        wrong
    }

    #[test]
    fn the_locator_places_tricky_yaml_as_the_walk_does() {
        let texts = [
            "kind: Pod\nspec:\n  containers:\n  - name: a\n    image: x\n  - {name: b, image: y}\n  - - nested\n",
            // Merge keys and aliases: what they bring in is not written there.
            "base: &b {x: 1, w: 2}\nother: &o {z: 3}\nm:\n  <<: [*b, *o]\n  w: 9\nk: *b\nl: &l\n  a: 1\nn: *l\n",
            "items:\n- &x {}\n- a: 1\n- &y {a: 1}\n- !!map {b: 2}\n- &z\n  c: 3\n- []\n- {}\n- !!map {}\n- [0]\n- d: 4\n",
            // Keys that are collections or aliases, quoted keys, keys with `/` and `~`.
            "? [a, b]\n: v\n? {c: d}\n: w\n*k : 1\n\"q\": {'r': 2}\na/b: 3\na~b: 4\n\"\": 5\n",
            "{\"kind\": \"List\", \"items\": [{\"a\": [1, {\"b\": 2}]}, {\"c\": 3}]}\n",
            "- - - deep\n  - x\n- y: {z: [1, 2]}\n",
            "# comment\n\nkey:\n\n  # more\n  inner: value\n  list:\n  - 1\n  -\n  - null\n",
            "a: |\n  text\n  more\nb: >-\n  folded\nc: 'quoted\n  on two lines'\nd: [x,\n  y]\n",
            "&root\nkey: 1\n",
            "!!map\nkey: 1\n",
            "plain scalar\n",
            "",
            "a: [1, 2\n",
            "kind: List\nitems:\n- kind: List\n  items:\n  - {kind: Pod, spec: {containers: [{name: c}]}}\n  - kind: Pod\n    metadata:\n      name: p\n",
            "x:\n  y: 1\n...\n",
            // Characters of several bytes before a mapping's `{` (a mark counts characters).
            "ключ: {вложенный: 1}\nx: [{y: 2}, {é: {ü: 3}}]\nñ:\n  ä: {b: 4}\n  f:\n  - {c: 5}\n",
            "\u{feff}a: {b: 1}\nc:\n  d: [{e: 2}]\n",
            "名前: x\nitems:\n- {名: 1}\n- 名: 2\n  ü: {z: 3}\n",
            // One path written twice: keys that YAML reads as different (an integer, a string).
            "m:\n  1: {a: 1}\n  \"1\": {b: 2}\n  x: 3\n",
            // Item indices of more than one digit.
            "l: [a, b, c, d, e, f, g, h, i, j, {k: 1}, {m: {n: 2}}]\n",
        ];
        let fixed = [
            "/a",
            "/a/b",
            "/0",
            "/0/a",
            "/0/0/0",
            "/1/y/z/1",
            "/k",
            "/k/x",
            "/m/x",
            "/m/w",
            "/<<",
            "/n/a",
            "/l/a",
            "/items/0/a",
            "/items/1/a",
            "/items/3/a",
            "/items/4/b",
            "/items/5/c",
            "/items/6/0",
            "/items/7/x",
            "/items/0/items/0/spec/containers/0/name",
            "/items/0/items/1/metadata/name",
            "/q/r",
            "/a~1b",
            "/a~0b",
            "/key/inner",
            "/key/list/1",
            "/key/list/2",
            "/d/1",
            "/x/y",
            "/m/1/a",
            "/m/1/b",
        ];
        for text in texts {
            let mut all: Vec<String> = Vec::new();
            let documents = read_documents(text, &Limits::default());
            for document in &documents {
                if let Ok(parsed) = &document.content {
                    pointers(&parsed.value, &mut String::new(), &mut all, usize::MAX);
                }
            }
            let sample = || all.iter().map(String::as_str).chain(fixed).chain(ODD_POINTERS);
            let wrong = disagreements(text, None, sample());
            assert!(wrong.is_empty(), "{text:?}:\n{}", wrong.join("\n"));
            // The events kept from the reading place every field as a second reading does.
            for document in &documents {
                if let Ok(parsed) = &document.content {
                    let steps = parsed.steps.as_deref().expect("a document read from text keeps its events");
                    let wrong = disagreements(&document.text, Some(steps), sample());
                    assert!(wrong.is_empty(), "{text:?}, from the reading's events:\n{}", wrong.join("\n"));
                }
            }
        }
        // The index does place things: a block item at its first key, a flow
        // item at itself, a merged field at its mapping's key, and an
        // unreadable text nowhere.
        let locator = Locator::new(texts[2]).unwrap();
        assert_eq!(locator.locate("/items/1/a"), Some((3, 3)));
        assert_eq!(locator.locate("/items/2/a"), Some((4, 7)));
        assert_eq!(locator.locate("/items/3/a"), Some((5, 9)), "a missing field at its item");
        assert_eq!(locator.locate("/items/0"), Some((2, 6)), "a flow item at its brace, not its anchor");
        assert_eq!(locator.locate("/items/7"), Some((10, 9)), "nor its tag");
        assert_eq!(locator.locate("/items/4/c"), Some((7, 3)));
        assert_eq!(locator.locate("/items/9"), Some((12, 3)));
        let locator = Locator::new(texts[1]).unwrap();
        assert_eq!(locator.locate("/m/x"), Some((3, 1)));
        assert_eq!(locator.locate("/m/w"), Some((5, 3)));
        assert!(Locator::new(texts[12]).is_none());
    }

    #[test]
    fn the_locator_places_every_field_of_the_real_world_corpus_as_the_walk_does() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/real-world");
        assert!(root.is_dir(), "the shared corpus is missing at {}", root.display());
        let mut files = Vec::new();
        let mut dirs = vec![root];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml" || e == "json") {
                    files.push(path);
                }
            }
        }
        files.sort();
        // Each pointer costs the walk a reading of the whole document: in a
        // large document, an even sample of its pointers.
        const BUDGET: usize = 1 << 20;
        let (mut compared, mut in_lists, mut wrong) = (0, 0, Vec::new());
        for file in &files {
            let Ok(text) = std::fs::read_to_string(file) else {
                continue;
            };
            for document in read_documents(&text, &Limits::default()) {
                let Ok(parsed) = document.content else {
                    continue;
                };
                let mut all = Vec::new();
                pointers(&parsed.value, &mut String::new(), &mut all, usize::MAX);
                let step = (all.len() * document.text.len()).div_ceil(BUDGET).max(1);
                let sample: Vec<&str> =
                    all.iter().step_by(step).chain(all.last()).map(String::as_str).chain(ODD_POINTERS).collect();
                compared += sample.len();
                if !parsed.item_lines.is_empty() {
                    in_lists += sample.iter().filter(|p| p.starts_with("/items/")).count();
                }
                // As findings are placed: from the events of this reading.
                for w in disagreements(&document.text, parsed.steps.as_deref(), sample) {
                    wrong.push(format!("{} document {}: {w}", file.display(), document.index));
                }
            }
        }
        assert!(wrong.is_empty(), "{} of {compared} pointers placed apart:\n{}", wrong.len(), wrong.join("\n"));
        assert!(compared > 50_000 && in_lists > 300, "{compared} pointers compared, {in_lists} in Lists");
    }

    #[test]
    fn scalars_as_kubectl_resolves_them() {
        // go-yaml v2 (what `kubectl apply` decodes with): YAML 1.1 booleans,
        // leading-zero octals, underscores, binary; quoted values stay strings.
        let v = values(
            "a: yes\nb: on\nc: true\nd: 010\ne: 0o10\nf: 0x1F\ng: 1.5e3\nh: ~\ni: '1'\nj: .inf\nk: 1_000\nl: -7\nm: =\n\
             nn: N\no: Off\np: \"yes\"\nq: 0b101\nr: -0x10\ns: 08\nt: 1.5\nu: .5\nv: 2001-12-14\nw: 1e400\nx: 99999999999999999999\n",
        );
        assert_eq!(
            v[0].as_ref().unwrap(),
            &json!({"a":true,"b":true,"c":true,"d":8,"e":8,"f":31,"g":1500,"h":null,"i":"1","j":".inf","k":1000,"l":-7,"m":"=",
                    "nn":false,"o":false,"p":"yes","q":5,"r":-16,"s":8,"t":1.5,"u":0.5,"v":"2001-12-14","w":"1e400",
                    "x":100000000000000000000.0})
        );
        // Keys are turned into strings the way sigs.k8s.io/yaml does; a null key is refused.
        assert_eq!(values("on: 1\n010: 2\nn: 3\n")[0].as_ref().unwrap(), &json!({"true": 1, "8": 2, "false": 3}));
        assert!(values("~: 1\n")[0].is_err());
        assert_eq!(
            values("a: !!int 010\nb: !!bool yes\nc: !!str 010\n")[0].as_ref().unwrap(),
            &json!({"a":8,"b":true,"c":"010"})
        );
    }

    #[test]
    fn documents_lines_and_indices() {
        let docs = read_documents("# c\n---\na: 1\n---\n# only a comment\n---\n\nb: 2\n", &Limits::default());
        let got: Vec<_> = docs.iter().map(|d| (d.index, d.line)).collect();
        assert_eq!(got, [(1, 3), (3, 8)]);
        let docs = read_documents("a: 1\n---\nb: 2\n", &Limits::default());
        let got: Vec<_> = docs.iter().map(|d| (d.index, d.line)).collect();
        assert_eq!(got, [(1, 1), (2, 3)]);
    }

    #[test]
    fn a_bad_document_does_not_stop_the_others() {
        let docs = read_documents("a: 1\n---\nb: [1, 2\nc: 3\n---\nd: 4\n", &Limits::default());
        assert_eq!(docs.len(), 3);
        assert!(docs[0].content.is_ok());
        let e = docs[1].content.as_ref().unwrap_err();
        assert_eq!(docs[1].index, 2);
        assert!(e.line >= 3, "{e:?}");
        assert!(e.message.starts_with("invalid YAML"), "{e:?}");
        assert_eq!(docs[2].content.as_ref().unwrap().value, json!({"d":4}));
    }

    #[test]
    fn merge_keys_and_anchors() {
        let v = values("base: &b {x: 1, w: 2}\nother: &o {z: 3}\nm:\n  <<: [*b, *o]\n  w: 9\nk: *b\n");
        assert_eq!(
            v[0].as_ref().unwrap(),
            &json!({"base":{"x":1,"w":2},"other":{"z":3},"m":{"x":1,"w":9,"z":3},"k":{"x":1,"w":2}})
        );
    }

    #[test]
    fn alias_bombs_are_refused() {
        let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        let mut prev = 'a';
        for name in "bcdefghij".chars() {
            bomb.push_str(&format!("{name}: &{name} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"));
            prev = name;
        }
        let e = values(&bomb).remove(0).unwrap_err();
        assert!(e.message.contains("alias bomb"), "{e:?}");
    }

    #[test]
    fn a_misindented_key_is_reported_at_its_first_column() {
        // The parser stops at the colon; the key is what the user must move.
        let cases = [
            ("kind: Pod\nspec:\n  containers:\n  - name: c\n     image: x\n", (5, 6)),
            ("kind: Pod\nmetadata:\n  name: p\n labels: {}\n", (4, 2)),
            ("kind: Pod\nmetadata:\n  name: p\n     my-labels: {}\n", (4, 6)),
            // Not at a colon: the parser's own column.
            ("a: [\n", (2, 1)),
        ];
        for (text, expected) in cases {
            let e = values(text).remove(0).unwrap_err();
            assert_eq!((e.line, e.column), expected, "{text:?}: {e:?}");
        }
    }

    #[test]
    fn deep_nesting_is_refused() {
        let deep = format!("{}1{}", "[".repeat(10_000), "]".repeat(10_000));
        let e = values(&deep).remove(0).unwrap_err();
        assert!(e.message.contains("deeper than"), "{e:?}");
        let limits = Limits { max_depth: 5, ..Limits::default() };
        let docs = read_documents("a: {b: {c: {d: {e: {f: 1}}}}}\n", &limits);
        let e = docs[0].content.as_ref().unwrap_err();
        assert_eq!(e.message, "document nests deeper than 5 levels");
    }

    #[test]
    fn oversized_documents_are_refused() {
        let limits = Limits { max_document_bytes: 10, ..Limits::default() };
        let docs = read_documents("a: 1234567890\n---\nb: 1\n", &limits);
        assert!(docs[0].content.as_ref().unwrap_err().message.contains("over the limit"));
        assert!(docs[1].content.is_ok());
    }

    #[test]
    fn duplicate_keys_are_errors() {
        let e = values("a: 1\na: 2\n").remove(0).unwrap_err();
        assert!(e.message.contains("duplicate key \"a\""), "{e:?}");
        assert_eq!((e.line, e.column), (2, 1), "{e:?}");
    }

    #[test]
    fn list_item_lines() {
        let docs = read_documents("kind: List\nitems:\n- kind: Pod\n  a: 1\n- kind: Service\n", &Limits::default());
        assert_eq!(docs[0].content.as_ref().unwrap().item_lines, [3, 5]);
    }

    #[test]
    fn directives_stay_with_their_document() {
        let docs = read_documents("%YAML 1.2\n---\na: 1\n", &Limits::default());
        assert_eq!(docs.len(), 1);
        assert_eq!(docs[0].content.as_ref().unwrap().value, json!({"a":1}));
    }

    #[test]
    fn line_breaks_as_kubectl_reads_them() {
        let pod = json!({"kind": "Pod", "metadata": {"name": "p"}});
        // CR LF, a lone CR (even when the file starts with a comment or a
        // directive) and NEL are line breaks.
        for text in [
            "kind: Pod\r\nmetadata:\r\n  name: p\r\n",
            "# c\rkind: Pod\rmetadata:\r  name: p\r",
            "%YAML 1.2\r---\rkind: Pod\rmetadata:\r  name: p\r",
            "kind: Pod\u{85}metadata:\u{85}  name: p\u{85}",
        ] {
            assert_eq!(values(text), [Ok(pod.clone())], "{text:?}");
        }
        // CR-only documents are cut at their `---` lines too, with their lines.
        let docs = read_documents("a: 1\r---\rb: 2\r", &Limits::default());
        let got: Vec<_> = docs.iter().map(|d| (d.index, d.line, d.content.as_ref().unwrap().value.clone())).collect();
        assert_eq!(got, [(1, 1, json!({"a": 1})), (2, 3, json!({"b": 2}))]);
        // LS and PS: refused with their place, the other documents still read.
        for sep in ['\u{2028}', '\u{2029}'] {
            let docs = read_documents(&format!("a: 1\n---\nkind: Pod{sep}metadata: {{}}\n"), &Limits::default());
            assert!(docs[0].content.is_ok());
            let e = docs[1].content.as_ref().unwrap_err();
            assert_eq!((docs[1].index, e.line, e.column), (2, 3, 10), "{e:?}");
            assert!(e.message.contains("SEPARATOR"), "{e:?}");
        }
    }

    #[test]
    fn scalars_and_empty_documents() {
        assert!(values("").is_empty());
        assert!(values("---\n# nothing\n---\n").is_empty());
        assert_eq!(values("just text").remove(0).unwrap(), json!("just text"));
    }
}
