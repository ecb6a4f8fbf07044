//! The compare API (`GET /repos/{o}/{r}/compare/{base}...{head}`) and commit lookup, with
//! GitHub's answers classified: the two kinds of 404, rate limits (with when to try again), and
//! faults worth retrying. The only place that knows these endpoints' JSON.

use chrono::{DateTime, Duration, Utc};
use octocrab::Octocrab;
use serde::Deserialize;

use crate::types::RepoName;

/// Commits per compare page: GitHub's maximum.
pub const PER_PAGE: u32 = 100;

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum CompareStatus {
    Ahead,
    Behind,
    Diverged,
    Identical,
}

impl CompareStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ahead => "ahead",
            Self::Behind => "behind",
            Self::Diverged => "diverged",
            Self::Identical => "identical",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "ahead" => Self::Ahead,
            "behind" => Self::Behind,
            "diverged" => Self::Diverged,
            "identical" => Self::Identical,
            _ => return None,
        })
    }

    /// `base` is an ancestor of `head` (inclusive) exactly when `head` is ahead or identical.
    pub fn base_is_ancestor(self) -> bool {
        matches!(self, Self::Ahead | Self::Identical)
    }
}

/// One page of a comparison.
#[derive(Clone, Debug)]
pub struct ComparePage {
    pub status: CompareStatus,
    pub ahead_by: i64,
    pub behind_by: i64,
    pub total_commits: i64,
    /// Full SHAs of the commits on this page (reachable from head, not from base), oldest first.
    pub commits: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("GitHub does not know {0}")]
    UnknownCommit(String),
    #[error("the commits have no common ancestor")]
    NoCommonAncestor,
    #[error("GitHub's rate limit: try again after {retry_at:?}")]
    RateLimited { retry_at: Option<DateTime<Utc>> },
    #[error("GitHub refused the installation token")]
    Unauthorized,
    #[error("GitHub could not answer now: {0}")]
    Retryable(String),
    #[error("GitHub refused the request: {0}")]
    Refused(String),
}

#[derive(Deserialize)]
struct WireComparison {
    status: String,
    ahead_by: i64,
    behind_by: i64,
    total_commits: i64,
    #[serde(default)]
    commits: Vec<WireCommit>,
}

#[derive(Deserialize)]
struct WireCommit {
    sha: String,
}

#[derive(serde::Serialize)]
struct PageParams {
    per_page: u32,
    page: u32,
}

/// One page (1-based) of `base...head`.
pub async fn compare(
    client: &Octocrab,
    repo: &RepoName,
    base: &str,
    head: &str,
    page: u32,
    now: DateTime<Utc>,
) -> Result<ComparePage, CallError> {
    let route = format!("/repos/{}/compare/{base}...{head}", repo.as_str());
    let wire: WireComparison = client
        .get(
            route,
            Some(&PageParams {
                per_page: PER_PAGE,
                page,
            }),
        )
        .await
        .map_err(|e| classify(e, &format!("{base} or {head} in {repo}"), now))?;
    let status = CompareStatus::parse(&wire.status)
        .ok_or_else(|| CallError::Refused(format!("unexpected compare status {:?}", wire.status)))?;
    Ok(ComparePage {
        status,
        ahead_by: wire.ahead_by,
        behind_by: wire.behind_by,
        total_commits: wire.total_commits,
        commits: wire.commits.into_iter().map(|c| c.sha.to_ascii_lowercase()).collect(),
    })
}

/// The full SHA of a commit named by a short SHA, a branch or a tag.
pub async fn resolve_commit(
    client: &Octocrab,
    repo: &RepoName,
    reference: &str,
    now: DateTime<Utc>,
) -> Result<String, CallError> {
    let route = format!("/repos/{}/commits/{reference}", repo.as_str());
    let wire: WireCommit = client
        .get(route, None::<&()>)
        .await
        .map_err(|e| classify(e, &format!("{reference} in {repo}"), now))?;
    Ok(wire.sha.to_ascii_lowercase())
}

pub(crate) fn classify(error: octocrab::Error, what: &str, now: DateTime<Utc>) -> CallError {
    let octocrab::Error::GitHub { source, .. } = error else {
        // Connection failures, time-outs, bodies that did not arrive: worth another try.
        return CallError::Retryable(error.to_string());
    };
    let status = source.status_code.as_u16();
    let header = |name: &str| {
        source
            .headers
            .as_ref()
            .and_then(|h| h.get(name))
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    match status {
        404 if source.message.starts_with("No common ancestor") => CallError::NoCommonAncestor,
        404 | 422 => CallError::UnknownCommit(what.to_owned()),
        401 => CallError::Unauthorized,
        403 | 429 => {
            if let Some(seconds) = header("retry-after").and_then(|v| v.trim().parse::<i64>().ok()) {
                return CallError::RateLimited {
                    retry_at: Some(now + Duration::seconds(seconds.max(0))),
                };
            }
            if header("x-ratelimit-remaining").as_deref() == Some("0") {
                let reset = header("x-ratelimit-reset")
                    .and_then(|v| v.trim().parse::<i64>().ok())
                    .and_then(|s| DateTime::from_timestamp(s, 0));
                return CallError::RateLimited { retry_at: reset };
            }
            if status == 429 || source.message.to_ascii_lowercase().contains("rate limit") {
                return CallError::RateLimited { retry_at: None };
            }
            CallError::Refused(source.message)
        }
        500..=599 => CallError::Retryable(source.message),
        _ => CallError::Refused(source.message),
    }
}
