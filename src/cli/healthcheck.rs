//! `shiplog healthcheck`: one `GET /healthz`, for a container's HEALTHCHECK (the runtime image
//! has no curl). Exit 0 on a 200 within the timeout; otherwise one line saying what happened.
//! It never follows a redirect or a proxy: the answer must come from the server itself.

use std::time::Duration;

use anyhow::Context;

use crate::config::HealthcheckArgs;

pub async fn run(args: &HealthcheckArgs) -> anyhow::Result<()> {
    let (url, timeout) = args.target()?;
    check(url.as_str(), timeout).await
}

/// Succeeds when `url` answers 200 within `timeout`.
pub async fn check(url: &str, timeout: Duration) -> anyhow::Result<()> {
    let client = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .context("cannot build an HTTP client")?;
    let shown = without_credentials(url);
    let response = match client.get(url).send().await {
        Ok(response) => response,
        Err(error) if error.is_timeout() => {
            anyhow::bail!("unhealthy: {shown} did not answer within {}s", timeout.as_secs())
        }
        Err(error) => {
            // The innermost cause says it best ("Connection refused (os error 111)").
            let mut cause: &dyn std::error::Error = &error;
            while let Some(source) = cause.source() {
                cause = source;
            }
            anyhow::bail!("unhealthy: {shown} did not answer: {cause}")
        }
    };
    let status = response.status();
    if status != reqwest::StatusCode::OK {
        anyhow::bail!("unhealthy: {shown} answered {status}");
    }
    Ok(())
}

/// `url` as it may be printed: a user name or password in it is left out.
fn without_credentials(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if !parsed.username().is_empty() || parsed.password().is_some() => {
            let _ = parsed.set_username("");
            let _ = parsed.set_password(None);
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_password_in_the_url_is_not_printed() {
        let error = check("http://user:s3cretpw@127.0.0.1:1/healthz", Duration::from_secs(1))
            .await
            .unwrap_err()
            .to_string();
        assert!(!error.contains("s3cretpw") && !error.contains("user@"), "{error}");
        assert!(error.starts_with("unhealthy: http://127.0.0.1:1/healthz"), "{error}");
    }
}
