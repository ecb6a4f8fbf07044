//! The webhook delivery log, unique on `X-GitHub-Delivery`.

use chrono::{DateTime, Utc};
use entity::webhook_delivery::{ActiveModel, Column, Entity};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QuerySelect, Set};

use super::{Conn, StoreResult, Writer};

/// What is known of a delivery when it arrives.
#[derive(Debug, Clone)]
pub struct NewDelivery<'a> {
    pub delivery_id: &'a str,
    pub event: &'a str,
    pub action: Option<&'a str>,
    pub installation_id: Option<i64>,
    pub received_at: DateTime<Utc>,
}

/// A stored delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRecord {
    pub id: i64,
    pub delivery_id: String,
    pub event: String,
    pub action: Option<String>,
    pub outcome: String,
    pub reason: Option<String>,
    pub received_at: DateTime<Utc>,
}

/// When the delivery with this id was received, if it was.
pub async fn received_at(db: &impl Conn, delivery_id: &str) -> StoreResult<Option<DateTime<Utc>>> {
    let found = Entity::find()
        .select_only()
        .column(Column::ReceivedAt)
        .filter(Column::DeliveryId.eq(delivery_id))
        .into_tuple::<DateTime<Utc>>()
        .one(db)
        .await?;
    Ok(found)
}

/// Inserts the delivery with outcome `processing`; a second insert of the same id is a
/// [`super::StoreError::Conflict`]. As the first write of a transaction it also takes SQLite's
/// write lock early, so the transaction never has to upgrade a read lock.
pub async fn insert(db: &impl Writer, new: NewDelivery<'_>) -> StoreResult<i64> {
    let model = ActiveModel {
        delivery_id: Set(new.delivery_id.to_owned()),
        event: Set(new.event.to_owned()),
        action: Set(new.action.map(str::to_owned)),
        installation_id: Set(new.installation_id),
        connection_id: Set(None),
        outcome: Set("processing".to_owned()),
        reason: Set(None),
        received_at: Set(new.received_at),
        ..Default::default()
    };
    Ok(model.insert(db).await?.id)
}

/// Records how the delivery was handled.
pub async fn finish(
    db: &impl Writer,
    id: i64,
    outcome: &str,
    reason: Option<&str>,
    connection_id: Option<i64>,
) -> StoreResult<()> {
    let model = ActiveModel {
        id: Set(id),
        outcome: Set(outcome.to_owned()),
        reason: Set(reason.map(str::to_owned)),
        connection_id: Set(connection_id),
        ..Default::default()
    };
    model.update(db).await?;
    Ok(())
}

pub async fn find(db: &impl Conn, delivery_id: &str) -> StoreResult<Option<DeliveryRecord>> {
    let found = Entity::find()
        .filter(Column::DeliveryId.eq(delivery_id))
        .one(db)
        .await?;
    Ok(found.map(|m| DeliveryRecord {
        id: m.id,
        delivery_id: m.delivery_id,
        event: m.event,
        action: m.action,
        outcome: m.outcome,
        reason: m.reason,
        received_at: m.received_at,
    }))
}
