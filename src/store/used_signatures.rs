//! Signatures of signed requests seen within their window. The unique hash makes a replay a
//! uniqueness conflict, on every replica at once.

use chrono::{DateTime, Utc};
use entity::used_signature::{ActiveModel, Column, Entity};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, NotSet, QueryFilter, Set};

use super::{StoreError, StoreResult, Writer};

/// Records a signature; `false` when it was recorded before (a replay).
pub async fn remember(db: &impl Writer, signature_hash: &str, expires_at: DateTime<Utc>) -> StoreResult<bool> {
    let inserted = ActiveModel {
        id: NotSet,
        signature_hash: Set(signature_hash.to_owned()),
        expires_at: Set(expires_at),
    }
    .insert(db)
    .await
    .map_err(StoreError::from);
    match inserted {
        Ok(_) => Ok(true),
        Err(StoreError::Conflict(_)) => Ok(false),
        Err(other) => Err(other),
    }
}

/// Forgets signatures whose window has closed; returns how many.
pub async fn purge_expired(db: &impl Writer, now: DateTime<Utc>) -> StoreResult<u64> {
    let result = Entity::delete_many()
        .filter(Column::ExpiresAt.lte(now))
        .exec(db)
        .await?;
    Ok(result.rows_affected)
}
