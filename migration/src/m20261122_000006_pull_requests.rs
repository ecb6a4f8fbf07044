//! Merged pull requests, the commits deploy monitoring watches.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Connection {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum PullRequest {
    Table,
    Id,
    ConnectionId,
    Repository,
    RepositoryKey,
    Number,
    Title,
    Author,
    MergeCommitSha,
    MergedAt,
    RecordedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(PullRequest::Table)
                    .col(
                        ColumnDef::new(PullRequest::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(PullRequest::ConnectionId).big_integer().not_null())
                    .col(ColumnDef::new(PullRequest::Repository).string().not_null())
                    .col(ColumnDef::new(PullRequest::RepositoryKey).string().not_null())
                    .col(ColumnDef::new(PullRequest::Number).big_integer().not_null())
                    .col(ColumnDef::new(PullRequest::Title).text().not_null())
                    .col(ColumnDef::new(PullRequest::Author).string().null())
                    .col(ColumnDef::new(PullRequest::MergeCommitSha).string_len(40).not_null())
                    .col(
                        ColumnDef::new(PullRequest::MergedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(PullRequest::RecordedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_pull_request_connection")
                            .from(PullRequest::Table, PullRequest::ConnectionId)
                            .to(Connection::Table, Connection::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_pull_request_number")
                    .table(PullRequest::Table)
                    .col(PullRequest::ConnectionId)
                    .col(PullRequest::RepositoryKey)
                    .col(PullRequest::Number)
                    .unique()
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(PullRequest::Table).to_owned())
            .await?;
        Ok(())
    }
}
