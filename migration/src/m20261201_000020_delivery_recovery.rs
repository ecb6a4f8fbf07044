//! Catching up on missed webhook deliveries (issue 19):
//!
//! - `delivery_recovery`: one row (`id` 1): the newest App hook delivery id a complete pass has
//!   seen (where the next pass stops paging back) and the last pass's result as JSON;
//! - `delivery_redelivery`: each GUID shiplog asked GitHub to redeliver, with GitHub's delivery id,
//!   how many asks it took and the last ask's error, so a GUID is asked for once (a failed ask at
//!   most `recovery::MAX_ASKS` times), however many passes and replicas see it.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum DeliveryRecovery {
    Table,
    Id,
    LastSeenId,
    LastPass,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum DeliveryRedelivery {
    Table,
    Guid,
    HookDeliveryId,
    Event,
    Outcome,
    Asks,
    Error,
    AskedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(DeliveryRecovery::Table)
                    .col(ColumnDef::new(DeliveryRecovery::Id).integer().not_null().primary_key())
                    .col(ColumnDef::new(DeliveryRecovery::LastSeenId).big_integer().null())
                    .col(ColumnDef::new(DeliveryRecovery::LastPass).text().null())
                    .col(
                        ColumnDef::new(DeliveryRecovery::UpdatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(DeliveryRedelivery::Table)
                    .col(
                        ColumnDef::new(DeliveryRedelivery::Guid)
                            .string_len(100)
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(DeliveryRedelivery::HookDeliveryId)
                            .big_integer()
                            .not_null(),
                    )
                    .col(ColumnDef::new(DeliveryRedelivery::Event).string().null())
                    .col(ColumnDef::new(DeliveryRedelivery::Outcome).string().not_null())
                    .col(ColumnDef::new(DeliveryRedelivery::Asks).integer().not_null())
                    .col(ColumnDef::new(DeliveryRedelivery::Error).text().null())
                    .col(
                        ColumnDef::new(DeliveryRedelivery::AskedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(DeliveryRedelivery::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(DeliveryRecovery::Table).to_owned())
            .await
    }
}
