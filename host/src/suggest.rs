//! "Did you mean …?" for names a user types: rule ids, profiles, keys of the
//! configuration file and of a rule's settings.

/// The candidate closest to `input` by edit distance, if it is close enough
/// to be a typo of it (at most a third of its length, and at least one edit
/// allowed): a suggestion that is far off helps less than the full list.
pub fn closest<'a>(input: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    // Names are short; a long text (a component's own error message, say)
    // is no typo of one, and comparing it would cost its length squared.
    if input.len() > MAX_NAME_BYTES {
        return None;
    }
    let limit = (input.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .take(MAX_CANDIDATES)
        .filter(|c| *c != input && c.len() <= MAX_NAME_BYTES)
        .map(|c| (distance(&input.to_lowercase(), &c.to_lowercase()), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Longest name compared, in bytes.
const MAX_NAME_BYTES: usize = 128;

/// Most candidates compared.
const MAX_CANDIDATES: usize = 1024;

/// `" (did you mean \"x\"?)"` when a candidate is close to `input`, else nothing.
pub fn did_you_mean<'a>(input: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    closest(input, candidates).map(|c| format!(" (did you mean {c:?}?)")).unwrap_or_default()
}

/// A serde error about an unknown key (`unknown field `x`, expected `y``, or
/// `expected one of `a`, `b``) with "did you mean" added when one is close.
pub fn unknown_field(message: &str) -> String {
    let Some(rest) = message.find("unknown field `").map(|i| &message[i + "unknown field `".len()..]) else {
        return message.to_string();
    };
    let Some(end) = rest.find('`') else {
        return message.to_string();
    };
    let field = &rest[..end];
    let Some(expected) = rest[end..].find("expected").map(|i| &rest[end + i..]) else {
        return message.to_string();
    };
    let candidates: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
    match closest(field, candidates) {
        Some(c) => format!("{message}; did you mean `{c}`?"),
        None => message.to_string(),
    }
}

/// Levenshtein distance, by characters.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_are_matched_and_far_names_are_not() {
        let rules = ["pss-privileged", "pss-proc-mount", "image-tag", "image-digest"];
        assert_eq!(closest("pss-privilegd", rules), Some("pss-privileged"));
        assert_eq!(closest("image-tags", rules), Some("image-tag"));
        assert_eq!(closest("Image-Digest", rules), Some("image-digest"));
        assert_eq!(closest("network", rules), None);
        assert_eq!(closest("image-tag", rules), None, "an exact name is no suggestion");
        assert_eq!(did_you_mean("basline", ["baseline", "restricted"]), " (did you mean \"baseline\"?)");
        assert_eq!(did_you_mean("x", ["baseline"]), "");
    }

    #[test]
    fn serde_unknown_field_messages_get_a_suggestion() {
        assert_eq!(
            unknown_field("unknown field `profle`, expected one of `profile`, `pssVersion`, `failOn`"),
            "unknown field `profle`, expected one of `profile`, `pssVersion`, `failOn`; did you mean `profile`?"
        );
        assert_eq!(
            unknown_field("unknown field `alowed`, expected `allowed`"),
            "unknown field `alowed`, expected `allowed`; did you mean `allowed`?"
        );
        let far = "unknown field `zzz`, expected `allowed`";
        assert_eq!(unknown_field(far), far);
        assert_eq!(unknown_field("invalid type: string"), "invalid type: string");
    }
}
