//! `limits:`: rate limits and budgets over a sliding window (docs/policies.md#limits).
//!
//! ```yaml
//! limits:
//!   - name: shell-burst
//!     match: {tool: shell}
//!     per: agent_id            # agent_id | tool | global | a params./context. path
//!     max_calls: 20
//!     window: 1h
//!     on_exceed: deny          # deny | require_approval
//!   - name: refunds-daily
//!     match: {tool: stripe, op: refund}
//!     per: agent_id
//!     sum: params.amount       # a budget: the sum of this number over the window
//!     max: 5000
//!     window: 24h
//!     on_exceed: require_approval
//! ```
//!
//! The core only says what an action counts against which limit ([`Policy::limit_charges`]);
//! counting happens in the database, atomically, and a limit that bites turns the decision
//! into `LIMIT_EXCEEDED` ([`crate::Engine::limit_exceeded`]).

#![warn(
    clippy::string_slice,
    clippy::indexing_slicing,
    reason = "this module reads input: a bad index must be an error, not a panic"
)]

use super::condition::{numeric, parse_conditions, Conditions};
use super::fields::FieldPath;
use super::parse::unknown_keys;
use crate::action::{ActionRequest, Subject};
use crate::codes::Code;
use crate::diagnostic::{did_you_mean, Diagnostic, Item};
use crate::yaml::Node;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// A compiled limit.
#[derive(Debug, Clone)]
pub struct Limit {
    pub name: Arc<str>,
    /// 1-based position under `limits:`.
    pub number: usize,
    pub line: usize,
    pub conditions: Conditions,
    pub per: Per,
    pub measure: Measure,
    pub window_seconds: u64,
    pub on_exceed: OnExceed,
}

/// Whose usage is counted together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Per {
    AgentId,
    Tool,
    Global,
    /// The value at a `params.`/`context.` path (its JSON text); actions without it share one
    /// count.
    Field(FieldPath),
}

/// What is counted.
#[derive(Debug, Clone, PartialEq)]
pub enum Measure {
    /// At most `max` calls in the window.
    Calls { max: u64 },
    /// The number at `path` summed over the window, at most `max`.
    Sum { path: FieldPath, max: f64 },
}

/// What a limit that bites does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnExceed {
    Deny,
    RequireApproval,
}

/// What one action counts against one limit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LimitCharge {
    pub limit: String,
    /// Whose usage: `agent:<id>`, `tool:<name>`, `global`, or `<path>=<JSON value>`.
    pub key: String,
    /// 1 for a call; the summed number for a budget.
    pub amount: f64,
    pub max: f64,
    pub window_seconds: u64,
    pub on_exceed: OnExceed,
    /// Why the action cannot be counted at all (a budget's number is missing, negative or not a
    /// number): it then exceeds the limit whatever the usage, failing closed.
    pub unreadable: Option<String>,
}

/// A limit that bit: what the decision records in `reason_details.limit`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LimitExceeded {
    pub name: String,
    pub key: String,
    /// Usage in the window before this action.
    pub used: f64,
    /// What this action would have added.
    pub amount: f64,
    pub max: f64,
    /// The window, as written back (`1h`, `24h`, `90s`).
    pub window: String,
    pub on_exceed: OnExceed,
    /// Why the action could not be counted, when that is why it exceeds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unreadable: Option<String>,
}

impl LimitCharge {
    /// Whether `used` in the window leaves room for this action.
    pub fn fits(&self, used: f64) -> bool {
        self.unreadable.is_none() && used + self.amount <= self.max
    }

    /// The record of this charge exceeding at `used`.
    pub fn exceeded(&self, used: f64) -> LimitExceeded {
        LimitExceeded {
            name: self.limit.clone(),
            key: self.key.clone(),
            used,
            amount: self.amount,
            max: self.max,
            window: describe_window(self.window_seconds),
            on_exceed: self.on_exceed,
            unreadable: self.unreadable.clone(),
        }
    }
}

/// `90s`, `30m`, `1h`, `24h`: a window as people write it.
pub fn describe_window(seconds: u64) -> String {
    match seconds {
        s if s % 3600 == 0 && s > 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 && s > 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

impl Limit {
    /// What `action` counts against this limit, when the limit applies to it.
    pub(crate) fn charge(&self, s: &Subject<'_>, action: &ActionRequest) -> Option<LimitCharge> {
        if !self.conditions.matches(s) {
            return None;
        }
        let key = match &self.per {
            Per::AgentId => format!("agent:{}", action.agent_id),
            Per::Tool => format!("tool:{}", action.tool),
            Per::Global => "global".to_owned(),
            Per::Field(path) => {
                let value = path.resolve(&action.params, &action.context);
                let text = value.map_or_else(|| "(missing)".to_owned(), |v| v.to_string());
                format!("{}={text}", path.text)
            }
        };
        let (amount, max, unreadable) = match &self.measure {
            Measure::Calls { max } => (1.0, *max as f64, None),
            Measure::Sum { path, max } => {
                match path.resolve(&action.params, &action.context).map(numeric) {
                    Some(Some(n)) if n >= 0.0 => (n, *max, None),
                    Some(Some(n)) => (
                        0.0,
                        *max,
                        Some(format!(
                            "{} is negative ({n}), which a budget cannot count",
                            path.text
                        )),
                    ),
                    Some(None) => (0.0, *max, Some(format!("{} is not a number", path.text))),
                    None => (0.0, *max, Some(format!("the action has no {}", path.text))),
                }
            }
        };
        Some(LimitCharge {
            limit: self.name.to_string(),
            key,
            amount,
            max,
            window_seconds: self.window_seconds,
            on_exceed: self.on_exceed,
            unreadable,
        })
    }
}

const KEYS: &[&str] = &[
    "name",
    "match",
    "per",
    "max_calls",
    "sum",
    "max",
    "window",
    "on_exceed",
];
const PER_WORDS: &[&str] = &["agent_id", "tool", "global"];

/// Reads one limit; every problem is reported, located.
pub(crate) fn parse_limit(
    node: &Node,
    number: usize,
    diags: &mut Vec<Diagnostic>,
) -> Option<Limit> {
    let item = Item::Limit(number);
    let bad = |span, message: String, hint: &str| {
        Diagnostic::error(Code::BadLimit, span, message)
            .hint(hint.to_owned())
            .in_item(Some(item))
    };
    let Some(entries) = node.as_map() else {
        diags.push(bad(
            node.head_span(),
            format!("a limit must be a mapping, found {}", node.describe()),
            "write `- name: ...` with match, per, max_calls (or sum and max), window",
        ));
        return None;
    };
    let before = diags.len();
    unknown_keys(entries, KEYS, "in a limit", Some(item), diags);
    let name = match node.get("name").map(|n| (n, n.as_str())) {
        Some((_, Some(text))) if !text.trim().is_empty() => Some(text.to_owned()),
        Some((n, _)) => {
            diags.push(bad(
                n.span,
                format!("`name` must be text, found {}", n.describe()),
                "e.g. `name: shell-burst`",
            ));
            None
        }
        None => {
            diags.push(bad(
                node.head_span(),
                "the limit has no `name`".to_owned(),
                "add `name:`; the decision and GET /v1/limits name the limit by it",
            ));
            None
        }
    };
    let conditions = match node.get("match") {
        Some(m) => parse_conditions(m, "match", item, diags),
        None => {
            diags.push(bad(
                node.head_span(),
                "the limit has no `match`".to_owned(),
                "say which actions it counts, e.g. `match: {tool: shell}`",
            ));
            None
        }
    };
    let per = match node.get("per") {
        None => Some(Per::AgentId),
        Some(n) => match n.as_str() {
            Some("agent_id") => Some(Per::AgentId),
            Some("tool") => Some(Per::Tool),
            Some("global") => Some(Per::Global),
            Some(text) if text.starts_with("params.") || text.starts_with("context.") => {
                match FieldPath::parse(text) {
                    Ok(path) => Some(Per::Field(path)),
                    Err(e) => {
                        diags.push(bad(n.span, e.to_string(), &e.hint()));
                        None
                    }
                }
            }
            other => {
                let shown = other.map_or_else(|| n.describe(), |t| format!("{t:?}"));
                let suggestion = other
                    .and_then(|t| did_you_mean(t, PER_WORDS))
                    .map(|s| format!(" (did you mean `{s}`?)"))
                    .unwrap_or_default();
                diags.push(bad(n.span, format!("`per` must be agent_id, tool, global or a params./context. path, found {shown}{suggestion}"), "e.g. `per: agent_id` or `per: params.customer`"));
                None
            }
        },
    };
    let measure = match (node.get("max_calls"), node.get("sum"), node.get("max")) {
        (Some(calls), None, None) => match calls.to_json().ok().and_then(|v| v.as_u64()) {
            Some(max) => Some(Measure::Calls { max }),
            None => {
                diags.push(bad(
                    calls.span,
                    format!(
                        "`max_calls` must be a whole number, found {}",
                        calls.describe()
                    ),
                    "e.g. `max_calls: 20`",
                ));
                None
            }
        },
        (None, Some(sum), Some(max)) => {
            let path = match sum.as_str().map(FieldPath::parse) {
                Some(Ok(path)) => Some(path),
                Some(Err(e)) => {
                    diags.push(bad(sum.span, e.to_string(), &e.hint()));
                    None
                }
                None => {
                    diags.push(bad(
                        sum.span,
                        format!(
                            "`sum` must be a params./context. path, found {}",
                            sum.describe()
                        ),
                        "e.g. `sum: params.amount`",
                    ));
                    None
                }
            };
            let limit = max
                .to_json()
                .ok()
                .as_ref()
                .and_then(numeric)
                .filter(|m| *m >= 0.0);
            if limit.is_none() {
                diags.push(bad(
                    max.span,
                    format!(
                        "`max` must be a number of at least 0, found {}",
                        max.describe()
                    ),
                    "e.g. `max: 5000`",
                ));
            }
            Some(Measure::Sum {
                path: path?,
                max: limit?,
            })
        }
        _ => {
            diags.push(bad(node.head_span(), "a limit counts calls (`max_calls`) or sums a number (`sum` with `max`), one of the two".to_owned(), "e.g. `max_calls: 20`, or `sum: params.amount` and `max: 5000`"));
            None
        }
    };
    let window_seconds = match node.get("window") {
        Some(w) => match super::approval::duration_seconds(w) {
            Some(s) => Some(s),
            None => {
                diags.push(bad(
                    w.span,
                    format!(
                        "`window` must be a duration such as 90s, 30m, 1h or 1d, found {}",
                        w.describe()
                    ),
                    "the sliding window the usage is counted over",
                ));
                None
            }
        },
        None => {
            diags.push(bad(
                node.head_span(),
                "the limit has no `window`".to_owned(),
                "e.g. `window: 1h`",
            ));
            None
        }
    };
    let on_exceed = match node.get("on_exceed") {
        None => Some(OnExceed::Deny),
        Some(n) => {
            match n.as_str() {
                Some("deny") => Some(OnExceed::Deny),
                Some("require_approval") => Some(OnExceed::RequireApproval),
                other => {
                    let shown = other.map_or_else(|| n.describe(), |t| format!("{t:?}"));
                    let suggestion = other
                        .and_then(|t| did_you_mean(t, &["deny", "require_approval"]))
                        .map(|s| format!(" (did you mean `{s}`?)"))
                        .unwrap_or_default();
                    diags.push(bad(n.span, format!("`on_exceed` must be deny or require_approval, found {shown}{suggestion}"), "what happens to an action over the limit"));
                    None
                }
            }
        }
    };
    if diags.len() > before {
        return None;
    }
    Some(Limit {
        name: name?.into(),
        number,
        line: node.head_span().line,
        conditions: conditions?,
        per: per?,
        measure: measure?,
        window_seconds: window_seconds?,
        on_exceed: on_exceed?,
    })
}
