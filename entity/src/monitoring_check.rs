//! One scheduled check of a plan.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "monitoring_check")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub plan_id: i64,
    /// The deploy the schedule counts from.
    pub deployment_id: i64,
    pub offset_seconds: i64,
    pub due_at: DateTimeUtc,
    /// `pending`, `sent`, `failed` or `cancelled`.
    pub status: String,
    pub sent_at: Option<DateTimeUtc>,
    pub verdict: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub summary: Option<String>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
