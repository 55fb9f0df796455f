//! Load that wrk cannot make: whole approval round trips, and process measurements.

use anyhow::{bail, Context};
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
        let done = Arc::new(AtomicU64::new(0));
        let deadline = Instant::now() + Duration::from_secs(seconds);
        let started = Instant::now();
        let mut tasks = Vec::with_capacity(workers);
        for _ in 0..workers {
            let mut connection = crate::wire::Connection::open(url).await?;
            let done = done.clone();
            tasks.push(tokio::spawn(async move {
                while Instant::now() < deadline {
                    round_trip(&mut connection).await?;
                    done.fetch_add(1, Ordering::Relaxed);
                }
                Ok::<_, anyhow::Error>(())
            }));
        }
        for task in tasks {
            task.await.context("a load task failed")??;
        }
        Ok(done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64())
    })
}

/// What a round trip reads of a submission's answer.
#[derive(serde::Deserialize)]
struct Submitted<'a> {
    id: &'a str,
    approval_token: Option<&'a str>,
}

async fn post(
    connection: &mut crate::wire::Connection,
    path: &str,
    body: &[u8],
) -> anyhow::Result<Vec<u8>> {
    let (status, answer) = connection.post(path, body).await?;
    if !(200..300).contains(&status) {
        bail!(
            "{path} answered {status}: {}",
            String::from_utf8_lossy(&answer)
        );
    }
    Ok(answer)
}

async fn round_trip(connection: &mut crate::wire::Connection) -> anyhow::Result<()> {
    let answer = post(
        connection,
        "/v1/actions",
        br#"{"agent_id":"bench","tool":"shell","operation":"run","params":{"cmd":"echo hi"}}"#,
    )
    .await?;
    let action: Submitted = serde_json::from_slice(&answer).with_context(|| {
        format!(
            "a submission answered without a plain id and approval token: {}",
            String::from_utf8_lossy(&answer)
        )
    })?;
    let token = action
        .approval_token
        .context("the default policy should ask for approval of shell commands")?;
    let id = action.id;
    post(
        connection,
        &format!("/v1/actions/{id}/approval"),
        format!(r#"{{"token":"{token}","approve":true}}"#).as_bytes(),
    )
    .await?;
    post(connection, &format!("/v1/actions/{id}/start"), b"{}").await?;
    post(
        connection,
        &format!("/v1/actions/{id}/result"),
        br#"{"success":true,"output":{"stdout":"hi\n"}}"#,
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
