//! Test support: a PostgreSQL database of its own for each test.
//!
//! Tests that need PostgreSQL read `FARAMESH_TEST_POSTGRES_URL` (`.ci/run` sets it). Without it
//! [`fresh_postgres_database`] prints a notice and returns `None`, and the test returns at once.

#![allow(
    clippy::expect_used,
    reason = "test support: a database that cannot be prepared fails the test that asked for it"
)]

/// A test database, dropped (connections still open are terminated) when this is dropped.
#[derive(Debug)]
pub struct Database {
    admin_url: String,
    name: String,
    url: String,
}

impl Database {
    /// The connection URL of this database.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let (url, name) = (self.admin_url.clone(), self.name.clone());
        // Drop may run inside a runtime that must not block; use a thread with its own.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                    .await
                    .ok()?;
                tokio::spawn(connection);
                client
                    .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                    .await
                    .ok()
            })
        })
        .join();
    }
}

/// Creates an empty database and returns its URL, or `None` when PostgreSQL is not configured.
///
/// # Panics
/// When `FARAMESH_TEST_POSTGRES_URL` is set but the server refuses: a configured database that
/// does not work is a failure, not a skip.
pub async fn fresh_postgres_database() -> Option<(String, Database)> {
    let Ok(base) = std::env::var("FARAMESH_TEST_POSTGRES_URL") else {
        eprintln!("skipped: FARAMESH_TEST_POSTGRES_URL is not set (.ci/run sets it)");
        return None;
    };
    let name = format!("faramesh_test_{}", uuid::Uuid::new_v4().simple());
    let (client, connection) = tokio_postgres::connect(&base, tokio_postgres::NoTls)
        .await
        .expect("FARAMESH_TEST_POSTGRES_URL accepts connections");
    tokio::spawn(connection);
    client
        .batch_execute(&format!("CREATE DATABASE \"{name}\""))
        .await
        .expect("CREATE DATABASE");
    let (without_query, query) = base.split_once('?').unwrap_or((&base, ""));
    let server = without_query
        .rsplit_once('/')
        .map_or(without_query, |(server, _)| server);
    let query = if query.is_empty() {
        String::new()
    } else {
        format!("?{query}")
    };
    let url = format!("{server}/{name}{query}");
    Some((
        url.clone(),
        Database {
            admin_url: base,
            name,
            url,
        },
    ))
}
