//! Slack: the Block Kit messages of a route, and the button callbacks Slack sends back.

#![warn(
    clippy::string_slice,
    clippy::indexing_slicing,
    reason = "this module reads input: a bad index must be an error, not a panic"
)]

use crate::announce::Kind;
use serde_json::{json, Value};

/// Most characters of params shown in a message (a section holds at most 3,000).
const MAX_PARAMS_CHARS: usize = 2_000;

/// Slack's mrkdwn needs only these three escaped.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn field<'a>(payload: &'a Value, key: &str) -> &'a str {
    payload
        .get("action")
        .and_then(|a| a.get(key))
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// The message a route posts for a notification `payload` (see `announce`).
pub fn message(kind: &str, payload: &Value) -> Value {
    if kind == "test" {
        let text = payload
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("A test message from Faramesh");
        return json!({"text": text});
    }
    let id = field(payload, "id");
    let (tool, operation, agent) = (
        field(payload, "tool"),
        field(payload, "operation"),
        field(payload, "agent_id"),
    );
    let risk = field(payload, "risk_level");
    let what = format!(
        "{}/{} by {}",
        escape(tool),
        escape(operation),
        escape(agent)
    );
    let approvals = approvals_line(payload);
    let link = payload
        .get("links")
        .and_then(|l| l.get("action"))
        .and_then(Value::as_str)
        .map(|url| format!(" · <{}|Open in Faramesh>", escape(url)))
        .unwrap_or_default();
    if !Kind::asks_for_decision(kind) {
        let status = field(payload, "status");
        let by = payload.get("by").and_then(Value::as_str);
        let outcome = match (kind, by) {
            (k, _) if k == Kind::Expired.as_str() => "Expired: nobody decided in time".to_owned(),
            (_, Some(by)) => format!("{} by {}", capitalized(status), escape(by)),
            (_, None) => capitalized(status),
        };
        let text = format!("{outcome}: {what}");
        return json!({
            "text": text,
            "blocks": [
                {"type": "section", "text": {"type": "mrkdwn", "text": format!("*{outcome}*\n{what}")}},
                {"type": "context", "elements": [{"type": "mrkdwn", "text": format!("Action `{}`{link}", escape(id))}]},
            ],
        });
    }
    let title = if kind == Kind::Escalated.as_str() {
        "Approval still needed (escalated)"
    } else {
        "Approval needed"
    };
    let params = payload
        .get("action")
        .and_then(|a| a.get("params"))
        .map(|p| serde_json::to_string_pretty(p).unwrap_or_default())
        .unwrap_or_default();
    let mut shown: String = params.chars().take(MAX_PARAMS_CHARS).collect();
    if shown.len() < params.len() {
        shown.push_str("\n…");
    }
    let reason = field(payload, "reason");
    json!({
        "text": format!("{title}: {what} ({risk} risk)"),
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": title}},
            {"type": "section", "fields": [
                {"type": "mrkdwn", "text": format!("*Tool*\n`{}`", escape(tool))},
                {"type": "mrkdwn", "text": format!("*Operation*\n`{}`", escape(operation))},
                {"type": "mrkdwn", "text": format!("*Agent*\n{}", escape(agent))},
                {"type": "mrkdwn", "text": format!("*Risk*\n{}", escape(risk))},
            ]},
            {"type": "section", "text": {"type": "mrkdwn", "text": format!("*Reason*\n{}", escape(reason))}},
            {"type": "section", "text": {"type": "mrkdwn", "text": format!("*Params*\n```{}```", escape(&shown))}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": format!("{approvals}Action `{}`{link}", escape(id))}]},
            decision_buttons(id),
        ],
    })
}

/// `text` with its first letter upper case (`approved` → `Approved`).
pub fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

fn approvals_line(payload: &Value) -> String {
    let number = |key: &str| {
        payload
            .get("action")
            .and_then(|a| a.get(key))
            .and_then(Value::as_u64)
            .unwrap_or(0)
    };
    let (given, required) = (number("approvals"), number("approvals_required"));
    if required > 1 {
        format!("{given} of {required} approvals · ")
    } else {
        String::new()
    }
}

fn decision_buttons(id: &str) -> Value {
    json!({"type": "actions", "block_id": "faramesh_decision", "elements": [
        {"type": "button", "action_id": "approve", "style": "primary", "value": id,
         "text": {"type": "plain_text", "text": "Approve"}},
        {"type": "button", "action_id": "deny", "style": "danger", "value": id,
         "text": {"type": "plain_text", "text": "Deny"}},
    ]})
}

/// A button pressed in Slack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ButtonPress {
    /// Slack's id of the user who pressed it.
    pub user_id: String,
    pub approve: bool,
    /// The Faramesh action id the button carries.
    pub action_id: String,
    /// Where to post the updated message.
    pub response_url: Option<String>,
}

/// Reads a `block_actions` callback: a form with one field, `payload`, holding JSON.
pub fn button_press(body: &[u8]) -> Result<ButtonPress, String> {
    let payload = url::form_urlencoded::parse(body)
        .find(|(k, _)| k == "payload")
        .map(|(_, v)| v.into_owned())
        .ok_or("the body has no `payload` field; Slack sends its callbacks as a form with one")?;
    let payload: Value =
        serde_json::from_str(&payload).map_err(|e| format!("`payload` is not JSON: {e}"))?;
    let kind = payload.get("type").and_then(Value::as_str).unwrap_or("");
    if kind != "block_actions" {
        return Err(format!(
            "only block_actions callbacks are handled, not {kind:?}"
        ));
    }
    let user_id = payload
        .get("user")
        .and_then(|u| u.get("id"))
        .and_then(Value::as_str)
        .ok_or("the callback names no user")?
        .to_owned();
    let pressed = payload
        .get("actions")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
        .ok_or("the callback names no button")?;
    let approve = match pressed.get("action_id").and_then(Value::as_str) {
        Some("approve") => true,
        Some("deny") => false,
        other => {
            return Err(format!(
                "unknown button {other:?}; Faramesh's buttons are approve and deny"
            ))
        }
    };
    let action_id = pressed
        .get("value")
        .and_then(Value::as_str)
        .filter(|v| !v.is_empty())
        .ok_or("the button carries no action id")?
        .to_owned();
    let response_url = payload
        .get("response_url")
        .and_then(Value::as_str)
        .map(str::to_owned);
    Ok(ButtonPress {
        user_id,
        approve,
        action_id,
        response_url,
    })
}

/// The message that replaces the one whose button was pressed: the outcome, and the buttons
/// again while the action still waits for more approvals.
pub fn outcome_message(action_id: &str, outcome: &str, still_pending: bool) -> Value {
    let mut blocks =
        vec![json!({"type": "section", "text": {"type": "mrkdwn", "text": escape(outcome)}})];
    if still_pending {
        blocks.push(decision_buttons(action_id));
    }
    json!({"replace_original": true, "text": outcome, "blocks": blocks})
}

/// A reply only the user who pressed the button sees.
pub fn ephemeral(text: &str) -> Value {
    json!({"response_type": "ephemeral", "replace_original": false, "text": text})
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::indexing_slicing,
        reason = "a test stops at the first failure"
    )]

    use super::*;

    fn payload() -> Value {
        json!({"type": "approval.requested", "action": {"id": "a1", "tool": "stripe", "operation": "refund",
            "agent_id": "bot<1>", "risk_level": "high", "reason": "big", "params": {"amount": 5000},
            "approvals": 1, "approvals_required": 2}, "links": {"action": "https://f.example/#/action/a1"}})
    }

    #[test]
    fn a_request_gets_approve_and_deny_buttons_carrying_the_action_id() {
        let request = message("approval.requested", &payload());
        let blocks = request["blocks"].as_array().unwrap();
        let buttons = &blocks.last().unwrap()["elements"];
        assert_eq!(buttons[0]["action_id"], "approve");
        assert_eq!(buttons[1]["action_id"], "deny");
        assert_eq!(buttons[0]["value"], "a1");
        let text = request.to_string();
        assert!(text.contains("bot&lt;1&gt;"), "mrkdwn is escaped: {text}");
        assert!(text.contains("1 of 2 approvals"));
        assert!(text.contains("<https://f.example/#/action/a1|Open in Faramesh>"));
        let decided = message(
            "approval.decided",
            &json!({"action": {"id": "a1", "status": "approved"}, "by": "alice"}),
        );
        assert!(decided["text"]
            .as_str()
            .unwrap()
            .starts_with("Approved by alice"));
        assert!(
            !decided.to_string().contains("\"approve\""),
            "no buttons once decided"
        );
    }

    #[test]
    fn a_button_press_reads_from_slacks_form_body() {
        let json = json!({"type": "block_actions", "user": {"id": "U1"}, "response_url": "https://hooks.slack.com/actions/x",
            "actions": [{"action_id": "deny", "value": "a1"}]});
        let body: String = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("payload", &json.to_string())
            .finish();
        let press = button_press(body.as_bytes()).unwrap();
        assert_eq!(
            press,
            ButtonPress {
                user_id: "U1".into(),
                approve: false,
                action_id: "a1".into(),
                response_url: Some("https://hooks.slack.com/actions/x".into())
            }
        );
        assert!(button_press(b"payload=%7B%7D")
            .unwrap_err()
            .contains("block_actions"));
        assert!(button_press(b"nothing=1")
            .unwrap_err()
            .contains("no `payload`"));
    }
}
