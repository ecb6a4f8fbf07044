//! Where `/setup`'s form posts the manifest: GitHub's "new App" page of the signed-in user, or of
//! an organization named by a validated GitHub login, with the single-use `state` in the query.

/// A GitHub user or organization login: 1-39 ASCII letters, digits or single hyphens, not at
/// either end (GitHub's rule), so it is safe in a URL path as it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GitHubLogin(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("must be a GitHub login: 1-39 letters, digits or single hyphens, not starting or ending with one")]
pub struct InvalidLogin;

impl GitHubLogin {
    pub fn parse(raw: &str) -> Result<Self, InvalidLogin> {
        let login = raw.trim();
        let valid = (1..=39).contains(&login.len())
            && login.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !login.starts_with('-')
            && !login.ends_with('-')
            && !login.contains("--");
        if valid {
            Ok(Self(login.to_owned()))
        } else {
            Err(InvalidLogin)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Whose App GitHub creates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Owner {
    /// The account signed in to GitHub in the browser.
    Personal,
    Organization(GitHubLogin),
}

/// The form's `action`: `{web}/settings/apps/new?state=S` or
/// `{web}/organizations/{org}/settings/apps/new?state=S`. `state` is base64url (`state.rs`).
pub fn form_action(github_web_url: &str, owner: &Owner, state: &str) -> String {
    let web = github_web_url.trim_end_matches('/');
    match owner {
        Owner::Personal => format!("{web}/settings/apps/new?state={state}"),
        Owner::Organization(org) => format!("{web}/organizations/{}/settings/apps/new?state={state}", org.as_str()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn logins_follow_githubs_rule() {
        for good in ["acme-corp", "a", "A1", &"x".repeat(39), " acme "] {
            assert!(GitHubLogin::parse(good).is_ok(), "{good:?}");
        }
        for bad in [
            "",
            "-acme",
            "acme-",
            "ac--me",
            "acme/corp",
            "../x",
            "acme corp",
            "ac%2Fme",
            &"x".repeat(40),
            "é",
        ] {
            assert_eq!(GitHubLogin::parse(bad), Err(InvalidLogin), "{bad:?}");
        }
    }

    #[test]
    fn the_form_posts_to_the_new_app_page_of_the_user_or_the_org() {
        let state = "Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0Z2FycGx5";
        assert_eq!(
            form_action("https://github.com", &Owner::Personal, state),
            format!("https://github.com/settings/apps/new?state={state}")
        );
        let org = Owner::Organization(GitHubLogin::parse("acme-corp").unwrap());
        assert_eq!(
            form_action("https://ghe.example.com/", &org, state),
            format!("https://ghe.example.com/organizations/acme-corp/settings/apps/new?state={state}")
        );
    }
}
