//! Browser sign-in: a server-side admin session behind an HttpOnly, SameSite=Strict cookie, and
//! double-submit CSRF tokens for every state-changing form.
//!
//! The cookie holds a random 256-bit id and nothing else; the database keeps only its SHA-256,
//! the expiry, and `HMAC(random salt, admin token)`. So a leaked cookie says nothing about the
//! admin token (nothing to guess offline), signing out deletes the session for good, and
//! changing `SHIPLOG_ADMIN_TOKEN` ends every session (its tag no longer matches).

use actix_web::cookie::{time::Duration as CookieDuration, Cookie, SameSite};
use actix_web::HttpRequest;
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

/// Starts a session that lasts until `now + SESSION_HOURS`; returns its cookie.
pub async fn sign_in(state: &AppState, now: DateTime<Utc>) -> Result<Cookie<'static>, SessionError> {
    let id = random_hex(32)?;
    let salt = random_hex(16)?;
    let tag = token_tag(state, &salt).ok_or(SessionError::AdminDisabled)?;
    let tx = state.store.begin().await?;
    rows::insert(
        &tx,
        &id_hash(&id),
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

/// Whether the request carries a live admin session: stored, unexpired, and issued under the
/// current admin token.
pub async fn is_signed_in(req: &HttpRequest, state: &AppState, now: DateTime<Utc>) -> Result<bool, StoreError> {
    let Some(id) = presented_id(req) else {
        return Ok(false);
    };
    let Some(session) = rows::find(state.store.conn(), &id_hash(&id)).await? else {
        return Ok(false);
    };
    if session.expires_at <= now {
        return Ok(false);
    }
    Ok(token_tag(state, &session.salt).is_some_and(|tag| constant_time_eq(&tag, &session.token_tag)))
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
