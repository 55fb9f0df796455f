//! Approvals nobody decided in time: moved to `timeout` once `FARAMESH_APPROVAL_TTL` passes.

use crate::state::AppState;
use faramesh_core::Transition;
use faramesh_storage::{StoreError, TransitionUpdate};
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
