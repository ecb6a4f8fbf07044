//! Databases for the benchmark: a fresh one per backend, and a history of a million deploys
//! written straight into shiplog's schema (one `INSERT … SELECT`), as years of use would leave it.

use anyhow::Context;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, DbBackend, Statement};

use crate::payload::{ENVIRONMENTS, REPOSITORIES};

#[derive(Copy, Clone, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }
}

/// A database that exists for one benchmark run.
pub struct BenchDatabase {
    pub backend: Backend,
    pub url: String,
    /// For PostgreSQL: the server URL and the database's name, dropped at the end.
    postgres: Option<(String, String)>,
    _dir: Option<tempfile::TempDir>,
}

impl BenchDatabase {
    /// A fresh database; `purpose` tells apart the ones of one run (`main`, `backfill`).
    pub async fn create(backend: Backend, postgres_server: &str, purpose: &str) -> anyhow::Result<Self> {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir()?;
                let url = format!("sqlite://{}?mode=rwc", dir.path().join("shiplog.db").display());
                Ok(Self {
                    backend,
                    url,
                    postgres: None,
                    _dir: Some(dir),
                })
            }
            Backend::Postgres => {
                let name = format!("shiplog_bench_{}_{purpose}", std::process::id());
                let admin = Database::connect(format!("{postgres_server}/postgres"))
                    .await
                    .with_context(|| format!("connecting to PostgreSQL at {postgres_server}"))?;
                admin
                    .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name}"))
                    .await?;
                admin.execute_unprepared(&format!("CREATE DATABASE {name}")).await?;
                admin.close().await?;
                Ok(Self {
                    backend,
                    url: format!("{postgres_server}/{name}"),
                    postgres: Some((postgres_server.to_owned(), name)),
                    _dir: None,
                })
            }
        }
    }

    /// PostgreSQL: the database's name.
    pub fn postgres_name(&self) -> Option<&str> {
        self.postgres.as_ref().map(|(_, name)| name.as_str())
    }

    pub async fn connect(&self) -> anyhow::Result<DatabaseConnection> {
        Ok(Database::connect(&self.url).await?)
    }

    pub async fn drop_database(self) -> anyhow::Result<()> {
        if let Some((server, name)) = &self.postgres {
            let admin = Database::connect(format!("{server}/postgres")).await?;
            admin
                .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .await?;
            admin.close().await?;
        }
        Ok(())
    }
}

pub async fn count(db: &DatabaseConnection, table: &str) -> anyhow::Result<i64> {
    let row = db
        .query_one(Statement::from_string(
            db.get_database_backend(),
            format!("SELECT COUNT(*) AS n FROM {table}"),
        ))
        .await?
        .context("COUNT returned no row")?;
    Ok(row.try_get::<i64>("", "n")?)
}

/// Adds `rows` deploys to the connection the benchmark's deliveries created: 20 repositories,
/// three environments, one deploy every 30 seconds since 2025-01-01; most superseded, one in
/// fifty failed. Then refreshes the planner's statistics, as autovacuum would.
pub async fn add_deploy_history(db: &DatabaseConnection, rows: u64) -> anyhow::Result<()> {
    let backend = db.get_database_backend();
    let connection_id: i64 = db
        .query_one(Statement::from_string(backend, "SELECT MIN(id) AS id FROM connection"))
        .await?
        .context("no connection row")?
        .try_get("", "id")
        .context("no connection yet: deliver something first")?;
    let environments = ENVIRONMENTS.map(|e| format!("'{e}'"));
    let [production, staging, qa] = environments;
    let columns = "connection_id, repository, repository_key, environment, sha, git_ref, source, \
        github_deployment_id, external_id, version, creator, description, log_url, environment_url, \
        transient_environment, production_environment, status, status_at, status_github_id, deploy_time, \
        completed_at, duration_seconds, superseded_by_id, rollback_target_id, recorded_at, updated_at";
    let sql = match backend {
        DbBackend::Sqlite => format!(
            "INSERT INTO deployment ({columns})
             WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {last}),
             d AS (SELECT i,
                 printf('bench-org/service-%02d', i % {REPOSITORIES}) AS repository,
                 CASE (i / {REPOSITORIES}) % 3 WHEN 0 THEN {production} WHEN 1 THEN {staging} ELSE {qa} END AS environment,
                 strftime('%Y-%m-%dT%H:%M:%S+00:00', 1735689600 + i * 30, 'unixepoch') AS at
               FROM n)
             SELECT {connection_id}, repository, repository, environment,
                 printf('%040x', i * 2654435761), 'main', 'github', 5000000000 + i, NULL, NULL, 'alice',
                 'Deploy from the release pipeline', 'https://ci.example.com/runs/' || i, NULL, 0,
                 environment = {production},
                 CASE WHEN i % 50 = 0 THEN 'failed' ELSE 'superseded' END, at, 6000000000 + i, at,
                 at, 120, NULL, NULL, at, at
             FROM d",
            last = rows.saturating_sub(1),
        ),
        _ => format!(
            "INSERT INTO deployment ({columns})
             SELECT {connection_id}, d.repository, d.repository, d.environment,
                 lpad(to_hex(i * 2654435761), 40, '0'), 'main', 'github', 5000000000 + i, NULL, NULL, 'alice',
                 'Deploy from the release pipeline', 'https://ci.example.com/runs/' || i, NULL, false,
                 d.environment = {production},
                 CASE WHEN i % 50 = 0 THEN 'failed' ELSE 'superseded' END, d.at, 6000000000 + i, d.at,
                 d.at, 120, NULL, NULL, d.at, d.at
             FROM generate_series(0, {last}) AS i,
             LATERAL (SELECT
                 'bench-org/service-' || lpad((i % {REPOSITORIES})::text, 2, '0') AS repository,
                 (ARRAY[{production}, {staging}, {qa}])[(i / {REPOSITORIES}) % 3 + 1] AS environment,
                 timestamptz '2025-01-01 00:00:00+00' + i * interval '30 seconds' AS at) AS d",
            last = rows as i64 - 1,
        ),
    };
    db.execute_unprepared(&sql).await?;
    db.execute_unprepared(match backend {
        DbBackend::Sqlite => "ANALYZE",
        _ => "VACUUM ANALYZE deployment",
    })
    .await?;
    Ok(())
}
