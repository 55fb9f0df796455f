//! The policy file: parsed and checked as a whole, then compiled once into an indexed form.

#![warn(
    clippy::string_slice,
    clippy::indexing_slicing,
    reason = "this module reads input: a bad index must be an error, not a panic"
)]

mod action_match;
mod approval;
mod condition;
pub mod expression;
mod fields;
mod index;
pub mod limits;
mod parse;
mod urls;

use crate::decision::ExpressionFailure;
pub use action_match::ActionMatch;
pub use approval::{ApprovalRule, Approver, OnTimeout};
pub use condition::{Comparison, Conditions, PathTest, MATCH_KEYS, REGEX_SIZE_LIMIT};
use expression::Evaluation;
pub use fields::{
    FieldCondition, FieldPath, FieldPathError, FieldRoot, FieldTest, FIELD_OPERATORS,
};
pub use index::{Candidates, RuleIndex};
pub use urls::{parse_scheme, HostPattern, HostPatternError, SchemeError, UrlParts};

pub(crate) use condition::compile_regex;
pub(crate) use parse::unknown_keys;

use crate::action::Subject;
use crate::decision::RiskLevel;
use crate::diagnostic::{Diagnostic, Report};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;

/// What a rule does when it matches, and the API's `decision` field: `allow`, `deny` or
/// `require_approval`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    Allow,
    Deny,
    RequireApproval,
}

impl Effect {
    pub fn as_str(self) -> &'static str {
        match self {
            Effect::Allow => "allow",
            Effect::Deny => "deny",
            Effect::RequireApproval => "require_approval",
        }
    }

    pub fn parse(text: &str) -> Option<Effect> {
        [Effect::Allow, Effect::Deny, Effect::RequireApproval]
            .into_iter()
            .find(|e| e.as_str() == text)
    }
}

impl From<crate::decision::Outcome> for Effect {
    /// The decision an outcome is: run it, wait for a human, or stop.
    fn from(outcome: crate::decision::Outcome) -> Effect {
        match outcome {
            crate::decision::Outcome::Execute => Effect::Allow,
            crate::decision::Outcome::Abstain => Effect::RequireApproval,
            crate::decision::Outcome::Halt => Effect::Deny,
        }
    }
}

impl std::fmt::Display for Effect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A compiled policy rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// 1-based position in `rules:`.
    pub number: usize,
    /// Line of the rule in the file.
    pub line: usize,
    pub name: Option<Arc<str>>,
    pub conditions: Conditions,
    pub effect: Effect,
    pub description: Option<String>,
    /// The rule's own risk, which replaces the computed one.
    pub risk: Option<RiskLevel>,
    /// What its approvals must be, for a `require_approval` rule (the seed's `true` form:
    /// the default, one approval by any approver or admin).
    pub approval: Option<Arc<ApprovalRule>>,
    /// The reason given when this rule decides: the description or the default reason.
    pub reason: Arc<str>,
    /// The reason when an `allow` is upgraded to `require_approval` by high risk.
    pub upgraded_reason: Arc<str>,
}

/// A compiled risk rule.
#[derive(Debug, Clone)]
pub struct RiskRule {
    /// 1-based position in `risk.rules:`.
    pub number: usize,
    pub line: usize,
    pub name: Arc<str>,
    pub conditions: Conditions,
    pub level: RiskLevel,
}

/// A policy ready to decide: validated, hashed and indexed.
#[derive(Debug, Clone)]
pub struct Policy {
    source: String,
    rules: Vec<Rule>,
    risk_rules: Vec<RiskRule>,
    rules_json: Vec<Value>,
    risk_rules_json: Vec<Value>,
    limits: Vec<limits::Limit>,
    limits_json: Vec<Value>,
    hash: Arc<str>,
    index: RuleIndex,
    risk_index: RuleIndex,
    warnings: Vec<Diagnostic>,
}

impl Policy {
    /// Parses and checks a policy file. `source` names the file in diagnostics. Every problem
    /// is reported at once; warnings alone do not fail.
    pub fn parse(source: &str, text: &str) -> Result<Policy, Report> {
        parse::parse(source, text)
    }

    /// The file name the policy was read from, as given.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// `policy_hash` (docs/audit.md): SHA-256 of the canonical `{"rules", "risk_rules"}` as parsed.
    pub fn hash(&self) -> &str {
        &self.hash
    }

    pub(crate) fn hash_arc(&self) -> &Arc<str> {
        &self.hash
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    pub fn risk_rules(&self) -> &[RiskRule] {
        &self.risk_rules
    }

    /// The limits as parsed (JSON), in file order.
    pub fn limits_json(&self) -> &[Value] {
        &self.limits_json
    }

    /// The limits, in file order.
    pub fn limits(&self) -> &[limits::Limit] {
        &self.limits
    }

    /// What `action` counts against each limit that applies to it, in file order.
    pub fn limit_charges(&self, action: &crate::ActionRequest) -> Vec<limits::LimitCharge> {
        if self.limits.is_empty() {
            return Vec::new();
        }
        let s = Subject::new(action);
        self.limits
            .iter()
            .filter_map(|limit| limit.charge(&s, action))
            .collect()
    }

    /// The rules as parsed (JSON), in file order.
    pub fn rules_json(&self) -> &[Value] {
        &self.rules_json
    }

    /// The risk rules as parsed (JSON), in file order.
    pub fn risk_rules_json(&self) -> &[Value] {
        &self.risk_rules_json
    }

    /// Problems that do not stop the policy from working (an unreachable rule, for example).
    pub fn warnings(&self) -> &[Diagnostic] {
        &self.warnings
    }

    /// `<file name>@<first 12 hex of policy_hash>`: the default `policy_version`.
    pub fn default_version(&self) -> String {
        let file = self
            .source
            .rsplit(['/', '\\'])
            .next()
            .unwrap_or(&self.source);
        format!("{file}@{}", self.hash.get(..12).unwrap_or(&self.hash))
    }

    /// The first rule that matches, visiting only rules indexed under the action's tool and
    /// operation.
    ///
    /// A rule whose `when` expression cannot be evaluated fails closed: it does not match when
    /// it allows, and matches when it denies or asks for approval. Each such failure is added
    /// to `failures`.
    pub(crate) fn first_match(
        &self,
        s: &Subject<'_>,
        failures: &mut Vec<ExpressionFailure>,
    ) -> Option<&Rule> {
        self.index
            .candidates(s.tool, s.operation)
            .filter_map(|i| self.rules.get(i))
            .find(|rule| match rule.conditions.evaluate(s) {
                Evaluation::True => true,
                Evaluation::False => false,
                Evaluation::Failed(error) => {
                    let matched = rule.effect != Effect::Allow;
                    failures.push(ExpressionFailure {
                        rule: format!("rule {}", rule.number),
                        error,
                        counted_as_match: matched,
                    });
                    matched
                }
            })
    }

    /// Whether every call of `tool`/`operation` by `agent_id` is denied, whatever its
    /// arguments: the first rule that could match it denies and matches them all (rules that
    /// deny only some arguments are passed over), or none could match (deny by default). A
    /// rule that allows or asks for some arguments makes the answer false.
    pub fn denies_every_call(&self, agent_id: &str, tool: &str, operation: &str) -> bool {
        for rule in self
            .index
            .candidates(tool, operation)
            .filter_map(|i| self.rules.get(i))
        {
            let matches = rule
                .conditions
                .matches_regardless_of_arguments(agent_id, tool, operation);
            match (matches, rule.effect) {
                (Some(false), _) | (None, Effect::Deny) => {}
                (Some(true), effect) => return effect == Effect::Deny,
                (None, _) => return false,
            }
        }
        true
    }

    /// The first risk rule that matches, if any. A `when` expression that cannot be evaluated
    /// counts as matching (the higher risk is the safe side), and is added to `failures`.
    pub(crate) fn risk(
        &self,
        s: &Subject<'_>,
        failures: &mut Vec<ExpressionFailure>,
    ) -> Option<&RiskRule> {
        self.risk_index
            .candidates(s.tool, s.operation)
            .filter_map(|i| self.risk_rules.get(i))
            .find(|rule| match rule.conditions.evaluate(s) {
                Evaluation::True => true,
                Evaluation::False => false,
                Evaluation::Failed(error) => {
                    failures.push(ExpressionFailure {
                        rule: format!("risk rule {}", rule.name),
                        error,
                        counted_as_match: true,
                    });
                    true
                }
            })
    }
}
