//! The server-rendered pages: sign-in, the deployment history, one deployment, and the
//! "Create a deployment" tab with the connections' credentials and a ready `curl` example.
//!
//! Pages are for the admin, signed in with the admin token (or sending it as a bearer token).
//! Every state-changing form carries a CSRF token checked against the browser's CSRF cookie.

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::session::{self, csrf_matches, csrf_token};
use super::AppState;
use crate::connections;
use crate::credentials::{self, IssueError};
use crate::deploys::{self, Deploy, DeployFilter, DeployStatus, StatusEntry};
use crate::error::{problem_response, ApiError};

/// Whether the request asks for JSON rather than a page.
pub fn wants_json(req: &HttpRequest) -> bool {
    req.headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("application/json") || accept.contains("application/problem+json"))
}

/// Signed in with a session, or the admin bearer token (a throttled client gets 429).
pub async fn is_admin(req: &HttpRequest) -> Result<bool, ApiError> {
    if super::auth::has_session(req).await? {
        return Ok(true);
    }
    match super::auth::authorize_admin(req) {
        Ok(_) => Ok(true),
        Err(error @ ApiError::TooManyRequests { .. }) => Err(error),
        Err(_) => Ok(false),
    }
}

fn redirect(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location.to_owned()))
        .finish()
}

pub fn to_login(req: &HttpRequest) -> HttpResponse {
    let target = req.uri().path_and_query().map_or("/deployments", |pq| pq.as_str());
    redirect(&format!("/login?next={}", urlencode(target)))
}

/// Only local paths, so the sign-in form cannot be used to send people elsewhere: exactly one
/// leading `/`, not followed by `/` or a backslash, and no control character or white space anywhere
/// (browsers drop TAB, CR and LF from URLs, so `/\t/evil.example` would become `//evil.example`).
/// Anything else is `/deployments`.
pub fn local_path(next: &str) -> &str {
    let mut chars = next.chars();
    let local = chars.next() == Some('/')
        && !matches!(chars.next(), Some('/' | '\\'))
        && !next.contains('\\')
        && !next.chars().any(|c| c.is_control() || c.is_whitespace())
        && next.len() <= 2048;
    if local {
        next
    } else {
        "/deployments"
    }
}

fn urlencode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

fn html(
    status: StatusCode,
    body: Result<String, askama::Error>,
    cookie: Option<actix_web::cookie::Cookie<'static>>,
) -> HttpResponse {
    match body {
        Ok(page) => {
            let mut builder = HttpResponse::build(status);
            builder
                .content_type("text/html; charset=utf-8")
                .insert_header((header::CACHE_CONTROL, "no-store"));
            if let Some(cookie) = cookie {
                builder.cookie(cookie);
            }
            builder.body(page)
        }
        Err(error) => {
            tracing::error!(%error, "a page failed to render");
            problem_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "the page could not be rendered".to_owned(),
                &[],
            )
        }
    }
}

fn csrf(req: &HttpRequest, state: &AppState) -> Result<(String, Option<actix_web::cookie::Cookie<'static>>), ApiError> {
    csrf_token(req, state).map_err(|e| ApiError::Internal(e.into()))
}

/// "5 minutes ago", "in 2 hours", "just now".
pub fn relative_time(now: DateTime<Utc>, at: DateTime<Utc>) -> String {
    let seconds = (now - at).num_seconds();
    let (amount, future) = (seconds.unsigned_abs(), seconds < 0);
    let (n, unit) = match amount {
        0..=44 => return "just now".to_owned(),
        45..=3_599 => (amount.div_ceil(60).max(1), "minute"),
        3_600..=86_399 => (amount / 3_600, "hour"),
        86_400..=2_591_999 => (amount / 86_400, "day"),
        _ => (amount / 2_592_000, "month"),
    };
    let plural = if n == 1 { "" } else { "s" };
    if future {
        format!("in {n} {unit}{plural}")
    } else {
        format!("{n} {unit}{plural} ago")
    }
}

fn exact(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

fn status_label(status: DeployStatus) -> &'static str {
    match status {
        DeployStatus::RolledBack => "rolled back",
        other => other.as_str(),
    }
}

fn commit_url(state: &AppState, repository: &str, sha: &str) -> String {
    format!("{}/{repository}/commit/{sha}", state.config.github_web_url())
}

// ---- sign-in ----

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    csrf: String,
    next: String,
    error: Option<String>,
    admin_enabled: bool,
}

#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
}

pub async fn show_login(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<LoginQuery>,
) -> Result<HttpResponse, ApiError> {
    let (csrf, cookie) = csrf(&req, &state)?;
    let page = LoginPage {
        csrf,
        next: local_path(query.next.as_deref().unwrap_or("/deployments")).to_owned(),
        error: None,
        admin_enabled: state.config.admin_token.is_some(),
    };
    Ok(html(StatusCode::OK, page.render(), cookie))
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    token: String,
    csrf: String,
    next: Option<String>,
}

#[tracing::instrument(skip_all)]
pub async fn sign_in(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: web::Form<LoginForm>,
) -> Result<HttpResponse, ApiError> {
    let form = form.into_inner();
    let next = local_path(form.next.as_deref().unwrap_or("/deployments")).to_owned();
    let refuse = |message: &str, status: StatusCode| -> Result<HttpResponse, ApiError> {
        let (csrf, cookie) = csrf(&req, &state)?;
        let page = LoginPage {
            csrf,
            next: next.clone(),
            error: Some(message.to_owned()),
            admin_enabled: state.config.admin_token.is_some(),
        };
        Ok(html(status, page.render(), cookie))
    };
    if !csrf_matches(&req, &form.csrf) {
        return refuse("The form expired; please sign in again.", StatusCode::FORBIDDEN);
    }
    let Some(expected) = state.config.admin_token.as_ref() else {
        return refuse("The admin interface is disabled.", StatusCode::FORBIDDEN);
    };
    if let Err(ApiError::TooManyRequests { retry_after }) = super::auth::check_throttle(&req, &state) {
        let mut refused = refuse(
            &format!("Too many failed sign-ins from your address; try again in {retry_after} seconds."),
            StatusCode::TOO_MANY_REQUESTS,
        )?;
        refused
            .headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from(retry_after));
        return Ok(refused);
    }
    if !super::auth::constant_time_eq(form.token.trim(), expected.expose()) {
        super::auth::record_failure(&req, &state);
        tracing::info!("admin sign-in refused");
        return refuse("That is not the admin token.", StatusCode::UNAUTHORIZED);
    }
    let cookie = session::sign_in(&state, state.clock.now()).await.map_err(|e| match e {
        session::SessionError::Store(store) => ApiError::from(store),
        other => ApiError::Internal(other.into()),
    })?;
    tracing::info!("admin signed in");
    Ok(HttpResponse::SeeOther()
        .cookie(cookie)
        .insert_header((header::LOCATION, next))
        .finish())
}

#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    csrf: String,
}

pub async fn sign_out(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, ApiError> {
    if !csrf_matches(&req, &form.csrf) {
        return Err(ApiError::Forbidden {
            kind: "csrf",
            detail: "the form's CSRF token does not match".to_owned(),
        });
    }
    let cookie = session::sign_out(&req, &state).await?;
    Ok(HttpResponse::SeeOther()
        .cookie(cookie)
        .insert_header((header::LOCATION, "/login"))
        .finish())
}

pub async fn show_home() -> HttpResponse {
    redirect("/deployments")
}

// ---- history ----

struct Row {
    id: i64,
    repository: String,
    environment: String,
    sha: String,
    short_sha: String,
    commit_url: String,
    status: &'static str,
    status_label: &'static str,
    source: String,
    relative: String,
    exact: String,
}

struct StatusOption {
    name: &'static str,
    selected: bool,
}

#[derive(Template)]
#[template(path = "deployments.html")]
struct DeploymentsPage {
    tab: &'static str,
    csrf: String,
    rows: Vec<Row>,
    repositories: Vec<String>,
    statuses: Vec<StatusOption>,
    filter_repository: String,
    filter_environment: String,
    is_first_page: bool,
    first_page_url: String,
    next_page_url: Option<String>,
}

/// How many repository names the history page's search field suggests.
const REPOSITORY_SUGGESTIONS: u64 = 50;

/// The HTML history page. `filter` and `limit` are validated by the caller.
pub async fn render_deployments(
    req: &HttpRequest,
    state: &AppState,
    filter: &DeployFilter,
    limit: u64,
    raw: &RawFilters,
) -> Result<HttpResponse, ApiError> {
    if !is_admin(req).await? {
        return Ok(to_login(req));
    }
    let (csrf, cookie) = csrf(req, state)?;
    let mut page = deploys::list(&state.store, filter, limit + 1).await?;
    let has_more = page.len() as u64 > limit;
    page.truncate(limit as usize);
    let now = state.clock.now();
    let base_query = raw.query_string();
    let next_page_url = has_more
        .then(|| {
            page.last().map(|d| {
                format!(
                    "/deployments?{base_query}cursor={}",
                    super::deployments::encode_cursor(d.deploy_time, d.id)
                )
            })
        })
        .flatten();
    // Suggestions for the repository search field: a few names starting with what was typed,
    // never every repository (an installation may see 100,000).
    let typed = raw.repository.as_deref().unwrap_or_default().trim();
    let repositories = connections::repository_suggestions(&state.store, typed, REPOSITORY_SUGGESTIONS).await?;
    let rows = page
        .iter()
        .map(|d| Row {
            id: d.id,
            repository: d.repository.clone(),
            environment: d.environment.clone(),
            sha: d.sha.clone(),
            short_sha: d.sha.chars().take(7).collect(),
            commit_url: commit_url(state, &d.repository, &d.sha),
            status: d.status.as_str(),
            status_label: status_label(d.status),
            source: d.source.clone(),
            relative: relative_time(now, d.deploy_time),
            exact: exact(d.deploy_time),
        })
        .collect();
    let view = DeploymentsPage {
        tab: "history",
        csrf,
        rows,
        repositories,
        statuses: DeployStatus::ALL
            .iter()
            .map(|s| StatusOption {
                name: s.as_str(),
                selected: raw.status.as_deref() == Some(s.as_str()),
            })
            .collect(),
        filter_repository: raw.repository.clone().unwrap_or_default(),
        filter_environment: raw.environment.clone().unwrap_or_default(),
        is_first_page: filter.before.is_none(),
        first_page_url: format!("/deployments?{}", base_query.trim_end_matches('&')),
        next_page_url,
    };
    Ok(html(StatusCode::OK, view.render(), cookie))
}

/// The filters as typed, to fill the form and build page links.
#[derive(Debug, Clone, Default)]
pub struct RawFilters {
    pub repository: Option<String>,
    pub environment: Option<String>,
    pub status: Option<String>,
    pub sha: Option<String>,
}

impl RawFilters {
    /// `key=value&` pairs of the non-empty filters.
    fn query_string(&self) -> String {
        [
            ("repository", &self.repository),
            ("environment", &self.environment),
            ("status", &self.status),
            ("sha", &self.sha),
        ]
        .iter()
        .filter_map(|(k, v)| {
            v.as_deref()
                .filter(|v| !v.is_empty())
                .map(|v| format!("{k}={}&", urlencode(v)))
        })
        .collect()
    }
}

/// A problem with the filters, shown as a page rather than JSON.
pub fn bad_filters_page(error: &ApiError) -> HttpResponse {
    let detail = error.to_string();
    HttpResponse::BadRequest()
        .content_type("text/html; charset=utf-8")
        .body(format!(
            "<!doctype html><title>Bad filter</title><p>{}</p><p><a href=\"/deployments\">Back</a></p>",
            askama_escape(&detail)
        ))
}

fn askama_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

// ---- one deployment ----

struct BroughtPull {
    number: i64,
    plan_status: &'static str,
    checks: Vec<String>,
}

struct TimelineEntry {
    state: String,
    status: Option<&'static str>,
    at: String,
    description: Option<String>,
    log_url: Option<String>,
}

#[derive(Template)]
#[template(path = "deployment.html")]
struct DeploymentPage {
    tab: &'static str,
    csrf: String,
    repository: String,
    environment: String,
    status: &'static str,
    status_label: &'static str,
    sha: String,
    commit_url: String,
    git_ref: Option<String>,
    deploy_time: String,
    deploy_time_relative: String,
    completed_at: Option<String>,
    duration: Option<String>,
    source: String,
    github_deployment_id: Option<i64>,
    external_id: Option<String>,
    version: Option<String>,
    creator: Option<String>,
    description: Option<String>,
    log_url: Option<String>,
    environment_url: Option<String>,
    superseded_by_id: Option<i64>,
    rollback_target_id: Option<i64>,
    timeline: Vec<TimelineEntry>,
    pulls: Vec<BroughtPull>,
}

pub async fn render_deployment(req: &HttpRequest, state: &AppState, id: i64) -> Result<HttpResponse, ApiError> {
    if !is_admin(req).await? {
        return Ok(to_login(req));
    }
    let Some((d, history)) = deploys::get(&state.store, id).await? else {
        return Err(ApiError::not_found(format!("no deployment with id {id}")));
    };
    let (csrf, cookie) = csrf(req, state)?;
    let mut view = deployment_page(state, csrf, &d, &history);
    view.pulls = crate::monitoring::plans::brought_by(&state.store, id)
        .await?
        .into_iter()
        .map(|(plan, checks)| BroughtPull {
            number: plan.pull_number,
            plan_status: plan.status.as_str(),
            checks: checks
                .iter()
                .map(|c| match &c.verdict {
                    Some(verdict) => format!("+{}s: {} ({verdict})", c.offset_seconds, c.status),
                    None => format!("+{}s: {}", c.offset_seconds, c.status),
                })
                .collect(),
        })
        .collect();
    Ok(html(StatusCode::OK, view.render(), cookie))
}

fn deployment_page(state: &AppState, csrf: String, d: &Deploy, history: &[StatusEntry]) -> DeploymentPage {
    let now = state.clock.now();
    DeploymentPage {
        tab: "history",
        csrf,
        repository: d.repository.clone(),
        environment: d.environment.clone(),
        status: d.status.as_str(),
        status_label: status_label(d.status),
        sha: d.sha.clone(),
        commit_url: commit_url(state, &d.repository, &d.sha),
        git_ref: d.git_ref.clone(),
        deploy_time: exact(d.deploy_time),
        deploy_time_relative: relative_time(now, d.deploy_time),
        completed_at: d.completed_at.map(exact),
        duration: d.duration_seconds.map(|s| {
            if s < 120 {
                format!("{s} s")
            } else {
                format!("{} min {} s", s / 60, s % 60)
            }
        }),
        source: d.source.clone(),
        github_deployment_id: d.github_deployment_id,
        external_id: d.external_id.clone(),
        version: d.version.clone(),
        creator: d.creator.clone(),
        description: d.description.clone(),
        log_url: d.log_url.clone(),
        environment_url: d.environment_url.clone(),
        superseded_by_id: d.superseded_by_id,
        rollback_target_id: d.rollback_target_id,
        timeline: history
            .iter()
            .map(|e| TimelineEntry {
                state: e.state.clone(),
                status: e.status.map(DeployStatus::as_str),
                at: exact(e.occurred_at),
                description: e.description.clone(),
                log_url: e.log_url.clone(),
            })
            .collect(),
        pulls: Vec::new(),
    }
}

/// A state-changing form needs a signed-in admin (else: to sign-in) and a matching CSRF token.
async fn refuse_form(req: &HttpRequest, csrf: &str) -> Result<Option<HttpResponse>, ApiError> {
    if !is_admin(req).await? {
        return Ok(Some(to_login(req)));
    }
    if !csrf_matches(req, csrf) {
        return Err(ApiError::Forbidden {
            kind: "csrf",
            detail: "the form's CSRF token does not match; reload the page".to_owned(),
        });
    }
    Ok(None)
}

// ---- create a deployment ----

struct CredentialRow {
    id: i64,
    name: String,
    username: String,
    created_at: String,
    last_used_at: String,
}

struct ConnectionCredentials {
    id: i64,
    account: String,
    deleted: bool,
    credentials: Vec<CredentialRow>,
    example_repository: Option<String>,
    example_repository_or_placeholder: String,
    example_username: String,
    example_password: String,
}

struct Issued {
    name: String,
    username: String,
    password: String,
    signing_key: String,
}

#[derive(Template)]
#[template(path = "create.html")]
struct CreatePage {
    tab: &'static str,
    csrf: String,
    public_url: String,
    connections: Vec<ConnectionCredentials>,
    issued: Option<Issued>,
}

async fn create_page(state: &AppState, csrf: String, issued: Option<(i64, Issued)>) -> Result<CreatePage, ApiError> {
    let mut views = Vec::new();
    for connection in connections::list(&state.store).await? {
        let credentials = credentials::list(&state.store, connection.id).await?;
        let example_repository = connections::repositories(&state.store, connection.id, None, 1)
            .await?
            .first()
            .map(|r| r.to_string());
        let (example_username, example_password) = match &issued {
            Some((id, issued)) if *id == connection.id => (issued.username.clone(), issued.password.clone()),
            _ => match credentials.last() {
                Some(c) => (c.username.clone(), "$SHIPLOG_DEPLOY_PASSWORD".to_owned()),
                None => ("$SHIPLOG_DEPLOY_USER".to_owned(), "$SHIPLOG_DEPLOY_PASSWORD".to_owned()),
            },
        };
        views.push(ConnectionCredentials {
            id: connection.id,
            account: connection.account.login.clone(),
            deleted: connection.deleted_at.is_some(),
            credentials: credentials
                .iter()
                .map(|c| CredentialRow {
                    id: c.id,
                    name: c.name.clone(),
                    username: c.username.clone(),
                    created_at: exact(c.created_at),
                    last_used_at: c.last_used_at.map_or_else(|| "never".to_owned(), exact),
                })
                .collect(),
            example_repository_or_placeholder: example_repository
                .clone()
                .unwrap_or_else(|| format!("{}/REPO", connection.account.login)),
            example_repository,
            example_username,
            example_password,
        });
    }
    Ok(CreatePage {
        tab: "create",
        csrf,
        public_url: state.config.public_url.clone(),
        connections: views,
        issued: issued.map(|(_, issued)| issued),
    })
}

pub async fn show_create_page(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    if !is_admin(&req).await? {
        return Ok(to_login(&req));
    }
    let (csrf, cookie) = csrf(&req, &state)?;
    let page = create_page(&state, csrf, None).await?;
    Ok(html(StatusCode::OK, page.render(), cookie))
}

#[derive(Debug, Deserialize)]
pub struct NewCredentialForm {
    csrf: String,
    connection: i64,
    name: Option<String>,
}

#[tracing::instrument(skip_all, fields(connection = form.connection))]
pub async fn create_credential_form(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: web::Form<NewCredentialForm>,
) -> Result<HttpResponse, ApiError> {
    if let Some(refused) = refuse_form(&req, &form.csrf).await? {
        return Ok(refused);
    }
    connections::get(&state.store, form.connection)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no connection with id {}", form.connection)))?;
    let name = form
        .name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .unwrap_or("ci");
    if name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(ApiError::invalid_field(
            "name",
            "must be at most 100 printable characters",
        ));
    }
    let issued = credentials::create(&state.store, form.connection, name, state.clock.now())
        .await
        .map_err(|e| match e {
            IssueError::Store(store) => store.into(),
            other => ApiError::Internal(other.into()),
        })?;
    tracing::info!(
        credential = issued.credential.id,
        "deploy credential created from the page"
    );
    let (csrf, cookie) = csrf(&req, &state)?;
    let shown = Issued {
        name: issued.credential.name.clone(),
        username: issued.credential.username.clone(),
        password: issued.password.clone(),
        signing_key: issued.signing_key.clone(),
    };
    let page = create_page(&state, csrf, Some((form.connection, shown))).await?;
    Ok(html(StatusCode::CREATED, page.render(), cookie))
}

#[derive(Debug, Deserialize)]
pub struct RevokeForm {
    csrf: String,
    connection: i64,
}

pub async fn revoke_credential_form(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<i64>,
    form: web::Form<RevokeForm>,
) -> Result<HttpResponse, ApiError> {
    if let Some(refused) = refuse_form(&req, &form.csrf).await? {
        return Ok(refused);
    }
    let id = path.into_inner();
    credentials::revoke(&state.store, form.connection, id, state.clock.now()).await?;
    Ok(redirect("/deployments/new"))
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};

    use super::*;

    #[test]
    fn relative_times_read_naturally() {
        let now = Utc.with_ymd_and_hms(2026, 11, 2, 12, 0, 0).single().unwrap();
        assert_eq!(relative_time(now, now - Duration::seconds(10)), "just now");
        assert_eq!(relative_time(now, now - Duration::minutes(1)), "1 minute ago");
        assert_eq!(relative_time(now, now - Duration::minutes(5)), "5 minutes ago");
        assert_eq!(relative_time(now, now - Duration::hours(3)), "3 hours ago");
        assert_eq!(relative_time(now, now - Duration::days(2)), "2 days ago");
        assert_eq!(relative_time(now, now + Duration::hours(1)), "in 1 hour");
    }

    #[test]
    fn only_local_paths_are_followed_after_sign_in() {
        assert_eq!(local_path("/deployments?status=live"), "/deployments?status=live");
        assert_eq!(local_path("//evil.example"), "/deployments");
        assert_eq!(local_path("https://evil.example"), "/deployments");
        assert_eq!(local_path("/\\evil"), "/deployments");
        for hostile in [
            "/\t/evil.example/phish",
            "/\n/evil.example",
            "/\r\nLocation: https://evil.example",
            "/\u{b}/evil.example",
            "/\u{c}/evil.example",
            "/ /evil.example",
            "/deployments\u{0}",
            "/a\\b",
            "",
            "deployments",
            "javascript:alert(1)",
        ] {
            assert_eq!(local_path(hostile), "/deployments", "{hostile:?}");
        }
    }
}
