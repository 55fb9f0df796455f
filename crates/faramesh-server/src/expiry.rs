//! Approvals nobody decided in time: moved to `timeout` once `FARAMESH_APPROVAL_TTL` passes,
//! and, under an approval rule with a `timeout`, denied or escalated as its `on_timeout` says.

use crate::approvals::{announcements, progress_of, rule_of, Progress};
use crate::state::AppState;
use faramesh_core::policy::{Effect, OnTimeout};
use faramesh_core::{ActionStatus, Transition};
use faramesh_notify::Kind;
use faramesh_storage::{ActionRecord, Escalation, StoreError, TransitionUpdate};
use serde_json::json;
use std::time::Duration;

/// Moves actions pending approval for longer than `ttl` to `timeout`, with a `timeout` event.
/// Returns how many expired.
pub async fn expire_approvals(state: &AppState, ttl: Duration) -> Result<usize, StoreError> {
    let ttl_chrono = chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX);
    let cutoff = chrono::Utc::now()
        .checked_sub_signed(ttl_chrono)
        .unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC);
    let cutoff = faramesh_core::timestamp::format(cutoff);
    let mut expired = 0;
    for id in state.store.pending_since_before(&cutoff).await? {
        let reason = format!(
            "Approval expired after {} s without a decision",
            ttl.as_secs_f64()
        );
        let notifications = match state.store.get_action(&id).await? {
            Some(action) => {
                told(state, Kind::Expired, action, ActionStatus::Timeout, &reason).await?
            }
            None => Vec::new(),
        };
        let update = TransitionUpdate {
            reason: Some(reason.clone()),
            meta: json!({"reason": reason}),
            notifications,
            ..Default::default()
        };
        // Through the server's store, which counts the change and announces it on the stream.
        match state
            .store
            .transition(&id, Transition::ApprovalExpired, update)
            .await
        {
            Ok(_) => expired += 1,
            // Decided in the meantime: nothing to expire.
            Err(StoreError::Conflict { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(expired)
}

/// What the routes are told of `action` once it has `status` for `reason`.
async fn told(
    state: &AppState,
    kind: Kind,
    mut action: ActionRecord,
    status: ActionStatus,
    reason: &str,
) -> Result<Vec<faramesh_storage::NewNotification>, StoreError> {
    if state.config.notify_routes.routes.is_empty() {
        return Ok(Vec::new());
    }
    let progress = progress_of(state, std::slice::from_ref(&action))
        .await
        .map_err(|e| StoreError::unavailable(e.to_string()))?;
    let approvals = progress
        .get(&action.id)
        .map(Progress::counts)
        .unwrap_or_default();
    action.status = status;
    if status == ActionStatus::Denied {
        action.decision = Some(Effect::Deny);
    }
    action.reason = Some(reason.to_owned());
    Ok(announcements(state, kind, &action, approvals, None))
}

/// Most due approvals handled per look.
const DUE_PER_LOOK: usize = 100;

/// Applies `on_timeout` to every pending action whose rule's timeout has passed: `deny`
/// denies it; `escalate` tells the escalation routes and gives it one more timeout, after
/// which it is denied. Returns how many were denied or escalated.
pub async fn apply_timeouts(state: &AppState) -> Result<usize, StoreError> {
    let now = chrono::Utc::now();
    let mut handled = 0;
    for due in state
        .store
        .approvals_due(&faramesh_core::timestamp::format(now), DUE_PER_LOOK)
        .await?
    {
        let Some(action) = state.store.get_action(&due.id).await? else {
            continue;
        };
        let Some(rule) = rule_of(&action) else {
            continue;
        };
        let timeout = rule.timeout_seconds.unwrap_or(0);
        let wait = describe(timeout);
        let result = if rule.on_timeout == OnTimeout::Escalate && !due.escalated {
            let reason = format!("No decision within {wait}; escalated");
            let notifications = told(
                state,
                Kind::Escalated,
                action.clone(),
                ActionStatus::PendingApproval,
                &reason,
            )
            .await?;
            let seconds = i64::try_from(timeout).unwrap_or(i64::MAX);
            let deadline = now
                .checked_add_signed(chrono::TimeDelta::try_seconds(seconds).unwrap_or_default())
                .unwrap_or(now);
            let routes = state.config.notify_routes.escalation.clone();
            let escalation = Escalation {
                deadline: faramesh_core::timestamp::format(deadline),
                meta: json!({"reason": reason, "routes": routes}),
                notifications,
            };
            state
                .store
                .escalate(&action.id, escalation)
                .await
                .map(|_| ())
        } else {
            let reason = if due.escalated {
                format!("No decision within {wait} after escalating; denied")
            } else {
                format!("No decision within {wait}; denied")
            };
            let notifications = told(
                state,
                Kind::Expired,
                action.clone(),
                ActionStatus::Denied,
                &reason,
            )
            .await?;
            let update = TransitionUpdate {
                decision: Some(Effect::Deny),
                reason: Some(reason.clone()),
                result: None,
                meta: json!({"reason": reason, "by": null, "timed_out": true}),
                notifications,
            };
            state
                .store
                .transition(&action.id, Transition::Deny, update)
                .await
                .map(|_| ())
        };
        match result {
            Ok(()) => handled += 1,
            // Decided, or handled by another replica, in the meantime.
            Err(StoreError::Conflict { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(handled)
}

/// `90 s`, `30 min`, `2 h`: how long a timeout was, as people say it.
fn describe(seconds: u64) -> String {
    match seconds {
        s if s % 3600 == 0 && s > 0 => format!("{} h", s / 3600),
        s if s % 60 == 0 && s > 0 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}

/// How often rule timeouts are looked at.
const TIMEOUT_LOOK_EVERY: Duration = Duration::from_millis(500);

/// Checks for expired approvals periodically, for as long as the server runs.
pub fn spawn_approval_expiry(state: AppState, ttl: Duration) {
    let every = (ttl / 4).clamp(Duration::from_millis(200), Duration::from_secs(10));
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            match expire_approvals(&state, ttl).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(expired = n, "approvals expired"),
                Err(e) => tracing::warn!(error = %e, "could not expire approvals"),
            }
        }
    });
}

/// Applies approval rules' timeouts periodically, for as long as the server runs.
pub fn spawn_rule_timeouts(state: AppState) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(TIMEOUT_LOOK_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match apply_timeouts(&state).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(count = n, "approval timeouts applied"),
                Err(e) => tracing::warn!(error = %e, "could not apply approval timeouts"),
            }
        }
    });
}
