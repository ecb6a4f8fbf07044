//! sea-orm entities, one file per table. Only the application's `store` module uses them.

pub mod admin_session;
pub mod ancestry_fact;
pub mod backfill;
pub mod backfill_item;
pub mod backfill_repository;
pub mod commit_info;
pub mod compare_range;
pub mod compare_range_commit;
pub mod connection;
pub mod connection_repository;
pub mod deploy_credential;
pub mod deploy_shipment;
pub mod deployment;
pub mod deployment_status;
pub mod drift;
pub mod idempotent_request;
pub mod job;
pub mod live_batch;
pub mod monitoring_check;
pub mod monitoring_plan;
pub mod plan_environment;
pub mod pull_request;
pub mod trigger;
pub mod trigger_attempt;
pub mod used_signature;
pub mod webhook_delivery;
