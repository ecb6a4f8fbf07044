//! `GET /api/drift?repository=[&from=&to=]`: what each environment runs that its right-hand
//! neighbour does not yet (`drift::view`). Read from rows; never calls GitHub.

use actix_web::{web, HttpResponse};
use serde::Deserialize;

use super::auth::{Caller, NamedIn};
use super::AppState;
use crate::drift::view::{self, Asked, ViewError};
use crate::error::ApiError;
use crate::types::{Environment, RepoName};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DriftQuery {
    repository: String,
    from: Option<String>,
    to: Option<String>,
}

#[utoipa::path(get, path = "/api/drift", params(DriftQuery),
    responses(
        (status = 200, description = "drift between neighbouring environments", body = crate::drift::view::DriftView),
        (status = 400, description = "an invalid parameter, each named"),
        (status = 404, description = "no such repository or environment"),
    ))]
#[tracing::instrument(skip_all, fields(repository = %query.repository))]
pub async fn show_drift(
    caller: Caller,
    state: web::Data<AppState>,
    query: web::Query<DriftQuery>,
) -> Result<HttpResponse, ApiError> {
    let repo = RepoName::parse(&query.repository).map_err(|m| ApiError::invalid_field("repository", m))?;
    let asked = asked(query.from.as_deref(), query.to.as_deref())?;
    let connection = caller.connection_for(&state.store, &repo, NamedIn::Query).await?;
    let answer = view::view(
        &state.store,
        &connection,
        &repo,
        &asked,
        state.clock.now(),
        &state.config.github_web_url(),
    )
    .await
    .map_err(view_error)?;
    Ok(HttpResponse::Ok().json(answer))
}

/// `from` and `to` together or neither; each an environment name, not the same one.
fn asked(from: Option<&str>, to: Option<&str>) -> Result<Asked, ApiError> {
    let environment = |field: &str, raw: &str| {
        Environment::parse(raw)
            .map(|e| e.as_str().to_owned())
            .map_err(|m| ApiError::invalid_field(field, m))
    };
    match (from, to) {
        (None, None) => Ok(Asked::Neighbours),
        (Some(_), None) => Err(ApiError::invalid_field("to", "give both from and to, or neither")),
        (None, Some(_)) => Err(ApiError::invalid_field("from", "give both from and to, or neither")),
        (Some(from), Some(to)) => {
            let (from, to) = (environment("from", from)?, environment("to", to)?);
            if from == to {
                return Err(ApiError::invalid_field("to", "must name another environment than from"));
            }
            Ok(Asked::Pair { from, to })
        }
    }
}

fn view_error(error: ViewError) -> ApiError {
    match error {
        ViewError::NoLiveDeploy(_) => ApiError::not_found(error.to_string()),
        ViewError::NotStored { .. } => ApiError::Conflict {
            detail: error.to_string(),
        },
        ViewError::Store(store) => store.into(),
        ViewError::Ancestry(_) => ApiError::Internal(anyhow::Error::new(error)),
    }
}
