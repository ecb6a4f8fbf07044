//! Deploy shipments: for each deploy that went live, the range it brought to its environment
//! (`base_sha...head_sha`) and what kind of answer that is (`shipped::record` writes it,
//! `shipped::view` reads it with the range's stored commits).

use chrono::{DateTime, Utc};
use entity::deploy_shipment::{ActiveModel, Column, Entity, Model};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, EntityTrait, NotSet, QueryFilter, Set};

use super::{Conn, StoreResult, Writer};

/// One deploy's shipment as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShipmentRow {
    pub deployment_id: i64,
    pub base_deployment_id: Option<i64>,
    pub base_sha: Option<String>,
    pub head_sha: String,
    /// `first`, `listed`, `unrelated` or `unread` (`shipped::Kind`).
    pub kind: String,
    /// The compare status of `base...head` when listed.
    pub status: Option<String>,
    pub ahead_by: i64,
    pub behind_by: i64,
    pub note: Option<String>,
    pub computed_at: DateTime<Utc>,
}

impl From<Model> for ShipmentRow {
    fn from(r: Model) -> Self {
        Self {
            deployment_id: r.deployment_id,
            base_deployment_id: r.base_deployment_id,
            base_sha: r.base_sha,
            head_sha: r.head_sha,
            kind: r.kind,
            status: r.status,
            ahead_by: r.ahead_by,
            behind_by: r.behind_by,
            note: r.note,
            computed_at: r.computed_at,
        }
    }
}

/// Stores a deploy's shipment, replacing what was stored for it (a retried or repeated
/// went-live job writes the same row again).
pub async fn save(db: &impl Writer, row: &ShipmentRow) -> StoreResult<()> {
    Entity::insert(ActiveModel {
        id: NotSet,
        deployment_id: Set(row.deployment_id),
        base_deployment_id: Set(row.base_deployment_id),
        base_sha: Set(row.base_sha.clone()),
        head_sha: Set(row.head_sha.clone()),
        kind: Set(row.kind.clone()),
        status: Set(row.status.clone()),
        ahead_by: Set(row.ahead_by),
        behind_by: Set(row.behind_by),
        note: Set(row.note.clone()),
        computed_at: Set(row.computed_at),
    })
    .on_conflict(
        OnConflict::column(Column::DeploymentId)
            .update_columns([
                Column::BaseDeploymentId,
                Column::BaseSha,
                Column::HeadSha,
                Column::Kind,
                Column::Status,
                Column::AheadBy,
                Column::BehindBy,
                Column::Note,
                Column::ComputedAt,
            ])
            .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// The deploy's shipment, once its went-live job recorded it.
pub async fn find(db: &impl Conn, deployment_id: i64) -> StoreResult<Option<ShipmentRow>> {
    Ok(Entity::find()
        .filter(Column::DeploymentId.eq(deployment_id))
        .one(db)
        .await?
        .map(ShipmentRow::from))
}
