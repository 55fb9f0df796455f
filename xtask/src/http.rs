//! HTTP benchmarks: the release server under a real load generator (wrk, 32 keep-alive
//! connections), each figure the median of several runs.

use anyhow::{bail, Context};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// One row of the table.
pub struct Row {
    pub what: &'static str,
    pub measured: String,
    pub target: &'static str,
    pub met: bool,
}

/// What one wrk run measured.
#[derive(Debug, Clone, Copy)]
struct Load {
    per_second: f64,
    p99_ms: f64,
}

pub struct Settings {
    pub runs: usize,
    pub seconds: u64,
    /// A PostgreSQL server the benchmark may create a database on; skipped when `None`.
    pub postgres: Option<String>,
}

pub fn run(root: &Path, settings: &Settings) -> anyhow::Result<Vec<Row>> {
    ensure_wrk()?;
    let binary = build_release(root)?;
    let work = tempdir()?;
    let scripts = write_scripts(&work)?;
    let mut rows = Vec::new();

    let launched = std::time::Instant::now();
    let server = Server::sqlite(&binary, root, &work, "bench.db")?;
    let startup = crate::drive::ready_after(&server.url, launched)?;
    let idle_mib = crate::drive::memory_mib(server.child.id(), "VmRSS")?;
    let decide = median(settings, || {
        wrk(
            &[&server.url],
            &scripts.decide,
            "/v1/gate/decide",
            settings.seconds,
        )
    })?;
    rows.push(Row {
        what: "POST /v1/gate/decide over HTTP",
        measured: format!(
            "{:.0} req/s, p99 {:.2} ms",
            decide.per_second, decide.p99_ms
        ),
        target: "≥ 30,000 req/s, p99 ≤ 2 ms",
        met: decide.per_second >= 30_000.0 && decide.p99_ms <= 2.0,
    });
    let submit = median(settings, || {
        wrk(
            &[&server.url],
            &scripts.submit,
            "/v1/actions",
            settings.seconds,
        )
    })?;
    rows.push(Row {
        what: "POST /v1/actions, SQLite, durable",
        measured: format!(
            "{:.0} req/s, p99 {:.2} ms",
            submit.per_second, submit.p99_ms
        ),
        target: "≥ 10,000 req/s, p99 ≤ 10 ms",
        met: submit.per_second >= 10_000.0 && submit.p99_ms <= 10.0,
    });
    let peak_mib = crate::drive::memory_mib(server.child.id(), "VmHWM")?;
    drop(server);
    // The same submissions with two limits that match each one: each is checked and counted.
    let limited = limited_policy(root, &work)?;
    let db = work.join("limits.db").display().to_string();
    let server = Server::start_with(
        &binary,
        &work,
        &["--policy", &limited],
        &[("FARA_SQLITE_PATH", &db)],
    )?;
    let with_limits = median(settings, || {
        wrk(
            &[&server.url],
            &scripts.submit,
            "/v1/actions",
            settings.seconds,
        )
    })?;
    rows.push(Row {
        what: "POST /v1/actions, SQLite, durable, two limits checked and counted",
        measured: format!(
            "{:.0} req/s, p99 {:.2} ms",
            with_limits.per_second, with_limits.p99_ms
        ),
        target: "≥ 10,000 req/s",
        met: with_limits.per_second >= 10_000.0,
    });
    let peak_mib = peak_mib.max(crate::drive::memory_mib(server.child.id(), "VmHWM")?);
    drop(server);
    // Round trips on a fresh server and database, so they are measured on their own.
    let server = Server::sqlite(&binary, root, &work, "round-trips.db")?;
    let mut rates = Vec::new();
    for _ in 0..settings.runs.max(1) {
        rates.push(crate::drive::round_trips(
            &server.url,
            settings.seconds,
            32,
        )?);
    }
    rates.sort_by(f64::total_cmp);
    let rate = rates[rates.len() / 2];
    rows.push(Row {
        what: "approve → start → result round trip",
        measured: format!("{rate:.0} actions/s"),
        target: "≥ 3,000 actions/s",
        met: rate >= 3_000.0,
    });
    let peak_mib = peak_mib.max(crate::drive::memory_mib(server.child.id(), "VmHWM")?);
    drop(server);
    // The stream on a fresh server too: 1,000 subscribers while 1,000 actions/s are submitted.
    let server = Server::sqlite(&binary, root, &work, "stream.db")?;
    rows.push(crate::stream::row(&server.url, settings)?);
    let peak_mib = peak_mib.max(crate::drive::memory_mib(server.child.id(), "VmHWM")?);
    rows.push(Row {
        what: "memory (RSS) idle / peak under the loads above",
        measured: format!("{idle_mib:.1} MB / {peak_mib:.1} MB"),
        target: "≤ 50 MB / ≤ 200 MB",
        met: idle_mib <= 50.0 && peak_mib <= 200.0,
    });
    rows.push(Row {
        what: "start-up to ready (empty database)",
        measured: format!("{:.0} ms", startup.as_secs_f64() * 1000.0),
        target: "≤ 200 ms",
        met: startup.as_millis() <= 200,
    });
    drop(server);

    match &settings.postgres {
        None => rows.push(Row {
            what: "PostgreSQL, 2 replicas, one database",
            measured: "skipped (set FARAMESH_BENCH_POSTGRES_URL)".into(),
            target: "≥ 5,000 actions/s total",
            met: false,
        }),
        Some(admin_url) => {
            let database = PostgresDatabase::create(admin_url)?;
            let env = [
                ("FARA_DB_BACKEND", "postgres".to_owned()),
                ("FARA_POSTGRES_DSN", database.url.clone()),
            ];
            let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let a = Server::start(&binary, root, &work, &env)?;
            let b = Server::start(&binary, root, &work, &env)?;
            let both = median(settings, || {
                wrk(
                    &[&a.url, &b.url],
                    &scripts.submit,
                    "/v1/actions",
                    settings.seconds,
                )
            })?;
            rows.push(Row {
                what: "PostgreSQL, 2 replicas, one database",
                measured: format!(
                    "{:.0} actions/s, p99 {:.2} ms",
                    both.per_second, both.p99_ms
                ),
                target: "≥ 5,000 actions/s total",
                met: both.per_second >= 5_000.0,
            });
        }
    }
    let _ = std::fs::remove_dir_all(&work);
    Ok(rows)
}

fn median(
    settings: &Settings,
    mut measure: impl FnMut() -> anyhow::Result<Load>,
) -> anyhow::Result<Load> {
    let mut loads = Vec::with_capacity(settings.runs);
    for _ in 0..settings.runs.max(1) {
        loads.push(measure()?);
    }
    loads.sort_by(|a, b| a.per_second.total_cmp(&b.per_second));
    Ok(loads[loads.len() / 2])
}

fn ensure_wrk() -> anyhow::Result<()> {
    if Command::new("wrk").arg("--version").output().is_ok() {
        return Ok(());
    }
    eprintln!("installing wrk (apt-get install wrk)");
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout == b"0\n")
        .unwrap_or(false);
    let mut install = if root {
        Command::new("apt-get")
    } else {
        let mut sudo = Command::new("sudo");
        sudo.arg("apt-get");
        sudo
    };
    let status = install
        .args(["install", "-y", "wrk"])
        .status()
        .context("cannot run apt-get")?;
    if !status.success() {
        bail!("could not install wrk; install it (apt-get install wrk) and run again");
    }
    Ok(())
}

pub(crate) fn build_release(root: &Path) -> anyhow::Result<PathBuf> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(root)
        .args(["build", "--release", "-p", "faramesh", "--quiet"])
        .status()
        .context("cannot run cargo build")?;
    if !status.success() {
        bail!("the release build failed");
    }
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    Ok(target.join("release/faramesh"))
}

fn tempdir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("faramesh-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir)
}

struct Scripts {
    decide: PathBuf,
    submit: PathBuf,
}

/// wrk scripts: a POST with a JSON body; with several servers, each thread takes the next.
/// The default policy with two limits that match every benchmark submission and never bite:
/// one per agent, one for everyone together.
fn limited_policy(root: &Path, work: &Path) -> anyhow::Result<String> {
    let mut text = std::fs::read_to_string(root.join("policies/default.yaml"))?;
    text.push_str(
        "\nlimits:\n  - name: per-agent\n    match: {tool: http}\n    per: agent_id\n    max_calls: 1000000000\n    window: 1h\n  - name: everyone\n    match: {tool: http}\n    per: global\n    max_calls: 1000000000\n    window: 1h\n",
    );
    let path = work.join("limited.yaml");
    std::fs::write(&path, text)?;
    Ok(path.display().to_string())
}

fn write_scripts(dir: &Path) -> anyhow::Result<Scripts> {
    let body = r#"{"agent_id":"bench","tool":"http","operation":"get","params":{"url":"https://example.com/a","headers":{"accept":"application/json"}}}"#;
    let script = format!(
        "wrk.method = \"POST\"\nwrk.body = '{body}'\nwrk.headers[\"Content-Type\"] = \"application/json\"\n"
    );
    let decide = dir.join("decide.lua");
    let submit = dir.join("submit.lua");
    std::fs::write(&decide, &script)?;
    std::fs::write(&submit, &script)?;
    Ok(Scripts { decide, submit })
}

/// Runs wrk against every url at once (32 connections in all) and sums the rates; the p99 is
/// the worst of them.
fn wrk(urls: &[&str], script: &Path, path: &str, seconds: u64) -> anyhow::Result<Load> {
    let connections = 32 / urls.len();
    let children: Vec<_> = urls
        .iter()
        .map(|url| {
            Command::new("wrk")
                .args([
                    "-t",
                    "2",
                    "-c",
                    &connections.to_string(),
                    "-d",
                    &format!("{seconds}s"),
                    "--latency",
                    "-s",
                ])
                .arg(script)
                .arg(format!("{url}{path}"))
                .stdout(Stdio::piped())
                .spawn()
                .context("cannot run wrk")
        })
        .collect::<anyhow::Result<_>>()?;
    let mut total = Load {
        per_second: 0.0,
        p99_ms: 0.0,
    };
    for child in children {
        let output = child.wait_with_output()?;
        let text = String::from_utf8_lossy(&output.stdout);
        let load = parse_wrk(&text).with_context(|| format!("unexpected wrk output:\n{text}"))?;
        if text.contains("Non-2xx or 3xx responses") {
            bail!("the server refused requests during the run:\n{text}");
        }
        total.per_second += load.per_second;
        total.p99_ms = total.p99_ms.max(load.p99_ms);
    }
    Ok(total)
}

fn parse_wrk(text: &str) -> Option<Load> {
    let per_second = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Requests/sec:"))?
        .trim()
        .parse()
        .ok()?;
    let p99 = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("99%"))?
        .trim();
    Some(Load {
        per_second,
        p99_ms: duration_ms(p99)?,
    })
}

fn duration_ms(text: &str) -> Option<f64> {
    let split = text.find(|c: char| c.is_ascii_alphabetic())?;
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    Some(match unit {
        "us" => number / 1000.0,
        "ms" => number,
        "s" => number * 1000.0,
        "m" => number * 60_000.0,
        _ => return None,
    })
}

/// A release server on a free port, stopped on drop.
pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) url: String,
}

impl Server {
    /// A server on a SQLite database of its own, `name` in `work`.
    fn sqlite(binary: &Path, root: &Path, work: &Path, name: &str) -> anyhow::Result<Server> {
        let db = work.join(name).display().to_string();
        Server::start(binary, root, work, &[("FARA_SQLITE_PATH", &db)])
    }

    pub(crate) fn start(
        binary: &Path,
        root: &Path,
        work: &Path,
        env: &[(&str, &str)],
    ) -> anyhow::Result<Server> {
        let policy = root.join("policies/default.yaml").display().to_string();
        Server::start_with(binary, work, &["--policy", &policy], env)
    }

    /// A server without a profile, with these flags and environment.
    pub(crate) fn start_with(
        binary: &Path,
        work: &Path,
        flags: &[&str],
        env: &[(&str, &str)],
    ) -> anyhow::Result<Server> {
        let mut child = Command::new(binary)
            .args(["serve", "--port", "0", "--no-profile"])
            .args(flags)
            .env("FARAMESH_EXECUTORS", "none")
            .env("RUST_LOG", "warn,faramesh_server::run=info")
            .env_remove("FARAMESH_TOKEN")
            .envs(env.iter().copied())
            .current_dir(work)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("cannot start the server")?;
        let stderr = child.stderr.take().context("no stderr")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(url) = line.split("listening on ").nth(1) {
                    let _ = tx.send(url.trim().to_owned());
                }
            }
        });
        let url = rx
            .recv_timeout(Duration::from_secs(30))
            .context("the server did not start")?;
        Ok(Server { child, url })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A database of its own for the benchmark, dropped afterwards.
struct PostgresDatabase {
    url: String,
    _database: faramesh_testkit::Database,
}

impl PostgresDatabase {
    fn create(admin_url: &str) -> anyhow::Result<PostgresDatabase> {
        // The testkit reads this variable; the benchmark has its own name for it.
        std::env::set_var("FARAMESH_TEST_POSTGRES_URL", admin_url);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (url, database) = runtime
            .block_on(faramesh_testkit::fresh_postgres_database())
            .context("no PostgreSQL URL")?;
        Ok(PostgresDatabase {
            url,
            _database: database,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrk_output_is_read() {
        let text = "  Latency Distribution\n     50%  512.00us\n     99%    2.31ms\n  100 requests in 1.00s\nRequests/sec:  31234.56\n";
        let load = parse_wrk(text).unwrap();
        assert_eq!(load.per_second, 31234.56);
        assert_eq!(load.p99_ms, 2.31);
        assert_eq!(duration_ms("850.00us"), Some(0.85));
    }
}
