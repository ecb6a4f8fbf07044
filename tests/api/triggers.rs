//! Post-deploy triggers: matching through the ancestry batch, the delay, exactly one signed call
//! to the agent, rollbacks, retries, restarts and replicas.

use serde_json::{json, Value};
use shiplog::config::{GitHubAppCredentials, Secret};

use crate::fake_agent::FakeAgent;
use crate::fake_github::{private_key_pem, FakeGitHub, APP_ID};
use crate::git::GitRepo;
use crate::helpers::{fixture, spawn_app_on, spawn_app_with, status_and_json, TestApp, ADMIN_TOKEN};

const REPO: &str = "acme-corp/web-app";

fn configure(fake: &FakeGitHub, agent: &FakeAgent) -> impl FnOnce(&mut shiplog::config::Config) {
    let (url, agent) = (fake.url.clone(), agent.config());
    move |config| {
        config.github_api_url = url;
        config.github_app = Some(GitHubAppCredentials {
            app_id: APP_ID,
            private_key_pem: Secret::new(private_key_pem()),
        });
        config.agent = Some(agent);
    }
}

async fn setup(repo: &GitRepo) -> (FakeGitHub, FakeAgent, TestApp) {
    let fake = FakeGitHub::start().await;
    fake.add_repo(REPO, repo);
    let agent = FakeAgent::start().await;
    let app = spawn_app_with(configure(&fake, &agent)).await;
    assert_eq!(
        app.deliver("installation", &fixture("installation.created")).await.0,
        200
    );
    (fake, agent, app)
}

async fn create_trigger(app: &TestApp, body: Value) -> (u16, Value) {
    let response = app
        .client
        .post(app.url("/api/triggers"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    status_and_json(response).await
}

async fn trigger(app: &TestApp, id: &Value) -> Value {
    app.admin_get(&format!("/api/triggers/{id}")).await.1
}

#[tokio::test]
async fn a_deploy_of_the_exact_sha_fires_the_agent_once_after_the_delay() {
    let repo = GitRepo::new();
    let sha = repo.commit("the fix");
    let (_fake, agent, app) = setup(&repo).await;
    let (status, created) = create_trigger(
        &app,
        json!({"repository": REPO, "environment": "production", "sha": &sha[..10], "delay_seconds": 300, "message": "run the smoke suite"}),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(
        (created["state"].as_str(), created["sha"].as_str()),
        (Some("watching"), Some(sha.as_str()))
    );

    let deploy_id = app.live_deploy(REPO, &sha, "production").await;
    app.run_jobs().await;
    let scheduled = trigger(&app, &created["id"]).await;
    app.clock.advance(chrono::Duration::seconds(299));
    app.run_jobs().await;
    let before_delay = agent.received().len();
    app.clock.advance(chrono::Duration::seconds(2));
    app.run_jobs().await;
    app.live_deploy(REPO, &sha, "production").await;
    app.clock.advance(chrono::Duration::hours(1));
    app.run_jobs().await;

    assert_eq!(scheduled["state"], "scheduled");
    assert_eq!(scheduled["matched_deployment_id"], deploy_id);
    assert_eq!(before_delay, 0, "not before the delay");
    let received = agent.received();
    assert_eq!(received.len(), 1, "fired once: {received:?}");
    assert_eq!(received[0].event, "trigger.fired");
    assert_eq!(received[0].body["message"], "run the smoke suite");
    assert_eq!(received[0].body["deployment"]["id"], deploy_id);
    assert_eq!(received[0].body["trigger"]["id"], created["id"]);
    assert_eq!(agent.bad_signatures(), 0);
    let fired = trigger(&app, &created["id"]).await;
    assert_eq!(fired["state"], "fired");
    assert_eq!(fired["attempts"].as_array().unwrap().len(), 1);
    assert_eq!(fired["attempts"][0]["status_code"], 200);
}

#[tokio::test]
async fn only_a_descendant_in_the_triggers_environment_matches() {
    let repo = GitRepo::new();
    let base = repo.commit("base");
    let watched = repo.commit("watched");
    let descendant = repo.commit("later");
    repo.checkout(&base);
    repo.branch("elsewhere");
    let unrelated = repo.commit("another line of work");
    let (_fake, agent, app) = setup(&repo).await;
    let (_, production) = create_trigger(
        &app,
        json!({"repository": REPO, "environment": "production", "sha": watched}),
    )
    .await;
    let (_, staging) = create_trigger(
        &app,
        json!({"repository": REPO, "environment": "staging", "sha": watched}),
    )
    .await;

    app.live_deploy(REPO, &unrelated, "production").await;
    app.run_jobs().await;
    let after_unrelated = trigger(&app, &production["id"]).await;
    app.live_deploy(REPO, &descendant, "production").await;
    app.run_jobs().await;

    assert_eq!(
        after_unrelated["state"], "watching",
        "a commit that does not contain the sha"
    );
    assert_eq!(trigger(&app, &production["id"]).await["state"], "fired");
    assert_eq!(
        trigger(&app, &staging["id"]).await["state"],
        "watching",
        "another environment"
    );
    assert_eq!(agent.received().len(), 1);
}

#[tokio::test]
async fn a_deploy_recorded_before_the_trigger_does_not_match() {
    let repo = GitRepo::new();
    let sha = repo.commit("shipped");
    let (_fake, agent, app) = setup(&repo).await;
    app.live_deploy(REPO, &sha, "production").await;
    app.clock.advance(chrono::Duration::minutes(1));

    let (_, created) = create_trigger(
        &app,
        json!({"repository": REPO, "environment": "production", "sha": sha}),
    )
    .await;
    app.run_jobs().await;

    assert_eq!(trigger(&app, &created["id"]).await["state"], "watching");
    assert!(agent.received().is_empty());
}

#[tokio::test]
async fn a_rollback_before_the_delay_cancels_the_fire_and_returns_to_watching() {
    let repo = GitRepo::new();
    let good = repo.commit("good");
    let risky = repo.commit("risky");
    let (_fake, agent, app) = setup(&repo).await;
    app.live_deploy(REPO, &good, "production").await;
    app.run_jobs().await;
    let (_, created) = create_trigger(
        &app,
        json!({"repository": REPO, "environment": "production", "sha": risky, "delay_seconds": 3600}),
    )
    .await;
    app.live_deploy(REPO, &risky, "production").await;
    app.run_jobs().await;
    let scheduled = trigger(&app, &created["id"]).await;

    app.live_deploy(REPO, &good, "production").await;
    app.run_jobs().await;
    app.clock.advance(chrono::Duration::hours(2));
    app.run_jobs().await;

    assert_eq!(scheduled["state"], "scheduled");
    let after = trigger(&app, &created["id"]).await;
    assert_eq!(after["state"], "watching", "{after}");
    assert_eq!(after["matched_deployment_id"], Value::Null);
    assert!(agent.received().is_empty(), "the pending fire was cancelled");
}

#[tokio::test]
async fn a_failing_agent_is_retried_and_every_attempt_is_logged() {
    let repo = GitRepo::new();
    let sha = repo.commit("feature");
    let (_fake, agent, app) = setup(&repo).await;
    let (_, created) = create_trigger(
        &app,
        json!({"repository": REPO, "environment": "production", "sha": sha}),
    )
    .await;
    agent.fail_next(2);

    app.live_deploy(REPO, &sha, "production").await;
    app.run_jobs().await;
    for _ in 0..2 {
        app.clock.advance(chrono::Duration::minutes(10));
        app.run_jobs().await;
    }

    let fired = trigger(&app, &created["id"]).await;
    assert_eq!(fired["state"], "fired", "{fired}");
    let codes: Vec<i64> = fired["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["status_code"].as_i64().unwrap())
        .collect();
    assert_eq!(codes, vec![500, 500, 200]);
    assert_eq!(agent.received().len(), 1);
    let deliveries: Vec<String> = agent.received().iter().map(|r| r.delivery.clone()).collect();
    assert_eq!(deliveries[0].len(), 36, "a UUID-shaped delivery id");
}

#[tokio::test]
async fn a_fire_that_came_due_while_the_server_was_down_happens_once_after_restart() {
    let repo = GitRepo::new();
    let sha = repo.commit("feature");
    let (fake, agent, app) = setup(&repo).await;
    let (_, created) = create_trigger(
        &app,
        json!({"repository": REPO, "environment": "production", "sha": sha, "delay_seconds": 600}),
    )
    .await;
    app.live_deploy(REPO, &sha, "production").await;
    app.run_jobs().await;
    let database = app.database.clone();
    let now = shiplog::clock::Clock::now(app.clock.as_ref());
    // The restarted server runs the fire.
    app.allow_jobs(&["trigger.fire"]);
    drop(app);

    let restarted = spawn_app_on(database, configure(&fake, &agent), Vec::new()).await;
    restarted.clock.set(now + chrono::Duration::hours(3));
    restarted.run_jobs().await;
    restarted.run_jobs().await;

    assert_eq!(agent.received().len(), 1);
    assert_eq!(trigger(&restarted, &created["id"]).await["state"], "fired");
}

#[tokio::test]
async fn two_replicas_on_one_database_fire_each_trigger_exactly_once() {
    let repo = GitRepo::new();
    let sha = repo.commit("feature");
    let (fake, agent, first) = setup(&repo).await;
    for n in 0..12 {
        let (status, _) = create_trigger(
            &first,
            json!({"repository": REPO, "environment": "production", "sha": sha, "message": format!("t{n}")}),
        )
        .await;
        assert_eq!(status, 201);
    }
    first.live_deploy(REPO, &sha, "production").await;
    let second = spawn_app_on(first.database.clone(), configure(&fake, &agent), Vec::new()).await;
    second.clock.set(shiplog::clock::Clock::now(first.clock.as_ref()));

    let (a, b) = tokio::join!(
        shiplog::jobs::runner::run_until_idle(&first.runner, "replica-a", 100),
        shiplog::jobs::runner::run_until_idle(&second.runner, "replica-b", 100)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    first.run_jobs().await;

    let received = agent.received();
    let mut messages: Vec<String> = received
        .iter()
        .map(|r| r.body["message"].as_str().unwrap().to_owned())
        .collect();
    messages.sort();
    messages.dedup();
    assert_eq!(received.len(), 12, "each fired once: {messages:?}");
    assert_eq!(messages.len(), 12);
    assert!(
        a.len() + b.len() >= 13,
        "the went-live job and twelve fires ran: {a:?} {b:?}"
    );
}

#[tokio::test]
async fn invalid_triggers_are_refused_with_problem_json() {
    let repo = GitRepo::new();
    let sha = repo.commit("feature");
    let (_fake, _agent, app) = setup(&repo).await;

    let (fields_status, fields) = create_trigger(
        &app,
        json!({"repository": "nope", "environment": "", "sha": "xyz", "delay_seconds": -1, "target_url": "ftp://x", "extra": 1}),
    )
    .await;
    let (unknown_status, unknown) = create_trigger(
        &app,
        json!({"repository": REPO, "environment": "production", "sha": "0123456789abcdef0123456789abcdef01234567"}),
    )
    .await;
    let (foreign_status, _) = create_trigger(
        &app,
        json!({"repository": "globex/api", "environment": "production", "sha": sha}),
    )
    .await;
    let (_, created) = create_trigger(
        &app,
        json!({"repository": REPO, "environment": "production", "sha": sha}),
    )
    .await;
    let cancel = |id: Value| {
        app.client
            .delete(app.url(&format!("/api/triggers/{id}")))
            .bearer_auth(ADMIN_TOKEN)
            .send()
    };
    let (cancelled_status, cancelled) = status_and_json(cancel(created["id"].clone()).await.unwrap()).await;
    let (again_status, _) = status_and_json(cancel(created["id"].clone()).await.unwrap()).await;

    assert_eq!(fields_status, 422, "{fields}");
    let mut names: Vec<&str> = fields["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        vec![
            "delay_seconds",
            "environment",
            "extra",
            "repository",
            "sha",
            "target_url"
        ]
    );
    assert_eq!(unknown_status, 422, "{unknown}");
    assert_eq!(unknown["errors"][0]["field"], "sha");
    assert_eq!(foreign_status, 422);
    assert_eq!(
        (cancelled_status, cancelled["state"].as_str()),
        (200, Some("cancelled"))
    );
    assert_eq!(again_status, 409);
}

#[tokio::test]
async fn a_connection_with_its_own_agent_gets_the_call_signed_with_its_own_secret() {
    let repo = GitRepo::new();
    let sha = repo.commit("feature");
    let (_fake, global_agent, app) = setup(&repo).await;
    let own_agent = FakeAgent::start_with_secret("connection-agent-secret").await;
    let patch = |body: Value| {
        app.client
            .patch(app.url("/api/connections/1"))
            .bearer_auth(ADMIN_TOKEN)
            .json(&body)
            .send()
    };

    let (bad_status, _) = status_and_json(patch(json!({"agent_url": "not-a-url"})).await.unwrap()).await;
    let (status, connection) = status_and_json(
        patch(json!({"agent_url": own_agent.url, "agent_secret": "connection-agent-secret"}))
            .await
            .unwrap(),
    )
    .await;
    let (_, created) = create_trigger(
        &app,
        json!({"repository": REPO, "environment": "production", "sha": sha}),
    )
    .await;
    app.live_deploy(REPO, &sha, "production").await;
    app.run_jobs().await;

    assert_eq!(bad_status, 422);
    assert_eq!(status, 200, "{connection}");
    assert_eq!(connection["settings"]["agent_url"], own_agent.url.as_str());
    assert_eq!(connection["agent_secret_set"], true);
    assert!(
        !connection.to_string().contains("connection-agent-secret"),
        "the secret is never shown"
    );
    assert_eq!(trigger(&app, &created["id"]).await["state"], "fired");
    assert_eq!(own_agent.received().len(), 1);
    assert_eq!(own_agent.bad_signatures(), 0);
    assert!(global_agent.received().is_empty());
}

// Server-side request forgery (issue 12, point 3): a deploy credential chooses a trigger's
// target, so shiplog must not become its way into the network shiplog runs in.

/// A deploy credential of connection 1, as `(username, password)`.
async fn deploy_credential(app: &TestApp) -> (String, String) {
    let response = app
        .client
        .post(app.url("/api/connections/1/credentials"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    let (status, credential) = status_and_json(response).await;
    assert_eq!(status, 201, "{credential}");
    (
        credential["username"].as_str().unwrap().to_owned(),
        credential["password"].as_str().unwrap().to_owned(),
    )
}

async fn as_credential((username, password): &(String, String), request: reqwest::RequestBuilder) -> (u16, Value) {
    status_and_json(request.basic_auth(username, Some(password)).send().await.unwrap()).await
}

/// The test config, but without `SHIPLOG_OUTBOUND_ALLOW`: loopback may not be called.
fn configure_without_allow_list(fake: &FakeGitHub, agent: &FakeAgent) -> impl FnOnce(&mut shiplog::config::Config) {
    let configure = configure(fake, agent);
    move |config| {
        configure(config);
        config.outbound_allow = shiplog::outbound::AllowList::default();
    }
}

#[tokio::test]
async fn a_deploy_credential_cannot_aim_a_trigger_at_a_loopback_or_private_address() {
    let repo = GitRepo::new();
    let sha = repo.commit("feature");
    let fake = FakeGitHub::start().await;
    fake.add_repo(REPO, &repo);
    let agent = FakeAgent::start().await;
    let app = spawn_app_with(configure_without_allow_list(&fake, &agent)).await;
    app.deliver("installation", &fixture("installation.created")).await;
    let credential = deploy_credential(&app).await;
    let port = agent
        .url
        .trim_start_matches("http://127.0.0.1:")
        .trim_end_matches("/hook");
    let refused = [
        format!("http://127.0.0.1:{port}/hook"),
        format!("http://localhost:{port}/hook"),
        format!("http://[::ffff:127.0.0.1]:{port}/hook"),
        format!("http://2130706433:{port}/hook"),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        "http://10.0.0.5/hook".to_owned(),
        "http://[fd00::1]/hook".to_owned(),
        format!("gopher://127.0.0.1:{port}/hook"),
    ];

    let mut answers = Vec::new();
    for target in &refused {
        let request = app
            .client
            .post(app.url("/api/triggers"))
            .json(&json!({"repository": REPO, "environment": "production", "sha": sha, "target_url": target}));
        answers.push((target, as_credential(&credential, request).await));
    }
    let public = app.client.post(app.url("/api/triggers")).json(
        &json!({"repository": REPO, "environment": "production", "sha": sha, "target_url": "https://agent.example.com/hook"}),
    );
    let (public_status, created) = as_credential(&credential, public).await;
    let (_, list) = app.admin_get("/api/triggers").await;

    for (target, (status, body)) in &answers {
        assert_eq!(*status, 422, "{target}: {body}");
        assert_eq!(body["errors"][0]["field"], "target_url", "{target}: {body}");
    }
    assert_eq!(
        public_status, 201,
        "a public name is checked when it is called: {created}"
    );
    assert_eq!(
        list["triggers"].as_array().unwrap().len(),
        1,
        "only the public one: {list}"
    );
}

#[tokio::test]
async fn a_name_that_resolves_to_loopback_is_refused_at_fire_time_and_the_target_sees_nothing() {
    let repo = GitRepo::new();
    let sha = repo.commit("feature");
    let (fake, agent, allowed) = setup(&repo).await;
    let target = agent.url.replace("127.0.0.1", "localhost");
    let (status, created) = create_trigger(
        &allowed,
        json!({"repository": REPO, "environment": "production", "sha": sha, "target_url": target}),
    )
    .await;
    assert_eq!(status, 201, "loopback is on the test allow list: {created}");
    allowed.live_deploy(REPO, &sha, "production").await;
    // The operator takes loopback off the allow list before the fire.
    let app = spawn_app_on(
        allowed.database.clone(),
        configure_without_allow_list(&fake, &agent),
        Vec::new(),
    )
    .await;
    app.clock.set(shiplog::clock::Clock::now(allowed.clock.as_ref()));

    app.run_jobs().await;
    app.clock.advance(chrono::Duration::hours(1));
    app.run_jobs().await;

    let after = trigger(&app, &created["id"]).await;
    assert!(agent.received().is_empty(), "the target was not called");
    assert_eq!(agent.bad_signatures(), 0, "not even unsigned");
    assert_eq!(after["state"], "failed", "a refusal is not retried: {after}");
    let attempts = after["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 1, "{after}");
    assert_eq!(attempts[0]["outcome"], "failed");
    assert_eq!(attempts[0]["status_code"], Value::Null);
    let error = attempts[0]["error"].as_str().unwrap();
    assert!(
        error.contains("refused") && error.contains("SHIPLOG_OUTBOUND_ALLOW"),
        "{error}"
    );
    // The refused fire is dead on purpose.
    app.allow_jobs(&["trigger.fire"]);
    allowed.allow_jobs(&["trigger.fire"]);
}

#[tokio::test]
async fn a_redirect_from_the_target_is_a_failed_attempt_and_is_not_followed() {
    let repo = GitRepo::new();
    let sha = repo.commit("feature");
    let (_fake, agent, app) = setup(&repo).await;
    let (status, created) = create_trigger(
        &app,
        json!({"repository": REPO, "environment": "production", "sha": sha, "target_url": agent.redirect_url()}),
    )
    .await;
    assert_eq!(status, 201, "{created}");

    app.live_deploy(REPO, &sha, "production").await;
    app.run_jobs().await;

    let after = trigger(&app, &created["id"]).await;
    assert_eq!(agent.redirects(), 1, "the target was called");
    assert!(agent.received().is_empty(), "its redirect was not followed");
    assert_eq!(agent.bad_signatures(), 0);
    assert_eq!(after["state"], "scheduled", "retried later: {after}");
    assert_eq!(after["attempts"][0]["status_code"], 307);
    assert_eq!(after["attempts"][0]["outcome"], "failed");
    // The failed attempt waits for its retry.
    app.allow_jobs(&["trigger.fire"]);
}

#[tokio::test]
async fn a_deploy_credential_sees_whether_each_call_was_delivered_and_only_the_admin_sees_the_answer() {
    let repo = GitRepo::new();
    let sha = repo.commit("feature");
    let (_fake, agent, app) = setup(&repo).await;
    let credential = deploy_credential(&app).await;
    let request = app
        .client
        .post(app.url("/api/triggers"))
        .json(&json!({"repository": REPO, "environment": "production", "sha": sha}));
    let (status, created) = as_credential(&credential, request).await;
    assert_eq!(status, 201, "{created}");
    agent.fail_next(1);

    app.live_deploy(REPO, &sha, "production").await;
    app.run_jobs().await;
    app.clock.advance(chrono::Duration::minutes(10));
    app.run_jobs().await;

    let path = format!("/api/triggers/{}", created["id"]);
    let (status, seen) = as_credential(&credential, app.client.get(app.url(&path))).await;
    let admin = trigger(&app, &created["id"]).await;
    assert_eq!(status, 200, "{seen}");
    assert_eq!(seen["state"], "fired");
    let outcomes: Vec<&str> = seen["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, vec!["failed", "delivered"]);
    for attempt in seen["attempts"].as_array().unwrap() {
        let mut keys: Vec<&str> = attempt.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, vec!["attempted_at", "deployment_id", "outcome"], "{seen}");
    }
    assert_eq!(admin["attempts"][0]["status_code"], 500);
    assert_eq!(admin["attempts"][0]["error"], "the agent answered 500");
    assert_eq!(admin["attempts"][0]["outcome"], "failed");
    assert_eq!(admin["attempts"][1]["status_code"], 200);
}
