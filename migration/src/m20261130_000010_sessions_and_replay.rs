//! Server-side admin sessions (a cookie holds a random id; signing out deletes the row) and the
//! signatures of signed `POST /deployments` requests seen within their window (replay refusal).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum AdminSession {
    Table,
    Id,
    /// Hex SHA-256 of the cookie's random id: a database leak reveals no usable cookie.
    IdHash,
    /// Random salt and `HMAC(salt, admin token)`: a changed admin token ends the session.
    Salt,
    TokenTag,
    CreatedAt,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum UsedSignature {
    Table,
    Id,
    /// Hex SHA-256 of the credential's username and the signature header.
    SignatureHash,
    ExpiresAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(AdminSession::Table)
                    .col(
                        ColumnDef::new(AdminSession::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(AdminSession::IdHash).string_len(64).not_null())
                    .col(ColumnDef::new(AdminSession::Salt).string_len(64).not_null())
                    .col(ColumnDef::new(AdminSession::TokenTag).string_len(64).not_null())
                    .col(
                        ColumnDef::new(AdminSession::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(AdminSession::ExpiresAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("admin_session_id_hash")
                    .table(AdminSession::Table)
                    .col(AdminSession::IdHash)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(UsedSignature::Table)
                    .col(
                        ColumnDef::new(UsedSignature::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(UsedSignature::SignatureHash).string_len(64).not_null())
                    .col(
                        ColumnDef::new(UsedSignature::ExpiresAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("used_signature_hash")
                    .table(UsedSignature::Table)
                    .col(UsedSignature::SignatureHash)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(UsedSignature::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(AdminSession::Table).to_owned())
            .await
    }
}
