//! Running jobs: claim one with a lease, run its handler, then finish it, or put it back with
//! a later `run_at` (exponential backoff with jitter, or the time the handler asks for, such as
//! GitHub's rate-limit reset), or after `MAX_ATTEMPTS` into the visible `dead` state.
//!
//! Handlers are registered per job type ([`Handlers::register`]), so this module knows no
//! domain. The registry decodes a row's payload into the handler's job struct; a payload that
//! does not decode, or a kind without a handler, makes the job `dead` at once with the reason
//! (never a default, never a retry). A handler that panics is caught: that is a failed attempt
//! with the panic message as its error, and the worker goes on. Workers are a loop around
//! [`run_once`]; tests call `run_once` / [`run_until_idle`] by hand with an injected clock.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use tracing::Instrument;

use super::BackgroundJob;
use crate::clock::SharedClock;
use crate::store::job_queue::{self, ClaimedJob, Settle};
use crate::store::{Store, StoreResult};

/// A job is given up (state `dead`) after this many failed attempts.
pub const MAX_ATTEMPTS: i32 = 12;
/// How long a claim lasts; a worker that dies releases its job when the lease runs out.
pub const LEASE_MINUTES: i64 = 5;
const BACKOFF_BASE_SECONDS: i64 = 30;
const BACKOFF_MAX_SECONDS: i64 = 6 * 3600;

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Try again later: at `retry_at` if given, else after the backoff.
    #[error("{message}")]
    Retry {
        message: String,
        retry_at: Option<DateTime<Utc>>,
    },
    /// Trying again cannot help.
    #[error("{0}")]
    Permanent(String),
    /// The work cannot be done as things are configured, by design rather than by fault: the job
    /// ends `skipped` with the reason, once, and is not retried.
    #[error("{0}")]
    Skipped(String),
}

impl JobError {
    pub fn retry(message: impl Into<String>) -> Self {
        Self::Retry {
            message: message.into(),
            retry_at: None,
        }
    }
}

impl From<crate::store::StoreError> for JobError {
    fn from(error: crate::store::StoreError) -> Self {
        Self::retry(format!("database: {error}"))
    }
}

/// Runs jobs of type `J`. `attempt` counts from 1; the last is [`MAX_ATTEMPTS`].
pub trait JobHandler<J: BackgroundJob>: Send + Sync + 'static {
    fn run(&self, job: J, now: DateTime<Utc>, attempt: i32) -> BoxFuture<'_, Result<(), JobError>>;
}

/// A handler behind its kind: decodes the row's payload, then runs the typed handler.
trait Decoding: Send + Sync {
    fn run<'a>(&'a self, payload: &'a str, now: DateTime<Utc>, attempt: i32) -> BoxFuture<'a, Result<(), JobError>>;
}

struct Typed<J, H> {
    handler: Arc<H>,
    job: std::marker::PhantomData<fn() -> J>,
}

impl<J: BackgroundJob, H: JobHandler<J>> Decoding for Typed<J, H> {
    fn run<'a>(&'a self, payload: &'a str, now: DateTime<Utc>, attempt: i32) -> BoxFuture<'a, Result<(), JobError>> {
        match serde_json::from_str::<J>(payload) {
            Ok(job) => self.handler.run(job, now, attempt),
            Err(error) => Box::pin(std::future::ready(Err(JobError::Permanent(format!(
                "the payload of this {} job does not decode: {error}",
                J::JOB_NAME
            ))))),
        }
    }
}

/// The handlers of a server, one per job kind.
#[derive(Clone, Default)]
pub struct Handlers {
    by_kind: HashMap<&'static str, Arc<dyn Decoding>>,
}

impl Handlers {
    /// Runs jobs of type `J` with `handler` (replacing an earlier handler of that kind).
    pub fn register<J: BackgroundJob, H: JobHandler<J>>(&mut self, handler: Arc<H>) -> &mut Self {
        self.by_kind.insert(
            J::JOB_NAME,
            Arc::new(Typed::<J, H> {
                handler,
                job: std::marker::PhantomData,
            }),
        );
        self
    }

    /// The kinds that have a handler.
    pub fn kinds(&self) -> Vec<&'static str> {
        let mut kinds: Vec<&'static str> = self.by_kind.keys().copied().collect();
        kinds.sort_unstable();
        kinds
    }

    /// Adds `other`'s handlers, replacing those of the same kinds.
    pub fn extend(&mut self, other: Handlers) {
        self.by_kind.extend(other.by_kind);
    }
}

/// Where a worker writes its claims and the ends of its attempts.
///
/// [`StoreQueue`] writes each in a transaction of its own. On SQLite the server gives its
/// workers the intake writer instead (`intake::Intake::job_queue`), which writes them inside the
/// batch it commits next, so a job costs no sync to disk of its own for its claim and its end.
pub trait QueueWrites: Send + Sync {
    fn claim<'a>(
        &'a self,
        worker: &'a str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> BoxFuture<'a, StoreResult<Option<ClaimedJob>>>;

    /// Ends the attempt of job `id`, if `worker` still holds it; whether it did.
    fn settle<'a>(
        &'a self,
        id: i64,
        worker: &'a str,
        outcome: Settle,
        now: DateTime<Utc>,
    ) -> BoxFuture<'a, StoreResult<bool>>;
}

/// Each queue write in a transaction of its own (PostgreSQL; SQLite without a database file).
pub struct StoreQueue(pub Store);

impl QueueWrites for StoreQueue {
    fn claim<'a>(
        &'a self,
        worker: &'a str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> BoxFuture<'a, StoreResult<Option<ClaimedJob>>> {
        Box::pin(async move {
            // On SQLite the transaction queues on the store's write gate with intake instead of
            // polling SQLite's lock.
            let tx = self.0.begin().await?;
            let claimed = job_queue::claim(&tx, worker, now, lease_until).await?;
            tx.commit().await?;
            Ok(claimed)
        })
    }

    fn settle<'a>(
        &'a self,
        id: i64,
        worker: &'a str,
        outcome: Settle,
        now: DateTime<Utc>,
    ) -> BoxFuture<'a, StoreResult<bool>> {
        Box::pin(async move {
            let tx = self.0.begin().await?;
            let settled = job_queue::settle(&tx, id, worker, &outcome, now).await?;
            tx.commit().await?;
            Ok(settled)
        })
    }
}

/// Everything a worker needs.
#[derive(Clone)]
pub struct Runner {
    pub store: Store,
    pub clock: SharedClock,
    pub handlers: Arc<Handlers>,
    pub queue: Arc<dyn QueueWrites>,
    /// Counts each attempt by kind and outcome.
    pub metrics: Arc<crate::metrics::Metrics>,
}

/// What happened to one claimed job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunReport {
    pub id: i64,
    pub kind: String,
    /// `done`, `skipped`, `retry` or `dead`.
    pub outcome: &'static str,
    pub error: Option<String>,
}

/// Claims and runs one due job, if there is one.
pub async fn run_once(runner: &Runner, worker: &str) -> StoreResult<Option<RunReport>> {
    let now = runner.clock.now();
    let claimed = runner
        .queue
        .claim(worker, now, now + Duration::minutes(LEASE_MINUTES))
        .await?;
    let Some(job) = claimed else {
        return Ok(None);
    };
    let span = tracing::info_span!("job", id = job.id, kind = %job.kind, attempt = job.attempts);
    // `instrument`, not `enter`: a guard held across an await leaks the span into whatever else
    // the thread polls meanwhile.
    run_claimed(runner, worker, job, now).instrument(span).await.map(Some)
}

async fn run_claimed(runner: &Runner, worker: &str, job: ClaimedJob, now: DateTime<Utc>) -> StoreResult<RunReport> {
    let result = run_handler(runner, &job, now).await;
    let now = runner.clock.now();
    let report = match result {
        Ok(()) => {
            runner.queue.settle(job.id, worker, Settle::Done, now).await?;
            RunReport {
                id: job.id,
                kind: job.kind,
                outcome: "done",
                error: None,
            }
        }
        Err(JobError::Skipped(reason)) => {
            runner
                .queue
                .settle(job.id, worker, Settle::Skipped(reason.clone()), now)
                .await?;
            tracing::info!(%reason, "job skipped");
            RunReport {
                id: job.id,
                kind: job.kind,
                outcome: "skipped",
                error: Some(reason),
            }
        }
        Err(error) => {
            let message = error.to_string();
            let retry_at = match error {
                JobError::Retry { retry_at, .. } if job.attempts < MAX_ATTEMPTS => {
                    Some(retry_at.unwrap_or_else(|| now + backoff(job.attempts)))
                }
                _ => None,
            };
            let settle = match retry_at {
                Some(run_at) => Settle::Retry {
                    error: message.clone(),
                    run_at,
                },
                None => Settle::Dead(message.clone()),
            };
            runner.queue.settle(job.id, worker, settle, now).await?;
            let outcome = if retry_at.is_some() { "retry" } else { "dead" };
            tracing::warn!(error = %message, outcome, ?retry_at, "job failed");
            RunReport {
                id: job.id,
                kind: job.kind,
                outcome,
                error: Some(message),
            }
        }
    };
    // The kind's label is the registered name (a row of an unknown kind counts as `other`).
    let kind = runner
        .handlers
        .by_kind
        .get_key_value(report.kind.as_str())
        .map_or("other", |(k, _)| *k);
    runner.metrics.record_job_attempt(kind, report.outcome);
    Ok(report)
}

async fn run_handler(runner: &Runner, job: &ClaimedJob, now: DateTime<Utc>) -> Result<(), JobError> {
    let handler = runner
        .handlers
        .by_kind
        .get(job.kind.as_str())
        .ok_or_else(|| JobError::Permanent(format!("no handler for job kind {:?}", job.kind)))?;
    // The call itself goes inside the guarded future: a handler that panics before it returns
    // its future is caught too.
    match AssertUnwindSafe(async { handler.run(&job.payload, now, job.attempts).await })
        .catch_unwind()
        .await
    {
        Ok(result) => result,
        Err(panic) => Err(JobError::retry(format!("the job panicked: {}", panic_message(&*panic)))),
    }
}

/// What a panic said, when it said it with a string.
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "(no message)".to_owned())
}

/// Runs due jobs until none is left (at most `limit`), for tests and for draining.
pub async fn run_until_idle(runner: &Runner, worker: &str, limit: usize) -> StoreResult<Vec<RunReport>> {
    let mut reports = Vec::new();
    while reports.len() < limit {
        match run_once(runner, worker).await? {
            Some(report) => reports.push(report),
            None => break,
        }
    }
    Ok(reports)
}

/// `30 s · 2^(attempt−1)`, at most six hours, with ±20 % jitter so retries do not bunch up.
pub fn backoff(attempt: i32) -> Duration {
    let exponent = (attempt.max(1) - 1).min(20) as u32;
    let seconds = BACKOFF_BASE_SECONDS
        .saturating_mul(1_i64 << exponent)
        .min(BACKOFF_MAX_SECONDS);
    let mut byte = [0u8; 1];
    let jitter = if getrandom::fill(&mut byte).is_ok() {
        (f64::from(byte[0]) / 255.0) * 0.4 - 0.2
    } else {
        0.0
    };
    Duration::milliseconds(((seconds as f64) * 1000.0 * (1.0 + jitter)) as i64)
}

/// The background worker: runs due jobs, then sleeps until the next `run_at`, a wake-up (new
/// work in this process) or at most `idle` ; stops between jobs when `stop` is set.
pub async fn work(
    runner: Runner,
    worker: String,
    wake: Arc<tokio::sync::Notify>,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    let idle = std::time::Duration::from_secs(30);
    loop {
        if *stop.borrow() {
            break;
        }
        match run_once(&runner, &worker).await {
            Ok(Some(_)) => continue,
            Ok(None) => {}
            Err(error) => tracing::warn!(%error, "the job worker could not reach the database"),
        }
        let wait = match job_queue::next_run_at(runner.store.conn()).await {
            Ok(Some(at)) => (at - runner.clock.now())
                .to_std()
                .unwrap_or(std::time::Duration::ZERO)
                .min(idle),
            _ => idle,
        };
        let mut stop = stop.clone();
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep(wait.max(std::time::Duration::from_millis(50))) => {}
            _ = stop.changed() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_within_jitter_and_is_capped() {
        for attempt in 1..=8 {
            let expected = 30.0 * f64::from(1 << (attempt - 1));
            let got = backoff(attempt).num_milliseconds() as f64 / 1000.0;
            assert!(
                got >= expected * 0.79 && got <= expected * 1.21,
                "attempt {attempt}: {got}"
            );
        }
        assert!(backoff(30).num_seconds() <= 6 * 3600 * 12 / 10);
    }
}
