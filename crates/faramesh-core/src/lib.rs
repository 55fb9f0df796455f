//! The pure core of Faramesh: everything needed to decide whether an agent's tool call may
//! run, with no I/O and no async.
//!
//! - [`json`]: canonical JSON and the probe text that conditions search;
//! - [`hash`]: `request_hash`, `provenance_id`, event `record_hash`;
//! - [`yaml`]: a YAML tree that remembers where every node stands, for diagnostics;
//! - [`policy`] and [`profile`]: parsed, checked as a whole, compiled once;
//! - [`engine`]: profile → policy → risk → version-bound fields, fail closed;
//! - [`lifecycle`] and [`ledger`]: action statuses and transitions, hash-chain verification and
//!   the binding of action rows to their chains;
//! - [`cases`] and [`diff`]: policy test suites and policy comparison for the CLI.

pub mod action;
pub mod cases;
pub mod codes;
pub mod decision;
pub mod diagnostic;
pub mod diff;
pub mod engine;
pub mod hash;
pub mod json;
pub mod ledger;
pub mod lifecycle;
pub mod policy;
pub mod profile;
pub mod settings_file;
pub mod timestamp;
pub mod yaml;

pub use action::ActionRequest;
pub use decision::{DecidedBy, Decision, Outcome, RiskLevel};
pub use diagnostic::{Diagnostic, Report, Severity};
pub use engine::{Engine, ProfileState};
pub use lifecycle::{ActionStatus, EventType, Transition};
pub use policy::Policy;
pub use profile::Profile;
