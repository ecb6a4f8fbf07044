//! Group commit through sea-orm: the deliveries of a batch that the hot path does not take share
//! one transaction and one sync to disk, each in a savepoint of its own, and each is answered
//! only after that commit. A delivery that fails rolls back alone; if the commit fails, every
//! delivery of the batch gets the error (GitHub redelivers) and nothing of it is kept.

use sea_orm::DbErr;

use super::writer::Pending;
use super::{already_received, apply, Decision, Delivery, Receipt, ATTEMPTS};
use crate::store::{Store, StoreError, StoreResult, Tx};
use chrono::{DateTime, Utc};

pub(super) async fn write_batch(store: &Store, batch: Vec<Pending>) {
    let mut todo = Vec::with_capacity(batch.len());
    for pending in batch {
        match already_received(store, &pending.delivery).await {
            Ok(None) => todo.push(pending),
            Ok(Some(duplicate)) => pending.answer(Ok(duplicate)),
            Err(error) => pending.answer(Err(error)),
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
    for (pending, result) in todo.into_iter().zip(results) {
        pending.answer(result);
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

pub(super) fn fail_all(batch: Vec<Pending>, error: &StoreError) {
    tracing::warn!(%error, deliveries = batch.len(), "a batch of deliveries was not committed");
    for pending in batch {
        pending.answer(Err(shared(error)));
    }
}

/// The same failure for every delivery of a batch (errors are not `Clone`).
pub(super) fn shared(error: &StoreError) -> StoreError {
    let message = error.to_string();
    match error {
        StoreError::Unavailable(_) => StoreError::Unavailable(DbErr::Custom(message)),
        StoreError::Conflict(_) => StoreError::Conflict(message),
        StoreError::Contention(_) => StoreError::Contention(DbErr::Custom(message)),
        StoreError::Corrupt(_) => StoreError::Corrupt(message),
        StoreError::Db(_) => StoreError::Db(DbErr::Custom(message)),
    }
}
