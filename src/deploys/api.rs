//! Deploys from the explicit API (`POST /deployments`), for any CI system.
//!
//! A deploy registered here follows the same lifecycle as one from GitHub: the same history,
//! superseding and `deploy.went_live` job. With an `external_id`, later requests move the same
//! deploy forward (`initiated → building → deploying → live|failed`); moving it backwards, or
//! naming another sha or environment, is a conflict.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{apply_report, Deploy, DeployStatus, NewDeploy, Report, ReportOrder, StatusEntry};
use crate::error::FieldError;
use crate::idempotency::{self, Lookup};
use crate::limits;
use crate::store::deployments as rows;
use crate::store::{Store, StoreError, Writer};
use crate::types::{CommitSha, RepoName};

/// The fields the API accepts; any other is refused.
pub const FIELDS: [&str; 11] = [
    "repository",
    "environment",
    "sha",
    "deploy_time",
    "ref",
    "version",
    "description",
    "build_logs_url",
    "triggered_by",
    "status",
    "external_id",
];

/// Statuses a client may report.
pub const CLIENT_STATUSES: [DeployStatus; 5] = [
    DeployStatus::Initiated,
    DeployStatus::Building,
    DeployStatus::Deploying,
    DeployStatus::Live,
    DeployStatus::Failed,
];

/// A validated request.
#[derive(Clone, Debug)]
pub struct ApiDeployment {
    pub repository: RepoName,
    pub environment: String,
    pub sha: CommitSha,
    pub deploy_time: DateTime<Utc>,
    pub git_ref: Option<String>,
    pub version: Option<String>,
    pub description: Option<String>,
    pub build_logs_url: Option<String>,
    pub triggered_by: Option<String>,
    pub status: DeployStatus,
    pub external_id: Option<String>,
}

/// Checks every field and reports every problem, each with its field.
pub fn validate(body: &Value, now: DateTime<Utc>) -> Result<ApiDeployment, Vec<FieldError>> {
    let Some(object) = body.as_object() else {
        return Err(vec![FieldError::new("body", "must be a JSON object")]);
    };
    let mut errors = Vec::new();
    for key in object.keys() {
        if !FIELDS.contains(&key.as_str()) {
            errors.push(FieldError::new(key, "is not a field of a deployment"));
        }
    }
    let repository = text(object, "repository", Kind::Name, true, &mut errors).and_then(|raw| {
        RepoName::parse(&raw)
            .map_err(|m| errors.push(FieldError::new("repository", m)))
            .ok()
    });
    let environment = text(object, "environment", Kind::Name, true, &mut errors);
    let sha = text(object, "sha", Kind::Name, true, &mut errors).and_then(|raw| {
        CommitSha::parse(&raw)
            .map_err(|m| errors.push(FieldError::new("sha", m)))
            .ok()
    });
    let deploy_time = match text(object, "deploy_time", Kind::Name, false, &mut errors) {
        None => Some(now),
        Some(raw) => match DateTime::parse_from_rfc3339(&raw) {
            Ok(time) => {
                let time = time.with_timezone(&Utc);
                match limits::check_deploy_time(time, now) {
                    Ok(()) => Some(time),
                    Err(message) => {
                        errors.push(FieldError::new("deploy_time", message));
                        None
                    }
                }
            }
            Err(_) => {
                errors.push(FieldError::new(
                    "deploy_time",
                    "must be an RFC 3339 time, e.g. 2025-01-15T10:00:00Z",
                ));
                None
            }
        },
    };
    let status = match text(object, "status", Kind::Name, false, &mut errors) {
        None => Some(DeployStatus::Live),
        Some(raw) => match CLIENT_STATUSES.iter().find(|s| s.as_str() == raw) {
            Some(status) => Some(*status),
            None => {
                let names: Vec<&str> = CLIENT_STATUSES.iter().map(|s| s.as_str()).collect();
                errors.push(FieldError::new(
                    "status",
                    format!("must be one of {}", names.join(", ")),
                ));
                None
            }
        },
    };
    let build_logs_url = text(object, "build_logs_url", Kind::Url, false, &mut errors);
    let git_ref = text(object, "ref", Kind::Name, false, &mut errors);
    let version = text(object, "version", Kind::Name, false, &mut errors);
    let description = text(object, "description", Kind::Text, false, &mut errors);
    let triggered_by = text(object, "triggered_by", Kind::Name, false, &mut errors);
    let external_id = text(object, "external_id", Kind::Name, false, &mut errors);

    match (repository, environment, sha, deploy_time, status) {
        (Some(repository), Some(environment), Some(sha), Some(deploy_time), Some(status)) if errors.is_empty() => {
            Ok(ApiDeployment {
                repository,
                environment,
                sha,
                deploy_time,
                git_ref,
                version,
                description,
                build_logs_url,
                triggered_by,
                status,
                external_id,
            })
        }
        _ => Err(errors),
    }
}

/// What a string field must be (see [`crate::limits`]).
#[derive(Clone, Copy)]
enum Kind {
    Name,
    Text,
    Url,
}

/// A string field: trimmed, non-empty, within the limits of its kind.
fn text(
    object: &Map<String, Value>,
    key: &str,
    kind: Kind,
    required: bool,
    errors: &mut Vec<FieldError>,
) -> Option<String> {
    match object.get(key) {
        None | Some(Value::Null) => {
            if required {
                errors.push(FieldError::new(key, "is required"));
            }
            None
        }
        Some(Value::String(raw)) => {
            let value = raw.trim();
            if value.is_empty() {
                errors.push(FieldError::new(key, "must not be empty"));
                return None;
            }
            let checked = match kind {
                Kind::Name => limits::Name::parse(value).map(limits::Name::into_string),
                Kind::Text => limits::Text::parse(value).map(limits::Text::into_string),
                Kind::Url => limits::HttpUrl::parse(value)
                    .map(limits::HttpUrl::into_string)
                    .map_err(|e| e.to_string()),
            };
            checked
                .map_err(|message| errors.push(FieldError::new(key, message)))
                .ok()
        }
        Some(_) => {
            errors.push(FieldError::new(key, "must be a string"));
            None
        }
    }
}

/// What the API answers; stored as is for `Idempotency-Key` replays.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Answer {
    /// `true` when this request created the deploy (201), `false` when it moved or kept one (200).
    pub created: bool,
    pub deploy_id: i64,
    pub deploy: Value,
}

#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    #[error("{0}")]
    Conflict(String),
    #[error("this Idempotency-Key was used with a different request body")]
    IdempotencyMismatch,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The idempotency key of a request and the hash of its body.
pub struct Idempotency<'a> {
    pub credential_id: i64,
    pub key: &'a str,
    pub request_hash: &'a str,
}

/// Registers (or moves along) a deploy in one transaction, with its idempotent answer.
pub async fn register(
    store: &Store,
    connection_id: i64,
    idempotency: Option<&Idempotency<'_>>,
    request: &ApiDeployment,
    now: DateTime<Utc>,
) -> Result<Answer, RegisterError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match register_once(store, connection_id, idempotency, request, now).await {
            // Two requests with the same new key, or for the same new external id, at once:
            // the loser starts again and finds the winner's work.
            Err(RegisterError::Store(StoreError::Conflict(_))) if attempt < 3 => continue,
            other => return other,
        }
    }
}

async fn register_once(
    store: &Store,
    connection_id: i64,
    idempotency: Option<&Idempotency<'_>>,
    request: &ApiDeployment,
    now: DateTime<Utc>,
) -> Result<Answer, RegisterError> {
    let tx = store.begin().await?;
    if let Some(idem) = idempotency {
        match idempotency::lookup::<Answer>(&tx, idem.credential_id, idem.key, idem.request_hash, now).await? {
            Lookup::Replay(answer) => return Ok(answer),
            Lookup::Mismatch => return Err(RegisterError::IdempotencyMismatch),
            Lookup::New => {}
        }
    }
    let (created, id) = record(&tx, connection_id, request, now).await?;
    let deploy = rows::find(&tx, id)
        .await?
        .ok_or_else(|| StoreError::Corrupt(format!("deploy {id} vanished")))?;
    let deploy_json = serde_json::to_value(&deploy).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let answer = Answer {
        created,
        deploy_id: deploy.id,
        deploy: deploy_json,
    };
    if let Some(idem) = idempotency {
        let status = if created { 201 } else { 200 };
        idempotency::save(
            &tx,
            idem.credential_id,
            idem.key,
            idem.request_hash,
            status,
            &answer,
            now,
        )
        .await?;
    }
    tx.commit().await?;
    Ok(answer)
}

/// Rank in the client-visible progression; a report may not go below the current rank.
fn rank(status: DeployStatus) -> i64 {
    match status {
        DeployStatus::Initiated => 0,
        DeployStatus::Building => 1,
        DeployStatus::Deploying => 2,
        DeployStatus::Live | DeployStatus::Failed => 3,
        DeployStatus::Superseded | DeployStatus::RolledBack => 4,
    }
}

async fn record(
    db: &impl Writer,
    connection_id: i64,
    request: &ApiDeployment,
    now: DateTime<Utc>,
) -> Result<(bool, i64), RegisterError> {
    super::lock_environment(db, connection_id, &request.repository, &request.environment).await?;
    if let Some(external_id) = &request.external_id {
        if let Some(existing) =
            rows::find_by_external_id(db, connection_id, request.repository.key(), external_id).await?
        {
            return advance(db, &existing, request, now).await.map(|id| (false, id));
        }
    }
    let new = NewDeploy {
        connection_id,
        repository: request.repository.clone(),
        environment: request.environment.clone(),
        sha: request.sha.clone(),
        git_ref: request.git_ref.clone(),
        source: "api",
        github_deployment_id: None,
        external_id: request.external_id.clone(),
        version: request.version.clone(),
        creator: request.triggered_by.clone(),
        description: request.description.clone(),
        log_url: request.build_logs_url.clone(),
        environment_url: None,
        transient_environment: false,
        production_environment: false,
        deploy_time: request.deploy_time,
    };
    let deploy = rows::insert(db, &new, now).await?;
    report(db, &deploy, request, request.deploy_time, now).await?;
    Ok((true, deploy.id))
}

/// A later request for the same `external_id`.
async fn advance(
    db: &impl Writer,
    existing: &Deploy,
    request: &ApiDeployment,
    now: DateTime<Utc>,
) -> Result<i64, RegisterError> {
    let external_id = request.external_id.as_deref().unwrap_or_default();
    if !existing.sha.starts_with(request.sha.as_str()) && !request.sha.as_str().starts_with(&existing.sha) {
        return Err(RegisterError::Conflict(format!(
            "external_id {external_id:?} is deployment {} of sha {}, not {}",
            existing.id, existing.sha, request.sha
        )));
    }
    if existing.environment != request.environment {
        return Err(RegisterError::Conflict(format!(
            "external_id {external_id:?} is deployment {} to {:?}, not {:?}",
            existing.id, existing.environment, request.environment
        )));
    }
    if existing.status == request.status {
        return Ok(existing.id);
    }
    if rank(request.status) <= rank(existing.status) {
        return Err(RegisterError::Conflict(format!(
            "deployment {} is {} already; it cannot become {}",
            existing.id,
            existing.status.as_str(),
            request.status.as_str()
        )));
    }
    // Reports of one deploy arrive in order; never let the clock make one look older.
    let at = now.max(existing.status_at);
    report(db, existing, request, at, now).await?;
    Ok(existing.id)
}

async fn report(
    db: &impl Writer,
    deploy: &Deploy,
    request: &ApiDeployment,
    at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), RegisterError> {
    let entry = StatusEntry {
        github_status_id: None,
        state: request.status.as_str().to_owned(),
        status: Some(request.status),
        description: request.description.clone(),
        log_url: request.build_logs_url.clone(),
        environment_url: None,
        creator: request.triggered_by.clone(),
        occurred_at: at,
    };
    rows::insert_status(db, deploy.id, &entry, now).await?;
    if request.status != DeployStatus::Initiated {
        let report = Report {
            status: request.status,
            order: ReportOrder {
                at,
                id: rank(request.status),
            },
            log_url: request.build_logs_url.clone(),
            environment_url: None,
        };
        apply_report(db, deploy, &report, now).await?;
    }
    Ok(())
}
