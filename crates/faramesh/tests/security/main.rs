//! The security regression suite: one test per attack that once broke the promise "nothing
//! runs unless it was decided, and what runs is what was decided". Every test drives the real
//! binary as an attacker would and fails when the hole reopens.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test stops at the first setup step or expectation that fails"
)]

mod apply;
mod executor_results;
mod harness;
mod http_executor;
mod idempotency;
mod ledger_binding;
mod open_server;
mod policy_bypass;
mod redecide;
mod shell_tree;
