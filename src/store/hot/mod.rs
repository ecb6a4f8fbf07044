//! The rows a webhook delivery on the hot path writes (`deploys::fast`, `intake::hot`), as a few
//! plain statements: upserts with `RETURNING`, inserts with `ON CONFLICT DO NOTHING`, and
//! conditional updates, so a delivery costs three to seven statements and no read that the write
//! itself can answer.
//!
//! Two engines apply them: [`sqlite::SqliteRows`] on the intake writer's own synchronous
//! connection (every call returns at once; no thread hop per statement), and [`sea::SeaRows`] on
//! a [`super::Writer`] (PostgreSQL's per-delivery transaction). The SQL is written once, with
//! `?N` parameters; PostgreSQL gets them as `$N`.

pub mod sea;
pub mod sqlite;

use chrono::{DateTime, Utc};

use super::StoreResult;
use crate::deploys::{DeployStatus, NewDeploy, StatusEntry};

/// What the hot path needs back of a deploy it upserted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeployHead {
    pub id: i64,
    pub repository: String,
    pub repository_key: String,
    pub environment: String,
    pub sha: String,
    pub status: DeployStatus,
    pub status_at: DateTime<Utc>,
    pub status_github_id: i64,
    pub deploy_time: DateTime<Utc>,
    pub github_run_id: Option<i64>,
    pub backfilled: bool,
}

/// A new status of a deploy, applied only over an older report (`status_at`, `status_github_id`).
#[derive(Clone, Debug)]
pub struct ReportChange<'a> {
    pub status: DeployStatus,
    pub status_at: DateTime<Utc>,
    pub status_github_id: i64,
    /// `Some` sets `completed_at` and `duration_seconds`.
    pub completed: Option<(DateTime<Utc>, i64)>,
    /// The live deploy it arrived superseded by.
    pub superseded_by_id: Option<i64>,
    pub log_url: Option<&'a str>,
    pub environment_url: Option<&'a str>,
}

/// The webhook delivery row, written last with its outcome.
#[derive(Clone, Debug)]
pub struct DeliveryRow<'a> {
    pub delivery_id: &'a str,
    pub event: &'a str,
    pub action: Option<&'a str>,
    pub installation_id: Option<i64>,
    pub connection_id: Option<i64>,
    pub outcome: &'a str,
    pub reason: Option<&'a str>,
    pub received_at: DateTime<Utc>,
}

/// A live deploy of an environment, and when it went live (`completed_at`, else `status_at`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveRow {
    pub id: i64,
    pub sha: String,
    pub live_at: DateTime<Utc>,
}

/// A job row, as `store::jobs::enqueue` writes it.
#[derive(Clone, Debug)]
pub struct JobRow<'a> {
    pub kind: &'a str,
    pub payload: &'a str,
    pub dedupe_key: &'a str,
    pub run_at: DateTime<Utc>,
}

/// The statements of the hot path, on one engine. Every method is one statement.
#[allow(async_fn_in_trait)]
pub trait HotRows {
    /// PostgreSQL: the environment's transaction-scoped lock (`deployments::lock_environment`);
    /// nothing on SQLite, which has one writer.
    async fn lock_environment(
        &mut self,
        connection_id: i64,
        repository_key: &str,
        environment: &str,
    ) -> StoreResult<()>;
    /// Inserts the GitHub deployment's deploy (`initiated` at its deploy time), or refreshes
    /// what a later copy says of it (never its status) and clears `backfilled`; returns the row.
    async fn upsert_github_deploy(&mut self, new: &NewDeploy, now: DateTime<Utc>) -> StoreResult<DeployHead>;
    /// Adds to a deploy's history; `false` when an entry with its GitHub status id exists.
    async fn insert_status(&mut self, deployment_id: i64, entry: &StatusEntry, now: DateTime<Utc>)
        -> StoreResult<bool>;
    /// The live deploys of `head`'s environment other than `head` (one at most: a unique index).
    async fn live_in(&mut self, connection_id: i64, head: &DeployHead) -> StoreResult<Vec<LiveRow>>;
    /// The live deploy `id` becomes `superseded` by `by`, which went live at `at`; `false` when
    /// it was not live.
    async fn supersede(&mut self, id: i64, by: i64, at: DateTime<Utc>, now: DateTime<Utc>) -> StoreResult<bool>;
    /// Applies `change` if the row's current report is older; `false` when it was not.
    async fn set_reported_status(
        &mut self,
        id: i64,
        change: &ReportChange<'_>,
        now: DateTime<Utc>,
    ) -> StoreResult<bool>;
    /// Enqueues a job unless its dedupe key is taken.
    async fn enqueue_job(&mut self, job: &JobRow<'_>, now: DateTime<Utc>) -> StoreResult<bool>;
    /// Records the delivery; `false` when its id was received before.
    async fn insert_delivery(&mut self, row: &DeliveryRow<'_>) -> StoreResult<bool>;
}

const UPSERT_GITHUB_DEPLOY: &str = "INSERT INTO deployment (connection_id, repository, repository_key, \
     environment, sha, git_ref, source, github_deployment_id, creator, description, transient_environment, \
     production_environment, status, status_at, status_github_id, deploy_time, backfilled, recorded_at, updated_at) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'github', ?7, ?8, ?9, ?10, ?11, 'initiated', ?12, 0, ?12, FALSE, ?13, ?13) \
     ON CONFLICT (connection_id, github_deployment_id) DO UPDATE SET git_ref = excluded.git_ref, \
     creator = excluded.creator, description = excluded.description, \
     transient_environment = excluded.transient_environment, \
     production_environment = excluded.production_environment, backfilled = FALSE, updated_at = excluded.updated_at \
     RETURNING id, repository, repository_key, environment, sha, status, status_at, status_github_id, deploy_time, \
     github_run_id, backfilled";

const INSERT_STATUS: &str = "INSERT INTO deployment_status (deployment_id, github_status_id, state, status, \
     description, log_url, environment_url, creator, occurred_at, recorded_at) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) ON CONFLICT (github_status_id) DO NOTHING RETURNING id";

/// When a deploy went live is `completed_at`, or its `status_at` (as `Deploy::live_order`).
const LIVE_IN: &str = "SELECT id, sha, coalesce(completed_at, status_at) FROM deployment \
     WHERE connection_id = ?1 AND repository_key = ?2 AND environment = ?3 AND status = 'live' AND id <> ?4";

const SUPERSEDE: &str = "UPDATE deployment SET status = 'superseded', status_at = ?1, status_github_id = 0, \
     superseded_by_id = ?2, updated_at = ?3 WHERE id = ?4 AND status = 'live'";

const SET_REPORTED_STATUS: &str = "UPDATE deployment SET status = ?1, status_at = ?2, status_github_id = ?3, \
     superseded_by_id = ?8, updated_at = ?4, log_url = coalesce(?5, log_url), \
     environment_url = coalesce(?6, environment_url) \
     WHERE id = ?7 AND (status_at < ?2 OR (status_at = ?2 AND status_github_id < ?3))";

const SET_REPORTED_COMPLETION: &str = "UPDATE deployment SET status = ?1, status_at = ?2, status_github_id = ?3, \
     superseded_by_id = ?8, updated_at = ?4, log_url = coalesce(?5, log_url), \
     environment_url = coalesce(?6, environment_url), completed_at = ?9, duration_seconds = ?10 \
     WHERE id = ?7 AND (status_at < ?2 OR (status_at = ?2 AND status_github_id < ?3))";

const ENQUEUE_JOB: &str = "INSERT INTO job (kind, payload, dedupe_key, state, run_at, attempts, created_at) \
     VALUES (?1, ?2, ?3, 'queued', ?4, 0, ?5) ON CONFLICT (dedupe_key) DO NOTHING";

const INSERT_DELIVERY: &str = "INSERT INTO webhook_delivery (delivery_id, event, action, installation_id, \
     connection_id, outcome, reason, received_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
     ON CONFLICT (delivery_id) DO NOTHING RETURNING id";

/// The version `connection_cache_version` holds (raised by trigger on every change of a
/// connection or its repositories).
pub const CACHE_VERSION: &str = "SELECT version FROM connection_cache_version WHERE id = 1";
