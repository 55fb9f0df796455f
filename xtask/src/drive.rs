//! Load that wrk cannot make: whole approval round trips, and process measurements.

use anyhow::{bail, Context};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Actions per second taken through submit (pending approval) → approve → start → result by
/// `workers` concurrent clients for `seconds`.
pub fn round_trips(url: &str, seconds: u64, workers: usize) -> anyhow::Result<f64> {
    runtime()?.block_on(async {
        let http = reqwest::Client::new();
        let done = Arc::new(AtomicU64::new(0));
        let deadline = Instant::now() + Duration::from_secs(seconds);
        let started = Instant::now();
        let tasks: Vec<_> = (0..workers)
            .map(|_| {
                let (http, url, done) = (http.clone(), url.to_owned(), done.clone());
                tokio::spawn(async move {
                    while Instant::now() < deadline {
                        round_trip(&http, &url).await?;
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok::<_, anyhow::Error>(())
                })
            })
            .collect();
        for task in tasks {
            task.await.context("a load task failed")??;
        }
        Ok(done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64())
    })
}

async fn post(http: &reqwest::Client, url: String, body: Value) -> anyhow::Result<Value> {
    let response = http.post(&url).json(&body).send().await?;
    let status = response.status();
    let body: Value = response.json().await?;
    if !status.is_success() {
        bail!("{url} answered {status}: {body}");
    }
    Ok(body)
}

async fn round_trip(http: &reqwest::Client, url: &str) -> anyhow::Result<()> {
    let action = post(
        http,
        format!("{url}/v1/actions"),
        json!({"agent_id": "bench", "tool": "shell", "operation": "run", "params": {"cmd": "echo hi"}}),
    )
    .await?;
    let id = action["id"].as_str().context("no id")?;
    let token = action["approval_token"]
        .as_str()
        .context("the default policy should ask for approval of shell commands")?;
    post(
        http,
        format!("{url}/v1/actions/{id}/approval"),
        json!({"token": token, "approve": true}),
    )
    .await?;
    post(http, format!("{url}/v1/actions/{id}/start"), json!({})).await?;
    post(
        http,
        format!("{url}/v1/actions/{id}/result"),
        json!({"success": true, "output": {"stdout": "hi\n"}}),
    )
    .await?;
    Ok(())
}

/// Time from `since` until `GET /ready` answers 200.
pub fn ready_after(url: &str, since: Instant) -> anyhow::Result<Duration> {
    runtime()?.block_on(async {
        let http = reqwest::Client::new();
        let limit = since + Duration::from_secs(30);
        loop {
            if let Ok(response) = http.get(format!("{url}/ready")).send().await {
                if response.status().is_success() {
                    return Ok(since.elapsed());
                }
            }
            if Instant::now() > limit {
                bail!("the server was not ready within 30 s");
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
}

/// A `/proc/<pid>/status` figure in MiB: `VmRSS` now, or `VmHWM`, the peak so far.
pub fn memory_mib(pid: u32, field: &str) -> anyhow::Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("cannot read /proc/{pid}/status"))?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("no {field} in /proc/{pid}/status"))?;
    Ok(kib / 1024.0)
}
