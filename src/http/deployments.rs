//! `GET /deployments`, `GET /deployments/{id}`: the deploy history as JSON.

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;

use super::auth::Admin;
use super::AppState;
use crate::deploys::{self, DeployFilter, DeployStatus};
use crate::error::{ApiError, FieldError};
use crate::types::{CommitSha, RepoName};

const DEFAULT_LIMIT: u64 = 50;
const MAX_LIMIT: u64 = 200;

#[derive(Debug, Deserialize)]
pub struct DeploymentsQuery {
    repository: Option<String>,
    environment: Option<String>,
    status: Option<String>,
    sha: Option<String>,
    connection: Option<i64>,
    limit: Option<u64>,
    cursor: Option<String>,
}

#[tracing::instrument(skip_all)]
pub async fn list_deployments(
    _: Admin,
    state: web::Data<AppState>,
    query: web::Query<DeploymentsQuery>,
) -> Result<HttpResponse, ApiError> {
    let (filter, limit) = parse_query(query.into_inner())?;
    // One more than asked tells whether there is a next page.
    let mut page = deploys::list(&state.store, &filter, limit + 1).await?;
    let next_cursor = if page.len() as u64 > limit {
        page.truncate(limit as usize);
        page.last().map(|d| encode_cursor(d.deploy_time, d.id))
    } else {
        None
    };
    Ok(HttpResponse::Ok().json(json!({ "deployments": page, "next_cursor": next_cursor })))
}

#[tracing::instrument(skip_all, fields(deploy = %path))]
pub async fn get_deployment(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let (deploy, statuses) = deploys::get(&state.store, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no deployment with id {id}")))?;
    let mut body = serde_json::to_value(&deploy).map_err(|e| ApiError::Internal(e.into()))?;
    body["statuses"] = serde_json::to_value(&statuses).map_err(|e| ApiError::Internal(e.into()))?;
    Ok(HttpResponse::Ok().json(body))
}

fn parse_query(query: DeploymentsQuery) -> Result<(DeployFilter, u64), ApiError> {
    let mut errors = Vec::new();
    let mut filter = DeployFilter {
        connection_id: query.connection,
        ..DeployFilter::default()
    };
    if let Some(raw) = query.repository.filter(|r| !r.is_empty()) {
        match RepoName::parse(&raw) {
            Ok(name) => filter.repository = Some(name),
            Err(message) => errors.push(FieldError::new("repository", message)),
        }
    }
    filter.environment = query.environment.filter(|e| !e.is_empty());
    if let Some(raw) = query.status.filter(|s| !s.is_empty()) {
        match DeployStatus::parse(&raw) {
            Some(status) => filter.status = Some(status),
            None => {
                let names: Vec<&str> = DeployStatus::ALL.iter().map(|s| s.as_str()).collect();
                errors.push(FieldError::new(
                    "status",
                    format!("must be one of {}", names.join(", ")),
                ));
            }
        }
    }
    if let Some(raw) = query.sha.filter(|s| !s.is_empty()) {
        let prefix_ok = (4..=40).contains(&raw.len()) && raw.bytes().all(|b| b.is_ascii_hexdigit());
        match (prefix_ok, CommitSha::parse(&raw)) {
            (_, Ok(sha)) => filter.sha_prefix = Some(sha.as_str().to_owned()),
            (true, Err(_)) => filter.sha_prefix = Some(raw.to_ascii_lowercase()),
            (false, Err(_)) => errors.push(FieldError::new("sha", "must be 4 to 40 hex characters (a prefix)")),
        }
    }
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        errors.push(FieldError::new("limit", format!("must be between 1 and {MAX_LIMIT}")));
    }
    if let Some(raw) = query.cursor.filter(|c| !c.is_empty()) {
        match decode_cursor(&raw) {
            Some(position) => filter.before = Some(position),
            None => errors.push(FieldError::new("cursor", "is not a cursor this server handed out")),
        }
    }
    if errors.is_empty() {
        Ok((filter, limit))
    } else {
        let detail = errors
            .iter()
            .map(|e| format!("{}: {}", e.field, e.message))
            .collect::<Vec<_>>()
            .join("; ");
        Err(ApiError::BadRequest {
            kind: "invalid-query",
            detail,
            errors,
        })
    }
}

/// Opaque to clients: `<deploy time in µs>.<id>`.
fn encode_cursor(time: DateTime<Utc>, id: i64) -> String {
    format!("{}.{id}", time.timestamp_micros())
}

fn decode_cursor(raw: &str) -> Option<(DateTime<Utc>, i64)> {
    let (micros, id) = raw.split_once('.')?;
    let time = DateTime::from_timestamp_micros(micros.parse().ok()?)?;
    Some((time, id.parse().ok()?))
}
