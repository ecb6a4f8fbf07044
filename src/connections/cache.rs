//! The webhook intake's copy of connections, their settings and their repositories, so a
//! deployment delivery reads none of them from the database.
//!
//! The copy is as good as `connection_cache_version`, a number the database raises by trigger on
//! every change of a connection or its repository list (migration 17): the intake reads it once
//! per batch on SQLite and once per delivery on PostgreSQL, inside the transaction that applies
//! the delivery, and a number other than the one the copy was read at empties the copy. Nothing
//! that changes a connection has to remember the cache, on this replica or another.
//!
//! Only connections that take events are kept (not deleted, not suspended), with the
//! repositories seen in their deliveries. Anything else is a miss: the intake's general path
//! answers it (creating the connection or the repository row, or saying why it is skipped).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

use super::Connection;
use crate::store::connections as rows;
use crate::store::{Conn, StoreResult};
use crate::types::InstallationId;

#[derive(Debug, Default)]
pub struct ConnectionCache {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// The version the copies were read at.
    version: Option<i64>,
    by_installation: HashMap<i64, Entry>,
}

#[derive(Debug)]
struct Entry {
    connection: Arc<Connection>,
    repositories: HashSet<String>,
}

impl ConnectionCache {
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The database holds `version` now: a copy read at another one is dropped.
    pub fn observe(&self, version: i64) {
        let mut state = self.state();
        if state.version != Some(version) {
            state.by_installation.clear();
            state.version = Some(version);
        }
    }

    fn get(&self, installation_id: InstallationId, repository_key: &str) -> Option<Arc<Connection>> {
        let state = self.state();
        let entry = state.by_installation.get(&installation_id.0)?;
        entry
            .repositories
            .contains(repository_key)
            .then(|| entry.connection.clone())
    }

    fn remember(&self, version: i64, connection: Connection, repository_key: &str) -> Arc<Connection> {
        let mut state = self.state();
        if state.version != Some(version) {
            return Arc::new(connection);
        }
        let installation = connection.installation_id.0;
        let entry = state.by_installation.entry(installation).or_insert_with(|| Entry {
            connection: Arc::new(connection),
            repositories: HashSet::new(),
        });
        entry.repositories.insert(repository_key.to_owned());
        entry.connection.clone()
    }
}

/// The connection that takes events of `repository_key` for this installation, from the copy or
/// read into it, when it exists, takes events and lists the repository; `None` otherwise (the
/// general path decides). `version` is the one the caller read in its transaction
/// ([`ConnectionCache::observe`]d already); `db` reads what the copy lacks.
pub async fn accepting(
    cache: &ConnectionCache,
    db: &impl Conn,
    version: i64,
    installation_id: InstallationId,
    repository_key: &str,
) -> StoreResult<Option<Arc<Connection>>> {
    if let Some(hit) = cache.get(installation_id, repository_key) {
        return Ok(Some(hit));
    }
    let Some(connection) = rows::find_by_installation(db, installation_id).await? else {
        return Ok(None);
    };
    if connection.deleted_at.is_some() || connection.suspended_at.is_some() {
        return Ok(None);
    }
    if rows::repository(db, connection.id, repository_key).await?.is_none() {
        return Ok(None);
    }
    Ok(Some(cache.remember(version, connection, repository_key)))
}
