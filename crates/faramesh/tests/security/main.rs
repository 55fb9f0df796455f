//! The security regression suite: one test per attack that once broke the promise "nothing
//! runs unless it was decided, and what runs is what was decided". Every test drives the real
//! binary as an attacker would and fails when the hole reopens.

mod harness;
mod executor_results;
mod idempotency;
mod open_server;
mod redecide;
mod http_executor;
mod shell_tree;
mod policy_bypass;
