//! The board's reads: every live deploy with its title, and the attempts newer than each live
//! deploy, each in one statement for the whole board (never one per repository or cell).
//!
//! Both statements start from the live deploys (`status = 'live'`, the partial unique index of
//! migration 000011); newer attempts are found through `idx_deployment_repo_env_time`
//! (repository, environment, deploy time), so the cost follows the number of cells, not the
//! length of the history. Transient environments (preview apps) are not on the board.

use chrono::{DateTime, Utc};
use sea_orm::{FromQueryResult, Value};

use super::{statement, Conn, StoreResult};

/// What the board reads: the connections it may show (`None`: all) and, optionally, one
/// repository (its key).
#[derive(Clone, Debug, Default)]
pub struct BoardQuery {
    pub connections: Option<Vec<i64>>,
    pub repository_key: Option<String>,
}

/// A live deploy with the title of its SHA (a merged PR's, else the commit's first line).
#[derive(Clone, Debug, PartialEq, Eq, FromQueryResult)]
pub struct LiveRow {
    pub id: i64,
    pub connection_id: i64,
    pub repository: String,
    pub repository_key: String,
    pub environment: String,
    pub sha: String,
    pub creator: Option<String>,
    pub production_environment: bool,
    pub deploy_time: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    pub pr_number: Option<i64>,
    pub pr_title: Option<String>,
    pub commit_title: Option<String>,
}

/// A deploy in a cell's environment newer than its live deploy.
#[derive(Clone, Debug, PartialEq, Eq, FromQueryResult)]
pub struct AttemptRow {
    pub id: i64,
    pub live_id: i64,
    pub status: String,
    pub sha: String,
    pub deploy_time: DateTime<Utc>,
}

/// The conditions on the live deploy `alias` for `query`, with their values.
fn live_filter(alias: &str, query: &BoardQuery, values: &mut Vec<Value>) -> String {
    let mut sql = format!("{alias}.status = 'live' AND {alias}.transient_environment = ?");
    values.push(false.into());
    if let Some(ids) = &query.connections {
        if ids.is_empty() {
            sql.push_str(" AND 1 = 0");
        } else {
            let marks = vec!["?"; ids.len()].join(", ");
            sql.push_str(&format!(" AND {alias}.connection_id IN ({marks})"));
            values.extend(ids.iter().map(|id| Value::from(*id)));
        }
    }
    if let Some(key) = &query.repository_key {
        sql.push_str(&format!(" AND {alias}.repository_key = ?"));
        values.push(key.clone().into());
    }
    sql
}

/// Every live deploy `query` covers, with its title: one statement. A SHA that is the merge
/// commit of several PRs (rare) keeps the one with the highest number.
pub async fn live(db: &impl Conn, query: &BoardQuery) -> StoreResult<Vec<LiveRow>> {
    let mut values = Vec::new();
    let filter = live_filter("d", query, &mut values);
    // Joins rather than correlated subqueries: SQLite answered 5,000 cells in a third of the time.
    let sql = format!(
        "SELECT d.id, d.connection_id, d.repository, d.repository_key, d.environment, d.sha, d.creator, \
           d.production_environment, d.deploy_time, d.completed_at, \
           pr.number AS pr_number, pr.title AS pr_title, ci.title AS commit_title \
         FROM deployment d \
         LEFT JOIN pull_request pr ON pr.connection_id = d.connection_id \
           AND pr.repository_key = d.repository_key AND pr.merge_commit_sha = d.sha \
         LEFT JOIN commit_info ci ON ci.repository_key = d.repository_key AND ci.sha = d.sha \
         WHERE {filter} \
         ORDER BY d.connection_id, d.repository_key, d.environment"
    );
    let backend = db.get_database_backend();
    let mut rows = LiveRow::find_by_statement(statement(backend, &sql, values))
        .all(db)
        .await?;
    // One row per deploy: of several PRs merged as its SHA, the highest number.
    rows.sort_by(|a, b| a.id.cmp(&b.id).then(b.pr_number.cmp(&a.pr_number)));
    rows.dedup_by_key(|r| r.id);
    Ok(rows)
}

/// A stored drift, as the board reads it (only the columns it shows or checks).
#[derive(Clone, Debug, PartialEq, Eq, FromQueryResult)]
pub struct DriftCell {
    pub connection_id: i64,
    pub repository_key: String,
    pub from_environment: String,
    pub to_environment: String,
    pub from_sha: String,
    pub to_sha: String,
    pub state: String,
    pub ahead_by: i64,
    pub behind_by: i64,
    pub pull_requests: i64,
    pub oldest_merged_at: Option<DateTime<Utc>>,
}

/// The stored drift of the connections and repository `query` covers: one statement, only the
/// columns the board needs (the full rows are `store::drift`'s).
pub async fn drift(db: &impl Conn, query: &BoardQuery) -> StoreResult<Vec<DriftCell>> {
    let mut values: Vec<Value> = Vec::new();
    let mut conditions = vec!["1 = 1".to_owned()];
    if let Some(ids) = &query.connections {
        if ids.is_empty() {
            conditions.push("1 = 0".to_owned());
        } else {
            conditions.push(format!("connection_id IN ({})", vec!["?"; ids.len()].join(", ")));
            values.extend(ids.iter().map(|id| Value::from(*id)));
        }
    }
    if let Some(key) = &query.repository_key {
        conditions.push("repository_key = ?".to_owned());
        values.push(key.clone().into());
    }
    let sql = format!(
        "SELECT connection_id, repository_key, from_environment, to_environment, from_sha, to_sha, state, \
           ahead_by, behind_by, pull_requests, oldest_merged_at FROM drift WHERE {}",
        conditions.join(" AND ")
    );
    let backend = db.get_database_backend();
    Ok(DriftCell::find_by_statement(statement(backend, &sql, values))
        .all(db)
        .await?)
}

/// Every deploy newer (by deploy time, then id) than a live deploy `query` covers, in the live
/// deploy's environment: one statement. The caller keeps the newest per live deploy.
pub async fn newer_attempts(db: &impl Conn, query: &BoardQuery) -> StoreResult<Vec<AttemptRow>> {
    let mut values = Vec::new();
    let filter = live_filter("l", query, &mut values);
    let sql = format!(
        "SELECT a.id, l.id AS live_id, a.status, a.sha, a.deploy_time \
         FROM deployment l JOIN deployment a ON a.repository_key = l.repository_key \
           AND a.environment = l.environment AND a.connection_id = l.connection_id \
           AND (a.deploy_time > l.deploy_time OR (a.deploy_time = l.deploy_time AND a.id > l.id)) \
         WHERE {filter} AND a.status <> 'superseded' \
         ORDER BY l.id, a.deploy_time DESC, a.id DESC"
    );
    let backend = db.get_database_backend();
    Ok(AttemptRow::find_by_statement(statement(backend, &sql, values))
        .all(db)
        .await?)
}

/// One deploy that went live in an environment of a repository, for its page's history.
#[derive(Clone, Debug, PartialEq, Eq, FromQueryResult)]
pub struct WentLiveRow {
    pub id: i64,
    pub connection_id: i64,
    pub repository: String,
    pub environment: String,
    pub sha: String,
    pub status: String,
    pub creator: Option<String>,
    pub production_environment: bool,
    pub deploy_time: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
}

/// The deploys of a repository that went live (live, superseded or rolled back), newest first,
/// at most `per_environment` in each environment, for the connections `connections` allows.
pub async fn went_live(
    db: &impl Conn,
    connections: Option<&[i64]>,
    repository_key: &str,
    per_environment: i64,
) -> StoreResult<Vec<WentLiveRow>> {
    let mut values: Vec<Value> = vec![repository_key.to_owned().into(), false.into()];
    let mut scope = String::new();
    if let Some(ids) = connections {
        if ids.is_empty() {
            scope.push_str(" AND 1 = 0");
        } else {
            scope = format!(" AND d.connection_id IN ({})", vec!["?"; ids.len()].join(", "));
            values.extend(ids.iter().map(|id| Value::from(*id)));
        }
    }
    values.push(per_environment.into());
    let sql = format!(
        "SELECT id, connection_id, repository, environment, sha, status, creator, production_environment, \
           deploy_time, completed_at FROM ( \
           SELECT d.*, ROW_NUMBER() OVER (PARTITION BY d.connection_id, d.environment \
             ORDER BY d.deploy_time DESC, d.id DESC) AS n \
           FROM deployment d WHERE d.repository_key = ? AND d.transient_environment = ? \
             AND d.status IN ('live', 'superseded', 'rolled_back'){scope}) ranked \
         WHERE n <= ? ORDER BY environment, deploy_time DESC, id DESC"
    );
    let backend = db.get_database_backend();
    Ok(WentLiveRow::find_by_statement(statement(backend, &sql, values))
        .all(db)
        .await?)
}
