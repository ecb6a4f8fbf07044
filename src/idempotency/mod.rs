//! `Idempotency-Key`: the first answer to a request is kept for 24 hours. The same key with the
//! same body gets that answer again; the same key with another body is a conflict.
//!
//! Lookups and saves run inside the caller's transaction, so the answer is stored exactly when
//! the work it describes is committed.

use chrono::{DateTime, Duration, Utc};
use serde::{de::DeserializeOwned, Serialize};
use sha2::{Digest, Sha256};

use crate::store::idempotency as rows;
use crate::store::{StoreError, StoreResult, Writer};

pub const RETENTION_HOURS: i64 = 24;

/// A key as sent: 1 to 255 printable ASCII characters.
pub fn parse_key(raw: &str) -> Result<String, String> {
    let key = raw.trim();
    if key.is_empty() || key.len() > 255 || !key.chars().all(|c| c.is_ascii_graphic()) {
        return Err("must be 1 to 255 printable ASCII characters".to_owned());
    }
    Ok(key.to_owned())
}

pub fn request_hash(body: &[u8]) -> String {
    hex::encode(Sha256::digest(body))
}

pub enum Lookup<T> {
    /// No live answer for this key: do the work, then `save`.
    New,
    Replay(T),
    /// The key was used with a different request.
    Mismatch,
}

pub async fn lookup<T: DeserializeOwned>(
    db: &impl Writer,
    credential_id: i64,
    key: &str,
    hash: &str,
    now: DateTime<Utc>,
) -> StoreResult<Lookup<T>> {
    let Some(stored) = rows::find(db, credential_id, key).await? else {
        return Ok(Lookup::New);
    };
    if now - stored.created_at > Duration::hours(RETENTION_HOURS) {
        rows::delete(db, credential_id, key).await?;
        return Ok(Lookup::New);
    }
    if stored.request_hash != hash {
        return Ok(Lookup::Mismatch);
    }
    let answer = serde_json::from_str(&stored.body).map_err(|e| StoreError::Corrupt(format!("stored answer: {e}")))?;
    Ok(Lookup::Replay(answer))
}

pub async fn save<T: Serialize>(
    db: &impl Writer,
    credential_id: i64,
    key: &str,
    hash: &str,
    status: u16,
    answer: &T,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    let body = serde_json::to_string(answer).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    rows::insert(db, credential_id, key, hash, status, &body, now).await
}
