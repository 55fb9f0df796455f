//! The notification endpoints: the outbox's delivery state, test messages, and Slack's button
//! callbacks (docs/notifications.md).

use crate::approvals::{decide, Decider};
use crate::auth::{Caller, Permission};
use crate::error::ApiError;
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use faramesh_core::ActionStatus;
use faramesh_notify::signature::{verify_slack, SlackRefusal};
use faramesh_notify::slack;
use faramesh_storage::{NotificationFilter, NotificationRecord, NotificationState};
use serde::Deserialize;
use serde_json::Value;

/// Where Slack sends button callbacks (the app's interactivity request URL).
pub const SLACK_INTERACTIONS: &str = "/v1/integrations/slack/interactions";

pub fn routes(state: AppState) -> Router {
    Router::new()
        .route("/v1/notifications", get(list))
        .route("/v1/notifications/routes", get(route_list))
        .route("/v1/notifications/test", post(test))
        .route(SLACK_INTERACTIONS, post(slack_interactions))
        .with_state(state)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    limit: Option<String>,
    action_id: Option<String>,
    route: Option<String>,
    state: Option<String>,
}

pub fn wire(n: NotificationRecord) -> faramesh_api::Notification {
    let pending = n.state == NotificationState::Pending;
    faramesh_api::Notification {
        id: n.id,
        action_id: n.action_id,
        route: n.route,
        kind: n.kind,
        state: n.state.as_str().to_owned(),
        attempts: n.attempts,
        next_attempt_at: pending.then_some(n.next_attempt_at),
        last_error: n.last_error,
        created_at: n.created_at,
        delivered_at: n.delivered_at,
        payload: n.payload,
    }
}

#[utoipa::path(get, path = "/v1/notifications",
    params(("limit" = Option<i64>, Query, description = "1..1000, default 50"), ("action_id" = Option<String>, Query), ("route" = Option<String>, Query), ("state" = Option<String>, Query, description = "pending | delivered | failed")),
    responses((status = 200, body = Vec<faramesh_api::Notification>), (status = 401, body = faramesh_api::ErrorBody), (status = 422, body = faramesh_api::ErrorBody)))]
pub(crate) async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    caller.require(Permission::Read)?;
    let Query(q) =
        query.map_err(|e| ApiError::Validation(format!("Bad query: {}", e.body_text())))?;
    let limit = match q.limit.as_deref().map(str::trim) {
        None | Some("") => 50,
        Some(text) => text.parse::<usize>().map_err(|_| {
            ApiError::Validation(format!("`limit` must be a whole number, not {text:?}"))
        })?,
    };
    let wanted = match q.state.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(text) => Some(NotificationState::parse(text).ok_or_else(|| {
            ApiError::Validation(format!(
                "`state` must be pending, delivered or failed, not {text:?}"
            ))
        })?),
    };
    let filter = NotificationFilter {
        limit: limit.clamp(1, 1000),
        action_id: q.action_id.filter(|s| !s.is_empty()),
        route: q.route.filter(|s| !s.is_empty()),
        state: wanted,
    };
    let found = state.store.list_notifications(&filter).await?;
    let found: Vec<faramesh_api::Notification> = found.into_iter().map(wire).collect();
    Ok(Json(found).into_response())
}

#[utoipa::path(get, path = "/v1/notifications/routes",
    responses((status = 200, body = Vec<faramesh_api::RouteInfo>), (status = 401, body = faramesh_api::ErrorBody)))]
pub(crate) async fn route_list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Response, ApiError> {
    caller.require(Permission::Read)?;
    let routes = &state.config.notify_routes;
    let list: Vec<faramesh_api::RouteInfo> = routes
        .routes
        .values()
        .map(|r| faramesh_api::RouteInfo {
            name: r.name.clone(),
            kind: r.target.kind().to_owned(),
            escalation: routes.escalation.contains(&r.name),
        })
        .collect();
    Ok(Json(list).into_response())
}

#[utoipa::path(post, path = "/v1/notifications/test", request_body = faramesh_api::TestNotificationRequest,
    responses((status = 200, body = faramesh_api::Notification), (status = 401, body = faramesh_api::ErrorBody), (status = 403, body = faramesh_api::ErrorBody), (status = 404, body = faramesh_api::ErrorBody), (status = 422, body = faramesh_api::ErrorBody)))]
pub(crate) async fn test(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    payload: Result<Json<Value>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    caller.require(Permission::TestNotifications)?;
    let Json(body) = payload?;
    let body: faramesh_api::TestNotificationRequest = serde_json::from_value(body)
        .map_err(|e| ApiError::Validation(format!("The body must be {{route}}: {e}")))?;
    let routes = &state.config.notify_routes;
    if !routes.routes.contains_key(&body.route) {
        let known: Vec<&str> = routes.routes.keys().map(String::as_str).collect();
        return Err(ApiError::NotFound(if known.is_empty() {
            format!(
                "No route {:?}: the server has no routes file (start it with --notify FILE)",
                body.route
            )
        } else {
            format!(
                "No route {:?}; the routes are {}",
                body.route,
                known.join(", ")
            )
        }));
    }
    let ids = state
        .store
        .enqueue_notifications(vec![faramesh_notify::announce::test_notification(
            &body.route,
        )])
        .await?;
    let filter = NotificationFilter {
        limit: 50,
        route: Some(body.route.clone()),
        ..NotificationFilter::default()
    };
    let queued = state
        .store
        .list_notifications(&filter)
        .await?
        .into_iter()
        .find(|n| ids.contains(&n.id))
        .ok_or_else(|| ApiError::Unavailable("the test message vanished from the outbox".into()))?;
    Ok(Json(wire(queued)).into_response())
}

#[utoipa::path(post, path = "/v1/integrations/slack/interactions",
    responses((status = 200, description = "The button press was applied"), (status = 422, body = faramesh_api::ErrorBody), (status = 401, body = faramesh_api::ErrorBody), (status = 403, body = faramesh_api::ErrorBody)))]
pub(crate) async fn slack_interactions(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let (Some(timestamp), Some(signature)) = (
        header("x-slack-request-timestamp"),
        header("x-slack-signature"),
    ) else {
        return ApiError::Unauthorized(SlackRefusal::Unsigned.to_string()).into_response();
    };
    let now = chrono::Utc::now().timestamp();
    let mut refusal = SlackRefusal::BadSignature;
    let mut verified = None;
    for (route, slack) in state.config.notify_routes.slack_routes() {
        match verify_slack(
            slack.signing_secret.expose(),
            timestamp,
            &body,
            signature,
            now,
        ) {
            Ok(()) => {
                verified = Some((route, slack));
                break;
            }
            Err(SlackRefusal::BadSignature) => {}
            Err(other) => refusal = other,
        }
    }
    let Some((route, slack)) = verified else {
        tracing::warn!(reason = %refusal, "a Slack callback was refused");
        return ApiError::Unauthorized(refusal.to_string()).into_response();
    };
    let press = match slack::button_press(&body) {
        Ok(press) => press,
        Err(why) => return ApiError::Validation(why).into_response(),
    };
    let reply = |message: Value| {
        if let Some(url) = press.response_url.clone() {
            // Slack wants its answer within three seconds; the message is updated after it.
            tokio::spawn(async move {
                if let Err(e) = faramesh_notify::Sender::new()
                    .respond_to_slack(&url, &message)
                    .await
                {
                    tracing::warn!(error = %e, "could not update the Slack message");
                }
            });
        }
    };
    let Some(token_name) = slack.users.get(&press.user_id) else {
        let why = format!(
            "Slack user {} is not bound to a Faramesh approver; an admin can add it to the `users` of route {:?}",
            press.user_id, route.name
        );
        reply(slack::ephemeral(&why));
        return ApiError::Forbidden(why).into_response();
    };
    match decide_from_slack(&state, &press, token_name).await {
        Ok(outcome) => {
            reply(outcome);
            StatusCode::OK.into_response()
        }
        Err(e) => {
            reply(slack::ephemeral(&e.to_string()));
            e.into_response()
        }
    }
}

/// Applies a button press as the approver `token_name` (the Slack user's binding): that
/// token must be in use and hold a role that approves; the approval rules apply as to any
/// approval. Returns the message that replaces the pressed one.
async fn decide_from_slack(
    state: &AppState,
    press: &slack::ButtonPress,
    token_name: &str,
) -> Result<Value, ApiError> {
    let token = state
        .store
        .list_tokens()
        .await?
        .into_iter()
        .find(|t| t.name == token_name && t.revoked_at.is_none())
        .ok_or_else(|| {
            ApiError::Forbidden(format!(
                "Slack user {} is bound to token {token_name:?}, which is not in use; an admin can create it or change the binding",
                press.user_id
            ))
        })?;
    if !crate::auth::allows(token.role, Permission::Approve) {
        return Err(ApiError::Forbidden(format!(
            "Slack user {} is bound to token {token_name:?}, whose {} role may not approve or deny",
            press.user_id, token.role
        )));
    }
    let action = state
        .store
        .get_action(&press.action_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("Action {} not found", press.action_id)))?;
    let decider = Decider {
        name: token_name,
        role: token.role,
    };
    let reason = Some(format!("in Slack by user {}", press.user_id));
    let action = decide(state, &action, decider, press.approve, reason).await?;
    let what = format!(
        "{}/{} by {}",
        action.tool, action.operation, action.agent_id
    );
    let outcome = match action.status {
        ActionStatus::PendingApproval => {
            let progress =
                crate::approvals::progress_of(state, std::slice::from_ref(&action)).await?;
            let counts = progress
                .get(&action.id)
                .map(crate::approvals::Progress::counts)
                .unwrap_or_default();
            format!(
                "{token_name} approved {what}: {} of {} approvals; waiting for more",
                counts.given, counts.required
            )
        }
        ActionStatus::Approved => format!("Approved by {token_name}: {what}"),
        other => format!(
            "{} by {token_name}: {what}",
            slack::capitalized(other.as_str())
        ),
    };
    Ok(slack::outcome_message(
        &action.id,
        &outcome,
        action.status == ActionStatus::PendingApproval,
    ))
}
