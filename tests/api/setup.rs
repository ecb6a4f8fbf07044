//! Setting the App up from the browser (issue 20, part 1), the pieces built so far: the
//! exchange of GitHub's one-hour manifest code against the fake GitHub, the single-use `state`,
//! and the App stored with its secrets sealed, on the suite's backend.

use chrono::{Duration, Utc};
use sea_orm::{ConnectionTrait, Statement};
use shiplog::ancestry::batch::commits_left;
use shiplog::config::GitHubAppCredentials;
use shiplog::github::app::GitHubApp;
use shiplog::github::client::InstallationClient;
use shiplog::github::manifest_conversion::{convert_manifest, ConversionError};
use shiplog::setup::secret_key::SecretKey;
use shiplog::setup::{state, stored_app};
use shiplog::store::Store;
use shiplog::types::{InstallationId, RepoName};

use crate::fake_github::{private_key_pem, FakeGitHub, ManifestApp, APP_ID};
use crate::git::GitRepo;
use crate::helpers::TestDatabase;

async fn migrated_store(database: &TestDatabase) -> Store {
    let store = Store::connect(&database.url).await.unwrap();
    store.migrate().await.unwrap();
    store
}

/// Every text column of `table`'s rows, joined (to look for plain secrets).
async fn table_text(store: &Store, table: &str) -> String {
    let conn = store.conn();
    let rows = conn
        .query_all(Statement::from_string(
            conn.get_database_backend(),
            format!("SELECT * FROM {table}"),
        ))
        .await
        .unwrap();
    let mut text = String::new();
    for row in rows {
        for column in row.column_names() {
            if let Ok(value) = row.try_get::<String>("", &column) {
                text.push_str(&value);
                text.push('\n');
            }
        }
    }
    text
}

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

#[tokio::test]
async fn a_state_is_good_once_within_the_hour_and_a_forged_one_never() {
    let database = TestDatabase::create().await;
    let store = migrated_store(&database).await;
    let now = Utc::now();

    let first = state::issue(&store, now).await.unwrap();
    assert_eq!(first.len(), 43);
    assert!(state::consume(&store, &first, now + Duration::minutes(59))
        .await
        .unwrap());
    assert!(
        !state::consume(&store, &first, now + Duration::minutes(59))
            .await
            .unwrap(),
        "reused"
    );

    let late = state::issue(&store, now).await.unwrap();
    assert!(
        !state::consume(&store, &late, now + Duration::minutes(61))
            .await
            .unwrap(),
        "expired"
    );

    let forged = "A".repeat(43);
    assert!(!state::consume(&store, &forged, now).await.unwrap(), "forged");
    for malformed in [
        "",
        "short",
        "../../etc",
        &"A".repeat(44),
        &format!("{}!", "A".repeat(42)),
    ] {
        assert!(!state::consume(&store, malformed, now).await.unwrap(), "{malformed:?}");
    }

    // Only hashes are stored.
    let stored = table_text(&store, "setup_state").await;
    assert!(!stored.contains(&first) && !stored.contains(&late), "{stored}");

    // The hourly clean-up forgets them once expired.
    let purged = shiplog::maintenance::purge(&store, now + Duration::minutes(30))
        .await
        .unwrap();
    assert_eq!(purged.setup_states, 0);
    let purged = shiplog::maintenance::purge(&store, now + Duration::minutes(61))
        .await
        .unwrap();
    assert_eq!(purged.setup_states, 2);
    store.close().await;
}

#[tokio::test]
async fn two_replicas_consuming_one_state_at_once_succeed_once() {
    let database = TestDatabase::create().await;
    let one = migrated_store(&database).await;
    let other = Store::connect(&database.url).await.unwrap();
    let now = Utc::now();
    let issued = state::issue(&one, now).await.unwrap();

    let (a, b) = tokio::join!(state::consume(&one, &issued, now), state::consume(&other, &issued, now));

    assert!(a.unwrap() ^ b.unwrap(), "exactly one replica consumes the state");
    one.close().await;
    other.close().await;
}

#[tokio::test]
async fn a_stored_app_keeps_its_secrets_sealed_and_opens_with_its_key_only() {
    let database = TestDatabase::create().await;
    let store = migrated_store(&database).await;
    let fake = FakeGitHub::start().await;
    let code = fake.issue_manifest_code(acme_app());
    let app = convert_manifest(&fake.url, &code, Utc::now()).await.unwrap();
    let key = SecretKey::generate().unwrap();
    assert!(stored_app::load(&store, &key).await.unwrap().is_none());

    stored_app::save(&store, &key, &app, Utc::now()).await.unwrap();

    let stored = table_text(&store, "stored_app").await;
    for secret in ["client-secret-4f1c9e", "webhook-secret-7d2a0b", "PRIVATE KEY", "MII"] {
        assert!(!stored.contains(secret), "{secret} stored in plain: {stored}");
    }
    assert!(stored.contains("shiplog-acme") && stored.contains("Iv23liAcmeClient"));
    assert_eq!(
        stored_app::peek(&store).await.unwrap(),
        Some((APP_ID, "shiplog-acme".to_owned()))
    );

    let loaded = stored_app::load(&store, &key).await.unwrap().unwrap();
    assert_eq!(loaded.id, APP_ID);
    assert_eq!(loaded.slug, "shiplog-acme");
    assert_eq!(loaded.client_secret.expose(), "client-secret-4f1c9e");
    assert_eq!(loaded.webhook_secret.expose(), "webhook-secret-7d2a0b");
    assert_eq!(loaded.private_key_pem.expose(), private_key_pem());

    let wrong = SecretKey::generate().unwrap();
    let error = stored_app::load(&store, &wrong).await.unwrap_err();
    assert!(matches!(error, stored_app::StoredAppError::Unusable), "{error:?}");
    assert!(!error.to_string().contains('\n'));

    // Set up again: the new App replaces the old one.
    let renamed = shiplog::github::manifest_conversion::ConvertedApp {
        slug: "shiplog-acme-2".to_owned(),
        ..loaded
    };
    stored_app::save(&store, &key, &renamed, Utc::now()).await.unwrap();
    assert_eq!(
        stored_app::peek(&store).await.unwrap(),
        Some((APP_ID, "shiplog-acme-2".to_owned()))
    );
    store.close().await;
}

#[tokio::test]
async fn setup_show_names_the_stored_app_and_prints_no_secret() {
    let database = TestDatabase::create().await;
    let store = migrated_store(&database).await;
    let fake = FakeGitHub::start().await;
    let code = fake.issue_manifest_code(acme_app());
    let app = convert_manifest(&fake.url, &code, Utc::now()).await.unwrap();
    let hex_key = "8f".repeat(32);
    let key = SecretKey::parse(&hex_key, "test").unwrap();
    stored_app::save(&store, &key, &app, Utc::now()).await.unwrap();
    store.close().await;

    let show = |secret_key: String| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_shiplog"));
        command.args(["setup", "show"]);
        for var in [
            "GITHUB_WEBHOOK_SECRET",
            "GITHUB_APP_ID",
            "GITHUB_APP_PRIVATE_KEY",
            "GITHUB_APP_PRIVATE_KEY_PATH",
            "SHIPLOG_SECRET_KEY_FILE",
            "RUST_LOG",
        ] {
            command.env_remove(var);
        }
        command.env("DATABASE_URL", &database.url);
        command.env("SHIPLOG_SECRET_KEY", secret_key);
        async move {
            tokio::task::spawn_blocking(move || command.output().unwrap())
                .await
                .unwrap()
        }
    };

    let output = show(hex_key.clone()).await;
    let stdout = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(output.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains(&format!(
            "GitHub App: from the database (set up in the browser)\n  id: {APP_ID}\n  slug: shiplog-acme\n  private key: present\n"
        )),
        "{stdout}"
    );
    assert!(stdout.contains("webhook secret: present (database)"), "{stdout}");
    assert!(
        stdout.contains("OAuth client (sign in with GitHub): present (database)"),
        "{stdout}"
    );
    assert!(stdout.contains("secret key: SHIPLOG_SECRET_KEY (valid)"), "{stdout}");
    for secret in ["client-secret-4f1c9e", "webhook-secret-7d2a0b", "PRIVATE KEY", &hex_key] {
        assert!(!stdout.contains(secret) && !stderr.contains(secret), "{secret} printed");
    }

    let output = show("17".repeat(32)).await;
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(output.status.success());
    assert!(
        stdout.contains("GitHub App: from the database, not usable: the GitHub App stored in the database is unusable"),
        "{stdout}"
    );
    assert!(stdout.contains("webhook secret: none"), "{stdout}");
}

/// An HTML attribute's value as the templates escape it, read back.
fn unescape(value: &str) -> String {
    value
        .replace("&#34;", "\"")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The value of the attribute `name` on the first tag holding `marker`.
fn attribute(page: &str, marker: &str, name: &str) -> String {
    let tag_start = page.find(marker).unwrap_or_else(|| panic!("no {marker} in {page}"));
    let tag = &page[page[..tag_start].rfind('<').unwrap()..];
    let tag = &tag[..tag.find('>').unwrap()];
    let start = tag.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
    unescape(&tag[start..start + tag[start..].find('"').unwrap()])
}

/// A signed-in browser's cookies (session and CSRF) and its CSRF token.
async fn signed_in(app: &crate::helpers::TestApp, client: &reqwest::Client) -> (String, String) {
    let session = crate::pages::session(app, client).await;
    let csrf_cookie = crate::pages::login_form(app, client).await;
    let token = csrf_cookie.split_once('=').unwrap().1.to_owned();
    (format!("{session}; {csrf_cookie}"), token)
}

async fn post_setup(
    app: &crate::helpers::TestApp,
    client: &reqwest::Client,
    cookies: &str,
    form: &[(&str, &str)],
) -> (u16, String, String) {
    let response = client
        .post(app.url("/setup"))
        .header("Cookie", cookies)
        .form(form)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let csp = response
        .headers()
        .get("content-security-policy")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    (status, csp, response.text().await.unwrap())
}

#[tokio::test]
async fn the_setup_page_posts_the_manifest_to_github_with_a_single_use_state() {
    let app = crate::helpers::spawn_app().await;
    let client = crate::pages::no_redirects();
    let (cookies, csrf) = signed_in(&app, &client).await;

    let page = client
        .get(app.url("/setup"))
        .header("Cookie", &cookies)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(
        page.headers()["content-security-policy"],
        shiplog::http::security_headers::CONTENT_SECURITY_POLICY
    );
    let page = page.text().await.unwrap();
    assert!(page.contains("No GitHub App is configured"), "{page}");
    assert!(page.contains(r#"action="/setup""#), "{page}");

    // An organization: its login is checked before anything is stored.
    let (status, _, page) = post_setup(
        &app,
        &client,
        &cookies,
        &[("csrf", &csrf), ("owner", "organization"), ("org", "../evil")],
    )
    .await;
    assert_eq!(status, 422, "{page}");
    assert!(page.contains("must be a GitHub login"), "{page}");
    assert_eq!(app.count_rows("setup_state").await, 0);

    // Without the form's CSRF token, nothing either.
    let (status, _, _) = post_setup(
        &app,
        &client,
        &cookies,
        &[("csrf", &"0".repeat(32)), ("owner", "personal")],
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(app.count_rows("setup_state").await, 0);

    let (status, csp, page) = post_setup(
        &app,
        &client,
        &cookies,
        &[("csrf", &csrf), ("owner", "organization"), ("org", "acme-corp")],
    )
    .await;
    assert_eq!(status, 200, "{page}");
    // This page alone may post to GitHub's web origin (the fake API URL's, in the tests).
    assert!(csp.contains("form-action 'self' http://127.0.0.1:9;"), "{csp}");
    assert!(!page.contains("<script"), "{page}");
    let action = attribute(&page, r#"id="github-form""#, "action");
    let state = action
        .strip_prefix("http://127.0.0.1:9/organizations/acme-corp/settings/apps/new?state=")
        .unwrap_or_else(|| panic!("{action}"))
        .to_owned();
    let manifest: serde_json::Value = serde_json::from_str(&attribute(&page, r#"name="manifest""#, "value")).unwrap();
    assert_eq!(
        manifest,
        shiplog::setup::manifest::app_manifest("http://localhost:3000")
    );
    assert_eq!(manifest["redirect_url"], "http://localhost:3000/setup/callback");
    assert_eq!(app.count_rows("setup_state").await, 1);
    // Only the state's hash is stored.
    assert!(!table_text(&app.store, "setup_state").await.contains(&state));

    // The personal account's form posts to the user's new-App page, with another state.
    let (status, _, page) = post_setup(&app, &client, &cookies, &[("csrf", &csrf), ("owner", "personal")]).await;
    assert_eq!(status, 200, "{page}");
    let personal = attribute(&page, r#"id="github-form""#, "action");
    assert!(
        personal.starts_with("http://127.0.0.1:9/settings/apps/new?state="),
        "{personal}"
    );
    assert!(!personal.ends_with(&state));

    // The state is a real one: good once.
    let now = shiplog::clock::Clock::now(&*app.clock);
    assert!(state::consume(&app.store, &state, now).await.unwrap());
    assert!(!state::consume(&app.store, &state, now).await.unwrap());
}

#[tokio::test]
async fn with_an_app_stored_the_setup_page_links_to_its_install_page() {
    let app = crate::helpers::spawn_app().await;
    let fake = FakeGitHub::start().await;
    let code = fake.issue_manifest_code(acme_app());
    let converted = convert_manifest(&fake.url, &code, Utc::now()).await.unwrap();
    stored_app::save(&app.store, &SecretKey::generate().unwrap(), &converted, Utc::now())
        .await
        .unwrap();
    let client = crate::pages::no_redirects();
    let (cookies, csrf) = signed_in(&app, &client).await;

    let page = client
        .get(app.url("/setup"))
        .header("Cookie", &cookies)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("shiplog-acme"), "{page}");
    assert_eq!(
        attribute(&page, r#"id="install""#, "href"),
        "http://127.0.0.1:9/apps/shiplog-acme/installations/new"
    );
    assert!(!page.contains(r#"id="setup-form""#), "{page}");
    for secret in ["client-secret-4f1c9e", "webhook-secret-7d2a0b", "PRIVATE KEY"] {
        assert!(!page.contains(secret), "{page}");
    }

    // No second App over it from this page.
    let (status, _, page) = post_setup(&app, &client, &cookies, &[("csrf", &csrf), ("owner", "personal")]).await;
    assert_eq!(status, 409, "{page}");
    assert_eq!(app.count_rows("setup_state").await, 0);
}

/// Signs in, posts the owner form, and returns the state GitHub would hand back.
async fn start_setup(app: &crate::helpers::TestApp, client: &reqwest::Client, cookies: &str, csrf: &str) -> String {
    let (status, _, page) = post_setup(app, client, cookies, &[("csrf", csrf), ("owner", "personal")]).await;
    assert_eq!(status, 200, "{page}");
    let action = attribute(&page, r#"id="github-form""#, "action");
    action.split_once("?state=").unwrap().1.to_owned()
}

async fn callback(app: &crate::helpers::TestApp, client: &reqwest::Client, code: &str, state: &str) -> (u16, String) {
    // No cookie: GitHub's redirect does not bring the Strict session cookie along.
    let response = client
        .get(app.url("/setup/callback"))
        .query(&[("code", code), ("state", state)])
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

async fn setup_page(app: &crate::helpers::TestApp, client: &reqwest::Client, cookies: &str) -> String {
    let response = client
        .get(app.url("/setup"))
        .header("Cookie", cookies)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.text().await.unwrap()
}

#[tokio::test]
async fn the_whole_browser_setup_ends_with_the_app_stored_and_its_install_link() {
    let fake = FakeGitHub::start().await;
    let api_url = fake.url.clone();
    let app = crate::helpers::spawn_app_with(|config| config.github_api_url = api_url).await;
    let client = crate::pages::no_redirects();
    let (cookies, csrf) = signed_in(&app, &client).await;
    let state = start_setup(&app, &client, &cookies, &csrf).await;
    let code = fake.issue_manifest_code(acme_app());

    let (status, page) = callback(&app, &client, &code, &state).await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains(r#"<meta http-equiv="refresh" content="1;url=/setup">"#),
        "{page}"
    );
    assert!(page.contains(r#"href="/setup""#), "{page}");

    // Pending: the page reloads itself; the code is nowhere in plain, not in the job's payload.
    let page = setup_page(&app, &client, &cookies).await;
    assert!(page.contains(r#"id="pending""#), "{page}");
    assert!(page.contains(r#"<meta http-equiv="refresh" content="2">"#), "{page}");
    let (status, jobs) = app.admin_get("/api/jobs").await;
    assert_eq!(status, 200);
    let conversion = jobs["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|job| job["kind"] == "app.convert_manifest")
        .unwrap_or_else(|| panic!("{jobs}"))
        .clone();
    assert!(!jobs.to_string().contains(&code), "{jobs}");
    assert_eq!(conversion["payload"].as_object().unwrap().len(), 1, "{conversion}");
    assert!(!table_text(&app.store, "setup_state").await.contains(&code));

    // The same state again, or a forged one: refused, nothing more enqueued.
    let (status, page) = callback(&app, &client, &code, &state).await;
    assert_eq!(status, 400, "{page}");
    assert!(page.contains("Start again"), "{page}");
    let forged = "A".repeat(43);
    assert_eq!(callback(&app, &client, &code, &forged).await.0, 400);
    assert_eq!(callback(&app, &client, &code, "short").await.0, 400);

    let reports = app.run_jobs().await;
    assert_eq!(reports.len(), 1, "{reports:?}");

    let page = setup_page(&app, &client, &cookies).await;
    assert!(!page.contains(r#"id="pending""#), "{page}");
    assert!(page.contains("restart shiplog to use it"), "{page}");
    assert_eq!(
        attribute(&page, r#"id="install""#, "href"),
        format!("{}/apps/shiplog-acme/installations/new", fake.url.trim_end_matches('/'))
    );
    for secret in [
        "client-secret-4f1c9e",
        "webhook-secret-7d2a0b",
        "PRIVATE KEY",
        code.as_str(),
    ] {
        assert!(!page.contains(secret), "{secret} in {page}");
    }
    // Stored sealed, under the server's key; the code is forgotten.
    let key = SecretKey::parse(crate::helpers::TEST_SECRET_KEY, "test").unwrap();
    let stored = stored_app::load(&app.store, &key).await.unwrap().unwrap();
    assert_eq!(stored.id, APP_ID);
    assert_eq!(stored.webhook_secret.expose(), "webhook-secret-7d2a0b");
    assert_eq!(stored.private_key_pem.expose(), private_key_pem());
    let rows = table_text(&app.store, "stored_app").await + &table_text(&app.store, "setup_state").await;
    for secret in [
        "client-secret-4f1c9e",
        "webhook-secret-7d2a0b",
        "PRIVATE KEY",
        code.as_str(),
    ] {
        assert!(!rows.contains(secret), "{secret} in {rows}");
    }
    let (_, jobs) = app.admin_get("/api/jobs").await;
    for secret in [
        "client-secret-4f1c9e",
        "webhook-secret-7d2a0b",
        "PRIVATE KEY",
        code.as_str(),
    ] {
        assert!(!jobs.to_string().contains(secret), "{secret} in {jobs}");
    }
}

#[tokio::test]
async fn an_expired_code_at_the_callback_says_start_again() {
    let fake = FakeGitHub::start().await;
    let api_url = fake.url.clone();
    let app = crate::helpers::spawn_app_with(|config| config.github_api_url = api_url).await;
    let client = crate::pages::no_redirects();
    let (cookies, csrf) = signed_in(&app, &client).await;
    let state = start_setup(&app, &client, &cookies, &csrf).await;

    // A code GitHub no longer knows (its hour is over): the fake answers 404.
    let (status, _) = callback(&app, &client, "expired0code1234", &state).await;
    assert_eq!(status, 200);
    app.run_jobs().await;

    let page = setup_page(&app, &client, &cookies).await;
    assert!(page.contains("code expired or was used already: start again"), "{page}");
    assert!(!page.contains(r#"id="pending""#), "{page}");
    assert!(page.contains(r#"id="setup-form""#), "{page}");
    assert!(stored_app::peek(&app.store).await.unwrap().is_none());
}

#[tokio::test]
async fn a_callback_after_the_states_hour_is_refused() {
    let app = crate::helpers::spawn_app().await;
    let client = crate::pages::no_redirects();
    let (cookies, csrf) = signed_in(&app, &client).await;
    let state = start_setup(&app, &client, &cookies, &csrf).await;
    app.clock.advance(Duration::minutes(61));
    let (status, page) = callback(&app, &client, "somecode", &state).await;
    assert_eq!(status, 400, "{page}");
    assert_eq!(app.count_rows("job").await, 0);
}

#[tokio::test]
async fn after_a_restart_serve_uses_the_app_set_up_in_the_browser_and_its_webhook_secret() {
    let fake = FakeGitHub::start().await;
    let database = std::sync::Arc::new(TestDatabase::create().await);
    {
        let store = migrated_store(&database).await;
        let code = fake.issue_manifest_code(acme_app());
        let converted = convert_manifest(&fake.url, &code, Utc::now()).await.unwrap();
        let key = SecretKey::parse(crate::helpers::TEST_SECRET_KEY, "test").unwrap();
        stored_app::save(&store, &key, &converted, Utc::now()).await.unwrap();
        store.close().await;
    }
    let api_url = fake.url.clone();
    let app = crate::helpers::spawn_app_on(database, |config| config.github_api_url = api_url, Vec::new()).await;

    // Signed with the stored App's webhook secret: accepted (the environment's still is too).
    let body = serde_json::json!({"zen": "Keep it logically awesome.", "hook_id": 1});
    let bytes = serde_json::to_vec(&body).unwrap();
    let mut request = crate::helpers::WebhookRequest::signed_bytes("ping", bytes.clone());
    request.signature = Some(shiplog::github::signature::sign("webhook-secret-7d2a0b", &bytes));
    let status = app.send_webhook(request).await.status().as_u16();
    assert!((200..300).contains(&status), "{status}");
    let mut forged = crate::helpers::WebhookRequest::signed_bytes("ping", bytes.clone());
    forged.signature = Some(shiplog::github::signature::sign("not-the-secret", &bytes));
    assert_eq!(app.send_webhook(forged).await.status(), 401);
    let status = app
        .send_webhook(crate::helpers::WebhookRequest::signed("ping", &body))
        .await
        .status()
        .as_u16();
    assert!((200..300).contains(&status), "{status}");

    let client = crate::pages::no_redirects();
    let (cookies, _) = signed_in(&app, &client).await;
    let page = setup_page(&app, &client, &cookies).await;
    assert!(page.contains("shiplog-acme"), "{page}");
    assert!(page.contains("set up in the browser, in use"), "{page}");
}

#[tokio::test]
async fn a_stored_app_sealed_under_another_key_does_not_stop_the_start() {
    let fake = FakeGitHub::start().await;
    let database = std::sync::Arc::new(TestDatabase::create().await);
    {
        let store = migrated_store(&database).await;
        let code = fake.issue_manifest_code(acme_app());
        let converted = convert_manifest(&fake.url, &code, Utc::now()).await.unwrap();
        stored_app::save(&store, &SecretKey::generate().unwrap(), &converted, Utc::now())
            .await
            .unwrap();
        store.close().await;
    }
    let app = crate::helpers::spawn_app_on(database, |_| {}, Vec::new()).await;

    // Not used: a delivery signed with its webhook secret is refused; the server still serves.
    let bytes = serde_json::to_vec(&serde_json::json!({"zen": "hi", "hook_id": 1})).unwrap();
    let mut request = crate::helpers::WebhookRequest::signed_bytes("ping", bytes.clone());
    request.signature = Some(shiplog::github::signature::sign("webhook-secret-7d2a0b", &bytes));
    assert_eq!(app.send_webhook(request).await.status(), 401);
    let client = crate::pages::no_redirects();
    let (cookies, _) = signed_in(&app, &client).await;
    let page = setup_page(&app, &client, &cookies).await;
    assert!(!page.contains("in use"), "{page}");
}
