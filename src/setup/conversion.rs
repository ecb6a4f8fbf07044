//! The `app.convert_manifest` job: exchanges the code the callback kept (sealed, on its state's
//! row) for the App's credentials, stores the App sealed, and records on the row how it ended
//! for `/setup` to show: `done`, `expired` (GitHub's 404/422: start again) or `failed`.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};

use super::secret_key::SecretKey;
use super::{state, stored_app};
use crate::github::manifest_conversion::{convert_manifest, ConversionError};
use crate::jobs::runner::{JobError, JobHandler, MAX_ATTEMPTS};
use crate::jobs::BackgroundJob;
use crate::store::{app_setup, Store};

/// Only the state row's id: the code never sits in a payload.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConvertManifest {
    pub state_id: i64,
}

impl BackgroundJob for ConvertManifest {
    const JOB_NAME: &'static str = "app.convert_manifest";
}

pub const OUTCOME_DONE: &str = "done";
pub const OUTCOME_EXPIRED: &str = "expired";
pub const OUTCOME_FAILED: &str = "failed";

pub struct ManifestConverter {
    pub store: Store,
    /// GitHub's REST root (`GITHUB_API_URL`).
    pub api_url: String,
    /// The secret key, resolved when the job runs (`None` with the reason it is unusable).
    pub key: Arc<dyn Fn() -> Result<SecretKey, String> + Send + Sync>,
}

impl ManifestConverter {
    async fn convert(&self, job: ConvertManifest, now: DateTime<Utc>, attempt: i32) -> Result<(), JobError> {
        let key = (self.key)().map_err(JobError::Permanent)?;
        let code = match state::pending_code(&self.store, &key, job.state_id).await {
            Ok(Some(code)) => code,
            // Finished before (a retry after the App was stored), or forgotten after its hour.
            Ok(None) => return Ok(()),
            Err(state::CallbackError::Store(e)) => return Err(e.into()),
            Err(other) => {
                self.finish(job.state_id, OUTCOME_FAILED, now).await?;
                return Err(JobError::Permanent(other.to_string()));
            }
        };
        match convert_manifest(&self.api_url, &code, now).await {
            Ok(app) => {
                stored_app::save(&self.store, &key, &app, now)
                    .await
                    .map_err(|e| JobError::retry(format!("storing the App: {e}")))?;
                tracing::info!(app_id = app.id, slug = %app.slug, "the GitHub App set up in the browser is stored");
                self.finish(job.state_id, OUTCOME_DONE, now).await
            }
            Err(ConversionError::Expired) => {
                tracing::info!("the manifest code expired or was used before");
                self.finish(job.state_id, OUTCOME_EXPIRED, now).await
            }
            Err(ConversionError::Incomplete(what)) => {
                self.finish(job.state_id, OUTCOME_FAILED, now).await?;
                Err(JobError::Permanent(format!("GitHub's answer has no {what}")))
            }
            Err(ConversionError::Call(error)) => {
                if attempt >= MAX_ATTEMPTS {
                    self.finish(job.state_id, OUTCOME_FAILED, now).await?;
                }
                // Not the error itself: a transport error can name the URL, whose path holds the code.
                let _ = error;
                Err(JobError::retry(
                    "GitHub did not answer the manifest conversion; trying again",
                ))
            }
        }
    }

    async fn finish(&self, id: i64, outcome: &str, now: DateTime<Utc>) -> Result<(), JobError> {
        let tx = self.store.begin().await?;
        app_setup::finish(&tx, id, outcome, now).await?;
        tx.commit().await?;
        Ok(())
    }
}

impl JobHandler<ConvertManifest> for ManifestConverter {
    fn run(&self, job: ConvertManifest, now: DateTime<Utc>, attempt: i32) -> BoxFuture<'_, Result<(), JobError>> {
        Box::pin(self.convert(job, now, attempt))
    }
}
