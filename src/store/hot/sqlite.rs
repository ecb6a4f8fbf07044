//! [`HotRows`] on a synchronous SQLite connection (`rusqlite`, the same `libsqlite3-sys` as
//! sqlx), with cached prepared statements. Every method finishes before it returns: the intake
//! writer polls the hot path's future once (`now_or_never`) on its own thread.
//!
//! Values are stored as sqlx stores them, so rows written here read back through sea-orm
//! unchanged: timestamps as RFC 3339 text (`to_rfc3339_opts(AutoSi, false)`, the text SQL
//! compares), booleans as 0 and 1.

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::{params, Connection, ErrorCode, OptionalExtension};
use sea_orm::DbErr;

use super::{DeliveryRow, DeployHead, HotRows, JobRow, LiveRow, ReportChange};
use crate::deploys::{DeployStatus, NewDeploy, StatusEntry};
use crate::store::job_queue::{self, ClaimedJob, Settle};
use crate::store::{StoreError, StoreResult};

/// The hot path's statements on `conn` (inside the writer's transaction and savepoint).
pub struct SqliteRows<'c> {
    conn: &'c Connection,
}

impl<'c> SqliteRows<'c> {
    pub fn new(conn: &'c Connection) -> Self {
        Self { conn }
    }
}

/// A timestamp as sqlx writes it to SQLite.
pub fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::AutoSi, false)
}

fn parse_timestamp(raw: &str) -> StoreResult<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(raw)
        .map(|t| t.with_timezone(&Utc))
        .or_else(|_| chrono::NaiveDateTime::parse_from_str(raw, "%F %T%.f").map(|t| t.and_utc()))
        .map_err(|_| StoreError::Corrupt(format!("not a timestamp: {raw:?}")))
}

/// rusqlite's errors in the store's words: a uniqueness rule is a conflict, a busy or locked
/// database is unavailable (the sender retries).
pub fn store_error(error: rusqlite::Error) -> StoreError {
    if let rusqlite::Error::SqliteFailure(failure, _) = &error {
        match failure.code {
            // SQLITE_CONSTRAINT_UNIQUE (2067) and SQLITE_CONSTRAINT_PRIMARYKEY (1555).
            ErrorCode::ConstraintViolation if matches!(failure.extended_code, 2067 | 1555) => {
                return StoreError::Conflict(error.to_string())
            }
            ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => {
                return StoreError::Unavailable(DbErr::Custom(error.to_string()))
            }
            _ => {}
        }
    }
    StoreError::Db(DbErr::Custom(format!("sqlite: {error}")))
}

impl HotRows for SqliteRows<'_> {
    async fn lock_environment(&mut self, _: i64, _: &str, _: &str) -> StoreResult<()> {
        Ok(())
    }

    async fn upsert_github_deploy(&mut self, new: &NewDeploy, now: DateTime<Utc>) -> StoreResult<DeployHead> {
        let mut statement = self
            .conn
            .prepare_cached(super::UPSERT_GITHUB_DEPLOY)
            .map_err(store_error)?;
        let row = statement
            .query_row(
                params![
                    new.connection_id.0,
                    new.repository.as_str(),
                    new.repository.key(),
                    new.environment.as_str(),
                    new.sha.as_str(),
                    new.git_ref.as_deref(),
                    new.github_deployment_id,
                    new.creator.as_deref(),
                    new.description.as_deref(),
                    new.transient_environment,
                    new.production_environment,
                    timestamp(new.deploy_time),
                    timestamp(now),
                ],
                |row| {
                    Ok((
                        row.get::<_, i64>(0)?,
                        [
                            row.get::<_, String>(1)?,
                            row.get::<_, String>(2)?,
                            row.get::<_, String>(3)?,
                            row.get::<_, String>(4)?,
                            row.get::<_, String>(5)?,
                            row.get::<_, String>(6)?,
                            row.get::<_, String>(8)?,
                        ],
                        row.get::<_, i64>(7)?,
                        row.get::<_, Option<i64>>(9)?,
                        row.get::<_, bool>(10)?,
                    ))
                },
            )
            .map_err(store_error)?;
        let (
            id,
            [repository, repository_key, environment, sha, status, status_at, deploy_time],
            status_github_id,
            run,
            backfilled,
        ) = row;
        Ok(DeployHead {
            id,
            repository,
            repository_key,
            environment,
            sha,
            status: DeployStatus::parse(&status)
                .ok_or_else(|| StoreError::Corrupt(format!("deployment {id}: unknown status {status:?}")))?,
            status_at: parse_timestamp(&status_at)?,
            status_github_id,
            deploy_time: parse_timestamp(&deploy_time)?,
            github_run_id: run,
            backfilled,
        })
    }

    async fn insert_status(
        &mut self,
        deployment_id: i64,
        entry: &StatusEntry,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let mut statement = self.conn.prepare_cached(super::INSERT_STATUS).map_err(store_error)?;
        let inserted = statement
            .query_row(
                params![
                    deployment_id,
                    entry.github_status_id,
                    entry.state.as_str(),
                    entry.status.map(DeployStatus::as_str),
                    entry.description.as_deref(),
                    entry.log_url.as_deref(),
                    entry.environment_url.as_deref(),
                    entry.creator.as_deref(),
                    timestamp(entry.occurred_at),
                    timestamp(now),
                ],
                |row| row.get::<_, i64>(0),
            )
            .optional()
            .map_err(store_error)?;
        Ok(inserted.is_some())
    }

    async fn live_in(&mut self, connection_id: i64, head: &DeployHead) -> StoreResult<Vec<LiveRow>> {
        let mut statement = self.conn.prepare_cached(super::LIVE_IN).map_err(store_error)?;
        let rows = statement
            .query_map(
                params![
                    connection_id,
                    head.repository_key.as_str(),
                    head.environment.as_str(),
                    head.id
                ],
                |row| {
                    Ok((
                        row.get::<_, i64>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, String>(2)?,
                    ))
                },
            )
            .map_err(store_error)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(store_error)?;
        rows.into_iter()
            .map(|(id, sha, live_at)| {
                Ok(LiveRow {
                    id,
                    sha,
                    live_at: parse_timestamp(&live_at)?,
                })
            })
            .collect()
    }

    async fn supersede(&mut self, id: i64, by: i64, at: DateTime<Utc>, now: DateTime<Utc>) -> StoreResult<bool> {
        let mut statement = self.conn.prepare_cached(super::SUPERSEDE).map_err(store_error)?;
        let changed = statement
            .execute(params![timestamp(at), by, timestamp(now), id])
            .map_err(store_error)?;
        Ok(changed == 1)
    }

    async fn set_reported_status(
        &mut self,
        id: i64,
        change: &ReportChange<'_>,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let (status, status_at, now) = (change.status.as_str(), timestamp(change.status_at), timestamp(now));
        let mut values: Vec<&dyn rusqlite::ToSql> = vec![
            &status,
            &status_at,
            &change.status_github_id,
            &now,
            &change.log_url,
            &change.environment_url,
            &id,
            &change.superseded_by_id,
        ];
        let completed = change.completed.map(|(at, duration)| (timestamp(at), duration));
        let sql = match &completed {
            None => super::SET_REPORTED_STATUS,
            Some((completed_at, duration)) => {
                values.extend([completed_at as &dyn rusqlite::ToSql, duration]);
                super::SET_REPORTED_COMPLETION
            }
        };
        let changed = self
            .conn
            .prepare_cached(sql)
            .and_then(|mut statement| statement.execute(values.as_slice()))
            .map_err(store_error)?;
        Ok(changed == 1)
    }

    async fn enqueue_job(&mut self, job: &JobRow<'_>, now: DateTime<Utc>) -> StoreResult<bool> {
        let mut statement = self.conn.prepare_cached(super::ENQUEUE_JOB).map_err(store_error)?;
        let inserted = statement
            .execute(params![
                job.kind,
                job.payload,
                job.dedupe_key,
                timestamp(job.run_at),
                timestamp(now)
            ])
            .map_err(store_error)?;
        Ok(inserted == 1)
    }

    async fn insert_delivery(&mut self, row: &DeliveryRow<'_>) -> StoreResult<bool> {
        let mut statement = self.conn.prepare_cached(super::INSERT_DELIVERY).map_err(store_error)?;
        let inserted = statement
            .query_row(
                params![
                    row.delivery_id,
                    row.event,
                    row.action,
                    row.installation_id,
                    row.connection_id,
                    row.outcome,
                    row.reason,
                    timestamp(row.received_at),
                ],
                |r| r.get::<_, i64>(0),
            )
            .optional()
            .map_err(store_error)?;
        Ok(inserted.is_some())
    }
}

/// `connection_cache_version`'s version.
pub fn cache_version(conn: &Connection) -> StoreResult<i64> {
    conn.prepare_cached(super::CACHE_VERSION)
        .and_then(|mut statement| statement.query_row([], |row| row.get::<_, i64>(0)))
        .map_err(store_error)
}

/// When the delivery with this id was received, if it was.
pub fn received_at(conn: &Connection, delivery_id: &str) -> StoreResult<Option<DateTime<Utc>>> {
    let raw = conn
        .prepare_cached("SELECT received_at FROM webhook_delivery WHERE delivery_id = ?1")
        .and_then(|mut statement| {
            statement
                .query_row([delivery_id], |row| row.get::<_, String>(0))
                .optional()
        })
        .map_err(store_error)?;
    raw.as_deref().map(parse_timestamp).transpose()
}

/// Claims the next due job, as `store::job_queue::claim` does, on the writer's connection.
pub fn claim_job(
    conn: &Connection,
    worker: &str,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
) -> StoreResult<Option<ClaimedJob>> {
    let now = timestamp(now);
    conn.prepare_cached(job_queue::CLAIM_SQLITE)
        .and_then(|mut statement| {
            statement
                .query_row(params![timestamp(lease_until), worker, now, now], |row| {
                    Ok(ClaimedJob {
                        id: row.get(0)?,
                        kind: row.get(1)?,
                        payload: row.get(2)?,
                        attempts: row.get(3)?,
                    })
                })
                .optional()
        })
        .map_err(store_error)
}

/// Ends a claimed job's attempt, as `store::job_queue::settle` does, on the writer's connection.
pub fn settle_job(conn: &Connection, id: i64, worker: &str, outcome: &Settle, now: DateTime<Utc>) -> StoreResult<bool> {
    let (sql, values) = outcome.statement(id, worker, now);
    let values = values.iter().map(sqlite_value).collect::<StoreResult<Vec<_>>>()?;
    let changed = conn
        .prepare_cached(sql)
        .and_then(|mut statement| statement.execute(rusqlite::params_from_iter(values)))
        .map_err(store_error)?;
    Ok(changed == 1)
}

/// A sea-orm value as sqlx would store it in SQLite.
fn sqlite_value(value: &sea_orm::Value) -> StoreResult<rusqlite::types::Value> {
    use rusqlite::types::Value as Sqlite;
    use sea_orm::Value;
    Ok(match value {
        Value::BigInt(Some(v)) => Sqlite::Integer(*v),
        Value::Int(Some(v)) => Sqlite::Integer(i64::from(*v)),
        Value::String(Some(v)) => Sqlite::Text(v.to_string()),
        Value::ChronoDateTimeUtc(Some(v)) => Sqlite::Text(timestamp(**v)),
        Value::BigInt(None) | Value::Int(None) | Value::String(None) | Value::ChronoDateTimeUtc(None) => Sqlite::Null,
        other => return Err(StoreError::Db(DbErr::Custom(format!("no SQLite form for {other:?}")))),
    })
}
