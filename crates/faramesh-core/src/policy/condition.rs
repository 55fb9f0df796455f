//! Match conditions (`match:` of a rule, `when:` of a risk rule), parsed once and evaluated
//! per action.

use super::expression::Evaluation;
use super::fields::{parse_fields, FieldCondition};
use super::urls::{parse_scheme, HostPattern};
use crate::action::Subject;
use crate::codes::Code;
use crate::diagnostic::{did_you_mean, Diagnostic, Item};
use crate::yaml::{Kind, Node};
use regex::{Regex, RegexBuilder};
use serde_json::Value;

/// Every key a `match`/`when` mapping may hold.
pub const MATCH_KEYS: &[&str] = &[
    "tool",
    "op",
    "operation",
    "agent_id",
    "contains",
    "pattern",
    "amount_gt",
    "amount_gte",
    "amount_lt",
    "amount_lte",
    "path_contains",
    "path_starts_with",
    "path_ends_with",
    "method",
    "branch",
    "field",
    "value",
    "url_host",
    "url_scheme",
    "url_port",
    "fields",
    "when",
];

/// Compiled size limit of one regular expression. Matching is linear in the input with the
/// `regex` crate; this bounds the per-pattern memory and compile time as well.
pub const REGEX_SIZE_LIMIT: usize = 1 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    Gt,
    Gte,
    Lt,
    Lte,
}

impl Comparison {
    /// The comparison an operator name ends in: `gt`, `gte`, `lt`, `lte` (also as the end of
    /// `amount_gt`, ...).
    fn from_suffix(name: &str) -> Comparison {
        if name.ends_with("gte") {
            Comparison::Gte
        } else if name.ends_with("gt") {
            Comparison::Gt
        } else if name.ends_with("lte") {
            Comparison::Lte
        } else {
            Comparison::Lt
        }
    }

    /// Whether `value` compares this way with `limit`.
    pub fn holds(self, value: f64, limit: f64) -> bool {
        match self {
            Comparison::Gt => value > limit,
            Comparison::Gte => value >= limit,
            Comparison::Lt => value < limit,
            Comparison::Lte => value <= limit,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathTest {
    Contains,
    StartsWith,
    EndsWith,
}

/// All conditions of one `match`/`when`; every listed one must hold.
#[derive(Debug, Clone, Default)]
pub struct Conditions {
    /// `None` for `"*"` or absent.
    pub tool: Option<String>,
    /// `None` for `"*"` or absent.
    pub op: Option<String>,
    pub agent_id: Option<String>,
    pub contains: Option<String>,
    pub pattern: Option<Regex>,
    pub amounts: Vec<(Comparison, f64)>,
    pub paths: Vec<(PathTest, String)>,
    pub method: Option<String>,
    pub branch: Option<String>,
    pub field: Option<(String, Value)>,
    /// `url_host`: the host of `params.url` is one of these (empty: no condition).
    pub url_hosts: Vec<HostPattern>,
    /// `url_scheme`: the scheme of `params.url` is one of these, lower case.
    pub url_schemes: Vec<String>,
    /// `url_port`: the effective port of `params.url` is one of these.
    pub url_ports: Vec<u16>,
    /// `fields`: tests on values found by explicit paths.
    pub fields: Vec<FieldCondition>,
    /// `when`: a CEL expression over the action.
    pub expression: Option<super::expression::Expression>,
}

impl Conditions {
    /// True when only tool and operation are constrained, so the rule matches every action
    /// that reaches it through the index.
    pub fn is_unconditional(&self) -> bool {
        self.agent_id.is_none() && self.ignores_arguments()
    }

    /// True when no condition looks at the params or context.
    fn ignores_arguments(&self) -> bool {
        self.contains.is_none()
            && self.pattern.is_none()
            && self.amounts.is_empty()
            && self.paths.is_empty()
            && self.method.is_none()
            && self.branch.is_none()
            && self.field.is_none()
            && !self.has_url_conditions()
            && self.fields.is_empty()
            && self.expression.is_none()
    }

    /// Whether the rule can decide a call of `tool`/`operation` by `agent_id` without looking
    /// at its arguments: `Some(true)` when it matches every such call, `Some(false)` when it
    /// matches none, `None` when that depends on the params or context.
    pub(crate) fn matches_regardless_of_arguments(
        &self,
        agent_id: &str,
        tool: &str,
        operation: &str,
    ) -> Option<bool> {
        if self.tool.as_deref().is_some_and(|t| t != tool)
            || self.op.as_deref().is_some_and(|o| o != operation)
            || self.agent_id.as_deref().is_some_and(|a| a != agent_id)
        {
            return Some(false);
        }
        self.ignores_arguments().then_some(true)
    }

    fn has_url_conditions(&self) -> bool {
        !(self.url_hosts.is_empty() && self.url_schemes.is_empty() && self.url_ports.is_empty())
    }

    /// Whether every condition holds, an expression that fails counting as holding (fail
    /// closed for the conditions of deny rules, risk rules and routes; the policy's own rules
    /// decide per effect with [`Conditions::evaluate`]).
    pub(crate) fn matches(&self, s: &Subject<'_>) -> bool {
        self.evaluate(s) != Evaluation::False
    }

    /// Whether every condition holds: the other conditions first, then the expression, which
    /// may fail.
    pub(crate) fn evaluate(&self, s: &Subject<'_>) -> Evaluation {
        if !self.plain_conditions_hold(s) {
            return Evaluation::False;
        }
        match &self.expression {
            None => Evaluation::True,
            Some(expression) => expression.evaluate(s),
        }
    }

    /// Whether every condition but the expression holds. Cheap checks run first; the probe
    /// text is built only when a `contains`/`pattern` condition is reached.
    fn plain_conditions_hold(&self, s: &Subject<'_>) -> bool {
        if self.tool.as_deref().is_some_and(|t| t != s.tool)
            || self.op.as_deref().is_some_and(|o| o != s.operation)
            || self.agent_id.as_deref().is_some_and(|a| a != s.agent_id)
        {
            return false;
        }
        if let Some(method) = &self.method {
            match s.lookup("method") {
                Some(Value::String(m))
                    if m.chars().flat_map(char::to_lowercase).eq(method.chars()) => {}
                _ => return false,
            }
        }
        if let Some(branch) = &self.branch {
            match s.lookup("branch") {
                Some(Value::String(b)) if b == branch => {}
                _ => return false,
            }
        }
        if !self.paths.is_empty() {
            let Some(Value::String(path)) = s.lookup("path") else {
                return false;
            };
            let holds = |(test, needle): &(PathTest, String)| match test {
                PathTest::Contains => path.contains(needle.as_str()),
                PathTest::StartsWith => path.starts_with(needle.as_str()),
                PathTest::EndsWith => path.ends_with(needle.as_str()),
            };
            if !self.paths.iter().all(holds) {
                return false;
            }
        }
        if !self.amounts.is_empty() {
            // Missing or non-numeric amount: every amount condition is false (fail closed).
            let Some(amount) = s.lookup("amount").and_then(numeric) else {
                return false;
            };
            if !self
                .amounts
                .iter()
                .all(|(cmp, limit)| cmp.holds(amount, *limit))
            {
                return false;
            }
        }
        if let Some((field, expected)) = &self.field {
            match s.field(field) {
                Some(found) if json_equal(found, expected) => {}
                _ => return false,
            }
        }
        if !self.fields.iter().all(|f| f.holds(s.params, s.context)) {
            return false;
        }
        if self.has_url_conditions() {
            // A missing, non-text or unparsable URL fails every url condition (fail closed).
            let Some(url) = s.url() else {
                return false;
            };
            if !self.url_schemes.is_empty() && !self.url_schemes.contains(&url.scheme) {
                return false;
            }
            if !self.url_hosts.is_empty() {
                let Some(host) = url.host.as_deref() else {
                    return false;
                };
                if !self.url_hosts.iter().any(|p| p.matches(host)) {
                    return false;
                }
            }
            if !self.url_ports.is_empty() && !url.port.is_some_and(|p| self.url_ports.contains(&p))
            {
                return false;
            }
        }
        if let Some(needle) = &self.contains {
            if !s.probe().contains(needle.as_str()) {
                return false;
            }
        }
        if let Some(re) = &self.pattern {
            if !re.is_match(s.probe()) {
                return false;
            }
        }
        true
    }
}

/// `when`: a CEL expression, checked now. Not in execution profiles, whose rules stay plain.
fn expression(
    c: &mut Conditions,
    val: &Node,
    item: Item,
    err: &mut impl FnMut(Code, &Node, String, Option<String>),
) {
    if matches!(item, Item::ProfileRule(_)) {
        err(
            Code::BadExpression,
            val,
            "`when` expressions are for policy rules, not execution profiles".to_owned(),
            Some("move the condition into a policy rule".to_owned()),
        );
        return;
    }
    let Some(text) = val.as_str() else {
        err(
            Code::BadExpression,
            val,
            format!(
                "`when` must be a CEL expression in quotes, found {}",
                val.describe()
            ),
            Some("e.g. `when: \"params.amount > 100 && context.env == 'prod'\"`".to_owned()),
        );
        return;
    };
    match super::expression::Expression::compile(text) {
        Ok(e) => c.expression = Some(e),
        Err(why) => err(
            Code::BadExpression,
            val,
            format!("the `when` expression {why}"),
            Some(format!(
                "an expression reads {} and gives true or false",
                super::expression::VARIABLES.join(", ")
            )),
        ),
    }
}

/// A JSON number, or a string holding a finite decimal number.
pub(crate) fn numeric(value: &Value) -> Option<f64> {
    let x: f64 = match value {
        Value::Number(n) => n.as_str().parse().ok()?,
        Value::String(s) => s.trim().parse().ok()?,
        _ => return None,
    };
    x.is_finite().then_some(x)
}

/// JSON equality where numbers compare by value (`1` equals `1.0`).
pub(crate) fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            x.as_str() == y.as_str()
                || matches!((numeric(a), numeric(b)), (Some(p), Some(q)) if p == q)
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_equal(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_equal(v, w)))
        }
        _ => a == b,
    }
}

/// Compiles a regular expression from a policy or profile, with the size limit.
pub(crate) fn compile_regex(pattern: &str) -> Result<Regex, String> {
    RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| match e {
            regex::Error::CompiledTooBig(limit) => format!(
                "the regular expression compiles to more than {limit} bytes; simplify it or split it into several rules"
            ),
            other => {
                let text = other.to_string();
                // The syntax error's last line names the problem; earlier lines repeat the pattern.
                let last = text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or(&text);
                last.trim().trim_start_matches("error: ").to_owned()
            }
        })
}

/// Parses a `match` (or `when`) mapping, reporting every problem into `diags`.
pub(crate) fn parse_conditions(
    node: &Node,
    section: &str,
    item: Item,
    diags: &mut Vec<Diagnostic>,
) -> Option<Conditions> {
    let entries = mapping_of_conditions(node, section, item, diags)?;
    let errors_before = diags.len();
    let mut c = Conditions::default();
    let mut keys = SpecialKeys::default();
    for (key, val) in entries {
        let name = key.as_str().unwrap_or("");
        let mut err = |code: Code, at: &Node, msg: String, hint: Option<String>| {
            let mut d = Diagnostic::error(code, at.span, msg).in_item(Some(item));
            d.hint = hint;
            diags.push(d);
        };
        match name {
            "tool" | "op" | "operation" | "agent_id" | "contains" | "pattern" | "path_contains"
            | "path_starts_with" | "path_ends_with" | "method" | "branch" | "field" => {
                text_condition(&mut c, &mut keys, key, val, &mut err);
            }
            "amount_gt" | "amount_gte" | "amount_lt" | "amount_lte" => {
                amount_condition(&mut c, name, val, &mut err);
            }
            "value" => keys.value = Some((key, val)),
            "when" => expression(&mut c, val, item, &mut err),
            "url_host" => url_hosts(&mut c, val, &mut err),
            "url_scheme" => url_schemes(&mut c, val, &mut err),
            "url_port" => c.url_ports = port_list(val, &mut err),
            "fields" => {
                if let Some(fields) = parse_fields(val, section, item, &mut *diags) {
                    c.fields = fields;
                }
            }
            _ => unknown_condition(key, section, &mut err),
        }
    }
    pair_field_and_value(&mut c, &keys, item, diags);
    (diags.len() == errors_before).then_some(c)
}

/// The keys whose meaning depends on another key of the same match.
#[derive(Default)]
struct SpecialKeys<'a> {
    /// `op` or `operation`, whichever came first.
    op: Option<&'a Node>,
    field: Option<&'a Node>,
    /// `value`, with its key.
    value: Option<(&'a Node, &'a Node)>,
}

/// The entries of a match, or why it has none to give.
fn mapping_of_conditions<'a>(
    node: &'a Node,
    section: &str,
    item: Item,
    diags: &mut Vec<Diagnostic>,
) -> Option<&'a [(Node, Node)]> {
    let Some(entries) = node.as_map() else {
        diags.push(
            Diagnostic::error(
                Code::BadMatch,
                node.span,
                format!(
                    "`{section}` must be a mapping of conditions, found {}",
                    node.describe()
                ),
            )
            .hint(format!(
                "write for example `{section}: {{tool: \"shell\", op: \"run\"}}`"
            ))
            .in_item(Some(item)),
        );
        return None;
    };
    if entries.is_empty() {
        diags.push(
            Diagnostic::error(Code::EmptyMatch, node.span, format!("`{section}` is empty"))
                .hint(format!(
                    "to match every action write `{section}: {{tool: \"*\", op: \"*\"}}`"
                ))
                .in_item(Some(item)),
        );
        return None;
    }
    Some(entries)
}

/// A condition whose value is one text: names, substrings, a regex, paths, a method, a branch,
/// the `field` of a `field`/`value` pair.
fn text_condition<'a>(
    c: &mut Conditions,
    keys: &mut SpecialKeys<'a>,
    key: &'a Node,
    val: &Node,
    err: &mut impl FnMut(Code, &Node, String, Option<String>),
) {
    let name = key.as_str().unwrap_or("");
    let Some(text) = val.as_str() else {
        err(
            Code::NotText,
            val,
            format!("`{name}` must be text, found {}", val.describe()),
            Some(format!("quote it: {name}: \"...\"")),
        );
        return;
    };
    let any = |t: &str| (t != "*").then(|| t.to_owned());
    match name {
        "tool" => c.tool = any(text),
        "op" | "operation" => {
            if let Some(first) = keys.op {
                err(
                    Code::DuplicateOp,
                    key,
                    format!(
                        "both `{}` and `{name}` are given",
                        first.as_str().unwrap_or("op")
                    ),
                    Some("`op` and `operation` are synonyms; keep one".to_owned()),
                );
            }
            keys.op = Some(key);
            c.op = any(text);
        }
        "agent_id" => c.agent_id = any(text),
        "contains" => c.contains = Some(text.to_owned()),
        "pattern" => match compile_regex(text) {
            Ok(re) => c.pattern = Some(re),
            Err(why) => err(
                Code::BadRegex,
                val,
                format!("`pattern` is not a usable regular expression: {why}"),
                Some("the syntax is that of the Rust `regex` crate (no look-around or back-references); escape characters meant literally, such as `(`, with a backslash".to_owned()),
            ),
        },
        "path_contains" => c.paths.push((PathTest::Contains, text.to_owned())),
        "path_starts_with" => c.paths.push((PathTest::StartsWith, text.to_owned())),
        "path_ends_with" => c.paths.push((PathTest::EndsWith, text.to_owned())),
        "method" => c.method = Some(text.to_lowercase()),
        "branch" => c.branch = Some(text.to_owned()),
        // "field": its value comes with `value`, paired after every key is read.
        _ => {
            keys.field = Some(key);
            c.field = Some((text.to_owned(), Value::Null));
        }
    }
}

/// `amount_gt`, `amount_gte`, `amount_lt`, `amount_lte`: a bound on `params.amount`.
fn amount_condition(
    c: &mut Conditions,
    name: &str,
    val: &Node,
    err: &mut impl FnMut(Code, &Node, String, Option<String>),
) {
    match numeric_bound(name, val) {
        Ok(bound) => c.amounts.push(bound),
        Err(hint) => err(
            Code::AmountNotNumber,
            val,
            format!("`{name}` must be a number, found {}", val.describe()),
            Some(hint),
        ),
    }
}

/// The comparison named by `name` (`gt`, `amount_lte`, ...) with the number `val` holds, or the
/// hint for a value that is not a finite number.
pub(super) fn numeric_bound(name: &str, val: &Node) -> Result<(Comparison, f64), String> {
    let limit = match &val.kind {
        Kind::Number(n) => n.as_str().parse::<f64>().ok().filter(|x| x.is_finite()),
        _ => None,
    };
    match limit {
        Some(limit) => Ok((Comparison::from_suffix(name), limit)),
        None => Err(match val.as_str() {
            Some(s) if numeric(&Value::String(s.to_owned())).is_some() => {
                format!("write the number without quotes: {name}: {}", s.trim())
            }
            _ => format!("write a number, for example {name}: 1000"),
        }),
    }
}

fn url_hosts(
    c: &mut Conditions,
    val: &Node,
    err: &mut impl FnMut(Code, &Node, String, Option<String>),
) {
    for (text, at) in text_list(val, "url_host", "api.github.com", err) {
        let Some(text) = text else {
            not_text(at, "url_host", "api.github.com", err);
            continue;
        };
        match HostPattern::parse(text) {
            Ok(pattern) => c.url_hosts.push(pattern),
            Err(e) => err(
                Code::BadHost,
                at,
                format!("`url_host` entry {text:?} cannot be used: {e}"),
                Some(e.hint().to_owned()),
            ),
        }
    }
}

fn url_schemes(
    c: &mut Conditions,
    val: &Node,
    err: &mut impl FnMut(Code, &Node, String, Option<String>),
) {
    for (text, at) in text_list(val, "url_scheme", "https", err) {
        let Some(text) = text else {
            not_text(at, "url_scheme", "https", err);
            continue;
        };
        match parse_scheme(text) {
            Ok(scheme) => c.url_schemes.push(scheme),
            Err(e) => err(
                Code::BadScheme,
                at,
                format!("`url_scheme` entry {text:?} cannot be used: {e}"),
                Some(e.hint()),
            ),
        }
    }
}

fn unknown_condition(
    key: &Node,
    section: &str,
    err: &mut impl FnMut(Code, &Node, String, Option<String>),
) {
    let shown = key.key_text().unwrap_or_default();
    let hint = match did_you_mean(&shown, MATCH_KEYS) {
        Some(s) => format!("did you mean `{s}`?"),
        None => format!("known conditions: {}", MATCH_KEYS.join(", ")),
    };
    err(
        Code::UnknownKey,
        key,
        format!("unknown condition `{shown}` in `{section}`"),
        Some(hint),
    );
}

/// `field` and `value` come together: the value is what the named field must equal.
fn pair_field_and_value(
    c: &mut Conditions,
    keys: &SpecialKeys<'_>,
    item: Item,
    diags: &mut Vec<Diagnostic>,
) {
    match (keys.field, keys.value) {
        (Some(_), Some((_, v))) => match v.to_json() {
            Ok(json) => {
                if let Some((_, expected)) = c.field.as_mut() {
                    *expected = json;
                }
            }
            Err(e) => {
                diags.push(Diagnostic::error(Code::BadValue, e.span, e.message).in_item(Some(item)))
            }
        },
        (Some(f), None) => diags.push(
            Diagnostic::error(
                Code::FieldWithoutValue,
                f.span,
                "`field` is given without `value`",
            )
            .hint("add `value:` with the value the field must equal")
            .in_item(Some(item)),
        ),
        (None, Some((k, _))) => {
            diags.push(
                Diagnostic::error(
                    Code::ValueWithoutField,
                    k.span,
                    "`value` is given without `field`",
                )
                .hint("add `field:` naming the params/context key to compare, e.g. field: env")
                .in_item(Some(item)),
            );
        }
        (None, None) => {}
    }
}

/// The entries of a condition that takes one text or a list of texts (`url_host`,
/// `url_scheme`), in source order, each with its node for locating problems; an entry that
/// is not text comes without its text (report it with [`not_text`]).
fn text_list<'a>(
    val: &'a Node,
    name: &str,
    example: &str,
    err: &mut impl FnMut(Code, &Node, String, Option<String>),
) -> Vec<(Option<&'a str>, &'a Node)> {
    let items: &[Node] = match &val.kind {
        Kind::String(s) => return vec![(Some(s.as_str()), val)],
        Kind::Seq(items) => items,
        _ => {
            err(
                Code::NotText,
                val,
                format!(
                    "`{name}` must be text or a list of texts, found {}",
                    val.describe()
                ),
                Some(format!(
                    "write `{name}: {example}` or `{name}: [{example}, ...]`"
                )),
            );
            return Vec::new();
        }
    };
    if items.is_empty() {
        err(
            Code::EmptyList,
            val,
            format!("`{name}` lists nothing, so it could never hold"),
            Some(format!(
                "list at least one, e.g. `{name}: [{example}]`, or remove `{name}`"
            )),
        );
    }
    items.iter().map(|item| (item.as_str(), item)).collect()
}

/// Reports an entry of a text list that is not text.
fn not_text(
    at: &Node,
    name: &str,
    example: &str,
    err: &mut impl FnMut(Code, &Node, String, Option<String>),
) {
    err(
        Code::NotText,
        at,
        format!(
            "every entry of `{name}` must be text, found {}",
            at.describe()
        ),
        Some(format!("quote it: \"{example}\"")),
    );
}

/// The ports of `url_port`: one number or a list of numbers from 0 to 65535. Problems are
/// reported to `err`.
fn port_list(val: &Node, err: &mut impl FnMut(Code, &Node, String, Option<String>)) -> Vec<u16> {
    let items = match &val.kind {
        Kind::Seq(items) if items.is_empty() => {
            err(
                Code::EmptyList,
                val,
                "`url_port` lists no ports, so it could never hold".to_owned(),
                Some(
                    "list the ports, e.g. `url_port: [443, 8443]`, or remove `url_port`".to_owned(),
                ),
            );
            return Vec::new();
        }
        Kind::Seq(items) => items.as_slice(),
        _ => std::slice::from_ref(val),
    };
    let mut ports = Vec::with_capacity(items.len());
    for at in items {
        let port = match &at.kind {
            Kind::Number(n) => n.as_str().parse::<u16>().ok(),
            _ => None,
        };
        match port {
            Some(port) => ports.push(port),
            None => {
                let hint = match at.as_str().and_then(|s| s.trim().parse::<u16>().ok()) {
                    Some(p) => format!("write the number without quotes: url_port: {p}"),
                    None => {
                        "write for example `url_port: 443` or `url_port: [443, 8443]`".to_owned()
                    }
                };
                err(
                    Code::BadPort,
                    at,
                    format!(
                        "`url_port` must be a port number from 0 to 65535 (or a list of them), found {}",
                        at.describe()
                    ),
                    Some(hint),
                );
            }
        }
    }
    ports
}
