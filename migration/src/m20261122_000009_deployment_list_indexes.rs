//! Indexes for the filtered pages of `GET /deployments`: each filter the page offers, followed
//! by the page's order (`deploy_time DESC, id DESC`), so a page is read in order and stops after
//! `limit` rows instead of sorting every matching deploy (measured by `scripts/bench`).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Deployment {
    Table,
    RepositoryKey,
    Environment,
    Status,
    DeployTime,
    Id,
}

const REPOSITORY_ENVIRONMENT: &str = "idx_deployment_repo_env_time";
const REPOSITORY: &str = "idx_deployment_repo_time";
const STATUS: &str = "idx_deployment_status_time";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let indexes = [
            (
                REPOSITORY_ENVIRONMENT,
                vec![
                    Deployment::RepositoryKey,
                    Deployment::Environment,
                    Deployment::DeployTime,
                    Deployment::Id,
                ],
            ),
            (
                REPOSITORY,
                vec![Deployment::RepositoryKey, Deployment::DeployTime, Deployment::Id],
            ),
            (STATUS, vec![Deployment::Status, Deployment::DeployTime, Deployment::Id]),
        ];
        for (name, columns) in indexes {
            let mut index = Index::create();
            index.name(name).table(Deployment::Table);
            for column in columns {
                index.col(column);
            }
            manager.create_index(index.to_owned()).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for name in [REPOSITORY_ENVIRONMENT, REPOSITORY, STATUS] {
            manager
                .drop_index(Index::drop().name(name).table(Deployment::Table).to_owned())
                .await?;
        }
        Ok(())
    }
}
