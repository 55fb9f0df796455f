//! JSON text forms used by the engine.
//!
//! Two writers share one string escaper:
//! - [`canonical`]: the deterministic form that every hash is computed over (audit.md);
//! - [`probe`]: the text `contains`/`pattern` conditions search, keys in received order.

pub mod canonical;
pub mod probe;

pub use canonical::{canonical_string, write_canonical, CanonicalError};
pub use probe::probe_text;

/// Writes `s` as a JSON string literal: `"` `\` and control characters below U+0020 are
/// escaped (`\b \f \n \r \t` by name, the rest as lower-case `\u00XX`); everything else,
/// U+007F and non-ASCII included, is kept as is.
pub(crate) fn write_string(out: &mut String, s: &str) {
    out.push('"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &str = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0x00..=0x1f => "",
            _ => continue,
        };
        // Only ASCII bytes are escaped, so `i` is always a char boundary.
        out.push_str(&s[start..i]);
        if escape.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.push_str("\\u00");
            out.push(HEX[(b >> 4) as usize] as char);
            out.push(HEX[(b & 0xf) as usize] as char);
        } else {
            out.push_str(escape);
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
    fn escapes_only_quote_backslash_and_controls() {
        let mut out = String::new();
        write_string(&mut out, "a\"b\\c\n\u{1}\u{1f}\u{7f}é/");
        assert_eq!(out, "\"a\\\"b\\\\c\\n\\u0001\\u001f\u{7f}é/\"");
    }
}
