//! Reading the policy and profile files into the engine the server decides with.

use crate::config::ServerConfig;
use faramesh_core::{Engine, Policy, Profile, ProfileState, Report};

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

/// Approval rules beyond one approval by any approver or admin (a quorum, named approvers, a
/// timeout, routes to notify) are read and checked by the policy language, but the server does
/// not enforce them yet: a policy that relies on them is refused, never half enforced.
fn refuse_unenforced_approval_rules(path: &str, policy: &Policy) -> Result<(), LoadError> {
    let default = faramesh_core::policy::ApprovalRule::default();
    match policy
        .rules()
        .iter()
        .find(|r| r.approval.as_deref().is_some_and(|a| *a != default))
    {
        Some(rule) => Err(LoadError::Unsupported(format!(
            "{path}: rule {} (line {}) sets approval rules (approvers, roles, timeout, on_timeout or notify) that this server does not enforce yet; it refuses the policy rather than enforce it in part. Use `require_approval: true` for one approval by any approver or admin",
            rule.number, rule.line
        ))),
        None => Ok(()),
    }
}

/// Loads the policy (and the profile, if its file exists) as configured.
pub fn load(config: &ServerConfig) -> Result<Loaded, LoadError> {
    let policy_path = config.policy_file.display().to_string();
    let (policy, exists) = match std::fs::read_to_string(&config.policy_file) {
        Ok(text) => {
            let policy = Policy::parse(&policy_path, &text).map_err(LoadError::Invalid)?;
            refuse_unenforced_approval_rules(&policy_path, &policy)?;
            (Some(policy), true)
        }
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
