//! Job rows: durable follow-up work, enqueued in the transaction that causes it.

use chrono::{DateTime, Utc};
use entity::job;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, EntityTrait, NotSet, QueryFilter, QueryOrder, QuerySelect, Set};

use super::{Conn, StoreError, StoreResult, Writer};
use crate::jobs::{Job, JobState};

/// A job row to insert: `jobs::enqueue` makes it from a typed job.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub kind: &'static str,
    /// The job's JSON.
    pub payload: String,
    pub dedupe_key: Option<String>,
    pub run_at: DateTime<Utc>,
}

/// Inserts the job unless one with the same dedupe key exists (one `INSERT … ON CONFLICT
/// (dedupe_key) DO NOTHING`, so concurrent enqueues of one key insert one row). Returns whether
/// it was inserted.
pub async fn enqueue(db: &impl Writer, new: &NewJob, now: DateTime<Utc>) -> StoreResult<bool> {
    let row = job::ActiveModel {
        id: NotSet,
        kind: Set(new.kind.to_owned()),
        payload: Set(new.payload.clone()),
        dedupe_key: Set(new.dedupe_key.clone()),
        state: Set(JobState::Queued.as_str().to_owned()),
        run_at: Set(new.run_at),
        attempts: Set(0),
        locked_until: Set(None),
        locked_by: Set(None),
        last_error: Set(None),
        created_at: Set(now),
        finished_at: Set(None),
    };
    let inserted = job::Entity::insert(row)
        .on_conflict(OnConflict::column(job::Column::DedupeKey).do_nothing().to_owned())
        .exec_without_returning(db)
        .await?;
    Ok(inserted > 0)
}

/// Jobs, newest first, optionally of one state.
pub async fn list(db: &impl Conn, state: Option<JobState>, limit: u64) -> StoreResult<Vec<Job>> {
    let mut query = job::Entity::find();
    if let Some(state) = state {
        query = query.filter(job::Column::State.eq(state.as_str()));
    }
    let rows = query.order_by_desc(job::Column::Id).limit(limit).all(db).await?;
    rows.into_iter()
        .map(|row| {
            let state = JobState::parse(&row.state)
                .ok_or_else(|| StoreError::Corrupt(format!("job {}: unknown state {:?}", row.id, row.state)))?;
            Ok(Job {
                id: row.id,
                kind: row.kind,
                payload: serde_json::from_str(&row.payload).unwrap_or(serde_json::Value::String(row.payload)),
                dedupe_key: row.dedupe_key,
                state,
                run_at: row.run_at,
                attempts: row.attempts,
                last_error: row.last_error,
                created_at: row.created_at,
                finished_at: row.finished_at,
            })
        })
        .collect()
}
