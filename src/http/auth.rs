//! Who is calling: the admin (bearer `SHIPLOG_ADMIN_TOKEN`).

use std::future::{ready, Ready};

use actix_web::http::header;
use actix_web::{web, FromRequest, HttpRequest};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::AppState;
use crate::error::ApiError;

/// Extracting this succeeds only for a request that carries the admin token.
#[derive(Debug, Clone, Copy)]
pub struct Admin;

impl FromRequest for Admin {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        ready(authorize_admin(req))
    }
}

fn authorize_admin(req: &HttpRequest) -> Result<Admin, ApiError> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("application state missing")))?;
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
    if constant_time_eq(presented, expected.expose()) {
        Ok(Admin)
    } else {
        Err(ApiError::Unauthorized {
            kind: "invalid-credentials",
            detail: "the bearer token is not valid".to_owned(),
            challenge: Some("Bearer realm=\"shiplog\", error=\"invalid_token\""),
        })
    }
}

fn bearer_token(req: &HttpRequest) -> Option<&str> {
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
