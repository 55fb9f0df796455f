//! Server configuration from the environment (docs/api.md). The binary loads `.env` first (without
//! overriding real variables) and applies its flags last, so flags > environment > `.env`.

use std::path::PathBuf;
use std::time::Duration;

/// Which database to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    Sqlite(PathBuf),
    Postgres(String),
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub host: String,
    pub port: u16,
    /// Admin bearer tokens; empty means the API is open.
    pub tokens: Vec<String>,
    pub enable_cors: bool,
    /// Origins allowed to call the API from a browser (`FARAMESH_CORS_ORIGINS`); CORS is off
    /// when empty. `*` is accepted only with authentication on (checked at start).
    pub cors_origins: Vec<String>,
    /// Host names, besides loopback ones, an open server answers (`FARAMESH_ALLOWED_HOSTS`).
    pub allowed_hosts: Vec<String>,
    pub demo: bool,
    pub policy_file: PathBuf,
    pub profile_file: PathBuf,
    /// A candidate policy every action is also decided with, never enforced
    /// (`FARAMESH_SHADOW_POLICY`, `--shadow-policy`).
    pub shadow_policy_file: Option<PathBuf>,
    pub policy_version: Option<String>,
    pub hot_reload: bool,
    pub allow_missing_policy: bool,
    pub backend: Backend,
    pub executors: String,
    /// Inward networks (loopback, private, link-local, ...) the `http` executor may reach
    /// (`FARAMESH_HTTP_ALLOWED_NETWORKS`); none by default.
    pub http_allowed_networks: faramesh_executors::AllowedNetworks,
    pub action_timeout: Duration,
    pub approval_ttl: Option<Duration>,
    /// Connection timeouts and caps (`FARAMESH_HEADER_TIMEOUT`, `FARAMESH_IDLE_TIMEOUT`,
    /// `FARAMESH_WRITE_TIMEOUT`, `FARAMESH_MAX_CONNECTIONS`, `FARAMESH_SHUTDOWN_TIMEOUT`).
    pub connections: crate::serve::ConnectionLimits,
    /// Live-stream subscribers at once (`FARAMESH_MAX_SUBSCRIBERS`).
    pub max_subscribers: usize,
    /// The MCP servers served at `/mcp/{name}` (none unless a servers file is read).
    pub mcp_servers: faramesh_mcp::config::ServersFile,
    /// How long an MCP call waits for a human (`FARAMESH_MCP_APPROVAL_WAIT`, default 120 s).
    pub mcp_approval_wait: Duration,
    /// How long a forwarded MCP call may take (`FARAMESH_MCP_CALL_TIMEOUT`, default 300 s).
    pub mcp_call_timeout: Duration,
    /// MCP sessions open at once (`FARAMESH_MCP_MAX_SESSIONS`, default 100).
    pub mcp_max_sessions: usize,
    /// Where approval events are announced (none unless a routes file is read).
    pub notify_routes: std::sync::Arc<faramesh_notify::Routes>,
    /// Traces over OTLP, when the `OTEL_*` variables ask for them (set by `faramesh serve`).
    pub telemetry: Option<std::sync::Arc<faramesh_otel::Telemetry>>,
    /// The key that signs the log's checkpoints (`FARAMESH_LOG_KEY`); see
    /// [`ServerConfig::log_key_path`].
    pub log_key_file: Option<PathBuf>,
    /// How often a checkpoint is signed while the log grows (`FARAMESH_CHECKPOINT_EVERY`,
    /// seconds, default 5).
    pub checkpoint_every: Duration,
}

/// A variable with a value that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{variable}={value:?} is not valid: {why}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub value: String,
    pub why: String,
}

impl ServerConfig {
    /// Where the log's signing key is: the file configured, else `log.key` beside the SQLite
    /// database, else `data/log.key`. Created at first start when missing.
    pub fn log_key_path(&self) -> PathBuf {
        match (&self.log_key_file, &self.backend) {
            (Some(file), _) => file.clone(),
            (None, Backend::Sqlite(db)) => db
                .parent()
                .unwrap_or(std::path::Path::new(""))
                .join("log.key"),
            (None, Backend::Postgres(_)) => PathBuf::from(crate::log_key::DEFAULT_KEY_FILE),
        }
    }

    /// Reads the configuration through `var` (the process environment in production).
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<ServerConfig, ConfigError> {
        // The new name wins over the legacy one.
        let get =
            |name: &'static str, legacy: Option<&'static str>| -> Option<(&'static str, String)> {
                var(name)
                    .map(|v| (name, v))
                    .or_else(|| legacy.and_then(|l| var(l).map(|v| (l, v))))
                    .filter(|(_, v)| !v.trim().is_empty())
            };
        let flag = |name: &'static str, default: bool| -> Result<bool, ConfigError> {
            match get(name, None) {
                None => Ok(default),
                Some((variable, v)) => match v.trim().to_ascii_lowercase().as_str() {
                    "1" | "true" | "yes" | "on" => Ok(true),
                    "0" | "false" | "no" | "off" => Ok(false),
                    _ => Err(ConfigError {
                        variable,
                        value: v,
                        why: "use 1 or 0".into(),
                    }),
                },
            }
        };
        let seconds = |name: &'static str| -> Result<Option<Duration>, ConfigError> {
            match get(name, None) {
                None => Ok(None),
                Some((variable, v)) => match v.trim().parse::<f64>() {
                    Ok(s) if s > 0.0 && s.is_finite() => Ok(Some(Duration::from_secs_f64(s))),
                    _ => Err(ConfigError {
                        variable,
                        value: v,
                        why: "expected a positive number of seconds".into(),
                    }),
                },
            }
        };
        let count = |name: &'static str| -> Result<Option<usize>, ConfigError> {
            match get(name, None) {
                None => Ok(None),
                Some((variable, v)) => match v.trim().parse::<usize>() {
                    Ok(n) if n > 0 => Ok(Some(n)),
                    _ => Err(ConfigError {
                        variable,
                        value: v,
                        why: "expected a positive whole number".into(),
                    }),
                },
            }
        };
        let defaults = crate::serve::ConnectionLimits::default();
        let connections = crate::serve::ConnectionLimits {
            timeouts: crate::connection::Timeouts {
                header: seconds("FARAMESH_HEADER_TIMEOUT")?.unwrap_or(defaults.timeouts.header),
                idle: seconds("FARAMESH_IDLE_TIMEOUT")?.unwrap_or(defaults.timeouts.idle),
                write: seconds("FARAMESH_WRITE_TIMEOUT")?.unwrap_or(defaults.timeouts.write),
            },
            max_connections: count("FARAMESH_MAX_CONNECTIONS")?.unwrap_or(defaults.max_connections),
            shutdown_timeout: seconds("FARAMESH_SHUTDOWN_TIMEOUT")?
                .unwrap_or(defaults.shutdown_timeout),
        };
        let port = match get("FARAMESH_PORT", Some("FARA_API_PORT")) {
            None => 8000,
            Some((variable, v)) => v.trim().parse().map_err(|_| ConfigError {
                variable,
                value: v,
                why: "expected a port number 0-65535".into(),
            })?,
        };
        let backend =
            match get("FARA_DB_BACKEND", None).map(|(n, v)| (n, v.trim().to_ascii_lowercase())) {
                None => Backend::Sqlite(sqlite_path(&get)),
                Some((_, b)) if b == "sqlite" => Backend::Sqlite(sqlite_path(&get)),
                Some((variable, b)) if b == "postgres" || b == "postgresql" => {
                    match get("FARA_POSTGRES_DSN", None) {
                        Some((_, dsn)) => Backend::Postgres(dsn),
                        None => return Err(ConfigError {
                            variable,
                            value: b,
                            why: "FARA_POSTGRES_DSN must be set to a PostgreSQL connection string"
                                .into(),
                        }),
                    }
                }
                Some((variable, b)) => {
                    return Err(ConfigError {
                        variable,
                        value: b,
                        why: "use sqlite or postgres".into(),
                    })
                }
            };
        Ok(ServerConfig {
            log_key_file: get("FARAMESH_LOG_KEY", None).map(|(_, v)| PathBuf::from(v)),
            checkpoint_every: seconds("FARAMESH_CHECKPOINT_EVERY")?
                .unwrap_or(Duration::from_secs(5)),
            host: get("FARAMESH_HOST", Some("FARA_API_HOST"))
                .map_or_else(|| "127.0.0.1".to_owned(), |(_, v)| v.trim().to_owned()),
            port,
            tokens: admin_tokens(&var)?,
            enable_cors: flag("FARAMESH_ENABLE_CORS", true)?,
            cors_origins: list(get("FARAMESH_CORS_ORIGINS", None)),
            allowed_hosts: list(get("FARAMESH_ALLOWED_HOSTS", None))
                .into_iter()
                .map(|h| h.to_ascii_lowercase())
                .collect(),
            demo: flag("FARAMESH_DEMO", false)?,
            policy_file: get("FARA_POLICY_FILE", None).map_or_else(
                || PathBuf::from("policies/default.yaml"),
                |(_, v)| PathBuf::from(v),
            ),
            profile_file: get("FARAMESH_PROFILE_FILE", None).map_or_else(
                || PathBuf::from("profiles/default.yaml"),
                |(_, v)| PathBuf::from(v),
            ),
            shadow_policy_file: get("FARAMESH_SHADOW_POLICY", None).map(|(_, v)| PathBuf::from(v)),
            policy_version: get("FARAMESH_POLICY_VERSION", None).map(|(_, v)| v),
            hot_reload: flag("FARAMESH_HOT_RELOAD", false)?,
            allow_missing_policy: false,
            backend,
            executors: get("FARAMESH_EXECUTORS", None)
                .map_or_else(|| "shell".to_owned(), |(_, v)| v),
            http_allowed_networks: match get(faramesh_executors::ALLOWED_NETWORKS_VAR, None) {
                None => faramesh_executors::AllowedNetworks::none(),
                Some((variable, v)) => {
                    faramesh_executors::AllowedNetworks::parse(&v).map_err(|e| ConfigError {
                        variable,
                        why: e.to_string(),
                        value: v,
                    })?
                }
            },
            action_timeout: seconds("FARAMESH_ACTION_TIMEOUT")?.unwrap_or(Duration::from_secs(300)),
            approval_ttl: seconds("FARAMESH_APPROVAL_TTL")?,
            connections,
            max_subscribers: count("FARAMESH_MAX_SUBSCRIBERS")?
                .unwrap_or(faramesh_events::HubConfig::default().max_subscribers),
            mcp_servers: faramesh_mcp::config::ServersFile::default(),
            mcp_approval_wait: seconds("FARAMESH_MCP_APPROVAL_WAIT")?
                .unwrap_or(Duration::from_secs(120)),
            mcp_call_timeout: seconds("FARAMESH_MCP_CALL_TIMEOUT")?
                .unwrap_or(Duration::from_secs(300)),
            mcp_max_sessions: count("FARAMESH_MCP_MAX_SESSIONS")?.unwrap_or(100),
            notify_routes: Default::default(),
            telemetry: None,
        })
    }
}

/// The admin tokens of `FARAMESH_TOKEN` (legacy `FARA_AUTH_TOKEN`), comma-separated. An empty
/// value means "no admin token"; a value that is set but holds no token (`" , "`) is an error,
/// because reading it as "authentication off" would open the API by a typo.
fn admin_tokens(var: &impl Fn(&str) -> Option<String>) -> Result<Vec<String>, ConfigError> {
    let Some((variable, value)) = ["FARAMESH_TOKEN", "FARA_AUTH_TOKEN"]
        .into_iter()
        .find_map(|name| var(name).filter(|v| !v.is_empty()).map(|v| (name, v)))
    else {
        return Ok(Vec::new());
    };
    let tokens: Vec<String> = value
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect();
    if tokens.is_empty() {
        return Err(ConfigError {
            variable,
            value,
            why: "it is set but holds no token; set a token (or several, comma-separated), or unset it to run without authentication".into(),
        });
    }
    Ok(tokens)
}

/// A comma-separated list; blank entries are dropped.
fn list(value: Option<(&'static str, String)>) -> Vec<String> {
    value.map_or_else(Vec::new, |(_, v)| {
        v.split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(str::to_owned)
            .collect()
    })
}

fn sqlite_path(
    get: &impl Fn(&'static str, Option<&'static str>) -> Option<(&'static str, String)>,
) -> PathBuf {
    get("FARA_SQLITE_PATH", None).map_or_else(
        || PathBuf::from("data/actions.db"),
        |(_, v)| PathBuf::from(v),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<ServerConfig, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        ServerConfig::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_match_the_spec() {
        let c = config(&[]).unwrap();
        assert_eq!((c.host.as_str(), c.port), ("127.0.0.1", 8000));
        assert!(c.tokens.is_empty() && c.enable_cors && !c.demo && !c.hot_reload);
        assert_eq!(c.backend, Backend::Sqlite(PathBuf::from("data/actions.db")));
        assert_eq!(c.policy_file, PathBuf::from("policies/default.yaml"));
        assert_eq!(c.action_timeout, Duration::from_secs(300));
        assert_eq!(c.approval_ttl, None);
        assert_eq!(c.connections.timeouts.header, Duration::from_secs(10));
        assert_eq!(c.connections.timeouts.idle, Duration::from_secs(60));
        assert_eq!(c.connections.max_connections, 10_000);
    }

    #[test]
    fn new_names_win_over_legacy_ones() {
        let c = config(&[
            ("FARA_API_PORT", "9000"),
            ("FARA_AUTH_TOKEN", "old"),
            ("FARAMESH_TOKEN", "a, b"),
        ])
        .unwrap();
        assert_eq!(c.port, 9000);
        assert_eq!(c.tokens, ["a", "b"]);
        let c = config(&[("FARA_API_PORT", "9000"), ("FARAMESH_PORT", "9100")]).unwrap();
        assert_eq!(c.port, 9100);
    }

    #[test]
    fn a_token_setting_without_a_token_is_an_error_not_auth_off() {
        for blank in [" , ", ",", "   ", " ,, "] {
            let error = config(&[("FARAMESH_TOKEN", blank)]).unwrap_err();
            assert_eq!(error.variable, "FARAMESH_TOKEN", "{blank:?}");
            assert!(error.to_string().contains("holds no token"), "{error}");
        }
        let error = config(&[("FARA_AUTH_TOKEN", ",")]).unwrap_err();
        assert_eq!(error.variable, "FARA_AUTH_TOKEN");
        // Empty is the conventional "unset" (a `.env` line `FARAMESH_TOKEN=`).
        assert!(config(&[("FARAMESH_TOKEN", "")]).unwrap().tokens.is_empty());
        assert_eq!(config(&[("FARAMESH_TOKEN", " a ,")]).unwrap().tokens, ["a"]);
    }

    #[test]
    fn origins_and_hosts_are_lists() {
        let c = config(&[
            (
                "FARAMESH_CORS_ORIGINS",
                "https://a.example, https://b.example,",
            ),
            ("FARAMESH_ALLOWED_HOSTS", "Gate.Internal"),
        ])
        .unwrap();
        assert_eq!(c.cors_origins, ["https://a.example", "https://b.example"]);
        assert_eq!(c.allowed_hosts, ["gate.internal"]);
        assert!(config(&[]).unwrap().cors_origins.is_empty());
    }

    #[test]
    fn http_allowed_networks_are_parsed_and_bad_entries_named() {
        assert!(config(&[]).unwrap().http_allowed_networks.is_empty());
        let c = config(&[("FARAMESH_HTTP_ALLOWED_NETWORKS", "127.0.0.1/32, 10.0.0.0/8")]).unwrap();
        assert_eq!(
            c.http_allowed_networks.to_string(),
            "127.0.0.1/32,10.0.0.0/8"
        );
        let err = config(&[("FARAMESH_HTTP_ALLOWED_NETWORKS", "127.0.0.1/32,intranet")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("FARAMESH_HTTP_ALLOWED_NETWORKS"), "{err}");
        assert!(err.contains("\"intranet\""), "{err}");
    }

    #[test]
    fn bad_values_name_the_variable() {
        assert!(config(&[("FARAMESH_PORT", "eighty")])
            .unwrap_err()
            .to_string()
            .contains("FARAMESH_PORT"));
        assert!(config(&[("FARA_DB_BACKEND", "postgres")])
            .unwrap_err()
            .to_string()
            .contains("FARA_POSTGRES_DSN"));
        assert!(config(&[("FARAMESH_APPROVAL_TTL", "-1")])
            .unwrap_err()
            .to_string()
            .contains("FARAMESH_APPROVAL_TTL"));
        assert!(config(&[("FARAMESH_MAX_CONNECTIONS", "0")])
            .unwrap_err()
            .to_string()
            .contains("FARAMESH_MAX_CONNECTIONS"));
        assert!(config(&[("FARAMESH_HEADER_TIMEOUT", "soon")])
            .unwrap_err()
            .to_string()
            .contains("FARAMESH_HEADER_TIMEOUT"));
        assert!(config(&[("FARAMESH_DEMO", "maybe")])
            .unwrap_err()
            .to_string()
            .contains("use 1 or 0"));
    }
}
