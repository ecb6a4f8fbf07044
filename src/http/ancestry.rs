//! `GET /api/ancestry?repository=&ancestor=&descendant=`: does `descendant` contain `ancestor`?

use actix_web::{web, HttpResponse};
use serde::Deserialize;

use super::auth::{Caller, NamedIn};
use super::AppState;
use crate::ancestry::{self, AncestryError};
use crate::error::ApiError;
use crate::github::client::InstallationClient;
use crate::types::RepoName;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AncestryQuery {
    repository: String,
    ancestor: String,
    descendant: String,
}

#[utoipa::path(get, path = "/api/ancestry", params(AncestryQuery),
    responses(
        (status = 200, description = "whether `ancestor` is in `descendant`'s history", body = crate::ancestry::Answer),
        (status = 400, description = "an invalid parameter, each named"),
        (status = 404, description = "no such repository"),
    ))]
#[tracing::instrument(skip_all, fields(repository = %query.repository))]
pub async fn check_ancestry(
    caller: Caller,
    state: web::Data<AppState>,
    query: web::Query<AncestryQuery>,
) -> Result<HttpResponse, ApiError> {
    let repo = RepoName::parse(&query.repository).map_err(|m| ApiError::invalid_field("repository", m))?;
    let connection = caller.connection_for(&state.store, &repo, NamedIn::Query).await?;
    let access = state.github.as_ref().map(|app| InstallationClient {
        app,
        installation: connection.installation_id,
    });
    let answer = ancestry::is_ancestor(
        &state.store,
        access.as_ref(),
        &repo,
        &query.ancestor,
        &query.descendant,
        state.clock.now(),
    )
    .await
    .map_err(ancestry_error)?;
    state
        .metrics
        .record_ancestry(matches!(answer.source, ancestry::Source::Github));
    Ok(HttpResponse::Ok().json(answer))
}

pub fn ancestry_error(error: AncestryError) -> ApiError {
    match error {
        AncestryError::InvalidReference(raw) => {
            ApiError::invalid_field("ancestor", format!("{raw:?} is not a commit SHA or ref"))
        }
        AncestryError::UnknownCommit(what) => ApiError::not_found(format!("GitHub does not know {what}")),
        AncestryError::NotConfigured => ApiError::Unavailable {
            detail: error.to_string(),
        },
        AncestryError::RateLimited { .. } | AncestryError::Unavailable(_) => ApiError::Unavailable {
            detail: error.to_string(),
        },
        AncestryError::Refused(message) => ApiError::Unavailable {
            detail: format!("GitHub refused the request: {message}"),
        },
        AncestryError::Store(store) => store.into(),
    }
}
