//! `faramesh doctor`: is this directory ready to run the server? One line per check.

use crate::cli::Global;
use crate::output::{self, paint};
use crate::Status;
use anstream::println;
use faramesh_core::{Policy, Profile};
use faramesh_server::{Backend, ServerConfig};

enum Check {
    Pass(String),
    /// Not a failure, but worth knowing (and how to change it).
    Note(String),
    Fail(String, String),
}

pub fn run(global: &Global) -> anyhow::Result<Status> {
    crate::env_file::load()?;
    let mut checks = Vec::new();
    let config = match ServerConfig::from_lookup(|name| std::env::var(name).ok()) {
        Ok(mut config) => {
            if let Some(host) = &global.host {
                config.host.clone_from(host);
            }
            if let Some(port) = global.port {
                config.port = port;
            }
            checks.push(Check::Pass(
                "configuration (environment and .env) is valid".into(),
            ));
            config
        }
        Err(e) => {
            checks.push(Check::Fail(
                format!("configuration: {e}"),
                "fix or unset that variable (in the environment or .env)".into(),
            ));
            return finish(checks, global);
        }
    };
    checks.push(policy(&config));
    checks.push(profile(&config));
    checks.push(database(&config));
    checks.push(port(&config));
    checks.push(if config.tokens.is_empty() {
        Check::Note("no FARAMESH_TOKEN: unless API tokens exist, the API is open to anyone who can reach it; set FARAMESH_TOKEN, or create an admin token with `faramesh token create --name admin --role admin`".into())
    } else {
        Check::Pass(format!("authentication on ({} admin token(s))", config.tokens.len()))
    });
    checks.push(if faramesh_ui::assets_present() {
        Check::Pass("web UI assets are built into this binary".into())
    } else {
        Check::Fail(
            "the web UI assets are missing from this binary".into(),
            "rebuild from a complete checkout (ui/assets/index.html must exist)".into(),
        )
    });
    finish(checks, global)
}

fn policy(config: &ServerConfig) -> Check {
    let path = &config.policy_file;
    match std::fs::read_to_string(path) {
        Ok(text) => match Policy::parse(&path.display().to_string(), &text) {
            Ok(p) => Check::Pass(format!(
                "policy {} is valid ({} rules, version {})",
                path.display(),
                p.rules().len(),
                p.default_version()
            )),
            Err(report) => Check::Fail(
                format!(
                    "policy {} has {} problem(s)",
                    path.display(),
                    report.error_count()
                ),
                format!(
                    "run `faramesh policy validate {}` to see each one",
                    path.display()
                ),
            ),
        },
        Err(e) => Check::Fail(
            format!("policy {} cannot be read ({e})", path.display()),
            "run `faramesh init` to write a starter policy, or set FARA_POLICY_FILE".into(),
        ),
    }
}

fn profile(config: &ServerConfig) -> Check {
    let path = &config.profile_file;
    match std::fs::read_to_string(path) {
        Ok(text) => match Profile::parse(&path.display().to_string(), &text) {
            Ok(p) => Check::Pass(format!(
                "execution profile {} is valid (id {}, version {})",
                path.display(),
                p.id(),
                p.version()
            )),
            Err(report) => Check::Fail(
                format!(
                    "execution profile {} has {} problem(s)",
                    path.display(),
                    report.error_count()
                ),
                format!(
                    "run `faramesh policy validate {} --profile {}`",
                    config.policy_file.display(),
                    path.display()
                ),
            ),
        },
        Err(_) => Check::Note(format!(
            "no execution profile at {} (optional)",
            path.display()
        )),
    }
}

fn database(config: &ServerConfig) -> Check {
    match &config.backend {
        Backend::Postgres(dsn) => {
            let connected = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())
                .and_then(|runtime| {
                    runtime
                        .block_on(faramesh_storage::PostgresStore::connect(dsn))
                        .map_err(|e| e.to_string())
                });
            match connected {
                Ok(_) => Check::Pass(
                    "PostgreSQL (FARA_POSTGRES_DSN) answers and its schema is up to date".into(),
                ),
                Err(e) => Check::Fail(
                    format!("PostgreSQL (FARA_POSTGRES_DSN): {e}"),
                    "check that the server runs and the DSN's host, port, user, password and database are right".into(),
                ),
            }
        }
        // Read-only: a check never creates or migrates a database.
        Backend::Sqlite(path) if !path.exists() => Check::Note(format!(
            "database {} does not exist yet; `faramesh serve` creates it",
            path.display()
        )),
        Backend::Sqlite(path) => match faramesh_storage::LedgerFile::open(path) {
            Ok(_) => Check::Pass(format!("database {} opens", path.display())),
            Err(e) => Check::Fail(
                format!("database {}: {e}", path.display()),
                "check the file's permissions, or point FARA_SQLITE_PATH (--db) at the server's database".into(),
            ),
        },
    }
}

fn port(config: &ServerConfig) -> Check {
    let address = format!("{}:{}", config.host, config.port);
    match std::net::TcpListener::bind(&address) {
        Ok(_) => Check::Pass(format!("{address} is free to listen on")),
        // A server already there is what the operator wants checked: ask it.
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => running_server(&address)
            .unwrap_or_else(|| {
                Check::Fail(
                    format!("cannot listen on {address} ({e}), and what listens there is not a Faramesh server"),
                    "stop it, or choose another --port / FARAMESH_PORT".into(),
                )
            }),
        Err(e) => Check::Fail(
            format!("cannot listen on {address} ({e})"),
            "is a server already running there? stop it, or choose another --port / FARAMESH_PORT"
                .into(),
        ),
    }
}

/// What a Faramesh server listening at `address` says of itself: `/health`, then `/ready`;
/// `None` when what answers is not one.
fn running_server(address: &str) -> Option<Check> {
    let http = reqwest::blocking::Client::builder()
        .timeout(std::time::Duration::from_secs(2))
        .build()
        .ok()?;
    let health: serde_json::Value = http
        .get(format!("http://{address}/health"))
        .send()
        .ok()?
        .json()
        .ok()?;
    if health["status"] != "healthy" {
        return None;
    }
    let ready = http.get(format!("http://{address}/ready")).send().ok()?;
    Some(if ready.status().is_success() {
        Check::Pass(format!(
            "a Faramesh server is running at {address}: healthy and ready"
        ))
    } else {
        let body: serde_json::Value = ready.json().unwrap_or_default();
        Check::Fail(
            format!(
                "the Faramesh server at {address} runs but is not ready: {}",
                body["detail"].as_str().unwrap_or("no reason given")
            ),
            "see its log; /ready names what it waits for".into(),
        )
    })
}

fn finish(checks: Vec<Check>, global: &Global) -> anyhow::Result<Status> {
    if global.json {
        let failed = checks.iter().any(|c| matches!(c, Check::Fail(..)));
        let shown: Vec<serde_json::Value> = checks
            .iter()
            .map(|c| match c {
                Check::Pass(text) => serde_json::json!({"result": "pass", "check": text}),
                Check::Note(text) => serde_json::json!({"result": "note", "check": text}),
                Check::Fail(text, fix) => {
                    serde_json::json!({"result": "fail", "check": text, "fix": fix})
                }
            })
            .collect();
        println!("{}", output::pretty(&shown));
        return Ok(if failed {
            Status::Failure
        } else {
            Status::Success
        });
    }
    let mut failed = 0;
    for check in &checks {
        match check {
            Check::Pass(text) => println!("{} {text}", paint(output::GOOD, "✓")),
            Check::Note(text) => println!("{} {text}", paint(output::WARN, "!")),
            Check::Fail(text, fix) => {
                failed += 1;
                println!("{} {text}\n    fix: {fix}", paint(output::ERROR, "✗"));
            }
        }
    }
    Ok(if failed == 0 {
        Status::Success
    } else {
        Status::Failure
    })
}
