//! GitHub `deployment` / `deployment_status` events become deploy rows with the lifecycle of
//! DESIGN.md §2, per connection, with per-connection skip settings.

use serde_json::{json, Value};

use crate::helpers::{fixture, set, spawn_app, TestApp, WebhookRequest, ADMIN_TOKEN};

const SHA_A: &str = "4c1f0f0a9d6e3b2a8f7e6d5c4b3a29181716151a";
const SHA_B: &str = "9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a291817";
const SHA_C: &str = "1111111111222222222233333333334444444444";

/// A `deployment.created` payload for the fixture's installation and repository.
fn deployment(id: i64, sha: &str, environment: &str, created_at: &str) -> Value {
    let mut payload = fixture("deployment.created");
    set(&mut payload, "/deployment/id", json!(id));
    set(&mut payload, "/deployment/sha", json!(sha));
    set(&mut payload, "/deployment/environment", json!(environment));
    set(&mut payload, "/deployment/original_environment", json!(environment));
    set(&mut payload, "/deployment/created_at", json!(created_at));
    set(&mut payload, "/deployment/updated_at", json!(created_at));
    payload
}

/// A `deployment_status.created` payload embedding `deployment(...)`.
fn status(status_id: i64, state: &str, created_at: &str, deployment_payload: &Value) -> Value {
    let mut payload = fixture("deployment_status.created");
    set(&mut payload, "/deployment", deployment_payload["deployment"].clone());
    set(&mut payload, "/deployment_status/id", json!(status_id));
    set(&mut payload, "/deployment_status/state", json!(state));
    set(&mut payload, "/deployment_status/created_at", json!(created_at));
    set(&mut payload, "/deployment_status/updated_at", json!(created_at));
    set(
        &mut payload,
        "/deployment_status/environment",
        deployment_payload["deployment"]["environment"].clone(),
    );
    payload
}

async fn installed_app() -> TestApp {
    let app = spawn_app().await;
    let (status, _) = app.deliver("installation", &fixture("installation.created")).await;
    assert_eq!(status, 200);
    app
}

async fn deliver_ok(app: &TestApp, event: &str, payload: &Value) -> Value {
    let (status, body) = app.deliver(event, payload).await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn deploys(app: &TestApp, query: &str) -> Vec<Value> {
    let (status, body) = app.admin_get(&format!("/deployments{query}")).await;
    assert_eq!(status, 200, "{body}");
    body["deployments"].as_array().unwrap().clone()
}

async fn deploy(app: &TestApp, id: i64) -> Value {
    let (status, body) = app.admin_get(&format!("/deployments/{id}")).await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn queued_jobs(app: &TestApp) -> Vec<Value> {
    let (status, body) = app.admin_get("/api/jobs?state=queued").await;
    assert_eq!(status, 200, "{body}");
    body["jobs"].as_array().unwrap().clone()
}

#[tokio::test]
async fn a_deployment_event_records_an_initiated_deploy_with_githubs_fields() {
    let app = installed_app().await;

    let body = deliver_ok(&app, "deployment", &fixture("deployment.created")).await;

    assert_eq!(body["outcome"], "processed");
    let list = deploys(&app, "").await;
    assert_eq!(list.len(), 1);
    let d = &list[0];
    assert_eq!(d["repository"], "acme-corp/web-app");
    assert_eq!(d["environment"], "production");
    assert_eq!(d["sha"], SHA_A);
    assert_eq!(d["ref"], "main");
    assert_eq!(d["github_deployment_id"], 1900000001_i64);
    assert_eq!(d["creator"], "alice");
    assert_eq!(d["description"], Value::Null, "an empty description is absent");
    assert_eq!(d["source"], "github");
    assert_eq!(d["status"], "initiated");
    assert_eq!(d["production_environment"], true);
    assert_eq!(d["transient_environment"], false);
    assert_eq!(d["deploy_time"], "2026-11-02T09:10:00Z");
    assert_eq!(d["completed_at"], Value::Null);
    assert!(queued_jobs(&app).await.is_empty(), "nothing is live yet");
}

#[tokio::test]
async fn statuses_carry_a_deploy_to_live_with_its_history_duration_and_a_queued_job() {
    let app = installed_app().await;
    let dep = fixture("deployment.created");
    deliver_ok(&app, "deployment", &dep).await;

    deliver_ok(
        &app,
        "deployment_status",
        &status(11, "queued", "2026-11-02T09:10:05Z", &dep),
    )
    .await;
    deliver_ok(
        &app,
        "deployment_status",
        &status(12, "in_progress", "2026-11-02T09:11:00Z", &dep),
    )
    .await;
    let mid = deploys(&app, "").await[0].clone();
    deliver_ok(
        &app,
        "deployment_status",
        &status(13, "success", "2026-11-02T09:14:00Z", &dep),
    )
    .await;

    assert_eq!(mid["status"], "deploying");
    let d = deploy(&app, 1).await;
    assert_eq!(d["status"], "live");
    assert_eq!(d["completed_at"], "2026-11-02T09:14:00Z");
    assert_eq!(d["duration_seconds"], 240);
    assert_eq!(
        d["log_url"],
        "https://github.com/acme-corp/web-app/actions/runs/8800000001"
    );
    assert_eq!(d["environment_url"], Value::Null, "an empty environment_url is absent");
    let states: Vec<&str> = d["statuses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, vec!["queued", "in_progress", "success"]);
    let jobs = queued_jobs(&app).await;
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0]["kind"], "deploy.went_live");
    assert_eq!(jobs[0]["payload"]["deployment_id"], 1);
    assert_eq!(jobs[0]["payload"]["sha"], SHA_A);
    assert_eq!(jobs[0]["state"], "queued");
    app.run_jobs().await;
}

#[tokio::test]
async fn a_late_in_progress_never_moves_a_live_deploy_back() {
    let app = installed_app().await;
    let dep = fixture("deployment.created");

    deliver_ok(
        &app,
        "deployment_status",
        &status(22, "success", "2026-11-02T09:14:00Z", &dep),
    )
    .await;
    deliver_ok(
        &app,
        "deployment_status",
        &status(21, "in_progress", "2026-11-02T09:12:00Z", &dep),
    )
    .await;
    deliver_ok(
        &app,
        "deployment_status",
        &status(20, "pending", "2026-11-02T09:10:30Z", &dep),
    )
    .await;

    let d = deploy(&app, 1).await;
    assert_eq!(d["status"], "live");
    let states: Vec<&str> = d["statuses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["state"].as_str().unwrap())
        .collect();
    assert_eq!(
        states,
        vec!["pending", "in_progress", "success"],
        "history in GitHub's order"
    );
    assert_eq!(queued_jobs(&app).await.len(), 1);
    app.run_jobs().await;
}

#[tokio::test]
async fn a_status_before_its_deployment_creates_the_deploy_from_the_embedded_object() {
    let app = installed_app().await;
    let dep = fixture("deployment.created");

    deliver_ok(
        &app,
        "deployment_status",
        &status(31, "success", "2026-11-02T09:14:00Z", &dep),
    )
    .await;
    let body = deliver_ok(&app, "deployment", &dep).await;

    assert_eq!(body["outcome"], "processed");
    let list = deploys(&app, "").await;
    assert_eq!(list.len(), 1, "one deploy, not two");
    assert_eq!(
        list[0]["status"], "live",
        "the later deployment event did not reset the status"
    );
    assert_eq!(list[0]["github_deployment_id"], 1900000001_i64);
    app.run_jobs().await;
}

#[tokio::test]
async fn duplicate_deliveries_and_repeated_statuses_change_nothing() {
    let app = installed_app().await;
    let dep = fixture("deployment.created");
    let success = status(41, "success", "2026-11-02T09:14:00Z", &dep);
    let first = WebhookRequest::signed("deployment_status", &success).with_delivery("status-delivery-1");
    let redelivered = WebhookRequest::signed("deployment_status", &success).with_delivery("status-delivery-1");

    assert_eq!(app.send_webhook(first).await.status(), 200);
    let (_, again) = crate::helpers::status_and_json(app.send_webhook(redelivered).await).await;
    let repeated = deliver_ok(&app, "deployment_status", &success).await;

    assert_eq!(again["outcome"], "duplicate");
    assert_eq!(repeated["outcome"], "skipped");
    assert!(repeated["reason"].as_str().unwrap().contains("41"), "{repeated}");
    assert_eq!(app.count_rows("deployment").await, 1);
    assert_eq!(app.count_rows("deployment_status").await, 1);
    assert_eq!(app.count_rows("job").await, 1);
    app.run_jobs().await;
}

#[tokio::test]
async fn a_new_live_deploy_supersedes_the_previous_one_of_the_same_repository_and_environment() {
    let app = installed_app().await;
    let a = deployment(101, SHA_A, "production", "2026-11-02T10:00:00Z");
    let b = deployment(102, SHA_B, "production", "2026-11-02T11:00:00Z");
    let staging = deployment(103, SHA_C, "staging", "2026-11-02T11:30:00Z");
    deliver_ok(
        &app,
        "deployment_status",
        &status(1001, "success", "2026-11-02T10:05:00Z", &a),
    )
    .await;
    deliver_ok(
        &app,
        "deployment_status",
        &status(1003, "success", "2026-11-02T11:35:00Z", &staging),
    )
    .await;

    deliver_ok(
        &app,
        "deployment_status",
        &status(1002, "success", "2026-11-02T11:05:00Z", &b),
    )
    .await;

    let first = deploy(&app, 1).await;
    let second = deploy(&app, 3).await;
    let other_env = deploy(&app, 2).await;
    assert_eq!(
        (first["status"].as_str(), first["superseded_by_id"].as_i64()),
        (Some("superseded"), Some(3))
    );
    assert_eq!(second["status"], "live");
    assert_eq!(other_env["status"], "live", "another environment is untouched");
    let jobs = queued_jobs(&app).await;
    assert_eq!(jobs.len(), 3);
    let newest = jobs.iter().find(|j| j["payload"]["deployment_id"] == 3).unwrap();
    assert_eq!(newest["payload"]["previous_live_ids"], json!([1]));
    app.run_jobs().await;
}

#[tokio::test]
async fn githubs_inactive_status_on_a_superseded_deploy_keeps_its_successor() {
    let app = installed_app().await;
    let a = deployment(101, SHA_A, "staging", "2026-11-02T10:00:00Z");
    let b = deployment(102, SHA_B, "staging", "2026-11-02T11:00:00Z");
    deliver_ok(
        &app,
        "deployment_status",
        &status(1001, "success", "2026-11-02T10:05:00Z", &a),
    )
    .await;
    deliver_ok(
        &app,
        "deployment_status",
        &status(1002, "success", "2026-11-02T11:05:00Z", &b),
    )
    .await;

    // GitHub's auto_inactive marks the earlier deployment when the later one succeeds.
    deliver_ok(
        &app,
        "deployment_status",
        &status(1003, "inactive", "2026-11-02T11:05:00Z", &a),
    )
    .await;

    let first = deploy(&app, 1).await;
    assert_eq!(
        (first["status"].as_str(), first["superseded_by_id"].as_i64()),
        (Some("superseded"), Some(2))
    );
    assert_eq!(
        first["statuses"].as_array().unwrap().last().unwrap()["state"],
        "inactive"
    );
    app.run_jobs().await;
}

#[tokio::test]
async fn a_late_success_of_an_older_deploy_arrives_superseded_and_queues_nothing() {
    let app = installed_app().await;
    let older = deployment(201, SHA_A, "production", "2026-11-02T10:00:00Z");
    let newer = deployment(202, SHA_B, "production", "2026-11-02T11:00:00Z");
    deliver_ok(
        &app,
        "deployment_status",
        &status(2002, "success", "2026-11-02T11:05:00Z", &newer),
    )
    .await;

    deliver_ok(
        &app,
        "deployment_status",
        &status(2001, "success", "2026-11-02T10:05:00Z", &older),
    )
    .await;

    let late = deploy(&app, 2).await;
    assert_eq!(
        (late["status"].as_str(), late["superseded_by_id"].as_i64()),
        (Some("superseded"), Some(1))
    );
    assert_eq!(late["completed_at"], "2026-11-02T10:05:00Z");
    assert_eq!(deploy(&app, 1).await["status"], "live");
    assert_eq!(queued_jobs(&app).await.len(), 1);
    app.run_jobs().await;
}

#[tokio::test]
async fn a_failed_rollout_records_its_completion_and_leaves_the_live_deploy_alone() {
    let app = installed_app().await;
    let good = deployment(301, SHA_A, "production", "2026-11-02T10:00:00Z");
    let bad = deployment(302, SHA_B, "production", "2026-11-02T11:00:00Z");
    deliver_ok(
        &app,
        "deployment_status",
        &status(3001, "success", "2026-11-02T10:05:00Z", &good),
    )
    .await;

    deliver_ok(
        &app,
        "deployment_status",
        &status(3002, "error", "2026-11-02T11:02:30Z", &bad),
    )
    .await;

    let failed = deploy(&app, 2).await;
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["completed_at"], "2026-11-02T11:02:30Z");
    assert_eq!(failed["duration_seconds"], 150);
    assert_eq!(deploy(&app, 1).await["status"], "live");
    app.run_jobs().await;
}

#[tokio::test]
async fn an_unknown_state_is_stored_in_the_history_without_changing_the_status() {
    let app = installed_app().await;
    let dep = fixture("deployment.created");
    deliver_ok(
        &app,
        "deployment_status",
        &status(51, "in_progress", "2026-11-02T09:11:00Z", &dep),
    )
    .await;

    let body = deliver_ok(
        &app,
        "deployment_status",
        &status(52, "reticulating", "2026-11-02T09:12:00Z", &dep),
    )
    .await;

    assert_eq!(body["outcome"], "processed");
    let d = deploy(&app, 1).await;
    assert_eq!(d["status"], "deploying");
    let last = d["statuses"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (last["state"].as_str(), last["status"].clone()),
        (Some("reticulating"), Value::Null)
    );
}

async fn patch_settings(app: &TestApp, id: i64, patch: Value) -> (u16, Value) {
    let response = app
        .client
        .patch(app.url(&format!("/api/connections/{id}")))
        .bearer_auth(ADMIN_TOKEN)
        .json(&patch)
        .send()
        .await
        .unwrap();
    crate::helpers::status_and_json(response).await
}

#[tokio::test]
async fn with_auto_creation_off_deployment_events_are_skipped_and_change_nothing() {
    let app = installed_app().await;
    let (status_code, connection) = patch_settings(&app, 1, json!({"auto_create_deployments": false})).await;
    assert_eq!(status_code, 200, "{connection}");
    assert_eq!(connection["settings"]["auto_create_deployments"], false);
    let dep = fixture("deployment.created");

    let created = deliver_ok(&app, "deployment", &dep).await;
    let success = deliver_ok(
        &app,
        "deployment_status",
        &status(61, "success", "2026-11-02T09:14:00Z", &dep),
    )
    .await;

    for body in [&created, &success] {
        assert_eq!(body["outcome"], "skipped", "{body}");
        assert!(
            body["reason"].as_str().unwrap().contains("auto_create_deployments"),
            "{body}"
        );
    }
    assert_eq!(app.count_rows("deployment").await, 0);
    assert_eq!(app.count_rows("deployment_status").await, 0);
    assert_eq!(app.count_rows("job").await, 0);
    let stored = app
        .stored_delivery(created["delivery"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(stored.outcome, "skipped");
}

#[tokio::test]
async fn transient_environments_are_skipped_when_the_connection_ignores_them() {
    let app = installed_app().await;
    let mut preview = deployment(401, SHA_A, "preview-pr-88", "2026-11-02T10:00:00Z");
    set(&mut preview, "/deployment/transient_environment", json!(true));
    set(&mut preview, "/deployment/production_environment", json!(false));
    deliver_ok(&app, "deployment", &preview).await;
    patch_settings(&app, 1, json!({"ignore_transient_environments": true})).await;

    let mut second = preview.clone();
    set(&mut second, "/deployment/id", json!(402));
    let body = deliver_ok(&app, "deployment", &second).await;

    assert_eq!(body["outcome"], "skipped");
    assert!(body["reason"].as_str().unwrap().contains("transient"), "{body}");
    assert_eq!(
        app.count_rows("deployment").await,
        1,
        "only the one from before the setting"
    );
}

#[tokio::test]
async fn environments_matching_an_ignored_pattern_are_skipped() {
    let app = installed_app().await;
    patch_settings(&app, 1, json!({"ignored_environments": ["preview-*", "pr-[0-9]*"]})).await;

    let preview = deliver_ok(
        &app,
        "deployment",
        &deployment(501, SHA_A, "preview-42", "2026-11-02T10:00:00Z"),
    )
    .await;
    let pr = deliver_ok(
        &app,
        "deployment",
        &deployment(502, SHA_A, "pr-7", "2026-11-02T10:00:00Z"),
    )
    .await;
    let production = deliver_ok(
        &app,
        "deployment",
        &deployment(503, SHA_A, "production", "2026-11-02T10:00:00Z"),
    )
    .await;

    assert_eq!(preview["outcome"], "skipped");
    assert!(preview["reason"].as_str().unwrap().contains("preview-*"), "{preview}");
    assert_eq!(pr["outcome"], "skipped");
    assert_eq!(production["outcome"], "processed");
    assert_eq!(app.count_rows("deployment").await, 1);
}

#[tokio::test]
async fn a_deleted_installation_takes_no_new_deploys() {
    let app = installed_app().await;
    let mut deleted = fixture("installation.created");
    set(&mut deleted, "/action", json!("deleted"));
    deliver_ok(&app, "installation", &deleted).await;

    let body = deliver_ok(&app, "deployment", &fixture("deployment.created")).await;

    assert_eq!(body["outcome"], "skipped");
    assert!(body["reason"].as_str().unwrap().contains("deleted"));
    assert_eq!(app.count_rows("deployment").await, 0);
}

#[tokio::test]
async fn a_deployment_for_an_installation_never_seen_creates_its_connection_from_the_repository_owner() {
    let app = spawn_app().await;

    let body = deliver_ok(&app, "deployment", &fixture("deployment.created")).await;

    assert_eq!(body["outcome"], "processed");
    let (_, connection) = app.admin_get("/api/connections/1").await;
    assert_eq!(connection["installation_id"], 41000001);
    assert_eq!(connection["account"]["login"], "acme-corp");
    assert_eq!(connection["repositories"], json!(["acme-corp/web-app"]));
    assert_eq!(deploys(&app, "").await.len(), 1);
}

#[tokio::test]
async fn deploys_of_one_connection_do_not_leak_into_another() {
    let app = installed_app().await;
    let mut other = fixture("installation.created");
    set(&mut other, "/installation/id", json!(42000002));
    set(&mut other, "/installation/account/login", json!("globex"));
    set(
        &mut other,
        "/repositories",
        json!([{"id": 800000001, "full_name": "globex/web-app"}]),
    );
    deliver_ok(&app, "installation", &other).await;
    let mut globex_deploy = deployment(601, SHA_B, "production", "2026-11-02T12:00:00Z");
    set(&mut globex_deploy, "/installation/id", json!(42000002));
    set(&mut globex_deploy, "/repository/full_name", json!("globex/web-app"));
    set(&mut globex_deploy, "/repository/id", json!(800000001));
    set(&mut globex_deploy, "/repository/owner/login", json!("globex"));

    deliver_ok(
        &app,
        "deployment",
        &deployment(600, SHA_A, "production", "2026-11-02T11:00:00Z"),
    )
    .await;
    deliver_ok(&app, "deployment", &globex_deploy).await;

    let acme = deploys(&app, "?connection=1").await;
    let globex = deploys(&app, "?connection=2").await;
    assert_eq!(acme.len(), 1);
    assert_eq!(acme[0]["repository"], "acme-corp/web-app");
    assert_eq!(globex.len(), 1);
    assert_eq!(globex[0]["repository"], "globex/web-app");
    assert_eq!(globex[0]["connection_id"], 2);
    assert_eq!(deploys(&app, "?connection=1&repository=globex/web-app").await.len(), 0);
}

#[tokio::test]
async fn the_list_is_newest_first_filters_and_pages_with_a_cursor() {
    let app = installed_app().await;
    let plan = [
        (701, SHA_A, "production", "2026-11-02T10:00:00Z"),
        (702, SHA_B, "staging", "2026-11-02T12:00:00Z"),
        (703, SHA_C, "production", "2026-11-02T11:00:00Z"),
        (704, SHA_B, "production", "2026-11-02T13:00:00Z"),
    ];
    for (id, sha, env, at) in plan {
        deliver_ok(&app, "deployment", &deployment(id, sha, env, at)).await;
    }
    deliver_ok(
        &app,
        "deployment_status",
        &status(
            7041,
            "success",
            "2026-11-02T13:05:00Z",
            &deployment(704, SHA_B, "production", "2026-11-02T13:00:00Z"),
        ),
    )
    .await;

    let all: Vec<i64> = deploys(&app, "")
        .await
        .iter()
        .map(|d| d["github_deployment_id"].as_i64().unwrap())
        .collect();
    let production = deploys(&app, "?environment=production&repository=ACME-CORP/Web-App").await;
    let live = deploys(&app, "?status=live").await;
    let by_sha = deploys(&app, &format!("?sha={}", &SHA_B[..8].to_uppercase())).await;
    let (_, page_one) = app.admin_get("/deployments?limit=3").await;
    let cursor = page_one["next_cursor"].as_str().unwrap().to_owned();
    let (_, page_two) = app.admin_get(&format!("/deployments?limit=3&cursor={cursor}")).await;

    assert_eq!(all, vec![704, 702, 703, 701]);
    assert_eq!(production.len(), 3);
    assert_eq!(live.len(), 1);
    assert_eq!(live[0]["github_deployment_id"], 704);
    assert_eq!(by_sha.len(), 2);
    assert_eq!(page_one["deployments"].as_array().unwrap().len(), 3);
    let rest: Vec<i64> = page_two["deployments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["github_deployment_id"].as_i64().unwrap())
        .collect();
    assert_eq!(rest, vec![701]);
    assert_eq!(page_two["next_cursor"], Value::Null);
    app.run_jobs().await;
}

#[tokio::test]
async fn bad_list_filters_are_a_bad_request_naming_the_field() {
    let app = installed_app().await;

    for (query, field) in [
        ("?status=shipped", "status"),
        ("?sha=xyz", "sha"),
        ("?repository=nope", "repository"),
        ("?limit=0", "limit"),
        ("?cursor=garbage", "cursor"),
    ] {
        let (status, body) = app.admin_get(&format!("/deployments{query}")).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(body["errors"][0]["field"], field, "{query}: {body}");
    }
    let (missing, _) = app.admin_get("/deployments/999").await;
    assert_eq!(missing, 404);
    let unauthenticated = app
        .client
        .get(app.url("/deployments"))
        .header("Accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(unauthenticated.status(), 401);
}

#[tokio::test]
async fn invalid_settings_are_refused_with_422_naming_each_field() {
    let app = installed_app().await;

    let (status, body) = patch_settings(
        &app,
        1,
        json!({"auto_create_deployments": "yes", "colour": "blue", "ignored_environments": ["ok-*", "broken-["]}),
    )
    .await;
    let (missing, _) = patch_settings(&app, 99, json!({"auto_create_deployments": false})).await;

    assert_eq!(status, 422, "{body}");
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        vec!["auto_create_deployments", "colour", "ignored_environments[1]"]
    );
    assert_eq!(missing, 404);
    let (_, connection) = app.admin_get("/api/connections/1").await;
    assert_eq!(
        connection["settings"]["auto_create_deployments"], true,
        "nothing was half-applied"
    );
}

#[tokio::test]
async fn connections_set_changes_settings_from_the_command_line() {
    let app = installed_app().await;
    let url = app.database.url.clone();

    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_shiplog"))
            .args([
                "connections",
                "set",
                "1",
                "ignore_transient_environments=true",
                "ignored_environments=preview-*,pr-*",
            ])
            .env("DATABASE_URL", &url)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let url = app.database.url.clone();
    let refused = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_shiplog"))
            .args(["connections", "set", "1", "ignored_environments=[\"bad-[\"]"])
            .env("DATABASE_URL", &url)
            .output()
            .unwrap()
    })
    .await
    .unwrap();

    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let (_, connection) = app.admin_get("/api/connections/1").await;
    assert_eq!(connection["settings"]["ignore_transient_environments"], true);
    assert_eq!(
        connection["settings"]["ignored_environments"],
        json!(["preview-*", "pr-*"])
    );
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("ignored_environments[0]"));
}
