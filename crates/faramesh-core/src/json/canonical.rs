//! Canonical JSON (audit.md): keys sorted by code point, no whitespace, integers exactly as
//! written, other numbers as the shortest round-tripping decimal without exponent.

use serde_json::{Map, Number, Value};
use std::fmt::Write as _;

/// Why a value has no canonical form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CanonicalError {
    /// NaN or an infinity (including a literal too large for a double, such as `1e400`).
    #[error("number {0} is not finite (NaN and infinities have no canonical JSON form)")]
    NonFinite(String),
    /// A number literal that is not valid JSON.
    #[error("number {0} is not a valid JSON number")]
    BadNumber(String),
}

/// The canonical text of `value`.
pub fn canonical_string(value: &Value) -> Result<String, CanonicalError> {
    let mut out = String::with_capacity(128);
    write_canonical(&mut out, value)?;
    Ok(out)
}

/// Appends the canonical text of `value` to `out`. On error `out` holds a partial text.
pub fn write_canonical(out: &mut String, value: &Value) -> Result<(), CanonicalError> {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(n) => write_number(out, n)?,
        Value::String(s) => super::write_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(out, item)?;
            }
            out.push(']');
        }
        Value::Object(map) => write_object(out, map)?,
    }
    Ok(())
}

pub(crate) fn write_object(
    out: &mut String,
    map: &Map<String, Value>,
) -> Result<(), CanonicalError> {
    // Rust orders `str` by UTF-8 bytes, which is exactly Unicode code-point order.
    let mut entries: Vec<(&String, &Value)> = map.iter().collect();
    entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
    out.push('{');
    for (i, (key, value)) in entries.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        super::write_string(out, key);
        out.push(':');
        write_canonical(out, value)?;
    }
    out.push('}');
    Ok(())
}

/// Writes a number. `serde_json` keeps the literal as received (`arbitrary_precision`), so
/// integers of any size are copied digit for digit.
pub(crate) fn write_number(out: &mut String, n: &Number) -> Result<(), CanonicalError> {
    let text = n.as_str();
    if is_integer_literal(text) {
        if text == "-0" {
            out.push('0');
        } else {
            out.push_str(text);
        }
        return Ok(());
    }
    let x: f64 = text
        .parse()
        .map_err(|_| CanonicalError::BadNumber(text.to_owned()))?;
    write_float(out, x, text)
}

/// Writes a double as the shortest decimal that round-trips, without exponent.
pub(crate) fn write_float(out: &mut String, x: f64, literal: &str) -> Result<(), CanonicalError> {
    if !x.is_finite() {
        return Err(CanonicalError::NonFinite(literal.to_owned()));
    }
    if x == 0.0 {
        // Covers -0.0, which `Display` would write as "-0".
        out.push('0');
        return Ok(());
    }
    // `Display` for f64 is the shortest round-trip representation and never uses an exponent.
    let _ = write!(out, "{x}");
    Ok(())
}

fn is_integer_literal(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(text: &str) -> Result<String, CanonicalError> {
        let value: Value = serde_json::from_str(text).expect("test input is JSON");
        canonical_string(&value)
    }

    #[test]
    fn sorts_keys_and_drops_whitespace() {
        assert_eq!(
            canon(r#"{ "b": [1, 2], "a": {"d": 1, "c": 2} }"#).unwrap(),
            r#"{"a":{"c":2,"d":1},"b":[1,2]}"#
        );
    }

    #[test]
    fn huge_literals_overflow_to_an_error() {
        assert!(matches!(canon("1e400"), Err(CanonicalError::NonFinite(_))));
        assert!(matches!(
            canon("[-1e400]"),
            Err(CanonicalError::NonFinite(_))
        ));
    }

    #[test]
    fn integers_keep_every_digit() {
        let big = "123456789012345678901234567890123456789";
        assert_eq!(canon(big).unwrap(), big);
        assert_eq!(canon("-0").unwrap(), "0");
    }
}
