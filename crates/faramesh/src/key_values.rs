//! `key=value` arguments into JSON objects.

use anyhow::{bail, Context};
use serde_json::{Map, Value};

/// Builds an object from `key=value` entries; a value that parses as JSON is taken as JSON
/// (`5000`, `true`, `{"a":1}`), anything else as text.
pub fn object(
    base: Option<&str>,
    entries: &[String],
    flag: &str,
) -> anyhow::Result<Map<String, Value>> {
    let mut map = match base {
        None => Map::new(),
        Some(text) => {
            match serde_json::from_str(text).context("--params-json is not valid JSON")? {
                Value::Object(map) => map,
                other => bail!("--params-json must be a JSON object, not {other}"),
            }
        }
    };
    for entry in entries {
        let Some((key, raw)) = entry.split_once('=') else {
            bail!("{flag} {entry:?} has no '='; write it as {flag} key=value");
        };
        if key.is_empty() {
            bail!("{flag} {entry:?} has an empty key; write it as {flag} key=value");
        }
        let value = serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_owned()));
        map.insert(key.to_owned(), value);
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::object;

    #[test]
    fn values_are_json_when_they_parse() {
        let map = object(
            None,
            &[
                "amount=5000".into(),
                "cmd=rm -rf /".into(),
                "ok=true".into(),
                "q={\"k\":1}".into(),
            ],
            "--param",
        )
        .unwrap();
        assert_eq!(
            serde_json::Value::Object(map),
            serde_json::json!({"amount": 5000, "cmd": "rm -rf /", "ok": true, "q": {"k": 1}})
        );
    }

    #[test]
    fn entries_without_equals_are_refused() {
        let err = object(None, &["amount".into()], "--param").unwrap_err();
        assert!(err.to_string().contains("key=value"));
    }
}
