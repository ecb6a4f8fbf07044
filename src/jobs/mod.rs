//! The durable job queue: work that happens later than the request that caused it.
//!
//! A job is a row enqueued in the same transaction as the change that causes it, so the change
//! and its follow-up commit or vanish together. A unique dedupe key keeps a job from being
//! enqueued twice. Workers that claim and run jobs arrive with deploy monitoring; until then
//! jobs stay `queued`, visible at `GET /api/jobs`, and harmless.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use crate::store::{self, Store, StoreResult, Writer};

pub mod runner;

/// A deploy went live: resolve which watched commits it brings (ancestry batch).
pub const DEPLOY_WENT_LIVE: &str = "deploy.went_live";

#[derive(Debug, Clone)]
pub struct NewJob {
    pub kind: &'static str,
    pub payload: Value,
    pub dedupe_key: Option<String>,
    pub run_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Job {
    pub id: i64,
    pub kind: String,
    pub payload: Value,
    pub dedupe_key: Option<String>,
    pub state: String,
    pub run_at: DateTime<Utc>,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// Enqueues `job` unless its dedupe key is taken. Call inside the causing transaction.
pub async fn enqueue(db: &impl Writer, job: &NewJob, now: DateTime<Utc>) -> StoreResult<bool> {
    store::jobs::enqueue(db, job, now).await
}

pub async fn list(store: &Store, state: Option<&str>, limit: u64) -> StoreResult<Vec<Job>> {
    store::jobs::list(store.conn(), state, limit).await
}
