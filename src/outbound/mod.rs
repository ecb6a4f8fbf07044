//! Signed calls to agents (DESIGN.md §3): `POST` JSON with `X-Shiplog-Event`,
//! `X-Shiplog-Delivery` (a UUID, the same on every retry of one delivery, so an agent can drop
//! repeats) and `X-Shiplog-Signature-256: sha256=HMAC(secret, body)`.
//!
//! A call either gets a 2xx, or says what went wrong; retrying is the job queue's business.
//! Every call goes only where [`policy`] allows (public addresses, or `SHIPLOG_OUTBOUND_ALLOW`),
//! checked after DNS resolution ([`resolve`]); redirects are not followed and proxies from the
//! environment are not used, since either would take the call somewhere unchecked.

pub mod policy;
mod resolve;

use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::config::Secret;
use crate::github::signature;
pub use policy::{AllowList, Refused, TargetError};

/// How long an agent has to answer.
const TIMEOUT_SECONDS: u64 = 10;

/// What an agent answered, or why it did not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub status: Option<u16>,
    pub error: Option<String>,
    /// The target may not be called (see [`policy`]); nothing was sent, and retrying will not help.
    pub refused: bool,
}

impl Attempt {
    pub fn succeeded(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }

    fn failed(error: String) -> Self {
        Self {
            status: None,
            error: Some(error),
            refused: false,
        }
    }

    fn refused(refused: &Refused) -> Self {
        Self {
            status: None,
            error: Some(format!("refused, nothing sent: {refused}")),
            refused: true,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Outbound {
    client: reqwest::Client,
    allow: Arc<AllowList>,
    /// Counts each call by event and outcome (`shiplog_agent_calls_total`).
    metrics: Option<Arc<crate::metrics::Metrics>>,
}

impl Outbound {
    /// A client that calls public addresses and those in `allow`.
    pub fn new(allow: AllowList) -> Result<Self, reqwest::Error> {
        if !allow.is_empty() {
            tracing::info!(%allow, "outbound calls may also reach these non-public ranges ({})", policy::SETTING);
        }
        let allow = Arc::new(allow);
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(TIMEOUT_SECONDS))
            .user_agent(concat!("shiplog/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(Arc::new(resolve::CheckedResolver::new(allow.clone())))
            .build()?;
        Ok(Self {
            client,
            allow,
            metrics: None,
        })
    }

    /// Counts calls in `metrics`.
    pub fn with_metrics(self, metrics: Arc<crate::metrics::Metrics>) -> Self {
        Self {
            metrics: Some(metrics),
            ..self
        }
    }

    /// Posts `body` to `url`, signed with `secret`, if `url` may be called.
    pub async fn post(&self, url: &str, secret: &Secret, event: &str, delivery: &str, body: &[u8]) -> Attempt {
        let attempt = self.send(url, secret, event, delivery, body).await;
        if let Some(metrics) = &self.metrics {
            let outcome = match &attempt {
                a if a.succeeded() => "success",
                a if a.refused => "refused",
                Attempt { status: Some(_), .. } => "failed",
                Attempt { status: None, .. } => "unreachable",
            };
            metrics.record_agent_call(event, outcome);
        }
        attempt
    }

    async fn send(&self, url: &str, secret: &Secret, event: &str, delivery: &str, body: &[u8]) -> Attempt {
        // IP literals never reach the resolver: check them (and `localhost`) here.
        let url = match self.allow.check_target(url) {
            Ok(url) => url,
            Err(TargetError::Refused(refused)) => return Attempt::refused(&refused),
            Err(error @ TargetError::NotHttp) => return Attempt::failed(format!("the agent URL {error}")),
        };
        let result = self
            .client
            .post(url)
            .header("Content-Type", "application/json")
            .header("X-Shiplog-Event", event)
            .header("X-Shiplog-Delivery", delivery)
            .header("X-Shiplog-Signature-256", signature::sign(secret.expose(), body))
            .body(body.to_vec())
            .send()
            .await;
        match result {
            Ok(response) => {
                let status = response.status();
                let error = if status.is_redirection() {
                    Some(format!(
                        "the agent answered {} (redirects are not followed)",
                        status.as_u16()
                    ))
                } else {
                    (!status.is_success()).then(|| format!("the agent answered {}", status.as_u16()))
                };
                Attempt {
                    status: Some(status.as_u16()),
                    error,
                    refused: false,
                }
            }
            Err(error) => match refusal(&error) {
                Some(refused) => Attempt::refused(refused),
                None => Attempt::failed(format!("the agent could not be reached: {error}")),
            },
        }
    }
}

/// The resolver's refusal somewhere in a client error's chain.
fn refusal<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a Refused> {
    let mut cause = Some(error);
    while let Some(current) = cause {
        if let Some(refused) = current.downcast_ref::<Refused>() {
            return Some(refused);
        }
        cause = current.source();
    }
    None
}

/// A UUID-shaped id derived from `seed`: stable across retries of the same delivery.
pub fn delivery_id(seed: &str) -> String {
    let digest = hex::encode(Sha256::digest(seed.as_bytes()));
    format!(
        "{}-{}-5{}-a{}-{}",
        &digest[0..8],
        &digest[8..12],
        &digest[13..16],
        &digest[17..20],
        &digest[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_name_that_resolves_to_loopback_is_refused_by_the_resolver() {
        let outbound = Outbound::new(AllowList::default()).unwrap();
        // Straight to the client, past the URL check: only the resolver can refuse it.
        let result = outbound.client.post("http://localhost:9/").send().await.unwrap_err();
        let refused = refusal(&result).expect("the resolver's refusal is in the chain");
        assert!(refused.address.is_loopback(), "{refused}");
    }

    #[tokio::test]
    async fn each_call_is_counted_by_event_and_outcome() {
        let metrics = Arc::new(crate::metrics::Metrics::new("sqlite"));
        let outbound = Outbound::new(AllowList::default())
            .unwrap()
            .with_metrics(metrics.clone());
        let secret = Secret::new("s");

        let refused = outbound
            .post("http://127.0.0.1:9/", &secret, "trigger.fired", "d", b"{}")
            .await;
        let not_http = outbound
            .post("ftp://example.com/", &secret, "monitoring.check", "d", b"{}")
            .await;

        assert!(refused.refused && !not_http.refused);
        let text = metrics.encode();
        let count = |event: &str, outcome: &str| {
            let series = format!(r#"shiplog_agent_calls_total{{event="{event}",outcome="{outcome}"}} "#);
            text.lines()
                .find_map(|l| l.strip_prefix(series.as_str()))
                .map(str::to_owned)
        };
        assert_eq!(count("trigger.fired", "refused").as_deref(), Some("1"));
        assert_eq!(count("monitoring.check", "unreachable").as_deref(), Some("1"));
        assert_eq!(count("trigger.fired", "success").as_deref(), Some("0"));
    }

    #[test]
    fn delivery_ids_are_stable_and_uuid_shaped() {
        let id = delivery_id("trigger:1:2");
        assert_eq!(id, delivery_id("trigger:1:2"));
        assert_ne!(id, delivery_id("trigger:1:3"));
        let parts: Vec<usize> = id.split('-').map(str::len).collect();
        assert_eq!(parts, vec![8, 4, 4, 4, 12]);
    }
}
