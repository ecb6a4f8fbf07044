//! The catch-up on missed webhook deliveries: one row (`id` 1) with where the last complete pass
//! stopped paging and the last pass's result.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "delivery_recovery")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: i32,
    /// The newest App hook delivery id a complete pass saw.
    pub last_seen_id: Option<i64>,
    /// The last pass's result (`recovery::PassReport`) as JSON.
    #[sea_orm(column_type = "Text", nullable)]
    pub last_pass: Option<String>,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
