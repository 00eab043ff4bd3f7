//! The placement of a finding, checked two ways: [`locate_walk`] is the
//! rule for placing a JSON pointer in a YAML text as it was first written (one
//! walk of the parser's events per pointer), the oracle the
//! [`Locator`](crate::documents::Locator) is compared with in the unit tests
//! of `documents.rs` and in the `documents` fuzz target (which compiles this
//! file on its own). Not part of the binary.

use serde_json::Value;
use yaml_rust2::parser::{Event, Parser};

/// The placement rules as they were first written, one walk per
/// pointer: the oracle the [`Locator`](crate::documents::Locator) must agree with.
///
/// Where the node a JSON pointer names is written in a document's `text`: the
/// 1-based line and column of its key, for a field of a mapping; of the item
/// itself, for an item of a sequence; of the document's first node, for the
/// empty pointer. A node that is not written there (a missing field, one a
/// merge key brings in) is placed at the deepest ancestor that is. `None`
/// when the text does not parse.
pub fn locate_walk(text: &str, pointer: &str) -> Option<(usize, usize)> {
    let target: Vec<String> = pointer.split('/').skip(1).map(|t| t.replace("~1", "/").replace("~0", "~")).collect();
    /// The key a mapping's next value is under: `None` while a key is
    /// expected, `Some(None)` for a key that is not a plain scalar.
    type PendingKey = Option<Option<String>>;
    /// A collection being read, and how much of the target its path matches.
    struct Open {
        /// Mapping: the key of the value being read (`Some(None)`: a key that is
        /// not a plain scalar), `None` while a key is expected; and where the key is.
        map: Option<(PendingKey, (usize, usize))>,
        /// Sequence: the index of the next item.
        next: usize,
        /// Target segments its own path matches, when it is on the target's path.
        depth: Option<usize>,
        /// A collection used as a mapping key: nothing inside it counts.
        in_key: bool,
    }
    let mut parser = Parser::new_from_str(text);
    let mut stack: Vec<Open> = Vec::new();
    let mut best: Option<(usize, usize)> = None;
    // The parser places a block mapping after its first key: such a mapping
    // is placed at that key instead, when it arrives.
    let mut at_first_key = false;
    let lines: Vec<&str> = text.lines().collect();
    let is_flow = |(line, column): (usize, usize)| {
        lines.get(line.wrapping_sub(1)).and_then(|l| l.chars().nth(column - 1)).is_some_and(|c| c == '{')
    };
    loop {
        let (event, mark) = parser.next_token().ok()?;
        let here = (mark.line(), mark.col() + 1);
        let collection = matches!(event, Event::SequenceStart(..) | Event::MappingStart(..));
        match event {
            Event::StreamEnd => break,
            Event::SequenceEnd | Event::MappingEnd => {
                let closed = stack.pop()?;
                if let Some(parent) = stack.last_mut()
                    && let Some((key, _)) = &mut parent.map
                {
                    // The collection was a key (its value follows), or a value (a key follows).
                    *key = if closed.in_key { Some(None) } else { None };
                }
            }
            Event::Scalar(..) | Event::Alias(_) | Event::SequenceStart(..) | Event::MappingStart(..) => {
                // A key of a mapping?
                if let Some(parent) = stack.last_mut()
                    && let Some((key, at)) = &mut parent.map
                    && key.is_none()
                {
                    if collection {
                        stack.push(Open { map: None, next: 0, depth: None, in_key: true });
                        if let Event::MappingStart(..) = event {
                            stack.last_mut()?.map = Some((None, here));
                        }
                    } else {
                        let name = match event {
                            Event::Scalar(text, ..) => Some(text),
                            _ => None,
                        };
                        *key = Some(name);
                        *at = here;
                    }
                    if std::mem::take(&mut at_first_key) {
                        best = Some(here);
                    }
                    continue;
                }
                // A value: of the root, of a mapping's key, or a sequence's next item.
                let (depth, in_key) = match stack.last_mut() {
                    None => {
                        if best.is_none() {
                            best = Some(here);
                            at_first_key = matches!(event, Event::MappingStart(..)) && !is_flow(here);
                        }
                        (Some(0), false)
                    }
                    Some(parent) => {
                        let (segment, at) = match &mut parent.map {
                            Some((key, at)) => (key.take().flatten(), *at),
                            None => {
                                parent.next += 1;
                                (Some((parent.next - 1).to_string()), here)
                            }
                        };
                        let depth = parent.depth.and_then(|d| {
                            (target.get(d).is_some() && segment.as_deref() == target.get(d).map(String::as_str))
                                .then_some(d + 1)
                        });
                        if depth.is_some() && !parent.in_key {
                            best = Some(at);
                            // A mapping item of a sequence: at its first key.
                            at_first_key =
                                parent.map.is_none() && matches!(event, Event::MappingStart(..)) && !is_flow(here);
                        }
                        (depth, parent.in_key)
                    }
                };
                if collection {
                    let map = matches!(event, Event::MappingStart(..)).then_some((None, here));
                    stack.push(Open { map, next: 0, depth, in_key });
                }
            }
            _ => {}
        }
    }
    best
}

/// Every pointer of `value` (the empty one first), and beside each
/// collection's a field or item it does not have; from where `out` holds
/// `limit` pointers on, no more.
pub fn pointers(value: &Value, at: &mut String, out: &mut Vec<String>, limit: usize) {
    if out.len() >= limit {
        return;
    }
    out.push(at.clone());
    let len = at.len();
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                push_token(at, key);
                pointers(v, at, out, limit);
                at.truncate(len);
            }
            out.push(format!("{at}/notWritten"));
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                push_token(at, &i.to_string());
                pointers(v, at, out, limit);
                at.truncate(len);
            }
            out.push(format!("{at}/{}", items.len()));
        }
        _ => out.push(format!("{at}/0")),
    }
}

/// `token` added to `pointer`, escaped (`~` as `~0`, `/` as `~1`).
fn push_token(pointer: &mut String, token: &str) {
    pointer.push('/');
    if !token.bytes().any(|b| b == b'~' || b == b'/') {
        pointer.push_str(token);
        return;
    }
    for c in token.chars() {
        match c {
            '~' => pointer.push_str("~0"),
            '/' => pointer.push_str("~1"),
            c => pointer.push(c),
        }
    }
}
