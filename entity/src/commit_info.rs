//! A commit a comparison listed, kept once per repository so a range can be shown again
//! without asking GitHub.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "commit_info")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub repository_key: String,
    pub sha: String,
    /// The parents' full SHAs, space-separated, in Git's order (first parent first).
    #[sea_orm(column_type = "Text")]
    pub parent_shas: String,
    /// The message's first line, bounded.
    #[sea_orm(column_type = "Text")]
    pub title: String,
    pub author_login: Option<String>,
    pub author_name: Option<String>,
    pub authored_at: Option<DateTimeUtc>,
    /// The commit its message says it reverts ("This reverts commit X").
    pub reverts_sha: Option<String>,
    /// The pull request its message says it reverts ("Reverts owner/repo#N").
    pub reverts_pull_request: Option<i64>,
    pub recorded_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
