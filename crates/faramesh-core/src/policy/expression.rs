//! `when:` expressions in the Common Expression Language (CEL), over `tool`, `operation`,
//! `agent_id`, `params` and `context` (docs/policies.md#expressions).
//!
//! An expression is parsed and checked when the policy loads: its names must be those five
//! (or a comprehension's own variables), its functions CEL's, a `matches` pattern a literal
//! that compiles, and it must stay within a size budget. At decision time it is evaluated
//! with a cost limit that takes the data into account; an expression that cannot be evaluated
//! (a missing key, a type mismatch, over the cost limit) is a failure the caller turns into a
//! fail-closed answer.

#![warn(
    clippy::string_slice,
    clippy::indexing_slicing,
    reason = "this module reads input: a bad index must be an error, not a panic"
)]

use crate::action::Subject;
use cel::common::ast::{Expr, IdedExpr, LiteralValue};
use cel::{Context, Env, Value};
use serde_json::Value as Json;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

/// Longest expression source, in bytes.
const MAX_SOURCE_BYTES: usize = 4096;
/// Most nodes in an expression's syntax tree (macros expanded).
const MAX_NODES: usize = 1000;
/// Deepest nesting of comprehensions (`all`, `exists`, `map`, `filter`, ...).
const MAX_COMPREHENSION_DEPTH: usize = 2;
/// Most work one evaluation may take: the syntax tree's size times the longest list it could
/// iterate over, once per level of comprehension nesting.
const MAX_COST: u128 = 1_000_000;

/// The names an expression sees.
pub const VARIABLES: [&str; 5] = ["tool", "operation", "agent_id", "params", "context"];

/// CEL's functions and methods (the standard library as this implementation provides it).
const FUNCTIONS: &[&str] = &[
    "size",
    "contains",
    "startsWith",
    "endsWith",
    "matches",
    "int",
    "uint",
    "double",
    "string",
    "bool",
    "bytes",
    "type",
    "dyn",
    "max",
    "min",
    "exists",
    "all",
    "exists_one",
    "map",
    "filter",
    "has",
];

/// A compiled `when:` expression.
#[derive(Clone)]
pub struct Expression {
    source: Arc<str>,
    program: Arc<cel::Program>,
    /// Syntax tree size, for the cost limit.
    nodes: usize,
    /// How deep comprehensions nest.
    depth: usize,
    /// Which of [`VARIABLES`] it reads.
    reads: [bool; 5],
    /// For `params` and `context`: the keys it reads, when it reads them only as
    /// `params.<key>`; `None` when it uses the whole map. Only those keys are converted for an
    /// evaluation, so a large value the expression never looks at costs nothing.
    keys: [Option<Vec<String>>; 2],
}

impl std::fmt::Debug for Expression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Expression").field(&self.source).finish()
    }
}

/// The result of evaluating an expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Evaluation {
    True,
    False,
    /// It could not be evaluated; why.
    Failed(String),
}

fn env() -> &'static Arc<Env> {
    static ENV: OnceLock<Arc<Env>> = OnceLock::new();
    ENV.get_or_init(|| Arc::new(Env::stdlib()))
}

impl Expression {
    /// Compiles and checks `source`. The error says what is wrong and how to fix it.
    pub fn compile(source: &str) -> Result<Expression, String> {
        if source.trim().is_empty() {
            return Err("is empty".to_owned());
        }
        if source.len() > MAX_SOURCE_BYTES {
            return Err(format!(
                "is {} bytes, more than the limit of {MAX_SOURCE_BYTES}",
                source.len()
            ));
        }
        let program = env().compile(source).map_err(|e| {
            let text = e.to_string();
            let first = text.lines().next().unwrap_or("").trim();
            let first = first.trim_start_matches("ERROR: ");
            // `<input>:1:16: Syntax error: …` → `at column 16: syntax error: …`
            let located = first
                .strip_prefix("<input>:")
                .and_then(|rest| {
                    let mut parts = rest.splitn(3, ':');
                    let (_line, column, message) = (parts.next()?, parts.next()?, parts.next()?);
                    Some(format!("at column {column}: {}", message.trim()))
                })
                .unwrap_or_else(|| first.to_owned());
            format!("is not valid CEL {located}")
        })?;
        let mut check = Check::default();
        check.walk(program.expression(), 0)?;
        if check.nodes > MAX_NODES {
            return Err(format!(
                "has {} parts, more than the limit of {MAX_NODES}; split it into several rules",
                check.nodes
            ));
        }
        if let Expr::Literal(literal) = &program.expression().expr {
            if !matches!(literal, LiteralValue::Boolean(_)) {
                return Err("is a constant that is not true or false".to_owned());
            }
        }
        let reads = VARIABLES.map(|v| check.reads.contains(&v.to_owned()));
        let keys_of = |variable: &str| {
            if check.whole.iter().any(|w| w == variable) {
                None
            } else {
                Some(
                    check
                        .selected
                        .iter()
                        .filter(|(v, _)| v == variable)
                        .map(|(_, k)| k.clone())
                        .collect(),
                )
            }
        };
        let keys = [keys_of("params"), keys_of("context")];
        Ok(Expression {
            source: source.into(),
            program: Arc::new(program),
            nodes: check.nodes,
            depth: check.depth,
            reads,
            keys,
        })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// The names of the action it reads, in the order of [`VARIABLES`].
    pub fn reads(&self) -> Vec<&'static str> {
        VARIABLES
            .iter()
            .zip(self.reads)
            .filter(|(_, reads)| *reads)
            .map(|(name, _)| *name)
            .collect()
    }

    /// Evaluates the expression for the action `s`.
    pub(crate) fn evaluate(&self, s: &Subject<'_>) -> Evaluation {
        let mut context = Context::with_env(env().clone());
        let mut longest = 0usize;
        let [tool, operation, agent_id, params, ctx] = self.reads;
        if tool {
            context.add_variable_from_value("tool", s.tool);
        }
        if operation {
            context.add_variable_from_value("operation", s.operation);
        }
        if agent_id {
            context.add_variable_from_value("agent_id", s.agent_id);
        }
        let [params_keys, context_keys] = &self.keys;
        if params {
            context.add_variable_from_value(
                "params",
                object(s.params, params_keys.as_deref(), &mut longest),
            );
        }
        if ctx {
            context.add_variable_from_value(
                "context",
                object(s.context, context_keys.as_deref(), &mut longest),
            );
        }
        // Comprehensions iterate over lists of the action's data: bound the work before it is
        // done. `longest` is at least 1 so the tree's own size always counts.
        let cost = (self.nodes as u128).saturating_mul(
            (longest.max(1) as u128).saturating_pow(u32::try_from(self.depth).unwrap_or(u32::MAX)),
        );
        if cost > MAX_COST {
            return Evaluation::Failed(format!(
                "evaluating it would cost about {cost} steps (lists of up to {longest} items), over the limit of {MAX_COST}"
            ));
        }
        match self.program.execute(&context) {
            Ok(Value::Bool(true)) => Evaluation::True,
            Ok(Value::Bool(false)) => Evaluation::False,
            Ok(other) => {
                Evaluation::Failed(format!("it gave {}, not true or false", describe(&other)))
            }
            Err(e) => Evaluation::Failed(e.to_string()),
        }
    }
}

fn describe(value: &Value) -> String {
    match value {
        Value::Int(i) => format!("the number {i}"),
        Value::UInt(u) => format!("the number {u}"),
        Value::Float(f) => format!("the number {f}"),
        Value::String(s) => format!("the text {s:?}"),
        Value::Null => "null".to_owned(),
        Value::List(_) => "a list".to_owned(),
        Value::Map(_) => "a map".to_owned(),
        _ => "a value".to_owned(),
    }
}

/// Load-time checks over the syntax tree.
#[derive(Default)]
struct Check {
    nodes: usize,
    depth: usize,
    /// Comprehension variables in scope.
    scope: Vec<String>,
    /// The action's names it reads.
    reads: Vec<String>,
    /// `(variable, key)` for each `params.<key>` / `context.<key>` it reads.
    selected: Vec<(String, String)>,
    /// `params` / `context` when it uses the map as a whole.
    whole: Vec<String>,
}

impl Check {
    fn walk(&mut self, e: &IdedExpr, depth: usize) -> Result<(), String> {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            // Counted whole before reporting: stop walking a tree that is too big anyway.
            return Ok(());
        }
        match &e.expr {
            Expr::Ident(name) => {
                self.name(name)?;
                if (name == "params" || name == "context") && !self.scope.iter().any(|v| v == name)
                {
                    self.whole.push(name.clone());
                }
                Ok(())
            }
            Expr::Select(select) => match &select.operand.expr {
                Expr::Ident(name)
                    if (name == "params" || name == "context")
                        && !self.scope.iter().any(|v| v == name) =>
                {
                    // `params.<key>`: only that key is needed.
                    self.nodes += 1;
                    self.name(name)?;
                    self.selected.push((name.clone(), select.field.clone()));
                    Ok(())
                }
                _ => self.walk(&select.operand, depth),
            },
            Expr::Call(call) => {
                self.function(&call.func_name)?;
                if call.func_name == "matches" {
                    let pattern = match (&call.target, call.args.as_slice()) {
                        (Some(_), [pattern]) | (None, [_, pattern]) => Some(pattern),
                        _ => None,
                    };
                    literal_pattern(pattern)?;
                }
                if let Some(target) = &call.target {
                    self.walk(target, depth)?;
                }
                call.args.iter().try_for_each(|a| self.walk(a, depth))
            }
            Expr::List(list) => list.elements.iter().try_for_each(|a| self.walk(a, depth)),
            Expr::Map(map) => map.entries.iter().try_for_each(|entry| {
                use cel::common::ast::EntryExpr;
                match &entry.expr {
                    EntryExpr::MapEntry(m) => {
                        self.walk(&m.key, depth)?;
                        self.walk(&m.value, depth)
                    }
                    EntryExpr::StructField(f) => self.walk(&f.value, depth),
                }
            }),
            Expr::Comprehension(c) => {
                let depth = depth + 1;
                if depth > MAX_COMPREHENSION_DEPTH {
                    return Err(format!(
                        "nests comprehensions (all, exists, map, filter) {depth} deep; at most {MAX_COMPREHENSION_DEPTH} are allowed"
                    ));
                }
                self.depth = self.depth.max(depth);
                self.walk(&c.iter_range, depth - 1)?;
                self.walk(&c.accu_init, depth - 1)?;
                let before = self.scope.len();
                self.scope.push(c.iter_var.clone());
                if let Some(second) = &c.iter_var2 {
                    self.scope.push(second.clone());
                }
                self.scope.push(c.accu_var.clone());
                let inner = [&c.loop_cond, &c.loop_step, &c.result]
                    .into_iter()
                    .try_for_each(|part| self.walk(part, depth));
                self.scope.truncate(before);
                inner
            }
            Expr::Struct(_) => Err("builds a message, which policies cannot use".to_owned()),
            Expr::Literal(_) | Expr::Unspecified => Ok(()),
        }
    }

    fn name(&mut self, name: &str) -> Result<(), String> {
        if self.scope.iter().any(|v| v == name) {
            return Ok(());
        }
        if VARIABLES.contains(&name) {
            if !self.reads.iter().any(|r| r == name) {
                self.reads.push(name.to_owned());
            }
            return Ok(());
        }
        let hint = crate::diagnostic::did_you_mean(name, &VARIABLES)
            .map(|s| format!(" (did you mean `{s}`?)"))
            .unwrap_or_default();
        Err(format!("uses the unknown name `{name}`{hint}"))
    }

    fn function(&self, name: &str) -> Result<(), String> {
        // Operators are spelled `_+_`, `!_`, `@in`, `@not_strictly_false`.
        if name.starts_with('_') || name.starts_with('@') || name.starts_with('!') {
            return Ok(());
        }
        if FUNCTIONS.contains(&name) {
            return Ok(());
        }
        let hint = crate::diagnostic::did_you_mean(name, FUNCTIONS)
            .map(|s| format!(" (did you mean `{s}`?)"))
            .unwrap_or_default();
        Err(format!("calls the unknown function `{name}`{hint}"))
    }
}

/// A `matches` pattern must be a literal that compiles: a pattern taken from the action would
/// let an agent choose what the policy tests, and cost a compilation per decision.
fn literal_pattern(pattern: Option<&IdedExpr>) -> Result<(), String> {
    match pattern.map(|p| &p.expr) {
        Some(Expr::Literal(LiteralValue::String(text))) => {
            super::condition::compile_regex(text.inner())
                .map(|_| ())
                .map_err(|why| format!("takes a `matches` pattern that does not compile: {why}"))
        }
        _ => Err("takes a `matches` pattern that is not a literal string; write the pattern in the expression".to_owned()),
    }
}

/// An object of the action as a CEL map, with only `keys` when given; `longest` becomes the
/// length of its longest list.
fn object(
    map: &serde_json::Map<String, Json>,
    keys: Option<&[String]>,
    longest: &mut usize,
) -> Value {
    let entries: HashMap<String, Value> = match keys {
        Some(keys) => keys
            .iter()
            .filter_map(|k| map.get(k).map(|v| (k.clone(), value(v, longest))))
            .collect(),
        None => map
            .iter()
            .map(|(k, v)| (k.clone(), value(v, longest)))
            .collect(),
    };
    entries.into()
}

/// JSON as CEL. Written here rather than through serde: numbers are kept as their text
/// (`arbitrary_precision`), which a generic serializer would turn into a map.
fn value(v: &Json, longest: &mut usize) -> Value {
    match v {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::Int(i)
            } else if let Some(u) = n.as_u64() {
                Value::UInt(u)
            } else {
                Value::Float(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        Json::String(s) => Value::String(Arc::new(s.clone())),
        Json::Array(items) => {
            *longest = (*longest).max(items.len());
            Value::List(Arc::new(
                items.iter().map(|item| value(item, longest)).collect(),
            ))
        }
        Json::Object(map) => object(map, None, longest),
    }
}
