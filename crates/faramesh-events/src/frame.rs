//! A message rendered as a Server-Sent Events frame.

use std::fmt::Write;

use bytes::Bytes;
use serde::Serialize;
use serde_json::Value;

use crate::hub::EventKind;

/// The comment a quiet stream sends now and then, so proxies and clients see it is alive.
pub(crate) const PING: &[u8] = b": ping\n\n";

/// The `data:` line without the two fields only the hub can fill in (id and time), so the
/// expensive part is done before the hub's lock is taken.
pub(crate) struct Body {
    /// `{"action_id":…,"type":…,"data":…,"timestamp":"` — the timestamp's value comes next.
    head: String,
}

/// The `data:` payload; the sequence number travels in the SSE `id:` field instead, as the
/// contract specifies. The timestamp is written last, after this prefix.
#[derive(Serialize)]
struct Head<'a> {
    /// The action's id at the top level too: clients (such as the original Python SDK)
    /// filter the stream on it.
    #[serde(skip_serializing_if = "Option::is_none")]
    action_id: Option<&'a str>,
    #[serde(rename = "type")]
    kind: &'static str,
    data: &'a Value,
}

impl Body {
    pub(crate) fn of(kind: EventKind, data: &Value) -> Body {
        let head = Head {
            action_id: data.get("id").and_then(Value::as_str),
            kind: kind.as_str(),
            data,
        };
        // Serialising a serde_json::Value cannot fail; should it ever, the message still goes
        // out, with null data, rather than vanish from every stream.
        let mut head = serde_json::to_string(&head)
            .unwrap_or_else(|_| format!(r#"{{"type":"{}","data":null}}"#, kind.as_str()));
        // Reopen the object to append the timestamp.
        head.pop();
        head.push_str(r#","timestamp":""#);
        Body { head }
    }

    /// `id: <id>\ndata: <json>\n\n`. Compact JSON never contains a raw newline, so the data
    /// is a single line.
    pub(crate) fn frame(&self, id: u64, timestamp: &str) -> Bytes {
        let mut frame = String::with_capacity(self.head.len() + timestamp.len() + 40);
        // Writing into a String cannot fail.
        let _ = write!(frame, "id: {id}\ndata: ");
        frame.push_str(&self.head);
        frame.push_str(timestamp);
        frame.push_str("\"}\n\n");
        Bytes::from(frame)
    }
}
