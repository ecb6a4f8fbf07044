//! Post-deploy triggers: watch for `sha` (or any commit containing it) going live in one
//! repository and environment, then call the agent once, after a delay.
//!
//! `watching → scheduled` (a matching live deploy, `fire_at` = its live time + delay) `→ fired`,
//! or `failed` after the job's last attempt, or `cancelled`. Matching comes from the ancestry
//! batch (this module is a [`WatchSource`]) and counts only deploys to the trigger's
//! environment recorded after the trigger was created. A rollback of the matched deploy before
//! the fire puts the trigger back to `watching`. The fire is a durable job, so a fire that came
//! due while the server was down happens once it is back.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::config::AgentConfig;
use crate::deploys::watch::{LiveDeploy, WatchSource};
use crate::jobs::runner::{JobError, JobHandler, MAX_ATTEMPTS};
use crate::jobs::{self, BackgroundJob};
use crate::limits;
use crate::outbound::{delivery_id, AllowList, Outbound, TargetError};
use crate::store::triggers as rows;
use crate::store::{deployments, Store, StoreResult};
use crate::types::{RepoName, Scope};
use crate::validation::{string as text, Invalid};

/// The job that calls the agent for a trigger matched by a deploy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FireTrigger {
    pub trigger_id: i64,
    pub deployment_id: i64,
}

impl BackgroundJob for FireTrigger {
    const JOB_NAME: &'static str = "trigger.fire";
}
/// The longest delay a trigger may ask for.
pub const MAX_DELAY_SECONDS: i64 = 30 * 86_400;

#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TriggerState {
    Watching,
    Scheduled,
    Fired,
    Failed,
    Cancelled,
}

impl TriggerState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Watching => "watching",
            Self::Scheduled => "scheduled",
            Self::Fired => "fired",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [
            Self::Watching,
            Self::Scheduled,
            Self::Fired,
            Self::Failed,
            Self::Cancelled,
        ]
        .into_iter()
        .find(|s| s.as_str() == raw)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Trigger {
    pub id: i64,
    pub connection_id: i64,
    pub repository: String,
    #[serde(skip)]
    pub repository_key: String,
    pub environment: String,
    pub sha: String,
    pub delay_seconds: i64,
    pub target_url: Option<String>,
    pub message: Option<String>,
    pub state: TriggerState,
    pub matched_deployment_id: Option<i64>,
    pub fire_at: Option<DateTime<Utc>>,
    pub fired_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A validated request, with the sha still as given.
#[derive(Clone, Debug)]
pub struct NewTrigger {
    pub connection_id: i64,
    pub repository: RepoName,
    pub environment: String,
    /// Full SHA once resolved.
    pub sha: String,
    pub delay_seconds: i64,
    pub target_url: Option<String>,
    pub message: Option<String>,
}

/// One call to the target, as the operator sees it: with the target's status code and the error.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AttemptRecord {
    #[serde(skip)]
    pub trigger_id: i64,
    pub deployment_id: i64,
    pub attempted_at: DateTime<Utc>,
    pub status_code: Option<u16>,
    pub error: Option<String>,
}

/// Whether the target took the call.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[schema(as = TriggerOutcome)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Delivered,
    Failed,
}

/// One call to the target, as anyone but the operator sees it. A deploy credential chooses the
/// target, so the target's status code and error text would make shiplog a port and status
/// scanner of wherever it can reach; it learns only whether the call was delivered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct AttemptSummary {
    pub deployment_id: i64,
    pub attempted_at: DateTime<Utc>,
    pub outcome: Outcome,
}

/// [`AttemptRecord`] with its outcome: what the operator sees.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AttemptDetail<'a> {
    pub outcome: Outcome,
    #[serde(flatten)]
    pub record: &'a AttemptRecord,
}

impl AttemptRecord {
    pub fn outcome(&self) -> Outcome {
        if self.status_code.is_some_and(|s| (200..300).contains(&s)) {
            Outcome::Delivered
        } else {
            Outcome::Failed
        }
    }

    pub fn detail(&self) -> AttemptDetail<'_> {
        AttemptDetail {
            outcome: self.outcome(),
            record: self,
        }
    }

    pub fn summary(&self) -> AttemptSummary {
        AttemptSummary {
            deployment_id: self.deployment_id,
            attempted_at: self.attempted_at,
            outcome: self.outcome(),
        }
    }
}

/// The request body as sent, checked field by field.
#[derive(Debug)]
pub struct TriggerRequest {
    pub repository: RepoName,
    pub environment: String,
    pub sha: String,
    pub delay_seconds: i64,
    pub target_url: Option<String>,
    pub message: Option<String>,
}

/// The body as sent: each field kept as whatever JSON came, so a wrong type is a problem of that
/// field, and any other key is kept to be named.
#[derive(Deserialize)]
struct RawTrigger {
    repository: Option<Value>,
    environment: Option<Value>,
    sha: Option<Value>,
    delay_seconds: Option<Value>,
    target_url: Option<Value>,
    message: Option<Value>,
    #[serde(flatten)]
    unknown: Map<String, Value>,
}

/// Checks every field of `POST /api/triggers` and reports every problem. A `target_url` must be
/// an absolute http(s) URL, and one whose host is an IP literal or `localhost` must be callable
/// under `allow` (see [`crate::outbound::policy`]); other names are checked at every call.
pub fn validate(body: &Value, allow: &AllowList) -> Result<TriggerRequest, Invalid> {
    // Every field is optional JSON, so only a body that is not an object fails to deserialize.
    let Ok(raw) = RawTrigger::deserialize(body) else {
        return Err(Invalid::field("body", "must be a JSON object"));
    };
    let mut invalid = Invalid::default();
    for key in raw.unknown.keys() {
        invalid.push(key, "is not a field of a trigger");
    }
    let repository = text(raw.repository, "repository", true, &mut invalid)
        .and_then(|r| RepoName::parse(&r).map_err(|m| invalid.push("repository", m)).ok());
    let environment = text(raw.environment, "environment", true, &mut invalid).and_then(|e| {
        limits::Name::parse(&e)
            .map(limits::Name::into_string)
            .map_err(|m| invalid.push("environment", m))
            .ok()
    });
    let sha = text(raw.sha, "sha", true, &mut invalid).and_then(|s| {
        let valid = (7..=40).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_hexdigit());
        if valid {
            Some(s.to_ascii_lowercase())
        } else {
            invalid.push("sha", "must be 7 to 40 hex characters");
            None
        }
    });
    let delay_seconds = match raw.delay_seconds {
        None | Some(Value::Null) => 0,
        Some(value) => match value.as_i64() {
            Some(n) if (0..=MAX_DELAY_SECONDS).contains(&n) => n,
            _ => {
                invalid.push(
                    "delay_seconds",
                    format!("must be a whole number from 0 to {MAX_DELAY_SECONDS}"),
                );
                0
            }
        },
    };
    let target_url = text(raw.target_url, "target_url", false, &mut invalid).and_then(|url| {
        limits::HttpUrl::parse(&url)
            .map(limits::HttpUrl::into_string)
            .map_err(|e| invalid.push("target_url", e.to_string()))
            .ok()
    });
    if let Some(url) = &target_url {
        match allow.check_target(url) {
            Ok(_) => {}
            Err(TargetError::NotHttp) => invalid.push("target_url", "must be an absolute http(s) URL"),
            Err(TargetError::Refused(_)) => invalid.push(
                "target_url",
                "must not point at a loopback, private, link-local or other non-public address",
            ),
        }
    }
    let message = text(raw.message, "message", false, &mut invalid).and_then(|m| {
        limits::Text::parse(&m)
            .map(limits::Text::into_string)
            .map_err(|e| invalid.push("message", e))
            .ok()
    });
    match (repository, environment, sha) {
        (Some(repository), Some(environment), Some(sha)) if invalid.is_empty() => Ok(TriggerRequest {
            repository,
            environment,
            sha,
            delay_seconds,
            target_url,
            message,
        }),
        _ => Err(invalid),
    }
}

pub async fn create(store: &Store, new: &NewTrigger, now: DateTime<Utc>) -> StoreResult<Trigger> {
    let tx = store.begin().await?;
    let trigger = rows::insert(&tx, new, now).await?;
    tx.commit().await?;
    Ok(trigger)
}

pub async fn get(store: &Store, id: i64) -> StoreResult<Option<(Trigger, Vec<AttemptRecord>)>> {
    let Some(trigger) = rows::find(store.conn(), id).await? else {
        return Ok(None);
    };
    let attempts = rows::attempts(store.conn(), id).await?;
    Ok(Some((trigger, attempts)))
}

pub async fn list(store: &Store, scope: Scope) -> StoreResult<Vec<Trigger>> {
    match scope {
        Scope::All => rows::list(store.conn(), None, 500).await,
        Scope::Connection(id) => rows::list(store.conn(), Some(id.0), 500).await,
        Scope::Nothing => Ok(Vec::new()),
    }
}

/// Cancels a trigger that has not fired; returns whether it did.
pub async fn cancel(store: &Store, id: i64, now: DateTime<Utc>) -> StoreResult<bool> {
    let tx = store.begin().await?;
    let cancelled = rows::transition(
        &tx,
        id,
        &[TriggerState::Watching, TriggerState::Scheduled],
        TriggerState::Cancelled,
        None,
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(cancelled)
}

/// Triggers as watchers of commits, for the ancestry batch.
pub struct TriggerWatch;

impl WatchSource for TriggerWatch {
    fn watched<'a>(
        &'a self,
        store: &'a Store,
        connection_id: i64,
        repository_key: &'a str,
    ) -> BoxFuture<'a, StoreResult<Vec<String>>> {
        Box::pin(rows::watched_shas(store.conn(), connection_id, repository_key))
    }

    fn resolved<'a>(
        &'a self,
        store: &'a Store,
        deploy: &'a LiveDeploy<'a>,
        sha: &'a str,
        contained: bool,
    ) -> BoxFuture<'a, StoreResult<()>> {
        Box::pin(async move {
            if !contained {
                return Ok(());
            }
            let key = deploy.repository.to_ascii_lowercase();
            let tx = store.begin().await?;
            for trigger in rows::matching(
                &tx,
                deploy.connection_id,
                &key,
                deploy.environment,
                sha,
                deploy.recorded_at,
            )
            .await?
            {
                let fire_at = deploy.live_at + Duration::seconds(trigger.delay_seconds);
                if rows::schedule(&tx, trigger.id, deploy.id, fire_at, deploy.live_at).await? {
                    let job = FireTrigger {
                        trigger_id: trigger.id,
                        deployment_id: deploy.id,
                    };
                    let dedupe_key = format!("{}:{}:{}", FireTrigger::JOB_NAME, trigger.id, deploy.id);
                    jobs::enqueue(&tx, &job, Some(dedupe_key), fire_at, deploy.live_at).await?;
                    tracing::info!(trigger = trigger.id, deploy = deploy.id, %fire_at, "trigger scheduled");
                }
            }
            tx.commit().await?;
            Ok(())
        })
    }

    fn rolled_back<'a>(
        &'a self,
        store: &'a Store,
        deployment_id: i64,
        now: DateTime<Utc>,
    ) -> BoxFuture<'a, StoreResult<()>> {
        Box::pin(async move {
            let tx = store.begin().await?;
            let count = rows::unschedule_for_deployment(&tx, deployment_id, now).await?;
            tx.commit().await?;
            if count > 0 {
                tracing::info!(deployment_id, count, "rollback put scheduled triggers back to watching");
            }
            Ok(())
        })
    }
}

/// Runs [`FireTrigger`] jobs: calls the agent once the delay has passed.
pub struct TriggerFirer {
    pub store: Store,
    pub outbound: Outbound,
    pub agent: Option<AgentConfig>,
}

impl JobHandler<FireTrigger> for TriggerFirer {
    fn run(&self, job: FireTrigger, now: DateTime<Utc>, attempt: i32) -> BoxFuture<'_, Result<(), JobError>> {
        Box::pin(self.fire(job, now, attempt))
    }
}

impl TriggerFirer {
    async fn fire(&self, job: FireTrigger, now: DateTime<Utc>, attempt: i32) -> Result<(), JobError> {
        let FireTrigger {
            trigger_id,
            deployment_id,
        } = job;
        let Some(trigger) = rows::find(self.store.conn(), trigger_id).await? else {
            return Ok(());
        };
        // Cancelled, rolled back and rescheduled, or fired already: nothing to do.
        if trigger.state != TriggerState::Scheduled || trigger.matched_deployment_id != Some(deployment_id) {
            return Ok(());
        }
        let Some(deploy) = deployments::find(self.store.conn(), deployment_id).await? else {
            return Err(JobError::Permanent(format!(
                "deployment {deployment_id} does not exist"
            )));
        };
        let connection = crate::connections::get(&self.store, trigger.connection_id).await?;
        let Some(agent) = connection.and_then(|c| c.agent(self.agent.as_ref())) else {
            let tx = self.store.begin().await?;
            rows::transition(
                &tx,
                trigger.id,
                &[TriggerState::Scheduled],
                TriggerState::Failed,
                None,
                now,
            )
            .await?;
            tx.commit().await?;
            return Err(JobError::Permanent("no agent: set the connection's agent_url and agent_secret, or SHIPLOG_AGENT_URL and SHIPLOG_AGENT_SECRET".into()));
        };
        let url = trigger.target_url.clone().unwrap_or_else(|| agent.url.clone());
        let body = json!({
            "event": "trigger.fired",
            "trigger": trigger,
            "deployment": deploy,
            "message": trigger.message,
        });
        let bytes = serde_json::to_vec(&body).map_err(|e| JobError::Permanent(e.to_string()))?;
        let delivery = delivery_id(&format!("trigger:{}:{deployment_id}", trigger.id));
        let result = self
            .outbound
            .post(&url, &agent.secret, "trigger.fired", &delivery, &bytes)
            .await;
        let tx = self.store.begin().await?;
        rows::record_attempt(
            &tx,
            &AttemptRecord {
                trigger_id: trigger.id,
                deployment_id,
                attempted_at: now,
                status_code: result.status,
                error: result.error.clone(),
            },
        )
        .await?;
        if result.succeeded() {
            rows::transition(
                &tx,
                trigger.id,
                &[TriggerState::Scheduled],
                TriggerState::Fired,
                Some(now),
                now,
            )
            .await?;
            tx.commit().await?;
            tracing::info!(trigger = trigger.id, deploy = deployment_id, "trigger fired");
            return Ok(());
        }
        let error = result
            .error
            .unwrap_or_else(|| "the agent did not accept the call".to_owned());
        // A target shiplog may not call stays so on retry (until the operator changes the allow list).
        if attempt >= MAX_ATTEMPTS || result.refused {
            rows::transition(
                &tx,
                trigger.id,
                &[TriggerState::Scheduled],
                TriggerState::Failed,
                None,
                now,
            )
            .await?;
            tx.commit().await?;
            return Err(JobError::Permanent(error));
        }
        tx.commit().await?;
        Err(JobError::retry(error))
    }
}

/// The watch source and job handler this module adds to a server.
pub fn wire(
    store: &Store,
    outbound: Outbound,
    agent: Option<AgentConfig>,
) -> (Arc<dyn WatchSource>, Arc<TriggerFirer>) {
    (
        Arc::new(TriggerWatch),
        Arc::new(TriggerFirer {
            store: store.clone(),
            outbound,
            agent,
        }),
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::validate;
    use crate::outbound::AllowList;

    #[test]
    fn every_invalid_field_is_reported_in_order_with_its_own_problem() {
        let allow = AllowList::default();
        let invalid = validate(
            &json!({
                "repository": "acme",
                "environment": 3,
                "sha": "xyz",
                "delay_seconds": "soon",
                "target_url": "http://127.0.0.1/hook",
                "extra": true,
            }),
            &allow,
        )
        .unwrap_err();
        let fields: Vec<&str> = invalid.fields.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "extra",
                "repository",
                "environment",
                "sha",
                "delay_seconds",
                "target_url"
            ]
        );
        assert_eq!(invalid.fields[2].message, "must be a string");
        assert_eq!(
            validate(&json!("text"), &allow).unwrap_err().to_string(),
            "body: must be a JSON object"
        );
        let request = validate(
            &json!({"repository": "acme/shop", "environment": "production", "sha": "ABCDEF1"}),
            &allow,
        )
        .unwrap();
        assert_eq!((request.sha.as_str(), request.delay_seconds), ("abcdef1", 0));
    }
}
