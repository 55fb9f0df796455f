//! What the engine answers.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;

/// A `when` expression that could not be evaluated while deciding, and how it was counted
/// (fail closed: no match for a rule that allows, a match for one that denies, asks for
/// approval, or sets a risk).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpressionFailure {
    /// `rule 3` or `risk rule <name>`.
    pub rule: String,
    pub error: String,
    pub counted_as_match: bool,
}

/// Risk of an action. Ordered: `Low < Medium < High`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum RiskLevel {
    Low,
    Medium,
    High,
}

impl RiskLevel {
    pub fn parse(text: &str) -> Option<RiskLevel> {
        match text {
            "low" => Some(RiskLevel::Low),
            "medium" => Some(RiskLevel::Medium),
            "high" => Some(RiskLevel::High),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RiskLevel::Low => "low",
            RiskLevel::Medium => "medium",
            RiskLevel::High => "high",
        }
    }
}

impl fmt::Display for RiskLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The gate's answer: run it, wait for a human, or stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "UPPERCASE")]
pub enum Outcome {
    Execute,
    Abstain,
    Halt,
}

impl Outcome {
    pub fn parse(text: &str) -> Option<Outcome> {
        match text {
            "EXECUTE" => Some(Outcome::Execute),
            "ABSTAIN" => Some(Outcome::Abstain),
            "HALT" => Some(Outcome::Halt),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Execute => "EXECUTE",
            Outcome::Abstain => "ABSTAIN",
            Outcome::Halt => "HALT",
        }
    }

    /// The API's `decision` field: `allow`, `require_approval` or `deny`.
    pub fn decision(self) -> &'static str {
        match self {
            Outcome::Execute => "allow",
            Outcome::Abstain => "require_approval",
            Outcome::Halt => "deny",
        }
    }

    /// The outcome for an API `decision` value.
    pub fn from_decision(text: &str) -> Option<Outcome> {
        match text {
            "allow" => Some(Outcome::Execute),
            "require_approval" => Some(Outcome::Abstain),
            "deny" => Some(Outcome::Halt),
            _ => None,
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Reason codes of docs/policies.md.
pub mod reason_code {
    pub const POLICY_ALLOW: &str = "POLICY_ALLOW";
    pub const POLICY_DENY: &str = "POLICY_DENY";
    pub const POLICY_REQUIRE_APPROVAL: &str = "POLICY_REQUIRE_APPROVAL";
    pub const DEFAULT_DENY_NO_MATCH: &str = "DEFAULT_DENY_NO_MATCH";
    pub const PROFILE_DISALLOWS_TOOL: &str = "PROFILE_DISALLOWS_TOOL";
    pub const PROFILE_RULE_DENY: &str = "PROFILE_RULE_DENY";
    pub const PROFILE_MISSING_REQUIRED_CONTROL: &str = "PROFILE_MISSING_REQUIRED_CONTROL";
    pub const INTERNAL_ERROR: &str = "INTERNAL_ERROR";
    pub const MISSING_POLICY: &str = "MISSING_POLICY";
    pub const PROFILE_LOAD_ERROR: &str = "PROFILE_LOAD_ERROR";
    pub const LIMIT_EXCEEDED: &str = "LIMIT_EXCEEDED";
}

/// Which rule decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DecidedBy {
    /// A policy rule (1-based number, line in the file).
    PolicyRule {
        number: usize,
        line: usize,
        name: Option<Arc<str>>,
    },
    /// An execution-profile rule.
    ProfileRule { number: usize, name: Arc<str> },
    /// The profile's `allowed_tools` or `required_controls`.
    Profile,
    /// No rule matched: deny by default.
    Default,
    /// Evaluation could not run (missing policy, failed profile, internal error).
    Failure,
}

/// A decision with its version-bound fields (docs/audit.md).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    pub outcome: Outcome,
    pub reason_code: Arc<str>,
    pub reason: Arc<str>,
    pub risk_level: RiskLevel,
    /// Name of the risk rule that gave the computed risk, if one matched.
    pub risk_rule: Option<Arc<str>>,
    pub decided_by: DecidedBy,
    /// What the approvals must be, when the `require_approval` rule that decided states it
    /// (its mapping form); `None`: one approval by any approver or admin.
    pub approval: Option<Arc<crate::policy::ApprovalRule>>,
    /// `when` expressions that could not be evaluated, in the order they were met; empty
    /// almost always.
    pub expression_failures: Vec<ExpressionFailure>,
    /// The limit that bit, when one did ([`crate::Engine::limit_exceeded`]).
    pub limit: Option<crate::policy::limits::LimitExceeded>,
    /// `None` only when the action itself has no canonical form.
    pub request_hash: Option<String>,
    pub policy_hash: Option<Arc<str>>,
    pub policy_version: Option<Arc<str>>,
    pub profile_id: Option<Arc<str>>,
    pub profile_version: Option<Arc<str>>,
    pub profile_hash: Option<Arc<str>>,
    pub runtime_version: Arc<str>,
    pub provenance_id: String,
}

impl Decision {
    /// `allow`, `deny` or `require_approval`.
    pub fn decision(&self) -> &'static str {
        self.outcome.decision()
    }
}
