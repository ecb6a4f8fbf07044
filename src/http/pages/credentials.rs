//! "Create a deployment": each connection's deploy credentials, issuing and revoking them, and
//! a ready `curl`.

use actix_web::cookie::{time::Duration as CookieDuration, Cookie, SameSite};
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::{check_csrf, csrf, exact, html, redirect};
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

impl From<&credentials::Credential> for CredentialRow {
    fn from(c: &credentials::Credential) -> Self {
        Self {
            id: c.id,
            name: c.name.clone(),
            username: c.username.clone(),
            created_at: exact(c.created_at),
            last_used_at: c.last_used_at.map_or_else(|| "never".to_owned(), exact),
        }
    }
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
    let mut all_credentials = credentials::list_all(&state.store).await?;
    let first_repositories = connections::first_repositories(&state.store).await?;
    for connection in connections::list(&state.store).await? {
        let (credentials, others): (Vec<_>, Vec<_>) = all_credentials
            .into_iter()
            .partition(|c| c.connection_id.0 == connection.id);
        all_credentials = others;
        let example_repository = first_repositories.get(&connection.id).map(|r| r.to_string());
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
            credentials: credentials.iter().map(CredentialRow::from).collect(),
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

/// Carries a just-issued credential from the form's POST to the page it redirects to, so a
/// reload never issues another: HttpOnly, SameSite=Strict, scoped to this page, two minutes at
/// most, and removed by the page that shows it. The database keeps only the password's hash, so
/// this is the one place the password travels, as it would in the page itself.
const ISSUED_COOKIE: &str = "shiplog_issued";

fn issued_cookie(state: &AppState, connection: i64, issued: &Issued) -> Cookie<'static> {
    let value = [
        connection.to_string(),
        issued.name.clone(),
        issued.username.clone(),
        issued.password.clone(),
        issued.signing_key.clone(),
    ]
    .join("\n");
    Cookie::build(ISSUED_COOKIE, hex::encode(value))
        .path("/deployments/new")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(crate::http::session::secure(state))
        .max_age(CookieDuration::minutes(2))
        .finish()
}

fn read_issued(req: &HttpRequest) -> Option<(i64, Issued)> {
    let raw = hex::decode(req.cookie(ISSUED_COOKIE)?.value()).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let mut parts = text.split('\n');
    let connection = parts.next()?.parse().ok()?;
    let issued = Issued {
        name: parts.next()?.to_owned(),
        username: parts.next()?.to_owned(),
        password: parts.next()?.to_owned(),
        signing_key: parts.next()?.to_owned(),
    };
    Some((connection, issued))
}

pub async fn show_create_page(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let (csrf, cookie) = csrf(&req, &state)?;
    let issued = read_issued(&req);
    let shown = issued.is_some();
    let page = create_page(&state, csrf, issued).await?;
    let mut response = html(StatusCode::OK, page.render(), cookie);
    if shown {
        let mut gone = Cookie::build(ISSUED_COOKIE, "").path("/deployments/new").finish();
        gone.make_removal();
        response
            .add_cookie(&gone)
            .map_err(|e| ApiError::Internal(anyhow::anyhow!("cookie: {e}")))?;
    }
    Ok(response)
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
    check_csrf(&req, &form.csrf)?;
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
    let shown = Issued {
        name: issued.credential.name.clone(),
        username: issued.credential.username.clone(),
        password: issued.password.clone(),
        signing_key: issued.signing_key.clone(),
    };
    // Post, redirect, get: reloading the page shows it again without issuing another.
    Ok(HttpResponse::SeeOther()
        .cookie(issued_cookie(&state, form.connection, &shown))
        .insert_header((header::LOCATION, "/deployments/new#issued"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish())
}

#[derive(Template)]
#[template(path = "revoke.html")]
struct RevokePage {
    tab: &'static str,
    csrf: String,
    connection: i64,
    account: String,
    credential: CredentialRow,
}

#[derive(Debug, Deserialize)]
pub struct RevokeQuery {
    connection: i64,
}

/// "Revoke this credential?": the confirmation the list's Revoke link leads to.
pub async fn confirm_revoke_page(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<i64>,
    query: web::Query<RevokeQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let not_found = || ApiError::not_found(format!("no active credential {id} in connection {}", query.connection));
    let connection = connections::get(&state.store, query.connection)
        .await?
        .ok_or_else(not_found)?;
    let credential = credentials::list(&state.store, connection.id)
        .await?
        .into_iter()
        .find(|c| c.id == id)
        .ok_or_else(not_found)?;
    let (csrf, cookie) = csrf(&req, &state)?;
    let page = RevokePage {
        tab: "create",
        csrf,
        connection: connection.id,
        account: connection.account.login.clone(),
        credential: CredentialRow::from(&credential),
    };
    Ok(html(StatusCode::OK, page.render(), cookie))
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
    check_csrf(&req, &form.csrf)?;
    let id = path.into_inner();
    credentials::revoke(&state.store, form.connection, id, state.clock.now()).await?;
    Ok(redirect("/deployments/new"))
}
