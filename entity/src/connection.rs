//! One GitHub App installation on an account (organization or user).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "connection")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(unique)]
    pub installation_id: i64,
    pub account_login: String,
    pub account_type: String,
    pub account_id: Option<i64>,
    pub repository_selection: String,
    /// JSON object of per-connection settings; the application owns its shape.
    #[sea_orm(column_type = "Text")]
    pub settings: String,
    pub suspended_at: Option<DateTimeUtc>,
    pub deleted_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// The connection's own agent secret; never shown.
    #[sea_orm(column_type = "Text", nullable)]
    pub agent_secret: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(has_many = "super::connection_repository::Entity")]
    Repository,
}

impl Related<super::connection_repository::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Repository.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
