//! A post-deploy trigger: fire the agent once `sha` is live in (repository, environment).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "trigger")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub connection_id: i64,
    pub repository: String,
    pub repository_key: String,
    pub environment: String,
    /// Full SHA.
    pub sha: String,
    pub delay_seconds: i64,
    #[sea_orm(column_type = "Text", nullable)]
    pub target_url: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub message: Option<String>,
    /// `watching`, `scheduled`, `fired`, `failed` or `cancelled`.
    pub state: String,
    pub matched_deployment_id: Option<i64>,
    pub fire_at: Option<DateTimeUtc>,
    pub fired_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
