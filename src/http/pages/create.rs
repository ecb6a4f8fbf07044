//! "Create a deployment": each connection's deploy credentials, issuing and revoking them, and
//! a ready `curl`.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::{csrf, exact, html, is_admin, redirect, refuse_form, to_login};
use crate::connections;
use crate::credentials::{self, IssueError};
use crate::error::ApiError;
use crate::http::AppState;

struct CredentialRow {
    id: i64,
    name: String,
    username: String,
    created_at: String,
    last_used_at: String,
}

struct ConnectionCredentials {
    id: i64,
    account: String,
    deleted: bool,
    credentials: Vec<CredentialRow>,
    example_repository: Option<String>,
    example_repository_or_placeholder: String,
    example_username: String,
    example_password: String,
}

struct Issued {
    name: String,
    username: String,
    password: String,
    signing_key: String,
}

#[derive(Template)]
#[template(path = "create.html")]
struct CreatePage {
    tab: &'static str,
    csrf: String,
    public_url: String,
    connections: Vec<ConnectionCredentials>,
    issued: Option<Issued>,
}

async fn create_page(state: &AppState, csrf: String, issued: Option<(i64, Issued)>) -> Result<CreatePage, ApiError> {
    let mut views = Vec::new();
    for connection in connections::list(&state.store).await? {
        let credentials = credentials::list(&state.store, connection.id).await?;
        let example_repository = connections::repositories(&state.store, connection.id, None, 1)
            .await?
            .first()
            .map(|r| r.to_string());
        let (example_username, example_password) = match &issued {
            Some((id, issued)) if *id == connection.id => (issued.username.clone(), issued.password.clone()),
            _ => match credentials.last() {
                Some(c) => (c.username.clone(), "$SHIPLOG_DEPLOY_PASSWORD".to_owned()),
                None => ("$SHIPLOG_DEPLOY_USER".to_owned(), "$SHIPLOG_DEPLOY_PASSWORD".to_owned()),
            },
        };
        views.push(ConnectionCredentials {
            id: connection.id,
            account: connection.account.login.clone(),
            deleted: connection.deleted_at.is_some(),
            credentials: credentials
                .iter()
                .map(|c| CredentialRow {
                    id: c.id,
                    name: c.name.clone(),
                    username: c.username.clone(),
                    created_at: exact(c.created_at),
                    last_used_at: c.last_used_at.map_or_else(|| "never".to_owned(), exact),
                })
                .collect(),
            example_repository_or_placeholder: example_repository
                .clone()
                .unwrap_or_else(|| format!("{}/REPO", connection.account.login)),
            example_repository,
            example_username,
            example_password,
        });
    }
    Ok(CreatePage {
        tab: "create",
        csrf,
        public_url: state.config.public_url.clone(),
        connections: views,
        issued: issued.map(|(_, issued)| issued),
    })
}

pub async fn show_create_page(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    if !is_admin(&req).await? {
        return Ok(to_login(&req));
    }
    let (csrf, cookie) = csrf(&req, &state)?;
    let page = create_page(&state, csrf, None).await?;
    Ok(html(StatusCode::OK, page.render(), cookie))
}

#[derive(Debug, Deserialize)]
pub struct NewCredentialForm {
    csrf: String,
    connection: i64,
    name: Option<String>,
}

#[tracing::instrument(skip_all, fields(connection = form.connection))]
pub async fn create_credential_form(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: web::Form<NewCredentialForm>,
) -> Result<HttpResponse, ApiError> {
    if let Some(refused) = refuse_form(&req, &form.csrf).await? {
        return Ok(refused);
    }
    connections::get(&state.store, form.connection)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no connection with id {}", form.connection)))?;
    let name = form
        .name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .unwrap_or("ci");
    if name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(ApiError::invalid_field(
            "name",
            "must be at most 100 printable characters",
        ));
    }
    let issued = credentials::create(&state.store, form.connection, name, state.clock.now())
        .await
        .map_err(|e| match e {
            IssueError::Store(store) => store.into(),
            other => ApiError::Internal(other.into()),
        })?;
    tracing::info!(
        credential = issued.credential.id,
        "deploy credential created from the page"
    );
    let (csrf, cookie) = csrf(&req, &state)?;
    let shown = Issued {
        name: issued.credential.name.clone(),
        username: issued.credential.username.clone(),
        password: issued.password.clone(),
        signing_key: issued.signing_key.clone(),
    };
    let page = create_page(&state, csrf, Some((form.connection, shown))).await?;
    Ok(html(StatusCode::CREATED, page.render(), cookie))
}

#[derive(Debug, Deserialize)]
pub struct RevokeForm {
    csrf: String,
    connection: i64,
}

pub async fn revoke_credential_form(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<i64>,
    form: web::Form<RevokeForm>,
) -> Result<HttpResponse, ApiError> {
    if let Some(refused) = refuse_form(&req, &form.csrf).await? {
        return Ok(refused);
    }
    let id = path.into_inner();
    credentials::revoke(&state.store, form.connection, id, state.clock.now()).await?;
    Ok(redirect("/deployments/new"))
}
