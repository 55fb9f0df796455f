//! Canonical JSON (docs/audit.md): keys sorted by code point, no whitespace, integers exactly as
//! written, other numbers as the shortest round-tripping decimal without exponent.

use serde_json::{Map, Number, Value};
use smallvec::SmallVec;
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
    // Most objects are small: sort their entries on the stack.
    let mut entries: SmallVec<[(&String, &Value); 16]> = map.iter().collect();
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
    if is_shortest_plain_decimal(text) {
        out.push_str(text);
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

/// A literal such as `12.5` or `-0.0025` that is already its own canonical form, so the
/// parse-and-format round trip can be skipped. Any decimal of at most 15 significant digits
/// survives the trip through a double unchanged (15 is `f64::DIGITS`) and no shorter decimal
/// maps to the same double, so the shortest round-trip text is the literal itself once it has
/// no exponent and no trailing zero.
fn is_shortest_plain_decimal(text: &str) -> bool {
    let unsigned = text.strip_prefix('-').unwrap_or(text);
    let Some((int, frac)) = unsigned.split_once('.') else {
        return false;
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(int)
        || !digits(frac)
        || frac.ends_with('0')
        || (int.len() > 1 && int.starts_with('0'))
    {
        return false;
    }
    if int == "0" {
        let significant = frac.trim_start_matches('0');
        // Far below 1e-300 doubles lose precision (subnormals) or underflow to zero.
        let leading_zeros = frac.len() - significant.len();
        significant.len() <= f64::DIGITS as usize && leading_zeros < 300
    } else {
        int.len() + frac.len() <= f64::DIGITS as usize
    }
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
    fn plain_decimals_take_the_fast_path_only_when_already_canonical() {
        for (literal, fast) in [
            ("0.5", true),
            ("12.5", true),
            ("-0.0025", true),
            ("0.000000000000000000001", true),
            ("123456789012.345", true),
            ("1.50", false),
            ("1.0", false),
            ("-0.0", false),
            ("1234567890123.456", false),
            ("123456789.123456789", false),
            ("1e3", false),
            ("5", false),
            (&format!("0.{}1", "0".repeat(400)), false),
            (&format!("0.{}5", "0".repeat(320)), false),
        ] {
            assert_eq!(is_shortest_plain_decimal(literal), fast, "{literal}");
            // Whichever path it takes, the output is the shortest round-trip form.
            let via_double = {
                let mut out = String::new();
                write_float(&mut out, literal.parse().unwrap(), literal).unwrap();
                out
            };
            assert_eq!(canon(literal).unwrap(), via_double, "{literal}");
        }
    }

    #[test]
    fn integers_keep_every_digit() {
        let big = "123456789012345678901234567890123456789";
        assert_eq!(canon(big).unwrap(), big);
        assert_eq!(canon("-0").unwrap(), "0");
    }
}
