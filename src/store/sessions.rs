//! Session rows: the hash of the cookie's random id, whom the session is for (`principal`, with
//! `subject` for kinds that have several), the salted tag of the admin token it was issued under,
//! and its expiry.

use chrono::{DateTime, Utc};
use entity::admin_session::{ActiveModel, Column, Entity};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, NotSet, QueryFilter, Set};

use super::{Conn, StoreResult, Writer};

pub struct StoredSession {
    pub principal: String,
    pub subject: Option<String>,
    pub salt: String,
    pub token_tag: String,
    pub expires_at: DateTime<Utc>,
}

pub async fn insert(
    db: &impl Writer,
    id_hash: &str,
    principal: &str,
    salt: &str,
    token_tag: &str,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> StoreResult<()> {
    ActiveModel {
        id: NotSet,
        id_hash: Set(id_hash.to_owned()),
        salt: Set(salt.to_owned()),
        token_tag: Set(token_tag.to_owned()),
        created_at: Set(now),
        expires_at: Set(expires_at),
        principal: Set(principal.to_owned()),
        subject: Set(None),
    }
    .insert(db)
    .await?;
    Ok(())
}

pub async fn find(db: &impl Conn, id_hash: &str) -> StoreResult<Option<StoredSession>> {
    let row = Entity::find().filter(Column::IdHash.eq(id_hash)).one(db).await?;
    Ok(row.map(|r| StoredSession {
        principal: r.principal,
        subject: r.subject,
        salt: r.salt,
        token_tag: r.token_tag,
        expires_at: r.expires_at,
    }))
}

pub async fn delete(db: &impl Writer, id_hash: &str) -> StoreResult<()> {
    Entity::delete_many()
        .filter(Column::IdHash.eq(id_hash))
        .exec(db)
        .await?;
    Ok(())
}

/// Removes sessions that expired before `now`; returns how many.
pub async fn purge_expired(db: &impl Writer, now: DateTime<Utc>) -> StoreResult<u64> {
    let result = Entity::delete_many()
        .filter(Column::ExpiresAt.lte(now))
        .exec(db)
        .await?;
    Ok(result.rows_affected)
}
