//! `GET /api/ancestry?repository=&ancestor=&descendant=`: does `descendant` contain `ancestor`?

use actix_web::{web, HttpResponse};
use serde::Deserialize;

use super::auth::Viewer;
use super::AppState;
use crate::ancestry::{self, AncestryError};
use crate::connections;
use crate::error::ApiError;
use crate::github::client::InstallationClient;
use crate::types::RepoName;

#[derive(Debug, Deserialize)]
pub struct AncestryQuery {
    repository: String,
    ancestor: String,
    descendant: String,
}

#[tracing::instrument(skip_all, fields(repository = %query.repository))]
pub async fn check_ancestry(
    viewer: Viewer,
    state: web::Data<AppState>,
    query: web::Query<AncestryQuery>,
) -> Result<HttpResponse, ApiError> {
    let repo = RepoName::parse(&query.repository).map_err(|m| ApiError::invalid_field("repository", m))?;
    let connection = match viewer.connection_scope() {
        Some(id) => {
            let connection = connections::get(&state.store, id)
                .await?
                .ok_or_else(|| ApiError::not_found("no such connection"))?;
            if !connections::owns(&state.store, &connection, &repo).await? {
                return Err(ApiError::Forbidden {
                    kind: "wrong-connection",
                    detail: format!("{repo} does not belong to this credential's connection"),
                });
            }
            connection
        }
        None => connections::owning(&state.store, &repo).await?.ok_or_else(|| {
            ApiError::not_found(format!(
                "no connection has {repo}: install the GitHub App on its account"
            ))
        })?,
    };
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
