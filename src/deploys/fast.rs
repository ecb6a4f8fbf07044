//! GitHub `deployment` and `deployment_status` events in a few statements: the intake's hot path.
//!
//! Decide, then write: what a report does to its deploy is worked out here from the row the
//! upsert and the environment's live deploy say, and [`HotRows`] writes it on whichever engine
//! the intake runs (the SQLite writer's own connection, or a PostgreSQL transaction). A
//! `deployment` costs one statement; a live report the upsert, the history row, the live deploy's
//! read, its step down and history row, its own status and its job (seven); any other report
//! three.
//!
//! It takes the common cases, and answers [`Fast::Elsewhere`] for the rest (the caller rolls
//! back what was written): a deployment an Actions run made (one deploy per run, `actions.rs`),
//! a status GitHub sent twice under two delivery ids, a row that changed under it, anything a
//! uniqueness rule refuses. `github.rs` then applies the event as it always has, so the two
//! paths cannot disagree on a rare case: only one of them handles it.

use chrono::{DateTime, Utc};

use super::live::DeployWentLive;
use super::{duration_seconds, DeployStatus, ReportOrder};
use crate::connections::{Applied, Connection};
use crate::events::{GitHubDeployment, GitHubDeploymentStatus, ParsedDelivery, WebhookEvent};
use crate::jobs::BackgroundJob;
use crate::store::hot::{DeployHead, HotRows, JobRow, LiveRow, ReportChange};
use crate::store::{StoreError, StoreResult};
use crate::types::InstallationId;

/// What the hot path did.
#[derive(Debug)]
pub enum Fast {
    /// Applied; `enqueued_job` when a job now waits for the worker.
    Applied { applied: Applied, enqueued_job: bool },
    /// Not a case for the hot path: undo its writes and apply the event through `github.rs`.
    Elsewhere,
}

/// The GitHub deployment a `deployment` or `deployment_status` event is about.
pub fn reported_deployment(event: &WebhookEvent) -> Option<&GitHubDeployment> {
    match event {
        WebhookEvent::Deployment(deployment) => Some(deployment),
        WebhookEvent::DeploymentStatus(status) => Some(&status.deployment),
        _ => None,
    }
}

/// The installation and deployment of a delivery the hot path may take: a `deployment` or
/// `deployment_status` from an App installation, about a deployment no Actions run made.
pub fn candidate(parsed: &ParsedDelivery) -> Option<(InstallationId, &GitHubDeployment)> {
    let deployment = reported_deployment(&parsed.event)?;
    if deployment.workflow_run_id.is_some() {
        return None;
    }
    Some((parsed.installation_id?, deployment))
}

/// Applies a [`candidate`] event for `connection` (which takes events and lists the repository).
pub async fn apply(
    rows: &mut impl HotRows,
    connection: &Connection,
    event: &WebhookEvent,
    now: DateTime<Utc>,
) -> StoreResult<Fast> {
    let Some(deployment) = reported_deployment(event) else {
        return Ok(Fast::Elsewhere);
    };
    if let Some(reason) = connection
        .settings
        .skip_reason(deployment.environment.as_str(), deployment.transient_environment)
    {
        return Ok(Fast::Applied {
            applied: Applied::Skipped {
                connection_id: connection.id,
                reason,
            },
            enqueued_job: false,
        });
    }
    rows.lock_environment(
        connection.id,
        deployment.repository.name.key(),
        deployment.environment.as_str(),
    )
    .await?;
    let head = rows
        .upsert_github_deploy(&super::github::new_deploy(connection, deployment, now), now)
        .await?;
    let changed = |enqueued_job| Fast::Applied {
        applied: Applied::Changed {
            connection_id: connection.id,
        },
        enqueued_job,
    };
    let WebhookEvent::DeploymentStatus(status) = event else {
        return Ok(changed(false));
    };
    if head.github_run_id.is_some() {
        return Ok(Fast::Elsewhere);
    }
    match apply_status(rows, connection, &head, status, now).await {
        Ok(Some(enqueued_job)) => Ok(changed(enqueued_job)),
        Ok(None) | Err(StoreError::Conflict(_)) => Ok(Fast::Elsewhere),
        Err(other) => Err(other),
    }
}

/// Records the status and applies it as `super::apply_report` would: whether it enqueued a job,
/// or `None` when the event is not the hot path's (the status is recorded already, or the
/// deploy changed under it).
async fn apply_status(
    rows: &mut impl HotRows,
    connection: &Connection,
    head: &DeployHead,
    event: &GitHubDeploymentStatus,
    now: DateTime<Utc>,
) -> StoreResult<Option<bool>> {
    let entry = super::github::status_entry(event, now);
    let (status, at) = (entry.status, entry.occurred_at);
    if !rows.insert_status(head.id, &entry, now).await? {
        return Ok(None);
    }
    // `inactive` after shiplog superseded the deploy and named its successor: history only.
    let stepped_down = matches!(head.status, DeployStatus::Superseded | DeployStatus::RolledBack);
    let Some(status) = status.filter(|s| !(*s == DeployStatus::Superseded && stepped_down)) else {
        return Ok(Some(false));
    };
    let order = ReportOrder { at, id: event.id };
    let current = ReportOrder {
        at: head.status_at,
        id: head.status_github_id,
    };
    // An older report, or live again: history only.
    if order <= current || (status == DeployStatus::Live && head.status == DeployStatus::Live) {
        return Ok(Some(false));
    }
    let completed = status.completes().then(|| (at, duration_seconds(head.deploy_time, at)));
    let mut change = ReportChange {
        status,
        status_at: at,
        status_github_id: event.id,
        completed,
        superseded_by_id: None,
        log_url: event.log_url.as_deref(),
        environment_url: event.environment_url.as_deref(),
    };
    if status != DeployStatus::Live {
        rows.set_reported_status(head.id, &change, now).await?;
        return Ok(Some(false));
    }

    // Going live (`super::go_live`): against the environment's live deploy, ordered by when
    // each went live, then by id.
    let ours = ReportOrder { at, id: head.id };
    let others = rows.live_in(connection.id, head).await?;
    let order = |live: &LiveRow| ReportOrder {
        at: live.live_at,
        id: live.id,
    };
    if let Some(newer) = others.iter().filter(|o| order(o) > ours).max_by_key(|o| order(o)) {
        // A deploy that went live later is live already: this one arrives superseded.
        change.status = DeployStatus::Superseded;
        change.status_at = newer.live_at;
        change.status_github_id = 0;
        change.superseded_by_id = Some(newer.id);
        if rows.set_reported_status(head.id, &change, now).await? {
            let entry = super::stepped_down_entry(
                newer.id,
                short(&newer.sha),
                newer.live_at,
                "was already live when this report arrived",
            );
            rows.insert_status(head.id, &entry, now).await?;
        }
        return Ok(Some(false));
    }
    let mut superseded = Vec::with_capacity(others.len());
    for previous in &others {
        if rows.supersede(previous.id, head.id, at, now).await? {
            let entry = super::stepped_down_entry(head.id, short(&head.sha), at, "went live");
            rows.insert_status(previous.id, &entry, now).await?;
            superseded.push(previous.id);
        }
    }
    if !rows.set_reported_status(head.id, &change, now).await? {
        return Ok(None);
    }
    let job = DeployWentLive {
        deployment_id: head.id,
        connection_id: connection.id,
        repository: head.repository.clone(),
        environment: head.environment.clone(),
        sha: head.sha.clone(),
        live_at: at,
        previous_live_ids: superseded,
    };
    let payload = serde_json::to_string(&job).map_err(|e| {
        StoreError::Db(sea_orm::DbErr::Json(format!(
            "{} payload: {e}",
            DeployWentLive::JOB_NAME
        )))
    })?;
    let dedupe_key = super::went_live_dedupe_key(head.id, at);
    rows.enqueue_job(
        &JobRow {
            kind: DeployWentLive::JOB_NAME,
            payload: &payload,
            dedupe_key: &dedupe_key,
            run_at: now,
        },
        now,
    )
    .await?;
    Ok(Some(true))
}

fn short(sha: &str) -> &str {
    sha.get(..7).unwrap_or(sha)
}

#[cfg(test)]
mod tests {
    //! The statements each case writes, against a recording [`HotRows`] whose answers the case
    //! sets: what "a few statements per delivery" means, case by case.

    use chrono::TimeZone;

    use super::*;
    use crate::connections::ConnectionSettings;
    use crate::deploys::{NewDeploy, StatusEntry};
    use crate::store::hot::DeliveryRow;
    use crate::types::Account;

    #[derive(Default)]
    struct Recorded {
        calls: Vec<String>,
        head_status: Option<DeployStatus>,
        head_status_at: Option<DateTime<Utc>>,
        head_run: Option<i64>,
        status_is_new: bool,
        live: Vec<LiveRow>,
        set_changes: Vec<(i64, DeployStatus, Option<i64>)>,
    }

    impl HotRows for Recorded {
        async fn lock_environment(&mut self, _: i64, _: &str, _: &str) -> StoreResult<()> {
            self.calls.push("lock".into());
            Ok(())
        }
        async fn upsert_github_deploy(&mut self, new: &NewDeploy, _: DateTime<Utc>) -> StoreResult<DeployHead> {
            self.calls.push("upsert".into());
            Ok(DeployHead {
                id: 10,
                repository: new.repository.to_string(),
                repository_key: new.repository.key().to_owned(),
                environment: new.environment.to_string(),
                sha: new.sha.to_string(),
                status: self.head_status.unwrap_or(DeployStatus::Initiated),
                status_at: self.head_status_at.unwrap_or(new.deploy_time),
                status_github_id: 0,
                deploy_time: new.deploy_time,
                github_run_id: self.head_run,
                backfilled: false,
            })
        }
        async fn insert_status(&mut self, id: i64, entry: &StatusEntry, _: DateTime<Utc>) -> StoreResult<bool> {
            self.calls.push(format!("status {id} {}", entry.state));
            Ok(self.status_is_new || entry.github_status_id.is_none())
        }
        async fn live_in(&mut self, _: i64, _: &DeployHead) -> StoreResult<Vec<LiveRow>> {
            self.calls.push("live_in".into());
            Ok(self.live.clone())
        }
        async fn supersede(&mut self, id: i64, by: i64, _: DateTime<Utc>, _: DateTime<Utc>) -> StoreResult<bool> {
            self.calls.push(format!("supersede {id} by {by}"));
            Ok(true)
        }
        async fn set_reported_status(&mut self, id: i64, c: &ReportChange<'_>, _: DateTime<Utc>) -> StoreResult<bool> {
            self.calls.push(format!("set {id} {}", c.status.as_str()));
            self.set_changes.push((id, c.status, c.superseded_by_id));
            Ok(true)
        }
        async fn enqueue_job(&mut self, job: &JobRow<'_>, _: DateTime<Utc>) -> StoreResult<bool> {
            self.calls.push(format!("job {}", job.kind));
            Ok(true)
        }
        async fn insert_delivery(&mut self, _: &DeliveryRow<'_>) -> StoreResult<bool> {
            self.calls.push("delivery".into());
            Ok(true)
        }
    }

    fn connection(settings: ConnectionSettings) -> Connection {
        let at = Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap();
        Connection {
            id: 1,
            installation_id: InstallationId(7),
            account: Account {
                login: "octo-org".into(),
                kind: "Organization".into(),
                id: Some(1),
            },
            repository_selection: "all".into(),
            settings,
            suspended_at: None,
            deleted_at: None,
            created_at: at,
            updated_at: at,
            agent_secret: None,
        }
    }

    /// The fixture `deployment_status` (success), as a deployment no run made.
    fn status_event() -> WebhookEvent {
        let body = include_bytes!("../../tests/fixtures/github/deployment_status.created.json");
        let mut parsed = crate::github::events::parse("deployment_status", body).unwrap().event;
        if let WebhookEvent::DeploymentStatus(status) = &mut parsed {
            status.deployment.workflow_run_id = None;
        }
        parsed
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 3, 0, 0, 0).unwrap()
    }

    fn run(rows: &mut Recorded, event: &WebhookEvent, settings: ConnectionSettings) -> Fast {
        futures_util::FutureExt::now_or_never(apply(rows, &connection(settings), event, now()))
            .expect("the hot path never waits")
            .unwrap()
    }

    fn enqueued(fast: &Fast) -> Option<bool> {
        match fast {
            Fast::Applied { enqueued_job, .. } => Some(*enqueued_job),
            Fast::Elsewhere => None,
        }
    }

    #[test]
    fn a_deployment_is_one_upsert() {
        let WebhookEvent::DeploymentStatus(status) = status_event() else {
            unreachable!()
        };
        let event = WebhookEvent::Deployment(status.deployment);
        let mut rows = Recorded::default();
        let fast = run(&mut rows, &event, ConnectionSettings::default());
        assert_eq!(enqueued(&fast), Some(false));
        assert_eq!(rows.calls, ["lock", "upsert"]);
    }

    #[test]
    fn going_live_steps_the_live_deploy_down_and_enqueues_its_job() {
        let mut rows = Recorded {
            status_is_new: true,
            live: vec![LiveRow {
                id: 3,
                sha: "a".repeat(40),
                live_at: Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap(),
            }],
            ..Recorded::default()
        };
        let fast = run(&mut rows, &status_event(), ConnectionSettings::default());
        assert_eq!(enqueued(&fast), Some(true));
        assert_eq!(
            rows.calls,
            [
                "lock",
                "upsert",
                "status 10 success",
                "live_in",
                "supersede 3 by 10",
                "status 3 superseded",
                "set 10 live",
                "job deploy.went_live"
            ]
        );
    }

    #[test]
    fn a_deploy_that_went_live_before_the_live_one_arrives_superseded_by_it() {
        let mut rows = Recorded {
            status_is_new: true,
            live: vec![LiveRow {
                id: 3,
                sha: "a".repeat(40),
                live_at: Utc.with_ymd_and_hms(2026, 11, 2, 23, 0, 0).unwrap(),
            }],
            ..Recorded::default()
        };
        let fast = run(&mut rows, &status_event(), ConnectionSettings::default());
        assert_eq!(enqueued(&fast), Some(false));
        assert_eq!(
            rows.calls,
            [
                "lock",
                "upsert",
                "status 10 success",
                "live_in",
                "set 10 superseded",
                "status 10 superseded"
            ]
        );
        assert_eq!(rows.set_changes, [(10, DeployStatus::Superseded, Some(3))]);
    }

    #[test]
    fn an_older_report_is_history_only() {
        let mut rows = Recorded {
            status_is_new: true,
            head_status: Some(DeployStatus::Failed),
            head_status_at: Some(Utc.with_ymd_and_hms(2026, 11, 2, 23, 0, 0).unwrap()),
            ..Recorded::default()
        };
        let fast = run(&mut rows, &status_event(), ConnectionSettings::default());
        assert_eq!(enqueued(&fast), Some(false));
        assert_eq!(rows.calls, ["lock", "upsert", "status 10 success"]);
    }

    #[test]
    fn a_status_recorded_already_and_a_run_deploy_go_to_the_general_path() {
        let mut recorded = Recorded::default();
        assert!(matches!(
            run(&mut recorded, &status_event(), ConnectionSettings::default()),
            Fast::Elsewhere
        ));
        let mut run_deploy = Recorded {
            status_is_new: true,
            head_run: Some(99),
            ..Recorded::default()
        };
        assert!(matches!(
            run(&mut run_deploy, &status_event(), ConnectionSettings::default()),
            Fast::Elsewhere
        ));
        assert_eq!(run_deploy.calls, ["lock", "upsert"], "nothing of the status is written");
    }

    #[test]
    fn a_connection_that_turned_auto_creation_off_skips_without_a_statement() {
        let settings = ConnectionSettings {
            auto_create_deployments: false,
            ..ConnectionSettings::default()
        };
        let mut rows = Recorded::default();
        let fast = run(&mut rows, &status_event(), settings);
        assert!(matches!(
            fast,
            Fast::Applied {
                applied: Applied::Skipped { .. },
                ..
            }
        ));
        assert!(rows.calls.is_empty());
    }
}
