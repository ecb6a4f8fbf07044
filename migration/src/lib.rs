//! Schema migrations for shiplog, one file per migration.
//!
//! Migrations are portable between SQLite and PostgreSQL: sea-query builders only, foreign keys
//! declared in `create_table`, UTC timestamps, and a `DEFAULT` for every `NOT NULL` column added
//! to an existing table. A shipped migration is never edited; a change is a new file.

pub use sea_orm_migration::prelude::*;

mod m20261122_000001_connections_and_deliveries;
mod m20261122_000002_deployments_and_jobs;
mod m20261122_000003_credentials_and_idempotency;
mod m20261122_000004_ancestry_facts;
mod m20261122_000005_triggers;
mod m20261122_000006_pull_requests;
mod m20261122_000007_monitoring_plans;
mod m20261122_000008_connection_agent_secret;
mod m20261122_000009_deployment_list_indexes;
mod m20261130_000010_sessions_and_replay;
mod m20261130_000011_one_live_deploy;
mod m20261130_000012_compare_ranges;
mod m20261130_000013_typed_jobs;
mod m20261130_000014_foreign_key_indexes;
mod m20261130_000015_session_principal;
mod m20261130_000016_actions_runs_and_backfill;
mod m20261201_000017_connection_cache_version;
mod m20261201_000018_shipped_and_drift;
mod m20261201_000019_delivery_metrics;
mod m20261201_000020_delivery_recovery;
mod m20261201_000021_app_setup;
mod m20261201_000022_setup_callback;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261122_000001_connections_and_deliveries::Migration),
            Box::new(m20261122_000002_deployments_and_jobs::Migration),
            Box::new(m20261122_000003_credentials_and_idempotency::Migration),
            Box::new(m20261122_000004_ancestry_facts::Migration),
            Box::new(m20261122_000005_triggers::Migration),
            Box::new(m20261122_000006_pull_requests::Migration),
            Box::new(m20261122_000007_monitoring_plans::Migration),
            Box::new(m20261122_000008_connection_agent_secret::Migration),
            Box::new(m20261122_000009_deployment_list_indexes::Migration),
            Box::new(m20261130_000010_sessions_and_replay::Migration),
            Box::new(m20261130_000011_one_live_deploy::Migration),
            Box::new(m20261130_000012_compare_ranges::Migration),
            Box::new(m20261130_000013_typed_jobs::Migration),
            Box::new(m20261130_000014_foreign_key_indexes::Migration),
            Box::new(m20261130_000015_session_principal::Migration),
            Box::new(m20261130_000016_actions_runs_and_backfill::Migration),
            Box::new(m20261201_000017_connection_cache_version::Migration),
            Box::new(m20261201_000018_shipped_and_drift::Migration),
            Box::new(m20261201_000019_delivery_metrics::Migration),
            Box::new(m20261201_000020_delivery_recovery::Migration),
            Box::new(m20261201_000021_app_setup::Migration),
            Box::new(m20261201_000022_setup_callback::Migration),
        ]
    }
}
