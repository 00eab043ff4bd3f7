//! The scanning as it was before issue 16 made it fast, kept verbatim as the
//! oracle of the differential tests: the fast scanning must report exactly
//! what this one does, line for line.

#![allow(dead_code)]

use super::{Credential, DEFAULT_PATTERNS, LineHit, NotCredential, Settings};
use crate::rule::SettingsError;

/// Is the value a credential whatever its name?
pub fn secret_in_value(value: &str) -> Option<Credential> {
    if looks_like_private_key(value) {
        return Some(Credential::PrivateKey);
    }
    if let Some(what) = token(value) {
        return Some(Credential::Token(what));
    }
    if password_hash(value) {
        return Some(Credential::PasswordHash);
    }
    if url_with_password(value) {
        return Some(Credential::UrlPassword);
    }
    None
}

/// Is the value, by what it is, something other than a credential?
pub fn not_a_credential(name: &str, value: &str) -> Option<NotCredential> {
    let v = unquote(value.trim()).trim();
    if v.is_empty() || v == "[]" || v == "{}" {
        return Some(NotCredential::Empty);
    }
    const FLAGS: [&str; 18] = [
        "yes", "no", "y", "n", "true", "false", "on", "off", "0", "1", "enabled", "disabled", "enable", "disable",
        "none", "null", "nil", "~",
    ];
    if FLAGS.iter().any(|f| v.eq_ignore_ascii_case(f)) {
        return Some(NotCredential::Flag);
    }
    if is_reference(v) {
        return Some(NotCredential::Reference);
    }
    if is_placeholder(v) {
        return Some(NotCredential::Placeholder);
    }
    let words = words(name);
    let last = words.rsplit('_').next().unwrap_or_default();
    if is_path(last, v) {
        return Some(NotCredential::Path);
    }
    if is_url(v) {
        return Some(NotCredential::Url);
    }
    if is_setting(&words, last, v) {
        return Some(NotCredential::Setting);
    }
    None
}

/// Sensitive-name patterns (see [`DEFAULT_PATTERNS`] for their syntax).
#[derive(Debug, Clone)]
pub struct NamePatterns(Vec<(String, Pattern)>);

#[derive(Debug, Clone)]
enum Pattern {
    Substring(String),
    Glob(String),
}

impl NamePatterns {
    /// Parse patterns; `Err(i)` names the first one that is empty once normalised.
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Result<Self, usize> {
        let mut out = Vec::new();
        for (i, p) in patterns.iter().enumerate() {
            let p = p.as_ref();
            let parsed = if p.contains('*') { Pattern::Glob(words(p)) } else { Pattern::Substring(joined(p)) };
            if matches!(&parsed, Pattern::Substring(s) | Pattern::Glob(s) if s.is_empty()) {
                return Err(i);
            }
            out.push((p.to_string(), parsed));
        }
        Ok(NamePatterns(out))
    }

    pub fn defaults() -> Self {
        NamePatterns::new(DEFAULT_PATTERNS).expect("the defaults are valid")
    }

    /// The first pattern (as written) that `name` matches.
    pub fn matches(&self, name: &str) -> Option<&str> {
        let (joined, words) = (joined(name), words(name));
        self.0
            .iter()
            .find(|(_, p)| match p {
                Pattern::Substring(s) => joined.contains(s.as_str()),
                Pattern::Glob(g) => glob(g, &words),
            })
            .map(|(written, _)| written.as_str())
    }
}

/// Name patterns and an allow-list: what a credential rule is configured with.
#[derive(Debug, Clone)]
pub struct Detector {
    pub(super) patterns: NamePatterns,
    allow: Vec<String>,
}

impl Detector {
    /// Build from settings; an empty pattern is refused at `/patterns/<i>`.
    pub fn configure(settings: Settings) -> Result<Self, SettingsError> {
        let patterns = match &settings.patterns {
            Some(p) => NamePatterns::new(p)
                .map_err(|i| SettingsError::new(format!("/patterns/{i}"), "a pattern cannot be empty"))?,
            None => NamePatterns::defaults(),
        };
        Ok(Detector { patterns, allow: settings.allow })
    }

    /// Is `name` on the allow-list?
    pub fn allowed(&self, name: &str) -> bool {
        self.allow.iter().any(|a| glob(a, name))
    }

    /// Is `value`, given under `name`, a credential? Allowed names never are.
    pub fn check(&self, name: &str, value: &str) -> Option<Credential> {
        if self.allowed(name) {
            return None;
        }
        if let Some(c) = secret_in_value(value) {
            return Some(c);
        }
        if let Some(c) = self.named(name, value) {
            return Some(c);
        }
        self.inner(value)
    }

    /// Each line of an embedded file (INI, properties, `.env`, YAML, JSON,
    /// TOML, XML elements, `key value`) that holds a credential, one hit a line.
    pub fn scan_text(&self, text: &str) -> Vec<LineHit> {
        let mut out = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || is_comment(line) {
                continue;
            }
            let assigned = assignment(line);
            if assigned.is_some_and(|(name, _)| self.allowed(name)) {
                continue;
            }
            let credential = secret_in_value(line).or_else(|| match assigned {
                Some((name, value)) => {
                    secret_in_value(value).or_else(|| self.named(name, value)).or_else(|| self.inner(value))
                }
                None => self.inner(line),
            });
            if let Some(credential) = credential {
                out.push(LineHit { line: i + 1, name: assigned.map(|(n, _)| n.to_string()), credential });
            }
        }
        out
    }

    fn named(&self, name: &str, value: &str) -> Option<Credential> {
        let pattern = self.patterns.matches(name)?;
        if not_a_credential(name, value).is_some() || authorization_reference(value) {
            return None;
        }
        Some(Credential::Named { pattern: pattern.to_string() })
    }

    fn inner(&self, value: &str) -> Option<Credential> {
        inner_pairs(value).into_iter().find_map(|(name, v)| {
            if self.allowed(name) {
                return None;
            }
            let Credential::Named { pattern } = self.named(name, v)? else { return None };
            Some(Credential::Inner { name: name.to_string(), pattern })
        })
    }
}

/// The name without `_`, `-`, `.` and spaces, in lower case: `dbPassword` → `dbpassword`.
pub fn joined(name: &str) -> String {
    name.chars().filter(|c| !matches!(c, '_' | '-' | '.' | ' ')).flat_map(char::to_lowercase).collect()
}

/// The name in lower case with its words joined by `_`: `dbPassword`,
/// `DB-PASSWORD` and `db.password` → `db_password`.
pub fn words(name: &str) -> String {
    let mut out = String::new();
    let mut prev_lower = false;
    for c in name.chars() {
        if matches!(c, '_' | '-' | '.' | ' ' | '/') {
            if !out.is_empty() && !out.ends_with('_') {
                out.push('_');
            }
            prev_lower = false;
            continue;
        }
        if c.is_uppercase() && prev_lower && !out.ends_with('_') {
            out.push('_');
        }
        prev_lower = c.is_lowercase() || c.is_ascii_digit();
        out.extend(c.to_lowercase());
    }
    out.trim_end_matches('_').to_string()
}

/// `*` matches any run of characters; everything else itself.
pub fn glob(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

/// A PEM-style private key: `-----BEGIN RSA PRIVATE KEY-----` and the like
/// (any label of capitals, digits and spaces before `PRIVATE KEY`).
pub fn looks_like_private_key(value: &str) -> bool {
    value.match_indices("PRIVATE KEY").any(|(i, _)| {
        value[..i]
            .rfind("BEGIN ")
            .is_some_and(|b| value[b + 6..i].chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == ' '))
    })
}

struct TokenFormat {
    prefixes: &'static [&'static str],
    body: fn(u8) -> bool,
    min: usize,
    max: usize,
    what: &'static str,
}

pub(super) fn upper_digit(c: u8) -> bool {
    c.is_ascii_uppercase() || c.is_ascii_digit()
}
pub(super) fn alnum(c: u8) -> bool {
    c.is_ascii_alphanumeric()
}
pub(super) fn alnum_us(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}
pub(super) fn base64url(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'-'
}
pub(super) fn alnum_dash(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'-'
}
pub(super) fn alnum_slash(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'/'
}

const TOKENS: &[TokenFormat] = &[
    TokenFormat {
        prefixes: &["AKIA", "ASIA", "ABIA", "ACCA"],
        body: upper_digit,
        min: 16,
        max: 16,
        what: "an AWS access key ID",
    },
    TokenFormat {
        prefixes: &["ghp_", "gho_", "ghu_", "ghs_", "ghr_"],
        body: alnum,
        min: 36,
        max: 251,
        what: "a GitHub token",
    },
    TokenFormat { prefixes: &["github_pat_"], body: alnum_us, min: 22, max: 244, what: "a GitHub token" },
    TokenFormat { prefixes: &["glpat-"], body: base64url, min: 20, max: 255, what: "a GitLab token" },
    TokenFormat {
        prefixes: &["xoxb-", "xoxp-", "xoxa-", "xoxr-", "xoxs-", "xoxe-"],
        body: alnum_dash,
        min: 10,
        max: 255,
        what: "a Slack token",
    },
    TokenFormat {
        prefixes: &["https://hooks.slack.com/services/"],
        body: alnum_slash,
        min: 20,
        max: 255,
        what: "a Slack webhook URL",
    },
    TokenFormat { prefixes: &["sk_live_", "rk_live_"], body: alnum, min: 16, max: 255, what: "a Stripe live key" },
    TokenFormat { prefixes: &["AIza"], body: base64url, min: 35, max: 35, what: "a Google API key" },
    TokenFormat { prefixes: &["npm_"], body: alnum, min: 36, max: 36, what: "an npm token" },
];

/// A token in a documented format anywhere in the text, or an HTTP
/// `Authorization` value (`Bearer …`, `Basic …`) as the whole text.
pub(super) fn token(text: &str) -> Option<&'static str> {
    let b = text.as_bytes();
    let starts_word = |i: usize| i == 0 || !b[i - 1].is_ascii_alphanumeric();
    for format in TOKENS {
        for prefix in format.prefixes {
            for (i, _) in text.match_indices(prefix) {
                let body = i + prefix.len();
                let len = b[body..].iter().take_while(|&&c| (format.body)(c)).count();
                if starts_word(i) && (format.min..=format.max).contains(&len) {
                    return Some(format.what);
                }
            }
        }
    }
    if jwt(text) {
        return Some("a JSON Web Token");
    }
    let t = unquote(text.trim());
    for scheme in ["Bearer ", "Basic "] {
        if let Some(rest) = strip_prefix_ignore_case(t, scheme) {
            let rest = rest.trim();
            let token_chars = |c: u8| c.is_ascii_alphanumeric() || b"._~+/=-".contains(&c);
            if rest.len() >= 8 && rest.bytes().all(token_chars) {
                return Some("an HTTP Authorization credential");
            }
        }
    }
    None
}

/// `Bearer $(TOKEN)` and the like: the credential is a reference.
pub(super) fn authorization_reference(value: &str) -> bool {
    let t = unquote(value.trim());
    ["Bearer ", "Basic "].iter().any(|s| strip_prefix_ignore_case(t, s).is_some_and(|r| is_reference(r.trim())))
}

pub(super) fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| &text[prefix.len()..])
}

/// `header.payload.signature`, header and payload base64url JSON objects (`eyJ`).
pub(super) fn jwt(text: &str) -> bool {
    let b = text.as_bytes();
    text.match_indices("eyJ").any(|(i, _)| {
        if i > 0 && base64url(b[i - 1]) {
            return false;
        }
        let header = b[i..].iter().take_while(|&&c| base64url(c)).count();
        let p = i + header;
        if header < 10 || b.get(p) != Some(&b'.') || !text[p + 1..].starts_with("eyJ") {
            return false;
        }
        let payload = b[p + 1..].iter().take_while(|&&c| base64url(c)).count();
        payload >= 10 && b.get(p + 1 + payload) == Some(&b'.')
    })
}

/// bcrypt, md5-crypt (`$1$`, `$apr1$`), sha-crypt (`$5$`, `$6$`), argon2, `{SHA}`/`{SSHA}`.
pub(super) fn password_hash(text: &str) -> bool {
    let crypt = |c: u8| c.is_ascii_alphanumeric() || c == b'.' || c == b'/';
    let b64 = |c: u8| c.is_ascii_alphanumeric() || c == b'+' || c == b'/' || c == b'=';
    let run = |s: &str, f: &dyn Fn(u8) -> bool| s.bytes().take_while(|&c| f(c)).count();
    // `$id$salt$hash` with the salt at most `salt` long and the hash `hash` long.
    let salted = |rest: &str, salt: usize, hash: usize| {
        let rest = rest.strip_prefix("rounds=").map_or(rest, |r| r.split_once('$').map_or("", |(_, r)| r));
        let s = run(rest, &crypt);
        (1..=salt).contains(&s) && rest[s..].starts_with('$') && run(&rest[s + 1..], &crypt) == hash
    };
    text.match_indices('$').any(|(i, _)| {
        let rest = &text[i + 1..];
        for v in ["2a$", "2b$", "2y$", "2x$"] {
            if let Some(r) = rest.strip_prefix(v) {
                let cost = run(r, &|c: u8| c.is_ascii_digit());
                if cost == 2 && r[2..].starts_with('$') && run(&r[3..], &crypt) == 53 {
                    return true;
                }
            }
        }
        if let Some(r) = rest.strip_prefix("apr1$").or_else(|| rest.strip_prefix("1$")) {
            return salted(r, 8, 22);
        }
        if let Some(r) = rest.strip_prefix("5$") {
            return salted(r, 16, 43);
        }
        if let Some(r) = rest.strip_prefix("6$") {
            return salted(r, 16, 86);
        }
        ["argon2id$v=", "argon2i$v=", "argon2d$v="].iter().any(|p| rest.starts_with(p))
    }) || ["{SHA}", "{SSHA}"].iter().any(|p| text.match_indices(p).any(|(i, _)| run(&text[i + p.len()..], &b64) >= 28))
}

/// A `scheme://user:password@host` with a literal password.
pub(super) fn url_with_password(text: &str) -> bool {
    text.match_indices("://").any(|(i, _)| {
        let scheme = text[..i].bytes().rev().take_while(|c| c.is_ascii_alphanumeric() || b"+.-".contains(c)).count();
        if scheme == 0 {
            return false;
        }
        let rest = &text[i + 3..];
        let end = rest.find(|c: char| c == '/' || c == '?' || c == '#' || c.is_whitespace() || "\"'<>".contains(c));
        let authority = &rest[..end.unwrap_or(rest.len())];
        let Some((userinfo, _)) = authority.rsplit_once('@') else { return false };
        userinfo
            .split_once(':')
            .is_some_and(|(_, password)| !password.is_empty() && !is_reference(password) && !is_placeholder(password))
    })
}

pub(super) fn unquote(v: &str) -> &str {
    for q in ['"', '\''] {
        if v.len() >= 2 && v.starts_with(q) && v.ends_with(q) {
            return &v[1..v.len() - 1];
        }
    }
    v
}

pub(super) fn is_identifier(v: &str) -> bool {
    let mut chars = v.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

pub(super) fn is_reference(v: &str) -> bool {
    ["$(", "${", "{{", "#{", "%{", "<%"].iter().any(|open| v.contains(open))
        || v.strip_prefix('$').is_some_and(is_identifier)
        || v.strip_prefix('%').and_then(|v| v.strip_suffix('%')).is_some_and(is_identifier)
        || ["vault:", "ref+", "arn:"].iter().any(|p| v.starts_with(p))
}

pub(super) fn is_placeholder(v: &str) -> bool {
    (v.len() >= 3 && v.bytes().all(|c| c == b'*'))
        || (v.len() > 2 && v.starts_with('<') && v.ends_with('>') && !v[1..v.len() - 1].contains(['<', '>']))
        || v.to_ascii_lowercase().contains("placeholder")
}

pub(super) fn is_path(last_word: &str, v: &str) -> bool {
    if v.contains(char::is_whitespace) || v.contains("://") {
        return false;
    }
    let path_chars = v.chars().all(|c| c.is_alphanumeric() || "/._-~+@:\\".contains(c));
    let b = v.as_bytes();
    let absolute = v.starts_with('/')
        || v.starts_with("~/")
        || v.starts_with("./")
        || v.starts_with("../")
        || (b.len() > 2 && b[0].is_ascii_alphabetic() && b[1] == b':' && (b[2] == b'\\' || b[2] == b'/'));
    if absolute {
        return path_chars;
    }
    const FILE_WORDS: [&str; 8] = ["file", "path", "dir", "directory", "location", "filename", "mount", "mountpath"];
    let has_extension = v.rsplit_once('.').is_some_and(|(stem, ext)| {
        !stem.is_empty() && (1..=5).contains(&ext.len()) && ext.chars().all(|c| c.is_ascii_alphanumeric())
    });
    FILE_WORDS.contains(&last_word) && path_chars && (v.contains(['/', '\\']) || has_extension)
}

pub(super) fn is_url(v: &str) -> bool {
    let Some((scheme, rest)) = v.split_once("://") else { return false };
    let scheme_ok = scheme.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c));
    scheme_ok && !rest.is_empty() && !v.contains(char::is_whitespace) && !url_with_password(v)
}

pub(super) fn is_setting(words: &str, last_word: &str, v: &str) -> bool {
    const MEASURES: &str = "ttl timeout expiry expiration expires expire lifetime age duration interval length len \
                            size count rounds iterations cost retries attempts port version seconds";
    const KINDS: &str = "type kind mode method algorithm alg encryption policy header name ref namespace format \
                         provider strategy field";
    let listed = |list: &str| list.split_whitespace().any(|w| w == last_word);
    let number = v.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let duration = !number.is_empty()
        && number.chars().all(|c| c.is_ascii_digit() || c == '.')
        && matches!(
            &v[number.len()..],
            "" | "ms" | "s" | "m" | "h" | "d" | "w" | "y" | "sec" | "secs" | "min" | "mins" | "hours" | "days"
        );
    if listed(MEASURES) && duration {
        return true;
    }
    let identifier = v.len() <= 64 && v.chars().all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c));
    let existing = words.split('_').next() == Some("existing");
    identifier && (listed(KINDS) || existing)
}

pub(super) fn is_comment(line: &str) -> bool {
    ["#", ";", "//", "/*", "* ", "<!--"].iter().any(|c| line.starts_with(c)) || line == "*"
}

pub(super) fn is_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 128 && s.chars().all(|c| c.is_alphanumeric() || "_-.[]@/".contains(c))
}

/// The `name` and `value` one line of a configuration file assigns:
/// `name = value`, `name: value`, `"name": "value",`, `export NAME=value`,
/// `- name: value`, `<name>value</name>`, or `name value`.
pub(super) fn assignment(line: &str) -> Option<(&str, &str)> {
    let mut t = line.strip_prefix("- ").unwrap_or(line).trim_start();
    t = t.strip_prefix("export ").map_or(t, str::trim_start);
    if let Some(inner) = t.strip_prefix('<') {
        let (tag, rest) = inner.split_once('>')?;
        let value = rest.strip_suffix('>')?.strip_suffix(tag)?.strip_suffix("</")?;
        return is_name(tag).then_some((tag, value.trim()));
    }
    let b = t.as_bytes();
    let mut quote = None;
    let mut sep = None;
    for (i, &c) in b.iter().enumerate() {
        match (quote, c) {
            (Some(q), _) if c == q => quote = None,
            (Some(_), _) => {}
            (None, b'"' | b'\'') => quote = Some(c),
            (None, b'=') if b.get(i + 1) != Some(&b'=') && i > 0 && !b"!<>=+-*/:".contains(&b[i - 1]) => {
                sep = Some((i, 1));
                break;
            }
            (None, b':') if matches!(b.get(i + 1), None | Some(b' ' | b'\t')) => {
                sep = Some((i, 1));
                break;
            }
            _ => {}
        }
    }
    let (name, value) = match sep {
        Some((i, len)) => (unquote(t[..i].trim()), t[i + len..].trim()),
        None => {
            let (name, value) = t.split_once(char::is_whitespace)?;
            let value = value.trim();
            let single = (value.starts_with(['"', '\'']) && unquote(value).len() + 2 == value.len())
                || !value.contains(char::is_whitespace);
            if !single {
                return None;
            }
            (name, value)
        }
    };
    if !is_name(name) {
        return None;
    }
    let value = if value.starts_with(['"', '\'']) {
        read_value(value)
    } else {
        // A YAML comment after the value, a JSON comma, a configuration `;`.
        let value = value.split_once(" #").map_or(value, |(v, _)| v).trim();
        value.strip_suffix([',', ';']).unwrap_or(value).trim()
    };
    // A nested block (`{`, `[`, YAML `|`, `>-`): its lines are read on their own.
    let block = matches!(value, "{" | "[" | "|" | "|-" | "|+" | ">" | ">-" | ">+") || value.ends_with(" |");
    Some((name, if block { "" } else { value }))
}

/// `name=value` pairs (`-Dx.password=…`, `password="…"`, `?token=…&`) and JSON
/// `"name": value` pairs inside a text.
pub(super) fn inner_pairs(text: &str) -> Vec<(&str, &str)> {
    let b = text.as_bytes();
    let name_byte = |c: u8| c.is_ascii_alphanumeric() || b"_.-".contains(&c);
    let mut out = Vec::new();
    for (i, &c) in b.iter().enumerate() {
        match c {
            b'=' if i > 0 && name_byte(b[i - 1]) && b.get(i + 1) != Some(&b'=') => {
                let start = (0..i).rev().take_while(|&j| name_byte(b[j])).last().unwrap_or(i);
                let name = text[start..i].trim_start_matches('-');
                if !name.is_empty() {
                    out.push((name, read_value(&text[i + 1..])));
                }
            }
            b':' => {
                let before = text[..i].trim_end();
                let Some(before) = before.strip_suffix('"') else { continue };
                let Some(open) = before.rfind('"') else { continue };
                let name = &before[open + 1..];
                if is_name(name) {
                    out.push((name, read_value(text[i + 1..].trim_start())));
                }
            }
            _ => {}
        }
    }
    out
}

/// A quoted string (without its quotes) or a run up to a separator.
pub(super) fn read_value(text: &str) -> &str {
    if let Some(q) = text.chars().next().filter(|c| *c == '"' || *c == '\'') {
        return text[1..].split(q).next().unwrap_or_default();
    }
    let end = text.find(|c: char| c.is_whitespace() || ";&,)\"'}]".contains(c)).unwrap_or(text.len());
    &text[..end]
}
