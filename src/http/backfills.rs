//! `POST /api/connections/{id}/backfill` (start one: 202 with its id and a `Location`),
//! `GET /api/connections/{id}/backfills` (the connection's, newest first) and
//! `GET /api/backfills/{id}` (one, with its progress). Admin only.

use actix_web::{web, HttpResponse};

use super::auth::Admin;
use super::AppState;
use crate::backfill::{self, BackfillRequest, StartError};
use crate::connections;
use crate::error::ApiError;

/// How many of a connection's backfills the list shows.
const LISTED: u64 = 20;

#[utoipa::path(post, path = "/api/connections/{id}/backfill", params(("id" = i64, Path, description = "the connection")),
    request_body(content = Object, description = "what to backfill"),
    responses(
        (status = 202, description = "started: the backfill, with its `Location`", body = backfill::BackfillView),
        (status = 404, description = "no such connection"),
        (status = 409, description = "a backfill is unfinished"),
        (status = 422, description = "names each invalid field"),
    ))]
#[tracing::instrument(skip_all, fields(connection = %path))]
pub async fn start_backfill(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<i64>,
    body: web::Json<serde_json::Value>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let now = state.clock.now();
    let request = BackfillRequest::from_json(&body, now)?;
    let connection = connections::get(&state.store, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no connection with id {id}")))?;
    let started = backfill::start(&state.store, &connection, &request, now)
        .await
        .map_err(|error| match error {
            StartError::Unfinished(_) | StartError::Deleted => ApiError::Conflict {
                detail: error.to_string(),
            },
            StartError::Store(error) => error.into(),
        })?;
    // The worker may be idle for half a minute: the first step runs now.
    state.jobs_wake.notify_one();
    tracing::info!(backfill = started.id, since = %started.since, "backfill started");
    Ok(HttpResponse::Accepted()
        .insert_header(("Location", format!("/api/backfills/{}", started.id)))
        .json(started.view(now)))
}

#[utoipa::path(get, path = "/api/backfills/{id}", params(("id" = i64, Path, description = "the backfill")),
    responses((status = 200, description = "the backfill with its progress", body = backfill::BackfillView), (status = 404, description = "no such backfill")))]
#[tracing::instrument(skip_all, fields(backfill = %path))]
pub async fn get_backfill(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let found = backfill::get(&state.store, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no backfill with id {id}")))?;
    Ok(HttpResponse::Ok().json(found.view(state.clock.now())))
}

#[utoipa::path(get, path = "/api/connections/{id}/backfills", params(("id" = i64, Path, description = "the connection")),
    responses((status = 200, description = "the connection's last backfills, newest first", body = BackfillList), (status = 404, description = "no such connection")))]
#[tracing::instrument(skip_all, fields(connection = %path))]
pub async fn list_backfills(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    connections::get(&state.store, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no connection with id {id}")))?;
    let now = state.clock.now();
    let views: Vec<_> = backfill::for_connection(&state.store, id, LISTED)
        .await?
        .iter()
        .map(|b| b.view(now))
        .collect();
    Ok(HttpResponse::Ok().json(BackfillList { backfills: views }))
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct BackfillList {
    backfills: Vec<backfill::BackfillView>,
}
