//! The browser set-up's rows: single-use `state` hashes and the one stored App (secrets arrive
//! here sealed; this module never sees a plain secret).

use chrono::{DateTime, Utc};
use entity::{setup_state, stored_app};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, NotSet, QueryFilter, QueryOrder, Set};

use super::{Conn, StoreResult, Writer};

/// The stored App's id column: one App per shiplog.
const THE_APP: i32 = 1;

pub async fn insert_state(
    db: &impl Writer,
    state_hash: &str,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> StoreResult<()> {
    setup_state::ActiveModel {
        id: NotSet,
        state_hash: Set(state_hash.to_owned()),
        created_at: Set(now),
        expires_at: Set(expires_at),
        used_at: Set(None),
        code_sealed: Set(None),
        outcome: Set(None),
        finished_at: Set(None),
    }
    .insert(db)
    .await?;
    Ok(())
}

/// Marks the state used, in one statement: `true` only for the first caller, and only while it
/// has not expired. A second use, an expired or an unknown state is `false`.
pub async fn consume_state(db: &impl Writer, state_hash: &str, now: DateTime<Utc>) -> StoreResult<bool> {
    let result = setup_state::Entity::update_many()
        .col_expr(setup_state::Column::UsedAt, Expr::value(Some(now)))
        .filter(setup_state::Column::StateHash.eq(state_hash))
        .filter(setup_state::Column::UsedAt.is_null())
        .filter(setup_state::Column::ExpiresAt.gt(now))
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}

/// After [`consume_state`] won: keeps the sealed code on the state's row, marked `pending`;
/// returns the row's id (the conversion job's only payload).
pub async fn attach_code(db: &impl Writer, state_hash: &str, code_sealed: &str) -> StoreResult<Option<i64>> {
    let Some(row) = setup_state::Entity::find()
        .filter(setup_state::Column::StateHash.eq(state_hash))
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    let id = row.id;
    let mut active: setup_state::ActiveModel = row.into();
    active.code_sealed = Set(Some(code_sealed.to_owned()));
    active.outcome = Set(Some(OUTCOME_PENDING.to_owned()));
    active.update(db).await?;
    Ok(Some(id))
}

pub const OUTCOME_PENDING: &str = "pending";

/// The sealed code of a `pending` row, or `None` when the row is gone or already finished.
pub async fn pending_code(db: &impl Conn, id: i64) -> StoreResult<Option<String>> {
    let row = setup_state::Entity::find_by_id(id).one(db).await?;
    Ok(row
        .filter(|r| r.outcome.as_deref() == Some(OUTCOME_PENDING))
        .and_then(|r| r.code_sealed))
}

/// Records how the conversion ended and forgets the code.
pub async fn finish(db: &impl Writer, id: i64, outcome: &str, now: DateTime<Utc>) -> StoreResult<()> {
    setup_state::Entity::update_many()
        .col_expr(setup_state::Column::Outcome, Expr::value(Some(outcome.to_owned())))
        .col_expr(setup_state::Column::CodeSealed, Expr::value(Option::<String>::None))
        .col_expr(setup_state::Column::FinishedAt, Expr::value(Some(now)))
        .filter(setup_state::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

/// The outcome of the last callback since `since` (`pending`, `done`, `expired`, `failed`).
pub async fn last_outcome(db: &impl Conn, since: DateTime<Utc>) -> StoreResult<Option<String>> {
    let row = setup_state::Entity::find()
        .filter(setup_state::Column::Outcome.is_not_null())
        .filter(setup_state::Column::UsedAt.gt(since))
        .order_by_desc(setup_state::Column::UsedAt)
        .order_by_desc(setup_state::Column::Id)
        .one(db)
        .await?;
    Ok(row.and_then(|r| r.outcome))
}

/// Forgets states that expired before `now`; returns how many.
pub async fn purge_expired_states(db: &impl Writer, now: DateTime<Utc>) -> StoreResult<u64> {
    let result = setup_state::Entity::delete_many()
        .filter(setup_state::Column::ExpiresAt.lte(now))
        .exec(db)
        .await?;
    Ok(result.rows_affected)
}

/// The App as stored: public fields plain, secrets sealed (base64 of nonce || ciphertext).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealedApp {
    pub app_id: i64,
    pub slug: String,
    pub name: String,
    pub owner_login: String,
    pub html_url: String,
    pub client_id: String,
    pub client_secret_sealed: String,
    pub webhook_secret_sealed: String,
    pub private_key_sealed: String,
    pub created_at: DateTime<Utc>,
}

/// Stores the App, replacing one stored before (a set-up done again).
pub async fn save_app(db: &impl Writer, app: &SealedApp) -> StoreResult<()> {
    stored_app::Entity::delete_by_id(THE_APP).exec(db).await?;
    stored_app::ActiveModel {
        id: Set(THE_APP),
        app_id: Set(app.app_id),
        slug: Set(app.slug.clone()),
        name: Set(app.name.clone()),
        owner_login: Set(app.owner_login.clone()),
        html_url: Set(app.html_url.clone()),
        client_id: Set(app.client_id.clone()),
        client_secret_sealed: Set(app.client_secret_sealed.clone()),
        webhook_secret_sealed: Set(app.webhook_secret_sealed.clone()),
        private_key_sealed: Set(app.private_key_sealed.clone()),
        created_at: Set(app.created_at),
    }
    .insert(db)
    .await?;
    Ok(())
}

pub async fn load_app(db: &impl Conn) -> StoreResult<Option<SealedApp>> {
    let row = stored_app::Entity::find_by_id(THE_APP).one(db).await?;
    Ok(row.map(|r| SealedApp {
        app_id: r.app_id,
        slug: r.slug,
        name: r.name,
        owner_login: r.owner_login,
        html_url: r.html_url,
        client_id: r.client_id,
        client_secret_sealed: r.client_secret_sealed,
        webhook_secret_sealed: r.webhook_secret_sealed,
        private_key_sealed: r.private_key_sealed,
        created_at: r.created_at,
    }))
}
