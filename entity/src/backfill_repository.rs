//! One repository of a backfill and where its reading stands.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "backfill_repository")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub backfill_id: i64,
    pub repository: String,
    pub repository_key: String,
    pub default_branch: Option<String>,
    /// `deployments`, `runs` (pages being read), `apply` (staged items being applied) or `done`.
    pub phase: String,
    /// The next page of the phase being read (a GraphQL cursor or a REST next-page query).
    #[sea_orm(column_type = "Text", nullable)]
    pub cursor: Option<String>,
    /// Pages read so far, both phases: a repository stops at `backfill::MAX_PAGES_PER_REPOSITORY`.
    pub pages: i64,
    pub imported: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
