//! shiplog: a self-hosted GitHub App that tells an engineering org what code is live where.
//!
//! Layers go one way: `http` → domain modules (`intake`, `connections`, …) → `store` and
//! `github`. See `docs/design.md` for the webhook → transaction → job → agent flow.

pub mod ancestry;
pub mod backfill;
pub mod board;
pub mod cli;
pub mod clock;
pub mod config;
pub mod connections;
pub mod credentials;
pub mod delivery;
pub mod deploys;
pub mod drift;
pub mod error;
pub mod events;
pub mod github;
pub mod http;
pub mod idempotency;
pub mod intake;
pub mod jobs;
pub mod limits;
pub mod maintenance;
pub mod metrics;
pub mod monitoring;
pub mod outbound;
pub mod recovery;
pub mod setup;
pub mod shipped;
pub mod startup;
pub mod store;
pub mod supervise;
pub mod telemetry;
pub mod triggers;
pub mod types;
pub mod validation;
