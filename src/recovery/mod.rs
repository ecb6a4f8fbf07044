//! Catching up on webhook deliveries GitHub could not make while shiplog was down (issue 19).
//!
//! A pass, run as the durable job `deliveries.recover`: as the App, page through GitHub's log of
//! the App's webhook deliveries (newest first, GitHub keeps three days) back to the newest one
//! the last complete pass saw; for each delivery GitHub counted as failed whose GUID shiplog has
//! no `webhook_delivery` row for and has not asked for yet, ask GitHub to send it again. GitHub
//! then delivers it to `/webhooks/github` with the same `X-GitHub-Delivery`, so it lands like
//! any delivery, and a second arrival is a no-op.
//!
//! The job runs at start and then every `SHIPLOG_DELIVERY_RECOVERY_INTERVAL`: each pass enqueues
//! the next. One dedupe key (`deliveries.recover`), held only by a queued or running row, keeps
//! at most one pass pending across replicas. Nothing here runs on a request path; `GET
//! /api/deliveries/recovery` only reads what the last pass stored.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};

use crate::clock::SharedClock;
use crate::github::app::GitHubApp;
use crate::github::deliveries::{self, HookDelivery};
use crate::github::error::CallError;
use crate::github::history::RateLimit;
use crate::jobs::runner::{JobError, JobHandler};
use crate::jobs::{self, BackgroundJob};
use crate::store::recovery::{self as stored, NewAsk, RecoveryState};
use crate::store::{Store, StoreResult};

/// The dedupe key of the one pending pass.
pub const JOB_KEY: &str = "deliveries.recover";
/// Redeliveries asked for in one pass at most; the rest wait for the next pass.
pub const MAX_ASKS_PER_PASS: u32 = 100;
/// Pages (of 100) read in one pass at most: 5,000 deliveries. On the first pass, deliveries
/// further back are not looked at.
pub const MAX_PAGES_PER_PASS: u32 = 50;
/// A pass stops when GitHub reports fewer calls than this left in the App's rate limit.
pub const MIN_RATE_REMAINING: u32 = 100;
/// A GUID whose ask GitHub refused is asked again in later passes, this many asks in all.
pub const MAX_ASKS: i32 = 3;
/// The pause between two asks (GitHub: "pause at least one second between mutative requests").
const ASK_PAUSE: std::time::Duration = std::time::Duration::from_secs(1);

/// The job: one catch-up pass. No payload: every pass does the same.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RecoverDeliveries {}

impl BackgroundJob for RecoverDeliveries {
    const JOB_NAME: &'static str = "deliveries.recover";
}

/// Why a pass ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Stopped {
    /// Reached the newest delivery the last complete pass saw, or the end of GitHub's log.
    Complete,
    /// Read [`MAX_PAGES_PER_PASS`] pages; older deliveries are not looked at.
    PageLimit,
    /// Asked for [`MAX_ASKS_PER_PASS`] redeliveries; the next pass goes on.
    AskLimit,
    /// GitHub's rate limit was low or reached; the next pass goes on.
    RateLimit,
    /// GitHub could not be read (`detail` says why); the next pass tries again.
    Error,
}

impl Stopped {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Complete => "complete",
            Self::PageLimit => "page_limit",
            Self::AskLimit => "ask_limit",
            Self::RateLimit => "rate_limit",
            Self::Error => "error",
        }
    }
}

/// What one pass did: the counts `/metrics` and the API show.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PassReport {
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    /// Pages of GitHub's delivery log read.
    pub pages: u32,
    /// Deliveries newer than where the last complete pass stopped.
    pub seen: u32,
    /// Of those, distinct GUIDs GitHub counted as failed.
    pub failed: u32,
    /// Failed GUIDs shiplog has a delivery row for (a later attempt got through).
    pub already_stored: u32,
    /// Failed GUIDs asked for in an earlier pass (or given up after [`MAX_ASKS`]).
    pub already_asked: u32,
    /// Redeliveries GitHub accepted in this pass.
    pub asked: u32,
    /// Asks GitHub refused in this pass.
    pub ask_failures: u32,
    pub stopped: Stopped,
    /// What went wrong, when `stopped` is `error` or `rate_limit`.
    pub detail: Option<String>,
}

/// Runs passes; registered for [`RecoverDeliveries`].
pub struct Recovery {
    pub store: Store,
    pub github: Option<GitHubApp>,
    pub interval: Option<std::time::Duration>,
    pub clock: SharedClock,
}

impl Recovery {
    pub fn new(
        store: &Store,
        github: Option<GitHubApp>,
        interval: Option<std::time::Duration>,
        clock: SharedClock,
    ) -> Arc<Self> {
        Arc::new(Self {
            store: store.clone(),
            github,
            interval,
            clock,
        })
    }
}

/// Why the catch-up is off, or `None` when it is on.
pub fn off_reason(app_configured: bool, interval: Option<std::time::Duration>) -> Option<&'static str> {
    if !app_configured {
        Some("no GitHub App credentials (GITHUB_APP_ID and its private key)")
    } else if interval.is_none() {
        Some("SHIPLOG_DELIVERY_RECOVERY_INTERVAL is 0")
    } else {
        None
    }
}

/// At start, when the catch-up is on: a pass now. Enqueues one unless one is queued or running
/// (another replica's), and moves a queued one that waits for later to now.
pub async fn schedule_at_start(store: &Store, now: DateTime<Utc>) -> StoreResult<()> {
    let tx = store.begin().await?;
    stored::release_finished_key(&tx, JOB_KEY).await?;
    let queued = jobs::enqueue(&tx, &RecoverDeliveries {}, Some(JOB_KEY.to_owned()), now, now).await?;
    if !queued {
        stored::pull_forward(&tx, JOB_KEY, now).await?;
    }
    tx.commit().await
}

impl JobHandler<RecoverDeliveries> for Recovery {
    fn run(&self, _job: RecoverDeliveries, now: DateTime<Utc>, _attempt: i32) -> BoxFuture<'_, Result<(), JobError>> {
        Box::pin(async move {
            let (Some(github), Some(interval)) = (self.github.as_ref(), self.interval) else {
                // Another replica, configured with the App, enqueued it: pass it on to the next
                // default interval rather than end the chain, and say that replicas differ.
                let reason = off_reason(self.github.is_some(), self.interval).unwrap_or("off");
                let tx = self.store.begin().await?;
                stored::release_key(&tx, JOB_KEY).await?;
                let later = now + Duration::minutes(10);
                jobs::enqueue(&tx, &RecoverDeliveries {}, Some(JOB_KEY.to_owned()), later, now).await?;
                tx.commit().await?;
                tracing::warn!(
                    reason,
                    "a delivery catch-up pass reached a replica where it is off; it is queued again for in 10 minutes: give every replica the same App credentials and SHIPLOG_DELIVERY_RECOVERY_INTERVAL"
                );
                return Err(JobError::Skipped(format!(
                    "the delivery catch-up is off here: {reason}"
                )));
            };
            let before = stored::state(self.store.conn()).await?;
            let (report, last_seen_id) = pass(&self.store, github, &self.clock, before.last_seen_id).await?;
            let last_pass = serde_json::to_string(&report).map_err(|e| JobError::Permanent(e.to_string()))?;
            let next_at = report.finished_at + Duration::from_std(interval).unwrap_or(Duration::minutes(10));
            let tx = self.store.begin().await?;
            stored::save(
                &tx,
                &RecoveryState {
                    last_seen_id,
                    last_pass: Some(last_pass),
                },
                report.finished_at,
            )
            .await?;
            stored::release_key(&tx, JOB_KEY).await?;
            jobs::enqueue(
                &tx,
                &RecoverDeliveries {},
                Some(JOB_KEY.to_owned()),
                next_at,
                report.finished_at,
            )
            .await?;
            tx.commit().await?;
            if let Some(metrics) = github.metrics() {
                metrics.record_recovery_pass(
                    report.stopped.as_str(),
                    &[
                        ("asked", u64::from(report.asked)),
                        ("refused", u64::from(report.ask_failures)),
                    ],
                );
            }
            tracing::info!(
                pages = report.pages,
                seen = report.seen,
                failed = report.failed,
                already_stored = report.already_stored,
                already_asked = report.already_asked,
                asked = report.asked,
                ask_failures = report.ask_failures,
                stopped = report.stopped.as_str(),
                detail = report.detail.as_deref().unwrap_or(""),
                next_run_at = %next_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                "delivery catch-up pass"
            );
            Ok(())
        })
    }
}

/// One pass: what it did, and where the next pass stops paging (advanced only when this pass
/// read back to the last one and every ask it made was accepted, so a refused ask is seen, and
/// asked again, by the next pass).
pub async fn pass(
    store: &Store,
    github: &GitHubApp,
    clock: &SharedClock,
    last_seen_id: Option<i64>,
) -> StoreResult<(PassReport, Option<i64>)> {
    let started_at = clock.now();
    let mut report = PassReport {
        started_at,
        finished_at: started_at,
        pages: 0,
        seen: 0,
        failed: 0,
        already_stored: 0,
        already_asked: 0,
        asked: 0,
        ask_failures: 0,
        stopped: Stopped::Complete,
        detail: None,
    };
    let mut newest: Option<i64> = None;
    let mut next: Option<String> = None;
    let mut handled: HashSet<String> = HashSet::new();
    let mut rate: Option<RateLimit> = None;
    'pages: loop {
        if report.pages >= MAX_PAGES_PER_PASS {
            report.stopped = Stopped::PageLimit;
            break;
        }
        if let Some(stop) = rate_low(rate.as_ref()) {
            report.stopped = Stopped::RateLimit;
            report.detail = Some(stop);
            break;
        }
        let page = match deliveries::list_page(github, next.as_deref(), clock.now()).await {
            Ok(page) => page,
            Err(error) => {
                stop_on(&mut report, &error);
                break;
            }
        };
        report.pages += 1;
        rate = page.rate.clone().or(rate);
        if newest.is_none() {
            newest = page.items.iter().map(|d| d.id).max();
        }
        let fresh: Vec<&HookDelivery> = page
            .items
            .iter()
            .filter(|d| last_seen_id.is_none_or(|last| d.id > last))
            .collect();
        let reached_last = fresh.len() < page.items.len();
        report.seen += fresh.len() as u32;
        let mut candidates: Vec<&HookDelivery> = Vec::new();
        for delivery in fresh {
            if delivery.failed() && handled.insert(delivery.guid.clone()) {
                candidates.push(delivery);
            }
        }
        report.failed += candidates.len() as u32;
        let guids: Vec<String> = candidates.iter().map(|d| d.guid.clone()).collect();
        let in_store = stored::stored_guids(store.conn(), &guids).await?;
        let asks = stored::asks(store.conn(), &guids).await?;
        for delivery in candidates {
            if in_store.contains(&delivery.guid) {
                report.already_stored += 1;
                continue;
            }
            if asks
                .get(&delivery.guid)
                .is_some_and(|ask| ask.outcome != "failed" || ask.asks >= MAX_ASKS)
            {
                report.already_asked += 1;
                continue;
            }
            if report.asked + report.ask_failures >= MAX_ASKS_PER_PASS {
                report.stopped = Stopped::AskLimit;
                break 'pages;
            }
            if let Some(stop) = rate_low(rate.as_ref()) {
                report.stopped = Stopped::RateLimit;
                report.detail = Some(stop);
                break 'pages;
            }
            if report.asked + report.ask_failures > 0 {
                tokio::time::sleep(ASK_PAUSE).await;
            }
            let error = match deliveries::redeliver(github, delivery.id, clock.now()).await {
                Ok(reported) => {
                    rate = reported.or(rate);
                    report.asked += 1;
                    None
                }
                Err(error @ CallError::RateLimited { .. }) => {
                    // Not an answer about this delivery: it is asked for in a later pass.
                    stop_on(&mut report, &error);
                    break 'pages;
                }
                Err(error) => {
                    report.ask_failures += 1;
                    Some(error.to_string())
                }
            };
            let tx = store.begin().await?;
            stored::record_ask(
                &tx,
                &NewAsk {
                    guid: &delivery.guid,
                    hook_delivery_id: delivery.id,
                    event: delivery.event.as_deref(),
                    error: error.as_deref(),
                },
                clock.now(),
            )
            .await?;
            tx.commit().await?;
            if let Some(error) = error {
                tracing::warn!(guid = %delivery.guid, hook_delivery_id = delivery.id, %error, "GitHub refused to redeliver a missed delivery");
            }
        }
        match page.next {
            Some(query) if !reached_last && !page.items.is_empty() => next = Some(query),
            _ => break,
        }
    }
    report.finished_at = clock.now();
    let advance = matches!(report.stopped, Stopped::Complete | Stopped::PageLimit) && report.ask_failures == 0;
    let last_seen = if advance {
        newest.max(last_seen_id)
    } else {
        last_seen_id
    };
    Ok((report, last_seen))
}

/// What a low rate limit stops a pass with, when fewer than [`MIN_RATE_REMAINING`] calls are left.
fn rate_low(rate: Option<&RateLimit>) -> Option<String> {
    rate.filter(|r| r.remaining < MIN_RATE_REMAINING).map(|r| {
        format!(
            "GitHub's rate limit is low: {} of {} calls left until {}",
            r.remaining,
            r.limit,
            r.reset.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        )
    })
}

fn stop_on(report: &mut PassReport, error: &CallError) {
    report.stopped = match error {
        CallError::RateLimited { .. } => Stopped::RateLimit,
        _ => Stopped::Error,
    };
    report.detail = Some(error.to_string());
}

/// What `GET /api/deliveries/recovery` shows.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct RecoveryStatus {
    pub enabled: bool,
    /// Why it is off.
    pub off_reason: Option<&'static str>,
    pub interval_seconds: Option<u64>,
    /// When the next pass is due; `null` while one runs or when off.
    pub next_run_at: Option<DateTime<Utc>>,
    /// Where the next pass stops paging back.
    pub last_seen_delivery_id: Option<i64>,
    pub last_pass: Option<PassReport>,
}

pub async fn status(
    store: &Store,
    app_configured: bool,
    interval: Option<std::time::Duration>,
) -> StoreResult<RecoveryStatus> {
    let state = stored::state(store.conn()).await?;
    let off_reason = off_reason(app_configured, interval);
    let next_run_at = match off_reason {
        None => stored::next_run_at(store.conn(), JOB_KEY).await?,
        Some(_) => None,
    };
    Ok(RecoveryStatus {
        enabled: off_reason.is_none(),
        off_reason,
        interval_seconds: interval.filter(|_| off_reason.is_none()).map(|i| i.as_secs()),
        next_run_at,
        last_seen_delivery_id: state.last_seen_id,
        last_pass: state
            .last_pass
            .as_deref()
            .and_then(|raw| serde_json::from_str(raw).ok()),
    })
}
