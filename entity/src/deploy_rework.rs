//! An unplanned deploy: a rollback (`rollback`) or a deploy that shipped a revert (`revert`).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "deploy_rework")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub connection_id: i64,
    pub repository: String,
    pub repository_key: String,
    pub environment: String,
    pub deployment_id: i64,
    pub reason: String,
    #[sea_orm(column_type = "Text")]
    pub detail: String,
    pub live_at: DateTimeUtc,
    pub recorded_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
