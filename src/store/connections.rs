//! Connection rows and the repositories each installation can see.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use entity::{connection, connection_repository};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set};

use super::{Conn, StoreError, StoreResult};
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
    Ok(with_repositories(db, vec![row]).await?.pop())
}

pub async fn find_by_installation(db: &impl Conn, installation_id: InstallationId) -> StoreResult<Option<Connection>> {
    let Some(row) = connection::Entity::find()
        .filter(connection::Column::InstallationId.eq(installation_id.0))
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    Ok(with_repositories(db, vec![row]).await?.pop())
}

/// Every connection, oldest first.
pub async fn list(db: &impl Conn) -> StoreResult<Vec<Connection>> {
    let rows = connection::Entity::find()
        .order_by_asc(connection::Column::Id)
        .all(db)
        .await?;
    with_repositories(db, rows).await
}

pub async fn insert(
    db: &impl Conn,
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
    db: &impl Conn,
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
    db: &impl Conn,
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
    db: &impl Conn,
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

pub async fn set_agent_secret(db: &impl Conn, id: i64, secret: Option<&str>) -> StoreResult<()> {
    connection::ActiveModel {
        id: Set(id),
        agent_secret: Set(secret.map(str::to_owned)),
        ..Default::default()
    }
    .update(db)
    .await?;
    Ok(())
}

pub async fn set_deleted_at(db: &impl Conn, id: i64, at: DateTime<Utc>) -> StoreResult<()> {
    let model = connection::ActiveModel {
        id: Set(id),
        deleted_at: Set(Some(at)),
        updated_at: Set(at),
        ..Default::default()
    };
    model.update(db).await?;
    Ok(())
}

/// Adds repositories the connection does not list yet; a renamed repository gets its new name.
pub async fn add_repositories(db: &impl Conn, id: i64, repos: &[RepoRef], now: DateTime<Utc>) -> StoreResult<()> {
    for repo in repos {
        let existing = connection_repository::Entity::find()
            .filter(connection_repository::Column::ConnectionId.eq(id))
            .filter(connection_repository::Column::GithubRepoId.eq(repo.github_id))
            .one(db)
            .await?;
        match existing {
            Some(row) if row.full_name == repo.name.as_str() => {}
            Some(row) => {
                let mut model: connection_repository::ActiveModel = row.into();
                model.full_name = Set(repo.name.as_str().to_owned());
                model.full_name_lower = Set(repo.name.key().to_owned());
                model.update(db).await?;
            }
            None => {
                connection_repository::ActiveModel {
                    connection_id: Set(id),
                    github_repo_id: Set(repo.github_id),
                    full_name: Set(repo.name.as_str().to_owned()),
                    full_name_lower: Set(repo.name.key().to_owned()),
                    added_at: Set(now),
                    ..Default::default()
                }
                .insert(db)
                .await?;
            }
        }
    }
    Ok(())
}

pub async fn remove_repositories(db: &impl Conn, id: i64, github_ids: &[i64]) -> StoreResult<()> {
    if github_ids.is_empty() {
        return Ok(());
    }
    connection_repository::Entity::delete_many()
        .filter(connection_repository::Column::ConnectionId.eq(id))
        .filter(connection_repository::Column::GithubRepoId.is_in(github_ids.iter().copied()))
        .exec(db)
        .await?;
    Ok(())
}

async fn with_repositories(db: &impl Conn, rows: Vec<connection::Model>) -> StoreResult<Vec<Connection>> {
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let mut repos: BTreeMap<i64, Vec<RepoName>> = BTreeMap::new();
    if !ids.is_empty() {
        let repo_rows = connection_repository::Entity::find()
            .filter(connection_repository::Column::ConnectionId.is_in(ids))
            .order_by_asc(connection_repository::Column::FullNameLower)
            .all(db)
            .await?;
        for row in repo_rows {
            let name = RepoName::parse(&row.full_name)
                .map_err(|e| StoreError::Corrupt(format!("repository {:?}: {e}", row.full_name)))?;
            repos.entry(row.connection_id).or_default().push(name);
        }
    }
    rows.into_iter()
        .map(|row| {
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
                repositories: repos.remove(&row.id).unwrap_or_default(),
                settings,
                suspended_at: row.suspended_at,
                deleted_at: row.deleted_at,
                created_at: row.created_at,
                updated_at: row.updated_at,
                agent_secret: row.agent_secret.map(crate::config::Secret::new),
            })
        })
        .collect()
}
