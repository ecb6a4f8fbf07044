//! The first answer to a request made with an `Idempotency-Key`, kept for 24 hours.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "idempotent_request")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub credential_id: i64,
    pub idempotency_key: String,
    /// Hex SHA-256 of the request body, to tell a replay from a different request.
    pub request_hash: String,
    pub response_status: i32,
    #[sea_orm(column_type = "Text")]
    pub response_body: String,
    pub response_location: Option<String>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
