//! Deploys from GitHub's history (a backfill): a GitHub deployment with its statuses, or an
//! Actions run a workflow rule matches, recorded as `backfilled` and applied through the same
//! lifecycle as live reports, but firing nothing (`go_live` queues no job for them).
//!
//! Nothing is imported twice: a deployment already known by its GitHub id, or a run already
//! known in an environment, is left as it is. GitHub's history does not say which run made a
//! deployment (the webhook does), so a deployment and a run deploy of the same sha to the same
//! environment are one deploy when the deployment was made while the run ran.

use chrono::{DateTime, Utc};

use super::{apply_report, from_github_state, DeploySource, NewDeploy, Report, ReportOrder, StatusEntry};
use crate::connections::{rules, Connection};
use crate::events::WorkflowRun;
use crate::github::history::HistoricDeployment;
use crate::limits::clamp_to_received;
use crate::store::deployments as rows;
use crate::store::{StoreResult, Writer};
use crate::types::{ConnectionId, RepoName};

/// Records a deployment from GitHub's history; `false` when it was known already or the
/// connection's settings skip it.
pub async fn record_deployment(
    db: &impl Writer,
    connection: &Connection,
    repository: &RepoName,
    deployment: &HistoricDeployment,
    now: DateTime<Utc>,
) -> StoreResult<bool> {
    if connection
        .settings
        .skip_reason(deployment.environment.as_str(), false)
        .is_some()
    {
        return Ok(false);
    }
    super::lock_environment(db, connection.id, repository, &deployment.environment).await?;
    if rows::find_by_github_id(db, connection.id, deployment.id)
        .await?
        .is_some()
    {
        return Ok(false);
    }
    let at = clamp_to_received(deployment.created_at, now);
    if let Some(run_deploy) = rows::find_run_deploy_around(
        db,
        connection.id,
        repository.key(),
        deployment.environment.as_str(),
        deployment.sha.as_str(),
        at,
    )
    .await?
    {
        rows::attach_github_deployment(db, run_deploy.id, deployment.id, now).await?;
        return Ok(false);
    }
    let new = NewDeploy {
        connection_id: ConnectionId(connection.id),
        repository: repository.clone(),
        environment: deployment.environment.clone(),
        sha: deployment.sha.clone(),
        git_ref: deployment.git_ref.clone(),
        source: DeploySource::Github,
        github_deployment_id: Some(deployment.id),
        external_id: None,
        version: None,
        creator: deployment.creator.clone(),
        description: deployment.description.clone(),
        log_url: None,
        environment_url: None,
        transient_environment: false,
        production_environment: false,
        deploy_time: at,
        github_run_id: None,
        run_attempt: None,
        backfilled: true,
    };
    let mut deploy = rows::insert(db, &new, now).await?;
    // GraphQL gives no status its REST id: the position orders statuses with one timestamp.
    for (position, status) in deployment.statuses.iter().enumerate() {
        let at = clamp_to_received(status.created_at, now);
        let mapped = from_github_state(&status.state);
        let entry = StatusEntry {
            github_status_id: None,
            state: status.state.clone(),
            status: mapped,
            description: status.description.clone(),
            log_url: status.log_url.clone(),
            environment_url: status.environment_url.clone(),
            creator: status.creator.clone(),
            occurred_at: at,
        };
        rows::insert_status(db, deploy.id, &entry, now).await?;
        if let Some(status_now) = mapped {
            let report = Report {
                status: status_now,
                order: ReportOrder {
                    at,
                    id: i64::try_from(position).unwrap_or(i64::MAX - 1) + 1,
                },
                log_url: status.log_url.clone(),
                environment_url: status.environment_url.clone(),
            };
            apply_report(db, &deploy, &report, now).await?;
            if let Some(fresh) = rows::find(db, deploy.id.0).await? {
                deploy = fresh;
            }
        }
    }
    Ok(true)
}

/// Records a run from GitHub's history in every environment the connection's rules give it and
/// its settings do not skip; the number of deploys made.
pub async fn record_run(
    db: &impl Writer,
    connection: &Connection,
    run: &WorkflowRun,
    now: DateTime<Utc>,
) -> StoreResult<i64> {
    let mut made = 0;
    for environment in rules::environments_for(&connection.settings.workflow_rules, run) {
        if connection.settings.skip_reason(environment.as_str(), false).is_some() {
            continue;
        }
        let source = super::actions::RunSource::History;
        if super::actions::apply_run(db, ConnectionId(connection.id), run, &environment, source, now).await? {
            made += 1;
        }
    }
    Ok(made)
}
