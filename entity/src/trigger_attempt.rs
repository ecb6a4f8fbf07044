//! One attempt to deliver a trigger to its agent.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "trigger_attempt")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub trigger_id: i64,
    pub deployment_id: i64,
    pub attempted_at: DateTimeUtc,
    /// The agent's HTTP status, when it answered.
    pub status_code: Option<i32>,
    #[sea_orm(column_type = "Text", nullable)]
    pub error: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
