//! Batch resolution: when a deploy goes live, settle every watched commit of its repository
//! together.
//!
//! One comparison `previous...new` (100 commits a page, followed through GitHub's `Link`
//! headers) lists every commit the new deploy has that the previous one lacks: a watched commit
//! in that list is contained. A commit the list lacks is contained exactly when the previous
//! deploy contains it and the new deploy is ahead of the previous one, so what the cache knows
//! of the previous deploy carries over: "not contained" always, "contained" when ahead. Only
//! what is left is compared one by one. So a deploy costs at most
//! `⌈new commits / 100⌉ + (watched commits outside the range the cache cannot answer)` GitHub
//! calls, however many watched commits the range settles; an unmerged watch costs one compare
//! once, not one per deploy.
//!
//! Pages and answers are stored as they arrive (`compare_range` holds where the next page is),
//! so a retry after a rate limit continues where the last attempt stopped.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};

use super::{compare_and_remember, AncestryError};
use crate::github::client::InstallationClient;
use crate::github::compare::{self, CompareStatus};
use crate::github::error::CallError;
use crate::store::ancestry::{self as facts, RangeProgress};
use crate::store::commits::{self, RangeListing};
use crate::store::Store;
use crate::types::RepoName;

/// The result of a batch.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Batch {
    /// Each watched commit and whether the new deploy contains it.
    pub answers: BTreeMap<String, bool>,
    /// Watched commits GitHub does not know (left for a later try, never "no").
    pub unknown: Vec<String>,
    /// Watched commits only GitHub could settle, left unsettled because there is no GitHub App.
    pub needs_github: Vec<String>,
    /// How `previous...new` compared, when there was a previous deploy and they share history.
    pub range_status: Option<CompareStatus>,
    /// GitHub API calls this batch made (token minting not included).
    pub github_calls: u32,
}

/// What is known of the range `previous...new`.
enum Range {
    /// Every page was read: each listed commit is stored as a derived fact of the head.
    Listed(CompareStatus),
    /// No common ancestor.
    Unrelated,
    /// Not (completely) read, and no GitHub to read it with.
    Unread,
}

const UNRELATED: &str = "unrelated";

/// Settles `watched` against `new_sha`, starting from the previous live deploy's `previous`.
///
/// Everything an attempt learns is stored as it arrives: each page of the range with its
/// commits (and where the next page is), each single comparison. So an attempt that GitHub
/// stops half-way (a rate limit) is continued by the next one without asking for anything
/// twice. Without a GitHub App (`github` is `None`) only the cache answers, and what only
/// GitHub could settle is returned in [`Batch::needs_github`].
pub async fn resolve(
    store: &Store,
    github: Option<&InstallationClient<'_>>,
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
    settle_from_cache(store, repo, new_sha, &mut pending, &mut batch).await?;

    // One comparison across the range the new deploy brings.
    if let Some(previous) = previous.map(str::to_ascii_lowercase).filter(|p| p != new_sha) {
        let range = match github {
            Some(github) => read_range(store, github, repo, &previous, new_sha, now, &mut batch.github_calls).await?,
            None => stored_range(store, repo, &previous, new_sha).await?,
        };
        if let Range::Listed(status) = range {
            batch.range_status = Some(status);
            // The listed commits are facts of the new deploy now.
            settle_from_cache(store, repo, new_sha, &mut pending, &mut batch).await?;
            // A commit the listing lacks is in the new deploy exactly when it is in the previous
            // one and the previous one is in the new one: what the cache knows of the previous
            // deploy carries over, a "no" always, a "yes" when the new deploy is ahead.
            let candidates: Vec<String> = pending.iter().cloned().collect();
            let tx = store.begin().await?;
            let mut carried: Vec<(String, bool)> = facts::known_non_ancestors(&tx, repo.key(), &previous, &candidates)
                .await?
                .into_iter()
                .map(|sha| (sha, false))
                .collect();
            if status.base_is_ancestor() {
                carried.extend(
                    facts::known_ancestors(&tx, repo.key(), &previous, &candidates)
                        .await?
                        .into_iter()
                        .map(|sha| (sha, true)),
                );
            }
            let new_facts: Vec<(String, String, bool, Option<&str>, &str)> = carried
                .iter()
                .map(|(sha, yes)| (sha.clone(), new_sha.to_owned(), *yes, None, "derived"))
                .collect();
            facts::insert_missing(&tx, repo.key(), &new_facts, now).await?;
            tx.commit().await?;
            for (sha, yes) in carried {
                pending.remove(&sha);
                batch.answers.insert(sha, yes);
            }
        }
    }

    // The rest, one comparison each (each stored as soon as GitHub answers).
    let Some(github) = github else {
        batch.needs_github = pending.into_iter().collect();
        return Ok(batch);
    };
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

/// Moves what the cache knows about `pending` in `new_sha` into the batch's answers.
async fn settle_from_cache(
    store: &Store,
    repo: &RepoName,
    new_sha: &str,
    pending: &mut BTreeSet<String>,
    batch: &mut Batch,
) -> Result<(), AncestryError> {
    let candidates: Vec<String> = pending.iter().cloned().collect();
    for (sha, is_ancestor) in facts::answers_for(store.conn(), repo.key(), new_sha, &candidates).await? {
        pending.remove(&sha);
        batch.answers.insert(sha, is_ancestor);
    }
    Ok(())
}

/// The range as stored, without asking GitHub.
async fn stored_range(store: &Store, repo: &RepoName, base: &str, head: &str) -> Result<Range, AncestryError> {
    let progress = facts::find_range(store.conn(), repo.key(), base, head)
        .await?
        .unwrap_or_default();
    Ok(range_of(&progress))
}

fn range_of(progress: &RangeProgress) -> Range {
    if !progress.complete {
        return Range::Unread;
    }
    match progress.status.as_deref().and_then(CompareStatus::parse) {
        Some(status) => Range::Listed(status),
        None => Range::Unrelated,
    }
}

/// Reads `base...head` to its end, page by page through GitHub's `Link` headers, from where the
/// stored progress stopped. Each page's commits are stored with the progress in one transaction.
async fn read_range(
    store: &Store,
    github: &InstallationClient<'_>,
    repo: &RepoName,
    base: &str,
    head: &str,
    now: DateTime<Utc>,
    calls: &mut u32,
) -> Result<Range, AncestryError> {
    let mut progress = facts::find_range(store.conn(), repo.key(), base, head)
        .await?
        .unwrap_or_default();
    while !progress.complete {
        *calls += 1;
        let next = progress.next_url.as_deref();
        let page = github
            .call(now, |client| async move {
                match compare::compare(&client, repo, base, head, next, now).await {
                    Err(CallError::NoCommonAncestor) => Ok(None),
                    other => other.map(Some),
                }
            })
            .await?;
        let mut new_facts: Vec<(String, String, bool, Option<&str>, &str)> = Vec::new();
        let listed_page;
        match page {
            None => {
                progress = RangeProgress {
                    status: Some(UNRELATED.to_owned()),
                    next_url: None,
                    listed: 0,
                    complete: true,
                    ahead_by: None,
                    behind_by: None,
                };
                listed_page = Vec::new();
            }
            Some(page) => {
                new_facts.push((
                    base.to_owned(),
                    head.to_owned(),
                    page.status.base_is_ancestor(),
                    Some(page.status.as_str()),
                    "compare",
                ));
                progress.listed += page.commits.len() as i64;
                new_facts.extend(
                    page.commits
                        .iter()
                        .map(|c| (c.sha.clone(), head.to_owned(), true, None, "derived")),
                );
                progress.status = Some(page.status.as_str().to_owned());
                progress.complete = page.next.is_none();
                progress.next_url = page.next;
                progress.ahead_by = Some(page.ahead_by);
                progress.behind_by = Some(page.behind_by);
                listed_page = page.commits;
            }
        }
        let tx = store.begin().await?;
        facts::insert_missing(&tx, repo.key(), &new_facts, now).await?;
        facts::save_range(&tx, repo.key(), base, head, &progress, &listed_page, now).await?;
        tx.commit().await?;
    }
    Ok(range_of(&progress))
}

/// The listing of `base...head` (every commit `head` has that `base` lacks, with its details),
/// read from GitHub to its end first when `github` is given and the stored listing is not
/// complete; else what is stored. `None` when nothing of it is stored and there is no GitHub to
/// ask. Each page read is stored as it arrives (a pair is asked once, ever), and counted in
/// `calls`.
pub async fn listing(
    store: &Store,
    github: Option<&InstallationClient<'_>>,
    repo: &RepoName,
    base: &str,
    head: &str,
    now: DateTime<Utc>,
    calls: &mut u32,
) -> Result<Option<RangeListing>, AncestryError> {
    if let Some(github) = github {
        read_range(store, github, repo, base, head, now, calls).await?;
    }
    Ok(commits::range_listing(store.conn(), repo.key(), base, head).await?)
}

/// Commits in `from` that `to` lacks: what left an environment when `from` was rolled back to
/// `to`. Downstream features use it to tell which pull requests are no longer deployed there.
pub async fn commits_left(
    github: &InstallationClient<'_>,
    repo: &RepoName,
    from: &str,
    to: &str,
    now: DateTime<Utc>,
) -> Result<Vec<String>, AncestryError> {
    let mut listed = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let cursor = next.as_deref();
        let page = github
            .call(now, |client| async move {
                match compare::compare(&client, repo, to, from, cursor, now).await {
                    Err(CallError::NoCommonAncestor) => Ok(None),
                    other => other.map(Some),
                }
            })
            .await?;
        let Some(page) = page else { return Ok(Vec::new()) };
        listed.extend(page.commits.into_iter().map(|c| c.sha));
        match page.next {
            Some(url) => next = Some(url),
            None => return Ok(listed),
        }
    }
}
