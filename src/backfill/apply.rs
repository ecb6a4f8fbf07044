//! A staged item of GitHub's history, and applying it (`deploys::history` records it).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::connections::Connection;
use crate::deploys;
use crate::events::WorkflowRun;
use crate::github::history::HistoricDeployment;
use crate::store::{StoreResult, Writer};
use crate::types::RepoName;

/// What a page of GitHub's history brought, kept as JSON until it is applied. Reading it back
/// validates every field again through its type.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Item {
    Deployment {
        repository: RepoName,
        deployment: HistoricDeployment,
    },
    Run {
        run: WorkflowRun,
    },
}

impl Item {
    /// When it happened: the order items are applied in.
    pub fn occurred_at(&self) -> DateTime<Utc> {
        match self {
            Self::Deployment { deployment, .. } => deployment.created_at,
            Self::Run { run } => run.run_started_at.unwrap_or(run.created_at),
        }
    }
}

/// Applies `item` as history of `connection`: the number of deploys it made (0 when they are
/// known already).
pub async fn apply(db: &impl Writer, connection: &Connection, item: &Item, now: DateTime<Utc>) -> StoreResult<i64> {
    match item {
        Item::Deployment { repository, deployment } => {
            deploys::history::record_deployment(db, connection, repository, deployment, now)
                .await
                .map(i64::from)
        }
        Item::Run { run } => deploys::history::record_run(db, connection, run, now).await,
    }
}
