//! Everything that knows GitHub's formats: webhook signatures, webhook payloads, App auth, the
//! history read for the backfill (`history.rs`).
//!
//! Only `events.rs` knows the webhook JSON; the rest of shiplog sees the events it converts
//! them to (`crate::events`).

pub mod app;
pub mod client;
pub mod compare;
pub mod deliveries;
pub mod error;
pub mod events;
pub mod history;
#[cfg(test)]
mod hostile_input;
pub mod issues;
pub mod manifest_conversion;
pub mod signature;
