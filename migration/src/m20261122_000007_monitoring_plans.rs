//! Deploy monitoring: plans, the environments a plan's PR is live in, and scheduled checks.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Connection {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum MonitoringPlan {
    Table,
    Id,
    ConnectionId,
    Repository,
    RepositoryKey,
    PullNumber,
    Environments,
    Note,
    Status,
    FirstDeployedAt,
    ExpiresAt,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum PlanEnvironment {
    Table,
    Id,
    PlanId,
    Environment,
    DeploymentId,
    DeployedAt,
    RemovedAt,
}

#[derive(DeriveIden)]
enum MonitoringCheck {
    Table,
    Id,
    PlanId,
    DeploymentId,
    OffsetSeconds,
    DueAt,
    Status,
    SentAt,
    Verdict,
    Summary,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(MonitoringPlan::Table)
                    .col(
                        ColumnDef::new(MonitoringPlan::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(MonitoringPlan::ConnectionId).big_integer().not_null())
                    .col(ColumnDef::new(MonitoringPlan::Repository).string().not_null())
                    .col(ColumnDef::new(MonitoringPlan::RepositoryKey).string().not_null())
                    .col(ColumnDef::new(MonitoringPlan::PullNumber).big_integer().not_null())
                    .col(
                        ColumnDef::new(MonitoringPlan::Environments)
                            .text()
                            .not_null()
                            .default("[]"),
                    )
                    .col(ColumnDef::new(MonitoringPlan::Note).text().null())
                    .col(ColumnDef::new(MonitoringPlan::Status).string().not_null())
                    .col(
                        ColumnDef::new(MonitoringPlan::FirstDeployedAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .col(
                        ColumnDef::new(MonitoringPlan::ExpiresAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .col(
                        ColumnDef::new(MonitoringPlan::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(MonitoringPlan::UpdatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_monitoring_plan_connection")
                            .from(MonitoringPlan::Table, MonitoringPlan::ConnectionId)
                            .to(Connection::Table, Connection::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_monitoring_plan_pull")
                    .table(MonitoringPlan::Table)
                    .col(MonitoringPlan::ConnectionId)
                    .col(MonitoringPlan::RepositoryKey)
                    .col(MonitoringPlan::PullNumber)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(PlanEnvironment::Table)
                    .col(
                        ColumnDef::new(PlanEnvironment::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(PlanEnvironment::PlanId).big_integer().not_null())
                    .col(ColumnDef::new(PlanEnvironment::Environment).string().not_null())
                    .col(ColumnDef::new(PlanEnvironment::DeploymentId).big_integer().not_null())
                    .col(
                        ColumnDef::new(PlanEnvironment::DeployedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(PlanEnvironment::RemovedAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_plan_environment_plan")
                            .from(PlanEnvironment::Table, PlanEnvironment::PlanId)
                            .to(MonitoringPlan::Table, MonitoringPlan::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_plan_environment")
                    .table(PlanEnvironment::Table)
                    .col(PlanEnvironment::PlanId)
                    .col(PlanEnvironment::Environment)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(MonitoringCheck::Table)
                    .col(
                        ColumnDef::new(MonitoringCheck::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(MonitoringCheck::PlanId).big_integer().not_null())
                    .col(ColumnDef::new(MonitoringCheck::DeploymentId).big_integer().not_null())
                    .col(ColumnDef::new(MonitoringCheck::OffsetSeconds).big_integer().not_null())
                    .col(
                        ColumnDef::new(MonitoringCheck::DueAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(ColumnDef::new(MonitoringCheck::Status).string().not_null())
                    .col(
                        ColumnDef::new(MonitoringCheck::SentAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .col(ColumnDef::new(MonitoringCheck::Verdict).string().null())
                    .col(ColumnDef::new(MonitoringCheck::Summary).text().null())
                    .col(
                        ColumnDef::new(MonitoringCheck::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_monitoring_check_plan")
                            .from(MonitoringCheck::Table, MonitoringCheck::PlanId)
                            .to(MonitoringPlan::Table, MonitoringPlan::Id),
                    )
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(MonitoringCheck::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(PlanEnvironment::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(MonitoringPlan::Table).to_owned())
            .await?;
        Ok(())
    }
}
