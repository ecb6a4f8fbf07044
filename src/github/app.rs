//! The GitHub App's API client: JWT auth (RS256, `iat` −60 s, `exp` 9 min, `iss` = App id, as
//! octocrab mints it) and installation tokens minted with it. Calls made as an installation,
//! with the token cache, are `client.rs`.
//!
//! octocrab's own retry layer is compiled out (no `retry` feature): shiplog's job queue owns
//! retries, so it can honour GitHub's rate-limit headers and keep failures visible.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use octocrab::models::{AppId, InstallationId as OctoInstallationId};
use octocrab::Octocrab;

use super::client::{CachedToken, TokenCache};
use super::error::{classify_mint, CallError};
use crate::config::GitHubAppCredentials;
use crate::types::InstallationId;

#[derive(Debug, thiserror::Error)]
pub enum GitHubAppError {
    #[error("GITHUB_APP_PRIVATE_KEY is not an RSA private key in PEM format")]
    InvalidKey,
    #[error("GITHUB_API_URL {0:?} is not a usable base URL")]
    InvalidBaseUrl(String),
    #[error("could not build the GitHub client: {0}")]
    Client(String),
}

/// The App client. Cheap to clone; clones share the token cache.
#[derive(Clone)]
pub struct GitHubApp {
    app_id: u64,
    client: Octocrab,
    tokens: Arc<TokenCache>,
}

impl std::fmt::Debug for GitHubApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitHubApp")
            .field("app_id", &self.app_id)
            .finish_non_exhaustive()
    }
}

impl GitHubApp {
    /// Builds the client; fails at start-up on a bad key or base URL rather than at first use.
    pub fn new(credentials: &GitHubAppCredentials, api_url: &str) -> Result<Self, GitHubAppError> {
        let key = octocrab::EncodingKey::from_rsa_pem(credentials.private_key_pem.expose().as_bytes())
            .map_err(|_| GitHubAppError::InvalidKey)?;
        let client = Octocrab::builder()
            .base_uri(api_url)
            .map_err(|_| GitHubAppError::InvalidBaseUrl(api_url.to_owned()))?
            .app(AppId(credentials.app_id), key)
            .set_connect_timeout(Some(std::time::Duration::from_secs(10)))
            .set_read_timeout(Some(std::time::Duration::from_secs(30)))
            .build()
            .map_err(|e| GitHubAppError::Client(e.to_string()))?;
        Ok(Self {
            app_id: credentials.app_id,
            client,
            tokens: Arc::new(TokenCache::default()),
        })
    }

    pub fn app_id(&self) -> u64 {
        self.app_id
    }

    pub(crate) fn tokens(&self) -> &TokenCache {
        &self.tokens
    }

    /// Mints a token for the installation (`POST /app/installations/{id}/access_tokens`).
    pub(crate) async fn mint_token(
        &self,
        installation: InstallationId,
        now: DateTime<Utc>,
    ) -> Result<CachedToken, CallError> {
        let minted = self
            .client
            .apps()
            .create_installation_access_token(OctoInstallationId(installation.0 as u64), &Default::default())
            .await
            .map_err(|e| classify_mint(e, installation))?;
        let expires_at = minted
            .expires_at
            .as_deref()
            .and_then(|at| DateTime::parse_from_rfc3339(at).ok())
            .map_or(now + Duration::minutes(55), |at| at.with_timezone(&Utc));
        Ok(CachedToken {
            token: minted.token,
            expires_at,
        })
    }

    /// A client that authenticates with an installation token.
    pub(crate) fn as_installation(&self, token: &str) -> Result<Octocrab, CallError> {
        self.client
            .user_access_token(token.to_owned())
            .map_err(|e| CallError::Retryable(format!("building the installation client failed: {e}")))
    }
}
