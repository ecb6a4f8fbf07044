//! One set of input limits on every path in (webhook, API, query), the same on SQLite and
//! PostgreSQL: over a limit is a 400 (webhook, query) or 422 (API) naming the field, never a 500;
//! at the limit the value is kept. Deploy times far in the future cannot freeze an environment.
//! URLs that are not `http(s)` are kept as text, never as links.

use serde_json::{json, Value};

use crate::helpers::{fixture, set, spawn_app, status_and_json, TestApp, ADMIN_TOKEN};

const SHA: &str = "4c1f0f0a9d6e3b2a8f7e6d5c4b3a29181716151a";
const OTHER_SHA: &str = "9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a291817";

async fn installed_app() -> TestApp {
    let app = spawn_app().await;
    assert_eq!(
        app.deliver("installation", &fixture("installation.created")).await.0,
        200
    );
    app
}

/// A `deployment.created` payload with `pointer` set to `value`.
fn deployment_with(pointer: &str, value: Value) -> Value {
    let mut payload = fixture("deployment.created");
    set(&mut payload, pointer, value);
    payload
}

/// A `deployment_status.created` payload with `pointer` set to `value`.
fn status_with(pointer: &str, value: Value) -> Value {
    let mut payload = fixture("deployment_status.created");
    payload["deployment"] = fixture("deployment.created")["deployment"].clone();
    set(&mut payload, pointer, value);
    payload
}

/// The fields a problem answer names.
fn fields(body: &Value) -> Vec<String> {
    let mut names: Vec<String> = body["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .filter_map(|e| e["field"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

async fn stored_deploys(app: &TestApp) -> Vec<Value> {
    let (status, body) = app.admin_get("/deployments").await;
    assert_eq!(status, 200, "{body}");
    body["deployments"].as_array().unwrap().clone()
}

async fn credential(app: &TestApp) -> (String, String) {
    let (status, body) = status_and_json(
        app.client
            .post(app.url("/api/connections/1/credentials"))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    (
        body["username"].as_str().unwrap().to_owned(),
        body["password"].as_str().unwrap().to_owned(),
    )
}

async fn post_deployment(app: &TestApp, cred: &(String, String), body: &Value) -> (u16, Value) {
    status_and_json(
        app.client
            .post(app.url("/deployments"))
            .basic_auth(&cred.0, Some(&cred.1))
            .json(body)
            .send()
            .await
            .unwrap(),
    )
    .await
}

fn api_body(extra: Value) -> Value {
    let mut body = json!({"repository": "acme-corp/web-app", "environment": "production", "sha": SHA});
    for (key, value) in extra.as_object().unwrap() {
        body[key] = value.clone();
    }
    body
}

#[tokio::test]
async fn webhook_text_at_the_limits_is_kept_and_one_character_more_is_a_400_naming_the_field() {
    let app = installed_app().await;
    let longest_environment = "é".repeat(255);
    let longest_description = "d".repeat(4096);
    let mut at_limit = deployment_with("/deployment/environment", json!(longest_environment));
    set(&mut at_limit, "/deployment/ref", json!("r".repeat(255)));
    set(&mut at_limit, "/deployment/description", json!(longest_description));

    let kept = app.deliver("deployment", &at_limit).await;
    let refused = [
        (
            "deployment",
            deployment_with("/deployment/environment", json!("e".repeat(256))),
            "deployment.environment",
        ),
        (
            "deployment",
            deployment_with("/deployment/ref", json!("r".repeat(256))),
            "deployment.ref",
        ),
        (
            "deployment",
            deployment_with("/deployment/description", json!("d".repeat(4097))),
            "deployment.description",
        ),
        (
            "deployment",
            deployment_with("/deployment/environment", json!("x".repeat(1 << 20))),
            "deployment.environment",
        ),
        (
            "deployment_status",
            status_with(
                "/deployment_status/log_url",
                json!(format!("https://ci.example/{}", "a".repeat(2048))),
            ),
            "deployment_status.log_url",
        ),
        (
            "deployment_status",
            status_with("/deployment_status/description", json!("s".repeat(4097))),
            "deployment_status.description",
        ),
    ];

    assert_eq!(kept.0, 200, "{}", kept.1);
    let list = stored_deploys(&app).await;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["environment"], longest_environment.as_str());
    assert_eq!(list[0]["ref"], "r".repeat(255).as_str());
    assert_eq!(list[0]["description"], longest_description.as_str());
    for (event, payload, field) in refused {
        let (status, body) = app.deliver(event, &payload).await;
        assert_eq!((status, fields(&body)), (400, vec![field.to_owned()]), "{body}");
    }
    assert_eq!(stored_deploys(&app).await.len(), 1, "nothing refused was stored");
}

#[tokio::test]
async fn a_nul_in_a_webhook_environment_description_ref_or_login_is_a_400_naming_the_field() {
    let app = installed_app().await;
    let cases = [
        (
            "deployment",
            deployment_with("/deployment/environment", json!("prod\u{0}uction")),
            "deployment.environment",
        ),
        (
            "deployment",
            deployment_with("/deployment/description", json!("a\u{0}b")),
            "deployment.description",
        ),
        (
            "deployment",
            deployment_with("/deployment/ref", json!("main\u{0}")),
            "deployment.ref",
        ),
        (
            "deployment",
            deployment_with("/deployment/creator/login", json!("al\u{0}ice")),
            "deployment.creator.login",
        ),
        (
            "deployment",
            deployment_with("/deployment/environment", json!("prod\nuction")),
            "deployment.environment",
        ),
        (
            "deployment_status",
            status_with("/deployment_status/description", json!("\u{0}")),
            "deployment_status.description",
        ),
        (
            "deployment_status",
            status_with("/deployment_status/state", json!("success\u{0}")),
            "deployment_status.state",
        ),
        (
            "deployment_status",
            status_with("/deployment/environment", json!("\u{0}")),
            "deployment.environment",
        ),
    ];

    for (event, payload, field) in cases {
        let (status, body) = app.deliver(event, &payload).await;
        assert_eq!((status, fields(&body)), (400, vec![field.to_owned()]), "{body}");
    }

    assert!(stored_deploys(&app).await.is_empty());
    assert_eq!(app.count_rows("deployment_status").await, 0);
}

#[tokio::test]
async fn the_api_keeps_text_at_the_limits_and_refuses_more_or_control_characters_with_422_naming_each_field() {
    let app = installed_app().await;
    let cred = credential(&app).await;
    let at_limit = api_body(json!({
        "environment": "é".repeat(255),
        "ref": "r".repeat(255),
        "version": "v".repeat(255),
        "triggered_by": "t".repeat(255),
        "external_id": "x".repeat(255),
        "description": format!("line one\n\tline two {}", "d".repeat(4096 - 19)),
        "build_logs_url": format!("https://ci.example/{}", "a".repeat(2048 - 19)),
    }));
    let over = api_body(json!({
        "environment": "e".repeat(256),
        "ref": "main\u{0}",
        "version": "1.\n0",
        "triggered_by": "bob\u{202E}",
        "external_id": "x".repeat(256),
        "description": "d\u{0}",
        "build_logs_url": format!("https://ci.example/{}", "a".repeat(2048 - 18)),
    }));

    let (kept_status, kept) = post_deployment(&app, &cred, &at_limit).await;
    let (over_status, refused) = post_deployment(&app, &cred, &over).await;
    let (long_status, long) = post_deployment(&app, &cred, &api_body(json!({"description": "d".repeat(4097)}))).await;

    assert_eq!(kept_status, 201, "{kept}");
    assert_eq!(kept["environment"], "é".repeat(255).as_str());
    assert_eq!(kept["description"].as_str().unwrap().chars().count(), 4096);
    assert_eq!(over_status, 422, "{refused}");
    assert_eq!(
        fields(&refused),
        vec![
            "build_logs_url",
            "description",
            "environment",
            "external_id",
            "ref",
            "triggered_by",
            "version"
        ]
    );
    assert_eq!((long_status, fields(&long)), (422, vec!["description".to_owned()]));
    assert_eq!(stored_deploys(&app).await.len(), 1);
    app.run_jobs().await;
}

#[tokio::test]
async fn the_api_accepts_only_absolute_http_urls_for_build_logs() {
    let app = installed_app().await;
    let cred = credential(&app).await;

    for bad in [
        "javascript:alert(document.cookie)",
        "JAVASCRIPT:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "//evil.example/x",
        "/relative",
        "http:evil.example",
        "https://",
        "https://ci.example/a b",
    ] {
        let (status, body) = post_deployment(&app, &cred, &api_body(json!({"build_logs_url": bad}))).await;
        assert_eq!(
            (status, fields(&body)),
            (422, vec!["build_logs_url".to_owned()]),
            "{bad:?}: {body}"
        );
    }
    let (status, body) = post_deployment(
        &app,
        &cred,
        &api_body(json!({"build_logs_url": "https://ci.example/runs/1?a=1&b=2"})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["log_url"], "https://ci.example/runs/1?a=1&b=2");
    app.run_jobs().await;
}

#[tokio::test]
async fn a_nul_or_an_over_long_environment_filter_is_a_400_naming_the_field_not_a_500() {
    let app = installed_app().await;
    app.live_deploy("acme-corp/web-app", SHA, "production").await;

    let nul = app.admin_get("/deployments?environment=%00").await;
    let long = app
        .admin_get(&format!("/deployments?environment={}", "e".repeat(256)))
        .await;
    let repository = app.admin_get("/deployments?repository=acme%00/web").await;
    let page = app
        .client
        .get(app.url("/deployments?environment=prod%00"))
        .bearer_auth(ADMIN_TOKEN)
        .header("Accept", "text/html")
        .send()
        .await
        .unwrap();
    let fine = app.admin_get("/deployments?environment=production").await;

    assert_eq!(
        (nul.0, fields(&nul.1)),
        (400, vec!["environment".to_owned()]),
        "{}",
        nul.1
    );
    assert_eq!(
        (long.0, fields(&long.1)),
        (400, vec!["environment".to_owned()]),
        "{}",
        long.1
    );
    assert_eq!(
        (repository.0, fields(&repository.1)),
        (400, vec!["repository".to_owned()]),
        "{}",
        repository.1
    );
    assert_eq!(page.status(), 400);
    assert!(page.text().await.unwrap().contains("environment"));
    assert_eq!(fine.0, 200);
    assert_eq!(fine.1["deployments"].as_array().unwrap().len(), 1);
    app.run_jobs().await;
}

#[tokio::test]
async fn triggers_and_monitoring_plans_apply_the_same_limits() {
    let app = installed_app().await;
    let post = |path: &'static str, body: Value| {
        let request = app.client.post(app.url(path)).bearer_auth(ADMIN_TOKEN).json(&body);
        async move { status_and_json(request.send().await.unwrap()).await }
    };

    let trigger = post(
        "/api/triggers",
        json!({"repository": "acme-corp/web-app", "environment": "prod\u{0}", "sha": SHA,
               "target_url": "javascript:alert(1)", "message": "m\u{0}"}),
    )
    .await;
    let plan = post(
        "/api/monitoring-plans",
        json!({"repository": "acme-corp/web-app", "pull_number": 7, "environments": ["e".repeat(256)], "note": "n\u{0}"}),
    )
    .await;

    assert_eq!(trigger.0, 422, "{}", trigger.1);
    assert_eq!(fields(&trigger.1), vec!["environment", "message", "target_url"]);
    assert_eq!(plan.0, 422, "{}", plan.1);
    assert_eq!(fields(&plan.1), vec!["environments", "note"]);
}

#[tokio::test]
async fn a_deploy_time_far_in_the_future_or_before_2005_is_refused_naming_deploy_time() {
    let app = installed_app().await;
    let cred = credential(&app).await;
    // The test clock says 2026-11-02T09:00:00Z.

    let far = post_deployment(&app, &cred, &api_body(json!({"deploy_time": "9999-12-31T23:59:59Z"}))).await;
    let just_over = post_deployment(&app, &cred, &api_body(json!({"deploy_time": "2026-11-02T09:05:01Z"}))).await;
    let ancient = post_deployment(&app, &cred, &api_body(json!({"deploy_time": "2004-12-31T23:59:59Z"}))).await;
    let skewed = post_deployment(&app, &cred, &api_body(json!({"deploy_time": "2026-11-02T09:05:00Z"}))).await;
    let oldest = post_deployment(
        &app,
        &cred,
        &api_body(json!({"deploy_time": "2005-01-01T00:00:00Z", "sha": OTHER_SHA, "environment": "archive"})),
    )
    .await;

    for (status, body) in [&far, &just_over, &ancient] {
        assert_eq!((*status, fields(body)), (422, vec!["deploy_time".to_owned()]), "{body}");
    }
    assert_eq!(skewed.0, 201, "five minutes of clock skew are allowed: {}", skewed.1);
    assert_eq!(oldest.0, 201, "{}", oldest.1);
    app.run_jobs().await;
}

#[tokio::test]
async fn a_github_deploy_dated_9999_does_not_freeze_its_environment() {
    let app = installed_app().await;
    let mut future = deployment_with("/deployment/created_at", json!("9999-12-31T23:59:59Z"));
    set(&mut future, "/deployment/id", json!(1900000077_i64));
    let mut future_success = fixture("deployment_status.created");
    future_success["deployment"] = future["deployment"].clone();
    set(&mut future_success, "/deployment_status/id", json!(2900000077_i64));
    set(
        &mut future_success,
        "/deployment_status/created_at",
        json!("9999-12-31T23:59:59Z"),
    );
    assert_eq!(app.deliver("deployment_status", &future_success).await.0, 200);
    app.clock.advance(chrono::Duration::minutes(30));
    let mut real_success = fixture("deployment_status.created");
    set(&mut real_success, "/deployment/sha", json!(OTHER_SHA));
    set(
        &mut real_success,
        "/deployment/created_at",
        json!("2026-11-02T09:20:00Z"),
    );
    set(
        &mut real_success,
        "/deployment_status/created_at",
        json!("2026-11-02T09:25:00Z"),
    );

    let (status, body) = app.deliver("deployment_status", &real_success).await;

    assert_eq!(status, 200, "{body}");
    let list = stored_deploys(&app).await;
    let by_sha = |sha: &str| list.iter().find(|d| d["sha"] == sha).unwrap().clone();
    assert_eq!(by_sha(OTHER_SHA)["status"], "live", "the real deploy is live: {list:?}");
    let frozen = by_sha(SHA);
    assert_eq!(frozen["status"], "superseded");
    assert_eq!(
        frozen["deploy_time"], "2026-11-02T09:00:00Z",
        "a date more than a day ahead is taken as the time it arrived"
    );
    app.run_jobs().await;
}

#[tokio::test]
async fn a_javascript_log_url_from_a_webhook_is_stored_as_text_and_never_a_link() {
    let app = installed_app().await;
    let mut payload = status_with("/deployment_status/log_url", json!("javascript:alert(document.cookie)"));
    set(
        &mut payload,
        "/deployment_status/environment_url",
        json!("data:text/html,<script>alert(1)</script>"),
    );
    set(&mut payload, "/deployment_status/description", json!("Deployed"));

    let (status, body) = app.deliver("deployment_status", &payload).await;

    assert_eq!(
        status, 200,
        "GitHub takes any string there; the delivery is not refused: {body}"
    );
    let list = stored_deploys(&app).await;
    let (_, deploy) = app.admin_get(&format!("/deployments/{}", list[0]["id"])).await;
    assert_eq!(deploy["log_url"], Value::Null);
    assert_eq!(deploy["environment_url"], Value::Null);
    let history = &deploy["statuses"][0];
    assert_eq!(history["log_url"], Value::Null);
    let description = history["description"].as_str().unwrap();
    assert!(description.starts_with("Deployed\n"), "{description}");
    assert!(description.contains("log_url (not an http(s) URL, kept as text): javascript:alert(document.cookie)"));
    assert!(description.contains("environment_url (not an http(s) URL, kept as text): data:text/html,"));
    let page = app
        .client
        .get(app.url(&format!("/deployments/{}", list[0]["id"])))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("javascript:alert(document.cookie)"), "shown as text");
    assert!(!page.to_ascii_lowercase().contains("href=\"javascript:"), "{page}");
    assert!(!page.to_ascii_lowercase().contains("href=\"data:"), "{page}");
    assert!(!page.contains("<script>alert(1)"), "{page}");
    app.run_jobs().await;
}
