//! Typed jobs: a rollback notice becomes a kind of its own. Before, `monitoring.check` rows
//! carried either `{"check_id": …}` or `{"rolled_back": {"plan_id", "deployment_id",
//! "environment"}}`; now the second is `monitoring.rolled_back` with the inner object as its
//! payload. Rows still waiting to run (`queued`, or `running` under a lease that a dead worker
//! left) are rewritten, so nothing enqueued before the upgrade dies for want of a handler;
//! finished rows keep their history as it was.
//!
//! No index is added: `job.dedupe_key` is unique since the table was created, which is what
//! enqueueing's `ON CONFLICT (dedupe_key) DO NOTHING` relies on.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DatabaseBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The rows to rewrite: only `rolled_back` payloads, recognised by their only key.
const OLD_ROLLBACK: &str = "kind = 'monitoring.check' AND state IN ('queued', 'running') \
                            AND payload LIKE '{\"rolled_back\":%'";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let inner = match manager.get_database_backend() {
            DatabaseBackend::Postgres => "(payload::json -> 'rolled_back')::text",
            _ => "json_extract(payload, '$.rolled_back')",
        };
        manager
            .get_connection()
            .execute_unprepared(&format!(
                "UPDATE job SET kind = 'monitoring.rolled_back', payload = {inner} WHERE {OLD_ROLLBACK}"
            ))
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let wrapped = match manager.get_database_backend() {
            DatabaseBackend::Postgres => "json_build_object('rolled_back', payload::json)::text",
            _ => "json_object('rolled_back', json(payload))",
        };
        manager
            .get_connection()
            .execute_unprepared(&format!(
                "UPDATE job SET kind = 'monitoring.check', payload = {wrapped} \
                 WHERE kind = 'monitoring.rolled_back' AND state IN ('queued', 'running')"
            ))
            .await?;
        Ok(())
    }
}
