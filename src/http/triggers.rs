//! `POST/GET /api/triggers`, `GET/DELETE /api/triggers/{id}` (admin, or a deploy credential for
//! its own connection's repositories). The attempt log shows the target's status code and error
//! to the admin only; a deploy credential sees whether each call was delivered.

use actix_web::http::header;
use actix_web::{web, HttpResponse};

use super::ancestry::ancestry_error;
use super::auth::{Caller, NamedIn};
use super::AppState;
use crate::ancestry::{self, AncestryError};
use crate::error::{ApiError, FieldError};
use crate::github::client::InstallationClient;
use crate::github::error::CallError;
use crate::triggers::{self, NewTrigger, Trigger};
use crate::types::ConnectionId;

#[utoipa::path(post, path = "/api/triggers",
    request_body(content = Object, description = "the post-deploy trigger"),
    responses(
        (status = 201, description = "created (`Location`)", body = triggers::Trigger),
        (status = 422, description = "names each invalid field"),
    ))]
#[tracing::instrument(skip_all)]
pub async fn create_trigger(
    caller: Caller,
    state: web::Data<AppState>,
    body: web::Json<serde_json::Value>,
) -> Result<HttpResponse, ApiError> {
    let request = triggers::validate(&body, &state.config.outbound_allow)?;
    let connection = caller
        .connection_for(&state.store, &request.repository, NamedIn::Body)
        .await?;
    if connection.agent(state.config.agent.as_ref()).is_none() {
        return Err(ApiError::unprocessable(vec![FieldError::new(
            "target_url",
            "no agent to call: set the connection's agent_url and agent_secret, or SHIPLOG_AGENT_URL and SHIPLOG_AGENT_SECRET (calls are signed)",
        )]));
    }
    let now = state.clock.now();
    let sha = match &state.github {
        Some(app) => {
            let access = InstallationClient {
                app,
                installation: connection.installation_id,
            };
            let repo = &request.repository;
            let reference = request.sha.as_str();
            access
                .call(now, |client| async move {
                    crate::github::compare::resolve_commit(&client, repo, reference, now).await
                })
                .await
                .map_err(|e| match e {
                    CallError::UnknownCommit(_) => {
                        ApiError::unprocessable(vec![FieldError::new("sha", "GitHub does not know this commit")])
                    }
                    other => ancestry_error(other.into()),
                })?
        }
        None if request.sha.len() == 40 => request.sha.clone(),
        None => return Err(ancestry_error(AncestryError::NotConfigured)),
    };
    let _ = ancestry::parse_reference(&sha).map_err(ancestry_error)?;
    let new = NewTrigger {
        connection_id: connection.id,
        repository: request.repository,
        environment: request.environment,
        sha,
        delay_seconds: request.delay_seconds,
        target_url: request.target_url,
        message: request.message,
    };
    let trigger = triggers::create(&state.store, &new, now).await?;
    tracing::info!(trigger = trigger.id, "trigger created");
    // A trigger on a deploy that is live already is scheduled at once: let the worker see it.
    state.jobs_wake.notify_one();
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/api/triggers/{}", trigger.id)))
        .json(trigger))
}

#[utoipa::path(get, path = "/api/triggers", responses((status = 200, description = "the caller's triggers", body = TriggerList)))]
pub async fn list_triggers(caller: Caller, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let list = triggers::list(&state.store, caller.scope()).await?;
    Ok(HttpResponse::Ok().json(TriggerList { triggers: list }))
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct TriggerList {
    triggers: Vec<triggers::Trigger>,
}

#[utoipa::path(get, path = "/api/triggers/{id}", params(("id" = i64, Path, description = "the post-deploy trigger")),
    responses((status = 200, description = "the trigger and `attempts`: each call to its target (with the status code and error for the admin only)", body = TriggerView), (status = 404, description = "none the caller may see")))]
pub async fn get_trigger(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let (trigger, attempts) = visible(&caller, &state, path.into_inner()).await?;
    let attempts = if caller.is_admin() {
        Attempts::Detail(attempts.iter().map(|a| a.detail()).collect())
    } else {
        Attempts::Summary(attempts.iter().map(|a| a.summary()).collect())
    };
    Ok(HttpResponse::Ok().json(TriggerView { trigger, attempts }))
}

/// A trigger with each call to its target.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct TriggerView<'a> {
    #[serde(flatten)]
    trigger: Trigger,
    /// Each call to the target; the admin's also carry the target's `status_code` and `error`.
    #[schema(value_type = Vec<triggers::AttemptSummary>)]
    attempts: Attempts<'a>,
}

/// The admin sees each call's status code and error; anyone else only whether it was delivered.
#[derive(serde::Serialize)]
#[serde(untagged)]
pub enum Attempts<'a> {
    Detail(Vec<triggers::AttemptDetail<'a>>),
    Summary(Vec<triggers::AttemptSummary>),
}

#[utoipa::path(delete, path = "/api/triggers/{id}", params(("id" = i64, Path, description = "the post-deploy trigger")),
    responses(
        (status = 200, description = "cancelled", body = triggers::Trigger),
        (status = 404, description = "none the caller may see"),
        (status = 409, description = "fired, failed or cancelled already"),
    ))]
pub async fn cancel_trigger(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let (trigger, _) = visible(&caller, &state, path.into_inner()).await?;
    if !triggers::cancel(&state.store, trigger.id, state.clock.now()).await? {
        return Err(ApiError::Conflict {
            detail: format!("trigger {} is {} already", trigger.id, trigger.state.as_str()),
        });
    }
    let (trigger, _) = visible(&caller, &state, trigger.id).await?;
    Ok(HttpResponse::Ok().json(trigger))
}

async fn visible(
    caller: &Caller,
    state: &AppState,
    id: i64,
) -> Result<(Trigger, Vec<triggers::AttemptRecord>), ApiError> {
    let not_found = || ApiError::not_found(format!("no trigger with id {id}"));
    let (trigger, attempts) = triggers::get(&state.store, id).await?.ok_or_else(not_found)?;
    if !caller.may_see(ConnectionId(trigger.connection_id)) {
        return Err(not_found());
    }
    Ok((trigger, attempts))
}
