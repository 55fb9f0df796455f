//! Authentication and roles (docs/api.md).
//!
//! Two kinds of bearer tokens: the admin tokens of `FARAMESH_TOKEN` (compared in constant
//! time), and API tokens made with `faramesh token create`, each with a role, stored only as the
//! SHA-256 of the secret. With neither configured the API is open and every caller is admin.
//! Public paths (health, metrics, the API description and the UI) never need a token.
//!
//! API tokens are cached. With a shared database (PostgreSQL) another replica may revoke one at
//! any moment, so a cached token is trusted only once a [`Confirmations`] round, started after
//! the request arrived, has shown that the cache knows every revocation committed by then: a
//! token revoked anywhere is refused everywhere as soon as its revocation has returned.

#![warn(
    clippy::string_slice,
    clippy::indexing_slicing,
    reason = "this module reads input: a bad index must be an error, not a panic"
)]

use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use faramesh_storage::{AtVersion, Role, Store, StoreError, StoreResult, TokenChange, TokenRecord};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use tokio::sync::{mpsc, oneshot};

/// Who is calling, as handlers see it (a request extension set by [`authenticate`]).
#[derive(Debug, Clone)]
pub struct Caller {
    /// Recorded as `by` in approval and denial events.
    pub name: Arc<str>,
    pub role: Role,
    /// Who the caller is for idempotency keys: one per token, so a key sent by one token never
    /// returns another token's action.
    pub scope: Arc<str>,
}

/// What a request wants to do; each handler names its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// List and read actions, events, chains, the policy and the stream.
    Read,
    Submit,
    /// Start an action and report its result.
    Execute,
    /// `POST /v1/gate/decide`: a decision that stores nothing.
    Decide,
    Approve,
    ReloadPolicy,
    ManageTokens,
    /// Send a test message through a notification route.
    TestNotifications,
}

impl Permission {
    fn describe(self) -> &'static str {
        match self {
            Permission::Read => "read actions",
            Permission::Submit => "submit actions",
            Permission::Execute => "start actions or report their results",
            Permission::Decide => "ask for decisions",
            Permission::Approve => "approve or deny actions",
            Permission::ReloadPolicy => "reload the policy",
            Permission::ManageTokens => "manage API tokens",
            Permission::TestNotifications => "send test notifications",
        }
    }
}

/// The role table of docs/api.md. An agent may never approve, so it can never approve its own actions.
pub fn allows(role: Role, permission: Permission) -> bool {
    use Permission::*;
    match role {
        Role::Admin => true,
        Role::Agent => matches!(permission, Read | Submit | Execute | Decide),
        Role::Approver => matches!(permission, Read | Approve | Decide),
    }
}

impl Caller {
    fn admin(name: &str, scope: String) -> Caller {
        Caller {
            name: Arc::from(name),
            role: Role::Admin,
            scope: Arc::from(scope),
        }
    }

    fn of(record: &TokenRecord) -> Caller {
        Caller {
            name: Arc::from(record.name.as_str()),
            role: record.role,
            scope: Arc::from(format!("token:{}", record.id)),
        }
    }

    /// 403 unless the caller's role allows `permission`.
    pub fn require(&self, permission: Permission) -> Result<(), ApiError> {
        if allows(self.role, permission) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "Token {:?} has the {} role, which may not {}; use a token with the {} role",
                self.name,
                self.role,
                permission.describe(),
                if permission == Permission::Approve {
                    "approver or admin"
                } else if matches!(permission, Permission::Submit | Permission::Execute) {
                    "agent or admin"
                } else {
                    "admin"
                }
            )))
        }
    }

    /// Agents never see `approval_token`.
    pub fn token_visibility(&self) -> crate::view::TokenVisibility {
        if self.role == Role::Agent {
            crate::view::TokenVisibility::Hidden
        } else {
            crate::view::TokenVisibility::Shown
        }
    }
}

/// SHA-256 of a token secret, lowercase hex: the only form in which API tokens are stored.
pub fn secret_hash(secret: &str) -> String {
    hex::encode(digest(secret))
}

/// SHA-256 of a token secret: the key of the token cache, computed without allocating.
type SecretDigest = [u8; 32];

fn digest(secret: &str) -> SecretDigest {
    Sha256::digest(secret.as_bytes()).into()
}

/// The digest a stored token holds; `None` for a stored hash that is not one (never matches).
fn stored_digest(record: &TokenRecord) -> Option<SecretDigest> {
    let mut digest = [0u8; 32];
    hex::decode_to_slice(&record.secret_hash, &mut digest).ok()?;
    Some(digest)
}

/// A new token secret: 256 random bits, recognisable by its `fm_` prefix.
pub fn new_secret() -> String {
    let bytes: [u8; 32] = rand::random();
    format!("fm_{}", hex::encode(bytes))
}

pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    // Length is not secret; the bytes are compared without an early exit.
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// The tokens the server accepts. API tokens are cached by hash so checking one costs a hash
/// and a map lookup, not a database query.
#[derive(Debug)]
pub struct Tokens {
    admin: Vec<String>,
    api: RwLock<ApiTokens>,
    // Built once: identifying a caller is on every request and must not allocate. One per
    // admin token, in the order of `admin`, so each keeps its own idempotency keys.
    admin_callers: Vec<Caller>,
    anonymous: Caller,
}

/// The cached API tokens and the token version they are known to be as new as.
#[derive(Debug, Default)]
struct ApiTokens {
    by_digest: HashMap<SecretDigest, Caller>,
    /// No token revoked in this token version or an earlier one is in `by_digest`. It only
    /// moves to a version whose revocations have all been applied: the next one, from the
    /// change feed, or any, from a read of every token ([`Tokens::replace`]).
    version: u64,
}

impl Tokens {
    pub fn new(admin: Vec<String>, api: &[TokenRecord]) -> Tokens {
        let admin_callers = admin
            .iter()
            .map(|secret| {
                // A digest, not the secret, so the scope may be stored.
                let digest = secret_hash(secret);
                Caller::admin(
                    "admin",
                    format!("admin:{}", digest.get(..16).unwrap_or(&digest)),
                )
            })
            .collect();
        let tokens = Tokens {
            admin,
            api: RwLock::default(),
            admin_callers,
            anonymous: Caller::admin("anonymous", "anonymous".into()),
        };
        for record in api.iter().filter(|t| t.revoked_at.is_none()) {
            tokens.insert(record);
        }
        tokens
    }

    /// Whether requests need a token: some admin token is configured or an API token exists.
    pub fn enabled(&self) -> bool {
        !self.admin.is_empty() || !self.read().by_digest.is_empty()
    }

    pub fn admin_count(&self) -> usize {
        self.admin.len()
    }

    pub fn api_count(&self) -> usize {
        self.read().by_digest.len()
    }

    /// Caches a token this process just created, in a database no other process writes.
    pub fn insert(&self, record: &TokenRecord) {
        if record.revoked_at.is_none() {
            self.write()
                .by_digest
                .extend(stored_digest(record).map(|d| (d, Caller::of(record))));
        }
    }

    /// Forgets a token; always safe, whatever other replicas did meanwhile.
    pub fn remove(&self, record: &TokenRecord) {
        if let Some(digest) = stored_digest(record) {
            self.write().by_digest.remove(&digest);
        }
    }

    /// Caches a token found live in the database at token version `found.version`, unless
    /// the cache already applied a newer revocation, which might be this token's.
    pub fn learn(&self, found: &AtVersion<Option<TokenRecord>>) {
        let Some(record) = found.value.as_ref().filter(|t| t.revoked_at.is_none()) else {
            return;
        };
        let mut api = self.write();
        if found.version >= api.version {
            api.by_digest
                .extend(stored_digest(record).map(|d| (d, Caller::of(record))));
        }
    }

    /// Replaces the API tokens with those of `snapshot` that are not revoked, unless the cache
    /// is already newer: how a replica catches up with changes it missed.
    pub fn replace(&self, snapshot: &AtVersion<Vec<TokenRecord>>) {
        let fresh: HashMap<SecretDigest, Caller> = snapshot
            .value
            .iter()
            .filter(|t| t.revoked_at.is_none())
            .filter_map(|t| Some((stored_digest(t)?, Caller::of(t))))
            .collect();
        let mut api = self.write();
        if snapshot.version >= api.version {
            *api = ApiTokens {
                by_digest: fresh,
                version: snapshot.version,
            };
        }
    }

    /// Applies a token change from the change feed, which delivers them in commit order.
    pub fn apply(&self, change: &TokenChange) {
        let token = &change.token;
        let mut api = self.write();
        if token.revoked_at.is_some() {
            if let Some(digest) = stored_digest(token) {
                api.by_digest.remove(&digest);
            }
        } else if change.version > api.version {
            // Any revocation of this token comes later, so none can have been applied yet. A
            // creation the cache is already as new as was read with it, or revoked since.
            api.by_digest
                .extend(stored_digest(token).map(|d| (d, Caller::of(token))));
        }
        // After a gap (changes lost with the feed's connection) the version stays behind, so
        // the next confirmation reads every token.
        if change.version == api.version + 1 {
            api.version = change.version;
        }
    }

    /// The token version the cache is known to be as new as.
    pub fn version(&self) -> u64 {
        self.read().version
    }

    /// The admin caller whose token is `given`.
    fn admin(&self, given: &str) -> Option<Caller> {
        // Every admin token is compared, so the time taken does not reveal which one was close.
        let admin = self
            .admin
            .iter()
            .enumerate()
            .fold(None, |found, (index, t)| {
                if constant_time_eq(given.as_bytes(), t.as_bytes()) {
                    Some(index)
                } else {
                    found
                }
            });
        admin.and_then(|index| self.admin_callers.get(index).cloned())
    }

    /// The cached API token whose secret is `given`.
    fn api(&self, given: &str) -> Option<Caller> {
        // A lookup by hash reveals nothing usable about the secret.
        self.read().by_digest.get(&digest(given)).cloned()
    }

    #[cfg(test)]
    fn identify(&self, given: &str) -> Option<Caller> {
        self.admin(given).or_else(|| self.api(given))
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, ApiTokens> {
        self.api
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, ApiTokens> {
        self.api
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Brings the cached API tokens up to date with the database: one read of the token version
/// and, if some token change has not arrived yet, one read of every token.
pub async fn bring_up_to_date(store: &dyn Store, tokens: &Tokens) -> StoreResult<()> {
    let version = store.token_version().await?;
    if tokens.version() < version {
        tokens.replace(&store.token_snapshot().await?);
    }
    Ok(())
}

/// Someone waiting for a confirmation round; answered with why it failed, if it did.
type Waiter = oneshot::Sender<Result<(), String>>;

/// Confirmation rounds for cached API tokens, when other replicas share the database.
///
/// A request with a cached API token waits for a round that starts after it arrived. A round
/// reads the token version ([`bring_up_to_date`]); a revocation that returned before the
/// request was sent committed before that read, so after the round the cache no longer holds
/// the token. One round serves every request that arrived while the previous one ran, so under
/// load the database sees one small read per round trip, not one per request.
#[derive(Debug)]
pub struct Confirmations {
    waiting: mpsc::Sender<Waiter>,
}

/// Most requests one round answers at once; more wait for the next round.
const MAX_ROUND: usize = 4096;

impl Confirmations {
    /// Starts the rounds; they stop when the returned value is dropped.
    pub fn start(store: Arc<dyn Store>, tokens: Arc<Tokens>) -> Confirmations {
        let (waiting, mut rx) = mpsc::channel::<Waiter>(MAX_ROUND);
        tokio::spawn(async move {
            let mut round = Vec::with_capacity(MAX_ROUND);
            // Everyone in `round` was waiting before the read below began.
            while rx.recv_many(&mut round, MAX_ROUND).await > 0 {
                let result = bring_up_to_date(&*store, &tokens)
                    .await
                    .map_err(|e| e.to_string());
                for waiter in round.drain(..) {
                    let _ = waiter.send(result.clone());
                }
            }
        });
        Confirmations { waiting }
    }

    /// Returns once a round that started after this call has brought the cache up to date.
    pub async fn confirm(&self) -> StoreResult<()> {
        let stopped = || StoreError::unavailable("token confirmation has stopped");
        let (tx, rx) = oneshot::channel();
        self.waiting.send(tx).await.map_err(|_| stopped())?;
        rx.await
            .map_err(|_| stopped())?
            .map_err(StoreError::unavailable)
    }
}

/// Paths that never need a token: health checks, metrics, the API description and the UI (the
/// API under `/v1/` and the MCP endpoints under `/mcp/` do).
fn is_public(path: &str) -> bool {
    matches!(path, "/health" | "/ready" | "/metrics" | "/openapi.json")
        // Slack signs its callbacks instead; the handler verifies the signature.
        || path == crate::notifications::SLACK_INTERACTIONS
        || !(path.starts_with("/v1/") || path.starts_with("/mcp/"))
}

/// Identifies the caller and attaches a [`Caller`] to the request; 401 when a token is needed
/// and missing or unknown. Roles are checked by each handler.
pub async fn authenticate(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let tokens = &state.tokens;
    if !tokens.enabled() {
        // With authentication off every caller is admin.
        request.extensions_mut().insert(tokens.anonymous.clone());
        return next.run(request).await;
    }
    if is_public(request.uri().path()) {
        return next.run(request).await;
    }
    let given = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| {
            h.strip_prefix("Bearer ")
                .or_else(|| h.strip_prefix("bearer "))
        })
        .map(str::trim);
    let Some(given) = given else {
        return ApiError::Unauthorized(
            "Missing bearer token: send `Authorization: Bearer <token>` (FARAMESH_TOKEN, or a token from `faramesh token create`)".into(),
        )
        .into_response();
    };
    let caller = match &state.confirmations {
        None => tokens.admin(given).or_else(|| tokens.api(given)),
        Some(confirmations) => match identify_shared(&state, confirmations, given).await {
            Ok(caller) => caller,
            // Trouble with the database never lets a token through.
            Err(e) => return ApiError::from(e).into_response(),
        },
    };
    match caller {
        Some(caller) => {
            request.extensions_mut().insert(caller);
            next.run(request).await
        }
        None => ApiError::Unauthorized(
            "Invalid bearer token: it is not configured, or it was revoked".into(),
        )
        .into_response(),
    }
}

/// Identifies the caller when other replicas share the database and may have revoked the
/// token a moment ago, or created it.
async fn identify_shared(
    state: &AppState,
    confirmations: &Confirmations,
    given: &str,
) -> StoreResult<Option<Caller>> {
    let tokens = &state.tokens;
    // Admin tokens come from the configuration: no replica can revoke them.
    if let Some(admin) = tokens.admin(given) {
        return Ok(Some(admin));
    }
    if tokens.api(given).is_some() {
        confirmations.confirm().await?;
        if let Some(caller) = tokens.api(given) {
            return Ok(Some(caller));
        }
    }
    // Not cached, or revoked since: the database has the last word, read after the request
    // arrived. A token created on another replica a moment ago is found here.
    let found = state.store.token_by_hash(&secret_hash(given)).await?;
    tokens.learn(&found);
    Ok(found
        .value
        .filter(|t| t.revoked_at.is_none())
        .map(|t| Caller::of(&t)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(name: &str, role: Role, secret: &str) -> TokenRecord {
        TokenRecord {
            id: format!("id-{name}"),
            name: name.into(),
            role,
            secret_hash: secret_hash(secret),
            created_at: "2026-01-01T00:00:00.000000Z".into(),
            revoked_at: None,
        }
    }

    #[test]
    fn the_role_table_matches_the_api_contract() {
        use Permission::*;
        let all = [
            Read,
            Submit,
            Execute,
            Decide,
            Approve,
            ReloadPolicy,
            ManageTokens,
            TestNotifications,
        ];
        let allowed =
            |role| -> Vec<Permission> { all.into_iter().filter(|p| allows(role, *p)).collect() };
        assert_eq!(allowed(Role::Agent), [Read, Submit, Execute, Decide]);
        assert_eq!(allowed(Role::Approver), [Read, Decide, Approve]);
        assert_eq!(allowed(Role::Admin), all);
    }

    #[test]
    fn tokens_identify_admins_and_api_tokens_until_revoked() {
        let agent = record("ci", Role::Agent, "fm_agent");
        let tokens = Tokens::new(vec!["root".into()], std::slice::from_ref(&agent));
        assert!(tokens.enabled());
        assert_eq!(tokens.identify("root").unwrap().role, Role::Admin);
        let caller = tokens.identify("fm_agent").unwrap();
        assert_eq!((&*caller.name, caller.role), ("ci", Role::Agent));
        assert!(tokens.identify("fm_agen").is_none());
        assert_ne!(
            tokens.identify("root").unwrap().scope,
            tokens.identify("fm_agent").unwrap().scope
        );
        tokens.remove(&agent);
        assert!(tokens.identify("fm_agent").is_none());
    }

    fn at<T>(version: u64, value: T) -> AtVersion<T> {
        AtVersion { version, value }
    }

    fn change(version: u64, record: &TokenRecord, revoked: bool) -> TokenChange {
        let mut token = record.clone();
        token.revoked_at = revoked.then(|| "2026-01-02T00:00:00.000000Z".to_owned());
        TokenChange { version, token }
    }

    #[test]
    fn token_changes_from_the_feed_apply_in_order_and_a_gap_holds_the_version_back() {
        let bot = record("bot", Role::Agent, "fm_bot");
        let ci = record("ci", Role::Agent, "fm_ci");
        let tokens = Tokens::new(Vec::new(), &[]);
        tokens.apply(&change(1, &bot, false));
        assert!(tokens.identify("fm_bot").is_some());
        assert_eq!(tokens.version(), 1);
        tokens.apply(&change(2, &bot, true));
        assert!(tokens.identify("fm_bot").is_none());
        assert_eq!(tokens.version(), 2);
        // Version 3 never arrived: 4 applies, the version stays at 2 until a full read.
        tokens.apply(&change(4, &ci, false));
        assert!(tokens.identify("fm_ci").is_some());
        assert_eq!(tokens.version(), 2);
        tokens.replace(&at(4, vec![ci.clone()]));
        assert_eq!(tokens.version(), 4);
    }

    #[test]
    fn an_older_read_never_brings_back_a_token_revoked_since() {
        let bot = record("bot", Role::Agent, "fm_bot");
        let tokens = Tokens::new(Vec::new(), &[]);
        tokens.replace(&at(1, vec![bot.clone()]));
        tokens.apply(&change(2, &bot, true));
        // Reads made before the revocation, answered after it was applied.
        tokens.learn(&at(1, Some(bot.clone())));
        tokens.replace(&at(1, vec![bot.clone()]));
        // A creation older than what the cache already knows.
        tokens.apply(&change(1, &bot, false));
        assert!(tokens.identify("fm_bot").is_none());
        assert_eq!(tokens.version(), 2);
        // A read as new as the cache may add what it found.
        let ci = record("ci", Role::Agent, "fm_ci");
        tokens.learn(&at(2, Some(ci)));
        assert!(tokens.identify("fm_ci").is_some());
    }

    #[test]
    fn without_tokens_authentication_is_off_until_one_is_created() {
        let tokens = Tokens::new(Vec::new(), &[]);
        assert!(!tokens.enabled());
        tokens.insert(&record("boss", Role::Admin, "fm_x"));
        assert!(tokens.enabled());
    }

    #[test]
    fn secrets_are_random_and_prefixed() {
        let (a, b) = (new_secret(), new_secret());
        assert!(a.starts_with("fm_") && a.len() == 67, "{a}");
        assert_ne!(a, b);
    }
}
