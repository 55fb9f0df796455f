//! The probe text that `contains` and `pattern` conditions search (docs/policies.md): the params
//! object as JSON with keys in the order received, `", "` between items, `": "` after keys,
//! non-ASCII kept as is, numbers as written.

use serde_json::{Map, Value};

/// The probe text of a params object.
pub fn probe_text(params: &Map<String, Value>) -> String {
    let mut out = String::with_capacity(128);
    write_object(&mut out, params);
    out
}

fn write_probe(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(n) => out.push_str(n.as_str()),
        Value::String(s) => super::write_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_probe(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => write_object(out, map),
    }
}

fn write_object(out: &mut String, map: &Map<String, Value>) {
    out.push('{');
    for (i, (key, item)) in map.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        super::write_string(out, key);
        out.push_str(": ");
        write_probe(out, item);
    }
    out.push('}');
}

#[cfg(test)]
mod tests {
    use super::probe_text;

    #[test]
    fn keeps_received_key_order_and_python_separators() {
        let value: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(r#"{"z":1,"a":[true,null,"café"],"m":{}}"#).unwrap();
        assert_eq!(
            probe_text(&value),
            r#"{"z": 1, "a": [true, null, "café"], "m": {}}"#
        );
    }
}
