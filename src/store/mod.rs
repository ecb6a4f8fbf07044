//! The database: the only module that uses `entity`. It maps rows to shiplog's own types and back.
//!
//! Functions take any `ConnectionTrait`, so callers choose whether a write joins a transaction
//! ([`Store::begin`]) or stands alone. Errors say whether the database is unavailable (the caller
//! answers 503 and the sender retries), a uniqueness rule was hit, or something else went wrong.

pub mod connections;
pub mod deliveries;

use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseBackend, DatabaseConnection, DatabaseTransaction, DbErr,
    RuntimeErr, SqlErr, TransactionTrait,
};

pub use sea_orm::ConnectionTrait as Conn;

/// A transaction; commit it with `commit()`, or drop it to roll back.
pub type Tx = DatabaseTransaction;

/// Postgres advisory-lock key that serialises migrations between replicas ("shiplog" in ASCII).
const MIGRATION_LOCK_KEY: i64 = 0x7368_6970_6c6f_67;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database unavailable: {0}")]
    Unavailable(#[source] DbErr),
    #[error("uniqueness rule violated: {0}")]
    Conflict(String),
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
                code.starts_with("08") || code.starts_with("57P0") || code == "5" || code == "6"
            }
            _ => false,
        },
        _ => false,
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// The database handle. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    db: DatabaseConnection,
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
        let db = Database::connect(options).await.map_err(StoreError::from)?;
        Ok(Self { db })
    }

    /// Applies pending migrations. On PostgreSQL, under a transaction-scoped advisory lock, so
    /// replicas starting together apply them once, one after the other.
    pub async fn migrate(&self) -> StoreResult<()> {
        match self.db.get_database_backend() {
            DatabaseBackend::Postgres => {
                let txn = self.db.begin().await?;
                txn.execute_unprepared(&format!("SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})"))
                    .await?;
                Migrator::up(&txn, None).await?;
                txn.commit().await?;
            }
            _ => Migrator::up(&self.db, None).await?,
        }
        Ok(())
    }

    /// Readiness: the database answers a query.
    pub async fn ping(&self) -> StoreResult<()> {
        self.db.execute_unprepared("SELECT 1").await?;
        Ok(())
    }

    pub async fn begin(&self) -> StoreResult<Tx> {
        Ok(self.db.begin().await?)
    }

    /// For reads and single writes outside a transaction.
    pub fn conn(&self) -> &DatabaseConnection {
        &self.db
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
