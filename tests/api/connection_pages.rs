//! The connection pages over plain HTTP: the list, one connection with its workflow rules and
//! backfills, the "Backfill history" form (CSRF, 409 and 422 shown on the page), hostile values
//! escaped, and the history's marks for imported and Actions deploys.

use chrono::Duration;
use serde_json::{json, Value};
use shiplog::backfill::{BackfillState, RateLimitSeen};
use shiplog::clock::Clock;
use shiplog::store::backfills::{advance, Progress};

use crate::helpers::{fixture, spawn_app, status_and_json, TestApp, ADMIN_TOKEN};
use crate::hostile_pages::{hostile_text, HOSTILE_NAMES};
use crate::pages::{login_form, no_redirects, session};

const REPO: &str = "acme-corp/web-app";

/// An installed connection (1) with `rules` as its workflow rules.
pub async fn connection_with_rules(app: &TestApp, rules: Value) {
    assert_eq!(
        app.deliver("installation", &fixture("installation.created")).await.0,
        200
    );
    let response = app
        .client
        .patch(app.url("/api/connections/1"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"workflow_rules": rules, "ignored_environments": ["preview-*"]}))
        .send()
        .await
        .unwrap();
    let (status, body) = status_and_json(response).await;
    assert_eq!(status, 200, "{body}");
}

pub fn three_rules() -> Value {
    json!([
        {"repository": "acme-corp/web-app", "workflow": "deploy.yml", "environment": "production"},
        {"repository": "acme-corp/*", "workflow": ".github/workflows/staging.yml", "branch": "develop", "environment": "staging"},
        {"repository": "acme-corp/api", "workflow": "Release*", "branch": "release/*", "environment": "production-eu"},
    ])
}

/// Starts a backfill through the JSON API and moves it by `progress`, as its steps would.
pub async fn backfill_with(app: &TestApp, since: &str, progress: Progress) -> i64 {
    let response = app
        .client
        .post(app.url("/api/connections/1/backfill"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"since": since}))
        .send()
        .await
        .unwrap();
    let (status, body) = status_and_json(response).await;
    assert_eq!(status, 202, "{body}");
    let id = body["id"].as_i64().unwrap();
    let step = shiplog::backfill::get(&app.store, id).await.unwrap().unwrap().step;
    let tx = app.store.begin().await.unwrap();
    assert!(advance(&tx, id, step, &progress, app.clock.now()).await.unwrap());
    tx.commit().await.unwrap();
    // Its steps are not run: the test shows the rows as they stand.
    app.allow_jobs(&["backfill.step"]);
    id
}

fn rate(app: &TestApp, remaining: i64, reset_in_minutes: i64) -> Option<RateLimitSeen> {
    Some(RateLimitSeen {
        limit: 5000,
        remaining,
        reset: app.clock.now() + Duration::minutes(reset_in_minutes),
    })
}

/// A finished backfill, a failed one with `note`, and one running with progress, oldest first.
pub async fn three_backfills(app: &TestApp, note: &str) {
    let finished = |state| Progress {
        state: Some(state),
        repositories_listed: Some(true),
        started: true,
        finished: true,
        ..Progress::default()
    };
    backfill_with(
        app,
        "365d",
        Progress {
            repositories_total: Some(12),
            repositories_done: 12,
            deploys_imported: 340,
            github_calls: 57,
            rate: rate(app, 4420, 40),
            ..finished(BackfillState::Done)
        },
    )
    .await;
    app.clock.advance(Duration::hours(2));
    backfill_with(
        app,
        "90d",
        Progress {
            repositories_total: Some(12),
            repositories_done: 3,
            deploys_imported: 41,
            github_calls: 9,
            note: Some(Some(note.to_owned())),
            ..finished(BackfillState::Failed)
        },
    )
    .await;
    app.clock.advance(Duration::hours(1));
    backfill_with(
        app,
        "30d",
        Progress {
            state: Some(BackfillState::Running),
            repositories_listed: Some(true),
            repositories_total: Some(40),
            repositories_done: 14,
            deploys_imported: 120,
            github_calls: 31,
            rate: rate(app, 3100, 25),
            started: true,
            ..Progress::default()
        },
    )
    .await;
    app.clock.advance(Duration::minutes(6));
}

/// A signed-in browser's cookies (session and CSRF) and its CSRF token.
async fn signed_in(app: &TestApp, client: &reqwest::Client) -> (String, String) {
    let session = session(app, client).await;
    let csrf_cookie = login_form(app, client).await;
    let token = csrf_cookie.split_once('=').unwrap().1.to_owned();
    (format!("{session}; {csrf_cookie}"), token)
}

async fn page(app: &TestApp, path: &str) -> (u16, String) {
    let response = no_redirects()
        .get(app.url(path))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

async fn post_backfill_form(app: &TestApp, cookies: &str, fields: &[(&str, &str)]) -> reqwest::Response {
    no_redirects()
        .post(app.url("/connections/1/backfill"))
        .header("Cookie", cookies)
        .form(fields)
        .send()
        .await
        .unwrap()
}

async fn listed_backfills(app: &TestApp) -> Vec<Value> {
    let (status, body) = app.admin_get("/api/connections/1/backfills").await;
    assert_eq!(status, 200, "{body}");
    body["backfills"].as_array().unwrap().clone()
}

#[tokio::test]
async fn the_connections_list_links_each_connection_and_the_nav_links_the_list() {
    let app = spawn_app().await;
    connection_with_rules(&app, three_rules()).await;

    let (status, list) = page(&app, "/connections").await;
    let (_, history) = page(&app, "/deployments").await;

    assert_eq!(status, 200);
    assert!(list.contains("<a href=\"/connections/1\" class=\"open\">"), "{list}");
    assert!(
        list.contains("acme-corp") && list.contains("41000001") && list.contains("active"),
        "{list}"
    );
    assert!(history.contains("<a href=\"/connections\""), "the nav links the list");
}

#[tokio::test]
async fn the_connection_page_shows_its_settings_rules_and_backfills_and_follows_a_running_one() {
    let app = spawn_app().await;
    connection_with_rules(&app, three_rules()).await;
    let secret = "connection-own-agent-secret-do-not-show";
    let response = app
        .client
        .patch(app.url("/api/connections/1"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"agent_url": "https://agent.acme.example/shiplog", "agent_secret": secret}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    three_backfills(
        &app,
        "GitHub answered 403 for acme-corp/api: Resource not accessible by integration",
    )
    .await;

    let (status, body) = page(&app, "/connections/1").await;

    assert_eq!(status, 200);
    assert_eq!(body.matches("<tr class=\"rule\">").count(), 3, "{body}");
    for text in [
        "deploy.yml",
        ".github/workflows/staging.yml",
        "release/*",
        "production-eu",
        "default branch",
        "PATCH /api/connections/1",
        "shiplog connections set 1",
        "preview-*",
        "https://agent.acme.example/shiplog",
        "own secret set",
    ] {
        assert!(body.contains(text), "{text} missing:\n{body}");
    }
    assert!(!body.contains(secret), "the agent secret is never shown");
    assert_eq!(body.matches("<tr class=\"backfill ").count(), 3, "{body}");
    assert!(body.contains("14 / 40"), "running: repositories done / total");
    assert!(
        body.contains("3100 / 5000") && body.contains("resets in 19 minutes"),
        "{body}"
    );
    assert!(body.contains("about 11 min 8 s"), "the estimate from the pace so far");
    assert!(
        body.contains("Resource not accessible by integration"),
        "the failed one's note"
    );
    assert!(body.contains("12 / 12") && body.contains(">340<"), "the finished one");
    assert!(
        body.contains("<meta http-equiv=\"refresh\" content=\"5; url=/connections/1#backfills\">"),
        "an unfinished backfill reloads the page"
    );
}

#[tokio::test]
async fn a_page_without_an_unfinished_backfill_does_not_reload_itself() {
    let app = spawn_app().await;
    connection_with_rules(&app, json!([])).await;

    let (_, body) = page(&app, "/connections/1").await;

    assert!(!body.contains("http-equiv=\"refresh\""));
    assert!(body.contains("No rules: no Actions run is a deploy."));
    assert!(body.contains("No backfill yet."));
}

#[tokio::test]
async fn hostile_rules_environments_and_notes_are_shown_as_text() {
    let app = spawn_app().await;
    let long = format!("acme-corp/{}", "w".repeat(240));
    connection_with_rules(
        &app,
        json!([
            {"repository": HOSTILE_NAMES[0], "workflow": HOSTILE_NAMES[1], "branch": HOSTILE_NAMES[2], "environment": HOSTILE_NAMES[0]},
            {"repository": long, "workflow": HOSTILE_NAMES[5], "environment": HOSTILE_NAMES[1]},
        ]),
    )
    .await;
    three_backfills(&app, &hostile_text()).await;

    let (status, body) = page(&app, "/connections/1").await;

    assert_eq!(status, 200);
    for raw in ["<script", "<img", "<svg", "<iframe", "<b>x</b>"] {
        assert!(!body.contains(raw), "{raw} reached the page unescaped");
    }
    assert!(body.contains("&#60;script&#62;alert(1)&#60;/script&#62;"), "{body}");
    assert!(body.contains(&long), "the long pattern is shown whole");
    assert!(body.contains("&#60;b&#62;x&#60;/b&#62;"), "the hostile note, as text");
}

#[tokio::test]
async fn the_backfill_form_without_its_csrf_token_is_refused() {
    let app = spawn_app().await;
    connection_with_rules(&app, three_rules()).await;
    let client = no_redirects();
    let (cookies, _) = signed_in(&app, &client).await;

    let response = post_backfill_form(&app, &cookies, &[("csrf", &"0".repeat(32)), ("since", "30d")]).await;

    assert_eq!(response.status(), 403);
    assert!(listed_backfills(&app).await.is_empty(), "nothing started");
}

#[tokio::test]
async fn the_backfill_form_starts_one_and_returns_to_the_page_that_follows_it() {
    let app = spawn_app().await;
    connection_with_rules(&app, three_rules()).await;
    app.allow_jobs(&["backfill.step"]);
    let client = no_redirects();
    let (cookies, csrf) = signed_in(&app, &client).await;

    let response = post_backfill_form(
        &app,
        &cookies,
        &[("csrf", &csrf), ("since", "30d"), ("repository", " acme-corp/web-app ")],
    )
    .await;

    assert_eq!(response.status(), 303);
    let backfills = listed_backfills(&app).await;
    assert_eq!(backfills.len(), 1, "{backfills:?}");
    let id = backfills[0]["id"].as_i64().unwrap();
    assert_eq!(backfills[0]["state"], "queued");
    assert_eq!(backfills[0]["repositories"], json!([REPO]));
    let since: chrono::DateTime<chrono::Utc> = serde_json::from_value(backfills[0]["since"].clone()).unwrap();
    assert_eq!(since, app.clock.now() - Duration::days(30));
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(location, format!("/connections/1?started={id}#backfills"));
    let followed = client
        .get(app.url(&location))
        .header("Cookie", &cookies)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(followed.contains(&format!("Backfill {id} started")), "{followed}");
    assert!(followed.contains("http-equiv=\"refresh\""));
}

#[tokio::test]
async fn the_form_shows_why_no_backfill_started_on_the_page() {
    let app = spawn_app().await;
    connection_with_rules(&app, three_rules()).await;
    app.allow_jobs(&["backfill.step"]);
    let client = no_redirects();
    let (cookies, csrf) = signed_in(&app, &client).await;
    let started = post_backfill_form(&app, &cookies, &[("csrf", &csrf), ("since", "7d")]).await;
    assert_eq!(started.status(), 303);

    let again = post_backfill_form(&app, &cookies, &[("csrf", &csrf), ("since", "90d")]).await;
    let (again_status, again) = (again.status(), again.text().await.unwrap());
    let bad = post_backfill_form(
        &app,
        &cookies,
        &[("csrf", &csrf), ("since", "9999d"), ("repository", "<script>nope")],
    )
    .await;
    let (bad_status, bad) = (bad.status(), bad.text().await.unwrap());

    assert_eq!(again_status, 409);
    assert!(again.contains("id=\"backfill-problem\""), "{again}");
    assert!(again.contains("has not finished"), "{again}");
    assert!(
        again.contains("<option value=\"90d\" selected>"),
        "the form keeps what was chosen"
    );
    assert_eq!(bad_status, 422);
    assert!(bad.contains("Since must be a span back from now"), "{bad}");
    assert!(bad.contains("Repository "), "{bad}");
    assert!(!bad.contains("<script>nope"), "the typed value is escaped");
    assert!(bad.contains("value=\"&#60;script&#62;nope\""), "{bad}");
    assert_eq!(listed_backfills(&app).await.len(), 1, "only the first started");
}

/// A backfilled Actions deploy (run re-run once) stored as the backfill's apply would store it.
pub async fn imported_actions_deploy(app: &TestApp, log_url: &str) -> i64 {
    use shiplog::deploys::{DeploySource, NewDeploy};
    use shiplog::types::{CommitSha, ConnectionId, Environment, RepoName};
    let new = NewDeploy {
        connection_id: ConnectionId(1),
        repository: RepoName::parse(REPO).unwrap(),
        environment: Environment::parse("production").unwrap(),
        sha: CommitSha::parse("4c1f0f0a9d6e3b2a8f7e6d5c4b3a29181716151a").unwrap(),
        git_ref: Some("main".into()),
        source: DeploySource::Actions,
        github_deployment_id: None,
        external_id: None,
        version: None,
        creator: Some("octocat".into()),
        description: None,
        log_url: Some(log_url.to_owned()),
        environment_url: None,
        transient_environment: false,
        production_environment: true,
        deploy_time: app.clock.now() - Duration::days(3),
        github_run_id: Some(7_300_000_001),
        run_attempt: Some(2),
        backfilled: true,
    };
    let tx = app.store.begin().await.unwrap();
    let deploy = shiplog::store::deployments::insert(&tx, &new, app.clock.now())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    deploy.id.0
}

#[tokio::test]
async fn an_imported_actions_deploy_is_marked_and_links_its_run() {
    let app = spawn_app().await;
    connection_with_rules(&app, three_rules()).await;
    let run = "https://github.com/acme-corp/web-app/actions/runs/7300000001/attempts/2";
    let id = imported_actions_deploy(&app, run).await;

    let (_, list) = page(&app, "/deployments").await;
    let (_, one) = page(&app, &format!("/deployments/{id}")).await;

    assert!(
        list.contains(&format!(
            "<a href=\"{run}\" rel=\"noopener noreferrer\" class=\"run\">run</a>"
        )),
        "{list}"
    );
    assert!(
        list.contains("attempt 2") && list.contains(">imported</span>"),
        "{list}"
    );
    assert!(
        one.contains(&format!(
            "href=\"{run}\" rel=\"noopener noreferrer\" id=\"run-url\">run 7300000001</a>"
        )),
        "{one}"
    );
    assert!(
        one.contains("id=\"run-attempt\">attempt 2<") && one.contains("id=\"imported\""),
        "{one}"
    );
}

#[tokio::test]
async fn a_run_url_that_is_not_http_is_never_a_link() {
    let app = spawn_app().await;
    connection_with_rules(&app, three_rules()).await;
    let id = imported_actions_deploy(&app, "javascript:alert(document.cookie)").await;

    let (_, list) = page(&app, "/deployments").await;
    let (_, one) = page(&app, &format!("/deployments/{id}")).await;

    assert!(!list.contains("href=\"javascript:"), "{list}");
    assert!(!one.contains("href=\"javascript:"), "{one}");
    assert!(one.contains("(run 7300000001)"), "{one}");
}

#[tokio::test]
async fn an_unknown_connection_is_not_found() {
    let app = spawn_app().await;

    let (status, _) = page(&app, "/connections/99").await;

    assert_eq!(status, 404);
}
