//! Notifications of pending approvals: the routes file, what each notification says, and its
//! durable delivery to webhooks, Slack and email (docs/notifications.md).
//!
//! The server decides which routes announce an event ([`Routes::for_action`]) and writes the
//! notifications ([`announce::notifications`]) to the outbox in the transaction of the event;
//! [`worker::run`] delivers them at least once.

pub mod announce;
pub mod deliver;
pub mod email;
pub mod routes;
pub mod signature;
pub mod slack;
pub mod worker;

pub use announce::{Approvals, Kind};
pub use deliver::Sender;
pub use routes::{Route, Routes, Subject, Target};
