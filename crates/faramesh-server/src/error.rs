//! API errors: always `{"detail": "..."}` with the right status, plus machine-readable keys
//! where they help (`code`, `action_id`, `status`).

#![warn(
    clippy::string_slice,
    clippy::indexing_slicing,
    reason = "this module reads input: a bad index must be an error, not a panic"
)]

use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use faramesh_storage::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 422: the request is malformed; the text names the field.
    #[error("{0}")]
    Validation(String),
    #[error("{0}")]
    NotFound(String),
    /// 409: the action is not in a status that allows this.
    #[error("{detail}")]
    Conflict {
        detail: String,
        action_id: String,
        status: String,
    },
    /// 409 for something other than an action's status; `code` says what.
    #[error("{detail}")]
    Refused { detail: String, code: &'static str },
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    /// 503: storage or policy not usable right now; nothing was allowed.
    #[error("{0}")]
    Unavailable(String),
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            ApiError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict { .. } | ApiError::Refused { .. } => StatusCode::CONFLICT,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            ApiError::Validation(_) => "validation_error",
            ApiError::NotFound(_) => "not_found",
            ApiError::Conflict { .. } => "conflict",
            ApiError::Refused { code, .. } => code,
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::PayloadTooLarge(_) => "payload_too_large",
            ApiError::Unavailable(_) => "unavailable",
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (action_id, status) = match &self {
            ApiError::Conflict {
                action_id, status, ..
            } => (Some(action_id.clone()), Some(status.clone())),
            _ => (None, None),
        };
        let body = faramesh_api::ErrorBody {
            detail: self.to_string(),
            code: Some(self.code().to_owned()),
            action_id,
            status,
            errors: None,
        };
        if matches!(self, ApiError::Unavailable(_)) {
            tracing::warn!(detail = %self, "request refused: service unavailable");
        }
        (self.status(), Json(body)).into_response()
    }
}

/// A 503 for a database that cannot be used now, however the store learned why.
fn database_unavailable(why: &dyn std::fmt::Display) -> ApiError {
    ApiError::Unavailable(format!(
        "The database is unavailable ({why}); nothing was changed, retry later"
    ))
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::NotFound(id) => ApiError::NotFound(format!("Action {id} not found")),
            StoreError::Conflict { id, status, attempted } => ApiError::Conflict {
                detail: format!("Action {id} is {status}; it cannot be {attempted}"),
                action_id: id,
                status: status.as_str().to_owned(),
            },
            StoreError::AlreadyApproved { id, by } => ApiError::Conflict {
                detail: format!(
                    "{by} already approved action {id}; an approval counts once per person, so another approver must approve"
                ),
                action_id: id,
                status: "already_approved".to_owned(),
            },
            StoreError::IdempotencyMismatch { key, action_id } => ApiError::Conflict {
                detail: format!(
                    "Idempotency-Key {key:?} was already used for action {action_id} with a different body; use a new key for a new action"
                ),
                action_id,
                status: "idempotency_key_reused".to_owned(),
            },
            StoreError::Unavailable { reason, .. } | StoreError::Refused { reason, .. } => {
                database_unavailable(&reason)
            }
            StoreError::TokenNameTaken(name) => ApiError::Refused {
                detail: format!(
                    "A token named {name:?} already exists; revoke it first (`faramesh token revoke {name}`) or choose another name"
                ),
                code: "token_name_taken",
            },
            StoreError::Corrupt(why) => ApiError::Unavailable(format!("Stored data could not be read ({why})")),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> ApiError {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            return ApiError::PayloadTooLarge("The request body is larger than 1 MiB".to_owned());
        }
        ApiError::Validation(format!(
            "The request body is not valid JSON: {}",
            rejection.body_text()
        ))
    }
}
