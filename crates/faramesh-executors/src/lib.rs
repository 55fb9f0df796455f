//! Built-in executors: once an action has been approved, these run it (a
//! shell command or an HTTP request) under a timeout with capped output and
//! report the outcome as JSON.

mod http;
mod network;
mod shell;
mod supervisor;

pub use http::check_http_params;
pub use network::{
    inward_kind, AllowedNetworks, InwardKind, NetworkListError, ALLOWED_NETWORKS_VAR,
};

use std::time::Duration;

use serde_json::{Map, Value};

/// A built-in executor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecutorKind {
    Shell,
    Http,
}

impl ExecutorKind {
    /// The name in `FARAMESH_EXECUTORS` and in the `started` event of an action it runs.
    pub fn name(self) -> &'static str {
        match self {
            ExecutorKind::Shell => "shell",
            ExecutorKind::Http => "http",
        }
    }
}

/// Which built-in executors are enabled (`FARAMESH_EXECUTORS`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutorSet {
    shell: bool,
    http: bool,
}

/// A bad `FARAMESH_EXECUTORS` value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("FARAMESH_EXECUTORS: unknown executor {name:?}; valid values are: shell, http, none")]
    UnknownExecutor { name: String },
    #[error(
        "FARAMESH_EXECUTORS: \"none\" cannot be combined with other executors (got {text:?}); valid values are: shell, http, none"
    )]
    NoneCombined { text: String },
}

impl ExecutorSet {
    /// Parses FARAMESH_EXECUTORS: "shell", "http", "shell,http", " shell , http ", "none", "" (empty = none).
    /// Unknown names → Err(ConfigError) whose message names the bad entry and lists the valid ones.
    pub fn parse(text: &str) -> Result<ExecutorSet, ConfigError> {
        let mut set = ExecutorSet::none();
        let mut saw_none = false;
        let mut saw_executor = false;
        // Empty entries (e.g. a trailing comma) are tolerated: they cannot
        // be mistaken for enabling anything.
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            match entry.to_ascii_lowercase().as_str() {
                "shell" => {
                    set.shell = true;
                    saw_executor = true;
                }
                "http" => {
                    set.http = true;
                    saw_executor = true;
                }
                "none" => saw_none = true,
                _ => {
                    return Err(ConfigError::UnknownExecutor {
                        name: entry.to_string(),
                    })
                }
            }
        }
        // "none,shell" is contradictory; since this setting decides what an
        // approved action may do, refuse rather than guess which was meant.
        if saw_none && saw_executor {
            return Err(ConfigError::NoneCombined {
                text: text.to_string(),
            });
        }
        Ok(set)
    }

    pub fn none() -> ExecutorSet {
        ExecutorSet {
            shell: false,
            http: false,
        }
    }

    /// The executor for an action's tool, if enabled: tool "shell" → Shell, tool "http" → Http.
    pub fn for_tool(&self, tool: &str) -> Option<ExecutorKind> {
        match tool {
            "shell" if self.shell => Some(ExecutorKind::Shell),
            "http" if self.http => Some(ExecutorKind::Http),
            _ => None,
        }
    }

    pub fn enabled(&self) -> Vec<ExecutorKind> {
        let mut kinds = Vec::new();
        if self.shell {
            kinds.push(ExecutorKind::Shell);
        }
        if self.http {
            kinds.push(ExecutorKind::Http);
        }
        kinds
    }
}

impl Default for ExecutorSet {
    fn default() -> Self {
        ExecutorSet {
            shell: true,
            http: false,
        }
    }
}

/// Resource limits for one execution.
#[derive(Debug, Clone)]
pub struct Limits {
    pub timeout: Duration,
    pub max_output_bytes: usize,
}

impl Limits {
    pub const DEFAULT_MAX_OUTPUT: usize = 64 * 1024;
}

const MAX_TIMEOUT: Duration = Duration::from_secs(3600);

/// The timeout for one action: the context's `timeout` (seconds; JSON number or numeric string, > 0) replaces `default`, capped at 3600 s; absent/invalid → default (also capped at 3600).
pub fn timeout_for(context: &Map<String, Value>, default: Duration) -> Duration {
    let requested = match context.get("timeout") {
        Some(Value::Number(n)) => parse_seconds(n.as_str()),
        Some(Value::String(s)) => parse_seconds(s),
        _ => None,
    };
    requested.unwrap_or(default).min(MAX_TIMEOUT)
}

fn parse_seconds(text: &str) -> Option<Duration> {
    let text = text.trim();
    // f64 parsing also accepts "inf" and "NaN"; only plain decimal notation
    // counts as a number of seconds.
    if text.is_empty()
        || !text
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-'))
    {
        return None;
    }
    let secs: f64 = text.parse().ok()?;
    if secs.is_nan() || secs <= 0.0 {
        return None;
    }
    // Anything beyond the cap (including an exponent overflowing to
    // infinity) is "too large", not garbage.
    if secs >= MAX_TIMEOUT.as_secs_f64() {
        return Some(MAX_TIMEOUT);
    }
    Duration::try_from_secs_f64(secs)
        .ok()
        .filter(|d| !d.is_zero())
}

/// The result of running an action.
#[derive(Debug, Clone, PartialEq)]
pub enum ExecOutcome {
    Succeeded { output: Value },
    Failed { error: String, output: Value },
    TimedOut { error: String, output: Value },
}

impl ExecOutcome {
    fn failed(error: impl Into<String>) -> ExecOutcome {
        ExecOutcome::Failed {
            error: error.into(),
            output: Value::Object(Map::new()),
        }
    }
}

/// Runs the action as decided: `operation` is the action's decided operation (the `http`
/// executor sends it as the method; the `shell` executor does not use it), and `networks` lists
/// the inward networks the `http` executor may reach. Never panics; every problem (bad params,
/// spawn failure, refused address, network error) is a Failed with a clear error text.
pub async fn execute(
    kind: ExecutorKind,
    operation: &str,
    params: &Map<String, Value>,
    limits: &Limits,
    networks: &AllowedNetworks,
) -> ExecOutcome {
    match kind {
        ExecutorKind::Shell => shell::run(params, limits).await,
        ExecutorKind::Http => http::run(operation, params, limits, networks).await,
    }
}

fn timeout_message(timeout: Duration) -> String {
    if timeout.subsec_nanos() == 0 {
        format!("timed out after {} s", timeout.as_secs())
    } else {
        format!("timed out after {} ms", timeout.as_millis())
    }
}

fn duration_ms(elapsed: Duration) -> u64 {
    u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
}

/// Bytes kept up to a cap, counting whether anything was dropped.
struct CappedBuf {
    bytes: Vec<u8>,
    cap: usize,
    truncated: bool,
}

impl CappedBuf {
    fn new(cap: usize) -> Self {
        CappedBuf {
            bytes: Vec::new(),
            cap,
            truncated: false,
        }
    }

    fn push(&mut self, chunk: &[u8]) {
        let room = self.cap.saturating_sub(self.bytes.len());
        if chunk.len() > room {
            self.truncated = true;
        }
        self.bytes
            .extend_from_slice(chunk.get(..room).unwrap_or(chunk));
    }

    fn is_full(&self) -> bool {
        self.bytes.len() >= self.cap
    }

    fn to_text(&self) -> String {
        let bytes = if self.truncated {
            trim_partial_char(&self.bytes)
        } else {
            &self.bytes
        };
        String::from_utf8_lossy(bytes).into_owned()
    }
}

/// Drops a multi-byte character split by the cap, so truncation does not
/// surface as a spurious U+FFFD at the end of otherwise valid text.
fn trim_partial_char(bytes: &[u8]) -> &[u8] {
    let len = bytes.len();
    let mut start = len;
    while start > 0 && len - start < 3 {
        match bytes.get(start - 1) {
            Some(b) if b & 0xC0 == 0x80 => start -= 1,
            _ => break,
        }
    }
    let Some(lead_at) = start.checked_sub(1) else {
        return bytes;
    };
    let needed = match bytes.get(lead_at) {
        Some(&b) if b >= 0xF0 => 4,
        Some(&b) if b >= 0xE0 => 3,
        Some(&b) if b >= 0xC0 => 2,
        _ => return bytes,
    };
    if len - lead_at < needed {
        bytes.get(..lead_at).unwrap_or(bytes)
    } else {
        bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capped_buf_keeps_prefix_and_flags_truncation() {
        let mut buf = CappedBuf::new(5);
        buf.push(b"abc");
        buf.push(b"defg");
        buf.push(b"h");
        assert_eq!(buf.bytes, b"abcde");
        assert!(buf.truncated);
        assert!(buf.is_full());
    }

    #[test]
    fn capped_buf_exactly_full_is_not_truncated() {
        let mut buf = CappedBuf::new(3);
        buf.push(b"abc");
        assert!(!buf.truncated);
        assert_eq!(buf.to_text(), "abc");
    }

    #[test]
    fn truncation_inside_a_character_drops_the_fragment() {
        // "é" is two bytes; a cap of 2 splits the second one.
        let mut buf = CappedBuf::new(2);
        buf.push("aé".as_bytes());
        assert!(buf.truncated);
        assert_eq!(buf.to_text(), "a");

        let mut buf = CappedBuf::new(4);
        buf.push("a€b".as_bytes());
        assert_eq!(buf.to_text(), "a€");
    }

    #[test]
    fn invalid_utf8_is_lossy_not_an_error() {
        let mut buf = CappedBuf::new(10);
        buf.push(&[b'a', 0xFF, b'b']);
        assert_eq!(buf.to_text(), "a\u{FFFD}b");
    }

    #[test]
    fn timeout_messages() {
        assert_eq!(
            timeout_message(Duration::from_millis(300)),
            "timed out after 300 ms"
        );
        assert_eq!(
            timeout_message(Duration::from_secs(5)),
            "timed out after 5 s"
        );
        assert_eq!(
            timeout_message(Duration::from_millis(1500)),
            "timed out after 1500 ms"
        );
    }
}
