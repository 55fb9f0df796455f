//! `--hot-reload`: the policy and profile files reloaded when they change.

use crate::state::AppState;
use std::time::Duration;

/// What the policy and profile files held at the last look.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FileFingerprint(Vec<Option<Vec<u8>>>);

impl FileFingerprint {
    /// The current contents of the policy and profile files (`None` for a missing file).
    pub fn read(config: &crate::ServerConfig) -> FileFingerprint {
        FileFingerprint(vec![
            std::fs::read(&config.policy_file).ok(),
            std::fs::read(&config.profile_file).ok(),
            config
                .shadow_policy_file
                .as_ref()
                .and_then(|f| std::fs::read(f).ok()),
        ])
    }
}

/// The result of one hot-reload check.
#[derive(Debug, PartialEq, Eq)]
pub enum ReloadCheck {
    Unchanged,
    Reloaded,
    /// The files changed but do not load; the last good policy stays active.
    Rejected(String),
}

/// Reloads policy and profile if their files changed since `seen`.
pub fn reload_if_changed(state: &AppState, seen: &mut FileFingerprint) -> ReloadCheck {
    let now = FileFingerprint::read(&state.config);
    if now == *seen {
        return ReloadCheck::Unchanged;
    }
    *seen = now;
    match crate::policy_files::load(&state.config) {
        Ok(loaded) => {
            state.loaded.store(std::sync::Arc::new(loaded));
            state.metrics.reload(true);
            ReloadCheck::Reloaded
        }
        Err(e) => {
            state.metrics.reload(false);
            ReloadCheck::Rejected(e.to_string())
        }
    }
}

/// Watches the policy and profile files, reloading on every change.
pub fn spawn_hot_reload(state: AppState, every: Duration) {
    tokio::spawn(async move {
        let mut seen = FileFingerprint::read(&state.config);
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            match reload_if_changed(&state, &mut seen) {
                ReloadCheck::Unchanged => {}
                ReloadCheck::Reloaded => tracing::info!("policy files changed: reloaded"),
                ReloadCheck::Rejected(why) => {
                    tracing::error!("policy files changed but were rejected; the last good policy stays active:\n{why}")
                }
            }
        }
    });
}
