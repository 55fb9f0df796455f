//! Authentication and roles (docs/api.md).
//!
//! Two kinds of bearer tokens: the admin tokens of `FARAMESH_TOKEN` (compared in constant
//! time), and API tokens made with `faramesh token create`, each with a role, stored only as the
//! SHA-256 of the secret. With neither configured the API is open and every caller is admin.
//! Public paths (health, metrics, the API description and the UI) never need a token.

use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use faramesh_storage::{Role, TokenRecord};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

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
    api: RwLock<HashMap<SecretDigest, Caller>>,
    // Built once: identifying a caller is on every request and must not allocate. One per
    // admin token, in the order of `admin`, so each keeps its own idempotency keys.
    admin_callers: Vec<Caller>,
    anonymous: Caller,
}

impl Tokens {
    pub fn new(admin: Vec<String>, api: &[TokenRecord]) -> Tokens {
        let admin_callers = admin
            .iter()
            .map(|secret| {
                // A digest, not the secret, so the scope may be stored.
                let digest = secret_hash(secret);
                Caller::admin("admin", format!("admin:{}", &digest[..16]))
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
        !self.admin.is_empty() || !self.read().is_empty()
    }

    pub fn admin_count(&self) -> usize {
        self.admin.len()
    }

    pub fn api_count(&self) -> usize {
        self.read().len()
    }

    pub fn insert(&self, record: &TokenRecord) {
        self.write()
            .extend(stored_digest(record).map(|d| (d, Caller::of(record))));
    }

    pub fn remove(&self, record: &TokenRecord) {
        if let Some(digest) = stored_digest(record) {
            self.write().remove(&digest);
        }
    }

    /// Replaces the API tokens with `records` (those not revoked): how a replica learns of
    /// tokens created or revoked on another one.
    pub fn replace_all(&self, records: &[TokenRecord]) {
        let fresh: HashMap<SecretDigest, Caller> = records
            .iter()
            .filter(|t| t.revoked_at.is_none())
            .filter_map(|t| Some((stored_digest(t)?, Caller::of(t))))
            .collect();
        *self.write() = fresh;
    }

    fn identify(&self, given: &str) -> Option<Caller> {
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
        if let Some(caller) = admin.and_then(|index| self.admin_callers.get(index)) {
            return Some(caller.clone());
        }
        // A lookup by hash reveals nothing usable about the secret.
        self.read().get(&digest(given)).cloned()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<SecretDigest, Caller>> {
        self.api
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<SecretDigest, Caller>> {
        self.api
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Paths that never need a token: health checks, metrics, the API description and the UI.
fn is_public(path: &str) -> bool {
    matches!(path, "/health" | "/ready" | "/metrics" | "/openapi.json") || !path.starts_with("/v1/")
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
    let mut caller = tokens.identify(given);
    if caller.is_none() && state.shared_database {
        // With a shared database the token may have been created on another replica a moment
        // ago; the periodic refresh would find it too, but the caller should not wait for it.
        if let Ok(Some(record)) = state.store.token_by_hash(&secret_hash(given)).await {
            tokens.insert(&record);
            caller = tokens.identify(given);
        }
    }
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
