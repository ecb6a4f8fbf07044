//! GitHub's answers classified: the two kinds of 404, rate limits (with when to try again), a
//! refused installation token, and faults worth retrying. Every GitHub call (`compare.rs`,
//! `issues.rs`, token minting in `client.rs`) reports through [`CallError`].

use chrono::{DateTime, Duration, Utc};

#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("GitHub does not know {0}")]
    UnknownCommit(String),
    #[error("the commits have no common ancestor")]
    NoCommonAncestor,
    #[error("GitHub's rate limit: try again after {retry_at:?}")]
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
        return CallError::Retryable(error.to_string());
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
                return CallError::RateLimited {
                    retry_at: Some(now + Duration::seconds(seconds.max(0))),
                };
            }
            if header("x-ratelimit-remaining").as_deref() == Some("0") {
                let reset = header("x-ratelimit-reset")
                    .and_then(|v| v.trim().parse::<i64>().ok())
                    .and_then(|s| DateTime::from_timestamp(s, 0));
                return CallError::RateLimited { retry_at: reset };
            }
            if status == 429 || source.message.to_ascii_lowercase().contains("rate limit") {
                return CallError::RateLimited { retry_at: None };
            }
            CallError::Refused(source.message)
        }
        500..=599 => CallError::Retryable(source.message),
        _ => CallError::Refused(source.message),
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
            source.message
        )),
        other => CallError::Retryable(format!("minting an installation token failed: {other:?}")),
    }
}
