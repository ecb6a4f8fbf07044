//! Deploys from GitHub Actions runs: a run that matches one of the connection's workflow rules
//! (`connections::rules`) is a deploy of its `head_sha` to the rule's environment.
//!
//! The run's status and conclusion drive the lifecycle (DESIGN.md §2 words): `requested`,
//! `queued`, `waiting`, `pending` → `initiated`; `in_progress` → `building`; `completed` with
//! `success` → `live`; with `failure`, `timed_out` or `startup_failure` → `failed`. Any other
//! conclusion (`cancelled`, `skipped`, `action_required`, `neutral`, `stale`) is kept in the
//! history and leaves the status as it was: the run did not deploy, and it did not fail one.
//!
//! Reports apply in the run's own order: `updated_at`, then the attempt and the phase, so a
//! redelivery or a late `in_progress` changes nothing. A re-run (`run_attempt` > 1) moves the same
//! deploy: a failed one can start again and go live. A deploy that has been live stays so when a
//! later attempt reports anything but success (the code it shipped is still there); the report is
//! kept in its history.
//!
//! One deploy per run and environment: a job with `environment:` also makes GitHub create a
//! deployment carrying the run's id. Whichever arrives first makes the deploy, the other finds
//! it (`find_by_run`) and adds what it knows (`github.rs` does the same from its side).

use chrono::{DateTime, Utc};

use super::{
    apply_report, Deploy, DeploySource, DeployStatus, NewDeploy, Report, ReportOrder, StatusEntry, Transition,
};
use crate::connections::{self, rules, Applied, Connection};
use crate::events::WorkflowRun;
use crate::limits::clamp_to_received;
use crate::store::deployments as rows;
use crate::store::{StoreResult, Writer};
use crate::types::{ConnectionId, Environment, InstallationId};

/// A `workflow_run` delivery: a deploy for every environment the connection's rules give the
/// run, or `skipped` with the reason when none does.
pub async fn record_run(
    db: &impl Writer,
    installation_id: InstallationId,
    run: &WorkflowRun,
    now: DateTime<Utc>,
) -> StoreResult<Applied> {
    let connection =
        match connections::for_repository_event(db, installation_id, &run.owner, &run.repository, now).await? {
            Ok(connection) => connection,
            Err(skipped) => return Ok(skipped),
        };
    let environments = rules::environments_for(&connection.settings.workflow_rules, run);
    if environments.is_empty() {
        return Ok(Applied::Skipped {
            connection_id: connection.id,
            reason: no_rule(&connection, run),
        });
    }
    let mut skipped = Vec::new();
    let mut recorded = 0;
    for environment in &environments {
        if let Some(reason) = connection.settings.skip_reason(environment.as_str(), false) {
            skipped.push(reason);
            continue;
        }
        apply_run(
            db,
            ConnectionId(connection.id),
            run,
            environment,
            RunSource::Webhook,
            now,
        )
        .await?;
        recorded += 1;
    }
    if recorded == 0 {
        return Ok(Applied::Skipped {
            connection_id: connection.id,
            reason: skipped.join("; "),
        });
    }
    Ok(Applied::Changed {
        connection_id: connection.id,
    })
}

fn no_rule(connection: &Connection, run: &WorkflowRun) -> String {
    let rules = connection.settings.workflow_rules.len();
    let branch = run.head_branch.as_deref().unwrap_or("no branch");
    if rules == 0 {
        "the connection has no workflow_rules, so Actions runs are not deploys".to_owned()
    } else if run.head_branch.is_none() {
        format!(
            "workflow {:?} ran on no branch of {} (a fork's pull request, or no branch at all): not a deploy",
            run.workflow_name, run.repository.name
        )
    } else {
        format!(
            "none of the connection's {rules} workflow_rules matches workflow {:?} ({}) on {branch:?}",
            run.workflow_name, run.workflow_path
        )
    }
}

/// What a run's status says for the lifecycle: the raw state kept in the history (the
/// conclusion once completed), the shiplog status it maps to (`None`: keep the status), and its
/// phase, which orders two reports of one attempt with the same timestamp.
fn run_state(run: &WorkflowRun) -> (String, Option<DeployStatus>, i64) {
    match (run.status.as_str(), run.conclusion.as_deref()) {
        ("completed", Some(conclusion)) => {
            let status = match conclusion {
                "success" => Some(DeployStatus::Live),
                "failure" | "timed_out" | "startup_failure" => Some(DeployStatus::Failed),
                _ => None,
            };
            (conclusion.to_owned(), status, 3)
        }
        ("in_progress", _) => ("in_progress".to_owned(), Some(DeployStatus::Building), 2),
        (status @ ("requested" | "queued" | "waiting" | "pending"), _) => {
            (status.to_owned(), Some(DeployStatus::Initiated), 1)
        }
        (other, _) => (other.to_owned(), None, 0),
    }
}

/// Who tells shiplog about a run.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum RunSource {
    /// A `workflow_run` delivery: news.
    Webhook,
    /// A backfill reading GitHub's history: a run already known is left as it is, a new one is
    /// recorded `backfilled`.
    History,
}

/// Records `run` as the deploy to `environment` (made now if the run has none there yet), keeps
/// its status in the history and applies it in the run's order. Whether it made a deploy.
pub async fn apply_run(
    db: &impl Writer,
    connection_id: ConnectionId,
    run: &WorkflowRun,
    environment: &Environment,
    source: RunSource,
    now: DateTime<Utc>,
) -> StoreResult<bool> {
    let backfilled = source == RunSource::History;
    super::lock_environment(db, connection_id.0, &run.repository.name, environment).await?;
    let key = run.repository.name.key();
    let deploy = match rows::find_by_run(db, connection_id.0, key, run.id, environment.as_str()).await? {
        Some(_) if backfilled => return Ok(false),
        Some(existing) => existing,
        None => {
            let mut external_id = run.id.to_string();
            if let Some(same) = rows::find_by_external_id(db, connection_id.0, key, &external_id).await? {
                if same.environment == *environment && same.github_run_id.is_none() {
                    // A CI step reported this run through `POST /deployments` with the run id as
                    // its external_id: the same deploy.
                    let same = if backfilled {
                        same
                    } else {
                        rows::announce(db, same, now).await?
                    };
                    rows::attach_run(db, same.id, run.id, run.run_attempt, now).await?;
                    apply_run_report(db, &same, run, now).await?;
                    return Ok(false);
                }
                external_id = format!("{}/{}", run.id, environment);
            }
            let deploy_time = clamp_to_received(run.run_started_at.unwrap_or(run.created_at), now);
            let new = NewDeploy {
                connection_id,
                repository: run.repository.name.clone(),
                environment: environment.clone(),
                sha: run.head_sha.clone(),
                git_ref: run.head_branch.clone(),
                source: DeploySource::Actions,
                github_deployment_id: None,
                external_id: Some(external_id),
                version: Some(
                    run.display_title
                        .clone()
                        .unwrap_or_else(|| format!("#{}", run.run_number)),
                ),
                creator: run.triggered_by.clone(),
                description: Some(format!("{} run #{}", run.workflow_name, run.run_number)),
                log_url: run.html_url.clone(),
                environment_url: None,
                transient_environment: false,
                production_environment: false,
                deploy_time,
                github_run_id: Some(run.id),
                run_attempt: Some(run.run_attempt),
                backfilled,
            };
            // GitHub may date a report before `run_started_at` (its `in_progress` example does):
            // the status the row starts with must not outrank the run's first report.
            let first_report = clamp_to_received(run.updated_at, now);
            let made = rows::insert_initiated_at(db, &new, deploy_time.min(first_report), now).await?;
            rows::attach_run(db, made.id, run.id, run.run_attempt, now).await?;
            apply_run_report(db, &made, run, now).await?;
            return Ok(true);
        }
    };
    // Known already and reported now: news, even if a backfill imported it.
    let deploy = rows::announce(db, deploy, now).await?;
    rows::attach_run(db, deploy.id, run.id, run.run_attempt, now).await?;
    apply_run_report(db, &deploy, run, now).await?;
    Ok(false)
}

async fn apply_run_report(db: &impl Writer, deploy: &Deploy, run: &WorkflowRun, now: DateTime<Utc>) -> StoreResult<()> {
    let (state, status, phase) = run_state(run);
    let at = clamp_to_received(run.updated_at, now);
    let attempt = if run.run_attempt > 1 {
        format!(", attempt {}", run.run_attempt)
    } else {
        String::new()
    };
    let entry = StatusEntry {
        github_status_id: None,
        state: state.clone(),
        status,
        description: Some(format!(
            "{} run #{}{attempt}: {state}",
            run.workflow_name, run.run_number
        )),
        log_url: run.html_url.clone(),
        environment_url: None,
        creator: run.triggered_by.clone(),
        occurred_at: at,
    };
    // A run's reports carry no id: the same one again (a second delivery of the event, or a
    // backfill reading a run the webhooks told already) is known by what it says, and changes
    // nothing, not even the history.
    let history = rows::statuses(db, deploy.id.0).await?;
    if history
        .iter()
        .any(|e| e.state == entry.state && e.occurred_at == entry.occurred_at && e.description == entry.description)
    {
        return Ok(());
    }
    rows::insert_status(db, deploy.id, &entry, now).await?;
    let Some(status) = status else {
        return Ok(());
    };
    let report = Report {
        status,
        order: ReportOrder {
            at,
            id: run.run_attempt.saturating_mul(10).saturating_add(phase),
        },
        log_url: run.html_url.clone(),
        environment_url: None,
    };
    apply_to_run_deploy(db, deploy, &report, now).await
}

/// Applies `report` to the deploy of a run, whoever reports it: the run, or a GitHub deployment
/// one of its attempts made (`github.rs`; a re-run makes a new deployment for the same deploy).
/// A deploy that has been live takes nothing but `live` (the code it shipped is still there,
/// whatever a later attempt, or GitHub marking the first attempt's deployment inactive, says);
/// one that failed and starts again has not completed.
pub(super) async fn apply_to_run_deploy(
    db: &impl Writer,
    deploy: &Deploy,
    report: &Report,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    let has_been_live = matches!(
        deploy.status,
        DeployStatus::Live | DeployStatus::Superseded | DeployStatus::RolledBack
    );
    if has_been_live && report.status != DeployStatus::Live {
        return Ok(());
    }
    let transition = apply_report(db, deploy, report, now).await?;
    if matches!(transition, Transition::Changed(status) if !status.completes()) && deploy.completed_at.is_some() {
        rows::clear_completion(db, deploy.id, now).await?;
    }
    Ok(())
}
