//! Setting the GitHub App up from the browser (issue 20): the single-use `state` values handed to
//! GitHub's manifest flow, and the App GitHub created, with its secrets sealed.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum SetupState {
    Table,
    Id,
    /// Hex SHA-256 of the random state: a database leak reveals no usable state.
    StateHash,
    CreatedAt,
    ExpiresAt,
    /// Set once, when the callback consumes the state.
    UsedAt,
}

#[derive(DeriveIden)]
enum StoredApp {
    Table,
    /// Always 1: one App per shiplog.
    Id,
    AppId,
    Slug,
    Name,
    OwnerLogin,
    HtmlUrl,
    ClientId,
    /// Base64 of `nonce || ciphertext` (setup::secret_key), never the plain value.
    ClientSecretSealed,
    WebhookSecretSealed,
    PrivateKeySealed,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(SetupState::Table)
                    .col(
                        ColumnDef::new(SetupState::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(SetupState::StateHash).string_len(64).not_null())
                    .col(
                        ColumnDef::new(SetupState::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(SetupState::ExpiresAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(ColumnDef::new(SetupState::UsedAt).timestamp_with_time_zone().null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("setup_state_state_hash")
                    .table(SetupState::Table)
                    .col(SetupState::StateHash)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(StoredApp::Table)
                    .col(ColumnDef::new(StoredApp::Id).integer().not_null().primary_key())
                    .col(ColumnDef::new(StoredApp::AppId).big_integer().not_null())
                    .col(ColumnDef::new(StoredApp::Slug).string_len(100).not_null())
                    .col(ColumnDef::new(StoredApp::Name).string_len(200).not_null())
                    .col(ColumnDef::new(StoredApp::OwnerLogin).string_len(100).not_null())
                    .col(ColumnDef::new(StoredApp::HtmlUrl).string_len(500).not_null())
                    .col(ColumnDef::new(StoredApp::ClientId).string_len(100).not_null())
                    .col(ColumnDef::new(StoredApp::ClientSecretSealed).text().not_null())
                    .col(ColumnDef::new(StoredApp::WebhookSecretSealed).text().not_null())
                    .col(ColumnDef::new(StoredApp::PrivateKeySealed).text().not_null())
                    .col(
                        ColumnDef::new(StoredApp::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(StoredApp::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(SetupState::Table).to_owned())
            .await
    }
}
