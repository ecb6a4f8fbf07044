//! The `state` handed to GitHub's manifest flow: 32 random bytes (base64url, 43 characters),
//! of which only the SHA-256 is stored; good for one hour and consumed once, atomically, so a
//! reused or forged state is refused on every replica.

use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use sha2::{Digest, Sha256};

use crate::store::{app_setup, Store, StoreError};

/// How long a state (and GitHub's code) is good for.
pub const STATE_LIFETIME: Duration = Duration::hours(1);
const STATE_BYTES: usize = 32;
/// base64url without padding of [`STATE_BYTES`].
const STATE_CHARS: usize = 43;

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("the system's random source failed")]
    Random,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A new state, stored as its hash; the plain value goes to GitHub and comes back once.
pub async fn issue(store: &Store, now: DateTime<Utc>) -> Result<String, StateError> {
    let mut bytes = [0u8; STATE_BYTES];
    getrandom::fill(&mut bytes).map_err(|_| StateError::Random)?;
    let state = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let tx = store.begin().await?;
    app_setup::insert_state(&tx, &hash(&state), now, now + STATE_LIFETIME).await?;
    tx.commit().await?;
    Ok(state)
}

/// `true` once for a state [`issue`] made less than an hour ago; `false` for a second use, an
/// expired, unknown or malformed state (a malformed one never reaches the database).
pub async fn consume(store: &Store, state: &str, now: DateTime<Utc>) -> Result<bool, StateError> {
    let well_formed = state.len() == STATE_CHARS
        && state
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !well_formed {
        return Ok(false);
    }
    let tx = store.begin().await?;
    let consumed = app_setup::consume_state(&tx, &hash(state), now).await?;
    tx.commit().await?;
    Ok(consumed)
}

fn hash(state: &str) -> String {
    hex::encode(Sha256::digest(state.as_bytes()))
}
