//! Deploys from GitHub Actions runs (issue 15): a `workflow_run` delivery that matches one of the
//! connection's `workflow_rules` is a deploy, its status drives the lifecycle in the run's own
//! order, and the `deployment` the same run makes enriches it instead of counting twice.
//!
//! The payloads are GitHub's published examples (`workflow_run.*.json`,
//! `deployment.created.gh-pages.json`, copied from /work/shared/github-payloads), moved to the
//! installed repository with an `installation`, and ids, SHAs and times of the test's own.

use serde_json::{json, Value};
use shiplog::config::{GitHubAppCredentials, Secret};

use crate::fake_agent::FakeAgent;
use crate::fake_github::{private_key_pem, FakeGitHub, APP_ID};
use crate::git::GitRepo;
use crate::helpers::{fixture, set, spawn_app, spawn_app_with, status_and_json, TestApp, WebhookRequest, ADMIN_TOKEN};

const REPO: &str = "acme-corp/web-app";
const SHA_A: &str = "4c1f0f0a9d6e3b2a8f7e6d5c4b3a29181716151a";
const SHA_B: &str = "9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a291817";
const RUN: i64 = 8_800_000_001;
/// When the example runs were created and started, moved to the test clock's day.
const CREATED_AT: &str = "2026-11-02T08:50:00Z";
const STARTED_AT: &str = "2026-11-02T08:50:10Z";

/// The rule that makes the example workflow (`Deploy web`, `.github/workflows/deploy.yml`, on the
/// default branch `master`) a deploy to production.
fn production_rule() -> Value {
    json!({"repository": REPO, "workflow": ".github/workflows/deploy.yml", "environment": "production"})
}

/// A `workflow_run` delivery of run `id` as GitHub's example for `action` shows it, in the
/// installed repository, with `status`, `conclusion` and `updated_at` set.
fn run_event(id: i64, action: &str, status: &str, conclusion: Option<&str>, updated_at: &str) -> Value {
    let name = match action {
        "requested" => "workflow_run.requested",
        "in_progress" => "workflow_run.in_progress",
        "completed" => "workflow_run.completed",
        other => panic!("no example for action {other}"),
    };
    let mut payload = fixture(name);
    payload["installation"] = json!({"id": 41000001, "node_id": "MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9uNDEwMDAwMDE="});
    for repository in [
        "/repository",
        "/workflow_run/repository",
        "/workflow_run/head_repository",
    ] {
        set(&mut payload, &format!("{repository}/id"), json!(700000001));
        set(&mut payload, &format!("{repository}/name"), json!("web-app"));
        set(&mut payload, &format!("{repository}/full_name"), json!(REPO));
        set(&mut payload, &format!("{repository}/owner/login"), json!("acme-corp"));
        set(&mut payload, &format!("{repository}/owner/id"), json!(9100001));
    }
    set(&mut payload, "/workflow/name", json!("Deploy web"));
    set(&mut payload, "/workflow/path", json!(".github/workflows/deploy.yml"));
    set(
        &mut payload,
        "/workflow_run/path",
        json!(".github/workflows/deploy.yml"),
    );
    set(&mut payload, "/workflow_run/id", json!(id));
    set(
        &mut payload,
        "/workflow_run/html_url",
        json!(format!("https://github.com/{REPO}/actions/runs/{id}")),
    );
    set(&mut payload, "/workflow_run/head_sha", json!(SHA_A));
    set(&mut payload, "/workflow_run/created_at", json!(CREATED_AT));
    set(&mut payload, "/workflow_run/run_started_at", json!(STARTED_AT));
    set(&mut payload, "/workflow_run/status", json!(status));
    set(&mut payload, "/workflow_run/conclusion", json!(conclusion));
    set(&mut payload, "/workflow_run/updated_at", json!(updated_at));
    payload
}

/// `run_event` for attempt `attempt` of the run (a re-run).
fn attempt(mut payload: Value, attempt: i64, started_at: &str) -> Value {
    set(&mut payload, "/workflow_run/run_attempt", json!(attempt));
    set(&mut payload, "/workflow_run/run_started_at", json!(started_at));
    payload
}

fn in_progress(id: i64, updated_at: &str) -> Value {
    run_event(id, "in_progress", "in_progress", None, updated_at)
}

fn completed(id: i64, conclusion: &str, updated_at: &str) -> Value {
    run_event(id, "completed", "completed", Some(conclusion), updated_at)
}

/// A `deployment.created` the run's job made (GitHub sets `workflow_run`), to `environment`.
fn run_deployment(run_id: i64, environment: &str) -> Value {
    let mut payload = fixture("deployment.created");
    let mut run = fixture("deployment.created.gh-pages")["workflow_run"].clone();
    run["id"] = json!(run_id);
    payload["workflow_run"] = run;
    set(&mut payload, "/deployment/environment", json!(environment));
    set(&mut payload, "/deployment/original_environment", json!(environment));
    payload
}

/// A `deployment_status.created` of `run_deployment(...)`.
fn run_deployment_status(status_id: i64, state: &str, created_at: &str, deployment: &Value) -> Value {
    let mut payload = fixture("deployment_status.created");
    set(&mut payload, "/deployment", deployment["deployment"].clone());
    payload["workflow_run"] = deployment["workflow_run"].clone();
    set(&mut payload, "/deployment_status/id", json!(status_id));
    set(&mut payload, "/deployment_status/state", json!(state));
    set(&mut payload, "/deployment_status/created_at", json!(created_at));
    set(&mut payload, "/deployment_status/updated_at", json!(created_at));
    set(
        &mut payload,
        "/deployment_status/environment",
        deployment["deployment"]["environment"].clone(),
    );
    payload
}

async fn installed_app() -> TestApp {
    let app = spawn_app().await;
    assert_eq!(
        app.deliver("installation", &fixture("installation.created")).await.0,
        200
    );
    app
}

async fn patch_settings(app: &TestApp, patch: &Value) -> (u16, Value) {
    let response = app
        .client
        .patch(app.url("/api/connections/1"))
        .bearer_auth(ADMIN_TOKEN)
        .json(patch)
        .send()
        .await
        .unwrap();
    status_and_json(response).await
}

async fn set_rules(app: &TestApp, rules: Value) {
    let (status, body) = patch_settings(app, &json!({ "workflow_rules": rules })).await;
    assert_eq!(status, 200, "{body}");
}

/// An installed app whose connection has `production_rule()`.
async fn app_with_rule() -> TestApp {
    let app = installed_app().await;
    set_rules(&app, json!([production_rule()])).await;
    app
}

/// Delivers and returns the receipt's outcome and reason.
async fn deliver(app: &TestApp, event: &str, payload: &Value) -> (String, Value) {
    let (status, body) = app.deliver(event, payload).await;
    assert_eq!(status, 200, "{body}");
    (body["outcome"].as_str().unwrap().to_owned(), body["reason"].clone())
}

async fn deliver_processed(app: &TestApp, event: &str, payload: &Value) {
    let (outcome, reason) = deliver(app, event, payload).await;
    assert_eq!(outcome, "processed", "{event}: {reason}");
}

async fn deploys(app: &TestApp) -> Vec<Value> {
    let (status, body) = app.admin_get("/deployments").await;
    assert_eq!(status, 200, "{body}");
    body["deployments"].as_array().unwrap().clone()
}

/// The only deploy there is (the test made one).
async fn only_deploy(app: &TestApp) -> Value {
    let list = deploys(app).await;
    assert_eq!(list.len(), 1, "one deploy: {list:?}");
    deploy(app, list[0]["id"].as_i64().unwrap()).await
}

/// One deploy with its `statuses`.
async fn deploy(app: &TestApp, id: i64) -> Value {
    let (status, body) = app.admin_get(&format!("/deployments/{id}")).await;
    assert_eq!(status, 200, "{body}");
    body
}

/// The deploy run `run_id` made, found in the list.
async fn deploy_of_run(app: &TestApp, run_id: i64) -> Value {
    let list = deploys(app).await;
    let found = list
        .iter()
        .find(|d| d["github_run_id"] == run_id)
        .unwrap_or_else(|| panic!("no deploy of run {run_id}: {list:?}"));
    deploy(app, found["id"].as_i64().unwrap()).await
}

fn states(deploy: &Value) -> Vec<String> {
    deploy["statuses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["state"].as_str().unwrap().to_owned())
        .collect()
}

/// `deploy.went_live` jobs in the job table, whatever their state.
async fn went_live_jobs(app: &TestApp) -> i64 {
    app.first_row("SELECT COUNT(*) AS n FROM job WHERE kind = 'deploy.went_live'")
        .await
        .try_get::<i64>("", "n")
        .unwrap()
}

async fn connection_rules(app: &TestApp) -> Value {
    let (status, connection) = app.admin_get("/api/connections/1").await;
    assert_eq!(status, 200, "{connection}");
    connection["settings"]["workflow_rules"].clone()
}

#[tokio::test]
async fn without_workflow_rules_a_completed_run_is_skipped_with_the_reason() {
    let app = installed_app().await;
    let response = app
        .send_webhook(WebhookRequest::signed(
            "workflow_run",
            &completed(RUN, "success", "2026-11-02T08:55:00Z"),
        ))
        .await;
    let (status, body) = status_and_json(response).await;

    assert_eq!(status, 200, "{body}");
    assert_eq!(body["outcome"], "skipped");
    let reason = body["reason"].as_str().unwrap();
    assert!(reason.contains("no workflow_rules"), "{reason}");
    let stored = app.stored_delivery(body["delivery"].as_str().unwrap()).await.unwrap();
    assert_eq!(stored.outcome, "skipped");
    assert_eq!(stored.reason.as_deref(), Some(reason));
    assert_eq!(app.count_rows("deployment").await, 0);
    assert_eq!(app.count_rows("job").await, 0);
}

#[tokio::test]
async fn rules_match_by_path_file_name_branch_default_branch_and_repository() {
    let app = installed_app().await;
    let rule = |workflow: &str, branch: Option<&str>, environment: &str| {
        let mut rule = json!({"repository": "acme-corp/*", "workflow": workflow, "environment": environment});
        if let Some(branch) = branch {
            rule["branch"] = json!(branch);
        }
        rule
    };
    let on_branch = |id: i64, branch: &str| {
        let mut payload = in_progress(id, "2026-11-02T08:51:00Z");
        set(&mut payload, "/workflow_run/head_branch", json!(branch));
        payload
    };
    // (rules, run, the environment it deploys to, or None: skipped)
    let cases: Vec<(&str, Value, Value, Option<&str>)> = vec![
        (
            "by path",
            json!([rule(".github/workflows/deploy.yml", None, "by-path")]),
            in_progress(1, "2026-11-02T08:51:00Z"),
            Some("by-path"),
        ),
        (
            "by file name, any case",
            json!([rule("DEPLOY.yml", None, "by-file")]),
            in_progress(2, "2026-11-02T08:51:00Z"),
            Some("by-file"),
        ),
        (
            "by name glob",
            json!([rule("Deploy*", None, "by-name")]),
            in_progress(3, "2026-11-02T08:51:00Z"),
            Some("by-name"),
        ),
        (
            "another workflow's path",
            json!([rule(".github/workflows/test.yml", None, "x")]),
            in_progress(4, "2026-11-02T08:51:00Z"),
            None,
        ),
        (
            "another workflow's name",
            json!([rule("CI*", None, "x")]),
            in_progress(5, "2026-11-02T08:51:00Z"),
            None,
        ),
        (
            "a branch glob",
            json!([rule("deploy.yml", Some("release/*"), "by-branch")]),
            on_branch(6, "release/2.4"),
            Some("by-branch"),
        ),
        (
            "a branch glob, the default branch",
            json!([rule("deploy.yml", Some("release/*"), "x")]),
            in_progress(7, "2026-11-02T08:51:00Z"),
            None,
        ),
        (
            "no branch: not a feature branch",
            json!([rule("deploy.yml", None, "x")]),
            on_branch(8, "feature/login"),
            None,
        ),
        (
            "no branch: the payload's default branch",
            json!([rule("deploy.yml", None, "by-default-branch")]),
            {
                let mut payload = on_branch(9, "trunk");
                set(&mut payload, "/repository/default_branch", json!("trunk"));
                payload
            },
            Some("by-default-branch"),
        ),
        (
            "a repository glob of another owner",
            json!([{"repository": "other-org/*", "workflow": "deploy.yml", "environment": "x"}]),
            in_progress(10, "2026-11-02T08:51:00Z"),
            None,
        ),
        (
            "the repository exactly, another case",
            json!([{"repository": "ACME-corp/Web-App", "workflow": "deploy.yml", "environment": "by-repository"}]),
            in_progress(11, "2026-11-02T08:51:00Z"),
            Some("by-repository"),
        ),
    ];

    let mut expected_rows = 0;
    for (what, rules, payload, environment) in cases {
        set_rules(&app, rules).await;
        let (outcome, reason) = deliver(&app, "workflow_run", &payload).await;
        let run_id = payload["workflow_run"]["id"].as_i64().unwrap();
        match environment {
            Some(environment) => {
                expected_rows += 1;
                assert_eq!(outcome, "processed", "{what}: {reason}");
                let d = deploy_of_run(&app, run_id).await;
                assert_eq!(d["environment"], environment, "{what}");
                assert_eq!(d["status"], "building", "{what}");
            }
            None => {
                assert_eq!(outcome, "skipped", "{what}");
                let reason = reason.as_str().unwrap();
                assert!(
                    reason.contains("none of the connection's 1 workflow_rules matches"),
                    "{what}: {reason}"
                );
            }
        }
        assert_eq!(app.count_rows("deployment").await, expected_rows, "{what}");
    }
}

#[tokio::test]
async fn a_run_of_a_forks_branch_is_not_a_deploy_even_when_the_branch_has_the_default_name() {
    let app = app_with_rule().await;
    // A pull request from a fork's `master`: anyone can open one, and the run's head is theirs.
    let mut payload = completed(RUN, "success", "2026-11-02T08:55:00Z");
    set(&mut payload, "/workflow_run/event", json!("pull_request"));
    set(&mut payload, "/workflow_run/head_sha", json!(SHA_B));
    set(&mut payload, "/workflow_run/head_repository/id", json!(800000001));
    set(
        &mut payload,
        "/workflow_run/head_repository/full_name",
        json!("mallory/web-app"),
    );
    set(
        &mut payload,
        "/workflow_run/head_repository/owner/login",
        json!("mallory"),
    );
    let mut by_branch = payload.clone();
    set(&mut by_branch, "/workflow_run/id", json!(RUN + 1));

    let (outcome, reason) = deliver(&app, "workflow_run", &payload).await;
    set_rules(
        &app,
        json!([{"repository": REPO, "workflow": "deploy.yml", "branch": "*", "environment": "production"}]),
    )
    .await;
    let (by_branch_outcome, _) = deliver(&app, "workflow_run", &by_branch).await;

    assert_eq!(outcome, "skipped", "{reason}");
    assert!(reason.as_str().unwrap().contains("fork"), "{reason}");
    assert_eq!(
        by_branch_outcome, "skipped",
        "a branch pattern does not match a fork's branch"
    );
    assert_eq!(app.count_rows("deployment").await, 0);
    assert_eq!(app.count_rows("job").await, 0);
}

#[tokio::test]
async fn two_rules_to_two_environments_make_a_deploy_in_each() {
    let app = installed_app().await;
    set_rules(
        &app,
        json!([
            production_rule(),
            {"repository": "acme-corp/*", "workflow": "Deploy*", "environment": "production"},
            {"repository": REPO, "workflow": "deploy.yml", "environment": "eu"}
        ]),
    )
    .await;

    deliver_processed(&app, "workflow_run", &completed(RUN, "success", "2026-11-02T08:55:00Z")).await;

    let mut environments: Vec<String> = deploys(&app)
        .await
        .iter()
        .map(|d| {
            assert_eq!(d["status"], "live");
            assert_eq!(d["github_run_id"], RUN);
            d["environment"].as_str().unwrap().to_owned()
        })
        .collect();
    environments.sort();
    assert_eq!(environments, ["eu", "production"]);
    assert_eq!(went_live_jobs(&app).await, 2);
    app.run_jobs().await;
}

#[tokio::test]
async fn requested_queued_and_waiting_runs_are_initiated_and_in_progress_is_building() {
    let app = app_with_rule().await;

    for (id, status) in [(1, "requested"), (2, "queued"), (3, "waiting"), (4, "pending")] {
        // The run's own creation time, as GitHub's `requested` example has it.
        deliver_processed(
            &app,
            "workflow_run",
            &run_event(id, "requested", status, None, CREATED_AT),
        )
        .await;
        let queued = deploy_of_run(&app, id).await;
        deliver_processed(&app, "workflow_run", &in_progress(id, "2026-11-02T08:51:00Z")).await;
        let building = deploy_of_run(&app, id).await;

        assert_eq!(queued["status"], "initiated", "{status}");
        assert_eq!(states(&queued), [status], "{status}");
        assert_eq!(queued["statuses"][0]["status"], "initiated", "{status}");
        assert_eq!(building["status"], "building", "{status}");
        assert_eq!(building["id"], queued["id"], "{status}: the same deploy");
        assert_eq!(states(&building), [status, "in_progress"], "{status}");
        assert_eq!(building["completed_at"], Value::Null);
    }
    assert_eq!(app.count_rows("job").await, 0, "nothing went live");
}

#[tokio::test]
async fn the_first_event_of_a_run_moves_its_deploy_whatever_the_runs_start_time() {
    // GitHub's `in_progress` example is updated before the run started (`updated_at` <
    // `run_started_at`): the first report of a run still applies.
    let app = app_with_rule().await;
    let mut early = in_progress(RUN, "2026-11-02T08:50:05Z");
    set(
        &mut early,
        "/workflow_run/run_started_at",
        json!("2026-11-02T08:50:30Z"),
    );

    deliver_processed(&app, "workflow_run", &early).await;

    let d = only_deploy(&app).await;
    assert_eq!(d["status"], "building");
    assert_eq!(d["deploy_time"], "2026-11-02T08:50:30Z");
}

#[tokio::test]
async fn a_successful_run_goes_live_with_its_duration_and_queues_the_went_live_job() {
    let app = app_with_rule().await;

    deliver_processed(&app, "workflow_run", &in_progress(RUN, "2026-11-02T08:51:00Z")).await;
    deliver_processed(&app, "workflow_run", &completed(RUN, "success", "2026-11-02T08:55:10Z")).await;

    let d = only_deploy(&app).await;
    assert_eq!(d["status"], "live");
    assert_eq!(d["completed_at"], "2026-11-02T08:55:10Z");
    assert_eq!(d["duration_seconds"], 300, "from run_started_at");
    assert_eq!(states(&d), ["in_progress", "success"]);
    let (_, jobs) = app.admin_get("/api/jobs?state=queued").await;
    let jobs = jobs["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert_eq!(jobs[0]["kind"], "deploy.went_live");
    assert_eq!(jobs[0]["payload"]["deployment_id"], d["id"]);
    assert_eq!(jobs[0]["payload"]["sha"], SHA_A);
    assert_eq!(jobs[0]["payload"]["environment"], "production");
    app.run_jobs().await;
}

#[tokio::test]
async fn failure_timed_out_and_startup_failure_fail_the_deploy_with_its_duration() {
    let app = app_with_rule().await;

    for (id, conclusion) in [(1, "failure"), (2, "timed_out"), (3, "startup_failure")] {
        deliver_processed(&app, "workflow_run", &in_progress(id, "2026-11-02T08:51:00Z")).await;
        deliver_processed(&app, "workflow_run", &completed(id, conclusion, "2026-11-02T08:52:10Z")).await;

        let d = deploy_of_run(&app, id).await;
        assert_eq!(d["status"], "failed", "{conclusion}");
        assert_eq!(d["completed_at"], "2026-11-02T08:52:10Z", "{conclusion}");
        assert_eq!(d["duration_seconds"], 120, "{conclusion}");
        assert_eq!(states(&d), ["in_progress", conclusion]);
        assert_eq!(d["statuses"][1]["status"], "failed");
    }
    assert_eq!(app.count_rows("job").await, 0, "nothing went live");
}

#[tokio::test]
async fn other_conclusions_are_kept_in_the_history_and_change_nothing() {
    let app = app_with_rule().await;

    for (id, conclusion) in [
        (1, "cancelled"),
        (2, "skipped"),
        (3, "action_required"),
        (4, "neutral"),
        (5, "stale"),
    ] {
        deliver_processed(&app, "workflow_run", &in_progress(id, "2026-11-02T08:51:00Z")).await;
        deliver_processed(&app, "workflow_run", &completed(id, conclusion, "2026-11-02T08:52:00Z")).await;

        let d = deploy_of_run(&app, id).await;
        assert_eq!(d["status"], "building", "{conclusion}");
        assert_eq!(d["completed_at"], Value::Null, "{conclusion}");
        assert_eq!(states(&d), ["in_progress", conclusion]);
        assert_eq!(d["statuses"][1]["status"], Value::Null, "{conclusion}");
    }
    assert_eq!(app.count_rows("job").await, 0);
}

#[tokio::test]
async fn a_requested_run_that_waits_for_approval_is_recorded_without_a_status() {
    let app = app_with_rule().await;
    // GitHub's example as it is (a `requested` delivery of a completed run that needs approval),
    // moved to the installed repository.
    let mut payload = fixture("workflow_run.requested.with-conclusion");
    let moved = run_event(RUN, "requested", "completed", Some("action_required"), CREATED_AT);
    payload["installation"] = moved["installation"].clone();
    payload["repository"] = moved["repository"].clone();
    payload["workflow"] = moved["workflow"].clone();
    for field in [
        "repository",
        "head_repository",
        "path",
        "id",
        "html_url",
        "created_at",
        "run_started_at",
        "updated_at",
    ] {
        payload["workflow_run"][field] = moved["workflow_run"][field].clone();
    }
    assert_eq!(payload["action"], "requested");
    assert_eq!(payload["workflow_run"]["status"], "completed");

    deliver_processed(&app, "workflow_run", &payload).await;

    let d = only_deploy(&app).await;
    assert_eq!(d["status"], "initiated");
    assert_eq!(d["completed_at"], Value::Null);
    assert_eq!(states(&d), ["action_required"]);
    assert_eq!(d["statuses"][0]["status"], Value::Null);
    assert_eq!(d["sha"], payload["workflow_run"]["head_sha"]);
    assert_eq!(app.count_rows("job").await, 0);
}

#[tokio::test]
async fn a_run_deploy_carries_the_runs_fields() {
    let app = app_with_rule().await;
    let mut payload = completed(RUN, "success", "2026-11-02T08:55:00Z");
    set(&mut payload, "/workflow_run/actor/login", json!("alice"));
    set(&mut payload, "/workflow_run/triggering_actor/login", json!("bob"));
    set(&mut payload, "/workflow_run/display_title", json!("Release 2.4"));
    set(&mut payload, "/workflow_run/run_number", json!(163));
    // The same run by someone else, no title: the actor and the run number.
    let mut untitled = completed(RUN + 1, "failure", "2026-11-02T08:56:00Z");
    set(&mut untitled, "/workflow_run/actor/login", json!("carol"));
    set(&mut untitled, "/workflow_run/triggering_actor", Value::Null);
    set(&mut untitled, "/workflow_run/display_title", json!(""));
    set(&mut untitled, "/workflow_run/run_number", json!(164));

    deliver_processed(&app, "workflow_run", &payload).await;
    deliver_processed(&app, "workflow_run", &untitled).await;

    let d = deploy_of_run(&app, RUN).await;
    assert_eq!(d["source"], "actions");
    assert_eq!(d["repository"], REPO);
    assert_eq!(d["environment"], "production");
    assert_eq!(d["sha"], SHA_A);
    assert_eq!(d["ref"], "master", "head_branch");
    assert_eq!(
        d["log_url"],
        format!("https://github.com/{REPO}/actions/runs/{RUN}"),
        "html_url"
    );
    assert_eq!(d["creator"], "bob", "triggering_actor");
    assert_eq!(d["deploy_time"], STARTED_AT, "run_started_at");
    assert_eq!(d["version"], "Release 2.4", "display_title");
    assert_eq!(d["external_id"], RUN.to_string());
    assert_eq!(d["github_run_id"], RUN);
    assert_eq!(d["run_attempt"], 1);
    assert_eq!(d["github_deployment_id"], Value::Null);
    assert_eq!(d["backfilled"], false);
    assert_eq!(d["description"], "Deploy web run #163");
    assert_eq!(d["statuses"][0]["creator"], "bob");
    assert_eq!(d["statuses"][0]["created_at"], "2026-11-02T08:55:00Z");

    let other = deploy_of_run(&app, RUN + 1).await;
    assert_eq!(other["creator"], "carol", "actor, without a triggering_actor");
    assert_eq!(other["version"], "#164", "the run number, without a title");
    assert_eq!(other["external_id"], (RUN + 1).to_string());
    app.run_jobs().await;
}

#[tokio::test]
async fn a_run_without_a_start_time_starts_at_its_creation() {
    let app = app_with_rule().await;
    let mut payload = run_event(RUN, "requested", "queued", None, CREATED_AT);
    set(&mut payload, "/workflow_run/run_started_at", Value::Null);

    deliver_processed(&app, "workflow_run", &payload).await;

    let d = only_deploy(&app).await;
    assert_eq!(d["deploy_time"], CREATED_AT);
    assert_eq!(d["status"], "initiated");
}

#[tokio::test]
async fn a_completed_run_delivered_before_its_in_progress_stays_live() {
    let app = app_with_rule().await;

    deliver_processed(&app, "workflow_run", &completed(RUN, "success", "2026-11-02T08:55:00Z")).await;
    deliver_processed(&app, "workflow_run", &in_progress(RUN, "2026-11-02T08:51:00Z")).await;
    deliver_processed(
        &app,
        "workflow_run",
        &run_event(RUN, "requested", "queued", None, CREATED_AT),
    )
    .await;

    let d = only_deploy(&app).await;
    assert_eq!(d["status"], "live");
    assert_eq!(d["completed_at"], "2026-11-02T08:55:00Z");
    assert_eq!(states(&d).len(), 3, "every report is in the history: {d}");
    assert_eq!(went_live_jobs(&app).await, 1);
    app.run_jobs().await;
}

#[tokio::test]
async fn a_redelivered_run_event_is_a_duplicate_and_changes_nothing() {
    let app = app_with_rule().await;
    let payload = completed(RUN, "success", "2026-11-02T08:55:00Z");
    let delivery = uuid::Uuid::new_v4().to_string();

    let first = app
        .send_webhook(WebhookRequest::signed("workflow_run", &payload).with_delivery(&delivery))
        .await;
    let (first_status, first) = status_and_json(first).await;
    let again = app
        .send_webhook(WebhookRequest::signed("workflow_run", &payload).with_delivery(&delivery))
        .await;
    let (again_status, again) = status_and_json(again).await;
    // The same event under a new delivery id (sent twice, or read again from the run's history):
    // nothing new.
    deliver_processed(&app, "workflow_run", &payload).await;

    assert_eq!((first_status, again_status), (200, 200));
    assert_eq!(first["outcome"], "processed");
    assert_eq!(again["outcome"], "duplicate", "{again}");
    let d = only_deploy(&app).await;
    assert_eq!(d["status"], "live");
    assert_eq!(states(&d), ["success"], "the report once in the history");
    assert_eq!(went_live_jobs(&app).await, 1);
    app.run_jobs().await;
}

#[tokio::test]
async fn a_second_run_going_live_supersedes_the_first() {
    let app = app_with_rule().await;
    let mut second = completed(RUN + 1, "success", "2026-11-02T08:58:00Z");
    set(&mut second, "/workflow_run/head_sha", json!(SHA_B));

    deliver_processed(&app, "workflow_run", &completed(RUN, "success", "2026-11-02T08:55:00Z")).await;
    deliver_processed(&app, "workflow_run", &second).await;

    let first = deploy_of_run(&app, RUN).await;
    let second = deploy_of_run(&app, RUN + 1).await;
    assert_eq!(second["status"], "live");
    assert_eq!(second["sha"], SHA_B);
    assert_eq!(first["status"], "superseded");
    assert_eq!(first["superseded_by_id"], second["id"]);
    assert_eq!(went_live_jobs(&app).await, 2);
    app.run_jobs().await;
}

#[tokio::test]
async fn a_rerun_after_a_failure_moves_the_same_deploy_to_building_then_live() {
    let app = app_with_rule().await;
    let second_start = "2026-11-02T08:58:00Z";

    deliver_processed(&app, "workflow_run", &in_progress(RUN, "2026-11-02T08:51:00Z")).await;
    deliver_processed(&app, "workflow_run", &completed(RUN, "failure", "2026-11-02T08:53:00Z")).await;
    let failed = only_deploy(&app).await;
    deliver_processed(
        &app,
        "workflow_run",
        &attempt(in_progress(RUN, "2026-11-02T08:58:05Z"), 2, second_start),
    )
    .await;
    let building = only_deploy(&app).await;
    deliver_processed(
        &app,
        "workflow_run",
        &attempt(completed(RUN, "success", "2026-11-02T09:01:00Z"), 2, second_start),
    )
    .await;
    let live = only_deploy(&app).await;

    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["run_attempt"], 1);
    assert_eq!(building["id"], failed["id"], "the same deploy");
    assert_eq!(building["status"], "building");
    assert_eq!(building["run_attempt"], 2);
    assert_eq!(building["completed_at"], Value::Null, "the rollout is under way again");
    assert_eq!(building["duration_seconds"], Value::Null);
    assert_eq!(live["id"], failed["id"]);
    assert_eq!(live["status"], "live");
    assert_eq!(live["completed_at"], "2026-11-02T09:01:00Z");
    assert_eq!(states(&live), ["in_progress", "failure", "in_progress", "success"]);
    let described: Vec<&str> = live["statuses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["description"].as_str().unwrap())
        .collect();
    assert!(described[2].ends_with("attempt 2: in_progress"), "{described:?}");
    assert_eq!(went_live_jobs(&app).await, 1);
    app.run_jobs().await;
}

#[tokio::test]
async fn a_failed_rerun_of_a_live_run_leaves_it_live_with_the_failure_in_its_history() {
    let app = app_with_rule().await;
    let second_start = "2026-11-02T08:58:00Z";

    deliver_processed(&app, "workflow_run", &completed(RUN, "success", "2026-11-02T08:55:00Z")).await;
    deliver_processed(
        &app,
        "workflow_run",
        &attempt(in_progress(RUN, "2026-11-02T08:58:05Z"), 2, second_start),
    )
    .await;
    deliver_processed(
        &app,
        "workflow_run",
        &attempt(completed(RUN, "failure", "2026-11-02T08:59:00Z"), 2, second_start),
    )
    .await;

    let d = only_deploy(&app).await;
    assert_eq!(d["status"], "live");
    assert_eq!(d["completed_at"], "2026-11-02T08:55:00Z");
    assert_eq!(states(&d), ["success", "in_progress", "failure"]);
    assert_eq!(went_live_jobs(&app).await, 1);
    app.run_jobs().await;
}

#[tokio::test]
async fn a_run_then_the_deployment_it_made_is_one_deploy_gone_live_once() {
    let app = app_with_rule().await;
    let deployment = run_deployment(RUN, "production");

    deliver_processed(&app, "workflow_run", &in_progress(RUN, "2026-11-02T08:51:00Z")).await;
    deliver_processed(&app, "workflow_run", &completed(RUN, "success", "2026-11-02T08:55:00Z")).await;
    deliver_processed(&app, "deployment", &deployment).await;
    deliver_processed(
        &app,
        "deployment_status",
        &run_deployment_status(11, "in_progress", "2026-11-02T08:52:00Z", &deployment),
    )
    .await;
    // The deployment's success arrives after the run's, and says so later; it knows where the
    // deploy can be seen, which the run does not.
    let mut success = run_deployment_status(12, "success", "2026-11-02T08:55:30Z", &deployment);
    set(
        &mut success,
        "/deployment_status/environment_url",
        json!("https://web-app.example"),
    );
    deliver_processed(&app, "deployment_status", &success).await;

    let d = only_deploy(&app).await;
    assert_eq!(d["status"], "live");
    assert_eq!(d["github_run_id"], RUN);
    assert_eq!(d["github_deployment_id"], 1900000001_i64);
    assert_eq!(d["environment_url"], "https://web-app.example");
    assert_eq!(d["source"], "actions");
    assert_eq!(d["completed_at"], "2026-11-02T08:55:00Z");
    // The history is in time order: both sources' reports, each once.
    assert_eq!(states(&d), ["in_progress", "in_progress", "success", "success"]);
    assert_eq!(went_live_jobs(&app).await, 1, "one deploy went live once");
    app.run_jobs().await;
}

#[tokio::test]
async fn the_deployment_a_run_made_then_the_run_is_one_deploy_gone_live_once() {
    let app = app_with_rule().await;
    let deployment = run_deployment(RUN, "production");

    deliver_processed(&app, "deployment", &deployment).await;
    deliver_processed(
        &app,
        "deployment_status",
        &run_deployment_status(11, "in_progress", "2026-11-02T09:10:30Z", &deployment),
    )
    .await;
    deliver_processed(
        &app,
        "deployment_status",
        &run_deployment_status(12, "success", "2026-11-02T09:12:00Z", &deployment),
    )
    .await;
    let mut started = in_progress(RUN, "2026-11-02T09:10:10Z");
    set(
        &mut started,
        "/workflow_run/run_started_at",
        json!("2026-11-02T09:10:00Z"),
    );
    let mut done = completed(RUN, "success", "2026-11-02T09:12:30Z");
    set(&mut done, "/workflow_run/run_started_at", json!("2026-11-02T09:10:00Z"));
    deliver_processed(&app, "workflow_run", &started).await;
    deliver_processed(&app, "workflow_run", &done).await;

    let d = only_deploy(&app).await;
    assert_eq!(d["status"], "live");
    assert_eq!(d["github_deployment_id"], 1900000001_i64);
    assert_eq!(d["github_run_id"], RUN);
    assert_eq!(d["run_attempt"], 1);
    assert_eq!(d["completed_at"], "2026-11-02T09:12:00Z");
    assert_eq!(states(&d), ["in_progress", "in_progress", "success", "success"]);
    assert_eq!(went_live_jobs(&app).await, 1, "one deploy went live once");
    app.run_jobs().await;
}

/// The deployment attempt 2 of the run makes: a new GitHub deployment, the same run.
fn rerun_deployment(run_id: i64, environment: &str, created_at: &str) -> Value {
    let mut payload = run_deployment(run_id, environment);
    set(&mut payload, "/deployment/id", json!(1900000002_i64));
    set(&mut payload, "/deployment/created_at", json!(created_at));
    set(&mut payload, "/deployment/updated_at", json!(created_at));
    set(&mut payload, "/workflow_run/run_attempt", json!(2));
    payload
}

#[tokio::test]
async fn a_failed_rerun_reported_through_its_new_deployment_leaves_the_deploy_live() {
    let app = app_with_rule().await;
    let first = run_deployment(RUN, "production");
    let second = rerun_deployment(RUN, "production", "2026-11-02T08:58:10Z");
    let second_start = "2026-11-02T08:58:00Z";

    deliver_processed(&app, "workflow_run", &in_progress(RUN, "2026-11-02T08:51:00Z")).await;
    deliver_processed(&app, "deployment", &first).await;
    deliver_processed(
        &app,
        "deployment_status",
        &run_deployment_status(11, "success", "2026-11-02T08:54:00Z", &first),
    )
    .await;
    deliver_processed(&app, "workflow_run", &completed(RUN, "success", "2026-11-02T08:55:00Z")).await;
    // Attempt 2: the run again, and a new deployment that starts and fails.
    deliver_processed(
        &app,
        "workflow_run",
        &attempt(in_progress(RUN, "2026-11-02T08:58:05Z"), 2, second_start),
    )
    .await;
    deliver_processed(&app, "deployment", &second).await;
    deliver_processed(
        &app,
        "deployment_status",
        &run_deployment_status(21, "in_progress", "2026-11-02T08:58:20Z", &second),
    )
    .await;
    let during = only_deploy(&app).await;
    deliver_processed(
        &app,
        "deployment_status",
        &run_deployment_status(22, "failure", "2026-11-02T08:59:00Z", &second),
    )
    .await;
    deliver_processed(
        &app,
        "workflow_run",
        &attempt(completed(RUN, "failure", "2026-11-02T08:59:10Z"), 2, second_start),
    )
    .await;

    let d = only_deploy(&app).await;
    assert_eq!(
        during["status"], "live",
        "a re-run that is under way: the code is still there"
    );
    assert_eq!(d["status"], "live");
    assert_eq!(d["completed_at"], "2026-11-02T08:54:00Z");
    assert_eq!(d["github_deployment_id"], 1900000001_i64, "the first link stays");
    assert_eq!(
        states(&d),
        [
            "in_progress",
            "success",
            "success",
            "in_progress",
            "in_progress",
            "failure",
            "failure"
        ]
    );
    assert_eq!(went_live_jobs(&app).await, 1);
    app.run_jobs().await;
}

#[tokio::test]
async fn a_rerun_that_succeeds_again_keeps_one_live_deploy_when_github_marks_the_first_deployment_inactive() {
    let app = installed_app().await;
    set_rules(
        &app,
        json!([{"repository": REPO, "workflow": "deploy.yml", "environment": "staging"}]),
    )
    .await;
    let first = run_deployment(RUN, "staging");
    let second = rerun_deployment(RUN, "staging", "2026-11-02T08:58:10Z");
    let second_start = "2026-11-02T08:58:00Z";

    deliver_processed(&app, "workflow_run", &completed(RUN, "success", "2026-11-02T08:55:00Z")).await;
    deliver_processed(&app, "deployment", &first).await;
    deliver_processed(
        &app,
        "deployment_status",
        &run_deployment_status(11, "success", "2026-11-02T08:54:00Z", &first),
    )
    .await;
    deliver_processed(&app, "deployment", &second).await;
    deliver_processed(
        &app,
        "deployment_status",
        &run_deployment_status(21, "success", "2026-11-02T08:59:00Z", &second),
    )
    .await;
    // GitHub's auto_inactive: the earlier deployment of a non-production environment.
    deliver_processed(
        &app,
        "deployment_status",
        &run_deployment_status(12, "inactive", "2026-11-02T08:59:00Z", &first),
    )
    .await;
    deliver_processed(
        &app,
        "workflow_run",
        &attempt(completed(RUN, "success", "2026-11-02T08:59:10Z"), 2, second_start),
    )
    .await;

    let d = only_deploy(&app).await;
    assert_eq!(d["status"], "live", "{d}");
    assert_eq!(d["superseded_by_id"], Value::Null);
    assert_eq!(states(&d).last().map(String::as_str), Some("success"));
    assert!(states(&d).contains(&"inactive".to_owned()));
    assert_eq!(went_live_jobs(&app).await, 1);
    app.run_jobs().await;
}

#[tokio::test]
async fn a_deployment_of_the_run_to_another_environment_is_its_own_deploy() {
    let app = app_with_rule().await;
    let staging = run_deployment(RUN, "staging");

    deliver_processed(&app, "workflow_run", &in_progress(RUN, "2026-11-02T08:51:00Z")).await;
    deliver_processed(&app, "deployment", &staging).await;

    let list = deploys(&app).await;
    assert_eq!(list.len(), 2, "{list:?}");
    let staging = list.iter().find(|d| d["environment"] == "staging").unwrap();
    assert_eq!(staging["source"], "github");
    assert_eq!(staging["github_run_id"], RUN);
}

#[tokio::test]
async fn bad_workflow_rules_are_refused_naming_the_field_and_nothing_changes() {
    let app = app_with_rule().await;
    let too_many: Vec<Value> = (0..51)
        .map(
            |i| json!({"repository": format!("acme-corp/r{i}"), "workflow": "deploy.yml", "environment": "production"}),
        )
        .collect();
    let cases = [
        (
            json!([{"repository": REPO, "workflow": "deploy.yml"}]),
            "workflow_rules[0].environment",
        ),
        (
            json!([{"repository": REPO, "workflow": "deploy.yml", "environment": ""}]),
            "workflow_rules[0].environment",
        ),
        (
            json!([production_rule(), {"repository": REPO, "workflow": "deploy.yml", "environment": "p", "colour": "red"}]),
            "workflow_rules[1].colour",
        ),
        (
            json!([{"repository": "acme-corp/[web", "workflow": "deploy.yml", "environment": "p"}]),
            "workflow_rules[0].repository",
        ),
        (
            json!([{"repository": REPO, "workflow": 7, "environment": "p"}]),
            "workflow_rules[0].workflow",
        ),
        (
            json!([{"repository": REPO, "workflow": "deploy.yml", "branch": "main\u{0}", "environment": "p"}]),
            "workflow_rules[0].branch",
        ),
        (json!(too_many), "workflow_rules"),
        (json!("deploy.yml"), "workflow_rules"),
        (json!(["deploy.yml"]), "workflow_rules[0]"),
    ];
    let before = connection_rules(&app).await;

    for (rules, field) in cases {
        let (status, body) = patch_settings(
            &app,
            &json!({"workflow_rules": rules, "auto_create_deployments": false}),
        )
        .await;

        assert_eq!(status, 422, "{field}: {body}");
        let fields: Vec<&str> = body["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["field"].as_str().unwrap())
            .collect();
        assert_eq!(fields, [field], "{body}");
        assert_eq!(connection_rules(&app).await, before, "{field}");
        let (_, connection) = app.admin_get("/api/connections/1").await;
        assert_eq!(connection["settings"]["auto_create_deployments"], true, "{field}");
    }
    let mut stored = production_rule();
    stored["branch"] = Value::Null;
    assert_eq!(before, json!([stored]), "no branch: the default branch");
}

#[tokio::test]
async fn workflow_rules_are_replaced_and_cleared_by_a_patch() {
    let app = app_with_rule().await;
    let branch_rule =
        json!({"repository": "acme-corp/*", "workflow": "Deploy*", "branch": "release/*", "environment": "staging"});

    set_rules(&app, json!([branch_rule.clone()])).await;
    let replaced = connection_rules(&app).await;
    set_rules(&app, json!([])).await;
    let (outcome, reason) = deliver(&app, "workflow_run", &completed(RUN, "success", "2026-11-02T08:55:00Z")).await;

    assert_eq!(replaced, json!([branch_rule]));
    assert_eq!(connection_rules(&app).await, json!([]));
    assert_eq!(outcome, "skipped", "{reason}");
    assert_eq!(app.count_rows("deployment").await, 0);
}

#[tokio::test]
async fn a_connection_that_stopped_auto_creating_skips_a_matching_run() {
    let app = app_with_rule().await;
    let (status, body) = patch_settings(&app, &json!({"auto_create_deployments": false})).await;
    assert_eq!(status, 200, "{body}");

    let (outcome, reason) = deliver(&app, "workflow_run", &completed(RUN, "success", "2026-11-02T08:55:00Z")).await;

    assert_eq!(outcome, "skipped");
    assert!(reason.as_str().unwrap().contains("auto_create_deployments"), "{reason}");
    assert_eq!(app.count_rows("deployment").await, 0);
}

#[tokio::test]
async fn a_deployment_reported_through_the_api_with_the_run_id_is_the_runs_deploy() {
    let app = app_with_rule().await;
    let cred = crate::explicit_api::create_credential(&app, 1).await;
    let response = app
        .client
        .post(app.url("/deployments"))
        .basic_auth(&cred.username, Some(&cred.password))
        .json(&json!({
            "repository": REPO, "environment": "production", "sha": SHA_A,
            "external_id": RUN.to_string(), "status": "deploying", "deploy_time": "2026-11-02T08:50:20Z"
        }))
        .send()
        .await
        .unwrap();
    let (status, created) = status_and_json(response).await;
    assert_eq!(status, 201, "{created}");

    deliver_processed(&app, "workflow_run", &in_progress(RUN, "2026-11-02T08:51:00Z")).await;
    deliver_processed(&app, "workflow_run", &completed(RUN, "success", "2026-11-02T08:55:00Z")).await;

    let d = only_deploy(&app).await;
    assert_eq!(d["id"], created["id"]);
    assert_eq!(d["source"], "api");
    assert_eq!(d["external_id"], RUN.to_string());
    assert_eq!(d["github_run_id"], RUN);
    assert_eq!(d["status"], "live");
    assert_eq!(went_live_jobs(&app).await, 1);
    app.run_jobs().await;
}

/// The outside attack's duplicate: one run reported by a CI step (`POST /deployments` with the
/// run id) and by the GitHub deployment the run made, in both orders, is one deploy gone live once.
#[tokio::test]
async fn the_api_and_the_deployment_a_run_made_report_one_deploy_in_either_order() {
    for api_first in [true, false] {
        let app = app_with_rule().await;
        let cred = crate::explicit_api::create_credential(&app, 1).await;
        let post = || async {
            let response = app
                .client
                .post(app.url("/deployments"))
                .basic_auth(&cred.username, Some(&cred.password))
                .json(&json!({
                    "repository": REPO, "environment": "production", "sha": SHA_A,
                    "external_id": RUN.to_string(), "status": "live", "deploy_time": "2026-11-02T08:50:20Z"
                }))
                .send()
                .await
                .unwrap();
            let (status, body) = status_and_json(response).await;
            assert!(status == 200 || status == 201, "{status} {body}");
        };
        let deployment = run_deployment(RUN, "production");
        if api_first {
            post().await;
        }
        deliver_processed(&app, "deployment", &deployment).await;
        deliver_processed(
            &app,
            "deployment_status",
            &run_deployment_status(21, "success", "2026-11-02T08:56:00Z", &deployment),
        )
        .await;
        if !api_first {
            post().await;
        }
        deliver_processed(&app, "workflow_run", &completed(RUN, "success", "2026-11-02T08:57:00Z")).await;

        let d = only_deploy(&app).await;
        assert_eq!(d["status"], "live", "api first: {api_first}: {d}");
        assert_eq!(d["github_run_id"], RUN);
        assert!(d["github_deployment_id"].is_i64(), "{d}");
        assert_eq!(went_live_jobs(&app).await, 1, "api first: {api_first}");
        app.run_jobs().await;
    }
}

#[tokio::test]
async fn a_post_deploy_trigger_fires_for_a_run_that_goes_live() {
    let repo = GitRepo::new();
    repo.commit("base");
    let sha = repo.commit("the fix");
    let fake = FakeGitHub::start().await;
    fake.add_repo(REPO, &repo);
    let agent = FakeAgent::start().await;
    let (url, agent_config) = (fake.url.clone(), agent.config());
    let app = spawn_app_with(move |config| {
        config.github_api_url = url;
        config.github_app = Some(GitHubAppCredentials {
            app_id: APP_ID,
            private_key_pem: Secret::new(private_key_pem()),
        });
        config.agent = Some(agent_config);
    })
    .await;
    assert_eq!(
        app.deliver("installation", &fixture("installation.created")).await.0,
        200
    );
    set_rules(&app, json!([production_rule()])).await;
    let response = app
        .client
        .post(app.url("/api/triggers"))
        .bearer_auth(ADMIN_TOKEN)
        .json(
            &json!({"repository": REPO, "environment": "production", "sha": sha, "delay_seconds": 60,
                      "message": "run the smoke suite"}),
        )
        .send()
        .await
        .unwrap();
    let (status, trigger) = status_and_json(response).await;
    assert_eq!(status, 201, "{trigger}");
    app.clock.advance(chrono::Duration::minutes(1));
    let mut done = completed(RUN, "success", "2026-11-02T09:01:30Z");
    set(&mut done, "/workflow_run/head_sha", json!(sha));
    set(&mut done, "/workflow_run/run_started_at", json!("2026-11-02T09:00:30Z"));

    deliver_processed(&app, "workflow_run", &done).await;
    app.run_jobs().await;
    let scheduled = app.admin_get(&format!("/api/triggers/{}", trigger["id"])).await.1;
    app.clock.advance(chrono::Duration::minutes(5));
    app.run_jobs().await;

    let d = only_deploy(&app).await;
    assert_eq!(d["status"], "live");
    assert_eq!(scheduled["state"], "scheduled", "{scheduled}");
    assert_eq!(scheduled["matched_deployment_id"], d["id"]);
    let received = agent.received();
    assert_eq!(received.len(), 1, "fired once: {received:?}");
    assert_eq!(received[0].event, "trigger.fired");
    assert_eq!(received[0].body["deployment"]["id"], d["id"]);
    assert_eq!(received[0].body["deployment"]["source"], "actions");
    assert_eq!(agent.bad_signatures(), 0);
    let fired = app.admin_get(&format!("/api/triggers/{}", trigger["id"])).await.1;
    assert_eq!(fired["state"], "fired");
}

#[tokio::test]
async fn a_ci_step_reporting_the_run_id_after_the_run_moves_the_runs_deploy() {
    let app = app_with_rule().await;
    let cred = crate::explicit_api::create_credential(&app, 1).await;
    deliver_processed(&app, "workflow_run", &in_progress(RUN, "2026-11-02T08:51:00Z")).await;

    let response = app
        .client
        .post(app.url("/deployments"))
        .basic_auth(&cred.username, Some(&cred.password))
        .json(&json!({
            "repository": REPO, "environment": "production", "sha": SHA_A,
            "external_id": RUN.to_string(), "status": "live"
        }))
        .send()
        .await
        .unwrap();
    let (status, reported) = status_and_json(response).await;
    deliver_processed(&app, "workflow_run", &completed(RUN, "success", "2026-11-02T08:55:00Z")).await;

    assert!(status == 200 || status == 201, "{status}: {reported}");
    let d = only_deploy(&app).await;
    assert_eq!(reported["id"], d["id"]);
    assert_eq!(d["source"], "actions");
    assert_eq!(d["status"], "live");
    assert_eq!(went_live_jobs(&app).await, 1);
    app.run_jobs().await;
}
