//! The hot path of intake: a `deployment` or `deployment_status` delivery for a connection the
//! cache knows becomes its rows (`deploys::fast`) and its delivery row with the outcome, written
//! last (`ON CONFLICT DO NOTHING` tells a redelivery). The caller runs it inside a savepoint
//! (SQLite writer) or a transaction (PostgreSQL) and undoes it unless it answers [`Hot::Done`].

use chrono::{DateTime, Utc};

use super::{applied, Delivery, Receipt};
use crate::connections::Connection;
use crate::deploys::fast::{self, Fast};
use crate::store::hot::{DeliveryRow, HotRows};
use crate::store::StoreResult;

#[derive(Debug)]
pub enum Hot {
    /// Applied; keep the writes and answer with the receipt.
    Done(Receipt),
    /// The delivery id was received before: undo, answer `duplicate`.
    Duplicate,
    /// Not the hot path's case: undo, apply through the general path.
    Elsewhere,
}

pub async fn apply(
    rows: &mut impl HotRows,
    connection: &Connection,
    delivery: &Delivery,
    now: DateTime<Utc>,
) -> StoreResult<Hot> {
    let (applied_event, enqueued_job) = match fast::apply(rows, connection, &delivery.parsed.event, now).await? {
        Fast::Applied { applied, enqueued_job } => (applied, enqueued_job),
        Fast::Elsewhere => return Ok(Hot::Elsewhere),
    };
    let (outcome, reason, connection_id) = applied(applied_event);
    let row = DeliveryRow {
        delivery_id: delivery.id.as_str(),
        event: &delivery.event,
        action: delivery.parsed.action.as_deref(),
        installation_id: delivery.parsed.installation_id.map(|i| i.0),
        connection_id,
        outcome: outcome.as_str(),
        reason: reason.as_deref(),
        received_at: now,
    };
    if !rows.insert_delivery(&row).await? {
        return Ok(Hot::Duplicate);
    }
    Ok(Hot::Done(Receipt {
        delivery: delivery.id.as_str().to_owned(),
        outcome,
        reason,
        wake_jobs: enqueued_job,
    }))
}
