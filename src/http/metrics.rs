//! `GET /metrics`: this server's Prometheus registry (`crate::metrics`) in OpenMetrics text, on
//! the main listener behind [`Access::Metrics`](super::auth::Access::Metrics), or on a listener
//! of its own (`SHIPLOG_METRICS_LISTEN`, see `startup`). Also [`time_requests`], the middleware
//! that times every request by its route pattern.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, HttpResponse};

use super::AppState;
use crate::metrics::{queue, CONTENT_TYPE};

/// The scrape. The job queue's gauges are read from the database first; if it does not answer,
/// the rest is served with the queue as last read (and the failure is logged).
#[tracing::instrument(skip_all)]
pub async fn show_metrics(state: web::Data<AppState>) -> HttpResponse {
    if let Err(error) = queue::refresh(&state.metrics, &state.store, state.clock.now()).await {
        tracing::warn!(%error, "the metrics scrape could not read the job queue");
    }
    HttpResponse::Ok()
        .content_type(CONTENT_TYPE)
        .insert_header(("Cache-Control", "no-store"))
        .body(state.metrics.encode())
}

/// Times each request into `shiplog_http_request_duration_seconds{method,route,status}`: the
/// route is the pattern that matched (`/deployments/{id}`), never the path.
pub async fn time_requests(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let metrics = req.app_data::<web::Data<AppState>>().map(|state| state.metrics.clone());
    let method = req.method().clone();
    let result = next.call(req).await;
    if let Some(metrics) = metrics {
        let seconds = started.elapsed().as_secs_f64();
        match &result {
            Ok(res) => metrics.record_request(
                method.as_str(),
                res.request().match_pattern(),
                res.status().as_u16(),
                seconds,
            ),
            Err(error) => metrics.record_request(
                method.as_str(),
                None,
                error.as_response_error().status_code().as_u16(),
                seconds,
            ),
        }
    }
    result
}
