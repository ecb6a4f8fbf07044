//! Stored first answers for `Idempotency-Key`.

use chrono::{DateTime, Utc};
use entity::idempotent_request::{ActiveModel, Column, Entity};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, NotSet, QueryFilter, Set};

use super::{Conn, StoreResult, Writer};

pub struct StoredAnswer {
    pub request_hash: String,
    pub body: String,
    pub created_at: DateTime<Utc>,
}

pub async fn find(db: &impl Conn, credential_id: i64, key: &str) -> StoreResult<Option<StoredAnswer>> {
    let row = Entity::find()
        .filter(Column::CredentialId.eq(credential_id))
        .filter(Column::IdempotencyKey.eq(key))
        .one(db)
        .await?;
    Ok(row.map(|r| StoredAnswer {
        request_hash: r.request_hash,
        body: r.response_body,
        created_at: r.created_at,
    }))
}

pub async fn delete(db: &impl Writer, credential_id: i64, key: &str) -> StoreResult<()> {
    Entity::delete_many()
        .filter(Column::CredentialId.eq(credential_id))
        .filter(Column::IdempotencyKey.eq(key))
        .exec(db)
        .await?;
    Ok(())
}

pub async fn insert(
    db: &impl Writer,
    credential_id: i64,
    key: &str,
    request_hash: &str,
    status: u16,
    body: &str,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    ActiveModel {
        id: NotSet,
        credential_id: Set(credential_id),
        idempotency_key: Set(key.to_owned()),
        request_hash: Set(request_hash.to_owned()),
        response_status: Set(i32::from(status)),
        response_body: Set(body.to_owned()),
        response_location: Set(None),
        created_at: Set(now),
    }
    .insert(db)
    .await?;
    Ok(())
}

/// Removes answers stored before `cutoff`; returns how many.
pub async fn purge_before(db: &impl Writer, cutoff: DateTime<Utc>) -> StoreResult<u64> {
    let result = Entity::delete_many()
        .filter(Column::CreatedAt.lt(cutoff))
        .exec(db)
        .await?;
    Ok(result.rows_affected)
}
