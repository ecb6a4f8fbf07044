//! Deploys from GitHub's `deployment` and `deployment_status` events.
//!
//! The installation in the payload picks the connection. A connection that turned auto-creation
//! off, a transient environment it ignores, or an environment matching one of its ignored
//! patterns makes the event `skipped`: acknowledged, recorded, and no deploy row changes.
//!
//! GitHub's timestamps order the reports. One that is more than a day ahead of the server's
//! clock is taken as the time the server received it (`limits::clamp_to_received`): a deploy
//! dated 9999 would otherwise stay the newest of its environment and every real deploy would
//! arrive superseded.

use chrono::{DateTime, Utc};

use super::{apply_report, from_github_state, DeploySource, DeployStatus, NewDeploy, Report, ReportOrder, StatusEntry};
use crate::connections::{self, Applied, Connection};
use crate::events::{GitHubDeployment, GitHubDeploymentStatus};
use crate::limits::clamp_to_received;
use crate::store::deployments as rows;
use crate::store::{StoreResult, Writer};
use crate::types::{ConnectionId, InstallationId};

/// A `deployment` event: records the deploy (status `initiated`) unless it exists already.
pub async fn record_deployment(
    db: &impl Writer,
    installation_id: InstallationId,
    deployment: &GitHubDeployment,
    now: DateTime<Utc>,
) -> StoreResult<Applied> {
    let connection = match accepting_connection(db, installation_id, deployment, now).await? {
        Ok(connection) => connection,
        Err(skipped) => return Ok(skipped),
    };
    super::lock_environment(db, connection.id, &deployment.repository.name, &deployment.environment).await?;
    upsert(db, &connection, deployment, now).await?;
    Ok(Applied::Changed {
        connection_id: connection.id,
    })
}

/// A `deployment_status` event: records the deploy from the embedded deployment if it is new,
/// keeps the status in the history, and applies it in GitHub's timestamp order.
pub async fn record_status(
    db: &impl Writer,
    installation_id: InstallationId,
    event: &GitHubDeploymentStatus,
    now: DateTime<Utc>,
) -> StoreResult<Applied> {
    let connection = match accepting_connection(db, installation_id, &event.deployment, now).await? {
        Ok(connection) => connection,
        Err(skipped) => return Ok(skipped),
    };
    // Under the environment's lock, the deploy read below is the one the report is applied to.
    super::lock_environment(
        db,
        connection.id,
        &event.deployment.repository.name,
        &event.deployment.environment,
    )
    .await?;
    if rows::has_github_status(db, event.id).await? {
        return Ok(Applied::Skipped {
            connection_id: connection.id,
            reason: format!("deployment status {} is recorded already", event.id),
        });
    }
    let deploy = upsert(db, &connection, &event.deployment, now).await?;
    let entry = status_entry(event, now);
    let (status, at) = (entry.status, entry.occurred_at);
    rows::insert_status(db, deploy.id, &entry, now).await?;
    // GitHub marks a deployment `inactive` when a later one succeeds (auto_inactive); shiplog
    // superseded this deploy then already and named its successor, which the report would erase.
    let stepped_down = matches!(deploy.status, DeployStatus::Superseded | DeployStatus::RolledBack);
    let status = status.filter(|s| !(*s == DeployStatus::Superseded && stepped_down));
    if let Some(status) = status {
        let report = Report {
            status,
            order: ReportOrder { at, id: event.id },
            log_url: event.log_url.clone(),
            environment_url: event.environment_url.clone(),
        };
        if deploy.github_run_id.is_some() {
            // One deploy for all of a run's attempts and the deployments they make.
            super::actions::apply_to_run_deploy(db, &deploy, &report, now).await?;
        } else {
            apply_report(db, &deploy, &report, now).await?;
        }
    }
    // The run that made the deploy does not know where it can be seen; its deployment does, even
    // when its report changes nothing (the run said live first).
    if let (Some(_), Some(url)) = (deploy.github_run_id, event.environment_url.as_deref()) {
        rows::fill_environment_url(db, deploy.id, url, now).await?;
    }
    Ok(Applied::Changed {
        connection_id: connection.id,
    })
}

/// A `deployment_status` as its deploy's history entry: GitHub's state, the shiplog status it maps
/// to, and its time (clamped to the time it was received, see above).
pub(super) fn status_entry(event: &GitHubDeploymentStatus, now: DateTime<Utc>) -> StatusEntry {
    StatusEntry {
        github_status_id: Some(event.id),
        state: event.state.clone(),
        status: from_github_state(&event.state),
        description: event.description.clone(),
        log_url: event.log_url.clone(),
        environment_url: event.environment_url.clone(),
        creator: event.creator.clone(),
        occurred_at: clamp_to_received(event.created_at, now),
    }
}

/// The connection that takes this event, or why the event is skipped.
async fn accepting_connection(
    db: &impl Writer,
    installation_id: InstallationId,
    deployment: &GitHubDeployment,
    now: DateTime<Utc>,
) -> StoreResult<Result<Connection, Applied>> {
    let connection =
        match connections::for_repository_event(db, installation_id, &deployment.owner, &deployment.repository, now)
            .await?
        {
            Ok(connection) => connection,
            Err(skipped) => return Ok(Err(skipped)),
        };
    if let Some(reason) = connection
        .settings
        .skip_reason(deployment.environment.as_str(), deployment.transient_environment)
    {
        return Ok(Err(Applied::Skipped {
            connection_id: connection.id,
            reason,
        }));
    }
    Ok(Ok(connection))
}

/// The deploy a GitHub deployment makes (status `initiated` at its clamped creation time).
pub(super) fn new_deploy(connection: &Connection, deployment: &GitHubDeployment, now: DateTime<Utc>) -> NewDeploy {
    NewDeploy {
        connection_id: ConnectionId(connection.id),
        repository: deployment.repository.name.clone(),
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
        transient_environment: deployment.transient_environment,
        production_environment: deployment.production_environment,
        deploy_time: clamp_to_received(deployment.created_at, now),
        github_run_id: deployment.workflow_run_id,
        run_attempt: None,
        backfilled: false,
    }
}

async fn upsert(
    db: &impl Writer,
    connection: &Connection,
    deployment: &GitHubDeployment,
    now: DateTime<Utc>,
) -> StoreResult<super::Deploy> {
    let new = new_deploy(connection, deployment, now);
    if let Some(existing) = rows::find_by_github_id(db, connection.id, deployment.id).await? {
        rows::refresh_description(db, existing.id, &new, now).await?;
        return rows::announce(db, existing, now).await;
    }
    // A deployment an Actions job made: the run may have made its deploy already (a workflow
    // rule matched it). One deploy for the run and environment; this deployment enriches it.
    if let Some(run_id) = deployment.workflow_run_id {
        let key = deployment.repository.name.key();
        let environment = deployment.environment.as_str();
        let same_run = match rows::find_by_run(db, connection.id, key, run_id, environment).await? {
            Some(found) => Some(found),
            // A CI step that reported the run through `POST /deployments` with the run id as its
            // external_id: the same deploy.
            None => rows::find_by_external_id(db, connection.id, key, &run_id.to_string())
                .await?
                .filter(|d| d.environment == deployment.environment && d.github_deployment_id.is_none()),
        };
        if let Some(existing) = same_run {
            rows::attach_github_deployment(db, existing.id, deployment.id, now).await?;
            rows::attach_run(db, existing.id, run_id, existing.run_attempt.unwrap_or(1), now).await?;
            let mut existing = rows::announce(db, existing, now).await?;
            existing.github_run_id = Some(run_id);
            return Ok(existing);
        }
    }
    rows::insert(db, &new, now).await
}
