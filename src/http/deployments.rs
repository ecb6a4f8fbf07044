//! `GET /deployments`, `GET /deployments/{id}`: the deploy history as JSON.

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;

use super::auth::{check_throttle, credential_failure, Viewer};
use super::body::read_limited;
use super::pages::{self, RawFilters};
use super::AppState;
use crate::connections;
use crate::credentials::{self, Credential};
use crate::deploys::api::{Idempotency, RegisterError};
use crate::deploys::{self, DeployFilter, DeployStatus};
use crate::error::{ApiError, FieldError};
use crate::idempotency;
use crate::limits::Name;
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
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<DeploymentsQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    if !pages::wants_json(&req) {
        if !pages::is_admin(&req).await? {
            return Ok(pages::to_login(&req));
        }
        let raw = RawFilters {
            repository: query.repository.clone(),
            environment: query.environment.clone(),
            status: query.status.clone(),
            sha: query.sha.clone(),
            limit: query.limit,
        };
        return match parse_query(query) {
            Ok((filter, limit)) => pages::render_deployments(&req, &state, &filter, limit, &raw).await,
            Err(error) => Ok(pages::bad_filters_page(&error)),
        };
    }
    let viewer = Viewer::from_request(&req, &mut Payload::None).await?;
    let (mut filter, limit) = parse_query(query)?;
    if let Some(scope) = viewer.connection_scope() {
        if filter.connection_id.is_some_and(|asked| asked != scope) {
            return Err(forbidden_connection());
        }
        filter.connection_id = Some(scope);
    }
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
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    if !pages::wants_json(&req) {
        return pages::render_deployment(&req, &state, id).await;
    }
    let viewer = Viewer::from_request(&req, &mut Payload::None).await?;
    let not_found = || ApiError::not_found(format!("no deployment with id {id}"));
    let (deploy, statuses) = deploys::get(&state.store, id).await?.ok_or_else(not_found)?;
    // Another connection's deploy does not exist, as far as a credential can tell.
    if viewer
        .connection_scope()
        .is_some_and(|scope| scope != deploy.connection_id)
    {
        return Err(not_found());
    }
    let mut body = serde_json::to_value(&deploy).map_err(|e| ApiError::Internal(e.into()))?;
    body["statuses"] = serde_json::to_value(&statuses).map_err(|e| ApiError::Internal(e.into()))?;
    let brought: Vec<serde_json::Value> = crate::monitoring::plans::brought_by(&state.store, id)
        .await?
        .into_iter()
        .map(|(plan, checks)| json!({"number": plan.pull_number, "plan_id": plan.id, "plan_status": plan.status, "checks": checks}))
        .collect();
    body["pull_requests"] = json!(brought);
    body["batch"] = json!(deploys::live::batch_outcome(&state.store, id).await?);
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
    if let Some(raw) = query.environment.filter(|e| !e.is_empty()) {
        // The same rule as the environments stored: a NUL never reaches the database.
        match Name::parse(&raw) {
            Ok(environment) => filter.environment = Some(environment.into_string()),
            Err(message) => errors.push(FieldError::new("environment", message)),
        }
    }
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
pub fn encode_cursor(time: DateTime<Utc>, id: i64) -> String {
    format!("{}.{id}", time.timestamp_micros())
}

/// A cursor this list handed out: a time both databases can hold (years 1 to 9999; PostgreSQL
/// refuses what chrono accepts before 4713 BC) and a row id.
fn decode_cursor(raw: &str) -> Option<(DateTime<Utc>, i64)> {
    let (micros, id) = raw.split_once('.')?;
    let time = DateTime::from_timestamp_micros(micros.parse().ok()?)?;
    let year = chrono::Datelike::year(&time);
    if !(1..=9999).contains(&year) {
        return None;
    }
    Some((time, id.parse().ok()?))
}

fn forbidden_connection() -> ApiError {
    ApiError::Forbidden {
        kind: "wrong-connection",
        detail: "this credential belongs to another connection".to_owned(),
    }
}

/// The explicit API's body limit.
pub const DEPLOYMENT_BODY_LIMIT: usize = 64 * 1024;

/// `POST /deployments`: register a deployment (or move one along by `external_id`).
#[tracing::instrument(skip_all, fields(credential = tracing::field::Empty, repository = tracing::field::Empty, deploy = tracing::field::Empty))]
pub async fn create_deployment(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let body = read_limited(&req, payload, DEPLOYMENT_BODY_LIMIT).await?;
    let now = state.clock.now();
    let credential = authenticate_deployer(&req, &body, &state).await?;
    let span = tracing::Span::current();
    span.record("credential", credential.id);

    let json: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| ApiError::invalid_field("body", format!("not valid JSON: {e}")))?;
    let request = deploys::api::validate(&json, now)?;
    span.record("repository", request.repository.as_str());

    let connection = connections::get(&state.store, credential.connection_id)
        .await?
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("credential {} has no connection", credential.id)))?;
    if connection.deleted_at.is_some() {
        return Err(ApiError::Forbidden {
            kind: "connection-deleted",
            detail: "the GitHub App installation of this credential was deleted; it accepts no deployments".to_owned(),
        });
    }
    if !connections::owns(&state.store, &connection, &request.repository).await? {
        return Err(ApiError::Forbidden {
            kind: "wrong-connection",
            detail: format!(
                "{} does not belong to this credential's connection ({})",
                request.repository, connection.account.login
            ),
        });
    }

    let key = match req.headers().get("idempotency-key") {
        None => None,
        Some(value) => Some(
            value
                .to_str()
                .map_err(|_| "must be printable ASCII".to_owned())
                .and_then(idempotency::parse_key)
                .map_err(|m| ApiError::bad_request("invalid-header", format!("Idempotency-Key {m}")))?,
        ),
    };
    let hash = idempotency::request_hash(&body);
    let idem = key.as_deref().map(|key| Idempotency {
        credential_id: credential.id,
        key,
        request_hash: &hash,
    });
    let answer = deploys::api::register(&state.store, connection.id, idem.as_ref(), &request, now)
        .await
        .map_err(|e| match e {
            RegisterError::Conflict(detail) => ApiError::Conflict { detail },
            RegisterError::IdempotencyMismatch => ApiError::Conflict { detail: e.to_string() },
            RegisterError::Store(store) => store.into(),
        })?;
    span.record("deploy", answer.deploy_id);
    state.jobs_wake.notify_one();
    tracing::info!(created = answer.created, "deployment registered through the API");
    let mut response = if answer.created {
        HttpResponse::Created()
    } else {
        HttpResponse::Ok()
    };
    Ok(response
        .insert_header((header::LOCATION, format!("/deployments/{}", answer.deploy_id)))
        .json(answer.deploy))
}

/// HTTP Basic, or the signed form (`X-Shiplog-Credential`, `-Timestamp`, `-Signature-256`).
async fn authenticate_deployer(req: &HttpRequest, body: &[u8], state: &AppState) -> Result<Credential, ApiError> {
    let now = state.clock.now();
    if let Some((username, password)) = super::auth::basic_credentials(req) {
        check_throttle(req, state)?;
        return credentials::authenticate_basic(&state.store, &username, &password, now)
            .await
            .map_err(|error| credential_failure(req, state, error));
    }
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    match (header("x-shiplog-credential"), header("x-shiplog-timestamp"), header("x-shiplog-signature-256")) {
        (Some(username), Some(timestamp), Some(signature)) => {
            check_throttle(req, state)?;
            credentials::authenticate_signed(&state.store, username.trim(), timestamp, signature, body, now)
                .await
                .map_err(|error| credential_failure(req, state, error))
        }
        _ => Err(ApiError::Unauthorized {
            kind: "missing-credentials",
            detail: "authenticate with a deploy credential: HTTP Basic, or X-Shiplog-Credential, X-Shiplog-Timestamp and X-Shiplog-Signature-256".to_owned(),
            challenge: Some("Basic realm=\"shiplog\""),
        }),
    }
}
