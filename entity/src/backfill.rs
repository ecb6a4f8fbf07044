//! A backfill: GitHub's deploy history of one connection imported since a date.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "backfill")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub connection_id: i64,
    /// `queued`, `running`, `waiting` (for GitHub's rate limit), `done` or `failed`.
    pub state: String,
    /// The step the next `backfill.step` job must carry: a step commits only if it still
    /// matches, so two workers running one backfill never both import a page.
    pub step: i64,
    pub since: DateTimeUtc,
    /// The repositories asked for (a JSON list of names); `None` for all of the installation's.
    #[sea_orm(column_type = "Text", nullable)]
    pub repositories: Option<String>,
    /// Whether every repository to read has its `backfill_repository` row.
    pub repositories_listed: bool,
    /// The next page of `GET /installation/repositories` while listing.
    #[sea_orm(column_type = "Text", nullable)]
    pub repositories_cursor: Option<String>,
    pub repositories_total: i64,
    pub repositories_done: i64,
    pub deploys_imported: i64,
    pub github_calls: i64,
    pub rate_limit: Option<i64>,
    pub rate_remaining: Option<i64>,
    pub rate_reset: Option<DateTimeUtc>,
    /// Why it waits or failed.
    #[sea_orm(column_type = "Text", nullable)]
    pub note: Option<String>,
    pub created_at: DateTimeUtc,
    pub started_at: Option<DateTimeUtc>,
    pub updated_at: DateTimeUtc,
    pub finished_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
