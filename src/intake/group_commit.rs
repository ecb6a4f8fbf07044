//! Group commit for SQLite: deliveries that arrive together share one transaction and one sync
//! to disk, and each is still answered only after that commit.
//!
//! SQLite writes one transaction at a time, and each commit waits for the disk (`synchronous =
//! FULL`). Under load, queued deliveries go to a single writer task that applies up to
//! [`MAX_BATCH`] of them in one transaction, each in a savepoint of its own: a delivery that
//! fails rolls back alone, the rest commit. If the commit fails, every delivery in the batch
//! gets the error (GitHub redelivers) and nothing of the batch is kept.
//!
//! PostgreSQL takes concurrent transactions and groups their commits itself, so there each
//! delivery keeps its own transaction ([`super::receive`]).

use chrono::{DateTime, Utc};
use sea_orm::DbErr;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::{already_received, apply, Decision, Delivery, Receipt, ATTEMPTS};
use crate::store::{Store, StoreError, StoreResult, Tx};
use crate::supervise::{self, Tasks};

/// Deliveries per transaction at most: bounds how long the first of a batch waits.
const MAX_BATCH: usize = 64;
/// Deliveries waiting for the writer; more wait in their handlers.
const QUEUE: usize = 1024;

struct Pending {
    delivery: Delivery,
    now: DateTime<Utc>,
    reply: oneshot::Sender<StoreResult<Receipt>>,
}

/// How the HTTP layer hands a verified, parsed delivery to intake.
#[derive(Clone, Debug)]
pub struct Intake {
    store: Store,
    /// The SQLite writer's queue; `None` on PostgreSQL.
    queue: Option<mpsc::Sender<Pending>>,
}

impl Intake {
    /// On SQLite, starts the writer task as [`supervise::WRITER`] in `tasks` (it ends when the
    /// last `Intake` is dropped) and returns its handle for the supervisor.
    pub fn start(store: Store, tasks: &Tasks) -> (Self, Option<(&'static str, JoinHandle<()>)>) {
        if !store.is_sqlite() {
            return (Self { store, queue: None }, None);
        }
        let (sender, receiver) = mpsc::channel(QUEUE);
        let writer = tasks.spawn(supervise::WRITER, write_batches(store.clone(), receiver));
        (
            Self {
                store,
                queue: Some(sender),
            },
            Some(writer),
        )
    }

    /// Records and applies the delivery; returns once it is committed.
    pub async fn receive(&self, delivery: Delivery, now: DateTime<Utc>) -> StoreResult<Receipt> {
        let Some(queue) = &self.queue else {
            return super::receive(&self.store, &delivery, now).await;
        };
        let (reply, answer) = oneshot::channel();
        queue
            .send(Pending { delivery, now, reply })
            .await
            .map_err(|_| writer_gone())?;
        answer.await.map_err(|_| writer_gone())?
    }
}

fn writer_gone() -> StoreError {
    StoreError::Unavailable(DbErr::Custom("the intake writer has stopped".to_owned()))
}

async fn write_batches(store: Store, mut queue: mpsc::Receiver<Pending>) {
    while let Some(first) = queue.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        write_batch(&store, batch).await;
    }
}

async fn write_batch(store: &Store, batch: Vec<Pending>) {
    let mut todo = Vec::with_capacity(batch.len());
    for pending in batch {
        match already_received(store, &pending.delivery).await {
            Ok(None) => todo.push(pending),
            Ok(Some(duplicate)) => {
                let _ = pending.reply.send(Ok(duplicate));
            }
            Err(error) => {
                let _ = pending.reply.send(Err(error));
            }
        }
    }
    if todo.is_empty() {
        return;
    }
    let tx = match store.begin().await {
        Ok(tx) => tx,
        Err(error) => return fail_all(todo, &error),
    };
    let mut results = Vec::with_capacity(todo.len());
    for pending in &todo {
        let result = apply_in_savepoint(&tx, &pending.delivery, pending.now).await;
        if let Err(error @ StoreError::Unavailable(_)) = &result {
            // The connection or the database is gone: the transaction is too.
            let error = shared(error);
            drop(tx);
            return fail_all(todo, &error);
        }
        results.push(result);
    }
    if let Err(error) = tx.commit().await {
        return fail_all(todo, &error);
    }
    if todo.len() > 1 {
        tracing::debug!(deliveries = todo.len(), "deliveries committed together");
    }
    for (pending, result) in todo.into_iter().zip(results) {
        let _ = pending.reply.send(result);
    }
}

/// One delivery inside the batch's transaction, retried on a lost uniqueness race as
/// [`super::receive`] does.
async fn apply_in_savepoint(tx: &Tx, delivery: &Delivery, now: DateTime<Utc>) -> StoreResult<Receipt> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let savepoint = tx.savepoint().await?;
        match apply(&savepoint, delivery, now).await {
            Ok(Decision::Commit(receipt)) => {
                savepoint.commit().await?;
                return Ok(receipt);
            }
            Ok(Decision::RollBack(receipt)) => {
                savepoint.rollback().await?;
                return Ok(receipt);
            }
            Err(StoreError::Conflict(message)) if attempt < ATTEMPTS => {
                savepoint.rollback().await?;
                tracing::info!(%message, attempt, "delivery lost a race on a uniqueness rule; trying again");
            }
            Err(error) => {
                savepoint.rollback().await?;
                return Err(error);
            }
        }
    }
}

fn fail_all(batch: Vec<Pending>, error: &StoreError) {
    tracing::warn!(%error, deliveries = batch.len(), "a batch of deliveries was not committed");
    for pending in batch {
        let _ = pending.reply.send(Err(shared(error)));
    }
}

/// The same failure for every delivery of a batch (errors are not `Clone`).
fn shared(error: &StoreError) -> StoreError {
    let message = error.to_string();
    match error {
        StoreError::Unavailable(_) => StoreError::Unavailable(DbErr::Custom(message)),
        StoreError::Conflict(_) => StoreError::Conflict(message),
        StoreError::Contention(_) => StoreError::Contention(DbErr::Custom(message)),
        StoreError::Corrupt(_) => StoreError::Corrupt(message),
        StoreError::Db(_) => StoreError::Db(DbErr::Custom(message)),
    }
}
