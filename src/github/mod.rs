//! Everything that knows GitHub's formats: webhook signatures, webhook payloads, App auth.
//!
//! Only `events.rs` knows the webhook JSON; the rest of shiplog sees the internal event types
//! it produces.

pub mod app;
pub mod compare;
pub mod events;
#[cfg(test)]
mod hostile_input;
pub mod issues;
pub mod signature;
