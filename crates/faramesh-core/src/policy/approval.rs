//! The mapping form of `require_approval`: who must approve, how many, for how long.
//!
//! ```yaml
//! require_approval:
//!   approvers: 2            # distinct approvers needed (quorum); default 1
//!   roles: [approver]       # roles, or named tokens ("token:alice"); default any approver or admin
//!   timeout: 30m            # then on_timeout applies
//!   on_timeout: deny        # deny | escalate
//!   notify: [payments-oncall]
//! ```

#![warn(
    clippy::string_slice,
    clippy::indexing_slicing,
    reason = "this module reads input: a bad index must be an error, not a panic"
)]

use super::parse::unknown_keys;
use crate::codes::Code;
use crate::diagnostic::{did_you_mean, Diagnostic, Item};
use crate::yaml::{Kind, Node};
use serde::{Deserialize, Serialize};

/// What the approvals of a `require_approval` rule must be.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalRule {
    /// Distinct approvers needed before the action is approved (the quorum).
    pub approvers: u32,
    /// Who may approve; empty: any token with the approver or admin role.
    pub roles: Vec<Approver>,
    /// How long the approval may wait before `on_timeout` applies, in seconds.
    pub timeout_seconds: Option<u64>,
    pub on_timeout: OnTimeout,
    /// The routes to notify; empty: every route whose match holds.
    pub notify: Vec<String>,
}

impl Default for ApprovalRule {
    /// The seed's `require_approval: true`: one approval by any approver or admin.
    fn default() -> ApprovalRule {
        ApprovalRule {
            approvers: 1,
            roles: Vec::new(),
            timeout_seconds: None,
            on_timeout: OnTimeout::Deny,
            notify: Vec::new(),
        }
    }
}

/// Who may approve.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "name", rename_all = "snake_case")]
pub enum Approver {
    /// Any token with this role (`approver` or `admin`).
    Role(String),
    /// The token of this name (`token:alice`).
    Token(String),
}

/// What happens when nobody decided within the timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnTimeout {
    Deny,
    /// Notify the escalation route, wait one more timeout, then deny.
    Escalate,
}

const KEYS: &[&str] = &["approvers", "roles", "timeout", "on_timeout", "notify"];
/// The roles that may approve at all; an agent never may.
const APPROVING_ROLES: &[&str] = &["approver", "admin"];
/// The largest quorum: more would be a typo, not a rule.
const MAX_APPROVERS: u64 = 100;

/// Reads the mapping form. Every problem is reported, located; `None` when there was one.
pub(crate) fn parse(node: &Node, item: Item, diags: &mut Vec<Diagnostic>) -> Option<ApprovalRule> {
    let entries = node.as_map()?;
    let before = diags.len();
    unknown_keys(entries, KEYS, "in `require_approval`", Some(item), diags);
    let bad = |span, message: String, hint: &str| {
        Diagnostic::error(Code::BadApproval, span, message)
            .hint(hint.to_owned())
            .in_item(Some(item))
    };
    let mut rule = ApprovalRule::default();
    if let Some(value) = node.get("approvers") {
        match value.to_json().ok().and_then(|v| v.as_u64()) {
            Some(n) if (1..=MAX_APPROVERS).contains(&n) => {
                rule.approvers = u32::try_from(n).unwrap_or(1);
            }
            _ => diags.push(bad(
                value.span,
                format!(
                    "`approvers` must be a whole number from 1 to {MAX_APPROVERS}, found {}",
                    value.describe()
                ),
                "the number of distinct people who must approve, e.g. `approvers: 2`",
            )),
        }
    }
    if let Some(value) = node.get("roles") {
        match value.as_seq() {
            None => diags.push(bad(
                value.span,
                format!("`roles` must be a list, found {}", value.describe()),
                "e.g. `roles: [approver]` or `roles: [\"token:alice\", \"token:bob\"]`",
            )),
            Some(items) => {
                for entry in items {
                    match approver(entry) {
                        Ok(a) => rule.roles.push(a),
                        Err(why) => diags.push(bad(
                            entry.span,
                            why,
                            "a role (approver, admin) or a named token (`token:alice`)",
                        )),
                    }
                }
            }
        }
    }
    if let Some(value) = node.get("timeout") {
        match duration_seconds(value) {
            Some(seconds) => rule.timeout_seconds = Some(seconds),
            None => diags.push(bad(
                value.span,
                format!(
                    "`timeout` must be a duration such as 90s, 30m, 2h or 1d, found {}",
                    value.describe()
                ),
                "a number with s, m, h or d, or a whole number of seconds",
            )),
        }
    }
    if let Some(value) = node.get("on_timeout") {
        match value.as_str() {
            Some("deny") => rule.on_timeout = OnTimeout::Deny,
            Some("escalate") => rule.on_timeout = OnTimeout::Escalate,
            other => {
                let found = other.map_or_else(|| value.describe(), |t| format!("{t:?}"));
                let suggestion = other
                    .and_then(|t| did_you_mean(t, &["deny", "escalate"]))
                    .map(|s| format!(" (did you mean `{s}`?)"))
                    .unwrap_or_default();
                diags.push(bad(
                    value.span,
                    format!("`on_timeout` must be deny or escalate, found {found}{suggestion}"),
                    "deny: the action is denied; escalate: the escalation route is told, and it is denied one timeout later",
                ));
            }
        }
        if rule.on_timeout == OnTimeout::Escalate && node.get("timeout").is_none() {
            diags.push(bad(
                value.span,
                "`on_timeout: escalate` needs a `timeout`".to_owned(),
                "say how long to wait before escalating, e.g. `timeout: 30m`",
            ));
        }
    }
    if let Some(value) = node.get("notify") {
        match value.as_seq() {
            None => diags.push(bad(
                value.span,
                format!(
                    "`notify` must be a list of route names, found {}",
                    value.describe()
                ),
                "e.g. `notify: [payments-oncall]`",
            )),
            Some(items) => {
                for entry in items {
                    match entry.as_str().filter(|t| !t.trim().is_empty()) {
                        Some(name) => rule.notify.push(name.to_owned()),
                        None => diags.push(bad(
                            entry.span,
                            format!("a route name must be text, found {}", entry.describe()),
                            "the name of a route in the routes file",
                        )),
                    }
                }
            }
        }
    }
    (diags.len() == before).then_some(rule)
}

fn approver(node: &Node) -> Result<Approver, String> {
    let Some(text) = node.as_str() else {
        return Err(format!(
            "an approver must be text, found {}",
            node.describe()
        ));
    };
    if let Some(name) = text.strip_prefix("token:") {
        return if name.trim().is_empty() {
            Err("`token:` needs a token name, e.g. `token:alice`".to_owned())
        } else {
            Ok(Approver::Token(name.to_owned()))
        };
    }
    if APPROVING_ROLES.contains(&text) {
        return Ok(Approver::Role(text.to_owned()));
    }
    if text == "agent" {
        return Err(
            "the agent role can never approve (an agent must not approve its own actions)"
                .to_owned(),
        );
    }
    let suggestion = did_you_mean(text, APPROVING_ROLES)
        .map(|s| format!(" (did you mean `{s}`?)"))
        .unwrap_or_default();
    Err(format!("{text:?} is not a role that approves{suggestion}"))
}

/// `90s`, `30m`, `2h`, `1d`, or a whole number of seconds; at least one second.
pub(crate) fn duration_seconds(node: &Node) -> Option<u64> {
    let seconds = match &node.kind {
        Kind::Number(_) => node.to_json().ok()?.as_u64()?,
        Kind::String(text) => {
            let text = text.trim();
            let unit_at = text.find(|c: char| !c.is_ascii_digit())?;
            let number: u64 = text.get(..unit_at)?.parse().ok()?;
            let unit = match text.get(unit_at..)? {
                "s" => 1,
                "m" => 60,
                "h" => 3600,
                "d" => 86_400,
                _ => return None,
            };
            number.checked_mul(unit)?
        }
        _ => return None,
    };
    (seconds > 0).then_some(seconds)
}
