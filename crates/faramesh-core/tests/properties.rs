//! Property tests: canonical JSON (key-order invariance, idempotence, meaning preserved) and
//! the engine's determinism and deny-by-default.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test stops at the first setup step or expectation that fails"
)]

use faramesh_core::json::{canonical_string, CanonicalError};
use faramesh_core::{ActionRequest, DecidedBy, Engine, Outcome, Policy};
use proptest::prelude::*;
use serde_json::{Map, Number, Value};

// ---------------------------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------------------------

/// Characters that stress the string escaper: controls, quotes, backslash, DEL, the JSON/JS
/// line separators, non-BMP characters, plus anything at all.
fn tricky_char() -> impl Strategy<Value = char> {
    prop_oneof![
        3 => any::<char>(),
        2 => prop::char::range('\u{0}', '\u{1f}'),
        2 => prop::sample::select(vec!['"', '\\', '/', '\u{7f}', '\u{2028}', '\u{2029}', '\u{fffd}', '\u{ffff}', '\u{1f680}', 'é', 'a', 'Z', '0', ' ']),
    ]
}

fn json_string() -> impl Strategy<Value = String> {
    prop::collection::vec(tricky_char(), 0..12).prop_map(|chars| chars.into_iter().collect())
}

/// A number literal as it could arrive on the wire, parsed with `serde_json` so the
/// `arbitrary_precision` text is exactly the literal. Exponents stay small enough that the
/// value is finite.
fn number_from_text(text: &str) -> Value {
    let value: Value = serde_json::from_str(text).expect("generated number literal is JSON");
    assert!(value.is_number(), "{text} parsed to {value:?}");
    value
}

fn json_number() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        // Integers beyond i64/u64, digit for digit.
        "-?[1-9][0-9]{19,45}".prop_map(|t| number_from_text(&t)),
        "-?0".prop_map(|t| number_from_text(&t)),
        // Finite doubles, through `Number::from_f64`.
        any::<f64>()
            .prop_filter("finite", |x| x.is_finite())
            .prop_map(|x| Value::Number(Number::from_f64(x).expect("finite"))),
        // Decimal literals with fractions and exponents (`1.50`, `2.5e-3`, `1E3`, `1e-7`).
        "-?(0|[1-9][0-9]{0,8})(\\.[0-9]{1,9})?([eE][+-]?[0-9]{1,2})?"
            .prop_map(|t| number_from_text(&t)),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        json_number(),
        json_string().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((json_string(), inner), 0..6)
                .prop_map(|entries| Value::Object(entries.into_iter().collect())),
        ]
    })
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// A small deterministic generator (xorshift64*) so a shuffle is reproducible from one seed.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n as u64) as usize
    }
}

/// The same value with every object's keys inserted in a shuffled order.
fn shuffle_keys(value: &Value, rng: &mut Rng) -> Value {
    match value {
        Value::Array(items) => Value::Array(items.iter().map(|v| shuffle_keys(v, rng)).collect()),
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            for i in (1..entries.len()).rev() {
                entries.swap(i, rng.below(i + 1));
            }
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k.clone(), shuffle_keys(v, rng)))
                    .collect(),
            )
        }
        other => other.clone(),
    }
}

/// The same value with every object's keys inserted in reverse order.
fn reverse_keys(value: &Value) -> Value {
    match value {
        Value::Array(items) => Value::Array(items.iter().map(reverse_keys).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .rev()
                .map(|(k, v)| (k.clone(), reverse_keys(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn is_integer_literal(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// Equality in meaning: integers digit for digit (`-0` is `0`), other numbers by double value,
/// objects regardless of key order.
fn same_meaning(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_str(), y.as_str());
            if is_integer_literal(x) && is_integer_literal(y) {
                let norm = |t: &str| {
                    if t == "-0" {
                        "0".to_owned()
                    } else {
                        t.to_owned()
                    }
                };
                norm(x) == norm(y)
            } else {
                matches!((x.parse::<f64>(), y.parse::<f64>()), (Ok(p), Ok(q)) if p == q)
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same_meaning(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| same_meaning(v, w)))
        }
        _ => a == b,
    }
}

fn canonical(value: &Value) -> Result<String, CanonicalError> {
    canonical_string(value)
}

// ---------------------------------------------------------------------------------------------
// Canonical JSON
// ---------------------------------------------------------------------------------------------

proptest! {
    /// (1) Insertion order of keys never shows in the canonical text.
    #[test]
    fn canonical_is_invariant_under_key_order(value in json_value(), seed in any::<u64>()) {
        let original = canonical(&value);
        prop_assert!(original.is_ok(), "generated values are finite: {original:?}");
        let shuffled = shuffle_keys(&value, &mut Rng::new(seed));
        prop_assert_eq!(&canonical(&shuffled), &original);
        prop_assert_eq!(&canonical(&reverse_keys(&value)), &original);
    }

    /// (2) Canonicalizing the canonical text again changes nothing.
    #[test]
    fn canonical_is_idempotent(value in json_value()) {
        let first = canonical(&value).expect("generated values are finite");
        let reparsed: Value = serde_json::from_str(&first)
            .map_err(|e| TestCaseError::fail(format!("canonical text is not JSON ({e}): {first:?}")))?;
        prop_assert_eq!(canonical(&reparsed).expect("canonical text canonicalizes"), first);
    }

    /// (3) The canonical text is JSON that means the same as the original value.
    #[test]
    fn canonical_text_keeps_the_meaning(value in json_value()) {
        let text = canonical(&value).expect("generated values are finite");
        let back: Value = serde_json::from_str(&text)
            .map_err(|e| TestCaseError::fail(format!("canonical text is not JSON ({e}): {text:?}")))?;
        prop_assert!(same_meaning(&value, &back), "{value:?} became {text}");
        // No whitespace outside strings, and no exponent in any number.
        let outside_strings = {
            let mut out = String::new();
            let (mut in_string, mut escaped) = (false, false);
            for c in text.chars() {
                if in_string {
                    match (escaped, c) {
                        (true, _) => escaped = false,
                        (false, '\\') => escaped = true,
                        (false, '"') => in_string = false,
                        _ => {}
                    }
                } else if c == '"' {
                    in_string = true;
                } else {
                    out.push(c);
                }
            }
            out
        };
        prop_assert!(
            !outside_strings.contains(['E', ' ', '\n', '\t', '\r']),
            "whitespace or exponent in {text}"
        );
        prop_assert!(
            !outside_strings.replace("true", "").replace("false", "").contains('e'),
            "exponent in {text}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Decisions
// ---------------------------------------------------------------------------------------------

const SMALL_POLICY: &str = r#"
rules:
  - match: {tool: shell, op: run, pattern: "rm -rf|mkfs"}
    deny: true
  - match: {tool: http, op: get, amount_gt: 100}
    require_approval: true
  - match: {tool: http, op: "*"}
    allow: true
risk:
  rules:
    - name: big
      when: {amount_gte: 1000}
      risk_level: high
"#;

const NEVER_POLICY: &str = r#"
rules:
  - match: {tool: never, op: "*"}
    allow: true
  - match: {tool: never, op: run, contains: "x"}
    require_approval: true
"#;

fn engine(text: &str) -> Engine {
    let policy = Policy::parse("properties.yaml", text).expect("fixed policy parses");
    Engine::new(Some(policy), "properties-test")
}

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec!["shell", "http", "run", "get", "never", "", "*"])
            .prop_map(str::to_owned),
        json_string(),
    ]
}

fn params() -> impl Strategy<Value = Map<String, Value>> {
    let value = prop_oneof![
        json_string().prop_map(Value::String),
        json_number(),
        json_value(),
    ];
    let key = prop_oneof![
        prop::sample::select(vec!["cmd", "amount", "path", "method"]).prop_map(str::to_owned),
        json_string(),
    ];
    prop::collection::vec((key, value), 0..5).prop_map(|entries| entries.into_iter().collect())
}

fn action() -> impl Strategy<Value = ActionRequest> {
    (name(), name(), name(), params()).prop_map(|(agent_id, tool, operation, params)| {
        ActionRequest {
            agent_id,
            tool,
            operation,
            params,
            context: Map::new(),
        }
    })
}

proptest! {
    /// (4a) The same action against the same policy gets the same decision, every time and
    /// from every engine built from the same text.
    #[test]
    fn decide_is_deterministic(action in action()) {
        let engine = engine(SMALL_POLICY);
        let first = engine.decide(&action);
        prop_assert_eq!(&engine.decide(&action), &first);
        prop_assert_eq!(&self::engine(SMALL_POLICY).decide(&action), &first);
        if action.tool != "shell" && action.tool != "http" {
            prop_assert_eq!(first.outcome, Outcome::Halt);
            prop_assert_eq!(&first.decided_by, &DecidedBy::Default);
        }
    }

    /// (4b) When no rule can match, the action is halted by the default deny.
    #[test]
    fn no_matching_rule_means_halt(action in action()) {
        prop_assume!(action.tool != "never");
        let engine = engine(NEVER_POLICY);
        let decision = engine.decide(&action);
        prop_assert_eq!(decision.outcome, Outcome::Halt);
        prop_assert_eq!(&decision.decided_by, &DecidedBy::Default);
        prop_assert_eq!(&*decision.reason_code, "DEFAULT_DENY_NO_MATCH");
        prop_assert_eq!(&engine.decide(&action), &decision);
    }
}
