//! The HTTP API over a real socket, a real SQLite file and the shipped default policy.

const POSTGRES: bool = false;
include!("api/suite.rs");
