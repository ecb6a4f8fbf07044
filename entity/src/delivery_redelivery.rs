//! A webhook delivery (by GUID) shiplog asked GitHub to redeliver.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "delivery_redelivery")]
pub struct Model {
    /// `X-GitHub-Delivery`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub guid: String,
    /// GitHub's id of the failed delivery the ask named.
    pub hook_delivery_id: i64,
    pub event: Option<String>,
    /// `asked` (GitHub accepted) or `failed` (the last ask was refused).
    pub outcome: String,
    /// How many times it was asked for.
    pub asks: i32,
    #[sea_orm(column_type = "Text", nullable)]
    pub error: Option<String>,
    pub asked_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
