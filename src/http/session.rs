//! Browser sign-in: a server-side session behind an HttpOnly, SameSite=Strict cookie, and
//! double-submit CSRF tokens for every state-changing form.
//!
//! The cookie holds a random 256-bit id and nothing else; the database keeps only its SHA-256,
//! whom the session is for ([`SessionKind`]), the expiry, and `HMAC(random salt, admin token)`. So a leaked cookie says nothing about the
//! admin token (nothing to guess offline), signing out deletes the session for good, and
//! changing `SHIPLOG_ADMIN_TOKEN` ends every session (its tag no longer matches).

use actix_web::cookie::{time::Duration as CookieDuration, Cookie, SameSite};
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};
use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

use super::auth::constant_time_eq;
use super::AppState;
use crate::credentials::{random_hex, RandomError};
use crate::store::sessions as rows;
use crate::store::StoreError;

pub const SESSION_COOKIE: &str = "shiplog_session";
pub const CSRF_COOKIE: &str = "shiplog_csrf";
/// How long a sign-in lasts.
pub const SESSION_HOURS: i64 = 12;
const COOKIE_PREFIX: &str = "v2.";

/// Whom a session is for, stored with its row. Only the admin signs in today; a GitHub user's
/// session would be another kind here, with the user's id in the row's `subject`, and become
/// its own [`super::auth::Principal`] in [`super::auth`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionKind {
    Admin,
}

impl SessionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
        }
    }

    fn parse(raw: &str) -> Option<Self> {
        match raw {
            "admin" => Some(Self::Admin),
            _ => None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("no session without an admin token")]
    AdminDisabled,
    #[error(transparent)]
    Random(#[from] RandomError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn token_tag(state: &AppState, salt: &str) -> Option<String> {
    let token = state.config.admin_token.as_ref()?;
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(salt.as_bytes()).ok()?;
    mac.update(token.expose().as_bytes());
    Some(hex::encode(mac.finalize().into_bytes()))
}

fn id_hash(id: &str) -> String {
    hex::encode(Sha256::digest(id.as_bytes()))
}

pub fn secure(state: &AppState) -> bool {
    state.config.public_url.starts_with("https://")
}

/// Starts an admin session that lasts until `now + SESSION_HOURS`; returns its cookie.
pub async fn sign_in(state: &AppState, now: DateTime<Utc>) -> Result<Cookie<'static>, SessionError> {
    let id = random_hex(32)?;
    let salt = random_hex(16)?;
    let tag = token_tag(state, &salt).ok_or(SessionError::AdminDisabled)?;
    let tx = state.store.begin().await?;
    rows::insert(
        &tx,
        &id_hash(&id),
        SessionKind::Admin.as_str(),
        &salt,
        &tag,
        now,
        now + Duration::hours(SESSION_HOURS),
    )
    .await?;
    tx.commit().await?;
    Ok(Cookie::build(SESSION_COOKIE, format!("{COOKIE_PREFIX}{id}"))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure(state))
        .max_age(CookieDuration::hours(SESSION_HOURS))
        .finish())
}

/// Ends the request's session (if any) and returns the cookie that removes it.
pub async fn sign_out(req: &HttpRequest, state: &AppState) -> Result<Cookie<'static>, StoreError> {
    if let Some(id) = presented_id(req) {
        let tx = state.store.begin().await?;
        rows::delete(&tx, &id_hash(&id)).await?;
        tx.commit().await?;
    }
    let mut cookie = Cookie::build(SESSION_COOKIE, "")
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure(state))
        .finish();
    cookie.make_removal();
    Ok(cookie)
}

fn presented_id(req: &HttpRequest) -> Option<String> {
    let cookie = req.cookie(SESSION_COOKIE)?;
    let id = cookie.value().strip_prefix(COOKIE_PREFIX)?;
    (id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit())).then(|| id.to_owned())
}

/// Whom the request's session is for, if it carries a live one: stored, unexpired, of a known
/// kind, and (for the admin) issued under the current admin token.
pub async fn signed_in(
    req: &HttpRequest,
    state: &AppState,
    now: DateTime<Utc>,
) -> Result<Option<SessionKind>, StoreError> {
    let Some(id) = presented_id(req) else {
        return Ok(None);
    };
    let Some(session) = rows::find(state.store.conn(), &id_hash(&id)).await? else {
        return Ok(None);
    };
    if session.expires_at <= now {
        return Ok(None);
    }
    Ok(match SessionKind::parse(&session.principal) {
        Some(SessionKind::Admin) => token_tag(state, &session.salt)
            .is_some_and(|tag| constant_time_eq(&tag, &session.token_tag))
            .then_some(SessionKind::Admin),
        None => None,
    })
}

/// 303 to the sign-in page, which comes back here afterwards.
pub fn sign_in_redirect(req: &HttpRequest) -> HttpResponse {
    let target = req.uri().path_and_query().map_or("/deployments", |pq| pq.as_str());
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, format!("/login?next={}", urlencode(target))))
        .finish()
}

/// Percent-encodes everything but unreserved characters and `/`.
pub fn urlencode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// The CSRF token for forms on this page, and the cookie to set when the browser has none yet.
pub fn csrf_token(req: &HttpRequest, state: &AppState) -> Result<(String, Option<Cookie<'static>>), RandomError> {
    if let Some(existing) = req
        .cookie(CSRF_COOKIE)
        .map(|c| c.value().to_owned())
        .filter(|v| v.len() == 32 && v.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return Ok((existing, None));
    }
    let token = random_hex(16)?;
    let cookie = Cookie::build(CSRF_COOKIE, token.clone())
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure(state))
        .finish();
    Ok((token, Some(cookie)))
}

/// A form's token matches the browser's CSRF cookie.
pub fn csrf_matches(req: &HttpRequest, form_token: &str) -> bool {
    req.cookie(CSRF_COOKIE)
        .is_some_and(|cookie| !cookie.value().is_empty() && constant_time_eq(cookie.value(), form_token))
}
