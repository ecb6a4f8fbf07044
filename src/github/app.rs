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

const MINT_ENDPOINT: &str = "/app/installations/{installation_id}/access_tokens";

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
    /// The same App at GitHub's GraphQL root, which on GitHub Enterprise Server is not under the
    /// REST root (`https://HOST/api/graphql` beside `https://HOST/api/v3`).
    graphql: Octocrab,
    tokens: Arc<TokenCache>,
    /// Where calls made as an installation are counted ([`super::client::record_call`]).
    metrics: Option<Arc<crate::metrics::Metrics>>,
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
        let build = |base: &str| {
            let key = octocrab::EncodingKey::from_rsa_pem(credentials.private_key_pem.expose().as_bytes())
                .map_err(|_| GitHubAppError::InvalidKey)?;
            Octocrab::builder()
                .base_uri(base)
                .map_err(|_| GitHubAppError::InvalidBaseUrl(api_url.to_owned()))?
                .app(AppId(credentials.app_id), key)
                .set_connect_timeout(Some(std::time::Duration::from_secs(10)))
                .set_read_timeout(Some(std::time::Duration::from_secs(30)))
                .build()
                .map_err(|e| GitHubAppError::Client(e.to_string()))
        };
        Ok(Self {
            app_id: credentials.app_id,
            client: build(api_url)?,
            graphql: build(&graphql_root(api_url))?,
            tokens: Arc::new(TokenCache::default()),
            metrics: None,
        })
    }

    /// Counts the calls made as an installation in `metrics`.
    pub fn with_metrics(self, metrics: Arc<crate::metrics::Metrics>) -> Self {
        Self {
            metrics: Some(metrics),
            ..self
        }
    }

    pub(crate) fn metrics(&self) -> Option<Arc<crate::metrics::Metrics>> {
        self.metrics.clone()
    }

    pub fn app_id(&self) -> u64 {
        self.app_id
    }

    /// The client that authenticates as the App itself (a fresh JWT per request), for the
    /// `/app/...` endpoints.
    pub(crate) fn as_app(&self) -> &Octocrab {
        &self.client
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
            .inspect_err(|e| super::client::record_failure(MINT_ENDPOINT, e))
            .map_err(|e| classify_mint(e, installation))?;
        super::client::record_call(MINT_ENDPOINT, Some(201), None);
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

    /// A client that authenticates with an installation token, at the REST root or (`graphql`)
    /// at the GraphQL root, where `POST /graphql` is GitHub's GraphQL endpoint.
    pub(crate) fn as_installation(&self, token: &str, graphql: bool) -> Result<Octocrab, CallError> {
        let base = if graphql { &self.graphql } else { &self.client };
        base.user_access_token(token.to_owned())
            .map_err(|e| CallError::Retryable(format!("building the installation client failed: {e}")))
    }
}

/// Where `/graphql` lives for a REST root: beside `/api/v3` on GitHub Enterprise Server
/// (`https://HOST/api/graphql`), at the root on github.com (`https://api.github.com/graphql`).
fn graphql_root(api_url: &str) -> String {
    let trimmed = api_url.trim_end_matches('/');
    trimmed.strip_suffix("/v3").unwrap_or(trimmed).to_owned()
}

#[cfg(test)]
mod graphql_tests {
    use super::graphql_root;

    #[test]
    fn graphql_lives_beside_the_rest_root_on_enterprise_server() {
        assert_eq!(graphql_root("https://api.github.com"), "https://api.github.com");
        assert_eq!(
            graphql_root("https://ghe.example.com/api/v3/"),
            "https://ghe.example.com/api"
        );
        assert_eq!(graphql_root("http://127.0.0.1:8080"), "http://127.0.0.1:8080");
    }
}
