//! Turning the code GitHub's manifest flow hands back into the new App's credentials:
//! `POST /app-manifests/{code}/conversions` (no authentication; the code is the credential and
//! is good for one hour, once).
//!
//! octocrab's `App` model holds the secrets in plain `String`s and derives `Debug`; it is turned
//! into [`ConvertedApp`] at once, whose secrets are [`Secret`]s, and never logged.

use chrono::{DateTime, Utc};
use octocrab::Octocrab;

use super::error::{classify, CallError};
use crate::config::Secret;

/// The longest code accepted; GitHub's are about 20 characters.
const MAX_CODE_CHARS: usize = 100;

/// The App GitHub created from the manifest.
#[derive(Clone, Debug)]
pub struct ConvertedApp {
    pub id: u64,
    pub slug: String,
    pub name: String,
    pub owner_login: String,
    pub html_url: String,
    pub client_id: String,
    pub client_secret: Secret,
    pub webhook_secret: Secret,
    pub private_key_pem: Secret,
}

#[derive(Debug, thiserror::Error)]
pub enum ConversionError {
    /// GitHub answers 404 (or 422) for a code that expired, was used, or never existed.
    #[error("the code expired or was already used: start again from /setup")]
    Expired,
    #[error("GitHub's answer has no {0}")]
    Incomplete(&'static str),
    #[error(transparent)]
    Call(CallError),
}

/// Exchanges `code` at `api_url` (GitHub's REST root, or the fake in tests).
pub async fn convert_manifest(api_url: &str, code: &str, now: DateTime<Utc>) -> Result<ConvertedApp, ConversionError> {
    let code_is_plain = !code.is_empty()
        && code.len() <= MAX_CODE_CHARS
        && code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !code_is_plain {
        // Not a code GitHub would issue; it never goes into a URL path.
        return Err(ConversionError::Expired);
    }
    let client = Octocrab::builder()
        .base_uri(api_url)
        .map_err(|_| ConversionError::Call(CallError::Refused(format!("GITHUB_API_URL {api_url:?} is not usable"))))?
        .set_connect_timeout(Some(std::time::Duration::from_secs(10)))
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .build()
        .map_err(|_| ConversionError::Call(CallError::Retryable("could not build the GitHub client".to_owned())))?;
    let app = match client.apps().create_from_manifest(code).await {
        Ok(app) => app,
        Err(octocrab::Error::GitHub { source, .. }) if matches!(source.status_code.as_u16(), 404 | 422) => {
            return Err(ConversionError::Expired);
        }
        Err(error) => return Err(ConversionError::Call(classify(error, "the manifest code", now))),
    };
    let required = |value: Option<String>, what: &'static str| {
        value
            .filter(|v| !v.trim().is_empty())
            .ok_or(ConversionError::Incomplete(what))
    };
    Ok(ConvertedApp {
        id: app.id.0,
        slug: required(app.slug, "slug")?,
        name: app.name,
        owner_login: app.owner.login,
        html_url: app.html_url.to_string(),
        client_id: required(app.client_id, "client_id")?,
        client_secret: Secret::new(required(app.client_secret, "client_secret")?),
        webhook_secret: Secret::new(required(app.webhook_secret, "webhook_secret")?),
        private_key_pem: Secret::new(required(app.pem, "pem")?),
    })
}
