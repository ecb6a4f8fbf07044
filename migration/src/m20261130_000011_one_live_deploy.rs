//! Invariants the database enforces, so concurrent writers cannot break them:
//! at most one `live` deploy per connection, repository and environment (a partial unique
//! index), and one deploy per `external_id` of a connection's repository (unique index).
//!
//! Rows that already break them (left by races before this migration) are repaired first: of
//! several live deploys the one that went live last stays live and the others become
//! `superseded` by it; of several deploys with one `external_id`, the oldest keeps it and the
//! others get `#duplicate-<id>` appended, so nothing is deleted.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const NEWEST_LIVE: &str = "(SELECT d2.id FROM deployment d2 \
     WHERE d2.connection_id = deployment.connection_id \
       AND d2.repository_key = deployment.repository_key \
       AND d2.environment = deployment.environment \
       AND d2.status = 'live' \
     ORDER BY COALESCE(d2.completed_at, d2.status_at) DESC, d2.id DESC LIMIT 1)";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared(&format!(
            "UPDATE deployment SET status = 'superseded', superseded_by_id = {NEWEST_LIVE} \
             WHERE status = 'live' AND id <> {NEWEST_LIVE}"
        ))
        .await?;
        db.execute_unprepared(
            "UPDATE deployment SET external_id = external_id || '#duplicate-' || CAST(id AS TEXT) \
             WHERE external_id IS NOT NULL AND id > (SELECT MIN(d2.id) FROM deployment d2 \
               WHERE d2.connection_id = deployment.connection_id \
                 AND d2.repository_key = deployment.repository_key \
                 AND d2.external_id = deployment.external_id)",
        )
        .await?;
        db.execute_unprepared(
            "CREATE UNIQUE INDEX uq_deployment_one_live ON deployment (connection_id, repository_key, environment) \
             WHERE status = 'live'",
        )
        .await?;
        manager
            .drop_index(
                Index::drop()
                    .name("idx_deployment_external_id")
                    .table(Alias::new("deployment"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_deployment_external_id")
                    .table(Alias::new("deployment"))
                    .col(Alias::new("connection_id"))
                    .col(Alias::new("repository_key"))
                    .col(Alias::new("external_id"))
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("uq_deployment_external_id")
                    .table(Alias::new("deployment"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_deployment_external_id")
                    .table(Alias::new("deployment"))
                    .col(Alias::new("connection_id"))
                    .col(Alias::new("repository_key"))
                    .col(Alias::new("external_id"))
                    .to_owned(),
            )
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name("uq_deployment_one_live")
                    .table(Alias::new("deployment"))
                    .to_owned(),
            )
            .await
    }
}
