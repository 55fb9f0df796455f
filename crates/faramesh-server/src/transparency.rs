//! The ledger as a log others can verify (docs/audit.md): the checkpointer, which signs the
//! tree head every few seconds while the log grows, and the read endpoints under `/v1/log`.
//!
//! Several replicas sharing one database all sign with the same key. Ed25519 signatures are
//! deterministic, so two replicas signing the same size write the same note, and any two sizes
//! are of one log: there is nothing to fork. A checkpointer still refuses to sign a tree that
//! does not extend the last checkpoint, so a rewritten log is reported instead of signed.

#![warn(
    clippy::string_slice,
    clippy::indexing_slicing,
    reason = "this module reads input: a bad index must be an error, not a panic"
)]

use crate::auth::{Caller, Permission};
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use faramesh_storage::{Store, StoreError, StoredCheckpoint, MAX_LEAVES};
use faramesh_tlog::tree::{self, Hash};
use faramesh_tlog::{Checkpoint, Signer};
use std::collections::HashMap;
use std::time::Duration;

/// What the server signs checkpoints with.
pub struct LogSigner {
    signer: Signer,
    verifier_text: String,
}

impl LogSigner {
    pub fn new(signer: Signer) -> LogSigner {
        let verifier_text = signer.verifier().text();
        LogSigner {
            signer,
            verifier_text,
        }
    }

    /// The verifier key, in note format.
    pub fn verifier_text(&self) -> &str {
        &self.verifier_text
    }

    /// The origin line of this log's checkpoints: the key's name.
    pub fn origin(&self) -> &str {
        self.signer.name()
    }
}

/// Why a checkpoint was not signed.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the log's stored hashes do not add up: {0}")]
    Proof(#[from] faramesh_tlog::ProofError),
    #[error("the log of {size} leaves does not extend the last checkpoint (size {checkpoint}): the ledger was rewritten; no checkpoint is signed until it is restored")]
    Fork { checkpoint: u64, size: u64 },
    #[error("the log holds {size} leaves, fewer than the last checkpoint's {checkpoint}: the ledger was truncated; no checkpoint is signed until it is restored")]
    Truncated { checkpoint: u64, size: u64 },
    #[error("cannot sign: {0}")]
    Sign(#[from] faramesh_tlog::NoteError),
}

/// The root of the tree of `size` leaves, from the stored hashes.
pub async fn root(store: &dyn Store, size: u64) -> Result<Hash, CheckpointError> {
    let hashes = store.log_hashes(tree::tree_hash_indexes(size)).await?;
    Ok(tree::tree_hash(size, &hashes)?)
}

/// Signs and keeps a checkpoint of the log as it is now, unless the last one is of this size
/// already; returns the checkpoint kept, if new.
pub async fn checkpoint(
    store: &dyn Store,
    signer: &LogSigner,
) -> Result<Option<StoredCheckpoint>, CheckpointError> {
    let size = store.log_size().await?;
    let latest = store.latest_checkpoint().await?;
    if let Some(last) = &latest {
        if last.size > size {
            return Err(CheckpointError::Truncated {
                checkpoint: last.size,
                size,
            });
        }
        if last.size == size {
            return Ok(None);
        }
    }
    let root = root(store, size).await?;
    if let Some(last) = latest.as_ref().filter(|l| l.size > 0) {
        let fork = || CheckpointError::Fork {
            checkpoint: last.size,
            size,
        };
        let mut last_root = [0u8; 32];
        hex::decode_to_slice(&last.root, &mut last_root).map_err(|_| fork())?;
        let indexes = tree::consistency_proof_indexes(last.size, size)?;
        let proof = tree::consistency_proof(last.size, size, &store.log_hashes(indexes).await?)?;
        tree::check_consistency(&proof, last.size, &last_root, size, &root).map_err(|_| fork())?;
    }
    let text = Checkpoint {
        origin: signer.origin().to_owned(),
        size,
        root,
    }
    .text();
    let kept = StoredCheckpoint {
        size,
        root: hex::encode(root),
        note: signer.signer.sign(&text)?,
        created_at: faramesh_storage::now_timestamp(),
    };
    store.add_checkpoint(kept.clone()).await?;
    Ok(Some(kept))
}

/// Signs a checkpoint every `every` while the log grows.
pub fn spawn_checkpoints(state: AppState, every: Duration) {
    tokio::spawn(async move {
        let signer = state.log_signer.clone();
        let mut reported = false;
        loop {
            match checkpoint(state.store.as_ref(), &signer).await {
                Ok(Some(c)) => {
                    reported = false;
                    tracing::debug!(size = c.size, "log checkpoint signed");
                }
                Ok(None) => reported = false,
                Err(e) if !reported => {
                    reported = true;
                    tracing::error!(error = %e, "no log checkpoint signed");
                }
                Err(_) => {}
            }
            tokio::time::sleep(every).await;
        }
    });
}

pub fn routes(state: AppState) -> Router {
    Router::new()
        .route("/v1/log/key", get(key))
        .route("/v1/log/checkpoint", get(latest))
        .route("/v1/log/proof/inclusion", get(inclusion))
        .route("/v1/log/proof/consistency", get(consistency))
        .route("/v1/log/leaves", get(leaves))
        .with_state(state)
}

type ApiResult = Result<Response, ApiError>;

fn text(body: String) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response()
}

#[utoipa::path(get, path = "/v1/log/key", tag = "log",
    responses((status = 200, description = "The verifier key, note format: <name>+<hex key id>+<base64 key>", content_type = "text/plain"), (status = 401, body = faramesh_api::ErrorBody)))]
pub(crate) async fn key(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> ApiResult {
    caller.require(Permission::Read)?;
    Ok(text(format!("{}\n", state.log_signer.verifier_text())))
}

#[utoipa::path(get, path = "/v1/log/checkpoint", tag = "log",
    responses((status = 200, description = "The latest signed checkpoint (C2SP tlog-checkpoint signed note)", content_type = "text/plain"), (status = 401, body = faramesh_api::ErrorBody), (status = 404, body = faramesh_api::ErrorBody)))]
pub(crate) async fn latest(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> ApiResult {
    caller.require(Permission::Read)?;
    match state.store.latest_checkpoint().await? {
        Some(c) => Ok(text(c.note)),
        None => Err(ApiError::NotFound(
            "no checkpoint has been signed yet; one is signed within seconds of the server's start"
                .into(),
        )),
    }
}

/// A whole number query parameter, named in the error when it is missing or not one.
fn number(query: &HashMap<String, String>, name: &str) -> Result<u64, ApiError> {
    let value = query
        .get(name)
        .ok_or_else(|| ApiError::Validation(format!("the query parameter `{name}` is required")))?;
    value.parse().map_err(|_| {
        ApiError::Validation(format!(
            "the query parameter `{name}` must be a whole number ≥ 0, not {value:?}"
        ))
    })
}

/// The two whole numbers a log endpoint takes, named `names`, and no other parameter.
fn two_numbers(query: Params, names: [&str; 2]) -> Result<(u64, u64), ApiError> {
    let query = params(query)?;
    only(&query, &names)?;
    Ok((number(&query, names[0])?, number(&query, names[1])?))
}

/// A 200 with `value` as JSON.
fn json(value: impl serde::Serialize) -> ApiResult {
    Ok((StatusCode::OK, Json(value)).into_response())
}

fn only(query: &HashMap<String, String>, allowed: &[&str]) -> Result<(), ApiError> {
    match query.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(ApiError::Validation(format!(
            "unknown query parameter `{k}`; this endpoint takes {}",
            allowed.join(", ")
        ))),
        None => Ok(()),
    }
}

/// The log's size, and a 422 when `size` is beyond it.
async fn within_log(state: &AppState, size: u64, what: &str) -> Result<(), ApiError> {
    let log_size = state.store.log_size().await?;
    if size > log_size {
        return Err(ApiError::Validation(format!(
            "`{what}`={size} is beyond the log, which holds {log_size} leaves"
        )));
    }
    Ok(())
}

fn hex_all(hashes: &[Hash]) -> Vec<String> {
    hashes.iter().map(hex::encode).collect()
}

type Params = Result<Query<HashMap<String, String>>, axum::extract::rejection::QueryRejection>;

fn params(query: Params) -> Result<HashMap<String, String>, ApiError> {
    query
        .map(|Query(q)| q)
        .map_err(|e| ApiError::Validation(format!("The query is not valid: {e}")))
}

#[utoipa::path(get, path = "/v1/log/proof/inclusion", tag = "log",
    params(("index" = u64, Query, description = "The leaf's log_index"), ("size" = u64, Query, description = "The tree size, e.g. a checkpoint's")),
    responses((status = 200, body = faramesh_api::InclusionProof), (status = 401, body = faramesh_api::ErrorBody), (status = 422, body = faramesh_api::ErrorBody)))]
pub(crate) async fn inclusion(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    query: Params,
) -> ApiResult {
    caller.require(Permission::Read)?;
    let (index, size) = two_numbers(query, ["index", "size"])?;
    if index >= size {
        return Err(ApiError::Validation(format!(
            "`index`={index} is not a leaf of a tree of size {size} (index < size)"
        )));
    }
    within_log(&state, size, "size").await?;
    let indexes = tree::inclusion_proof_indexes(size, index).map_err(proof_error)?;
    let hashes = state.store.log_hashes(indexes).await?;
    let proof = tree::inclusion_proof(size, index, &hashes).map_err(proof_error)?;
    json(faramesh_api::InclusionProof {
        index,
        size,
        hashes: hex_all(&proof),
    })
}

#[utoipa::path(get, path = "/v1/log/proof/consistency", tag = "log",
    params(("from" = u64, Query, description = "The older tree size (≥ 1)"), ("to" = u64, Query, description = "The newer tree size")),
    responses((status = 200, body = faramesh_api::ConsistencyProof), (status = 401, body = faramesh_api::ErrorBody), (status = 422, body = faramesh_api::ErrorBody)))]
pub(crate) async fn consistency(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    query: Params,
) -> ApiResult {
    caller.require(Permission::Read)?;
    let (from, to) = two_numbers(query, ["from", "to"])?;
    if from == 0 || from > to {
        return Err(ApiError::Validation(format!(
            "no consistency proof from {from} to {to} leaves: 1 ≤ from ≤ to"
        )));
    }
    within_log(&state, to, "to").await?;
    let indexes = tree::consistency_proof_indexes(from, to).map_err(proof_error)?;
    let hashes = state.store.log_hashes(indexes).await?;
    let proof = tree::consistency_proof(from, to, &hashes).map_err(proof_error)?;
    json(faramesh_api::ConsistencyProof {
        from,
        to,
        hashes: hex_all(&proof),
    })
}

#[utoipa::path(get, path = "/v1/log/leaves", tag = "log",
    params(("start" = u64, Query, description = "The first log_index"), ("end" = u64, Query, description = "One past the last; at most 1,000 leaves are returned")),
    responses((status = 200, body = Vec<faramesh_api::LogLeaf>), (status = 401, body = faramesh_api::ErrorBody), (status = 422, body = faramesh_api::ErrorBody)))]
pub(crate) async fn leaves(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    query: Params,
) -> ApiResult {
    caller.require(Permission::Read)?;
    let (start, end) = two_numbers(query, ["start", "end"])?;
    if start > end {
        return Err(ApiError::Validation(format!(
            "`start`={start} is after `end`={end}"
        )));
    }
    let end = end.min(start.saturating_add(MAX_LEAVES));
    let leaves = state.store.log_leaves(start, end).await?;
    let wire: Vec<faramesh_api::LogLeaf> = leaves
        .into_iter()
        .map(|l| faramesh_api::LogLeaf {
            log_index: l.log_index,
            record_hash: l.record_hash,
        })
        .collect();
    json(wire)
}

/// A proof the stored hashes cannot give is the database's fault, not the caller's.
fn proof_error(e: faramesh_tlog::ProofError) -> ApiError {
    match e {
        faramesh_tlog::ProofError::Invalid(why) => ApiError::Validation(why),
        other => ApiError::Unavailable(format!("the log cannot be read: {other}")),
    }
}

/// The signing key at `path`, created there (with its verifier key beside it) at first start.
pub fn load_or_create_key(path: &std::path::Path) -> Result<Signer, crate::log_key::KeyFileError> {
    if path.exists() {
        return crate::log_key::read(path);
    }
    let signer = match crate::log_key::generate(path, &crate::log_key::default_name(), false) {
        Ok(signer) => signer,
        // Another process made it a moment ago: use that one.
        Err(crate::log_key::KeyFileError::Exists(_)) => return crate::log_key::read(path),
        Err(e) => return Err(e),
    };
    tracing::info!(
        key_file = %path.display(),
        verifier_key = %signer.verifier().text(),
        "created the key that signs the log's checkpoints; give its verifier key to whoever checks the log"
    );
    Ok(signer)
}
