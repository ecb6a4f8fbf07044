//! The server-rendered pages: sign-in, the live board (`board.rs`, the landing page, and a
//! repository's environments over time), the delivery insights, the deployment history, one
//! deployment, and the "Create a deployment" tab with the connections' credentials and a ready
//! `curl` example.
//!
//! Pages are for the admin, signed in with the admin token (or sending it as a bearer token):
//! their routes in `http/mod.rs` take `auth::require(Access::Admin).or_sign_in()`, which sends
//! anyone else to the sign-in page. Every state-changing form carries a CSRF token checked
//! against the browser's CSRF cookie ([`check_csrf`]).
//!
//! `sign_in.rs` signs the admin in and out, `insights.rs` shows the delivery metrics (drawn by
//! `charts.rs`), `history.rs` the list of deployments, `deployment.rs` one deployment, `credentials.rs` the "Create a deployment" tab,
//! `connections.rs` the connections with their workflow rules and backfills, `setup.rs` the
//! GitHub App's set-up from the browser. This file holds
//! what they share: which requests are for a page, the HTML response, CSRF and time formatting.

mod board;
mod charts;
mod connections;
mod credentials;
mod deployment;
mod history;
mod insights;
mod setup;
mod sign_in;

pub use board::{show_board, show_repository};
pub use connections::{show_connection, show_connections, start_backfill_form};
pub use credentials::{confirm_revoke_page, create_credential_form, revoke_credential_form, show_create_page};
pub use deployment::show_deployment;
pub use history::show_deployments;
pub use insights::show_insights;
pub use setup::{setup_callback, show_setup, start_setup};
pub use sign_in::{show_login, sign_in, sign_out};

use actix_web::guard::GuardContext;
use actix_web::http::{header, StatusCode};
use actix_web::{HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};

use super::session::{csrf_matches, csrf_token};
use super::AppState;
use crate::deploys::DeployStatus;
use crate::error::{problem_response, ApiError};

/// Route guard: the request asks for a page, not for JSON. Where one path serves both
/// (`/deployments`, `/deployments/{id}`), this decides which handler answers.
pub fn wants_page(ctx: &GuardContext<'_>) -> bool {
    !ctx.head()
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("application/json") || accept.contains("application/problem+json"))
}

fn redirect(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location.to_owned()))
        .finish()
}

/// Only local paths, so the sign-in form cannot be used to send people elsewhere: exactly one
/// leading `/`, not followed by `/` or a backslash, and no control character or white space anywhere
/// (browsers drop TAB, CR and LF from URLs, so `/\t/evil.example` would become `//evil.example`).
/// Anything else is `/`, the live board.
pub fn local_path(next: &str) -> &str {
    let mut chars = next.chars();
    let local = chars.next() == Some('/')
        && !matches!(chars.next(), Some('/' | '\\'))
        && !next.contains('\\')
        && !next.chars().any(|c| c.is_control() || c.is_whitespace())
        && next.len() <= 2048;
    if local {
        next
    } else {
        "/"
    }
}

fn html(
    status: StatusCode,
    body: Result<String, askama::Error>,
    cookie: Option<actix_web::cookie::Cookie<'static>>,
) -> HttpResponse {
    match body {
        Ok(page) => {
            let mut builder = HttpResponse::build(status);
            builder
                .content_type("text/html; charset=utf-8")
                .insert_header((header::CACHE_CONTROL, "no-store"));
            if let Some(cookie) = cookie {
                builder.cookie(cookie);
            }
            builder.body(page)
        }
        Err(error) => {
            tracing::error!(%error, "a page failed to render");
            problem_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "the page could not be rendered".to_owned(),
                &[],
            )
        }
    }
}

fn csrf(req: &HttpRequest, state: &AppState) -> Result<(String, Option<actix_web::cookie::Cookie<'static>>), ApiError> {
    csrf_token(req, state).map_err(|e| ApiError::Internal(e.into()))
}

/// "5 minutes ago", "in 2 hours", "just now".
pub fn relative_time(now: DateTime<Utc>, at: DateTime<Utc>) -> String {
    let seconds = (now - at).num_seconds();
    let (amount, future) = (seconds.unsigned_abs(), seconds < 0);
    let (n, unit) = match amount {
        0..=44 => return "just now".to_owned(),
        // Round down, as people read a clock: 6 min 59 s is "6 minutes ago".
        45..=3_599 => ((amount / 60).max(1), "minute"),
        3_600..=86_399 => (amount / 3_600, "hour"),
        86_400..=2_591_999 => (amount / 86_400, "day"),
        _ => (amount / 2_592_000, "month"),
    };
    let plural = if n == 1 { "" } else { "s" };
    if future {
        format!("in {n} {unit}{plural}")
    } else {
        format!("{n} {unit}{plural} ago")
    }
}

/// "45 s", "3 min 5 s", "2 h 10 min".
fn human_duration(seconds: i64) -> String {
    match seconds {
        ..=119 => format!("{seconds} s"),
        120..=7_199 => format!("{} min {} s", seconds / 60, seconds % 60),
        _ => format!("{} h {} min", seconds / 3600, seconds % 3600 / 60),
    }
}

fn exact(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

fn status_label(status: DeployStatus) -> &'static str {
    match status {
        DeployStatus::RolledBack => "rolled back",
        other => other.as_str(),
    }
}

/// `url` when it can be a link: stored URLs are http(s) only, and a page still links nothing else.
fn http_link(url: Option<&str>) -> Option<String> {
    url.filter(|u| u.starts_with("https://") || u.starts_with("http://"))
        .map(str::to_owned)
}

pub(crate) fn commit_url(state: &AppState, repository: &str, sha: &str) -> String {
    format!("{}/{repository}/commit/{sha}", state.config.github_web_url())
}

pub(crate) fn pull_url(state: &AppState, repository: &str, number: i64) -> String {
    format!("{}/{repository}/pull/{number}", state.config.github_web_url())
}

/// A state-changing form's token must match the browser's CSRF cookie (who may post it, the
/// route's `require` decided).
fn check_csrf(req: &HttpRequest, csrf: &str) -> Result<(), ApiError> {
    if csrf_matches(req, csrf) {
        Ok(())
    } else {
        Err(ApiError::Forbidden {
            kind: "csrf",
            detail: "the form's CSRF token does not match; reload the page".to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};

    use super::*;

    #[test]
    fn relative_times_read_naturally() {
        let now = Utc.with_ymd_and_hms(2026, 11, 2, 12, 0, 0).single().unwrap();
        assert_eq!(relative_time(now, now - Duration::seconds(10)), "just now");
        assert_eq!(relative_time(now, now - Duration::minutes(1)), "1 minute ago");
        assert_eq!(relative_time(now, now - Duration::minutes(5)), "5 minutes ago");
        assert_eq!(relative_time(now, now - Duration::seconds(361)), "6 minutes ago");
        assert_eq!(relative_time(now, now - Duration::seconds(419)), "6 minutes ago");
        assert_eq!(relative_time(now, now - Duration::seconds(50)), "1 minute ago");
        assert_eq!(relative_time(now, now - Duration::seconds(7_199)), "1 hour ago");
        assert_eq!(relative_time(now, now - Duration::hours(3)), "3 hours ago");
        assert_eq!(relative_time(now, now - Duration::days(2)), "2 days ago");
        assert_eq!(relative_time(now, now + Duration::hours(1)), "in 1 hour");
    }

    #[test]
    fn only_local_paths_are_followed_after_sign_in() {
        assert_eq!(local_path("/deployments?status=live"), "/deployments?status=live");
        assert_eq!(local_path("//evil.example"), "/");
        assert_eq!(local_path("https://evil.example"), "/");
        assert_eq!(local_path("/\\evil"), "/");
        for hostile in [
            "/\t/evil.example/phish",
            "/\n/evil.example",
            "/\r\nLocation: https://evil.example",
            "/\u{b}/evil.example",
            "/\u{c}/evil.example",
            "/ /evil.example",
            "/deployments\u{0}",
            "/a\\b",
            "",
            "deployments",
            "javascript:alert(1)",
        ] {
            assert_eq!(local_path(hostile), "/", "{hostile:?}");
        }
    }
}
