//! API token management (admin only): create (the secret is returned once), list, revoke.

#![warn(
    clippy::string_slice,
    clippy::indexing_slicing,
    reason = "this module reads input: a bad index must be an error, not a panic"
)]

use crate::auth::{self, Caller, Permission};
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, post};
use axum::{Extension, Json, Router};
use faramesh_storage::{NewToken, Role, TokenRecord};
use serde::Deserialize;
use serde_json::Value;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/tokens", post(create).get(list))
        .route("/v1/tokens/{name}", delete(revoke))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    name: String,
    role: String,
}

/// Longest token name.
const MAX_NAME_CHARS: usize = 64;

fn valid_name(name: &str) -> Result<(), ApiError> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@');
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS || !name.chars().all(ok_char) {
        return Err(ApiError::Validation(format!(
            "`name` must be 1 to {MAX_NAME_CHARS} letters, digits, '-', '_', '.' or '@', not {name:?}"
        )));
    }
    Ok(())
}

fn view(t: &TokenRecord) -> faramesh_api::TokenInfo {
    faramesh_api::TokenInfo {
        id: t.id.clone(),
        name: t.name.clone(),
        role: t.role.as_str().to_owned(),
        created_at: t.created_at.clone(),
        revoked_at: t.revoked_at.clone(),
    }
}

#[utoipa::path(post, path = "/v1/tokens", request_body = faramesh_api::TokenRequest,
    responses((status = 201, body = faramesh_api::NewToken), (status = 401, body = faramesh_api::ErrorBody), (status = 403, body = faramesh_api::ErrorBody), (status = 409, body = faramesh_api::ErrorBody), (status = 422, body = faramesh_api::ErrorBody)))]
pub(crate) async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    payload: Result<Json<Value>, JsonRejection>,
) -> Result<Response, ApiError> {
    caller.require(Permission::ManageTokens)?;
    let Json(raw) = payload.map_err(ApiError::from)?;
    let body: CreateBody = serde_json::from_value(raw)
        .map_err(|e| ApiError::Validation(format!("The token body must be {{name, role}}: {e}")))?;
    valid_name(&body.name)?;
    let role = Role::parse(&body.role).ok_or_else(|| {
        ApiError::Validation(format!(
            "`role` must be agent, approver or admin, not {:?}",
            body.role
        ))
    })?;
    // The first token turns authentication on. If it could not administer, nobody could manage
    // tokens any more (short of setting FARAMESH_TOKEN), so it must be an admin token.
    if !state.tokens.enabled() && role != Role::Admin {
        return Err(ApiError::Refused {
            detail: format!(
                "The first token must have the admin role: creating it turns authentication on, and {} {role} token alone could not manage tokens. Create an admin token first (`faramesh token create --name admin --role admin`), then create this one with it",
                if role == Role::Agent { "an" } else { "a" }
            ),
            code: "first_token_must_be_admin",
        });
    }
    let secret = auth::new_secret();
    let record = state
        .store
        .create_token(NewToken {
            name: body.name,
            role,
            secret_hash: auth::secret_hash(&secret),
        })
        .await?;
    if state.shared_database {
        // Cached as read back, with its token version: another replica may have revoked it
        // already, and the cache must not take an older view over a newer one. A failed read
        // only means it is looked up on first use.
        if let Ok(found) = state.store.token_by_hash(&record.secret_hash).await {
            state.tokens.learn(&found);
        }
    } else {
        state.tokens.insert(&record);
    }
    tracing::info!(name = %record.name, role = %record.role, by = %caller.name, "API token created");
    let answer = faramesh_api::NewToken {
        info: view(&record),
        token: secret,
    };
    Ok((StatusCode::CREATED, Json(answer)).into_response())
}

#[utoipa::path(get, path = "/v1/tokens",
    responses((status = 200, body = Vec<faramesh_api::TokenInfo>), (status = 401, body = faramesh_api::ErrorBody), (status = 403, body = faramesh_api::ErrorBody)))]
pub(crate) async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Response, ApiError> {
    caller.require(Permission::ManageTokens)?;
    let tokens = state.store.list_tokens().await?;
    Ok(Json(tokens.iter().map(view).collect::<Vec<_>>()).into_response())
}

#[utoipa::path(delete, path = "/v1/tokens/{name}", params(("name" = String, Path, description = "The token's name or id"), ("force" = Option<bool>, Query, description = "true: revoke even the last admin token")),
    responses((status = 200, body = faramesh_api::TokenInfo), (status = 401, body = faramesh_api::ErrorBody), (status = 403, body = faramesh_api::ErrorBody), (status = 404, body = faramesh_api::ErrorBody), (status = 409, body = faramesh_api::ErrorBody)))]
pub(crate) async fn revoke(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    Query(query): Query<std::collections::HashMap<String, String>>,
) -> Result<Response, ApiError> {
    caller.require(Permission::ManageTokens)?;
    let force = matches!(query.get("force").map(String::as_str), Some("true"));
    // Revoking the last admin would leave nobody able to manage tokens: a lockout, unless the
    // server has FARAMESH_TOKEN admins or the caller insists.
    if !force && state.tokens.admin_count() == 0 {
        let tokens = state.store.list_tokens().await?;
        let admins: Vec<_> = tokens
            .iter()
            .filter(|t| t.revoked_at.is_none() && t.role == faramesh_storage::Role::Admin)
            .collect();
        if let [last] = admins.as_slice() {
            if last.name == name || last.id == name {
                return Err(ApiError::Refused {
                    detail: format!(
                        "{name:?} is the last admin token: revoking it would leave nobody able to manage tokens or reload the policy. Create another admin token first, or revoke it anyway with force (`faramesh token revoke {name} --force`)"
                    ),
                    code: "last_admin_token",
                });
            }
        }
    }
    match state.store.revoke_token(&name).await? {
        Some(record) => {
            state.tokens.remove(&record);
            tracing::info!(name = %record.name, by = %caller.name, "API token revoked");
            Ok(Json(view(&record)).into_response())
        }
        None => Err(ApiError::NotFound(format!(
            "No token in use named {name:?} (or with that id); `faramesh token list` shows them"
        ))),
    }
}
