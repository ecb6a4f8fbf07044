//! Browser sign-in: a signed, HttpOnly, SameSite=Strict session cookie for the admin, and
//! double-submit CSRF tokens for every state-changing form.
//!
//! The session key is derived from `SHIPLOG_ADMIN_TOKEN`, so changing the token signs everyone
//! out. The cookie holds only an expiry and its signature: nothing secret, nothing to look up.

use actix_web::cookie::{time::Duration as CookieDuration, Cookie, SameSite};
use actix_web::HttpRequest;
use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::auth::constant_time_eq;
use super::AppState;
use crate::credentials::{random_hex, RandomError};

pub const SESSION_COOKIE: &str = "shiplog_session";
pub const CSRF_COOKIE: &str = "shiplog_csrf";
/// How long a sign-in lasts.
pub const SESSION_HOURS: i64 = 12;

fn session_mac(state: &AppState, expires: i64) -> Option<String> {
    let token = state.config.admin_token.as_ref()?;
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(token.expose().as_bytes()).ok()?;
    mac.update(format!("shiplog session v1.{expires}").as_bytes());
    Some(hex::encode(mac.finalize().into_bytes()))
}

fn secure(state: &AppState) -> bool {
    state.config.public_url.starts_with("https://")
}

/// The cookie that signs the admin in until `now + SESSION_HOURS`.
pub fn session_cookie(state: &AppState, now: DateTime<Utc>) -> Option<Cookie<'static>> {
    let expires = now.timestamp() + SESSION_HOURS * 3600;
    let mac = session_mac(state, expires)?;
    Some(
        Cookie::build(SESSION_COOKIE, format!("v1.{expires}.{mac}"))
            .path("/")
            .http_only(true)
            .same_site(SameSite::Strict)
            .secure(secure(state))
            .max_age(CookieDuration::hours(SESSION_HOURS))
            .finish(),
    )
}

/// A cookie that removes the session.
pub fn signed_out_cookie(state: &AppState) -> Cookie<'static> {
    let mut cookie = Cookie::build(SESSION_COOKIE, "")
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure(state))
        .finish();
    cookie.make_removal();
    cookie
}

/// Whether the request carries a valid, unexpired admin session.
pub fn is_signed_in(req: &HttpRequest, state: &AppState, now: DateTime<Utc>) -> bool {
    let Some(cookie) = req.cookie(SESSION_COOKIE) else {
        return false;
    };
    let mut parts = cookie.value().splitn(3, '.');
    let (Some("v1"), Some(expires), Some(mac)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    let Ok(expires) = expires.parse::<i64>() else {
        return false;
    };
    if expires <= now.timestamp() {
        return false;
    }
    session_mac(state, expires).is_some_and(|expected| constant_time_eq(&expected, mac))
}

/// The CSRF token for forms on this page, and the cookie to set when the browser has none yet.
pub fn csrf_token(req: &HttpRequest, state: &AppState) -> Result<(String, Option<Cookie<'static>>), RandomError> {
    if let Some(existing) = req
        .cookie(CSRF_COOKIE)
        .map(|c| c.value().to_owned())
        .filter(|v| v.len() == 32)
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
