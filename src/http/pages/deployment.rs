//! One deployment's page (`GET /deployments/{id}` as HTML): its details, its timeline, the deploy
//! that replaced it, what it shipped (pull requests first, then commits no known pull request
//! owns; what a rollback took out), and the monitored pull requests it brought. Each list shows
//! at most [`PAGE_ROWS`] pull requests and [`PAGE_ROWS`] commits and says how many more there
//! are (the JSON lists them).

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;

use chrono::{DateTime, Utc};

use super::{commit_url, csrf, exact, html, human_duration, pull_url, relative_time, status_label};
use crate::deploys::{self, Deploy, DeployStatus, StatusEntry};
use crate::error::ApiError;
use crate::http::AppState;
use crate::shipped::changes::Changes;
use crate::shipped::{self, Kind, Shipped};

/// Pull requests, and loose commits, one list of the "Shipped" section shows at most.
pub const PAGE_ROWS: usize = 250;

/// The "Shipped" section.
struct ShippedSection {
    /// `first`, `listed`, `unrelated` or `unread` (`shipped::Kind`).
    kind: &'static str,
    base_id: Option<i64>,
    base_short: Option<String>,
    /// `ahead`, `behind`, `diverged` or `identical` when listed.
    status: String,
    ahead_by: i64,
    behind_by: i64,
    note: Option<String>,
    complete: bool,
    /// "Shipped", then "Taken out" for a rollback.
    lists: Vec<ShownList>,
}

struct ShownList {
    id: &'static str,
    heading: &'static str,
    /// Said when the list is empty.
    empty: &'static str,
    pulls: Vec<ShownPull>,
    more_pulls: usize,
    commits: Vec<ShownCommit>,
    more_commits: usize,
    total_commits: usize,
}

struct ShownPull {
    number: i64,
    url: String,
    title: String,
    author: Option<String>,
    merged_at: String,
    merged_relative: String,
    commits: usize,
}

struct ShownCommit {
    short_sha: String,
    url: String,
    title: String,
    author: Option<String>,
    at: Option<String>,
    at_relative: Option<String>,
}

fn shipped_section(state: &AppState, repository: &str, shown: &Shipped) -> ShippedSection {
    let now = state.clock.now();
    let mut lists = Vec::new();
    // A rollback ships nothing: its page lists only what it took out.
    if shown.kind == Kind::Listed && shown.status.as_deref() != Some("behind") {
        lists.push(shown_list(
            state,
            now,
            repository,
            "shipped-list",
            "Shipped",
            "Nothing new: every commit of this deploy was already live here.",
            &shown.shipped,
        ));
    }
    if let Some(taken) = &shown.taken_out {
        lists.push(shown_list(
            state,
            now,
            repository,
            "taken-out",
            "Taken out",
            "Nothing listed.",
            taken,
        ));
    }
    ShippedSection {
        kind: shown.kind.as_str(),
        base_id: shown.base.as_ref().and_then(|b| b.deployment_id),
        base_short: shown.base.as_ref().map(|b| b.sha.get(..7).unwrap_or(&b.sha).to_owned()),
        status: shown.status.clone().unwrap_or_default(),
        ahead_by: shown.ahead_by,
        behind_by: shown.behind_by,
        note: shown.note.clone(),
        complete: shown.complete,
        lists,
    }
}

fn shown_list(
    state: &AppState,
    now: DateTime<Utc>,
    repository: &str,
    id: &'static str,
    heading: &'static str,
    empty: &'static str,
    changes: &Changes,
) -> ShownList {
    ShownList {
        id,
        heading,
        empty,
        pulls: changes
            .pull_requests
            .iter()
            .take(PAGE_ROWS)
            .map(|pr| ShownPull {
                number: pr.number,
                url: pull_url(state, repository, pr.number),
                title: pr.title.clone(),
                author: pr.author.clone(),
                merged_at: exact(pr.merged_at),
                merged_relative: relative_time(now, pr.merged_at),
                commits: pr.commits.len(),
            })
            .collect(),
        more_pulls: changes.pull_requests.len().saturating_sub(PAGE_ROWS),
        commits: changes
            .commits
            .iter()
            .take(PAGE_ROWS)
            .map(|c| ShownCommit {
                short_sha: c.sha.get(..7).unwrap_or(&c.sha).to_owned(),
                url: commit_url(state, repository, &c.sha),
                title: c.title.clone(),
                author: c.author.clone(),
                at: c.authored_at.map(exact),
                at_relative: c.authored_at.map(|at| relative_time(now, at)),
            })
            .collect(),
        more_commits: changes.commits.len().saturating_sub(PAGE_ROWS),
        total_commits: changes.total_commits,
    }
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
    let d = linked.iter().find(|d| Some(d.id.0) == id)?;
    Some(Successor {
        id: d.id.0,
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
    /// An Actions deploy's run: its page (when http(s)), id and attempt (when re-run).
    run_url: Option<String>,
    github_run_id: Option<i64>,
    run_attempt: Option<i64>,
    backfilled: bool,
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
    /// `None` until the deploy's went-live job recorded what it shipped.
    shipped: Option<ShippedSection>,
}

#[tracing::instrument(skip_all, fields(deploy = %path))]
pub async fn show_deployment(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let Some((d, history)) = deploys::get(&state.store, id).await? else {
        return Err(ApiError::not_found(format!("no deployment with id {id}")));
    };
    let (csrf, cookie) = csrf(&req, &state)?;
    let mut view = deployment_page(&state, csrf, &d, &history);
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
                    Some(verdict) => format!("+{}s: {} ({verdict})", c.offset_seconds, c.status.as_str()),
                    None => format!("+{}s: {}", c.offset_seconds, c.status.as_str()),
                })
                .collect(),
        })
        .collect();
    view.shipped = shipped::view(&state.store, &d)
        .await?
        .map(|shown| shipped_section(&state, d.repository.as_str(), &shown));
    Ok(html(StatusCode::OK, view.render(), cookie))
}

fn deployment_page(state: &AppState, csrf: String, d: &Deploy, history: &[StatusEntry]) -> DeploymentPage {
    let now = state.clock.now();
    DeploymentPage {
        tab: "history",
        csrf,
        repository: d.repository.to_string(),
        environment: d.environment.to_string(),
        status: d.status.as_str(),
        status_label: status_label(d.status),
        sha: d.sha.to_string(),
        commit_url: commit_url(state, d.repository.as_str(), d.sha.as_str()),
        git_ref: d.git_ref.clone(),
        deploy_time: exact(d.deploy_time),
        deploy_time_relative: relative_time(now, d.deploy_time),
        completed_at: d.completed_at.map(exact),
        duration: d.duration_seconds.map(human_duration),
        source: d.source.as_str().to_owned(),
        run_url: super::history::run_url(d),
        github_run_id: d.github_run_id,
        run_attempt: d.run_attempt.filter(|a| *a > 1),
        backfilled: d.backfilled,
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
        shipped: None,
    }
}
