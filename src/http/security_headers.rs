//! Headers every response carries, pages and API alike, and the pages' stylesheet.
//!
//! The Content-Security-Policy allows no script at all (the pages have none), styles only from
//! `/static/shiplog.css`, forms posting only to shiplog itself (`/setup`'s page that posts the
//! App manifest to GitHub also to GitHub's web origin), and no framing. Stored values are
//! escaped by the templates and URLs are checked at intake; this is the line behind those.

use actix_web::http::header;
use actix_web::middleware::DefaultHeaders;
use actix_web::HttpResponse;

pub const CONTENT_SECURITY_POLICY: &str =
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The policy of the one page whose form posts to GitHub (`/setup`'s manifest form): as
/// [`CONTENT_SECURITY_POLICY`], with `form-action` also allowing the origin of `github_web_url`.
/// `None` when that URL has no usable origin.
pub fn content_security_policy_posting_to(github_web_url: &str) -> Option<String> {
    let url = url::Url::parse(github_web_url).ok()?;
    if !matches!(url.scheme(), "https" | "http") {
        return None;
    }
    let origin = url.origin().ascii_serialization();
    if origin
        .bytes()
        .any(|b| b.is_ascii_whitespace() || b == b';' || b == b'\'' || b == b',')
    {
        return None;
    }
    Some(CONTENT_SECURITY_POLICY.replace("form-action 'self'", &format!("form-action 'self' {origin}")))
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_github_origin_is_added_to_form_action() {
        assert_eq!(
            content_security_policy_posting_to("https://ghe.example.com/some/path").as_deref(),
            Some(
                "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self' https://ghe.example.com; frame-ancestors 'none'; base-uri 'none'"
            )
        );
        assert_eq!(content_security_policy_posting_to("javascript:alert(1)"), None);
        assert_eq!(content_security_policy_posting_to("not a url"), None);
    }
}
