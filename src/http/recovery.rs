//! `GET /api/deliveries/recovery` (admin): whether the catch-up on missed webhook deliveries is
//! on (and why not), when the next pass runs, and the last pass's result. Reads only.

use actix_web::{web, HttpResponse};

use super::auth::Admin;
use super::AppState;
use crate::error::ApiError;
use crate::recovery;

#[utoipa::path(get, path = "/api/deliveries/recovery",
    responses((status = 200, description = "the catch-up: on or off (and why), the next pass, the last pass's counts", body = recovery::RecoveryStatus)))]
#[tracing::instrument(skip_all)]
pub async fn show_recovery(_: Admin, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let status = recovery::status(
        &state.store,
        state.github.is_some(),
        state.config.delivery_recovery_interval,
    )
    .await?;
    Ok(HttpResponse::Ok().json(status))
}
