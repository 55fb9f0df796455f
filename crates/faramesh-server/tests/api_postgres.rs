//! The same API suite on the PostgreSQL backend, each test in a database of its own.
//! Needs `FARAMESH_TEST_POSTGRES_URL` (set by `.ci/run`); without it the tests return at once.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test stops at the first setup step or expectation that fails"
)]

const POSTGRES: bool = true;
include!("api/server.rs");
include!("api/suite.rs");
