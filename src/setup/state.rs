//! The `state` handed to GitHub's manifest flow: 32 random bytes (base64url, 43 characters),
//! of which only the SHA-256 is stored; good for one hour and consumed once, atomically, so a
//! reused or forged state is refused on every replica.

use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use sha2::{Digest, Sha256};

use super::secret_key::{SealError, SecretKey};
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
    if !is_well_formed(state) {
        return Ok(false);
    }
    let tx = store.begin().await?;
    let consumed = app_setup::consume_state(&tx, &hash(state), now).await?;
    tx.commit().await?;
    Ok(consumed)
}

/// What [`issue`] makes: base64url of [`STATE_BYTES`]; anything else never reaches the database.
fn is_well_formed(state: &str) -> bool {
    state.len() == STATE_CHARS
        && state
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn hash(state: &str) -> String {
    hex::encode(Sha256::digest(state.as_bytes()))
}

/// The purpose the code is sealed for (associated data).
const CODE_PURPOSE: &str = "setup_state.code";

/// `/setup/callback`: consumes `state` and, in the same transaction, keeps GitHub's `code`
/// sealed on the state's row and enqueues `app.convert_manifest` with only the row's id (job
/// payloads are shown at `GET /api/jobs`). `None` for a reused, expired, unknown or malformed
/// state: nothing is stored then.
pub async fn accept_callback(
    store: &Store,
    key: &SecretKey,
    state: &str,
    code: &str,
    now: DateTime<Utc>,
) -> Result<Option<i64>, CallbackError> {
    if !is_well_formed(state) || code.is_empty() || code.len() > 100 {
        return Ok(None);
    }
    let sealed = key.seal_text(code, CODE_PURPOSE)?;
    let hash = hash(state);
    let tx = store.begin().await?;
    if !app_setup::consume_state(&tx, &hash, now).await? {
        return Ok(None);
    }
    let Some(id) = app_setup::attach_code(&tx, &hash, &sealed).await? else {
        return Ok(None);
    };
    let job = super::conversion::ConvertManifest { state_id: id };
    crate::jobs::enqueue(&tx, &job, Some(format!("app.convert_manifest:{id}")), now, now).await?;
    tx.commit().await?;
    Ok(Some(id))
}

/// The code kept by [`accept_callback`], opened; `None` once the row is finished or gone.
pub async fn pending_code(store: &Store, key: &SecretKey, id: i64) -> Result<Option<String>, CallbackError> {
    let Some(sealed) = app_setup::pending_code(store.conn(), id).await? else {
        return Ok(None);
    };
    key.open_text(&sealed, CODE_PURPOSE)
        .map(Some)
        .map_err(|_| CallbackError::Unusable)
}

#[derive(Debug, thiserror::Error)]
pub enum CallbackError {
    #[error(transparent)]
    Seal(#[from] SealError),
    #[error("the stored code does not open with this secret key")]
    Unusable,
    #[error(transparent)]
    Store(#[from] StoreError),
}
