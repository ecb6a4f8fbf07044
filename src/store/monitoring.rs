//! Monitoring plans, the environments their PR is live in, and their checks.

use chrono::{DateTime, Utc};
use entity::{monitoring_check as check, monitoring_plan as plan, plan_environment as env};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, NotSet, QueryFilter, QueryOrder, QuerySelect, Set};

use super::{Conn, StoreError, StoreResult, Writer};
use crate::monitoring::plans::{Check, CheckStatus, LiveEnvironment, Plan, PlanStatus};
use crate::types::RepoName;

pub struct NewPlan<'a> {
    pub connection_id: i64,
    pub repository: &'a RepoName,
    pub pull_number: i64,
    pub environments: &'a [String],
    pub note: Option<&'a str>,
    pub status: PlanStatus,
}

pub async fn insert_plan(db: &impl Writer, new: NewPlan<'_>, now: DateTime<Utc>) -> StoreResult<Plan> {
    let environments = serde_json::to_string(new.environments).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let model = plan::ActiveModel {
        id: NotSet,
        connection_id: Set(new.connection_id),
        repository: Set(new.repository.as_str().to_owned()),
        repository_key: Set(new.repository.key().to_owned()),
        pull_number: Set(new.pull_number),
        environments: Set(environments),
        note: Set(new.note.map(str::to_owned)),
        status: Set(new.status.as_str().to_owned()),
        first_deployed_at: Set(None),
        expires_at: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    };
    into_plan(model.insert(db).await?)
}

pub async fn find_plan(db: &impl Conn, id: i64) -> StoreResult<Option<Plan>> {
    plan::Entity::find_by_id(id).one(db).await?.map(into_plan).transpose()
}

/// The plan, its row locked until the transaction ends (`FOR UPDATE` on PostgreSQL; SQLite has
/// one writer at a time already).
pub async fn lock_plan(db: &impl Writer, id: i64) -> StoreResult<Option<Plan>> {
    plan::Entity::find_by_id(id)
        .lock_exclusive()
        .one(db)
        .await?
        .map(into_plan)
        .transpose()
}

pub async fn find_plan_for_pull(
    db: &impl Conn,
    connection_id: i64,
    repository_key: &str,
    number: i64,
) -> StoreResult<Option<Plan>> {
    plan::Entity::find()
        .filter(plan::Column::ConnectionId.eq(connection_id))
        .filter(plan::Column::RepositoryKey.eq(repository_key))
        .filter(plan::Column::PullNumber.eq(number))
        .one(db)
        .await?
        .map(into_plan)
        .transpose()
}

/// The plans of a repository's pull requests `numbers`, in one query.
pub async fn plans_for_pulls(
    db: &impl Conn,
    connection_id: i64,
    repository_key: &str,
    numbers: &[i64],
) -> StoreResult<Vec<Plan>> {
    if numbers.is_empty() {
        return Ok(Vec::new());
    }
    plan::Entity::find()
        .filter(plan::Column::ConnectionId.eq(connection_id))
        .filter(plan::Column::RepositoryKey.eq(repository_key))
        .filter(plan::Column::PullNumber.is_in(numbers.iter().copied()))
        .order_by_asc(plan::Column::Id)
        .all(db)
        .await?
        .into_iter()
        .map(into_plan)
        .collect()
}

pub async fn list_plans(db: &impl Conn, connection_id: Option<i64>) -> StoreResult<Vec<Plan>> {
    let mut query = plan::Entity::find();
    if let Some(id) = connection_id {
        query = query.filter(plan::Column::ConnectionId.eq(id));
    }
    query
        .order_by_desc(plan::Column::Id)
        .all(db)
        .await?
        .into_iter()
        .map(into_plan)
        .collect()
}

/// Plans of a repository in any of `statuses`.
pub async fn plans_in(
    db: &impl Conn,
    connection_id: i64,
    repository_key: &str,
    statuses: &[PlanStatus],
) -> StoreResult<Vec<Plan>> {
    plan::Entity::find()
        .filter(plan::Column::ConnectionId.eq(connection_id))
        .filter(plan::Column::RepositoryKey.eq(repository_key))
        .filter(plan::Column::Status.is_in(statuses.iter().map(|s| s.as_str())))
        .all(db)
        .await?
        .into_iter()
        .map(into_plan)
        .collect()
}

pub async fn set_plan_status(db: &impl Writer, id: i64, status: PlanStatus, now: DateTime<Utc>) -> StoreResult<()> {
    plan::ActiveModel {
        id: Set(id),
        status: Set(status.as_str().to_owned()),
        updated_at: Set(now),
        ..Default::default()
    }
    .update(db)
    .await?;
    Ok(())
}

pub async fn activate_plan(
    db: &impl Writer,
    id: i64,
    first_deployed_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    plan::ActiveModel {
        id: Set(id),
        status: Set(PlanStatus::Active.as_str().to_owned()),
        first_deployed_at: Set(Some(first_deployed_at)),
        expires_at: Set(Some(expires_at)),
        updated_at: Set(now),
        ..Default::default()
    }
    .update(db)
    .await?;
    Ok(())
}

pub async fn environments(db: &impl Conn, plan_id: i64) -> StoreResult<Vec<LiveEnvironment>> {
    let rows = env::Entity::find()
        .filter(env::Column::PlanId.eq(plan_id))
        .order_by_asc(env::Column::Environment)
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| LiveEnvironment {
            environment: r.environment,
            deployment_id: r.deployment_id,
            deployed_at: r.deployed_at,
            removed_at: r.removed_at,
        })
        .collect())
}

/// Records that the plan's PR is live in `environment` through `deployment_id`.
pub async fn upsert_environment(
    db: &impl Writer,
    plan_id: i64,
    environment: &str,
    deployment_id: i64,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    let existing = env::Entity::find()
        .filter(env::Column::PlanId.eq(plan_id))
        .filter(env::Column::Environment.eq(environment))
        .one(db)
        .await?;
    match existing {
        Some(row) => {
            let mut model: env::ActiveModel = row.into();
            model.deployment_id = Set(deployment_id);
            model.deployed_at = Set(at);
            model.removed_at = Set(None);
            model.update(db).await?;
        }
        None => {
            env::ActiveModel {
                id: NotSet,
                plan_id: Set(plan_id),
                environment: Set(environment.to_owned()),
                deployment_id: Set(deployment_id),
                deployed_at: Set(at),
                removed_at: Set(None),
            }
            .insert(db)
            .await?;
        }
    }
    Ok(())
}

/// The plan's PR left `environment` through a deploy that went live at `live_at` without it:
/// marks the environment left unless a deploy that went live later brought the PR there.
pub async fn leave_environment(
    db: &impl Writer,
    plan_id: i64,
    environment: &str,
    live_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> StoreResult<u64> {
    let result = env::Entity::update_many()
        .col_expr(env::Column::RemovedAt, Expr::value(now))
        .filter(env::Column::PlanId.eq(plan_id))
        .filter(env::Column::Environment.eq(environment))
        .filter(env::Column::RemovedAt.is_null())
        .filter(env::Column::DeployedAt.lt(live_at))
        .exec(db)
        .await?;
    Ok(result.rows_affected)
}

/// Marks environments brought by a rolled-back deploy as left; returns the plans affected.
pub async fn remove_deployment(
    db: &impl Writer,
    deployment_id: i64,
    now: DateTime<Utc>,
) -> StoreResult<Vec<(i64, String)>> {
    let rows = env::Entity::find()
        .filter(env::Column::DeploymentId.eq(deployment_id))
        .filter(env::Column::RemovedAt.is_null())
        .all(db)
        .await?;
    env::Entity::update_many()
        .col_expr(env::Column::RemovedAt, Expr::value(now))
        .filter(env::Column::DeploymentId.eq(deployment_id))
        .filter(env::Column::RemovedAt.is_null())
        .exec(db)
        .await?;
    Ok(rows.into_iter().map(|r| (r.plan_id, r.environment)).collect())
}

pub async fn insert_check(
    db: &impl Writer,
    plan_id: i64,
    deployment_id: i64,
    offset_seconds: i64,
    due_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> StoreResult<i64> {
    let model = check::ActiveModel {
        id: NotSet,
        plan_id: Set(plan_id),
        deployment_id: Set(deployment_id),
        offset_seconds: Set(offset_seconds),
        due_at: Set(due_at),
        status: Set(CheckStatus::Pending.as_str().to_owned()),
        sent_at: Set(None),
        verdict: Set(None),
        summary: Set(None),
        created_at: Set(now),
    };
    Ok(model.insert(db).await?.id)
}

/// Cancels a plan's checks that have not been sent.
pub async fn cancel_pending_checks(db: &impl Writer, plan_id: i64) -> StoreResult<u64> {
    let result = check::Entity::update_many()
        .col_expr(check::Column::Status, Expr::value(CheckStatus::Cancelled.as_str()))
        .filter(check::Column::PlanId.eq(plan_id))
        .filter(check::Column::Status.eq(CheckStatus::Pending.as_str()))
        .exec(db)
        .await?;
    Ok(result.rows_affected)
}

/// `pending → skipped`, with the reason as its summary.
pub async fn skip_check(db: &impl Writer, id: i64, reason: &str) -> StoreResult<()> {
    check::Entity::update_many()
        .col_expr(check::Column::Status, Expr::value(CheckStatus::Skipped.as_str()))
        .col_expr(check::Column::Summary, Expr::value(Some(reason.to_owned())))
        .filter(check::Column::Id.eq(id))
        .filter(check::Column::Status.eq(CheckStatus::Pending.as_str()))
        .exec(db)
        .await?;
    Ok(())
}

pub async fn find_check(db: &impl Conn, id: i64) -> StoreResult<Option<Check>> {
    check::Entity::find_by_id(id).one(db).await?.map(into_check).transpose()
}

pub async fn checks(db: &impl Conn, plan_id: i64) -> StoreResult<Vec<Check>> {
    checks_of_plans(db, &[plan_id]).await
}

/// The checks of several plans in one query, in id order.
pub async fn checks_of_plans(db: &impl Conn, plan_ids: &[i64]) -> StoreResult<Vec<Check>> {
    if plan_ids.is_empty() {
        return Ok(Vec::new());
    }
    check::Entity::find()
        .filter(check::Column::PlanId.is_in(plan_ids.iter().copied()))
        .order_by_asc(check::Column::Id)
        .all(db)
        .await?
        .into_iter()
        .map(into_check)
        .collect()
}

/// `pending → to`; false when the check was not pending.
pub async fn finish_check(
    db: &impl Writer,
    id: i64,
    to: CheckStatus,
    sent_at: Option<DateTime<Utc>>,
) -> StoreResult<bool> {
    let mut update = check::Entity::update_many().col_expr(check::Column::Status, Expr::value(to.as_str()));
    if let Some(at) = sent_at {
        update = update.col_expr(check::Column::SentAt, Expr::value(at));
    }
    let result = update
        .filter(check::Column::Id.eq(id))
        .filter(check::Column::Status.eq(CheckStatus::Pending.as_str()))
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}

pub async fn set_verdict(db: &impl Writer, id: i64, verdict: &str, summary: Option<&str>) -> StoreResult<()> {
    check::ActiveModel {
        id: Set(id),
        verdict: Set(Some(verdict.to_owned())),
        summary: Set(summary.map(str::to_owned)),
        ..Default::default()
    }
    .update(db)
    .await?;
    Ok(())
}

fn into_plan(m: plan::Model) -> StoreResult<Plan> {
    Ok(Plan {
        status: PlanStatus::parse(&m.status)
            .ok_or_else(|| StoreError::Corrupt(format!("plan status {:?}", m.status)))?,
        environments: serde_json::from_str(&m.environments).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        id: m.id,
        connection_id: m.connection_id,
        repository: m.repository,
        repository_key: m.repository_key,
        pull_number: m.pull_number,
        note: m.note,
        first_deployed_at: m.first_deployed_at,
        expires_at: m.expires_at,
        created_at: m.created_at,
        updated_at: m.updated_at,
    })
}

fn into_check(m: check::Model) -> StoreResult<Check> {
    Ok(Check {
        status: CheckStatus::parse(&m.status)
            .ok_or_else(|| StoreError::Corrupt(format!("check status {:?}", m.status)))?,
        id: m.id,
        plan_id: m.plan_id,
        deployment_id: m.deployment_id,
        offset_seconds: m.offset_seconds,
        due_at: m.due_at,
        sent_at: m.sent_at,
        verdict: m.verdict,
        summary: m.summary,
    })
}

/// Plans whose PR a deploy brought to an environment.
pub async fn plans_brought_by(db: &impl Conn, deployment_id: i64) -> StoreResult<Vec<Plan>> {
    let plan_ids: Vec<i64> = env::Entity::find()
        .filter(env::Column::DeploymentId.eq(deployment_id))
        .all(db)
        .await?
        .into_iter()
        .map(|r| r.plan_id)
        .collect();
    if plan_ids.is_empty() {
        return Ok(Vec::new());
    }
    plan::Entity::find()
        .filter(plan::Column::Id.is_in(plan_ids))
        .order_by_asc(plan::Column::PullNumber)
        .all(db)
        .await?
        .into_iter()
        .map(into_plan)
        .collect()
}
