//! The `deploy.went_live` job: what a deploy that went live brings, and whether it rolled back.
//!
//! It settles the repository's watched commits in one batch (`ancestry::batch`), starting from the
//! deploy it replaced in the same environment (else the repository's previous live deploy), and
//! tells each watch source. When the replaced deploy's sha contains the new one (compare says
//! `behind`), the replaced deploy becomes `rolled_back` with `rollback_target_id` pointing at the
//! new deploy, and the event is kept in its status history.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use serde_json::Value;

use super::{Deploy, DeployStatus, StatusEntry};
use crate::ancestry::batch::{self, LiveDeploy, WatchSource};
use crate::ancestry::{AncestryError, GitHubAccess};
use crate::connections;
use crate::github::app::GitHubApp;
use crate::github::compare::CompareStatus;
use crate::jobs::runner::{JobError, JobHandler};
use crate::store::deployments as rows;
use crate::store::Store;
use crate::types::RepoName;

pub struct WentLive {
    pub store: Store,
    pub github: Option<GitHubApp>,
    pub sources: Vec<Arc<dyn WatchSource>>,
}

impl JobHandler for WentLive {
    fn run<'a>(&'a self, payload: &'a Value, now: DateTime<Utc>, _attempt: i32) -> BoxFuture<'a, Result<(), JobError>> {
        Box::pin(self.process(payload, now))
    }
}

impl WentLive {
    async fn process(&self, payload: &Value, now: DateTime<Utc>) -> Result<(), JobError> {
        let id = payload["deployment_id"]
            .as_i64()
            .ok_or_else(|| JobError::Permanent("payload has no deployment_id".into()))?;
        let Some(deploy) = rows::find(self.store.conn(), id).await? else {
            return Err(JobError::Permanent(format!("deployment {id} does not exist")));
        };
        let connection = connections::get(&self.store, deploy.connection_id)
            .await?
            .ok_or_else(|| JobError::Permanent(format!("connection {} does not exist", deploy.connection_id)))?;
        let app = self.github.as_ref().ok_or_else(|| JobError::Retry {
            message: "the GitHub App is not configured (GITHUB_APP_ID, GITHUB_APP_PRIVATE_KEY_PATH)".into(),
            retry_at: Some(now + chrono::Duration::hours(1)),
        })?;
        let github = GitHubAccess {
            app,
            installation: connection.installation_id,
        };
        let repo = RepoName::parse(&deploy.repository).map_err(JobError::Permanent)?;

        let replaced_in_environment = match payload["previous_live_ids"]
            .as_array()
            .and_then(|ids| ids.first())
            .and_then(Value::as_i64)
        {
            Some(previous) => rows::find(self.store.conn(), previous).await?,
            None => None,
        };
        let previous = match &replaced_in_environment {
            Some(replaced) => Some(replaced.clone()),
            None => rows::previous_live_in_repository(self.store.conn(), &deploy).await?,
        };

        let mut watched = Vec::new();
        for source in &self.sources {
            watched.extend(
                source
                    .watched(&self.store, deploy.connection_id, &deploy.repository_key)
                    .await?,
            );
        }
        let result = batch::resolve(
            &self.store,
            &github,
            &repo,
            previous.as_ref().map(|p| p.sha.as_str()),
            &deploy.sha,
            &watched,
            now,
        )
        .await
        .map_err(job_error)?;
        tracing::info!(
            deploy = deploy.id,
            watched = watched.len(),
            settled = result.answers.len(),
            github_calls = result.github_calls,
            "ancestry batch resolved"
        );

        if let (Some(replaced), Some(CompareStatus::Behind)) = (&replaced_in_environment, result.range_status) {
            mark_rolled_back(&self.store, replaced, &deploy, now).await?;
            for source in &self.sources {
                source.rolled_back(&self.store, replaced.id, now).await?;
            }
        }

        let live = LiveDeploy {
            id: deploy.id,
            connection_id: deploy.connection_id,
            repository: &deploy.repository,
            environment: &deploy.environment,
            sha: &deploy.sha,
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
        Ok(())
    }
}

fn job_error(error: AncestryError) -> JobError {
    match error {
        AncestryError::RateLimited { retry_at } => JobError::Retry {
            message: error.to_string(),
            retry_at,
        },
        AncestryError::InvalidReference(_) => JobError::Permanent(error.to_string()),
        other => JobError::retry(other.to_string()),
    }
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
        replaced.connection_id,
        &replaced.repository_key,
        &replaced.environment,
    )
    .await?;
    if !rows::set_rolled_back(&tx, replaced.id, target.id, at, now).await? {
        // No longer superseded (a concurrent change got there first): nothing to mark.
        return Ok(());
    }
    let entry = StatusEntry {
        github_status_id: None,
        state: DeployStatus::RolledBack.as_str().to_owned(),
        status: Some(DeployStatus::RolledBack),
        description: Some(format!(
            "rolled back to deployment {} ({})",
            target.id,
            &target.sha[..target.sha.len().min(7)]
        )),
        log_url: None,
        environment_url: None,
        creator: None,
        occurred_at: at,
    };
    rows::insert_status(&tx, replaced.id, &entry, now).await?;
    tx.commit().await?;
    tracing::info!(rolled_back = replaced.id, rollback = target.id, "rollback detected");
    Ok(())
}
