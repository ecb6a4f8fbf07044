//! Post-deploy triggers and the log of their delivery attempts.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Connection {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Trigger {
    Table,
    Id,
    ConnectionId,
    Repository,
    RepositoryKey,
    Environment,
    Sha,
    DelaySeconds,
    TargetUrl,
    Message,
    State,
    MatchedDeploymentId,
    FireAt,
    FiredAt,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum TriggerAttempt {
    Table,
    Id,
    TriggerId,
    DeploymentId,
    AttemptedAt,
    StatusCode,
    Error,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Trigger::Table)
                    .col(
                        ColumnDef::new(Trigger::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Trigger::ConnectionId).big_integer().not_null())
                    .col(ColumnDef::new(Trigger::Repository).string().not_null())
                    .col(ColumnDef::new(Trigger::RepositoryKey).string().not_null())
                    .col(ColumnDef::new(Trigger::Environment).string().not_null())
                    .col(ColumnDef::new(Trigger::Sha).string_len(40).not_null())
                    .col(
                        ColumnDef::new(Trigger::DelaySeconds)
                            .big_integer()
                            .not_null()
                            .default(0),
                    )
                    .col(ColumnDef::new(Trigger::TargetUrl).text().null())
                    .col(ColumnDef::new(Trigger::Message).text().null())
                    .col(ColumnDef::new(Trigger::State).string().not_null())
                    .col(ColumnDef::new(Trigger::MatchedDeploymentId).big_integer().null())
                    .col(ColumnDef::new(Trigger::FireAt).timestamp_with_time_zone().null())
                    .col(ColumnDef::new(Trigger::FiredAt).timestamp_with_time_zone().null())
                    .col(ColumnDef::new(Trigger::CreatedAt).timestamp_with_time_zone().not_null())
                    .col(ColumnDef::new(Trigger::UpdatedAt).timestamp_with_time_zone().not_null())
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_trigger_connection")
                            .from(Trigger::Table, Trigger::ConnectionId)
                            .to(Connection::Table, Connection::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_trigger_watching")
                    .table(Trigger::Table)
                    .col(Trigger::ConnectionId)
                    .col(Trigger::RepositoryKey)
                    .col(Trigger::State)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(TriggerAttempt::Table)
                    .col(
                        ColumnDef::new(TriggerAttempt::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(TriggerAttempt::TriggerId).big_integer().not_null())
                    .col(ColumnDef::new(TriggerAttempt::DeploymentId).big_integer().not_null())
                    .col(
                        ColumnDef::new(TriggerAttempt::AttemptedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(ColumnDef::new(TriggerAttempt::StatusCode).integer().null())
                    .col(ColumnDef::new(TriggerAttempt::Error).text().null())
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_trigger_attempt_trigger")
                            .from(TriggerAttempt::Table, TriggerAttempt::TriggerId)
                            .to(Trigger::Table, Trigger::Id),
                    )
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(TriggerAttempt::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Trigger::Table).to_owned())
            .await?;
        Ok(())
    }
}
