//! The delivery worker: takes due notifications from the outbox, delivers them, and records
//! the outcome; a failed delivery is retried with exponential backoff until it is a day old.
//! A receiver that is down delays its notifications, never a decision.

use crate::deliver::Sender;
use crate::routes::Routes;
use faramesh_storage::{Attempt, NotificationRecord, Store};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// Notifications taken at once.
const BATCH: usize = 16;
/// How long a taken notification is this worker's: longer than any delivery takes, so another
/// worker retries it only if this one stopped.
const LEASE: Duration = Duration::from_secs(30);
/// How often the outbox is looked at when nothing wakes the worker (other replicas' writes,
/// retries coming due).
const POLL: Duration = Duration::from_secs(1);
/// The first retry's delay; each next one doubles, up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// After this long a notification is given up.
const GIVE_UP_AFTER: chrono::TimeDelta = chrono::TimeDelta::hours(24);

/// Runs until the task is dropped. `wake` is notified whenever this process writes to the
/// outbox.
pub async fn run(store: Arc<dyn Store>, routes: Arc<Routes>, wake: Arc<Notify>) {
    let sender = Sender::new();
    loop {
        let taken = match take(&*store).await {
            Ok(taken) => taken,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the notification outbox; trying again");
                Vec::new()
            }
        };
        if taken.is_empty() {
            tokio::select! {
                () = wake.notified() => {}
                () = tokio::time::sleep(POLL) => {}
            }
            continue;
        }
        let deliveries = taken.iter().map(|n| deliver(&*store, &routes, &sender, n));
        futures::future::join_all(deliveries).await;
    }
}

async fn take(store: &dyn Store) -> faramesh_storage::StoreResult<Vec<NotificationRecord>> {
    let now = chrono::Utc::now();
    let lease = now + chrono::TimeDelta::from_std(LEASE).unwrap_or_default();
    store
        .claim_notifications(
            &faramesh_core::timestamp::format(now),
            &faramesh_core::timestamp::format(lease),
            BATCH,
        )
        .await
}

async fn deliver(store: &dyn Store, routes: &Routes, sender: &Sender, n: &NotificationRecord) {
    let attempt = match sender.deliver(routes, n).await {
        Ok(()) => {
            tracing::info!(notification = %n.id, route = %n.route, kind = %n.kind, "notification delivered");
            Attempt::Delivered
        }
        Err(error) => next_attempt(n, error, chrono::Utc::now()),
    };
    if let Err(e) = store.finish_notification(&n.id, attempt).await {
        // The lease runs out and the notification is delivered again: at least once.
        tracing::warn!(notification = %n.id, error = %e, "cannot record a delivery; it will be retried");
    }
}

/// What follows a failed attempt at `now`: a retry after the backoff, or giving up.
fn next_attempt(
    n: &NotificationRecord,
    error: String,
    now: chrono::DateTime<chrono::Utc>,
) -> Attempt {
    let age = faramesh_core::timestamp::parse(&n.created_at).map(|created| now - created);
    if age.is_some_and(|age| age >= GIVE_UP_AFTER) {
        tracing::warn!(notification = %n.id, route = %n.route, %error, "notification given up");
        return Attempt::GiveUp { error };
    }
    let exponent = n.attempts.saturating_sub(1).min(16);
    let backoff = FIRST_BACKOFF.saturating_mul(1 << exponent).min(MAX_BACKOFF);
    let at = now + chrono::TimeDelta::from_std(backoff).unwrap_or_default();
    tracing::info!(notification = %n.id, route = %n.route, attempts = n.attempts, %error, retry_in = ?backoff, "notification not delivered; will retry");
    Attempt::Retry {
        at: faramesh_core::timestamp::format(at),
        error,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "a test stops at the first failure")]

    use super::*;
    use faramesh_storage::NotificationState;

    fn record(attempts: u32, created_at: &str) -> NotificationRecord {
        NotificationRecord {
            seq: 1,
            id: "n1".into(),
            action_id: None,
            route: "r".into(),
            kind: "test".into(),
            payload: serde_json::json!({}),
            state: NotificationState::Pending,
            attempts,
            next_attempt_at: created_at.into(),
            last_error: None,
            created_at: created_at.into(),
            delivered_at: None,
        }
    }

    #[test]
    fn retries_back_off_exponentially_and_give_up_after_a_day() {
        let now = faramesh_core::timestamp::parse("2026-01-02T00:00:00.000000Z").unwrap();
        let retry_at = |attempts| match next_attempt(
            &record(attempts, "2026-01-01T12:00:00.000000Z"),
            "down".into(),
            now,
        ) {
            Attempt::Retry { at, .. } => at,
            other => panic!("{other:?}"),
        };
        assert_eq!(retry_at(1), "2026-01-02T00:00:01.000000Z");
        assert_eq!(retry_at(2), "2026-01-02T00:00:02.000000Z");
        assert_eq!(retry_at(4), "2026-01-02T00:00:08.000000Z");
        assert_eq!(retry_at(30), "2026-01-02T00:05:00.000000Z");
        let old = next_attempt(
            &record(3, "2026-01-01T00:00:00.000000Z"),
            "down".into(),
            now,
        );
        assert_eq!(
            old,
            Attempt::GiveUp {
                error: "down".into()
            }
        );
    }
}
