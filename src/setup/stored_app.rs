//! The App created from the browser, kept in the database with its secrets sealed under the
//! secret key (`secret_key.rs`); each secret's column name is its purpose (associated data).

use chrono::{DateTime, Utc};

use super::secret_key::{SealError, SecretKey};
use crate::config::Secret;
use crate::github::manifest_conversion::ConvertedApp;
use crate::store::{app_setup, Store, StoreError};

const CLIENT_SECRET: &str = "stored_app.client_secret";
const WEBHOOK_SECRET: &str = "stored_app.webhook_secret";
const PRIVATE_KEY: &str = "stored_app.private_key";

#[derive(Debug, thiserror::Error)]
pub enum StoredAppError {
    /// The secrets do not open: another key than the one they were sealed with, or altered rows.
    #[error("the GitHub App stored in the database is unusable: its secrets do not open with this secret key (SHIPLOG_SECRET_KEY or the key file)")]
    Unusable,
    #[error(transparent)]
    Seal(#[from] SealError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Seals `app`'s secrets and stores it, replacing an App stored before.
pub async fn save(
    store: &Store,
    key: &SecretKey,
    app: &ConvertedApp,
    now: DateTime<Utc>,
) -> Result<(), StoredAppError> {
    let seal = |value: &Secret, purpose: &str| key.seal_text(value.expose(), purpose);
    let row = app_setup::SealedApp {
        app_id: i64::try_from(app.id).map_err(|_| StoreError::Corrupt(format!("App id {} is too large", app.id)))?,
        slug: app.slug.clone(),
        name: app.name.clone(),
        owner_login: app.owner_login.clone(),
        html_url: app.html_url.clone(),
        client_id: app.client_id.clone(),
        client_secret_sealed: seal(&app.client_secret, CLIENT_SECRET)?,
        webhook_secret_sealed: seal(&app.webhook_secret, WEBHOOK_SECRET)?,
        private_key_sealed: seal(&app.private_key_pem, PRIVATE_KEY)?,
        created_at: now,
    };
    let tx = store.begin().await?;
    app_setup::save_app(&tx, &row).await?;
    tx.commit().await?;
    Ok(())
}

/// The stored App with its secrets opened, or `None` when none is stored.
pub async fn load(store: &Store, key: &SecretKey) -> Result<Option<ConvertedApp>, StoredAppError> {
    let Some(row) = app_setup::load_app(store.conn()).await? else {
        return Ok(None);
    };
    let open = |sealed: &str, purpose: &str| {
        key.open_text(sealed, purpose)
            .map(Secret::new)
            .map_err(|_| StoredAppError::Unusable)
    };
    Ok(Some(ConvertedApp {
        id: u64::try_from(row.app_id).map_err(|_| StoredAppError::Unusable)?,
        slug: row.slug,
        name: row.name,
        owner_login: row.owner_login,
        html_url: row.html_url,
        client_id: row.client_id,
        client_secret: open(&row.client_secret_sealed, CLIENT_SECRET)?,
        webhook_secret: open(&row.webhook_secret_sealed, WEBHOOK_SECRET)?,
        private_key_pem: open(&row.private_key_sealed, PRIVATE_KEY)?,
    }))
}

/// The stored App's public fields, without opening anything (for `shiplog setup show`).
pub async fn peek(store: &Store) -> Result<Option<(u64, String)>, StoredAppError> {
    let row = app_setup::load_app(store.conn()).await?;
    Ok(row.and_then(|r| u64::try_from(r.app_id).ok().map(|id| (id, r.slug))))
}
