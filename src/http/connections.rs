//! `GET /api/connections`, `GET /api/connections/{id}`, `GET /api/connections/{id}/repositories`
//! (admin).

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::auth::Admin;
use super::AppState;
use crate::connections::{self, Connection};
use crate::error::{ApiError, FieldError};
use crate::types::RepoName;

const DEFAULT_REPOSITORY_LIMIT: u64 = 100;
const MAX_REPOSITORY_LIMIT: u64 = 1000;

#[utoipa::path(get, path = "/api/connections",
    responses((status = 200, description = "`{connections: [...]}`", body = Object)))]
#[tracing::instrument(skip_all)]
pub async fn list_connections(_: Admin, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let list = connections::list(&state.store).await?;
    let mut views = Vec::with_capacity(list.len());
    for connection in &list {
        views.push(view(&state, connection).await?);
    }
    Ok(HttpResponse::Ok().json(json!({ "connections": views })))
}

#[utoipa::path(get, path = "/api/connections/{id}", params(("id" = i64, Path, description = "the connection")),
    responses((status = 200, description = "the connection and its settings", body = Object), (status = 404, description = "no such connection")))]
#[tracing::instrument(skip_all, fields(connection = %path))]
pub async fn get_connection(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let connection = connections::get(&state.store, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no connection with id {id}")))?;
    Ok(HttpResponse::Ok().json(view(&state, &connection).await?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RepositoriesQuery {
    after: Option<String>,
    limit: Option<String>,
}

#[utoipa::path(get, path = "/api/connections/{id}/repositories", params(("id" = i64, Path, description = "the connection"), RepositoriesQuery),
    responses(
        (status = 200, description = "a page in name order", body = RepositoryPage),
        (status = 400, description = "an invalid `after`"),
        (status = 422, description = "an invalid `limit`"),
        (status = 404, description = "no such connection"),
    ))]
/// `GET /api/connections/{id}/repositories?after=owner/repo&limit=100`: the repositories a
/// page at a time, in name order (case-insensitive), with `next` while more follow.
#[tracing::instrument(skip_all, fields(connection = %path))]
pub async fn list_connection_repositories(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<i64>,
    query: web::Query<RepositoriesQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let after = match query.after.as_deref().filter(|a| !a.is_empty()) {
        Some(after) => Some(RepoName::parse(after).map_err(|m| ApiError::invalid_field("after", m))?),
        None => None,
    };
    let limit = match query.limit.as_deref() {
        None => DEFAULT_REPOSITORY_LIMIT,
        Some(raw) => raw
            .parse::<u64>()
            .ok()
            .filter(|l| (1..=MAX_REPOSITORY_LIMIT).contains(l))
            .ok_or_else(|| {
                ApiError::unprocessable(vec![FieldError::new(
                    "limit",
                    format!("must be a whole number from 1 to {MAX_REPOSITORY_LIMIT}"),
                )])
            })?,
    };
    connections::get(&state.store, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no connection with id {id}")))?;
    let mut page = connections::repositories(&state.store, id, after.as_ref(), limit + 1).await?;
    let has_more = page.len() as u64 > limit;
    page.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    let next = has_more.then(|| page.last()).flatten().map(|last| {
        format!(
            "/api/connections/{id}/repositories?after={}&limit={limit}",
            last.as_str()
        )
    });
    let repositories: Vec<&str> = page.iter().map(RepoName::as_str).collect();
    Ok(HttpResponse::Ok().json(RepositoryPage { repositories, next }))
}

/// A page of a connection's repositories.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct RepositoryPage<'a> {
    /// `owner/repo`, in name order.
    repositories: Vec<&'a str>,
    /// The next page's URL while more follow.
    next: Option<String>,
}

#[utoipa::path(patch, path = "/api/connections/{id}", params(("id" = i64, Path, description = "the connection")),
    request_body(content = Object, description = "the settings to change"),
    responses(
        (status = 200, description = "the connection with its settings", body = Object),
        (status = 404, description = "no such connection"),
        (status = 422, description = "names each invalid field"),
    ))]
/// `PATCH /api/connections/{id}` with a JSON object of settings to change.
#[tracing::instrument(skip_all, fields(connection = %path))]
pub async fn update_connection(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<i64>,
    patch: web::Json<serde_json::Value>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    match connections::update_settings(&state.store, id, &patch, state.clock.now()).await? {
        None => Err(ApiError::not_found(format!("no connection with id {id}"))),
        Some(Err(invalid)) => Err(invalid.into()),
        Some(Ok(connection)) => {
            tracing::info!(settings = ?connection.settings, "connection settings changed");
            // A changed environment order may have queued drift recomputes.
            state.jobs_wake.notify_one();
            Ok(HttpResponse::Ok().json(view(&state, &connection).await?))
        }
    }
}

/// The connection as JSON: its repository count and first names, never its whole list.
async fn view(state: &AppState, connection: &Connection) -> Result<serde_json::Value, ApiError> {
    let sample = connections::repository_sample(&state.store, connection.id).await?;
    serde_json::to_value(connection.view(sample)).map_err(|e| ApiError::Internal(e.into()))
}
