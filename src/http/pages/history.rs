//! The deployment history: the list with its filters and pages, and one deployment with its
//! timeline and the monitored pull requests it brought.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;

use super::{
    commit_url, csrf, exact, html, human_duration, is_admin, relative_time, status_label, to_login, urlencode,
};
use crate::connections;
use crate::deploys::{self, Deploy, DeployFilter, DeployStatus, StatusEntry};
use crate::error::ApiError;
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
                    crate::http::deployments::encode_cursor(d.deploy_time, d.id)
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
pub struct RawFilters {
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

struct BroughtPull {
    number: i64,
    plan_status: &'static str,
    checks: Vec<String>,
}

/// The deploy that took this one's place: which, what it shipped, since when.
struct Successor {
    id: i64,
    short_sha: String,
    live_since: String,
}

/// The deploy `id` among `linked` (the deploys a page links to, read in one query).
fn successor(linked: &[Deploy], id: Option<i64>) -> Option<Successor> {
    let d = linked.iter().find(|d| Some(d.id) == id)?;
    Some(Successor {
        id: d.id,
        short_sha: d.short_sha().to_owned(),
        live_since: exact(d.completed_at.unwrap_or(d.status_at)),
    })
}

struct TimelineEntry {
    /// For the entry that says this deploy stopped being live: the deploy that replaced it.
    replaced_by: Option<i64>,
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
    superseded_by: Option<Successor>,
    rolled_back_by: Option<Successor>,
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
    let linked: Vec<i64> = [d.superseded_by_id, d.rollback_target_id]
        .into_iter()
        .flatten()
        .collect();
    let linked = deploys::find_many(&state.store, &linked).await?;
    view.superseded_by = successor(&linked, d.superseded_by_id);
    view.rolled_back_by = successor(&linked, d.rollback_target_id);
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
        duration: d.duration_seconds.map(human_duration),
        source: d.source.clone(),
        github_deployment_id: d.github_deployment_id,
        external_id: d.external_id.clone(),
        version: d.version.clone(),
        creator: d.creator.clone(),
        description: d.description.clone(),
        log_url: d.log_url.clone(),
        environment_url: d.environment_url.clone(),
        superseded_by: None,
        rolled_back_by: None,
        timeline: history
            .iter()
            .map(|e| TimelineEntry {
                replaced_by: match e.status {
                    Some(DeployStatus::Superseded) => d.superseded_by_id,
                    Some(DeployStatus::RolledBack) => d.rollback_target_id,
                    _ => None,
                },
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
