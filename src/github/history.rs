//! What GitHub kept from before shiplog was installed, read as the installation for the
//! backfill: the repositories it can see, each repository's deployments with their statuses (one
//! GraphQL call per 100) and its Actions runs. The only place that knows these endpoints' JSON.
//!
//! Everything GitHub sends passes the limits a webhook passes (`crate::limits`); a URL that is
//! not `http(s)` becomes text in the description, as in `events.rs`. One node over a limit (a
//! repository, a deployment, a status, a run) is skipped with a warning, so one hostile
//! deployment never stops its repository's backfill; an answer that is not the expected JSON is
//! refused. Every page carries the rate limit GitHub reported with it, so the caller can pace
//! itself before GitHub stops it.
//!
//! Calls are made as in `compare.rs`: only the query of GitHub's `Link: rel="next"` URL is kept,
//! and the path is rebuilt under the configured API URL, so the token is never sent elsewhere.

use chrono::{DateTime, Utc};
use octocrab::Octocrab;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use super::client::{record_call, record_failure};
use super::compare::{is_page_query, next_link};
use super::error::{brief, classify, retry_at_reset, CallError};
use super::events::{link_or_text, workflow_run_object};
use crate::events::WorkflowRun;
use crate::limits::{self, Name, Text};
use crate::types::{CommitSha, Environment, RepoName};

/// Items per page: GitHub's maximum, for REST and GraphQL alike.
pub const PER_PAGE: u32 = 100;

/// GitHub's rate limit as the last answer reported it (`x-ratelimit-limit`, `-remaining`,
/// `-reset`, `-resource`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RateLimit {
    pub limit: u32,
    pub remaining: u32,
    /// When the window resets, on GitHub's clock.
    pub reset: DateTime<Utc>,
    /// `core` for REST, `graphql` for GraphQL.
    pub resource: String,
}

/// One page of a listing.
#[derive(Clone, Debug)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// The next page: a REST next-URL query (`per_page=100&page=2`) or a GraphQL `endCursor`;
    /// `None` on the last page.
    pub next: Option<String>,
    /// `None` when the answer carried no rate-limit headers (GitHub Enterprise with limits off)
    /// or unreadable ones.
    pub rate: Option<RateLimit>,
    /// How many items the whole listing has, as GitHub counts them (REST `total_count`); `None`
    /// for GraphQL.
    pub total: Option<u64>,
}

/// A repository the installation can see.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstallationRepository {
    pub github_id: i64,
    pub name: RepoName,
    pub default_branch: Option<String>,
}

/// A deployment as GitHub kept it, with its statuses.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HistoricDeployment {
    /// GraphQL's `databaseId`: the REST and webhook id.
    pub id: i64,
    pub sha: CommitSha,
    pub git_ref: Option<String>,
    pub environment: Environment,
    pub task: Option<String>,
    pub description: Option<String>,
    pub creator: Option<String>,
    pub created_at: DateTime<Utc>,
    /// Oldest first.
    pub statuses: Vec<HistoricStatus>,
}

/// A deployment status as GitHub kept it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HistoricStatus {
    /// The REST and webhook word (`success`, `in_progress`): GraphQL's enum lower-cased.
    pub state: String,
    pub description: Option<String>,
    /// Only an absolute `http(s)` URL; anything else is a line of `description`.
    pub log_url: Option<String>,
    pub environment_url: Option<String>,
    pub creator: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// `GET /installation/repositories`: the repositories the installation can see, 100 a page.
pub async fn installation_repositories(
    client: &Octocrab,
    next: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Page<InstallationRepository>, CallError> {
    let what = "list of the installation's repositories";
    let uri = format!("/installation/repositories?{}", page_query(next)?);
    let answer = send(client, Request::Get(uri), "/installation/repositories", what, now).await?;
    let page: wire::RepositoriesPage = parse_body(&answer.body, what)?;
    let items = page
        .repositories
        .iter()
        .filter_map(|node| {
            from_node::<wire::RepositoryNode>(node)
                .and_then(wire::RepositoryNode::into_repository)
                .map_err(|problem| tracing::warn!(%problem, "a repository over shiplog's limits is skipped"))
                .ok()
        })
        .collect();
    Ok(Page {
        items,
        next: answer.next,
        rate: answer.rate,
        total: page.total_count,
    })
}

/// The GraphQL query for one page of a repository's deployments, newest first, each with its
/// (first 100) statuses.
const DEPLOYMENTS_QUERY: &str = "query($owner: String!, $name: String!, $after: String) { \
    repository(owner: $owner, name: $name) { \
    deployments(first: 100, after: $after, orderBy: {field: CREATED_AT, direction: DESC}) { \
    pageInfo { hasNextPage endCursor } \
    nodes { databaseId commitOid environment originalEnvironment task description createdAt \
    ref { name } creator { login } \
    statuses(first: 100) { nodes { state description logUrl environmentUrl createdAt creator { login } } } } } } }";

/// The nodes a GraphQL page is asked for (deployments, and statuses of each): more in an answer
/// are not read.
const PAGE_NODES: usize = 100;

/// One page (100) of `repo`'s deployments, newest first, each with its statuses, in one GraphQL
/// call; `after` is the previous page's `next`.
///
/// GraphQL answers its errors with 200: `RATE_LIMITED` is a rate limit until the reset GitHub's
/// headers name, `NOT_FOUND` is [`CallError::NotFound`], any other refuses the page (a partial
/// answer is not trusted).
pub async fn deployments(
    client: &Octocrab,
    repo: &RepoName,
    after: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Page<HistoricDeployment>, CallError> {
    let what = format!("repository {repo}");
    let (owner, name) = repo.as_str().split_once('/').unwrap_or((repo.as_str(), ""));
    let body = json!({
        "query": DEPLOYMENTS_QUERY,
        "variables": {"owner": owner, "name": name, "after": after},
    });
    let answer = send(
        client,
        Request::Post("/graphql".to_owned(), &body),
        "/graphql",
        &what,
        now,
    )
    .await?;
    let (items, next) = deployments_page(&answer.body, repo, &what).map_err(|failure| match failure {
        Failure::RateLimited => CallError::RateLimited {
            retry_at: retry_at_reset(answer.reset.clone(), answer.date.clone(), now),
        },
        Failure::Call(error) => error,
    })?;
    Ok(Page {
        items,
        next,
        rate: answer.rate,
        total: None,
    })
}

/// `GET /repos/{owner}/{repo}/actions/runs`: the repository's workflow runs, newest first, 100 a
/// page. Unfiltered on purpose: GitHub stops a filtered (`created=`) listing at 1000 runs.
pub async fn workflow_runs(
    client: &Octocrab,
    repo: &RepoName,
    next: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Page<WorkflowRun>, CallError> {
    let what = format!("repository {repo}");
    let uri = format!("/repos/{}/actions/runs?{}", repo.as_str(), page_query(next)?);
    let answer = send(
        client,
        Request::Get(uri),
        "/repos/{owner}/{repo}/actions/runs",
        &what,
        now,
    )
    .await?;
    let page: wire::RunsPage = parse_body(&answer.body, &what)?;
    let items = page
        .workflow_runs
        .iter()
        .filter_map(|run| {
            let id = run.get("id").and_then(Value::as_i64);
            workflow_run_object(run)
                .map_err(|problem| {
                    tracing::warn!(repository = %repo, run = ?id, %problem,
                        "a workflow run over shiplog's limits is skipped");
                })
                .ok()
        })
        .collect();
    Ok(Page {
        items,
        next: answer.next,
        rate: answer.rate,
        total: page.total_count,
    })
}

/// The query of a REST page: the first page, or the one a previous page's `next` named.
fn page_query(next: Option<&str>) -> Result<String, CallError> {
    let Some(next) = next else {
        return Ok(format!("per_page={PER_PAGE}"));
    };
    let query = next.split_once('?').map_or(next, |(_, query)| query);
    if !is_page_query(query) {
        return Err(CallError::Refused("the next page is not a page query".to_owned()));
    }
    Ok(query.to_owned())
}

pub(crate) enum Request<'a> {
    Get(String),
    /// A `POST` without a body.
    PostEmpty(String),
    Post(String, &'a Value),
}

/// A successful answer: its body and what its headers said.
pub(crate) struct Answer {
    pub(crate) body: String,
    pub(crate) rate: Option<RateLimit>,
    /// The query of `Link: rel="next"`.
    pub(crate) next: Option<String>,
    /// `x-ratelimit-reset` and `Date`, for a GraphQL rate limit answered with 200.
    reset: Option<String>,
    date: Option<String>,
}

/// Sends `request` (`endpoint` is its pattern, for the metrics) and reads the answer.
pub(crate) async fn send(
    client: &Octocrab,
    request: Request<'_>,
    endpoint: &'static str,
    what: &str,
    now: DateTime<Utc>,
) -> Result<Answer, CallError> {
    let response = match request {
        Request::Get(uri) => client._get(uri).await,
        Request::Post(uri, body) => client._post(uri, Some(body)).await,
        Request::PostEmpty(uri) => client._post(uri, None::<&()>).await,
    }
    .inspect_err(|e| record_failure(endpoint, e))
    .map_err(|e| classify_missing(e, what, now))?;
    record_call(endpoint, Some(response.status().as_u16()), Some(response.headers()));
    let response = octocrab::map_github_error(response)
        .await
        .map_err(|e| classify_missing(e, what, now))?;
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let rate = rate_limit(header);
    let (reset, date) = (header("x-ratelimit-reset"), header("date"));
    let next = response
        .headers()
        .get_all("link")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(next_link)
        .and_then(|url| url.split_once('?').map(|(_, query)| query.to_owned()));
    let body = client
        .body_to_string(response)
        .await
        .map_err(|e| CallError::Retryable(e.to_string()))?;
    Ok(Answer {
        body,
        rate,
        next,
        reset,
        date,
    })
}

/// [`classify`], where a 404 or 422 means the repository or installation, not a commit.
fn classify_missing(error: octocrab::Error, what: &str, now: DateTime<Utc>) -> CallError {
    match classify(error, what, now) {
        CallError::UnknownCommit(what) => CallError::NotFound(what),
        other => other,
    }
}

/// The rate limit in an answer's headers; `None` when one is missing or unreadable.
fn rate_limit(header: impl Fn(&str) -> Option<String>) -> Option<RateLimit> {
    let number = |name: &str| header(name).and_then(|v| v.trim().parse::<u32>().ok());
    Some(RateLimit {
        limit: number("x-ratelimit-limit")?,
        remaining: number("x-ratelimit-remaining")?,
        reset: header("x-ratelimit-reset")
            .and_then(|v| v.trim().parse::<i64>().ok())
            .and_then(|seconds| DateTime::from_timestamp(seconds, 0))?,
        resource: header("x-ratelimit-resource")
            .and_then(|v| Name::parse(v.trim()).ok())
            .map(Name::into_string)?,
    })
}

fn parse_body<T: DeserializeOwned>(body: &str, what: &str) -> Result<T, CallError> {
    serde_json::from_str(body).map_err(|e| CallError::Refused(brief(&format!("unexpected answer for {what}: {e}"))))
}

/// One node of a page, naming the field that did not fit.
fn from_node<T: DeserializeOwned>(node: &Value) -> Result<T, String> {
    serde_path_to_error::deserialize(node).map_err(|e| brief(&format!("{}: {}", e.path(), e.inner())))
}

#[derive(Debug)]
enum Failure {
    /// GraphQL's `RATE_LIMITED`: when to try again is in the headers.
    RateLimited,
    Call(CallError),
}

/// A GraphQL deployments answer: its deployments (hostile ones skipped) and the next cursor.
fn deployments_page(
    body: &str,
    repo: &RepoName,
    what: &str,
) -> Result<(Vec<HistoricDeployment>, Option<String>), Failure> {
    let answer: wire::GraphQlAnswer = parse_body(body, what).map_err(Failure::Call)?;
    if !answer.errors.is_empty() {
        let kind = |k: &str| answer.errors.iter().any(|e| e.kind.as_deref() == Some(k));
        return Err(if kind("RATE_LIMITED") {
            Failure::RateLimited
        } else if kind("NOT_FOUND") {
            Failure::Call(CallError::NotFound(what.to_owned()))
        } else {
            let message = answer.errors.iter().find_map(|e| e.message.as_deref());
            Failure::Call(CallError::Refused(brief(message.unwrap_or("a GraphQL error"))))
        });
    }
    let connection = answer
        .data
        .and_then(|data| data.repository)
        .map(|repository| repository.deployments);
    let Some(connection) = connection else {
        // No error and no repository: GitHub answers NOT_FOUND, but this is read the same way.
        return Err(Failure::Call(CallError::NotFound(what.to_owned())));
    };
    let next = match (connection.page_info.has_next_page, connection.page_info.end_cursor) {
        (false, _) => None,
        (true, Some(cursor)) if is_cursor(&cursor) => Some(cursor),
        (true, _) => {
            return Err(Failure::Call(CallError::Refused(format!(
                "GitHub named no usable next page of {what}"
            ))))
        }
    };
    let items = connection
        .nodes
        .iter()
        .take(PAGE_NODES)
        .filter_map(|node| {
            let id = node.get("databaseId").and_then(Value::as_i64);
            from_node::<wire::DeploymentNode>(node)
                .and_then(|node| node.into_deployment(repo))
                .map_err(|problem| {
                    tracing::warn!(repository = %repo, deployment = ?id, %problem,
                        "a deployment over shiplog's limits is skipped");
                })
                .ok()
        })
        .collect();
    Ok((items, next))
}

/// A GraphQL cursor as GitHub makes them (base64): printable ASCII, at most 255 characters, so it
/// can be stored and sent back as it is.
fn is_cursor(cursor: &str) -> bool {
    (1..=255).contains(&cursor.len()) && cursor.bytes().all(|b| b.is_ascii_graphic())
}

/// An optional name: empty is none; over the limits names `field`.
fn name(field: &str, raw: Option<String>) -> Result<Option<String>, String> {
    raw.filter(|v| !v.trim().is_empty())
        .map(|v| {
            Name::parse(&v)
                .map(Name::into_string)
                .map_err(|e| format!("{field}: {e}"))
        })
        .transpose()
}

fn text(field: &str, raw: Option<String>) -> Result<Option<String>, String> {
    raw.filter(|v| !v.trim().is_empty())
        .map(|v| {
            Text::parse(&v)
                .map(Text::into_string)
                .map_err(|e| format!("{field}: {e}"))
        })
        .transpose()
}

/// A URL within the URL limits: a link when it is `http(s)`, else a line kept for the
/// description (`unlinked`), as a webhook's.
fn url(field: &str, raw: Option<String>, unlinked: &mut Vec<String>) -> Result<Option<String>, String> {
    let Some(raw) = raw.filter(|v| !v.trim().is_empty()) else {
        return Ok(None);
    };
    limits::check_url_text(&raw).map_err(|e| format!("{field}: {e}"))?;
    Ok(link_or_text(field, raw, unlinked))
}

/// GitHub's JSON for these endpoints. Unknown fields are ignored: GitHub adds fields.
mod wire {
    use super::*;

    #[derive(Deserialize)]
    pub struct RepositoriesPage {
        #[serde(default)]
        pub total_count: Option<u64>,
        pub repositories: Vec<Value>,
    }

    #[derive(Deserialize)]
    pub struct RepositoryNode {
        pub id: i64,
        pub full_name: String,
        #[serde(default)]
        pub default_branch: Option<String>,
    }

    impl RepositoryNode {
        pub fn into_repository(self) -> Result<InstallationRepository, String> {
            Ok(InstallationRepository {
                github_id: self.id,
                name: RepoName::parse(&self.full_name).map_err(|e| format!("full_name: {e}"))?,
                default_branch: name("default_branch", self.default_branch)?,
            })
        }
    }

    #[derive(Deserialize)]
    pub struct RunsPage {
        #[serde(default)]
        pub total_count: Option<u64>,
        pub workflow_runs: Vec<Value>,
    }

    #[derive(Deserialize)]
    pub struct GraphQlAnswer {
        #[serde(default)]
        pub data: Option<Data>,
        #[serde(default)]
        pub errors: Vec<GraphQlError>,
    }

    #[derive(Deserialize)]
    pub struct GraphQlError {
        #[serde(default, rename = "type")]
        pub kind: Option<String>,
        #[serde(default)]
        pub message: Option<String>,
    }

    #[derive(Deserialize)]
    pub struct Data {
        #[serde(default)]
        pub repository: Option<Repository>,
    }

    #[derive(Deserialize)]
    pub struct Repository {
        pub deployments: Connection,
    }

    /// Nodes are kept as JSON so each is read on its own: one that does not fit is skipped.
    #[derive(Deserialize)]
    pub struct Connection {
        #[serde(rename = "pageInfo")]
        pub page_info: PageInfo,
        #[serde(default)]
        pub nodes: Vec<Value>,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct PageInfo {
        pub has_next_page: bool,
        #[serde(default)]
        pub end_cursor: Option<String>,
    }

    #[derive(Deserialize)]
    pub struct Login {
        pub login: String,
    }

    #[derive(Deserialize)]
    pub struct RefNode {
        pub name: String,
    }

    #[derive(Deserialize)]
    pub struct Statuses {
        #[serde(default)]
        pub nodes: Vec<Value>,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct DeploymentNode {
        pub database_id: Option<i64>,
        pub commit_oid: String,
        #[serde(default)]
        pub environment: Option<String>,
        #[serde(default)]
        pub original_environment: Option<String>,
        #[serde(default)]
        pub task: Option<String>,
        #[serde(default)]
        pub description: Option<String>,
        pub created_at: DateTime<Utc>,
        #[serde(default, rename = "ref")]
        pub git_ref: Option<RefNode>,
        #[serde(default)]
        pub creator: Option<Login>,
        #[serde(default)]
        pub statuses: Option<Statuses>,
    }

    impl DeploymentNode {
        pub fn into_deployment(self, repo: &RepoName) -> Result<HistoricDeployment, String> {
            let id = self.database_id.ok_or("databaseId: missing")?;
            let non_empty = |v: &String| !v.trim().is_empty();
            let environment = self
                .environment
                .filter(non_empty)
                .or(self.original_environment.filter(non_empty))
                .ok_or("environment: missing")?;
            let mut statuses: Vec<HistoricStatus> = self
                .statuses
                .map(|s| s.nodes)
                .unwrap_or_default()
                .iter()
                // What was asked for (`first: 100`), whatever a server answers.
                .take(PAGE_NODES)
                .filter_map(|node| {
                    from_node::<StatusNode>(node)
                        .and_then(StatusNode::into_status)
                        .map_err(|problem| {
                            tracing::warn!(repository = %repo, deployment = id, %problem,
                                "a deployment status over shiplog's limits is skipped");
                        })
                        .ok()
                })
                .collect();
            // GitHub lists statuses newest first; the same second keeps GitHub's order, reversed.
            statuses.reverse();
            statuses.sort_by_key(|s| s.created_at);
            Ok(HistoricDeployment {
                id,
                sha: CommitSha::parse(&self.commit_oid).map_err(|e| format!("commitOid: {e}"))?,
                git_ref: name("ref.name", self.git_ref.map(|r| r.name))?,
                // Already a `Name`: kept as GitHub spells it, as a webhook's is.
                environment: Environment::from(Name::parse(&environment).map_err(|e| format!("environment: {e}"))?),
                task: name("task", self.task)?,
                description: text("description", self.description)?,
                creator: name("creator.login", self.creator.map(|c| c.login))?,
                created_at: self.created_at,
                statuses,
            })
        }
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct StatusNode {
        pub state: String,
        #[serde(default)]
        pub description: Option<String>,
        #[serde(default)]
        pub log_url: Option<String>,
        #[serde(default)]
        pub environment_url: Option<String>,
        pub created_at: DateTime<Utc>,
        #[serde(default)]
        pub creator: Option<Login>,
    }

    impl StatusNode {
        pub fn into_status(self) -> Result<HistoricStatus, String> {
            let state = Name::parse(&self.state.to_ascii_lowercase()).map_err(|e| format!("state: {e}"))?;
            let mut unlinked = Vec::new();
            let log_url = url("log_url", self.log_url, &mut unlinked)?;
            let environment_url = url("environment_url", self.environment_url, &mut unlinked)?;
            let description = text("description", self.description)?
                .into_iter()
                .chain(unlinked)
                .reduce(|text, note| format!("{text}\n{note}"));
            Ok(HistoricStatus {
                state: state.into_string(),
                description,
                log_url,
                environment_url,
                creator: name("creator.login", self.creator.map(|c| c.login))?,
                created_at: self.created_at,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn repo() -> RepoName {
        RepoName::parse("acme/web").unwrap()
    }

    const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

    fn node(id: i64, environment: &str, statuses: Value) -> Value {
        json!({
            "databaseId": id, "commitOid": SHA, "environment": environment,
            "originalEnvironment": environment, "task": "deploy", "description": null,
            "createdAt": "2026-01-02T03:04:05Z", "ref": {"name": "main"}, "creator": {"login": "octocat"},
            "statuses": {"nodes": statuses}
        })
    }

    fn answer(nodes: Vec<Value>, next: Option<&str>) -> String {
        json!({"data": {"repository": {"deployments": {
            "pageInfo": {"hasNextPage": next.is_some(), "endCursor": next},
            "nodes": nodes
        }}}})
        .to_string()
    }

    fn page(body: &str) -> Result<(Vec<HistoricDeployment>, Option<String>), Failure> {
        deployments_page(body, &repo(), "repository acme/web")
    }

    #[test]
    fn a_deployment_node_becomes_a_historic_deployment_with_its_statuses_oldest_first() {
        let statuses = json!([
            {"state": "SUCCESS", "description": "", "logUrl": "https://ci.example/2", "environmentUrl": "",
             "createdAt": "2026-01-02T03:06:00Z", "creator": {"login": "bot"}},
            {"state": "IN_PROGRESS", "description": "started", "logUrl": null, "environmentUrl": null,
             "createdAt": "2026-01-02T03:05:00Z", "creator": null}
        ]);
        let (items, next) = page(&answer(vec![node(7, "production", statuses)], Some("Y3Vyc29yOnYyOpK5"))).unwrap();
        assert_eq!(next.as_deref(), Some("Y3Vyc29yOnYyOpK5"));
        let d = &items[0];
        assert_eq!((d.id, d.sha.as_str(), d.environment.as_str()), (7, SHA, "production"));
        assert_eq!(
            (d.git_ref.as_deref(), d.task.as_deref()),
            (Some("main"), Some("deploy"))
        );
        assert_eq!(d.creator.as_deref(), Some("octocat"));
        let states: Vec<&str> = d.statuses.iter().map(|s| s.state.as_str()).collect();
        assert_eq!(states, ["in_progress", "success"]);
        assert_eq!(d.statuses[1].log_url.as_deref(), Some("https://ci.example/2"));
        assert_eq!(
            (
                d.statuses[1].description.as_deref(),
                d.statuses[1].environment_url.as_deref()
            ),
            (None, None)
        );
        assert_eq!(d.statuses[0].creator, None);
    }

    #[test]
    fn a_hostile_deployment_is_skipped_and_a_non_http_url_becomes_text() {
        let status = |log_url: &str| {
            json!([{"state": "FAILURE", "description": "boom", "logUrl": log_url, "environmentUrl": null,
                    "createdAt": "2026-01-02T03:05:00Z", "creator": {"login": "bot"}}])
        };
        let mut not_a_sha = node(3, "staging", json!([]));
        not_a_sha["commitOid"] = json!("not a sha");
        let mut wrong_type = node(4, "staging", json!([]));
        wrong_type["databaseId"] = json!("4");
        let nodes = vec![
            node(1, &"e".repeat(300), json!([])),
            node(2, "production", status("javascript:alert(1)")),
            not_a_sha,
            wrong_type,
            Value::Null,
            node(5, "bidi\u{202E}", json!([])),
            node(6, "staging", status(&format!("https://x.example/{}", "a".repeat(3000)))),
        ];
        let (items, _) = page(&answer(nodes, None)).unwrap();
        let ids: Vec<i64> = items.iter().map(|d| d.id).collect();
        assert_eq!(ids, [2, 6]);
        let status = &items[0].statuses[0];
        assert_eq!(status.log_url, None);
        assert_eq!(
            status.description.as_deref(),
            Some("boom\nlog_url (not an http(s) URL, kept as text): javascript:alert(1)")
        );
        // A URL over the URL limits skips its status, not the deployment.
        assert!(items[1].statuses.is_empty());
    }

    #[test]
    fn graphql_errors_are_classified() {
        let rate = r#"{"errors":[{"type":"RATE_LIMITED","message":"API rate limit exceeded"}]}"#;
        assert!(matches!(page(rate), Err(Failure::RateLimited)));
        let missing = r#"{"data":{"repository":null},"errors":[{"type":"NOT_FOUND","path":["repository"],
            "message":"Could not resolve to a Repository with the name 'acme/web'."}]}"#;
        assert!(matches!(page(missing), Err(Failure::Call(CallError::NotFound(w))) if w == "repository acme/web"));
        let other = json!({"errors": [{"type": "SOMETHING", "message": "x".repeat(5000)}]}).to_string();
        let Err(Failure::Call(CallError::Refused(message))) = page(&other) else {
            panic!("not refused")
        };
        assert_eq!(message.len(), 200);
        assert!(matches!(page("<html>"), Err(Failure::Call(CallError::Refused(_)))));
        assert!(matches!(
            page(r#"{"data":{}}"#),
            Err(Failure::Call(CallError::NotFound(_)))
        ));
        let bad_cursor = answer(vec![], Some("has space"));
        assert!(matches!(page(&bad_cursor), Err(Failure::Call(CallError::Refused(_)))));
    }

    #[test]
    fn the_rate_limit_is_read_from_the_headers_and_garbage_is_none() {
        let headers = |pairs: &[(&str, &str)]| {
            let map: HashMap<String, String> = pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
            rate_limit(move |name| map.get(name).cloned())
        };
        let full = [
            ("x-ratelimit-limit", "5000"),
            ("x-ratelimit-remaining", "4321"),
            ("x-ratelimit-reset", "1767323045"),
            ("x-ratelimit-resource", "graphql"),
        ];
        let rate = headers(&full).unwrap();
        assert_eq!(
            (rate.limit, rate.remaining, rate.resource.as_str()),
            (5000, 4321, "graphql")
        );
        assert_eq!(rate.reset, DateTime::from_timestamp(1_767_323_045, 0).unwrap());
        assert_eq!(headers(&full[1..]), None);
        let mut garbage = full;
        garbage[1] = ("x-ratelimit-remaining", "-1");
        assert_eq!(headers(&garbage), None);
        garbage = full;
        garbage[2] = ("x-ratelimit-reset", "soon");
        assert_eq!(headers(&garbage), None);
    }

    #[test]
    fn a_page_query_is_taken_from_a_next_url_and_anything_else_is_refused() {
        assert_eq!(page_query(None).unwrap(), "per_page=100");
        assert_eq!(
            page_query(Some(
                "https://api.github.com/installation/repositories?per_page=100&page=2"
            ))
            .unwrap(),
            "per_page=100&page=2"
        );
        assert_eq!(page_query(Some("per_page=100&page=3")).unwrap(), "per_page=100&page=3");
        assert!(page_query(Some("page=2#/../../user")).is_err());
        assert!(page_query(Some("page=2 HTTP/1.1")).is_err());
    }

    #[test]
    fn a_repository_over_the_limits_is_skipped() {
        let good = json!({"id": 1, "full_name": "acme/web", "default_branch": "main", "private": true});
        let repo = from_node::<wire::RepositoryNode>(&good).and_then(wire::RepositoryNode::into_repository);
        assert_eq!(repo.unwrap().default_branch.as_deref(), Some("main"));
        let bad = json!({"id": 2, "full_name": "acme/../etc", "default_branch": "main"});
        let err = from_node::<wire::RepositoryNode>(&bad).and_then(wire::RepositoryNode::into_repository);
        assert!(err.unwrap_err().starts_with("full_name"));
    }
}
