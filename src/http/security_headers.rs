//! Headers every response carries, pages and API alike, and the pages' stylesheet.
//!
//! The Content-Security-Policy allows no script at all (the pages have none), styles only from
//! `/static/shiplog.css`, forms posting only to shiplog itself, and no framing. Stored values are
//! escaped by the templates and URLs are checked at intake; this is the line behind those.

use actix_web::http::header;
use actix_web::middleware::DefaultHeaders;
use actix_web::HttpResponse;

pub const CONTENT_SECURITY_POLICY: &str =
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Adds the security headers to every response that does not set them itself.
pub fn default_headers() -> DefaultHeaders {
    DefaultHeaders::new()
        .add((header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY))
        .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .add((header::REFERRER_POLICY, "same-origin"))
        .add((header::X_FRAME_OPTIONS, "DENY"))
}

const STYLESHEET: &str = include_str!("../../templates/shiplog.css");

/// `GET /static/shiplog.css`: public, like any stylesheet.
pub async fn show_stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .body(STYLESHEET)
}
