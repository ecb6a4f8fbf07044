//! What each deploy shipped and how far environments have drifted (issue 16):
//!
//! - `commit_info`: each commit a comparison listed, once per repository (first line of the
//!   message, author, time, parents), so a range read once can be shown again without GitHub;
//! - `compare_range_commit`: the commits of each `compare_range`, in GitHub's order;
//! - `deploy_shipment`: for each deploy that went live, the range it brought (`base...head`) and
//!   what kind of answer that is (first deploy, listed, rolled back, unrelated, not read);
//! - `drift`: for neighbouring environments of a repository, what the left one runs that the right
//!   one does not;
//! - `pull_request.created_at`: when the PR was opened (lead time, a later issue).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum CommitInfo {
    Table,
    Id,
    RepositoryKey,
    Sha,
    ParentShas,
    Title,
    AuthorLogin,
    AuthorName,
    AuthoredAt,
    RecordedAt,
}

#[derive(DeriveIden)]
enum CompareRangeCommit {
    Table,
    RangeId,
    Position,
    Sha,
}

#[derive(DeriveIden)]
enum CompareRange {
    Table,
    Id,
    AheadBy,
    BehindBy,
}

#[derive(DeriveIden)]
enum DeployShipment {
    Table,
    Id,
    DeploymentId,
    BaseDeploymentId,
    BaseSha,
    HeadSha,
    Kind,
    Status,
    AheadBy,
    BehindBy,
    Note,
    ComputedAt,
}

#[derive(DeriveIden)]
enum Drift {
    Table,
    Id,
    ConnectionId,
    Repository,
    RepositoryKey,
    FromEnvironment,
    ToEnvironment,
    FromDeploymentId,
    ToDeploymentId,
    FromSha,
    ToSha,
    State,
    AheadBy,
    BehindBy,
    PullRequests,
    OldestMergedAt,
    Note,
    ComputedAt,
}

#[derive(DeriveIden)]
enum Deployment {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Connection {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum PullRequest {
    Table,
    CreatedAt,
}

fn id<T: IntoIden>(column: T) -> ColumnDef {
    ColumnDef::new(column)
        .big_integer()
        .not_null()
        .auto_increment()
        .primary_key()
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // A range's counts: how many commits head has that base lacks, and the other way.
        for column in [CompareRange::AheadBy, CompareRange::BehindBy] {
            manager
                .alter_table(
                    Table::alter()
                        .table(CompareRange::Table)
                        .add_column(ColumnDef::new(column).big_integer().null())
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(CommitInfo::Table)
                    .col(id(CommitInfo::Id))
                    .col(ColumnDef::new(CommitInfo::RepositoryKey).string().not_null())
                    .col(ColumnDef::new(CommitInfo::Sha).string_len(40).not_null())
                    .col(ColumnDef::new(CommitInfo::ParentShas).text().not_null())
                    .col(ColumnDef::new(CommitInfo::Title).text().not_null())
                    .col(ColumnDef::new(CommitInfo::AuthorLogin).string().null())
                    .col(ColumnDef::new(CommitInfo::AuthorName).string().null())
                    .col(ColumnDef::new(CommitInfo::AuthoredAt).timestamp_with_time_zone().null())
                    .col(
                        ColumnDef::new(CommitInfo::RecordedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_commit_info")
                    .table(CommitInfo::Table)
                    .col(CommitInfo::RepositoryKey)
                    .col(CommitInfo::Sha)
                    .unique()
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(CompareRangeCommit::Table)
                    .col(ColumnDef::new(CompareRangeCommit::RangeId).big_integer().not_null())
                    .col(ColumnDef::new(CompareRangeCommit::Position).big_integer().not_null())
                    .col(ColumnDef::new(CompareRangeCommit::Sha).string_len(40).not_null())
                    .primary_key(
                        Index::create()
                            .col(CompareRangeCommit::RangeId)
                            .col(CompareRangeCommit::Position),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_compare_range_commit_range")
                            .from(CompareRangeCommit::Table, CompareRangeCommit::RangeId)
                            .to(CompareRange::Table, CompareRange::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(DeployShipment::Table)
                    .col(id(DeployShipment::Id))
                    .col(ColumnDef::new(DeployShipment::DeploymentId).big_integer().not_null())
                    .col(ColumnDef::new(DeployShipment::BaseDeploymentId).big_integer().null())
                    .col(ColumnDef::new(DeployShipment::BaseSha).string_len(40).null())
                    .col(ColumnDef::new(DeployShipment::HeadSha).string_len(40).not_null())
                    .col(ColumnDef::new(DeployShipment::Kind).string().not_null())
                    .col(ColumnDef::new(DeployShipment::Status).string().null())
                    .col(
                        ColumnDef::new(DeployShipment::AheadBy)
                            .big_integer()
                            .not_null()
                            .default(0),
                    )
                    .col(
                        ColumnDef::new(DeployShipment::BehindBy)
                            .big_integer()
                            .not_null()
                            .default(0),
                    )
                    .col(ColumnDef::new(DeployShipment::Note).text().null())
                    .col(
                        ColumnDef::new(DeployShipment::ComputedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_deploy_shipment_deployment")
                            .from(DeployShipment::Table, DeployShipment::DeploymentId)
                            .to(Deployment::Table, Deployment::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_deploy_shipment_base")
                            .from(DeployShipment::Table, DeployShipment::BaseDeploymentId)
                            .to(Deployment::Table, Deployment::Id)
                            .on_delete(ForeignKeyAction::SetNull),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_deploy_shipment_deployment")
                    .table(DeployShipment::Table)
                    .col(DeployShipment::DeploymentId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_deploy_shipment_base")
                    .table(DeployShipment::Table)
                    .col(DeployShipment::BaseDeploymentId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Drift::Table)
                    .col(id(Drift::Id))
                    .col(ColumnDef::new(Drift::ConnectionId).big_integer().not_null())
                    .col(ColumnDef::new(Drift::Repository).string().not_null())
                    .col(ColumnDef::new(Drift::RepositoryKey).string().not_null())
                    .col(ColumnDef::new(Drift::FromEnvironment).string().not_null())
                    .col(ColumnDef::new(Drift::ToEnvironment).string().not_null())
                    .col(ColumnDef::new(Drift::FromDeploymentId).big_integer().null())
                    .col(ColumnDef::new(Drift::ToDeploymentId).big_integer().null())
                    .col(ColumnDef::new(Drift::FromSha).string_len(40).not_null())
                    .col(ColumnDef::new(Drift::ToSha).string_len(40).not_null())
                    .col(ColumnDef::new(Drift::State).string().not_null())
                    .col(ColumnDef::new(Drift::AheadBy).big_integer().not_null().default(0))
                    .col(ColumnDef::new(Drift::BehindBy).big_integer().not_null().default(0))
                    .col(ColumnDef::new(Drift::PullRequests).big_integer().not_null().default(0))
                    .col(ColumnDef::new(Drift::OldestMergedAt).timestamp_with_time_zone().null())
                    .col(ColumnDef::new(Drift::Note).text().null())
                    .col(ColumnDef::new(Drift::ComputedAt).timestamp_with_time_zone().not_null())
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_drift_connection")
                            .from(Drift::Table, Drift::ConnectionId)
                            .to(Connection::Table, Connection::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_drift_from_deployment")
                            .from(Drift::Table, Drift::FromDeploymentId)
                            .to(Deployment::Table, Deployment::Id)
                            .on_delete(ForeignKeyAction::SetNull),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_drift_to_deployment")
                            .from(Drift::Table, Drift::ToDeploymentId)
                            .to(Deployment::Table, Deployment::Id)
                            .on_delete(ForeignKeyAction::SetNull),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_drift_pair")
                    .table(Drift::Table)
                    .col(Drift::ConnectionId)
                    .col(Drift::RepositoryKey)
                    .col(Drift::FromEnvironment)
                    .col(Drift::ToEnvironment)
                    .unique()
                    .to_owned(),
            )
            .await?;
        for (name, column) in [
            ("idx_drift_from_deployment", Drift::FromDeploymentId),
            ("idx_drift_to_deployment", Drift::ToDeploymentId),
        ] {
            manager
                .create_index(Index::create().name(name).table(Drift::Table).col(column).to_owned())
                .await?;
        }

        manager
            .alter_table(
                Table::alter()
                    .table(PullRequest::Table)
                    .add_column(ColumnDef::new(PullRequest::CreatedAt).timestamp_with_time_zone().null())
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(PullRequest::Table)
                    .drop_column(PullRequest::CreatedAt)
                    .to_owned(),
            )
            .await?;
        for table in [
            Drift::Table.into_iden(),
            DeployShipment::Table.into_iden(),
            CompareRangeCommit::Table.into_iden(),
            CommitInfo::Table.into_iden(),
        ] {
            manager.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        for column in [CompareRange::AheadBy, CompareRange::BehindBy] {
            manager
                .alter_table(Table::alter().table(CompareRange::Table).drop_column(column).to_owned())
                .await?;
        }
        Ok(())
    }
}
