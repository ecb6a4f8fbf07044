//! The GitHub App's API client: JWT auth (RS256, `iat` −60 s, `exp` 9 min, `iss` = App id, as
//! octocrab mints it), and one installation client per installation whose token is cached until
//! five minutes before it expires and minted again once when GitHub answers 401.
//!
//! octocrab's own retry layer is compiled out (no `retry` feature): shiplog's job queue owns
//! retries, so it can honour GitHub's rate-limit headers and keep failures visible.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use octocrab::models::{AppId, InstallationId as OctoInstallationId};
use octocrab::Octocrab;
use tokio::sync::Mutex;

use crate::config::GitHubAppCredentials;
use crate::types::InstallationId;

/// A cached token is replaced when it has less than this left.
const TOKEN_REFRESH_MARGIN_MINUTES: i64 = 5;

#[derive(Debug, thiserror::Error)]
pub enum GitHubAppError {
    #[error("GITHUB_APP_PRIVATE_KEY is not an RSA private key in PEM format")]
    InvalidKey,
    #[error("GITHUB_API_URL {0:?} is not a usable base URL")]
    InvalidBaseUrl(String),
    #[error("could not build the GitHub client: {0}")]
    Client(String),
}

#[derive(Clone)]
struct CachedToken {
    token: String,
    expires_at: DateTime<Utc>,
}

/// The App client. Cheap to clone; clones share the token cache.
#[derive(Clone)]
pub struct GitHubApp {
    app_id: u64,
    client: Octocrab,
    tokens: Arc<Mutex<HashMap<InstallationId, CachedToken>>>,
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
            tokens: Arc::new(Mutex::new(HashMap::new())),
        })
    }

    pub fn app_id(&self) -> u64 {
        self.app_id
    }

    /// A client authenticated as the installation, minting a token when none is cached or the
    /// cached one is about to expire.
    pub async fn installation_client(
        &self,
        installation: InstallationId,
        now: DateTime<Utc>,
    ) -> octocrab::Result<Octocrab> {
        let mut tokens = self.tokens.lock().await;
        let fresh = tokens
            .get(&installation)
            .filter(|cached| cached.expires_at - now > Duration::minutes(TOKEN_REFRESH_MARGIN_MINUTES))
            .cloned();
        let cached = match fresh {
            Some(cached) => cached,
            None => {
                let minted = self
                    .client
                    .apps()
                    .create_installation_access_token(OctoInstallationId(installation.0 as u64), &Default::default())
                    .await?;
                let expires_at = minted
                    .expires_at
                    .as_deref()
                    .and_then(|at| DateTime::parse_from_rfc3339(at).ok())
                    .map_or(now + Duration::minutes(55), |at| at.with_timezone(&Utc));
                let cached = CachedToken {
                    token: minted.token,
                    expires_at,
                };
                tokens.insert(installation, cached.clone());
                cached
            }
        };
        self.client.user_access_token(cached.token)
    }

    /// Forgets the installation's token (GitHub answered 401 with it).
    pub async fn forget_token(&self, installation: InstallationId) {
        self.tokens.lock().await.remove(&installation);
    }
}
