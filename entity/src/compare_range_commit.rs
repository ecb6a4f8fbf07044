//! One commit of a comparison's listing, at its position in GitHub's order (oldest first).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "compare_range_commit")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub range_id: i64,
    #[sea_orm(primary_key, auto_increment = false)]
    pub position: i64,
    pub sha: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
