//! Setting the App up from the browser (issue 20, part 1): so far, the exchange of GitHub's
//! one-hour manifest code for the new App's credentials, against the fake GitHub.

use shiplog::ancestry::batch::commits_left;
use shiplog::config::GitHubAppCredentials;
use shiplog::github::app::GitHubApp;
use shiplog::github::client::InstallationClient;
use shiplog::github::manifest_conversion::{convert_manifest, ConversionError};
use shiplog::types::{InstallationId, RepoName};

use crate::fake_github::{private_key_pem, FakeGitHub, ManifestApp, APP_ID};
use crate::git::GitRepo;

fn acme_app() -> ManifestApp {
    ManifestApp {
        slug: "shiplog-acme".to_owned(),
        owner: "acme-corp".to_owned(),
        client_id: "Iv23liAcmeClient".to_owned(),
        client_secret: "client-secret-4f1c9e".to_owned(),
        webhook_secret: "webhook-secret-7d2a0b".to_owned(),
    }
}

#[tokio::test]
async fn a_manifest_code_converts_once_into_an_app_that_mints_installation_tokens() {
    let fake = FakeGitHub::start().await;
    let code = fake.issue_manifest_code(acme_app());

    let app = convert_manifest(&fake.url, &code, chrono::Utc::now()).await.unwrap();

    assert_eq!(app.id, APP_ID);
    assert_eq!(app.slug, "shiplog-acme");
    assert_eq!(app.owner_login, "acme-corp");
    assert_eq!(app.html_url, "https://github.com/apps/shiplog-acme");
    assert_eq!(app.client_id, "Iv23liAcmeClient");
    assert_eq!(app.client_secret.expose(), "client-secret-4f1c9e");
    assert_eq!(app.webhook_secret.expose(), "webhook-secret-7d2a0b");
    assert_eq!(app.private_key_pem.expose(), private_key_pem());
    let printed = format!("{app:?}");
    for secret in ["client-secret-4f1c9e", "webhook-secret-7d2a0b", "PRIVATE KEY"] {
        assert!(!printed.contains(secret), "{secret} in {printed}");
    }

    // The key GitHub handed back is the App's: a call as an installation mints a token with it.
    let repo = GitRepo::new();
    let base = repo.commit("base");
    let head = repo.commit("head");
    fake.add_repo("acme-corp/web-app", &repo);
    let credentials = GitHubAppCredentials {
        app_id: app.id,
        private_key_pem: app.private_key_pem.clone(),
    };
    let github = GitHubApp::new(&credentials, &fake.url).unwrap();
    let client = InstallationClient {
        app: &github,
        installation: InstallationId(41000001),
    };
    let repo_name = RepoName::parse("acme-corp/web-app").unwrap();
    let left = commits_left(&client, &repo_name, &head, &base, chrono::Utc::now())
        .await
        .unwrap();
    assert_eq!(left, vec![head.clone()]);
    assert_eq!(fake.token_mints(), 1);

    // The code was good once.
    let again = convert_manifest(&fake.url, &code, chrono::Utc::now()).await;
    assert!(matches!(again, Err(ConversionError::Expired)), "{again:?}");
}

#[tokio::test]
async fn an_expired_code_tells_the_user_to_start_again() {
    let fake = FakeGitHub::start().await;
    let code = fake.issue_manifest_code(acme_app());
    fake.expire_manifest_codes();

    let error = convert_manifest(&fake.url, &code, chrono::Utc::now())
        .await
        .unwrap_err();

    assert!(matches!(error, ConversionError::Expired), "{error:?}");
    assert_eq!(
        error.to_string(),
        "the code expired or was already used: start again from /setup"
    );
    assert_eq!(fake.count("/app-manifests/"), 1);
}

#[tokio::test]
async fn a_code_github_would_not_issue_never_reaches_github() {
    let fake = FakeGitHub::start().await;

    for code in ["", "../../app/installations/1/access_tokens", "a b", &"x".repeat(101)] {
        let answer = convert_manifest(&fake.url, code, chrono::Utc::now()).await;
        assert!(matches!(answer, Err(ConversionError::Expired)), "{code:?}: {answer:?}");
    }
    assert!(fake.calls().is_empty(), "{:?}", fake.calls());
}
