//! Connections (one per GitHub App installation), their repositories, and the log of webhook
//! deliveries that makes intake idempotent.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Connection {
    Table,
    Id,
    InstallationId,
    AccountLogin,
    AccountType,
    AccountId,
    RepositorySelection,
    Settings,
    SuspendedAt,
    DeletedAt,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum ConnectionRepository {
    Table,
    Id,
    ConnectionId,
    GithubRepoId,
    FullName,
    FullNameLower,
    AddedAt,
}

#[derive(DeriveIden)]
enum WebhookDelivery {
    Table,
    Id,
    DeliveryId,
    Event,
    Action,
    InstallationId,
    ConnectionId,
    Outcome,
    Reason,
    ReceivedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Connection::Table)
                    .col(
                        ColumnDef::new(Connection::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(Connection::InstallationId)
                            .big_integer()
                            .not_null()
                            .unique_key(),
                    )
                    .col(ColumnDef::new(Connection::AccountLogin).string().not_null())
                    .col(ColumnDef::new(Connection::AccountType).string().not_null())
                    .col(ColumnDef::new(Connection::AccountId).big_integer().null())
                    .col(
                        ColumnDef::new(Connection::RepositorySelection)
                            .string()
                            .not_null()
                            .default("selected"),
                    )
                    .col(ColumnDef::new(Connection::Settings).text().not_null().default("{}"))
                    .col(
                        ColumnDef::new(Connection::SuspendedAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .col(ColumnDef::new(Connection::DeletedAt).timestamp_with_time_zone().null())
                    .col(
                        ColumnDef::new(Connection::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Connection::UpdatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_connection_account_login")
                    .table(Connection::Table)
                    .col(Connection::AccountLogin)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(ConnectionRepository::Table)
                    .col(
                        ColumnDef::new(ConnectionRepository::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(ConnectionRepository::ConnectionId)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ConnectionRepository::GithubRepoId)
                            .big_integer()
                            .not_null(),
                    )
                    .col(ColumnDef::new(ConnectionRepository::FullName).string().not_null())
                    .col(ColumnDef::new(ConnectionRepository::FullNameLower).string().not_null())
                    .col(
                        ColumnDef::new(ConnectionRepository::AddedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_connection_repository_connection")
                            .from(ConnectionRepository::Table, ConnectionRepository::ConnectionId)
                            .to(Connection::Table, Connection::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_connection_repository_repo")
                    .table(ConnectionRepository::Table)
                    .col(ConnectionRepository::ConnectionId)
                    .col(ConnectionRepository::GithubRepoId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_connection_repository_name")
                    .table(ConnectionRepository::Table)
                    .col(ConnectionRepository::FullNameLower)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(WebhookDelivery::Table)
                    .col(
                        ColumnDef::new(WebhookDelivery::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(WebhookDelivery::DeliveryId)
                            .string()
                            .not_null()
                            .unique_key(),
                    )
                    .col(ColumnDef::new(WebhookDelivery::Event).string().not_null())
                    .col(ColumnDef::new(WebhookDelivery::Action).string().null())
                    .col(ColumnDef::new(WebhookDelivery::InstallationId).big_integer().null())
                    .col(ColumnDef::new(WebhookDelivery::ConnectionId).big_integer().null())
                    .col(ColumnDef::new(WebhookDelivery::Outcome).string().not_null())
                    .col(ColumnDef::new(WebhookDelivery::Reason).text().null())
                    .col(
                        ColumnDef::new(WebhookDelivery::ReceivedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_webhook_delivery_connection")
                            .from(WebhookDelivery::Table, WebhookDelivery::ConnectionId)
                            .to(Connection::Table, Connection::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_webhook_delivery_received_at")
                    .table(WebhookDelivery::Table)
                    .col(WebhookDelivery::ReceivedAt)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(WebhookDelivery::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(ConnectionRepository::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Connection::Table).to_owned())
            .await?;
        Ok(())
    }
}
