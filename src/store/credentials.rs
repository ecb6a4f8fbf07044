//! Deploy credential rows. Only the hash of a password is ever stored.

use chrono::{DateTime, Utc};
use entity::deploy_credential::{ActiveModel, Column, Entity, Model};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, NotSet, QueryFilter, QueryOrder, Set};

use super::{Conn, StoreResult, Writer};
use crate::credentials::Credential;
use crate::types::ConnectionId;

pub struct NewCredential<'a> {
    pub connection_id: i64,
    pub name: &'a str,
    pub username: &'a str,
    pub secret_hash: &'a str,
}

pub async fn insert(db: &impl Writer, new: NewCredential<'_>, now: DateTime<Utc>) -> StoreResult<Credential> {
    let model = ActiveModel {
        id: NotSet,
        connection_id: Set(new.connection_id),
        name: Set(new.name.to_owned()),
        username: Set(new.username.to_owned()),
        secret_hash: Set(new.secret_hash.to_owned()),
        created_at: Set(now),
        last_used_at: Set(None),
        revoked_at: Set(None),
    };
    Ok(into_credential(model.insert(db).await?))
}

/// Active credentials of a connection, oldest first.
pub async fn list(db: &impl Conn, connection_id: i64) -> StoreResult<Vec<Credential>> {
    let rows = Entity::find()
        .filter(Column::ConnectionId.eq(connection_id))
        .filter(Column::RevokedAt.is_null())
        .order_by_asc(Column::Id)
        .all(db)
        .await?;
    Ok(rows.into_iter().map(into_credential).collect())
}

/// Active credentials of every connection, oldest first, in one query.
pub async fn list_all(db: &impl Conn) -> StoreResult<Vec<Credential>> {
    let rows = Entity::find()
        .filter(Column::RevokedAt.is_null())
        .order_by_asc(Column::Id)
        .all(db)
        .await?;
    Ok(rows.into_iter().map(into_credential).collect())
}

/// An active credential by username, with its stored hash.
pub async fn find_active_by_username(db: &impl Conn, username: &str) -> StoreResult<Option<(Credential, String)>> {
    let row = Entity::find()
        .filter(Column::Username.eq(username))
        .filter(Column::RevokedAt.is_null())
        .one(db)
        .await?;
    Ok(row.map(|m| {
        let hash = m.secret_hash.clone();
        (into_credential(m), hash)
    }))
}

/// Revokes an active credential of the connection. Returns whether one was revoked.
pub async fn revoke(db: &impl Writer, connection_id: i64, id: i64, now: DateTime<Utc>) -> StoreResult<bool> {
    let result = Entity::update_many()
        .col_expr(Column::RevokedAt, sea_orm::sea_query::Expr::value(now))
        .filter(Column::Id.eq(id))
        .filter(Column::ConnectionId.eq(connection_id))
        .filter(Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}

/// Sets `last_used_at` to `now` unless it is already later than `stale_before` (so concurrent
/// requests of one credential write it once). Returns whether it did.
pub async fn touch(db: &impl Writer, id: i64, now: DateTime<Utc>, stale_before: DateTime<Utc>) -> StoreResult<bool> {
    let result = Entity::update_many()
        .col_expr(Column::LastUsedAt, sea_orm::sea_query::Expr::value(now))
        .filter(Column::Id.eq(id))
        .filter(
            sea_orm::Condition::any()
                .add(Column::LastUsedAt.is_null())
                .add(Column::LastUsedAt.lte(stale_before)),
        )
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}

fn into_credential(m: Model) -> Credential {
    Credential {
        id: m.id,
        connection_id: ConnectionId(m.connection_id),
        name: m.name,
        username: m.username,
        created_at: m.created_at,
        last_used_at: m.last_used_at,
    }
}
