//! Deploy credentials and `POST /deployments`, the explicit API any CI calls.

use serde_json::{json, Value};

use crate::helpers::{fixture, set, spawn_app, status_and_json, TestApp, ADMIN_TOKEN};

pub const SHA: &str = "4c1f0f0a9d6e3b2a8f7e6d5c4b3a29181716151a";
const OTHER_SHA: &str = "9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a291817";

pub struct Cred {
    pub id: i64,
    pub username: String,
    pub password: String,
    pub signing_key: String,
}

pub async fn installed_app() -> TestApp {
    let app = spawn_app().await;
    assert_eq!(
        app.deliver("installation", &fixture("installation.created")).await.0,
        200
    );
    app
}

pub async fn create_credential(app: &TestApp, connection: i64) -> Cred {
    let response = app
        .client
        .post(app.url(&format!("/api/connections/{connection}/credentials")))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"name": "github-actions"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["cache-control"], "no-store");
    let (status, body) = status_and_json(response).await;
    assert_eq!(status, 201, "{body}");
    Cred {
        id: body["id"].as_i64().unwrap(),
        username: body["username"].as_str().unwrap().to_owned(),
        password: body["password"].as_str().unwrap().to_owned(),
        signing_key: body["signing_key"].as_str().unwrap().to_owned(),
    }
}

async fn post(app: &TestApp, cred: &Cred, body: &Value) -> (u16, Option<String>, Value) {
    post_with(app, cred, body, None).await
}

async fn post_with(
    app: &TestApp,
    cred: &Cred,
    body: &Value,
    idempotency_key: Option<&str>,
) -> (u16, Option<String>, Value) {
    let mut request = app
        .client
        .post(app.url("/deployments"))
        .basic_auth(&cred.username, Some(&cred.password))
        .json(body);
    if let Some(key) = idempotency_key {
        request = request.header("Idempotency-Key", key);
    }
    let response = request.send().await.unwrap();
    let location = response
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned());
    let (status, json) = status_and_json(response).await;
    (status, location, json)
}

pub fn minimal(sha: &str) -> Value {
    json!({"repository": "acme-corp/web-app", "environment": "production", "sha": sha, "deploy_time": "2026-11-02T08:00:00Z"})
}

#[tokio::test]
async fn a_credential_registers_a_live_deployment_with_a_location() {
    let app = installed_app().await;
    let cred = create_credential(&app, 1).await;

    let (status, location, body) = post(&app, &cred, &minimal(SHA)).await;

    assert_eq!(status, 201, "{body}");
    assert_eq!(
        location.as_deref(),
        Some(format!("/deployments/{}", body["id"]).as_str())
    );
    assert_eq!(body["status"], "live");
    assert_eq!(body["source"], "api");
    assert_eq!(body["sha"], SHA);
    assert_eq!(body["deploy_time"], "2026-11-02T08:00:00Z");
    assert_eq!(body["completed_at"], "2026-11-02T08:00:00Z");
    assert_eq!(body["connection_id"], 1);
    let (_, jobs) = app.admin_get("/api/jobs?state=queued").await;
    assert_eq!(
        jobs["jobs"][0]["kind"], "deploy.went_live",
        "the same follow-up as a GitHub deploy"
    );
    app.run_jobs().await;
}

#[tokio::test]
async fn optional_fields_are_kept_and_deploy_time_defaults_to_the_request_time() {
    let app = installed_app().await;
    let cred = create_credential(&app, 1).await;
    let body = json!({
        "repository": "Acme-Corp/Web-App", "environment": "staging", "sha": &SHA[..12],
        "ref": "release/2.4", "version": "2.4.0", "description": "Weekly release",
        "build_logs_url": "https://ci.example.com/runs/88", "triggered_by": "alice", "status": "deploying"
    });

    let (status, _, d) = post(&app, &cred, &body).await;

    assert_eq!(status, 201, "{d}");
    assert_eq!(d["deploy_time"], "2026-11-02T09:00:00Z", "the injected clock's now");
    assert_eq!(
        (d["ref"].as_str(), d["version"].as_str()),
        (Some("release/2.4"), Some("2.4.0"))
    );
    assert_eq!(d["log_url"], "https://ci.example.com/runs/88");
    assert_eq!(d["creator"], "alice");
    assert_eq!(d["status"], "deploying");
    assert_eq!(d["sha"], &SHA[..12]);
}

#[tokio::test]
async fn external_id_moves_one_deploy_along_its_lifecycle() {
    let app = installed_app().await;
    let cred = create_credential(&app, 1).await;
    let step = |status: &str| {
        let mut body = minimal(SHA);
        body.as_object_mut().unwrap().remove("deploy_time");
        body["external_id"] = json!("ci-run-4711");
        body["status"] = json!(status);
        body
    };

    let (created, _, first) = post(&app, &cred, &step("initiated")).await;
    app.clock.advance(chrono::Duration::seconds(30));
    let (building, _, _) = post(&app, &cred, &step("building")).await;
    app.clock.advance(chrono::Duration::seconds(30));
    let (deploying, _, _) = post(&app, &cred, &step("deploying")).await;
    app.clock.advance(chrono::Duration::seconds(60));
    let (live, _, last) = post(&app, &cred, &step("live")).await;
    let (backwards, _, refused) = post(&app, &cred, &step("building")).await;
    let mut other_sha = step("live");
    other_sha["sha"] = json!(OTHER_SHA);
    let (mismatch, _, _) = post(&app, &cred, &other_sha).await;

    assert_eq!((created, building, deploying, live), (201, 200, 200, 200));
    assert_eq!(first["id"], last["id"]);
    assert_eq!(last["status"], "live");
    assert_eq!(last["completed_at"], "2026-11-02T09:02:00Z");
    assert_eq!(backwards, 409, "{refused}");
    assert_eq!(refused["status"], 409);
    assert_eq!(mismatch, 409);
    assert_eq!(app.count_rows("deployment").await, 1);
    let (_, detail) = app.admin_get(&format!("/deployments/{}", first["id"])).await;
    let states: Vec<&str> = detail["statuses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, vec!["initiated", "building", "deploying", "live"]);
    app.run_jobs().await;
}

#[tokio::test]
async fn an_idempotency_key_replays_the_first_answer_and_refuses_a_different_body() {
    let app = installed_app().await;
    let cred = create_credential(&app, 1).await;

    let (first_status, first_location, first) = post_with(&app, &cred, &minimal(SHA), Some("deploy-88")).await;
    app.clock.advance(chrono::Duration::minutes(10));
    let (again_status, again_location, again) = post_with(&app, &cred, &minimal(SHA), Some("deploy-88")).await;
    let (other_status, _, other) = post_with(&app, &cred, &minimal(OTHER_SHA), Some("deploy-88")).await;
    app.clock.advance(chrono::Duration::hours(25));
    let (expired_status, _, _) = post_with(&app, &cred, &minimal(OTHER_SHA), Some("deploy-88")).await;

    assert_eq!((first_status, again_status), (201, 201));
    assert_eq!(first, again);
    assert_eq!(first_location, again_location);
    assert_eq!(other_status, 409, "{other}");
    assert_eq!(expired_status, 201, "a key is honoured for 24 hours");
    assert_eq!(app.count_rows("deployment").await, 2);
    app.run_jobs().await;
}

#[tokio::test]
async fn a_repository_of_another_connection_is_forbidden() {
    let app = installed_app().await;
    let cred = create_credential(&app, 1).await;
    let mut body = minimal(SHA);
    body["repository"] = json!("globex/web-app");

    let (status, _, problem) = post(&app, &cred, &body).await;

    assert_eq!(status, 403, "{problem}");
    assert_eq!(app.count_rows("deployment").await, 0);
}

#[tokio::test]
async fn a_credential_reads_only_its_own_connections_history() {
    let app = installed_app().await;
    let mut other = fixture("installation.created");
    set(&mut other, "/installation/id", json!(42000002));
    set(&mut other, "/installation/account/login", json!("globex"));
    set(
        &mut other,
        "/repositories",
        json!([{"id": 800000001, "full_name": "globex/web-app"}]),
    );
    app.deliver("installation", &other).await;
    let acme = create_credential(&app, 1).await;
    let globex = create_credential(&app, 2).await;
    let mut globex_body = minimal(OTHER_SHA);
    globex_body["repository"] = json!("globex/web-app");
    post(&app, &acme, &minimal(SHA)).await;
    let (_, _, theirs) = post(&app, &globex, &globex_body).await;

    let read = |path: String| {
        app.client
            .get(app.url(&path))
            .basic_auth(&acme.username, Some(&acme.password))
            .header("Accept", "application/json")
            .send()
    };
    let (list_status, list) = status_and_json(read("/deployments".to_owned()).await.unwrap()).await;
    let (foreign_status, _) = status_and_json(read(format!("/deployments/{}", theirs["id"])).await.unwrap()).await;
    let (asked_status, _) = status_and_json(read("/deployments?connection=2".to_owned()).await.unwrap()).await;

    assert_eq!(list_status, 200);
    let repos: Vec<&str> = list["deployments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["repository"].as_str().unwrap())
        .collect();
    assert_eq!(repos, vec!["acme-corp/web-app"]);
    assert_eq!(foreign_status, 404);
    assert_eq!(asked_status, 403);
    app.run_jobs().await;
}

#[tokio::test]
async fn every_invalid_field_is_named() {
    let app = installed_app().await;
    let cred = create_credential(&app, 1).await;
    let body = json!({
        "repository": "not a repo", "sha": "xyz", "deploy_time": "yesterday",
        "status": "shipped", "colour": "blue", "environment": 7
    });

    let (status, _, problem) = post(&app, &cred, &body).await;
    let (missing_status, _, missing) = post(&app, &cred, &json!({})).await;

    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["type"], "urn:shiplog:problem:validation-failed");
    let mut fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    fields.sort();
    assert_eq!(
        fields,
        vec!["colour", "deploy_time", "environment", "repository", "sha", "status"]
    );
    assert_eq!(missing_status, 422);
    let mut required: Vec<&str> = missing["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    required.sort();
    assert_eq!(required, vec!["environment", "repository", "sha"]);
    assert_eq!(app.count_rows("deployment").await, 0);
}

#[tokio::test]
async fn malformed_json_oversized_bodies_and_bad_credentials_are_refused() {
    let app = installed_app().await;
    let cred = create_credential(&app, 1).await;
    let url = app.url("/deployments");

    let not_json = app
        .client
        .post(&url)
        .basic_auth(&cred.username, Some(&cred.password))
        .body("{nope")
        .send()
        .await
        .unwrap();
    let huge = app
        .client
        .post(&url)
        .basic_auth(&cred.username, Some(&cred.password))
        .json(&json!({"repository": "acme-corp/web-app", "environment": "p", "sha": SHA, "description": "x".repeat(70_000)}))
        .send()
        .await
        .unwrap();
    let wrong = app
        .client
        .post(&url)
        .basic_auth(&cred.username, Some("slp_wrong"))
        .json(&minimal(SHA))
        .send()
        .await
        .unwrap();
    let anonymous = app.client.post(&url).json(&minimal(SHA)).send().await.unwrap();

    let (not_json_status, not_json_body) = status_and_json(not_json).await;
    assert_eq!(not_json_status, 400);
    assert_eq!(not_json_body["errors"][0]["field"], "body");
    assert_eq!(huge.status(), 413);
    assert_eq!(wrong.status(), 401);
    assert!(wrong.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Basic"));
    assert_eq!(anonymous.status(), 401);
    assert_eq!(app.count_rows("deployment").await, 0);
}

#[tokio::test]
async fn a_revoked_credential_fails_at_once_and_secrets_are_never_shown_again() {
    let app = installed_app().await;
    let cred = create_credential(&app, 1).await;
    assert_eq!(post(&app, &cred, &minimal(SHA)).await.0, 201);

    let (_, listed) = app.admin_get("/api/connections/1/credentials").await;
    let revoke = app
        .client
        .delete(app.url(&format!("/api/connections/1/credentials/{}", cred.id)))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    let (after_status, _, _) = post(&app, &cred, &minimal(OTHER_SHA)).await;
    let again = app
        .client
        .delete(app.url(&format!("/api/connections/1/credentials/{}", cred.id)))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();

    let entry = &listed["credentials"][0];
    assert_eq!(entry["username"], cred.username.as_str());
    assert!(entry["last_used_at"].is_string(), "{entry}");
    assert!(
        entry.get("password").is_none() && entry.get("signing_key").is_none(),
        "{entry}"
    );
    assert!(!listed.to_string().contains(&cred.password));
    assert_eq!(revoke.status(), 204);
    assert_eq!(after_status, 401);
    assert_eq!(again.status(), 404);
    let stored = stored_secret_column(&app).await;
    assert!(!stored.contains(&cred.password), "the password itself is stored");
    assert_eq!(stored, cred.signing_key, "only the digest is stored");
    app.run_jobs().await;
}

/// `last_used_at` is written when it is a minute old or more, not on every request.
#[tokio::test]
async fn last_used_at_is_written_at_most_once_a_minute() {
    let app = installed_app().await;
    let cred = create_credential(&app, 1).await;
    let last_used = || async {
        let (_, listed) = app.admin_get("/api/connections/1/credentials").await;
        listed["credentials"][0]["last_used_at"].as_str().map(str::to_owned)
    };
    assert_eq!(last_used().await, None, "never used");

    assert_eq!(post(&app, &cred, &minimal(SHA)).await.0, 201);
    let first = last_used().await.expect("the first use is recorded");
    app.clock.advance(chrono::Duration::seconds(59));
    assert_eq!(post(&app, &cred, &minimal(OTHER_SHA)).await.0, 201);
    let within_a_minute = last_used().await;
    app.clock.advance(chrono::Duration::seconds(2));
    assert_eq!(post(&app, &cred, &minimal(&"1".repeat(40))).await.0, 201);
    let after_a_minute = last_used().await.unwrap();

    assert_eq!(
        within_a_minute.as_deref(),
        Some(first.as_str()),
        "not written again within a minute"
    );
    let parse = |at: &str| chrono::DateTime::parse_from_rfc3339(at).unwrap();
    assert_eq!(parse(&after_a_minute) - parse(&first), chrono::Duration::seconds(61));
    app.run_jobs().await;
}

async fn stored_secret_column(app: &TestApp) -> String {
    let row = app.first_row("SELECT secret_hash FROM deploy_credential").await;
    row.try_get("", "secret_hash").unwrap()
}

pub async fn post_signed(app: &TestApp, cred: &Cred, body: &[u8], timestamp: i64, signing_key: &str) -> u16 {
    let ts = timestamp.to_string();
    let signature = shiplog::credentials::sign(signing_key, &ts, body);
    app.client
        .post(app.url("/deployments"))
        .header("Content-Type", "application/json")
        .header("X-Shiplog-Credential", &cred.username)
        .header("X-Shiplog-Timestamp", &ts)
        .header("X-Shiplog-Signature-256", signature)
        .body(body.to_vec())
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn the_signed_form_is_accepted_within_five_minutes_only() {
    let app = installed_app().await;
    let cred = create_credential(&app, 1).await;
    let now = shiplog::clock::Clock::now(app.clock.as_ref()).timestamp();
    let body = serde_json::to_vec(&minimal(SHA)).unwrap();

    let fresh = post_signed(&app, &cred, &body, now - 60, &cred.signing_key).await;
    let stale = post_signed(&app, &cred, &body, now - 301, &cred.signing_key).await;
    let future = post_signed(&app, &cred, &body, now + 301, &cred.signing_key).await;
    let wrong_key = post_signed(&app, &cred, &body, now, "not-the-key").await;
    let ts = now.to_string();
    let tampered = app
        .client
        .post(app.url("/deployments"))
        .header("X-Shiplog-Credential", &cred.username)
        .header("X-Shiplog-Timestamp", &ts)
        .header(
            "X-Shiplog-Signature-256",
            shiplog::credentials::sign(&cred.signing_key, &ts, &body),
        )
        .body(serde_json::to_vec(&minimal(OTHER_SHA)).unwrap())
        .send()
        .await
        .unwrap();

    assert_eq!((fresh, stale, future, wrong_key), (201, 401, 401, 401));
    assert_eq!(tampered.status(), 401);
    assert_eq!(app.count_rows("deployment").await, 1);
    app.run_jobs().await;
}

#[tokio::test]
async fn api_deploys_supersede_each_other_like_github_deploys() {
    let app = installed_app().await;
    let cred = create_credential(&app, 1).await;
    let (_, _, first) = post(&app, &cred, &minimal(SHA)).await;
    let mut later = minimal(OTHER_SHA);
    later["deploy_time"] = json!("2026-11-02T08:30:00Z");

    let (_, _, second) = post(&app, &cred, &later).await;

    let (_, first_now) = app.admin_get(&format!("/deployments/{}", first["id"])).await;
    assert_eq!(first_now["status"], "superseded");
    assert_eq!(first_now["superseded_by_id"], second["id"]);
    assert_eq!(second["status"], "live");
    let (_, jobs) = app.admin_get("/api/jobs?state=queued").await;
    assert_eq!(jobs["jobs"].as_array().unwrap().len(), 2);
    app.run_jobs().await;
}

#[tokio::test]
async fn credentials_are_managed_from_the_command_line() {
    let app = installed_app().await;
    let url = app.database.url.clone();
    let run = |args: Vec<String>| {
        let url = url.clone();
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_shiplog"))
                .args(args)
                .env("DATABASE_URL", url)
                .output()
                .unwrap()
        })
    };

    let created = run(vec![
        "credentials".into(),
        "create".into(),
        "1".into(),
        "--name".into(),
        "jenkins".into(),
    ])
    .await
    .unwrap();
    let issued: Value = serde_json::from_slice(&created.stdout).unwrap();
    let listed = run(vec!["credentials".into(), "list".into(), "1".into()])
        .await
        .unwrap();
    let id = issued["id"].as_i64().unwrap().to_string();
    let revoked = run(vec!["credentials".into(), "revoke".into(), "1".into(), id])
        .await
        .unwrap();
    let cred = Cred {
        id: issued["id"].as_i64().unwrap(),
        username: issued["username"].as_str().unwrap().to_owned(),
        password: issued["password"].as_str().unwrap().to_owned(),
        signing_key: String::new(),
    };
    let (after, _, _) = post(&app, &cred, &minimal(SHA)).await;

    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
    assert_eq!(issued["name"], "jenkins");
    let list: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(list[0]["username"], issued["username"]);
    assert!(!String::from_utf8_lossy(&listed.stdout).contains(issued["password"].as_str().unwrap()));
    assert!(revoked.status.success());
    assert_eq!(after, 401);
}
