//! A signed-in browser session. The cookie holds a random id; only its hash is stored.
//! `principal` says whom it is for (`admin`); `subject` who of that kind, where there are several.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "admin_session")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub id_hash: String,
    pub salt: String,
    pub token_tag: String,
    pub created_at: DateTimeUtc,
    pub expires_at: DateTimeUtc,
    pub principal: String,
    pub subject: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
