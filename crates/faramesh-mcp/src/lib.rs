//! The Faramesh MCP gateway: between any MCP client and any MCP server, every `tools/call`
//! becomes an action — decided, recorded and, when the policy says so, approved by a human —
//! before the server sees it. Everything else passes through unchanged.
//!
//! The gateway reaches Faramesh through one interface, [`Gate`]; [`RestGate`] implements it over
//! the REST API. [`wrap`] runs the stdio wrapper. docs/mcp.md describes the behaviour.

pub mod config;
mod gate;
mod govern;
pub mod http;
mod jsonrpc;
mod lines;
mod relay;
mod rest_gate;
mod results;
mod upstream;
mod wrap;

pub use gate::{Call, Decided, Finished, Gate, GateError};
pub use relay::Options;
pub use rest_gate::RestGate;
pub use upstream::stdio::Command;
pub use wrap::{wrap, Ended, WrapError};

/// Tool names the server's built-in executors run; an MCP server may not take one as its name,
/// or a started call could be run by an executor instead of forwarded.
pub const RESERVED_SERVER_NAMES: &[&str] = config::RESERVED_NAMES;
