//! `POST/GET /api/connections/{id}/credentials`, `DELETE …/{cred_id}` (admin).

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};

use super::auth::Admin;
use super::AppState;
use crate::connections;
use crate::credentials::{self, IssueError};
use crate::error::ApiError;

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCredentialBody {
    name: Option<String>,
}

#[utoipa::path(post, path = "/api/connections/{id}/credentials", params(("id" = i64, Path, description = "the connection")),
    request_body(content = Option<NewCredentialBody>, description = "optional"),
    responses(
        (status = 201, description = "the credential with its password and signing key, shown once", body = credentials::IssuedCredential),
        (status = 404, description = "no such connection"),
        (status = 422, description = "names each invalid field"),
    ))]
#[tracing::instrument(skip_all, fields(connection = %path))]
pub async fn create_credential(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<i64>,
    body: Option<web::Json<NewCredentialBody>>,
) -> Result<HttpResponse, ApiError> {
    let connection_id = path.into_inner();
    existing_connection(&state, connection_id).await?;
    let name = body
        .and_then(|b| b.into_inner().name)
        .map(|n| n.trim().to_owned())
        .unwrap_or_default();
    let name = if name.is_empty() { "deploy".to_owned() } else { name };
    if name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(ApiError::invalid_field(
            "name",
            "must be at most 100 printable characters",
        ));
    }
    let issued = credentials::create(&state.store, connection_id, &name, state.clock.now())
        .await
        .map_err(|e| match e {
            IssueError::Store(store) => store.into(),
            other => ApiError::Internal(other.into()),
        })?;
    tracing::info!(credential = issued.credential.id, "deploy credential created");
    Ok(HttpResponse::Created()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((
            header::LOCATION,
            format!("/api/connections/{connection_id}/credentials/{}", issued.credential.id),
        ))
        .json(issued))
}

#[utoipa::path(get, path = "/api/connections/{id}/credentials", params(("id" = i64, Path, description = "the connection")),
    responses((status = 200, description = "the connection's credentials, without passwords", body = CredentialList), (status = 404, description = "no such connection")))]
#[tracing::instrument(skip_all, fields(connection = %path))]
pub async fn list_credentials(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let connection_id = path.into_inner();
    existing_connection(&state, connection_id).await?;
    let list = credentials::list(&state.store, connection_id).await?;
    Ok(HttpResponse::Ok().json(CredentialList { credentials: list }))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct CredentialList {
    credentials: Vec<credentials::Credential>,
}

#[utoipa::path(delete, path = "/api/connections/{id}/credentials/{credential_id}",
    params(("id" = i64, Path, description = "the connection"), ("credential_id" = i64, Path, description = "the credential")),
    responses((status = 204, description = "revoked"), (status = 404, description = "no such credential")))]
#[tracing::instrument(skip_all, fields(connection = %path.0, credential = %path.1))]
pub async fn revoke_credential(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<(i64, i64)>,
) -> Result<HttpResponse, ApiError> {
    let (connection_id, credential_id) = path.into_inner();
    if credentials::revoke(&state.store, connection_id, credential_id, state.clock.now()).await? {
        tracing::info!("deploy credential revoked");
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(ApiError::not_found(format!(
            "no active credential {credential_id} in connection {connection_id}"
        )))
    }
}

async fn existing_connection(state: &AppState, id: i64) -> Result<connections::Connection, ApiError> {
    connections::get(&state.store, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no connection with id {id}")))
}
