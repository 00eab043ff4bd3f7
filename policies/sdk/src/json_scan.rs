//! Reading JSON text eight bytes at a time: the tests on the bytes of a
//! word, and the end of a string. Shared by the host's tape of an object
//! (`host/src/view.rs`) and [`crate::json_eq`].

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// The bytes of the eight-byte word `w` equal to `c`, each marked by its high
/// bit (the "has a zero byte" test on `w ^ c…c`). A byte above a marked one
/// may be marked falsely; the lowest mark, and whether there is one, are exact.
#[inline]
pub fn bytes_equal(w: u64, c: u8) -> u64 {
    let x = w ^ (ONES * u64::from(c));
    x.wrapping_sub(ONES) & !x & HIGHS
}

/// The bytes of `w` below `n` (at most 0x80), marked as by [`bytes_equal`].
#[inline]
pub fn bytes_below(w: u64, n: u8) -> u64 {
    w.wrapping_sub(ONES * u64::from(n)) & !w & HIGHS
}

/// The end of the string starting at `b[i]` (a quote), after its closing
/// quote, and whether it has escapes. Eight bytes at a time: a word's first
/// quote or backslash is the lowest byte [`bytes_equal`] marks.
#[inline]
pub fn string_end(b: &[u8], i: usize) -> Option<(usize, bool)> {
    let mut j = i + 1;
    let mut escaped = false;
    loop {
        while let Some(word) = b.get(j..).and_then(<[u8]>::first_chunk::<8>) {
            let w = u64::from_le_bytes(*word);
            let found = bytes_equal(w, b'"') | bytes_equal(w, b'\\');
            if found != 0 {
                j += (found.trailing_zeros() / 8) as usize;
                break;
            }
            j += 8;
        }
        match *b.get(j)? {
            b'"' => return Some((j + 1, escaped)),
            b'\\' => {
                escaped = true;
                j += 2;
            }
            _ => j += 1,
        }
    }
}
