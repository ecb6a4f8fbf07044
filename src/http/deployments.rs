//! `POST /deployments` (a deploy credential registers a deployment) and the deploy history as
//! JSON: `GET /deployments`, `GET /deployments/{id}`. The same paths as HTML are the pages
//! (`pages/history.rs`, `pages/deployment.rs`); `http/mod.rs` sends each request to one or the
//! other by its `Accept` header. The pages read their filters with [`parse_query`].

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::auth::{identify_signed, BodySigner, Caller, NamedIn, Principal};
use super::body::read_limited;
use super::pages::{commit_url, pull_url};
use super::AppState;
use crate::deploys::api::{Idempotency, RegisterError};
use crate::deploys::{self, cursor, DeployFilter, DeployStatus};
use crate::error::{ApiError, FieldError};
use crate::idempotency;
use crate::limits::Name;
use crate::shipped::changes::Changes;
use crate::shipped::{self, Shipped};
use crate::types::{CommitSha, RepoName, Scope};

const DEFAULT_LIMIT: u64 = 50;
const MAX_LIMIT: u64 = 200;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeploymentsQuery {
    pub repository: Option<String>,
    pub environment: Option<String>,
    pub status: Option<String>,
    pub sha: Option<String>,
    pub connection: Option<i64>,
    pub limit: Option<u64>,
    pub cursor: Option<String>,
}

#[utoipa::path(get, path = "/deployments", params(DeploymentsQuery),
    responses((status = 200, description = "a page of the history, newest first", body = DeploymentList), (status = 400, description = "an invalid filter, each named")))]
#[tracing::instrument(skip_all)]
pub async fn list_deployments(
    caller: Caller,
    state: web::Data<AppState>,
    query: web::Query<DeploymentsQuery>,
) -> Result<HttpResponse, ApiError> {
    let (mut filter, limit) = parse_query(query.into_inner())?;
    match caller.scope() {
        Scope::All => {}
        Scope::Connection(scope) => {
            if filter.connection_id.is_some_and(|asked| asked != scope.0) {
                return Err(forbidden_connection());
            }
            filter.connection_id = Some(scope.0);
        }
        Scope::Nothing => {
            if filter.connection_id.is_some() {
                return Err(forbidden_connection());
            }
            return Ok(HttpResponse::Ok().json(DeploymentList {
                deployments: Vec::new(),
                next_cursor: None,
            }));
        }
    }
    let page = cursor::page(&state.store, &filter, limit).await?;
    Ok(HttpResponse::Ok().json(DeploymentList {
        deployments: page.deploys,
        next_cursor: page.next_cursor,
    }))
}

/// A page of the history, newest first.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct DeploymentList {
    deployments: Vec<crate::deploys::Deploy>,
    /// Pass as `cursor` for the next page; `null` on the last.
    next_cursor: Option<String>,
}

#[utoipa::path(get, path = "/deployments/{id}", params(("id" = i64, Path, description = "the deploy")),
    responses((status = 200, description = "the deploy with its status timeline", body = Object), (status = 404, description = "none the caller may see")))]
#[tracing::instrument(skip_all, fields(deploy = %path))]
pub async fn get_deployment(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let not_found = || ApiError::not_found(format!("no deployment with id {id}"));
    let (deploy, statuses) = deploys::get(&state.store, id).await?.ok_or_else(not_found)?;
    // Another connection's deploy does not exist, as far as a credential can tell.
    if !caller.may_see(deploy.connection_id) {
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
    body["shipped"] = match shipped::view(&state.store, &deploy).await? {
        Some(shown) => shipped_json(&state, deploy.repository.as_str(), &shown),
        None => serde_json::Value::Null,
    };
    Ok(HttpResponse::Ok().json(body))
}

/// Loose commits the JSON lists at most per list (shipped, taken out); `omitted_commits` counts
/// the rest. Pull requests are all listed.
pub const JSON_COMMITS: usize = 1000;

/// What a deploy shipped, as `GET /deployments/{id}` tells it (README "What each deploy
/// shipped"), with links to GitHub.
fn shipped_json(state: &AppState, repository: &str, shown: &Shipped) -> serde_json::Value {
    let mut body = changes_json(state, repository, &shown.shipped);
    body["kind"] = json!(shown.kind.as_str());
    body["base"] = match &shown.base {
        Some(base) => json!({"deployment_id": base.deployment_id, "sha": base.sha}),
        None => serde_json::Value::Null,
    };
    body["status"] = json!(shown.status);
    body["ahead_by"] = json!(shown.ahead_by);
    body["behind_by"] = json!(shown.behind_by);
    body["note"] = json!(shown.note);
    body["complete"] = json!(shown.complete);
    body["computed_at"] = json!(shown.computed_at);
    body["taken_out"] = match &shown.taken_out {
        Some(taken) => changes_json(state, repository, taken),
        None => serde_json::Value::Null,
    };
    body
}

fn changes_json(state: &AppState, repository: &str, changes: &Changes) -> serde_json::Value {
    let pull_requests: Vec<serde_json::Value> = changes
        .pull_requests
        .iter()
        .map(|pr| {
            json!({
                "number": pr.number,
                "title": pr.title,
                "author": pr.author,
                "merged_at": pr.merged_at,
                "created_at": pr.created_at,
                "merge_commit_sha": pr.merge_commit_sha,
                "url": pull_url(state, repository, pr.number),
                "commits": pr.commits,
            })
        })
        .collect();
    let commits: Vec<serde_json::Value> = changes
        .commits
        .iter()
        .take(JSON_COMMITS)
        .map(|c| {
            json!({
                "sha": c.sha,
                "title": c.title,
                "author": c.author,
                "authored_at": c.authored_at,
                "url": commit_url(state, repository, &c.sha),
            })
        })
        .collect();
    json!({
        "pull_requests": pull_requests,
        "commits": commits,
        "omitted_commits": changes.commits.len().saturating_sub(JSON_COMMITS),
        "total_commits": changes.total_commits,
    })
}

/// The history's filters, validated: 400 naming every invalid one.
pub fn parse_query(query: DeploymentsQuery) -> Result<(DeployFilter, u64), ApiError> {
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
            Ok(environment) => filter.environment = Some(environment.into()),
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
        match cursor::decode(&raw) {
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

fn forbidden_connection() -> ApiError {
    ApiError::Forbidden {
        kind: "wrong-connection",
        detail: "this credential belongs to another connection".to_owned(),
    }
}

/// The explicit API's body limit.
pub const DEPLOYMENT_BODY_LIMIT: usize = 64 * 1024;

#[utoipa::path(post, path = "/deployments",
    request_body(content = Object, description = "the deployment"),
    responses(
        (status = 201, description = "registered", body = crate::deploys::Deploy),
        (status = 200, description = "moved along, found by `external_id` (or the same `Idempotency-Key` again)", body = crate::deploys::Deploy),
        (status = 409, description = "`external_id` names another deploy, or the `Idempotency-Key` was used with another body"),
        (status = 422, description = "names each invalid field"),
    ))]
/// `POST /deployments`: register a deployment (or move one along by `external_id`).
#[tracing::instrument(skip_all, fields(credential = tracing::field::Empty, repository = tracing::field::Empty, deploy = tracing::field::Empty))]
pub async fn create_deployment(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let body = read_limited(&req, payload, DEPLOYMENT_BODY_LIMIT).await?;
    let now = state.clock.now();
    let principal = identify_signed(&req, &body, BodySigner::Deployer).await?;
    let Principal::Deployer(credential) = &principal else {
        return Err(ApiError::Internal(anyhow::anyhow!(
            "POST /deployments let in a caller that is not a deploy credential"
        )));
    };
    let span = tracing::Span::current();
    span.record("credential", credential.id);

    let json: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| ApiError::invalid_field("body", format!("not valid JSON: {e}")))?;
    let request = deploys::api::validate(&json, now)?;
    span.record("repository", request.repository.as_str());

    let connection = principal
        .connection_for(&state.store, &request.repository, NamedIn::Body)
        .await?;

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
    if !answer.replayed {
        state.metrics.record_deploy("api", request.status.as_str());
    }
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
