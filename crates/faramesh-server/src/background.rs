//! Work the server does on its own: expiring approvals nobody decided, seeding demo actions.

use crate::routes::submit_action;
use crate::state::AppState;
use crate::validate::Submission;
use faramesh_core::json::ReceivedObject;
use faramesh_core::Transition;
use faramesh_storage::{ActionFilter, StoreError, TransitionUpdate};
use serde_json::{json, Map, Value};
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
        let update = TransitionUpdate {
            reason: Some(reason.clone()),
            meta: json!({"reason": reason}),
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

/// Seeds a few demonstration actions, marked `demo`, into an empty database.
pub async fn seed_demo(state: &AppState) -> Result<usize, crate::error::ApiError> {
    let existing = state
        .store
        .list_actions(&ActionFilter {
            limit: 1,
            ..Default::default()
        })
        .await?;
    if !existing.is_empty() {
        return Ok(0);
    }
    let samples: [(&str, &str, Value); 4] = [
        (
            "http",
            "get",
            json!({"url": "https://api.example.com/status"}),
        ),
        ("shell", "run", json!({"cmd": "ls -la /var/log"})),
        (
            "stripe",
            "refund",
            json!({"amount": 2500, "currency": "usd", "charge": "ch_demo"}),
        ),
        ("shell", "run", json!({"cmd": "rm -rf /tmp/build-cache"})),
    ];
    let mut context = Map::new();
    context.insert("demo".into(), Value::Bool(true));
    let composed = |map: Map<String, Value>| {
        ReceivedObject::from_map(map)
            .map_err(|e| crate::error::ApiError::Validation(format!("demo action: {e}")))
    };
    for (tool, operation, params) in &samples {
        let Value::Object(params) = params.clone() else {
            continue;
        };
        let submission = Submission {
            agent_id: "demo-agent".into(),
            tool: (*tool).into(),
            operation: (*operation).into(),
            params: composed(params)?,
            context: composed(context.clone())?,
        };
        submit_action(state, submission, None, true).await?;
    }
    Ok(samples.len())
}

/// What the policy and profile files held at the last look.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FileFingerprint(Vec<Option<Vec<u8>>>);

impl FileFingerprint {
    /// The current contents of the policy and profile files (`None` for a missing file).
    pub fn read(config: &crate::ServerConfig) -> FileFingerprint {
        FileFingerprint(vec![
            std::fs::read(&config.policy_file).ok(),
            std::fs::read(&config.profile_file).ok(),
        ])
    }
}

/// The result of one hot-reload check.
#[derive(Debug, PartialEq, Eq)]
pub enum ReloadCheck {
    Unchanged,
    Reloaded,
    /// The files changed but do not load; the last good policy stays active.
    Rejected(String),
}

/// Reloads policy and profile if their files changed since `seen`.
pub fn reload_if_changed(state: &AppState, seen: &mut FileFingerprint) -> ReloadCheck {
    let now = FileFingerprint::read(&state.config);
    if now == *seen {
        return ReloadCheck::Unchanged;
    }
    *seen = now;
    match crate::policy_files::load(&state.config) {
        Ok(loaded) => {
            state.loaded.store(std::sync::Arc::new(loaded));
            state.metrics.reload(true);
            ReloadCheck::Reloaded
        }
        Err(e) => {
            state.metrics.reload(false);
            ReloadCheck::Rejected(e.to_string())
        }
    }
}

/// Watches the policy and profile files, reloading on every change.
pub fn spawn_hot_reload(state: AppState, every: Duration) {
    tokio::spawn(async move {
        let mut seen = FileFingerprint::read(&state.config);
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            match reload_if_changed(&state, &mut seen) {
                ReloadCheck::Unchanged => {}
                ReloadCheck::Reloaded => tracing::info!("policy files changed: reloaded"),
                ReloadCheck::Rejected(why) => {
                    tracing::error!("policy files changed but were rejected; the last good policy stays active:\n{why}")
                }
            }
        }
    });
}
