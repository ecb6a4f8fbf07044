//! The GitHub App's API client: JWT auth (RS256, `iat` −60 s, `exp` 9 min, `iss` = App id, as
//! octocrab mints it) and installation clients on top of it.
//!
//! octocrab's own retry layer is compiled out (no `retry` feature): shiplog's job queue owns
//! retries, so it can honour GitHub's rate-limit headers and keep failures visible.

use octocrab::models::AppId;
use octocrab::Octocrab;

use crate::config::GitHubAppCredentials;

#[derive(Debug, thiserror::Error)]
pub enum GitHubAppError {
    #[error("GITHUB_APP_PRIVATE_KEY is not an RSA private key in PEM format")]
    InvalidKey,
    #[error("GITHUB_API_URL {0:?} is not a usable base URL")]
    InvalidBaseUrl(String),
    #[error("could not build the GitHub client: {0}")]
    Client(String),
    #[error("the GitHub App is not configured: set GITHUB_APP_ID and GITHUB_APP_PRIVATE_KEY_PATH")]
    NotConfigured,
}

/// The App client. Cheap to clone.
#[derive(Clone, Debug)]
pub struct GitHubApp {
    app_id: u64,
    client: Octocrab,
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
            .build()
            .map_err(|e| GitHubAppError::Client(e.to_string()))?;
        Ok(Self {
            app_id: credentials.app_id,
            client,
        })
    }

    pub fn app_id(&self) -> u64 {
        self.app_id
    }

    /// The client authenticated as the App (JWT).
    pub fn client(&self) -> &Octocrab {
        &self.client
    }
}
