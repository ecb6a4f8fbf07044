//! Deploy rows, their status history, and the durable job queue's table.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Connection {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Deployment {
    Table,
    Id,
    ConnectionId,
    Repository,
    RepositoryKey,
    Environment,
    Sha,
    GitRef,
    Source,
    GithubDeploymentId,
    ExternalId,
    Version,
    Creator,
    Description,
    LogUrl,
    EnvironmentUrl,
    TransientEnvironment,
    ProductionEnvironment,
    Status,
    StatusAt,
    StatusGithubId,
    DeployTime,
    CompletedAt,
    DurationSeconds,
    SupersededById,
    RollbackTargetId,
    RecordedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum DeploymentStatus {
    Table,
    Id,
    DeploymentId,
    GithubStatusId,
    State,
    Status,
    Description,
    LogUrl,
    EnvironmentUrl,
    Creator,
    OccurredAt,
    RecordedAt,
}

#[derive(DeriveIden)]
enum Job {
    Table,
    Id,
    Kind,
    Payload,
    DedupeKey,
    State,
    RunAt,
    Attempts,
    LockedUntil,
    LockedBy,
    LastError,
    CreatedAt,
    FinishedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Deployment::Table)
                    .col(
                        ColumnDef::new(Deployment::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Deployment::ConnectionId).big_integer().not_null())
                    .col(ColumnDef::new(Deployment::Repository).string().not_null())
                    .col(ColumnDef::new(Deployment::RepositoryKey).string().not_null())
                    .col(ColumnDef::new(Deployment::Environment).string().not_null())
                    .col(ColumnDef::new(Deployment::Sha).string().not_null())
                    .col(ColumnDef::new(Deployment::GitRef).string().null())
                    .col(ColumnDef::new(Deployment::Source).string().not_null())
                    .col(ColumnDef::new(Deployment::GithubDeploymentId).big_integer().null())
                    .col(ColumnDef::new(Deployment::ExternalId).string().null())
                    .col(ColumnDef::new(Deployment::Version).string().null())
                    .col(ColumnDef::new(Deployment::Creator).string().null())
                    .col(ColumnDef::new(Deployment::Description).text().null())
                    .col(ColumnDef::new(Deployment::LogUrl).text().null())
                    .col(ColumnDef::new(Deployment::EnvironmentUrl).text().null())
                    .col(
                        ColumnDef::new(Deployment::TransientEnvironment)
                            .boolean()
                            .not_null()
                            .default(false),
                    )
                    .col(
                        ColumnDef::new(Deployment::ProductionEnvironment)
                            .boolean()
                            .not_null()
                            .default(false),
                    )
                    .col(ColumnDef::new(Deployment::Status).string().not_null())
                    .col(
                        ColumnDef::new(Deployment::StatusAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Deployment::StatusGithubId)
                            .big_integer()
                            .not_null()
                            .default(0),
                    )
                    .col(
                        ColumnDef::new(Deployment::DeployTime)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Deployment::CompletedAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .col(ColumnDef::new(Deployment::DurationSeconds).big_integer().null())
                    .col(ColumnDef::new(Deployment::SupersededById).big_integer().null())
                    .col(ColumnDef::new(Deployment::RollbackTargetId).big_integer().null())
                    .col(
                        ColumnDef::new(Deployment::RecordedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Deployment::UpdatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_deployment_connection")
                            .from(Deployment::Table, Deployment::ConnectionId)
                            .to(Connection::Table, Connection::Id),
                    )
                    .to_owned(),
            )
            .await?;
        let indexes = [
            (
                "uq_deployment_github_id",
                vec![Deployment::ConnectionId, Deployment::GithubDeploymentId],
                true,
            ),
            (
                "idx_deployment_time",
                vec![Deployment::DeployTime, Deployment::Id],
                false,
            ),
            (
                "idx_deployment_connection_time",
                vec![Deployment::ConnectionId, Deployment::DeployTime, Deployment::Id],
                false,
            ),
            (
                "idx_deployment_repo_env_status",
                vec![
                    Deployment::ConnectionId,
                    Deployment::RepositoryKey,
                    Deployment::Environment,
                    Deployment::Status,
                ],
                false,
            ),
            ("idx_deployment_sha", vec![Deployment::Sha], false),
        ];
        for (name, columns, unique) in indexes {
            let mut index = Index::create();
            index.name(name).table(Deployment::Table);
            for column in columns {
                index.col(column);
            }
            if unique {
                index.unique();
            }
            manager.create_index(index.to_owned()).await?;
        }

        manager
            .create_table(
                Table::create()
                    .table(DeploymentStatus::Table)
                    .col(
                        ColumnDef::new(DeploymentStatus::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(DeploymentStatus::DeploymentId).big_integer().not_null())
                    .col(
                        ColumnDef::new(DeploymentStatus::GithubStatusId)
                            .big_integer()
                            .null()
                            .unique_key(),
                    )
                    .col(ColumnDef::new(DeploymentStatus::State).string().not_null())
                    .col(ColumnDef::new(DeploymentStatus::Status).string().null())
                    .col(ColumnDef::new(DeploymentStatus::Description).text().null())
                    .col(ColumnDef::new(DeploymentStatus::LogUrl).text().null())
                    .col(ColumnDef::new(DeploymentStatus::EnvironmentUrl).text().null())
                    .col(ColumnDef::new(DeploymentStatus::Creator).string().null())
                    .col(
                        ColumnDef::new(DeploymentStatus::OccurredAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(DeploymentStatus::RecordedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_deployment_status_deployment")
                            .from(DeploymentStatus::Table, DeploymentStatus::DeploymentId)
                            .to(Deployment::Table, Deployment::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_deployment_status_deployment")
                    .table(DeploymentStatus::Table)
                    .col(DeploymentStatus::DeploymentId)
                    .col(DeploymentStatus::OccurredAt)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Job::Table)
                    .col(
                        ColumnDef::new(Job::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Job::Kind).string().not_null())
                    .col(ColumnDef::new(Job::Payload).text().not_null())
                    .col(ColumnDef::new(Job::DedupeKey).string().null().unique_key())
                    .col(ColumnDef::new(Job::State).string().not_null().default("queued"))
                    .col(ColumnDef::new(Job::RunAt).timestamp_with_time_zone().not_null())
                    .col(ColumnDef::new(Job::Attempts).integer().not_null().default(0))
                    .col(ColumnDef::new(Job::LockedUntil).timestamp_with_time_zone().null())
                    .col(ColumnDef::new(Job::LockedBy).string().null())
                    .col(ColumnDef::new(Job::LastError).text().null())
                    .col(ColumnDef::new(Job::CreatedAt).timestamp_with_time_zone().not_null())
                    .col(ColumnDef::new(Job::FinishedAt).timestamp_with_time_zone().null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_job_state_run_at")
                    .table(Job::Table)
                    .col(Job::State)
                    .col(Job::RunAt)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Job::Table).to_owned()).await?;
        manager
            .drop_table(Table::drop().table(DeploymentStatus::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Deployment::Table).to_owned())
            .await?;
        Ok(())
    }
}
