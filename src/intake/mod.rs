//! Webhook intake: one verified, parsed delivery becomes one transaction.
//!
//! The delivery row (unique on `X-GitHub-Delivery`), every row the event changes and any follow-up
//! job are committed together before the caller answers 2xx. A redelivery finds its row and
//! changes nothing. Intake does not verify signatures or parse JSON (the HTTP handler and
//! `github::events` do) and calls no external service: GitHub gives up after 10 seconds.

mod group_commit;
mod hot;
mod writer;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::backfill;
use crate::connections::cache::{self, ConnectionCache};
use crate::connections::{self, Applied};
use crate::deploys;
use crate::events::{InstallationChange, ParsedDelivery, WebhookEvent};
use crate::monitoring;
use crate::store::hot::sea::{self as sea_rows, SeaRows};
use crate::store::{deliveries, Store, StoreError, StoreResult, Writer};
use crate::types::DeliveryId;

pub use writer::Intake;

/// How a delivery was handled.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The event changed shiplog's state (or was a `ping`).
    Processed,
    /// This delivery id was received before; nothing was done again.
    Duplicate,
    /// An event or action shiplog does not act on.
    Ignored,
    /// An event shiplog handles, deliberately not applied (the reason says why).
    Skipped,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Processed => "processed",
            Self::Duplicate => "duplicate",
            Self::Ignored => "ignored",
            Self::Skipped => "skipped",
        }
    }
}

/// The answer to GitHub: `{"delivery","outcome","reason"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Receipt {
    pub delivery: String,
    pub outcome: Outcome,
    pub reason: Option<String>,
    /// A job may be waiting for the worker because of this delivery (always, after the general
    /// path, which does not say): the handler wakes the worker only then.
    #[serde(skip)]
    pub wake_jobs: bool,
}

/// What the intake needs to know of a delivery besides its parsed body.
#[derive(Clone, Debug)]
pub struct Delivery {
    pub id: DeliveryId,
    pub event: String,
    pub parsed: ParsedDelivery,
    /// `GITHUB_APP_SLUG`: the `@mention` that opts a pull request into deploy monitoring.
    pub app_slug: String,
    /// `SHIPLOG_BACKFILL_ON_INSTALL_DAYS` (0 when off or without the App): the history a new
    /// installation imports by itself.
    pub backfill_on_install_days: u32,
}

/// How often a transaction that lost a race on another uniqueness rule (two deliveries creating
/// the same connection at once) is tried again before the error is returned.
const ATTEMPTS: usize = 3;
/// How often a transaction that PostgreSQL ended to break a deadlock is tried.
const CONTENTION_ATTEMPTS: usize = 5;

/// Records the delivery and applies it, in one transaction of its own: through the hot path
/// when it takes the delivery, else the general path.
async fn receive(
    store: &Store,
    cache: Option<&ConnectionCache>,
    delivery: &Delivery,
    now: DateTime<Utc>,
) -> StoreResult<Receipt> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let hot = match cache {
            Some(cache) => receive_hot(store, cache, delivery, now).await,
            None => Ok(None),
        };
        let result = match hot {
            Ok(Some(receipt)) => Ok(receipt),
            Ok(None) => receive_once(store, delivery, now).await,
            Err(error) => Err(error),
        };
        match result {
            Err(StoreError::Conflict(message)) if attempt < ATTEMPTS => {
                tracing::info!(%message, attempt, "delivery lost a race on a uniqueness rule; trying again");
            }
            // A deadlock between two deliveries touching the same deploys (PostgreSQL).
            Err(StoreError::Contention(error)) if attempt < CONTENTION_ATTEMPTS => {
                tracing::info!(%error, attempt, "delivery lost to a concurrent transaction; trying again");
            }
            other => return other,
        }
    }
}

/// The hot path in a transaction of its own (PostgreSQL): `None` when it does not take the
/// delivery (nothing of it is kept).
async fn receive_hot(
    store: &Store,
    cache: &ConnectionCache,
    delivery: &Delivery,
    now: DateTime<Utc>,
) -> StoreResult<Option<Receipt>> {
    let Some((installation, deployment)) = deploys::fast::candidate(&delivery.parsed) else {
        return Ok(None);
    };
    let tx = store.begin().await?;
    let version = sea_rows::cache_version(&tx).await?;
    cache.observe(version);
    let key = deployment.repository.name.key();
    let Some(connection) = cache::accepting(cache, &tx, version, installation, key).await? else {
        return Ok(None);
    };
    match hot::apply(&mut SeaRows::new(&tx), &connection, delivery, now).await {
        Ok(hot::Hot::Done(receipt)) => {
            tx.commit().await?;
            Ok(Some(receipt))
        }
        Ok(hot::Hot::Duplicate) => {
            drop(tx);
            Ok(already_received(store, delivery).await?)
        }
        Ok(hot::Hot::Elsewhere) | Err(StoreError::Conflict(_)) => Ok(None),
        Err(error) => Err(error),
    }
}

async fn receive_once(store: &Store, delivery: &Delivery, now: DateTime<Utc>) -> StoreResult<Receipt> {
    if let Some(receipt) = already_received(store, delivery).await? {
        return Ok(receipt);
    }
    let tx = store.begin().await?;
    match apply(&tx, delivery, now).await? {
        Decision::Commit(receipt) => {
            tx.commit().await?;
            Ok(receipt)
        }
        Decision::RollBack(receipt) => Ok(receipt),
    }
}

/// The `duplicate` receipt, when this delivery id is stored already. Read outside the write
/// transaction, so the transaction's first statement is a write (SQLite never has to upgrade a
/// read lock, which another process could refuse).
async fn already_received(store: &Store, delivery: &Delivery) -> StoreResult<Option<Receipt>> {
    let id = delivery.id.as_str();
    Ok(deliveries::received_at(store.conn(), id)
        .await?
        .map(|received_at| duplicate(id, received_at)))
}

/// What to do with the writes [`apply`] made.
enum Decision {
    Commit(Receipt),
    /// Nothing of this delivery may be kept: another transaction owns its id.
    RollBack(Receipt),
}

/// Records the delivery and applies it on `db`, a transaction or a savepoint the caller commits.
async fn apply(db: &impl Writer, delivery: &Delivery, now: DateTime<Utc>) -> StoreResult<Decision> {
    let id = delivery.id.as_str();
    let row = deliveries::insert(
        db,
        deliveries::NewDelivery {
            delivery_id: id,
            event: &delivery.event,
            action: delivery.parsed.action.as_deref(),
            installation_id: delivery.parsed.installation_id.map(|i| i.0),
            received_at: now,
        },
    )
    .await;
    let row = match row {
        Ok(row) => row,
        // A redelivery racing the original: the other transaction owns this delivery.
        Err(StoreError::Conflict(_)) => return Ok(Decision::RollBack(duplicate(id, now))),
        Err(other) => return Err(other),
    };

    let (outcome, reason, connection_id) = match &delivery.parsed.event {
        WebhookEvent::Ping => (Outcome::Processed, None, None),
        WebhookEvent::Installation(event) => {
            let result = connections::apply_installation_event(db, event, now).await?;
            if let (InstallationChange::Created, Applied::Changed { connection_id }) = (event.change, &result) {
                backfill::start_on_install(db, *connection_id, delivery.backfill_on_install_days, now).await?;
            }
            applied(result)
        }
        WebhookEvent::InstallationRepositories(event) => {
            applied(connections::apply_repositories_changed(db, event, now).await?)
        }
        WebhookEvent::Deployment(deployment) => match delivery.parsed.installation_id {
            Some(installation) => applied(deploys::github::record_deployment(db, installation, deployment, now).await?),
            None => not_from_an_app(),
        },
        WebhookEvent::DeploymentStatus(status) => match delivery.parsed.installation_id {
            Some(installation) => applied(deploys::github::record_status(db, installation, status, now).await?),
            None => not_from_an_app(),
        },
        WebhookEvent::PullRequestLabeled { pull, label } => match delivery.parsed.installation_id {
            Some(installation) => applied(monitoring::opt_in::from_label(db, installation, pull, label, now).await?),
            None => not_from_an_app(),
        },
        WebhookEvent::PullRequestComment {
            pull, comment_id, body, ..
        } => match delivery.parsed.installation_id {
            Some(installation) => applied(
                monitoring::opt_in::from_comment(db, installation, pull, *comment_id, body, &delivery.app_slug, now)
                    .await?,
            ),
            None => not_from_an_app(),
        },
        WebhookEvent::PullRequestClosed(pr) => match delivery.parsed.installation_id {
            Some(installation) => applied(monitoring::record_closed_pull_request(db, installation, pr, now).await?),
            None => not_from_an_app(),
        },
        WebhookEvent::WorkflowRun(run) => match delivery.parsed.installation_id {
            Some(installation) => applied(deploys::actions::record_run(db, installation, run, now).await?),
            None => not_from_an_app(),
        },
        WebhookEvent::Unhandled => {
            let connection_id = match delivery.parsed.installation_id {
                Some(installation) => connections::id_for_installation(db, installation).await?,
                None => None,
            };
            let what = match &delivery.parsed.action {
                Some(action) => format!("`{}` events with action `{action}`", delivery.event),
                None => format!("`{}` events", delivery.event),
            };
            (
                Outcome::Ignored,
                Some(format!("shiplog does not act on {what}")),
                connection_id,
            )
        }
    };

    deliveries::finish(db, row, outcome.as_str(), reason.as_deref(), connection_id).await?;
    Ok(Decision::Commit(Receipt {
        delivery: id.to_owned(),
        outcome,
        reason,
        wake_jobs: true,
    }))
}

fn applied(applied: Applied) -> (Outcome, Option<String>, Option<i64>) {
    match applied {
        Applied::Changed { connection_id } => (Outcome::Processed, None, Some(connection_id)),
        Applied::Skipped { connection_id, reason } => (Outcome::Skipped, Some(reason), Some(connection_id)),
    }
}

/// A repository webhook (no installation): shiplog cannot tell which connection it is for.
fn not_from_an_app() -> (Outcome, Option<String>, Option<i64>) {
    (
        Outcome::Ignored,
        Some("the payload names no installation: not a GitHub App delivery".to_owned()),
        None,
    )
}

fn duplicate(id: &str, received_at: DateTime<Utc>) -> Receipt {
    Receipt {
        delivery: id.to_owned(),
        outcome: Outcome::Duplicate,
        reason: Some(format!("delivery already received at {}", received_at.to_rfc3339())),
        wake_jobs: false,
    }
}
