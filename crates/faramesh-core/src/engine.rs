//! The decision engine: profile, then policy, then the version-bound fields. Pure and
//! deterministic; every failure is a HALT (fail closed).

#![warn(
    clippy::string_slice,
    clippy::indexing_slicing,
    reason = "this module reads input: a bad index must be an error, not a panic"
)]

use crate::action::{ActionRequest, Subject};
use crate::decision::{reason_code, DecidedBy, Decision, ExpressionFailure, Outcome, RiskLevel};
use crate::hash::{provenance_id, request_hash};
use crate::policy::{ApprovalRule, Effect, Policy};
use crate::profile::{Profile, Verdict};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

/// The profile an engine decides with.
#[derive(Debug, Clone)]
pub enum ProfileState {
    /// No profile: the policy alone decides.
    None,
    Loaded(Box<Profile>),
    /// A profile was configured but could not be loaded: every action is halted.
    Failed(String),
}

/// Reason codes and reasons that do not depend on the action, built once so that a decision
/// shares them instead of allocating its own copy.
#[derive(Debug, Clone)]
struct SharedReasons {
    policy_allow: Arc<str>,
    policy_deny: Arc<str>,
    policy_require_approval: Arc<str>,
    default_deny: Arc<str>,
    profile_disallows_tool: Arc<str>,
    profile_missing_control: Arc<str>,
    internal_error: Arc<str>,
    missing_policy: Arc<str>,
    profile_load_error: Arc<str>,
    limit_exceeded: Arc<str>,
    no_match_reason: Arc<str>,
    missing_token_reason: Arc<str>,
    no_policy_reason: Arc<str>,
    panic_reason: Arc<str>,
}

impl SharedReasons {
    fn new() -> SharedReasons {
        SharedReasons {
            policy_allow: reason_code::POLICY_ALLOW.into(),
            policy_deny: reason_code::POLICY_DENY.into(),
            policy_require_approval: reason_code::POLICY_REQUIRE_APPROVAL.into(),
            default_deny: reason_code::DEFAULT_DENY_NO_MATCH.into(),
            profile_disallows_tool: reason_code::PROFILE_DISALLOWS_TOOL.into(),
            profile_missing_control: reason_code::PROFILE_MISSING_REQUIRED_CONTROL.into(),
            internal_error: reason_code::INTERNAL_ERROR.into(),
            missing_policy: reason_code::MISSING_POLICY.into(),
            profile_load_error: reason_code::PROFILE_LOAD_ERROR.into(),
            limit_exceeded: reason_code::LIMIT_EXCEEDED.into(),
            no_match_reason: "No rule matched (deny by default)".into(),
            missing_token_reason: "Profile requires approval_token but none provided".into(),
            no_policy_reason: "No policy is loaded: every action is denied".into(),
            panic_reason: "Internal error while deciding; the action is denied".into(),
        }
    }
}

/// A policy (or its absence), a profile and a runtime version, ready to decide.
#[derive(Debug, Clone)]
pub struct Engine {
    policy: Option<Policy>,
    profile: ProfileState,
    runtime_version: Arc<str>,
    policy_version: Option<Arc<str>>,
    texts: SharedReasons,
}

/// Why a limit bit, in words: `Limit shell-burst: 20 of 20 calls in 1h used (agent:bot)`.
fn limit_reason(e: &crate::policy::limits::LimitExceeded) -> String {
    if let Some(why) = &e.unreadable {
        return format!("Limit {} cannot count this action: {why}", e.name);
    }
    let number = |n: f64| {
        if n.fract() == 0.0 && n.abs() < 1e15 {
            format!("{}", n as i64)
        } else {
            format!("{n}")
        }
    };
    if e.amount == 1.0 && e.max.fract() == 0.0 && e.used.fract() == 0.0 {
        format!(
            "Limit {}: {} of {} calls in {} used ({})",
            e.name,
            number(e.used),
            number(e.max),
            e.window,
            e.key
        )
    } else {
        format!(
            "Limit {}: {} of {} used in {}, and this action adds {} ({})",
            e.name,
            number(e.used),
            number(e.max),
            e.window,
            number(e.amount),
            e.key
        )
    }
}

/// A decision before its version-bound fields are added.
struct UnboundDecision {
    outcome: Outcome,
    reason_code: Arc<str>,
    reason: Arc<str>,
    risk_level: RiskLevel,
    risk_rule: Option<Arc<str>>,
    decided_by: DecidedBy,
    approval: Option<Arc<ApprovalRule>>,
    expression_failures: Vec<ExpressionFailure>,
}

impl Engine {
    /// An engine over `policy`. With `None` every action is halted with `MISSING_POLICY`.
    pub fn new(policy: Option<Policy>, runtime_version: &str) -> Engine {
        let policy_version = policy.as_ref().map(|p| p.default_version().into());
        Engine {
            policy,
            profile: ProfileState::None,
            runtime_version: runtime_version.into(),
            policy_version,
            texts: SharedReasons::new(),
        }
    }

    /// Sets the execution profile.
    pub fn with_profile(mut self, profile: ProfileState) -> Engine {
        self.profile = profile;
        self
    }

    /// Overrides `policy_version` (`FARAMESH_POLICY_VERSION`).
    pub fn with_policy_version(mut self, version: Option<&str>) -> Engine {
        if let Some(v) = version {
            self.policy_version = Some(v.into());
        }
        self
    }

    pub fn policy(&self) -> Option<&Policy> {
        self.policy.as_ref()
    }

    pub fn profile(&self) -> &ProfileState {
        &self.profile
    }

    pub fn runtime_version(&self) -> &str {
        &self.runtime_version
    }

    pub fn policy_version(&self) -> Option<&str> {
        self.policy_version.as_deref()
    }

    /// Whether every call of `tool`/`operation` by `agent_id` is halted, whatever its params
    /// and context: the profile halts them all, or it lets the policy decide and the policy
    /// denies them all. False whenever some arguments could be allowed or sent for approval,
    /// so a caller may hide what this says is denied without hiding anything usable.
    pub fn denies_every_call(&self, agent_id: &str, tool: &str, operation: &str) -> bool {
        let Some(policy) = &self.policy else {
            return true;
        };
        match &self.profile {
            ProfileState::Failed(_) => return true,
            ProfileState::Loaded(profile) => {
                // `None`: the policy decides (with a required approval token, the calls that
                // carry one).
                if let Some(halts) = profile.halts_every_call(tool, operation) {
                    return halts;
                }
            }
            ProfileState::None => {}
        }
        policy.denies_every_call(agent_id, tool, operation)
    }

    /// Decides `action`. Never fails: anything unexpected becomes HALT `INTERNAL_ERROR`.
    pub fn decide(&self, action: &ActionRequest) -> Decision {
        match catch_unwind(AssertUnwindSafe(|| self.decide_inner(action))) {
            Ok(decision) => decision,
            Err(_) => self.finish(
                None,
                self.failure(&self.texts.internal_error, self.texts.panic_reason.clone()),
            ),
        }
    }

    fn decide_inner(&self, action: &ActionRequest) -> Decision {
        let hash = match request_hash(
            &action.agent_id,
            &action.tool,
            &action.operation,
            &action.params,
            &action.context,
        ) {
            Ok(h) => h,
            Err(e) => {
                let reason = format!("The action cannot be canonicalized: {e}").into();
                return self.finish(None, self.failure(&self.texts.internal_error, reason));
            }
        };
        let verdict = self.verdict(action);
        self.finish(Some(hash), verdict)
    }

    /// Profile first, then the policy's first matching rule, then deny by default.
    fn verdict(&self, action: &ActionRequest) -> UnboundDecision {
        let t = &self.texts;
        let Some(policy) = &self.policy else {
            return self.failure(&t.missing_policy, t.no_policy_reason.clone());
        };
        let profile = match &self.profile {
            ProfileState::None => None,
            ProfileState::Loaded(p) => Some(p),
            ProfileState::Failed(why) => {
                let reason = format!("The execution profile could not be loaded: {why}").into();
                return self.failure(&t.profile_load_error, reason);
            }
        };
        let s = Subject::new(action);
        let mut failures = Vec::new();
        let risk_rule = policy.risk(&s, &mut failures);
        let computed_risk = risk_rule.map_or(RiskLevel::Low, |r| r.level);
        let risk_rule_name = risk_rule.map(|r| r.name.clone());

        if let Some(profile) = profile {
            let halt = |code: &Arc<str>, reason: Arc<str>, decided_by: DecidedBy| UnboundDecision {
                outcome: Outcome::Halt,
                reason_code: code.clone(),
                reason,
                risk_level: RiskLevel::High,
                risk_rule: None,
                decided_by,
                approval: None,
                expression_failures: Vec::new(),
            };
            match profile.evaluate(&s) {
                Verdict::ToolNotAllowed => {
                    let reason =
                        format!("Tool '{}' is not in profile allowed_tools", action.tool).into();
                    return halt(&t.profile_disallows_tool, reason, DecidedBy::Profile);
                }
                Verdict::MissingApprovalToken => {
                    return halt(
                        &t.profile_missing_control,
                        t.missing_token_reason.clone(),
                        DecidedBy::Profile,
                    );
                }
                Verdict::Rule(rule) => {
                    let decided_by = DecidedBy::ProfileRule {
                        number: rule.number,
                        name: rule.name.clone(),
                    };
                    if rule.outcome == Outcome::Halt {
                        return halt(&rule.reason_code, rule.name.clone(), decided_by);
                    }
                    return UnboundDecision {
                        outcome: rule.outcome,
                        reason_code: rule.reason_code.clone(),
                        reason: rule.name.clone(),
                        risk_level: computed_risk,
                        risk_rule: risk_rule_name,
                        decided_by,
                        approval: None,
                        expression_failures: failures,
                    };
                }
                Verdict::Pass => {}
            }
        }

        let Some(rule) = policy.first_match(&s, &mut failures) else {
            return UnboundDecision {
                outcome: Outcome::Halt,
                reason_code: t.default_deny.clone(),
                reason: t.no_match_reason.clone(),
                risk_level: computed_risk,
                risk_rule: risk_rule_name,
                decided_by: DecidedBy::Default,
                approval: None,
                expression_failures: failures,
            };
        };
        let upgrade =
            rule.effect == Effect::Allow && rule.risk.is_none() && computed_risk == RiskLevel::High;
        let (outcome, reason_code, reason) = match (rule.effect, upgrade) {
            (Effect::Allow, true) => (
                Outcome::Abstain,
                &t.policy_require_approval,
                &rule.upgraded_reason,
            ),
            (Effect::Allow, false) => (Outcome::Execute, &t.policy_allow, &rule.reason),
            (Effect::Deny, _) => (Outcome::Halt, &t.policy_deny, &rule.reason),
            (Effect::RequireApproval, _) => {
                (Outcome::Abstain, &t.policy_require_approval, &rule.reason)
            }
        };
        // A rule that matched only because its expression failed says so. Compared without
        // formatting the rule's name: this runs on every decision that matches a rule.
        let is_this_rule = |name: &str| {
            name.strip_prefix("rule ")
                .and_then(|n| n.parse::<usize>().ok())
                == Some(rule.number)
        };
        let reason = match failures
            .iter()
            .find(|f| f.counted_as_match && is_this_rule(&f.rule))
        {
            Some(f) => format!(
                "{reason} (its `when` expression could not be evaluated, so the rule applies: {})",
                f.error
            )
            .into(),
            None => reason.clone(),
        };
        UnboundDecision {
            outcome,
            reason_code: reason_code.clone(),
            reason,
            // The rule's own risk replaces the computed one; the risk rule is named only if it counted.
            risk_level: rule.risk.unwrap_or(computed_risk),
            risk_rule: if rule.risk.is_some() {
                None
            } else {
                risk_rule_name
            },
            decided_by: DecidedBy::PolicyRule {
                number: rule.number,
                line: rule.line,
                name: rule.name.clone(),
            },
            // What the approvals must be, when the rule itself asks for them.
            approval: if rule.effect == Effect::RequireApproval {
                rule.approval.clone()
            } else {
                None
            },
            expression_failures: failures,
        }
    }

    /// Decides `action` with the policy's limits taken at the usage given (limit name → usage
    /// in the window before this action; 0 for a limit not named): what a recorded decision
    /// replays to, and what a test case with `usage:` expects. Consults no database.
    pub fn decide_at_usage(
        &self,
        action: &ActionRequest,
        usage: &std::collections::HashMap<String, f64>,
    ) -> Decision {
        let decision = self.decide(action);
        if decision.outcome == Outcome::Halt {
            return decision;
        }
        let Some(policy) = &self.policy else {
            return decision;
        };
        let first = policy.limit_charges(action).into_iter().find_map(|c| {
            let used = usage.get(&c.limit).copied().unwrap_or(0.0);
            (!c.fits(used)).then(|| c.exceeded(used))
        });
        match first {
            Some(exceeded) => self.limit_exceeded(decision, exceeded),
            None => decision,
        }
    }

    /// `decision` once the limit `exceeded` bit: reason code `LIMIT_EXCEEDED`, the limit in
    /// `limit`, and HALT when the limit denies or ABSTAIN when it asks for a human. Limits only
    /// tighten: a HALT stays as it was.
    pub fn limit_exceeded(
        &self,
        mut decision: Decision,
        exceeded: crate::policy::limits::LimitExceeded,
    ) -> Decision {
        use crate::policy::limits::OnExceed;
        decision.outcome = match (decision.outcome, exceeded.on_exceed) {
            (Outcome::Halt, _) => return decision,
            (_, OnExceed::Deny) => Outcome::Halt,
            (_, OnExceed::RequireApproval) => Outcome::Abstain,
        };
        if decision.outcome == Outcome::Halt {
            decision.approval = None;
        }
        decision.reason_code = self.texts.limit_exceeded.clone();
        decision.reason = limit_reason(&exceeded).into();
        decision.limit = Some(exceeded);
        decision
    }

    fn failure(&self, code: &Arc<str>, reason: Arc<str>) -> UnboundDecision {
        UnboundDecision {
            outcome: Outcome::Halt,
            reason_code: code.clone(),
            reason,
            risk_level: RiskLevel::High,
            risk_rule: None,
            decided_by: DecidedBy::Failure,
            approval: None,
            expression_failures: Vec::new(),
        }
    }

    /// Adds the version-bound fields.
    fn finish(&self, request_hash: Option<String>, v: UnboundDecision) -> Decision {
        let policy_hash = self.policy.as_ref().map(|p| p.hash_arc().clone());
        let (profile_id, profile_version, profile_hash) = match &self.profile {
            ProfileState::Loaded(p) => (
                Some(p.id().clone()),
                Some(p.version().clone()),
                Some(p.hash().clone()),
            ),
            _ => (None, None, None),
        };
        let provenance_id = provenance_id(
            request_hash.as_deref(),
            policy_hash.as_deref(),
            profile_hash.as_deref(),
            &self.runtime_version,
        );
        Decision {
            outcome: v.outcome,
            reason_code: v.reason_code,
            reason: v.reason,
            risk_level: v.risk_level,
            risk_rule: v.risk_rule,
            decided_by: v.decided_by,
            approval: v.approval,
            expression_failures: v.expression_failures,
            limit: None,
            request_hash,
            policy_hash,
            policy_version: self.policy_version.clone(),
            profile_id,
            profile_version,
            profile_hash,
            runtime_version: self.runtime_version.clone(),
            provenance_id,
        }
    }
}
