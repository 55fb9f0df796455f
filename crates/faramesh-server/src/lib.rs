//! The Faramesh HTTP server: thin routes over the decision core and the storage crate.

pub mod approvals;
pub mod auth;
pub mod browser;
pub mod changes;
pub mod config;
pub mod connection;
pub mod demo;
pub mod error;
pub mod execution;
pub mod expiry;
pub mod history;
pub mod hot_reload;
pub mod limits;
pub mod log_key;
pub mod mcp;
pub mod metrics;
pub mod notifications;
pub mod openapi;
pub mod policy_files;
pub mod routes;
pub mod run;
pub mod serve;
pub mod state;
pub mod telemetry;
pub mod token_routes;
pub mod transparency;
pub mod validate;
pub mod view;

pub use config::{Backend, ServerConfig};
pub use run::{run, Server};
pub use state::AppState;

use arc_swap::ArcSwap;
use axum::extract::DefaultBodyLimit;
use axum::Router;
use faramesh_storage::{SqliteStore, Store};
use std::sync::Arc;

/// Largest request body accepted (413 beyond).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Longest request URI accepted (414 beyond). hyper's own limit is near 64 KiB and answers with
/// an empty body; this one is lower so that the usual `{"detail"}` answer comes first.
pub const MAX_URI_BYTES: usize = 16 * 1024;

/// Largest request header section accepted (431 beyond), counted as names, values and
/// separators. hyper's own limit is near 400 KiB; see [`MAX_URI_BYTES`].
pub const MAX_HEADER_BYTES: usize = 64 * 1024;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Load(#[from] policy_files::LoadError),
    #[error(transparent)]
    Storage(#[from] faramesh_storage::StoreError),
    #[error(transparent)]
    Executors(#[from] faramesh_executors::ConfigError),
    /// A setting that cannot be used as given.
    #[error("{0}")]
    Config(String),
    #[error("cannot listen on {address}; is another server running? choose another --port")]
    Bind {
        address: String,
        #[source]
        source: std::io::Error,
    },
}

/// Opens the configured storage and loads the policy.
pub async fn build_state(config: ServerConfig) -> Result<AppState, StartError> {
    // The policy first: a server that cannot decide must not leave a database behind.
    let loaded = policy_files::load(&config)?;
    // The signing key before the database, too: a key others may read stops the start first.
    let log_signer = transparency::load_or_create_key(&config.log_key_path())
        .map_err(|e| StartError::Config(e.to_string()))?;
    let log_signer = Arc::new(transparency::LogSigner::new(log_signer));
    let store: Arc<dyn Store> = match &config.backend {
        Backend::Sqlite(path) => Arc::new(SqliteStore::open(path)?),
        Backend::Postgres(dsn) => Arc::new(faramesh_storage::PostgresStore::connect(dsn).await?),
    };
    let executors = faramesh_executors::ExecutorSet::parse(&config.executors)?;
    // Stream ids continue from the ledger so a client resuming after a restart misses nothing.
    let start_after = store.last_event_seq().await?;
    let tokens = auth::Tokens::new(config.tokens.clone(), &[]);
    tokens.replace(&store.token_snapshot().await?);
    if config.enable_cors {
        browser::check_cors_setting(&config.cors_origins, tokens.enabled())
            .map_err(StartError::Config)?;
    }
    let hub = faramesh_events::EventHub::new(faramesh_events::HubConfig {
        start_after,
        max_subscribers: config.max_subscribers,
        ..Default::default()
    });
    let feed = store.change_feed(start_after);
    let shared_database = feed.is_some();
    let loaded = Arc::new(ArcSwap::from_pointee(loaded));
    let metrics = Arc::new(metrics::Metrics::new());
    // With a shared database the change feed announces every change, this process's too.
    let changes = Arc::new(changes::Changes::new(
        hub.clone(),
        metrics.clone(),
        loaded.clone(),
        !shared_database,
    ));
    // Every create and transition goes through here, so each is counted and announced.
    let store: Arc<dyn Store> = Arc::new(changes::ReportingStore::new(store, changes.clone()));
    let tokens = Arc::new(tokens);
    let mut confirmations = None;
    if let Some(feed) = feed {
        // Weak: neither keeps the cache alive after the server state is gone.
        tokio::spawn(relay_changes(
            feed,
            changes.clone(),
            Arc::downgrade(&tokens),
        ));
        tokio::spawn(refresh_tokens(store.clone(), Arc::downgrade(&tokens)));
        confirmations = Some(Arc::new(auth::Confirmations::start(
            store.clone(),
            tokens.clone(),
        )));
    }
    let mcp = mcp_gateway(&config);
    Ok(AppState::new(state::Shared {
        log_signer,
        mcp,
        tokens,
        shared_database,
        confirmations,
        store,
        loaded,
        config: Arc::new(config),
        hub,
        metrics,
        changes,
        executors,
    }))
}

/// The MCP gateway over the configured servers. A browser page may use it only from the
/// server's own origin or one listed in `FARAMESH_CORS_ORIGINS`, as MCP asks of every server.
fn mcp_gateway(config: &ServerConfig) -> Arc<mcp::McpGateway> {
    let cors_origins = config.cors_origins.clone();
    faramesh_mcp::http::Gateway::new(
        config.mcp_servers.clone(),
        faramesh_mcp::http::Settings {
            approval_wait: config.mcp_approval_wait,
            call_timeout: config.mcp_call_timeout,
            max_sessions: config.mcp_max_sessions,
        },
        Box::new(move |headers, origin| browser::origin_allowed(headers, origin, &cors_origins)),
    )
}

/// Publishes every replica's committed changes on this replica's live stream, with the ledger
/// sequence number as message id so a client can resume on any replica, and applies every
/// replica's token changes to this replica's cache the moment they arrive.
async fn relay_changes(
    mut feed: tokio::sync::mpsc::Receiver<faramesh_storage::FeedItem>,
    changes: Arc<changes::Changes>,
    tokens: std::sync::Weak<auth::Tokens>,
) {
    while let Some(item) = feed.recv().await {
        match item {
            faramesh_storage::FeedItem::Action(change) => changes.relay(change),
            faramesh_storage::FeedItem::Token(change) => {
                if let Some(tokens) = tokens.upgrade() {
                    tokens.apply(&change);
                }
            }
        }
    }
}

/// How often a replica checks the token version on its own. Requests with an API token check
/// it anyway (see [`auth::Confirmations`]); this catches up a replica that lost some of the
/// change feed while nobody used an API token on it, and one that still runs without
/// authentication while another replica created the first token.
const TOKEN_REFRESH: std::time::Duration = std::time::Duration::from_secs(1);

async fn refresh_tokens(store: Arc<dyn Store>, tokens: std::sync::Weak<auth::Tokens>) {
    let mut tick = tokio::time::interval(TOKEN_REFRESH);
    loop {
        tick.tick().await;
        let Some(tokens) = tokens.upgrade() else {
            return;
        };
        // On a database error keep the last known set; requests fail with 503 meanwhile anyway.
        let _ = auth::bring_up_to_date(&*store, &tokens).await;
    }
}

/// The whole application: API routes, the live stream, authentication, the browser boundary,
/// metrics, body limit and CORS.
pub fn app(state: AppState) -> Router {
    let cors = if state.config.enable_cors {
        browser::cors_layer(&state.config.cors_origins)
    } else {
        None
    };
    let guarded = state.clone();
    let telemetry = state.config.telemetry.clone();
    let hub = state.hub.clone();
    let history = Arc::new(history::LedgerHistory(state.store.clone()));
    let tracked = state.clone();
    let authenticating = state.clone();
    let mut router = routes::api(state.clone())
        .merge(mcp::routes(state.clone()))
        .merge(notifications::routes(state.clone()))
        .merge(transparency::routes(state.clone()))
        .merge(token_routes::routes().with_state(state))
        .merge(faramesh_events::router(hub, Some(history)))
        .merge(faramesh_ui::router())
        .fallback(unknown_route)
        .method_not_allowed_fallback(wrong_method)
        .layer(axum::middleware::from_fn_with_state(
            authenticating,
            auth::authenticate,
        ))
        .layer(axum::middleware::from_fn_with_state(
            guarded,
            browser::guard_open_server,
        ))
        // Outside authentication, so refused requests are counted too.
        .layer(axum::middleware::from_fn_with_state(
            tracked,
            metrics::track,
        ))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        // A panic is a bug; the client still gets an answer instead of a dropped connection.
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            panic_response,
        ));
    // Only when traces are on: otherwise a request costs nothing more.
    if let Some(telemetry) = telemetry {
        router = router.layer(axum::middleware::from_fn_with_state(
            telemetry,
            telemetry::trace_request,
        ));
    }
    if let Some(cors) = cors {
        router = router.layer(cors);
    }
    // Outermost, so it also sees the refusals of every layer above.
    router.layer(axum::middleware::from_fn(request_limits))
}

/// Refuses a URI or header section over its limit with `{"detail"}`, and says
/// `Connection: close` on a response after which hyper will not reuse the connection.
async fn request_limits(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::http::{header, HeaderValue, StatusCode};
    use axum::response::IntoResponse;
    let uri_bytes = request
        .uri()
        .path_and_query()
        .map_or(0, |p| p.as_str().len());
    let header_bytes: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    let refusal = |status: StatusCode, detail: String| {
        let body = serde_json::json!({"detail": detail, "code": "request_too_large"});
        (status, axum::Json(body)).into_response()
    };
    // A request with a body that is refused may not have been read to its end; hyper then
    // closes the connection instead of reading the rest.
    let has_body = request.headers().contains_key(header::TRANSFER_ENCODING)
        || request
            .headers()
            .get(header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() != b"0");
    let mut response = if uri_bytes > MAX_URI_BYTES {
        refusal(
            StatusCode::URI_TOO_LONG,
            format!(
                "The request URI is {uri_bytes} bytes, over the limit of {MAX_URI_BYTES}; shorten the query or the path"
            ),
        )
    } else if header_bytes > MAX_HEADER_BYTES {
        refusal(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            format!(
                "The request headers are {header_bytes} bytes, over the limit of {MAX_HEADER_BYTES}; send fewer or smaller headers"
            ),
        )
    } else {
        next.run(request).await
    };
    let status = response.status();
    let closes = matches!(
        status,
        StatusCode::PAYLOAD_TOO_LARGE
            | StatusCode::URI_TOO_LONG
            | StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
    ) || (has_body && (status.is_client_error() || status.is_server_error()));
    if closes {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

async fn unknown_route(uri: axum::http::Uri) -> error::ApiError {
    error::ApiError::NotFound(format!("Not Found: no endpoint at {}", uri.path()))
}

async fn wrong_method(
    method: axum::http::Method,
    uri: axum::http::Uri,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let body = serde_json::json!({"detail": format!("Method Not Allowed: {method} is not supported on {}", uri.path()), "code": "method_not_allowed"});
    (axum::http::StatusCode::METHOD_NOT_ALLOWED, axum::Json(body)).into_response()
}

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> axum::response::Response {
    use axum::response::IntoResponse;
    tracing::error!("a request handler panicked");
    let body = serde_json::json!({
        "detail": "Internal error while handling the request; check the action's current status before retrying, and report this",
        "code": "internal_error"
    });
    (
        axum::http::StatusCode::INTERNAL_SERVER_ERROR,
        axum::Json(body),
    )
        .into_response()
}
