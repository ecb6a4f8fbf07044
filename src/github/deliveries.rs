//! The App's webhook deliveries as GitHub logged them (`GET /app/hook/deliveries`, newest first,
//! kept three days) and asking GitHub to send one again (`POST
//! /app/hook/deliveries/{id}/attempts`), both as the App (JWT). The only place that knows this
//! JSON.
//!
//! octocrab has typed calls for both (`apps().webhook_deliveries()`,
//! `redeliver_webhook_delivery`), but the typed list drops the headers: the next page is only in
//! `Link: rel="next"` (a `cursor` query) and the rate limit only in `x-ratelimit-*`. So the calls
//! go through `history::send` as the backfill's do: only the query of the next URL is kept and
//! the path is rebuilt under the configured API URL, so the JWT is never sent elsewhere.

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::app::GitHubApp;
use super::client::counted_as_app;
use super::compare::is_page_query;
use super::error::{brief, CallError};
use super::history::{send, Page, Request};
use crate::types::DeliveryId;

/// Deliveries per page: GitHub's maximum for this endpoint.
pub const PER_PAGE: u32 = 100;
const MAX_NAME_CHARS: usize = 100;

/// One delivery of the App's webhook as GitHub logged it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HookDelivery {
    /// GitHub's id of this attempt (a redelivery has its own id and the original's GUID).
    pub id: i64,
    /// `X-GitHub-Delivery`.
    pub guid: String,
    pub delivered_at: DateTime<Utc>,
    pub redelivery: bool,
    /// `OK`, or what went wrong (`Invalid HTTP Response: 503`, `failed to connect to host`).
    pub status: String,
    /// The HTTP status shiplog answered; 0 when GitHub could not connect.
    pub status_code: u16,
    pub event: Option<String>,
    pub action: Option<String>,
    pub installation_id: Option<i64>,
}

impl HookDelivery {
    /// Whether GitHub counted this attempt as failed: anything but `OK` with a 2xx.
    pub fn failed(&self) -> bool {
        !(self.status == "OK" && (200..300).contains(&self.status_code))
    }
}

#[derive(Deserialize)]
struct Wire {
    id: i64,
    guid: String,
    delivered_at: DateTime<Utc>,
    #[serde(default)]
    redelivery: bool,
    status: String,
    status_code: i64,
    event: Option<String>,
    action: Option<String>,
    installation_id: Option<i64>,
}

impl Wire {
    fn into_delivery(self) -> Result<HookDelivery, String> {
        // The rules `X-GitHub-Delivery` meets at `/webhooks/github`, so a GUID read here compares
        // with the stored ones.
        let guid = DeliveryId::parse(&self.guid).map_err(|message| format!("delivery {}: guid {message}", self.id))?;
        let name = |field: &str, raw: Option<String>| match raw {
            Some(v) if v.chars().count() > MAX_NAME_CHARS => Err(format!("delivery {}: {field} is too long", self.id)),
            other => Ok(other),
        };
        Ok(HookDelivery {
            id: self.id,
            event: name("event", self.event.clone())?,
            action: name("action", self.action.clone())?,
            status: brief(&self.status),
            status_code: u16::try_from(self.status_code).unwrap_or(0),
            guid: guid.as_str().to_owned(),
            delivered_at: self.delivered_at,
            redelivery: self.redelivery,
            installation_id: self.installation_id,
        })
    }
}

/// One page of the App's deliveries, newest first: the first page, or the one a previous page's
/// `next` named. A delivery that does not fit (a GUID that is not one) is skipped with a warning.
pub async fn list_page(
    app: &GitHubApp,
    next: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Page<HookDelivery>, CallError> {
    let query = match next {
        None => format!("per_page={PER_PAGE}"),
        Some(query) if is_page_query(query) => query.to_owned(),
        Some(_) => return Err(CallError::Refused("the next page is not a page query".to_owned())),
    };
    let answer = counted_as_app(
        app,
        send(
            app.as_app(),
            Request::Get(format!("/app/hook/deliveries?{query}")),
            "/app/hook/deliveries",
            "the App's webhook deliveries",
            now,
        ),
    )
    .await?;
    let wire: Vec<serde_json::Value> = serde_json::from_str(&answer.body)
        .map_err(|e| CallError::Refused(brief(&format!("unexpected answer for the webhook deliveries: {e}"))))?;
    let items = wire
        .into_iter()
        .filter_map(|node| {
            let parsed = serde_json::from_value::<Wire>(node)
                .map_err(|e| brief(&e.to_string()))
                .and_then(Wire::into_delivery);
            parsed
                .map_err(|reason| tracing::warn!(%reason, "a webhook delivery GitHub listed was skipped"))
                .ok()
        })
        .collect();
    Ok(Page {
        items,
        next: answer.next,
        rate: answer.rate,
        total: None,
    })
}

/// Asks GitHub to send delivery `id` again (202); returns the rate limit the answer reported.
pub async fn redeliver(
    app: &GitHubApp,
    id: i64,
    now: DateTime<Utc>,
) -> Result<Option<super::history::RateLimit>, CallError> {
    let answer = counted_as_app(
        app,
        send(
            app.as_app(),
            Request::PostEmpty(format!("/app/hook/deliveries/{id}/attempts")),
            "/app/hook/deliveries/{id}/attempts",
            &format!("webhook delivery {id}"),
            now,
        ),
    )
    .await?;
    Ok(answer.rate)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(guid: &str, status: &str, code: i64) -> Wire {
        serde_json::from_value(serde_json::json!({
            "id": 12345678, "guid": guid, "delivered_at": "2019-06-03T00:57:16Z", "redelivery": false,
            "duration": 0.27, "status": status, "status_code": code, "event": "issues", "action": "opened",
            "installation_id": 123, "repository_id": 456, "url": "https://www.example.com",
            "throttled_at": "2019-06-03T00:57:16Z"
        }))
        .unwrap()
    }

    #[test]
    fn github_s_documented_delivery_reads_and_only_ok_with_2xx_is_not_failed() {
        let ok = wire("0b989ba4-242f-11e5-81e1-c7b6966d2516", "OK", 200)
            .into_delivery()
            .unwrap();
        assert_eq!(ok.id, 12345678);
        assert_eq!(ok.installation_id, Some(123));
        assert!(!ok.failed());
        assert!(wire("a-b", "Invalid HTTP Response: 503", 503)
            .into_delivery()
            .unwrap()
            .failed());
        assert!(wire("a-b", "failed to connect to host", 0)
            .into_delivery()
            .unwrap()
            .failed());
        assert!(wire("a-b", "OK", 0).into_delivery().unwrap().failed());
    }

    #[test]
    fn a_guid_that_is_not_a_delivery_id_is_refused() {
        assert!(wire("", "OK", 200).into_delivery().is_err());
        assert!(wire("a b", "OK", 200).into_delivery().is_err());
        assert!(wire(&"a".repeat(101), "OK", 200).into_delivery().is_err());
    }
}
