//! The catch-up on missed webhook deliveries: where the last complete pass stopped paging, the
//! last pass's result, the GUIDs asked for again, and the recurring job's one dedupe key.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use entity::{delivery_recovery, delivery_redelivery, webhook_delivery};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, EntityTrait, FromQueryResult, QueryFilter, QuerySelect, Set};

use super::{statement, Conn, StoreResult, Writer};

/// The state row's id: there is one.
const STATE_ID: i32 = 1;

/// What the last pass left.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecoveryState {
    /// The newest App hook delivery id a complete pass saw.
    pub last_seen_id: Option<i64>,
    /// The last pass's result, as JSON.
    pub last_pass: Option<String>,
}

pub async fn state(db: &impl Conn) -> StoreResult<RecoveryState> {
    let row = delivery_recovery::Entity::find_by_id(STATE_ID).one(db).await?;
    Ok(row.map_or_else(RecoveryState::default, |row| RecoveryState {
        last_seen_id: row.last_seen_id,
        last_pass: row.last_pass,
    }))
}

/// Stores the pass's result and where the next pass stops paging.
pub async fn save(db: &impl Writer, saved: &RecoveryState, now: DateTime<Utc>) -> StoreResult<()> {
    let row = delivery_recovery::ActiveModel {
        id: Set(STATE_ID),
        last_seen_id: Set(saved.last_seen_id),
        last_pass: Set(saved.last_pass.clone()),
        updated_at: Set(now),
    };
    delivery_recovery::Entity::insert(row)
        .on_conflict(
            OnConflict::column(delivery_recovery::Column::Id)
                .update_columns([
                    delivery_recovery::Column::LastSeenId,
                    delivery_recovery::Column::LastPass,
                    delivery_recovery::Column::UpdatedAt,
                ])
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    Ok(())
}

/// Which of `guids` shiplog has a webhook delivery row for (one query).
pub async fn stored_guids(db: &impl Conn, guids: &[String]) -> StoreResult<HashSet<String>> {
    if guids.is_empty() {
        return Ok(HashSet::new());
    }
    let found: Vec<String> = webhook_delivery::Entity::find()
        .select_only()
        .column(webhook_delivery::Column::DeliveryId)
        .filter(webhook_delivery::Column::DeliveryId.is_in(guids.iter().cloned()))
        .into_tuple()
        .all(db)
        .await?;
    Ok(found.into_iter().collect())
}

/// An ask for a GUID as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ask {
    /// `asked` or `failed`.
    pub outcome: String,
    pub asks: i32,
    pub error: Option<String>,
}

/// The asks recorded for `guids` (one query).
pub async fn asks(db: &impl Conn, guids: &[String]) -> StoreResult<HashMap<String, Ask>> {
    if guids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows = delivery_redelivery::Entity::find()
        .filter(delivery_redelivery::Column::Guid.is_in(guids.iter().cloned()))
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            (
                row.guid,
                Ask {
                    outcome: row.outcome,
                    asks: row.asks,
                    error: row.error,
                },
            )
        })
        .collect())
}

/// A GUID shiplog asked GitHub to redeliver, and how GitHub answered.
#[derive(Clone, Debug)]
pub struct NewAsk<'a> {
    pub guid: &'a str,
    pub hook_delivery_id: i64,
    pub event: Option<&'a str>,
    /// `None`: GitHub accepted (202).
    pub error: Option<&'a str>,
}

/// Records an ask: the first for its GUID inserts the row, a later one counts up `asks`.
pub async fn record_ask(db: &impl Writer, ask: &NewAsk<'_>, now: DateTime<Utc>) -> StoreResult<()> {
    let outcome = if ask.error.is_some() { "failed" } else { "asked" };
    let sql = "INSERT INTO delivery_redelivery (guid, hook_delivery_id, event, outcome, asks, error, asked_at) \
               VALUES (?, ?, ?, ?, 1, ?, ?) \
               ON CONFLICT (guid) DO UPDATE SET hook_delivery_id = excluded.hook_delivery_id, \
               outcome = excluded.outcome, asks = delivery_redelivery.asks + 1, error = excluded.error, \
               asked_at = excluded.asked_at";
    db.execute(statement(
        db.get_database_backend(),
        sql,
        vec![
            ask.guid.into(),
            ask.hook_delivery_id.into(),
            ask.event.map(str::to_owned).into(),
            outcome.into(),
            ask.error.map(str::to_owned).into(),
            now.into(),
        ],
    ))
    .await?;
    Ok(())
}

/// Frees a recurring job's dedupe key from rows that no longer wait: the running one (the job
/// calling this, about to enqueue its successor) and finished ones. Only a `queued` row keeps it,
/// so at most one is ever pending.
pub async fn release_key(db: &impl Writer, key: &str) -> StoreResult<()> {
    db.execute(statement(
        db.get_database_backend(),
        "UPDATE job SET dedupe_key = NULL WHERE dedupe_key = ? AND state <> 'queued'",
        vec![key.into()],
    ))
    .await?;
    Ok(())
}

/// At start: frees the key from finished rows only (a running pass keeps it), so the enqueue
/// that follows adds a job only when none is queued or running.
pub async fn release_finished_key(db: &impl Writer, key: &str) -> StoreResult<()> {
    db.execute(statement(
        db.get_database_backend(),
        "UPDATE job SET dedupe_key = NULL WHERE dedupe_key = ? AND state IN ('done', 'skipped', 'dead')",
        vec![key.into()],
    ))
    .await?;
    Ok(())
}

/// Moves the queued job with `key` to `now` if it waits for later; whether it did.
pub async fn pull_forward(db: &impl Writer, key: &str, now: DateTime<Utc>) -> StoreResult<bool> {
    let done = db
        .execute(statement(
            db.get_database_backend(),
            "UPDATE job SET run_at = ? WHERE dedupe_key = ? AND state = 'queued' AND run_at > ?",
            vec![now.into(), key.into(), now.into()],
        ))
        .await?;
    Ok(done.rows_affected() > 0)
}

/// When the job holding `key` runs next: a queued one's `run_at`; `None` when none is queued.
pub async fn next_run_at(db: &impl Conn, key: &str) -> StoreResult<Option<DateTime<Utc>>> {
    #[derive(FromQueryResult)]
    struct Next {
        run_at: DateTime<Utc>,
    }
    let row = Next::find_by_statement(statement(
        db.get_database_backend(),
        "SELECT run_at FROM job WHERE dedupe_key = ? AND state = 'queued'",
        vec![key.into()],
    ))
    .one(db)
    .await?;
    Ok(row.map(|r| r.run_at))
}
