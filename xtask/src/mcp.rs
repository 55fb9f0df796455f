//! The MCP gateway's overhead: an allowed `tools/call` to a minimal MCP server, called directly
//! over stdio, through `faramesh mcp wrap` (stdio), and through `/mcp/{name}` of `faramesh serve`
//! (Streamable HTTP). One call at a time, so each latency is the whole round trip; the overhead
//! is the gateway's latency minus the direct one, at the median and the 99th percentile.
//!
//! The server is this binary (`xtask mcp-echo`): a few lines of JSON-RPC that answer at once,
//! so the measurement is the gateway's cost and not a server's.

use crate::http::Row;
use anyhow::{bail, Context};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Instant;

/// `xtask mcp-echo`: answers initialize, tools/list and tools/call (echoing `text`) on stdio.
pub fn echo_server() -> anyhow::Result<()> {
    let stdin = std::io::stdin();
    let mut stdout = std::io::stdout().lock();
    for line in stdin.lock().lines() {
        let line = line?;
        let Ok(message) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        let (Some(id), Some(method)) = (message.get("id"), message["method"].as_str()) else {
            continue;
        };
        let result = match method {
            "initialize" => json!({
                "protocolVersion": message["params"]["protocolVersion"],
                "capabilities": {"tools": {}},
                "serverInfo": {"name": "echo", "version": "1"},
            }),
            "tools/list" => json!({"tools": [{"name": "echo", "inputSchema": {"type": "object"}}]}),
            "tools/call" => json!({"content": [{"type": "text",
                "text": message["params"]["arguments"]["text"]}]}),
            _ => json!({}),
        };
        writeln!(
            stdout,
            "{}",
            json!({"jsonrpc": "2.0", "id": id, "result": result})
        )?;
        stdout.flush()?;
    }
    Ok(())
}

const PROTOCOL: &str = "2025-06-18";

fn initialize(id: u64) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "initialize", "params": {
        "protocolVersion": PROTOCOL, "capabilities": {},
        "clientInfo": {"name": "xtask-bench", "version": "1"}}})
}

fn call(id: u64) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
        "params": {"name": "echo", "arguments": {"text": format!("call {id}")}}})
}

/// An MCP session over a child's stdio.
struct StdioSession {
    child: Child,
    input: ChildStdin,
    output: BufReader<ChildStdout>,
}

impl StdioSession {
    fn start(command: &mut Command) -> anyhow::Result<StdioSession> {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start the MCP server")?;
        let input = child.stdin.take().context("no stdin")?;
        let output = BufReader::new(child.stdout.take().context("no stdout")?);
        let mut session = StdioSession {
            child,
            input,
            output,
        };
        session.request(&initialize(0))?;
        session.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))?;
        Ok(session)
    }

    fn send(&mut self, message: &Value) -> anyhow::Result<()> {
        writeln!(self.input, "{message}")?;
        self.input.flush()?;
        Ok(())
    }

    /// Sends a request and reads lines until its answer.
    fn request(&mut self, message: &Value) -> anyhow::Result<Value> {
        self.send(message)?;
        let id = &message["id"];
        loop {
            let mut line = String::new();
            if self.output.read_line(&mut line)? == 0 {
                bail!("the MCP server closed its output");
            }
            let answer: Value = serde_json::from_str(&line).context("an answer is not JSON")?;
            if &answer["id"] == id {
                return Ok(answer);
            }
        }
    }
}

impl Drop for StdioSession {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Latencies of `count` calls (after `warmup`), in milliseconds, sorted.
fn measure(
    count: u64,
    warmup: u64,
    mut one: impl FnMut(u64) -> anyhow::Result<Value>,
) -> anyhow::Result<Vec<f64>> {
    let mut latencies = Vec::new();
    for id in 1..=warmup + count {
        let started = Instant::now();
        let answer = one(id)?;
        let took = started.elapsed().as_secs_f64() * 1000.0;
        let text = answer["result"]["content"][0]["text"].as_str();
        if text != Some(format!("call {id}").as_str()) {
            bail!("call {id} was not answered by the server: {answer}");
        }
        if id > warmup {
            latencies.push(took);
        }
    }
    latencies.sort_by(f64::total_cmp);
    Ok(latencies)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(rank).copied().unwrap_or(f64::NAN)
}

/// A Faramesh server that allows every call of the MCP server `bench`, which it also serves
/// at `/mcp/bench`.
fn faramesh(binary: &Path, work: &Path, echo: &Path) -> anyhow::Result<crate::http::Server> {
    let policy = work.join("mcp-bench-policy.yaml");
    std::fs::write(
        &policy,
        "rules:\n  - match: {tool: bench, op: \"*\"}\n    allow: true\n",
    )?;
    let servers = work.join("mcp-bench.yaml");
    std::fs::write(
        &servers,
        format!(
            "servers:\n  bench:\n    command: {}\n    args: [mcp-echo]\n",
            serde_json::to_string(&echo.display().to_string())?
        ),
    )?;
    let db = work.join("mcp-bench.db").display().to_string();
    crate::http::Server::start_with(
        binary,
        work,
        &[
            "--policy",
            &policy.display().to_string(),
            "--mcp-config",
            &servers.display().to_string(),
        ],
        &[("FARA_SQLITE_PATH", &db)],
    )
}

/// An MCP session over Streamable HTTP: a POST per request, its answer read from the SSE body.
struct HttpSession {
    http: reqwest::Client,
    url: String,
    session: String,
    runtime: tokio::runtime::Runtime,
}

impl HttpSession {
    fn start(url: &str) -> anyhow::Result<HttpSession> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let http = reqwest::Client::new();
        let mut session = HttpSession {
            http,
            url: url.to_owned(),
            session: String::new(),
            runtime,
        };
        let response = session.runtime.block_on(
            session
                .http
                .post(url)
                .header("accept", "application/json, text/event-stream")
                .json(&initialize(0))
                .send(),
        )?;
        session.session = response
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
            .context("no Mcp-Session-Id from initialize")?
            .to_owned();
        session.runtime.block_on(response.text())?;
        session.post(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))?;
        Ok(session)
    }

    fn post(&self, message: &Value) -> anyhow::Result<String> {
        self.runtime.block_on(async {
            let response = self
                .http
                .post(&self.url)
                .header("accept", "application/json, text/event-stream")
                .header("mcp-session-id", &self.session)
                .header("mcp-protocol-version", PROTOCOL)
                .json(message)
                .send()
                .await?;
            if !response.status().is_success() {
                bail!("the gateway answered {}", response.status());
            }
            Ok(response.text().await?)
        })
    }

    fn request(&self, message: &Value) -> anyhow::Result<Value> {
        let body = self.post(message)?;
        body.lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .filter_map(|d| serde_json::from_str::<Value>(d.trim()).ok())
            .find(|m| m["id"] == message["id"])
            .context("no answer in the event stream")
    }
}

/// The latencies of the three ways to call.
struct Latencies {
    direct: Vec<f64>,
    wrapped: Vec<f64>,
    through_http: Vec<f64>,
}

fn latencies(
    binary: &Path,
    server: &crate::http::Server,
    echo: &Path,
    count: u64,
    warmup: u64,
) -> anyhow::Result<Latencies> {
    let direct = {
        let mut session = StdioSession::start(Command::new(echo).arg("mcp-echo"))?;
        measure(count, warmup, |id| session.request(&call(id)))?
    };
    let wrapped = {
        let mut session = StdioSession::start(
            Command::new(binary)
                .args(["mcp", "wrap", "--name", "bench", "--url", &server.url, "--"])
                .arg(echo)
                .arg("mcp-echo"),
        )?;
        measure(count, warmup, |id| session.request(&call(id)))?
    };
    let through_http = {
        let session = HttpSession::start(&format!("{}/mcp/bench", server.url))?;
        measure(count, warmup, |id| session.request(&call(id)))?
    };
    Ok(Latencies {
        direct,
        wrapped,
        through_http,
    })
}

/// One call after another, each answered before the next is sent.
pub fn run(binary: &Path, work: &Path, quick: bool) -> anyhow::Result<Vec<Row>> {
    let echo = std::env::current_exe().context("cannot find the xtask binary")?;
    let (count, warmup) = if quick { (300, 50) } else { (3000, 300) };
    let server = faramesh(binary, work, &echo)?;
    let measured = latencies(binary, &server, &echo, count, warmup)?;
    drop(server);
    let direct = &measured.direct;
    let row = |what: &'static str, through: &[f64]| {
        let p50 = percentile(through, 0.5) - percentile(direct, 0.5);
        let p99 = percentile(through, 0.99) - percentile(direct, 0.99);
        Row {
            what,
            measured: format!(
                "overhead p50 {p50:.2} ms, p99 {p99:.2} ms (direct p50 {:.3} ms, p99 {:.3} ms)",
                percentile(direct, 0.5),
                percentile(direct, 0.99)
            ),
            target: "overhead p50 ≤ 1 ms",
            met: p50 <= 1.0,
        }
    };
    Ok(vec![
        row(
            "MCP allowed tools/call through `faramesh mcp wrap` (stdio), over calling the server directly",
            &measured.wrapped,
        ),
        row(
            "MCP allowed tools/call through `/mcp/{name}` (Streamable HTTP), over calling the server directly",
            &measured.through_http,
        ),
    ])
}
