//! Deploy credentials: what CI systems authenticate with to register deployments.
//!
//! A credential belongs to one connection. Its password is random (256 bits), shown once, and
//! stored only as a hex SHA-256 digest (a fast hash is enough for a random secret). The same
//! digest is the key of the HMAC-signed form of `POST /deployments`, so it is handed out once as
//! `signing_key`: HMAC needs a key both sides know, and shiplog keeps nothing else. Comparisons
//! are constant time. Revoking takes effect on the next request.
//!
//! `last_used_at` is written at most once per [`LAST_USED_INTERVAL_SECONDS`] per credential, in a
//! write transaction of its own; a failed write is logged and the request goes on. The memory of
//! used signatures (replay protection) is written on every signed request and fails closed.

use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use serde::Serialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::store::credentials::{self as rows, NewCredential};
use crate::store::used_signatures;
use crate::store::{Store, StoreError, StoreResult};
use crate::types::ConnectionId;

/// How far `X-Shiplog-Timestamp` may be from the server's clock.
pub const SIGNATURE_WINDOW_SECONDS: i64 = 300;

/// How old a credential's `last_used_at` must be before a request writes it again.
pub const LAST_USED_INTERVAL_SECONDS: i64 = 60;

/// A credential, without any secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Credential {
    pub id: i64,
    #[schema(value_type = i64)]
    pub connection_id: ConnectionId,
    pub name: String,
    pub username: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
}

/// A new credential with its secrets: the only time they exist outside the caller's hands.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct IssuedCredential {
    #[serde(flatten)]
    pub credential: Credential,
    pub password: String,
    pub signing_key: String,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("unknown or revoked credential, or wrong password")]
    Invalid,
    #[error("X-Shiplog-Timestamp is not within {SIGNATURE_WINDOW_SECONDS} seconds of the server's clock")]
    Expired,
    #[error("this signed request was received before; sign every request anew (a fresh timestamp)")]
    Replayed,
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub async fn create(
    store: &Store,
    connection_id: i64,
    name: &str,
    now: DateTime<Utc>,
) -> Result<IssuedCredential, IssueError> {
    let username = format!("deploy-{connection_id}-{}", random_hex(6)?);
    let password = format!("slp_{}", random_hex(32)?);
    let signing_key = digest(&password);
    let tx = store.begin().await?;
    let credential = rows::insert(
        &tx,
        NewCredential {
            connection_id,
            name,
            username: &username,
            secret_hash: &signing_key,
        },
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(IssuedCredential {
        credential,
        password,
        signing_key,
    })
}

pub async fn list(store: &Store, connection_id: i64) -> StoreResult<Vec<Credential>> {
    rows::list(store.conn(), connection_id).await
}

/// Active credentials of every connection, oldest first.
pub async fn list_all(store: &Store) -> StoreResult<Vec<Credential>> {
    rows::list_all(store.conn()).await
}

pub async fn revoke(store: &Store, connection_id: i64, id: i64, now: DateTime<Utc>) -> StoreResult<bool> {
    let tx = store.begin().await?;
    let revoked = rows::revoke(&tx, connection_id, id, now).await?;
    tx.commit().await?;
    Ok(revoked)
}

/// HTTP Basic: username and password.
pub async fn authenticate_basic(
    store: &Store,
    username: &str,
    password: &str,
    now: DateTime<Utc>,
) -> Result<Credential, AuthError> {
    let Some((credential, stored)) = rows::find_active_by_username(store.conn(), username).await? else {
        // Spend the same work on unknown usernames.
        let _ = digest(password);
        return Err(AuthError::Invalid);
    };
    let presented = digest(password);
    if !bool::from(presented.as_bytes().ct_eq(stored.as_bytes())) {
        return Err(AuthError::Invalid);
    }
    touch(store, &credential, now).await;
    Ok(credential)
}

/// Records that the credential was used, when its `last_used_at` is older than
/// [`LAST_USED_INTERVAL_SECONDS`]. A failure is logged, not returned: the request it
/// authenticated goes on.
async fn touch(store: &Store, credential: &Credential, now: DateTime<Utc>) {
    let stale_before = now - chrono::Duration::seconds(LAST_USED_INTERVAL_SECONDS);
    if credential.last_used_at.is_some_and(|at| at > stale_before) {
        return;
    }
    let touched = async {
        let tx = store.begin().await?;
        rows::touch(&tx, credential.id, now, stale_before).await?;
        tx.commit().await
    };
    if let Err(error) = touched.await {
        tracing::warn!(credential = credential.id, %error, "could not record that a credential was used");
    }
}

/// The signed form: `sha256=HMAC(signing_key, timestamp + "." + body)` within the time window.
pub async fn authenticate_signed(
    store: &Store,
    username: &str,
    timestamp: &str,
    signature: &str,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<Credential, AuthError> {
    let seconds: i64 = timestamp.trim().parse().map_err(|_| AuthError::Expired)?;
    let within_window = now
        .timestamp()
        .checked_sub(seconds)
        .is_some_and(|skew| skew.unsigned_abs() <= SIGNATURE_WINDOW_SECONDS.unsigned_abs());
    if !within_window {
        return Err(AuthError::Expired);
    }
    let Some((credential, signing_key)) = rows::find_active_by_username(store.conn(), username).await? else {
        return Err(AuthError::Invalid);
    };
    let expected = signature
        .trim()
        .strip_prefix("sha256=")
        .and_then(|h| hex::decode(h).ok())
        .ok_or(AuthError::Invalid)?;
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(signing_key.as_bytes()).map_err(|_| AuthError::Invalid)?;
    mac.update(timestamp.trim().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.verify_slice(&expected).map_err(|_| AuthError::Invalid)?;
    // The signature stays acceptable until its timestamp leaves the window: remember it until
    // then, in the database, so a replay is refused by every replica.
    let seen = digest(&format!("{username}\n{}", hex::encode(&expected)));
    let forget_at = DateTime::from_timestamp(seconds.saturating_add(SIGNATURE_WINDOW_SECONDS + 1), 0).unwrap_or(now);
    let tx = store.begin().await?;
    if !used_signatures::remember(&tx, &seen, forget_at.max(now)).await? {
        return Err(AuthError::Replayed);
    }
    tx.commit().await?;
    touch(store, &credential, now).await;
    Ok(credential)
}

/// `sha256=…` for a signed request; what a client computes (used by tests and docs).
pub fn sign(signing_key: &str, timestamp: &str, body: &[u8]) -> String {
    let mut mac = match <Hmac<Sha256> as KeyInit>::new_from_slice(signing_key.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

fn digest(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// The operating system's random number generator failed; nothing weaker is used instead.
#[derive(Debug, thiserror::Error)]
#[error("the operating system's random number generator failed")]
pub struct RandomError;

/// `bytes` random bytes from the operating system, as hex.
pub fn random_hex(bytes: usize) -> Result<String, RandomError> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).map_err(|_| RandomError)?;
    Ok(hex::encode(buf))
}

#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    #[error(transparent)]
    Random(#[from] RandomError),
    #[error(transparent)]
    Store(#[from] StoreError),
}
