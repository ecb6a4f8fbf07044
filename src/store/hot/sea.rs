//! [`HotRows`] on a sea-orm [`Writer`]: PostgreSQL's per-delivery transaction (and SQLite's, in
//! the tests that pin both engines to the same answers). Same SQL as the SQLite writer's.

use chrono::{DateTime, Utc};
use sea_orm::{QueryResult, Statement, Value};

use super::{DeliveryRow, DeployHead, HotRows, JobRow, LiveRow, ReportChange};
use crate::deploys::{DeployStatus, NewDeploy, StatusEntry};
use crate::store::{deployments, Conn, StoreError, StoreResult, Writer};

/// The hot path's statements on a transaction or savepoint.
pub struct SeaRows<'w, W> {
    db: &'w W,
}

impl<'w, W: Writer> SeaRows<'w, W> {
    pub fn new(db: &'w W) -> Self {
        Self { db }
    }

    fn statement(&self, sql: &str, values: Vec<Value>) -> Statement {
        crate::store::statement(self.db.get_database_backend(), sql, values)
    }
}

fn text(value: Option<&str>) -> Value {
    value.map(str::to_owned).into()
}

fn get<T: sea_orm::TryGetable>(row: &QueryResult, index: usize) -> StoreResult<T> {
    row.try_get_by_index(index).map_err(StoreError::from)
}

impl<W: Writer> HotRows for SeaRows<'_, W> {
    async fn lock_environment(
        &mut self,
        connection_id: i64,
        repository_key: &str,
        environment: &str,
    ) -> StoreResult<()> {
        deployments::lock_environment(self.db, connection_id, repository_key, environment).await
    }

    async fn upsert_github_deploy(&mut self, new: &NewDeploy, now: DateTime<Utc>) -> StoreResult<DeployHead> {
        let statement = self.statement(
            super::UPSERT_GITHUB_DEPLOY,
            vec![
                new.connection_id.0.into(),
                new.repository.as_str().into(),
                new.repository.key().into(),
                new.environment.as_str().into(),
                new.sha.as_str().into(),
                text(new.git_ref.as_deref()),
                new.github_deployment_id.into(),
                text(new.creator.as_deref()),
                text(new.description.as_deref()),
                new.transient_environment.into(),
                new.production_environment.into(),
                new.deploy_time.into(),
                now.into(),
            ],
        );
        let row = self
            .db
            .query_one(statement)
            .await?
            .ok_or_else(|| StoreError::Corrupt("the deploy upsert returned no row".to_owned()))?;
        let id: i64 = get(&row, 0)?;
        let status: String = get(&row, 5)?;
        Ok(DeployHead {
            id,
            repository: get(&row, 1)?,
            repository_key: get(&row, 2)?,
            environment: get(&row, 3)?,
            sha: get(&row, 4)?,
            status: DeployStatus::parse(&status)
                .ok_or_else(|| StoreError::Corrupt(format!("deployment {id}: unknown status {status:?}")))?,
            status_at: get(&row, 6)?,
            status_github_id: get(&row, 7)?,
            deploy_time: get(&row, 8)?,
            github_run_id: get(&row, 9)?,
            backfilled: get(&row, 10)?,
        })
    }

    async fn insert_status(
        &mut self,
        deployment_id: i64,
        entry: &StatusEntry,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let statement = self.statement(
            super::INSERT_STATUS,
            vec![
                deployment_id.into(),
                entry.github_status_id.into(),
                entry.state.as_str().into(),
                text(entry.status.map(DeployStatus::as_str)),
                text(entry.description.as_deref()),
                text(entry.log_url.as_deref()),
                text(entry.environment_url.as_deref()),
                text(entry.creator.as_deref()),
                entry.occurred_at.into(),
                now.into(),
            ],
        );
        Ok(self.db.query_one(statement).await?.is_some())
    }

    async fn live_in(&mut self, connection_id: i64, head: &DeployHead) -> StoreResult<Vec<LiveRow>> {
        let statement = self.statement(
            super::LIVE_IN,
            vec![
                connection_id.into(),
                head.repository_key.as_str().into(),
                head.environment.as_str().into(),
                head.id.into(),
            ],
        );
        self.db
            .query_all(statement)
            .await?
            .iter()
            .map(|row| {
                Ok(LiveRow {
                    id: get(row, 0)?,
                    sha: get(row, 1)?,
                    live_at: get(row, 2)?,
                })
            })
            .collect()
    }

    async fn supersede(&mut self, id: i64, by: i64, at: DateTime<Utc>, now: DateTime<Utc>) -> StoreResult<bool> {
        let statement = self.statement(super::SUPERSEDE, vec![at.into(), by.into(), now.into(), id.into()]);
        Ok(self.db.execute(statement).await?.rows_affected() == 1)
    }

    async fn set_reported_status(
        &mut self,
        id: i64,
        change: &ReportChange<'_>,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let mut values: Vec<Value> = vec![
            change.status.as_str().into(),
            change.status_at.into(),
            change.status_github_id.into(),
            now.into(),
            text(change.log_url),
            text(change.environment_url),
            id.into(),
            change.superseded_by_id.into(),
        ];
        let sql = match change.completed {
            None => super::SET_REPORTED_STATUS,
            Some((completed_at, duration)) => {
                values.push(completed_at.into());
                values.push(duration.into());
                super::SET_REPORTED_COMPLETION
            }
        };
        let result = self.db.execute(self.statement(sql, values)).await?;
        Ok(result.rows_affected() == 1)
    }

    async fn enqueue_job(&mut self, job: &JobRow<'_>, now: DateTime<Utc>) -> StoreResult<bool> {
        let statement = self.statement(
            super::ENQUEUE_JOB,
            vec![
                job.kind.into(),
                job.payload.into(),
                job.dedupe_key.into(),
                job.run_at.into(),
                now.into(),
            ],
        );
        Ok(self.db.execute(statement).await?.rows_affected() == 1)
    }

    async fn insert_delivery(&mut self, row: &DeliveryRow<'_>) -> StoreResult<bool> {
        let statement = self.statement(
            super::INSERT_DELIVERY,
            vec![
                row.delivery_id.into(),
                row.event.into(),
                text(row.action),
                row.installation_id.into(),
                row.connection_id.into(),
                row.outcome.into(),
                text(row.reason),
                row.received_at.into(),
            ],
        );
        Ok(self.db.query_one(statement).await?.is_some())
    }
}

/// `connection_cache_version`'s version, read through sea-orm.
pub async fn cache_version(db: &impl Conn) -> StoreResult<i64> {
    let row = db
        .query_one(Statement::from_string(db.get_database_backend(), super::CACHE_VERSION))
        .await?
        .ok_or_else(|| StoreError::Corrupt("connection_cache_version has no row".to_owned()))?;
    get(&row, 0)
}
