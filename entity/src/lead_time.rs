//! A merged pull request's lead time to one environment: the first deploy there that contained
//! its merge commit, with the stages from first commit to live.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "lead_time")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub connection_id: i64,
    pub repository: String,
    pub repository_key: String,
    pub environment: String,
    pub pull_number: i64,
    #[sea_orm(column_type = "Text")]
    pub title: String,
    pub author: Option<String>,
    pub merge_commit_sha: String,
    /// The earliest author time among the pull request's commits the range listed.
    pub first_commit_at: Option<DateTimeUtc>,
    pub opened_at: Option<DateTimeUtc>,
    pub merged_at: DateTimeUtc,
    pub deployment_id: i64,
    pub deploy_started_at: DateTimeUtc,
    pub live_at: DateTimeUtc,
    /// `live_at` in whole seconds since the Unix epoch.
    pub live_epoch: i64,
    /// From its start (first commit, else opening, else merge) to `live_at`.
    pub lead_seconds: i64,
    pub recorded_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
