//! A merged pull request of a connection's repository.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "pull_request")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub connection_id: i64,
    pub repository: String,
    pub repository_key: String,
    pub number: i64,
    #[sea_orm(column_type = "Text")]
    pub title: String,
    pub author: Option<String>,
    /// The commit the merge made on the base branch (squash, rebase or merge commit).
    pub merge_commit_sha: String,
    pub merged_at: DateTimeUtc,
    /// When the pull request was opened (from the `pull_request` event).
    pub created_at: Option<DateTimeUtc>,
    pub recorded_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
