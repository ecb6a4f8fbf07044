//! problem+json for errors raised outside the handlers: unknown routes, wrong methods, path and
//! query parameters that do not parse, and any other empty error response actix produces.

use actix_web::dev::ServiceResponse;
use actix_web::http::{header, StatusCode};
use actix_web::middleware::{ErrorHandlerResponse, ErrorHandlers};
use actix_web::{error, web, HttpRequest, HttpResponse};

use crate::error::{problem_response, ApiError, FieldError};

pub fn path_config() -> web::PathConfig {
    web::PathConfig::default().error_handler(|err, _req| {
        let detail = format!("the path is not valid: {err}");
        error::InternalError::from_response(err, problem_response(StatusCode::NOT_FOUND, "not-found", detail, &[]))
            .into()
    })
}

pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|err, _req| {
        let message = err.to_string();
        let errors = [FieldError::new("query", message.clone())];
        error::InternalError::from_response(
            err,
            problem_response(
                StatusCode::BAD_REQUEST,
                "invalid-query",
                format!("the query string is not valid: {message}"),
                &errors,
            ),
        )
        .into()
    })
}

pub fn json_config() -> web::JsonConfig {
    web::JsonConfig::default().limit(64 * 1024).error_handler(|err, _req| {
        let api_error = match &err {
            error::JsonPayloadError::Overflow { limit }
            | error::JsonPayloadError::OverflowKnownLength { limit, .. } => ApiError::PayloadTooLarge { limit: *limit },
            error::JsonPayloadError::ContentType => {
                ApiError::bad_request("unsupported-media-type", "send Content-Type: application/json")
            }
            error::JsonPayloadError::Deserialize(e) => ApiError::invalid_field("body", e.to_string()),
            other => ApiError::bad_request("invalid-body", other.to_string()),
        };
        api_error.into()
    })
}

pub fn form_config() -> web::FormConfig {
    web::FormConfig::default().limit(16 * 1024).error_handler(|err, _req| {
        ApiError::bad_request("invalid-form", format!("the form is not valid: {err}")).into()
    })
}

/// Answers routes that do not exist.
pub async fn route_not_found(req: HttpRequest) -> HttpResponse {
    problem_response(
        StatusCode::NOT_FOUND,
        "not-found",
        format!("no resource at {}", req.path()),
        &[],
    )
}

/// Turns every other error response that is not problem+json yet (for example 405) into one.
pub fn problem_json_fallback<B: 'static>() -> ErrorHandlers<B> {
    ErrorHandlers::new().default_handler(|res: ServiceResponse<B>| {
        let is_problem = res
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/problem+json") || v.starts_with("text/html"));
        if is_problem {
            return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
        }
        let status = res.status();
        let (req, old) = res.into_parts();
        let mut response = problem_response(
            status,
            "http-error",
            status.canonical_reason().unwrap_or("error").to_owned(),
            &[],
        );
        for name in [header::ALLOW, header::WWW_AUTHENTICATE, header::RETRY_AFTER] {
            if let Some(value) = old.headers().get(&name) {
                response.headers_mut().insert(name, value.clone());
            }
        }
        Ok(ErrorHandlerResponse::Response(
            ServiceResponse::new(req, response).map_into_right_body(),
        ))
    })
}
