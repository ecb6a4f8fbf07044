//! The App's webhook, as GitHub runs it: deliveries sent to a target URL (shiplog's
//! `/webhooks/github`) with GitHub's headers and signature, each attempt logged as GitHub logs it
//! (`OK`, or the failure with status code 0 when nothing answered), the log served at `GET
//! /app/hook/deliveries` (JWT, newest first, `cursor` pages with a `Link` header), and `POST
//! /app/hook/deliveries/{id}/attempts`, which sends the logged payload again with the same GUID
//! before it answers 202 and logs the new attempt as a redelivery.

use std::collections::HashSet;
use std::sync::Mutex;

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::{answer_fault, check_app_jwt, github_error, rate_headers, record, FakeGitHub, FakeState, Resource, APP_ID};

/// The first id GitHub gives a delivery here.
const FIRST_ID: i64 = 90_000_000_001;

#[derive(Clone, Debug)]
pub struct HookAttempt {
    pub id: i64,
    pub guid: String,
    pub event: String,
    pub action: Option<String>,
    pub installation_id: Option<i64>,
    pub redelivery: bool,
    pub status: String,
    pub status_code: u16,
    pub delivered_at: DateTime<Utc>,
    body: Vec<u8>,
}

#[derive(Default)]
pub struct HookState {
    target: Mutex<Option<String>>,
    /// Oldest first.
    log: Mutex<Vec<HookAttempt>>,
    /// Delivery ids asked for with `POST …/attempts`, in order.
    asks: Mutex<Vec<i64>>,
    /// GUIDs whose redelivery GitHub refuses (422).
    refused: Mutex<HashSet<String>>,
    /// What `x-ratelimit-remaining` says on these endpoints (4990 unless a test sets it).
    remaining: Mutex<Option<u32>>,
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/app/hook/deliveries", web::get().to(list_deliveries))
        .route("/app/hook/deliveries/{id}/attempts", web::post().to(redeliver));
}

impl FakeGitHub {
    /// Where the App's webhook sends deliveries.
    pub fn set_webhook_target(&self, url: &str) {
        *self.state.hooks.target.lock().unwrap() = Some(url.to_owned());
    }

    /// Sends a delivery of `event` to the webhook target, as GitHub does, and logs the attempt;
    /// returns its GUID.
    pub async fn send_hook(&self, event: &str, body: &Value) -> String {
        let guid = uuid::Uuid::new_v4().to_string();
        let body = serde_json::to_vec(body).unwrap();
        attempt(&self.state, &guid, event, body, false).await;
        guid
    }

    /// Logs a delivery GitHub made without sending anything: `ok` as answered 200, else as a 502.
    pub fn log_hook(&self, event: &str, body: &Value, ok: bool) -> String {
        let guid = uuid::Uuid::new_v4().to_string();
        let (status, code) = if ok {
            ("OK".to_owned(), 200)
        } else {
            ("Invalid HTTP Response: 502".to_owned(), 502)
        };
        log(
            &self.state,
            &guid,
            event,
            serde_json::to_vec(body).unwrap(),
            false,
            status,
            code,
        );
        guid
    }

    /// GitHub logs the attempts of `guid` as failed (shiplog answered too late, say).
    pub fn mark_hook_failed(&self, guid: &str) {
        for attempt in self.state.hooks.log.lock().unwrap().iter_mut() {
            if attempt.guid == guid {
                attempt.status = "timed out".to_owned();
                attempt.status_code = 0;
            }
        }
    }

    /// The App's rate limit has `remaining` calls left, as these endpoints' headers say.
    pub fn set_app_rate_remaining(&self, remaining: u32) {
        *self.state.hooks.remaining.lock().unwrap() = Some(remaining);
    }

    /// GitHub answers 422 to asks for `guid`.
    pub fn refuse_redelivery(&self, guid: &str) {
        self.state.hooks.refused.lock().unwrap().insert(guid.to_owned());
    }

    /// The webhook's log, oldest first.
    pub fn hook_log(&self) -> Vec<HookAttempt> {
        self.state.hooks.log.lock().unwrap().clone()
    }

    /// The GUIDs of the deliveries asked for again, in order (refused asks too).
    pub fn redelivery_asks(&self) -> Vec<String> {
        let log = self.hook_log();
        self.state
            .hooks
            .asks
            .lock()
            .unwrap()
            .iter()
            .map(|id| {
                log.iter()
                    .find(|a| a.id == *id)
                    .map(|a| a.guid.clone())
                    .unwrap_or_default()
            })
            .collect()
    }
}

fn log(state: &FakeState, guid: &str, event: &str, body: Vec<u8>, redelivery: bool, status: String, code: u16) -> i64 {
    let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mut log = state.hooks.log.lock().unwrap();
    let id = FIRST_ID + log.len() as i64;
    log.push(HookAttempt {
        id,
        guid: guid.to_owned(),
        event: event.to_owned(),
        action: parsed["action"].as_str().map(str::to_owned),
        installation_id: parsed["installation"]["id"].as_i64(),
        redelivery,
        status,
        status_code: code,
        delivered_at: Utc::now(),
        body,
    });
    id
}

/// Sends one attempt to the target with GitHub's headers and logs how it went.
async fn attempt(state: &FakeState, guid: &str, event: &str, body: Vec<u8>, redelivery: bool) {
    let target = state
        .hooks
        .target
        .lock()
        .unwrap()
        .clone()
        .expect("set_webhook_target first");
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let sent = client
        .post(&target)
        .header("content-type", "application/json")
        .header("user-agent", "GitHub-Hookshot/fake")
        .header("x-github-event", event)
        .header("x-github-delivery", guid)
        .header("x-github-hook-installation-target-type", "integration")
        .header("x-github-hook-installation-target-id", APP_ID.to_string())
        .header(
            "x-hub-signature-256",
            shiplog::github::signature::sign(crate::helpers::WEBHOOK_SECRET, &body),
        )
        .body(body.clone())
        .send()
        .await;
    let (status, code) = match sent {
        Ok(response) if response.status().is_success() => ("OK".to_owned(), response.status().as_u16()),
        Ok(response) => (
            format!("Invalid HTTP Response: {}", response.status().as_u16()),
            response.status().as_u16(),
        ),
        Err(_) => ("failed to connect to host".to_owned(), 0),
    };
    log(state, guid, event, body, redelivery, status, code);
}

#[derive(serde::Deserialize)]
struct ListQuery {
    per_page: Option<usize>,
    cursor: Option<String>,
}

/// `GET /app/hook/deliveries`: newest first; `cursor` (`v1_<id>`) starts a page at that id.
async fn list_deliveries(state: web::Data<FakeState>, req: HttpRequest, query: web::Query<ListQuery>) -> HttpResponse {
    if let Some(refused) = app_gate(&state, &req) {
        return refused;
    }
    let per_page = query.per_page.unwrap_or(30).clamp(1, 100);
    let from = match query.cursor.as_deref() {
        None => i64::MAX,
        Some(cursor) => match cursor.strip_prefix("v1_").and_then(|id| id.parse::<i64>().ok()) {
            Some(id) => id,
            None => return github_error(422, "Invalid cursor", "https://docs.github.com/rest/apps/webhooks"),
        },
    };
    let mut newest_first = state.hooks.log.lock().unwrap().clone();
    newest_first.reverse();
    let rest: Vec<&HookAttempt> = newest_first.iter().filter(|a| a.id <= from).collect();
    let page: Vec<Value> = rest
        .iter()
        .take(per_page)
        .map(|a| {
            json!({
                "id": a.id, "guid": a.guid, "delivered_at": a.delivered_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                "redelivery": a.redelivery, "duration": 0.03, "status": a.status, "status_code": a.status_code,
                "event": a.event, "action": a.action, "installation_id": a.installation_id,
                "repository_id": null, "throttled_at": null
            })
        })
        .collect();
    let mut builder = HttpResponse::Ok();
    rate_headers(&mut builder, remaining(&state), Utc::now().timestamp() + 3600);
    if let Some(next) = rest.get(per_page) {
        let base_url = format!("http://{}", req.connection_info().host());
        builder.insert_header((
            "link",
            format!(
                "<{base_url}/app/hook/deliveries?per_page={per_page}&cursor=v1_{}>; rel=\"next\"",
                next.id
            ),
        ));
    }
    builder.json(page)
}

/// `POST /app/hook/deliveries/{id}/attempts`: sends the delivery again, then 202.
async fn redeliver(state: web::Data<FakeState>, req: HttpRequest, path: web::Path<i64>) -> HttpResponse {
    if let Some(refused) = app_gate(&state, &req) {
        return refused;
    }
    let id = path.into_inner();
    state.hooks.asks.lock().unwrap().push(id);
    let found = state.hooks.log.lock().unwrap().iter().find(|a| a.id == id).cloned();
    let Some(original) = found else {
        return github_error(404, "Not Found", "https://docs.github.com/rest/apps/webhooks");
    };
    if state.hooks.refused.lock().unwrap().contains(&original.guid) {
        return github_error(
            422,
            "Validation Failed: this delivery cannot be redelivered",
            "https://docs.github.com/rest/apps/webhooks",
        );
    }
    attempt(&state, &original.guid, &original.event, original.body, true).await;
    let mut builder = HttpResponse::Accepted();
    rate_headers(&mut builder, remaining(&state), Utc::now().timestamp() + 3600);
    builder.json(json!({}))
}

fn remaining(state: &FakeState) -> u32 {
    state.hooks.remaining.lock().unwrap().unwrap_or(4990)
}

/// Records the call, checks the App's JWT and hands out a queued fault.
fn app_gate(state: &FakeState, req: &HttpRequest) -> Option<HttpResponse> {
    record(state, req);
    if let Err(refused) = check_app_jwt(req) {
        return Some(refused);
    }
    let fault = state.faults.lock().unwrap().pop_front();
    fault.map(|fault| answer_fault(fault, Resource::Core))
}
