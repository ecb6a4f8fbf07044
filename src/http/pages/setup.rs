//! `/setup`: creating the GitHub App from the browser with GitHub's manifest flow (README,
//! "Register the GitHub App"). When an App is configured the page names it and links to its
//! install page; otherwise a form picks the owner (personal account or an organization), and
//! its answer is a page whose form posts the manifest to GitHub with a single-use state.

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::{check_csrf, csrf, html};
use crate::error::ApiError;
use crate::http::security_headers::content_security_policy_posting_to;
use crate::http::AppState;
use crate::setup::form::{form_action, GitHubLogin, Owner};
use crate::setup::{conversion, manifest, state as setup_state, stored_app};
use crate::store::app_setup;

/// The configured App, shown instead of the form.
struct Configured {
    slug: String,
    /// Where the App comes from, and whether this server uses it yet.
    source: &'static str,
    install_url: String,
}

#[derive(Template)]
#[template(path = "setup.html")]
struct SetupPage {
    csrf: String,
    tab: &'static str,
    configured: Option<Configured>,
    /// A callback's conversion is under way: the page reloads itself.
    pending: bool,
    /// How the last callback's conversion failed, when it did.
    outcome: Option<String>,
    error: Option<String>,
    /// The organization login typed before, shown again with the error.
    org: String,
}

#[derive(Template)]
#[template(path = "setup_github.html")]
struct PostToGitHubPage {
    csrf: String,
    tab: &'static str,
    /// GitHub's "new App" page with the state.
    action: String,
    /// The manifest JSON (escaped by the template into the attribute).
    manifest: String,
    owner: String,
}

/// The App in use, from the environment first, else the one stored in the database.
async fn configured(state: &AppState) -> Result<Option<Configured>, ApiError> {
    let web = state.config.github_web_url();
    let install_url = |slug: &str| format!("{web}/apps/{slug}/installations/new");
    if state.github.is_some() {
        let slug = state.config.github_app_slug.clone();
        return Ok(Some(Configured {
            install_url: install_url(&slug),
            slug,
            source: if state.config.github_app_stored {
                "set up in the browser, in use"
            } else {
                "from the environment"
            },
        }));
    }
    let stored = stored_app::peek(&state.store).await.map_err(|e| match e {
        stored_app::StoredAppError::Store(store) => ApiError::from(store),
        other => ApiError::Internal(other.into()),
    })?;
    Ok(stored.map(|(_, slug)| Configured {
        install_url: install_url(&slug),
        slug,
        source: "set up in the browser and stored; restart shiplog to use it",
    }))
}

async fn setup_page(
    req: &HttpRequest,
    state: &AppState,
    status: StatusCode,
    error: Option<String>,
    org: String,
) -> Result<HttpResponse, ApiError> {
    let (csrf, cookie) = csrf(req, state)?;
    let configured = configured(state).await?;
    let since = state.clock.now() - setup_state::STATE_LIFETIME;
    let last = app_setup::last_outcome(state.store.conn(), since).await?;
    let outcome = match last.as_deref() {
        Some(conversion::OUTCOME_EXPIRED) => Some("GitHub's code expired or was used already: start again.".to_owned()),
        Some(conversion::OUTCOME_FAILED) => {
            Some("shiplog could not fetch the App's credentials from GitHub: start again.".to_owned())
        }
        _ => None,
    };
    let page = SetupPage {
        csrf,
        tab: "setup",
        pending: configured.is_none() && last.as_deref() == Some(app_setup::OUTCOME_PENDING),
        configured,
        outcome,
        error,
        org,
    };
    Ok(html(status, page.render(), cookie))
}

/// `GET /setup`.
pub async fn show_setup(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    setup_page(&req, &state, StatusCode::OK, None, String::new()).await
}

#[derive(Debug, Deserialize)]
pub struct SetupForm {
    csrf: String,
    /// `personal` or `organization`.
    owner: String,
    #[serde(default)]
    org: String,
}

/// `POST /setup`: a new single-use state, and the page that posts the manifest to GitHub.
#[tracing::instrument(skip_all)]
pub async fn start_setup(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: web::Form<SetupForm>,
) -> Result<HttpResponse, ApiError> {
    let form = form.into_inner();
    check_csrf(&req, &form.csrf)?;
    let org = form.org.chars().take(100).collect::<String>();
    if configured(&state).await?.is_some() {
        return setup_page(
            &req,
            &state,
            StatusCode::CONFLICT,
            Some("A GitHub App is already configured.".to_owned()),
            String::new(),
        )
        .await;
    }
    let owner = match form.owner.as_str() {
        "personal" => Owner::Personal,
        "organization" => match GitHubLogin::parse(&org) {
            Ok(login) => Owner::Organization(login),
            Err(invalid) => {
                let message = format!("The organization {invalid}.");
                return setup_page(&req, &state, StatusCode::UNPROCESSABLE_ENTITY, Some(message), org).await;
            }
        },
        _ => {
            let message = "Choose your personal account or an organization.".to_owned();
            return setup_page(&req, &state, StatusCode::UNPROCESSABLE_ENTITY, Some(message), org).await;
        }
    };
    let now = state.clock.now();
    let issued = setup_state::issue(&state.store, now).await.map_err(|e| match e {
        setup_state::StateError::Store(store) => ApiError::from(store),
        other => ApiError::Internal(other.into()),
    })?;
    let web_url = state.config.github_web_url();
    let (csrf, cookie) = csrf(&req, &state)?;
    let page = PostToGitHubPage {
        csrf,
        tab: "setup",
        action: form_action(&web_url, &owner, &issued),
        manifest: manifest::app_manifest(&state.config.public_url).to_string(),
        owner: match &owner {
            Owner::Personal => "your personal account".to_owned(),
            Owner::Organization(login) => format!("the organization {}", login.as_str()),
        },
    };
    let mut response = html(StatusCode::OK, page.render(), cookie);
    // This page alone may post a form to GitHub.
    if let Some(policy) = content_security_policy_posting_to(&web_url) {
        if let Ok(value) = header::HeaderValue::from_str(&policy) {
            response.headers_mut().insert(header::CONTENT_SECURITY_POLICY, value);
        }
    }
    Ok(response)
}

#[derive(Template)]
#[template(path = "setup_callback.html")]
struct CallbackPage {
    accepted: bool,
}

#[derive(Debug, Deserialize)]
pub struct CallbackQuery {
    #[serde(default)]
    code: String,
    #[serde(default)]
    state: String,
}

/// `GET /setup/callback?code=&state=`: where GitHub sends the browser after creating the App.
/// The state is the credential (the session cookie is `SameSite=Strict` and does not come along
/// on GitHub's redirect). No call to GitHub here: the code is kept sealed and the
/// `app.convert_manifest` job exchanges it; the answer is a page of ours that moves on to
/// `/setup` (a same-site navigation, so the admin's session goes along).
#[tracing::instrument(skip_all)]
pub async fn setup_callback(
    state: web::Data<AppState>,
    query: web::Query<CallbackQuery>,
) -> Result<HttpResponse, ApiError> {
    let key = state
        .config
        .secret_key()
        .map_err(|e| ApiError::Internal(anyhow::anyhow!(e)))?;
    let accepted = setup_state::accept_callback(&state.store, &key, &query.state, &query.code, state.clock.now())
        .await
        .map_err(|e| match e {
            setup_state::CallbackError::Store(store) => ApiError::from(store),
            other => ApiError::Internal(other.into()),
        })?;
    if accepted.is_some() {
        tracing::info!("the set-up callback was accepted; the code is being exchanged");
        state.jobs_wake.notify_one();
    } else {
        tracing::info!("a set-up callback with an unknown, used or expired state was refused");
    }
    let status = if accepted.is_some() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    let page = CallbackPage {
        accepted: accepted.is_some(),
    };
    Ok(html(status, page.render(), None))
}
