//! Policy test suites: a YAML file of actions with the decisions they must get.
//!
//! ```yaml
//! cases:
//!   - name: GET requests are allowed
//!     tool: http
//!     op: get
//!     params: {url: "https://example.com"}
//!     expect: allow                       # allow | deny | require_approval | EXECUTE | HALT | ABSTAIN
//!   - name: large refunds wait for a human
//!     tool: stripe
//!     op: refund
//!     params: {amount: 5000}
//!     expect: {decision: require_approval, reason_code: POLICY_REQUIRE_APPROVAL, risk: medium}
//! ```

#![warn(
    clippy::string_slice,
    clippy::indexing_slicing,
    reason = "this module reads input: a bad index must be an error, not a panic"
)]

use crate::action::ActionRequest;
use crate::codes::Code;
use crate::decision::{Decision, Outcome, RiskLevel};
use crate::diagnostic::{Diagnostic, Report};
use crate::engine::Engine;
use crate::policy::unknown_keys;
use crate::yaml::Node;
use serde::Serialize;
use serde_json::{Map, Value};

const CASE_KEYS: &[&str] = &[
    "name",
    "agent_id",
    "tool",
    "op",
    "operation",
    "params",
    "context",
    "usage",
    "expect",
];
const EXPECT_KEYS: &[&str] = &["decision", "outcome", "reason_code", "risk", "reason"];

/// The agent id of a case that names none.
pub const DEFAULT_AGENT: &str = "policy-test";

/// One action and what it must get.
#[derive(Debug, Clone)]
pub struct Case {
    pub name: String,
    pub line: usize,
    pub action: ActionRequest,
    /// The usage of the policy's limits before this action (limit name → usage; 0 for the
    /// others), so a case can show a limit biting.
    pub usage: std::collections::HashMap<String, f64>,
    pub expect: Expectation,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expectation {
    pub outcome: Outcome,
    pub reason_code: Option<String>,
    pub risk: Option<RiskLevel>,
    pub reason: Option<String>,
}

/// A field whose decided value differs from the expected one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mismatch {
    pub field: &'static str,
    pub expected: String,
    pub actual: String,
}

impl Expectation {
    /// Every way `decision` differs from this expectation.
    pub fn check(&self, decision: &Decision) -> Vec<Mismatch> {
        let mut out = Vec::new();
        if decision.outcome != self.outcome {
            out.push(Mismatch {
                field: "decision",
                expected: self.outcome.decision().to_owned(),
                actual: decision.decision().to_owned(),
            });
        }
        if let Some(code) = &self.reason_code {
            if **code != *decision.reason_code {
                out.push(Mismatch {
                    field: "reason_code",
                    expected: code.clone(),
                    actual: decision.reason_code.to_string(),
                });
            }
        }
        if let Some(risk) = self.risk {
            if risk != decision.risk_level {
                out.push(Mismatch {
                    field: "risk",
                    expected: risk.to_string(),
                    actual: decision.risk_level.to_string(),
                });
            }
        }
        if let Some(reason) = &self.reason {
            if **reason != *decision.reason {
                out.push(Mismatch {
                    field: "reason",
                    expected: reason.clone(),
                    actual: decision.reason.to_string(),
                });
            }
        }
        out
    }
}

/// The outcome of one case.
#[derive(Debug, Clone)]
pub struct CaseResult<'a> {
    pub case: &'a Case,
    pub decision: Decision,
    pub mismatches: Vec<Mismatch>,
}

impl CaseResult<'_> {
    pub fn passed(&self) -> bool {
        self.mismatches.is_empty()
    }
}

/// Decides every case.
pub fn run<'a>(engine: &Engine, cases: &'a [Case]) -> Vec<CaseResult<'a>> {
    cases
        .iter()
        .map(|case| {
            let decision = engine.decide_at_usage(&case.action, &case.usage);
            let mismatches = case.expect.check(&decision);
            CaseResult {
                case,
                decision,
                mismatches,
            }
        })
        .collect()
}

/// Parses a cases file, reporting every problem at once.
pub fn parse(source: &str, text: &str) -> Result<Vec<Case>, Report> {
    let report = |diagnostics| Report {
        file: source.to_owned(),
        diagnostics,
    };
    let doc = Report::load_yaml(source, text)?;
    let mut diags = Vec::new();
    let items = match (doc.as_map(), doc.get("cases").and_then(Node::as_seq)) {
        (Some(entries), Some(items)) => {
            unknown_keys(entries, &["cases"], "at the top level", None, &mut diags);
            items
        }
        _ => {
            return Err(report(vec![Diagnostic::error(
                Code::MissingCases,
                doc.head_span(),
                "a cases file must be a mapping with a `cases:` list",
            )
            .hint(
                "write `cases:` then items with name, tool, op, params and expect",
            )]))
        }
    };
    let mut cases = Vec::new();
    for (i, node) in items.iter().enumerate() {
        if let Some(case) = parse_case(node, i + 1, &mut diags) {
            cases.push(case);
        }
    }
    if diags.is_empty() {
        Ok(cases)
    } else {
        Err(report(diags))
    }
}

fn parse_case(node: &Node, number: usize, diags: &mut Vec<Diagnostic>) -> Option<Case> {
    let before = diags.len();
    let err = |diags: &mut Vec<Diagnostic>, at: &Node, msg: String, hint: &str| {
        diags.push(
            Diagnostic::error(Code::BadCase, at.span, format!("case {number}: {msg}"))
                .hint(hint.to_owned()),
        );
    };
    let Some(entries) = node.as_map() else {
        err(
            diags,
            node,
            format!("a case must be a mapping, found {}", node.describe()),
            "write `- name: ...` with tool, op and expect",
        );
        return None;
    };
    unknown_keys(entries, CASE_KEYS, "in a case", None, diags);
    let text = |diags: &mut Vec<Diagnostic>, key: &str| case_text(node, key, number, diags);
    let name = text(diags, "name").unwrap_or_else(|| format!("case {number}"));
    let agent_id = text(diags, "agent_id").unwrap_or_else(|| DEFAULT_AGENT.to_owned());
    let tool = text(diags, "tool");
    let op = text(diags, "op").or_else(|| text(diags, "operation"));
    if tool.is_none() && node.get("tool").is_none() {
        err(
            diags,
            node,
            "no `tool`".to_owned(),
            "add `tool:`, e.g. tool: http",
        );
    }
    if op.is_none() && node.get("op").is_none() && node.get("operation").is_none() {
        err(diags, node, "no `op`".to_owned(), "add `op:`, e.g. op: get");
    }
    let params = case_object(node, "params", number, diags);
    let context = case_object(node, "context", number, diags);
    let mut usage = std::collections::HashMap::new();
    if let Some(u) = node.get("usage") {
        match u.as_map() {
            Some(entries) => {
                for (k, v) in entries {
                    let number_of = v.to_json().ok().and_then(|j| j.as_f64());
                    match (k.as_str(), number_of) {
                        (Some(name), Some(n)) if n >= 0.0 => {
                            usage.insert(name.to_owned(), n);
                        }
                        _ => err(
                            diags,
                            k,
                            "each entry of `usage` is a limit's name and a number of at least 0"
                                .to_owned(),
                            "e.g. `usage: {shell-burst: 20}`",
                        ),
                    }
                }
            }
            None => err(
                diags,
                u,
                format!(
                    "`usage` must map limit names to their usage, found {}",
                    u.describe()
                ),
                "e.g. `usage: {shell-burst: 20}`",
            ),
        }
    }
    let expect = match node.get("expect") {
        None => {
            err(
                diags,
                node,
                "no `expect`".to_owned(),
                "add `expect: allow` (or deny, require_approval)",
            );
            None
        }
        Some(e) => parse_expect(e, number, diags),
    };
    if diags.len() > before {
        return None;
    }
    Some(Case {
        name,
        line: node.head_span().line,
        action: ActionRequest {
            agent_id,
            tool: tool?,
            operation: op?,
            params,
            context,
        },
        usage,
        expect: expect?,
    })
}

/// The text of a case's `key`, if given; anything else is a problem.
fn case_text(node: &Node, key: &str, number: usize, diags: &mut Vec<Diagnostic>) -> Option<String> {
    let v = node.get(key)?;
    match v.as_str() {
        Some(s) => Some(s.to_owned()),
        None => {
            diags.push(Diagnostic::error(
                Code::BadCase,
                v.span,
                format!(
                    "case {number}: `{key}` must be text, found {}",
                    v.describe()
                ),
            ));
            None
        }
    }
}

/// A case's `params` or `context`: a mapping, `{}` when absent or null.
fn case_object(
    node: &Node,
    key: &str,
    number: usize,
    diags: &mut Vec<Diagnostic>,
) -> Map<String, Value> {
    match node.get(key).map(|v| (v, v.to_json())) {
        None => Map::new(),
        Some((_, Ok(Value::Object(map)))) => map,
        Some((_, Ok(Value::Null))) => Map::new(),
        Some((v, Ok(_))) => {
            diags.push(Diagnostic::error(
                Code::BadCase,
                v.span,
                format!(
                    "case {number}: `{key}` must be a mapping, found {}",
                    v.describe()
                ),
            ));
            Map::new()
        }
        Some((_, Err(e))) => {
            diags.push(Diagnostic::error(
                Code::BadCase,
                e.span,
                format!("case {number}: {}", e.message),
            ));
            Map::new()
        }
    }
}

fn parse_expect(node: &Node, number: usize, diags: &mut Vec<Diagnostic>) -> Option<Expectation> {
    let bad = |diags: &mut Vec<Diagnostic>, at: &Node, msg: String| {
        diags.push(
            Diagnostic::error(Code::BadExpect, at.span, format!("case {number}: {msg}"))
                .hint("expect one of allow, deny, require_approval (or EXECUTE, HALT, ABSTAIN)"),
        );
    };
    let outcome_of = |text: &str| Outcome::from_decision(text).or_else(|| Outcome::parse(text));
    if let Some(text) = node.as_str() {
        let Some(outcome) = outcome_of(text) else {
            bad(diags, node, format!("unknown expected decision {text:?}"));
            return None;
        };
        return Some(Expectation {
            outcome,
            reason_code: None,
            risk: None,
            reason: None,
        });
    }
    let Some(entries) = node.as_map() else {
        bad(
            diags,
            node,
            format!(
                "`expect` must be a decision or a mapping, found {}",
                node.describe()
            ),
        );
        return None;
    };
    unknown_keys(entries, EXPECT_KEYS, "in `expect`", None, diags);
    let field = |key: &str| node.get(key).and_then(Node::as_str);
    let outcome_node = node.get("decision").or_else(|| node.get("outcome"));
    let outcome = match outcome_node {
        None => {
            bad(diags, node, "`expect` names no decision".to_owned());
            None
        }
        Some(n) => match n.as_str().and_then(outcome_of) {
            Some(o) => Some(o),
            None => {
                bad(
                    diags,
                    n,
                    format!("unknown expected decision {}", n.describe()),
                );
                None
            }
        },
    };
    let risk = match node.get("risk") {
        None => None,
        Some(n) => match n.as_str().and_then(RiskLevel::parse) {
            Some(r) => Some(r),
            None => {
                diags.push(Diagnostic::error(
                    Code::BadExpect,
                    n.span,
                    format!(
                        "case {number}: expected risk must be low, medium or high, found {}",
                        n.describe()
                    ),
                ));
                None
            }
        },
    };
    Some(Expectation {
        outcome: outcome?,
        reason_code: field("reason_code").map(str::to_owned),
        risk,
        reason: field("reason").map(str::to_owned),
    })
}
