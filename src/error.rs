//! `ApiError`: every error a client can see, answered as `application/problem+json` (RFC 9457).
//!
//! Module errors convert into it. The cause chain of an internal error is logged, never sent:
//! a response carries a status, a title, a short detail and, for validation, the failing fields.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

/// One field that failed validation, as a problem+json answer lists it. The domain reports
/// [`crate::validation::Invalid`], converted below.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("bad request: {detail}")]
    BadRequest {
        kind: &'static str,
        detail: String,
        errors: Vec<FieldError>,
    },
    #[error("unauthorized: {detail}")]
    Unauthorized {
        kind: &'static str,
        detail: String,
        challenge: Option<&'static str>,
    },
    #[error("forbidden: {detail}")]
    Forbidden { kind: &'static str, detail: String },
    #[error("not found: {detail}")]
    NotFound { detail: String },
    #[error("conflict: {detail}")]
    Conflict { detail: String },
    #[error("payload too large: limit {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("unprocessable: {detail}")]
    Unprocessable { detail: String, errors: Vec<FieldError> },
    #[error("service unavailable: {detail}")]
    Unavailable { detail: String },
    /// Too many failed sign-ins or credentials from one client: wait `retry_after` seconds.
    #[error("too many failed attempts; retry after {retry_after} s")]
    TooManyRequests { retry_after: u64 },
    /// Anything else. The source is logged when the response is built, never sent.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    pub fn bad_request(kind: &'static str, detail: impl Into<String>) -> Self {
        Self::BadRequest {
            kind,
            detail: detail.into(),
            errors: Vec::new(),
        }
    }

    pub fn invalid_field(field: impl Into<String>, message: impl Into<String>) -> Self {
        let error = FieldError::new(field, message);
        Self::BadRequest {
            kind: "invalid-body",
            detail: format!("{}: {}", error.field, error.message),
            errors: vec![error],
        }
    }

    /// 422 with every invalid field; the detail lists them on one line.
    pub fn unprocessable(errors: Vec<FieldError>) -> Self {
        let detail = errors
            .iter()
            .map(|e| format!("{}: {}", e.field, e.message))
            .collect::<Vec<_>>()
            .join("; ");
        Self::Unprocessable { detail, errors }
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::NotFound { detail: detail.into() }
    }

    fn kind(&self) -> &'static str {
        match self {
            Self::BadRequest { kind, .. } | Self::Unauthorized { kind, .. } | Self::Forbidden { kind, .. } => kind,
            Self::NotFound { .. } => "not-found",
            Self::Conflict { .. } => "conflict",
            Self::PayloadTooLarge { .. } => "payload-too-large",
            Self::Unprocessable { .. } => "validation-failed",
            Self::Unavailable { .. } => "unavailable",
            Self::TooManyRequests { .. } => "too-many-failures",
            Self::Internal(_) => "internal",
        }
    }

    fn detail(&self) -> String {
        match self {
            Self::BadRequest { detail, .. }
            | Self::Unauthorized { detail, .. }
            | Self::Forbidden { detail, .. }
            | Self::NotFound { detail }
            | Self::Conflict { detail }
            | Self::Unprocessable { detail, .. }
            | Self::Unavailable { detail } => detail.clone(),
            Self::PayloadTooLarge { limit } => format!("the request body is larger than {limit} bytes"),
            Self::TooManyRequests { retry_after } => {
                format!("too many failed attempts from this client; retry after {retry_after} seconds")
            }
            Self::Internal(_) => "the server could not complete the request; it has been logged".to_owned(),
        }
    }

    fn field_errors(&self) -> &[FieldError] {
        match self {
            Self::BadRequest { errors, .. } | Self::Unprocessable { errors, .. } => errors,
            _ => &[],
        }
    }
}

/// The problem+json body.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem<'a> {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: &'a str,
    pub status: u16,
    pub detail: String,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub errors: &'a [FieldError],
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            Self::Forbidden { .. } => StatusCode::FORBIDDEN,
            Self::NotFound { .. } => StatusCode::NOT_FOUND,
            Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            Self::Internal(source) => tracing::error!(error = ?source, "request failed"),
            Self::Unavailable { detail } => tracing::warn!(%detail, "service unavailable"),
            _ => tracing::debug!(error = %self, "request refused"),
        }
        let status = self.status_code();
        let mut response = problem_response(status, self.kind(), self.detail(), self.field_errors());
        if let Self::Unauthorized {
            challenge: Some(challenge),
            ..
        } = self
        {
            if let Ok(value) = header::HeaderValue::from_str(challenge) {
                response.headers_mut().insert(header::WWW_AUTHENTICATE, value);
            }
        }
        if let Self::Unavailable { .. } = self {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("5"));
        }
        if let Self::TooManyRequests { retry_after } = self {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from(*retry_after));
        }
        response
    }
}

/// Builds a problem+json response; also used for errors raised by actix extractors.
pub fn problem_response(status: StatusCode, kind: &str, detail: String, errors: &[FieldError]) -> HttpResponse {
    let problem = Problem {
        kind: format!("urn:shiplog:problem:{kind}"),
        title: status.canonical_reason().unwrap_or("Error"),
        status: status.as_u16(),
        detail,
        errors,
    };
    HttpResponse::build(status)
        .content_type("application/problem+json")
        .json(problem)
}

/// A request the domain refused: 422 with every invalid field.
impl From<crate::validation::Invalid> for ApiError {
    fn from(invalid: crate::validation::Invalid) -> Self {
        Self::unprocessable(
            invalid
                .fields
                .into_iter()
                .map(|problem| FieldError::new(problem.field, problem.message))
                .collect(),
        )
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(error: crate::store::StoreError) -> Self {
        match error {
            crate::store::StoreError::Unavailable(source) => {
                tracing::warn!(error = %source, "database unavailable");
                Self::Unavailable {
                    detail: "the database is not answering; retry later".to_owned(),
                }
            }
            crate::store::StoreError::Contention(source) => {
                tracing::warn!(error = %source, "transaction lost to a concurrent one, tries exhausted");
                Self::Unavailable {
                    detail: "the database is busy; retry later".to_owned(),
                }
            }
            other => Self::Internal(other.into()),
        }
    }
}
