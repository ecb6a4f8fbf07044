//! The job queue's gauges, read from the database at scrape time (one grouped query), so every
//! replica reports the shared queue as it is rather than what it alone did.

use chrono::{DateTime, Utc};
use prometheus_client::encoding::EncodeLabelSet;

use super::Metrics;
use crate::store::job_queue;
use crate::store::{Store, StoreResult};

/// Groups (kind × state) read at most: kinds are the registered job types, so this is slack.
const MAX_GROUPS: u64 = 300;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindState {
    kind: String,
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Kind {
    kind: String,
}

/// Sets `shiplog_jobs{kind,state}` and `shiplog_job_oldest_due_age_seconds{kind}` from the
/// database: every registered kind is shown (0 when none waits); other kinds only while they
/// have rows.
pub async fn refresh(metrics: &Metrics, store: &Store, now: DateTime<Utc>) -> StoreResult<()> {
    let depths = job_queue::depths(store.conn(), MAX_GROUPS).await?;
    metrics.jobs.clear();
    metrics.oldest_due.clear();
    for kind in metrics.job_kinds.get().into_iter().flatten() {
        for state in ["queued", "running", "dead"] {
            metrics.jobs.get_or_create_owned(&KindState {
                kind: (*kind).to_owned(),
                state: state.to_owned(),
            });
        }
        metrics.oldest_due.get_or_create_owned(&Kind {
            kind: (*kind).to_owned(),
        });
    }
    for depth in depths {
        metrics
            .jobs
            .get_or_create(&KindState {
                kind: depth.kind.clone(),
                state: depth.state.clone(),
            })
            .set(depth.jobs);
        if depth.state == "queued" {
            // The earliest queued job is the oldest due one when it is due at all.
            let age = depth
                .earliest_run_at
                .map_or(0.0, |at| (now - at).num_milliseconds().max(0) as f64 / 1000.0);
            metrics
                .oldest_due
                .get_or_create_owned(&Kind { kind: depth.kind })
                .set(age);
        }
    }
    Ok(())
}
