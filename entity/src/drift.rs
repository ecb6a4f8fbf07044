//! How far one environment of a repository is ahead of its neighbour: the commits live in
//! `from_environment` and not yet in `to_environment`.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "drift")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub connection_id: i64,
    pub repository: String,
    pub repository_key: String,
    pub from_environment: String,
    pub to_environment: String,
    pub from_deployment_id: Option<i64>,
    pub to_deployment_id: Option<i64>,
    pub from_sha: String,
    pub to_sha: String,
    /// `in_sync`, `ahead`, `diverged`, `unrelated` or `unread` (`drift::DriftState`).
    pub state: String,
    /// Commits in `from` that `to` lacks.
    pub ahead_by: i64,
    /// Commits in `to` that `from` lacks.
    pub behind_by: i64,
    /// Merged pull requests among the `ahead_by` commits.
    pub pull_requests: i64,
    /// When the oldest of those pull requests was merged.
    pub oldest_merged_at: Option<DateTimeUtc>,
    #[sea_orm(column_type = "Text", nullable)]
    pub note: Option<String>,
    pub computed_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
