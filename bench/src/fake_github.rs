//! A minimal fake GitHub for the backfill figure: what a backfill reads, in GitHub's wire format,
//! generated on the fly — 20 repositories of an installation, each with 500 deployments (one or
//! two statuses each) spread over the last 60 days, and no Actions runs. Every call is counted.
//!
//! It is a benchmark's stand-in, not a test double: the App JWT is not verified, and nothing is
//! faulted or rate limited (the rate-limit headers report a limit far above what the run uses,
//! so the backfill's reserve never makes it wait). The server's own tests have the strict fake
//! (tests/api/fake_github).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use actix_web::dev::ServerHandle;
use actix_web::{web, HttpRequest, HttpResponse, HttpResponseBuilder, HttpServer};
use anyhow::Context;
use serde_json::{json, Value};

use crate::payload::{self, ENVIRONMENTS};

/// The installation the fake serves (any installation id is answered as this one).
pub const INSTALLATION_ID: i64 = 61_000_002;
pub const OWNER: &str = "bench-history";
pub const REPOSITORIES: u64 = 20;
pub const DEPLOYMENTS_PER_REPOSITORY: u64 = 500;
/// The deployments are spread over this many days back from the fake's start.
const SPREAD_DAYS: u64 = 60;
/// GitHub's largest page, for REST and GraphQL alike.
const PAGE: u64 = 100;
/// Reported in `x-ratelimit-limit`: far above the run's calls, so the 20 % reserve never waits.
const RATE_LIMIT: u64 = 1_000_000;

/// Calls the fake answered, by endpoint.
#[derive(Default)]
pub struct Calls {
    pub tokens: AtomicU64,
    pub repositories: AtomicU64,
    pub graphql: AtomicU64,
    pub runs: AtomicU64,
    pub other: AtomicU64,
}

impl Calls {
    /// Every call, token mints included.
    pub fn total(&self) -> u64 {
        [&self.tokens, &self.repositories, &self.graphql, &self.runs, &self.other]
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .sum()
    }
}

struct State {
    /// Unix seconds when the fake started: the deployments are dated back from here, so every
    /// page of one run agrees.
    now: u64,
    calls: Arc<Calls>,
}

pub struct FakeGitHub {
    pub url: String,
    pub calls: Arc<Calls>,
    handle: ServerHandle,
}

impl FakeGitHub {
    /// Starts the fake on a free loopback port, on a thread (and actix system) of its own so it
    /// does not share the benchmark's runtime.
    pub fn start() -> anyhow::Result<Self> {
        let calls = Arc::new(Calls::default());
        let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
        let state = web::Data::new(State {
            now,
            calls: calls.clone(),
        });
        let (ready, started) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("fake-github".to_owned())
            .spawn(move || {
                actix_web::rt::System::new().block_on(async move {
                    let server = HttpServer::new(move || {
                        actix_web::App::new()
                            .app_data(state.clone())
                            .app_data(web::JsonConfig::default().limit(1 << 20))
                            .route("/app/installations/{id}/access_tokens", web::post().to(mint_token))
                            .route("/installation/repositories", web::get().to(installation_repositories))
                            .route("/graphql", web::post().to(graphql))
                            .route("/repos/{owner}/{repo}/actions/runs", web::get().to(runs))
                            .default_service(web::to(not_found))
                    })
                    .workers(1)
                    .bind("127.0.0.1:0");
                    let server = match server {
                        Ok(server) => server,
                        Err(error) => {
                            let _ = ready.send(Err(error));
                            return;
                        }
                    };
                    let port = server.addrs().first().map_or(0, |a| a.port());
                    let server = server.run();
                    let _ = ready.send(Ok((port, server.handle())));
                    let _ = server.await;
                });
            })?;
        let (port, handle) = started.recv().context("the fake GitHub's thread ended")??;
        Ok(Self {
            url: format!("http://127.0.0.1:{port}"),
            calls,
            handle,
        })
    }

    pub async fn stop(&self) {
        self.handle.stop(false).await;
    }
}

/// The rate-limit headers GitHub sends with every API answer.
fn rate_headers(builder: &mut HttpResponseBuilder, state: &State, resource: &str) {
    let used = state.calls.total();
    builder
        .insert_header(("x-ratelimit-limit", RATE_LIMIT.to_string()))
        .insert_header(("x-ratelimit-remaining", RATE_LIMIT.saturating_sub(used).to_string()))
        .insert_header(("x-ratelimit-used", used.to_string()))
        .insert_header(("x-ratelimit-reset", (state.now + 3600).to_string()))
        .insert_header(("x-ratelimit-resource", resource));
}

/// `POST /app/installations/{id}/access_tokens`. The App JWT is not checked: this fake measures
/// the server, it does not test its authentication (the server's test fake does).
async fn mint_token(state: web::Data<State>) -> HttpResponse {
    let n = state.calls.tokens.fetch_add(1, Ordering::Relaxed);
    HttpResponse::Created().json(json!({
        "token": format!("ghs_bench{n:032}"),
        "expires_at": rfc3339(state.now + 3600),
        "permissions": {"deployments": "read", "metadata": "read", "actions": "read"},
        "repository_selection": "all"
    }))
}

/// `per_page` (GitHub's default 30, at most 100) and `page` (from 1).
fn paging(query: &HashMap<String, String>) -> (u64, u64) {
    let number = |key: &str| query.get(key).and_then(|v| v.parse::<u64>().ok());
    (
        number("per_page").unwrap_or(30).clamp(1, PAGE),
        number("page").unwrap_or(1).max(1),
    )
}

/// A REST listing's page with `Link` (`next`, `last`) when more pages follow.
fn listing(
    state: &State,
    req: &HttpRequest,
    path: &str,
    per_page: u64,
    page: u64,
    total: u64,
    body: Value,
) -> HttpResponse {
    let mut builder = HttpResponse::Ok();
    rate_headers(&mut builder, state, "core");
    let pages = total.div_ceil(per_page).max(1);
    if page < pages {
        let base = format!("http://{}{path}", req.connection_info().host());
        builder.insert_header((
            "link",
            format!(
                "<{base}?per_page={per_page}&page={}>; rel=\"next\", <{base}?per_page={per_page}&page={pages}>; rel=\"last\"",
                page + 1
            ),
        ));
    }
    builder.json(body)
}

fn repository_name(index: u64) -> String {
    format!("service-{index:02}")
}

/// `GET /installation/repositories`.
async fn installation_repositories(
    state: web::Data<State>,
    req: HttpRequest,
    query: web::Query<HashMap<String, String>>,
) -> HttpResponse {
    state.calls.repositories.fetch_add(1, Ordering::Relaxed);
    let (per_page, page) = paging(&query);
    let items: Vec<Value> = (0..REPOSITORIES)
        .skip(((page - 1) * per_page) as usize)
        .take(per_page as usize)
        .map(repository)
        .collect();
    let body = json!({"total_count": REPOSITORIES, "repository_selection": "all", "repositories": items});
    listing(
        &state,
        &req,
        "/installation/repositories",
        per_page,
        page,
        REPOSITORIES,
        body,
    )
}

/// A repository as the installation listing has it (the fields shiplog reads and a few more).
pub fn repository(index: u64) -> Value {
    let name = repository_name(index);
    let id = 710_000_000 + index;
    json!({
        "id": id, "node_id": format!("R_bench{id}"), "name": name, "full_name": format!("{OWNER}/{name}"),
        "private": true, "owner": {"login": OWNER, "id": 91_000_002, "type": "Organization"},
        "html_url": format!("https://github.com/{OWNER}/{name}"), "fork": false,
        "default_branch": "main", "visibility": "private", "archived": false, "disabled": false
    })
}

/// `GET /repos/{owner}/{repo}/actions/runs`: no runs (the backfill only asks when the
/// connection has workflow rules).
async fn runs(state: web::Data<State>, req: HttpRequest, path: web::Path<(String, String)>) -> HttpResponse {
    state.calls.runs.fetch_add(1, Ordering::Relaxed);
    let (owner, repo) = path.into_inner();
    listing(
        &state,
        &req,
        &format!("/repos/{owner}/{repo}/actions/runs"),
        PAGE,
        1,
        0,
        json!({"total_count": 0, "workflow_runs": []}),
    )
}

/// `POST /graphql`: `repository(owner, name) { deployments(first: 100, after, newest first) }`,
/// the only query the backfill sends.
async fn graphql(state: web::Data<State>, body: web::Json<Value>) -> HttpResponse {
    state.calls.graphql.fetch_add(1, Ordering::Relaxed);
    let answer = |body: Value| {
        let mut builder = HttpResponse::Ok();
        rate_headers(&mut builder, &state, "graphql");
        builder.json(body)
    };
    let variables = &body["variables"];
    let (owner, name) = (
        variables["owner"].as_str().unwrap_or_default(),
        variables["name"].as_str().unwrap_or_default(),
    );
    let repository = (0..REPOSITORIES).find(|&r| owner == OWNER && name == repository_name(r));
    let Some(repository) = repository else {
        return answer(json!({"data": {"repository": null}, "errors": [{"type": "NOT_FOUND",
            "path": ["repository"], "message": format!("Could not resolve to a Repository with the name '{owner}/{name}'.")}]}));
    };
    let start = match variables["after"].as_str() {
        None => 0,
        Some(cursor) => match decode_cursor(cursor) {
            Some(offset) => offset,
            None => {
                return answer(
                    json!({"data": {"repository": null}, "errors": [{"type": "INVALID_CURSOR_ARGUMENTS",
                    "path": ["repository", "deployments"], "message": format!("`{cursor}` does not appear to be a valid cursor.")}]}),
                )
            }
        },
    };
    let end = (start + PAGE).min(DEPLOYMENTS_PER_REPOSITORY);
    let nodes: Vec<Value> = (start..end)
        .map(|i| deployment_node(state.now, repository, i))
        .collect();
    let has_next = end < DEPLOYMENTS_PER_REPOSITORY;
    answer(json!({"data": {"repository": {"deployments": {
        "pageInfo": {"hasNextPage": has_next, "endCursor": (end > start).then(|| encode_cursor(end))},
        "nodes": nodes
    }}}}))
}

/// The `i`th newest deployment of repository `repository`: dated evenly over the last
/// [`SPREAD_DAYS`] days, with an `IN_PROGRESS` status on every other one and a final
/// `SUCCESS` (or, one in ten, `FAILURE`) a minute later. Statuses newest first, as GitHub lists
/// them.
fn deployment_node(now: u64, repository: u64, i: u64) -> Value {
    let step = SPREAD_DAYS * 86_400 / DEPLOYMENTS_PER_REPOSITORY;
    // Two minutes back at least, so the final status is not in the future; repositories apart by
    // a few seconds so their deploys interleave rather than tie.
    let created = now - 120 - i * step - repository * 7;
    let id = 4_000_000_000 + repository * 100_000 + (DEPLOYMENTS_PER_REPOSITORY - i);
    let environment = ENVIRONMENTS[(i % ENVIRONMENTS.len() as u64) as usize];
    let last = if i % 10 == 3 { "FAILURE" } else { "SUCCESS" };
    let status = |state: &str, at: u64| {
        json!({"state": state, "description": format!("Deployment {}", state.to_ascii_lowercase()),
            "logUrl": format!("https://github.com/{OWNER}/{}/actions/runs/{}", repository_name(repository), id + 1),
            "environmentUrl": format!("https://{environment}.example.com"),
            "createdAt": rfc3339(at), "creator": {"login": "github-actions[bot]"}})
    };
    let mut statuses = vec![status(last, created + 60)];
    if i.is_multiple_of(2) {
        statuses.push(status("IN_PROGRESS", created + 5));
    }
    json!({
        "databaseId": id, "commitOid": payload::sha(id), "environment": environment,
        "originalEnvironment": environment, "task": "deploy", "description": "Deploy from the release pipeline",
        "createdAt": rfc3339(created), "ref": {"name": "main"}, "creator": {"login": "release-bot"},
        "statuses": {"nodes": statuses}
    })
}

/// Opaque to the client, as GitHub's are: the hex of `cursor:v2:{offset}`.
fn encode_cursor(offset: u64) -> String {
    hex::encode(format!("cursor:v2:{offset}"))
}

fn decode_cursor(cursor: &str) -> Option<u64> {
    let text = String::from_utf8(hex::decode(cursor).ok()?).ok()?;
    text.strip_prefix("cursor:v2:")?
        .parse()
        .ok()
        .filter(|&offset| offset <= DEPLOYMENTS_PER_REPOSITORY)
}

async fn not_found(state: web::Data<State>) -> HttpResponse {
    state.calls.other.fetch_add(1, Ordering::Relaxed);
    HttpResponse::NotFound().json(json!({"message": "Not Found", "documentation_url": "https://docs.github.com/rest"}))
}

/// `YYYY-MM-DDTHH:MM:SSZ` of Unix seconds (civil-from-days, proleptic Gregorian).
fn rfc3339(unix: u64) -> String {
    let (days, rest) = (unix / 86_400, unix % 86_400);
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_767_323_045), "2026-01-02T03:04:05Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        assert_eq!(decode_cursor(&encode_cursor(300)), Some(300));
        assert_eq!(decode_cursor("not hex"), None);
        assert_eq!(decode_cursor(&hex::encode("cursor:v2:9999")), None);
    }

    #[test]
    fn deployments_are_newest_first_with_one_or_two_statuses_and_unique_ids() {
        let now = 1_767_323_045;
        let mut ids = std::collections::HashSet::new();
        let mut previous = String::from("9999");
        for repository in 0..REPOSITORIES {
            for i in 0..DEPLOYMENTS_PER_REPOSITORY {
                let node = deployment_node(now, repository, i);
                assert!(ids.insert(node["databaseId"].as_i64().unwrap_or_default()));
                let statuses = node["statuses"]["nodes"].as_array().map_or(0, Vec::len);
                assert!((1..=2).contains(&statuses));
                if repository == 0 {
                    let created = node["createdAt"].as_str().unwrap_or_default().to_owned();
                    assert!(created < previous, "{created} after {previous}");
                    previous = created;
                }
            }
        }
        assert_eq!(ids.len() as u64, REPOSITORIES * DEPLOYMENTS_PER_REPOSITORY);
        assert!(previous > rfc3339(now - SPREAD_DAYS * 86_400 - 200));
    }
}
