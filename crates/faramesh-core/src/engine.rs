//! The decision engine: profile, then policy, then the version-bound fields. Pure and
//! deterministic; every failure is a HALT (fail closed).

use crate::action::{ActionRequest, Subject};
use crate::decision::{reason_code, DecidedBy, Decision, Outcome, RiskLevel};
use crate::hash::{provenance_id, request_hash};
use crate::policy::{Effect, Policy};
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

/// A policy (or its absence), a profile and a runtime version, ready to decide.
#[derive(Debug, Clone)]
pub struct Engine {
    policy: Option<Policy>,
    profile: ProfileState,
    runtime_version: Arc<str>,
    policy_version: Option<Arc<str>>,
    no_policy_reason: Arc<str>,
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
            no_policy_reason: "No policy is loaded: every action is denied".into(),
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

    /// Decides `action`. Never fails: anything unexpected becomes HALT `INTERNAL_ERROR`.
    pub fn decide(&self, action: &ActionRequest) -> Decision {
        match catch_unwind(AssertUnwindSafe(|| self.decide_inner(action))) {
            Ok(decision) => decision,
            Err(_) => self.failure(
                None,
                reason_code::INTERNAL_ERROR,
                "Internal error while deciding; the action is denied".into(),
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
                return self.failure(
                    None,
                    reason_code::INTERNAL_ERROR,
                    format!("The action cannot be canonicalized: {e}").into(),
                )
            }
        };
        let Some(policy) = &self.policy else {
            return self.failure(
                Some(hash),
                reason_code::MISSING_POLICY,
                self.no_policy_reason.clone(),
            );
        };
        let s = Subject::new(action);
        let risk_rule = policy.risk(&s);
        let computed_risk = risk_rule.map_or(RiskLevel::Low, |r| r.level);
        let risk_rule_name = risk_rule.map(|r| r.name.clone());

        let profile = match &self.profile {
            ProfileState::None => None,
            ProfileState::Loaded(p) => Some(p),
            ProfileState::Failed(why) => {
                return self.failure(
                    Some(hash),
                    reason_code::PROFILE_LOAD_ERROR,
                    format!("The execution profile could not be loaded: {why}").into(),
                )
            }
        };
        if let Some(profile) = profile {
            let halt = |code: &str, reason: Arc<str>, by: DecidedBy| {
                self.finish(
                    Some(hash.clone()),
                    Outcome::Halt,
                    code.into(),
                    reason,
                    RiskLevel::High,
                    None,
                    by,
                )
            };
            match profile.evaluate(&s) {
                Verdict::ToolNotAllowed => {
                    let reason = format!("Tool '{}' is not in profile allowed_tools", action.tool);
                    return halt(
                        reason_code::PROFILE_DISALLOWS_TOOL,
                        reason.into(),
                        DecidedBy::Profile,
                    );
                }
                Verdict::MissingApprovalToken => {
                    return halt(
                        reason_code::PROFILE_MISSING_REQUIRED_CONTROL,
                        "Profile requires approval_token but none provided".into(),
                        DecidedBy::Profile,
                    );
                }
                Verdict::Rule(rule) => {
                    let by = DecidedBy::ProfileRule {
                        number: rule.number,
                        name: rule.name.clone(),
                    };
                    if rule.outcome == Outcome::Halt {
                        return halt(&rule.reason_code, rule.name.clone(), by);
                    }
                    return self.finish(
                        Some(hash),
                        rule.outcome,
                        rule.reason_code.clone(),
                        rule.name.clone(),
                        computed_risk,
                        risk_rule_name,
                        by,
                    );
                }
                Verdict::Pass => {}
            }
        }

        let Some(rule) = policy.first_match(&s) else {
            return self.finish(
                Some(hash),
                Outcome::Halt,
                reason_code::DEFAULT_DENY_NO_MATCH.into(),
                "No rule matched (deny by default)".into(),
                computed_risk,
                risk_rule_name,
                DecidedBy::Default,
            );
        };
        let risk = rule.risk.unwrap_or(computed_risk);
        let upgrade =
            rule.effect == Effect::Allow && rule.risk.is_none() && computed_risk == RiskLevel::High;
        let (outcome, code, reason) = match (rule.effect, upgrade) {
            (Effect::Allow, true) => (
                Outcome::Abstain,
                reason_code::POLICY_REQUIRE_APPROVAL,
                rule.upgraded_reason.clone(),
            ),
            (Effect::Allow, false) => (
                Outcome::Execute,
                reason_code::POLICY_ALLOW,
                rule.reason.clone(),
            ),
            (Effect::Deny, _) => (Outcome::Halt, reason_code::POLICY_DENY, rule.reason.clone()),
            (Effect::RequireApproval, _) => (
                Outcome::Abstain,
                reason_code::POLICY_REQUIRE_APPROVAL,
                rule.reason.clone(),
            ),
        };
        let by = DecidedBy::PolicyRule {
            number: rule.number,
            line: rule.line,
            name: rule.name.clone(),
        };
        // The rule's own risk replaces the computed one; the risk rule is named only if it counted.
        let risk_rule_name = if rule.risk.is_some() {
            None
        } else {
            risk_rule_name
        };
        self.finish(
            Some(hash),
            outcome,
            code.into(),
            reason,
            risk,
            risk_rule_name,
            by,
        )
    }

    fn failure(&self, hash: Option<String>, code: &str, reason: Arc<str>) -> Decision {
        self.finish(
            hash,
            Outcome::Halt,
            code.into(),
            reason,
            RiskLevel::High,
            None,
            DecidedBy::Failure,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn finish(
        &self,
        request_hash: Option<String>,
        outcome: Outcome,
        reason_code: Arc<str>,
        reason: Arc<str>,
        risk_level: RiskLevel,
        risk_rule: Option<String>,
        decided_by: DecidedBy,
    ) -> Decision {
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
            outcome,
            reason_code,
            reason,
            risk_level,
            risk_rule,
            decided_by,
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
