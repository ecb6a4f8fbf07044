//! Deploys from GitHub Actions runs, and backfills of GitHub's history.
//!
//! A deploy made from a workflow run records the run (`github_run_id`, `run_attempt`), so the
//! `deployment` GitHub makes for the same run and environment finds it instead of making a
//! second one. `backfilled` marks a deploy imported from history: it builds the lifecycle but
//! fires nothing.
//!
//! A backfill (`backfill`) walks the installation's repositories (`backfill_repository`, one row
//! each with the cursor of the page it reads next). What a page brings is staged in
//! `backfill_item` in the transaction that advances the cursor, and applied oldest first once
//! the repository is read, so a restart resumes where it stopped and imports nothing twice.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Deployment {
    Table,
    ConnectionId,
    RepositoryKey,
    GithubRunId,
    RunAttempt,
    Backfilled,
}

#[derive(DeriveIden)]
enum Connection {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Backfill {
    Table,
    Id,
    ConnectionId,
    State,
    Step,
    Since,
    Repositories,
    RepositoriesListed,
    RepositoriesCursor,
    RepositoriesTotal,
    RepositoriesDone,
    DeploysImported,
    GithubCalls,
    RateLimit,
    RateRemaining,
    RateReset,
    Note,
    CreatedAt,
    StartedAt,
    UpdatedAt,
    FinishedAt,
}

#[derive(DeriveIden)]
enum BackfillRepository {
    Table,
    Id,
    BackfillId,
    Repository,
    RepositoryKey,
    DefaultBranch,
    Phase,
    Cursor,
    Pages,
    Imported,
}

#[derive(DeriveIden)]
enum BackfillItem {
    Table,
    Id,
    BackfillId,
    RepositoryKey,
    OccurredAt,
    Payload,
}

fn timestamp(column: impl IntoIden) -> ColumnDef {
    ColumnDef::new(column).timestamp_with_time_zone().not_null().to_owned()
}

fn counter(column: impl IntoIden) -> ColumnDef {
    ColumnDef::new(column).big_integer().not_null().default(0).to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite's ALTER TABLE adds one at a time.
        for column in [
            ColumnDef::new(Deployment::GithubRunId).big_integer().null().to_owned(),
            ColumnDef::new(Deployment::RunAttempt).big_integer().null().to_owned(),
            ColumnDef::new(Deployment::Backfilled)
                .boolean()
                .not_null()
                .default(false)
                .to_owned(),
        ] {
            manager
                .alter_table(Table::alter().table(Deployment::Table).add_column(column).to_owned())
                .await?;
        }
        manager
            .create_index(
                Index::create()
                    .name("idx_deployment_github_run")
                    .table(Deployment::Table)
                    .col(Deployment::ConnectionId)
                    .col(Deployment::RepositoryKey)
                    .col(Deployment::GithubRunId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Backfill::Table)
                    .col(
                        ColumnDef::new(Backfill::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Backfill::ConnectionId).big_integer().not_null())
                    .col(ColumnDef::new(Backfill::State).string_len(16).not_null())
                    .col(counter(Backfill::Step))
                    .col(timestamp(Backfill::Since))
                    .col(ColumnDef::new(Backfill::Repositories).text().null())
                    .col(
                        ColumnDef::new(Backfill::RepositoriesListed)
                            .boolean()
                            .not_null()
                            .default(false),
                    )
                    .col(ColumnDef::new(Backfill::RepositoriesCursor).text().null())
                    .col(counter(Backfill::RepositoriesTotal))
                    .col(counter(Backfill::RepositoriesDone))
                    .col(counter(Backfill::DeploysImported))
                    .col(counter(Backfill::GithubCalls))
                    .col(ColumnDef::new(Backfill::RateLimit).big_integer().null())
                    .col(ColumnDef::new(Backfill::RateRemaining).big_integer().null())
                    .col(ColumnDef::new(Backfill::RateReset).timestamp_with_time_zone().null())
                    .col(ColumnDef::new(Backfill::Note).text().null())
                    .col(timestamp(Backfill::CreatedAt))
                    .col(ColumnDef::new(Backfill::StartedAt).timestamp_with_time_zone().null())
                    .col(timestamp(Backfill::UpdatedAt))
                    .col(ColumnDef::new(Backfill::FinishedAt).timestamp_with_time_zone().null())
                    .foreign_key(
                        ForeignKey::create()
                            .from(Backfill::Table, Backfill::ConnectionId)
                            .to(Connection::Table, Connection::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_backfill_connection")
                    .table(Backfill::Table)
                    .col(Backfill::ConnectionId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(BackfillRepository::Table)
                    .col(
                        ColumnDef::new(BackfillRepository::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(BackfillRepository::BackfillId).big_integer().not_null())
                    .col(ColumnDef::new(BackfillRepository::Repository).string().not_null())
                    .col(ColumnDef::new(BackfillRepository::RepositoryKey).string().not_null())
                    .col(ColumnDef::new(BackfillRepository::DefaultBranch).string().null())
                    .col(ColumnDef::new(BackfillRepository::Phase).string_len(16).not_null())
                    .col(ColumnDef::new(BackfillRepository::Cursor).text().null())
                    .col(counter(BackfillRepository::Pages))
                    .col(counter(BackfillRepository::Imported))
                    .foreign_key(
                        ForeignKey::create()
                            .from(BackfillRepository::Table, BackfillRepository::BackfillId)
                            .to(Backfill::Table, Backfill::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_backfill_repository")
                    .table(BackfillRepository::Table)
                    .col(BackfillRepository::BackfillId)
                    .col(BackfillRepository::RepositoryKey)
                    .unique()
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(BackfillItem::Table)
                    .col(
                        ColumnDef::new(BackfillItem::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(BackfillItem::BackfillId).big_integer().not_null())
                    .col(ColumnDef::new(BackfillItem::RepositoryKey).string().not_null())
                    .col(timestamp(BackfillItem::OccurredAt))
                    .col(ColumnDef::new(BackfillItem::Payload).text().not_null())
                    .foreign_key(
                        ForeignKey::create()
                            .from(BackfillItem::Table, BackfillItem::BackfillId)
                            .to(Backfill::Table, Backfill::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_backfill_item_order")
                    .table(BackfillItem::Table)
                    .col(BackfillItem::BackfillId)
                    .col(BackfillItem::RepositoryKey)
                    .col(BackfillItem::OccurredAt)
                    .col(BackfillItem::Id)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            BackfillItem::Table.into_iden(),
            BackfillRepository::Table.into_iden(),
            Backfill::Table.into_iden(),
        ] {
            manager.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        manager
            .drop_index(
                Index::drop()
                    .name("idx_deployment_github_run")
                    .table(Deployment::Table)
                    .to_owned(),
            )
            .await?;
        for column in [Deployment::Backfilled, Deployment::RunAttempt, Deployment::GithubRunId] {
            manager
                .alter_table(Table::alter().table(Deployment::Table).drop_column(column).to_owned())
                .await?;
        }
        Ok(())
    }
}
