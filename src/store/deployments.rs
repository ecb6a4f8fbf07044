//! Deploy rows and their status history.

use chrono::{DateTime, Utc};
use entity::{deployment, deployment_status};
use sea_orm::sea_query::{Expr, SimpleExpr};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, DatabaseBackend, EntityTrait, NotSet, QueryFilter, QueryOrder,
    QuerySelect, Set, Statement,
};
use sha2::{Digest, Sha256};

use super::{Conn, StoreError, StoreResult, Writer};
use crate::deploys::{Deploy, DeployFilter, DeploySource, DeployStatus, NewDeploy, StatusEntry};
use crate::limits::Name;
use crate::types::{CommitSha, ConnectionId, DeployId, Environment, RepoName};

pub async fn find(db: &impl Conn, id: i64) -> StoreResult<Option<Deploy>> {
    deployment::Entity::find_by_id(id)
        .one(db)
        .await?
        .map(into_deploy)
        .transpose()
}

/// The deploys with these ids (those that exist), in one query.
pub async fn find_many(db: &impl Conn, ids: &[i64]) -> StoreResult<Vec<Deploy>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    deployment::Entity::find()
        .filter(deployment::Column::Id.is_in(ids.iter().copied()))
        .all(db)
        .await?
        .into_iter()
        .map(into_deploy)
        .collect()
}

pub async fn find_by_github_id(db: &impl Conn, connection_id: i64, github_id: i64) -> StoreResult<Option<Deploy>> {
    deployment::Entity::find()
        .filter(deployment::Column::ConnectionId.eq(connection_id))
        .filter(deployment::Column::GithubDeploymentId.eq(github_id))
        .one(db)
        .await?
        .map(into_deploy)
        .transpose()
}

/// The deploy a GitHub Actions run made in `environment` of a connection's repository.
pub async fn find_by_run(
    db: &impl Conn,
    connection_id: i64,
    repository_key: &str,
    run_id: i64,
    environment: &str,
) -> StoreResult<Option<Deploy>> {
    deployment::Entity::find()
        .filter(deployment::Column::ConnectionId.eq(connection_id))
        .filter(deployment::Column::RepositoryKey.eq(repository_key))
        .filter(deployment::Column::GithubRunId.eq(run_id))
        .filter(deployment::Column::Environment.eq(environment))
        .order_by_asc(deployment::Column::Id)
        .one(db)
        .await?
        .map(into_deploy)
        .transpose()
}

/// A deploy an Actions run made of `sha` in `environment` that has no GitHub deployment yet and
/// was running at `at` (started by then, not completed a minute before): the deploy a GitHub
/// deployment made at `at` by the same run belongs to, when GitHub's history does not say the run.
pub async fn find_run_deploy_around(
    db: &impl Conn,
    connection_id: i64,
    repository_key: &str,
    environment: &str,
    sha: &str,
    at: DateTime<Utc>,
) -> StoreResult<Option<Deploy>> {
    let margin = chrono::Duration::minutes(1);
    deployment::Entity::find()
        .filter(deployment::Column::ConnectionId.eq(connection_id))
        .filter(deployment::Column::RepositoryKey.eq(repository_key))
        .filter(deployment::Column::Environment.eq(environment))
        .filter(deployment::Column::Sha.eq(sha))
        .filter(deployment::Column::GithubRunId.is_not_null())
        .filter(deployment::Column::GithubDeploymentId.is_null())
        .filter(deployment::Column::DeployTime.lte(at + margin))
        .filter(
            Condition::any()
                .add(deployment::Column::CompletedAt.is_null())
                .add(deployment::Column::CompletedAt.gte(at - margin)),
        )
        .order_by_desc(deployment::Column::DeployTime)
        .one(db)
        .await?
        .map(into_deploy)
        .transpose()
}

/// Links a deploy to the Actions run that made it (the first link stays) and records the run's
/// latest attempt seen.
pub async fn attach_run(
    db: &impl Writer,
    id: DeployId,
    run_id: i64,
    attempt: i64,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    deployment::Entity::update_many()
        .col_expr(deployment::Column::GithubRunId, Expr::value(run_id))
        .col_expr(deployment::Column::UpdatedAt, Expr::value(now))
        .filter(deployment::Column::Id.eq(id.0))
        .filter(deployment::Column::GithubRunId.is_null())
        .exec(db)
        .await?;
    deployment::Entity::update_many()
        .col_expr(deployment::Column::RunAttempt, Expr::value(attempt))
        .filter(deployment::Column::Id.eq(id.0))
        .filter(
            Condition::any()
                .add(deployment::Column::RunAttempt.is_null())
                .add(deployment::Column::RunAttempt.lt(attempt)),
        )
        .exec(db)
        .await?;
    Ok(())
}

/// Forgets when a deploy completed: a re-run of a failed run is rolling it out again.
pub async fn clear_completion(db: &impl Writer, id: DeployId, now: DateTime<Utc>) -> StoreResult<()> {
    deployment::Entity::update_many()
        .col_expr(
            deployment::Column::CompletedAt,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(deployment::Column::DurationSeconds, Expr::value(Option::<i64>::None))
        .col_expr(deployment::Column::UpdatedAt, Expr::value(now))
        .filter(deployment::Column::Id.eq(id.0))
        .exec(db)
        .await?;
    Ok(())
}

/// Sets where a deploy can be seen, unless it is known already (the first URL stays).
pub async fn fill_environment_url(db: &impl Writer, id: DeployId, url: &str, now: DateTime<Utc>) -> StoreResult<()> {
    deployment::Entity::update_many()
        .col_expr(deployment::Column::EnvironmentUrl, Expr::value(Some(url.to_owned())))
        .col_expr(deployment::Column::UpdatedAt, Expr::value(now))
        .filter(deployment::Column::Id.eq(id.0))
        .filter(deployment::Column::EnvironmentUrl.is_null())
        .exec(db)
        .await?;
    Ok(())
}

/// A deploy a backfill imported is now being reported live (a webhook, the API): it is news from
/// here on, so going live follows up like any deploy. Returns the deploy as it is now.
pub async fn announce(db: &impl Writer, mut deploy: Deploy, now: DateTime<Utc>) -> StoreResult<Deploy> {
    if deploy.backfilled {
        deployment::Entity::update_many()
            .col_expr(deployment::Column::Backfilled, Expr::value(false))
            .col_expr(deployment::Column::UpdatedAt, Expr::value(now))
            .filter(deployment::Column::Id.eq(deploy.id.0))
            .exec(db)
            .await?;
        deploy.backfilled = false;
    }
    Ok(deploy)
}

/// Links a deploy a run made to the GitHub deployment the same run made (the first link stays).
pub async fn attach_github_deployment(
    db: &impl Writer,
    id: DeployId,
    github_deployment_id: i64,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    deployment::Entity::update_many()
        .col_expr(
            deployment::Column::GithubDeploymentId,
            Expr::value(github_deployment_id),
        )
        .col_expr(deployment::Column::UpdatedAt, Expr::value(now))
        .filter(deployment::Column::Id.eq(id.0))
        .filter(deployment::Column::GithubDeploymentId.is_null())
        .exec(db)
        .await?;
    Ok(())
}

pub async fn find_by_external_id(
    db: &impl Conn,
    connection_id: i64,
    repository_key: &str,
    external_id: &str,
) -> StoreResult<Option<Deploy>> {
    deployment::Entity::find()
        .filter(deployment::Column::ConnectionId.eq(connection_id))
        .filter(deployment::Column::RepositoryKey.eq(repository_key))
        .filter(deployment::Column::ExternalId.eq(external_id))
        .one(db)
        .await?
        .map(into_deploy)
        .transpose()
}

pub async fn insert(db: &impl Writer, new: &NewDeploy, now: DateTime<Utc>) -> StoreResult<Deploy> {
    insert_initiated_at(db, new, new.deploy_time, now).await
}

/// Like [`insert`], with the `initiated` status taking effect at `status_at` instead of the
/// deploy time: a report is applied only when it is later than that.
pub async fn insert_initiated_at(
    db: &impl Writer,
    new: &NewDeploy,
    status_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> StoreResult<Deploy> {
    let model = deployment::ActiveModel {
        id: NotSet,
        connection_id: Set(new.connection_id.0),
        repository: Set(new.repository.as_str().to_owned()),
        repository_key: Set(new.repository.key().to_owned()),
        environment: Set(new.environment.as_str().to_owned()),
        sha: Set(new.sha.as_str().to_owned()),
        git_ref: Set(new.git_ref.clone()),
        source: Set(new.source.as_str().to_owned()),
        github_deployment_id: Set(new.github_deployment_id),
        external_id: Set(new.external_id.clone()),
        version: Set(new.version.clone()),
        creator: Set(new.creator.clone()),
        description: Set(new.description.clone()),
        log_url: Set(new.log_url.clone()),
        environment_url: Set(new.environment_url.clone()),
        transient_environment: Set(new.transient_environment),
        production_environment: Set(new.production_environment),
        status: Set(DeployStatus::Initiated.as_str().to_owned()),
        status_at: Set(status_at),
        status_github_id: Set(0),
        deploy_time: Set(new.deploy_time),
        completed_at: Set(None),
        duration_seconds: Set(None),
        superseded_by_id: Set(None),
        rollback_target_id: Set(None),
        github_run_id: Set(new.github_run_id),
        run_attempt: Set(new.run_attempt),
        backfilled: Set(new.backfilled),
        recorded_at: Set(now),
        updated_at: Set(now),
    };
    into_deploy(model.insert(db).await?)
}

/// Refreshes what a later copy of the same GitHub deployment says about it (never its status).
pub async fn refresh_description(
    db: &impl Writer,
    id: DeployId,
    new: &NewDeploy,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    let model = deployment::ActiveModel {
        id: Set(id.0),
        git_ref: Set(new.git_ref.clone()),
        creator: Set(new.creator.clone()),
        description: Set(new.description.clone()),
        transient_environment: Set(new.transient_environment),
        production_environment: Set(new.production_environment),
        updated_at: Set(now),
        ..Default::default()
    };
    model.update(db).await?;
    Ok(())
}

/// A change of a deploy's current status.
#[derive(Debug, Clone)]
pub struct StatusChange {
    pub status: DeployStatus,
    pub status_at: DateTime<Utc>,
    pub status_github_id: i64,
    /// `Some` to set `completed_at` and `duration_seconds`.
    pub completed: Option<(DateTime<Utc>, i64)>,
    pub superseded_by_id: Option<i64>,
    pub log_url: Option<String>,
    pub environment_url: Option<String>,
}

/// Which row state a status change may apply to; the update is conditional on it, so a writer
/// holding a stale copy of the row changes nothing.
#[derive(Clone, Copy, Debug)]
pub enum Guard {
    /// The row's current report is older than `(at, id)`: an older report never wins.
    ReportOlderThan(DateTime<Utc>, i64),
    /// The row still has this status (superseding the live deploy, marking a rollback).
    StatusIs(DeployStatus),
}

/// Applies `change` if the row still matches `guard`; `false` when it did not (nothing changed).
pub async fn set_status(
    db: &impl Writer,
    id: DeployId,
    change: &StatusChange,
    guard: Guard,
    now: DateTime<Utc>,
) -> StoreResult<bool> {
    let mut update = deployment::Entity::update_many()
        .col_expr(deployment::Column::Status, Expr::value(change.status.as_str()))
        .col_expr(deployment::Column::StatusAt, Expr::value(change.status_at))
        .col_expr(deployment::Column::StatusGithubId, Expr::value(change.status_github_id))
        .col_expr(deployment::Column::SupersededById, Expr::value(change.superseded_by_id))
        .col_expr(deployment::Column::UpdatedAt, Expr::value(now));
    if let Some((completed_at, duration)) = change.completed {
        update = update
            .col_expr(deployment::Column::CompletedAt, Expr::value(Some(completed_at)))
            .col_expr(deployment::Column::DurationSeconds, Expr::value(Some(duration)));
    }
    if let Some(url) = &change.log_url {
        update = update.col_expr(deployment::Column::LogUrl, Expr::value(Some(url.clone())));
    }
    if let Some(url) = &change.environment_url {
        update = update.col_expr(deployment::Column::EnvironmentUrl, Expr::value(Some(url.clone())));
    }
    let condition = match guard {
        Guard::ReportOlderThan(at, report_id) => Condition::any().add(deployment::Column::StatusAt.lt(at)).add(
            Condition::all()
                .add(deployment::Column::StatusAt.eq(at))
                .add(deployment::Column::StatusGithubId.lt(report_id)),
        ),
        Guard::StatusIs(status) => Condition::all().add(deployment::Column::Status.eq(status.as_str())),
    };
    let result = update
        .filter(deployment::Column::Id.eq(id.0))
        .filter(condition)
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}

/// Serialises every status change of one repository's environment until the transaction ends,
/// so deciding which deploy is live reads rows no other writer is changing. On PostgreSQL a
/// transaction-scoped advisory lock keyed by the environment; SQLite has one writer at a time
/// already. Most transactions take one such lock. Two take several: a run that rules send to
/// several environments (in rule order) and a backfill's batch (in time order); two of those
/// can wait on each other, and PostgreSQL then ends one as a deadlock, which is retried (the
/// intake retries contention, a backfill step is retried by its job).
pub async fn lock_environment(
    db: &impl Writer,
    connection_id: i64,
    repository_key: &str,
    environment: &str,
) -> StoreResult<()> {
    if db.get_database_backend() != DatabaseBackend::Postgres {
        return Ok(());
    }
    let digest = Sha256::digest(format!(
        "shiplog environment\0{connection_id}\0{repository_key}\0{environment}"
    ));
    let mut key = [0u8; 8];
    key.copy_from_slice(&digest[..8]);
    db.execute(Statement::from_sql_and_values(
        DatabaseBackend::Postgres,
        "SELECT pg_advisory_xact_lock($1)",
        [i64::from_be_bytes(key).into()],
    ))
    .await?;
    Ok(())
}

/// The repository's most recent other deploy that went live before `deploy` did.
pub async fn previous_live_in_repository(db: &impl Conn, deploy: &Deploy) -> StoreResult<Option<Deploy>> {
    let live_at = deploy.completed_at.unwrap_or(deploy.status_at);
    deployment::Entity::find()
        .filter(deployment::Column::ConnectionId.eq(deploy.connection_id.0))
        .filter(deployment::Column::RepositoryKey.eq(deploy.repository.key()))
        .filter(deployment::Column::Id.ne(deploy.id.0))
        .filter(deployment::Column::Status.is_in([
            DeployStatus::Live.as_str(),
            DeployStatus::Superseded.as_str(),
            DeployStatus::RolledBack.as_str(),
        ]))
        .filter(deployment::Column::CompletedAt.lte(live_at))
        .order_by_desc(deployment::Column::CompletedAt)
        .order_by_desc(deployment::Column::Id)
        .one(db)
        .await?
        .map(into_deploy)
        .transpose()
}

/// Marks a superseded deploy `rolled_back` by `target`; `false` if it is no longer superseded.
pub async fn set_rolled_back(
    db: &impl Writer,
    id: DeployId,
    target: DeployId,
    at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> StoreResult<bool> {
    let result = deployment::Entity::update_many()
        .col_expr(
            deployment::Column::Status,
            Expr::value(DeployStatus::RolledBack.as_str()),
        )
        .col_expr(deployment::Column::StatusAt, Expr::value(at))
        .col_expr(deployment::Column::StatusGithubId, Expr::value(0i64))
        .col_expr(deployment::Column::RollbackTargetId, Expr::value(Some(target.0)))
        .col_expr(deployment::Column::UpdatedAt, Expr::value(now))
        .filter(deployment::Column::Id.eq(id.0))
        .filter(deployment::Column::Status.eq(DeployStatus::Superseded.as_str()))
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}

/// Live deploys of a repository's environment in a connection, other than `except`.
pub async fn live_in(
    db: &impl Conn,
    connection_id: i64,
    repository_key: &str,
    environment: &str,
    except: i64,
) -> StoreResult<Vec<Deploy>> {
    deployment::Entity::find()
        .filter(deployment::Column::ConnectionId.eq(connection_id))
        .filter(deployment::Column::RepositoryKey.eq(repository_key))
        .filter(deployment::Column::Environment.eq(environment))
        .filter(deployment::Column::Status.eq(DeployStatus::Live.as_str()))
        .filter(deployment::Column::Id.ne(except))
        .all(db)
        .await?
        .into_iter()
        .map(into_deploy)
        .collect()
}

/// Newest first (deploy time, then id), after the cursor position if one is given.
pub async fn list(db: &impl Conn, filter: &DeployFilter, limit: u64) -> StoreResult<Vec<Deploy>> {
    let mut query = deployment::Entity::find();
    if let Some(connection_id) = filter.connection_id {
        query = query.filter(deployment::Column::ConnectionId.eq(connection_id));
    }
    if let Some(repository) = &filter.repository {
        query = query.filter(deployment::Column::RepositoryKey.eq(repository.key()));
    }
    if let Some(environment) = &filter.environment {
        query = query.filter(deployment::Column::Environment.eq(environment.as_str()));
    }
    if let Some(status) = filter.status {
        query = query.filter(deployment::Column::Status.eq(status.as_str()));
    }
    if let Some(prefix) = &filter.sha_prefix {
        // Validated hex, so no LIKE metacharacters can appear.
        query = query.filter(deployment::Column::Sha.starts_with(prefix.as_str()));
    }
    if let Some((time, id)) = filter.before {
        let at_time: SimpleExpr = Expr::col(deployment::Column::DeployTime).eq(time);
        query = query.filter(
            Condition::any()
                .add(deployment::Column::DeployTime.lt(time))
                .add(Condition::all().add(at_time).add(deployment::Column::Id.lt(id))),
        );
    }
    query
        .order_by_desc(deployment::Column::DeployTime)
        .order_by_desc(deployment::Column::Id)
        .limit(limit)
        .all(db)
        .await?
        .into_iter()
        .map(into_deploy)
        .collect()
}

/// Whether a GitHub status with this id is recorded already.
pub async fn has_github_status(db: &impl Conn, github_status_id: i64) -> StoreResult<bool> {
    let found = deployment_status::Entity::find()
        .select_only()
        .column(deployment_status::Column::Id)
        .filter(deployment_status::Column::GithubStatusId.eq(github_status_id))
        .into_tuple::<i64>()
        .one(db)
        .await?;
    Ok(found.is_some())
}

pub async fn insert_status(
    db: &impl Writer,
    deployment_id: DeployId,
    entry: &StatusEntry,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    deployment_status::ActiveModel {
        id: NotSet,
        deployment_id: Set(deployment_id.0),
        github_status_id: Set(entry.github_status_id),
        state: Set(entry.state.clone()),
        status: Set(entry.status.map(|s| s.as_str().to_owned())),
        description: Set(entry.description.clone()),
        log_url: Set(entry.log_url.clone()),
        environment_url: Set(entry.environment_url.clone()),
        creator: Set(entry.creator.clone()),
        occurred_at: Set(entry.occurred_at),
        recorded_at: Set(now),
    }
    .insert(db)
    .await?;
    Ok(())
}

/// A deploy's status history, oldest first (by the source's timestamps).
pub async fn statuses(db: &impl Conn, deployment_id: i64) -> StoreResult<Vec<StatusEntry>> {
    let rows = deployment_status::Entity::find()
        .filter(deployment_status::Column::DeploymentId.eq(deployment_id))
        .order_by_asc(deployment_status::Column::OccurredAt)
        .order_by_asc(deployment_status::Column::Id)
        .all(db)
        .await?;
    rows.into_iter()
        .map(|row| {
            let status = row.status.as_deref().map(parse_status).transpose()?;
            Ok(StatusEntry {
                github_status_id: row.github_status_id,
                state: row.state,
                status,
                description: row.description,
                log_url: row.log_url,
                environment_url: row.environment_url,
                creator: row.creator,
                occurred_at: row.occurred_at,
            })
        })
        .collect()
}

fn parse_status(raw: &str) -> StoreResult<DeployStatus> {
    DeployStatus::parse(raw).ok_or_else(|| StoreError::Corrupt(format!("unknown deploy status {raw:?}")))
}

/// The one place a deploy row's strings become the validated values the rest of the code holds.
fn into_deploy(row: deployment::Model) -> StoreResult<Deploy> {
    let corrupt = |what: &str, raw: &str, why: String| {
        StoreError::Corrupt(format!("deployment {}: {what} {raw:?} {why}", row.id))
    };
    Ok(Deploy {
        status: parse_status(&row.status)?,
        id: DeployId(row.id),
        connection_id: ConnectionId(row.connection_id),
        repository: RepoName::parse(&row.repository).map_err(|m| corrupt("repository", &row.repository, m))?,
        environment: Name::parse(&row.environment)
            .map(Environment::from)
            .map_err(|m| corrupt("environment", &row.environment, m))?,
        sha: CommitSha::parse(&row.sha).map_err(|m| corrupt("sha", &row.sha, m))?,
        git_ref: row.git_ref,
        source: DeploySource::parse(&row.source)
            .ok_or_else(|| corrupt("source", &row.source, "is not github, api or actions".to_owned()))?,
        github_deployment_id: row.github_deployment_id,
        external_id: row.external_id,
        version: row.version,
        creator: row.creator,
        description: row.description,
        log_url: row.log_url,
        environment_url: row.environment_url,
        transient_environment: row.transient_environment,
        production_environment: row.production_environment,
        status_at: row.status_at,
        status_github_id: row.status_github_id,
        deploy_time: row.deploy_time,
        completed_at: row.completed_at,
        duration_seconds: row.duration_seconds,
        superseded_by_id: row.superseded_by_id,
        rollback_target_id: row.rollback_target_id,
        github_run_id: row.github_run_id,
        run_attempt: row.run_attempt,
        backfilled: row.backfilled,
        recorded_at: row.recorded_at,
        updated_at: row.updated_at,
    })
}

/// Whether another deploy of `deploy`'s SHA went live in its environment before it did (so going
/// live again is a rollback to it).
pub async fn sha_was_live_before(db: &impl Conn, deploy: &Deploy) -> StoreResult<bool> {
    let live_at = deploy.completed_at.unwrap_or(deploy.status_at);
    let earlier = deployment::Entity::find()
        .filter(deployment::Column::ConnectionId.eq(deploy.connection_id.0))
        .filter(deployment::Column::RepositoryKey.eq(deploy.repository.key()))
        .filter(deployment::Column::Environment.eq(deploy.environment.as_str()))
        .filter(deployment::Column::Sha.eq(deploy.sha.as_str()))
        .filter(deployment::Column::Id.ne(deploy.id.0))
        .filter(deployment::Column::Status.is_in([
            DeployStatus::Live.as_str(),
            DeployStatus::Superseded.as_str(),
            DeployStatus::RolledBack.as_str(),
        ]))
        .filter(deployment::Column::CompletedAt.lt(live_at))
        .one(db)
        .await?;
    Ok(earlier.is_some())
}
