//! "What is live where" under parallel writers, on both backends: 50 requests at once, several
//! rounds each. The database enforces the rules (one live deploy per environment, one deploy
//! per `external_id`); status changes are conditional and serialised per environment.

use futures_util::future::join_all;
use serde_json::{json, Value};

use crate::explicit_api::{create_credential, installed_app, Cred};
use crate::helpers::{fixture, set, spawn_app_with, status_and_json, TestApp};

const REPO: &str = "acme-corp/web-app";
const WRITERS: usize = 50;
const ROUNDS: usize = 3;

fn sha(n: usize) -> String {
    format!("{n:040x}")
}

async fn post_deploy(app: &TestApp, cred: &Cred, body: Value) -> (u16, Value) {
    let response = app
        .client
        .post(app.url("/deployments"))
        .basic_auth(&cred.username, Some(&cred.password))
        .json(&body)
        .send()
        .await
        .unwrap();
    status_and_json(response).await
}

async fn deploys(app: &TestApp, query: &str) -> Vec<Value> {
    let (status, body) = app.admin_get(&format!("/deployments?limit=200&{query}")).await;
    assert_eq!(status, 200, "{body}");
    body["deployments"].as_array().unwrap().clone()
}

fn status_event(deployment_id: i64, environment: &str, status_id: i64, state: &str, at: &str) -> Value {
    let mut event = fixture("deployment_status.created");
    set(&mut event, "/deployment/id", json!(deployment_id));
    set(&mut event, "/deployment/environment", json!(environment));
    set(&mut event, "/deployment/original_environment", json!(environment));
    set(&mut event, "/deployment_status/id", json!(status_id));
    set(&mut event, "/deployment_status/environment", json!(environment));
    set(&mut event, "/deployment_status/state", json!(state));
    set(&mut event, "/deployment_status/created_at", json!(at));
    set(&mut event, "/deployment_status/updated_at", json!(at));
    event
}

#[tokio::test]
async fn an_older_in_progress_arriving_with_the_success_never_moves_a_deploy_back() {
    let app = installed_app().await;
    for round in 0..ROUNDS {
        let pairs = WRITERS / 2;
        let base = 1_000_000 * (round as i64 + 1);
        let sends = (0..pairs).flat_map(|i| {
            let environment = format!("env-{round}-{i}");
            let deployment = base + i as i64;
            [
                status_event(
                    deployment,
                    &environment,
                    2 * deployment,
                    "in_progress",
                    "2026-11-02T09:11:00Z",
                ),
                status_event(
                    deployment,
                    &environment,
                    2 * deployment + 1,
                    "success",
                    "2026-11-02T09:12:00Z",
                ),
            ]
        });

        let answers = join_all(sends.map(|event| {
            let app = &app;
            async move { app.deliver("deployment_status", &event).await }
        }))
        .await;

        for (status, body) in &answers {
            assert_eq!(*status, 200, "{body}");
        }
        let stored = deploys(&app, "").await;
        let this_round: Vec<&Value> = stored
            .iter()
            .filter(|d| d["environment"].as_str().unwrap().starts_with(&format!("env-{round}-")))
            .collect();
        assert_eq!(this_round.len(), pairs, "round {round}");
        for deploy in this_round {
            assert_eq!(deploy["status"], "live", "round {round}: {deploy}");
        }
    }
    app.run_jobs().await;
}

#[tokio::test]
async fn many_deploys_going_live_at_once_in_one_environment_leave_exactly_the_newest_live() {
    let app = installed_app().await;
    let cred = create_credential(&app, 1).await;
    for round in 0..ROUNDS {
        let environment = format!("production-{round}");
        let bodies = (0..WRITERS).map(|i| {
            json!({
                "repository": REPO,
                "environment": environment,
                "sha": sha(round * 1000 + i),
                "deploy_time": format!("2026-11-02T08:{:02}:{:02}Z", i / 60, i % 60),
            })
        });

        let answers = join_all(bodies.map(|body| post_deploy(&app, &cred, body))).await;

        for (status, body) in &answers {
            assert_eq!(*status, 201, "{body}");
        }
        let stored = deploys(&app, &format!("environment={environment}")).await;
        assert_eq!(stored.len(), WRITERS);
        let live: Vec<&Value> = stored.iter().filter(|d| d["status"] == "live").collect();
        assert_eq!(live.len(), 1, "round {round}: {live:?}");
        assert_eq!(
            live[0]["sha"],
            sha(round * 1000 + WRITERS - 1),
            "the newest deploy is live"
        );
        let newest = live[0]["id"].clone();
        for deploy in stored.iter().filter(|d| d["id"] != newest) {
            assert_eq!(deploy["status"], "superseded", "round {round}: {deploy}");
        }
    }
    app.run_jobs().await;
}

#[tokio::test]
async fn parallel_creates_with_one_external_id_make_one_deploy() {
    let app = installed_app().await;
    let cred = create_credential(&app, 1).await;
    for round in 0..ROUNDS {
        let body = json!({
            "repository": REPO,
            "environment": "staging",
            "sha": sha(round),
            "status": "deploying",
            "external_id": format!("run-{round}"),
        });

        let answers = join_all((0..WRITERS).map(|_| post_deploy(&app, &cred, body.clone()))).await;

        let created = answers.iter().filter(|(status, _)| *status == 201).count();
        let kept = answers.iter().filter(|(status, _)| *status == 200).count();
        assert_eq!((created, kept), (1, WRITERS - 1), "round {round}: {answers:?}");
        let ids: std::collections::HashSet<i64> = answers.iter().map(|(_, b)| b["id"].as_i64().unwrap()).collect();
        assert_eq!(ids.len(), 1, "every answer names the one deploy");
        let stored = deploys(&app, &format!("sha={}", sha(round))).await;
        assert_eq!(stored.len(), 1, "round {round}");
    }
}

#[tokio::test]
async fn a_failed_and_a_live_reported_at_once_agree_with_what_was_answered() {
    let app = installed_app().await;
    let cred = create_credential(&app, 1).await;
    for round in 0..ROUNDS {
        let external_id = format!("pipeline-{round}");
        let start = json!({"repository": REPO, "environment": "production", "sha": sha(500 + round),
                           "status": "deploying", "external_id": external_id});
        assert_eq!(post_deploy(&app, &cred, start).await.0, 201);
        let outcomes = (0..WRITERS).map(|i| {
            let status = if i % 2 == 0 { "failed" } else { "live" };
            json!({"repository": REPO, "environment": "production", "sha": sha(500 + round),
                   "status": status, "external_id": external_id})
        });

        let answers = join_all(outcomes.map(|body| {
            let app = &app;
            let cred = &cred;
            async move {
                let asked = body["status"].as_str().unwrap().to_owned();
                (asked, post_deploy(app, cred, body).await)
            }
        }))
        .await;

        let stored = deploys(&app, &format!("sha={}", sha(500 + round))).await;
        assert_eq!(stored.len(), 1);
        let final_status = stored[0]["status"].as_str().unwrap().to_owned();
        for (asked, (status, body)) in &answers {
            if *asked == final_status {
                assert_eq!(*status, 200, "round {round}: {body}");
                assert_eq!(
                    body["status"],
                    final_status.as_str(),
                    "the answer is the row as written"
                );
            } else {
                assert_eq!(
                    *status, 409,
                    "round {round}: {asked} answered {status}, yet the deploy is {final_status}"
                );
            }
        }
        let id = stored[0]["id"].as_i64().unwrap();
        let (_, one) = app.admin_get(&format!("/deployments/{id}")).await;
        let terminal: Vec<&Value> = one["statuses"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["state"] == "failed" || s["state"] == "live")
            .collect();
        assert_eq!(terminal.len(), 1, "one terminal report in the history: {terminal:?}");
    }
    app.run_jobs().await;
}

#[tokio::test]
async fn ci_jobs_registering_while_others_read_the_history_all_succeed() {
    let app = installed_app().await;
    let writer = create_credential(&app, 1).await;
    let reader = create_credential(&app, 1).await;
    let stop = std::sync::atomic::AtomicBool::new(false);
    // Every Basic-authenticated read also records the credential's last use: a write.
    let readers = join_all((0..8).map(|_| {
        let (app, reader, stop) = (&app, &reader, &stop);
        async move {
            let mut statuses = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && statuses.len() < 400 {
                let response = app
                    .client
                    .get(app.url("/deployments?limit=5"))
                    .header("Accept", "application/json")
                    .basic_auth(&reader.username, Some(&reader.password))
                    .send()
                    .await
                    .unwrap();
                statuses.push(response.status().as_u16());
            }
            statuses
        }
    }));
    let writes = async {
        let mut answers = Vec::new();
        for i in 0..60 {
            let body = json!({"repository": REPO, "environment": "staging", "sha": sha(9000 + i),
                              "external_id": format!("busy-{i}"), "status": "deploying"});
            let response = app
                .client
                .post(app.url("/deployments"))
                .basic_auth(&writer.username, Some(&writer.password))
                .header("Idempotency-Key", format!("busy-key-{i}"))
                .json(&body)
                .send()
                .await
                .unwrap();
            answers.push(response.status().as_u16());
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        answers
    };

    let (read_statuses, answers) = futures_util::join!(readers, writes);

    assert!(answers.iter().all(|s| *s == 201), "{answers:?}");
    for statuses in read_statuses {
        assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    }
}

const SEQUENTIAL_POSTS: usize = 400;
const POLLERS: usize = 4;

/// Issue 14's measurement: one client registers 400 deploys one after another, each with its own
/// `Idempotency-Key`, while four clients poll the history with Basic auth. Every write passes the
/// write gate (a credential's `last_used_at` too, at most once a minute), so none of them meets
/// SQLite's lock held by another: 400 × 201, and no poller sees a 5xx.
#[tokio::test]
async fn sequential_deploys_with_pollers_all_succeed() {
    // The job worker runs too: each deploy's went-live job writes while the requests do.
    let app = spawn_app_with(|config| {
        config.run_jobs = true;
        config.http_workers = Some(4);
    })
    .await;
    assert_eq!(
        app.deliver("installation", &fixture("installation.created")).await.0,
        200
    );
    let writer = create_credential(&app, 1).await;
    let reader = create_credential(&app, 1).await;
    let done = std::sync::atomic::AtomicBool::new(false);
    let started = std::time::Instant::now();

    let posts = async {
        let mut statuses = Vec::with_capacity(SEQUENTIAL_POSTS);
        for i in 0..SEQUENTIAL_POSTS {
            let body = json!({
                "repository": REPO,
                "environment": "production",
                "sha": sha(70_000 + i),
                "deploy_time": format!("2026-11-02T{:02}:{:02}:{:02}Z", i / 3600, i / 60 % 60, i % 60),
            });
            let response = app
                .client
                .post(app.url("/deployments"))
                .basic_auth(&writer.username, Some(&writer.password))
                .header("Idempotency-Key", format!("sequential-{i}"))
                .json(&body)
                .send()
                .await
                .unwrap();
            let (status, answer) = status_and_json(response).await;
            statuses.push((status, answer));
        }
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        statuses
    };
    let polls = join_all((0..POLLERS).map(|_| async {
        let mut answered = Vec::new();
        while !done.load(std::sync::atomic::Ordering::SeqCst) {
            let response = app
                .client
                .get(app.url("/deployments?limit=20"))
                .basic_auth(&reader.username, Some(&reader.password))
                .send()
                .await
                .unwrap();
            answered.push(response.status().as_u16());
        }
        answered
    }));
    let (statuses, polled) = futures_util::join!(posts, polls);
    eprintln!(
        "bench: {SEQUENTIAL_POSTS} sequential deploys with {POLLERS} pollers ({} polls): {:?}",
        polled.iter().map(Vec::len).sum::<usize>(),
        started.elapsed()
    );

    let failed: Vec<&(u16, Value)> = statuses.iter().filter(|(status, _)| *status != 201).collect();
    assert!(
        failed.is_empty(),
        "{} of {SEQUENTIAL_POSTS} not 201: {:?}",
        failed.len(),
        &failed[..failed.len().min(5)]
    );
    let polled: Vec<u16> = polled.into_iter().flatten().collect();
    assert!(!polled.is_empty(), "the pollers polled");
    let errors: Vec<&u16> = polled.iter().filter(|status| **status >= 500).collect();
    assert!(
        errors.is_empty(),
        "{} of {} polls answered 5xx: {errors:?}",
        errors.len(),
        polled.len()
    );
    assert!(polled.iter().all(|status| *status == 200), "{polled:?}");
    let stored = deploys(&app, "environment=production").await;
    assert_eq!(stored.iter().filter(|d| d["status"] == "live").count(), 1);
    // The background worker may still be behind the 400 went-live jobs.
    while !app.run_jobs().await.is_empty() {}
}
