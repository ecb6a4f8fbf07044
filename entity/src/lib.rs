//! sea-orm entities, one file per table. Only the application's `store` module uses them.

pub mod connection;
pub mod connection_repository;
pub mod webhook_delivery;
