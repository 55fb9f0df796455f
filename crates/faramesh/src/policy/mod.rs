//! `faramesh policy ...`: policy tools; all but `shadow-report` need no server.

mod diff;
mod new;
mod shadow;
mod test;
mod validate;

use crate::cli::{Global, PolicyCommand};
use crate::{render, Status};
use anyhow::Context;
use faramesh_core::{Engine, Policy, Profile, ProfileState, Report};
use std::path::Path;

/// The runtime version stamped on every decision.
pub const RUNTIME_VERSION: &str = env!("CARGO_PKG_VERSION");

pub fn run(cmd: &PolicyCommand, global: &Global) -> anyhow::Result<Status> {
    match cmd {
        PolicyCommand::Validate { file, profile } => {
            validate::run(file, profile.as_deref(), global)
        }
        PolicyCommand::Test(args) => test::run(args, global),
        PolicyCommand::Diff { old, new, cases } => diff::run(old, new, cases.as_deref(), global),
        PolicyCommand::New {
            name,
            output,
            stdout,
        } => new::run(name, output.as_deref(), *stdout),
        PolicyCommand::ShadowReport {
            policy_hash,
            latest,
        } => shadow::run(policy_hash.as_deref(), *latest, global),
    }
}

/// Reads a file, saying which file could not be read and why.
pub fn read(path: &Path, what: &str) -> anyhow::Result<String> {
    std::fs::read_to_string(path)
        .with_context(|| format!("cannot read {what} file {}", path.display()))
}

/// Parses a file with `parse`, printing the report (and returning `Invalid`) when it has errors.
fn load<T>(
    path: &Path,
    what: &str,
    global: &Global,
    parse: impl Fn(&str, &str) -> Result<T, Report>,
) -> anyhow::Result<T> {
    let text = read(path, what)?;
    let name = path.display().to_string();
    parse(&name, &text).map_err(|report| {
        if global.json {
            println!(
                "{}",
                serde_json::to_string_pretty(&report).unwrap_or_default()
            );
        } else {
            render::print_report(&report, &text);
        }
        let n = report.error_count();
        anyhow::anyhow!(
            "{name} is not a valid {what} file ({n} error{}); fix the problems listed above",
            if n == 1 { "" } else { "s" }
        )
    })
}

/// Loads a policy, and a profile if given, into an engine.
fn engine(policy: &Path, profile: Option<&Path>, global: &Global) -> anyhow::Result<Engine> {
    let policy = load(policy, "policy", global, Policy::parse)?;
    let profile = match profile {
        Some(path) => {
            ProfileState::Loaded(Box::new(load(path, "profile", global, Profile::parse)?))
        }
        None => ProfileState::None,
    };
    let version = std::env::var("FARAMESH_POLICY_VERSION").ok();
    Ok(Engine::new(Some(policy), RUNTIME_VERSION)
        .with_profile(profile)
        .with_policy_version(version.as_deref()))
}
