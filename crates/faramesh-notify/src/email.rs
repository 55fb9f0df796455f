//! Email: a plain-text and HTML message per notification, sent over SMTP with STARTTLS (or TLS
//! from the first byte for `smtps://`). Mail is never sent unencrypted.

use crate::announce::Kind;
use crate::routes::Email;
use lettre::message::{header::ContentType, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde_json::Value;
use std::time::Duration;

/// Longest a delivery may take, connection and TLS included.
const TIMEOUT: Duration = Duration::from_secs(20);

/// Sends the message of notification `kind` with `payload` to the route's recipients.
pub async fn send(email: &Email, kind: &str, payload: &Value) -> Result<(), String> {
    let message = compose(email, kind, payload)?;
    let transport = transport(email)?;
    transport.send(message).await.map(|_| ()).map_err(|e| {
        format!(
            "the mail server {}:{} refused: {e}",
            email.server.host, email.server.port
        )
    })
}

fn transport(email: &Email) -> Result<AsyncSmtpTransport<Tokio1Executor>, String> {
    let server = &email.server;
    let mut tls = TlsParameters::builder(server.host.clone());
    if let Some(path) = &email.ca_file {
        let pem =
            std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let root = Certificate::from_pem(&pem)
            .map_err(|e| format!("{} is not a PEM certificate: {e}", path.display()))?;
        tls = tls.add_root_certificate(root);
    }
    let tls = tls
        .build_rustls()
        .map_err(|e| format!("cannot set up TLS for {}: {e}", server.host))?;
    let builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(server.host.as_str())
        .port(server.port)
        .timeout(Some(TIMEOUT))
        .tls(if server.implicit_tls {
            Tls::Wrapper(tls)
        } else {
            Tls::Required(tls)
        });
    let builder = match (&email.username, &email.password) {
        (Some(user), Some(password)) => builder.credentials(Credentials::new(
            user.expose().to_owned(),
            password.expose().to_owned(),
        )),
        _ => builder,
    };
    Ok(builder.build())
}

fn text_of<'a>(payload: &'a Value, key: &str) -> &'a str {
    payload
        .get("action")
        .and_then(|a| a.get(key))
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn compose(email: &Email, kind: &str, payload: &Value) -> Result<Message, String> {
    let (subject, lines) = summary(kind, payload);
    let text = lines.join("\n");
    let html = format!(
        "<html><body><h2>{}</h2><pre style=\"font-family: monospace; white-space: pre-wrap\">{}</pre>{}</body></html>",
        html_escape(&subject),
        html_escape(&text),
        payload
            .get("links")
            .and_then(|l| l.get("action"))
            .and_then(Value::as_str)
            .map(|url| format!("<p><a href=\"{0}\">{0}</a></p>", html_escape(url)))
            .unwrap_or_default()
    );
    let from: Mailbox = email
        .from
        .parse()
        .map_err(|e| format!("`from` {:?}: {e}", email.from))?;
    let mut builder = Message::builder().from(from).subject(subject);
    for to in &email.to {
        builder = builder.to(to.parse().map_err(|e| format!("`to` {to:?}: {e}"))?);
    }
    builder
        .multipart(
            MultiPart::alternative()
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_PLAIN)
                        .body(text),
                )
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_HTML)
                        .body(html),
                ),
        )
        .map_err(|e| format!("cannot build the message: {e}"))
}

/// The subject and the lines of the body.
fn summary(kind: &str, payload: &Value) -> (String, Vec<String>) {
    if kind == "test" {
        let message = payload
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("A test message from Faramesh");
        return (
            "[Faramesh] Test message".to_owned(),
            vec![message.to_owned()],
        );
    }
    let what = format!(
        "{}/{}",
        text_of(payload, "tool"),
        text_of(payload, "operation")
    );
    let agent = text_of(payload, "agent_id");
    let subject = match kind {
        k if k == Kind::Requested.as_str() => {
            format!("[Faramesh] Approval needed: {what} by {agent}")
        }
        k if k == Kind::Escalated.as_str() => {
            format!("[Faramesh] Approval still needed (escalated): {what} by {agent}")
        }
        k if k == Kind::Expired.as_str() => {
            format!("[Faramesh] Approval expired: {what} by {agent}")
        }
        _ => format!(
            "[Faramesh] {}: {what} by {agent}",
            text_of(payload, "status")
        ),
    };
    let mut lines = vec![
        format!("Action:    {}", text_of(payload, "id")),
        format!("Tool:      {}", text_of(payload, "tool")),
        format!("Operation: {}", text_of(payload, "operation")),
        format!("Agent:     {agent}"),
        format!("Risk:      {}", text_of(payload, "risk_level")),
        format!("Reason:    {}", text_of(payload, "reason")),
        format!("Status:    {}", text_of(payload, "status")),
    ];
    if let Some(by) = payload.get("by").and_then(Value::as_str) {
        lines.push(format!("By:        {by}"));
    }
    if let Some(params) = payload.get("action").and_then(|a| a.get("params")) {
        lines.push(String::new());
        lines.push("Params:".to_owned());
        lines.push(serde_json::to_string_pretty(params).unwrap_or_default());
    }
    if let Some(url) = payload
        .get("links")
        .and_then(|l| l.get("action"))
        .and_then(Value::as_str)
    {
        lines.push(String::new());
        lines.push(format!("Open: {url}"));
    }
    (subject, lines)
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
