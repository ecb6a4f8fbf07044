//! The `deploy.went_live` job: what a deploy that went live brings, and whether it rolled back.
//!
//! It settles the repository's watched commits in one batch (`ancestry::batch`), starting from the
//! deploy it replaced in the same environment (else the repository's previous live deploy), and
//! tells each watch source. When the replaced deploy's sha contains the new one (compare says
//! `behind`), the replaced deploy becomes `rolled_back` with `rollback_target_id` pointing at the
//! new deploy, and the event is kept in its status history. A deploy of a SHA that was live
//! earlier in the same environment is a rollback too, known without asking GitHub.
//!
//! Without a GitHub App the batch settles what the cache knows; what only GitHub could settle
//! is recorded once as `skipped` with the reason (on the deploy's `batch` and the job), never
//! retried. A batch with nothing left to settle finishes without any GitHub call.
//!
//! Then it reads what the deploy shipped (`shipped::read`): the range from the deploy it
//! replaced in its environment, read by the batch already, and for a rollback what was taken
//! out. Its last transaction stores the batch's outcome, the shipment, the delivery metrics'
//! facts (`delivery::record::after_live`) and the drift recompute together. A retry or a later
//! went-live job of the same deploy writes the same rows again.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};

use super::watch::{LiveDeploy, WatchSource};
use super::{Deploy, DeployStatus, StatusEntry};
use crate::ancestry::batch;
use crate::connections;
use crate::delivery;
use crate::github::app::GitHubApp;
use crate::github::client::InstallationClient;
use crate::github::compare::CompareStatus;
use crate::jobs::runner::{JobError, JobHandler};
use crate::jobs::BackgroundJob;
use crate::shipped;
use crate::store::ancestry::{self as facts, BatchOutcome};
use crate::store::deployments as rows;
use crate::store::{Store, StoreResult, Writer};

/// The job: a deploy went live at `live_at`, replacing `previous_live_ids` in its environment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployWentLive {
    pub deployment_id: i64,
    pub connection_id: i64,
    pub repository: String,
    pub environment: String,
    pub sha: String,
    pub live_at: DateTime<Utc>,
    /// The deploys it superseded in its environment (the live one first).
    pub previous_live_ids: Vec<i64>,
}

impl BackgroundJob for DeployWentLive {
    const JOB_NAME: &'static str = "deploy.went_live";
}

/// Runs [`DeployWentLive`] jobs.
pub struct WentLive {
    pub store: Store,
    pub github: Option<GitHubApp>,
    pub sources: Vec<Arc<dyn WatchSource>>,
}

impl JobHandler<DeployWentLive> for WentLive {
    fn run(&self, job: DeployWentLive, now: DateTime<Utc>, _attempt: i32) -> BoxFuture<'_, Result<(), JobError>> {
        Box::pin(async move { self.process(&job, now).await })
    }
}

/// Why a batch could not finish without the App, as recorded on the deploy and the job.
const NO_APP: &str = "the GitHub App is not configured (GITHUB_APP_ID, GITHUB_APP_PRIVATE_KEY_PATH)";

impl WentLive {
    async fn process(&self, job: &DeployWentLive, now: DateTime<Utc>) -> Result<(), JobError> {
        let id = job.deployment_id;
        let Some(deploy) = rows::find(self.store.conn(), id).await? else {
            return Err(JobError::Permanent(format!("deployment {id} does not exist")));
        };
        let connection = connections::get(&self.store, deploy.connection_id.0)
            .await?
            .ok_or_else(|| JobError::Permanent(format!("connection {} does not exist", deploy.connection_id)))?;
        let github = self.github.as_ref().map(|app| InstallationClient {
            app,
            installation: connection.installation_id,
        });
        let replaced_in_environment = match job.previous_live_ids.first() {
            Some(&previous) => rows::find(self.store.conn(), previous).await?,
            None => None,
        };
        let previous = match &replaced_in_environment {
            Some(replaced) => Some(replaced.clone()),
            None => rows::previous_live_in_repository(self.store.conn(), &deploy).await?,
        };

        // A SHA that was live in this environment before is a rollback: no GitHub call needed.
        let mut rolled_back = false;
        if let Some(replaced) = &replaced_in_environment {
            if replaced.sha != deploy.sha && rows::sha_was_live_before(self.store.conn(), &deploy).await? {
                self.roll_back(replaced, &deploy, now).await?;
                rolled_back = true;
            }
        }

        let mut watched = Vec::new();
        for source in &self.sources {
            watched.extend(
                source
                    .watched(&self.store, deploy.connection_id.0, deploy.repository.key())
                    .await?,
            );
        }
        let mut result = batch::resolve(
            &self.store,
            github.as_ref(),
            &deploy.repository,
            previous.as_ref().map(|p| p.sha.as_str()),
            deploy.sha.as_str(),
            &watched,
            now,
        )
        .await
        .map_err(JobError::from)?;
        tracing::info!(
            deploy = deploy.id.0,
            watched = watched.len(),
            settled = result.answers.len(),
            github_calls = result.github_calls,
            "ancestry batch resolved"
        );

        if let (false, Some(replaced), Some(CompareStatus::Behind)) =
            (rolled_back, &replaced_in_environment, result.range_status)
        {
            self.roll_back(replaced, &deploy, now).await?;
        }

        // What it shipped (and, rolled back, took out), from the range just read.
        let shipment = shipped::read(
            &self.store,
            github.as_ref(),
            &deploy,
            replaced_in_environment.as_ref(),
            now,
            &mut result.github_calls,
        )
        .await
        .map_err(JobError::from)?;

        let live = LiveDeploy {
            id: deploy.id.0,
            connection_id: deploy.connection_id.0,
            repository: deploy.repository.as_str(),
            environment: deploy.environment.as_str(),
            sha: deploy.sha.as_str(),
            live_at: deploy.completed_at.unwrap_or(deploy.status_at),
            recorded_at: deploy.recorded_at,
        };
        for (sha, contained) in &result.answers {
            for source in &self.sources {
                source.resolved(&self.store, &live, sha, *contained).await?;
            }
        }
        if !result.unknown.is_empty() {
            tracing::warn!(unknown = ?result.unknown, "GitHub does not know some watched commits");
        }

        // What only GitHub could settle is recorded once, with the reason, and not retried.
        let skipped = (!result.needs_github.is_empty())
            .then(|| format!("{NO_APP}: {} watched commit(s) not settled", result.needs_github.len()));
        let outcome = BatchOutcome {
            state: if skipped.is_some() { "skipped" } else { "done" }.to_owned(),
            note: skipped.clone(),
            github_calls: i32::try_from(result.github_calls).unwrap_or(i32::MAX),
            updated_at: now,
        };
        // Everything the job learned, in one transaction: the batch's outcome, what the deploy
        // shipped, what that means for the delivery metrics, and the drift to recompute.
        let revert_window = chrono::Duration::hours(i64::from(connection.settings.revert_window_hours));
        let tx = self.store.begin().await?;
        facts::record_batch(&tx, deploy.id.0, &outcome).await?;
        shipment.save(&tx).await?;
        delivery::record::after_live(&tx, &deploy, shipment.shipped.as_ref(), revert_window, now).await?;
        crate::drift::enqueue_after_live(&tx, deploy.connection_id.0, &deploy.repository, deploy.id.0, now).await?;
        tx.commit().await?;
        tracing::info!(deploy = deploy.id.0, kind = shipment.kind.as_str(), "shipment recorded");
        match skipped {
            Some(reason) => Err(JobError::Skipped(reason)),
            None => Ok(()),
        }
    }

    /// `replaced` was rolled back by `target`: record it and tell the watch sources (again, if a
    /// previous attempt got that far: they are idempotent).
    async fn roll_back(&self, replaced: &Deploy, target: &Deploy, now: DateTime<Utc>) -> Result<(), JobError> {
        mark_rolled_back(&self.store, replaced, target, now).await?;
        for source in &self.sources {
            source.rolled_back(&self.store, replaced.id.0, now).await?;
        }
        Ok(())
    }
}

/// What the deploy's went-live batch did (`null` until its job ran).
pub async fn batch_outcome(store: &Store, deployment_id: i64) -> StoreResult<Option<BatchOutcome>> {
    facts::find_batch(store.conn(), deployment_id).await
}

/// `replaced` was rolled back by `target` (an older commit went live in its place).
async fn mark_rolled_back(
    store: &Store,
    replaced: &Deploy,
    target: &Deploy,
    now: DateTime<Utc>,
) -> Result<(), JobError> {
    if replaced.status == DeployStatus::RolledBack {
        return Ok(());
    }
    let at = target.completed_at.unwrap_or(target.status_at);
    let tx = store.begin().await?;
    rows::lock_environment(
        &tx,
        replaced.connection_id.0,
        replaced.repository.key(),
        replaced.environment.as_str(),
    )
    .await?;
    if record_rollback(&tx, replaced, target, at, now).await? {
        tx.commit().await?;
        tracing::info!(rolled_back = replaced.id.0, rollback = target.id.0, "rollback detected");
    }
    Ok(())
}

/// Marks `replaced` (superseded) rolled back by `target` at `at`, with the event in its history,
/// in the caller's transaction, which holds the environment's lock. `false` when `replaced` is
/// no longer superseded (a concurrent change got there first): nothing to mark.
pub(super) async fn record_rollback(
    db: &impl Writer,
    replaced: &Deploy,
    target: &Deploy,
    at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> StoreResult<bool> {
    if !rows::set_rolled_back(db, replaced.id, target.id, at, now).await? {
        return Ok(false);
    }
    delivery::record::rolled_back(db, replaced, target, at, now).await?;
    let entry = StatusEntry {
        github_status_id: None,
        state: DeployStatus::RolledBack.as_str().to_owned(),
        status: Some(DeployStatus::RolledBack),
        description: Some(format!(
            "rolled back to deployment {} ({})",
            target.id,
            target.short_sha()
        )),
        log_url: None,
        environment_url: None,
        creator: None,
        occurred_at: at,
    };
    rows::insert_status(db, replaced.id, &entry, now).await?;
    Ok(true)
}
