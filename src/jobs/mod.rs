//! The durable job queue: work that happens later than the request that caused it.
//!
//! A job is a row enqueued in the same transaction as the change that causes it, so the change
//! and its follow-up commit or vanish together. A unique dedupe key keeps a job from being
//! enqueued twice. Each kind is a serde struct implementing [`BackgroundJob`] (its name is the
//! row's `kind`, its fields the row's JSON `payload`), so a kind and its payload cannot disagree.
//! Every server process runs a worker (`runner.rs`) that claims due jobs and runs the handler
//! registered for the kind; jobs are visible at `GET /api/jobs`.
//!
//! The kinds: `deploy.went_live` (`deploys::live`), `monitoring.check`, `monitoring.rolled_back`
//! and `monitoring.expire` (`monitoring::plans`), `github.write` (`monitoring::opt_in`),
//! `trigger.fire` (`triggers`), `backfill.step` (`backfill`), `drift.recompute` (`drift`),
//! `deliveries.recover` (`recovery`) and `app.convert_manifest` (`setup::conversion`).

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::store::{self, Store, StoreResult, Writer};

pub mod runner;

/// One kind of job: its payload as a serde struct, its name as a constant (crates.io's shape).
pub trait BackgroundJob: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The `kind` of its rows. Never rename one: queued rows in existing databases carry it.
    const JOB_NAME: &'static str;
}

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// Waiting for its `run_at`, or for a retry.
    Queued,
    /// Claimed by a worker under a lease.
    Running,
    Done,
    /// The work cannot be done as things are configured; not retried.
    Skipped,
    /// Given up: undecodable, or out of attempts.
    Dead,
}

impl JobState {
    pub const ALL: [Self; 5] = [Self::Queued, Self::Running, Self::Done, Self::Skipped, Self::Dead];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Done => "done",
            Self::Skipped => "skipped",
            Self::Dead => "dead",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|state| state.as_str() == raw)
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Job {
    pub id: i64,
    pub kind: String,
    /// The job kind's own payload.
    #[schema(value_type = Object)]
    pub payload: Value,
    pub dedupe_key: Option<String>,
    pub state: JobState,
    pub run_at: DateTime<Utc>,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// Enqueues `job` to run at `run_at` unless its dedupe key is taken; returns whether it was
/// enqueued. Call inside the causing transaction.
pub async fn enqueue<J: BackgroundJob>(
    db: &impl Writer,
    job: &J,
    dedupe_key: Option<String>,
    run_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> StoreResult<bool> {
    let payload = serde_json::to_string(job)
        .map_err(|e| store::StoreError::Db(sea_orm::DbErr::Json(format!("{} payload: {e}", J::JOB_NAME))))?;
    let row = store::jobs::NewJob {
        kind: J::JOB_NAME,
        payload,
        dedupe_key,
        run_at,
    };
    store::jobs::enqueue(db, &row, now).await
}

pub async fn list(store: &Store, state: Option<JobState>, limit: u64) -> StoreResult<Vec<Job>> {
    store::jobs::list(store.conn(), state, limit).await
}

#[cfg(test)]
mod tests {
    use super::JobState;

    #[test]
    fn a_state_reads_back_as_itself_and_nothing_else_is_a_state() {
        for state in JobState::ALL {
            assert_eq!(JobState::parse(state.as_str()), Some(state));
            assert_eq!(serde_json::to_value(state).unwrap(), state.as_str());
        }
        assert_eq!(JobState::parse("Queued"), None);
        assert_eq!(JobState::parse("retry"), None);
    }
}
