//! The permanent ancestry cache: definitive answers for (repository, ancestor, descendant).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum AncestryFact {
    Table,
    Id,
    RepositoryKey,
    AncestorSha,
    DescendantSha,
    IsAncestor,
    Status,
    Source,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(AncestryFact::Table)
                    .col(
                        ColumnDef::new(AncestryFact::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(AncestryFact::RepositoryKey).string().not_null())
                    .col(ColumnDef::new(AncestryFact::AncestorSha).string_len(40).not_null())
                    .col(ColumnDef::new(AncestryFact::DescendantSha).string_len(40).not_null())
                    .col(ColumnDef::new(AncestryFact::IsAncestor).boolean().not_null())
                    .col(ColumnDef::new(AncestryFact::Status).string().null())
                    .col(ColumnDef::new(AncestryFact::Source).string().not_null())
                    .col(
                        ColumnDef::new(AncestryFact::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_ancestry_fact")
                    .table(AncestryFact::Table)
                    .col(AncestryFact::RepositoryKey)
                    .col(AncestryFact::AncestorSha)
                    .col(AncestryFact::DescendantSha)
                    .unique()
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(AncestryFact::Table).to_owned())
            .await?;
        Ok(())
    }
}
