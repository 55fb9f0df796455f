//! A JSON object kept as the client wrote it.
//!
//! A parsed [`Value`] cannot hold every number text: `1E2` comes back as `1e+2`. Action params
//! and context are stored and shown exactly as received (docs/api.md), so they travel as their
//! text beside the parsed map that decisions and hashes use.

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use std::collections::HashSet;
use std::fmt;

/// A JSON object as received: its text with the whitespace between tokens removed (number text,
/// key order and string escapes as sent), and the same text parsed. It serializes as the text.
///
/// No key appears twice in one of its objects: with a duplicate, the map would keep one value
/// while the text shows both, and what was decided would not be what is shown.
#[derive(Debug, Clone)]
pub struct ReceivedObject {
    text: Box<RawValue>,
    map: Map<String, Value>,
}

/// Why a text is not a [`ReceivedObject`].
#[derive(Debug, thiserror::Error)]
pub enum ReceivedError {
    #[error("not valid JSON: {0}")]
    NotJson(#[from] serde_json::Error),
    #[error("not a JSON object")]
    NotObject,
    #[error("{0}")]
    DuplicateKey(DuplicateKey),
}

/// A key that appears more than once in one object.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("key `{key}` appears more than once in the same object (at `{path}`)")]
pub struct DuplicateKey {
    pub key: String,
    /// Where the key is, written as the API writes paths: `x`, `a.x`, `a[2].x`.
    pub path: String,
}

impl ReceivedObject {
    /// Reads `text`, which must be one JSON object with no key twice in any of its objects.
    pub fn parse(text: &str) -> Result<ReceivedObject, ReceivedError> {
        // Parsed as given, before compacting: compacting an invalid text could make it valid
        // (`[1 2]` would become `[12]`).
        let Value::Object(map) = serde_json::from_str(text)? else {
            return Err(ReceivedError::NotObject);
        };
        let (compacted, keys) = compact(text);
        if keys != entries_in_object(&map) {
            if let Some(duplicate) = first_duplicate_key(text)? {
                return Err(ReceivedError::DuplicateKey(duplicate));
            }
        }
        let text = RawValue::from_string(compacted)?;
        Ok(ReceivedObject { text, map })
    }

    /// An object read back from storage, which holds only texts that [`ReceivedObject::parse`]
    /// accepted (compact, no key twice): those checks are not repeated on every read.
    pub fn stored(text: String) -> Result<ReceivedObject, ReceivedError> {
        let text = RawValue::from_string(text)?;
        match serde_json::from_str(text.get())? {
            Value::Object(map) => Ok(ReceivedObject { text, map }),
            _ => Err(ReceivedError::NotObject),
        }
    }

    /// An object composed by the program rather than received: its text is serde_json's.
    pub fn from_map(map: Map<String, Value>) -> Result<ReceivedObject, ReceivedError> {
        let text = serde_json::value::to_raw_value(&map)?;
        Ok(ReceivedObject { text, map })
    }

    /// The parsed object: what decisions, executors and hashes read.
    pub fn map(&self) -> &Map<String, Value> {
        &self.map
    }

    pub fn into_map(self) -> Map<String, Value> {
        self.map
    }

    /// The compact text as received.
    pub fn text(&self) -> &str {
        self.text.get()
    }

    /// Takes the object apart, so its map can be lent by value (to the decision engine)
    /// without a copy; [`ReceivedText::rejoin`] puts it back together.
    pub fn into_parts(self) -> (ReceivedText, Map<String, Value>) {
        (ReceivedText(self.text), self.map)
    }
}

/// The text of a [`ReceivedObject`] whose map was taken out with
/// [`ReceivedObject::into_parts`].
#[derive(Debug)]
pub struct ReceivedText(Box<RawValue>);

impl ReceivedText {
    /// The object again, with the map that was taken out of it.
    pub fn rejoin(self, map: Map<String, Value>) -> ReceivedObject {
        ReceivedObject { text: self.0, map }
    }
}

/// `{}`.
impl Default for ReceivedObject {
    #[allow(
        clippy::expect_used,
        reason = "`{}` is a constant that is JSON, not input: this cannot fail"
    )]
    fn default() -> ReceivedObject {
        ReceivedObject {
            text: RawValue::from_string("{}".to_owned()).expect("`{}` is JSON"),
            map: Map::new(),
        }
    }
}

/// Two objects are equal when their texts are: `1E2` and `100` are different things received.
impl PartialEq for ReceivedObject {
    fn eq(&self, other: &ReceivedObject) -> bool {
        self.text() == other.text()
    }
}

impl Serialize for ReceivedObject {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.text.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for ReceivedObject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = Box::<RawValue>::deserialize(deserializer)?;
        ReceivedObject::parse(text.get()).map_err(de::Error::custom)
    }
}

/// `text` without the whitespace between tokens, and how many keys it has (in all its
/// objects). `text` must be valid JSON, so outside strings every space, tab and line break is
/// insignificant, and a string followed by `:` is a key.
fn compact(text: &str) -> (String, usize) {
    let mut out = String::with_capacity(text.len());
    let (mut in_string, mut escaped, mut after_string) = (false, false, false);
    let mut keys = 0;
    for c in text.chars() {
        if in_string {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
                after_string = true;
            }
        } else if matches!(c, ' ' | '\t' | '\n' | '\r') {
            continue;
        } else {
            if after_string && c == ':' {
                keys += 1;
            }
            after_string = false;
            if c == '"' {
                in_string = true;
            }
        }
        out.push(c);
    }
    (out, keys)
}

/// How many entries the objects in `value` have, nested ones included.
fn entries(value: &Value) -> usize {
    match value {
        Value::Object(map) => entries_in_object(map),
        Value::Array(items) => items.iter().map(entries).sum(),
        _ => 0,
    }
}

fn entries_in_object(map: &Map<String, Value>) -> usize {
    map.len() + map.values().map(entries).sum::<usize>()
}

/// The first key that appears twice in one object of the JSON `text`, in reading order. Keys
/// are compared after unescaping: `"a"` and `"\u0061"` are the same key.
pub fn first_duplicate_key(text: &str) -> Result<Option<DuplicateKey>, serde_json::Error> {
    let mut found = None;
    let mut path = String::new();
    let mut deserializer = serde_json::Deserializer::from_str(text);
    // serde_json's recursion limit (128 levels) bounds the walk's depth as it bounds parsing.
    let walked = Walk {
        path: &mut path,
        found: &mut found,
    }
    .deserialize(&mut deserializer);
    match (walked, found) {
        (_, Some(duplicate)) => Ok(Some(duplicate)),
        (Err(e), None) => Err(e),
        (Ok(()), None) => deserializer.end().map(|()| None),
    }
}

/// Visits every value, stopping at the first duplicate key (recorded in `found`). `path` is the
/// place of the value being visited.
struct Walk<'s> {
    path: &'s mut String,
    found: &'s mut Option<DuplicateKey>,
}

impl Walk<'_> {
    fn child(&mut self) -> Walk<'_> {
        Walk {
            path: self.path,
            found: self.found,
        }
    }
}

impl<'de> DeserializeSeed<'de> for Walk<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walk<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        let len = self.path.len();
        let mut i = 0usize;
        loop {
            self.path.truncate(len);
            self.path.push_str(&format!("[{i}]"));
            if seq.next_element_seed(self.child())?.is_none() {
                break;
            }
            i += 1;
        }
        self.path.truncate(len);
        Ok(())
    }

    // Numbers arrive here too (serde_json's arbitrary precision hands them over as a map of one
    // private key), which is harmless: one key is never a duplicate.
    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        let len = self.path.len();
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            self.path.truncate(len);
            if len > 0 {
                self.path.push('.');
            }
            self.path.push_str(&key);
            if !seen.insert(key.clone()) {
                *self.found = Some(DuplicateKey {
                    key,
                    path: self.path.clone(),
                });
                return Err(de::Error::custom("duplicate key"));
            }
            map.next_value_seed(self.child())?;
        }
        self.path.truncate(len);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::{compact, first_duplicate_key, ReceivedError, ReceivedObject};

    #[test]
    fn number_text_key_order_and_escapes_survive() {
        let sent = "{ \"z\" : 1E2 ,\n \"a\": [ -0, 1.50, 2E-3, 123456789012345678901234567890 ],\t\"s\": \"\\u0041 b\\/\" }";
        let received = ReceivedObject::parse(sent).unwrap();
        assert_eq!(
            received.text(),
            r#"{"z":1E2,"a":[-0,1.50,2E-3,123456789012345678901234567890],"s":"\u0041 b\/"}"#
        );
        assert_eq!(serde_json::to_string(&received).unwrap(), received.text());
        assert_eq!(received.map()["s"], "A b/");
        let back: ReceivedObject = serde_json::from_str(received.text()).unwrap();
        assert_eq!(back, received);
    }

    #[test]
    fn duplicates_are_found_with_their_path() {
        let path = |text: &str| first_duplicate_key(text).unwrap().map(|d| d.path);
        assert_eq!(path(r#"{"a": 1, "b": {"a": 2}}"#), None);
        assert_eq!(path(r#"{"a": 1, "a": 2}"#), Some("a".to_owned()));
        assert_eq!(
            path(r#"{"a": [{}, {"k": 1, "\u006b": 2}]}"#),
            Some("a[1].k".to_owned())
        );
        assert!(matches!(
            ReceivedObject::parse(r#"{"x": {"y": 1, "y": 1}}"#),
            Err(ReceivedError::DuplicateKey(d)) if d.key == "y" && d.path == "x.y"
        ));
    }

    #[test]
    fn the_quick_duplicate_check_counts_only_keys() {
        let check = |text: &str| match ReceivedObject::parse(text) {
            Ok(_) => None,
            Err(ReceivedError::DuplicateKey(d)) => Some(d.path),
            Err(other) => panic!("{other}"),
        };
        // Colons, quotes and braces inside strings are not keys.
        assert_eq!(
            check(r#"{"a" : "x:y", "b\":c" :{"k":[{"z":1},"{\"q\":2}"]}, "n": 1E2}"#),
            None
        );
        assert_eq!(check(r#"{"l":[{"a":1},{"a":2}]}"#), None);
        assert_eq!(
            check(r#"{"a":[{"k":"v","k" : "w"}]}"#),
            Some("a[0].k".to_owned())
        );
        let (text, keys) = compact("{ \"a\" :\n [1, {\"b\": \"c : d\"}] }");
        assert_eq!((text.as_str(), keys), (r#"{"a":[1,{"b":"c : d"}]}"#, 2));
    }

    #[test]
    fn only_valid_objects_are_received() {
        assert!(matches!(
            ReceivedObject::parse("[1 2]"),
            Err(ReceivedError::NotJson(_))
        ));
        assert!(matches!(
            ReceivedObject::parse("[1]"),
            Err(ReceivedError::NotObject)
        ));
        assert!(ReceivedObject::parse("{} {}").is_err());
    }
}
