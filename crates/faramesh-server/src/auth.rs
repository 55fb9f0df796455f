//! Bearer-token authentication (api.md): with tokens configured, every request except the
//! public paths needs `Authorization: Bearer <token>`, compared in constant time.

use crate::error::ApiError;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// Paths that never need a token: health checks, metrics, the API description and the UI.
fn is_public(path: &str) -> bool {
    matches!(path, "/health" | "/ready" | "/metrics" | "/openapi.json")
        || !(path.starts_with("/v1/"))
}

pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    // Length is not secret; the bytes are compared without an early exit.
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

pub async fn require_token(
    State(tokens): State<Arc<Vec<String>>>,
    request: Request,
    next: Next,
) -> Response {
    if tokens.is_empty() || is_public(request.uri().path()) {
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
            "Missing bearer token: send `Authorization: Bearer <token>` (FARAMESH_TOKEN)".into(),
        )
        .into_response();
    };
    // Check every configured token so the time taken does not reveal which one was close.
    let matched = tokens.iter().fold(false, |found, t| {
        found | constant_time_eq(given.as_bytes(), t.as_bytes())
    });
    if matched {
        next.run(request).await
    } else {
        ApiError::Unauthorized("Invalid bearer token".into()).into_response()
    }
}
