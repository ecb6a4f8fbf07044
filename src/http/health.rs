//! Liveness and readiness.

use actix_web::{web, HttpResponse};
use serde_json::json;

use super::AppState;
use crate::error::ApiError;
use crate::supervise;

#[utoipa::path(get, path = "/healthz", responses((status = 200, description = "the process is up", body = Liveness)))]
/// The process is up.
pub async fn check_liveness() -> HttpResponse {
    HttpResponse::Ok().json(Liveness { status: "ok" })
}

#[utoipa::path(get, path = "/readyz", responses(
    (status = 200, description = "the database answers and every long-lived task runs", body = Object),
    (status = 503, description = "the database or a long-lived task (named) is down"),
))]
/// The process can serve: the database answers and every long-lived task that should run does
/// (`running`, or `off` where it does not run here); 503 naming the task that stopped.
pub async fn check_readiness(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    state.store.ping().await?;
    if let Some((task, reason)) = state.tasks.stopped() {
        return Err(ApiError::Unavailable {
            detail: format!("the {task} task has stopped ({reason}); the server is about to stop"),
        });
    }
    let mut body = json!({"status": "ready", "database": state.store.backend_name()});
    for task in supervise::ALL {
        body[task] = json!(state.tasks.state(task).as_str());
    }
    Ok(HttpResponse::Ok().json(body))
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Liveness {
    /// Always `ok`.
    status: &'static str,
}
