//! Reading the policy and profile files into the engine the server decides with.

use crate::config::ServerConfig;
use faramesh_core::{Engine, Policy, Profile, ProfileState, Report};

/// The server's version, stamped on every decision as `runtime_version`.
pub const RUNTIME_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The active policy and profile, swapped whole on reload.
#[derive(Debug)]
pub struct Loaded {
    pub engine: Engine,
    /// The candidate policy (`--shadow-policy`) with the same profile: every submission is
    /// decided with it too, and a different outcome is recorded, never enforced.
    pub shadow: Option<Engine>,
    /// Submissions decided with `shadow` since this load, and how many it disagreed with.
    pub shadow_counts: ShadowCounts,
    /// Tool and operation names allowed as metric labels.
    pub known: crate::metrics::KnownNames,
    pub policy_exists: bool,
    pub loaded_at: String,
}

/// Counts of the shadow policy's decisions.
#[derive(Debug, Default)]
pub struct ShadowCounts {
    pub decided: std::sync::atomic::AtomicU64,
    pub disagreed: std::sync::atomic::AtomicU64,
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
    /// The policy asks for something this server cannot yet carry out; refused rather than
    /// carried out in part.
    #[error("{0}")]
    Unsupported(String),
}

/// The approval rules of `policy` name only routes of the routes file, and a rule that
/// escalates has escalation routes to tell: a policy that relies on a route that does not
/// exist is refused, never half enforced.
fn check_approval_routes(
    path: &str,
    policy: &Policy,
    routes: &faramesh_notify::Routes,
) -> Result<(), LoadError> {
    for rule in policy.rules() {
        let Some(approval) = rule.approval.as_deref() else {
            continue;
        };
        let unknown = routes.unknown(&approval.notify);
        if let Some(name) = unknown.first() {
            let known: Vec<&str> = routes.routes.keys().map(String::as_str).collect();
            return Err(LoadError::Unsupported(if known.is_empty() {
                format!(
                    "{path}: rule {} (line {}) notifies route {name:?}, but no routes file is loaded; start the server with --notify FILE (or a notify.yaml beside it)",
                    rule.number, rule.line
                )
            } else {
                format!(
                    "{path}: rule {} (line {}) notifies route {name:?}, which is not in the routes file; its routes are {}",
                    rule.number,
                    rule.line,
                    known.join(", ")
                )
            }));
        }
        if approval.on_timeout == faramesh_core::policy::OnTimeout::Escalate
            && routes.escalation.is_empty()
        {
            return Err(LoadError::Unsupported(format!(
                "{path}: rule {} (line {}) escalates on timeout, but the routes file names no `escalation` routes to tell; add `escalation: [route]` to it",
                rule.number, rule.line
            )));
        }
    }
    Ok(())
}

/// Loads the policy (and the profile, if its file exists) as configured.
pub fn load(config: &ServerConfig) -> Result<Loaded, LoadError> {
    let policy_path = config.policy_file.display().to_string();
    let (policy, exists) = match std::fs::read_to_string(&config.policy_file) {
        Ok(text) => {
            let policy = Policy::parse(&policy_path, &text).map_err(LoadError::Invalid)?;
            check_approval_routes(&policy_path, &policy, &config.notify_routes)?;
            (Some(policy), true)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && config.allow_missing_policy => {
            (None, false)
        }
        Err(e) => {
            let why = if e.kind() == std::io::ErrorKind::NotFound {
                format!("{e}; run `faramesh init` to write a starter policy here, or pass --policy FILE")
            } else {
                e.to_string()
            };
            return Err(LoadError::Unreadable {
                what: "policy",
                path: policy_path,
                why,
            });
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
    let shadow = match &config.shadow_policy_file {
        None => None,
        Some(path) => {
            let shown = path.display().to_string();
            let text = std::fs::read_to_string(path).map_err(|e| LoadError::Unreadable {
                what: "shadow policy",
                path: shown.clone(),
                why: e.to_string(),
            })?;
            let candidate = Policy::parse(&shown, &text).map_err(LoadError::Invalid)?;
            Some(Engine::new(Some(candidate), RUNTIME_VERSION).with_profile(profile.clone()))
        }
    };
    let engine = Engine::new(policy, RUNTIME_VERSION)
        .with_profile(profile)
        .with_policy_version(config.policy_version.as_deref());
    Ok(Loaded {
        known: crate::metrics::KnownNames::of(&engine),
        engine,
        shadow,
        shadow_counts: ShadowCounts::default(),
        policy_exists: exists,
        loaded_at: faramesh_storage::now_timestamp(),
    })
}
