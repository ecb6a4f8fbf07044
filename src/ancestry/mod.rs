//! Ancestry: does commit E contain commit B? Answered with GitHub's compare API `B...E` and a
//! permanent cache.
//!
//! `ahead`/`identical` mean yes, `behind`/`diverged` and "no common ancestor" mean no. For fixed
//! SHAs an answer never changes, so a definitive one is stored and never asked again; commits a
//! comparison lists are stored too, as derived facts (each is an ancestor of the head). An
//! unknown commit is an error the caller sees, never "no", and is never cached. Short SHAs and
//! refs are resolved to full SHAs first, so the cache only holds full SHAs.

pub mod batch;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::github::client::InstallationClient;
use crate::github::compare::{self, CompareStatus};
use crate::github::error::CallError;
use crate::store::ancestry as facts;
use crate::store::{Store, StoreError};
use crate::types::RepoName;

/// Where an answer came from.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Cache,
    Github,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[schema(as = AncestryAnswer)]
pub struct Answer {
    pub is_ancestor: bool,
    /// The compare status (`ahead|behind|identical|diverged`): `ahead` for a fact derived from a
    /// comparison's commit list (every commit listed is behind the compared head); `null` only
    /// when the two commits share no history.
    pub status: Option<&'static str>,
    pub source: Source,
    /// Full SHAs.
    pub ancestor: String,
    pub descendant: String,
}

#[derive(Debug, thiserror::Error)]
pub enum AncestryError {
    #[error("the GitHub App is not configured: set GITHUB_APP_ID and GITHUB_APP_PRIVATE_KEY_PATH")]
    NotConfigured,
    #[error("{0:?} is not a commit SHA or ref")]
    InvalidReference(String),
    #[error("unknown commit: {0}")]
    UnknownCommit(String),
    #[error("GitHub's rate limit is exhausted{}", crate::github::error::try_again_after(*.retry_at))]
    RateLimited { retry_at: Option<DateTime<Utc>> },
    #[error("GitHub could not answer: {0}")]
    Unavailable(String),
    #[error("GitHub refused: {0}")]
    Refused(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<CallError> for AncestryError {
    fn from(error: CallError) -> Self {
        match error {
            CallError::UnknownCommit(what) => Self::UnknownCommit(what),
            CallError::NotFound(what) => Self::Refused(format!("GitHub has no {what}")),
            CallError::RateLimited { retry_at } => Self::RateLimited { retry_at },
            CallError::Retryable(message) => Self::Unavailable(message),
            CallError::Unauthorized => Self::Refused("GitHub refused the installation token".to_owned()),
            CallError::Refused(message) => Self::Refused(message),
            // Classified before conversion; here only for completeness.
            CallError::NoCommonAncestor => Self::Refused("no common ancestor".to_owned()),
        }
    }
}

/// A job that needed GitHub's answer: a rate limit retries at the reset, a malformed reference
/// never succeeds, anything else is retried with backoff.
impl From<AncestryError> for crate::jobs::runner::JobError {
    fn from(error: AncestryError) -> Self {
        match error {
            AncestryError::RateLimited { retry_at } => Self::Retry {
                message: error.to_string(),
                retry_at,
            },
            AncestryError::InvalidReference(_) => Self::Permanent(error.to_string()),
            other => Self::retry(other.to_string()),
        }
    }
}

/// A commit-ish as a client may give it: a SHA (any case, 7–40 hex) or a ref name.
pub fn parse_reference(raw: &str) -> Result<String, AncestryError> {
    let value = raw.trim();
    let valid = !value.is_empty()
        && value.len() <= 255
        && !value.contains("..")
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'));
    if !valid {
        return Err(AncestryError::InvalidReference(raw.to_owned()));
    }
    Ok(if is_full_sha(value) {
        value.to_ascii_lowercase()
    } else {
        value.to_owned()
    })
}

fn is_full_sha(value: &str) -> bool {
    value.len() == 40 && value.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The full SHA of `reference` (asking GitHub unless it already is one).
pub async fn resolve(
    github: &InstallationClient<'_>,
    repo: &RepoName,
    reference: &str,
    now: DateTime<Utc>,
) -> Result<String, AncestryError> {
    if is_full_sha(reference) {
        return Ok(reference.to_ascii_lowercase());
    }
    Ok(github
        .call(now, |client| async move {
            compare::resolve_commit(&client, repo, reference, now).await
        })
        .await?)
}

/// Is `ancestor` an ancestor of `descendant` (inclusive) in `repo`?
pub async fn is_ancestor(
    store: &Store,
    github: Option<&InstallationClient<'_>>,
    repo: &RepoName,
    ancestor: &str,
    descendant: &str,
    now: DateTime<Utc>,
) -> Result<Answer, AncestryError> {
    let ancestor = parse_reference(ancestor)?;
    let descendant = parse_reference(descendant)?;
    if is_full_sha(&ancestor) && is_full_sha(&descendant) {
        if let Some(answer) = cached(store, repo, &ancestor, &descendant).await? {
            return Ok(answer);
        }
    }
    let github = github.ok_or(AncestryError::NotConfigured)?;
    let ancestor = resolve(github, repo, &ancestor, now).await?;
    let descendant = resolve(github, repo, &descendant, now).await?;
    if let Some(answer) = cached(store, repo, &ancestor, &descendant).await? {
        return Ok(answer);
    }
    let (is_ancestor, status) = compare_and_remember(store, github, repo, &ancestor, &descendant, now).await?;
    Ok(Answer {
        is_ancestor,
        status: status.map(CompareStatus::as_str),
        source: Source::Github,
        ancestor,
        descendant,
    })
}

/// One comparison, with its answer and the commits it lists stored as facts.
pub(crate) async fn compare_and_remember(
    store: &Store,
    github: &InstallationClient<'_>,
    repo: &RepoName,
    ancestor: &str,
    descendant: &str,
    now: DateTime<Utc>,
) -> Result<(bool, Option<CompareStatus>), AncestryError> {
    let (is_ancestor, status, listed) = compare_once(github, repo, ancestor, descendant, now).await?;
    let mut new_facts: Vec<(String, String, bool, Option<&str>, &str)> = vec![(
        ancestor.to_owned(),
        descendant.to_owned(),
        is_ancestor,
        status.map(CompareStatus::as_str),
        "compare",
    )];
    new_facts.extend(
        listed
            .into_iter()
            .map(|c| (c, descendant.to_owned(), true, None, "derived")),
    );
    let tx = store.begin().await?;
    facts::insert_missing(&tx, repo.key(), &new_facts, now).await?;
    tx.commit().await?;
    Ok((is_ancestor, status))
}

/// One comparison: the answer, the status (none when there is no common ancestor) and the
/// commits the first page lists (each an ancestor of `descendant`).
async fn compare_once(
    github: &InstallationClient<'_>,
    repo: &RepoName,
    ancestor: &str,
    descendant: &str,
    now: DateTime<Utc>,
) -> Result<(bool, Option<CompareStatus>, Vec<String>), AncestryError> {
    let page = github
        .call(now, |client| async move {
            match compare::compare(&client, repo, ancestor, descendant, None, now).await {
                Err(CallError::NoCommonAncestor) => Ok(None),
                other => other.map(Some),
            }
        })
        .await?;
    Ok(match page {
        Some(page) => (
            page.status.base_is_ancestor(),
            Some(page.status),
            page.commits.into_iter().map(|c| c.sha).collect(),
        ),
        None => (false, None, Vec::new()),
    })
}

async fn cached(
    store: &Store,
    repo: &RepoName,
    ancestor: &str,
    descendant: &str,
) -> Result<Option<Answer>, AncestryError> {
    if ancestor == descendant {
        return Ok(Some(Answer {
            is_ancestor: true,
            status: Some(CompareStatus::Identical.as_str()),
            source: Source::Cache,
            ancestor: ancestor.to_owned(),
            descendant: descendant.to_owned(),
        }));
    }
    let Some(fact) = facts::find(store.conn(), repo.key(), ancestor, descendant).await? else {
        return Ok(None);
    };
    let status = match fact.status.as_deref().and_then(CompareStatus::parse) {
        Some(status) => Some(status.as_str()),
        // Derived from a comparison's commit list: a listed commit is a proper ancestor of the
        // head (equal SHAs were answered above), so the descendant is ahead of it.
        None if fact.is_ancestor => Some(CompareStatus::Ahead.as_str()),
        None => None,
    };
    Ok(Some(Answer {
        is_ancestor: fact.is_ancestor,
        status,
        source: Source::Cache,
        ancestor: ancestor.to_owned(),
        descendant: descendant.to_owned(),
    }))
}
