//! JSON text forms used by the engine.
//!
//! Two writers share one string escaper:
//! - [`canonical`]: the deterministic form that every hash is computed over (docs/audit.md);
//! - [`probe`]: the text `contains`/`pattern` conditions search, keys in received order.
//!
//! [`received`] keeps an object's text as the client wrote it, beside its parsed value.

#![warn(
    clippy::string_slice,
    clippy::indexing_slicing,
    reason = "this module reads input: a bad index must be an error, not a panic"
)]

pub mod canonical;
pub mod probe;
pub mod received;

pub use canonical::{canonical_string, write_canonical, CanonicalError};
pub use probe::probe_text;
pub use received::{
    first_duplicate_key, DuplicateKey, ReceivedError, ReceivedObject, ReceivedText,
};

/// Position of the first byte at or after `from` that must be escaped. Skips eight clean
/// bytes at a time: strings are most of what is hashed, and almost none of their bytes need
/// an escape.
fn next_escape(bytes: &[u8], from: usize) -> Option<usize> {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    // Nonzero when some byte of `w` is below `n` (n <= 0x80); exact as a yes/no answer.
    let has_less = |w: u64, n: u8| w.wrapping_sub(ONES * u64::from(n)) & !w & HIGHS;
    let has_byte = |w: u64, b: u8| has_less(w ^ (ONES * u64::from(b)), 1);
    let mut i = from;
    while let Some(chunk) = bytes.get(i..i + 8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let w = u64::from_ne_bytes(word);
        if has_less(w, 0x20) | has_byte(w, b'"') | has_byte(w, b'\\') != 0 {
            break;
        }
        i += 8;
    }
    bytes
        .get(i..)?
        .iter()
        .position(|&b| b < 0x20 || b == b'"' || b == b'\\')
        .map(|p| i + p)
}

/// Writes `s` as a JSON string literal: `"` `\` and control characters below U+0020 are
/// escaped (`\b \f \n \r \t` by name, the rest as lower-case `\u00XX`); everything else,
/// U+007F and non-ASCII included, is kept as is.
#[allow(
    clippy::string_slice,
    clippy::indexing_slicing,
    reason = "every index comes from next_escape and is an ASCII byte of `s`, so in bounds and a char boundary; HEX is indexed by a nibble"
)]
pub(crate) fn write_string(out: &mut String, s: &str) {
    out.reserve(s.len() + 2);
    out.push('"');
    let bytes = s.as_bytes();
    let mut start = 0;
    // Copy whole runs of bytes that need no escape; only ASCII bytes are ever escaped, so
    // every split point is a char boundary.
    while let Some(i) = next_escape(bytes, start) {
        out.push_str(&s[start..i]);
        let b = bytes[i];
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            0x08 => out.push_str("\\b"),
            0x0c => out.push_str("\\f"),
            _ => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.push_str("\\u00");
                out.push(HEX[usize::from(b >> 4)] as char);
                out.push(HEX[usize::from(b & 0xf)] as char);
            }
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::write_string;

    #[test]
    fn finds_escapes_at_every_position_of_a_word() {
        for special in ['"', '\\', '\n', '\u{1}', '\u{1f}'] {
            for at in 0..20 {
                let mut text: String = "é".repeat(3) + &"x".repeat(at);
                text.push(special);
                text.push_str("tail\u{7f}\u{80}");
                let mut out = String::new();
                write_string(&mut out, &text);
                // serde_json escapes exactly the same set, the same way.
                let expected = serde_json::to_string(&text).unwrap();
                assert_eq!(out, expected, "{special:?} at {at}");
            }
        }
        let mut out = String::new();
        write_string(&mut out, &"clean text, no escapes ".repeat(5));
        assert_eq!(out.len(), 5 * 23 + 2);
    }

    #[test]
    fn escapes_only_quote_backslash_and_controls() {
        let mut out = String::new();
        write_string(&mut out, "a\"b\\c\n\u{1}\u{1f}\u{7f}é/");
        assert_eq!(out, "\"a\\\"b\\\\c\\n\\u0001\\u001f\u{7f}é/\"");
    }
}
