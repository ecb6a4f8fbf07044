//! The installation client: GitHub calls made as one installation of the App, with its token
//! cached until five minutes before it expires and minted again once when GitHub answers 401.
//!
//! Each installation's token has its own lock. The map of locks is held only to find or add an
//! installation's entry, never across a call to GitHub, so a slow mint for one installation
//! delays no other, and concurrent callers of one installation wait for a single mint.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex as MapMutex};

use chrono::{DateTime, Duration, Utc};
use octocrab::Octocrab;
use tokio::sync::Mutex;

use super::app::GitHubApp;
use super::error::CallError;
use crate::types::InstallationId;

/// A cached token is replaced when it has less than this left.
const TOKEN_REFRESH_MARGIN_MINUTES: i64 = 5;

/// An installation access token and when GitHub said it expires.
#[derive(Clone)]
pub(crate) struct CachedToken {
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

type Slot = Arc<Mutex<Option<CachedToken>>>;

/// Installation tokens, one lock per installation.
#[derive(Default)]
pub(crate) struct TokenCache {
    slots: MapMutex<HashMap<InstallationId, Slot>>,
}

impl TokenCache {
    fn slot(&self, installation: InstallationId) -> Slot {
        // Never held across an await: only finds or adds the installation's entry.
        let mut slots = self.slots.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        slots.entry(installation).or_default().clone()
    }

    /// The installation's token: the cached one while it has more than the margin left, else
    /// the one `mint` makes. Concurrent callers for one installation wait for one mint.
    pub(crate) async fn token<F, Fut>(
        &self,
        installation: InstallationId,
        now: DateTime<Utc>,
        mint: F,
    ) -> Result<String, CallError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<CachedToken, CallError>>,
    {
        let slot = self.slot(installation);
        let mut cached = slot.lock().await;
        if let Some(fresh) = cached
            .as_ref()
            .filter(|c| c.expires_at - now > Duration::minutes(TOKEN_REFRESH_MARGIN_MINUTES))
        {
            return Ok(fresh.token.clone());
        }
        let minted = mint().await?;
        let token = minted.token.clone();
        *cached = Some(minted);
        Ok(token)
    }

    /// Forgets `token` (GitHub answered 401 with it) unless another caller has replaced it
    /// already, so callers that all saw the same 401 cause one new mint.
    pub(crate) async fn forget(&self, installation: InstallationId, token: &str) {
        let slot = self.slot(installation);
        let mut cached = slot.lock().await;
        if cached.as_ref().is_some_and(|c| c.token == token) {
            *cached = None;
        }
    }
}

tokio::task_local! {
    /// Where the calls of an [`InstallationClient::call`] are counted, and for which installation.
    /// `None` for calls made as the App itself (JWT), counted under `installation="app"`.
    static CALLER: (Arc<crate::metrics::Metrics>, Option<InstallationId>);
}

/// Counts one call to GitHub (`endpoint` a pattern such as `/repos/{owner}/{repo}/compare/{basehead}`)
/// with its answer's status (`None`: no answer) and `x-ratelimit-remaining`, when made inside an
/// [`InstallationClient::call`] of an App with metrics; elsewhere it does nothing.
pub(crate) fn record_call(endpoint: &'static str, status: Option<u16>, headers: Option<&reqwest::header::HeaderMap>) {
    let remaining = headers
        .and_then(|h| h.get("x-ratelimit-remaining"))
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok());
    let _ = CALLER.try_with(|(metrics, installation)| {
        metrics.record_github_call(endpoint, status, installation.map(|i| i.0), remaining);
    });
}

/// Runs `call`, made as the App itself (JWT), with its GitHub calls counted in the App's metrics.
pub(crate) async fn counted_as_app<T>(app: &super::app::GitHubApp, call: impl Future<Output = T>) -> T {
    match app.metrics() {
        Some(metrics) => CALLER.scope((metrics, None), call).await,
        None => call.await,
    }
}

/// Counts a failed call from octocrab's error: GitHub's status and headers when it answered.
pub(crate) fn record_failure(endpoint: &'static str, error: &octocrab::Error) {
    match error {
        octocrab::Error::GitHub { source, .. } => {
            record_call(endpoint, Some(source.status_code.as_u16()), source.headers.as_ref())
        }
        _ => record_call(endpoint, None, None),
    }
}

/// GitHub calls as one installation of the App.
pub struct InstallationClient<'a> {
    pub app: &'a GitHubApp,
    pub installation: InstallationId,
}

impl InstallationClient<'_> {
    /// Runs `call` with the installation's client, minting a new token once if GitHub answers 401.
    pub async fn call<T, F, Fut>(&self, now: DateTime<Utc>, call: F) -> Result<T, CallError>
    where
        F: Fn(Octocrab) -> Fut,
        Fut: Future<Output = Result<T, CallError>>,
    {
        self.call_at(now, false, call).await
    }

    /// [`InstallationClient::call`] for GraphQL: the client's root is GitHub's GraphQL root, so
    /// `POST /graphql` reaches it on GitHub Enterprise Server too.
    pub async fn call_graphql<T, F, Fut>(&self, now: DateTime<Utc>, call: F) -> Result<T, CallError>
    where
        F: Fn(Octocrab) -> Fut,
        Fut: Future<Output = Result<T, CallError>>,
    {
        self.call_at(now, true, call).await
    }

    async fn call_at<T, F, Fut>(&self, now: DateTime<Utc>, graphql: bool, call: F) -> Result<T, CallError>
    where
        F: Fn(Octocrab) -> Fut,
        Fut: Future<Output = Result<T, CallError>>,
    {
        match self.app.metrics() {
            // The calls made inside are counted for this installation ([`record_call`]).
            Some(metrics) => {
                CALLER
                    .scope(
                        (metrics, Some(self.installation)),
                        self.call_with_token(now, graphql, call),
                    )
                    .await
            }
            None => self.call_with_token(now, graphql, call).await,
        }
    }

    async fn call_with_token<T, F, Fut>(&self, now: DateTime<Utc>, graphql: bool, call: F) -> Result<T, CallError>
    where
        F: Fn(Octocrab) -> Fut,
        Fut: Future<Output = Result<T, CallError>>,
    {
        let token = self.token(now).await?;
        match call(self.app.as_installation(&token, graphql)?).await {
            Err(CallError::Unauthorized) => {
                self.app.tokens().forget(self.installation, &token).await;
                let token = self.token(now).await?;
                call(self.app.as_installation(&token, graphql)?).await
            }
            other => other,
        }
    }

    async fn token(&self, now: DateTime<Utc>) -> Result<String, CallError> {
        self.app
            .tokens()
            .token(self.installation, now, || self.app.mint_token(self.installation, now))
            .await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use chrono::{Duration, TimeZone, Utc};
    use tokio::sync::Notify;

    use super::{CachedToken, TokenCache};
    use crate::types::InstallationId;

    fn token(value: &str, expires_at: chrono::DateTime<Utc>) -> CachedToken {
        CachedToken {
            token: value.to_owned(),
            expires_at,
        }
    }

    #[tokio::test]
    async fn a_slow_mint_for_one_installation_does_not_delay_another() {
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap();
        let cache = Arc::new(TokenCache::default());
        let started = Arc::new(Notify::new());
        let release = Arc::new(Notify::new());
        let slow = tokio::spawn({
            let (cache, started, release) = (cache.clone(), started.clone(), release.clone());
            async move {
                cache
                    .token(InstallationId(1), now, || async move {
                        started.notify_one();
                        release.notified().await;
                        Ok(token("slow", now + Duration::hours(1)))
                    })
                    .await
            }
        });
        // The slow mint is under way and holds installation 1's lock.
        started.notified().await;
        let other = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            cache.token(InstallationId(2), now, || async move {
                Ok(token("quick", now + Duration::hours(1)))
            }),
        )
        .await
        .expect("installation 2 waited for installation 1's mint");
        assert_eq!(other.unwrap(), "quick");
        release.notify_one();
        assert_eq!(slow.await.unwrap().unwrap(), "slow");
    }

    #[tokio::test]
    async fn concurrent_callers_of_one_installation_cause_one_mint() {
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap();
        let cache = TokenCache::default();
        let mints = AtomicUsize::new(0);
        let callers = (0..8).map(|_| {
            cache.token(InstallationId(7), now, || async {
                let n = mints.fetch_add(1, Ordering::SeqCst);
                // Let the other callers reach the lock while this mint is in flight.
                for _ in 0..10 {
                    tokio::task::yield_now().await;
                }
                Ok(token(&format!("token-{n}"), now + Duration::hours(1)))
            })
        });
        let tokens = futures_util::future::join_all(callers).await;
        assert_eq!(mints.load(Ordering::SeqCst), 1);
        assert!(
            tokens.iter().all(|t| t.as_deref().ok() == Some("token-0")),
            "{tokens:?}"
        );
    }

    #[tokio::test]
    async fn a_401_forgets_only_the_token_that_failed_and_an_expiring_token_is_replaced() {
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap();
        let cache = TokenCache::default();
        let mints = AtomicUsize::new(0);
        let get = |at| {
            cache.token(InstallationId(3), at, || async {
                let n = mints.fetch_add(1, Ordering::SeqCst);
                Ok(token(&format!("token-{n}"), now + Duration::minutes(30)))
            })
        };
        assert_eq!(get(now).await.unwrap(), "token-0");
        assert_eq!(get(now).await.unwrap(), "token-0");
        // Two callers saw a 401 with token-0: the first forgets it and a new one is minted; the
        // second's forget finds token-1 cached and leaves it.
        cache.forget(InstallationId(3), "token-0").await;
        assert_eq!(get(now).await.unwrap(), "token-1");
        cache.forget(InstallationId(3), "token-0").await;
        assert_eq!(get(now).await.unwrap(), "token-1");
        assert_eq!(mints.load(Ordering::SeqCst), 2);
        // Less than five minutes left: replaced.
        assert_eq!(get(now + Duration::minutes(26)).await.unwrap(), "token-2");
    }
}
