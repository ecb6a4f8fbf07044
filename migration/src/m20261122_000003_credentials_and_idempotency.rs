//! Deploy credentials (for the explicit deployment API) and stored answers for `Idempotency-Key`.

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
    ConnectionId,
    RepositoryKey,
    ExternalId,
}

#[derive(DeriveIden)]
enum DeployCredential {
    Table,
    Id,
    ConnectionId,
    Name,
    Username,
    SecretHash,
    CreatedAt,
    LastUsedAt,
    RevokedAt,
}

#[derive(DeriveIden)]
enum IdempotentRequest {
    Table,
    Id,
    CredentialId,
    IdempotencyKey,
    RequestHash,
    ResponseStatus,
    ResponseBody,
    ResponseLocation,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(DeployCredential::Table)
                    .col(
                        ColumnDef::new(DeployCredential::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(DeployCredential::ConnectionId).big_integer().not_null())
                    .col(ColumnDef::new(DeployCredential::Name).string().not_null())
                    .col(
                        ColumnDef::new(DeployCredential::Username)
                            .string()
                            .not_null()
                            .unique_key(),
                    )
                    .col(ColumnDef::new(DeployCredential::SecretHash).string().not_null())
                    .col(
                        ColumnDef::new(DeployCredential::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(DeployCredential::LastUsedAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .col(
                        ColumnDef::new(DeployCredential::RevokedAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_deploy_credential_connection")
                            .from(DeployCredential::Table, DeployCredential::ConnectionId)
                            .to(Connection::Table, Connection::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(IdempotentRequest::Table)
                    .col(
                        ColumnDef::new(IdempotentRequest::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(IdempotentRequest::CredentialId).big_integer().not_null())
                    .col(ColumnDef::new(IdempotentRequest::IdempotencyKey).string().not_null())
                    .col(ColumnDef::new(IdempotentRequest::RequestHash).string().not_null())
                    .col(ColumnDef::new(IdempotentRequest::ResponseStatus).integer().not_null())
                    .col(ColumnDef::new(IdempotentRequest::ResponseBody).text().not_null())
                    .col(ColumnDef::new(IdempotentRequest::ResponseLocation).string().null())
                    .col(
                        ColumnDef::new(IdempotentRequest::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_idempotent_request_credential")
                            .from(IdempotentRequest::Table, IdempotentRequest::CredentialId)
                            .to(DeployCredential::Table, DeployCredential::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_idempotent_request_key")
                    .table(IdempotentRequest::Table)
                    .col(IdempotentRequest::CredentialId)
                    .col(IdempotentRequest::IdempotencyKey)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_deployment_external_id")
                    .table(Deployment::Table)
                    .col(Deployment::ConnectionId)
                    .col(Deployment::RepositoryKey)
                    .col(Deployment::ExternalId)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("idx_deployment_external_id")
                    .table(Deployment::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(IdempotentRequest::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(DeployCredential::Table).to_owned())
            .await?;
        Ok(())
    }
}
