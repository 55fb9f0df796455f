//! Built-in executors.
