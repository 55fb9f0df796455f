//! API tokens: who may call the API, and in which role (docs/api.md).

use serde::Serialize;

/// What a token may do. `agent`: submit, read, start, report results, decide; never sees
/// approval tokens. `approver`: read, approve and deny. `admin`: everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Agent,
    Approver,
    Admin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Agent, Role::Approver, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::Approver => "approver",
            Role::Admin => "admin",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == text)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stored token, without its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenRecord {
    pub id: String,
    pub name: String,
    pub role: Role,
    /// SHA-256 of the secret, lowercase hex.
    #[serde(skip)]
    pub secret_hash: String,
    pub created_at: String,
    pub revoked_at: Option<String>,
}

impl TokenRecord {
    /// The record of a token about to be stored: a new id, created now.
    pub fn new(token: NewToken) -> TokenRecord {
        TokenRecord {
            id: uuid::Uuid::new_v4().to_string(),
            name: token.name,
            role: token.role,
            secret_hash: token.secret_hash,
            created_at: crate::now_timestamp(),
            revoked_at: None,
        }
    }
}

/// A token to store.
#[derive(Debug, Clone)]
pub struct NewToken {
    pub name: String,
    pub role: Role,
    pub secret_hash: String,
}

/// Something read from the API tokens, with the token version it was read at: the number of
/// token creations and revocations committed before the read (see [`crate::Store::token_version`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AtVersion<T> {
    pub version: u64,
    pub value: T,
}

/// A token created or revoked (`revoked_at` set) by any server sharing the database, as the
/// change feed carries it: `version` is the token version its transaction committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenChange {
    pub version: u64,
    pub token: TokenRecord,
}
