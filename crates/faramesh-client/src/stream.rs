//! The live stream (`GET /v1/events`, Server-Sent Events): one subscription, or a stream that
//! follows the server across disconnects and resumes with `Last-Event-ID` by itself.

use crate::{Client, ClientError, ClientResult};
use eventsource_stream::{Event, EventStreamError, Eventsource};
use futures::stream::{BoxStream, Stream, StreamExt};
use serde_json::Value;
use std::time::Duration;

/// One message of the live stream.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamMessage {
    /// The ledger sequence number of the change; resume after it with `Last-Event-ID`.
    pub id: u64,
    /// `action.created` or `action.updated`.
    pub kind: String,
    /// `{id, status, decision, agent_id, tool, operation, reason, risk_level}`.
    pub data: Value,
    pub timestamp: String,
}

impl StreamMessage {
    /// The message an SSE event carries; `None` for one that is not a change (no numeric id, or
    /// data that is not a JSON object).
    fn from_event(event: &Event) -> Option<StreamMessage> {
        let id = event.id.trim().parse().ok()?;
        let Ok(Value::Object(mut body)) = serde_json::from_str::<Value>(&event.data) else {
            return None;
        };
        let mut text = |key: &str| match body.remove(key) {
            Some(Value::String(s)) => s,
            _ => String::new(),
        };
        let kind = text("type");
        let timestamp = text("timestamp");
        Some(StreamMessage {
            id,
            kind,
            data: body.remove("data").unwrap_or(Value::Null),
            timestamp,
        })
    }
}

/// Which changes a subscription receives, and where it starts.
#[derive(Debug, Clone, Default)]
pub struct StreamFilter {
    pub status: Option<String>,
    pub agent_id: Option<String>,
    /// Resume after this message id (sent as `Last-Event-ID`).
    pub after: Option<u64>,
}

/// One open connection to the live stream.
pub struct Subscription {
    events: BoxStream<'static, Result<Event, EventStreamError<reqwest::Error>>>,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription").finish_non_exhaustive()
    }
}

impl Subscription {
    pub(crate) fn new(response: reqwest::Response) -> Subscription {
        Subscription::from_bytes(response.bytes_stream())
    }

    fn from_bytes<S>(bytes: S) -> Subscription
    where
        S: Stream<Item = Result<bytes::Bytes, reqwest::Error>> + Send + 'static,
    {
        Subscription {
            events: bytes.eventsource().boxed(),
        }
    }

    /// The next change; `None` when the server ended the stream, an error when the connection
    /// failed. Comments (the server's pings) and events that are not changes are skipped.
    pub async fn next(&mut self) -> Option<ClientResult<StreamMessage>> {
        loop {
            match self.events.next().await? {
                Ok(event) => {
                    if let Some(message) = StreamMessage::from_event(&event) {
                        return Some(Ok(message));
                    }
                }
                Err(EventStreamError::Transport(e)) => {
                    return Some(Err(ClientError::StreamLost(crate::short_reason(&e))))
                }
                Err(e) => return Some(Err(ClientError::StreamLost(e.to_string()))),
            }
        }
    }
}

/// What following the live stream yields.
#[derive(Debug)]
pub enum Followed {
    Message(StreamMessage),
    /// The connection ended or could not be opened; the stream keeps trying to reconnect,
    /// waiting a little longer after each failed attempt (up to 5 s).
    Lost(ClientError),
    /// Connected again after a loss, resuming after the last message yielded.
    Resumed,
}

/// The first wait before reconnecting, and the longest.
const FIRST_RETRY: Duration = Duration::from_millis(200);
const LONGEST_RETRY: Duration = Duration::from_secs(5);

struct Following {
    client: Client,
    filter: StreamFilter,
    connection: Option<Subscription>,
    lost: bool,
    retry: Duration,
    finished: bool,
}

impl Client {
    /// Opens one connection to the live stream.
    pub async fn subscribe(&self, filter: &StreamFilter) -> ClientResult<Subscription> {
        let response = self
            .open_stream(
                filter.after,
                filter.status.as_deref(),
                filter.agent_id.as_deref(),
            )
            .await?;
        Ok(Subscription::new(response))
    }

    /// Follows the live stream for as long as it is polled: after a disconnect (a server restart,
    /// say) it reconnects and resumes after the last message it yielded, so no change is missed.
    /// A refused token ends it with that error, since retrying will not help.
    pub fn follow(&self, filter: StreamFilter) -> impl Stream<Item = ClientResult<Followed>> {
        let state = Following {
            client: self.clone(),
            filter,
            connection: None,
            lost: false,
            retry: FIRST_RETRY,
            finished: false,
        };
        futures::stream::unfold(state, |mut state| async move {
            let item = state.advance().await?;
            Some((item, state))
        })
    }
}

impl Following {
    async fn advance(&mut self) -> Option<ClientResult<Followed>> {
        loop {
            if self.finished {
                return None;
            }
            if let Some(connection) = &mut self.connection {
                match connection.next().await {
                    Some(Ok(message)) => {
                        self.filter.after = Some(message.id);
                        return Some(Ok(Followed::Message(message)));
                    }
                    Some(Err(e)) => return Some(Ok(self.lose(e))),
                    None => {
                        return Some(Ok(self.lose(ClientError::StreamLost(
                            "the server ended the stream".into(),
                        ))))
                    }
                }
            }
            if self.lost {
                tokio::time::sleep(self.retry).await;
                self.retry = (self.retry * 2).min(LONGEST_RETRY);
            }
            match self.client.subscribe(&self.filter).await {
                Ok(connection) => {
                    self.connection = Some(connection);
                    self.retry = FIRST_RETRY;
                    if std::mem::take(&mut self.lost) {
                        return Some(Ok(Followed::Resumed));
                    }
                }
                Err(e @ ClientError::Unauthorized { .. }) => {
                    self.finished = true;
                    return Some(Err(e));
                }
                // Announced once per outage; the attempts go on quietly.
                Err(e) if !self.lost => return Some(Ok(self.lose(e))),
                Err(_) => {}
            }
        }
    }

    fn lose(&mut self, error: ClientError) -> Followed {
        self.connection = None;
        self.lost = true;
        Followed::Lost(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subscription(chunks: &[&'static [u8]]) -> Subscription {
        let chunks: Vec<Result<bytes::Bytes, reqwest::Error>> = chunks
            .iter()
            .map(|c| Ok(bytes::Bytes::from_static(c)))
            .collect();
        Subscription::from_bytes(futures::stream::iter(chunks))
    }

    async fn all(mut s: Subscription) -> Vec<StreamMessage> {
        let mut out = Vec::new();
        while let Some(m) = s.next().await {
            out.push(m.expect("no transport error in these tests"));
        }
        out
    }

    #[tokio::test]
    async fn frames_split_across_chunks_are_reassembled_and_pings_skipped() {
        let messages = all(subscription(&[
            b": ping\n\nid: 7\nda",
            b"ta: {\"type\":\"action.created\",\"data\":{\"id\":\"a\"},\"timestamp\":\"t\"}\n\n",
        ]))
        .await;
        assert_eq!(messages.len(), 1);
        assert_eq!(
            (
                messages[0].id,
                messages[0].kind.as_str(),
                messages[0].data["id"].as_str(),
                messages[0].timestamp.as_str()
            ),
            (7, "action.created", Some("a"), "t")
        );
    }

    #[tokio::test]
    async fn a_character_split_between_chunks_arrives_whole() {
        // "é" is two bytes in UTF-8; each chunk holds one of them.
        let messages = all(subscription(&[
            b"id: 1\ndata: {\"type\":\"action.created\",\"data\":{\"reason\":\"caf\xc3",
            b"\xa9\"},\"timestamp\":\"t\"}\n\n",
        ]))
        .await;
        assert_eq!(messages[0].data["reason"], "café");
    }

    #[tokio::test]
    async fn crlf_line_ends_and_several_data_lines_are_read_as_the_protocol_says() {
        // Several data lines are one value joined by newlines; JSON accepts the newline as
        // white space between tokens.
        let messages = all(subscription(&[
            b"id: 2\r\ndata: {\"type\":\"action.updated\",\r\ndata: \"data\":{\"id\":\"b\"},\"timestamp\":\"t\"}\r\n\r\n",
        ]))
        .await;
        assert_eq!(messages.len(), 1);
        assert_eq!(messages[0].kind, "action.updated");
        assert_eq!(messages[0].data["id"], "b");
    }

    #[tokio::test]
    async fn events_that_are_not_changes_are_skipped() {
        let messages = all(subscription(&[
            b"data: {\"type\":\"x\"}\n\nid: abc\ndata: {}\n\nid: 3\ndata: not json\n\nid: 4\ndata: {\"type\":\"action.created\",\"data\":{},\"timestamp\":\"t\"}\n\n",
        ]))
        .await;
        assert_eq!(messages.iter().map(|m| m.id).collect::<Vec<_>>(), [4]);
    }
}
