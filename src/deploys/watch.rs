//! Who waits for a deploy to go live: the [`WatchSource`] interface the `deploy.went_live` job
//! (`live.rs`) tells, once the batch (`ancestry::batch`) has settled which watched commits the
//! deploy contains, and when a deploy is rolled back. Implemented by deploy monitoring plans
//! (`monitoring::plans`) and post-deploy triggers (`triggers`).

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;

use crate::store::{Store, StoreResult};

/// The deploy a batch resolves against, as watch sources see it.
#[derive(Clone, Debug)]
pub struct LiveDeploy<'a> {
    pub id: i64,
    pub connection_id: i64,
    pub repository: &'a str,
    pub environment: &'a str,
    pub sha: &'a str,
    pub live_at: DateTime<Utc>,
    /// When shiplog first recorded the deploy.
    pub recorded_at: DateTime<Utc>,
}

/// Who waits for commits to go live (deploy monitoring plans, post-deploy triggers).
///
/// `resolved` may be called more than once for the same deploy and commit (a job that is run
/// again after its worker died), so it must be idempotent.
pub trait WatchSource: Send + Sync {
    /// Full SHAs this source waits to see live in the repository (its key: lower-case `owner/repo`).
    fn watched<'a>(
        &'a self,
        store: &'a Store,
        connection_id: i64,
        repository_key: &'a str,
    ) -> BoxFuture<'a, StoreResult<Vec<String>>>;
    /// Whether `deploy` contains `sha`.
    fn resolved<'a>(
        &'a self,
        store: &'a Store,
        deploy: &'a LiveDeploy<'a>,
        sha: &'a str,
        contained: bool,
    ) -> BoxFuture<'a, StoreResult<()>>;
    /// The deploy `deployment_id` was rolled back: what it brought has left its environment.
    fn rolled_back<'a>(
        &'a self,
        _store: &'a Store,
        _deployment_id: i64,
        _now: DateTime<Utc>,
    ) -> BoxFuture<'a, StoreResult<()>> {
        Box::pin(async { Ok(()) })
    }
}
