//! GitHub's answers classified: the kinds of 404 (commit, common ancestor, repository), rate
//! limits (with when to try again), a refused installation token, and faults worth retrying. Every GitHub call (`compare.rs`,
//! `history.rs`, `issues.rs`, token minting in `client.rs`) reports through [`CallError`].

use chrono::{DateTime, Duration, Utc};

/// The longest wait a rate-limit answer can ask for: GitHub's limits reset within the hour, so a
/// longer `Retry-After` or reset time (a broken or hostile server) is read as an hour.
pub const MAX_RATE_LIMIT_WAIT: Duration = Duration::hours(1);
/// How much of GitHub's own message an error keeps (it reaches job rows and 503 answers).
const MAX_MESSAGE_CHARS: usize = 200;

#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("GitHub does not know {0}")]
    UnknownCommit(String),
    /// A repository (or another thing that is not a commit) GitHub does not have, or that the
    /// installation cannot see: GitHub answers both the same way.
    #[error("GitHub has no {0}, or the installation cannot see it")]
    NotFound(String),
    #[error("the commits have no common ancestor")]
    NoCommonAncestor,
    #[error("GitHub's rate limit{}", try_again_after(*.retry_at))]
    RateLimited { retry_at: Option<DateTime<Utc>> },
    #[error("GitHub refused the installation token")]
    Unauthorized,
    #[error("GitHub could not answer now: {0}")]
    Retryable(String),
    #[error("GitHub refused the request: {0}")]
    Refused(String),
}

/// Classifies an API call's failure; `what` names what a 404 or 422 did not find.
pub(crate) fn classify(error: octocrab::Error, what: &str, now: DateTime<Utc>) -> CallError {
    let octocrab::Error::GitHub { source, .. } = error else {
        // Connection failures, time-outs, bodies that did not arrive: worth another try.
        return CallError::Retryable(unreachable(&error));
    };
    let status = source.status_code.as_u16();
    let header = |name: &str| {
        source
            .headers
            .as_ref()
            .and_then(|h| h.get(name))
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    match status {
        404 if source.message.starts_with("No common ancestor") => CallError::NoCommonAncestor,
        404 | 422 => CallError::UnknownCommit(what.to_owned()),
        401 => CallError::Unauthorized,
        403 | 429 => {
            if let Some(seconds) = header("retry-after").and_then(|v| v.trim().parse::<i64>().ok()) {
                let wait = seconds.clamp(0, MAX_RATE_LIMIT_WAIT.num_seconds());
                return CallError::RateLimited {
                    retry_at: Some(now + Duration::seconds(wait)),
                };
            }
            if header("x-ratelimit-remaining").as_deref() == Some("0") {
                // The reset is a time on GitHub's clock: the wait is measured against GitHub's
                // `Date` when it sent one, so a skewed clock here neither waits too long nor
                // retries at once.
                let retry_at = retry_at_reset(header("x-ratelimit-reset"), header("date"), now);
                return CallError::RateLimited { retry_at };
            }
            if status == 429 || source.message.to_ascii_lowercase().contains("rate limit") {
                return CallError::RateLimited { retry_at: None };
            }
            CallError::Refused(brief(&source.message))
        }
        500..=599 => CallError::Retryable(brief(&source.message)),
        _ => CallError::Refused(brief(&source.message)),
    }
}

/// When to try again after a primary rate limit: at `x-ratelimit-reset` (Unix seconds on
/// GitHub's clock), measured against GitHub's `Date` when it sent one, at most an hour away.
pub(crate) fn retry_at_reset(reset: Option<String>, date: Option<String>, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let github_now = date
        .and_then(|d| DateTime::parse_from_rfc2822(d.trim()).ok())
        .map_or(now, |d| d.with_timezone(&Utc));
    reset
        .and_then(|v| v.trim().parse::<i64>().ok())
        .and_then(|s| DateTime::from_timestamp(s, 0))
        .map(|reset| now + (reset - github_now).clamp(Duration::zero(), MAX_RATE_LIMIT_WAIT))
}

/// "; try again after <time>", or nothing when GitHub did not say when.
pub fn try_again_after(retry_at: Option<DateTime<Utc>>) -> String {
    retry_at.map_or_else(String::new, |at| {
        format!(
            "; try again after {}",
            at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        )
    })
}

/// GitHub's own message, cut to [`MAX_MESSAGE_CHARS`].
pub(crate) fn brief(message: &str) -> String {
    message.chars().take(MAX_MESSAGE_CHARS).collect()
}

/// A call that got no answer from GitHub, said without the client's internals (addresses, OS
/// errors, backtraces), which go to the log instead.
fn unreachable(error: &octocrab::Error) -> String {
    tracing::warn!(error = %error, "a call to GitHub got no answer");
    match error {
        octocrab::Error::Serde { .. } | octocrab::Error::Json { .. } => "GitHub's answer could not be read".to_owned(),
        _ => "GitHub could not be reached".to_owned(),
    }
}

/// Classifies a failure to mint an installation token: an installation GitHub does not know is
/// refused; anything else may pass.
pub(crate) fn classify_mint(error: octocrab::Error, installation: impl std::fmt::Display) -> CallError {
    match error {
        octocrab::Error::GitHub { source, .. } if source.status_code.as_u16() == 404 => {
            CallError::Refused(format!("installation {installation} is not known to GitHub"))
        }
        octocrab::Error::GitHub { source, .. } => CallError::Retryable(format!(
            "minting an installation token failed: {} {}",
            source.status_code.as_u16(),
            brief(&source.message)
        )),
        other => CallError::Retryable(format!("minting an installation token failed: {}", unreachable(&other))),
    }
}
