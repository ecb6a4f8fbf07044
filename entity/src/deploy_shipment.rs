//! What a deploy that went live brought to its environment: the range from the deploy it
//! replaced there (`base_sha...head_sha`), and what kind of answer that is.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "deploy_shipment")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub deployment_id: i64,
    /// The deploy it replaced in its environment; `null` for the first deploy seen there.
    pub base_deployment_id: Option<i64>,
    pub base_sha: Option<String>,
    pub head_sha: String,
    /// `first`, `listed`, `unrelated` or `unread` (`shipped::Kind`).
    pub kind: String,
    /// The compare status of `base...head` (`ahead`, `behind`, `diverged`, `identical`).
    pub status: Option<String>,
    pub ahead_by: i64,
    pub behind_by: i64,
    #[sea_orm(column_type = "Text", nullable)]
    pub note: Option<String>,
    pub computed_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
