//! Deploy monitoring, starting with what it watches: merged pull requests.
//!
//! A `pull_request` closed with `merged: true` records the PR (number, title, author, merge
//! commit, merge time). A PR closed without merging also carries a `merge_commit_sha` (GitHub's
//! test merge), so only `merged` decides. Plans, opt-in, activation and checks build on this.

pub mod opt_in;
pub mod plans;
pub mod request;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::connections::{self, Applied};
use crate::events::GitHubPullRequest;
use crate::store::pull_requests as rows;
use crate::store::{StoreResult, Writer};
use crate::types::{CommitSha, InstallationId, RepoName};

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MergedPullRequest {
    pub connection_id: i64,
    pub repository: RepoName,
    pub number: i64,
    pub title: String,
    pub author: Option<String>,
    pub merge_commit_sha: CommitSha,
    pub merged_at: DateTime<Utc>,
    /// When it was opened (a later issue's lead time starts there when no commit time is known).
    pub created_at: Option<DateTime<Utc>>,
}

/// A `pull_request` closed event. Call inside the delivery's transaction.
pub async fn record_closed_pull_request(
    db: &impl Writer,
    installation_id: InstallationId,
    pr: &GitHubPullRequest,
    now: DateTime<Utc>,
) -> StoreResult<Applied> {
    let connection =
        match connections::for_repository_event(db, installation_id, &pr.owner, &pr.repository, now).await? {
            Ok(connection) => connection,
            Err(skipped) => return Ok(skipped),
        };
    let skip = |reason: String| {
        Ok(Applied::Skipped {
            connection_id: connection.id,
            reason,
        })
    };
    if !pr.merged {
        return skip(format!("pull request #{} was closed without merging", pr.number));
    }
    let Some(merge_commit_sha) = pr.merge_commit_sha.clone().filter(CommitSha::is_full) else {
        return skip(format!("pull request #{} has no merge commit", pr.number));
    };
    let merged = MergedPullRequest {
        connection_id: connection.id,
        repository: pr.repository.name.clone(),
        number: pr.number,
        title: pr.title.clone(),
        author: pr.author.clone(),
        merge_commit_sha,
        merged_at: pr.merged_at.unwrap_or(now),
        created_at: pr.created_at,
    };
    if !rows::insert(db, &merged, now).await? {
        return skip(format!("pull request #{} is recorded already", pr.number));
    }
    plans::pull_request_merged(db, connection.id, merged.repository.key(), merged.number, now).await?;
    Ok(Applied::Changed {
        connection_id: connection.id,
    })
}
