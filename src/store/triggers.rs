//! Trigger rows and their attempt log. State changes are conditional updates, so a trigger
//! moves `watching → scheduled → fired` once even with several workers.

use chrono::{DateTime, Utc};
use entity::{trigger, trigger_attempt};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, NotSet, QueryFilter, QueryOrder, QuerySelect, Set};

use super::{Conn, StoreError, StoreResult, Writer};
use crate::triggers::{AttemptRecord, NewTrigger, Trigger, TriggerState};

pub async fn insert(db: &impl Writer, new: &NewTrigger, now: DateTime<Utc>) -> StoreResult<Trigger> {
    let model = trigger::ActiveModel {
        id: NotSet,
        connection_id: Set(new.connection_id),
        repository: Set(new.repository.as_str().to_owned()),
        repository_key: Set(new.repository.key().to_owned()),
        environment: Set(new.environment.clone()),
        sha: Set(new.sha.clone()),
        delay_seconds: Set(new.delay_seconds),
        target_url: Set(new.target_url.clone()),
        message: Set(new.message.clone()),
        state: Set(TriggerState::Watching.as_str().to_owned()),
        matched_deployment_id: Set(None),
        fire_at: Set(None),
        fired_at: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    };
    into_trigger(model.insert(db).await?)
}

pub async fn find(db: &impl Conn, id: i64) -> StoreResult<Option<Trigger>> {
    trigger::Entity::find_by_id(id)
        .one(db)
        .await?
        .map(into_trigger)
        .transpose()
}

pub async fn list(db: &impl Conn, connection_id: Option<i64>, limit: u64) -> StoreResult<Vec<Trigger>> {
    let mut query = trigger::Entity::find();
    if let Some(id) = connection_id {
        query = query.filter(trigger::Column::ConnectionId.eq(id));
    }
    query
        .order_by_desc(trigger::Column::Id)
        .limit(limit)
        .all(db)
        .await?
        .into_iter()
        .map(into_trigger)
        .collect()
}

/// SHAs watched in a repository of a connection.
pub async fn watched_shas(db: &impl Conn, connection_id: i64, repository_key: &str) -> StoreResult<Vec<String>> {
    let shas = trigger::Entity::find()
        .select_only()
        .column(trigger::Column::Sha)
        .distinct()
        .filter(trigger::Column::ConnectionId.eq(connection_id))
        .filter(trigger::Column::RepositoryKey.eq(repository_key))
        .filter(trigger::Column::State.eq(TriggerState::Watching.as_str()))
        .into_tuple::<String>()
        .all(db)
        .await?;
    Ok(shas)
}

/// Watching triggers that a live deploy of `sha` to `environment`, recorded at `recorded_at`, matches.
pub async fn matching(
    db: &impl Conn,
    connection_id: i64,
    repository_key: &str,
    environment: &str,
    sha: &str,
    recorded_at: DateTime<Utc>,
) -> StoreResult<Vec<Trigger>> {
    let rows = trigger::Entity::find()
        .filter(trigger::Column::ConnectionId.eq(connection_id))
        .filter(trigger::Column::RepositoryKey.eq(repository_key))
        .filter(trigger::Column::Environment.eq(environment))
        .filter(trigger::Column::Sha.eq(sha))
        .filter(trigger::Column::State.eq(TriggerState::Watching.as_str()))
        .filter(trigger::Column::CreatedAt.lte(recorded_at))
        .all(db)
        .await?;
    rows.into_iter().map(into_trigger).collect()
}

/// `watching → scheduled`; false when another worker got there first.
pub async fn schedule(
    db: &impl Writer,
    id: i64,
    deployment_id: i64,
    fire_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> StoreResult<bool> {
    let result = trigger::Entity::update_many()
        .col_expr(trigger::Column::State, Expr::value(TriggerState::Scheduled.as_str()))
        .col_expr(trigger::Column::MatchedDeploymentId, Expr::value(deployment_id))
        .col_expr(trigger::Column::FireAt, Expr::value(fire_at))
        .col_expr(trigger::Column::UpdatedAt, Expr::value(now))
        .filter(trigger::Column::Id.eq(id))
        .filter(trigger::Column::State.eq(TriggerState::Watching.as_str()))
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}

/// `scheduled → watching` for triggers matched by a deploy that was rolled back.
pub async fn unschedule_for_deployment(db: &impl Writer, deployment_id: i64, now: DateTime<Utc>) -> StoreResult<u64> {
    let result = trigger::Entity::update_many()
        .col_expr(trigger::Column::State, Expr::value(TriggerState::Watching.as_str()))
        .col_expr(trigger::Column::MatchedDeploymentId, Expr::value(Option::<i64>::None))
        .col_expr(trigger::Column::FireAt, Expr::value(Option::<DateTime<Utc>>::None))
        .col_expr(trigger::Column::UpdatedAt, Expr::value(now))
        .filter(trigger::Column::MatchedDeploymentId.eq(deployment_id))
        .filter(trigger::Column::State.eq(TriggerState::Scheduled.as_str()))
        .exec(db)
        .await?;
    Ok(result.rows_affected)
}

/// Moves a trigger from one of `from` to `to`; false when it was in none of them.
pub async fn transition(
    db: &impl Writer,
    id: i64,
    from: &[TriggerState],
    to: TriggerState,
    fired_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> StoreResult<bool> {
    let mut update = trigger::Entity::update_many()
        .col_expr(trigger::Column::State, Expr::value(to.as_str()))
        .col_expr(trigger::Column::UpdatedAt, Expr::value(now));
    if let Some(at) = fired_at {
        update = update.col_expr(trigger::Column::FiredAt, Expr::value(at));
    }
    let result = update
        .filter(trigger::Column::Id.eq(id))
        .filter(trigger::Column::State.is_in(from.iter().map(|s| s.as_str())))
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}

pub async fn record_attempt(db: &impl Writer, record: &AttemptRecord) -> StoreResult<()> {
    trigger_attempt::ActiveModel {
        id: NotSet,
        trigger_id: Set(record.trigger_id),
        deployment_id: Set(record.deployment_id),
        attempted_at: Set(record.attempted_at),
        status_code: Set(record.status_code.map(i32::from)),
        error: Set(record.error.clone()),
    }
    .insert(db)
    .await?;
    Ok(())
}

pub async fn attempts(db: &impl Conn, trigger_id: i64) -> StoreResult<Vec<AttemptRecord>> {
    let rows = trigger_attempt::Entity::find()
        .filter(trigger_attempt::Column::TriggerId.eq(trigger_id))
        .order_by_asc(trigger_attempt::Column::Id)
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| AttemptRecord {
            trigger_id: r.trigger_id,
            deployment_id: r.deployment_id,
            attempted_at: r.attempted_at,
            status_code: r.status_code.and_then(|s| u16::try_from(s).ok()),
            error: r.error,
        })
        .collect())
}

/// A trigger row as a `Trigger`; a state this version does not know is a corrupt row, never a
/// guess.
fn into_trigger(m: trigger::Model) -> StoreResult<Trigger> {
    let state = TriggerState::parse(&m.state)
        .ok_or_else(|| StoreError::Corrupt(format!("trigger {}: unknown state {:?}", m.id, m.state)))?;
    Ok(Trigger {
        state,
        id: m.id,
        connection_id: m.connection_id,
        repository: m.repository,
        repository_key: m.repository_key,
        environment: m.environment,
        sha: m.sha,
        delay_seconds: m.delay_seconds,
        target_url: m.target_url,
        message: m.message,
        matched_deployment_id: m.matched_deployment_id,
        fire_at: m.fire_at,
        fired_at: m.fired_at,
        created_at: m.created_at,
        updated_at: m.updated_at,
    })
}
