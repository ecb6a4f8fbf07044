//! `GET /api/connections`, `GET /api/connections/{id}` (admin).

use actix_web::{web, HttpResponse};
use serde_json::json;

use super::auth::Admin;
use super::AppState;
use crate::connections;
use crate::error::ApiError;

#[tracing::instrument(skip_all)]
pub async fn list_connections(_: Admin, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let list = connections::list(&state.store).await?;
    let views: Vec<_> = list.iter().map(connections::Connection::view).collect();
    Ok(HttpResponse::Ok().json(json!({ "connections": views })))
}

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
    Ok(HttpResponse::Ok().json(connection.view()))
}

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
        Some(Err(errors)) => Err(ApiError::unprocessable(errors)),
        Some(Ok(connection)) => {
            tracing::info!(settings = ?connection.settings, "connection settings changed");
            Ok(HttpResponse::Ok().json(connection.view()))
        }
    }
}
