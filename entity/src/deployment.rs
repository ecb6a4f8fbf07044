//! One commit shipped to one environment of one repository.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "deployment")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub connection_id: i64,
    /// `owner/repo` as first seen.
    pub repository: String,
    /// `repository` lower-cased, for matching.
    pub repository_key: String,
    pub environment: String,
    pub sha: String,
    pub git_ref: Option<String>,
    /// `github`, `api` or `actions`.
    pub source: String,
    pub github_deployment_id: Option<i64>,
    pub external_id: Option<String>,
    pub version: Option<String>,
    pub creator: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub description: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub log_url: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub environment_url: Option<String>,
    pub transient_environment: bool,
    pub production_environment: bool,
    pub status: String,
    /// When the current status took effect (the source's timestamp, not arrival time).
    pub status_at: DateTimeUtc,
    /// Tie-breaker for statuses with the same timestamp: GitHub's status id (0 when none).
    pub status_github_id: i64,
    pub deploy_time: DateTimeUtc,
    pub completed_at: Option<DateTimeUtc>,
    pub duration_seconds: Option<i64>,
    pub superseded_by_id: Option<i64>,
    pub rollback_target_id: Option<i64>,
    /// The Actions run that made it, for deploys from runs and GitHub deployments made by one.
    pub github_run_id: Option<i64>,
    /// The run's attempt behind the current status (a re-run moves the same deploy).
    pub run_attempt: Option<i64>,
    /// Imported from GitHub's history by a backfill: builds the lifecycle, fires nothing.
    pub backfilled: bool,
    pub recorded_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
