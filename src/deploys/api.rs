//! Deploys from the explicit API (`POST /deployments`), for any CI system.
//!
//! A deploy registered here follows the same lifecycle as one from GitHub: the same history,
//! superseding and `deploy.went_live` job. With an `external_id`, later requests move the same
//! deploy forward (`initiated → building → deploying → live|failed`); moving it backwards, or
//! naming another sha or environment, is a conflict.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{apply_report, Deploy, DeploySource, DeployStatus, NewDeploy, Report, ReportOrder, StatusEntry};
use crate::idempotency::{self, Lookup};
use crate::limits;
use crate::store::deployments as rows;
use crate::store::{Store, StoreError, Writer};
use crate::types::{CommitSha, ConnectionId, Environment, RepoName};
use crate::validation::{self, Invalid};

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
    pub environment: Environment,
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

/// The body as sent: each field kept as whatever JSON came, so a wrong type is a problem of that
/// field (not one serde error for the body), and any other key is kept to be named.
#[derive(Deserialize)]
struct RawDeployment {
    repository: Option<Value>,
    environment: Option<Value>,
    sha: Option<Value>,
    deploy_time: Option<Value>,
    #[serde(rename = "ref")]
    git_ref: Option<Value>,
    version: Option<Value>,
    description: Option<Value>,
    build_logs_url: Option<Value>,
    triggered_by: Option<Value>,
    status: Option<Value>,
    external_id: Option<Value>,
    #[serde(flatten)]
    unknown: Map<String, Value>,
}

/// Checks every field and reports every problem, each with its field.
pub fn validate(body: &Value, now: DateTime<Utc>) -> Result<ApiDeployment, Invalid> {
    // Every field is optional JSON, so only a body that is not an object fails to deserialize.
    let Ok(raw) = RawDeployment::deserialize(body) else {
        return Err(Invalid::field("body", "must be a JSON object"));
    };
    let mut invalid = Invalid::default();
    for key in raw.unknown.keys() {
        invalid.push(key, "is not a field of a deployment");
    }
    let repository = text(raw.repository, "repository", Kind::Name, true, &mut invalid)
        .and_then(|raw| RepoName::parse(&raw).map_err(|m| invalid.push("repository", m)).ok());
    let environment = text(raw.environment, "environment", Kind::Name, true, &mut invalid).and_then(|raw| {
        Environment::parse(&raw)
            .map_err(|m| invalid.push("environment", m))
            .ok()
    });
    let sha = text(raw.sha, "sha", Kind::Name, true, &mut invalid)
        .and_then(|raw| CommitSha::parse(&raw).map_err(|m| invalid.push("sha", m)).ok());
    let deploy_time = match text(raw.deploy_time, "deploy_time", Kind::Name, false, &mut invalid) {
        None => Some(now),
        Some(raw) => match DateTime::parse_from_rfc3339(&raw) {
            Ok(time) => {
                let time = time.with_timezone(&Utc);
                match limits::check_deploy_time(time, now) {
                    Ok(()) => Some(time),
                    Err(message) => {
                        invalid.push("deploy_time", message);
                        None
                    }
                }
            }
            Err(_) => {
                invalid.push("deploy_time", "must be an RFC 3339 time, e.g. 2025-01-15T10:00:00Z");
                None
            }
        },
    };
    let status = match text(raw.status, "status", Kind::Name, false, &mut invalid) {
        None => Some(DeployStatus::Live),
        Some(raw) => match CLIENT_STATUSES.iter().find(|s| s.as_str() == raw) {
            Some(status) => Some(*status),
            None => {
                let names: Vec<&str> = CLIENT_STATUSES.iter().map(|s| s.as_str()).collect();
                invalid.push("status", format!("must be one of {}", names.join(", ")));
                None
            }
        },
    };
    let build_logs_url = text(raw.build_logs_url, "build_logs_url", Kind::Url, false, &mut invalid);
    let git_ref = text(raw.git_ref, "ref", Kind::Name, false, &mut invalid);
    let version = text(raw.version, "version", Kind::Name, false, &mut invalid);
    let description = text(raw.description, "description", Kind::Text, false, &mut invalid);
    let triggered_by = text(raw.triggered_by, "triggered_by", Kind::Name, false, &mut invalid);
    let external_id = text(raw.external_id, "external_id", Kind::Name, false, &mut invalid);

    match (repository, environment, sha, deploy_time, status) {
        (Some(repository), Some(environment), Some(sha), Some(deploy_time), Some(status)) if invalid.is_empty() => {
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
        _ => Err(invalid),
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
fn text(value: Option<Value>, key: &str, kind: Kind, required: bool, invalid: &mut Invalid) -> Option<String> {
    let value = validation::string(value, key, required, invalid)?;
    let checked = match kind {
        Kind::Name => limits::Name::parse(&value).map(limits::Name::into_string),
        Kind::Text => limits::Text::parse(&value).map(limits::Text::into_string),
        Kind::Url => limits::HttpUrl::parse(&value)
            .map(limits::HttpUrl::into_string)
            .map_err(|e| e.to_string()),
    };
    checked.map_err(|message| invalid.push(key, message)).ok()
}

/// What the API answers; stored as is for `Idempotency-Key` replays.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Answer {
    /// `true` when this request created the deploy (201), `false` when it moved or kept one (200).
    pub created: bool,
    pub deploy_id: i64,
    pub deploy: Value,
    /// The stored answer of an earlier request with the same `Idempotency-Key` (not stored).
    #[serde(skip)]
    pub replayed: bool,
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
            Lookup::Replay(answer) => {
                return Ok(Answer {
                    replayed: true,
                    ..answer
                })
            }
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
        deploy_id: deploy.id.0,
        deploy: deploy_json,
        replayed: false,
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
        let key = request.repository.key();
        let mut existing = rows::find_by_external_id(db, connection_id, key, external_id).await?;
        if existing.is_none() {
            // A run id: the deploy the run (or the deployment it made) reported already, in this
            // environment, is the same deploy.
            if let Ok(run_id) = external_id.parse::<i64>() {
                existing = rows::find_by_run(db, connection_id, key, run_id, request.environment.as_str()).await?;
            }
        }
        if let Some(existing) = existing {
            let existing = rows::announce(db, existing, now).await?;
            return advance(db, &existing, request, now).await.map(|id| (false, id));
        }
    }
    let new = NewDeploy {
        connection_id: ConnectionId(connection_id),
        repository: request.repository.clone(),
        environment: request.environment.clone(),
        sha: request.sha.clone(),
        git_ref: request.git_ref.clone(),
        source: DeploySource::Api,
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
        github_run_id: None,
        run_attempt: None,
        backfilled: false,
    };
    let deploy = rows::insert(db, &new, now).await?;
    report(db, &deploy, request, request.deploy_time, now).await?;
    Ok((true, deploy.id.0))
}

/// A later request for the same `external_id`.
async fn advance(
    db: &impl Writer,
    existing: &Deploy,
    request: &ApiDeployment,
    now: DateTime<Utc>,
) -> Result<i64, RegisterError> {
    let external_id = request.external_id.as_deref().unwrap_or_default();
    if !existing.sha.as_str().starts_with(request.sha.as_str())
        && !request.sha.as_str().starts_with(existing.sha.as_str())
    {
        return Err(RegisterError::Conflict(format!(
            "external_id {external_id:?} is deployment {} of sha {}, not {}",
            existing.id, existing.sha, request.sha
        )));
    }
    if existing.environment != request.environment {
        return Err(RegisterError::Conflict(format!(
            "external_id {external_id:?} is deployment {} to {:?}, not {:?}",
            existing.id,
            existing.environment.as_str(),
            request.environment.as_str()
        )));
    }
    if existing.status == request.status {
        return Ok(existing.id.0);
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
    Ok(existing.id.0)
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

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use serde_json::json;

    use super::validate;

    #[test]
    fn every_invalid_field_is_reported_in_order_with_its_own_problem() {
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap();
        let invalid = validate(
            &json!({
                "repository": 1,
                "sha": "",
                "deploy_time": "yesterday",
                "status": "done",
                "ref": ["main"],
                "colour": "red",
            }),
            now,
        )
        .unwrap_err();
        let problems: Vec<(&str, &str)> = invalid
            .fields
            .iter()
            .map(|p| (p.field.as_str(), p.message.as_str()))
            .collect();
        assert_eq!(
            problems,
            [
                ("colour", "is not a field of a deployment"),
                ("repository", "must be a string"),
                ("environment", "is required"),
                ("sha", "must not be empty"),
                ("deploy_time", "must be an RFC 3339 time, e.g. 2025-01-15T10:00:00Z"),
                ("status", "must be one of initiated, building, deploying, live, failed"),
                ("ref", "must be a string"),
            ]
        );
        assert_eq!(
            validate(&json!(["repository"]), now).unwrap_err().to_string(),
            "body: must be a JSON object"
        );
    }

    #[test]
    fn a_valid_body_becomes_a_deployment_with_defaults() {
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap();
        let deployment = validate(
            &json!({"repository": "acme/shop", "environment": " production ", "sha": "abc1234", "ref": null}),
            now,
        )
        .unwrap();
        assert_eq!(deployment.repository.as_str(), "acme/shop");
        assert_eq!(deployment.environment.as_str(), "production");
        assert_eq!(deployment.deploy_time, now);
        assert_eq!(deployment.status.as_str(), "live");
        assert_eq!(deployment.git_ref, None);
    }
}
