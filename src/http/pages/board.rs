//! The live board (`/`, the landing page after sign-in) and a repository's environments over
//! time (`/repositories/{owner}/{name}`). What they show is built by `board`; this file only
//! words it: relative and exact times, the warning badge, the drift sentence.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use chrono::{DateTime, Utc};

use super::{csrf, exact, html, relative_time};
use crate::board::{self, Cell, Drift};
use crate::error::ApiError;
use crate::http::auth::Caller;
use crate::http::board::{parse_filter, BoardQuery};
use crate::http::session::urlencode;
use crate::http::AppState;
use crate::types::RepoName;

struct SectionView {
    connection_id: i64,
    account: String,
    environments: Vec<String>,
    rows: Vec<RowView>,
}

struct RowView {
    repository: String,
    repository_url: String,
    cells: Vec<Option<CellView>>,
}

struct CellView {
    deployment_id: i64,
    sha: String,
    short_sha: String,
    title: Option<String>,
    pull_request: Option<i64>,
    relative: String,
    exact: String,
    creator: Option<String>,
    warning: Option<Warning>,
    drift: Option<DriftView>,
}

/// The newest attempt when it is not the live deploy.
struct Warning {
    deployment_id: i64,
    status: String,
    label: String,
    short_sha: String,
    relative: String,
}

struct DriftView {
    /// `in_sync`, `ahead`, `diverged`, `unrelated`, `unread` or `computing`: the CSS class.
    state: String,
    text: String,
    title: String,
}

#[derive(Template)]
#[template(path = "board.html")]
struct BoardPage {
    tab: &'static str,
    csrf: String,
    sections: Vec<SectionView>,
    filter_repository: String,
    filter_connection: String,
    connections: Vec<(i64, String)>,
    repository_count: usize,
    error: Option<String>,
}

/// "2 days", "5 minutes", or "just merged" under a minute.
fn age(now: DateTime<Utc>, at: DateTime<Utc>) -> String {
    match relative_time(now, at).as_str() {
        "just now" => "just merged".to_owned(),
        relative => relative.trim_end_matches(" ago").to_owned(),
    }
}

fn plural(n: i64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// "3 PRs behind staging · oldest 2 days", "in sync", "diverged from staging", "computing…".
fn drift_view(now: DateTime<Utc>, drift: &Drift) -> DriftView {
    let left = &drift.from_environment;
    let (text, title) = match drift.state.as_str() {
        "in_sync" => ("in sync".to_owned(), format!("runs everything {left} runs")),
        "ahead" => {
            let mut text = if drift.pull_requests > 0 {
                format!("{} behind {left}", plural(drift.pull_requests, "PR", "PRs"))
            } else {
                format!("{} behind {left}", plural(drift.commits, "commit", "commits"))
            };
            if let Some(oldest) = drift.oldest_merged_at {
                text.push_str(&format!(" · oldest {}", age(now, oldest)));
            }
            let title = format!(
                "{} and {} live in {left} and not here yet",
                plural(drift.commits, "commit", "commits"),
                plural(drift.pull_requests, "merged PR", "merged PRs")
            );
            (text, title)
        }
        "diverged" => (
            format!("diverged from {left}"),
            format!(
                "this environment has {} that {left} lacks ({} the other way)",
                plural(drift.behind_by, "commit", "commits"),
                drift.commits
            ),
        ),
        "unrelated" => (
            format!("unrelated to {left}"),
            "the two SHAs share no history".to_owned(),
        ),
        "unread" => (
            format!("drift from {left} unknown"),
            "GitHub could not compare the two".to_owned(),
        ),
        _ => (
            "computing…".to_owned(),
            format!("the drift from {left} is being computed for the SHAs live now"),
        ),
    };
    DriftView {
        state: drift.state.clone(),
        text,
        title,
    }
}

fn cell_view(now: DateTime<Utc>, cell: &Cell) -> CellView {
    CellView {
        deployment_id: cell.live.deployment_id,
        sha: cell.live.sha.clone(),
        short_sha: cell.live.short_sha.clone(),
        title: cell.live.title.clone(),
        pull_request: cell.live.pull_request,
        relative: relative_time(now, cell.live.since),
        exact: exact(cell.live.since),
        creator: cell.live.creator.clone(),
        warning: cell.attempt.as_ref().map(|a| Warning {
            deployment_id: a.deployment_id,
            label: match a.status.as_str() {
                "failed" => "newer deploy failed".to_owned(),
                "rolled_back" => "newer deploy rolled back".to_owned(),
                "initiated" | "building" | "deploying" => format!("newer deploy {}", a.status),
                other => format!("newer deploy {other}"),
            },
            status: a.status.clone(),
            short_sha: a.sha.chars().take(7).collect(),
            relative: relative_time(now, a.at),
        }),
        drift: cell.drift.as_ref().map(|d| drift_view(now, d)),
    }
}

fn repository_url(name: &str) -> String {
    match name.split_once('/') {
        Some((owner, repo)) => format!("/repositories/{}/{}", urlencode(owner), urlencode(repo)),
        None => format!("/repositories/{}", urlencode(name)),
    }
}

/// `/`: the live board, filtered by `repository` and `connection`.
#[tracing::instrument(skip_all)]
pub async fn show_board(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
    query: web::Query<BoardQuery>,
) -> Result<HttpResponse, ApiError> {
    let (csrf, cookie) = csrf(&req, &state)?;
    let scope = caller.scope();
    let mut page = BoardPage {
        tab: "live",
        csrf,
        sections: Vec::new(),
        filter_repository: query.repository.clone().unwrap_or_default(),
        filter_connection: query.connection.clone().unwrap_or_default(),
        connections: Vec::new(),
        repository_count: 0,
        error: None,
    };
    page.connections = crate::connections::list(&state.store)
        .await?
        .into_iter()
        .filter(|c| c.deleted_at.is_none() && scope.includes(crate::types::ConnectionId(c.id)))
        .map(|c| (c.id, c.account.login))
        .collect();
    let filter = match parse_filter(&query, scope) {
        Ok(filter) => filter,
        Err(error) => {
            page.error = Some(error.to_string());
            return Ok(html(StatusCode::BAD_REQUEST, page.render(), cookie));
        }
    };
    let built = board::build(&state.store, scope, &filter).await?;
    let now = state.clock.now();
    page.sections = built
        .connections
        .iter()
        .map(|section| SectionView {
            connection_id: section.connection_id,
            account: section.account.clone(),
            environments: section.environments.clone(),
            rows: section
                .rows
                .iter()
                .map(|row| RowView {
                    repository_url: repository_url(&row.repository),
                    repository: row.repository.clone(),
                    cells: row
                        .cells
                        .iter()
                        .map(|c| c.as_ref().map(|c| cell_view(now, c)))
                        .collect(),
                })
                .collect(),
        })
        .collect();
    page.repository_count = page.sections.iter().map(|s| s.rows.len()).sum();
    Ok(html(StatusCode::OK, page.render(), cookie))
}

struct EnvironmentView {
    environment: String,
    deploys: Vec<WentLiveView>,
}

struct WentLiveView {
    deployment_id: i64,
    sha: String,
    short_sha: String,
    status: String,
    status_label: String,
    creator: Option<String>,
    since_relative: String,
    since_exact: String,
    until: Option<(String, String)>,
}

#[derive(Template)]
#[template(path = "repository.html")]
struct RepositoryPage {
    tab: &'static str,
    csrf: String,
    repository: String,
    environments: Vec<EnvironmentView>,
    per_environment: i64,
}

/// `/repositories/{owner}/{name}`: the repository's environments in order, each with the deploys
/// that went live there, newest first. Another connection's repository does not exist (404).
#[tracing::instrument(skip_all, fields(repository = tracing::field::Empty))]
pub async fn show_repository(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (owner, name) = path.into_inner();
    let repository = RepoName::parse(&format!("{owner}/{name}"))
        .map_err(|message| ApiError::not_found(format!("no such repository: {message}")))?;
    tracing::Span::current().record("repository", repository.as_str());
    let history = board::repository(&state.store, caller.scope(), &repository)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no deploys of {repository}")))?;
    let (csrf, cookie) = csrf(&req, &state)?;
    let now = state.clock.now();
    let page = RepositoryPage {
        tab: "live",
        csrf,
        repository: history.repository,
        per_environment: board::HISTORY_PER_ENVIRONMENT,
        environments: history
            .environments
            .into_iter()
            .map(|e| EnvironmentView {
                environment: e.environment,
                deploys: e
                    .deploys
                    .into_iter()
                    .map(|d| WentLiveView {
                        deployment_id: d.deployment_id,
                        status_label: d.status.replace('_', " "),
                        sha: d.sha,
                        short_sha: d.short_sha,
                        status: d.status,
                        creator: d.creator,
                        since_relative: relative_time(now, d.since),
                        since_exact: exact(d.since),
                        until: d.until.map(|u| (relative_time(now, u), exact(u))),
                    })
                    .collect(),
            })
            .collect(),
    };
    Ok(html(StatusCode::OK, page.render(), cookie))
}
