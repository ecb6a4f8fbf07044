//! How far the listing of one comparison `base...head` has been read.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "compare_range")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub repository_key: String,
    pub base_sha: String,
    pub head_sha: String,
    /// The compare status once a page was read; `unrelated` when there is no common ancestor.
    pub status: Option<String>,
    /// GitHub's `Link: rel="next"` of the last page read; `null` before the first page and after
    /// the last.
    pub next_url: Option<String>,
    /// Commits listed so far (each stored as a derived ancestry fact of `head_sha`).
    pub listed: i64,
    /// GitHub's `ahead_by` / `behind_by` once a page was read.
    pub ahead_by: Option<i64>,
    pub behind_by: Option<i64>,
    /// Every page has been read.
    pub complete: bool,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
