//! Storage of actions and their hash-chained ledger events, behind one trait.
//!
//! Guarantees every implementation keeps:
//! - an action and the events of the same request are written in one transaction: a caller
//!   that got `Ok` has them durably, and a crash never leaves one without the other;
//! - status changes are conditional updates on the current status, so of two racing
//!   transitions exactly one wins and the other gets [`StoreError::Conflict`];
//! - events are only ever appended; each carries `prev_hash`/`record_hash` (docs/audit.md) computed
//!   in the transaction that writes it.

mod action_id;
mod approvals;
mod decided;
mod decode;
mod limits;
mod listing;
mod log;
mod model;
mod outbox;
pub mod postgres;
mod shadow;
pub mod sqlite;
mod tokens;

pub use action_id::new_action_id;
pub use approvals::{Approval, ApprovalVote, DueApproval, Escalation};
pub use decided::Received;
pub use limits::{ChargeMode, LimitUsage};
pub use listing::MAX_SEARCH_NAMES;
pub use log::{LogLeaf, StoredCheckpoint, MAX_LEAVES};
pub use model::{
    now_timestamp, ActionFilter, ActionRecord, ActionSummary, Change, Created, EventRecord,
    FeedItem, Name, NameColumn, NewAction, NewEvent, TransitionUpdate,
};
pub use outbox::{
    Attempt, NewNotification, NotificationFilter, NotificationRecord, NotificationState,
};
pub use postgres::PostgresStore;
pub use shadow::{OutcomePair, ShadowDisagreement, ShadowExample, ShadowSummary};
pub use sqlite::{LedgerFile, SqliteStore};
pub use tokens::{AtVersion, NewToken, Role, TokenChange, TokenRecord};

use async_trait::async_trait;
use faramesh_core::{ActionStatus, Transition};

/// What can go wrong in storage, as a caller must act on it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No action with that id.
    #[error("no action with id {0}")]
    NotFound(String),
    /// The action is not in a status the transition may start from.
    #[error("action {id} is {status}, so it cannot be {attempted}")]
    Conflict {
        id: String,
        status: ActionStatus,
        attempted: &'static str,
    },
    /// This identity already approved the action; an approval counts once per identity.
    #[error("{by} already approved action {id}; another approver is needed")]
    AlreadyApproved { id: String, by: String },
    /// The idempotency key was used before with a different request body.
    #[error("idempotency key {key} was already used for action {action_id} with a different body")]
    IdempotencyMismatch { key: String, action_id: String },
    /// The database cannot be used right now (locked, disk full, connection lost).
    #[error("the database is unavailable: {reason}")]
    Unavailable {
        /// What went wrong and what to do, for the client.
        reason: String,
        #[source]
        cause: Option<Cause>,
    },
    /// The database itself refused (locked, disk full, read-only, an I/O error): no write can
    /// succeed until that is mended, whatever the request.
    #[error("the database is unavailable: {reason}")]
    Refused {
        reason: String,
        #[source]
        cause: Cause,
    },
    /// An API token in use already has that name.
    #[error("a token named {0:?} already exists; revoke it first or choose another name")]
    TokenNameTaken(String),
    /// Stored data that cannot be read back (a bug or outside tampering).
    #[error("stored data is not valid: {0}")]
    Corrupt(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// The error underneath a [`StoreError`], kept for logs and callers that look at the chain.
pub type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

impl StoreError {
    /// The database is unavailable for `reason`, with nothing underneath.
    pub fn unavailable(reason: impl Into<String>) -> StoreError {
        StoreError::Unavailable {
            reason: reason.into(),
            cause: None,
        }
    }

    /// The database is unavailable for `reason`, because of `cause`.
    pub fn unavailable_because(
        reason: impl Into<String>,
        cause: impl std::error::Error + Send + Sync + 'static,
    ) -> StoreError {
        StoreError::Unavailable {
            reason: reason.into(),
            cause: Some(Box::new(cause)),
        }
    }
}

/// The storage every backend provides.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Writes a new action and its events in one transaction. With an idempotency key that was
    /// used before with the same body hash, returns the original action instead
    /// (`Created::replayed`).
    async fn create_action(&self, new: NewAction) -> StoreResult<Created>;

    /// Applies `transition` if the action's status allows it at that instant, appending its
    /// event to the chain in the same transaction.
    async fn transition(
        &self,
        id: &str,
        transition: Transition,
        update: TransitionUpdate,
    ) -> StoreResult<(ActionRecord, EventRecord)>;

    async fn get_action(&self, id: &str) -> StoreResult<Option<ActionRecord>>;

    /// Records `vote.by`'s approval of a pending action, in one transaction: the action becomes
    /// `approved` (event `approved`, with the vote's notifications) when this approval makes
    /// `vote.quorum` distinct ones, and otherwise stays pending (event `approval_recorded`).
    /// An identity that already approved gets [`StoreError::AlreadyApproved`]; an action that is
    /// not pending, [`StoreError::Conflict`].
    async fn approve(
        &self,
        id: &str,
        vote: ApprovalVote,
    ) -> StoreResult<(ActionRecord, EventRecord)>;

    /// The approvals recorded with [`Store::approve`] for each of `ids` that has any, oldest
    /// first.
    async fn approvals_of(
        &self,
        ids: &[String],
    ) -> StoreResult<std::collections::HashMap<String, Vec<Approval>>>;

    /// Pending actions whose approval deadline is at or before `now`, oldest deadline first,
    /// at most `limit`. Forgets the deadlines of actions decided since.
    async fn approvals_due(&self, now: &str, limit: usize) -> StoreResult<Vec<DueApproval>>;

    /// Escalates a pending action that was not escalated yet: its deadline moves to
    /// `escalation.deadline`, with an `escalated` event and the escalation's notifications.
    /// [`StoreError::Conflict`] when it is no longer pending or was escalated already.
    async fn escalate(
        &self,
        id: &str,
        escalation: Escalation,
    ) -> StoreResult<(ActionRecord, EventRecord)>;

    /// Writes notifications that no event causes and no action is about (`faramesh notify
    /// test`); returns their ids.
    async fn enqueue_notifications(
        &self,
        notifications: Vec<NewNotification>,
    ) -> StoreResult<Vec<String>>;

    /// Takes at most `limit` pending notifications due at `now` for delivery: each one's next
    /// attempt moves to `lease_until` and its attempts go up by one, so no other worker takes
    /// it unless this one never reports back. On PostgreSQL, workers of several replicas never
    /// take the same one at once.
    async fn claim_notifications(
        &self,
        now: &str,
        lease_until: &str,
        limit: usize,
    ) -> StoreResult<Vec<NotificationRecord>>;

    /// Records how a delivery attempt of notification `id` ended.
    async fn finish_notification(&self, id: &str, attempt: Attempt) -> StoreResult<()>;

    /// Checks what action `action_id` counts against the policy's limits at `now`, each over
    /// its sliding window, atomically with every other check of the same limit and key on any
    /// replica: `mode` says whether the charges are counted. Returns the first charge that does
    /// not fit, with the usage found; then nothing is counted (unless `mode` counts anyway).
    async fn charge_limits(
        &self,
        action_id: &str,
        charges: Vec<faramesh_core::policy::limits::LimitCharge>,
        now: chrono::DateTime<chrono::Utc>,
        mode: ChargeMode,
    ) -> StoreResult<Option<faramesh_core::policy::limits::LimitExceeded>>;

    /// Forgets what action `action_id` counted (its submission was not stored after all).
    async fn release_limits(&self, action_id: &str) -> StoreResult<()>;

    /// The usage of each `(limit, window in seconds)` at `now`, by key, most used first, at
    /// most `per_limit` keys each.
    async fn limit_usage(
        &self,
        limits: &[(String, u64)],
        now: chrono::DateTime<chrono::Utc>,
        per_limit: usize,
    ) -> StoreResult<Vec<LimitUsage>>;

    /// The disagreements recorded for the shadow policy with `policy_hash`: counted by
    /// outcome pair, and the `latest` newest with their actions.
    async fn shadow_summary(&self, policy_hash: &str, latest: usize) -> StoreResult<ShadowSummary>;

    /// Notifications matching `filter`, newest first.
    async fn list_notifications(
        &self,
        filter: &NotificationFilter,
    ) -> StoreResult<Vec<NotificationRecord>>;

    /// Ids starting with `prefix`, at most `limit`.
    async fn ids_with_prefix(&self, prefix: &str, limit: usize) -> StoreResult<Vec<String>>;

    /// Actions matching `filter`, newest first. `filter.names` holds at most
    /// [`MAX_SEARCH_NAMES`] names.
    async fn list_actions(&self, filter: &ActionFilter) -> StoreResult<Vec<ActionRecord>>;

    /// The distinct names of `column` that contain `text`, ignoring case, in order. Read from
    /// the column's index one name at a time, so the cost follows the number of distinct
    /// names, not of actions.
    async fn names_containing(&self, column: NameColumn, text: &str) -> StoreResult<Vec<String>>;

    /// The events of one action, oldest first, each with its place in the Merkle log.
    async fn events(&self, action_id: &str) -> StoreResult<Vec<EventRecord>>;

    /// How many leaves the Merkle log holds: every committed event is one.
    async fn log_size(&self) -> StoreResult<u64>;

    /// The log's stored hashes at these indexes (`faramesh_tlog::tree`'s layout), in order.
    async fn log_hashes(&self, indexes: Vec<u64>) -> StoreResult<Vec<faramesh_tlog::Hash>>;

    /// The log's leaves from `start` up to `end` (exclusive), at most [`MAX_LEAVES`].
    async fn log_leaves(&self, start: u64, end: u64) -> StoreResult<Vec<LogLeaf>>;

    /// Keeps a signed checkpoint. One of the same size kept before stays: signatures are
    /// deterministic, so with the same key it is the same note.
    async fn add_checkpoint(&self, checkpoint: StoredCheckpoint) -> StoreResult<()>;

    /// The kept checkpoint of the largest tree.
    async fn latest_checkpoint(&self) -> StoreResult<Option<StoredCheckpoint>>;

    /// Ids of actions pending approval since before `created_before` (ISO-8601).
    async fn pending_since_before(&self, created_before: &str) -> StoreResult<Vec<String>>;

    /// The changes the ledger recorded with `after < seq < before`, in ledger order, at most
    /// `limit`: what the live stream announced then (see [`Change::from_event`]), for a client
    /// resuming from a message older than the stream's buffer.
    async fn changes_between(
        &self,
        after: u64,
        before: u64,
        limit: usize,
    ) -> StoreResult<Vec<Change>>;

    /// The changes the ledger recorded with these sequence numbers, in ledger order; a number
    /// that is not a change (a `created` event, or none at all) is left out.
    async fn changes_with_seqs(&self, seqs: &[u64]) -> StoreResult<Vec<Change>>;

    /// The highest ledger sequence number written so far (0 for an empty ledger).
    async fn last_event_seq(&self) -> StoreResult<u64>;

    /// How many actions are in `status` now.
    async fn count_with_status(&self, status: ActionStatus) -> StoreResult<u64>;

    /// Succeeds when the database answers.
    async fn ping(&self) -> StoreResult<()>;

    /// Changes committed by every server sharing this database, in commit order, when the
    /// backend can share them (PostgreSQL). `None` means this process sees only its own
    /// changes and announces them itself. Starts with every change of an action after ledger
    /// sequence number `after`, so nothing committed while the feed is being set up is missed.
    /// Token changes are not caught up after a lost connection: [`Store::token_version`] tells
    /// a reader that it missed some. Call once.
    fn change_feed(&self, after: u64) -> Option<tokio::sync::mpsc::Receiver<FeedItem>> {
        let _ = after;
        None
    }

    /// Stores a new API token (its secret's hash only). With a shared database the same
    /// transaction raises the token version and announces the token on the change feed.
    async fn create_token(&self, new: NewToken) -> StoreResult<TokenRecord>;

    /// Every token, revoked ones included, oldest first.
    async fn list_tokens(&self) -> StoreResult<Vec<TokenRecord>>;

    /// Revokes the token in use with this name or id; `None` when there is none. With a shared
    /// database the same transaction raises the token version and announces the revocation on
    /// the change feed.
    async fn revoke_token(&self, name_or_id: &str) -> StoreResult<Option<TokenRecord>>;

    /// The token in use whose secret hashes to `secret_hash`, with the token version of the
    /// same read.
    async fn token_by_hash(&self, secret_hash: &str)
        -> StoreResult<AtVersion<Option<TokenRecord>>>;

    /// How many token creations and revocations have committed, when other servers may share
    /// the database; always 0 otherwise, where this process makes every change itself. A
    /// server that has applied every token change up to this number knows every revocation
    /// committed before this call.
    async fn token_version(&self) -> StoreResult<u64> {
        Ok(0)
    }

    /// Every token, revoked ones included, oldest first, with the token version of the same
    /// read.
    async fn token_snapshot(&self) -> StoreResult<AtVersion<Vec<TokenRecord>>> {
        Ok(AtVersion {
            version: self.token_version().await?,
            value: self.list_tokens().await?,
        })
    }
}

/// How a refused transition is named in its conflict error ("cannot be approved").
pub(crate) fn transition_name(t: Transition) -> &'static str {
    match t {
        Transition::Approve => "approved",
        Transition::Deny | Transition::Revoke => "denied",
        Transition::Withdraw => "withdrawn",
        Transition::Start | Transition::StartApproved => "started",
        Transition::Succeed => "marked succeeded",
        Transition::Fail => "marked failed",
        Transition::ExecutionTimeout | Transition::ApprovalExpired => "timed out",
    }
}
