//! Connection rows and the repositories each installation can see.
//!
//! An installation may see 100,000 repositories, so a connection is loaded without its
//! repository list; one repository is looked up by its key, lists are read a page at a time, and
//! changes are written in chunks of [`CHUNK`] rows per statement.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use entity::{connection, connection_repository};
use sea_orm::sea_query::{Alias, Expr, Func, OnConflict, Query, SimpleExpr};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, EntityTrait, Order, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
    Set, Statement,
};

use super::{Conn, StoreError, StoreResult, Writer};
use crate::connections::{Connection, ConnectionSettings};
use crate::types::{Account, InstallationId, RepoName, RepoRef};

/// Fields of a connection that GitHub's installation events carry.
#[derive(Debug, Clone)]
pub struct InstallationFields<'a> {
    pub installation_id: InstallationId,
    pub account: &'a Account,
    pub repository_selection: &'a str,
}

pub async fn find(db: &impl Conn, id: i64) -> StoreResult<Option<Connection>> {
    let Some(row) = connection::Entity::find_by_id(id).one(db).await? else {
        return Ok(None);
    };
    to_connection(row).map(Some)
}

pub async fn find_by_installation(db: &impl Conn, installation_id: InstallationId) -> StoreResult<Option<Connection>> {
    let Some(row) = connection::Entity::find()
        .filter(connection::Column::InstallationId.eq(installation_id.0))
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    to_connection(row).map(Some)
}

/// Every connection, oldest first.
pub async fn list(db: &impl Conn) -> StoreResult<Vec<Connection>> {
    let rows = connection::Entity::find()
        .order_by_asc(connection::Column::Id)
        .all(db)
        .await?;
    rows.into_iter().map(to_connection).collect()
}

pub async fn insert(
    db: &impl Writer,
    fields: InstallationFields<'_>,
    settings: &ConnectionSettings,
    now: DateTime<Utc>,
) -> StoreResult<i64> {
    let settings = serde_json::to_string(settings).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let model = connection::ActiveModel {
        installation_id: Set(fields.installation_id.0),
        account_login: Set(fields.account.login.clone()),
        account_type: Set(fields.account.kind.clone()),
        account_id: Set(fields.account.id),
        repository_selection: Set(fields.repository_selection.to_owned()),
        settings: Set(settings),
        suspended_at: Set(None),
        deleted_at: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        agent_secret: Set(None),
        ..Default::default()
    };
    Ok(model.insert(db).await?.id)
}

/// Refreshes what GitHub says about the account and repository selection.
pub async fn update_installation(
    db: &impl Writer,
    id: i64,
    fields: InstallationFields<'_>,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    let model = connection::ActiveModel {
        id: Set(id),
        account_login: Set(fields.account.login.clone()),
        account_type: Set(fields.account.kind.clone()),
        account_id: Set(fields.account.id),
        repository_selection: Set(fields.repository_selection.to_owned()),
        updated_at: Set(now),
        ..Default::default()
    };
    model.update(db).await?;
    Ok(())
}

pub async fn set_suspended_at(
    db: &impl Writer,
    id: i64,
    at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    let model = connection::ActiveModel {
        id: Set(id),
        suspended_at: Set(at),
        updated_at: Set(now),
        ..Default::default()
    };
    model.update(db).await?;
    Ok(())
}

pub async fn set_settings(
    db: &impl Writer,
    id: i64,
    settings: &ConnectionSettings,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    let settings = serde_json::to_string(settings).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let model = connection::ActiveModel {
        id: Set(id),
        settings: Set(settings),
        updated_at: Set(now),
        ..Default::default()
    };
    model.update(db).await?;
    Ok(())
}

pub async fn set_agent_secret(db: &impl Writer, id: i64, secret: Option<&str>) -> StoreResult<()> {
    connection::ActiveModel {
        id: Set(id),
        agent_secret: Set(secret.map(str::to_owned)),
        ..Default::default()
    }
    .update(db)
    .await?;
    Ok(())
}

pub async fn set_deleted_at(db: &impl Writer, id: i64, at: DateTime<Utc>) -> StoreResult<()> {
    let model = connection::ActiveModel {
        id: Set(id),
        deleted_at: Set(Some(at)),
        updated_at: Set(at),
        ..Default::default()
    };
    model.update(db).await?;
    Ok(())
}

/// Rows per statement when writing repositories: 500 rows of 5 values stay far below both
/// SQLite's 32,766 and PostgreSQL's 65,535 bound parameters.
const CHUNK: usize = 500;

/// Adds repositories the connection does not list yet; a renamed repository gets its new name.
/// One upsert per [`CHUNK`] repositories; a row whose name is unchanged is left alone.
pub async fn add_repositories(db: &impl Writer, id: i64, repos: &[RepoRef], now: DateTime<Utc>) -> StoreResult<()> {
    // One row per repository id and statement (an upsert cannot touch a row twice); the last
    // mention wins, as it would row by row.
    let mut latest: HashMap<i64, &RepoRef> = HashMap::with_capacity(repos.len());
    let mut order = Vec::with_capacity(repos.len());
    for repo in repos {
        if latest.insert(repo.github_id, repo).is_none() {
            order.push(repo.github_id);
        }
    }
    for ids in order.chunks(CHUNK) {
        let rows =
            ids.iter()
                .filter_map(|github_id| latest.get(github_id))
                .map(|repo| connection_repository::ActiveModel {
                    connection_id: Set(id),
                    github_repo_id: Set(repo.github_id),
                    full_name: Set(repo.name.as_str().to_owned()),
                    full_name_lower: Set(repo.name.key().to_owned()),
                    added_at: Set(now),
                    ..Default::default()
                });
        let renamed = Expr::col((connection_repository::Entity, connection_repository::Column::FullName)).ne(
            Expr::col((Alias::new("excluded"), connection_repository::Column::FullName)),
        );
        connection_repository::Entity::insert_many(rows)
            .on_conflict(
                OnConflict::columns([
                    connection_repository::Column::ConnectionId,
                    connection_repository::Column::GithubRepoId,
                ])
                .update_columns([
                    connection_repository::Column::FullName,
                    connection_repository::Column::FullNameLower,
                ])
                .action_and_where(renamed)
                .to_owned(),
            )
            .do_nothing()
            .exec_without_returning(db)
            .await?;
    }
    Ok(())
}

/// Removes repositories by GitHub id, [`CHUNK`] ids per statement.
pub async fn remove_repositories(db: &impl Writer, id: i64, github_ids: &[i64]) -> StoreResult<()> {
    for ids in github_ids.chunks(CHUNK) {
        connection_repository::Entity::delete_many()
            .filter(connection_repository::Column::ConnectionId.eq(id))
            .filter(connection_repository::Column::GithubRepoId.is_in(ids.iter().copied()))
            .exec(db)
            .await?;
    }
    Ok(())
}

/// The repository a connection lists under `key` (a lower-cased `owner/repo`), if it does.
pub async fn repository(db: &impl Conn, id: i64, key: &str) -> StoreResult<Option<RepoName>> {
    connection_repository::Entity::find()
        .filter(connection_repository::Column::ConnectionId.eq(id))
        .filter(connection_repository::Column::FullNameLower.eq(key))
        .one(db)
        .await?
        .map(|row| repo_name(&row.full_name))
        .transpose()
}

/// The live connection `key` (a lower-cased `owner/repo`) belongs to, in one query: the oldest
/// whose installation lists it, else the oldest whose account is `owner` (any case).
pub async fn owning(db: &impl Conn, key: &str, owner: &str) -> StoreResult<Option<Connection>> {
    let listed = || {
        Query::select()
            .column(connection_repository::Column::ConnectionId)
            .from(connection_repository::Entity)
            .and_where(connection_repository::Column::FullNameLower.eq(key))
            .to_owned()
    };
    let account = Expr::expr(Func::lower(Expr::col((
        connection::Entity,
        connection::Column::AccountLogin,
    ))));
    let Some(row) = connection::Entity::find()
        .filter(connection::Column::DeletedAt.is_null())
        .filter(
            Condition::any()
                .add(connection::Column::Id.in_subquery(listed()))
                .add(account.eq(owner.to_ascii_lowercase())),
        )
        .order_by(
            Into::<SimpleExpr>::into(Expr::case(connection::Column::Id.in_subquery(listed()), 0).finally(1)),
            Order::Asc,
        )
        .order_by_asc(connection::Column::Id)
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    to_connection(row).map(Some)
}

/// Each connection's first repository in name order (case-insensitive), in one statement:
/// connection id → name, for connections that list any.
pub async fn first_repositories(db: &impl Conn) -> StoreResult<HashMap<i64, RepoName>> {
    let sql = "SELECT c.id AS id, (SELECT r.full_name FROM connection_repository r \
               WHERE r.connection_id = c.id ORDER BY r.full_name_lower, r.id LIMIT 1) AS full_name \
               FROM connection c";
    let rows = db
        .query_all(Statement::from_string(db.get_database_backend(), sql))
        .await?;
    let mut first = HashMap::new();
    for row in rows {
        let id: i64 = row.try_get("", "id")?;
        if let Some(name) = row.try_get::<Option<String>>("", "full_name")? {
            first.insert(id, repo_name(&name)?);
        }
    }
    Ok(first)
}

pub async fn repository_count(db: &impl Conn, id: i64) -> StoreResult<u64> {
    Ok(connection_repository::Entity::find()
        .filter(connection_repository::Column::ConnectionId.eq(id))
        .count(db)
        .await?)
}

/// Up to `limit` repositories of a connection in name order (case-insensitive), after the key
/// `after` when given.
pub async fn repositories(db: &impl Conn, id: i64, after: Option<&str>, limit: u64) -> StoreResult<Vec<RepoName>> {
    let mut query = connection_repository::Entity::find().filter(connection_repository::Column::ConnectionId.eq(id));
    if let Some(after) = after {
        query = query.filter(connection_repository::Column::FullNameLower.gt(after));
    }
    query
        .order_by_asc(connection_repository::Column::FullNameLower)
        .order_by_asc(connection_repository::Column::Id)
        .limit(limit)
        .all(db)
        .await?
        .iter()
        .map(|row| repo_name(&row.full_name))
        .collect()
}

/// Up to `limit` distinct repository names of any connection whose key starts with `prefix`
/// (lower-case), in name order: suggestions for a search field.
pub async fn repository_suggestions(db: &impl Conn, prefix: &str, limit: u64) -> StoreResult<Vec<String>> {
    let mut query = connection_repository::Entity::find()
        .select_only()
        .column(connection_repository::Column::FullNameLower)
        .column(connection_repository::Column::FullName)
        .distinct();
    if !prefix.is_empty() {
        query = query.filter(connection_repository::Column::FullNameLower.starts_with(prefix));
    }
    let rows: Vec<(String, String)> = query
        .order_by_asc(connection_repository::Column::FullNameLower)
        .order_by_asc(connection_repository::Column::FullName)
        .limit(limit)
        .into_tuple()
        .all(db)
        .await?;
    Ok(rows.into_iter().map(|(_, name)| name).collect())
}

fn repo_name(full_name: &str) -> StoreResult<RepoName> {
    RepoName::parse(full_name).map_err(|e| StoreError::Corrupt(format!("repository {full_name:?}: {e}")))
}

fn to_connection(row: connection::Model) -> StoreResult<Connection> {
    let settings: ConnectionSettings = serde_json::from_str(&row.settings)
        .map_err(|e| StoreError::Corrupt(format!("settings of connection {}: {e}", row.id)))?;
    Ok(Connection {
        id: row.id,
        installation_id: InstallationId(row.installation_id),
        account: Account {
            login: row.account_login,
            kind: row.account_type,
            id: row.account_id,
        },
        repository_selection: row.repository_selection,
        settings,
        suspended_at: row.suspended_at,
        deleted_at: row.deleted_at,
        created_at: row.created_at,
        updated_at: row.updated_at,
        agent_secret: row.agent_secret.map(crate::config::Secret::new),
    })
}
