//! Connections: one per GitHub App installation, kept in step with `installation` and
//! `installation_repositories` events, with per-connection settings.
//!
//! A deleted installation keeps its row and history but accepts no further change. An event for
//! an installation shiplog has never seen creates the connection from the payload, so nothing is
//! lost when the `installation.created` delivery was missed.
//!
//! GitHub does not deliver in order. The repository list in an `installation` event is a snapshot
//! of an unknown age, so it only ever adds repositories; only `installation_repositories.removed`
//! takes one away. Otherwise a late `created` would undo an `added` that overtook it. This module
//! does not parse webhook JSON (`github::events` turns it into `crate::events`) and does not
//! know HTTP.
//!
//! An installation may see 100,000 repositories: a [`Connection`] does not carry its list. Hot
//! paths (every deployment webhook, every deploy credential request) ask for one repository by
//! key ([`owns`]); views show a count and the first [`REPOSITORIES_SHOWN`] names, and
//! [`repositories`] reads the rest a page at a time.

use chrono::{DateTime, Utc};
use serde::Serialize;

pub mod cache;
pub mod environments;
mod patterns;
pub mod rules;
mod settings;

pub use patterns::EnvironmentPattern;
pub use rules::WorkflowRule;
pub use settings::ConnectionSettings;

use crate::events::{InstallationChange, InstallationEvent, InstallationSnapshot, RepositoriesChanged};
use crate::store::connections::{self as rows, InstallationFields};
use crate::store::{Conn, Store, StoreResult, Writer};
use crate::types::{Account, InstallationId, RepoName, RepoRef, Scope};
use crate::validation::Invalid;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Connection {
    pub id: i64,
    pub installation_id: InstallationId,
    pub account: Account,
    pub repository_selection: String,
    pub settings: ConnectionSettings,
    pub suspended_at: Option<DateTime<Utc>>,
    pub deleted_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The connection's own agent secret, if it has one; never shown.
    pub agent_secret: Option<crate::config::Secret>,
}

impl Connection {
    /// The agent this connection's calls go to: its own `agent_url` and secret where set, else
    /// `SHIPLOG_AGENT_URL` / `SHIPLOG_AGENT_SECRET`. `None` when either part is missing.
    pub fn agent(&self, default: Option<&crate::config::AgentConfig>) -> Option<crate::config::AgentConfig> {
        let url = self
            .settings
            .agent_url
            .clone()
            .or_else(|| default.map(|d| d.url.clone()))?;
        let secret = self
            .agent_secret
            .clone()
            .or_else(|| default.map(|d| d.secret.clone()))?;
        Some(crate::config::AgentConfig { url, secret })
    }

    /// `active`, `suspended` or `deleted`.
    pub fn status(&self) -> &'static str {
        if self.deleted_at.is_some() {
            "deleted"
        } else if self.suspended_at.is_some() {
            "suspended"
        } else {
            "active"
        }
    }

    /// The JSON shape shown by the admin API and the CLI, with a sample of the repositories.
    /// Holds no secret.
    pub fn view(&self, repositories: RepositorySample) -> ConnectionView<'_> {
        ConnectionView {
            id: self.id,
            installation_id: self.installation_id,
            account: &self.account,
            status: self.status(),
            suspended: self.suspended_at.is_some(),
            suspended_at: self.suspended_at,
            deleted_at: self.deleted_at,
            repository_selection: &self.repository_selection,
            repository_count: repositories.count,
            repositories: repositories.first.iter().map(|r| r.as_str().to_owned()).collect(),
            settings: &self.settings,
            agent_secret_set: self.agent_secret.is_some(),
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

/// How many names a connection's view shows; the rest are read with [`repositories`].
pub const REPOSITORIES_SHOWN: u64 = 100;

/// A connection's repository count and its first [`REPOSITORIES_SHOWN`] names.
#[derive(Debug, Clone, Default)]
pub struct RepositorySample {
    pub count: u64,
    pub first: Vec<RepoName>,
}

#[derive(Debug, Serialize)]
pub struct ConnectionView<'a> {
    pub id: i64,
    pub installation_id: InstallationId,
    pub account: &'a Account,
    pub status: &'static str,
    pub suspended: bool,
    pub suspended_at: Option<DateTime<Utc>>,
    pub deleted_at: Option<DateTime<Utc>>,
    pub repository_selection: &'a str,
    pub repository_count: u64,
    /// The first [`REPOSITORIES_SHOWN`] in name order.
    pub repositories: Vec<String>,
    pub settings: &'a ConnectionSettings,
    pub agent_secret_set: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What an installation event did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// The connection was created or changed.
    Changed { connection_id: i64 },
    /// Nothing changed, for the reason given.
    Skipped { connection_id: i64, reason: String },
}

pub async fn list(store: &Store) -> StoreResult<Vec<Connection>> {
    rows::list(store.conn()).await
}

pub async fn get(store: &Store, id: i64) -> StoreResult<Option<Connection>> {
    rows::find(store.conn(), id).await
}

/// The live connection a repository belongs to: one whose installation lists it, else one whose
/// account owns it.
pub async fn owning(store: &Store, repository: &RepoName) -> StoreResult<Option<Connection>> {
    rows::owning(store.conn(), repository.key(), repository.owner()).await
}

/// Why [`connection_for`] found no connection to act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoConnection {
    /// The caller is limited to a connection that does not exist (any more).
    ScopeGone,
    /// The caller is limited to `connection`, which does not have the repository.
    NotInScope { connection: Box<Connection> },
    /// The caller is limited to a connection whose installation was deleted: it accepts no change.
    Deleted,
    /// No live connection has the repository.
    Unknown,
}

/// Which connection a caller may act on for `repository`. A caller limited to one connection
/// (`scope`, a deploy credential's) gets it when it has the repository; a caller that may act on
/// every connection gets the live connection that has it ([`owning`]).
pub async fn connection_for(
    store: &Store,
    scope: Scope,
    repository: &RepoName,
) -> StoreResult<Result<Connection, NoConnection>> {
    let id = match scope {
        Scope::All => return Ok(owning(store, repository).await?.ok_or(NoConnection::Unknown)),
        Scope::Connection(id) => id,
        Scope::Nothing => return Ok(Err(NoConnection::ScopeGone)),
    };
    let Some(connection) = get(store, id.0).await? else {
        return Ok(Err(NoConnection::ScopeGone));
    };
    if connection.deleted_at.is_some() {
        return Ok(Err(NoConnection::Deleted));
    }
    if owns(store, &connection, repository).await? {
        Ok(Ok(connection))
    } else {
        Ok(Err(NoConnection::NotInScope {
            connection: Box::new(connection),
        }))
    }
}

/// Whether deploys of `repository` belong to `connection`: its account owns the repository, or
/// its installation lists it (one lookup by key).
pub async fn owns(store: &Store, connection: &Connection, repository: &RepoName) -> StoreResult<bool> {
    Ok(repository.owner().eq_ignore_ascii_case(&connection.account.login)
        || rows::repository(store.conn(), connection.id, repository.key())
            .await?
            .is_some())
}

/// The connection's repository count and its first [`REPOSITORIES_SHOWN`] names.
pub async fn repository_sample(store: &Store, id: i64) -> StoreResult<RepositorySample> {
    Ok(RepositorySample {
        count: rows::repository_count(store.conn(), id).await?,
        first: rows::repositories(store.conn(), id, None, REPOSITORIES_SHOWN).await?,
    })
}

/// Each connection's first repository in name order (case-insensitive), by connection id.
pub async fn first_repositories(store: &Store) -> StoreResult<std::collections::HashMap<i64, RepoName>> {
    rows::first_repositories(store.conn()).await
}

/// Up to `limit` of a connection's repositories in name order (case-insensitive), after the one
/// named `after`.
pub async fn repositories(store: &Store, id: i64, after: Option<&RepoName>, limit: u64) -> StoreResult<Vec<RepoName>> {
    rows::repositories(store.conn(), id, after.map(RepoName::key), limit).await
}

/// Up to `limit` repository names of any connection starting with `prefix` (any case), for a
/// search field's suggestions.
pub async fn repository_suggestions(store: &Store, prefix: &str, limit: u64) -> StoreResult<Vec<String>> {
    rows::repository_suggestions(store.conn(), &prefix.to_lowercase(), limit).await
}

pub async fn get_by_installation(store: &Store, installation_id: InstallationId) -> StoreResult<Option<Connection>> {
    rows::find_by_installation(store.conn(), installation_id).await
}

/// The connection of an installation, if shiplog knows it (for recording a delivery).
pub async fn id_for_installation(db: &impl Conn, installation_id: InstallationId) -> StoreResult<Option<i64>> {
    Ok(rows::find_by_installation(db, installation_id).await?.map(|c| c.id))
}

/// The connection that takes an event about `repository` (a deployment, a pull request), or why
/// the event is skipped. An installation shiplog has not seen gets its connection from the
/// repository's owner; a repository the connection does not list yet is added.
pub async fn for_repository_event(
    db: &impl Writer,
    installation_id: InstallationId,
    owner: &Account,
    repository: &RepoRef,
    now: DateTime<Utc>,
) -> StoreResult<Result<Connection, Applied>> {
    let existing = rows::find_by_installation(db, installation_id).await?;
    if let Some(skipped) = refuse_if_deleted(existing.as_ref()) {
        return Ok(Err(skipped));
    }
    let id = match &existing {
        Some(connection) if connection.suspended_at.is_some() => {
            return Ok(Err(Applied::Skipped {
                connection_id: connection.id,
                reason: format!("installation {installation_id} is suspended"),
            }))
        }
        Some(connection) => {
            if rows::repository(db, connection.id, repository.name.key())
                .await?
                .is_some()
            {
                return Ok(Ok(connection.clone()));
            }
            connection.id
        }
        None => {
            let fields = InstallationFields {
                installation_id,
                account: owner,
                repository_selection: "selected",
            };
            rows::insert(db, fields, &ConnectionSettings::default(), now).await?
        }
    };
    rows::add_repositories(db, id, std::slice::from_ref(repository), now).await?;
    let connection = rows::find(db, id)
        .await?
        .ok_or_else(|| crate::store::StoreError::Corrupt(format!("connection {id} vanished inside its transaction")))?;
    Ok(Ok(connection))
}

/// Changes settings with a JSON patch; `Ok(Err(invalid))` names every invalid field.
pub async fn update_settings(
    store: &Store,
    id: i64,
    patch: &serde_json::Value,
    now: DateTime<Utc>,
) -> StoreResult<Option<Result<Connection, Invalid>>> {
    let tx = store.begin().await?;
    let Some(connection) = rows::find(&tx, id).await? else {
        return Ok(None);
    };
    let settings = match connection.settings.patched(patch) {
        Ok(settings) => settings,
        Err(errors) => return Ok(Some(Err(errors))),
    };
    let secret = ConnectionSettings::agent_secret_change(patch);
    rows::set_settings(&tx, id, &settings, now).await?;
    if crate::drift::order_changed(&connection.settings, &settings) {
        crate::drift::enqueue_for_connection(&tx, id, now).await?;
    }
    if let Some(secret) = secret {
        rows::set_agent_secret(&tx, id, secret.as_deref()).await?;
    }
    let updated = rows::find(&tx, id).await?;
    tx.commit().await?;
    Ok(updated.map(Ok))
}

/// Applies an `installation` event. Call inside the delivery's transaction.
pub async fn apply_installation_event(
    db: &impl Writer,
    event: &InstallationEvent,
    now: DateTime<Utc>,
) -> StoreResult<Applied> {
    let snapshot = &event.installation;
    let existing = rows::find_by_installation(db, snapshot.installation_id).await?;
    if let Some(skipped) = refuse_if_deleted(existing.as_ref()) {
        return Ok(skipped);
    }
    let id = upsert(db, existing.as_ref(), snapshot, now).await?;
    match event.change {
        InstallationChange::Deleted => {
            rows::set_deleted_at(db, id, now).await?;
            return Ok(Applied::Changed { connection_id: id });
        }
        InstallationChange::Suspended => {
            rows::set_suspended_at(db, id, Some(snapshot.suspended_at.unwrap_or(now)), now).await?;
        }
        InstallationChange::Unsuspended => rows::set_suspended_at(db, id, None, now).await?,
        InstallationChange::Created | InstallationChange::PermissionsAccepted => {
            if existing.is_some() && snapshot.suspended_at.is_none() {
                rows::set_suspended_at(db, id, None, now).await?;
            }
        }
    }
    // The list in an installation event is a snapshot that may be older than an
    // `installation_repositories` event delivered before it, so it only adds (see module docs).
    if let Some(repositories) = &event.repositories {
        rows::add_repositories(db, id, repositories, now).await?;
    }
    Ok(Applied::Changed { connection_id: id })
}

/// Applies an `installation_repositories` event. Call inside the delivery's transaction.
pub async fn apply_repositories_changed(
    db: &impl Writer,
    event: &RepositoriesChanged,
    now: DateTime<Utc>,
) -> StoreResult<Applied> {
    let existing = rows::find_by_installation(db, event.installation.installation_id).await?;
    if let Some(skipped) = refuse_if_deleted(existing.as_ref()) {
        return Ok(skipped);
    }
    let id = upsert(db, existing.as_ref(), &event.installation, now).await?;
    rows::add_repositories(db, id, &event.added, now).await?;
    let removed: Vec<i64> = event.removed.iter().map(|r| r.github_id).collect();
    rows::remove_repositories(db, id, &removed).await?;
    Ok(Applied::Changed { connection_id: id })
}

fn refuse_if_deleted(existing: Option<&Connection>) -> Option<Applied> {
    let connection = existing?;
    let deleted_at = connection.deleted_at?;
    Some(Applied::Skipped {
        connection_id: connection.id,
        reason: format!(
            "installation {} was deleted at {}; a deleted connection accepts no changes",
            connection.installation_id,
            deleted_at.to_rfc3339()
        ),
    })
}

async fn upsert(
    db: &impl Writer,
    existing: Option<&Connection>,
    snapshot: &InstallationSnapshot,
    now: DateTime<Utc>,
) -> StoreResult<i64> {
    let fields = InstallationFields {
        installation_id: snapshot.installation_id,
        account: &snapshot.account,
        repository_selection: &snapshot.repository_selection,
    };
    match existing {
        Some(connection) => {
            rows::update_installation(db, connection.id, fields, now).await?;
            Ok(connection.id)
        }
        None => {
            let id = rows::insert(db, fields, &ConnectionSettings::default(), now).await?;
            if let Some(suspended_at) = snapshot.suspended_at {
                rows::set_suspended_at(db, id, Some(suspended_at), now).await?;
            }
            Ok(id)
        }
    }
}
