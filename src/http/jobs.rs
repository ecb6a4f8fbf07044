//! `GET /api/jobs` (admin): the durable job queue, for operators.

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::auth::Admin;
use super::AppState;
use crate::error::ApiError;
use crate::jobs;

#[derive(Debug, Deserialize)]
pub struct JobsQuery {
    state: Option<String>,
    limit: Option<u64>,
}

const STATES: [&str; 5] = ["queued", "running", "done", "skipped", "dead"];

#[tracing::instrument(skip_all)]
pub async fn list_jobs(
    _: Admin,
    state: web::Data<AppState>,
    query: web::Query<JobsQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    if let Some(s) = query.state.as_deref() {
        if !STATES.contains(&s) {
            return Err(ApiError::invalid_field(
                "state",
                format!("must be one of {}", STATES.join(", ")),
            ));
        }
    }
    let limit = query.limit.unwrap_or(100).clamp(1, 500);
    let list = jobs::list(&state.store, query.state.as_deref(), limit).await?;
    Ok(HttpResponse::Ok().json(json!({ "jobs": list })))
}
