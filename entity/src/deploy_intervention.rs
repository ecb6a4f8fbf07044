//! A deploy that needed intervention, once per reason (`rolled_back`, `reverted`, `regressed`),
//! and the deploy that recovered from it.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "deploy_intervention")]
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
    /// When the failed deploy went live.
    pub failed_at: DateTimeUtc,
    pub recovered_by_id: Option<i64>,
    pub recovered_at: Option<DateTimeUtc>,
    pub recorded_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
