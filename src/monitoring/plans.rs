//! Monitoring plans: a PR's opt-in, its activation by the deploy that brings it live, the check
//! schedule (reset for the whole plan whenever a deploy brings the PR to another environment of
//! the plan), expiry, and the checks sent to the agent.
//!
//! `waiting_for_merge → waiting_for_deploy → active → completed | expired`, or `cancelled`.

use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::opt_in;
use crate::clock::SharedClock;
use crate::config::AgentConfig;
use crate::deploys::watch::{LiveDeploy, WatchSource};
use crate::jobs::runner::{JobError, JobHandler, MAX_ATTEMPTS};
use crate::jobs::{self, BackgroundJob};
use crate::outbound::{delivery_id, Outbound};
use crate::store::monitoring::{self as rows, NewPlan};
use crate::store::{deployments, pull_requests, Store, StoreError, StoreResult, Writer};
use crate::types::{RepoName, Scope};

/// The job that sends one scheduled check to the agent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendCheck {
    pub check_id: i64,
}

impl BackgroundJob for SendCheck {
    const JOB_NAME: &'static str = "monitoring.check";
}

/// The job that tells the agent a deploy that brought a plan's PR live was rolled back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TellRollback {
    pub plan_id: i64,
    pub deployment_id: i64,
    pub environment: String,
}

impl BackgroundJob for TellRollback {
    const JOB_NAME: &'static str = "monitoring.rolled_back";
}

/// The job that ends a plan at its expiry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpirePlan {
    pub plan_id: i64,
}

impl BackgroundJob for ExpirePlan {
    const JOB_NAME: &'static str = "monitoring.expire";
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PlanStatus {
    WaitingForMerge,
    WaitingForDeploy,
    Active,
    Completed,
    Expired,
    Cancelled,
}

impl PlanStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::WaitingForMerge => "waiting_for_merge",
            Self::WaitingForDeploy => "waiting_for_deploy",
            Self::Active => "active",
            Self::Completed => "completed",
            Self::Expired => "expired",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [
            Self::WaitingForMerge,
            Self::WaitingForDeploy,
            Self::Active,
            Self::Completed,
            Self::Expired,
            Self::Cancelled,
        ]
        .into_iter()
        .find(|s| s.as_str() == raw)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Plan {
    pub id: i64,
    pub connection_id: i64,
    pub repository: String,
    #[serde(skip)]
    pub repository_key: String,
    pub pull_number: i64,
    /// Empty means any environment.
    pub environments: Vec<String>,
    pub note: Option<String>,
    pub status: PlanStatus,
    pub first_deployed_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Plan {
    fn covers(&self, environment: &str) -> bool {
        self.environments.is_empty() || self.environments.iter().any(|e| e == environment)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct LiveEnvironment {
    pub environment: String,
    pub deployment_id: i64,
    pub deployed_at: DateTime<Utc>,
    /// Set when a rollback took the PR out of this environment.
    pub removed_at: Option<DateTime<Utc>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Check {
    pub id: i64,
    #[serde(skip)]
    pub plan_id: i64,
    pub deployment_id: i64,
    pub offset_seconds: i64,
    pub due_at: DateTime<Utc>,
    pub status: CheckStatus,
    pub sent_at: Option<DateTime<Utc>>,
    pub verdict: Option<String>,
    pub summary: Option<String>,
}

/// Where a check is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    /// Due, not sent yet.
    Pending,
    Sent,
    Failed,
    /// Its plan was cancelled or a rollback took the deploy away before it was due.
    Cancelled,
    /// Overdue when the deploy became known; `summary` says why.
    Skipped,
}

impl CheckStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Sent => "sent",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::Skipped => "skipped",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [Self::Pending, Self::Sent, Self::Failed, Self::Cancelled, Self::Skipped]
            .into_iter()
            .find(|s| s.as_str() == raw)
    }
}

/// A plan after an opt-in, and whether the opt-in made it.
pub struct PlanOpened {
    pub plan: Plan,
    pub created: bool,
}

/// Opts a PR in inside the caller's transaction; an existing plan is returned as it is.
pub async fn create_plan(
    db: &impl Writer,
    connection_id: i64,
    repository: &RepoName,
    pull_number: i64,
    environments: &[String],
    note: Option<&str>,
    now: DateTime<Utc>,
) -> StoreResult<PlanOpened> {
    if let Some(plan) = rows::find_plan_for_pull(db, connection_id, repository.key(), pull_number).await? {
        return Ok(PlanOpened { plan, created: false });
    }
    let merged = pull_requests::is_merged(db, connection_id, repository.key(), pull_number).await?;
    let status = if merged {
        PlanStatus::WaitingForDeploy
    } else {
        PlanStatus::WaitingForMerge
    };
    let plan = rows::insert_plan(
        db,
        NewPlan {
            connection_id,
            repository,
            pull_number,
            environments,
            note,
            status,
        },
        now,
    )
    .await?;
    Ok(PlanOpened { plan, created: true })
}

/// Opts a PR in through the API; a second opt-in for the same PR returns the existing plan.
pub async fn opt_in(
    store: &Store,
    connection_id: i64,
    repository: &RepoName,
    pull_number: i64,
    environments: &[String],
    note: Option<&str>,
    now: DateTime<Utc>,
) -> StoreResult<(Plan, bool)> {
    let opened = async {
        let tx = store.begin().await?;
        let opened = create_plan(&tx, connection_id, repository, pull_number, environments, note, now).await?;
        tx.commit().await?;
        Ok(opened)
    };
    match opened.await {
        Ok(opened) => Ok((opened.plan, opened.created)),
        // Two opt-ins at once: the other one made the plan.
        Err(StoreError::Conflict(_)) => {
            rows::find_plan_for_pull(store.conn(), connection_id, repository.key(), pull_number)
                .await?
                .map(|plan| (plan, false))
                .ok_or_else(|| StoreError::Corrupt("a plan vanished".into()))
        }
        Err(other) => Err(other),
    }
}

/// A PR was merged: its plan, if any, now waits for a deploy. Call in the delivery's transaction.
pub async fn pull_request_merged(
    db: &impl Writer,
    connection_id: i64,
    repository_key: &str,
    number: i64,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    if let Some(plan) = rows::find_plan_for_pull(db, connection_id, repository_key, number).await? {
        if plan.status == PlanStatus::WaitingForMerge {
            rows::set_plan_status(db, plan.id, PlanStatus::WaitingForDeploy, now).await?;
        }
    }
    Ok(())
}

pub async fn get(store: &Store, id: i64) -> StoreResult<Option<(Plan, Vec<LiveEnvironment>, Vec<Check>)>> {
    let Some(plan) = rows::find_plan(store.conn(), id).await? else {
        return Ok(None);
    };
    let environments = rows::environments(store.conn(), id).await?;
    let checks = rows::checks(store.conn(), id).await?;
    Ok(Some((plan, environments, checks)))
}

/// The monitored pull requests a deploy brought to its environment, with their checks.
pub async fn brought_by(store: &Store, deployment_id: i64) -> StoreResult<Vec<(Plan, Vec<Check>)>> {
    let plans = rows::plans_brought_by(store.conn(), deployment_id).await?;
    let ids: Vec<i64> = plans.iter().map(|p| p.id).collect();
    let mut checks = rows::checks_of_plans(store.conn(), &ids).await?;
    Ok(plans
        .into_iter()
        .map(|plan| {
            let (own, rest): (Vec<Check>, Vec<Check>) = checks.drain(..).partition(|c| c.plan_id == plan.id);
            checks = rest;
            (plan, own)
        })
        .collect())
}

pub async fn list(store: &Store, scope: Scope) -> StoreResult<Vec<Plan>> {
    match scope {
        Scope::All => rows::list_plans(store.conn(), None).await,
        Scope::Connection(id) => rows::list_plans(store.conn(), Some(id.0)).await,
        Scope::Nothing => Ok(Vec::new()),
    }
}

/// Cancels a plan that has not ended; returns whether it did.
pub async fn cancel(store: &Store, id: i64, now: DateTime<Utc>) -> StoreResult<bool> {
    let tx = store.begin().await?;
    let Some(plan) = rows::lock_plan(&tx, id).await? else {
        return Ok(false);
    };
    if matches!(
        plan.status,
        PlanStatus::Completed | PlanStatus::Expired | PlanStatus::Cancelled
    ) {
        return Ok(false);
    }
    rows::set_plan_status(&tx, id, PlanStatus::Cancelled, now).await?;
    rows::cancel_pending_checks(&tx, id).await?;
    tx.commit().await?;
    Ok(true)
}

/// Plans as watchers of merge commits, for the ancestry batch.
pub struct MonitoringWatch {
    pub schedule: Vec<StdDuration>,
    pub expiry: StdDuration,
    /// When shiplog learns that a deploy brought a PR live (overdue checks are not sent in a burst).
    pub clock: SharedClock,
}

const WATCHING: [PlanStatus; 2] = [PlanStatus::WaitingForDeploy, PlanStatus::Active];

impl WatchSource for MonitoringWatch {
    fn watched<'a>(
        &'a self,
        store: &'a Store,
        connection_id: i64,
        repository_key: &'a str,
    ) -> BoxFuture<'a, StoreResult<Vec<String>>> {
        Box::pin(async move {
            let plans = rows::plans_in(store.conn(), connection_id, repository_key, &WATCHING).await?;
            let numbers: Vec<i64> = plans.iter().map(|p| p.pull_number).collect();
            pull_requests::merge_commits(store.conn(), connection_id, repository_key, &numbers).await
        })
    }

    fn resolved<'a>(
        &'a self,
        store: &'a Store,
        deploy: &'a LiveDeploy<'a>,
        sha: &'a str,
        contained: bool,
    ) -> BoxFuture<'a, StoreResult<()>> {
        Box::pin(async move {
            let key = deploy.repository.to_ascii_lowercase();
            if !contained {
                // A newer deploy without the PR (diverged: a rollback is told apart by
                // `rolled_back`) took it out of the environment: it is no longer live there.
                let now = self.clock.now();
                let tx = store.begin().await?;
                let numbers = pull_requests::numbers_for_merge_commit(&tx, deploy.connection_id, &key, sha).await?;
                for plan in rows::plans_for_pulls(&tx, deploy.connection_id, &key, &numbers).await? {
                    rows::leave_environment(&tx, plan.id, deploy.environment, deploy.live_at, now).await?;
                }
                tx.commit().await?;
                return Ok(());
            }
            let numbers =
                pull_requests::numbers_for_merge_commit(store.conn(), deploy.connection_id, &key, sha).await?;
            for plan in rows::plans_for_pulls(store.conn(), deploy.connection_id, &key, &numbers).await? {
                if !WATCHING.contains(&plan.status) || !plan.covers(deploy.environment) {
                    continue;
                }
                self.bring_live(store, &plan, deploy).await?;
            }
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
            for (plan_id, environment) in rows::remove_deployment(&tx, deployment_id, now).await? {
                let job = TellRollback {
                    plan_id,
                    deployment_id,
                    environment,
                };
                let dedupe_key = format!("{}:{plan_id}:{deployment_id}", TellRollback::JOB_NAME);
                jobs::enqueue(&tx, &job, Some(dedupe_key), now, now).await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }
}

impl MonitoringWatch {
    /// The deploy brings the plan's PR live in one of its environments: record it as that
    /// environment's live deploy and start the whole schedule again from its went-live time. Any
    /// new deploy does this, a second one to an environment where the PR was already live too; a
    /// job run again for the same deploy, or an older deploy settled after a newer one, does not.
    /// Decided under the plan's row lock, so two deploys settled at once (two environments, two
    /// workers) leave one schedule, not two.
    async fn bring_live(&self, store: &Store, plan: &Plan, deploy: &LiveDeploy<'_>) -> StoreResult<()> {
        let tx = store.begin().await?;
        let Some(plan) = rows::lock_plan(&tx, plan.id).await? else {
            return Ok(());
        };
        if !WATCHING.contains(&plan.status) {
            return Ok(());
        }
        let current = rows::environments(&tx, plan.id)
            .await?
            .into_iter()
            .find(|e| e.environment == deploy.environment && e.removed_at.is_none());
        if let Some(current) = current {
            if current.deployment_id == deploy.id || current.deployed_at > deploy.live_at {
                return Ok(());
            }
        }
        let now = self.clock.now();
        rows::upsert_environment(&tx, plan.id, deploy.environment, deploy.id, deploy.live_at).await?;
        if plan.status == PlanStatus::WaitingForDeploy {
            let expires_at = deploy.live_at + Duration::seconds(self.expiry.as_secs() as i64);
            rows::activate_plan(&tx, plan.id, deploy.live_at, expires_at, now).await?;
            let dedupe_key = format!("{}:{}", ExpirePlan::JOB_NAME, plan.id);
            jobs::enqueue(&tx, &ExpirePlan { plan_id: plan.id }, Some(dedupe_key), expires_at, now).await?;
            let body = format!(
                "🚀 This pull request is live in **{}** (deployment {}, `{}`). Deploy monitoring checks run {} after it.",
                deploy.environment,
                deploy.id,
                &deploy.sha[..deploy.sha.len().min(7)],
                self.schedule.iter().map(|d| human(d.as_secs())).collect::<Vec<_>>().join(", ")
            );
            let key = format!("first-deploy:{}", plan.id);
            opt_in::queue_comment(
                &tx,
                plan.connection_id,
                &plan.repository,
                plan.pull_number,
                &body,
                &key,
                now,
            )
            .await?;
        }
        let cancelled = rows::cancel_pending_checks(&tx, plan.id).await?;
        let plan_checks = schedule(&self.schedule, deploy.live_at, now);
        for planned in &plan_checks {
            let check_id = rows::insert_check(&tx, plan.id, deploy.id, planned.offset, planned.due_at, now).await?;
            if let Some(reason) = &planned.skipped {
                rows::skip_check(&tx, check_id, reason).await?;
                continue;
            }
            let dedupe_key = format!("{}:{check_id}", SendCheck::JOB_NAME);
            jobs::enqueue(
                &tx,
                &SendCheck { check_id },
                Some(dedupe_key),
                planned.due_at.max(now),
                now,
            )
            .await?;
        }
        tx.commit().await?;
        tracing::info!(
            plan = plan.id,
            deploy = deploy.id,
            environment = deploy.environment,
            cancelled,
            skipped = plan_checks.iter().filter(|c| c.skipped.is_some()).count(),
            "monitoring schedule started"
        );
        Ok(())
    }
}

/// One check of a schedule as it is planned.
#[derive(Clone, Debug, PartialEq, Eq)]
struct PlannedCheck {
    offset: i64,
    due_at: DateTime<Utc>,
    /// Why it will not be sent, when it was overdue before shiplog learned of the deploy.
    skipped: Option<String>,
}

/// The checks of a schedule counted from `live_at` (the went-live time GitHub or the deploy tool
/// reported). Checks already due at `now`, when shiplog learns of the deploy, do not run in a
/// burst: the latest of them runs now and the earlier ones are skipped with the reason.
fn schedule(offsets: &[StdDuration], live_at: DateTime<Utc>, now: DateTime<Utc>) -> Vec<PlannedCheck> {
    let planned: Vec<(i64, DateTime<Utc>)> = offsets
        .iter()
        .map(|o| {
            let offset = o.as_secs() as i64;
            (offset, live_at + Duration::seconds(offset))
        })
        .collect();
    let latest_overdue = planned
        .iter()
        .filter(|(_, due_at)| *due_at <= now)
        .map(|(_, due_at)| *due_at)
        .max();
    planned
        .into_iter()
        .map(|(offset, due_at)| PlannedCheck {
            offset,
            due_at,
            skipped: latest_overdue.filter(|latest| due_at < *latest).map(|latest| {
                format!(
                    "skipped: due at {} but shiplog learned of the deploy at {}; the check due at {} ran instead",
                    due_at.to_rfc3339(),
                    now.to_rfc3339(),
                    latest.to_rfc3339()
                )
            }),
        })
        .collect()
}

/// Runs [`SendCheck`] and [`TellRollback`] jobs: sends checks and rollback notices to the agent.
pub struct MonitoringAgent {
    pub store: Store,
    pub outbound: Outbound,
    pub agent: Option<AgentConfig>,
}

impl JobHandler<SendCheck> for MonitoringAgent {
    fn run(&self, job: SendCheck, now: DateTime<Utc>, attempt: i32) -> BoxFuture<'_, Result<(), JobError>> {
        Box::pin(self.send(job.check_id, now, attempt))
    }
}

impl JobHandler<TellRollback> for MonitoringAgent {
    fn run(&self, job: TellRollback, now: DateTime<Utc>, _attempt: i32) -> BoxFuture<'_, Result<(), JobError>> {
        Box::pin(async move { self.tell_rollback(&job, now).await })
    }
}

impl MonitoringAgent {
    async fn send(&self, check_id: i64, now: DateTime<Utc>, attempt: i32) -> Result<(), JobError> {
        let Some(check) = rows::find_check(self.store.conn(), check_id).await? else {
            return Ok(());
        };
        let Some(plan) = rows::find_plan(self.store.conn(), check.plan_id).await? else {
            return Ok(());
        };
        if check.status != CheckStatus::Pending || plan.status != PlanStatus::Active {
            return Ok(());
        }
        let connection = crate::connections::get(&self.store, plan.connection_id).await?;
        let agent = connection.and_then(|c| c.agent(self.agent.as_ref())).ok_or_else(|| JobError::Retry {
            message: "no agent: set the connection's agent_url and agent_secret, or SHIPLOG_AGENT_URL and SHIPLOG_AGENT_SECRET".into(),
            retry_at: Some(now + Duration::hours(1)),
        })?;
        let agent = &agent;
        let environments: Vec<LiveEnvironment> = rows::environments(self.store.conn(), plan.id)
            .await?
            .into_iter()
            .filter(|e| e.removed_at.is_none())
            .collect();
        let ids: Vec<i64> = environments.iter().map(|e| e.deployment_id).collect();
        let found = deployments::find_many(self.store.conn(), &ids).await?;
        let live: Vec<serde_json::Value> = environments
            .iter()
            .map(|environment| {
                let deployment = found.iter().find(|d| d.id.0 == environment.deployment_id);
                json!({"environment": environment.environment, "deployed_at": environment.deployed_at, "deployment": deployment})
            })
            .collect();
        let body = json!({
            "event": "monitoring.check",
            "check": {"id": check.id, "offset_seconds": check.offset_seconds, "due_at": check.due_at},
            "plan": plan,
            "pull_request": {"repository": plan.repository, "number": plan.pull_number},
            "deployments": live,
            "result_url": format!("/api/checks/{}/result", check.id),
        });
        let bytes = serde_json::to_vec(&body).map_err(|e| JobError::Permanent(e.to_string()))?;
        let delivery = delivery_id(&format!("check:{}", check.id));
        let result = self
            .outbound
            .post(&agent.url, &agent.secret, "monitoring.check", &delivery, &bytes)
            .await;
        if result.succeeded() {
            let tx = self.store.begin().await?;
            rows::finish_check(&tx, check.id, CheckStatus::Sent, Some(now)).await?;
            let remaining = rows::checks(&tx, plan.id)
                .await?
                .iter()
                .filter(|c| c.status == CheckStatus::Pending)
                .count();
            let still_active = rows::lock_plan(&tx, plan.id)
                .await?
                .is_some_and(|p| p.status == PlanStatus::Active);
            if remaining == 0 && still_active {
                rows::set_plan_status(&tx, plan.id, PlanStatus::Completed, now).await?;
            }
            tx.commit().await?;
            return Ok(());
        }
        let error = result
            .error
            .unwrap_or_else(|| "the agent did not accept the check".into());
        if attempt >= MAX_ATTEMPTS {
            let tx = self.store.begin().await?;
            rows::finish_check(&tx, check.id, CheckStatus::Failed, None).await?;
            tx.commit().await?;
            return Err(JobError::Permanent(error));
        }
        Err(JobError::retry(error))
    }

    async fn tell_rollback(&self, rollback: &TellRollback, now: DateTime<Utc>) -> Result<(), JobError> {
        let plan_id = rollback.plan_id;
        let plan = rows::find_plan(self.store.conn(), plan_id).await?;
        let connection = match &plan {
            Some(plan) => crate::connections::get(&self.store, plan.connection_id).await?,
            None => None,
        };
        let agent = connection.and_then(|c| c.agent(self.agent.as_ref())).ok_or_else(|| JobError::Retry {
            message: "no agent: set the connection's agent_url and agent_secret, or SHIPLOG_AGENT_URL and SHIPLOG_AGENT_SECRET".into(),
            retry_at: Some(now + Duration::hours(1)),
        })?;
        let body = json!({"event": "deployment.rolled_back", "plan": plan, "rollback": rollback});
        let bytes = serde_json::to_vec(&body).map_err(|e| JobError::Permanent(e.to_string()))?;
        let delivery = delivery_id(&format!("rolled_back:{plan_id}:{}", rollback.deployment_id));
        let result = self
            .outbound
            .post(&agent.url, &agent.secret, "deployment.rolled_back", &delivery, &bytes)
            .await;
        if result.succeeded() {
            Ok(())
        } else {
            Err(JobError::retry(result.error.unwrap_or_default()))
        }
    }
}

/// Runs [`ExpirePlan`] jobs: ends a plan at its expiry.
pub struct PlanExpiry {
    pub store: Store,
}

impl JobHandler<ExpirePlan> for PlanExpiry {
    fn run(&self, job: ExpirePlan, now: DateTime<Utc>, _attempt: i32) -> BoxFuture<'_, Result<(), JobError>> {
        Box::pin(async move {
            let plan_id = job.plan_id;
            let tx = self.store.begin().await?;
            let Some(plan) = rows::lock_plan(&tx, plan_id).await? else {
                return Ok(());
            };
            if plan.status == PlanStatus::Active {
                rows::set_plan_status(&tx, plan.id, PlanStatus::Expired, now).await?;
                rows::cancel_pending_checks(&tx, plan.id).await?;
                tx.commit().await?;
            }
            Ok(())
        })
    }
}

/// The agent's verdict on a check: `healthy`, `regressed` or `inconclusive`. A regression is
/// also commented on the pull request.
/// The agent a check's verdict must come from: its plan's connection's agent (its own
/// `agent_secret`, else the server's; the server's for an unknown check, so the agent learns
/// that it is unknown). With it, the connection whose own secret it is (`None`: the server's).
pub async fn agent_for_check(
    store: &Store,
    check_id: i64,
    default: Option<&AgentConfig>,
) -> StoreResult<Option<(AgentConfig, Option<i64>)>> {
    let server = || default.cloned().map(|agent| (agent, None));
    let Some(check) = rows::find_check(store.conn(), check_id).await? else {
        return Ok(server());
    };
    let Some(plan) = rows::find_plan(store.conn(), check.plan_id).await? else {
        return Ok(server());
    };
    let connection = crate::connections::get(store, plan.connection_id).await?;
    Ok(match connection {
        Some(connection) => {
            let own = connection.agent_secret.is_some().then_some(connection.id);
            connection.agent(default).map(|agent| (agent, own))
        }
        None => server(),
    })
}

pub async fn record_verdict(
    store: &Store,
    check_id: i64,
    verdict: &str,
    summary: Option<&str>,
    now: DateTime<Utc>,
) -> StoreResult<Verdict> {
    let tx = store.begin().await?;
    let Some(check) = rows::find_check(&tx, check_id).await? else {
        return Ok(Verdict::UnknownCheck);
    };
    // A pending check may be in flight (an agent can answer before its response arrives); a
    // cancelled or skipped one was never sent, so there is nothing to judge.
    if matches!(check.status, CheckStatus::Cancelled | CheckStatus::Skipped) {
        return Ok(Verdict::NeverSent(check.status));
    }
    rows::set_verdict(&tx, check_id, verdict, summary).await?;
    if verdict == "regressed" {
        let check_name = format!("{} after deploy", human(check.offset_seconds.max(0) as u64));
        crate::delivery::record::regressed(&tx, check.deployment_id, &check_name, summary, now).await?;
        if let Some(plan) = rows::find_plan(&tx, check.plan_id).await? {
            let body = format!(
                "⚠️ The deploy monitoring check {} after deploy reported a **regression**{}",
                human(check.offset_seconds.max(0) as u64),
                summary.map(|s| format!(": {s}")).unwrap_or_else(|| ".".to_owned())
            );
            let key = format!("regressed:{check_id}");
            opt_in::queue_comment(
                &tx,
                plan.connection_id,
                &plan.repository,
                plan.pull_number,
                &body,
                &key,
                now,
            )
            .await?;
        }
    }
    let recorded = rows::find_check(&tx, check_id).await?;
    tx.commit().await?;
    Ok(recorded.map_or(Verdict::UnknownCheck, Verdict::Recorded))
}

/// What became of an agent's verdict.
#[derive(Debug)]
pub enum Verdict {
    Recorded(Check),
    UnknownCheck,
    /// The check was never sent (cancelled with its plan, or skipped as overdue).
    NeverSent(CheckStatus),
}

/// `600` → `10m`, `7200` → `2h`, `259200` → `72h`.
fn human(seconds: u64) -> String {
    match seconds {
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offsets(seconds: &[u64]) -> Vec<StdDuration> {
        seconds.iter().map(|s| StdDuration::from_secs(*s)).collect()
    }

    #[test]
    fn a_schedule_learned_in_time_skips_nothing() {
        let live_at = Utc::now();
        let planned = schedule(&offsets(&[600, 1800]), live_at, live_at + Duration::seconds(5));
        assert!(planned.iter().all(|c| c.skipped.is_none()));
        assert_eq!(planned[1].due_at, live_at + Duration::seconds(1800));
    }

    #[test]
    fn overdue_checks_collapse_to_the_latest_of_them() {
        let live_at = Utc::now();
        let planned = schedule(
            &offsets(&[600, 1800, 3600, 7200]),
            live_at,
            live_at + Duration::seconds(3630),
        );
        let skipped: Vec<i64> = planned
            .iter()
            .filter(|c| c.skipped.is_some())
            .map(|c| c.offset)
            .collect();
        assert_eq!(skipped, vec![600, 1800]);
        assert_eq!(
            planned.len(),
            4,
            "the latest overdue (1h) and the future (2h) stay pending"
        );
    }
}
