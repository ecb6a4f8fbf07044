//! The GitHub App manifest, built from `SHIPLOG_PUBLIC_URL`.
//!
//! This builder is the source of the App's name, permissions and events; `app-manifest.yml` (for
//! registering by hand) must say the same, which a test below checks. Two fields exist only for
//! the browser flow and are not in the file: `redirect_url` is `{public}/setup/callback` (where
//! GitHub sends the one-hour code) and `callback_urls` holds `{public}/auth/github/callback` for
//! signing in with GitHub (issue 20, part 2).

use serde_json::{json, Value};

/// The manifest JSON for an App served at `public_url` (no trailing slash needed).
pub fn app_manifest(public_url: &str) -> Value {
    let public = public_url.trim_end_matches('/');
    json!({
        "name": "shiplog",
        "url": public,
        "description": "What code is live where, and since when. Deploy history, ancestry, deploy monitoring and post-deploy triggers.",
        "public": false,
        "hook_attributes": {
            "url": format!("{public}/webhooks/github"),
            "active": true,
        },
        "redirect_url": format!("{public}/setup/callback"),
        "callback_urls": [format!("{public}/auth/github/callback")],
        "setup_url": format!("{public}/deployments"),
        "setup_on_update": false,
        "request_oauth_on_install": false,
        "default_permissions": {
            "deployments": "read",
            "contents": "read",
            "metadata": "read",
            "pull_requests": "read",
            "issues": "write",
            "actions": "read",
        },
        "default_events": [
            "deployment",
            "deployment_status",
            "pull_request",
            "issue_comment",
            "workflow_run",
        ],
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    /// Fields set by the browser flow only; the file is for registering by hand.
    const FLOW_ONLY: [&str; 2] = ["redirect_url", "callback_urls"];

    #[test]
    fn app_manifest_yml_says_what_the_builder_says() {
        let text = include_str!("../../app-manifest.yml");
        let file: Value = serde_norway::from_str(text).unwrap();
        let built = app_manifest("https://shiplog.example.com/");
        let (file, built) = (file.as_object().unwrap(), built.as_object().unwrap());

        for (field, value) in built {
            if FLOW_ONLY.contains(&field.as_str()) {
                continue;
            }
            assert_eq!(file.get(field), Some(value), "app-manifest.yml's {field}");
        }
        for field in file.keys() {
            assert!(
                built.contains_key(field),
                "app-manifest.yml has {field}, the builder does not"
            );
        }
    }

    #[test]
    fn the_flow_urls_are_under_the_public_url() {
        let built = app_manifest("https://ship.example.org");
        assert_eq!(built["redirect_url"], "https://ship.example.org/setup/callback");
        assert_eq!(
            built["hook_attributes"]["url"],
            "https://ship.example.org/webhooks/github"
        );
        assert_eq!(
            built["callback_urls"],
            json!(["https://ship.example.org/auth/github/callback"])
        );
        assert_eq!(built["public"], false);
        assert_eq!(built["request_oauth_on_install"], false);
    }
}
