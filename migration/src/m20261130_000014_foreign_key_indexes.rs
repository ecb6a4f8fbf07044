//! Indexes for the foreign keys that queries filter on: a plan's environments by deploy (the
//! plans a deploy brought, a rollback), a plan's checks, a trigger's attempts, the triggers a
//! deploy scheduled (a rollback), a connection's credentials, and a repository's pull requests by
//! merge commit (the watch sources). Without them each of these reads the whole table.

use sea_orm_migration::prelude::*;

#[derive(DeriveIden)]
enum PlanEnvironment {
    Table,
    DeploymentId,
}

#[derive(DeriveIden)]
enum MonitoringCheck {
    Table,
    PlanId,
}

#[derive(DeriveIden)]
enum TriggerAttempt {
    Table,
    TriggerId,
}

#[derive(DeriveIden)]
enum Trigger {
    Table,
    MatchedDeploymentId,
}

#[derive(DeriveIden)]
enum DeployCredential {
    Table,
    ConnectionId,
}

#[derive(DeriveIden)]
enum PullRequest {
    Table,
    ConnectionId,
    RepositoryKey,
    MergeCommitSha,
}

#[derive(DeriveMigrationName)]
pub struct Migration;

/// (name, table, columns) of every index this migration adds.
fn indexes() -> Vec<(&'static str, DynIden, Vec<DynIden>)> {
    vec![
        (
            "idx_plan_environment_deployment",
            PlanEnvironment::Table.into_iden(),
            vec![PlanEnvironment::DeploymentId.into_iden()],
        ),
        (
            "idx_monitoring_check_plan",
            MonitoringCheck::Table.into_iden(),
            vec![MonitoringCheck::PlanId.into_iden()],
        ),
        (
            "idx_trigger_attempt_trigger",
            TriggerAttempt::Table.into_iden(),
            vec![TriggerAttempt::TriggerId.into_iden()],
        ),
        (
            "idx_trigger_matched_deployment",
            Trigger::Table.into_iden(),
            vec![Trigger::MatchedDeploymentId.into_iden()],
        ),
        (
            "idx_deploy_credential_connection",
            DeployCredential::Table.into_iden(),
            vec![DeployCredential::ConnectionId.into_iden()],
        ),
        (
            "idx_pull_request_merge_commit",
            PullRequest::Table.into_iden(),
            vec![
                PullRequest::ConnectionId.into_iden(),
                PullRequest::RepositoryKey.into_iden(),
                PullRequest::MergeCommitSha.into_iden(),
            ],
        ),
    ]
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (name, table, columns) in indexes() {
            let mut index = Index::create();
            index.name(name).table(table);
            for column in columns {
                index.col(column);
            }
            manager.create_index(index.to_owned()).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (name, table, _) in indexes() {
            manager
                .drop_index(Index::drop().name(name).table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
