//! The compare API (`GET /repos/{o}/{r}/compare/{base}...{head}`) and commit lookup, with
//! GitHub's answers classified (`error.rs`). The only place that knows these endpoints' JSON.

use chrono::{DateTime, Utc};
use octocrab::Octocrab;
use serde::Deserialize;

use super::error::{classify, CallError};
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
    /// The next page's URL, from GitHub's `Link` header; `None` on the last page.
    pub next: Option<String>,
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

/// One page of `base...head`: the first when `next` is `None`, else the page GitHub's
/// `Link: rel="next"` named on the page before.
///
/// Only the query of GitHub's next URL is used (its cursor: `per_page`, `page`); the path stays
/// this repository's compare route under the configured API URL, so the installation token is
/// only ever sent there and a GitHub Enterprise base path is kept.
pub async fn compare(
    client: &Octocrab,
    repo: &RepoName,
    base: &str,
    head: &str,
    next: Option<&str>,
    now: DateTime<Utc>,
) -> Result<ComparePage, CallError> {
    let what = format!("{base} or {head} in {repo}");
    let query = next
        .and_then(|url| url.split_once('?'))
        .map_or_else(|| format!("per_page={PER_PAGE}"), |(_, query)| query.to_owned());
    let uri = format!("/repos/{}/compare/{base}...{head}?{query}", repo.as_str());
    let response = client._get(uri).await.map_err(|e| classify(e, &what, now))?;
    let response = octocrab::map_github_error(response)
        .await
        .map_err(|e| classify(e, &what, now))?;
    let next = response
        .headers()
        .get_all("link")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(next_link);
    let body = client
        .body_to_string(response)
        .await
        .map_err(|e| CallError::Retryable(e.to_string()))?;
    let wire: WireComparison =
        serde_json::from_str(&body).map_err(|e| CallError::Refused(format!("unexpected compare answer: {e}")))?;
    let status = CompareStatus::parse(&wire.status)
        .ok_or_else(|| CallError::Refused(format!("unexpected compare status {:?}", wire.status)))?;
    Ok(ComparePage {
        status,
        ahead_by: wire.ahead_by,
        behind_by: wire.behind_by,
        total_commits: wire.total_commits,
        commits: wire.commits.into_iter().map(|c| c.sha.to_ascii_lowercase()).collect(),
        next,
    })
}

/// The `rel="next"` URL of a `Link` header (`<url>; rel="next", <url>; rel="last"`), if it has
/// a query made of URL-safe characters.
pub(crate) fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|part| {
        let (url, params) = part.trim().split_once(';')?;
        let is_next = params
            .split(';')
            .any(|p| matches!(p.trim(), "rel=\"next\"" | "rel=next"));
        let url = url.trim().strip_prefix('<')?.strip_suffix('>')?;
        let (_, query) = url.split_once('?')?;
        (is_next && is_page_query(query)).then(|| url.to_owned())
    })
}

/// A query made only of URL-safe characters (`per_page=100&page=2`): safe to put back in a URI.
pub(crate) fn is_page_query(query: &str) -> bool {
    !query.is_empty()
        && query
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"=&-_.~%+".contains(&b))
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

#[cfg(test)]
mod tests {
    use super::next_link;

    #[test]
    fn the_next_page_is_read_from_the_link_header() {
        let header = "<https://api.github.com/repositories/1/compare/a...b?per_page=100&page=2>; rel=\"next\", \
                      <https://api.github.com/repositories/1/compare/a...b?per_page=100&page=3>; rel=\"last\"";
        assert_eq!(
            next_link(header).as_deref(),
            Some("https://api.github.com/repositories/1/compare/a...b?per_page=100&page=2")
        );
        let last = "<https://api.github.com/x?page=1>; rel=\"first\", <https://api.github.com/x?page=2>; rel=\"prev\"";
        assert_eq!(next_link(last), None);
        assert_eq!(next_link("<https://api.github.com/x?page=2#/../y>; rel=\"next\""), None);
    }
}
