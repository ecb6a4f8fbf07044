//! `POST/GET /api/monitoring-plans`, `GET/DELETE /api/monitoring-plans/{id}` and
//! `POST /api/checks/{id}/result` (the agent's verdict, signed like shiplog's own calls).

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::Value;

use super::auth::{identify_signed, signed_over_body, AgentKey, BodySigner, Caller, NamedIn};
use super::body::read_limited;
use super::AppState;
use crate::error::ApiError;
use crate::monitoring::plans::{self, Plan};
use crate::monitoring::request::{self, PlanRequest};
use crate::types::ConnectionId;

#[utoipa::path(post, path = "/api/monitoring-plans",
    request_body(content = Object, description = "the monitoring plan"),
    responses(
        (status = 201, description = "created (`Location`)", body = Plan),
        (status = 200, description = "the pull request had a plan already: that one (`Location`)", body = Plan),
        (status = 422, description = "names each invalid field"),
    ))]
pub async fn create_plan(
    caller: Caller,
    state: web::Data<AppState>,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let PlanRequest {
        repository,
        pull_number,
        environments,
        note,
    } = request::validate(&body)?;
    let connection = caller.connection_for(&state.store, &repository, NamedIn::Body).await?;
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

#[utoipa::path(get, path = "/api/monitoring-plans", responses((status = 200, description = "the caller's plans", body = PlanList)))]
pub async fn list_plans(caller: Caller, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let list = plans::list(&state.store, caller.scope()).await?;
    Ok(HttpResponse::Ok().json(PlanList { monitoring_plans: list }))
}

#[utoipa::path(get, path = "/api/monitoring-plans/{id}", params(("id" = i64, Path, description = "the monitoring plan")),
    responses((status = 200, description = "the plan, where its PR went live, and its checks", body = PlanView), (status = 404, description = "none the caller may see")))]
pub async fn get_plan(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let (plan, environments, checks) = visible(&caller, &state, id).await?;
    Ok(HttpResponse::Ok().json(PlanView {
        plan,
        deployed_environments: environments,
        checks,
    }))
}

/// A plan with where its PR went live and its checks.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct PlanView {
    #[serde(flatten)]
    plan: Plan,
    deployed_environments: Vec<plans::LiveEnvironment>,
    checks: Vec<plans::Check>,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct PlanList {
    monitoring_plans: Vec<Plan>,
}

#[utoipa::path(delete, path = "/api/monitoring-plans/{id}", params(("id" = i64, Path, description = "the monitoring plan")),
    responses(
        (status = 200, description = "cancelled", body = Plan),
        (status = 404, description = "none the caller may see"),
        (status = 409, description = "completed, expired or cancelled already"),
    ))]
pub async fn cancel_plan(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let (plan, _, _) = visible(&caller, &state, id).await?;
    if !plans::cancel(&state.store, id, state.clock.now()).await? {
        return Err(ApiError::Conflict {
            detail: format!("plan {id} is {} already", plan.status.as_str()),
        });
    }
    let (plan, _, _) = visible(&caller, &state, id).await?;
    Ok(HttpResponse::Ok().json(plan))
}

type Visible = (Plan, Vec<plans::LiveEnvironment>, Vec<plans::Check>);

async fn visible(caller: &Caller, state: &AppState, id: i64) -> Result<Visible, ApiError> {
    let not_found = || ApiError::not_found(format!("no monitoring plan with id {id}"));
    let found = plans::get(&state.store, id).await?.ok_or_else(not_found)?;
    if !caller.may_see(ConnectionId(found.0.connection_id)) {
        return Err(not_found());
    }
    Ok(found)
}

#[utoipa::path(post, path = "/api/checks/{id}/result", params(("id" = i64, Path, description = "the check")),
    request_body(content = Object, description = "the agent's verdict"),
    responses(
        (status = 200, description = "the check with its verdict", body = plans::Check),
        (status = 404, description = "no such check"),
        (status = 422, description = "names each invalid field"),
    ))]
/// `POST /api/checks/{id}/result`: the admin token, or the body signed with the agent secret.
pub async fn record_check_result(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let body = read_limited(&req, payload, 64 * 1024).await?;
    let id = path.into_inner();
    // The check's own agent signs its verdicts: the connection's `agent_secret` when it has one,
    // else the server's. The admin token also works.
    let key = if signed_over_body(&req) {
        plans::agent_for_check(&state.store, id, state.config.agent.as_ref())
            .await?
            .map(|(agent, connection)| AgentKey { agent, connection })
    } else {
        None
    };
    identify_signed(&req, &body, BodySigner::Agent(key.as_ref())).await?;
    let json: Value =
        serde_json::from_slice(&body).map_err(|e| ApiError::invalid_field("body", format!("not valid JSON: {e}")))?;
    let request = crate::monitoring::request::validate_verdict(&json)?;
    let check = match plans::record_verdict(
        &state.store,
        id,
        request.verdict,
        request.summary.as_deref(),
        state.clock.now(),
    )
    .await?
    {
        plans::Verdict::Recorded(check) => check,
        plans::Verdict::UnknownCheck => return Err(ApiError::not_found(format!("no check with id {id}"))),
        plans::Verdict::NeverSent(status) => {
            return Err(ApiError::Conflict {
                detail: format!(
                    "check {id} was never sent ({}): there is nothing to judge",
                    status.as_str()
                ),
            })
        }
    };
    // A regression's PR comment is queued: send it now, not at the worker's next idle poll.
    state.jobs_wake.notify_one();
    Ok(HttpResponse::Ok().json(check))
}
