//! The Faramesh HTTP server: thin routes over the decision core and the storage crate.
