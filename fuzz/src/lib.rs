//! The host's readers and decoders, compiled from the host's own files, and
//! the properties every fuzz target checks; the Sigstore verifier's in [`sigstore`].

#[path = "../../host/src/documents.rs"]
pub mod documents;
#[path = "../../policies/sdk/src/json_eq.rs"]
pub mod json_eq;
#[path = "../../policies/sdk/src/json_scan.rs"]
pub mod json_scan;
#[path = "../../host/src/locate_walk.rs"]
pub mod locate_walk;
#[path = "../../host/src/pin.rs"]
pub mod pin;
#[path = "../../host/src/resources.rs"]
pub mod resources;
#[path = "../../host/src/view.rs"]
pub mod view;
#[path = "../../host/src/serve/wire.rs"]
pub mod wire;

pub mod sigstore;

use documents::{Limits, read_documents};

/// Bytes → documents → resources, as `palisade check` reads a file, checking
/// what must hold whatever the input: every document and error has a
/// position, every resource a kind and apiVersion, and nothing is lost
/// silently (a document with content yields resources or errors).
pub fn read(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let limits = Limits { max_document_bytes: 1 << 20, max_depth: 100, max_nodes: 100_000 };
    let docs = read_documents(text, &limits);
    let lines = text.split(['\n', '\r', '\u{85}']).count().max(1);
    let mut last = 0;
    for d in &docs {
        assert!(d.index > last, "document numbers increase: {} after {last}", d.index);
        last = d.index;
        assert!(d.line >= 1 && d.line <= lines + 1, "document line {} of {lines}", d.line);
        if let Err(e) = &d.content {
            assert!(e.line >= 1, "an error has a line: {e:?}");
            assert!(!e.message.is_empty());
        }
    }
    for d in &docs {
        located_from_the_reading_as_by_a_second_one(d);
    }
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for doc in docs {
        let is_list = doc.content.as_ref().is_ok_and(|p| {
            p.value.get("kind").and_then(|k| k.as_str()).is_some_and(|k| k.ends_with("List"))
                && p.value.get("items").is_some()
        });
        let before = out.len() + errors.len();
        resources::from_documents("fuzz.yaml", vec![doc], &mut out, &mut errors);
        // Every document yields objects or errors; only a List may hold nothing.
        assert!(is_list || out.len() + errors.len() > before, "a document vanished");
    }
    for r in &out {
        assert!(!r.kind.is_empty() && !r.api_version.is_empty(), "{r:?}");
        assert!(r.source.document >= 1 && r.source.line >= 1, "{r:?}");
        assert!(serde_json::from_str::<serde_json::Value>(&r.json).is_ok());
    }
    for e in &errors {
        assert!(e.source.document >= 1, "{e:?}");
    }
    pin_in_place(text);
}

/// A finding is placed from the parser events kept while its document was
/// read ([`documents::Locator::from_steps`]): every field, and a few pointers
/// that name none, must be placed as a second reading of the text places
/// them; in a short text, the first of them also as the independent walk of
/// the placement rules places them ([`locate_walk::locate_walk`], one reading
/// per pointer).
fn located_from_the_reading_as_by_a_second_one(d: &documents::Document) {
    /// Pointers compared with the walk, which reads the whole text for each,
    /// in texts of at most `WALKED_BYTES` (a disagreement shrinks to a short text).
    const WALKED: usize = 16;
    const WALKED_BYTES: usize = 4096;
    let Ok(parsed) = &d.content else { return };
    let Some(steps) = &parsed.steps else { return };
    let kept = documents::Locator::from_steps(steps);
    let again = documents::Locator::new(&d.text);
    assert_eq!(kept.is_some(), again.is_some(), "the kept events and a second reading disagree on the text");
    let (Some(kept), Some(again)) = (kept, again) else { return };
    let mut all = Vec::new();
    locate_walk::pointers(&parsed.value, &mut String::new(), &mut all, 256);
    let odd = ["/", "//", "/x", "/0", "/items/0/a", "/~2", "/a~1b"];
    for pointer in all.iter().map(String::as_str).chain(odd) {
        assert_eq!(kept.locate(pointer), again.locate(pointer), "{pointer:?}");
    }
    if d.text.len() > WALKED_BYTES {
        return;
    }
    for pointer in all.iter().map(String::as_str).take(WALKED).chain(odd) {
        assert_eq!(kept.locate(pointer), locate_walk::locate_walk(&d.text, pointer), "{pointer:?}, against the walk");
    }
}

/// `check --pin` edits text in place: whatever the input, it only ever inserts
/// `@<digest>` (so taking the insertions out gives the input back), and names
/// a line of the input for everything it pinned or skipped.
fn pin_in_place(text: &str) {
    let digest = format!("sha256:{}", "0".repeat(64));
    let pinned = pin::pin_text(text, &mut |_, _| Some(digest.clone()));
    let inserted = format!("@{digest}");
    assert_eq!(pinned.text.len(), text.len() + pinned.pinned.len() * inserted.len(), "only insertions");
    assert_eq!(pinned.text.replace(&inserted, ""), text.replace(&inserted, ""), "nothing but insertions");
    let lines = text.split(['\n', '\r', '\u{85}']).count().max(1);
    for p in &pinned.pinned {
        assert!(p.line >= 1 && p.line <= lines, "pinned at line {} of {lines}", p.line);
        assert_eq!(p.to, format!("{}{inserted}", p.from));
    }
    // A parse error may sit just past the last line (the end of input), as for documents.
    for s in &pinned.skipped {
        assert!(s.line <= lines + 1, "skipped at line {} of {lines}", s.line);
    }
}

/// An AdmissionReview that decodes to CREATE or UPDATE always carries an
/// object with a kind and an apiVersion: nothing reaches the rules unnamed.
pub fn admission_review(data: &[u8]) {
    if let Ok(review) = wire::admission_review(data) {
        if review.operation.judges_object() {
            assert!(review.object.is_object());
            assert!(!review.kind.is_empty());
            assert_eq!(review.object["kind"].as_str(), Some(review.kind.as_str()));
            assert!(review.object["apiVersion"].as_str().is_some_and(|v| !v.is_empty()));
        }
        assert!(!review.uid.is_empty());
    }
}

pub fn provider_request(data: &[u8]) {
    if let Ok(keys) = wire::provider_request(data) {
        for key in keys {
            if let wire::ProviderKey::Object { object, kind, .. } = key {
                assert!(!kind.is_empty());
                assert!(object["apiVersion"].as_str().is_some_and(|v| !v.is_empty()));
            }
        }
    }
}

pub fn kyverno_call(data: &[u8]) {
    if let Ok(call) = wire::kyverno_call(data) {
        assert!(!call.kind.is_empty());
        assert!(call.object["apiVersion"].as_str().is_some_and(|v| !v.is_empty()));
    }
}

/// Paths (one a line) before the first NUL byte, a JSON text after it, as a
/// rule's `input.reads` and an object: reading the text's tape never panics,
/// pruning never lengthens it, and where serde_json reads the text, the tape
/// reads it too and the pruned text reads as the contract's rule says
/// ([`view::reference_prune`]); the value written again with its tape
/// ([`view::Tape::write`]) is serde_json's text, and prunes as its tape read
/// from that text does.
pub fn view(data: &[u8]) {
    let Some(nul) = data.iter().position(|&b| b == 0) else {
        return;
    };
    let (Ok(paths), Ok(text)) = (std::str::from_utf8(&data[..nul]), std::str::from_utf8(&data[nul + 1..])) else {
        return;
    };
    let paths: Vec<String> = paths.lines().map(str::to_string).collect();
    let Ok(view) = view::View::new(&paths) else {
        return;
    };
    let tape = view::Tape::read(text);
    let pruned = view.prune(text, &tape);
    assert!(pruned.len() <= text.len(), "pruning lengthened {text:?} to {pruned:?}");
    let Ok(value) = serde_json::from_str::<serde_json::Value>(text) else {
        return;
    };
    assert!(!tape.is_empty(), "serde_json reads {text:?}, the tape does not");
    let read: serde_json::Value = serde_json::from_str(&pruned).expect("a pruned text is JSON");
    assert_eq!(read, view::reference_prune(&value, &paths), "{paths:?} of {text:?}: {pruned}");
    let (written, written_tape) = view::Tape::write(&value);
    assert_eq!(written, value.to_string());
    assert_eq!(view.prune(&written, &written_tape), view.prune(&written, &view::Tape::read(&written)), "{paths:?}");
}

/// Two JSON texts, split at the first NUL byte (the second empty without
/// one): `json_eq::equal` says what `serde_json::Value`'s `==` says of them,
/// a text that does not read being `null` (as the rules read a probe), and
/// of each text and serde_json's compact and pretty spellings of its value.
pub fn json_eq(data: &[u8]) {
    use serde_json::value::RawValue;
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (a, b) = text.split_once('\0').unwrap_or((text, "null"));
    let (Ok(a), Ok(b)) = (serde_json::from_str::<Box<RawValue>>(a), serde_json::from_str::<Box<RawValue>>(b)) else {
        return;
    };
    let value = |raw: &RawValue| serde_json::from_str::<serde_json::Value>(raw.get()).unwrap_or_default();
    let same = |x: &RawValue, y: &RawValue| {
        let expected = value(x) == value(y);
        assert_eq!(json_eq::equal(x, y), expected, "{} vs {}", x.get(), y.get());
        assert_eq!(json_eq::equal(y, x), expected, "{} vs {}", y.get(), x.get());
    };
    same(&a, &b);
    for raw in [&a, &b] {
        let v = value(raw);
        for spelled in [v.to_string(), serde_json::to_string_pretty(&v).unwrap_or_default()] {
            if let Ok(spelled) = serde_json::from_str::<Box<RawValue>>(&spelled) {
                same(raw, &spelled);
            }
        }
    }
}
