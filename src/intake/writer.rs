//! The SQLite intake writer: one thread that owns a connection of its own to the database file
//! and applies the deliveries that arrive together as one transaction, one sync to disk.
//!
//! HTTP workers verify the signature and parse the JSON, then hand the delivery over a channel
//! and wait for the answer, which comes after the commit: one thread hop per delivery, not one
//! per SQL statement (sqlx runs each SQLite statement on a worker thread and back). The thread
//! takes up to [`MAX_BATCH`] queued deliveries and, holding the store's write gate:
//!
//! 1. applies those the hot path takes (`hot.rs`: `deployment` and `deployment_status` for a
//!    connection the cache knows) on its own connection (`rusqlite`, cached prepared
//!    statements), each in a savepoint, in one `BEGIN IMMEDIATE` transaction;
//! 2. hands the rest (other events, connections not cached, the rare cases the hot path
//!    declines) to the general path, sea-orm group commit (`group_commit.rs`), in a second
//!    transaction. A delivery about a GitHub deployment or installation that one of the rest
//!    is about waits for the second step too, so two deliveries about one deployment are applied
//!    in the order they arrived.
//!
//! PostgreSQL takes concurrent transactions and groups their commits itself; there each
//! delivery keeps its own transaction ([`super::receive`]). Without a database file (SQLite in
//! memory) the thread has no connection of its own and every delivery takes step 2.

use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use rusqlite::{Connection, OpenFlags, TransactionBehavior};
use sea_orm::DbErr;
use tokio::runtime::Handle;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::group_commit::{fail_all, shared, write_batch};
use super::hot::{self, Hot};
use super::{duplicate, Delivery, Receipt};
use crate::connections::cache::{self, ConnectionCache};
use crate::deploys::fast;
use crate::events::WebhookEvent;
use crate::jobs::runner::{QueueWrites, StoreQueue};
use crate::store::hot::sqlite::{self as sqlite_rows, store_error, SqliteRows};
use crate::store::job_queue::{ClaimedJob, Settle};
use crate::store::{Store, StoreError, StoreResult};
use crate::supervise::{self, Tasks};

/// Deliveries per transaction at most: bounds how long the first of a batch waits.
const MAX_BATCH: usize = 64;
/// Deliveries waiting for the writer; more wait in their handlers.
const QUEUE: usize = 1024;
/// Prepared statements the writer's connection keeps.
const STATEMENT_CACHE: usize = 32;

pub(super) struct Pending {
    pub delivery: Delivery,
    pub now: DateTime<Utc>,
    /// The hot path may take it.
    hot: bool,
    reply: oneshot::Sender<StoreResult<Receipt>>,
}

impl Pending {
    pub fn answer(self, result: StoreResult<Receipt>) {
        // The handler may have gone (the client hung up): the delivery is committed all the same.
        let _ = self.reply.send(result);
    }
}

/// A job worker's claim or the end of its attempt, written in the writer's next batch.
enum JobWork {
    Claim {
        worker: String,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        reply: oneshot::Sender<StoreResult<Option<ClaimedJob>>>,
    },
    Settle {
        id: i64,
        worker: String,
        outcome: Settle,
        now: DateTime<Utc>,
        reply: oneshot::Sender<StoreResult<bool>>,
    },
}

impl JobWork {
    /// Writes it on the writer's connection; the answer waits for the commit.
    fn apply(self, connection: &Connection) -> JobAnswer {
        match self {
            Self::Claim {
                worker,
                now,
                lease_until,
                reply,
            } => JobAnswer::Claim(reply, sqlite_rows::claim_job(connection, &worker, now, lease_until)),
            Self::Settle {
                id,
                worker,
                outcome,
                now,
                reply,
            } => JobAnswer::Settle(reply, sqlite_rows::settle_job(connection, id, &worker, &outcome, now)),
        }
    }

    fn fail(self, error: &StoreError) {
        match self {
            Self::Claim { reply, .. } => drop(reply.send(Err(shared(error)))),
            Self::Settle { reply, .. } => drop(reply.send(Err(shared(error)))),
        }
    }
}

/// A job write done, its answer held until the commit.
enum JobAnswer {
    Claim(
        oneshot::Sender<StoreResult<Option<ClaimedJob>>>,
        StoreResult<Option<ClaimedJob>>,
    ),
    Settle(oneshot::Sender<StoreResult<bool>>, StoreResult<bool>),
}

impl JobAnswer {
    fn send(self) {
        match self {
            Self::Claim(reply, result) => drop(reply.send(result)),
            Self::Settle(reply, result) => drop(reply.send(result)),
        }
    }

    fn fail(self, error: &StoreError) {
        match self {
            Self::Claim(reply, _) => drop(reply.send(Err(shared(error)))),
            Self::Settle(reply, _) => drop(reply.send(Err(shared(error)))),
        }
    }
}

/// What the writer's queue carries. Deliveries are nearly all of it: they travel unboxed (an
/// allocation each) and job work pays the size.
#[allow(clippy::large_enum_variant)]
enum Work {
    Delivery(Pending),
    Job(JobWork),
}

/// How the HTTP layer hands a verified, parsed delivery to intake.
#[derive(Clone, Debug)]
pub struct Intake {
    store: Store,
    cache: Arc<ConnectionCache>,
    /// The SQLite writer's queue; `None` on PostgreSQL.
    queue: Option<mpsc::Sender<Work>>,
    /// The writer has a connection of its own, so job workers' queue writes go through it.
    writes_jobs: bool,
    /// The hot path is on (`SHIPLOG_INTAKE_HOT_PATH`).
    hot: bool,
}

impl Intake {
    /// On SQLite, starts the writer thread, watched as [`supervise::WRITER`] in `tasks` (it ends
    /// when the last `Intake` is dropped), and returns the watch's handle for the supervisor.
    /// `hot` off sends every delivery through the general path (`SHIPLOG_INTAKE_HOT_PATH`).
    pub async fn start(
        store: Store,
        tasks: &Tasks,
        hot: bool,
        metrics: Arc<crate::metrics::Metrics>,
    ) -> StoreResult<(Self, Option<(&'static str, JoinHandle<()>)>)> {
        let cache = Arc::new(ConnectionCache::new());
        if !store.is_sqlite() {
            return Ok((
                Self {
                    store,
                    cache,
                    queue: None,
                    writes_jobs: false,
                    hot,
                },
                None,
            ));
        }
        let connection = match store.sqlite_file().await? {
            Some(file) => Some(open(&file)?),
            None => None,
        };
        let writes_jobs = connection.is_some();
        let (sender, receiver) = mpsc::channel(QUEUE);
        let (ended, end) = oneshot::channel::<()>();
        let watched = Arc::new(AtomicBool::new(true));
        let writer = Writer {
            connection,
            store: store.clone(),
            cache: cache.clone(),
            runtime: Handle::current(),
            watched: watched.clone(),
            metrics,
        };
        std::thread::Builder::new()
            .name("shiplog-writer".to_owned())
            .spawn(move || {
                writer.run(receiver);
                drop(ended);
            })
            .map_err(|e| StoreError::Unavailable(DbErr::Custom(format!("cannot start the intake writer: {e}"))))?;
        // The watched task ends when the thread does (the sender drops with it, even on a panic);
        // a watch that is stopped (aborted) makes the thread refuse deliveries from then on.
        let watch = tasks.spawn(supervise::WRITER, async move {
            let _stop_with_me = StopOnDrop(watched);
            let _ = end.await;
        });
        Ok((
            Self {
                store,
                cache,
                queue: Some(sender),
                writes_jobs,
                hot,
            },
            Some(watch),
        ))
    }

    /// Records and applies the delivery; returns once it is committed.
    pub async fn receive(&self, delivery: Delivery, now: DateTime<Utc>) -> StoreResult<Receipt> {
        let cache = self.hot.then_some(&*self.cache);
        let Some(queue) = &self.queue else {
            return super::receive(&self.store, cache, &delivery, now).await;
        };
        let (reply, answer) = oneshot::channel();
        let hot = self.hot;
        queue
            .send(Work::Delivery(Pending {
                delivery,
                now,
                reply,
                hot,
            }))
            .await
            .map_err(|_| writer_gone())?;
        answer.await.map_err(|_| writer_gone())?
    }

    /// Where job workers write claims and attempt ends: this writer when it has a connection of
    /// its own (each write joins its next batch), else a transaction each.
    pub fn job_queue(&self) -> Arc<dyn QueueWrites> {
        match &self.queue {
            Some(queue) if self.writes_jobs => Arc::new(WriterQueue(queue.clone())),
            _ => Arc::new(StoreQueue(self.store.clone())),
        }
    }
}

/// [`QueueWrites`] through the writer thread.
struct WriterQueue(mpsc::Sender<Work>);

impl WriterQueue {
    async fn ask<T>(&self, work: JobWork, answer: oneshot::Receiver<StoreResult<T>>) -> StoreResult<T> {
        self.0.send(Work::Job(work)).await.map_err(|_| writer_gone())?;
        answer.await.map_err(|_| writer_gone())?
    }
}

impl QueueWrites for WriterQueue {
    fn claim<'a>(
        &'a self,
        worker: &'a str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> BoxFuture<'a, StoreResult<Option<ClaimedJob>>> {
        Box::pin(async move {
            let (reply, answer) = oneshot::channel();
            let work = JobWork::Claim {
                worker: worker.to_owned(),
                now,
                lease_until,
                reply,
            };
            self.ask(work, answer).await
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
            let (reply, answer) = oneshot::channel();
            let work = JobWork::Settle {
                id,
                worker: worker.to_owned(),
                outcome,
                now,
                reply,
            };
            self.ask(work, answer).await
        })
    }
}

/// Tells the writer thread to take no more deliveries when its watch is dropped.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

fn writer_gone() -> StoreError {
    StoreError::Unavailable(DbErr::Custom("the intake writer has stopped".to_owned()))
}

/// The writer's own connection: the file sqlx opened (migrated, in WAL mode), with the settings
/// the store gives its own (`synchronous = FULL`: a commit is on disk before anyone is answered).
fn open(file: &Path) -> StoreResult<Connection> {
    let connection = Connection::open_with_flags(
        file,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(store_error)?;
    connection
        .busy_timeout(Duration::from_secs(5))
        .and_then(|()| {
            connection.execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY;")
        })
        .map_err(store_error)?;
    connection.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(connection)
}

struct Writer {
    connection: Option<Connection>,
    store: Store,
    cache: Arc<ConnectionCache>,
    runtime: Handle,
    /// `false` once the supervisor's watch of this thread is gone: refuse deliveries.
    watched: Arc<AtomicBool>,
    /// Each batch's size (`shiplog_sqlite_group_commit_batch_size`).
    metrics: Arc<crate::metrics::Metrics>,
}

impl Writer {
    fn run(mut self, mut queue: mpsc::Receiver<Work>) {
        // sqlx (the cache's reads, step 2) needs the runtime's context on this thread too.
        let runtime = self.runtime.clone();
        let _context = runtime.enter();
        while let Some(first) = queue.blocking_recv() {
            let mut batch = Vec::with_capacity(MAX_BATCH);
            let mut jobs = Vec::new();
            let mut next = Some(first);
            while let Some(work) = next.take() {
                match work {
                    Work::Delivery(pending) => batch.push(pending),
                    Work::Job(job) => jobs.push(job),
                }
                if batch.len() + jobs.len() < MAX_BATCH {
                    next = queue.try_recv().ok();
                }
            }
            self.metrics.record_batch(batch.len() + jobs.len());
            if !self.watched.load(Ordering::Acquire) {
                // Stopped: no delivery is taken any more (the sender retries elsewhere or
                // later); the job worker still ends the attempt it is running.
                for pending in batch.drain(..) {
                    pending.answer(Err(writer_gone()));
                }
            }
            let rest = self.write_hot(batch, jobs);
            if !rest.is_empty() {
                self.runtime.block_on(write_batch(&self.store, rest));
            }
        }
    }

    /// Step 1: applies what the hot path takes, in one transaction; returns the rest.
    fn write_hot(&mut self, batch: Vec<Pending>, jobs: Vec<JobWork>) -> Vec<Pending> {
        let Some(connection) = self.connection.as_mut() else {
            // `Intake::job_queue` sends no job work to a writer without a connection.
            for job in jobs {
                job.fail(&writer_gone());
            }
            return batch;
        };
        let (hot, mut rest) = split(batch);
        if hot.is_empty() && jobs.is_empty() {
            return rest;
        }
        let _gate = self.store.write_gate().map(|gate| gate.blocking_lock_owned());
        let mut tx = match connection.transaction_with_behavior(TransactionBehavior::Immediate) {
            Ok(tx) => tx,
            Err(error) => {
                let error = store_error(error);
                jobs.into_iter().for_each(|job| job.fail(&error));
                fail_all(hot, &error);
                return rest;
            }
        };
        // Each job write is one statement: a failed one changes nothing and fails alone.
        let job_answers: Vec<JobAnswer> = jobs.into_iter().map(|job| job.apply(&tx)).collect();
        let version = match sqlite_rows::cache_version(&tx) {
            Ok(version) => version,
            Err(error) => {
                job_answers.into_iter().for_each(|answer| answer.fail(&error));
                fail_all(hot, &error);
                return rest;
            }
        };
        self.cache.observe(version);
        let mut answered: Vec<(Pending, StoreResult<Receipt>)> = Vec::with_capacity(hot.len());
        // Deployments one of the batch went to step 2 for: their later deliveries follow it.
        let mut declined = HashSet::new();
        for pending in hot {
            let deployment = fast::candidate(&pending.delivery.parsed).map(|(_, d)| d.id);
            if deployment.is_some_and(|id| declined.contains(&id)) {
                rest.push(pending);
                continue;
            }
            match apply_one(&mut tx, &self.cache, &self.store, &self.runtime, version, &pending) {
                Step::Answer(result) => answered.push((pending, result)),
                Step::Elsewhere => {
                    declined.extend(deployment);
                    rest.push(pending)
                }
                Step::Broken(error) => {
                    // The connection or the file is gone: so is the transaction.
                    drop(tx);
                    job_answers.into_iter().for_each(|answer| answer.fail(&error));
                    let all = answered.into_iter().map(|(p, _)| p).chain(std::iter::once(pending));
                    fail_all(all.collect(), &error);
                    return rest;
                }
            }
        }
        if let Err(error) = tx.commit() {
            let error = store_error(error);
            job_answers.into_iter().for_each(|answer| answer.fail(&error));
            fail_all(answered.into_iter().map(|(p, _)| p).collect(), &error);
            return rest;
        }
        job_answers.into_iter().for_each(JobAnswer::send);
        for (pending, result) in answered {
            pending.answer(result);
        }
        rest
    }
}

/// What became of one delivery in step 1.
enum Step {
    Answer(StoreResult<Receipt>),
    Elsewhere,
    /// The transaction cannot go on.
    Broken(StoreError),
}

fn apply_one(
    tx: &mut rusqlite::Transaction<'_>,
    cache: &ConnectionCache,
    store: &Store,
    runtime: &Handle,
    version: i64,
    pending: &Pending,
) -> Step {
    let Some((installation, deployment)) = fast::candidate(&pending.delivery.parsed) else {
        return Step::Elsewhere;
    };
    let key = deployment.repository.name.key();
    // A hit answers at once; a miss reads the connection through the pool (a reader: the
    // writer's transaction does not block it, and nothing else writes while it runs).
    let mut found = std::pin::pin!(cache::accepting(cache, store.conn(), version, installation, key));
    let connection = match found.as_mut().now_or_never() {
        Some(found) => found,
        None => runtime.block_on(found),
    };
    let connection = match connection {
        Ok(Some(connection)) => connection,
        Ok(None) => return Step::Elsewhere,
        Err(error) => return Step::Answer(Err(error)),
    };
    let savepoint = match tx.savepoint() {
        Ok(savepoint) => savepoint,
        Err(error) => return Step::Broken(store_error(error)),
    };
    let applied = {
        let mut rows = SqliteRows::new(&savepoint);
        hot::apply(&mut rows, &connection, &pending.delivery, pending.now).now_or_never()
    };
    let Some(applied) = applied else {
        return Step::Answer(Err(StoreError::Db(DbErr::Custom(
            "the hot path waited on the SQLite writer's connection".to_owned(),
        ))));
    };
    match applied {
        Ok(Hot::Done(receipt)) => match savepoint.commit() {
            Ok(()) => Step::Answer(Ok(receipt)),
            Err(error) => Step::Broken(store_error(error)),
        },
        Ok(Hot::Duplicate) => {
            drop(savepoint);
            let id = pending.delivery.id.as_str();
            match sqlite_rows::received_at(tx, id) {
                Ok(Some(at)) => Step::Answer(Ok(duplicate(id, at))),
                Ok(None) => Step::Elsewhere,
                Err(error) => Step::Answer(Err(error)),
            }
        }
        Ok(Hot::Elsewhere) | Err(StoreError::Conflict(_)) => Step::Elsewhere,
        Err(error @ StoreError::Unavailable(_)) => Step::Broken(shared(&error)),
        Err(error) => Step::Answer(Err(error)),
    }
}

/// The deliveries step 1 may take, in arrival order, and the rest. A delivery about a GitHub
/// deployment or an installation that an earlier one of the rest is about joins the rest.
fn split(batch: Vec<Pending>) -> (Vec<Pending>, Vec<Pending>) {
    let mut hot = Vec::with_capacity(batch.len());
    let mut rest = Vec::new();
    let mut deployments = HashSet::new();
    let mut installations = HashSet::new();
    for pending in batch {
        let parsed = &pending.delivery.parsed;
        match fast::candidate(parsed).filter(|_| pending.hot) {
            Some((installation, deployment))
                if !deployments.contains(&deployment.id) && !installations.contains(&installation.0) =>
            {
                hot.push(pending)
            }
            _ => {
                deployments.extend(fast::reported_deployment(&parsed.event).map(|d| d.id));
                if let (WebhookEvent::Installation(_) | WebhookEvent::InstallationRepositories(_), Some(installation)) =
                    (&parsed.event, parsed.installation_id)
                {
                    installations.insert(installation.0);
                }
                rest.push(pending)
            }
        }
    }
    (hot, rest)
}
