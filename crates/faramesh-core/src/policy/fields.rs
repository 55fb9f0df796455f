//! The `fields` condition: tests bound to one named field of the action, found by an explicit
//! path (`params.path`, `context.env`), so that a value elsewhere in the params (a decoy key,
//! a nested copy, a mention in free text) can never satisfy them.

use super::condition::{compile_regex, json_equal, numeric, numeric_bound, Comparison};
use crate::codes::Code;
use crate::diagnostic::{did_you_mean, Diagnostic, Item};
use crate::yaml::{Kind, Node};
use regex::Regex;
use serde_json::{Map, Value};

/// Every operator a `fields` entry may use.
pub const FIELD_OPERATORS: &[&str] = &[
    "equals",
    "in",
    "matches",
    "starts_with",
    "ends_with",
    "contains",
    "gt",
    "gte",
    "lt",
    "lte",
    "exists",
];

/// Where a field path starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldRoot {
    Params,
    Context,
}

/// An explicit path to one value: `params.query.kind`, `context.env`, `params.items.0`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldPath {
    /// The path as written, for messages.
    pub text: String,
    pub root: FieldRoot,
    /// Object keys, or list positions when the value reached is a list.
    pub segments: Vec<String>,
}

/// Why a `fields` key is not a usable path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldPathError {
    #[error(
        "`{path}` does not say where the field is: a path starts with `params.` or `context.`"
    )]
    NoRoot { path: String },
    #[error("`{path}` names no field: write the key after `{root}.`")]
    Bare { path: String, root: &'static str },
    #[error("`{path}` has an empty segment (two dots in a row, or a dot at the end)")]
    EmptySegment { path: String },
}

impl FieldPathError {
    /// A corrected path to suggest.
    pub fn hint(&self) -> String {
        match self {
            FieldPathError::NoRoot { path } => {
                let (first, rest) = path.split_once('.').unwrap_or((path.as_str(), ""));
                match did_you_mean(first, &["params", "context"]) {
                    Some(root) if !rest.is_empty() => format!("did you mean `{root}.{rest}`?"),
                    _ => format!(
                        "did you mean `params.{path}`? (use `context.{path}` for the action's context)"
                    ),
                }
            }
            FieldPathError::Bare { root, .. } => format!("for example `{root}.amount`"),
            FieldPathError::EmptySegment { path } => {
                let cleaned: Vec<&str> = path.split('.').filter(|s| !s.is_empty()).collect();
                format!("did you mean `{}`?", cleaned.join("."))
            }
        }
    }
}

impl FieldPath {
    pub fn parse(text: &str) -> Result<FieldPath, FieldPathError> {
        let (root, rest) = match text.split_once('.') {
            Some(("params", rest)) => (FieldRoot::Params, rest),
            Some(("context", rest)) => (FieldRoot::Context, rest),
            None if text == "params" || text == "context" => {
                return Err(FieldPathError::Bare {
                    path: text.to_owned(),
                    root: if text == "params" {
                        "params"
                    } else {
                        "context"
                    },
                })
            }
            _ => {
                return Err(FieldPathError::NoRoot {
                    path: text.to_owned(),
                })
            }
        };
        let segments: Vec<String> = rest.split('.').map(str::to_owned).collect();
        if segments.iter().any(String::is_empty) {
            return Err(FieldPathError::EmptySegment {
                path: text.to_owned(),
            });
        }
        Ok(FieldPath {
            text: text.to_owned(),
            root,
            segments,
        })
    }

    /// The value at this path; `None` when any step is missing. A null counts as missing.
    pub(crate) fn resolve<'a>(
        &self,
        params: &'a Map<String, Value>,
        context: &'a Map<String, Value>,
    ) -> Option<&'a Value> {
        let mut current: Option<&Value> = None;
        for segment in &self.segments {
            current = match current {
                None => match self.root {
                    FieldRoot::Params => params.get(segment),
                    FieldRoot::Context => context.get(segment),
                },
                Some(Value::Object(map)) => map.get(segment),
                Some(Value::Array(items)) => items.get(list_position(segment)?),
                Some(_) => None,
            };
            current?;
        }
        current.filter(|v| !v.is_null())
    }
}

/// A list position written the one canonical way (`0`, `12`; not `01` or `+1`).
fn list_position(segment: &str) -> Option<usize> {
    let canonical = segment == "0"
        || (!segment.starts_with('0') && segment.bytes().all(|b| b.is_ascii_digit()));
    canonical.then(|| segment.parse().ok()).flatten()
}

/// One operator of a `fields` entry.
#[derive(Debug, Clone)]
pub enum FieldTest {
    /// Equal in type and value; numbers compare by value (`1` equals `1.0`).
    Equals(Value),
    /// Equal to one of the values.
    In(Vec<Value>),
    /// The text matches the regular expression (searched, not anchored).
    Matches(Regex),
    StartsWith(String),
    EndsWith(String),
    Contains(String),
    /// A number (or a numeric string, as for `amount_*`) compared with the limit.
    Compare(Comparison, f64),
    /// Whether the field is present (and not null).
    Exists(bool),
}

impl FieldTest {
    fn holds(&self, found: Option<&Value>) -> bool {
        let Some(value) = found else {
            return matches!(self, FieldTest::Exists(false));
        };
        match (self, value) {
            (FieldTest::Exists(want), _) => *want,
            (FieldTest::Equals(expected), _) => json_equal(value, expected),
            (FieldTest::In(options), _) => options.iter().any(|o| json_equal(value, o)),
            (FieldTest::Matches(re), Value::String(s)) => re.is_match(s),
            (FieldTest::StartsWith(prefix), Value::String(s)) => s.starts_with(prefix.as_str()),
            (FieldTest::EndsWith(suffix), Value::String(s)) => s.ends_with(suffix.as_str()),
            (FieldTest::Contains(needle), Value::String(s)) => s.contains(needle.as_str()),
            (FieldTest::Compare(cmp, limit), _) => {
                numeric(value).is_some_and(|x| cmp.holds(x, *limit))
            }
            // A text operator on a number, list, mapping or boolean.
            _ => false,
        }
    }
}

/// One entry of `fields`: every test must hold for the value at the path.
#[derive(Debug, Clone)]
pub struct FieldCondition {
    pub path: FieldPath,
    pub tests: Vec<FieldTest>,
}

impl FieldCondition {
    pub(crate) fn holds(&self, params: &Map<String, Value>, context: &Map<String, Value>) -> bool {
        let found = self.path.resolve(params, context);
        self.tests.iter().all(|t| t.holds(found))
    }
}

/// Parses the value of `fields:`, reporting every problem into `diags`.
pub(crate) fn parse_fields(
    node: &Node,
    section: &str,
    item: Item,
    diags: &mut Vec<Diagnostic>,
) -> Option<Vec<FieldCondition>> {
    let mut err = |code: Code, at: &Node, msg: String, hint: String| {
        diags.push(
            Diagnostic::error(code, at.span, msg)
                .hint(hint)
                .in_item(Some(item)),
        );
    };
    let Some(entries) = node.as_map() else {
        err(
            Code::BadFields,
            node,
            format!(
                "`fields` in `{section}` must be a mapping from field paths to tests, found {}",
                node.describe()
            ),
            "write for example `fields: {params.amount: {lte: 1000}, context.env: {in: [staging, dev]}}`".to_owned(),
        );
        return None;
    };
    if entries.is_empty() {
        err(
            Code::EmptyFields,
            node,
            "`fields` is empty".to_owned(),
            "add a field path with its tests, e.g. `params.path: {starts_with: /repos/}`, or remove `fields`".to_owned(),
        );
        return None;
    }
    let mut ok = true;
    let mut out = Vec::with_capacity(entries.len());
    for (key, tests_node) in entries {
        let text = key.key_text().unwrap_or_default();
        let path = match FieldPath::parse(&text) {
            Ok(path) => Some(path),
            Err(e) => {
                let hint = e.hint();
                err(Code::BadFieldPath, key, format!("in `fields`: {e}"), hint);
                ok = false;
                None
            }
        };
        let tests = parse_tests(&text, tests_node, &mut err);
        match (path, tests) {
            (Some(path), Some(tests)) => out.push(FieldCondition { path, tests }),
            _ => ok = false,
        }
    }
    ok.then_some(out)
}

fn parse_tests(
    path: &str,
    node: &Node,
    err: &mut impl FnMut(Code, &Node, String, String),
) -> Option<Vec<FieldTest>> {
    let entries = mapping_of_tests(path, node, err)?;
    let mut ok = true;
    let mut tests = Vec::with_capacity(entries.len());
    let mut exists_false: Option<&Node> = None;
    for (key, val) in entries {
        let op = key.key_text().unwrap_or_default();
        let test = match op.as_str() {
            "equals" => value_operand(path, &op, val, err).map(FieldTest::Equals),
            "in" => in_test(path, val, err),
            "matches" | "starts_with" | "ends_with" | "contains" => text_test(path, &op, val, err),
            "gt" | "gte" | "lt" | "lte" => compare_test(path, &op, val, err),
            "exists" => {
                let test = exists_test(path, val, err);
                if matches!(test, Some(FieldTest::Exists(false))) {
                    exists_false = Some(key);
                }
                test
            }
            _ => {
                unknown_operator(path, &op, key, err);
                None
            }
        };
        match test {
            Some(test) => tests.push(test),
            None => ok = false,
        }
    }
    if let Some(key) = exists_false {
        if entries.len() > 1 {
            err(
                Code::ContradictoryTests,
                key,
                format!("`exists: false` of `{path}` is given with other tests, which an absent field never passes"),
                "keep `exists: false` alone, or move the other tests to another rule".to_owned(),
            );
            ok = false;
        }
    }
    ok.then_some(tests)
}

/// The operators given for one field, or why there are none to read.
fn mapping_of_tests<'a>(
    path: &str,
    node: &'a Node,
    err: &mut impl FnMut(Code, &Node, String, String),
) -> Option<&'a [(Node, Node)]> {
    let Some(entries) = node.as_map() else {
        let example = match node.as_str() {
            Some(s) => format!("`{path}: {{equals: {s:?}}}`"),
            None => format!("`{path}: {{equals: ...}}`"),
        };
        err(
            Code::BadFieldTests,
            node,
            format!(
                "the tests of `{path}` must be a mapping of operators, found {}",
                node.describe()
            ),
            format!(
                "write for example {example}; operators: {}",
                FIELD_OPERATORS.join(", ")
            ),
        );
        return None;
    };
    if entries.is_empty() {
        err(
            Code::EmptyFieldTests,
            node,
            format!("`{path}` has no tests"),
            format!(
                "add at least one of {}, e.g. `{path}: {{exists: true}}`",
                FIELD_OPERATORS.join(", ")
            ),
        );
        return None;
    }
    Some(entries)
}

/// `in: [...]`: the field equals one of the listed values.
fn in_test(
    path: &str,
    val: &Node,
    err: &mut impl FnMut(Code, &Node, String, String),
) -> Option<FieldTest> {
    match val.as_seq() {
        Some([]) => {
            err(
                Code::EmptyList,
                val,
                format!("`in` of `{path}` lists no values, so it could never hold"),
                "list the values the field may take, e.g. `in: [staging, dev]`".to_owned(),
            );
            None
        }
        Some(items) => {
            let values: Vec<Option<Value>> = items
                .iter()
                .map(|v| value_operand(path, "in", v, err))
                .collect();
            values
                .into_iter()
                .collect::<Option<Vec<_>>>()
                .map(FieldTest::In)
        }
        None => {
            err(
                Code::NotList,
                val,
                format!("`in` of `{path}` must be a list, found {}", val.describe()),
                "write the values as a list, e.g. `in: [staging, dev]`; for one value use `equals`"
                    .to_owned(),
            );
            None
        }
    }
}

/// `matches`, `starts_with`, `ends_with`, `contains`: tests of the field's text.
fn text_test(
    path: &str,
    op: &str,
    val: &Node,
    err: &mut impl FnMut(Code, &Node, String, String),
) -> Option<FieldTest> {
    let Some(text) = val.as_str() else {
        err(
            Code::NotText,
            val,
            format!("`{op}` of `{path}` must be text, found {}", val.describe()),
            format!("quote it: {op}: \"...\""),
        );
        return None;
    };
    match op {
        "matches" => match compile_regex(text) {
            Ok(re) => Some(FieldTest::Matches(re)),
            Err(why) => {
                err(
                    Code::BadRegex,
                    val,
                    format!("`matches` of `{path}` is not a usable regular expression: {why}"),
                    "the syntax is that of the Rust `regex` crate (no look-around or back-references); anchor with ^ and $ to test the whole text".to_owned(),
                );
                None
            }
        },
        "starts_with" => Some(FieldTest::StartsWith(text.to_owned())),
        "ends_with" => Some(FieldTest::EndsWith(text.to_owned())),
        _ => Some(FieldTest::Contains(text.to_owned())),
    }
}

/// `gt`, `gte`, `lt`, `lte`: a numeric bound.
fn compare_test(
    path: &str,
    op: &str,
    val: &Node,
    err: &mut impl FnMut(Code, &Node, String, String),
) -> Option<FieldTest> {
    match numeric_bound(op, val) {
        Ok((cmp, limit)) => Some(FieldTest::Compare(cmp, limit)),
        Err(hint) => {
            err(
                Code::NotNumber,
                val,
                format!(
                    "`{op}` of `{path}` must be a number, found {}",
                    val.describe()
                ),
                hint,
            );
            None
        }
    }
}

/// `exists: true` (present, not null) or `exists: false`.
fn exists_test(
    path: &str,
    val: &Node,
    err: &mut impl FnMut(Code, &Node, String, String),
) -> Option<FieldTest> {
    match val.kind {
        Kind::Bool(want) => Some(FieldTest::Exists(want)),
        _ => {
            err(
                Code::NotBoolean,
                val,
                format!("`exists` of `{path}` must be true or false, found {}", val.describe()),
                "write `exists: true` (the field must be present) or `exists: false` (it must be absent)".to_owned(),
            );
            None
        }
    }
}

fn unknown_operator(
    path: &str,
    op: &str,
    key: &Node,
    err: &mut impl FnMut(Code, &Node, String, String),
) {
    let hint = match did_you_mean(op, FIELD_OPERATORS) {
        Some(s) => format!("did you mean `{s}`?"),
        None => format!("known operators: {}", FIELD_OPERATORS.join(", ")),
    };
    err(
        Code::UnknownOperator,
        key,
        format!("unknown operator `{op}` for `{path}`"),
        hint,
    );
}

/// A value to compare with (`equals`, an item of `in`). Null is refused: a null field counts
/// as absent, so it could never be equal.
fn value_operand(
    path: &str,
    op: &str,
    node: &Node,
    err: &mut impl FnMut(Code, &Node, String, String),
) -> Option<Value> {
    match node.to_json() {
        Ok(Value::Null) => {
            err(
                Code::NullValue,
                node,
                format!("`{op}` of `{path}` compares with null, which never matches: a null field counts as absent"),
                format!("write `{path}: {{exists: false}}` to require that the field is absent or null"),
            );
            None
        }
        Ok(value) => Some(value),
        Err(e) => {
            err(
                Code::BadValue,
                node,
                e.message,
                "use a finite number, text, true/false, a list or a mapping".to_owned(),
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    fn path(text: &str) -> FieldPath {
        FieldPath::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn holds(test: FieldTest, found: Option<Value>) -> bool {
        test.holds(found.as_ref())
    }

    fn re(text: &str) -> Regex {
        compile_regex(text).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn paths_are_explicit() {
        assert_eq!(path("params.a.b").segments, vec!["a", "b"]);
        assert_eq!(path("context.env").root, FieldRoot::Context);
        assert!(matches!(
            FieldPath::parse("amount"),
            Err(FieldPathError::NoRoot { .. })
        ));
        assert!(matches!(
            FieldPath::parse("param.amount"),
            Err(FieldPathError::NoRoot { .. })
        ));
        assert!(matches!(
            FieldPath::parse("params"),
            Err(FieldPathError::Bare { .. })
        ));
        assert!(matches!(
            FieldPath::parse("params..a"),
            Err(FieldPathError::EmptySegment { .. })
        ));
        assert!(matches!(
            FieldPath::parse("params."),
            Err(FieldPathError::EmptySegment { .. })
        ));
        let Err(e) = FieldPath::parse("param.amount") else {
            panic!("refused");
        };
        assert_eq!(e.hint(), "did you mean `params.amount`?");
        let Err(e) = FieldPath::parse("amount") else {
            panic!("refused");
        };
        assert!(e.hint().contains("`params.amount`"), "{}", e.hint());
    }

    #[test]
    fn paths_resolve_only_where_they_point() {
        let params = map(json!({
            "url": "https://a.example/",
            "note": {"url": "https://b.example/"},
            "items": [{"k": 1}, {"k": 2}],
            "nothing": null,
        }));
        let context = map(json!({"env": "prod", "url": "https://c.example/"}));
        let get = |p: &str| path(p).resolve(&params, &context).cloned();
        assert_eq!(get("params.url"), Some(json!("https://a.example/")));
        assert_eq!(get("params.note.url"), Some(json!("https://b.example/")));
        assert_eq!(get("context.url"), Some(json!("https://c.example/")));
        assert_eq!(
            get("params.env"),
            None,
            "params do not fall back to context"
        );
        assert_eq!(get("context.note"), None);
        assert_eq!(get("params.items.1.k"), Some(json!(2)));
        assert_eq!(get("params.items.01.k"), None);
        assert_eq!(get("params.items.2"), None);
        assert_eq!(get("params.url.x"), None);
        assert_eq!(get("params.nothing"), None, "null counts as absent");
        assert_eq!(get("params.nothing.x"), None);
    }

    #[test]
    fn equals_and_in_compare_type_and_value() {
        assert!(holds(FieldTest::Equals(json!("prod")), Some(json!("prod"))));
        assert!(!holds(
            FieldTest::Equals(json!("prod")),
            Some(json!("Prod"))
        ));
        assert!(holds(FieldTest::Equals(json!(1)), Some(json!(1.0))));
        assert!(!holds(FieldTest::Equals(json!(1)), Some(json!("1"))));
        assert!(!holds(FieldTest::Equals(json!(true)), Some(json!("true"))));
        assert!(holds(
            FieldTest::Equals(json!({"a": [1]})),
            Some(json!({"a": [1.0]}))
        ));
        assert!(!holds(FieldTest::Equals(json!("prod")), None));
        let envs = FieldTest::In(vec![json!("staging"), json!("dev")]);
        assert!(envs.holds(Some(&json!("dev"))));
        assert!(!envs.holds(Some(&json!("prod"))));
        assert!(!envs.holds(Some(&json!(["dev"]))));
        assert!(!envs.holds(None));
    }

    #[test]
    fn text_operators_need_text() {
        let cases = [
            FieldTest::Matches(re("^[a-z ]+$")),
            FieldTest::StartsWith("/repos/".into()),
            FieldTest::EndsWith(".json".into()),
            FieldTest::Contains("x".into()),
        ];
        for test in &cases {
            assert!(!test.holds(None), "{test:?} on a missing field");
            assert!(!test.holds(Some(&json!(5))), "{test:?} on a number");
            assert!(
                !test.holds(Some(&json!(["/repos/x.json"]))),
                "{test:?} on a list"
            );
            assert!(
                !test.holds(Some(&json!({"a": "/repos/x"}))),
                "{test:?} on a mapping"
            );
            assert!(!test.holds(Some(&json!(true))), "{test:?} on a boolean");
        }
        assert!(holds(
            FieldTest::Matches(re("^[a-z ]+$")),
            Some(json!("rust lang"))
        ));
        assert!(!holds(
            FieldTest::Matches(re("^[a-z ]+$")),
            Some(json!("rust; drop"))
        ));
        assert!(
            holds(FieldTest::Matches(re("b")), Some(json!("abc"))),
            "searched, not anchored"
        );
        assert!(holds(
            FieldTest::StartsWith("/repos/".into()),
            Some(json!("/repos/a"))
        ));
        assert!(!holds(
            FieldTest::StartsWith("/repos/".into()),
            Some(json!("/x/repos/"))
        ));
        assert!(holds(
            FieldTest::EndsWith(".json".into()),
            Some(json!("a.json"))
        ));
        assert!(!holds(
            FieldTest::EndsWith(".json".into()),
            Some(json!("a.json.exe"))
        ));
        assert!(holds(FieldTest::Contains("x".into()), Some(json!("axb"))));
        assert!(!holds(FieldTest::Contains("x".into()), Some(json!("ab"))));
    }

    #[test]
    fn comparisons_take_numbers_and_numeric_strings() {
        let lte = || FieldTest::Compare(Comparison::Lte, 1000.0);
        assert!(holds(lte(), Some(json!(1000))));
        assert!(holds(lte(), Some(json!(999.5))));
        assert!(!holds(lte(), Some(json!(1000.01))));
        assert!(holds(lte(), Some(json!("500"))), "a numeric string counts");
        assert!(!holds(lte(), Some(json!("5e4"))));
        let big: Value = serde_json::from_str("1e5").unwrap_or(Value::Null);
        assert!(!holds(lte(), Some(big)));
        assert!(!holds(lte(), Some(json!("a lot"))));
        assert!(!holds(lte(), Some(json!("NaN"))));
        assert!(!holds(lte(), Some(json!("-inf"))));
        assert!(!holds(lte(), Some(json!(true))));
        assert!(!holds(lte(), Some(json!([5]))));
        assert!(!holds(lte(), None));
        assert!(holds(
            FieldTest::Compare(Comparison::Gt, 0.0),
            Some(json!(0.5))
        ));
        assert!(!holds(
            FieldTest::Compare(Comparison::Gt, 0.0),
            Some(json!(0))
        ));
        assert!(holds(
            FieldTest::Compare(Comparison::Gte, 0.0),
            Some(json!(0))
        ));
        assert!(holds(
            FieldTest::Compare(Comparison::Lt, 0.0),
            Some(json!(-1))
        ));
        assert!(!holds(
            FieldTest::Compare(Comparison::Lt, 0.0),
            Some(json!(0))
        ));
    }

    #[test]
    fn exists_is_the_only_test_a_missing_field_passes() {
        assert!(holds(FieldTest::Exists(true), Some(json!(0))));
        assert!(holds(FieldTest::Exists(true), Some(json!(false))));
        assert!(!holds(FieldTest::Exists(true), None));
        assert!(holds(FieldTest::Exists(false), None));
        assert!(!holds(FieldTest::Exists(false), Some(json!(""))));
    }

    #[test]
    fn every_test_of_an_entry_must_hold() {
        let condition = FieldCondition {
            path: path("params.amount"),
            tests: vec![
                FieldTest::Compare(Comparison::Gte, 0.0),
                FieldTest::Compare(Comparison::Lte, 1000.0),
            ],
        };
        let with = |v: Value| condition.holds(&map(json!({ "amount": v })), &Map::new());
        assert!(with(json!(0)));
        assert!(with(json!(1000)));
        assert!(!with(json!(-1)));
        assert!(!with(json!(1001)));
        assert!(!condition.holds(&Map::new(), &map(json!({"amount": 5}))));
    }
}
