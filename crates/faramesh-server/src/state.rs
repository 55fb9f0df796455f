//! What every request handler shares.

use crate::config::ServerConfig;
use arc_swap::ArcSwap;
use faramesh_core::{ActionStatus, Transition};
use faramesh_core::{Engine, Policy, Profile, ProfileState, Report};
use faramesh_events::{EventHub, EventKind};
use faramesh_storage::{ActionRecord, Store, StoreError, TransitionUpdate};
use std::sync::Arc;

/// The server's version, stamped on every decision as `runtime_version`.
pub const RUNTIME_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The active policy and profile, swapped whole on reload.
#[derive(Debug)]
pub struct Loaded {
    pub engine: Engine,
    /// Tool and operation names allowed as metric labels.
    pub known: crate::metrics::KnownNames,
    pub policy_exists: bool,
    pub loaded_at: String,
}

#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub loaded: Arc<ArcSwap<Loaded>>,
    pub config: Arc<ServerConfig>,
    /// The live stream every state change is announced on.
    pub hub: Arc<EventHub>,
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Built-in executors enabled for `start`.
    pub executors: faramesh_executors::ExecutorSet,
    /// The bearer tokens accepted, with their roles.
    pub tokens: Arc<crate::auth::Tokens>,
    /// Whether this process announces its own changes on the live stream. False when the
    /// store's change feed announces every replica's changes, this one's included.
    pub announce_locally: bool,
}

impl AppState {
    /// Applies a transition and announces the new state on the live stream.
    pub async fn transition(
        &self,
        id: &str,
        transition: Transition,
        update: TransitionUpdate,
    ) -> Result<ActionRecord, StoreError> {
        let (action, _) = self.store.transition(id, transition, update).await?;
        if self.announce_locally {
            self.hub
                .publish(EventKind::Updated, crate::view::stream_data(&action));
        }
        let loaded = self.loaded.load();
        let tool = loaded.known.tool(&action.tool);
        self.metrics.action_status(action.status, tool);
        if matches!(
            action.status,
            ActionStatus::Succeeded | ActionStatus::Failed | ActionStatus::Timeout
        ) {
            if let Some(seconds) = seconds_between(&action.created_at, &action.updated_at) {
                self.metrics
                    .finished(tool, loaded.known.operation(&action.operation), seconds);
            }
        }
        Ok(action)
    }
}

/// Why the policy or profile could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {what} file {path}: {why}")]
    Unreadable {
        what: &'static str,
        path: String,
        why: String,
    },
    #[error("{0}")]
    Invalid(Report),
}

/// Loads the policy (and the profile, if its file exists) as configured.
pub fn load(config: &ServerConfig) -> Result<Loaded, LoadError> {
    let policy_path = config.policy_file.display().to_string();
    let (policy, exists) = match std::fs::read_to_string(&config.policy_file) {
        Ok(text) => (
            Some(Policy::parse(&policy_path, &text).map_err(LoadError::Invalid)?),
            true,
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && config.allow_missing_policy => {
            (None, false)
        }
        Err(e) => {
            return Err(LoadError::Unreadable {
                what: "policy",
                path: policy_path,
                why: e.to_string(),
            })
        }
    };
    let profile_path = config.profile_file.display().to_string();
    let profile = match std::fs::read_to_string(&config.profile_file) {
        Ok(text) => ProfileState::Loaded(Box::new(
            Profile::parse(&profile_path, &text).map_err(LoadError::Invalid)?,
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => ProfileState::None,
        Err(e) => {
            return Err(LoadError::Unreadable {
                what: "profile",
                path: profile_path,
                why: e.to_string(),
            })
        }
    };
    let engine = Engine::new(policy, RUNTIME_VERSION)
        .with_profile(profile)
        .with_policy_version(config.policy_version.as_deref());
    Ok(Loaded {
        known: crate::metrics::KnownNames::of(&engine),
        engine,
        policy_exists: exists,
        loaded_at: faramesh_storage::now_timestamp(),
    })
}

/// Seconds from one stored timestamp to another.
fn seconds_between(start: &str, end: &str) -> Option<f64> {
    let parse = |t: &str| chrono::DateTime::parse_from_rfc3339(t).ok();
    let elapsed = parse(end)?.signed_duration_since(parse(start)?);
    Some(elapsed.num_microseconds()? as f64 / 1e6)
}
