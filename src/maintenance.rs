//! Periodic clean-up of rows that only matter for a while: `Idempotency-Key` answers after
//! their 24 hours, signatures of signed requests after their window, expired admin sessions,
//! expired `state`s of the browser set-up.
//!
//! Every server process runs it hourly (and once at start); the deletes are idempotent, so
//! replicas doing the same work at once is harmless. It decides nothing: a lookup already
//! treats an expired row as absent, this only keeps the tables from growing for ever.

use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};

use crate::clock::SharedClock;
use crate::idempotency::RETENTION_HOURS;
use crate::store::{app_setup, idempotency, sessions, used_signatures, Store, StoreResult};

/// How often the clean-up runs.
pub const INTERVAL: StdDuration = StdDuration::from_secs(3600);

/// What one clean-up removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Purged {
    pub idempotency_keys: u64,
    pub signatures: u64,
    pub sessions: u64,
    pub setup_states: u64,
}

/// Removes every row that expired before `now`, in one write transaction.
pub async fn purge(store: &Store, now: DateTime<Utc>) -> StoreResult<Purged> {
    let tx = store.begin().await?;
    let purged = Purged {
        idempotency_keys: idempotency::purge_before(&tx, now - Duration::hours(RETENTION_HOURS)).await?,
        signatures: used_signatures::purge_expired(&tx, now).await?,
        sessions: sessions::purge_expired(&tx, now).await?,
        setup_states: app_setup::purge_expired_states(&tx, now).await?,
    };
    tx.commit().await?;
    Ok(purged)
}

/// Runs [`purge`] now and every [`INTERVAL`] until `stop` turns true.
pub async fn run(store: Store, clock: SharedClock, mut stop: tokio::sync::watch::Receiver<bool>) {
    loop {
        match purge(&store, clock.now()).await {
            Ok(purged) if purged != Purged::default() => tracing::info!(?purged, "expired rows removed"),
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "the periodic clean-up could not reach the database"),
        }
        tokio::select! {
            _ = tokio::time::sleep(INTERVAL) => {}
            _ = stop.changed() => {}
        }
        if *stop.borrow() {
            break;
        }
    }
}
