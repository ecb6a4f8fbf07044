//! What the backfill reads, in GitHub's wire format, from what a test registers:
//! `GET /installation/repositories` and `GET /repos/{o}/{r}/actions/runs` (paged, newest runs
//! first, `Link` with `next`/`last`), and `POST /graphql` for a repository's deployments (100 a
//! page, newest first, opaque base64 cursors, GraphQL's errors answered with 200). Every answer
//! carries rate-limit headers (`core` or `graphql`) counted with the rest of the fake's calls.

use std::collections::HashMap;
use std::sync::Mutex;

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};

use super::{gate_as, github_error, rate_headers_for, rate_now, FakeGitHub, FakeState, PageQuery, Resource};

/// GraphQL's largest page, the one the client asks for.
const GRAPHQL_PAGE: usize = 100;

#[derive(Default)]
pub(super) struct HistoryState {
    /// The installation's repositories, in the order registered: (id, full name, default branch).
    repos: Mutex<Vec<(u64, String, String)>>,
    /// By lower-cased full name.
    deployments: Mutex<HashMap<String, Vec<FakeDeployment>>>,
    runs: Mutex<HashMap<String, Vec<Value>>>,
}

/// A deployment GitHub kept. `FakeDeployment::new(..).status("success", at)`.
#[derive(Clone, Debug)]
pub struct FakeDeployment {
    pub id: i64,
    pub sha: String,
    pub environment: String,
    pub git_ref: Option<String>,
    pub task: String,
    pub description: Option<String>,
    pub creator: Option<String>,
    pub created_at: DateTime<Utc>,
    /// (state as REST and webhooks spell it, when, `log_url`), in the order they were made.
    pub statuses: Vec<(String, DateTime<Utc>, Option<String>)>,
}

impl FakeDeployment {
    pub fn new(id: i64, sha: &str, environment: &str, created_at: DateTime<Utc>) -> Self {
        Self {
            id,
            sha: sha.to_owned(),
            environment: environment.to_owned(),
            git_ref: Some("main".to_owned()),
            task: "deploy".to_owned(),
            description: None,
            creator: Some("octocat".to_owned()),
            created_at,
            statuses: Vec::new(),
        }
    }

    pub fn status(mut self, state: &str, at: DateTime<Utc>) -> Self {
        self.statuses.push((state.to_owned(), at, None));
        self
    }

    pub fn status_with_log(mut self, state: &str, at: DateTime<Utc>, log_url: &str) -> Self {
        self.statuses.push((state.to_owned(), at, Some(log_url.to_owned())));
        self
    }
}

/// A full workflow run object, as `GET /repos/{o}/{r}/actions/runs` lists it (the shape of a
/// `workflow_run` delivery's run), completed with success; change its fields as a test needs.
pub fn workflow_run(repo: &str, id: i64, head_sha: &str, created_at: DateTime<Utc>) -> Value {
    let (owner, name) = repo.split_once('/').unwrap();
    let at = created_at.to_rfc3339_opts(SecondsFormat::Secs, true);
    let api = format!("https://api.github.com/repos/{repo}/actions/runs/{id}");
    let user = |login: &str| json!({"login": login, "id": 15669918, "node_id": "MDQ6VXNlcjE1NjY5OTE4", "type": "User", "site_admin": false});
    json!({
        "id": id, "name": "Deploy", "node_id": format!("WFR_{id}"), "head_branch": "main", "head_sha": head_sha,
        "path": ".github/workflows/deploy.yml", "display_title": format!("Deploy {}", &head_sha[..7]),
        "run_number": id % 100_000, "run_attempt": 1, "event": "push", "status": "completed", "conclusion": "success",
        "workflow_id": 2823525, "check_suite_id": 1291536064, "url": api, "html_url": format!("https://github.com/{repo}/actions/runs/{id}"),
        "pull_requests": [], "created_at": at, "updated_at": at, "run_started_at": at,
        "jobs_url": format!("{api}/jobs"), "logs_url": format!("{api}/logs"), "previous_attempt_url": null,
        "workflow_url": format!("https://api.github.com/repos/{repo}/actions/workflows/2823525"),
        "actor": user("octocat"), "triggering_actor": user("octocat"),
        "head_commit": {"id": head_sha, "tree_id": head_sha, "message": "deploy", "timestamp": at,
            "author": {"name": "Octo Cat", "email": "octocat@example.com"},
            "committer": {"name": "GitHub", "email": "noreply@github.com"}},
        "repository": repository_json(700_000_001, repo, "main"),
        "head_repository": {"id": 700_000_001, "name": name, "full_name": repo, "owner": {"login": owner}},
    })
}

impl FakeGitHub {
    /// A repository of the installation, listed by `GET /installation/repositories`; its id.
    pub fn add_history_repo(&self, full_name: &str, default_branch: &str) -> u64 {
        let mut ids = self.state.repo_ids.lock().unwrap();
        let id = 700_000_001 + ids.len() as u64;
        ids.insert(id, full_name.to_ascii_lowercase());
        self.state
            .history
            .repos
            .lock()
            .unwrap()
            .push((id, full_name.to_owned(), default_branch.to_owned()));
        id
    }

    /// `count` repositories `owner/repo-01`, `owner/repo-02`, … on `main`; their names.
    pub fn add_history_repos(&self, owner: &str, count: usize) -> Vec<String> {
        (1..=count)
            .map(|n| {
                let name = format!("{owner}/repo-{n:02}");
                self.add_history_repo(&name, "main");
                name
            })
            .collect()
    }

    /// `repo` stays in the installation's listing but is gone for every other call: GraphQL
    /// answers `NOT_FOUND`, REST 404 (a repository deleted or renamed while a backfill reads).
    pub fn lose_history_repo(&self, repo: &str) {
        let key = repo.to_ascii_lowercase();
        self.state.repo_ids.lock().unwrap().retain(|_, name| *name != key);
        self.state.history.deployments.lock().unwrap().remove(&key);
    }

    pub fn add_deployment(&self, repo: &str, deployment: FakeDeployment) {
        self.state
            .history
            .deployments
            .lock()
            .unwrap()
            .entry(repo.to_ascii_lowercase())
            .or_default()
            .push(deployment);
    }

    /// A run object (see [`workflow_run`]); its `repository.id` becomes the fake's id for `repo`.
    pub fn add_run(&self, repo: &str, mut run: Value) {
        if let Some(id) = repo_id(&self.state, repo) {
            run["repository"]["id"] = json!(id);
        }
        self.state
            .history
            .runs
            .lock()
            .unwrap()
            .entry(repo.to_ascii_lowercase())
            .or_default()
            .push(run);
    }
}

pub(super) fn routes(config: &mut web::ServiceConfig) {
    config
        .route("/installation/repositories", web::get().to(installation_repositories))
        .route("/graphql", web::post().to(graphql))
        .route("/repos/{owner}/{repo}/actions/runs", web::get().to(runs))
        .route("/repositories/{id}/actions/runs", web::get().to(runs_by_id));
}

fn repo_id(state: &FakeState, full_name: &str) -> Option<u64> {
    let key = full_name.to_ascii_lowercase();
    state
        .repo_ids
        .lock()
        .unwrap()
        .iter()
        .find(|(_, name)| **name == key)
        .map(|(id, _)| *id)
}

fn repository_json(id: u64, full_name: &str, default_branch: &str) -> Value {
    let (owner, name) = full_name.split_once('/').unwrap();
    json!({
        "id": id, "node_id": format!("R_{id}"), "name": name, "full_name": full_name, "private": true,
        "owner": {"login": owner, "id": 41548062, "type": "Organization", "site_admin": false},
        "html_url": format!("https://github.com/{full_name}"), "description": null, "fork": false,
        "url": format!("https://api.github.com/repos/{full_name}"), "default_branch": default_branch,
        "visibility": "private", "archived": false, "disabled": false,
    })
}

/// `per_page` (GitHub's default 30, at most 100) and `page` (from 1) of a REST listing.
fn paging(query: &PageQuery) -> (usize, usize) {
    (
        query.per_page.unwrap_or(30).clamp(1, 100),
        query.page.unwrap_or(1).max(1),
    )
}

/// A REST listing's page with its `Link` header (`prev`, `next`, `last`, `first`, as GitHub
/// sends them) pointing at `path` on this server, and the rate limit as it now stands.
fn listing(
    state: &FakeState,
    req: &HttpRequest,
    path: &str,
    query: &PageQuery,
    total: usize,
    body: Value,
) -> HttpResponse {
    let (per_page, page) = paging(query);
    let pages = total.div_ceil(per_page).max(1);
    let base_url = format!("http://{}", req.connection_info().host());
    let link = |p: usize, rel: &str| format!("<{base_url}{path}?per_page={per_page}&page={p}>; rel=\"{rel}\"");
    let mut links = Vec::new();
    if page > 1 {
        links.push(link(page - 1, "prev"));
    }
    if page < pages {
        links.push(link(page + 1, "next"));
        links.push(link(pages, "last"));
    }
    if page > 1 {
        links.push(link(1, "first"));
    }
    let mut builder = HttpResponse::Ok();
    let (limit, remaining, reset) = rate_now(state, Resource::Core);
    rate_headers_for(&mut builder, limit, remaining, reset, Resource::Core);
    if !links.is_empty() {
        builder.insert_header(("link", links.join(", ")));
    }
    builder.json(body)
}

/// `GET /installation/repositories`.
async fn installation_repositories(
    state: web::Data<FakeState>,
    req: HttpRequest,
    query: web::Query<PageQuery>,
) -> HttpResponse {
    if let Some(refused) = gate_as(&state, &req, Resource::Core) {
        return refused;
    }
    let repos = state.history.repos.lock().unwrap().clone();
    let (per_page, page) = paging(&query);
    let items: Vec<Value> = repos
        .iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .map(|(id, name, branch)| repository_json(*id, name, branch))
        .collect();
    let body = json!({"total_count": repos.len(), "repository_selection": "all", "repositories": items});
    listing(&state, &req, "/installation/repositories", &query, repos.len(), body)
}

/// `GET /repositories/{id}/actions/runs`: where the runs' `Link` headers point.
async fn runs_by_id(
    state: web::Data<FakeState>,
    req: HttpRequest,
    path: web::Path<u64>,
    query: web::Query<PageQuery>,
) -> HttpResponse {
    let id = path.into_inner();
    let name = state.repo_ids.lock().unwrap().get(&id).cloned();
    runs_of(&state, &req, name, &query)
}

/// `GET /repos/{owner}/{repo}/actions/runs`.
async fn runs(
    state: web::Data<FakeState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    query: web::Query<PageQuery>,
) -> HttpResponse {
    let (owner, repo) = path.into_inner();
    runs_of(&state, &req, Some(format!("{owner}/{repo}")), &query)
}

fn runs_of(state: &FakeState, req: &HttpRequest, repo: Option<String>, query: &PageQuery) -> HttpResponse {
    if let Some(refused) = gate_as(state, req, Resource::Core) {
        return refused;
    }
    let docs = "https://docs.github.com/rest/actions/workflow-runs#list-workflow-runs-for-a-repository";
    let Some((repo, id)) = repo.and_then(|r| repo_id(state, &r).map(|id| (r, id))) else {
        return github_error(404, "Not Found", docs);
    };
    let mut runs = state
        .history
        .runs
        .lock()
        .unwrap()
        .get(&repo.to_ascii_lowercase())
        .cloned()
        .unwrap_or_default();
    // Newest first; RFC 3339 times in UTC sort as text.
    runs.sort_by(|a, b| {
        let key = |r: &Value| (r["created_at"].as_str().unwrap_or("").to_owned(), r["id"].as_i64());
        key(b).cmp(&key(a))
    });
    let (per_page, page) = paging(query);
    let items: Vec<Value> = runs
        .iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .cloned()
        .collect();
    let body = json!({"total_count": runs.len(), "workflow_runs": items});
    listing(
        state,
        req,
        &format!("/repositories/{id}/actions/runs"),
        query,
        runs.len(),
        body,
    )
}

/// `POST /graphql`: `repository(owner, name) { deployments(first: 100, after, newest first) }`.
async fn graphql(state: web::Data<FakeState>, req: HttpRequest, body: web::Json<Value>) -> HttpResponse {
    if let Some(refused) = gate_as(&state, &req, Resource::GraphQl) {
        return refused;
    }
    let answer = |body: Value| {
        let mut builder = HttpResponse::Ok();
        let (limit, remaining, reset) = rate_now(&state, Resource::GraphQl);
        rate_headers_for(&mut builder, limit, remaining, reset, Resource::GraphQl);
        builder.json(body)
    };
    let variables = &body["variables"];
    let (Some(owner), Some(name)) = (variables["owner"].as_str(), variables["name"].as_str()) else {
        return answer(
            json!({"errors": [{"message": "Variable $owner of type String! was provided invalid value",
            "locations": [{"line": 1, "column": 7}]}]}),
        );
    };
    let full_name = format!("{owner}/{name}").to_ascii_lowercase();
    let mut all = state.history.deployments.lock().unwrap();
    let known = all.contains_key(&full_name) || repo_id(&state, &full_name).is_some();
    if !known {
        return answer(
            json!({"data": {"repository": null}, "errors": [{"type": "NOT_FOUND", "path": ["repository"],
            "locations": [{"line": 1, "column": 74}],
            "message": format!("Could not resolve to a Repository with the name '{owner}/{name}'.")}]}),
        );
    }
    let deployments = all.entry(full_name).or_default();
    deployments.sort_by_key(|d| std::cmp::Reverse((d.created_at, d.id)));
    let start = match variables["after"].as_str() {
        None => 0,
        Some(after) => {
            let position = decode_cursor(after).and_then(|id| deployments.iter().position(|d| d.id == id));
            let Some(position) = position else {
                return answer(
                    json!({"data": {"repository": null}, "errors": [{"type": "INVALID_CURSOR_ARGUMENTS",
                    "path": ["repository", "deployments"], "locations": [{"line": 1, "column": 110}],
                    "message": format!("`{after}` does not appear to be a valid cursor.")}]}),
                );
            };
            position + 1
        }
    };
    let page: Vec<&FakeDeployment> = deployments.iter().skip(start).take(GRAPHQL_PAGE).collect();
    let has_next = start + page.len() < deployments.len();
    let end_cursor = page.last().map(|d| encode_cursor(d.id));
    let nodes: Vec<Value> = page.iter().map(|d| deployment_node(d)).collect();
    drop(all);
    answer(json!({"data": {"repository": {"deployments": {
        "pageInfo": {"hasNextPage": has_next, "endCursor": end_cursor},
        "nodes": nodes
    }}}}))
}

fn time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A deployment node as GitHub's GraphQL answers it; statuses newest first, at most 100.
fn deployment_node(d: &FakeDeployment) -> Value {
    let statuses: Vec<Value> = d
        .statuses
        .iter()
        .rev()
        .take(100)
        .map(|(state, at, log_url)| {
            json!({"state": state.to_ascii_uppercase(), "description": "", "logUrl": log_url,
                "environmentUrl": "", "createdAt": time(*at), "creator": {"login": "github-actions[bot]"}})
        })
        .collect();
    json!({
        "databaseId": d.id, "commitOid": d.sha, "environment": d.environment,
        "originalEnvironment": d.environment, "task": d.task, "description": d.description,
        "createdAt": time(d.created_at), "ref": d.git_ref.as_ref().map(|name| json!({"name": name})),
        "creator": d.creator.as_ref().map(|login| json!({"login": login})),
        "statuses": {"nodes": statuses}
    })
}

/// An opaque cursor like GitHub's (`Y3Vyc29yOnYyOpK5…` is base64 for `cursor:v2:…`): here it
/// names the last deployment of the page.
fn encode_cursor(id: i64) -> String {
    base64(format!("cursor:v2:{id}").as_bytes())
}

fn decode_cursor(cursor: &str) -> Option<i64> {
    String::from_utf8(unbase64(cursor)?)
        .ok()?
        .strip_prefix("cursor:v2:")?
        .parse()
        .ok()
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn base64(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn unbase64(text: &str) -> Option<Vec<u8>> {
    let digits: Vec<u32> = text
        .trim_end_matches('=')
        .bytes()
        .map(|c| ALPHABET.iter().position(|a| *a == c).map(|p| p as u32))
        .collect::<Option<_>>()?;
    let mut out = Vec::new();
    for chunk in digits.chunks(4) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, d)| n | d << (18 - 6 * i));
        for i in 0..chunk.len().saturating_sub(1) {
            out.push((n >> (16 - 8 * i)) as u8);
        }
    }
    Some(out)
}
