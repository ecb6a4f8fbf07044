//! `GET /api/jobs` (admin): the durable job queue, for operators.

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};

use super::auth::Admin;
use super::AppState;
use crate::error::ApiError;
use crate::jobs::{self, JobState};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct JobsQuery {
    state: Option<String>,
    limit: Option<u64>,
}

#[utoipa::path(get, path = "/api/jobs", params(JobsQuery),
    responses((status = 200, description = "the jobs, newest first", body = JobList), (status = 400, description = "an invalid state or limit")))]
#[tracing::instrument(skip_all)]
pub async fn list_jobs(
    _: Admin,
    state: web::Data<AppState>,
    query: web::Query<JobsQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let job_state = match query.state.as_deref() {
        None => None,
        Some(raw) => Some(JobState::parse(raw).ok_or_else(|| {
            let states: Vec<&str> = JobState::ALL.iter().map(|s| s.as_str()).collect();
            ApiError::invalid_field("state", format!("must be one of {}", states.join(", ")))
        })?),
    };
    let limit = query.limit.unwrap_or(100).clamp(1, 500);
    let list = jobs::list(&state.store, job_state, limit).await?;
    Ok(HttpResponse::Ok().json(JobList { jobs: list }))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct JobList {
    jobs: Vec<jobs::Job>,
}
