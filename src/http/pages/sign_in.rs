//! Signing in and out with the admin token: the form, the session, the way back to the page.

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::{csrf, html, local_path};
use crate::error::ApiError;
use crate::http::session::{self, csrf_matches};
use crate::http::AppState;

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    csrf: String,
    next: String,
    error: Option<String>,
    admin_enabled: bool,
}

#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
}

pub async fn show_login(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<LoginQuery>,
) -> Result<HttpResponse, ApiError> {
    let (csrf, cookie) = csrf(&req, &state)?;
    let page = LoginPage {
        csrf,
        next: local_path(query.next.as_deref().unwrap_or("/")).to_owned(),
        error: None,
        admin_enabled: state.config.admin_token.is_some(),
    };
    Ok(html(StatusCode::OK, page.render(), cookie))
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    token: String,
    csrf: String,
    next: Option<String>,
}

#[tracing::instrument(skip_all)]
pub async fn sign_in(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: web::Form<LoginForm>,
) -> Result<HttpResponse, ApiError> {
    let form = form.into_inner();
    let next = local_path(form.next.as_deref().unwrap_or("/")).to_owned();
    let refuse = |message: &str, status: StatusCode| -> Result<HttpResponse, ApiError> {
        let (csrf, cookie) = csrf(&req, &state)?;
        let page = LoginPage {
            csrf,
            next: next.clone(),
            error: Some(message.to_owned()),
            admin_enabled: state.config.admin_token.is_some(),
        };
        Ok(html(status, page.render(), cookie))
    };
    if !csrf_matches(&req, &form.csrf) {
        return refuse("The form expired; please sign in again.", StatusCode::FORBIDDEN);
    }
    let Some(expected) = state.config.admin_token.as_ref() else {
        return refuse("The admin interface is disabled.", StatusCode::FORBIDDEN);
    };
    if let Err(ApiError::TooManyRequests { retry_after }) = crate::http::auth::check_throttle(&req, &state) {
        let mut refused = refuse(
            &format!("Too many failed sign-ins from your address; try again in {retry_after} seconds."),
            StatusCode::TOO_MANY_REQUESTS,
        )?;
        refused
            .headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from(retry_after));
        return Ok(refused);
    }
    if !crate::http::auth::constant_time_eq(form.token.trim(), expected.expose()) {
        crate::http::auth::record_failure(&req, &state);
        tracing::info!("admin sign-in refused");
        return refuse("That is not the admin token.", StatusCode::UNAUTHORIZED);
    }
    let cookie = session::sign_in(&state, state.clock.now()).await.map_err(|e| match e {
        session::SessionError::Store(store) => ApiError::from(store),
        other => ApiError::Internal(other.into()),
    })?;
    tracing::info!("admin signed in");
    Ok(HttpResponse::SeeOther()
        .cookie(cookie)
        .insert_header((header::LOCATION, next))
        .finish())
}

#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    csrf: String,
}

pub async fn sign_out(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, ApiError> {
    if !csrf_matches(&req, &form.csrf) {
        return Err(ApiError::Forbidden {
            kind: "csrf",
            detail: "the form's CSRF token does not match".to_owned(),
        });
    }
    let cookie = session::sign_out(&req, &state).await?;
    Ok(HttpResponse::SeeOther()
        .cookie(cookie)
        .insert_header((header::LOCATION, "/login"))
        .finish())
}
