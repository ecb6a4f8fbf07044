//! A deployment or run read from GitHub's history, waiting to be applied oldest first.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "backfill_item")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub backfill_id: i64,
    pub repository_key: String,
    pub occurred_at: DateTimeUtc,
    /// The item as JSON (`backfill::Item`).
    #[sea_orm(column_type = "Text")]
    pub payload: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
