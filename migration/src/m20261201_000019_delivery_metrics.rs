//! Delivery metrics (issue 17), stored as they become known so a year of them is a read:
//!
//! - `lead_time`: for each merged pull request and environment, the first deploy there that
//!   contained its merge commit, with the stages (first commit, opened, merged, deploy started,
//!   live), written when that deploy's went-live job reads what it shipped; its live time in
//!   whole seconds since the epoch and its lead time in seconds are kept as numbers, so a
//!   year of them is counted without decoding a timestamp;
//! - `deploy_intervention`: a deploy that needed intervention (rolled back, a revert of one of its
//!   pull requests shipped soon after, a monitoring check said `regressed`), once per reason, with
//!   the deploy that recovered from it;
//! - `deploy_rework`: an unplanned deploy (a rollback, or a deploy that shipped a revert);
//! - `commit_info.reverts_sha` / `reverts_pull_request`: what a listed commit's message says it
//!   reverts ("This reverts commit X", "Reverts owner/repo#N");
//! - `idx_deployment_repo_completed`: a report reads a repository's deploys by when they went live
//!   (a window of them, in order), where the older indexes only reach all of its deploys.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum CommitInfo {
    Table,
    RevertsSha,
    RevertsPullRequest,
}

#[derive(DeriveIden)]
enum LeadTime {
    Table,
    Id,
    ConnectionId,
    Repository,
    RepositoryKey,
    Environment,
    PullNumber,
    Title,
    Author,
    MergeCommitSha,
    FirstCommitAt,
    OpenedAt,
    MergedAt,
    DeploymentId,
    DeployStartedAt,
    LiveAt,
    LiveEpoch,
    LeadSeconds,
    RecordedAt,
}

#[derive(DeriveIden)]
enum DeployIntervention {
    Table,
    Id,
    ConnectionId,
    Repository,
    RepositoryKey,
    Environment,
    DeploymentId,
    Reason,
    Detail,
    FailedAt,
    RecoveredById,
    RecoveredAt,
    RecordedAt,
}

#[derive(DeriveIden)]
enum DeployRework {
    Table,
    Id,
    ConnectionId,
    Repository,
    RepositoryKey,
    Environment,
    DeploymentId,
    Reason,
    Detail,
    LiveAt,
    RecordedAt,
}

#[derive(DeriveIden)]
enum Deployment {
    Table,
    Id,
    RepositoryKey,
    CompletedAt,
}

#[derive(DeriveIden)]
enum Connection {
    Table,
    Id,
}

fn id<T: IntoIden>(column: T) -> ColumnDef {
    ColumnDef::new(column)
        .big_integer()
        .not_null()
        .auto_increment()
        .primary_key()
        .to_owned()
}

fn at<T: IntoIden>(column: T) -> ColumnDef {
    ColumnDef::new(column).timestamp_with_time_zone().not_null().to_owned()
}

fn maybe_at<T: IntoIden>(column: T) -> ColumnDef {
    ColumnDef::new(column).timestamp_with_time_zone().null().to_owned()
}

fn cascade(name: &str, from: impl IntoTableRef, column: impl IntoIden) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(name)
        .from(from, column)
        .to(Deployment::Table, Deployment::Id)
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}

fn of_connection(name: &str, from: impl IntoTableRef, column: impl IntoIden) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(name)
        .from(from, column)
        .to(Connection::Table, Connection::Id)
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(CommitInfo::Table)
                    .add_column(ColumnDef::new(CommitInfo::RevertsSha).string_len(40).null())
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(CommitInfo::Table)
                    .add_column(ColumnDef::new(CommitInfo::RevertsPullRequest).big_integer().null())
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(LeadTime::Table)
                    .col(id(LeadTime::Id))
                    .col(ColumnDef::new(LeadTime::ConnectionId).big_integer().not_null())
                    .col(ColumnDef::new(LeadTime::Repository).string().not_null())
                    .col(ColumnDef::new(LeadTime::RepositoryKey).string().not_null())
                    .col(ColumnDef::new(LeadTime::Environment).string().not_null())
                    .col(ColumnDef::new(LeadTime::PullNumber).big_integer().not_null())
                    .col(ColumnDef::new(LeadTime::Title).text().not_null())
                    .col(ColumnDef::new(LeadTime::Author).string().null())
                    .col(ColumnDef::new(LeadTime::MergeCommitSha).string_len(40).not_null())
                    .col(maybe_at(LeadTime::FirstCommitAt))
                    .col(maybe_at(LeadTime::OpenedAt))
                    .col(at(LeadTime::MergedAt))
                    .col(ColumnDef::new(LeadTime::DeploymentId).big_integer().not_null())
                    .col(at(LeadTime::DeployStartedAt))
                    .col(at(LeadTime::LiveAt))
                    .col(ColumnDef::new(LeadTime::LiveEpoch).big_integer().not_null())
                    .col(ColumnDef::new(LeadTime::LeadSeconds).big_integer().not_null())
                    .col(at(LeadTime::RecordedAt))
                    .foreign_key(&mut of_connection(
                        "fk_lead_time_connection",
                        LeadTime::Table,
                        LeadTime::ConnectionId,
                    ))
                    .foreign_key(&mut cascade(
                        "fk_lead_time_deployment",
                        LeadTime::Table,
                        LeadTime::DeploymentId,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_lead_time")
                    .table(LeadTime::Table)
                    .col(LeadTime::ConnectionId)
                    .col(LeadTime::RepositoryKey)
                    .col(LeadTime::Environment)
                    .col(LeadTime::PullNumber)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_lead_time_live")
                    .table(LeadTime::Table)
                    .col(LeadTime::RepositoryKey)
                    .col(LeadTime::LiveAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_lead_time_deployment")
                    .table(LeadTime::Table)
                    .col(LeadTime::DeploymentId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(DeployIntervention::Table)
                    .col(id(DeployIntervention::Id))
                    .col(
                        ColumnDef::new(DeployIntervention::ConnectionId)
                            .big_integer()
                            .not_null(),
                    )
                    .col(ColumnDef::new(DeployIntervention::Repository).string().not_null())
                    .col(ColumnDef::new(DeployIntervention::RepositoryKey).string().not_null())
                    .col(ColumnDef::new(DeployIntervention::Environment).string().not_null())
                    .col(
                        ColumnDef::new(DeployIntervention::DeploymentId)
                            .big_integer()
                            .not_null(),
                    )
                    .col(ColumnDef::new(DeployIntervention::Reason).string().not_null())
                    .col(ColumnDef::new(DeployIntervention::Detail).text().not_null())
                    .col(at(DeployIntervention::FailedAt))
                    .col(ColumnDef::new(DeployIntervention::RecoveredById).big_integer().null())
                    .col(maybe_at(DeployIntervention::RecoveredAt))
                    .col(at(DeployIntervention::RecordedAt))
                    .foreign_key(&mut of_connection(
                        "fk_deploy_intervention_connection",
                        DeployIntervention::Table,
                        DeployIntervention::ConnectionId,
                    ))
                    .foreign_key(&mut cascade(
                        "fk_deploy_intervention_deployment",
                        DeployIntervention::Table,
                        DeployIntervention::DeploymentId,
                    ))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_deploy_intervention_recovered_by")
                            .from(DeployIntervention::Table, DeployIntervention::RecoveredById)
                            .to(Deployment::Table, Deployment::Id)
                            .on_delete(ForeignKeyAction::SetNull),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_deploy_intervention")
                    .table(DeployIntervention::Table)
                    .col(DeployIntervention::DeploymentId)
                    .col(DeployIntervention::Reason)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_deploy_intervention_failed")
                    .table(DeployIntervention::Table)
                    .col(DeployIntervention::RepositoryKey)
                    .col(DeployIntervention::FailedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_deploy_intervention_recovered_by")
                    .table(DeployIntervention::Table)
                    .col(DeployIntervention::RecoveredById)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(DeployRework::Table)
                    .col(id(DeployRework::Id))
                    .col(ColumnDef::new(DeployRework::ConnectionId).big_integer().not_null())
                    .col(ColumnDef::new(DeployRework::Repository).string().not_null())
                    .col(ColumnDef::new(DeployRework::RepositoryKey).string().not_null())
                    .col(ColumnDef::new(DeployRework::Environment).string().not_null())
                    .col(ColumnDef::new(DeployRework::DeploymentId).big_integer().not_null())
                    .col(ColumnDef::new(DeployRework::Reason).string().not_null())
                    .col(ColumnDef::new(DeployRework::Detail).text().not_null())
                    .col(at(DeployRework::LiveAt))
                    .col(at(DeployRework::RecordedAt))
                    .foreign_key(&mut of_connection(
                        "fk_deploy_rework_connection",
                        DeployRework::Table,
                        DeployRework::ConnectionId,
                    ))
                    .foreign_key(&mut cascade(
                        "fk_deploy_rework_deployment",
                        DeployRework::Table,
                        DeployRework::DeploymentId,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_deploy_rework")
                    .table(DeployRework::Table)
                    .col(DeployRework::DeploymentId)
                    .col(DeployRework::Reason)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_deploy_rework_live")
                    .table(DeployRework::Table)
                    .col(DeployRework::RepositoryKey)
                    .col(DeployRework::LiveAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_deployment_repo_completed")
                    .table(Deployment::Table)
                    .col(Deployment::RepositoryKey)
                    .col(Deployment::CompletedAt)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("idx_deployment_repo_completed")
                    .table(Deployment::Table)
                    .to_owned(),
            )
            .await?;
        for table in [
            DeployRework::Table.into_iden(),
            DeployIntervention::Table.into_iden(),
            LeadTime::Table.into_iden(),
        ] {
            manager.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        for column in [
            CommitInfo::RevertsSha.into_iden(),
            CommitInfo::RevertsPullRequest.into_iden(),
        ] {
            manager
                .alter_table(Table::alter().table(CommitInfo::Table).drop_column(column).to_owned())
                .await?;
        }
        Ok(())
    }
}
