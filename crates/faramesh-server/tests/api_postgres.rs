//! The same API suite on the PostgreSQL backend, each test in a database of its own.
//! Needs `FARAMESH_TEST_POSTGRES_URL` (set by `.ci/run`); without it the tests return at once.

const POSTGRES: bool = true;
include!("api/server.rs");
include!("api/suite.rs");
