//! Deploys: one commit shipped to one environment of one repository, and its lifecycle.
//!
//! Status reports come from GitHub (`deployment_status` events, `github.rs`) and from the
//! explicit API (`api.rs`, `POST /deployments`). They are kept in a history and applied in the
//! source's timestamp order (`lifecycle.rs`), so a late report never moves a deploy backwards.
//! When a deploy goes live, the live deploy it replaces in the same repository and environment
//! becomes `superseded`, and a `deploy.went_live` job is enqueued in the same transaction; its
//! handler is `live.rs`. The history is read a page at a time (`cursor.rs`). This module does not
//! know HTTP or webhook JSON (`github.rs` takes the events `github/events.rs` parsed).

pub mod actions;
pub mod api;
pub mod cursor;
pub mod fast;
pub mod github;
pub mod history;
mod lifecycle;
pub mod live;
pub mod watch;

use chrono::{DateTime, Utc};
use serde::Serialize;

pub use lifecycle::{duration_seconds, from_github_state, DeployStatus, ReportOrder};

use crate::jobs::{self, BackgroundJob};
use crate::store::deployments::{self as rows, Guard, StatusChange};
use crate::store::{Store, StoreError, StoreResult, Writer};
use crate::types::{CommitSha, ConnectionId, DeployId, Environment, RepoName};

/// A stored deploy. Serialises to the JSON the API shows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Deploy {
    #[schema(value_type = i64)]
    pub id: DeployId,
    #[schema(value_type = i64)]
    pub connection_id: ConnectionId,
    /// `owner/repo`.
    #[schema(value_type = String)]
    pub repository: RepoName,
    #[schema(value_type = String)]
    pub environment: Environment,
    /// The full commit SHA.
    #[schema(value_type = String)]
    pub sha: CommitSha,
    #[serde(rename = "ref")]
    pub git_ref: Option<String>,
    pub status: DeployStatus,
    pub source: DeploySource,
    pub github_deployment_id: Option<i64>,
    pub external_id: Option<String>,
    pub version: Option<String>,
    pub creator: Option<String>,
    pub description: Option<String>,
    pub log_url: Option<String>,
    pub environment_url: Option<String>,
    pub transient_environment: bool,
    pub production_environment: bool,
    /// When the current status took effect, by the source's clock.
    pub status_at: DateTime<Utc>,
    #[serde(skip)]
    pub status_github_id: i64,
    /// When the deploy started (GitHub's `deployment.created_at`, or the API's `deploy_time`).
    pub deploy_time: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    pub duration_seconds: Option<i64>,
    pub superseded_by_id: Option<i64>,
    pub rollback_target_id: Option<i64>,
    /// The GitHub Actions run that made it (a deploy from a run, or a GitHub deployment a run's
    /// job made).
    pub github_run_id: Option<i64>,
    /// The run's attempt behind the current status: a re-run moves the same deploy.
    pub run_attempt: Option<i64>,
    /// Imported from GitHub's history by a backfill: it builds the lifecycle but fires no check,
    /// trigger, comment or agent call.
    pub backfilled: bool,
    /// When shiplog first stored it.
    pub recorded_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Deploy {
    /// The first seven characters of the sha, as GitHub shows it.
    pub fn short_sha(&self) -> &str {
        self.sha.short()
    }

    fn report_order(&self) -> ReportOrder {
        ReportOrder {
            at: self.status_at,
            id: self.status_github_id,
        }
    }

    /// When it went live, ordered with its id, for deciding which live deploy is the newest.
    fn live_order(&self) -> ReportOrder {
        ReportOrder {
            at: self.completed_at.unwrap_or(self.status_at),
            id: self.id.0,
        }
    }
}

/// Where a deploy was reported from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeploySource {
    /// A `deployment` webhook.
    Github,
    /// `POST /deployments`.
    Api,
    /// A GitHub Actions run that matched one of the connection's rules.
    Actions,
}

impl DeploySource {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Github => "github",
            Self::Api => "api",
            Self::Actions => "actions",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [Self::Github, Self::Api, Self::Actions]
            .into_iter()
            .find(|s| s.as_str() == raw)
    }
}

/// What is known of a deploy when it is first recorded.
#[derive(Clone, Debug)]
pub struct NewDeploy {
    pub connection_id: ConnectionId,
    pub repository: RepoName,
    pub environment: Environment,
    pub sha: CommitSha,
    pub git_ref: Option<String>,
    pub source: DeploySource,
    pub github_deployment_id: Option<i64>,
    pub external_id: Option<String>,
    pub version: Option<String>,
    pub creator: Option<String>,
    pub description: Option<String>,
    pub log_url: Option<String>,
    pub environment_url: Option<String>,
    pub transient_environment: bool,
    pub production_environment: bool,
    pub deploy_time: DateTime<Utc>,
    pub github_run_id: Option<i64>,
    pub run_attempt: Option<i64>,
    pub backfilled: bool,
}

/// One entry of a deploy's status history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StatusEntry {
    pub github_status_id: Option<i64>,
    /// The raw state as reported.
    pub state: String,
    /// The shiplog status it maps to; `null` for a state shiplog does not know.
    pub status: Option<DeployStatus>,
    pub description: Option<String>,
    pub log_url: Option<String>,
    pub environment_url: Option<String>,
    pub creator: Option<String>,
    #[serde(rename = "created_at")]
    pub occurred_at: DateTime<Utc>,
}

/// A report to apply to a deploy's current status.
#[derive(Clone, Debug)]
pub struct Report {
    pub status: DeployStatus,
    pub order: ReportOrder,
    pub log_url: Option<String>,
    pub environment_url: Option<String>,
}

/// The history entry of a deploy that stopped being live because `by` went live at `at`.
fn stepped_down(by: &Deploy, at: DateTime<Utc>, what: &str) -> StatusEntry {
    stepped_down_entry(by.id.0, by.short_sha(), at, what)
}

/// The same entry from the successor's id and short sha (what the hot path has of it).
fn stepped_down_entry(by_id: i64, by_short_sha: &str, at: DateTime<Utc>, what: &str) -> StatusEntry {
    StatusEntry {
        github_status_id: None,
        state: DeployStatus::Superseded.as_str().to_owned(),
        status: Some(DeployStatus::Superseded),
        description: Some(format!(
            "superseded by deployment {by_id} ({by_short_sha}), which {what} at {}",
            at.format("%Y-%m-%d %H:%M:%S UTC")
        )),
        log_url: None,
        environment_url: None,
        creator: None,
        occurred_at: at,
    }
}

/// One `deploy.went_live` job per deploy and time it went live.
fn went_live_dedupe_key(deployment_id: i64, at: DateTime<Utc>) -> String {
    format!(
        "{}:{deployment_id}:{}",
        live::DeployWentLive::JOB_NAME,
        at.timestamp_micros()
    )
}

impl Report {
    /// The row change this report makes when it applies.
    fn change(&self, completed: Option<(DateTime<Utc>, i64)>) -> StatusChange {
        StatusChange {
            status: self.status,
            status_at: self.order.at,
            status_github_id: self.order.id,
            completed,
            superseded_by_id: None,
            log_url: self.log_url.clone(),
            environment_url: self.environment_url.clone(),
        }
    }

    fn guard(&self) -> Guard {
        Guard::ReportOlderThan(self.order.at, self.order.id)
    }
}

/// What applying a report did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Transition {
    /// Older than the report that set the current status: kept in the history only.
    Outdated,
    Changed(DeployStatus),
    /// Went live and is now the live deploy of its environment.
    WentLive {
        superseded: Vec<i64>,
    },
    /// Went live, but a deploy that went live later is already live there.
    SupersededOnArrival {
        by: i64,
    },
}

/// Filters for listing deploys; `before` is a keyset cursor (deploy time, id).
#[derive(Clone, Debug, Default)]
pub struct DeployFilter {
    pub connection_id: Option<i64>,
    pub repository: Option<RepoName>,
    pub environment: Option<Environment>,
    pub status: Option<DeployStatus>,
    pub sha_prefix: Option<String>,
    pub before: Option<(DateTime<Utc>, i64)>,
}

pub async fn list(store: &Store, filter: &DeployFilter, limit: u64) -> StoreResult<Vec<Deploy>> {
    rows::list(store.conn(), filter, limit).await
}

pub async fn get(store: &Store, id: i64) -> StoreResult<Option<(Deploy, Vec<StatusEntry>)>> {
    let Some(deploy) = rows::find(store.conn(), id).await? else {
        return Ok(None);
    };
    let history = rows::statuses(store.conn(), id).await?;
    Ok(Some((deploy, history)))
}

/// The deploys with these ids (those that exist), in one query, without their histories.
pub async fn find_many(store: &Store, ids: &[i64]) -> StoreResult<Vec<Deploy>> {
    rows::find_many(store.conn(), ids).await
}

/// Takes the lock that serialises status changes in `deploy`'s environment (see
/// [`rows::lock_environment`]). Call it before reading the rows a change depends on.
pub async fn lock_environment(
    db: &impl Writer,
    connection_id: i64,
    repository: &RepoName,
    environment: &Environment,
) -> StoreResult<()> {
    rows::lock_environment(db, connection_id, repository.key(), environment.as_str()).await
}

/// Applies `report` to `deploy` if it is later than the report behind the current status. The
/// caller holds the environment's lock ([`lock_environment`]) and read `deploy` after taking it;
/// every update is conditional on the row it read all the same, so a stale copy changes nothing.
pub async fn apply_report(
    db: &impl Writer,
    deploy: &Deploy,
    report: &Report,
    now: DateTime<Utc>,
) -> StoreResult<Transition> {
    if report.order <= deploy.report_order() {
        return Ok(Transition::Outdated);
    }
    // Live already (a run and the deployment it made both say so): it went live once, and what
    // follows a live deploy happened then.
    if report.status == DeployStatus::Live && deploy.status == DeployStatus::Live {
        return Ok(Transition::Outdated);
    }
    if report.status == DeployStatus::Live {
        return go_live(db, deploy, report, now).await;
    }
    let completed = report
        .status
        .completes()
        .then(|| (report.order.at, duration_seconds(deploy.deploy_time, report.order.at)));
    if !rows::set_status(db, deploy.id, &report.change(completed), report.guard(), now).await? {
        return Ok(Transition::Outdated);
    }
    Ok(Transition::Changed(report.status))
}

async fn go_live(db: &impl Writer, deploy: &Deploy, report: &Report, now: DateTime<Utc>) -> StoreResult<Transition> {
    let at = report.order.at;
    let completed = Some((at, duration_seconds(deploy.deploy_time, at)));
    let ours = ReportOrder { at, id: deploy.id.0 };
    let others = rows::live_in(
        db,
        deploy.connection_id.0,
        deploy.repository.key(),
        deploy.environment.as_str(),
        deploy.id.0,
    )
    .await?;

    // A deploy that went live later is live already: this one arrives superseded.
    if let Some(newer) = others
        .iter()
        .filter(|o| o.live_order() > ours)
        .max_by_key(|o| o.live_order())
    {
        let change = StatusChange {
            status: DeployStatus::Superseded,
            status_at: newer.live_order().at,
            status_github_id: 0,
            completed,
            superseded_by_id: Some(newer.id.0),
            log_url: report.log_url.clone(),
            environment_url: report.environment_url.clone(),
        };
        if !rows::set_status(db, deploy.id, &change, report.guard(), now).await? {
            return Ok(Transition::Outdated);
        }
        let entry = stepped_down(
            newer,
            newer.live_order().at,
            "was already live when this report arrived",
        );
        rows::insert_status(db, deploy.id, &entry, now).await?;
        return Ok(Transition::SupersededOnArrival { by: newer.id.0 });
    }

    // The database allows one live deploy per environment: the previous ones step down first.
    let mut superseded = Vec::new();
    for previous in &others {
        let change = StatusChange {
            status: DeployStatus::Superseded,
            status_at: at,
            status_github_id: 0,
            completed: None,
            superseded_by_id: Some(deploy.id.0),
            log_url: None,
            environment_url: None,
        };
        if rows::set_status(db, previous.id, &change, Guard::StatusIs(DeployStatus::Live), now).await? {
            rows::insert_status(db, previous.id, &stepped_down(deploy, at, "went live"), now).await?;
            superseded.push(previous.id.0);
        }
    }
    if !rows::set_status(db, deploy.id, &report.change(completed), report.guard(), now).await? {
        // Only a writer that skipped the environment's lock could have changed the row since it
        // was read: undo the whole transaction (the caller retries it) rather than leave the
        // environment without its live deploy.
        return Err(StoreError::Conflict(format!(
            "deployment {} changed while it was going live",
            deploy.id
        )));
    }
    if deploy.backfilled {
        // History, not news: no job, so no check, trigger, comment or agent call. A rollback
        // that needs no GitHub call (an earlier sha deployed again) is still recorded.
        if let Some(replaced) = others.iter().find(|o| superseded.contains(&o.id.0)) {
            if replaced.sha != deploy.sha && rows::sha_was_live_before(db, deploy).await? {
                live::record_rollback(db, replaced, deploy, at, now).await?;
            }
        }
        return Ok(Transition::WentLive { superseded });
    }
    let job = live::DeployWentLive {
        deployment_id: deploy.id.0,
        connection_id: deploy.connection_id.0,
        repository: deploy.repository.to_string(),
        environment: deploy.environment.to_string(),
        sha: deploy.sha.to_string(),
        live_at: at,
        previous_live_ids: superseded.clone(),
    };
    let dedupe_key = went_live_dedupe_key(deploy.id.0, at);
    jobs::enqueue(db, &job, Some(dedupe_key), now, now).await?;
    Ok(Transition::WentLive { superseded })
}
