//! The live-stream benchmark: many subscribers on `GET /v1/events` while actions are submitted
//! at a steady rate; each subscriber measures how long every event took to reach it.

use anyhow::{bail, Context};
use serde_json::json;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What the subscribers saw.
#[derive(Debug)]
pub struct Delivery {
    /// Events published (one per accepted submission).
    pub published: u64,
    /// Events received, over all subscribers; every subscriber should get every event.
    pub received: u64,
    pub subscribers: usize,
    /// Publication → arrival at the subscriber, over every (subscriber, event) pair.
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Delivery {
    pub fn complete(&self) -> bool {
        self.received == self.published * self.subscribers as u64
    }
}

/// The table's row: the median run (by p99) of 1,000 subscribers at 1,000 events/s.
pub fn row(url: &str, settings: &crate::http::Settings) -> anyhow::Result<crate::http::Row> {
    let mut runs = Vec::new();
    for _ in 0..settings.runs.max(1) {
        runs.push(measure(url, 1_000, 1_000, settings.seconds)?);
    }
    runs.sort_by(|a, b| a.p99_ms.total_cmp(&b.p99_ms));
    let d = &runs[runs.len() / 2];
    Ok(crate::http::Row {
        what: "live stream: 1,000 subscribers, 1,000 events/s",
        measured: format!(
            "p99 {:.1} ms, max {:.1} ms; {} of {} deliveries",
            d.p99_ms,
            d.max_ms,
            d.received,
            d.published * d.subscribers as u64
        ),
        target: "every event to every subscriber within 100 ms",
        met: d.complete() && d.max_ms <= 100.0,
    })
}

/// `subscribers` streams, then `rate` submissions per second for `seconds`.
pub fn measure(url: &str, subscribers: usize, rate: u64, seconds: u64) -> anyhow::Result<Delivery> {
    crate::drive::runtime()?.block_on(async {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(64)
            .build()
            .context("cannot build the HTTP client")?;
        let published = Arc::new(AtomicU64::new(0));
        // Unknown (MAX) until the last submission has been answered.
        let expected = Arc::new(AtomicU64::new(u64::MAX));
        let mut streams = Vec::with_capacity(subscribers);
        let address = crate::wire::address(url)?;
        for _ in 0..subscribers {
            let stream = open_stream(address).await?;
            streams.push(tokio::spawn(subscribe(stream, expected.clone())));
        }

        let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / rate.max(1)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        let mut submissions = Vec::new();
        let total = rate * seconds;
        for _ in 0..total {
            tick.tick().await;
            let (http, url, published) = (http.clone(), url.to_owned(), published.clone());
            submissions.push(tokio::spawn(async move {
                let response = http
                    .post(format!("{url}/v1/actions"))
                    .json(&json!({"agent_id": "stream-bench", "tool": "http", "operation": "get", "params": {"url": "https://example.com"}}))
                    .send()
                    .await;
                if matches!(&response, Ok(r) if r.status().is_success()) {
                    published.fetch_add(1, Ordering::Relaxed);
                }
            }));
        }
        for submission in submissions {
            submission.await.context("a submission task failed")?;
        }
        expected.store(published.load(Ordering::Relaxed), Ordering::Relaxed);
        // Every subscriber stops once it has every published event, or after a grace period.
        let mut received = 0;
        let mut latencies = Vec::new();
        for stream in streams {
            let seen = stream.await.context("a subscriber failed")?;
            received += seen.len() as u64;
            latencies.extend(seen);
        }
        latencies.sort_unstable();
        let at = |q: f64| {
            latencies
                .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
                .map_or(f64::NAN, |us| *us as f64 / 1000.0)
        };
        Ok(Delivery {
            published: published.load(Ordering::Relaxed),
            received,
            subscribers,
            p99_ms: at(0.99),
            max_ms: latencies.last().map_or(f64::NAN, |us| *us as f64 / 1000.0),
        })
    })
}

/// A raw connection to `GET /v1/events`, past its response head. A subscriber is registered
/// once that head has arrived. Plain TCP keeps the benchmark's own cost per event small: it
/// shares the machine with the server.
async fn open_stream(address: &str) -> anyhow::Result<(TcpStream, Vec<u8>)> {
    let mut stream = TcpStream::connect(address)
        .await
        .with_context(|| format!("cannot connect to {address}"))?;
    // Past every id there is: only live events, no replay of earlier ones.
    let request = format!(
        "GET /v1/events HTTP/1.1\r\nHost: {address}\r\nLast-Event-ID: {}\r\n\r\n",
        u64::MAX
    );
    stream.write_all(request.as_bytes()).await?;
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            bail!("the server closed the stream before answering");
        }
        head.extend_from_slice(&buf[..n]);
        if let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            if !head.starts_with(b"HTTP/1.1 200") {
                bail!(
                    "the stream answered {}",
                    String::from_utf8_lossy(&head[..end])
                );
            }
            // Whatever followed the head is the start of the body.
            return Ok((stream, head.split_off(end + 4)));
        }
    }
}

/// Reads one stream until it has the `expected` number of events or goes quiet; returns each
/// event's delivery latency in microseconds. The body is chunked, and each chunk holds whole
/// SSE frames, so the chunk-size lines are simply lines that are not `data:` lines.
async fn subscribe((mut stream, body): (TcpStream, Vec<u8>), expected: Arc<AtomicU64>) -> Vec<u64> {
    let mut latencies = Vec::new();
    let mut buf = vec![0u8; 256 * 1024];
    buf[..body.len()].copy_from_slice(&body);
    let mut filled = body.len();
    loop {
        let now = time_of_day_micros(SystemTime::now());
        let mut start = 0;
        while let Some(end) = memchr::memchr(b'\n', &buf[start..filled]) {
            let line = &buf[start..start + end];
            if let Some(published_at) = line.strip_prefix(b"data: ").and_then(timestamp_micros) {
                // Modulo a day, so a run across midnight still measures correctly.
                latencies.push((now + DAY - published_at) % DAY);
            }
            start += end + 1;
        }
        // Keep the unfinished line for the next read.
        buf.copy_within(start..filled, 0);
        filled -= start;
        if latencies.len() as u64 >= expected.load(Ordering::Relaxed) || filled == buf.len() {
            return latencies;
        }
        match tokio::time::timeout(Duration::from_secs(2), stream.read(&mut buf[filled..])).await {
            Ok(Ok(n)) if n > 0 => filled += n,
            // Ended, failed, or nothing for two seconds: done.
            _ => return latencies,
        }
    }
}

const DAY: u64 = 86_400_000_000;

fn time_of_day_micros(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64 % DAY)
}

/// The message's `timestamp` is its last field, `…,"timestamp":"YYYY-MM-DDTHH:MM:SS.ffffffZ"}`:
/// read the time of day from the fixed positions at the end instead of parsing the JSON.
fn timestamp_micros(data: &[u8]) -> Option<u64> {
    let tail = data.len().checked_sub(29).map(|at| &data[at..])?;
    let field = data
        .len()
        .checked_sub(29 + 13)
        .map(|at| &data[at..at + 13])?;
    if field != b"\"timestamp\":\"" || tail.len() != 29 {
        return None;
    }
    // tail = YYYY-MM-DDTHH:MM:SS.ffffffZ"}
    let digits = |range: std::ops::Range<usize>| -> Option<u64> {
        std::str::from_utf8(&tail[range]).ok()?.parse().ok()
    };
    let hours = digits(11..13)?;
    let minutes = digits(14..16)?;
    let seconds = digits(17..19)?;
    let micros = digits(20..26)?;
    Some(((hours * 60 + minutes) * 60 + seconds) * 1_000_000 + micros)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_timestamp_is_read_from_the_end_of_the_message() {
        let line = br#"{"action_id":"a","type":"action.created","data":{"id":"a"},"timestamp":"2026-11-24T01:02:03.456789Z"}"#;
        assert_eq!(
            timestamp_micros(line),
            Some(((60 + 2) * 60 + 3) * 1_000_000 + 456_789)
        );
        assert_eq!(timestamp_micros(b"{}"), None);
        assert_eq!(
            timestamp_micros(br#"{"timestamp":"not a time at all......."}"#),
            None
        );
    }
}
