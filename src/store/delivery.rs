//! Delivery metrics' rows (`delivery`): lead times, interventions and rework, written as the
//! went-live job, rollback detection and monitoring verdicts learn them, and read back for a
//! window. A year of a repository is a few indexed range reads, never a recomputation.

use chrono::{DateTime, Utc};
use entity::{
    commit_info, compare_range, compare_range_commit, deploy_intervention, deploy_rework, deploy_shipment, deployment,
    lead_time,
};
use sea_orm::sea_query::{Alias, Expr, OnConflict};
use sea_orm::{
    ColumnTrait, Condition, DatabaseBackend, EntityTrait, JoinType, NotSet, QueryFilter, QueryOrder, QuerySelect, Set,
    Value,
};

use super::{statement, Conn, StoreResult, Writer};

/// A merged pull request's lead time to one environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeadTimeRow {
    pub connection_id: i64,
    pub repository: String,
    pub repository_key: String,
    pub environment: String,
    pub pull_number: i64,
    pub title: String,
    pub author: Option<String>,
    pub merge_commit_sha: String,
    pub first_commit_at: Option<DateTime<Utc>>,
    pub opened_at: Option<DateTime<Utc>>,
    pub merged_at: DateTime<Utc>,
    pub deployment_id: i64,
    pub deploy_started_at: DateTime<Utc>,
    pub live_at: DateTime<Utc>,
    /// From its start to `live_at` (`delivery::report::start_from`), kept to be counted.
    pub lead_seconds: i64,
}

impl From<lead_time::Model> for LeadTimeRow {
    fn from(r: lead_time::Model) -> Self {
        Self {
            connection_id: r.connection_id,
            repository: r.repository,
            repository_key: r.repository_key,
            environment: r.environment,
            pull_number: r.pull_number,
            title: r.title,
            author: r.author,
            merge_commit_sha: r.merge_commit_sha,
            first_commit_at: r.first_commit_at,
            opened_at: r.opened_at,
            merged_at: r.merged_at,
            deployment_id: r.deployment_id,
            deploy_started_at: r.deploy_started_at,
            live_at: r.live_at,
            lead_seconds: r.lead_seconds,
        }
    }
}

/// Rows per insert statement (14 columns each).
const CHUNK: usize = 100;

/// Stores lead times; a pull request already stored for the environment keeps the deploy that
/// went live first (a deploy that went live earlier but was processed later takes its place).
pub async fn save_lead_times(db: &impl Writer, rows: &[LeadTimeRow], now: DateTime<Utc>) -> StoreResult<()> {
    use lead_time::Column as C;
    for chunk in rows.chunks(CHUNK) {
        lead_time::Entity::insert_many(chunk.iter().map(|r| lead_time::ActiveModel {
            id: NotSet,
            connection_id: Set(r.connection_id),
            repository: Set(r.repository.clone()),
            repository_key: Set(r.repository_key.clone()),
            environment: Set(r.environment.clone()),
            pull_number: Set(r.pull_number),
            title: Set(r.title.clone()),
            author: Set(r.author.clone()),
            merge_commit_sha: Set(r.merge_commit_sha.clone()),
            first_commit_at: Set(r.first_commit_at),
            opened_at: Set(r.opened_at),
            merged_at: Set(r.merged_at),
            deployment_id: Set(r.deployment_id),
            deploy_started_at: Set(r.deploy_started_at),
            live_at: Set(r.live_at),
            live_epoch: Set(r.live_at.timestamp()),
            lead_seconds: Set(r.lead_seconds),
            recorded_at: Set(now),
        }))
        .on_conflict(
            OnConflict::columns([C::ConnectionId, C::RepositoryKey, C::Environment, C::PullNumber])
                .update_columns([
                    C::Title,
                    C::Author,
                    C::FirstCommitAt,
                    C::OpenedAt,
                    C::DeploymentId,
                    C::DeployStartedAt,
                    C::LiveAt,
                    C::LiveEpoch,
                    C::LeadSeconds,
                    C::RecordedAt,
                ])
                .action_and_where(
                    Expr::col((lead_time::Entity, C::LiveAt)).gt(Expr::col((Alias::new("excluded"), C::LiveAt))),
                )
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    }
    Ok(())
}

/// Pull request `number`'s lead time to `environment`: the deploy that first brought it there,
/// and its merge commit.
pub async fn lead_time_of(
    db: &impl Conn,
    connection_id: i64,
    repository_key: &str,
    environment: &str,
    number: i64,
) -> StoreResult<Option<LeadTimeRow>> {
    Ok(lead_time::Entity::find()
        .filter(lead_time::Column::ConnectionId.eq(connection_id))
        .filter(lead_time::Column::RepositoryKey.eq(repository_key))
        .filter(lead_time::Column::Environment.eq(environment))
        .filter(lead_time::Column::PullNumber.eq(number))
        .one(db)
        .await?
        .map(LeadTimeRow::from))
}

/// The latest deploy to `environment`, live at or before `at`, whose shipped range listed commit
/// `sha`: the one that last brought it there (after a rollback took it out, the deploy that
/// shipped it again), with when it went live.
pub async fn deploy_that_shipped(
    db: &impl Conn,
    connection_id: i64,
    repository_key: &str,
    environment: &str,
    sha: &str,
    at: DateTime<Utc>,
) -> StoreResult<Option<(i64, DateTime<Utc>)>> {
    let key = repository_key.to_owned();
    let found: Option<(i64, Option<DateTime<Utc>>)> = deployment::Entity::find()
        .select_only()
        .column(deployment::Column::Id)
        .column(deployment::Column::CompletedAt)
        .join_rev(
            JoinType::InnerJoin,
            deploy_shipment::Entity::belongs_to(deployment::Entity)
                .from(deploy_shipment::Column::DeploymentId)
                .to(deployment::Column::Id)
                .into(),
        )
        .join(
            JoinType::InnerJoin,
            deploy_shipment::Entity::belongs_to(compare_range::Entity)
                .from(deploy_shipment::Column::BaseSha)
                .to(compare_range::Column::BaseSha)
                .on_condition(move |shipment, range| {
                    Condition::all()
                        .add(
                            Expr::col((range.clone(), compare_range::Column::HeadSha))
                                .equals((shipment, deploy_shipment::Column::HeadSha)),
                        )
                        .add(Expr::col((range, compare_range::Column::RepositoryKey)).eq(key.clone()))
                })
                .into(),
        )
        .join_rev(
            JoinType::InnerJoin,
            compare_range_commit::Entity::belongs_to(compare_range::Entity)
                .from(compare_range_commit::Column::RangeId)
                .to(compare_range::Column::Id)
                .into(),
        )
        .filter(deployment::Column::ConnectionId.eq(connection_id))
        .filter(deployment::Column::RepositoryKey.eq(repository_key))
        .filter(deployment::Column::Environment.eq(environment))
        .filter(deploy_shipment::Column::Status.is_in(["ahead", "diverged"]))
        .filter(compare_range_commit::Column::Sha.eq(sha))
        .filter(deployment::Column::CompletedAt.lte(at))
        .order_by_desc(deployment::Column::CompletedAt)
        .order_by_desc(deployment::Column::Id)
        .into_tuple()
        .one(db)
        .await?;
    Ok(found.and_then(|(id, at)| at.map(|at| (id, at))))
}

/// Whether commit `sha` of the repository, as a comparison listed it, is itself a revert (its
/// message names a reverted commit or pull request).
pub async fn is_a_revert(db: &impl Conn, repository_key: &str, sha: &str) -> StoreResult<bool> {
    Ok(commit_info::Entity::find()
        .filter(commit_info::Column::RepositoryKey.eq(repository_key))
        .filter(commit_info::Column::Sha.eq(sha))
        .one(db)
        .await?
        .is_some_and(|c| c.reverts_sha.is_some() || c.reverts_pull_request.is_some()))
}

/// Why a deploy needed intervention.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InterventionRow {
    pub connection_id: i64,
    pub repository: String,
    pub repository_key: String,
    pub environment: String,
    pub deployment_id: i64,
    /// `rolled_back`, `reverted` or `regressed`.
    pub reason: String,
    pub detail: String,
    pub failed_at: DateTime<Utc>,
    pub recovered_by_id: Option<i64>,
    pub recovered_at: Option<DateTime<Utc>>,
}

impl From<deploy_intervention::Model> for InterventionRow {
    fn from(r: deploy_intervention::Model) -> Self {
        Self {
            connection_id: r.connection_id,
            repository: r.repository,
            repository_key: r.repository_key,
            environment: r.environment,
            deployment_id: r.deployment_id,
            reason: r.reason,
            detail: r.detail,
            failed_at: r.failed_at,
            recovered_by_id: r.recovered_by_id,
            recovered_at: r.recovered_at,
        }
    }
}

/// Stores an intervention once per deploy and reason (the first detection stands), and fills in
/// its recovery when one is given and none was known.
pub async fn save_intervention(db: &impl Writer, row: &InterventionRow, now: DateTime<Utc>) -> StoreResult<()> {
    use deploy_intervention::Column as C;
    deploy_intervention::Entity::insert(deploy_intervention::ActiveModel {
        id: NotSet,
        connection_id: Set(row.connection_id),
        repository: Set(row.repository.clone()),
        repository_key: Set(row.repository_key.clone()),
        environment: Set(row.environment.clone()),
        deployment_id: Set(row.deployment_id),
        reason: Set(row.reason.clone()),
        detail: Set(row.detail.clone()),
        failed_at: Set(row.failed_at),
        recovered_by_id: Set(row.recovered_by_id),
        recovered_at: Set(row.recovered_at),
        recorded_at: Set(now),
    })
    .on_conflict(
        OnConflict::columns([C::DeploymentId, C::Reason])
            .update_columns([C::RecoveredById, C::RecoveredAt])
            .action_and_where(
                Expr::col((deploy_intervention::Entity, C::RecoveredById))
                    .is_null()
                    .and(Expr::col((Alias::new("excluded"), C::RecoveredById)).is_not_null()),
            )
            .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// `deployment_id`, live at `live_at` in `environment`, recovers every regression there that went
/// live before it and has no recovery yet. Returns how many it recovered.
pub async fn recover_regressions(
    db: &impl Writer,
    connection_id: i64,
    repository_key: &str,
    environment: &str,
    deployment_id: i64,
    live_at: DateTime<Utc>,
) -> StoreResult<u64> {
    use deploy_intervention::Column as C;
    let done = deploy_intervention::Entity::update_many()
        .col_expr(C::RecoveredById, Expr::value(Some(deployment_id)))
        .col_expr(C::RecoveredAt, Expr::value(Some(live_at)))
        .filter(C::ConnectionId.eq(connection_id))
        .filter(C::RepositoryKey.eq(repository_key))
        .filter(C::Environment.eq(environment))
        .filter(C::Reason.eq("regressed"))
        .filter(C::RecoveredById.is_null())
        .filter(C::FailedAt.lt(live_at))
        .filter(C::DeploymentId.ne(deployment_id))
        .exec(db)
        .await?;
    Ok(done.rows_affected)
}

/// An unplanned deploy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReworkRow {
    pub connection_id: i64,
    pub repository: String,
    pub repository_key: String,
    pub environment: String,
    pub deployment_id: i64,
    /// `rollback` or `revert`.
    pub reason: String,
    pub detail: String,
    pub live_at: DateTime<Utc>,
}

impl From<deploy_rework::Model> for ReworkRow {
    fn from(r: deploy_rework::Model) -> Self {
        Self {
            connection_id: r.connection_id,
            repository: r.repository,
            repository_key: r.repository_key,
            environment: r.environment,
            deployment_id: r.deployment_id,
            reason: r.reason,
            detail: r.detail,
            live_at: r.live_at,
        }
    }
}

/// Stores an unplanned deploy once per reason.
pub async fn save_rework(db: &impl Writer, row: &ReworkRow, now: DateTime<Utc>) -> StoreResult<()> {
    use deploy_rework::Column as C;
    deploy_rework::Entity::insert(deploy_rework::ActiveModel {
        id: NotSet,
        connection_id: Set(row.connection_id),
        repository: Set(row.repository.clone()),
        repository_key: Set(row.repository_key.clone()),
        environment: Set(row.environment.clone()),
        deployment_id: Set(row.deployment_id),
        reason: Set(row.reason.clone()),
        detail: Set(row.detail.clone()),
        live_at: Set(row.live_at),
        recorded_at: Set(now),
    })
    .on_conflict(
        OnConflict::columns([C::DeploymentId, C::Reason])
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// What a report reads: the connections it may see (`None`: all), optionally one repository,
/// and a window of time `[from, to)`.
#[derive(Clone, Debug)]
pub struct Window {
    pub connections: Option<Vec<i64>>,
    pub repository_key: Option<String>,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

/// A deploy that went live (or failed), as a report's item shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeployRow {
    pub id: i64,
    pub connection_id: i64,
    pub repository: String,
    pub environment: String,
    pub sha: String,
    pub status: String,
    pub production_flag: bool,
    pub backfilled: bool,
    pub deploy_time: DateTime<Utc>,
    /// When it went live (or failed).
    pub completed_at: DateTime<Utc>,
}

fn in_connections<C: ColumnTrait>(column: C, connections: &Option<Vec<i64>>) -> Condition {
    match connections {
        None => Condition::all(),
        Some(ids) => Condition::all().add(column.is_in(ids.iter().copied())),
    }
}

/// Lead times by id (a report's listed ones), with their ids; a row deleted since is left out.
pub async fn lead_times_by_id(db: &impl Conn, ids: &[i64]) -> StoreResult<Vec<(i64, LeadTimeRow)>> {
    let mut found = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(500) {
        let rows = lead_time::Entity::find()
            .filter(lead_time::Column::Id.is_in(chunk.iter().copied()))
            .all(db)
            .await?;
        found.extend(rows.into_iter().map(|r| (r.id, LeadTimeRow::from(r))));
    }
    Ok(found)
}

/// The interventions on deploys that went live in the window, oldest first.
pub async fn interventions(db: &impl Conn, window: &Window) -> StoreResult<Vec<InterventionRow>> {
    use deploy_intervention::Column as C;
    if window.connections.as_ref().is_some_and(Vec::is_empty) {
        return Ok(Vec::new());
    }
    let mut query = deploy_intervention::Entity::find()
        .filter(in_connections(C::ConnectionId, &window.connections))
        .filter(C::FailedAt.gte(window.from))
        .filter(C::FailedAt.lt(window.to));
    if let Some(key) = &window.repository_key {
        query = query.filter(C::RepositoryKey.eq(key.as_str()));
    }
    let rows = query.order_by_asc(C::FailedAt).order_by_asc(C::Id).all(db).await?;
    Ok(rows.into_iter().map(InterventionRow::from).collect())
}

/// The unplanned deploys that went live in the window, oldest first.
pub async fn rework(db: &impl Conn, window: &Window) -> StoreResult<Vec<ReworkRow>> {
    use deploy_rework::Column as C;
    if window.connections.as_ref().is_some_and(Vec::is_empty) {
        return Ok(Vec::new());
    }
    let mut query = deploy_rework::Entity::find()
        .filter(in_connections(C::ConnectionId, &window.connections))
        .filter(C::LiveAt.gte(window.from))
        .filter(C::LiveAt.lt(window.to));
    if let Some(key) = &window.repository_key {
        query = query.filter(C::RepositoryKey.eq(key.as_str()));
    }
    let rows = query.order_by_asc(C::LiveAt).order_by_asc(C::Id).all(db).await?;
    Ok(rows.into_iter().map(ReworkRow::from).collect())
}

/// The first deploy other than `after_id` that went live in `environment` after `at`.
pub async fn first_live_after(
    db: &impl Conn,
    connection_id: i64,
    repository_key: &str,
    environment: &str,
    after_id: i64,
    at: DateTime<Utc>,
) -> StoreResult<Option<(i64, DateTime<Utc>)>> {
    use deployment::Column as C;
    let found: Option<(i64, Option<DateTime<Utc>>)> = deployment::Entity::find()
        .select_only()
        .columns([C::Id, C::CompletedAt])
        .filter(C::ConnectionId.eq(connection_id))
        .filter(C::RepositoryKey.eq(repository_key))
        .filter(C::Environment.eq(environment))
        .filter(C::Status.is_in(WENT_LIVE))
        .filter(C::CompletedAt.gt(at))
        .filter(C::Id.ne(after_id))
        .order_by_asc(C::CompletedAt)
        .into_tuple()
        .one(db)
        .await?;
    Ok(found.and_then(|(id, at)| at.map(|at| (id, at))))
}

/// Whether rollback deploy `rollback_id` rolled back a deploy of `sha`: deploying `sha` again
/// after it is a roll-forward, not another rollback.
pub async fn rolled_back_a_deploy_of(db: &impl Conn, rollback_id: i64, sha: &str) -> StoreResult<bool> {
    use deployment::Column as C;
    let found: Option<i64> = deployment::Entity::find()
        .select_only()
        .column(C::Id)
        .filter(C::RollbackTargetId.eq(rollback_id))
        .filter(C::Sha.eq(sha))
        .into_tuple()
        .one(db)
        .await?;
    Ok(found.is_some())
}

/// The statuses of a deploy that went live (and may since have been replaced).
pub const WENT_LIVE: [&str; 3] = ["live", "superseded", "rolled_back"];

/// [`WENT_LIVE`] as an SQL list (`'live', 'superseded', 'rolled_back'`): constants, no caller text.
fn went_live_statuses() -> String {
    WENT_LIVE.map(|s| format!("'{s}'")).join(", ")
}

/// A deploy as a report counts it: numbers only, no text or time to decode (a year of a busy
/// repository holds ten thousand). Its item, when listed, is read in full ([`deploys_by_id`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CountedDeploy {
    pub id: i64,
    /// When it went live (or failed), in whole seconds since the Unix epoch.
    pub completed: i64,
    /// Went live (else it failed before).
    pub went_live: bool,
    pub backfilled: bool,
    pub shipment: ShipmentKnown,
}

/// What its shipment says of a deploy's pull requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShipmentKnown {
    Listed,
    First,
    Unrelated,
    /// Recorded but not read (`unread`).
    Unread,
    /// No shipment recorded.
    None,
}

/// An environment of the window's deploys: its connection, its name, and whether GitHub flagged
/// any of its deploys `production_environment`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WindowEnvironment {
    pub connection_id: i64,
    pub environment: String,
    pub production_flag: bool,
}

/// The whole seconds since the Unix epoch of a timestamp column, in each engine's SQL.
fn epoch(backend: DatabaseBackend, column: &str) -> String {
    match backend {
        DatabaseBackend::Postgres => format!("CAST(FLOOR(EXTRACT(EPOCH FROM {column})) AS BIGINT)"),
        _ => format!("CAST(strftime('%s', {column}) AS INTEGER)"),
    }
}

/// The conditions of `window` on the table `alias` (`connection_id`, `repository_key`, the
/// time column `at`), with their values.
fn window_filter(alias: &str, at: &str, window: &Window, values: &mut Vec<Value>) -> String {
    let mut sql = format!("{alias}.{at} >= ? AND {alias}.{at} < ?");
    values.push(window.from.into());
    values.push(window.to.into());
    if let Some(ids) = &window.connections {
        let marks = vec!["?"; ids.len().max(1)].join(", ");
        sql.push_str(&format!(" AND {alias}.connection_id IN ({marks})"));
        if ids.is_empty() {
            values.push(Value::from(0_i64));
        }
        values.extend(ids.iter().map(|id| Value::from(*id)));
    }
    if let Some(key) = &window.repository_key {
        sql.push_str(&format!(" AND {alias}.repository_key = ?"));
        values.push(key.clone().into());
    }
    sql
}

/// `AND ((connection_id = ? AND environment = ?) OR …)` for the environments counted.
fn environments_filter(alias: &str, counted: &[(i64, String)], values: &mut Vec<Value>) -> String {
    if counted.is_empty() {
        return " AND 1 = 0".to_owned();
    }
    let pairs = vec![format!("({alias}.connection_id = ? AND {alias}.environment = ?)"); counted.len()].join(" OR ");
    for (connection, environment) in counted {
        values.push(Value::from(*connection));
        values.push(environment.clone().into());
    }
    format!(" AND ({pairs})")
}

/// The environments the window's completed deploys ran in (transient ones left out).
pub async fn window_environments(db: &impl Conn, window: &Window) -> StoreResult<Vec<WindowEnvironment>> {
    let mut values = Vec::new();
    let sql = format!(
        "SELECT d.connection_id, d.environment, MAX(CASE WHEN d.production_environment THEN 1 ELSE 0 END) \
         FROM deployment d WHERE {} AND d.transient_environment = ? \
         GROUP BY d.connection_id, d.environment",
        window_filter("d", "completed_at", window, &mut values)
    );
    values.push(false.into());
    let backend = db.get_database_backend();
    let rows = db.query_all(statement(backend, &sql, values)).await?;
    rows.iter()
        .map(|row| {
            Ok(WindowEnvironment {
                connection_id: row.try_get_by_index::<i64>(0)?,
                environment: row.try_get_by_index::<String>(1)?,
                production_flag: row.try_get_by_index::<i32>(2)? != 0,
            })
        })
        .collect()
}

/// The window's completed deploys in the `counted` environments, oldest first, as numbers.
pub async fn counted_deploys(
    db: &impl Conn,
    window: &Window,
    counted: &[(i64, String)],
) -> StoreResult<Vec<CountedDeploy>> {
    let backend = db.get_database_backend();
    let mut values = Vec::new();
    let mut sql = format!(
        "SELECT d.id, {}, CASE WHEN d.status IN ({}) THEN 1 ELSE 0 END, \
         CASE WHEN d.backfilled THEN 1 ELSE 0 END, \
         CASE s.kind WHEN 'listed' THEN 1 WHEN 'first' THEN 2 WHEN 'unrelated' THEN 3 WHEN 'unread' THEN 4 ELSE 0 END \
         FROM deployment d LEFT JOIN deploy_shipment s ON s.deployment_id = d.id WHERE ",
        epoch(backend, "d.completed_at"),
        went_live_statuses()
    );
    sql.push_str(&window_filter("d", "completed_at", window, &mut values));
    sql.push_str(" AND d.transient_environment = ?");
    values.push(false.into());
    sql.push_str(&environments_filter("d", counted, &mut values));
    sql.push_str(" ORDER BY d.completed_at, d.id");
    let rows = db.query_all(statement(backend, &sql, values)).await?;
    rows.iter()
        .map(|row| {
            Ok(CountedDeploy {
                id: row.try_get_by_index::<i64>(0)?,
                completed: row.try_get_by_index::<i64>(1)?,
                went_live: row.try_get_by_index::<i32>(2)? != 0,
                backfilled: row.try_get_by_index::<i32>(3)? != 0,
                shipment: match row.try_get_by_index::<i32>(4)? {
                    1 => ShipmentKnown::Listed,
                    2 => ShipmentKnown::First,
                    3 => ShipmentKnown::Unrelated,
                    4 => ShipmentKnown::Unread,
                    _ => ShipmentKnown::None,
                },
            })
        })
        .collect()
}

/// A lead time as a report counts it: numbers only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CountedLeadTime {
    pub id: i64,
    pub deployment_id: i64,
    /// When it went live, in whole seconds since the Unix epoch.
    pub live: i64,
    pub lead_seconds: i64,
}

/// The window's lead times (by when they went live) in the `counted` environments, oldest first
/// (those of one deploy by their merge), as numbers.
pub async fn counted_lead_times(
    db: &impl Conn,
    window: &Window,
    counted: &[(i64, String)],
) -> StoreResult<Vec<CountedLeadTime>> {
    let backend = db.get_database_backend();
    let mut values = Vec::new();
    let mut sql = "SELECT l.id, l.deployment_id, l.live_epoch, l.lead_seconds FROM lead_time l WHERE ".to_owned();
    sql.push_str(&window_filter("l", "live_at", window, &mut values));
    sql.push_str(&environments_filter("l", counted, &mut values));
    sql.push_str(" ORDER BY l.live_at, l.merged_at, l.id");
    let rows = db.query_all(statement(backend, &sql, values)).await?;
    rows.iter()
        .map(|row| {
            Ok(CountedLeadTime {
                id: row.try_get_by_index::<i64>(0)?,
                deployment_id: row.try_get_by_index::<i64>(1)?,
                live: row.try_get_by_index::<i64>(2)?,
                lead_seconds: row.try_get_by_index::<i64>(3)?,
            })
        })
        .collect()
}

/// Deploys by id (a report's listed ones), in full; a row deleted since is left out.
pub async fn deploys_by_id(db: &impl Conn, ids: &[i64]) -> StoreResult<Vec<DeployRow>> {
    use deployment::Column as C;
    let mut found = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(500) {
        let rows = deployment::Entity::find()
            .filter(C::Id.is_in(chunk.iter().copied()))
            .all(db)
            .await?;
        found.extend(rows.into_iter().filter_map(|d| {
            Some(DeployRow {
                id: d.id,
                connection_id: d.connection_id,
                repository: d.repository,
                environment: d.environment,
                sha: d.sha,
                status: d.status,
                production_flag: d.production_environment,
                backfilled: d.backfilled,
                deploy_time: d.deploy_time,
                completed_at: d.completed_at?,
            })
        }));
    }
    Ok(found)
}

/// How many deploys went live in each repository and environment of the `counted` ones in the
/// window, by repository then environment.
pub async fn environment_counts(
    db: &impl Conn,
    window: &Window,
    counted: &[(i64, String)],
) -> StoreResult<Vec<(String, String, usize)>> {
    let backend = db.get_database_backend();
    let mut values = Vec::new();
    let mut sql = "SELECT d.repository, d.environment, COUNT(*) FROM deployment d WHERE ".to_owned();
    sql.push_str(&window_filter("d", "completed_at", window, &mut values));
    sql.push_str(&format!(
        " AND d.transient_environment = ? AND d.status IN ({})",
        went_live_statuses()
    ));
    values.push(false.into());
    sql.push_str(&environments_filter("d", counted, &mut values));
    sql.push_str(" GROUP BY d.repository, d.environment ORDER BY d.repository, d.environment");
    let rows = db.query_all(statement(backend, &sql, values)).await?;
    rows.iter()
        .map(|row| {
            Ok((
                row.try_get_by_index::<String>(0)?,
                row.try_get_by_index::<String>(1)?,
                row.try_get_by_index::<i64>(2)?.max(0) as usize,
            ))
        })
        .collect()
}
