//! A minimal HTTP/1.1 keep-alive client for load that wrk cannot make (chained requests).
//!
//! The load generator shares the 2-core machine with the server it measures, so it must cost
//! little: a general client (reqwest, a `Value` per response) took a quarter of the machine's
//! CPU in the round-trip benchmark. This one writes each request as one buffer and reads the
//! response by its `Content-Length`, on one connection per worker.

use anyhow::{bail, Context};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The `host:port` of an `http://host:port` URL, as a socket connects to it and a request's
/// `Host` header names it.
pub fn address(url: &str) -> anyhow::Result<&str> {
    url.strip_prefix("http://")
        .map(|rest| rest.trim_end_matches('/'))
        .with_context(|| format!("the load generator needs an http:// URL, not {url:?}"))
}

pub struct Connection {
    stream: TcpStream,
    host: String,
    /// Bytes read past the end of the previous response (none, with one request at a time).
    buffer: Vec<u8>,
}

impl Connection {
    /// Connects to `url` (`http://host:port`).
    pub async fn open(url: &str) -> anyhow::Result<Connection> {
        let host = address(url)?.to_owned();
        let stream = TcpStream::connect(&host)
            .await
            .with_context(|| format!("cannot connect to {host}"))?;
        stream.set_nodelay(true)?;
        Ok(Connection {
            stream,
            host,
            buffer: Vec::with_capacity(8192),
        })
    }

    /// POSTs `body` (JSON) to `path`; the response's status and body.
    pub async fn post(&mut self, path: &str, body: &[u8]) -> anyhow::Result<(u16, Vec<u8>)> {
        let mut request = format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            self.host,
            body.len()
        )
        .into_bytes();
        request.extend_from_slice(body);
        self.stream.write_all(&request).await?;
        self.read_response().await
    }

    async fn read_response(&mut self) -> anyhow::Result<(u16, Vec<u8>)> {
        let head_end = loop {
            if let Some(at) = memchr::memmem::find(&self.buffer, b"\r\n\r\n") {
                break at + 4;
            }
            self.fill().await?;
        };
        let head = std::str::from_utf8(&self.buffer[..head_end]).context("a non-UTF-8 head")?;
        let status: u16 = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("no status in {head:?}"))?;
        let length: usize = head
            .lines()
            .find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse().ok())?
            })
            .with_context(|| format!("no Content-Length in {head:?}"))?;
        while self.buffer.len() < head_end + length {
            self.fill().await?;
        }
        let body = self.buffer[head_end..head_end + length].to_vec();
        self.buffer.drain(..head_end + length);
        Ok((status, body))
    }

    async fn fill(&mut self) -> anyhow::Result<()> {
        let mut chunk = [0u8; 8192];
        let n = self.stream.read(&mut chunk).await?;
        if n == 0 {
            bail!("the server closed the connection");
        }
        self.buffer.extend_from_slice(&chunk[..n]);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    #[tokio::test]
    async fn responses_are_read_by_their_length_one_after_another_on_one_connection() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut seen = Vec::new();
            let mut chunk = [0u8; 1024];
            // Both answers arrive in one write: the second is already buffered when it is read.
            while memchr::memmem::find_iter(&seen, b"{}").count() < 2 {
                let n = socket.read(&mut chunk).await.unwrap();
                seen.extend_from_slice(&chunk[..n]);
            }
            let answers = "HTTP/1.1 200 OK\r\ncontent-length: 7\r\n\r\n{\"a\":1}HTTP/1.1 409 Conflict\r\nContent-Length: 2\r\n\r\n{}";
            socket.write_all(answers.as_bytes()).await.unwrap();
        });
        let mut connection = Connection::open(&url).await.unwrap();
        // The first request is written by hand so that both are sent before either answer.
        connection
            .stream
            .write_all(b"POST /a HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}")
            .await
            .unwrap();
        let first = connection.post("/b", b"{}").await.unwrap();
        assert_eq!(first, (200, b"{\"a\":1}".to_vec()));
        let second = connection.read_response().await.unwrap();
        assert_eq!(second, (409, b"{}".to_vec()));
    }
}
