//! `POST /webhooks/github`: the GitHub App's webhook URL.
//!
//! Order of checks: size (413), signature over the raw bytes (401, before anything else is
//! trusted), the App the delivery names (403), delivery headers (400), payload (400 naming the field), then intake, which answers
//! only after the delivery and its effects are committed. Every delivery is counted by event and
//! how it ended (`shiplog_webhook_deliveries_total`).

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};

use super::body::{read_limited, WEBHOOK_BODY_LIMIT};
use super::AppState;
use crate::deploys::{from_github_state, DeployStatus};
use crate::error::ApiError;
use crate::events::WebhookEvent;
use crate::github::{events, signature};
use crate::intake::{Delivery, Outcome, Receipt};
use crate::types::DeliveryId;

#[utoipa::path(post, path = "/webhooks/github",
    params(
        ("X-GitHub-Event" = String, Header, description = "the event's name"),
        ("X-GitHub-Delivery" = String, Header, description = "the delivery's id"),
    ),
    request_body(content = Object, description = "GitHub's webhook payload (at most 25 MB)"),
    responses(
        (status = 200, description = "the delivery and everything it changed are committed", body = crate::intake::Receipt),
        (status = 400, description = "a missing header, or a payload that does not parse (`errors[].field`)"),
        (status = 413, description = "a body over 25 MB"),
    ))]
#[tracing::instrument(skip_all, fields(delivery = tracing::field::Empty, event = tracing::field::Empty, outcome = tracing::field::Empty))]
pub async fn receive_github_webhook(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let received = receive(&req, payload, &state).await;
    // The event is counted as named (a fixed list, `other` beyond it), even when refused.
    let event = header_value(&req, "x-github-event").unwrap_or_default();
    let outcome = match &received {
        Ok(receipt) => receipt.outcome.as_str(),
        Err(error) if error.status_code().is_client_error() => "rejected",
        Err(_) => "failed",
    };
    state.metrics.record_delivery(event, outcome);
    received.map(|receipt| HttpResponse::Ok().json(receipt))
}

async fn receive(req: &HttpRequest, payload: web::Payload, state: &AppState) -> Result<Receipt, ApiError> {
    let body = read_limited(req, payload, WEBHOOK_BODY_LIMIT).await?;
    signature::verify(
        &state.config.webhook_secrets,
        header_value(req, "x-hub-signature-256"),
        &body,
    )
    .map_err(|error| ApiError::Unauthorized {
        kind: "invalid-signature",
        detail: error.to_string(),
        challenge: None,
    })?;

    check_app_target(req, state)?;

    let event = header_value(req, "x-github-event")
        .filter(|e| !e.is_empty() && e.len() <= 64 && e.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
        .ok_or_else(|| {
            ApiError::bad_request(
                "missing-header",
                "the X-GitHub-Event header is missing or not an event name",
            )
        })?;
    let delivery_id = header_value(req, "x-github-delivery")
        .ok_or_else(|| ApiError::bad_request("missing-header", "the X-GitHub-Delivery header is missing"))
        .and_then(|raw| {
            DeliveryId::parse(raw)
                .map_err(|message| ApiError::bad_request("missing-header", format!("X-GitHub-Delivery {message}")))
        })?;
    let span = tracing::Span::current();
    span.record("delivery", delivery_id.as_str());
    span.record("event", event);

    let json = json_bytes(req, &body)?;
    let parsed = events::parse(event, &json).map_err(|error| ApiError::invalid_field(error.field, error.message))?;
    let deploy_status = match &parsed.event {
        WebhookEvent::Deployment(_) => Some(DeployStatus::Initiated.as_str()),
        WebhookEvent::DeploymentStatus(status) => from_github_state(&status.state).map(DeployStatus::as_str),
        _ => None,
    };
    let delivery = Delivery {
        id: delivery_id,
        event: event.to_owned(),
        parsed,
        app_slug: state.config.github_app_slug.clone(),
        // Without the App's credentials a backfill could only fail.
        backfill_on_install_days: if state.config.github_app.is_some() {
            state.config.backfill_on_install_days
        } else {
            0
        },
    };
    let receipt = state.intake.receive(delivery, state.clock.now()).await?;

    span.record("outcome", receipt.outcome.as_str());
    if receipt.wake_jobs {
        state.jobs_wake.notify_one();
    }
    // The delivery log is the `webhook_delivery` table (outcome and reason); a line per delivery
    // would cost more than the delivery itself (README, "Logs").
    tracing::debug!(reason = receipt.reason.as_deref(), "webhook delivery handled");
    if let (Outcome::Processed, Some(status)) = (receipt.outcome, deploy_status) {
        state.metrics.record_deploy("github", status);
    }
    Ok(receipt)
}

/// With `GITHUB_APP_ID` set, an App delivery (`X-GitHub-Hook-Installation-Target-Type:
/// integration`) must name that App in `X-GitHub-Hook-Installation-Target-ID`: a webhook secret
/// shared with another App must not let that App's deliveries in. Deliveries without the header
/// (older GitHub Enterprise Server) and webhooks of other kinds (repository, organization) are
/// not App deliveries and are taken on their signature alone.
fn check_app_target(req: &HttpRequest, state: &AppState) -> Result<(), ApiError> {
    let Some(app) = state.config.github_app.as_ref() else {
        return Ok(());
    };
    let Some(target) = header_value(req, "x-github-hook-installation-target-id") else {
        return Ok(());
    };
    let kind = header_value(req, "x-github-hook-installation-target-type");
    if kind.is_some_and(|k| !k.eq_ignore_ascii_case("integration")) {
        return Ok(());
    }
    if target.parse::<u64>().ok() == Some(app.app_id) {
        return Ok(());
    }
    Err(ApiError::Forbidden {
        kind: "wrong-app",
        detail: "X-GitHub-Hook-Installation-Target-ID names another GitHub App than GITHUB_APP_ID".to_owned(),
    })
}

fn header_value<'r>(req: &'r HttpRequest, name: &str) -> Option<&'r str> {
    req.headers().get(name).and_then(|v| v.to_str().ok()).map(str::trim)
}

/// The JSON document: the body itself, or the `payload` field of a form-encoded delivery (a
/// webhook configured with content type `form`). The signature always covers the raw body.
fn json_bytes(req: &HttpRequest, body: &web::Bytes) -> Result<web::Bytes, ApiError> {
    let is_form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    // A JSON body sent with a form content type (e.g. `curl -d`) is still JSON.
    let looks_like_json = body
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b'{' || *b == b'[');
    if !is_form || looks_like_json {
        return Ok(body.clone());
    }
    #[derive(serde::Deserialize)]
    struct Form {
        payload: String,
    }
    let form: Form = serde_urlencoded::from_bytes(body).map_err(|e| {
        ApiError::invalid_field("payload", format!("form-encoded delivery without a payload field: {e}"))
    })?;
    Ok(web::Bytes::from(form.payload))
}
