//! Batch resolution: when a deploy goes live, settle every watched commit of its repository
//! together.
//!
//! One comparison `previous...new` (paginated, 100 commits a page) lists every commit the new
//! deploy has that the previous one lacks: a watched commit in that list is contained. When the
//! previous deploy is an ancestor of the new one, commits known to be in the previous deploy are
//! contained too. Only what is left is compared one by one. So a deploy costs at most
//! `1 + ⌈new commits / 100⌉ + (watched commits outside the range)` GitHub calls, however many
//! watched commits the range settles.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;

use super::{compare_and_remember, AncestryError, GitHubAccess};
use crate::github::compare::{self, CallError, CompareStatus, PER_PAGE};
use crate::store::ancestry as facts;
use crate::store::{Store, StoreResult};
use crate::types::RepoName;

/// The deploy a batch resolves against, as watch sources see it.
#[derive(Clone, Debug)]
pub struct LiveDeploy<'a> {
    pub id: i64,
    pub connection_id: i64,
    pub repository: &'a str,
    pub environment: &'a str,
    pub sha: &'a str,
    pub live_at: DateTime<Utc>,
    /// When shiplog first recorded the deploy.
    pub recorded_at: DateTime<Utc>,
}

/// Who waits for commits to go live (deploy monitoring plans, post-deploy triggers).
///
/// `resolved` may be called more than once for the same deploy and commit (a job that is run
/// again after its worker died), so it must be idempotent.
pub trait WatchSource: Send + Sync {
    /// Full SHAs this source waits to see live in the repository (its key: lower-case `owner/repo`).
    fn watched<'a>(
        &'a self,
        store: &'a Store,
        connection_id: i64,
        repository_key: &'a str,
    ) -> BoxFuture<'a, StoreResult<Vec<String>>>;
    /// Whether `deploy` contains `sha`.
    fn resolved<'a>(
        &'a self,
        store: &'a Store,
        deploy: &'a LiveDeploy<'a>,
        sha: &'a str,
        contained: bool,
    ) -> BoxFuture<'a, StoreResult<()>>;
    /// The deploy `deployment_id` was rolled back: what it brought has left its environment.
    fn rolled_back<'a>(
        &'a self,
        _store: &'a Store,
        _deployment_id: i64,
        _now: DateTime<Utc>,
    ) -> BoxFuture<'a, StoreResult<()>> {
        Box::pin(async { Ok(()) })
    }
}

/// The result of a batch.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Batch {
    /// Each watched commit and whether the new deploy contains it.
    pub answers: BTreeMap<String, bool>,
    /// Watched commits GitHub does not know (left for a later try, never "no").
    pub unknown: Vec<String>,
    /// How `previous...new` compared, when there was a previous deploy and they share history.
    pub range_status: Option<CompareStatus>,
    /// GitHub API calls this batch made (token minting not included).
    pub github_calls: u32,
}

/// Settles `watched` against `new_sha`, starting from the previous live deploy's `previous`.
pub async fn resolve(
    store: &Store,
    github: &GitHubAccess<'_>,
    repo: &RepoName,
    previous: Option<&str>,
    new_sha: &str,
    watched: &[String],
    now: DateTime<Utc>,
) -> Result<Batch, AncestryError> {
    let mut batch = Batch::default();
    let mut pending: BTreeSet<String> = watched.iter().map(|s| s.to_ascii_lowercase()).collect();
    if pending.remove(new_sha) {
        batch.answers.insert(new_sha.to_owned(), true);
    }

    // What the cache already knows.
    let candidates: Vec<String> = pending.iter().cloned().collect();
    for (sha, is_ancestor) in facts::answers_for(store.conn(), repo.key(), new_sha, &candidates).await? {
        pending.remove(&sha);
        batch.answers.insert(sha, is_ancestor);
    }

    // One comparison across the range the new deploy brings.
    if let Some(previous) = previous.map(str::to_ascii_lowercase).filter(|p| p != new_sha) {
        if let Some((status, listed)) =
            compare_range(github, repo, &previous, new_sha, now, &mut batch.github_calls).await?
        {
            batch.range_status = Some(status);
            let mut new_facts: Vec<(String, String, bool, Option<&str>, &str)> = vec![(
                previous.clone(),
                new_sha.to_owned(),
                status.base_is_ancestor(),
                Some(status.as_str()),
                "compare",
            )];
            for sha in &listed {
                new_facts.push((sha.clone(), new_sha.to_owned(), true, None, "derived"));
                if pending.remove(sha) {
                    batch.answers.insert(sha.clone(), true);
                }
            }
            if status.base_is_ancestor() {
                // What the previous deploy contained, the new one contains too.
                let candidates: Vec<String> = pending.iter().cloned().collect();
                for sha in facts::known_ancestors(store.conn(), repo.key(), &previous, &candidates).await? {
                    pending.remove(&sha);
                    new_facts.push((sha.clone(), new_sha.to_owned(), true, None, "derived"));
                    batch.answers.insert(sha, true);
                }
            }
            facts::insert_missing(store.conn(), repo.key(), &new_facts, now).await?;
        }
    }

    // The rest, one comparison each.
    for sha in pending {
        batch.github_calls += 1;
        match compare_and_remember(store, github, repo, &sha, new_sha, now).await {
            Ok((is_ancestor, _)) => {
                batch.answers.insert(sha, is_ancestor);
            }
            Err(AncestryError::UnknownCommit(_)) => batch.unknown.push(sha),
            Err(other) => return Err(other),
        }
    }
    Ok(batch)
}

/// Every page of `base...head`: the status and all commits listed, or `None` when the two have
/// no common ancestor.
async fn compare_range(
    github: &GitHubAccess<'_>,
    repo: &RepoName,
    base: &str,
    head: &str,
    now: DateTime<Utc>,
    calls: &mut u32,
) -> Result<Option<(CompareStatus, Vec<String>)>, AncestryError> {
    let mut listed = Vec::new();
    let mut page_number = 1;
    loop {
        *calls += 1;
        let page = github
            .call(now, |client| async move {
                match compare::compare(&client, repo, base, head, page_number, now).await {
                    Err(CallError::NoCommonAncestor) => Ok(None),
                    other => other.map(Some),
                }
            })
            .await?;
        let Some(page) = page else { return Ok(None) };
        let short_page = page.commits.len() < PER_PAGE as usize;
        listed.extend(page.commits);
        if short_page || listed.len() as i64 >= page.total_commits {
            return Ok(Some((page.status, listed)));
        }
        page_number += 1;
    }
}

/// Commits in `from` that `to` lacks: what left an environment when `from` was rolled back to
/// `to`. Downstream features use it to tell which pull requests are no longer deployed there.
pub async fn commits_left(
    github: &GitHubAccess<'_>,
    repo: &RepoName,
    from: &str,
    to: &str,
    now: DateTime<Utc>,
) -> Result<Vec<String>, AncestryError> {
    let mut calls = 0;
    Ok(compare_range(github, repo, to, from, now, &mut calls)
        .await?
        .map(|(_, listed)| listed)
        .unwrap_or_default())
}
