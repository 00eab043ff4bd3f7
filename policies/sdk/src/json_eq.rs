//! Whether two JSON texts hold equal values, as `serde_json::Value`'s `==`
//! decides, without building either value.
//!
//! Building a `Value` costs a map node per object and a `String` per key;
//! comparing two probes that way was a quarter of the `liveness-probe` rule's
//! instructions. Here each text is read once into a flat list of its values
//! (a tape: where each value starts and ends, and where the one after it
//! starts), and the two lists are compared in place.
//!
//! The equality is `Value`'s:
//! - objects: the same keys, in any order, with equal values; of a key given
//!   twice the last value counts (serde_json's map keeps it);
//! - arrays: the same length, element by element;
//! - strings: the same characters once their escapes are read;
//! - numbers: as `serde_json::Number` (`1` is not `1.0`; `1.0` is `1.00`;
//!   `-0` reads as the float `-0.0`, which is `0.0` but not `0`);
//! - `true`, `false` and `null`.
//!
//! The two values are built and compared (as `Value`s, exactly as before)
//! when this walk would be slow or could read a text otherwise than
//! serde_json: a string with an escape, a number with an exponent or of 300
//! characters or more (serde_json refuses one out of `f64`'s range, and then
//! the whole text reads as `null`), an object of more than [`WIDE`] keys
//! (matching keys here takes quadratic time), arrays and objects nested more
//! than 32 deep. (The texts are `RawValue`s: JSON, as serde_json reads it.)

use serde_json::value::RawValue;

/// The most keys an object may have to be compared here.
const WIDE: usize = 16;

/// `a` and `b` as `serde_json::Value`s are equal; a text that does not read
/// is `Value::Null`, as `serde_json::from_str(..).unwrap_or_default()` has it.
pub fn equal(a: &RawValue, b: &RawValue) -> bool {
    let (a, b) = (a.get(), b.get());
    if a == b {
        return true;
    }
    let walked = match (Tape::read(a), Tape::read(b)) {
        (Some(ta), Some(tb)) => ta.equal(0, &tb, 0),
        _ => None,
    };
    walked.unwrap_or_else(|| as_values(a) == as_values(b))
}

fn as_values(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_default()
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Null,
    True,
    False,
    /// An integer of at most 18 digits, perhaps after a `-`, not `-0`: an
    /// `i64` or `u64` that only its own spelling writes.
    Integer,
    /// Any other number: with a fraction, `-0`, or of more digits (which
    /// serde_json may read as an `f64`).
    Float,
    /// A string without escapes.
    String,
    Array,
    Object,
}

/// One value of a text: its kind, its bytes, and the index of the value
/// after it (after its last member, for an array or object).
#[derive(Clone, Copy, Debug)]
struct Node {
    kind: Kind,
    start: u32,
    end: u32,
    next: u32,
}

/// An object's members, at most [`WIDE`]: each key's and value's index.
struct Members {
    at: [(usize, usize); WIDE],
    len: usize,
}

impl std::ops::Deref for Members {
    type Target = [(usize, usize)];

    fn deref(&self) -> &[(usize, usize)] {
        &self.at[..self.len]
    }
}

struct Tape<'a> {
    text: &'a str,
    nodes: Vec<Node>,
}

impl<'a> Tape<'a> {
    /// The values of `text`, or `None` where serde_json alone can say what
    /// it holds (see the module documentation).
    fn read(text: &'a str) -> Option<Tape<'a>> {
        let b = text.as_bytes();
        u32::try_from(b.len()).ok()?;
        let mut nodes: Vec<Node> = Vec::with_capacity(b.len() / 6 + 1);
        // The arrays and objects open at `i`, innermost last.
        let mut open = [0u32; 32];
        let mut depth = 0;
        let mut i = 0;
        loop {
            while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\n' | b'\r' | b',' | b':') {
                i += 1;
            }
            let start = i;
            let kind = match *b.get(i)? {
                c @ (b'{' | b'[') => {
                    *open.get_mut(depth)? = nodes.len() as u32;
                    depth += 1;
                    let kind = if c == b'{' { Kind::Object } else { Kind::Array };
                    nodes.push(Node { kind, start: start as u32, end: 0, next: 0 });
                    i += 1;
                    continue;
                }
                b'}' | b']' => {
                    depth = depth.checked_sub(1)?;
                    let next = nodes.len() as u32;
                    i += 1;
                    let node = nodes.get_mut(open[depth] as usize)?;
                    (node.end, node.next) = (i as u32, next);
                    if depth == 0 {
                        break;
                    }
                    continue;
                }
                b'"' => {
                    // An escape leaves the text to serde_json.
                    let (end, escaped) = crate::json_scan::string_end(b, i)?;
                    if escaped {
                        return None;
                    }
                    i = end;
                    Kind::String
                }
                b't' => {
                    i += 4;
                    Kind::True
                }
                b'f' => {
                    i += 5;
                    Kind::False
                }
                b'n' => {
                    i += 4;
                    Kind::Null
                }
                first @ (b'-' | b'0'..=b'9') => {
                    let mut fraction = false;
                    i += 1;
                    while let Some(&c) = b.get(i) {
                        match c {
                            b'0'..=b'9' => {}
                            b'.' => fraction = true,
                            b'e' | b'E' | b'+' | b'-' => return None,
                            _ => break,
                        }
                        i += 1;
                    }
                    let n = i - start;
                    if n >= 300 {
                        return None;
                    }
                    let negative = first == b'-';
                    let minus_zero = negative && n == 2 && b[start + 1] == b'0';
                    if fraction || minus_zero || n - usize::from(negative) > 18 { Kind::Float } else { Kind::Integer }
                }
                _ => return None,
            };
            nodes.push(Node { kind, start: start as u32, end: i as u32, next: nodes.len() as u32 + 1 });
            if depth == 0 {
                break;
            }
        }
        // Nothing but white space after the value.
        b[i.min(b.len())..].iter().all(u8::is_ascii_whitespace).then_some(Tape { text, nodes })
    }

    fn bytes(&self, node: Node) -> Option<&'a [u8]> {
        self.text.as_bytes().get(node.start as usize..node.end as usize)
    }

    /// The bytes of the key at index `key`.
    fn key(&self, key: usize) -> Option<&'a [u8]> {
        self.bytes(*self.nodes.get(key)?)
    }

    /// Whether value `i` here equals value `j` of `other`; `None`: the walk
    /// cannot tell.
    fn equal(&self, i: usize, other: &Tape, j: usize) -> Option<bool> {
        let (x, y) = (*self.nodes.get(i)?, *other.nodes.get(j)?);
        if x.kind != y.kind && !matches!((x.kind, y.kind), (Kind::Integer, Kind::Float) | (Kind::Float, Kind::Integer))
        {
            return Some(false);
        }
        Some(match x.kind {
            Kind::Null | Kind::True | Kind::False => true,
            // The same text reads as the same value: nothing in it reads otherwise.
            _ if self.bytes(x)? == other.bytes(y)? => true,
            // Two integers are equal only when written alike, and never equal a float.
            Kind::Integer | Kind::Float if x.kind != y.kind || x.kind == Kind::Integer => false,
            Kind::Float => {
                let number = |t: &[u8]| serde_json::from_slice::<serde_json::Number>(t).ok();
                number(self.bytes(x)?)? == number(other.bytes(y)?)?
            }
            Kind::String | Kind::Integer => false,
            Kind::Array => {
                let (mut p, mut q) = (i + 1, j + 1);
                let (p_end, q_end) = (x.next as usize, y.next as usize);
                while p < p_end && q < q_end {
                    if !self.equal(p, other, q)? {
                        return Some(false);
                    }
                    p = self.nodes.get(p)?.next as usize;
                    q = other.nodes.get(q)?.next as usize;
                }
                p == p_end && q == q_end
            }
            Kind::Object => {
                let (Some(mine), Some(theirs)) = (self.members(i), other.members(j)) else { return None };
                for (n, &(key, value)) in mine.iter().enumerate() {
                    let name = self.key(key)?;
                    // Their last member of that key (serde_json keeps the last).
                    let mut found = None;
                    for &(their_key, their_value) in theirs.iter().rev() {
                        if other.key(their_key)? == name {
                            found = Some(their_value);
                            break;
                        }
                    }
                    let same = match found {
                        Some(their_value) => self.equal(value, other, their_value)?,
                        None => false,
                    };
                    // Only the last member of a key here counts as well.
                    if !same && !self.key_again(&mine[n + 1..], name)? {
                        return Some(false);
                    }
                }
                // Each key's last value here has its equal there: the same
                // keys, when there are as many.
                self.distinct_keys(&mine)? == other.distinct_keys(&theirs)?
            }
        })
    }

    /// The members of object `at`: the indices of each key and its value; `None`
    /// for more than [`WIDE`] of them.
    fn members(&self, at: usize) -> Option<Members> {
        let end = self.nodes.get(at)?.next as usize;
        let mut out = Members { at: [(0, 0); WIDE], len: 0 };
        let mut key = at + 1;
        while key < end {
            let value = key + 1;
            *out.at.get_mut(out.len)? = (key, value);
            out.len += 1;
            key = self.nodes.get(value)?.next as usize;
        }
        Some(out)
    }

    /// Whether one of `later` has the key `name`.
    fn key_again(&self, later: &[(usize, usize)], name: &[u8]) -> Option<bool> {
        for &(other, _) in later {
            if self.key(other)? == name {
                return Some(true);
            }
        }
        Some(false)
    }

    /// How many keys `members` have, a key given twice counted once.
    fn distinct_keys(&self, members: &[(usize, usize)]) -> Option<usize> {
        let mut count = 0;
        for (n, &(key, _)) in members.iter().enumerate() {
            if !self.key_again(&members[n + 1..], self.key(key)?)? {
                count += 1;
            }
        }
        Some(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn raw(text: &str) -> Box<RawValue> {
        RawValue::from_string(text.to_string()).unwrap()
    }

    /// `equal` against `Value`'s `==`, both ways, and says which.
    fn check(a: &str, b: &str) -> bool {
        let expected = as_values(a) == as_values(b);
        assert_eq!(equal(&raw(a), &raw(b)), expected, "{a} vs {b}");
        assert_eq!(equal(&raw(b), &raw(a)), expected, "{b} vs {a}");
        expected
    }

    #[test]
    fn equal_as_values_are() {
        let equal_pairs = [
            (r#"{"a":1,"b":2}"#, r#"{"b":2,"a":1}"#),
            (r#"{"a":1,"a":2}"#, r#"{"a":2}"#),
            (r#"{"a":1,"b":3,"a":2}"#, r#"{"b":3,"a":0,"a":2}"#),
            (r#"{ "a" : [ 1 , 2 ] }"#, r#"{"a":[1,2]}"#),
            ("1.0", "1.00"),
            ("1.5", "1.50"),
            ("-0", "0.0"),
            ("-0", "-0.0"),
            ("0.10", "0.1"),
            (r#""\u0061""#, r#""a""#),
            (r#"{"\u0061":1}"#, r#"{"a":1}"#),
            ("1e0", "1.0"),
            ("10E-1", "1.0"),
            (
                r#"{"httpGet":{"path":"/h","port":80},"periodSeconds":10}"#,
                r#"{"periodSeconds":10,"httpGet":{"port":80,"path":"/h"}}"#,
            ),
            ("[]", "[ ]"),
            ("{}", "{ }"),
            (r#""é""#, r#""\u00e9""#),
        ];
        for (a, b) in equal_pairs {
            assert!(check(a, b), "{a} = {b}");
        }
        let unequal = [
            ("1", "1.0"),
            ("-0", "0"),
            ("1", "2"),
            ("-1", "1"),
            ("[1,2]", "[2,1]"),
            ("[1]", "[1,1]"),
            ("[]", "{}"),
            ("null", "false"),
            ("true", "false"),
            (r#"{"a":1}"#, r#"{"a":1,"b":1}"#),
            (r#"{"a":1,"a":2}"#, r#"{"a":1}"#),
            (r#"{"a":1,"b":1}"#, r#"{"a":1,"a":1}"#),
            (r#"{"a":"1"}"#, r#"{"a":1}"#),
            (r#""a""#, r#""b""#),
            (r#""\n""#, r#""n""#),
            (r#"{"httpGet":{"path":"/h","port":80}}"#, r#"{"httpGet":{"path":"/ready","port":80}}"#),
            ("18446744073709551615", "18446744073709551614"),
            ("0.1", "0.2"),
            ("123456789012345678", "123456789012345679"),
        ];
        for (a, b) in unequal {
            assert!(!check(a, b), "{a} != {b}");
        }
    }

    #[test]
    fn what_serde_json_refuses_reads_as_null() {
        // Out of `f64`'s range: serde_json does not read the text, so both are
        // `null`, and equal whatever else they hold.
        assert!(check(r#"{"a":1e400,"b":1}"#, r#"{"a":1e400,"b":2}"#));
        assert!(check(&format!("[1{},1]", "0".repeat(400)), &format!("[1{},2]", "0".repeat(400))));
        assert!(!check(r#"{"a":1e400}"#, r#"{"a":1}"#));
        // A lone surrogate (when serde_json refuses it) likewise.
        check(r#"["\ud800",1]"#, r#"["\ud800",2]"#);
        assert!(check(r#"[1e2]"#, r#"[100.0]"#));
        // Integers past `u64` read as `f64`s: two spellings of one.
        assert!(check("100000000000000000000001", "100000000000000000000000"));
        assert!(check("[100000000000000000000000]", "[100000000000000000000000.0]"));
        assert!(!check("100000000000000000000000", "100000000000000000000000000"));
        assert!(!check("18446744073709551615", "18446744073709551615.0"));
        assert!(!check(r#"[1e2]"#, r#"[100]"#));
    }

    #[test]
    fn wide_objects_are_compared_as_values() {
        let keys: Vec<String> = (0..40).map(|k| format!(r#""k{k}":{k}"#)).collect();
        let forward = format!("{{{}}}", keys.join(","));
        let backward = format!("{{{}}}", keys.iter().rev().cloned().collect::<Vec<_>>().join(","));
        assert!(Tape::read(&forward).unwrap().equal(0, &Tape::read(&backward).unwrap(), 0).is_none());
        assert!(check(&forward, &backward));
        assert!(!check(&forward, &backward.replace("\"k3\":3", "\"k3\":4")));
        // Nested deeper than the walk goes: compared as values too.
        let deep = |inner: &str| format!("{}{inner}{}", "[".repeat(40), "]".repeat(40));
        assert!(Tape::read(&deep("1")).is_none());
        assert!(check(&deep("1.0"), &deep("1.00")));
        assert!(!check(&deep("1"), &deep("2")));
    }

    /// A small generator (xorshift), so the cases are the same every run.
    struct Random(u64);

    impl Random {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n
        }

        fn value(&mut self, depth: u32) -> Value {
            let leaf = depth == 0;
            match self.below(if leaf { 5 } else { 7 }) {
                0 => Value::Null,
                1 => Value::Bool(self.below(2) == 0),
                2 => serde_json::json!(self.below(3) as i64 - 1),
                3 => serde_json::from_str(["0.5", "1.0", "-0.0", "2.25"][self.below(4) as usize]).unwrap(),
                4 => Value::String(["a", "b", "/h", ""][self.below(4) as usize].to_string()),
                5 => Value::Array((0..self.below(3)).map(|_| self.value(depth - 1)).collect()),
                _ => Value::Object(
                    (0..self.below(4))
                        .map(|_| (["a", "b", "c"][self.below(3) as usize].to_string(), self.value(depth - 1)))
                        .collect(),
                ),
            }
        }

        /// `value` written with its keys in a random order, some given twice
        /// (the first time with another value), and its numbers respelled.
        fn respell(&mut self, value: &Value) -> String {
            match value {
                Value::Object(map) => {
                    // Some keys first with another value, then every key in a random order.
                    let mut members: Vec<String> = Vec::new();
                    for k in map.keys() {
                        if self.below(4) == 0 {
                            members.push(format!("{k:?}:{}", self.value(1)));
                        }
                    }
                    let mut last: Vec<String> = map.iter().map(|(k, v)| format!("{k:?}:{}", self.respell(v))).collect();
                    for n in (1..last.len()).rev() {
                        last.swap(n, self.below(n as u64 + 1) as usize);
                    }
                    members.extend(last);
                    format!("{{{}}}", members.join(","))
                }
                Value::Array(items) => {
                    format!("[{}]", items.iter().map(|v| self.respell(v)).collect::<Vec<_>>().join(", "))
                }
                Value::Number(n) if n.is_f64() && self.below(2) == 0 => format!("{n}0"),
                other => other.to_string(),
            }
        }
    }

    #[test]
    fn random_values_respelled_and_changed() {
        let mut random = Random(0x9e37_79b9_7f4a_7c15);
        let (mut same, mut differ) = (0, 0);
        for _ in 0..3000 {
            let value = random.value(3);
            let text = value.to_string();
            let respelled = random.respell(&value);
            assert!(check(&text, &respelled), "{text} vs {respelled}");
            let other = random.value(3);
            if check(&text, &random.respell(&other)) {
                same += 1;
            } else {
                differ += 1;
            }
        }
        assert!(same > 50 && differ > 1000, "{same} equal, {differ} unequal");
    }
}
