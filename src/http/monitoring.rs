//! `POST/GET /api/monitoring-plans`, `GET/DELETE /api/monitoring-plans/{id}` and
//! `POST /api/checks/{id}/result` (the agent's verdict, signed like shiplog's own calls).

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};

use super::auth::{authorize_admin, Viewer};
use super::body::read_limited;
use super::AppState;
use crate::connections;
use crate::error::{ApiError, FieldError};
use crate::github::signature;
use crate::limits::Text;
use crate::monitoring::plans::{self, Plan};
use crate::monitoring::request::{self, PlanRequest};

pub async fn create_plan(
    viewer: Viewer,
    state: web::Data<AppState>,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let PlanRequest {
        repository,
        pull_number,
        environments,
        note,
    } = request::validate(&body)?;
    let connection = match viewer.connection_scope() {
        Some(id) => {
            let connection = connections::get(&state.store, id)
                .await?
                .ok_or_else(|| ApiError::not_found("no such connection"))?;
            if !connections::owns(&state.store, &connection, &repository).await? {
                return Err(ApiError::Forbidden {
                    kind: "wrong-connection",
                    detail: format!("{repository} does not belong to this credential's connection"),
                });
            }
            connection
        }
        None => connections::owning(&state.store, &repository).await?.ok_or_else(|| {
            ApiError::unprocessable(vec![FieldError::new("repository", "no connection has this repository")])
        })?,
    };
    let (plan, created) = plans::opt_in(
        &state.store,
        connection.id,
        &repository,
        pull_number,
        &environments,
        note.as_deref(),
        state.clock.now(),
    )
    .await?;
    // Whatever the opt-in queued runs now, not at the worker's next idle poll.
    state.jobs_wake.notify_one();
    let mut response = if created {
        HttpResponse::Created()
    } else {
        HttpResponse::Ok()
    };
    Ok(response
        .insert_header((header::LOCATION, format!("/api/monitoring-plans/{}", plan.id)))
        .json(plan))
}

pub async fn list_plans(viewer: Viewer, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let list = plans::list(&state.store, viewer.connection_scope()).await?;
    Ok(HttpResponse::Ok().json(json!({ "monitoring_plans": list })))
}

pub async fn get_plan(
    viewer: Viewer,
    state: web::Data<AppState>,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let (plan, environments, checks) = visible(&viewer, &state, id).await?;
    let mut body = serde_json::to_value(&plan).map_err(|e| ApiError::Internal(e.into()))?;
    body["deployed_environments"] = serde_json::to_value(&environments).map_err(|e| ApiError::Internal(e.into()))?;
    body["checks"] = serde_json::to_value(&checks).map_err(|e| ApiError::Internal(e.into()))?;
    Ok(HttpResponse::Ok().json(body))
}

pub async fn cancel_plan(
    viewer: Viewer,
    state: web::Data<AppState>,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let (plan, _, _) = visible(&viewer, &state, id).await?;
    if !plans::cancel(&state.store, id, state.clock.now()).await? {
        return Err(ApiError::Conflict {
            detail: format!("plan {id} is {} already", plan.status.as_str()),
        });
    }
    let (plan, _, _) = visible(&viewer, &state, id).await?;
    Ok(HttpResponse::Ok().json(plan))
}

type Visible = (Plan, Vec<plans::LiveEnvironment>, Vec<plans::Check>);

async fn visible(viewer: &Viewer, state: &AppState, id: i64) -> Result<Visible, ApiError> {
    let not_found = || ApiError::not_found(format!("no monitoring plan with id {id}"));
    let found = plans::get(&state.store, id).await?.ok_or_else(not_found)?;
    if viewer
        .connection_scope()
        .is_some_and(|scope| scope != found.0.connection_id)
    {
        return Err(not_found());
    }
    Ok(found)
}

/// `POST /api/checks/{id}/result`: the admin token, or the body signed with the agent secret.
pub async fn record_check_result(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let body = read_limited(&req, payload, 64 * 1024).await?;
    let signed = req
        .headers()
        .get("x-shiplog-signature-256")
        .and_then(|v| v.to_str().ok());
    let id = path.into_inner();
    // The check's own agent signs its verdicts: the connection's `agent_secret` when it has one,
    // else the server's. The admin token also works.
    let by_agent = match signed {
        Some(sig) => plans::agent_for_check(&state.store, id, state.config.agent.as_ref())
            .await?
            .is_some_and(|agent| signature::verify(std::slice::from_ref(&agent.secret), Some(sig), &body).is_ok()),
        None => false,
    };
    if !by_agent {
        if signed.is_some() && super::auth::bearer_token(&req).is_none() {
            super::auth::check_throttle(&req, &state)?;
            super::auth::record_failure(&req, &state);
            return Err(ApiError::Unauthorized {
                kind: "invalid-signature",
                detail: "X-Shiplog-Signature-256 does not match this check's agent secret".to_owned(),
                challenge: None,
            });
        }
        authorize_admin(&req)?;
    }
    let json: Value =
        serde_json::from_slice(&body).map_err(|e| ApiError::invalid_field("body", format!("not valid JSON: {e}")))?;
    let verdict = json
        .get("verdict")
        .and_then(Value::as_str)
        .filter(|v| ["healthy", "regressed", "inconclusive"].contains(v));
    let Some(verdict) = verdict else {
        return Err(ApiError::unprocessable(vec![FieldError::new(
            "verdict",
            "must be healthy, regressed or inconclusive",
        )]));
    };
    let summary = json.get("summary").and_then(Value::as_str);
    if let Some(Err(message)) = summary.map(Text::parse) {
        return Err(ApiError::unprocessable(vec![FieldError::new("summary", message)]));
    }
    let check = plans::record_verdict(&state.store, id, verdict, summary, state.clock.now())
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no check with id {id}")))?;
    // A regression's PR comment is queued: send it now, not at the worker's next idle poll.
    state.jobs_wake.notify_one();
    Ok(HttpResponse::Ok().json(check))
}
