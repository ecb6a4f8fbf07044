//! What the delivery metrics store as events happen, so that reading them is a read of rows:
//!
//! - [`after_live`] (the went-live job, after `shipped::record`): the lead time of each merged
//!   pull request the deploy brought to its environment; a revert it ships (rework, and the
//!   failure of the deploy that last brought the reverted change, when within
//!   `revert_window_hours` of it; a revert of a revert lands the change again: neither); the
//!   regressions in its environment it recovers from;
//! - [`rolled_back`] (wherever a rollback is recorded): the replaced deploy failed, the rollback
//!   recovered it and is rework;
//! - [`regressed`] (a monitoring verdict): the checked deploy failed; the first deploy that went
//!   live after it in its environment, if there is one already, recovered it.
//!
//! Each write is keyed (a pull request once per environment, a failure once per deploy and
//! reason), so a retried job or a redelivered event stores nothing twice.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};

use crate::delivery::report;
use crate::deploys::{Deploy, DeployStatus};
use crate::shipped::changes;
use crate::store::commits::RangeListing;
use crate::store::delivery::{self as rows, InterventionRow, LeadTimeRow, ReworkRow};
use crate::store::{deployments, pull_requests, StoreResult, Writer};

/// When a deploy went live (its completion, else its last status).
pub fn live_at(deploy: &Deploy) -> DateTime<Utc> {
    deploy.completed_at.unwrap_or(deploy.status_at)
}

fn short(sha: &str) -> &str {
    sha.get(..7).unwrap_or(sha)
}

/// Records what `deploy`, just gone live, means for the metrics, in the went-live job's last
/// transaction. `shipped` is the listing of
/// what it brought (`None` when nothing was listed: the first deploy seen in its environment, a
/// range not read); `revert_window` is the connection's `revert_window_hours`.
pub async fn after_live(
    tx: &impl Writer,
    deploy: &Deploy,
    shipped: Option<&RangeListing>,
    revert_window: Duration,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    let at = live_at(deploy);
    let connection = deploy.connection_id.0;
    let repo = deploy.repository.key();
    let environment = deploy.environment.as_str();
    let mut lead_times = Vec::new();
    let mut reverts = Vec::new();
    if let Some(listing) = shipped {
        let shas: Vec<String> = listing.commits.iter().map(|c| c.sha.clone()).collect();
        let merged = pull_requests::merged_as(tx, connection, repo, &shas).await?;
        let grouped = changes::group(&listing.commits, &merged);
        let authored: HashMap<&str, Option<DateTime<Utc>>> = listing
            .commits
            .iter()
            .map(|c| (c.sha.as_str(), c.authored_at))
            .collect();
        for pr in &grouped.pull_requests {
            let first_commit_at = pr
                .commits
                .iter()
                .filter_map(|sha| authored.get(sha.as_str()).copied().flatten())
                .min();
            lead_times.push(LeadTimeRow {
                connection_id: connection,
                repository: deploy.repository.to_string(),
                repository_key: repo.to_owned(),
                environment: environment.to_owned(),
                pull_number: pr.number,
                title: pr.title.clone(),
                author: pr.author.clone(),
                merge_commit_sha: pr.merge_commit_sha.clone(),
                first_commit_at,
                opened_at: pr.created_at,
                merged_at: pr.merged_at,
                deployment_id: deploy.id.0,
                deploy_started_at: deploy.deploy_time,
                live_at: at,
                lead_seconds: (at - report::start_from(first_commit_at, pr.created_at, pr.merged_at).0)
                    .num_seconds()
                    .max(0),
            });
        }
        reverts = listing
            .commits
            .iter()
            .filter(|c| c.reverts.is_revert())
            .cloned()
            .collect();
    }

    rows::save_lead_times(tx, &lead_times, now).await?;
    for commit in &reverts {
        // The deploy that last brought the reverted change here (a rollback may have taken it
        // out and a later deploy shipped it again: that one needed the intervention), by pull
        // request (its merge commit, else its lead time's deploy), else by commit.
        let mut target = None;
        let mut what = String::new();
        // A revert of a revert lands the change again: planned work, neither rework nor a
        // failure of the deploy that shipped the first revert.
        let mut relands = false;
        if let Some(number) = commit.reverts.pull_request {
            if let Some(lead) = rows::lead_time_of(tx, connection, repo, environment, number).await? {
                target = rows::deploy_that_shipped(tx, connection, repo, environment, &lead.merge_commit_sha, at)
                    .await?
                    .or(Some((lead.deployment_id, lead.live_at)));
                relands =
                    lead.title.starts_with("Revert \"") || rows::is_a_revert(tx, repo, &lead.merge_commit_sha).await?;
            }
            what = format!("#{number}");
        }
        if let (None, Some(sha)) = (target, commit.reverts.sha.as_deref()) {
            target = rows::deploy_that_shipped(tx, connection, repo, environment, sha, at).await?;
            relands = rows::is_a_revert(tx, repo, sha).await?;
            what = format!("commit {}", short(sha));
        }
        if relands {
            continue;
        }
        let title = &commit.title;
        let detail = match target {
            // Reverted before it ever went live here: nothing unplanned reached the environment.
            Some((id, _)) if id == deploy.id.0 => continue,
            Some((id, _)) => format!(
                "ships {} ({title}), reverting {what} shipped by deployment {id}",
                short(&commit.sha)
            ),
            None => format!(
                "ships {} ({title}), a revert of a change shiplog did not see go live in {environment}",
                short(&commit.sha)
            ),
        };
        rows::save_rework(
            tx,
            &ReworkRow {
                connection_id: connection,
                repository: deploy.repository.to_string(),
                repository_key: repo.to_owned(),
                environment: environment.to_owned(),
                deployment_id: deploy.id.0,
                reason: "revert".to_owned(),
                detail,
                live_at: at,
            },
            now,
        )
        .await?;
        let Some((failed_id, failed_at)) = target else {
            continue;
        };
        if at - failed_at > revert_window || at < failed_at {
            continue;
        }
        let hours = (at - failed_at).num_minutes() as f64 / 60.0;
        rows::save_intervention(
            tx,
            &InterventionRow {
                connection_id: connection,
                repository: deploy.repository.to_string(),
                repository_key: repo.to_owned(),
                environment: environment.to_owned(),
                deployment_id: failed_id,
                reason: "reverted".to_owned(),
                detail: format!(
                    "{what} reverted by {} ({title}), shipped {hours:.1} h later by deployment {}",
                    short(&commit.sha),
                    deploy.id
                ),
                failed_at,
                recovered_by_id: Some(deploy.id.0),
                recovered_at: Some(at),
            },
            now,
        )
        .await?;
    }
    rows::recover_regressions(tx, connection, repo, environment, deploy.id.0, at).await?;
    Ok(())
}

/// `replaced` was rolled back by `target` (live at `at`), in the caller's transaction. When
/// `replaced` was itself a rollback and `target` deploys again what it took out (a roll-forward,
/// which the lifecycle still calls a rollback), nothing is recorded.
pub async fn rolled_back(
    db: &impl Writer,
    replaced: &Deploy,
    target: &Deploy,
    at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    // Deploying again what a rollback took out rolls forward: the rollback did not fail.
    if rows::rolled_back_a_deploy_of(db, replaced.id.0, target.sha.as_str()).await? {
        return Ok(());
    }
    let failed_at = live_at(replaced);
    rows::save_intervention(
        db,
        &InterventionRow {
            connection_id: replaced.connection_id.0,
            repository: replaced.repository.to_string(),
            repository_key: replaced.repository.key().to_owned(),
            environment: replaced.environment.to_string(),
            deployment_id: replaced.id.0,
            reason: "rolled_back".to_owned(),
            detail: format!(
                "rolled back to {} by deployment {}",
                short(target.sha.as_str()),
                target.id
            ),
            failed_at,
            recovered_by_id: Some(target.id.0),
            recovered_at: Some(at),
        },
        now,
    )
    .await?;
    rows::save_rework(
        db,
        &ReworkRow {
            connection_id: target.connection_id.0,
            repository: target.repository.to_string(),
            repository_key: target.repository.key().to_owned(),
            environment: target.environment.to_string(),
            deployment_id: target.id.0,
            reason: "rollback".to_owned(),
            detail: format!(
                "rolls {} back to {} (deployment {} replaced)",
                target.environment,
                short(target.sha.as_str()),
                replaced.id
            ),
            live_at: at,
        },
        now,
    )
    .await
}

/// A monitoring check of `deployment_id` said `regressed`, in the caller's transaction.
pub async fn regressed(
    db: &impl Writer,
    deployment_id: i64,
    check: &str,
    summary: Option<&str>,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    let Some(deploy) = deployments::find(db, deployment_id).await? else {
        return Ok(());
    };
    if matches!(deploy.status, DeployStatus::Failed) {
        return Ok(());
    }
    let failed_at = live_at(&deploy);
    let recovered = rows::first_live_after(
        db,
        deploy.connection_id.0,
        deploy.repository.key(),
        deploy.environment.as_str(),
        deploy.id.0,
        failed_at,
    )
    .await?;
    let summary: String = summary.unwrap_or("no summary").chars().take(200).collect();
    rows::save_intervention(
        db,
        &InterventionRow {
            connection_id: deploy.connection_id.0,
            repository: deploy.repository.to_string(),
            repository_key: deploy.repository.key().to_owned(),
            environment: deploy.environment.to_string(),
            deployment_id: deploy.id.0,
            reason: "regressed".to_owned(),
            detail: format!("the {check} monitoring check said regressed: {summary}"),
            failed_at,
            recovered_by_id: recovered.map(|(id, _)| id),
            recovered_at: recovered.map(|(_, at)| at),
        },
        now,
    )
    .await
}
