//! Who is calling: the admin (bearer `SHIPLOG_ADMIN_TOKEN`, or a signed-in browser session for
//! reading), or a deploy credential (its own connection only). Every failed attempt spends the
//! client's allowance in [`super::throttle`]; a client without one gets 429.

use std::net::IpAddr;

use actix_web::http::{header, Method};
use actix_web::{web, FromRequest, HttpRequest};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::AppState;
use crate::error::ApiError;

/// Extracting this succeeds only for a request that carries the admin token, or, for a request
/// that only reads (`GET`/`HEAD`), a signed-in admin session.
#[derive(Debug, Clone, Copy)]
pub struct Admin;

impl FromRequest for Admin {
    type Error = ApiError;
    type Future = futures_util::future::LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            if bearer_token(&req).is_none() && reads_only(&req) && has_session(&req).await? {
                return Ok(Admin);
            }
            authorize_admin(&req)
        })
    }
}

/// The admin bearer token, checked in constant time, throttled per client.
pub fn authorize_admin(req: &HttpRequest) -> Result<Admin, ApiError> {
    let state = app_state(req)?;
    let Some(expected) = state.config.admin_token.as_ref() else {
        return Err(ApiError::Forbidden {
            kind: "admin-disabled",
            detail: "the admin API is disabled: set SHIPLOG_ADMIN_TOKEN to enable it".to_owned(),
        });
    };
    let presented = bearer_token(req).ok_or_else(|| ApiError::Unauthorized {
        kind: "missing-credentials",
        detail: "send the admin token as `Authorization: Bearer <token>`".to_owned(),
        challenge: Some("Bearer realm=\"shiplog\""),
    })?;
    check_throttle(req, &state)?;
    if constant_time_eq(presented, expected.expose()) {
        Ok(Admin)
    } else {
        record_failure(req, &state);
        Err(ApiError::Unauthorized {
            kind: "invalid-credentials",
            detail: "the bearer token is not valid".to_owned(),
            challenge: Some("Bearer realm=\"shiplog\", error=\"invalid_token\""),
        })
    }
}

/// `GET` and `HEAD`: a session may read, never change anything outside the CSRF-checked forms.
fn reads_only(req: &HttpRequest) -> bool {
    req.method() == Method::GET || req.method() == Method::HEAD
}

/// Whether the request carries a live admin session.
pub async fn has_session(req: &HttpRequest) -> Result<bool, ApiError> {
    let state = app_state(req)?;
    if req.cookie(super::session::SESSION_COOKIE).is_none() {
        return Ok(false);
    }
    Ok(super::session::is_signed_in(req, &state, state.clock.now()).await?)
}

fn client(req: &HttpRequest) -> Option<IpAddr> {
    req.peer_addr().map(|a| a.ip())
}

/// 429 while this client has spent its allowance of failures.
pub fn check_throttle(req: &HttpRequest, state: &AppState) -> Result<(), ApiError> {
    state
        .throttle
        .check(client(req), state.clock.now())
        .map_err(|retry_after| ApiError::TooManyRequests { retry_after })
}

/// One failed attempt by this client.
pub fn record_failure(req: &HttpRequest, state: &AppState) {
    tracing::info!(client = ?client(req), "authentication failed");
    state.throttle.record_failure(client(req), state.clock.now());
}

pub fn bearer_token(req: &HttpRequest) -> Option<&str> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Compares digests, so neither the content nor the length of the secret leaks through timing.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    let a = Sha256::digest(a.as_bytes());
    let b = Sha256::digest(b.as_bytes());
    a.as_slice().ct_eq(b.as_slice()).into()
}

/// Who may read deploy history: the admin (every connection) or a deploy credential (its own
/// connection only).
#[derive(Debug, Clone)]
pub enum Viewer {
    Admin,
    Credential(crate::credentials::Credential),
}

impl Viewer {
    /// The only connection this viewer may see, if it is limited to one.
    pub fn connection_scope(&self) -> Option<i64> {
        match self {
            Self::Admin => None,
            Self::Credential(credential) => Some(credential.connection_id),
        }
    }
}

impl FromRequest for Viewer {
    type Error = ApiError;
    type Future = futures_util::future::LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            if bearer_token(&req).is_some() {
                return authorize_admin(&req).map(|_| Viewer::Admin);
            }
            if let Some((username, password)) = basic_credentials(&req) {
                let state = app_state(&req)?;
                check_throttle(&req, &state)?;
                let credential =
                    crate::credentials::authenticate_basic(&state.store, &username, &password, state.clock.now())
                        .await
                        .map_err(|error| credential_failure(&req, &state, error))?;
                return Ok(Viewer::Credential(credential));
            }
            if reads_only(&req) && has_session(&req).await? {
                return Ok(Viewer::Admin);
            }
            Err(ApiError::Unauthorized {
                kind: "missing-credentials",
                detail: "send the admin token (Bearer) or a deploy credential (Basic)".to_owned(),
                challenge: Some("Basic realm=\"shiplog\", Bearer realm=\"shiplog\""),
            })
        })
    }
}

pub fn app_state(req: &HttpRequest) -> Result<web::Data<AppState>, ApiError> {
    req.app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("application state missing")))
}

/// `Authorization: Basic base64(username:password)`.
pub fn basic_credentials(req: &HttpRequest) -> Option<(String, String)> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = decode_base64(encoded.trim())?;
    let text = String::from_utf8(decoded).ok()?;
    let (username, password) = text.split_once(':')?;
    Some((username.to_owned(), password.to_owned()))
}

/// A deploy credential that failed: counted against the client, then [`credential_error`].
pub fn credential_failure(req: &HttpRequest, state: &AppState, error: crate::credentials::AuthError) -> ApiError {
    if !matches!(error, crate::credentials::AuthError::Store(_)) {
        record_failure(req, state);
    }
    credential_error(error)
}

/// A deploy credential that failed: 401 with the challenge, never saying which part was wrong.
fn credential_error(error: crate::credentials::AuthError) -> ApiError {
    match error {
        crate::credentials::AuthError::Store(store) => store.into(),
        other => ApiError::Unauthorized {
            kind: "invalid-credentials",
            detail: other.to_string(),
            challenge: Some("Basic realm=\"shiplog\""),
        },
    }
}

/// Standard base64 (RFC 4648), padding optional.
fn decode_base64(input: &str) -> Option<Vec<u8>> {
    fn value(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    }
    let bytes: Vec<u8> = input.bytes().filter(|b| *b != b'=').collect();
    if bytes.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut acc = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            acc |= value(*c)? << (18 - 6 * i);
        }
        let produced = chunk.len() - 1;
        for i in 0..produced {
            out.push((acc >> (16 - 8 * i)) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::decode_base64;

    #[test]
    fn base64_decodes_with_and_without_padding() {
        assert_eq!(decode_base64("dXNlcjpwYXNz").unwrap(), b"user:pass");
        assert_eq!(decode_base64("YQ==").unwrap(), b"a");
        assert_eq!(decode_base64("YWI").unwrap(), b"ab");
        assert!(decode_base64("Y").is_none());
        assert!(decode_base64("@@@@").is_none());
    }
}
