//! The live event stream.
//!
//! Every state change of an action is published to an in-process [`EventHub`],
//! which numbers it, keeps the most recent messages in a ring buffer (for
//! replay on connect and `Last-Event-ID` resume) and fans it out to every
//! subscribed client through a bounded queue. [`router`] serves the hub as
//! `GET /v1/events` (Server-Sent Events). A client resuming from a message the buffer no
//! longer holds gets the missing ones from a [`History`] (the ledger) first.

mod frame;
mod history;
mod http;
mod hub;

pub use history::{History, PastMessage};
pub use http::router;
pub use hub::{
    EventHub, EventKind, Gap, HubConfig, Refused, StreamFilter, StreamMessage, Subscription,
};
