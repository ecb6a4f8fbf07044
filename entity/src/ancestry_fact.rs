//! A definitive ancestry answer: for fixed SHAs it never changes.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "ancestry_fact")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub repository_key: String,
    pub ancestor_sha: String,
    pub descendant_sha: String,
    pub is_ancestor: bool,
    /// The compare status when GitHub said it (`ahead`, `behind`, `diverged`, `identical`).
    pub status: Option<String>,
    /// `compare`, or `derived` (a commit listed in a comparison of the descendant).
    pub source: String,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
