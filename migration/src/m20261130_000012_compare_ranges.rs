//! Progress of a deploy's range comparison, page by page, so a retried `deploy.went_live` job
//! continues where the last attempt stopped instead of asking GitHub for the same pages again;
//! and what each deploy's batch finally did (done, or skipped with the reason).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum CompareRange {
    Table,
    Id,
    RepositoryKey,
    BaseSha,
    HeadSha,
    Status,
    NextUrl,
    Listed,
    Complete,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum LiveBatch {
    Table,
    Id,
    DeploymentId,
    State,
    Note,
    GithubCalls,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Deployment {
    Table,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(CompareRange::Table)
                    .col(
                        ColumnDef::new(CompareRange::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(CompareRange::RepositoryKey).string().not_null())
                    .col(ColumnDef::new(CompareRange::BaseSha).string_len(40).not_null())
                    .col(ColumnDef::new(CompareRange::HeadSha).string_len(40).not_null())
                    .col(ColumnDef::new(CompareRange::Status).string().null())
                    .col(ColumnDef::new(CompareRange::NextUrl).text().null())
                    .col(ColumnDef::new(CompareRange::Listed).big_integer().not_null().default(0))
                    .col(
                        ColumnDef::new(CompareRange::Complete)
                            .boolean()
                            .not_null()
                            .default(false),
                    )
                    .col(
                        ColumnDef::new(CompareRange::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(CompareRange::UpdatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_compare_range")
                    .table(CompareRange::Table)
                    .col(CompareRange::RepositoryKey)
                    .col(CompareRange::BaseSha)
                    .col(CompareRange::HeadSha)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(LiveBatch::Table)
                    .col(
                        ColumnDef::new(LiveBatch::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(LiveBatch::DeploymentId).big_integer().not_null())
                    .col(ColumnDef::new(LiveBatch::State).string().not_null())
                    .col(ColumnDef::new(LiveBatch::Note).text().null())
                    .col(ColumnDef::new(LiveBatch::GithubCalls).integer().not_null().default(0))
                    .col(
                        ColumnDef::new(LiveBatch::UpdatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_live_batch_deployment")
                            .from(LiveBatch::Table, LiveBatch::DeploymentId)
                            .to(Deployment::Table, Deployment::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_live_batch_deployment")
                    .table(LiveBatch::Table)
                    .col(LiveBatch::DeploymentId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(LiveBatch::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(CompareRange::Table).to_owned())
            .await?;
        Ok(())
    }
}
