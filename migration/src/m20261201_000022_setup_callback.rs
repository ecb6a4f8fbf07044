//! The browser set-up's callback (issue 20): the code GitHub hands back, sealed on its state's
//! row until the `app.convert_manifest` job exchanges it, and how that ended, for `/setup`.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum SetupState {
    Table,
    /// Base64 of `nonce || ciphertext` (setup::secret_key); cleared once the job used it.
    CodeSealed,
    /// `pending`, `done`, `expired` or `failed`; null until the callback consumed the state.
    Outcome,
    FinishedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one at a time.
        manager
            .alter_table(
                Table::alter()
                    .table(SetupState::Table)
                    .add_column(ColumnDef::new(SetupState::CodeSealed).text().null())
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(SetupState::Table)
                    .add_column(ColumnDef::new(SetupState::Outcome).string_len(20).null())
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(SetupState::Table)
                    .add_column(ColumnDef::new(SetupState::FinishedAt).timestamp_with_time_zone().null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [SetupState::FinishedAt, SetupState::Outcome, SetupState::CodeSealed] {
            manager
                .alter_table(Table::alter().table(SetupState::Table).drop_column(column).to_owned())
                .await?;
        }
        Ok(())
    }
}
