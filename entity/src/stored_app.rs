//! The GitHub App created from the browser; its secrets sealed (base64 of nonce || ciphertext).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "stored_app")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: i32,
    pub app_id: i64,
    pub slug: String,
    pub name: String,
    pub owner_login: String,
    pub html_url: String,
    pub client_id: String,
    pub client_secret_sealed: String,
    pub webhook_secret_sealed: String,
    pub private_key_sealed: String,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
