//! A fake GitHub that speaks GitHub's wire format: the App JWT is verified (RS256, `iss`, `iat`,
//! `exp`) before an installation token is minted; compare and commit lookups answer from real
//! git repositories, with pagination, `Link` headers, rate-limit headers and GitHub's two kinds
//! of 404. Every request is counted, and faults can be queued (502, rate limits, 401).
//!
//! `history.rs` serves what the backfill reads: the installation's repositories, deployments by
//! GraphQL and Actions runs, from what a test registers.
//!
//! `hooks.rs` runs the App's webhook: it sends deliveries to shiplog (logging the ones that could
//! not connect as failed), serves that log at `GET /app/hook/deliveries` and redelivers on
//! `POST /app/hook/deliveries/{id}/attempts`.

mod history;
mod hooks;

pub use history::{workflow_run, FakeDeployment};

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use actix_web::dev::ServerHandle;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use chrono::{Duration, Utc};
use serde_json::{json, Value};

use crate::git::{run_git, GitRepo};

pub const APP_ID: u64 = 65550;

pub fn private_key_pem() -> String {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/github/test-app-key.pem"
    ))
    .unwrap()
}

fn public_key_pem() -> String {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/github/test-app-key.pub.pem"
    ))
    .unwrap()
}

#[derive(Clone, Debug)]
pub enum Fault {
    /// 502, as GitHub's load balancers answer.
    BadGateway,
    /// 500 "this diff is taking too long to generate".
    DiffTooLong,
    /// 403 secondary rate limit with `retry-after`.
    SecondaryRateLimit { retry_after: u64 },
    /// 403 primary rate limit: `x-ratelimit-remaining: 0` and a reset time.
    PrimaryRateLimit { reset_in: i64 },
    /// 401: the token GitHub was sent is no longer valid.
    BadCredentials,
}

#[derive(Default)]
pub struct FakeState {
    repos: Mutex<HashMap<String, PathBuf>>,
    /// Repository ids (as in `/repositories/{id}/…`, where GitHub's `Link` headers point) →
    /// full names.
    repo_ids: Mutex<HashMap<u64, String>>,
    /// API calls allowed per rate-limit window, when limited; the calls used in this window; when
    /// it resets (Unix seconds, as `x-ratelimit-reset` says).
    window: Mutex<Option<(usize, usize, i64, i64)>>,
    /// Calls answered 200, as `METHOD /path?query`.
    served: Mutex<Vec<String>>,
    tokens: Mutex<HashMap<String, u64>>,
    calls: Mutex<Vec<String>>,
    faults: Mutex<VecDeque<Fault>>,
    posted: Mutex<Vec<(String, Value)>>,
    /// Installations whose token mints wait until the test releases them.
    held_mints: Mutex<HashMap<u64, Arc<MintHold>>>,
    /// Calls answered per rate-limit resource, for `x-ratelimit-remaining` outside a window.
    used: Mutex<HashMap<Resource, u32>>,
    history: history::HistoryState,
    hooks: hooks::HookState,
    /// Manifest-flow codes GitHub has handed out and not yet converted (each converts once).
    manifest_codes: Mutex<HashMap<String, ManifestApp>>,
}

/// What the fake answers for one manifest code: the App it "created".
#[derive(Clone, Debug)]
pub struct ManifestApp {
    pub slug: String,
    pub owner: String,
    pub client_id: String,
    pub client_secret: String,
    pub webhook_secret: String,
}

/// GitHub's rate-limit buckets, as `x-ratelimit-resource` names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Resource {
    Core,
    GraphQl,
}

impl Resource {
    fn as_str(self) -> &'static str {
        match self {
            Self::Core => "core",
            Self::GraphQl => "graphql",
        }
    }
}

/// Token mints for one installation, held at the fake: `arrived` is notified when a mint
/// request is waiting, which answers once `release` is notified.
#[derive(Default)]
pub struct MintHold {
    pub arrived: tokio::sync::Notify,
    pub release: tokio::sync::Notify,
}

pub struct FakeGitHub {
    pub url: String,
    state: web::Data<FakeState>,
    handle: ServerHandle,
}

impl Drop for FakeGitHub {
    fn drop(&mut self) {
        drop(self.handle.stop(false));
    }
}

impl FakeGitHub {
    pub async fn start() -> Self {
        let state = web::Data::new(FakeState::default());
        let data = state.clone();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .route("/app/installations/{id}/access_tokens", web::post().to(mint_token))
                .route("/repos/{owner}/{repo}/compare/{basehead}", web::get().to(compare))
                .route("/repositories/{id}/compare/{basehead}", web::get().to(compare_by_id))
                .route("/repos/{owner}/{repo}/commits/{reference}", web::get().to(commit))
                .route(
                    "/repos/{owner}/{repo}/issues/comments/{id}/reactions",
                    web::post().to(write),
                )
                .route("/repos/{owner}/{repo}/issues/{number}/comments", web::post().to(write))
                .route("/app-manifests/{code}/conversions", web::post().to(convert_manifest))
                .configure(history::routes)
                .configure(hooks::routes)
                .default_service(web::to(not_found))
        })
        .workers(1)
        .bind("127.0.0.1:0")
        .unwrap();
        let port = server.addrs()[0].port();
        let server = server.run();
        let handle = server.handle();
        tokio::spawn(server);
        Self {
            url: format!("http://127.0.0.1:{port}"),
            state,
            handle,
        }
    }

    /// Serves `full_name` from `repo`.
    pub fn add_repo(&self, full_name: &str, repo: &GitRepo) {
        let mut ids = self.state.repo_ids.lock().unwrap();
        let id = 700_000_001 + ids.len() as u64;
        ids.insert(id, full_name.to_ascii_lowercase());
        drop(ids);
        self.state
            .repos
            .lock()
            .unwrap()
            .insert(full_name.to_ascii_lowercase(), repo.path().to_owned());
    }

    /// Every request so far, as `METHOD /path?query`.
    pub fn calls(&self) -> Vec<String> {
        self.state.calls.lock().unwrap().clone()
    }

    pub fn count(&self, fragment: &str) -> usize {
        self.calls().iter().filter(|c| c.contains(fragment)).count()
    }

    pub fn compare_calls(&self) -> usize {
        self.count("/compare/")
    }

    pub fn token_mints(&self) -> usize {
        self.count("/access_tokens")
    }

    /// What was posted to reactions and comments, as (path, body).
    pub fn posted(&self) -> Vec<(String, Value)> {
        self.state.posted.lock().unwrap().clone()
    }

    /// Compare calls answered 200, each as `GET /path?query`.
    pub fn served_compares(&self) -> Vec<String> {
        self.state
            .served
            .lock()
            .unwrap()
            .iter()
            .filter(|c| c.contains("/compare/"))
            .cloned()
            .collect()
    }

    /// From now on, only `calls` API requests (not token minting) are answered per rate-limit
    /// window; the others get a primary rate limit (403, `x-ratelimit-remaining: 0`,
    /// `x-ratelimit-reset: reset`, `Date: now`) until [`FakeGitHub::next_window`]. The test's
    /// clock is GitHub's clock here, so `now` and `reset` are given by the test.
    pub fn limit_per_window(&self, calls: usize, now: chrono::DateTime<Utc>, reset: chrono::DateTime<Utc>) {
        *self.state.window.lock().unwrap() = Some((calls, 0, now.timestamp(), reset.timestamp()));
    }

    /// The rate-limit window resets at `now`; the next one resets at `reset`.
    pub fn next_window(&self, now: chrono::DateTime<Utc>, reset: chrono::DateTime<Utc>) {
        if let Some((_, used, started, at)) = self.state.window.lock().unwrap().as_mut() {
            *used = 0;
            *started = now.timestamp();
            *at = reset.timestamp();
        }
    }

    /// The next API request (not token minting) gets this fault instead of an answer.
    pub fn fail_next(&self, fault: Fault) {
        self.state.faults.lock().unwrap().push_back(fault);
    }

    /// Holds every token mint for `installation` until the returned hold is released.
    pub fn hold_mints(&self, installation: u64) -> Arc<MintHold> {
        let hold = Arc::new(MintHold::default());
        self.state.held_mints.lock().unwrap().insert(installation, hold.clone());
        hold
    }

    /// GitHub redirected the browser with a new code for `app`: it converts once, within the hour.
    pub fn issue_manifest_code(&self, app: ManifestApp) -> String {
        let code = format!("c{}", uuid::Uuid::new_v4().simple());
        self.state.manifest_codes.lock().unwrap().insert(code.clone(), app);
        code
    }

    /// The hour is over: every code not yet converted is gone (GitHub then answers 404).
    pub fn expire_manifest_codes(&self) {
        self.state.manifest_codes.lock().unwrap().clear();
    }

    /// Forgets every installation token, as if they had expired early.
    pub fn revoke_tokens(&self) {
        self.state.tokens.lock().unwrap().clear();
    }
}

fn record(state: &FakeState, req: &HttpRequest) {
    let query = req.query_string();
    let call = if query.is_empty() {
        format!("{} {}", req.method(), req.path())
    } else {
        format!("{} {}?{query}", req.method(), req.path())
    };
    state.calls.lock().unwrap().push(call);
}

fn rate_headers(builder: &mut actix_web::HttpResponseBuilder, remaining: u32, reset: i64) {
    builder
        .insert_header(("x-ratelimit-limit", "5000"))
        .insert_header(("x-ratelimit-remaining", remaining.to_string()))
        .insert_header(("x-ratelimit-used", (5000 - remaining).to_string()))
        .insert_header(("x-ratelimit-reset", reset.to_string()))
        .insert_header(("x-ratelimit-resource", "core"))
        .insert_header(("x-github-api-version-selected", "2022-11-28"));
}

fn github_error(status: u16, message: &str, docs: &str) -> HttpResponse {
    let mut builder = HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap());
    rate_headers(&mut builder, 4999, Utc::now().timestamp() + 3600);
    builder.json(json!({"message": message, "documentation_url": docs, "status": status.to_string()}))
}

async fn not_found(state: web::Data<FakeState>, req: HttpRequest) -> HttpResponse {
    record(&state, &req);
    github_error(404, "Not Found", "https://docs.github.com/rest")
}

/// `POST /app-manifests/{code}/conversions`: no authentication, the code is the credential.
/// Answers GitHub's shape with the fixture's RSA key as `pem` and [`APP_ID`] as the id, so the
/// new App then mints tokens here; an unknown, used or expired code is 404.
async fn convert_manifest(state: web::Data<FakeState>, req: HttpRequest, path: web::Path<String>) -> HttpResponse {
    record(&state, &req);
    let Some(app) = state.manifest_codes.lock().unwrap().remove(&path.into_inner()) else {
        return github_error(
            404,
            "Not Found",
            "https://docs.github.com/rest/apps/apps#create-a-github-app-from-a-manifest",
        );
    };
    HttpResponse::Created().json(json!({
        "id": APP_ID,
        "slug": app.slug,
        "node_id": "A_kwDOAAAAAA",
        "owner": {
            "login": app.owner,
            "id": 9_100_001,
            "node_id": "O_kgDOAAAAAQ",
            "avatar_url": "https://avatars.githubusercontent.com/u/9100001?v=4",
            "gravatar_id": "",
            "url": format!("https://api.github.com/users/{}", app.owner),
            "html_url": format!("https://github.com/{}", app.owner),
            "followers_url": "https://api.github.com/users/x/followers",
            "following_url": "https://api.github.com/users/x/following{/other_user}",
            "gists_url": "https://api.github.com/users/x/gists{/gist_id}",
            "starred_url": "https://api.github.com/users/x/starred{/owner}{/repo}",
            "subscriptions_url": "https://api.github.com/users/x/subscriptions",
            "organizations_url": "https://api.github.com/users/x/orgs",
            "repos_url": "https://api.github.com/users/x/repos",
            "events_url": "https://api.github.com/users/x/events{/privacy}",
            "received_events_url": "https://api.github.com/users/x/received_events",
            "type": "Organization",
            "site_admin": false
        },
        "name": app.slug,
        "description": "What code is live where, and since when.",
        "external_url": "https://shiplog.example.com",
        "html_url": format!("https://github.com/apps/{}", app.slug),
        "created_at": "2026-12-01T10:00:00Z",
        "updated_at": "2026-12-01T10:00:00Z",
        "permissions": {"deployments": "read", "contents": "read", "metadata": "read",
                        "pull_requests": "read", "issues": "write", "actions": "read"},
        "events": ["deployment", "deployment_status", "pull_request", "issue_comment", "workflow_run"],
        "installations_count": 0,
        "client_id": app.client_id,
        "client_secret": app.client_secret,
        "webhook_secret": app.webhook_secret,
        "pem": private_key_pem(),
    }))
}

#[derive(serde::Deserialize)]
struct Claims {
    iss: Value,
    iat: i64,
    exp: i64,
}

/// Checks the App's JWT (RS256 with the test key, `iss` the App id, `iat` not in the future,
/// at most ten minutes long), as GitHub does on every `/app/...` endpoint.
#[allow(clippy::result_large_err)]
fn check_app_jwt(req: &HttpRequest) -> Result<(), HttpResponse> {
    let bearer = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let Some(jwt) = bearer else {
        return Err(github_error(
            401,
            "A JSON web token could not be decoded",
            "https://docs.github.com/rest",
        ));
    };
    let key = jsonwebtoken::DecodingKey::from_rsa_pem(public_key_pem().as_bytes()).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    // octocrab sends `iss` as a number (GitHub accepts both); jsonwebtoken's own `iss` check only
    // reads strings, so `iss` and `iat` are checked by hand below.
    validation.set_required_spec_claims(&["exp"]);
    let claims = match jsonwebtoken::decode::<Claims>(jwt, &key, &validation) {
        Ok(data) => data.claims,
        Err(e) => {
            return Err(github_error(
                401,
                &format!("A JSON web token could not be decoded: {e}"),
                "https://docs.github.com/rest",
            ))
        }
    };
    let iss_ok = claims.iss == json!(APP_ID) || claims.iss == json!(APP_ID.to_string());
    let now = Utc::now().timestamp();
    if !iss_ok || claims.iat > now + 5 || claims.exp - claims.iat > 11 * 60 {
        return Err(github_error(
            401,
            "'Expiration time' claim ('exp') is too far in the future",
            "https://docs.github.com/rest",
        ));
    }
    Ok(())
}

/// `POST /app/installations/{id}/access_tokens`, authenticated with the App's JWT.
async fn mint_token(state: web::Data<FakeState>, req: HttpRequest, path: web::Path<u64>) -> HttpResponse {
    record(&state, &req);
    if let Err(refused) = check_app_jwt(&req) {
        return refused;
    }
    let installation = path.into_inner();
    let hold = state.held_mints.lock().unwrap().get(&installation).cloned();
    if let Some(hold) = hold {
        hold.arrived.notify_one();
        hold.release.notified().await;
    }
    let token = format!("ghs_{}", uuid::Uuid::new_v4().simple());
    state.tokens.lock().unwrap().insert(token.clone(), installation);
    let expires_at = (Utc::now() + Duration::hours(1))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    HttpResponse::Created().json(json!({
        "token": token, "expires_at": expires_at,
        "permissions": {"contents": "read", "deployments": "read", "metadata": "read"},
        "repository_selection": "all"
    }))
}

/// Checks the installation token, records the call and hands out a queued fault.
fn gate(state: &FakeState, req: &HttpRequest) -> Option<HttpResponse> {
    gate_as(state, req, Resource::Core)
}

/// [`gate`] for a call counted against `resource`; GraphQL's rate limits are answered as GitHub
/// answers them there: 200 with a `RATE_LIMITED` error.
fn gate_as(state: &FakeState, req: &HttpRequest, resource: Resource) -> Option<HttpResponse> {
    record(state, req);
    let token = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("token ")));
    let known = token.is_some_and(|t| state.tokens.lock().unwrap().contains_key(t));
    let fault = state.faults.lock().unwrap().pop_front();
    if let Some((allowed, used, started, reset)) = state.window.lock().unwrap().as_mut() {
        if fault.is_none() && known {
            if *used >= *allowed {
                let mut builder = if resource == Resource::GraphQl {
                    HttpResponse::Ok()
                } else {
                    HttpResponse::Forbidden()
                };
                rate_headers_for(&mut builder, *allowed, 0, *reset, resource);
                if let Some(date) = chrono::DateTime::from_timestamp(*started, 0) {
                    builder.insert_header(("date", date.to_rfc2822()));
                }
                return Some(builder.json(rate_limited_body(resource)));
            }
            *used += 1;
        }
    }
    if let Some(fault) = fault {
        return Some(answer_fault(fault, resource));
    }
    if !known {
        return Some(github_error(401, "Bad credentials", "https://docs.github.com/rest"));
    }
    *state.used.lock().unwrap().entry(resource).or_default() += 1;
    None
}

/// What GitHub answers instead, for a queued fault.
fn answer_fault(fault: Fault, resource: Resource) -> HttpResponse {
    let docs = "https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api";
    match fault {
        Fault::BadCredentials => github_error(401, "Bad credentials", "https://docs.github.com/rest"),
        Fault::BadGateway => HttpResponse::BadGateway().json(json!({"message": "Server Error"})),
        Fault::DiffTooLong => HttpResponse::InternalServerError().json(json!({
            "message": "Server Error: Sorry, this diff is taking too long to generate.",
            "errors": [{"resource": "Comparison", "field": "diff", "code": "not_available"}],
            "documentation_url": "https://docs.github.com/rest/commits/commits#compare-two-commits"
        })),
        Fault::SecondaryRateLimit { retry_after } => {
            let mut builder = HttpResponse::Forbidden();
            rate_headers(&mut builder, 4000, Utc::now().timestamp() + 3600);
            builder.insert_header(("retry-after", retry_after.to_string()));
            builder.json(json!({"message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.", "documentation_url": docs}))
        }
        Fault::PrimaryRateLimit { reset_in } if resource == Resource::GraphQl => {
            let mut builder = HttpResponse::Ok();
            rate_headers_for(&mut builder, 5000, 0, Utc::now().timestamp() + reset_in, resource);
            builder.json(rate_limited_body(resource))
        }
        Fault::PrimaryRateLimit { reset_in } => {
            let mut builder = HttpResponse::Forbidden();
            rate_headers(&mut builder, 0, Utc::now().timestamp() + reset_in);
            builder.json(
                json!({"message": "API rate limit exceeded for installation ID 41000001.", "documentation_url": docs}),
            )
        }
    }
}

/// A primary rate limit's body: REST's message, or GraphQL's error.
fn rate_limited_body(resource: Resource) -> Value {
    let message = "API rate limit exceeded for installation ID 41000001.";
    match resource {
        Resource::Core => json!({"message": message,
            "documentation_url": "https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api"}),
        Resource::GraphQl => {
            json!({"errors": [{"type": "RATE_LIMITED", "code": "graphql_rate_limit", "message": message}]})
        }
    }
}

/// The rate limit as it stands after this call: the test's window when it set one, else 5000 an
/// hour less the calls answered so far.
fn rate_now(state: &FakeState, resource: Resource) -> (usize, usize, i64) {
    if let Some((allowed, used, _, reset)) = *state.window.lock().unwrap() {
        return (allowed, allowed.saturating_sub(used), reset);
    }
    let used = state.used.lock().unwrap().get(&resource).copied().unwrap_or(0) as usize;
    (5000, 5000usize.saturating_sub(used), Utc::now().timestamp() + 3600)
}

fn rate_headers_for(
    builder: &mut actix_web::HttpResponseBuilder,
    limit: usize,
    remaining: usize,
    reset: i64,
    resource: Resource,
) {
    builder
        .insert_header(("x-ratelimit-limit", limit.to_string()))
        .insert_header(("x-ratelimit-remaining", remaining.to_string()))
        .insert_header(("x-ratelimit-used", limit.saturating_sub(remaining).to_string()))
        .insert_header(("x-ratelimit-reset", reset.to_string()))
        .insert_header(("x-ratelimit-resource", resource.as_str()))
        .insert_header(("x-github-api-version-selected", "2022-11-28"));
}

fn repo_dir(state: &FakeState, owner: &str, repo: &str) -> Option<PathBuf> {
    state
        .repos
        .lock()
        .unwrap()
        .get(&format!("{owner}/{repo}").to_ascii_lowercase())
        .cloned()
}

fn resolve(dir: &std::path::Path, reference: &str) -> Option<String> {
    run_git(
        dir,
        &["rev-parse", "--verify", "--quiet", &format!("{reference}^{{commit}}")],
    )
    .ok()
    .filter(|s| !s.is_empty())
}

/// One commit a record (`%x1e` ends it): its whole message (`%B`) is served, as GitHub does, so
/// a revert's "This reverts commit …" line reaches shiplog.
const FORMAT: &str = "%H%x1f%P%x1f%T%x1f%an%x1f%ae%x1f%aI%x1f%B%x1e";

fn commit_json(base_url: &str, full_name: &str, line: &str) -> Value {
    let f: Vec<&str> = line.split('\x1f').collect();
    let (sha, parents, tree, name, email, date, message) = (f[0], f[1], f[2], f[3], f[4], f[5], f[6].trim_end());
    let person = json!({"name": name, "email": email, "date": date});
    json!({
        "sha": sha,
        "node_id": format!("C_{sha}"),
        "commit": {
            "author": person, "committer": person, "message": message,
            "tree": {"sha": tree, "url": format!("{base_url}/repos/{full_name}/git/trees/{tree}")},
            "url": format!("{base_url}/repos/{full_name}/git/commits/{sha}"),
            "comment_count": 0,
            "verification": {"verified": false, "reason": "unsigned", "signature": null, "payload": null}
        },
        "url": format!("{base_url}/repos/{full_name}/commits/{sha}"),
        "html_url": format!("https://github.com/{full_name}/commit/{sha}"),
        "comments_url": format!("{base_url}/repos/{full_name}/commits/{sha}/comments"),
        "author": null,
        "committer": null,
        "parents": parents.split_whitespace().map(|p| json!({"sha": p, "url": format!("{base_url}/repos/{full_name}/commits/{p}")})).collect::<Vec<_>>()
    })
}

fn log_lines(dir: &std::path::Path, args: &[&str]) -> Vec<String> {
    let format_arg = format!("--format={FORMAT}");
    let mut argv: Vec<&str> = vec!["log", &format_arg];
    argv.extend_from_slice(args);
    run_git(dir, &argv)
        .map(|out| {
            out.split('\x1e')
                .map(|record| record.trim_start_matches('\n'))
                .filter(|record| !record.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

#[derive(serde::Deserialize)]
struct PageQuery {
    per_page: Option<usize>,
    page: Option<usize>,
}

/// `GET /repositories/{id}/compare/{base}...{head}`: where GitHub's `Link` headers point.
async fn compare_by_id(
    state: web::Data<FakeState>,
    req: HttpRequest,
    path: web::Path<(u64, String)>,
    query: web::Query<PageQuery>,
) -> HttpResponse {
    let (id, basehead) = path.into_inner();
    let name = state.repo_ids.lock().unwrap().get(&id).cloned();
    let Some((owner, repo)) = name.as_deref().and_then(|n| n.split_once('/')) else {
        record(&state, &req);
        return github_error(404, "Not Found", "https://docs.github.com/rest");
    };
    compare_in(state, req, (owner.to_owned(), repo.to_owned(), basehead), query).await
}

/// `GET /repos/{owner}/{repo}/compare/{base}...{head}`.
async fn compare(
    state: web::Data<FakeState>,
    req: HttpRequest,
    path: web::Path<(String, String, String)>,
    query: web::Query<PageQuery>,
) -> HttpResponse {
    compare_in(state, req, path.into_inner(), query).await
}

async fn compare_in(
    state: web::Data<FakeState>,
    req: HttpRequest,
    (owner, repo, basehead): (String, String, String),
    query: web::Query<PageQuery>,
) -> HttpResponse {
    if let Some(refused) = gate(&state, &req) {
        return refused;
    }
    let repo_id = state
        .repo_ids
        .lock()
        .unwrap()
        .iter()
        .find(|(_, name)| **name == format!("{owner}/{repo}").to_ascii_lowercase())
        .map_or(700_000_001, |(id, _)| *id);
    let docs = "https://docs.github.com/rest/commits/commits#compare-two-commits";
    let Some(dir) = repo_dir(&state, &owner, &repo) else {
        return github_error(404, "Not Found", docs);
    };
    let Some((base_ref, head_ref)) = basehead.split_once("...") else {
        return github_error(404, "Not Found", docs);
    };
    let (Some(base), Some(head)) = (resolve(&dir, base_ref), resolve(&dir, head_ref)) else {
        return github_error(404, "Not Found", docs);
    };
    let Ok(merge_base) = run_git(&dir, &["merge-base", &base, &head]) else {
        return github_error(
            404,
            &format!("No common ancestor between {base_ref} and {head_ref}."),
            docs,
        );
    };
    let count = |range: &[&str]| -> usize {
        let mut argv = vec!["rev-list", "--count"];
        argv.extend_from_slice(range);
        run_git(&dir, &argv).unwrap().parse().unwrap()
    };
    let not_base = format!("^{base}");
    let not_head = format!("^{head}");
    let ahead_by = count(&[&head, &not_base]);
    let behind_by = count(&[&base, &not_head]);
    let status = match (ahead_by, behind_by) {
        (0, 0) => "identical",
        (_, 0) => "ahead",
        (0, _) => "behind",
        _ => "diverged",
    };
    let lines = log_lines(&dir, &["--reverse", "--topo-order", &head, &not_base]);
    let (per_page, page) = match (query.per_page, query.page) {
        (None, None) => (250, 1),
        (per_page, page) => (per_page.unwrap_or(30).clamp(1, 100), page.unwrap_or(1).max(1)),
    };
    let pages = lines.len().div_ceil(per_page).max(1);
    let full_name = format!("{owner}/{repo}");
    let base_url = format!("http://{}", req.connection_info().host());
    let commits: Vec<Value> = lines
        .iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .map(|l| commit_json(&base_url, &full_name, l))
        .collect();
    let single = |sha: &str| commit_json(&base_url, &full_name, &log_lines(&dir, &["-1", sha])[0]);
    let mut body = json!({
        "url": format!("{base_url}/repos/{full_name}/compare/{basehead}"),
        "html_url": format!("https://github.com/{full_name}/compare/{basehead}"),
        "permalink_url": format!("https://github.com/{full_name}/compare/{owner}:{}...{owner}:{}", &base[..7], &head[..7]),
        "diff_url": format!("https://github.com/{full_name}/compare/{basehead}.diff"),
        "patch_url": format!("https://github.com/{full_name}/compare/{basehead}.patch"),
        "base_commit": single(&base),
        "merge_base_commit": single(&merge_base),
        "status": status,
        "ahead_by": ahead_by,
        "behind_by": behind_by,
        "total_commits": lines.len(),
        "commits": commits,
    });
    if page == 1 {
        body["files"] = json!([]);
    }
    let mut builder = HttpResponse::Ok();
    rate_headers(&mut builder, 4998, Utc::now().timestamp() + 3600);
    if query.per_page.is_some() && page < pages {
        let link =
            |p: usize| format!("<{base_url}/repositories/{repo_id}/compare/{basehead}?per_page={per_page}&page={p}>");
        builder.insert_header((
            "link",
            format!("{}; rel=\"next\", {}; rel=\"last\"", link(page + 1), link(pages)),
        ));
    }
    state
        .served
        .lock()
        .unwrap()
        .push(format!("GET {}?{}", req.path(), req.query_string()));
    builder.json(body)
}

/// `GET /repos/{owner}/{repo}/commits/{ref}`: 422 for a SHA or ref GitHub does not know.
async fn commit(
    state: web::Data<FakeState>,
    req: HttpRequest,
    path: web::Path<(String, String, String)>,
) -> HttpResponse {
    if let Some(refused) = gate(&state, &req) {
        return refused;
    }
    let (owner, repo, reference) = path.into_inner();
    let docs = "https://docs.github.com/rest/commits/commits#get-a-commit";
    let Some(dir) = repo_dir(&state, &owner, &repo) else {
        return github_error(404, "Not Found", docs);
    };
    let Some(sha) = resolve(&dir, &reference) else {
        return github_error(422, &format!("No commit found for SHA: {reference}"), docs);
    };
    let base_url = format!("http://{}", req.connection_info().host());
    let mut body = commit_json(
        &base_url,
        &format!("{owner}/{repo}"),
        &log_lines(&dir, &["-1", &sha])[0],
    );
    body["stats"] = json!({"total": 0, "additions": 0, "deletions": 0});
    body["files"] = json!([]);
    let mut builder = HttpResponse::Ok();
    rate_headers(&mut builder, 4997, Utc::now().timestamp() + 3600);
    builder.json(body)
}

/// `POST` a reaction or a comment: recorded, answered 201 as GitHub does.
async fn write(state: web::Data<FakeState>, req: HttpRequest, body: web::Json<Value>) -> HttpResponse {
    if let Some(refused) = gate(&state, &req) {
        return refused;
    }
    state
        .posted
        .lock()
        .unwrap()
        .push((req.path().to_owned(), body.into_inner()));
    HttpResponse::Created().json(json!({"id": 1, "node_id": "IC_kwDO", "created_at": Utc::now().to_rfc3339()}))
}
