//! Signed calls to agents (DESIGN.md §3): `POST` JSON with `X-Shiplog-Event`,
//! `X-Shiplog-Delivery` (a UUID, the same on every retry of one delivery, so an agent can drop
//! repeats) and `X-Shiplog-Signature-256: sha256=HMAC(secret, body)`.
//!
//! A call either gets a 2xx, or says what went wrong; retrying is the job queue's business.

use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::config::Secret;
use crate::github::signature;

/// How long an agent has to answer.
const TIMEOUT_SECONDS: u64 = 10;

/// What an agent answered, or why it did not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub status: Option<u16>,
    pub error: Option<String>,
}

impl Attempt {
    pub fn succeeded(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

#[derive(Clone, Debug)]
pub struct Outbound {
    client: reqwest::Client,
}

impl Outbound {
    pub fn new() -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(TIMEOUT_SECONDS))
            .user_agent(concat!("shiplog/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self { client })
    }

    /// Posts `body` to `url`, signed with `secret`.
    pub async fn post(&self, url: &str, secret: &Secret, event: &str, delivery: &str, body: &[u8]) -> Attempt {
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
                let status = response.status().as_u16();
                let error = (!response.status().is_success()).then(|| format!("the agent answered {status}"));
                Attempt {
                    status: Some(status),
                    error,
                }
            }
            Err(error) => Attempt {
                status: None,
                error: Some(format!("the agent could not be reached: {error}")),
            },
        }
    }
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

    #[test]
    fn delivery_ids_are_stable_and_uuid_shaped() {
        let id = delivery_id("trigger:1:2");
        assert_eq!(id, delivery_id("trigger:1:2"));
        assert_ne!(id, delivery_id("trigger:1:3"));
        let parts: Vec<usize> = id.split('-').map(str::len).collect();
        assert_eq!(parts, vec![8, 4, 4, 4, 12]);
    }
}
