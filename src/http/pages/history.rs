//! The deployment history page: the list with its filters and pages (`GET /deployments` as
//! HTML). One deployment's page is `deployment.rs`.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;

use super::{commit_url, csrf, exact, html, http_link, human_duration, relative_time, status_label};
use crate::connections;
use crate::deploys::{cursor, Deploy, DeployFilter, DeploySource, DeployStatus};
use crate::error::ApiError;
use crate::http::deployments::{parse_query, DeploymentsQuery};
use crate::http::session::urlencode;
use crate::http::AppState;

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
    /// An Actions deploy's run (its `log_url`), when it is an http(s) URL.
    run_url: Option<String>,
    /// Shown only when the run was re-run (attempt 2 and later).
    run_attempt: Option<i64>,
    /// Imported by a backfill: history, not news.
    backfilled: bool,
    relative: String,
    exact: String,
    finished: Option<Finished>,
}

/// When a deploy went live (or failed) and how long it took from its start.
struct Finished {
    verb: &'static str,
    relative: String,
    exact: String,
    took: Option<String>,
}

fn finished(now: chrono::DateTime<chrono::Utc>, d: &Deploy) -> Option<Finished> {
    let at = d.completed_at?;
    let verb = match d.status {
        DeployStatus::Failed => "failed",
        DeployStatus::Live => "live",
        DeployStatus::Superseded | DeployStatus::RolledBack => "went live",
        _ => return None,
    };
    Some(Finished {
        verb,
        relative: relative_time(now, at),
        exact: exact(at),
        took: d.duration_seconds.map(human_duration),
    })
}

/// The run an Actions deploy came from: its `log_url` is the run's page.
pub(super) fn run_url(d: &Deploy) -> Option<String> {
    (d.source == DeploySource::Actions)
        .then(|| http_link(d.log_url.as_deref()))
        .flatten()
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

/// `GET /deployments` as HTML: the filters as the JSON list reads them ([`parse_query`]); a
/// filter that does not parse is a short page saying why.
#[tracing::instrument(skip_all)]
pub async fn show_deployments(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<DeploymentsQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let raw = RawFilters {
        repository: query.repository.clone(),
        environment: query.environment.clone(),
        status: query.status.clone(),
        sha: query.sha.clone(),
        limit: query.limit,
    };
    match parse_query(query) {
        Ok((filter, limit)) => render_deployments(&req, &state, &filter, limit, &raw).await,
        Err(error) => Ok(bad_filters_page(&error)),
    }
}

async fn render_deployments(
    req: &HttpRequest,
    state: &AppState,
    filter: &DeployFilter,
    limit: u64,
    raw: &RawFilters,
) -> Result<HttpResponse, ApiError> {
    let (csrf, cookie) = csrf(req, state)?;
    let cursor::Page {
        deploys: page,
        next_cursor,
    } = cursor::page(&state.store, filter, limit).await?;
    let now = state.clock.now();
    let base_query = raw.query_string();
    let next_page_url = next_cursor.map(|next| format!("/deployments?{base_query}cursor={next}"));
    // Suggestions for the repository search field: a few names starting with what was typed,
    // never every repository (an installation may see 100,000).
    let typed = raw.repository.as_deref().unwrap_or_default().trim();
    let repositories = connections::repository_suggestions(&state.store, typed, REPOSITORY_SUGGESTIONS).await?;
    let rows = page
        .iter()
        .map(|d| Row {
            id: d.id.0,
            repository: d.repository.to_string(),
            environment: d.environment.to_string(),
            sha: d.sha.to_string(),
            short_sha: d.short_sha().to_owned(),
            commit_url: commit_url(state, d.repository.as_str(), d.sha.as_str()),
            status: d.status.as_str(),
            status_label: status_label(d.status),
            source: d.source.as_str().to_owned(),
            run_url: run_url(d),
            run_attempt: d.run_attempt.filter(|a| *a > 1),
            backfilled: d.backfilled,
            relative: relative_time(now, d.deploy_time),
            exact: exact(d.deploy_time),
            finished: finished(now, d),
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
struct RawFilters {
    pub repository: Option<String>,
    pub environment: Option<String>,
    pub status: Option<String>,
    pub sha: Option<String>,
    /// Page size as asked, so "Older" and "Newest" keep it.
    pub limit: Option<u64>,
}

impl RawFilters {
    /// `key=value&` pairs of the non-empty filters.
    fn query_string(&self) -> String {
        let limit = self.limit.map(|n| n.to_string());
        [
            ("repository", &self.repository),
            ("environment", &self.environment),
            ("status", &self.status),
            ("sha", &self.sha),
            ("limit", &limit),
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
fn bad_filters_page(error: &ApiError) -> HttpResponse {
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
