//! The database: the only module that uses `entity`. It maps rows to shiplog's own types and back.
//!
//! Reads take any [`Conn`] (the pool from [`Store::conn`], or a transaction). Writes take a
//! [`Writer`]: a [`Tx`] from [`Store::begin`] or a [`Savepoint`] in one, which nothing else can
//! make, so every write passes the write gate and starts as a writer (see [`Store::begin`]);
//! a write through the read handle does not compile. Errors say whether the database is
//! unavailable (the caller answers 503 and the sender retries), a uniqueness rule was hit, or
//! something else went wrong.

pub mod ancestry;
pub mod app_setup;
pub mod backfills;
pub mod board;
pub mod commits;
pub mod connections;
pub mod credentials;
pub mod deliveries;
pub mod delivery;
pub mod deployments;
pub mod drift;
pub mod hot;
pub mod idempotency;
pub mod job_queue;
pub mod jobs;
pub mod monitoring;
pub mod pull_requests;
pub mod recovery;
pub mod sessions;
pub mod shipments;
pub mod triggers;
pub mod used_signatures;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseBackend, DatabaseConnection, DatabaseTransaction, DbErr,
    ExecResult, QueryResult, RuntimeErr, SqlErr, Statement, TransactionTrait,
};
use tokio::sync::{Mutex, OwnedMutexGuard};

pub use sea_orm::ConnectionTrait as Conn;

mod sealed {
    pub trait Sealed {}
}

/// A handle writes may go through: a [`Tx`] or a [`Savepoint`] in one. Sealed: the read handle
/// ([`Store::conn`]) is not one, so a write outside a write transaction does not compile.
pub trait Writer: Conn + sealed::Sealed {}

impl sealed::Sealed for Tx {}
impl Writer for Tx {}
impl sealed::Sealed for Savepoint<'_> {}
impl Writer for Savepoint<'_> {}

/// A write transaction; commit it with `commit()`, or drop it to roll back.
///
/// On SQLite it also holds the store's write gate: one write transaction at a time per process,
/// the others queue on the gate in order instead of polling SQLite's lock through the busy
/// timeout (which sleeps up to 100 ms between attempts). Processes sharing a file still meet at
/// SQLite's own lock.
pub struct Tx {
    // Declared first so it drops (rolls back) before the gate opens.
    inner: DatabaseTransaction,
    _gate: Option<OwnedMutexGuard<()>>,
    /// Statements sent and rows read through this handle (not its savepoints).
    statements: AtomicU64,
    rows: AtomicU64,
}

impl Tx {
    pub async fn commit(self) -> StoreResult<()> {
        Ok(self.inner.commit().await?)
    }

    pub async fn rollback(self) -> StoreResult<()> {
        Ok(self.inner.rollback().await?)
    }

    /// (statements sent, rows read) through this transaction so far: what tests use to show that
    /// a path's cost does not grow with the data.
    pub fn cost(&self) -> (u64, u64) {
        (
            self.statements.load(Ordering::Relaxed),
            self.rows.load(Ordering::Relaxed),
        )
    }

    /// A savepoint inside this transaction: commit it to keep its writes, drop or roll it back
    /// to undo only them. It borrows the transaction, so it cannot outlive the gate.
    pub async fn savepoint(&self) -> StoreResult<Savepoint<'_>> {
        Ok(Savepoint {
            inner: self.inner.begin().await?,
            _tx: std::marker::PhantomData,
        })
    }
}

/// A savepoint in a [`Tx`] ([`Tx::savepoint`]).
pub struct Savepoint<'a> {
    inner: DatabaseTransaction,
    _tx: std::marker::PhantomData<&'a Tx>,
}

impl Savepoint<'_> {
    pub async fn commit(self) -> StoreResult<()> {
        Ok(self.inner.commit().await?)
    }

    pub async fn rollback(self) -> StoreResult<()> {
        Ok(self.inner.rollback().await?)
    }
}

#[sea_orm::prelude::async_trait::async_trait]
impl ConnectionTrait for Savepoint<'_> {
    fn get_database_backend(&self) -> DatabaseBackend {
        self.inner.get_database_backend()
    }

    async fn execute(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        self.inner.execute(stmt).await
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        self.inner.execute_unprepared(sql).await
    }

    async fn query_one(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        self.inner.query_one(stmt).await
    }

    async fn query_all(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        self.inner.query_all(stmt).await
    }

    fn support_returning(&self) -> bool {
        self.inner.support_returning()
    }
}

#[sea_orm::prelude::async_trait::async_trait]
impl ConnectionTrait for Tx {
    fn get_database_backend(&self) -> DatabaseBackend {
        self.inner.get_database_backend()
    }

    async fn execute(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        self.statements.fetch_add(1, Ordering::Relaxed);
        self.inner.execute(stmt).await
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        self.statements.fetch_add(1, Ordering::Relaxed);
        self.inner.execute_unprepared(sql).await
    }

    async fn query_one(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        self.statements.fetch_add(1, Ordering::Relaxed);
        let row = self.inner.query_one(stmt).await?;
        self.rows.fetch_add(u64::from(row.is_some()), Ordering::Relaxed);
        Ok(row)
    }

    async fn query_all(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        self.statements.fetch_add(1, Ordering::Relaxed);
        let rows = self.inner.query_all(stmt).await?;
        self.rows.fetch_add(rows.len() as u64, Ordering::Relaxed);
        Ok(rows)
    }

    fn support_returning(&self) -> bool {
        self.inner.support_returning()
    }
}

/// How often opening a SQLite file that another process is initialising is tried.
const SQLITE_OPEN_ATTEMPTS: u64 = 10;

/// The table SQLite transactions write to first to take the write lock (migrations, `begin`).
const SQLITE_LOCK_TABLE: &str = "CREATE TABLE IF NOT EXISTS shiplog_migration_lock (id INTEGER PRIMARY KEY)";

/// Postgres advisory-lock key that serialises migrations between replicas ("shiplog" in ASCII).
const MIGRATION_LOCK_KEY: i64 = 0x0073_6869_706c_6f67;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database unavailable: {0}")]
    Unavailable(#[source] DbErr),
    #[error("uniqueness rule violated: {0}")]
    Conflict(String),
    /// PostgreSQL ended the transaction to resolve a deadlock or a serialization failure with a
    /// concurrent one: the whole transaction may be tried again.
    #[error("transaction lost to a concurrent one: {0}")]
    Contention(#[source] DbErr),
    #[error("stored data is not what shiplog wrote: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Db(#[source] DbErr),
}

impl From<DbErr> for StoreError {
    fn from(error: DbErr) -> Self {
        if let Some(SqlErr::UniqueConstraintViolation(message)) = error.sql_err() {
            return Self::Conflict(message);
        }
        if is_contention(&error) {
            return Self::Contention(error);
        }
        if is_unavailable(&error) {
            return Self::Unavailable(error);
        }
        Self::Db(error)
    }
}

fn is_unavailable(error: &DbErr) -> bool {
    use sea_orm::sqlx::Error as Sqlx;
    match error {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => true,
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => match e {
            Sqlx::Io(_) | Sqlx::PoolTimedOut | Sqlx::PoolClosed | Sqlx::WorkerCrashed | Sqlx::Tls(_) => true,
            Sqlx::Database(db) => {
                let code = db.code().unwrap_or_default();
                // Postgres: connection exceptions (08…), shutdown (57P0…); SQLite: busy/locked (5, 6).
                // SQLite's extended codes keep the primary one in their low byte (517 is
                // SQLITE_BUSY_SNAPSHOT, 261 SQLITE_BUSY_RECOVERY, 262 SQLITE_LOCKED_SHAREDCACHE).
                // PostgreSQL's SQLSTATEs have five characters, SQLite's codes at most four digits.
                let sqlite_busy = code.len() < 5 && code.parse::<i32>().is_ok_and(|c| matches!(c & 0xff, 5 | 6));
                code.starts_with("08") || code.starts_with("57P0") || sqlite_busy
            }
            _ => false,
        },
        _ => false,
    }
}

/// Deadlock detected (40P01) or serialization failure (40001).
fn is_contention(error: &DbErr) -> bool {
    use sea_orm::sqlx::Error as Sqlx;
    match error {
        DbErr::Exec(RuntimeErr::SqlxError(Sqlx::Database(db)))
        | DbErr::Query(RuntimeErr::SqlxError(Sqlx::Database(db))) => {
            matches!(db.code().as_deref(), Some("40P01" | "40001"))
        }
        _ => false,
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// A statement for `backend` from SQL written with SQLite's parameters (`?`), numbered for
/// PostgreSQL by [`postgres_parameters`].
pub(crate) fn statement(
    backend: sea_orm::DatabaseBackend,
    sql: &str,
    values: Vec<sea_orm::Value>,
) -> sea_orm::Statement {
    let sql = match backend {
        sea_orm::DatabaseBackend::Postgres => postgres_parameters(sql),
        _ => sql.to_owned(),
    };
    sea_orm::Statement::from_sql_and_values(backend, sql, values)
}

/// SQL written with SQLite's parameters as PostgreSQL's: a bare `?` is numbered in order
/// (`$1, $2, …`), `?N` becomes `$N`; text inside single quotes is left alone.
pub(crate) fn postgres_parameters(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut bare = 0;
    let mut quoted = false;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                quoted = !quoted;
                out.push(c);
            }
            '?' if !quoted => {
                out.push('$');
                if !chars.peek().is_some_and(char::is_ascii_digit) {
                    bare += 1;
                    out.push_str(&bare.to_string());
                }
            }
            _ => out.push(c),
        }
    }
    out
}

/// The database handle. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    db: DatabaseConnection,
    /// SQLite only: see [`Tx`].
    write_gate: Option<Arc<Mutex<()>>>,
}

impl Store {
    /// Connects to SQLite (WAL mode) or PostgreSQL, as the URL says.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        let mut options = ConnectOptions::new(url.to_owned());
        options
            .sqlx_logging(false)
            .connect_timeout(Duration::from_secs(5))
            .acquire_timeout(Duration::from_secs(5))
            .map_sqlx_sqlite_opts(|o| {
                o.journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Full)
                    .busy_timeout(Duration::from_secs(5))
                    .foreign_keys(true)
            });
        if url.starts_with("sqlite:") {
            // One writer at a time is all SQLite allows; a small pool keeps readers concurrent.
            options.max_connections(8).min_connections(1);
        }
        let is_sqlite = url.starts_with("sqlite:");
        let mut attempt = 0;
        loop {
            attempt += 1;
            match Database::connect(options.clone()).await.map_err(StoreError::from) {
                Ok(db) => {
                    if is_sqlite {
                        // Also what `begin` writes to first (see there).
                        db.execute_unprepared(SQLITE_LOCK_TABLE).await?;
                    }
                    let write_gate = is_sqlite.then(|| Arc::new(Mutex::new(())));
                    return Ok(Self { db, write_gate });
                }
                // Switching a new file to WAL needs an exclusive lock that SQLite's busy timeout
                // cannot wait for; another process opening the same file at once wins, we retry.
                Err(StoreError::Unavailable(_)) if is_sqlite && attempt < SQLITE_OPEN_ATTEMPTS => {
                    tokio::time::sleep(Duration::from_millis(50 * attempt)).await;
                }
                Err(other) => return Err(other),
            }
        }
    }

    /// Applies pending migrations in one transaction that first takes a lock, so processes
    /// starting together apply them once, one after the other. On PostgreSQL the lock is a
    /// transaction-scoped advisory lock; on SQLite, a write to a lock table as the first
    /// statement takes the database's write lock (waiting through the busy timeout).
    pub async fn migrate(&self) -> StoreResult<()> {
        let backend = self.db.get_database_backend();
        if backend == DatabaseBackend::Sqlite {
            self.db.execute_unprepared(SQLITE_LOCK_TABLE).await?;
        }
        let txn = self.db.begin().await?;
        let lock = match backend {
            DatabaseBackend::Postgres => format!("SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})"),
            _ => "INSERT OR REPLACE INTO shiplog_migration_lock (id) VALUES (1)".to_owned(),
        };
        txn.execute_unprepared(&lock).await?;
        Migrator::up(&txn, None).await?;
        txn.commit().await?;
        Ok(())
    }

    /// Readiness: the database answers a query.
    pub async fn ping(&self) -> StoreResult<()> {
        self.db.execute_unprepared("SELECT 1").await?;
        Ok(())
    }

    /// A write transaction, the only way to a [`Writer`]. On SQLite it first passes the write
    /// gate, then takes the database's write lock at once with a write statement that changes
    /// nothing: the effect of `BEGIN IMMEDIATE`, which sea-orm cannot issue (its `begin` always
    /// sends a plain `BEGIN`). A transaction that reads before it writes therefore never has to
    /// upgrade its lock: in WAL mode an upgrade after another connection committed fails at once
    /// (`SQLITE_BUSY_SNAPSHOT`, extended code 517) instead of waiting.
    pub async fn begin(&self) -> StoreResult<Tx> {
        let gate = match &self.write_gate {
            Some(gate) => Some(gate.clone().lock_owned().await),
            None => None,
        };
        let inner = self.db.begin().await?;
        if gate.is_some() {
            inner
                .execute_unprepared("DELETE FROM shiplog_migration_lock WHERE 0")
                .await?;
        }
        Ok(Tx {
            inner,
            _gate: gate,
            statements: AtomicU64::new(0),
            rows: AtomicU64::new(0),
        })
    }

    /// SQLite: the write gate every write transaction of this process passes ([`Store::begin`]);
    /// the intake writer holds it around its own connection's transactions too.
    pub fn write_gate(&self) -> Option<Arc<Mutex<()>>> {
        self.write_gate.clone()
    }

    /// SQLite: the database file, for a second connection to the same database (the intake
    /// writer's); `None` on PostgreSQL and for a database that lives only in memory.
    pub async fn sqlite_file(&self) -> StoreResult<Option<std::path::PathBuf>> {
        if !self.is_sqlite() {
            return Ok(None);
        }
        let row = self
            .db
            .query_one(Statement::from_string(
                DatabaseBackend::Sqlite,
                "SELECT file FROM pragma_database_list WHERE name = 'main'",
            ))
            .await?;
        let file: Option<String> = match row {
            Some(row) => row.try_get_by_index(0)?,
            None => None,
        };
        Ok(file.filter(|f| !f.is_empty()).map(std::path::PathBuf::from))
    }

    /// The read handle (the pool). Store functions that write do not accept it.
    pub fn conn(&self) -> &DatabaseConnection {
        &self.db
    }

    pub fn is_sqlite(&self) -> bool {
        self.db.get_database_backend() == DatabaseBackend::Sqlite
    }

    pub fn backend_name(&self) -> &'static str {
        match self.db.get_database_backend() {
            DatabaseBackend::Postgres => "postgres",
            DatabaseBackend::Sqlite => "sqlite",
            DatabaseBackend::MySql => "mysql",
        }
    }

    pub async fn close(self) {
        let _ = self.db.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::postgres_parameters;

    #[test]
    fn numbered_parameters_become_dollars_and_nothing_else_changes() {
        assert_eq!(
            postgres_parameters("VALUES (?1, ?12, '?') WHERE a = ?3"),
            "VALUES ($1, $12, '?') WHERE a = $3"
        );
    }

    #[test]
    fn bare_parameters_are_numbered_in_order() {
        assert_eq!(
            postgres_parameters("UPDATE job SET a = ?, b = ? WHERE id = ?"),
            "UPDATE job SET a = $1, b = $2 WHERE id = $3"
        );
    }
}
