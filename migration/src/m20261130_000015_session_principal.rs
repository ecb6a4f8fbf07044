//! Whom a session is for: `principal` names the kind (`admin` for every session so far) and
//! `subject` who of that kind, for kinds that have more than one (a GitHub user's id, later).
//! Existing rows are admin sessions.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum AdminSession {
    Table,
    Principal,
    Subject,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite's ALTER TABLE adds one at a time.
        manager
            .alter_table(
                Table::alter()
                    .table(AdminSession::Table)
                    .add_column(
                        ColumnDef::new(AdminSession::Principal)
                            .string_len(32)
                            .not_null()
                            .default("admin"),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(AdminSession::Table)
                    .add_column(ColumnDef::new(AdminSession::Subject).text().null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [AdminSession::Subject, AdminSession::Principal] {
            manager
                .alter_table(Table::alter().table(AdminSession::Table).drop_column(column).to_owned())
                .await?;
        }
        Ok(())
    }
}
