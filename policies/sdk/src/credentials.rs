//! Telling a credential from the settings around it, for the rules that look
//! for secrets where secrets do not belong: literal environment values
//! (`secret-env-literal`) and ConfigMaps (`configmap-credentials`).
//!
//! Sources: Kubernetes "Good practices for Kubernetes Secrets"
//! (<https://kubernetes.io/docs/concepts/security/secrets-good-practices/>);
//! PEM labels (RFC 7468), URI userinfo (RFC 3986 §3.2.1 deprecates
//! `user:password@`), JSON Web Tokens (RFC 7519), and the token formats their
//! issuers document (AWS access key IDs, GitHub, GitLab, Slack, Stripe, Google
//! API keys, npm). The name patterns include those of Polaris'
//! `sensitiveContainerEnvVar` and `sensitiveConfigmapContent`.
//!
//! A value is judged by what it is before its name is asked:
//! 1. [`secret_in_value`]: a credential whatever its name: a PEM private key,
//!    a token in a documented format, a password hash, a URL with a password.
//! 2. [`not_a_credential`]: something else whatever its name: empty, a flag
//!    (`ALLOW_EMPTY_PASSWORD=no`), a reference resolved elsewhere (`$(VAR)`,
//!    `${VAR}`, `{{ .Values.x }}`), a placeholder, the path of a mounted file
//!    (`POSTGRES_PASSWORD_FILE=/opt/.../postgres-password`), a URL without a
//!    password, or a setting about a credential (`TOKEN_TTL=60`).
//! 3. [`NamePatterns`]: otherwise a literal under a sensitive name is one.
//!
//! [`Detector::check`] asks the three of one `name = value` (and of each
//! `name=value` pair inside the value: a connection string, a JVM option, a
//! URL query); [`Detector::scan_text`] asks them of each line of an embedded
//! configuration file (INI, properties, `.env`, YAML, JSON, TOML, XML
//! elements, `key value` lines).
//!
//! Deliberate choices: a well-known default (`changeme`, `guest`, `xxxxx`) is
//! a credential: everyone knows it, and it still opens the door. Comment
//! lines of embedded files are not read: shipped configuration files document
//! their defaults in comments (`# requirepass foobared`).

use serde::Deserialize;

use crate::rule::SettingsError;

/// The default sensitive-name patterns. Without `*` a pattern is a substring of
/// the name compared case-insensitively without `_`, `-` and `.` (`apikey`
/// matches `API_KEY`, `api-key` and `apiKey`); with `*` it is matched against
/// the whole name in lower case with its words joined by `_` (`*_pass`
/// matches `default_pass` and `dbPass`, not `bypass`).
pub const DEFAULT_PATTERNS: &[&str] = &[
    "password",
    "passwd",
    "passphrase",
    "pwd",
    "*_pass",
    "secret",
    "token",
    "bearer",
    "apikey",
    "privatekey",
    "credential",
    "requirepass",
    "masterauth",
    "azure_*key",
    "ociclikeycontent",
];

/// The settings every credential rule takes.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Replaces [`DEFAULT_PATTERNS`].
    pub patterns: Option<Vec<String>>,
    /// Names exempt from the rule, exactly as written; `*` matches any run of
    /// characters.
    #[serde(default)]
    pub allow: Vec<String>,
}

/// The JSON Schema of [`Settings`].
pub const SETTINGS_SCHEMA: &str = r#"{"type":"object","additionalProperties":false,"properties":{
    "patterns":{"type":"array","items":{"type":"string","minLength":1},
      "description":"Sensitive-name patterns, replacing the defaults (password, passwd, passphrase, pwd, *_pass, secret, token, bearer, apikey, privatekey, credential, requirepass, masterauth, azure_*key, ociclikeycontent). Without * a pattern is a substring of the name compared case-insensitively without _ - and .; with * it matches the whole name in lower case, words joined by _."},
    "allow":{"type":"array","items":{"type":"string"},
      "description":"Names exempt from the rule (an environment variable, a ConfigMap key, or a name inside an embedded file), case-sensitive; * matches any run of characters."}}}"#;

/// Why a value is reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// A PEM private key (`-----BEGIN RSA PRIVATE KEY-----` and the like).
    PrivateKey,
    /// A token in the format its issuer documents; the text names it.
    Token(&'static str),
    /// A crypt-style password hash (bcrypt, md5-crypt, sha-crypt, argon2, `{SHA}`).
    PasswordHash,
    /// A URL whose userinfo carries a password.
    UrlPassword,
    /// A literal under a sensitive name; `pattern` is the pattern it matched.
    Named { pattern: String },
    /// A literal `name=value` pair inside the value with a sensitive name.
    Inner { name: String, pattern: String },
}

impl Credential {
    /// What was found, never the value: `a GitHub token`, `password=****`.
    pub fn describe(&self) -> String {
        match self {
            Credential::PrivateKey => "a PEM private key".into(),
            Credential::Token(what) => (*what).into(),
            Credential::PasswordHash => "a password hash".into(),
            Credential::UrlPassword => "a URL with a password in it".into(),
            Credential::Named { pattern } => format!("a literal value, its name matching {pattern:?}"),
            Credential::Inner { name, pattern } => format!("{name}=****, its name matching {pattern:?}"),
        }
    }
}

/// A credential on one line of an embedded file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineHit {
    /// 1-based.
    pub line: usize,
    /// The name the line assigns, if it is an assignment.
    pub name: Option<String>,
    pub credential: Credential,
}

impl LineHit {
    /// `line 3: default_pass = ****, its name matching "*_pass"`, the value
    /// masked; no parentheses, so a message may list several in parentheses.
    pub fn describe(&self) -> String {
        match (&self.credential, &self.name) {
            (Credential::Named { pattern }, Some(name)) => {
                format!("line {}: {name} = ****, its name matching {pattern:?}", self.line)
            }
            (c, Some(name)) => format!("line {}: {name} holds {}", self.line, c.describe()),
            (c, None) => format!("line {}: {}", self.line, c.describe()),
        }
    }
}

/// Why a value is not a credential, whatever its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotCredential {
    /// Empty, blank, quotes around nothing, or an empty list or map (`[]`, `{}`).
    Empty,
    /// yes/no, true/false, on/off, 0/1, enabled/disabled, none/null.
    Flag,
    /// Resolved elsewhere: `$(VAR)`, `${VAR}`, `{{ .Values.x }}`, `#{..}`,
    /// `%{..}`, `<%= %>`, a whole `$VAR`, a secret-store reference (`vault:`,
    /// `ref+`, an ARN).
    Reference,
    /// A marker to be replaced (`<password>`, Bitnami's
    /// `password-placeholder-0`, which its init container substitutes from the
    /// mounted Secret) or a mask (`****`).
    Placeholder,
    /// The path of a file (absolute, or relative under a `*_FILE`/`*_PATH`/`*_DIR` name).
    Path,
    /// A URL without a password.
    Url,
    /// A setting about a credential: a number or duration under a `*_TTL`,
    /// `*_LENGTH`, `*_TIMEOUT`... name, or an identifier under a `*_TYPE`,
    /// `*_NAME`, `*_HEADER`, `existing*`... name (`SECRET_NAME=db-credentials`).
    Setting,
}

/// Is the value a credential whatever its name?
pub fn secret_in_value(value: &str) -> Option<Credential> {
    // Each test runs only if the value has every byte of what it looks for:
    // one pass over the value instead of one a test.
    let bytes = Bytes::of(value);
    if bytes.all("PRIVATE KEY") && looks_like_private_key(value) {
        return Some(Credential::PrivateKey);
    }
    if let Some(what) = token(value, &bytes) {
        return Some(Credential::Token(what));
    }
    if (bytes.all("$") || bytes.all("{SHA}")) && password_hash(value) {
        return Some(Credential::PasswordHash);
    }
    if bytes.all("://") && url_with_password(value) {
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
pub struct NamePatterns(Vec<(String, Pattern, Ascii)>);

/// A set of ASCII bytes, bit `b` for byte `b`.
type Ascii = u128;

/// The ASCII bytes of `text` but `*`: those a name must hold (in lower case,
/// or as the `_` that [`words`] puts between words) to match a pattern.
fn needed(text: &str) -> Ascii {
    text.bytes().filter(|&c| c.is_ascii() && c != b'*').fold(0, |set, c| set | 1 << c)
}

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
            let needs = match &parsed {
                Pattern::Substring(s) | Pattern::Glob(s) => needed(s),
            };
            out.push((p.to_string(), parsed, needs));
        }
        Ok(NamePatterns(out))
    }

    pub fn defaults() -> Self {
        NamePatterns::new(DEFAULT_PATTERNS).expect("the defaults are valid")
    }

    /// The first pattern (as written) that `name` matches.
    pub fn matches(&self, name: &str) -> Option<&str> {
        // Most names are short and ASCII, and lack a byte of every pattern
        // (`expr`, `title`): those are told without their forms. The others
        // have their forms built on the stack, byte by byte, not in two
        // strings a char at a time.
        const MAX: usize = 128;
        if name.is_ascii() && name.len() <= MAX {
            let has = name.bytes().fold(1 << b'_', |set: Ascii, c| set | 1 << c.to_ascii_lowercase());
            if self.0.iter().all(|(_, _, needs)| needs & !has != 0) {
                return None;
            }
            let (mut j, mut w) = ([0; MAX], [0; 2 * MAX]);
            let j = joined_ascii(name.as_bytes(), &mut j);
            let w = words_ascii(name.as_bytes(), &mut w);
            if let (Ok(joined), Ok(words)) = (std::str::from_utf8(j), std::str::from_utf8(w)) {
                return self.first_match(joined, words, has);
            }
        }
        self.first_match(&joined(name), &words(name), Ascii::MAX)
    }

    /// The first pattern that the forms of a name match, of those whose
    /// bytes it `has`.
    fn first_match(&self, joined: &str, words: &str, has: Ascii) -> Option<&str> {
        self.0
            .iter()
            .find(|(_, p, needs)| {
                needs & !has == 0
                    && match p {
                        Pattern::Substring(s) => contains(joined, s),
                        Pattern::Glob(g) => glob(g, words),
                    }
            })
            .map(|(written, _, _)| written.as_str())
    }
}

/// Name patterns and an allow-list: what a credential rule is configured with.
#[derive(Debug, Clone)]
pub struct Detector {
    patterns: NamePatterns,
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

/// [`joined`] of an ASCII name, written in `out` (as long as the name).
fn joined_ascii<'a>(name: &[u8], out: &'a mut [u8]) -> &'a [u8] {
    let mut n = 0;
    for &c in name.iter().filter(|c| !matches!(c, b'_' | b'-' | b'.' | b' ')) {
        out[n] = c.to_ascii_lowercase();
        n += 1;
    }
    &out[..n]
}

/// [`words`] of an ASCII name, written in `out` (twice as long as the name:
/// each byte gives at most itself and a `_`).
fn words_ascii<'a>(name: &[u8], out: &'a mut [u8]) -> &'a [u8] {
    let mut n = 0;
    let mut prev_lower = false;
    for &c in name {
        let after_underscore = n > 0 && out[n - 1] == b'_';
        if matches!(c, b'_' | b'-' | b'.' | b' ' | b'/') {
            if n > 0 && !after_underscore {
                out[n] = b'_';
                n += 1;
            }
            prev_lower = false;
            continue;
        }
        if c.is_ascii_uppercase() && prev_lower && !after_underscore {
            out[n] = b'_';
            n += 1;
        }
        prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        out[n] = c.to_ascii_lowercase();
        n += 1;
    }
    while n > 0 && out[n - 1] == b'_' {
        n -= 1;
    }
    &out[..n]
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
    find_all(value, "PRIVATE KEY").any(|i| {
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

fn upper_digit(c: u8) -> bool {
    c.is_ascii_uppercase() || c.is_ascii_digit()
}
fn alnum(c: u8) -> bool {
    c.is_ascii_alphanumeric()
}
fn alnum_us(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}
fn base64url(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'-'
}
fn alnum_dash(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'-'
}
fn alnum_slash(c: u8) -> bool {
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

/// Which bytes start a prefix of [`TOKENS`].
const TOKEN_STARTS: [bool; 256] = {
    let mut starts = [false; 256];
    let mut f = 0;
    while f < TOKENS.len() {
        let mut p = 0;
        while p < TOKENS[f].prefixes.len() {
            starts[TOKENS[f].prefixes[p].as_bytes()[0] as usize] = true;
            p += 1;
        }
        f += 1;
    }
    starts
};

/// A token in a documented format anywhere in the text, or an HTTP
/// `Authorization` value (`Bearer …`, `Basic …`) as the whole text. Of
/// several tokens, the one whose format comes first in [`TOKENS`].
fn token(text: &str, bytes: &Bytes) -> Option<&'static str> {
    let possible = TOKENS.iter().any(|format| format.prefixes.iter().any(|prefix| bytes.all(prefix)));
    if let Some(f) = possible.then(|| first_token(text)).flatten() {
        return Some(TOKENS[f].what);
    }
    if bytes.all("eyJ") && jwt(text) {
        return Some("a JSON Web Token");
    }
    authorization(text)
}

/// The index in [`TOKENS`] of the first format with a token in the text.
///
/// One pass over the starts of words (a token follows no letter or digit),
/// not one search a prefix. A prefix found where an earlier occurrence of
/// itself overlaps (`AKIAKIA…`) follows a letter, so it never counts: each
/// start of a word found here is one `str::match_indices` would report.
fn first_token(text: &str) -> Option<usize> {
    let b = text.as_bytes();
    let mut first: Option<usize> = None;
    for (i, &c) in b.iter().enumerate() {
        if !TOKEN_STARTS[usize::from(c)] || (i > 0 && b[i - 1].is_ascii_alphanumeric()) {
            continue;
        }
        let rest = &b[i..];
        let upto = first.unwrap_or(TOKENS.len());
        let found = TOKENS[..upto].iter().position(|format| {
            format.prefixes.iter().any(|prefix| {
                prefix.as_bytes()[0] == c && rest.starts_with(prefix.as_bytes()) && {
                    let len = rest[prefix.len()..].iter().take_while(|&&c| (format.body)(c)).count();
                    (format.min..=format.max).contains(&len)
                }
            })
        });
        if found == Some(0) {
            return found;
        }
        first = found.or(first);
    }
    first
}

/// An HTTP `Authorization` value (`Bearer …`, `Basic …`) as the whole text.
fn authorization(text: &str) -> Option<&'static str> {
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
fn authorization_reference(value: &str) -> bool {
    let t = unquote(value.trim());
    ["Bearer ", "Basic "].iter().any(|s| strip_prefix_ignore_case(t, s).is_some_and(|r| is_reference(r.trim())))
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| &text[prefix.len()..])
}

/// `header.payload.signature`, header and payload base64url JSON objects (`eyJ`).
fn jwt(text: &str) -> bool {
    let b = text.as_bytes();
    find_all(text, "eyJ").any(|i| {
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
fn password_hash(text: &str) -> bool {
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
    }) || ["{SHA}", "{SSHA}"].iter().any(|p| find_all(text, p).any(|i| run(&text[i + p.len()..], &b64) >= 28))
}

/// A `scheme://user:password@host` with a literal password.
fn url_with_password(text: &str) -> bool {
    find_all(text, "://").any(|i| {
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

/// The bytes a text holds.
struct Bytes([bool; 256]);

impl Bytes {
    fn of(text: &str) -> Self {
        let mut seen = [false; 256];
        for &c in text.as_bytes() {
            seen[usize::from(c)] = true;
        }
        Bytes(seen)
    }

    /// Does the text hold every byte of `needle` (so that it may hold `needle`)?
    fn all(&self, needle: &str) -> bool {
        needle.bytes().all(|c| self.0[usize::from(c)])
    }
}

/// Where `needle` (not empty) occurs in `text`, the occurrences not
/// overlapping, from the left: what `str::match_indices` finds, without the
/// set-up of its searcher, which costs more than the search itself on the
/// short lines and names read here, many times over.
fn find_all<'a>(text: &'a str, needle: &'a str) -> impl Iterator<Item = usize> + 'a {
    let (hay, pat) = (text.as_bytes(), needle.as_bytes());
    let mut from = 0;
    std::iter::from_fn(move || {
        let (&head, tail) = pat.split_first()?;
        while from + pat.len() <= hay.len() {
            let i = from + hay[from..hay.len() - tail.len()].iter().position(|&c| c == head)?;
            if hay[i + 1..].iter().zip(tail).all(|(a, b)| a == b) {
                from = i + pat.len();
                return Some(i);
            }
            from = i + 1;
        }
        None
    })
}

fn contains(text: &str, needle: &str) -> bool {
    find_all(text, needle).next().is_some()
}

fn unquote(v: &str) -> &str {
    for q in ['"', '\''] {
        if v.len() >= 2 && v.starts_with(q) && v.ends_with(q) {
            return &v[1..v.len() - 1];
        }
    }
    v
}

fn is_identifier(v: &str) -> bool {
    let mut chars = v.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn is_reference(v: &str) -> bool {
    ["$(", "${", "{{", "#{", "%{", "<%"].iter().any(|open| contains(v, open))
        || v.strip_prefix('$').is_some_and(is_identifier)
        || v.strip_prefix('%').and_then(|v| v.strip_suffix('%')).is_some_and(is_identifier)
        || ["vault:", "ref+", "arn:"].iter().any(|p| v.starts_with(p))
}

fn is_placeholder(v: &str) -> bool {
    (v.len() >= 3 && v.bytes().all(|c| c == b'*'))
        || (v.len() > 2 && v.starts_with('<') && v.ends_with('>') && !v[1..v.len() - 1].contains(['<', '>']))
        || v.as_bytes().windows(11).any(|w| w.eq_ignore_ascii_case(b"placeholder"))
}

fn is_path(last_word: &str, v: &str) -> bool {
    if v.contains(char::is_whitespace) || contains(v, "://") {
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

fn is_url(v: &str) -> bool {
    let Some(at) = find_all(v, "://").next() else { return false };
    let (scheme, rest) = (&v[..at], &v[at + 3..]);
    let scheme_ok = scheme.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c));
    scheme_ok && !rest.is_empty() && !v.contains(char::is_whitespace) && !url_with_password(v)
}

fn is_setting(words: &str, last_word: &str, v: &str) -> bool {
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

fn is_comment(line: &str) -> bool {
    ["#", ";", "//", "/*", "* ", "<!--"].iter().any(|c| line.starts_with(c)) || line == "*"
}

fn is_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 128 && s.chars().all(|c| c.is_alphanumeric() || "_-.[]@/".contains(c))
}

/// The `name` and `value` one line of a configuration file assigns:
/// `name = value`, `name: value`, `"name": "value",`, `export NAME=value`,
/// `- name: value`, `<name>value</name>`, or `name value`.
fn assignment(line: &str) -> Option<(&str, &str)> {
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
        let value = find_all(value, " #").next().map_or(value, |at| &value[..at]).trim();
        value.strip_suffix([',', ';']).unwrap_or(value).trim()
    };
    // A nested block (`{`, `[`, YAML `|`, `>-`): its lines are read on their own.
    let block = matches!(value, "{" | "[" | "|" | "|-" | "|+" | ">" | ">-" | ">+") || value.ends_with(" |");
    Some((name, if block { "" } else { value }))
}

/// `name=value` pairs (`-Dx.password=…`, `password="…"`, `?token=…&`) and JSON
/// `"name": value` pairs inside a text.
fn inner_pairs(text: &str) -> Vec<(&str, &str)> {
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
fn read_value(text: &str) -> &str {
    if let Some(q) = text.chars().next().filter(|c| *c == '"' || *c == '\'') {
        return text[1..].split(q).next().unwrap_or_default();
    }
    let end = text.find(|c: char| c.is_whitespace() || ";&,)\"'}]".contains(c)).unwrap_or(text.len());
    &text[..end]
}

#[cfg(test)]
mod oracle;

#[cfg(test)]
mod tests {
    use super::*;

    fn detector(settings: &str) -> Detector {
        Detector::configure(serde_json::from_str(settings).unwrap()).unwrap()
    }

    fn check(name: &str, value: &str) -> Option<Credential> {
        detector("{}").check(name, value)
    }

    #[test]
    fn names_and_patterns() {
        let p = NamePatterns::defaults();
        assert_eq!(p.matches("DB_PASSWORD"), Some("password"));
        assert_eq!(p.matches("dbPassword"), Some("password"));
        assert_eq!(p.matches("API-KEY"), Some("apikey"));
        assert_eq!(p.matches("default_pass"), Some("*_pass"));
        assert_eq!(p.matches("rabbitmqDefaultPass"), Some("*_pass"));
        assert_eq!(p.matches("AZURE_BATCH_KEY"), Some("azure_*key"));
        assert_eq!(p.matches("OCI_CLI_KEY_CONTENT"), Some("ociclikeycontent"));
        assert_eq!(p.matches("PROXY_BYPASS"), None);
        assert_eq!(p.matches("LOG_LEVEL"), None);
        assert_eq!(words("KAFKA_CLIENT_PASSWORDS_FILE"), "kafka_client_passwords_file");
        assert_eq!(words("passwordFile"), "password_file");
        assert_eq!(words("-Dspring.datasource.password"), "dspring_datasource_password");
        assert!(NamePatterns::new(&["ok", "-_."]).is_err_and(|i| i == 1));
        assert!(glob("a*b*c", "axxbyyc") && glob("*", "") && !glob("a*b", "ac") && glob("x", "x"));
    }

    #[test]
    fn the_schema_lists_the_defaults() {
        let schema: serde_json::Value = serde_json::from_str(SETTINGS_SCHEMA).unwrap();
        let text = schema["properties"]["patterns"]["description"].as_str().unwrap();
        let listed = text.split_once("defaults (").unwrap().1.split_once(')').unwrap().0;
        assert_eq!(listed.split(", ").collect::<Vec<_>>(), DEFAULT_PATTERNS);
    }

    #[test]
    fn not_credentials_whatever_the_name() {
        use NotCredential::*;
        let cases = [
            ("POSTGRES_PASSWORD_FILE", "/opt/bitnami/postgresql/secrets/postgres-password", Path),
            ("KAFKA_CLIENT_PASSWORDS_FILE", "/opt/bitnami/kafka/config/secrets/client-passwords", Path),
            ("TLS_PRIVATE_KEY_FILE", "tls.key", Path),
            ("SECRET_PATH", "secrets/db", Path),
            ("ALLOW_EMPTY_PASSWORD", "no", Flag),
            ("REQUIRE_TOKEN", "TRUE", Flag),
            ("PASSWORD_AUTH", "disabled", Flag),
            ("GITHUB_TOKEN", "", Empty),
            ("password", "\"\"", Empty),
            ("image_pull_secrets", "[]", Empty),
            ("DB_PASSWORD", "$(DB_PASSWORD)", Reference),
            ("password", "${RABBITMQ_PASSWORD}", Reference),
            ("token", "{{ .Values.token }}", Reference),
            ("REDISCLI_AUTH", "$REDIS_PASSWORD", Reference),
            ("DB_PASSWORD", "vault:secret/data/db#password", Reference),
            ("password", "controller-password-placeholder", Placeholder),
            ("password", "<your-password>", Placeholder),
            ("password", "********", Placeholder),
            ("TOKEN_URL", "https://auth.example.com/oauth/token", Url),
            ("SECRET_MANAGER", "https://user@vault.example.com:8200", Url),
            ("TOKEN_TTL", "60", Setting),
            ("SESSION_TOKEN_TIMEOUT", "30s", Setting),
            ("PASSWORD_MIN_LENGTH", "12", Setting),
            ("TOKEN_TYPE", "Bearer", Setting),
            ("SECRET_NAME", "db-credentials", Setting),
            ("existingSecret", "postgres-auth", Setting),
        ];
        for (name, value, why) in cases {
            assert_eq!(not_a_credential(name, value), Some(why), "{name}={value}");
            assert_eq!(check(name, value), None, "{name}={value}");
        }
    }

    #[test]
    fn credentials() {
        let named = |p: &str| Some(Credential::Named { pattern: p.into() });
        let cases = [
            ("DB_PASSWORD", "hunter2", named("password")),
            ("password", "abc123", named("password")),
            ("AZURE_BATCH_KEY", "xxxxx", named("azure_*key")),
            ("default_pass", "CHANGEME", named("*_pass")),
            ("DB_PASSWORD", "123456", named("password")),
            ("TOKEN_TTL", "forever-abc", named("token")),
            ("SECRET_FILE", "hunter2", named("secret")),
            (
                "the_good_stuff",
                "-----BEGIN OPENSSH PRIVATE KEY-----\nxx\n-----END OPENSSH PRIVATE KEY-----",
                Some(Credential::PrivateKey),
            ),
            ("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE", Some(Credential::Token("an AWS access key ID"))),
            ("GH", "ghp_0123456789abcdefghijABCDEFGHIJ012345", Some(Credential::Token("a GitHub token"))),
            ("SLACK", "xoxb-123456789012-abcdefABCDEF", Some(Credential::Token("a Slack token"))),
            (
                "HOOK",
                "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX",
                Some(Credential::Token("a Slack webhook URL")),
            ),
            ("SA", "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl", Some(Credential::Token("a JSON Web Token"))),
            ("AUTH", "Bearer abcdefgh12345678", Some(Credential::Token("an HTTP Authorization credential"))),
            ("DATABASE_URL", "postgres://user:pass@db:5432/app", Some(Credential::UrlPassword)),
            ("BROKER", "amqp://guest:guest@rabbitmq", Some(Credential::UrlPassword)),
            ("HTPASSWD", "admin:$apr1$abcdefgh$0123456789abcdefghijkl", Some(Credential::PasswordHash)),
            (
                "JDBC",
                "jdbc:mysql://db/app?user=app&password=s3cret",
                Some(Credential::Inner { name: "password".into(), pattern: "password".into() }),
            ),
            (
                "JAVA_OPTS",
                "-Xmx1g -Djavax.net.ssl.trustStorePassword=changeit",
                Some(Credential::Inner {
                    name: "Djavax.net.ssl.trustStorePassword".into(),
                    pattern: "password".into(),
                }),
            ),
        ];
        for (name, value, expected) in cases {
            assert_eq!(check(name, value), expected, "{name}={value}");
        }
        // The same shapes with references or without a password are not.
        for (name, value) in [
            ("DATABASE_URL", "postgres://user:$(DB_PASSWORD)@db/app"),
            ("DATABASE_URL", "postgres://user@db/app"),
            ("REDIS_URL", "redis://:${REDIS_PASSWORD}@redis:6379"),
            ("AUTH", "Bearer $(TOKEN)"),
            ("JAVA_OPTS", "-Dsecret.file=/etc/secret -Dtoken.ttl=60"),
            ("CERT", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"),
            ("DOC", "never put a private key here"),
            ("GH", "ghp_short"),
        ] {
            assert_eq!(check(name, value), None, "{name}={value}");
        }
    }

    #[test]
    fn allow_list() {
        let d = detector(r#"{"allow":["TOKEN_*","db_password"]}"#);
        assert_eq!(d.check("TOKEN_SEED", "abc"), None);
        assert_eq!(d.check("db_password", "abc"), None);
        assert!(d.check("DB_PASSWORD", "abc").is_some(), "case-sensitive");
        let d = detector(r#"{"patterns":["LOG_LEVEL"]}"#);
        assert_eq!(d.check("log.level", "debug"), Some(Credential::Named { pattern: "LOG_LEVEL".into() }));
        assert_eq!(d.check("DB_PASSWORD", "x"), None);
        let e = Detector::configure(serde_json::from_str(r#"{"patterns":["a","_"]}"#).unwrap()).unwrap_err();
        assert_eq!(e.field, "/patterns/1");
    }

    #[test]
    fn embedded_files() {
        let text = "\
# RabbitMQ
loopback_users.guest = false
default_user = admin
default_pass = CHANGEME
# default_pass = commented out; password=example
; api_key=example
listeners.tcp.default = 5672
";
        let hits = detector("{}").scan_text(text);
        assert_eq!(hits.len(), 1, "{hits:?}");
        assert_eq!(hits[0].line, 4);
        assert_eq!(hits[0].describe(), r#"line 4: default_pass = ****, its name matching "*_pass""#);

        let json =
            "{\n  \"user\": \"app\",\n  \"password\": \"x\",\n  \"token\": \"\",\n  \"nested\": {\"apiKey\":\"k1\"}\n}";
        let hits = detector("{}").scan_text(json);
        let lines: Vec<_> = hits.iter().map(|h| (h.line, h.describe())).collect();
        assert_eq!(
            lines,
            [
                (3, r#"line 3: password = ****, its name matching "password""#.to_string()),
                (5, r#"line 5: nested holds apiKey=****, its name matching "apikey""#.to_string())
            ]
        );

        let mixed = "\
[client]
password = hunter2
user: app
secret: ${SECRET}
export API_TOKEN=abc
requirepass foobared
<password>tomcat</password>
url = postgres://u:p@db/x
key: |
  -----BEGIN EC PRIVATE KEY-----
jaas=PlainLoginModule required username=\"u\" password=\"password-placeholder-0\";
jaas=PlainLoginModule required username=\"u\" password=\"real\";
[[ -f $REDIS_PASSWORD_FILE ]] && export REDIS_PASSWORD=\"$(< \"${REDIS_PASSWORD_FILE}\")\"
if [ \"$password\" != \"PONG\" ]; then
";
        let hits = detector("{}").scan_text(mixed);
        let lines: Vec<_> = hits.iter().map(|h| h.line).collect();
        assert_eq!(lines, [2, 5, 6, 7, 8, 10, 12], "{hits:#?}");
        assert!(hits.iter().all(|h| !h.describe().contains("hunter2") && !h.describe().contains("foobared")));

        let d = detector(r#"{"allow":["password"]}"#);
        assert!(d.scan_text("password = x\n").is_empty());
    }

    #[test]
    fn assignments() {
        assert_eq!(assignment("password = hunter2"), Some(("password", "hunter2")));
        assert_eq!(assignment("\"password\": \"x\","), Some(("password", "x")));
        assert_eq!(assignment("- password: 'x' # note"), Some(("password", "x")));
        assert_eq!(assignment("password: |"), Some(("password", "")));
        assert_eq!(assignment("save \"\""), Some(("save", "")));
        assert_eq!(assignment("rename-command FLUSHDB \"\""), None);
        assert_eq!(assignment("if [ a != b ]; then"), None);
        assert_eq!(assignment("<password>x</password>"), Some(("password", "x")));
    }

    /// Detectors configured with the defaults, with custom patterns (a
    /// substring and globs) and with an allow-list.
    fn detectors() -> Vec<(Detector, oracle::Detector)> {
        [
            "{}",
            r#"{"allow":["db_*","password","*token*"]}"#,
            r#"{"patterns":["LOG_LEVEL","a*b","*key","session","x*"],"allow":["*_PASSWORD"]}"#,
        ]
        .iter()
        .map(|s| {
            let settings = || serde_json::from_str::<Settings>(s).unwrap();
            (Detector::configure(settings()).unwrap(), oracle::Detector::configure(settings()).unwrap())
        })
        .collect()
    }

    /// What each reading of `text` finds, by the fast scanning and by the
    /// oracle: the whole text as an embedded file, each line as a value, and
    /// each line's assignment as `name = value`.
    fn assert_same(detectors: &[(Detector, oracle::Detector)], text: &str, origin: &str) {
        for (new, old) in detectors {
            let (found, expected) = (new.scan_text(text), old.scan_text(text));
            if found != expected {
                let i = found.iter().zip(&expected).take_while(|(f, e)| f == e).count();
                panic!(
                    "{origin}: {} hits, the oracle {}; first difference: {:?}, the oracle {:?}",
                    found.len(),
                    expected.len(),
                    found.get(i),
                    expected.get(i)
                );
            }
        }
        let (new, old) = &detectors[0];
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            let at = || format!("{origin}:{}: {line}", i + 1);
            assert_eq!(secret_in_value(line), oracle::secret_in_value(line), "{}", at());
            assert_eq!(new.check("LINE", line), old.check("LINE", line), "{}", at());
            assert_eq!(assignment(line), oracle::assignment(line), "{}", at());
            assert_eq!(inner_pairs(line), oracle::inner_pairs(line), "{}", at());
            if let Some((name, value)) = assignment(line) {
                assert_eq!(new.check(name, value), old.check(name, value), "{}", at());
                assert_eq!(not_a_credential(name, value), oracle::not_a_credential(name, value), "{}", at());
                assert_eq!(words(name), oracle::words(name), "{}", at());
                for (new, old) in detectors {
                    assert_eq!(new.patterns.matches(name), old.patterns.matches(name), "{}", at());
                }
                assert_eq!(joined(name), oracle::joined(name), "{}", at());
            }
        }
    }

    /// The fast scanning reports exactly what the scanning before it did, on
    /// every file of the real-world corpus (the grafana dashboards, Bitnami's
    /// configuration files and scripts, CRDs with long descriptions) and on
    /// each string of its JSON files.
    #[test]
    fn same_findings_as_the_oracle_on_the_real_world_corpus() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus/real-world");
        assert!(root.is_dir(), "the shared corpus is missing at {}", root.display());
        let detectors = detectors();
        let (mut files, mut stack) = (0, vec![root]);
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                    continue;
                }
                let Ok(text) = std::fs::read_to_string(&path) else { continue };
                let origin = path.display().to_string();
                assert_same(&detectors, &text, &origin);
                files += 1;
                if let Ok(json) = serde_json::from_str::<serde_json::Value>(&text) {
                    let mut values = vec![&json];
                    while let Some(v) = values.pop() {
                        match v {
                            serde_json::Value::String(s) => assert_same(&detectors, s, &origin),
                            serde_json::Value::Array(a) => values.extend(a),
                            serde_json::Value::Object(o) => values.extend(o.values()),
                            _ => {}
                        }
                    }
                }
            }
        }
        assert!(files > 100, "{files} files read");
    }

    /// The same on lines made to reach the corners of each test: tokens at
    /// the start, middle and end of a line, after a letter, cut short or too
    /// long; hashes, URLs, pairs, quotes, case and non-ASCII names.
    #[test]
    fn same_findings_as_the_oracle_on_edge_cases() {
        let detectors = detectors();
        let pieces = [
            "AKIAIOSFODNN7EXAMPLE",
            "xAKIAIOSFODNN7EXAMPLE",
            "AKIAIOSFODNN7EXAMPL",
            "ASIAIOSFODNN7EXAMPLEE",
            "ghp_0123456789abcdefghijABCDEFGHIJ012345",
            "ghp_0123456789",
            "github_pat_0123456789abcdefghij_XY",
            "glpat-0123456789abcdefghij",
            "xoxb-123456789012-abcdefABCDEF",
            "xoxe-1",
            "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX",
            "sk_live_0123456789abcdef",
            "rk_live_0123",
            "AIzaSyA0123456789abcdefghijklmnopqrstu",
            "AIza0123",
            "npm_0123456789abcdefghij0123456789abcdef",
            "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl",
            "aeyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl",
            "Bearer abcdefgh12345678",
            "bearer $(TOKEN)",
            "BASIC dXNlcjpwYXNz",
            "$2y$10$abcdefghijklmnopqrstuu0123456789abcdefghijklmnopqrstu",
            "$apr1$abcdefgh$0123456789abcdefghijkl",
            "$6$rounds=5000$salt$0123456789",
            "$argon2id$v=19$m=65536",
            "{SSHA}0123456789abcdefghijklmnopqrstuvwxyz",
            "{SHA}short",
            "postgres://user:pass@db:5432/app",
            "redis://:${REDIS_PASSWORD}@redis",
            "s3://bucket/key",
            "://x:y@z",
            "-----BEGIN RSA PRIVATE KEY-----",
            "-----BEGIN PRIVATE KEY-----",
            "BEGIN not a PRIVATE KEY",
            "password=hunter2",
            "-Dtrust.storePassword=changeit",
            "?token=abc&x=y",
            "\"apiKey\": \"k1\"",
            "\"apiKey\":\"k1\",\"secret\":\"${S}\"",
            "dbPassword: ''",
            "Pässwort=geheim",
            "ПАРОЛЬ = x",
            "secret_ttl = 60s",
            "tokenType: Bearer",
            "existingSecret: db",
            "password_file = conf/db.pass",
            "password: <changeme>",
            "password: ****",
            "password: PLACEHOLDER",
            "<password>tomcat</password>",
            "- token: 'x' # note",
            "export API_TOKEN=abc",
            "requirepass foobared",
            "rabbitmqDefaultPass: guest",
            "AZURE_BATCH_KEY=x",
            "a == b",
            "x := y",
            "k: |",
            "Ünïcödé: ✓",
            "",
        ];
        let mut text = String::new();
        for a in pieces {
            for b in pieces {
                for sep in [" ", "", "\"", ":", "="] {
                    text.push_str(&format!("{a}{sep}{b}\n"));
                }
            }
        }
        assert_same(&detectors, &text, "edge cases");
        for p in pieces {
            for (new, old) in &detectors {
                assert_eq!(new.check(p, p), old.check(p, p), "{p}");
                assert_eq!(new.check("password", p), old.check("password", p), "{p}");
            }
        }
    }
}
