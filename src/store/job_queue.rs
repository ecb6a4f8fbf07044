//! Claiming and finishing jobs. A claim is one conditional `UPDATE … RETURNING`: on PostgreSQL
//! the inner `SELECT … FOR UPDATE SKIP LOCKED` lets replicas claim different jobs at once; on
//! SQLite the single writer makes the same statement atomic. A running job whose lease has
//! expired (its worker died) is claimed again.

use chrono::{DateTime, Utc};
use sea_orm::{DatabaseBackend, FromQueryResult, Statement, Value};

use super::{Conn, StoreResult, Writer};

#[derive(Debug, Clone, FromQueryResult)]
pub struct ClaimedJob {
    pub id: i64,
    pub kind: String,
    pub payload: String,
    pub attempts: i32,
}

/// The claim on SQLite (`?` in order: lease, worker, now, now).
pub const CLAIM_SQLITE: &str =
    "UPDATE job SET state = 'running', locked_until = ?, locked_by = ?, attempts = attempts + 1 \
     WHERE id = (SELECT id FROM job \
                 WHERE (state = 'queued' AND run_at <= ?) OR (state = 'running' AND locked_until < ?) \
                 ORDER BY run_at, id LIMIT 1) \
     RETURNING id, kind, payload, attempts";

const CLAIM_POSTGRES: &str =
    "UPDATE job SET state = 'running', locked_until = $1, locked_by = $2, attempts = attempts + 1 \
     WHERE id = (SELECT id FROM job \
                 WHERE (state = 'queued' AND run_at <= $3) OR (state = 'running' AND locked_until < $3) \
                 ORDER BY run_at, id LIMIT 1 FOR UPDATE SKIP LOCKED) \
     RETURNING id, kind, payload, attempts";

pub async fn claim(
    db: &impl Writer,
    worker: &str,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
) -> StoreResult<Option<ClaimedJob>> {
    let backend = db.get_database_backend();
    let (sql, values): (&str, Vec<Value>) = match backend {
        DatabaseBackend::Postgres => (CLAIM_POSTGRES, vec![lease_until.into(), worker.into(), now.into()]),
        _ => (
            CLAIM_SQLITE,
            vec![lease_until.into(), worker.into(), now.into(), now.into()],
        ),
    };
    let row = ClaimedJob::find_by_statement(Statement::from_sql_and_values(backend, sql, values))
        .one(db)
        .await?;
    Ok(row)
}

/// How a claimed job ends its attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Settle {
    Done,
    /// Ended `skipped` with the reason (in `last_error`).
    Skipped(String),
    /// Back to `queued` at `run_at`, with the error.
    Retry {
        error: String,
        run_at: DateTime<Utc>,
    },
    /// Given up: `dead`, with the error.
    Dead(String),
}

impl Settle {
    /// The statement (with `?` placeholders in order) and its values, given the job and worker.
    pub fn statement(&self, id: i64, worker: &str, now: DateTime<Utc>) -> (&'static str, Vec<Value>) {
        match self {
            Self::Done => (
                "UPDATE job SET state = 'done', finished_at = ?, locked_until = NULL, locked_by = NULL, last_error = NULL \
                 WHERE id = ? AND locked_by = ? AND state = 'running'",
                vec![now.into(), id.into(), worker.into()],
            ),
            Self::Skipped(reason) => (
                "UPDATE job SET state = 'skipped', finished_at = ?, last_error = ?, locked_until = NULL, locked_by = NULL \
                 WHERE id = ? AND locked_by = ? AND state = 'running'",
                vec![now.into(), reason.as_str().into(), id.into(), worker.into()],
            ),
            Self::Retry { error, run_at } => (
                "UPDATE job SET state = 'queued', run_at = ?, last_error = ?, locked_until = NULL, locked_by = NULL \
                 WHERE id = ? AND locked_by = ? AND state = 'running'",
                vec![(*run_at).into(), error.as_str().into(), id.into(), worker.into()],
            ),
            Self::Dead(error) => (
                "UPDATE job SET state = 'dead', finished_at = ?, last_error = ?, locked_until = NULL, locked_by = NULL \
                 WHERE id = ? AND locked_by = ? AND state = 'running'",
                vec![now.into(), error.as_str().into(), id.into(), worker.into()],
            ),
        }
    }
}

/// Ends a claimed job's attempt as `outcome` says, if this worker still holds it. Returns
/// whether it did.
pub async fn settle(
    db: &impl Writer,
    id: i64,
    worker: &str,
    outcome: &Settle,
    now: DateTime<Utc>,
) -> StoreResult<bool> {
    let backend = db.get_database_backend();
    let (sql, values) = outcome.statement(id, worker, now);
    let result = db
        .execute(Statement::from_sql_and_values(
            backend,
            placeholders(backend, sql),
            values,
        ))
        .await?;
    Ok(result.rows_affected() == 1)
}

/// When the next queued job is due, if any.
pub async fn next_run_at(db: &impl Conn) -> StoreResult<Option<DateTime<Utc>>> {
    #[derive(FromQueryResult)]
    struct Next {
        run_at: Option<DateTime<Utc>>,
    }
    let backend = db.get_database_backend();
    let row = Next::find_by_statement(Statement::from_string(
        backend,
        "SELECT MIN(run_at) AS run_at FROM job WHERE state = 'queued'".to_owned(),
    ))
    .one(db)
    .await?;
    Ok(row.and_then(|r| r.run_at))
}

/// `?` placeholders as the backend wants them (`$1, $2, …` on PostgreSQL).
fn placeholders(backend: DatabaseBackend, sql: &str) -> String {
    match backend {
        DatabaseBackend::Postgres => super::postgres_parameters(sql),
        _ => sql.to_owned(),
    }
}

/// Jobs of one kind in one of the states the queue gauges show (`queued`, `running`, `dead`),
/// with the earliest `run_at` among them.
#[derive(Debug, Clone, FromQueryResult)]
pub struct QueueDepth {
    pub kind: String,
    pub state: String,
    pub jobs: i64,
    pub earliest_run_at: Option<DateTime<Utc>>,
}

/// The queue by kind and state, for the metrics scrape: one grouped query over the unfinished
/// and dead jobs (`idx_job_state_run_at` finds them; finished rows are not read), at most
/// `limit` groups.
pub async fn depths(db: &impl Conn, limit: u64) -> StoreResult<Vec<QueueDepth>> {
    let backend = db.get_database_backend();
    let rows = QueueDepth::find_by_statement(Statement::from_sql_and_values(
        backend,
        placeholders(
            backend,
            "SELECT kind, state, COUNT(*) AS jobs, MIN(run_at) AS earliest_run_at FROM job \
             WHERE state IN ('queued', 'running', 'dead') GROUP BY kind, state ORDER BY kind, state LIMIT ?",
        ),
        [Value::BigInt(Some(i64::try_from(limit).unwrap_or(i64::MAX)))],
    ))
    .all(db)
    .await?;
    Ok(rows)
}
