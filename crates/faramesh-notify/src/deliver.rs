//! Delivering one notification to its route.

use crate::routes::{Routes, Slack, Target, Webhook};
use faramesh_storage::NotificationRecord;
use serde_json::Value;
use std::time::Duration;

/// Longest an HTTP delivery may take.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// Sends notifications over HTTP (webhooks, Slack) and SMTP.
#[derive(Debug, Clone)]
pub struct Sender {
    http: reqwest::Client,
}

impl Default for Sender {
    fn default() -> Sender {
        Sender::new()
    }
}

impl Sender {
    pub fn new() -> Sender {
        let http = reqwest::Client::builder()
            .timeout(HTTP_TIMEOUT)
            .user_agent(concat!("faramesh/", env!("CARGO_PKG_VERSION")))
            // A receiver's redirect could send the payload anywhere; a route names its receiver.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        Sender { http }
    }

    /// Delivers `n` through its route in `routes`. The error says why, without any secret.
    pub async fn deliver(&self, routes: &Routes, n: &NotificationRecord) -> Result<(), String> {
        let route = routes
            .routes
            .get(&n.route)
            .ok_or_else(|| format!("route {:?} is no longer in the routes file", n.route))?;
        match &route.target {
            Target::Webhook(hook) => self.webhook(hook, n).await,
            Target::Slack(slack) => self.slack(slack, n).await,
            Target::Email(email) => crate::email::send(email, &n.kind, &n.payload).await,
        }
    }

    async fn webhook(&self, hook: &Webhook, n: &NotificationRecord) -> Result<(), String> {
        let mut body = serde_json::Map::new();
        body.insert("id".into(), Value::String(n.id.clone()));
        if let Value::Object(payload) = &n.payload {
            body.extend(payload.clone());
        }
        let body =
            serde_json::to_vec(&body).map_err(|e| format!("cannot encode the payload: {e}"))?;
        let signature = crate::signature::webhook_signature(
            hook.secret.expose(),
            chrono::Utc::now().timestamp(),
            &body,
        );
        let request = self
            .http
            .post(hook.url.expose())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("X-Faramesh-Event", &n.kind)
            .header("X-Faramesh-Delivery", &n.id)
            .header("X-Faramesh-Signature", signature)
            .body(body);
        self.send(request, "the webhook receiver").await
    }

    async fn slack(&self, slack: &Slack, n: &NotificationRecord) -> Result<(), String> {
        let message = crate::slack::message(&n.kind, &n.payload);
        let request = self.http.post(slack.webhook_url.expose()).json(&message);
        self.send(request, "Slack").await
    }

    /// Posts `message` to a Slack `response_url` (updating the message whose button was
    /// pressed).
    pub async fn respond_to_slack(
        &self,
        response_url: &str,
        message: &Value,
    ) -> Result<(), String> {
        self.send(self.http.post(response_url).json(message), "Slack")
            .await
    }

    async fn send(&self, request: reqwest::RequestBuilder, who: &str) -> Result<(), String> {
        // The URL may carry a token (Slack's webhook URLs do): errors never name it.
        let response = request
            .send()
            .await
            .map_err(|e| format!("cannot reach {who}: {}", e.without_url()))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let body = response.text().await.unwrap_or_default();
        let body: String = body.chars().take(200).collect();
        Err(format!("{who} answered {status}: {}", body.trim()))
    }
}
