//! The compare API (`GET /repos/{o}/{r}/compare/{base}...{head}`) and commit lookup, with
//! GitHub's answers classified (`error.rs`). The only place that knows these endpoints' JSON.

use chrono::{DateTime, Utc};
use octocrab::Octocrab;
use serde::Deserialize;

use super::client::{record_call, record_failure};
use super::error::{classify, CallError};
use crate::events::{ListedCommit, TITLE_MAX_CHARS};
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
    /// The commits on this page (reachable from head, not from base), oldest first.
    pub commits: Vec<ListedCommit>,
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
    commits: Vec<WireListedCommit>,
}

/// A commit's parents kept (an octopus merge may have more; none of them is shown).
const MAX_PARENTS: usize = 8;

#[derive(Deserialize)]
struct WireCommit {
    sha: String,
}

#[derive(Deserialize)]
struct WireListedCommit {
    sha: String,
    #[serde(default)]
    parents: Vec<WireCommit>,
    #[serde(default)]
    commit: Option<WireGitCommit>,
    /// GitHub's account for the author email; `null` when it matches none.
    #[serde(default)]
    author: Option<WireAccount>,
}

#[derive(Deserialize)]
struct WireGitCommit {
    #[serde(default)]
    message: String,
    #[serde(default)]
    author: Option<WireGitPerson>,
}

#[derive(Deserialize)]
struct WireGitPerson {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    date: Option<String>,
}

#[derive(Deserialize)]
struct WireAccount {
    login: String,
}

impl WireListedCommit {
    /// The commit with every field checked: a SHA that is not 40 hex digits fails the page, a
    /// field that is too long or malformed is cut or dropped (it is only shown).
    fn into_listed(self) -> Result<ListedCommit, CallError> {
        let sha = full_sha(&self.sha)?;
        let parents = self
            .parents
            .into_iter()
            .take(MAX_PARENTS)
            .map(|p| full_sha(&p.sha))
            .collect::<Result<Vec<_>, _>>()?;
        let (message, person) = match self.commit {
            Some(commit) => (commit.message, commit.author),
            None => (String::new(), None),
        };
        let reverts = crate::events::Reverts::in_message(&message);
        let title: String = message
            .lines()
            .next()
            .unwrap_or("")
            .trim()
            .chars()
            .take(TITLE_MAX_CHARS)
            .collect();
        let bounded = |raw: String| {
            let value: String = raw.trim().chars().take(crate::limits::NAME_MAX_CHARS).collect();
            (!value.is_empty()).then_some(value)
        };
        let (author_name, authored_at) = match person {
            Some(p) => (
                p.name.and_then(bounded),
                p.date
                    .and_then(|d| DateTime::parse_from_rfc3339(&d).ok())
                    .map(|d| d.with_timezone(&Utc)),
            ),
            None => (None, None),
        };
        Ok(ListedCommit {
            sha,
            parents,
            title,
            author_login: self.author.map(|a| a.login).and_then(bounded),
            author_name,
            authored_at,
            reverts,
        })
    }
}

fn full_sha(raw: &str) -> Result<String, CallError> {
    if raw.len() == 40 && raw.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(raw.to_ascii_lowercase())
    } else {
        Err(CallError::Refused(format!(
            "unexpected commit sha in a compare answer: {:.60?}",
            raw
        )))
    }
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
    let endpoint = "/repos/{owner}/{repo}/compare/{basehead}";
    let response = client
        ._get(uri)
        .await
        .inspect_err(|e| record_failure(endpoint, e))
        .map_err(|e| classify(e, &what, now))?;
    record_call(endpoint, Some(response.status().as_u16()), Some(response.headers()));
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
        commits: wire
            .commits
            .into_iter()
            .map(WireListedCommit::into_listed)
            .collect::<Result<_, _>>()?,
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
    let endpoint = "/repos/{owner}/{repo}/commits/{ref}";
    let wire: WireCommit = client
        .get(route, None::<&()>)
        .await
        .inspect_err(|e| record_failure(endpoint, e))
        .map_err(|e| classify(e, &format!("{reference} in {repo}"), now))?;
    record_call(endpoint, Some(200), None);
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
