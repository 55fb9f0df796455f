//! The one owner of "an action changed": every action created or transitioned, by a request,
//! an executor, the approval expiry or (on PostgreSQL) another replica, is counted in the
//! metrics and announced on the live stream here.

use arc_swap::ArcSwap;
use faramesh_core::{ActionStatus, EventType, Transition};
use faramesh_events::{EventHub, EventKind};
use faramesh_storage::{
    ActionFilter, ActionRecord, Approval, ApprovalVote, AtVersion, Attempt, Change, Created,
    DueApproval, Escalation, EventRecord, FeedItem, NameColumn, NewAction, NewNotification,
    NewToken, NotificationFilter, NotificationRecord, Store, StoreResult, TokenRecord,
    TransitionUpdate,
};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::policy_files::Loaded;

/// Most started actions whose start time is remembered for their execution time. When full the
/// memory is cleared: an outcome then reads the start time from the ledger instead.
const MAX_REMEMBERED_STARTS: usize = 10_000;

/// The one owner of "an action changed". Every action the server creates and every transition
/// it applies passes through here, whatever caused it (an API request, a built-in executor, the
/// approval expiry), because the server's store is a [`ReportingStore`]. Each change is counted
/// in the metrics once, by the replica that made it, and announced on the live stream: by this
/// process itself, or, when the database is shared, by the change feed ([`Changes::relay`]),
/// which carries every replica's changes, this one's included.
pub struct Changes {
    hub: Arc<EventHub>,
    metrics: Arc<crate::metrics::Metrics>,
    loaded: Arc<ArcSwap<Loaded>>,
    /// False when the change feed announces this process's changes too.
    announce_locally: bool,
    /// When the actions started here began executing (their `started` event), by action id.
    started: Mutex<HashMap<String, String>>,
    /// Woken whenever this process writes to the notification outbox.
    outbox: Arc<tokio::sync::Notify>,
}

impl std::fmt::Debug for Changes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Changes")
            .field("announce_locally", &self.announce_locally)
            .finish_non_exhaustive()
    }
}

impl Changes {
    pub fn new(
        hub: Arc<EventHub>,
        metrics: Arc<crate::metrics::Metrics>,
        loaded: Arc<ArcSwap<Loaded>>,
        announce_locally: bool,
    ) -> Changes {
        Changes {
            hub,
            metrics,
            loaded,
            announce_locally,
            started: Mutex::new(HashMap::new()),
            outbox: Arc::new(tokio::sync::Notify::new()),
        }
    }

    /// Notified whenever this process writes to the notification outbox (the delivery
    /// worker waits on it).
    pub fn outbox_signal(&self) -> Arc<tokio::sync::Notify> {
        self.outbox.clone()
    }

    fn wrote_outbox(&self, wrote: bool) {
        if wrote {
            self.outbox.notify_one();
        }
    }

    /// An approval under a rule was recorded: a transition when it completed the quorum,
    /// else only a change to announce.
    fn approval_recorded(&self, action: &ActionRecord, event: &EventRecord) {
        if event.event_type == EventType::Approved {
            self.transitioned(Transition::Approve, action, event, None);
        } else {
            self.announce(action, event);
        }
    }

    fn announce(&self, action: &ActionRecord, event: &EventRecord) {
        if self.announce_locally {
            self.hub.publish_with_id(
                ledger_id(event.seq),
                EventKind::Updated,
                crate::view::stream_data(action),
            );
        }
    }

    /// A new action was stored by this process.
    fn created(&self, created: &Created) {
        // A replayed idempotent request changed nothing: nothing to count or announce.
        if created.replayed {
            return;
        }
        let action = &created.action;
        let loaded = self.loaded.load();
        self.metrics
            .action_status(action.status, loaded.known.tool(&action.tool));
        if self.announce_locally {
            // The message id is the ledger position of the change's last event, as on a shared
            // database, so a resume older than the buffer continues from the ledger.
            let data = crate::view::stream_data(action);
            match created.events.iter().map(|e| e.seq).max() {
                Some(seq) => self
                    .hub
                    .publish_with_id(ledger_id(seq), EventKind::Created, data),
                None => self.hub.publish(EventKind::Created, data),
            };
        }
    }

    /// A transition was applied by this process. `started_at` is when the action began
    /// executing, for an execution outcome.
    fn transitioned(
        &self,
        transition: Transition,
        action: &ActionRecord,
        event: &EventRecord,
        started_at: Option<&str>,
    ) {
        let loaded = self.loaded.load();
        let tool = loaded.known.tool(&action.tool);
        self.metrics.action_status(action.status, tool);
        match transition {
            Transition::Start | Transition::StartApproved => {
                let mut started = self.started.lock().unwrap_or_else(|e| e.into_inner());
                if started.len() >= MAX_REMEMBERED_STARTS {
                    started.clear();
                }
                started.insert(action.id.clone(), event.created_at.clone());
            }
            Transition::Succeed | Transition::Fail | Transition::ExecutionTimeout => {
                if let Some(seconds) =
                    started_at.and_then(|start| seconds_between(start, &event.created_at))
                {
                    self.metrics
                        .executed(tool, loaded.known.operation(&action.operation), seconds);
                }
            }
            Transition::Approve | Transition::Deny | Transition::ApprovalExpired => {
                let result = match transition {
                    Transition::Approve => "approved",
                    Transition::Deny => "denied",
                    _ => "expired",
                };
                if let Some(seconds) = seconds_between(&action.created_at, &event.created_at) {
                    self.metrics.approval_waited(tool, result, seconds);
                }
            }
            // A withdrawn allowance (nobody was asked, nothing ran), or a request the agent
            // took back before anybody decided it.
            Transition::Revoke | Transition::Withdraw => {}
        }
        self.announce(action, event);
    }

    /// When action `id` began executing, if it started in this process; forgotten once read.
    fn take_started(&self, id: &str) -> Option<String> {
        self.started
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id)
    }

    /// Announces a change from the database's change feed: any replica's, this one's included.
    /// Not counted in the metrics: the replica that made the change counted it.
    pub fn relay(&self, change: Change) {
        let kind = if change.created {
            EventKind::Created
        } else {
            EventKind::Updated
        };
        let data = serde_json::to_value(change.action).unwrap_or(serde_json::Value::Null);
        self.hub.publish_with_id(change.seq, kind, data);
    }
}

pub(crate) fn ledger_id(seq: i64) -> u64 {
    u64::try_from(seq).unwrap_or(0)
}

/// The server's store: every call goes to `inner`, and every action created or transitioned
/// is reported to [`Changes`], so no way of changing an action can skip the live stream or the
/// metrics.
pub struct ReportingStore {
    inner: Arc<dyn Store>,
    changes: Arc<Changes>,
}

impl ReportingStore {
    pub fn new(inner: Arc<dyn Store>, changes: Arc<Changes>) -> ReportingStore {
        ReportingStore { inner, changes }
    }

    /// When action `id` last began executing, from its ledger.
    async fn started_from_ledger(&self, id: &str) -> Option<String> {
        // Only the metric depends on it; a failed read leaves that one observation out.
        let events = self.inner.events(id).await.ok()?;
        events
            .into_iter()
            .rev()
            .find(|e| e.event_type == EventType::Started)
            .map(|e| e.created_at)
    }
}

// Every write goes through the inner store and is then reported; reads pass straight through.
#[async_trait::async_trait]
impl Store for ReportingStore {
    async fn create_action(&self, new: NewAction) -> StoreResult<Created> {
        let notifies = !new.notifications.is_empty();
        let created = self.inner.create_action(new).await?;
        self.changes.created(&created);
        self.changes.wrote_outbox(notifies && !created.replayed);
        Ok(created)
    }

    async fn approve(
        &self,
        id: &str,
        vote: ApprovalVote,
    ) -> StoreResult<(ActionRecord, EventRecord)> {
        let notifies = !vote.notifications.is_empty();
        let (action, event) = self.inner.approve(id, vote).await?;
        self.changes.approval_recorded(&action, &event);
        self.changes
            .wrote_outbox(notifies && event.event_type == EventType::Approved);
        Ok((action, event))
    }

    async fn approvals_of(&self, ids: &[String]) -> StoreResult<HashMap<String, Vec<Approval>>> {
        self.inner.approvals_of(ids).await
    }

    async fn approvals_due(&self, now: &str, limit: usize) -> StoreResult<Vec<DueApproval>> {
        self.inner.approvals_due(now, limit).await
    }

    async fn escalate(
        &self,
        id: &str,
        escalation: Escalation,
    ) -> StoreResult<(ActionRecord, EventRecord)> {
        let notifies = !escalation.notifications.is_empty();
        let (action, event) = self.inner.escalate(id, escalation).await?;
        self.changes.announce(&action, &event);
        self.changes.wrote_outbox(notifies);
        Ok((action, event))
    }

    async fn enqueue_notifications(
        &self,
        notifications: Vec<NewNotification>,
    ) -> StoreResult<Vec<String>> {
        let ids = self.inner.enqueue_notifications(notifications).await?;
        self.changes.wrote_outbox(!ids.is_empty());
        Ok(ids)
    }

    async fn claim_notifications(
        &self,
        now: &str,
        lease_until: &str,
        limit: usize,
    ) -> StoreResult<Vec<NotificationRecord>> {
        self.inner
            .claim_notifications(now, lease_until, limit)
            .await
    }

    async fn finish_notification(&self, id: &str, attempt: Attempt) -> StoreResult<()> {
        self.inner.finish_notification(id, attempt).await
    }

    async fn list_notifications(
        &self,
        filter: &NotificationFilter,
    ) -> StoreResult<Vec<NotificationRecord>> {
        self.inner.list_notifications(filter).await
    }

    async fn charge_limits(
        &self,
        action_id: &str,
        charges: Vec<faramesh_core::policy::limits::LimitCharge>,
        now: chrono::DateTime<chrono::Utc>,
        mode: faramesh_storage::ChargeMode,
    ) -> StoreResult<Option<faramesh_core::policy::limits::LimitExceeded>> {
        self.inner
            .charge_limits(action_id, charges, now, mode)
            .await
    }

    async fn release_limits(&self, action_id: &str) -> StoreResult<()> {
        self.inner.release_limits(action_id).await
    }

    async fn limit_usage(
        &self,
        limits: &[(String, u64)],
        now: chrono::DateTime<chrono::Utc>,
        per_limit: usize,
    ) -> StoreResult<Vec<faramesh_storage::LimitUsage>> {
        self.inner.limit_usage(limits, now, per_limit).await
    }

    async fn shadow_summary(
        &self,
        policy_hash: &str,
        latest: usize,
    ) -> StoreResult<faramesh_storage::ShadowSummary> {
        self.inner.shadow_summary(policy_hash, latest).await
    }

    async fn transition(
        &self,
        id: &str,
        transition: Transition,
        update: TransitionUpdate,
    ) -> StoreResult<(ActionRecord, EventRecord)> {
        let notifies = !update.notifications.is_empty();
        let (action, event) = self.inner.transition(id, transition, update).await?;
        self.changes.wrote_outbox(notifies);
        let started_at = match transition {
            Transition::Succeed | Transition::Fail | Transition::ExecutionTimeout => {
                match self.changes.take_started(id) {
                    Some(at) => Some(at),
                    // Started by another replica, or before a restart.
                    None => self.started_from_ledger(id).await,
                }
            }
            _ => None,
        };
        self.changes
            .transitioned(transition, &action, &event, started_at.as_deref());
        Ok((action, event))
    }

    async fn get_action(&self, id: &str) -> StoreResult<Option<ActionRecord>> {
        self.inner.get_action(id).await
    }

    async fn ids_with_prefix(&self, prefix: &str, limit: usize) -> StoreResult<Vec<String>> {
        self.inner.ids_with_prefix(prefix, limit).await
    }

    async fn list_actions(&self, filter: &ActionFilter) -> StoreResult<Vec<ActionRecord>> {
        self.inner.list_actions(filter).await
    }

    async fn names_containing(&self, column: NameColumn, text: &str) -> StoreResult<Vec<String>> {
        self.inner.names_containing(column, text).await
    }

    async fn events(&self, action_id: &str) -> StoreResult<Vec<EventRecord>> {
        self.inner.events(action_id).await
    }

    async fn log_size(&self) -> StoreResult<u64> {
        self.inner.log_size().await
    }

    async fn log_hashes(&self, indexes: Vec<u64>) -> StoreResult<Vec<faramesh_tlog::Hash>> {
        self.inner.log_hashes(indexes).await
    }

    async fn log_leaves(
        &self,
        start: u64,
        end: u64,
    ) -> StoreResult<Vec<faramesh_storage::LogLeaf>> {
        self.inner.log_leaves(start, end).await
    }

    async fn add_checkpoint(
        &self,
        checkpoint: faramesh_storage::StoredCheckpoint,
    ) -> StoreResult<()> {
        self.inner.add_checkpoint(checkpoint).await
    }

    async fn latest_checkpoint(&self) -> StoreResult<Option<faramesh_storage::StoredCheckpoint>> {
        self.inner.latest_checkpoint().await
    }

    async fn pending_since_before(&self, created_before: &str) -> StoreResult<Vec<String>> {
        self.inner.pending_since_before(created_before).await
    }

    async fn changes_between(
        &self,
        after: u64,
        before: u64,
        limit: usize,
    ) -> StoreResult<Vec<Change>> {
        self.inner.changes_between(after, before, limit).await
    }

    async fn changes_with_seqs(&self, seqs: &[u64]) -> StoreResult<Vec<Change>> {
        self.inner.changes_with_seqs(seqs).await
    }

    async fn last_event_seq(&self) -> StoreResult<u64> {
        self.inner.last_event_seq().await
    }

    async fn count_with_status(&self, status: ActionStatus) -> StoreResult<u64> {
        self.inner.count_with_status(status).await
    }

    async fn ping(&self) -> StoreResult<()> {
        self.inner.ping().await
    }

    fn change_feed(&self, after: u64) -> Option<tokio::sync::mpsc::Receiver<FeedItem>> {
        self.inner.change_feed(after)
    }

    async fn create_token(&self, new: NewToken) -> StoreResult<TokenRecord> {
        self.inner.create_token(new).await
    }

    async fn list_tokens(&self) -> StoreResult<Vec<TokenRecord>> {
        self.inner.list_tokens().await
    }

    async fn revoke_token(&self, name_or_id: &str) -> StoreResult<Option<TokenRecord>> {
        self.inner.revoke_token(name_or_id).await
    }

    async fn token_by_hash(
        &self,
        secret_hash: &str,
    ) -> StoreResult<AtVersion<Option<TokenRecord>>> {
        self.inner.token_by_hash(secret_hash).await
    }

    async fn token_version(&self) -> StoreResult<u64> {
        self.inner.token_version().await
    }

    async fn token_snapshot(&self) -> StoreResult<AtVersion<Vec<TokenRecord>>> {
        self.inner.token_snapshot().await
    }
}

/// Seconds from one stored timestamp to another.
fn seconds_between(start: &str, end: &str) -> Option<f64> {
    let parse = faramesh_core::timestamp::parse;
    let elapsed = parse(end)?.signed_duration_since(parse(start)?);
    Some(elapsed.num_microseconds()? as f64 / 1e6)
}
