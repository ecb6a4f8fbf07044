//! Drift between neighbouring environments: what the left one of a pair runs that the right one
//! does not yet (staging → production), as pull requests and loose commits.
//!
//! Neighbours are consecutive environments, in the connection's environment order
//! (`connections::environments::order`), among the repository's environments that have a live
//! deploy. A pair's drift is the range `right...left` (`ancestry::batch::listing`): the commits
//! `left` has that `right` lacks (`ahead_by`) and the other way (`behind_by`). `in_sync` when
//! `left` has nothing `right` lacks and the other way; `ahead` when only `left` has more;
//! `diverged` when `right` has commits `left` lacks (a hotfix deployed only to the right);
//! `unrelated` when the two share no history; `unread` when the range is not stored and there is
//! no GitHub App to read it (or GitHub does not know a SHA).
//!
//! The `drift.recompute` job computes a repository's pairs and stores one row each
//! (`store::drift`); it is queued when a deploy goes live in a repository with two or more live
//! environments (`deploys::live`) and for every such repository of a connection when its
//! `environment_order` or `production_environments` changes. A range is read from GitHub once
//! and then from rows, so recomputing the same SHAs costs no GitHub call. Readers
//! ([`view`], the board) never call GitHub.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};

use crate::ancestry::batch;
use crate::ancestry::AncestryError;
use crate::connections::environments::{self, Placed};
use crate::connections::{self, ConnectionSettings};
use crate::github::app::GitHubApp;
use crate::github::client::InstallationClient;
use crate::github::compare::CompareStatus;
use crate::jobs::runner::{JobError, JobHandler};
use crate::jobs::{self, BackgroundJob};
use crate::shipped::changes::{self, Changes};
use crate::store::drift::{self as rows, DriftRow, LiveEnd};
use crate::store::{pull_requests, Conn, Store, StoreResult, Writer};
use crate::types::RepoName;

pub mod view;

/// The job: recompute a repository's drift from its live deploys as they are when it runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecomputeDrift {
    pub connection_id: i64,
    pub repository: String,
}

impl BackgroundJob for RecomputeDrift {
    const JOB_NAME: &'static str = "drift.recompute";
}

/// How a pair stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DriftState {
    InSync,
    Ahead,
    Diverged,
    Unrelated,
    Unread,
}

impl DriftState {
    pub const ALL: [Self; 5] = [Self::InSync, Self::Ahead, Self::Diverged, Self::Unrelated, Self::Unread];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::InSync => "in_sync",
            Self::Ahead => "ahead",
            Self::Diverged => "diverged",
            Self::Unrelated => "unrelated",
            Self::Unread => "unread",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }

    /// The state a complete listing's compare status gives.
    fn of(status: Option<&str>) -> Self {
        match status {
            Some("unrelated") => Self::Unrelated,
            Some(raw) => match CompareStatus::parse(raw) {
                Some(CompareStatus::Identical) => Self::InSync,
                Some(CompareStatus::Ahead) => Self::Ahead,
                Some(CompareStatus::Behind | CompareStatus::Diverged) => Self::Diverged,
                None => Self::Unread,
            },
            None => Self::Unread,
        }
    }
}

/// Why a pair is `unread` without the App, as recorded on the row and the skipped job.
const NO_APP: &str = "the GitHub App is not configured (GITHUB_APP_ID, GITHUB_APP_PRIVATE_KEY_PATH)";

/// What a pair's range says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Measured {
    pub state: DriftState,
    pub ahead_by: i64,
    pub behind_by: i64,
    /// The commits `left` has that `right` lacks, as pull requests and loose commits.
    pub changes: Changes,
    pub note: Option<String>,
}

impl Measured {
    fn plain(state: DriftState, note: Option<String>) -> Self {
        Self {
            state,
            ahead_by: 0,
            behind_by: 0,
            changes: Changes::default(),
            note,
        }
    }
}

/// The repository's environments that have a live deploy, left to right, each with its live
/// deploy (the most recently live one, should an environment have two for a moment).
pub async fn live_environments(
    db: &impl Conn,
    settings: &ConnectionSettings,
    connection_id: i64,
    repository: &RepoName,
) -> StoreResult<Vec<LiveEnd>> {
    let mut by_environment: BTreeMap<String, LiveEnd> = BTreeMap::new();
    for end in rows::live_ends(db, connection_id, repository.key()).await? {
        by_environment.entry(end.environment.clone()).or_insert(end);
    }
    let placed: Vec<Placed> = by_environment
        .values()
        .map(|end| Placed {
            name: end.environment.clone(),
            production_flag: end.production_environment,
        })
        .collect();
    Ok(environments::order(settings, &placed)
        .into_iter()
        .filter_map(|name| by_environment.remove(&name))
        .collect())
}

/// Consecutive environments: `(left, right)`, code travelling from left to right.
pub fn neighbours(ends: &[LiveEnd]) -> Vec<(&LiveEnd, &LiveEnd)> {
    ends.windows(2).map(|pair| (&pair[0], &pair[1])).collect()
}

/// The drift of `left` over `right`: the range `right...left`, read from GitHub to its end when
/// `github` is given and it is not stored complete, else from rows. Counts GitHub calls in
/// `calls`.
#[allow(clippy::too_many_arguments)]
pub async fn measure(
    store: &Store,
    github: Option<&InstallationClient<'_>>,
    connection_id: i64,
    repository: &RepoName,
    left: &str,
    right: &str,
    now: DateTime<Utc>,
    calls: &mut u32,
) -> Result<Measured, AncestryError> {
    if left.eq_ignore_ascii_case(right) {
        return Ok(Measured::plain(DriftState::InSync, None));
    }
    let listing = match batch::listing(store, github, repository, right, left, now, calls).await {
        Ok(listing) => listing,
        Err(AncestryError::UnknownCommit(what)) => {
            return Ok(Measured::plain(
                DriftState::Unread,
                Some(format!("GitHub does not know {what}")),
            ))
        }
        Err(other) => return Err(other),
    };
    let unread_note = || match github {
        Some(_) => "the comparison is not stored".to_owned(),
        None => NO_APP.to_owned(),
    };
    let Some(listing) = listing.filter(|l| l.complete) else {
        return Ok(Measured::plain(DriftState::Unread, Some(unread_note())));
    };
    let state = DriftState::of(listing.status.as_deref());
    if matches!(state, DriftState::Unrelated | DriftState::Unread) {
        return Ok(Measured::plain(state, None));
    }
    let shas: Vec<String> = listing.commits.iter().map(|c| c.sha.clone()).collect();
    let merged = pull_requests::merged_as(store.conn(), connection_id, repository.key(), &shas).await?;
    let changes = changes::group(&listing.commits, &merged);
    Ok(Measured {
        state,
        ahead_by: listing.ahead_by.unwrap_or(shas.len() as i64),
        behind_by: listing.behind_by.unwrap_or(0),
        changes,
        note: None,
    })
}

/// Queues a recompute after `deployment_id` went live, when it is still live and the repository
/// has live deploys in two or more environments (else it has no pairs). A deploy superseded
/// before its job ran leaves the recompute to its successor's job, so a burst of deploys to one
/// environment costs one recompute. Call in the transaction that records the went-live job's
/// outcome. The key names the deploy: each deploy going live recomputes once.
pub async fn enqueue_after_live(
    db: &impl Writer,
    connection_id: i64,
    repository: &RepoName,
    deployment_id: i64,
    now: DateTime<Utc>,
) -> StoreResult<bool> {
    let ends = rows::live_ends(db, connection_id, repository.key()).await?;
    let environments: HashSet<&str> = ends.iter().map(|e| e.environment.as_str()).collect();
    if environments.len() < 2 || !ends.iter().any(|e| e.deployment_id == deployment_id) {
        return Ok(false);
    }
    let job = RecomputeDrift {
        connection_id,
        repository: repository.as_str().to_owned(),
    };
    let key = format!("drift.recompute:{connection_id}:{}:{deployment_id}", repository.key());
    jobs::enqueue(db, &job, Some(key), now, now).await
}

/// Queues a recompute of each of the connection's repositories that has pairs (its environment
/// order changed). Returns how many were queued. No dedupe key: each change is its own event.
pub async fn enqueue_for_connection(db: &impl Writer, connection_id: i64, now: DateTime<Utc>) -> StoreResult<usize> {
    let repositories = rows::repositories_with_pairs(db, connection_id).await?;
    for repository in &repositories {
        let job = RecomputeDrift {
            connection_id,
            repository: repository.clone(),
        };
        jobs::enqueue(db, &job, None, now, now).await?;
    }
    Ok(repositories.len())
}

/// Does a settings change move environments (so drift pairs may change)?
pub fn order_changed(before: &ConnectionSettings, after: &ConnectionSettings) -> bool {
    before.environment_order != after.environment_order
        || before.production_environments != after.production_environments
}

/// Runs [`RecomputeDrift`] jobs.
pub struct Recompute {
    pub store: Store,
    pub github: Option<GitHubApp>,
}

impl JobHandler<RecomputeDrift> for Recompute {
    fn run(&self, job: RecomputeDrift, now: DateTime<Utc>, _attempt: i32) -> BoxFuture<'_, Result<(), JobError>> {
        Box::pin(async move { self.process(&job, now).await })
    }
}

impl Recompute {
    async fn process(&self, job: &RecomputeDrift, now: DateTime<Utc>) -> Result<(), JobError> {
        let repository = RepoName::parse(&job.repository)
            .map_err(|m| JobError::Permanent(format!("repository {:?}: {m}", job.repository)))?;
        let connection = connections::get(&self.store, job.connection_id)
            .await?
            .ok_or_else(|| JobError::Permanent(format!("connection {} does not exist", job.connection_id)))?;
        let github = self.github.as_ref().map(|app| InstallationClient {
            app,
            installation: connection.installation_id,
        });
        let ends = live_environments(self.store.conn(), &connection.settings, connection.id, &repository).await?;
        let mut calls = 0;
        let mut unread = 0;
        let mut keep = Vec::new();
        for (left, right) in neighbours(&ends) {
            let measured = measure(
                &self.store,
                github.as_ref(),
                connection.id,
                &repository,
                &left.sha,
                &right.sha,
                now,
                &mut calls,
            )
            .await
            .map_err(JobError::from)?;
            if measured.state == DriftState::Unread {
                unread += 1;
            }
            let row = DriftRow {
                connection_id: connection.id,
                repository: repository.as_str().to_owned(),
                repository_key: repository.key().to_owned(),
                from_environment: left.environment.clone(),
                to_environment: right.environment.clone(),
                from_deployment_id: Some(left.deployment_id),
                to_deployment_id: Some(right.deployment_id),
                from_sha: left.sha.clone(),
                to_sha: right.sha.clone(),
                state: measured.state.as_str().to_owned(),
                ahead_by: measured.ahead_by,
                behind_by: measured.behind_by,
                pull_requests: measured.changes.pull_requests.len() as i64,
                oldest_merged_at: measured.changes.oldest_merged_at(),
                note: measured.note,
                computed_at: now,
            };
            // Each pair is stored as it is known: a retry after a rate limit keeps what was done.
            let tx = self.store.begin().await?;
            rows::save(&tx, &row).await?;
            tx.commit().await?;
            keep.push((left.environment.clone(), right.environment.clone()));
        }
        let tx = self.store.begin().await?;
        rows::remove_others(&tx, connection.id, repository.key(), &keep).await?;
        tx.commit().await?;
        tracing::info!(
            repository = %repository,
            pairs = keep.len(),
            unread,
            github_calls = calls,
            "drift recomputed"
        );
        if github.is_none() && unread > 0 {
            return Err(JobError::Skipped(format!(
                "{NO_APP}: {unread} pair(s) of {repository} not read"
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_reads_back_as_itself_and_compare_statuses_map_to_states() {
        for state in DriftState::ALL {
            assert_eq!(DriftState::parse(state.as_str()), Some(state));
            assert_eq!(serde_json::to_value(state).unwrap(), state.as_str());
        }
        assert_eq!(DriftState::parse("pending"), None);
        assert_eq!(DriftState::of(Some("identical")), DriftState::InSync);
        assert_eq!(DriftState::of(Some("ahead")), DriftState::Ahead);
        assert_eq!(DriftState::of(Some("behind")), DriftState::Diverged);
        assert_eq!(DriftState::of(Some("diverged")), DriftState::Diverged);
        assert_eq!(DriftState::of(Some("unrelated")), DriftState::Unrelated);
        assert_eq!(DriftState::of(Some("sideways")), DriftState::Unread);
        assert_eq!(DriftState::of(None), DriftState::Unread);
    }

    #[test]
    fn neighbours_are_consecutive_environments() {
        let end = |name: &str| LiveEnd {
            deployment_id: 1,
            environment: name.to_owned(),
            sha: "a".repeat(40),
            production_environment: false,
        };
        let ends = [end("dev"), end("staging"), end("production")];
        let names: Vec<(&str, &str)> = neighbours(&ends)
            .into_iter()
            .map(|(l, r)| (l.environment.as_str(), r.environment.as_str()))
            .collect();
        assert_eq!(names, [("dev", "staging"), ("staging", "production")]);
        assert!(neighbours(&ends[..1]).is_empty());
    }
}
