//! The connections pages: the list (`GET /connections`) and one connection (`GET
//! /connections/{id}`) with its settings, workflow rules and backfills, and the "Backfill
//! history" form (`POST /connections/{id}/backfill`), which starts one through
//! [`backfill::start`] as the JSON API does.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;
use serde_json::json;

use super::{check_csrf, csrf, exact, html, human_duration, redirect, relative_time};
use crate::backfill::{self, Backfill, BackfillRequest, StartError};
use crate::connections::{self, Connection};
use crate::error::ApiError;
use crate::http::AppState;

/// How many of a connection's backfills its page shows, newest first.
const BACKFILLS_SHOWN: u64 = 10;

/// The spans the form offers, as `parse_since` reads them.
const SINCE_CHOICES: [(&str, &str); 5] = [
    ("7d", "7 days"),
    ("30d", "30 days"),
    ("90d", "90 days"),
    ("180d", "180 days"),
    ("365d", "365 days"),
];
const DEFAULT_SINCE: &str = "90d";

struct ConnectionRow {
    id: i64,
    account: String,
    installation_id: i64,
    status: &'static str,
    repository_count: u64,
}

#[derive(Template)]
#[template(path = "connections.html")]
struct ConnectionsPage {
    tab: &'static str,
    csrf: String,
    connections: Vec<ConnectionRow>,
}

#[tracing::instrument(skip_all)]
pub async fn show_connections(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let mut rows = Vec::new();
    for connection in connections::list(&state.store).await? {
        let sample = connections::repository_sample(&state.store, connection.id).await?;
        rows.push(ConnectionRow {
            id: connection.id,
            account: connection.account.login.clone(),
            installation_id: connection.installation_id.0,
            status: connection.status(),
            repository_count: sample.count,
        });
    }
    let (csrf, cookie) = csrf(&req, &state)?;
    let page = ConnectionsPage {
        tab: "connections",
        csrf,
        connections: rows,
    };
    Ok(html(StatusCode::OK, page.render(), cookie))
}

struct RuleRow {
    repository: String,
    workflow: String,
    /// `None`: the repository's default branch.
    branch: Option<String>,
    environment: String,
}

struct BackfillRow {
    id: i64,
    state: &'static str,
    since: String,
    since_day: String,
    since_time: String,
    /// The repositories asked for, when not all of the installation's.
    repositories: Option<String>,
    repositories_done: i64,
    repositories_total: Option<i64>,
    deploys_imported: i64,
    github_calls: i64,
    rate: Option<RateRow>,
    time_left: String,
    note: Option<String>,
    started: String,
}

struct RateRow {
    remaining: i64,
    limit: i64,
    /// Only while the window has not reset: a past reset says nothing.
    reset_relative: Option<String>,
    reset_exact: String,
}

struct SinceOption {
    value: &'static str,
    label: &'static str,
    selected: bool,
}

/// Why the form did not start a backfill, as the page says it.
struct FormProblem {
    title: String,
    messages: Vec<String>,
}

#[derive(Template)]
#[template(path = "connection.html")]
struct ConnectionPage {
    tab: &'static str,
    csrf: String,
    id: i64,
    account: String,
    account_kind: String,
    installation_id: i64,
    status: &'static str,
    deleted: bool,
    repository_selection: String,
    repository_count: u64,
    auto_create_deployments: bool,
    ignore_transient_environments: bool,
    ignored_environments: Vec<String>,
    /// The board's order of environments (left to right), as set.
    environment_order: Vec<String>,
    /// Which environments are production-like (rightmost on the board).
    production_environments: Vec<String>,
    agent_url: Option<String>,
    agent_secret_set: bool,
    rules: Vec<RuleRow>,
    backfills: Vec<BackfillRow>,
    /// A backfill has not finished: the page reloads itself to follow it.
    refresh: bool,
    flash: Option<String>,
    problem: Option<FormProblem>,
    since_options: Vec<SinceOption>,
    repository_value: String,
}

fn backfill_row(backfill: &Backfill, now: chrono::DateTime<chrono::Utc>) -> BackfillRow {
    let view = backfill.view(now);
    let progress = view.progress;
    let time_left = match (backfill.state.finished(), progress.estimated_seconds_left) {
        (true, _) => "—".to_owned(),
        (false, Some(seconds)) => format!("about {}", human_duration(seconds)),
        (false, None) => "not yet known".to_owned(),
    };
    BackfillRow {
        id: backfill.id,
        state: backfill.state.as_str(),
        since: exact(backfill.since),
        since_day: backfill.since.format("%Y-%m-%d").to_string(),
        since_time: backfill.since.format("%H:%M UTC").to_string(),
        repositories: view.repositories.map(|names| {
            names
                .iter()
                .map(|n| n.as_str().to_owned())
                .collect::<Vec<_>>()
                .join(", ")
        }),
        repositories_done: progress.repositories_done,
        repositories_total: progress.repositories_total,
        deploys_imported: progress.deploys_imported,
        github_calls: progress.github_calls,
        rate: progress.rate_limit.map(|rate| RateRow {
            remaining: rate.remaining,
            limit: rate.limit,
            reset_relative: (rate.reset > now).then(|| relative_time(now, rate.reset)),
            reset_exact: exact(rate.reset),
        }),
        time_left,
        note: view.note,
        started: relative_time(now, backfill.created_at),
    }
}

async fn connection_page(
    state: &AppState,
    csrf: String,
    connection: &Connection,
    form: Option<&BackfillForm>,
) -> Result<ConnectionPage, ApiError> {
    let now = state.clock.now();
    let sample = connections::repository_sample(&state.store, connection.id).await?;
    let backfills = backfill::for_connection(&state.store, connection.id, BACKFILLS_SHOWN).await?;
    let settings = &connection.settings;
    let chosen = form.map_or(DEFAULT_SINCE, |f| f.since.as_str());
    Ok(ConnectionPage {
        tab: "connections",
        csrf,
        id: connection.id,
        account: connection.account.login.clone(),
        account_kind: connection.account.kind.clone(),
        installation_id: connection.installation_id.0,
        status: connection.status(),
        deleted: connection.deleted_at.is_some(),
        repository_selection: connection.repository_selection.clone(),
        repository_count: sample.count,
        auto_create_deployments: settings.auto_create_deployments,
        ignore_transient_environments: settings.ignore_transient_environments,
        ignored_environments: settings
            .ignored_environments
            .iter()
            .map(|p| p.as_str().to_owned())
            .collect(),
        environment_order: settings.environment_order.clone(),
        production_environments: settings
            .production_environments
            .iter()
            .map(|p| p.as_str().to_owned())
            .collect(),
        // Never the agent secret: only whether one is set.
        agent_url: settings.agent_url.clone(),
        agent_secret_set: connection.agent_secret.is_some(),
        rules: settings
            .workflow_rules
            .iter()
            .map(|rule| RuleRow {
                repository: rule.repository.as_str().to_owned(),
                workflow: rule.workflow.as_str().to_owned(),
                branch: rule.branch.as_ref().map(|b| b.as_str().to_owned()),
                environment: rule.environment.to_string(),
            })
            .collect(),
        refresh: backfills.iter().any(|b| !b.state.finished()),
        backfills: backfills.iter().map(|b| backfill_row(b, now)).collect(),
        flash: None,
        problem: None,
        since_options: SINCE_CHOICES
            .iter()
            .map(|&(value, label)| SinceOption {
                value,
                label,
                selected: value == chosen,
            })
            .collect(),
        repository_value: form
            .and_then(|f| f.repository.as_deref())
            .unwrap_or_default()
            .to_owned(),
    })
}

async fn find_connection(state: &AppState, id: i64) -> Result<Connection, ApiError> {
    connections::get(&state.store, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no connection with id {id}")))
}

#[derive(Debug, Deserialize)]
pub struct ConnectionQuery {
    /// The backfill the form just started (the redirect's flash); anything else is ignored.
    started: Option<String>,
}

#[tracing::instrument(skip_all, fields(connection = %path))]
pub async fn show_connection(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<i64>,
    query: web::Query<ConnectionQuery>,
) -> Result<HttpResponse, ApiError> {
    let connection = find_connection(&state, path.into_inner()).await?;
    let (csrf, cookie) = csrf(&req, &state)?;
    let mut page = connection_page(&state, csrf, &connection, None).await?;
    page.flash = query
        .started
        .as_deref()
        .and_then(|raw| raw.parse::<i64>().ok())
        .map(|id| format!("Backfill {id} started: this page follows it until it finishes."));
    Ok(html(StatusCode::OK, page.render(), cookie))
}

#[derive(Debug, Deserialize)]
pub struct BackfillForm {
    csrf: String,
    since: String,
    repository: Option<String>,
}

/// "Backfill history": starts one and goes back to the page (303), or shows the page again
/// with the problem (409: one is running or the installation is gone; 422: a bad field).
#[tracing::instrument(skip_all, fields(connection = %path))]
pub async fn start_backfill_form(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<i64>,
    form: web::Form<BackfillForm>,
) -> Result<HttpResponse, ApiError> {
    check_csrf(&req, &form.csrf)?;
    let connection = find_connection(&state, path.into_inner()).await?;
    let now = state.clock.now();
    // The same request the JSON API reads, so both check it one way.
    let repository = form.repository.as_deref().map(str::trim).filter(|r| !r.is_empty());
    let body = match repository {
        Some(name) => json!({"since": form.since, "repositories": [name]}),
        None => json!({"since": form.since}),
    };
    let request = match BackfillRequest::from_json(&body, now) {
        Ok(request) => request,
        Err(invalid) => {
            let problem = FormProblem {
                title: "No backfill was started: the form has a problem.".to_owned(),
                messages: invalid
                    .fields
                    .iter()
                    .map(|p| {
                        let field = if p.field.starts_with("repositories") {
                            "Repository"
                        } else {
                            "Since"
                        };
                        format!("{field} {}.", p.message.trim_end_matches('.'))
                    })
                    .collect(),
            };
            return problem_page(
                &req,
                &state,
                &connection,
                &form,
                StatusCode::UNPROCESSABLE_ENTITY,
                problem,
            )
            .await;
        }
    };
    match backfill::start(&state.store, &connection, &request, now).await {
        Ok(backfill) => {
            state.jobs_wake.notify_one();
            tracing::info!(backfill = backfill.id, since = %backfill.since, "backfill started from the page");
            Ok(redirect(&format!(
                "/connections/{}?started={}#backfills",
                connection.id, backfill.id
            )))
        }
        Err(StartError::Store(error)) => Err(error.into()),
        Err(error @ (StartError::Unfinished(_) | StartError::Deleted)) => {
            let problem = FormProblem {
                title: "No backfill was started.".to_owned(),
                messages: vec![format!("{}.", capitalized(&error.to_string()))],
            };
            problem_page(&req, &state, &connection, &form, StatusCode::CONFLICT, problem).await
        }
    }
}

/// The connection's page again, the form as it was sent and the problem above it.
async fn problem_page(
    req: &HttpRequest,
    state: &AppState,
    connection: &Connection,
    form: &BackfillForm,
    status: StatusCode,
    problem: FormProblem,
) -> Result<HttpResponse, ApiError> {
    let (csrf, cookie) = csrf(req, state)?;
    let mut page = connection_page(state, csrf, connection, Some(form)).await?;
    page.problem = Some(problem);
    Ok(html(status, page.render(), cookie))
}

fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}
