//! One status event of a deployment, as reported (GitHub `deployment_status` or the API).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "deployment_status")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub deployment_id: i64,
    #[sea_orm(unique)]
    pub github_status_id: Option<i64>,
    /// The raw state as reported (`success`, `in_progress`, or anything GitHub adds later).
    pub state: String,
    /// The shiplog status it maps to, if any.
    pub status: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub description: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub log_url: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub environment_url: Option<String>,
    pub creator: Option<String>,
    pub occurred_at: DateTimeUtc,
    pub recorded_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
