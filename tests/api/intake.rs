//! The intake's hot path (deployment reports of a connection it knows) against the general
//! path: the same deliveries, in the same order, leave the same rows, answers and jobs. And the
//! connection cache it reads from follows every change, on this server or another.

use std::collections::HashMap;

use sea_orm::{ConnectionTrait, QueryResult, Statement};
use serde_json::{json, Value};

use crate::helpers::{
    fixture, set, spawn_app_on, spawn_app_with, status_and_json, TestApp, TestDatabase, WebhookRequest, ADMIN_TOKEN,
};

/// A `deployment` no Actions run made (the fixtures carry a `workflow_run`).
fn deployment(id: i64, sha: u32, environment: &str, created_at: &str) -> Value {
    let mut body = fixture("deployment.created");
    body.as_object_mut().unwrap().remove("workflow_run");
    set(&mut body, "/deployment/id", json!(id));
    set(&mut body, "/deployment/sha", json!(format!("{sha:040x}")));
    set(&mut body, "/deployment/environment", json!(environment));
    set(&mut body, "/deployment/created_at", json!(created_at));
    set(&mut body, "/deployment/description", json!(format!("deploy {id}")));
    body
}

fn status(deployment: &Value, id: i64, state: &str, created_at: &str) -> Value {
    let mut body = fixture("deployment_status.created");
    body.as_object_mut().unwrap().remove("workflow_run");
    body["deployment"] = deployment["deployment"].clone();
    set(&mut body, "/deployment_status/id", json!(id));
    set(&mut body, "/deployment_status/state", json!(state));
    set(&mut body, "/deployment_status/created_at", json!(created_at));
    body
}

/// Deliveries that cover what a report can do: go live over an older live deploy, arrive
/// superseded by a later one, fail, be older than the current report, be `inactive` on a live and
/// on a stepped-down deploy, come before its deployment, come twice under one delivery id and
/// under two, be dated in the future, be refreshed by a later copy, redeploy an old sha.
fn script() -> Vec<(&'static str, Value, String)> {
    let d1 = deployment(5001, 1, "production", "2026-11-02T08:00:00Z");
    let d2 = deployment(5002, 2, "production", "2026-11-02T08:10:00Z");
    let d3 = deployment(5003, 3, "production", "2026-11-02T08:05:00Z");
    let d4 = deployment(5004, 4, "staging", "2026-11-02T08:20:00Z");
    let d5 = deployment(5005, 5, "staging", "2030-01-01T00:00:00Z");
    let d6 = deployment(5006, 1, "production", "2026-11-02T08:40:00Z");
    let mut d2_later = d2.clone();
    set(
        &mut d2_later,
        "/deployment/description",
        json!("deploy 5002, described again"),
    );
    let mut steps: Vec<(&'static str, Value)> = vec![
        ("deployment", d1.clone()),
        (
            "deployment_status",
            status(&d1, 7001, "pending", "2026-11-02T08:01:00Z"),
        ),
        (
            "deployment_status",
            status(&d1, 7002, "success", "2026-11-02T08:02:00Z"),
        ),
        ("deployment", d2.clone()),
        (
            "deployment_status",
            status(&d2, 7003, "in_progress", "2026-11-02T08:11:00Z"),
        ),
        (
            "deployment_status",
            status(&d2, 7004, "success", "2026-11-02T08:12:00Z"),
        ),
        (
            "deployment_status",
            status(&d3, 7005, "success", "2026-11-02T08:06:00Z"),
        ),
        (
            "deployment_status",
            status(&d1, 7006, "inactive", "2026-11-02T08:13:00Z"),
        ),
        ("deployment", d4.clone()),
        (
            "deployment_status",
            status(&d4, 7007, "failure", "2026-11-02T08:21:00Z"),
        ),
        (
            "deployment_status",
            status(&d4, 7008, "success", "2026-11-02T08:25:00Z"),
        ),
        (
            "deployment_status",
            status(&d4, 7009, "in_progress", "2026-11-02T08:22:00Z"),
        ),
        (
            "deployment_status",
            status(&d4, 7008, "success", "2026-11-02T08:25:00Z"),
        ),
        (
            "deployment_status",
            status(&d5, 7010, "success", "2030-01-01T00:01:00Z"),
        ),
        ("deployment", d2_later),
        (
            "deployment_status",
            status(&d2, 7011, "inactive", "2026-11-02T08:30:00Z"),
        ),
        ("deployment", d6.clone()),
        ("deployment_status", status(&d6, 7012, "error", "2026-11-02T08:41:00Z")),
        (
            "deployment_status",
            status(&d6, 7013, "success", "2026-11-02T08:42:00Z"),
        ),
    ];
    let mut script: Vec<(&'static str, Value, String)> = steps
        .drain(..)
        .enumerate()
        .map(|(n, (event, body))| (event, body, format!("00000000-0000-4000-8000-{n:012}")))
        .collect();
    // A redelivery of the second success (same delivery id).
    let again = script[5].clone();
    script.push(again);
    script
}

async fn rows(app: &TestApp, sql: &str) -> Vec<QueryResult> {
    let backend = app.store.conn().get_database_backend();
    app.store
        .conn()
        .query_all(Statement::from_string(backend, sql.to_owned()))
        .await
        .unwrap()
}

/// What the deliveries left, with internal ids written as GitHub deployment ids (PostgreSQL
/// spends a sequence number on an upsert that updates, so internal ids may differ).
async fn outcome(app: &TestApp) -> Value {
    let deploys = rows(
        app,
        "SELECT id, github_deployment_id, repository, environment, sha, status, status_at, status_github_id, \
         deploy_time, completed_at, duration_seconds, superseded_by_id, description, log_url, environment_url, \
         backfilled, recorded_at, updated_at FROM deployment ORDER BY github_deployment_id",
    )
    .await;
    let github: HashMap<i64, i64> = deploys
        .iter()
        .map(|r| {
            (
                r.try_get::<i64>("", "id").unwrap(),
                r.try_get::<i64>("", "github_deployment_id").unwrap(),
            )
        })
        .collect();
    let by_github = |id: Option<i64>| id.map(|id| github[&id]);
    let rename = |text: String| {
        github.iter().fold(text, |text, (id, gh)| {
            text.replace(&format!("deployment {id} ("), &format!("deployment gh{gh} ("))
        })
    };
    let deploys: Vec<Value> = deploys
        .iter()
        .map(|r| {
            json!({
                "github": r.try_get::<i64>("", "github_deployment_id").unwrap(),
                "repository": r.try_get::<String>("", "repository").unwrap(),
                "environment": r.try_get::<String>("", "environment").unwrap(),
                "sha": r.try_get::<String>("", "sha").unwrap(),
                "status": r.try_get::<String>("", "status").unwrap(),
                "status_at": r.try_get::<chrono::DateTime<chrono::Utc>>("", "status_at").unwrap(),
                "status_github_id": r.try_get::<i64>("", "status_github_id").unwrap(),
                "deploy_time": r.try_get::<chrono::DateTime<chrono::Utc>>("", "deploy_time").unwrap(),
                "completed_at": r.try_get::<Option<chrono::DateTime<chrono::Utc>>>("", "completed_at").unwrap(),
                "duration": r.try_get::<Option<i64>>("", "duration_seconds").unwrap(),
                "superseded_by": by_github(r.try_get::<Option<i64>>("", "superseded_by_id").unwrap()),
                "description": r.try_get::<Option<String>>("", "description").unwrap(),
                "log_url": r.try_get::<Option<String>>("", "log_url").unwrap(),
                "environment_url": r.try_get::<Option<String>>("", "environment_url").unwrap(),
                "backfilled": r.try_get::<bool>("", "backfilled").unwrap(),
                "recorded_at": r.try_get::<chrono::DateTime<chrono::Utc>>("", "recorded_at").unwrap(),
                "updated_at": r.try_get::<chrono::DateTime<chrono::Utc>>("", "updated_at").unwrap(),
            })
        })
        .collect();
    let statuses: Vec<Value> = rows(
        app,
        "SELECT deployment_id, github_status_id, state, status, description, log_url, occurred_at FROM deployment_status \
         ORDER BY deployment_id, occurred_at, id",
    )
    .await
    .iter()
    .map(|r| {
        json!({
            "deploy": github[&r.try_get::<i64>("", "deployment_id").unwrap()],
            "github": r.try_get::<Option<i64>>("", "github_status_id").unwrap(),
            "state": r.try_get::<String>("", "state").unwrap(),
            "status": r.try_get::<Option<String>>("", "status").unwrap(),
            "description": r.try_get::<Option<String>>("", "description").unwrap().map(rename),
            "log_url": r.try_get::<Option<String>>("", "log_url").unwrap(),
            "occurred_at": r.try_get::<chrono::DateTime<chrono::Utc>>("", "occurred_at").unwrap(),
        })
    })
    .collect();
    let deliveries: Vec<Value> = rows(
        app,
        "SELECT delivery_id, event, action, outcome, reason, connection_id FROM webhook_delivery ORDER BY delivery_id",
    )
    .await
    .iter()
    .map(|r| {
        json!([
            r.try_get::<String>("", "delivery_id").unwrap(),
            r.try_get::<String>("", "event").unwrap(),
            r.try_get::<Option<String>>("", "action").unwrap(),
            r.try_get::<String>("", "outcome").unwrap(),
            r.try_get::<Option<String>>("", "reason").unwrap(),
            r.try_get::<Option<i64>>("", "connection_id").unwrap(),
        ])
    })
    .collect();
    let jobs: Vec<Value> = rows(app, "SELECT kind, payload, state FROM job ORDER BY id")
        .await
        .iter()
        .map(|r| {
            let payload: Value = serde_json::from_str(&r.try_get::<String>("", "payload").unwrap()).unwrap();
            let previous: Vec<i64> = payload["previous_live_ids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|id| github[&id.as_i64().unwrap()])
                .collect();
            json!({
                "kind": r.try_get::<String>("", "kind").unwrap(),
                "state": r.try_get::<String>("", "state").unwrap(),
                "deploy": github[&payload["deployment_id"].as_i64().unwrap()],
                "live_at": payload["live_at"],
                "previous": previous,
            })
        })
        .collect();
    json!({"deploys": deploys, "statuses": statuses, "deliveries": deliveries, "jobs": jobs})
}

async fn play(app: &TestApp) -> Vec<(u16, Value)> {
    let mut answers = Vec::new();
    for (event, body, id) in script() {
        let response = app
            .send_webhook(WebhookRequest::signed(event, &body).with_delivery(&id))
            .await;
        answers.push(status_and_json(response).await);
    }
    answers
}

#[tokio::test]
async fn the_hot_path_leaves_what_the_general_path_leaves() {
    let hot = spawn_app_with(|config| config.intake_hot_path = true).await;
    let general = spawn_app_with(|config| config.intake_hot_path = false).await;
    hot.allow_jobs(&["deploy.went_live"]);
    general.allow_jobs(&["deploy.went_live"]);

    let hot_answers = play(&hot).await;
    let general_answers = play(&general).await;

    assert_eq!(hot_answers, general_answers);
    assert!(hot_answers.iter().all(|(status, _)| *status == 200), "{hot_answers:?}");
    let outcomes: Vec<&str> = hot_answers
        .iter()
        .map(|(_, a)| a["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(
        outcomes.iter().filter(|o| **o == "duplicate").count(),
        1,
        "{outcomes:?}"
    );
    assert_eq!(outcomes.iter().filter(|o| **o == "skipped").count(), 1, "{outcomes:?}");
    let (hot_rows, general_rows) = (outcome(&hot).await, outcome(&general).await);
    assert_eq!(hot_rows, general_rows);
    // The script means what it says: one live deploy per environment, the latest to go live.
    let live: Vec<(&str, i64)> = hot_rows["deploys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["status"] == "live")
        .map(|d| (d["environment"].as_str().unwrap(), d["github"].as_i64().unwrap()))
        .collect();
    assert_eq!(live, [("staging", 5005), ("production", 5006)]);
    let d3 = hot_rows["deploys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["github"] == 5003)
        .unwrap();
    assert_eq!(d3["status"], "superseded");
    assert_eq!(d3["superseded_by"], 5002, "it went live before the live deploy did");
    assert_eq!(hot_rows["jobs"].as_array().unwrap().len(), 5, "{}", hot_rows["jobs"]);
}

async fn patch_settings(app: &TestApp, patch: Value) {
    let response = app
        .client
        .patch(app.url("/api/connections/1"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&patch)
        .send()
        .await
        .unwrap();
    let (status, body) = status_and_json(response).await;
    assert_eq!(status, 200, "{body}");
}

async fn outcome_of(app: &TestApp, event: &str, body: &Value) -> (String, Option<String>) {
    let (status, answer) = app.deliver(event, body).await;
    assert_eq!(status, 200, "{answer}");
    (
        answer["outcome"].as_str().unwrap().to_owned(),
        answer["reason"].as_str().map(str::to_owned),
    )
}

#[tokio::test]
async fn a_settings_change_on_another_server_reaches_the_next_delivery_here() {
    let database = std::sync::Arc::new(TestDatabase::create().await);
    let here = spawn_app_on(database.clone(), |_| {}, Vec::new()).await;
    let there = spawn_app_on(database, |_| {}, Vec::new()).await;
    here.allow_jobs(&["deploy.went_live"]);
    there.allow_jobs(&["deploy.went_live"]);
    // The first delivery makes the connection (general path); the second finds it cached.
    let first = deployment(6001, 1, "production", "2026-11-02T08:00:00Z");
    assert_eq!(outcome_of(&here, "deployment", &first).await.0, "processed");
    let second = deployment(6002, 2, "production", "2026-11-02T08:01:00Z");
    assert_eq!(outcome_of(&here, "deployment", &second).await.0, "processed");
    assert_eq!(
        outcome_of(
            &here,
            "deployment_status",
            &status(&second, 8001, "success", "2026-11-02T08:02:00Z")
        )
        .await
        .0,
        "processed"
    );

    patch_settings(&there, json!({"ignored_environments": ["prod*"]})).await;
    let (outcome, reason) = outcome_of(
        &here,
        "deployment",
        &deployment(6003, 3, "production", "2026-11-02T08:03:00Z"),
    )
    .await;
    assert_eq!(outcome, "skipped");
    assert!(reason.unwrap().contains("ignored_environments"));

    patch_settings(
        &there,
        json!({"ignored_environments": [], "auto_create_deployments": false}),
    )
    .await;
    let (outcome, reason) = outcome_of(
        &here,
        "deployment",
        &deployment(6004, 4, "production", "2026-11-02T08:04:00Z"),
    )
    .await;
    assert_eq!(outcome, "skipped");
    assert!(reason.unwrap().contains("auto_create_deployments"));

    patch_settings(&there, json!({"auto_create_deployments": true})).await;
    assert_eq!(
        outcome_of(
            &here,
            "deployment",
            &deployment(6005, 5, "production", "2026-11-02T08:05:00Z")
        )
        .await
        .0,
        "processed"
    );
}

#[tokio::test]
async fn a_suspended_or_deleted_installation_is_refused_once_its_connection_is_cached() {
    let app = spawn_app_with(|_| {}).await;
    app.allow_jobs(&["deploy.went_live"]);
    let first = deployment(6101, 1, "production", "2026-11-02T08:00:00Z");
    assert_eq!(outcome_of(&app, "deployment", &first).await.0, "processed");
    assert_eq!(
        outcome_of(
            &app,
            "deployment",
            &deployment(6102, 2, "production", "2026-11-02T08:01:00Z")
        )
        .await
        .0,
        "processed"
    );

    let mut suspend = fixture("installation.created");
    set(&mut suspend, "/action", json!("suspend"));
    set(&mut suspend, "/installation/id", first["installation"]["id"].clone());
    set(
        &mut suspend,
        "/installation/suspended_at",
        json!("2026-11-02T08:30:00Z"),
    );
    assert_eq!(outcome_of(&app, "installation", &suspend).await.0, "processed");
    let (outcome, reason) = outcome_of(
        &app,
        "deployment",
        &deployment(6103, 3, "production", "2026-11-02T08:02:00Z"),
    )
    .await;
    assert_eq!(outcome, "skipped");
    assert!(reason.unwrap().contains("suspended"));

    let mut delete = suspend.clone();
    set(&mut delete, "/action", json!("deleted"));
    assert_eq!(outcome_of(&app, "installation", &delete).await.0, "processed");
    let (outcome, reason) = outcome_of(
        &app,
        "deployment",
        &deployment(6104, 4, "production", "2026-11-02T08:03:00Z"),
    )
    .await;
    assert_eq!(outcome, "skipped");
    assert!(reason.unwrap().contains("deleted"));
}
