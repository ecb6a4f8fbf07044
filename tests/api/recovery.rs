//! Catching up on missed webhook deliveries: GitHub (the fake) logs the deliveries it could not
//! make while shiplog was stopped; after shiplog starts, its `deliveries.recover` pass asks for
//! each of them again exactly once, they land as deliveries and deploys, and a delivery shiplog
//! already has is never asked for.

use std::sync::Arc;

use serde_json::{json, Value};
use shiplog::clock::Clock;
use shiplog::config::{GitHubAppCredentials, Secret};

use crate::fake_github::{private_key_pem, FakeGitHub, Fault, APP_ID};
use crate::helpers::{fixture, free_port, set, spawn_app_on, spawn_app_with, TestApp, TestDatabase};

const KIND: &str = "deliveries.recover";
const TEN_MINUTES: std::time::Duration = std::time::Duration::from_secs(600);

/// shiplog on `database`, listening on `port`, with the App at the fake and the catch-up on.
async fn start(database: Arc<TestDatabase>, port: u16, fake: &FakeGitHub) -> TestApp {
    let api = fake.url.clone();
    let app = spawn_app_on(
        database,
        move |config| {
            config.listen = format!("127.0.0.1:{port}");
            config.github_api_url = api;
            config.github_app = Some(GitHubAppCredentials {
                app_id: APP_ID,
                private_key_pem: Secret::new(private_key_pem()),
            });
            config.delivery_recovery_interval = Some(TEN_MINUTES);
        },
        Vec::new(),
    )
    .await;
    // Each pass enqueues the next, so one is always queued.
    app.allow_jobs(&[KIND]);
    app
}

/// Stops the server and waits until its port is closed.
async fn stop(app: TestApp) {
    app.handle.stop(true).await;
    drop(app);
}

/// A `deployment` delivery of its own (id and SHA from `n`).
fn deployment(n: u64) -> Value {
    let mut payload = fixture("deployment.created");
    set(&mut payload, "/deployment/id", json!(1_900_000_100 + n));
    set(&mut payload, "/deployment/sha", json!(format!("{:040x}", 0xabc000 + n)));
    payload
}

async fn recovery(app: &TestApp) -> Value {
    let (status, body) = app.admin_get("/api/deliveries/recovery").await;
    assert_eq!(status, 200, "{body}");
    body
}

/// Runs the jobs that are due and returns the catch-up's reports among them.
async fn run_pass(app: &TestApp) -> Value {
    let reports = app.run_jobs().await;
    let passes: Vec<_> = reports.iter().filter(|r| r.kind == KIND).collect();
    assert_eq!(passes.len(), 1, "{reports:?}");
    assert_eq!(passes[0].outcome, "done", "{reports:?}");
    recovery(app).await["last_pass"].clone()
}

async fn queued_passes(app: &TestApp) -> i64 {
    app.first_row(&format!(
        "SELECT COUNT(*) AS n FROM job WHERE kind = '{KIND}' AND state IN ('queued', 'running')"
    ))
    .await
    .try_get::<i64>("", "n")
    .unwrap()
}

#[tokio::test]
async fn deliveries_that_failed_while_shiplog_was_stopped_are_redelivered_once_after_it_starts() {
    let fake = FakeGitHub::start().await;
    let database = Arc::new(TestDatabase::create().await);
    let port = free_port();
    fake.set_webhook_target(&format!("http://127.0.0.1:{port}/webhooks/github"));

    // shiplog runs: its first pass finds nothing; GitHub delivers the installation and a deploy.
    let app = start(database.clone(), port, &fake).await;
    let first = run_pass(&app).await;
    assert_eq!(first["pages"], 1, "{first}");
    assert_eq!(first["seen"], 0, "{first}");
    assert_eq!(first["stopped"], "complete", "{first}");
    fake.send_hook("installation", &fixture("installation.created")).await;
    let kept = fake.send_hook("deployment", &deployment(0)).await;
    assert!(app.stored_delivery(&kept).await.is_some());
    // GitHub logged that one as failed although shiplog stored it (it answered too late).
    fake.mark_hook_failed(&kept);
    stop(app).await;

    // While shiplog is stopped, GitHub cannot connect.
    let missed = [
        fake.send_hook("deployment", &deployment(1)).await,
        fake.send_hook("deployment", &deployment(2)).await,
    ];
    let log = fake.hook_log();
    assert!(
        log.iter()
            .filter(|a| missed.contains(&a.guid))
            .all(|a| a.status_code == 0),
        "{log:?}"
    );

    // shiplog starts again: the pass queued for later is due now, and asks for the two.
    let app = start(database.clone(), port, &fake).await;
    assert_eq!(queued_passes(&app).await, 1);
    let pass = run_pass(&app).await;
    assert_eq!(pass["seen"], 4, "{pass}");
    assert_eq!(pass["failed"], 3, "{pass}");
    assert_eq!(pass["already_stored"], 1, "{pass}");
    assert_eq!(pass["asked"], 2, "{pass}");
    assert_eq!(pass["ask_failures"], 0, "{pass}");
    assert_eq!(pass["stopped"], "complete", "{pass}");
    let mut asked = fake.redelivery_asks();
    asked.sort();
    let mut expected = missed.to_vec();
    expected.sort();
    assert_eq!(
        asked, expected,
        "asked for each missed delivery once, never for the stored one"
    );
    for guid in &missed {
        let stored = app.stored_delivery(guid).await.expect("the redelivery landed");
        assert_eq!(stored.event, "deployment");
    }
    assert_eq!(app.count_rows("deployment").await, 3);
    let redelivered = fake.hook_log().into_iter().filter(|a| a.redelivery).collect::<Vec<_>>();
    assert_eq!(redelivered.len(), 2);
    assert!(redelivered.iter().all(|a| a.status == "OK"), "{redelivered:?}");

    // The API shows the pass and when the next one runs.
    let status = recovery(&app).await;
    assert_eq!(status["enabled"], true, "{status}");
    assert_eq!(status["interval_seconds"], 600, "{status}");
    let next: chrono::DateTime<chrono::Utc> = status["next_run_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(next, app.clock.now() + chrono::Duration::minutes(10));

    // Ten minutes later the next pass sees only the two redeliveries and asks for nothing.
    assert!(app.run_jobs().await.iter().all(|r| r.kind != KIND));
    app.clock.advance(chrono::Duration::minutes(11));
    let again = run_pass(&app).await;
    assert_eq!(again["seen"], 2, "{again}");
    assert_eq!(again["failed"], 0, "{again}");
    assert_eq!(again["asked"], 0, "{again}");
    assert_eq!(fake.redelivery_asks().len(), 2);
    assert_eq!(app.count_rows("deployment").await, 3);

    // `/metrics` of this process counts its two passes, the two asks and GitHub's App calls.
    let metrics = crate::metrics::scrape(&app).await;
    let passes = |outcome: &str| {
        metrics.value(&format!(
            r#"shiplog_delivery_recovery_passes_total{{outcome="{outcome}"}}"#
        ))
    };
    assert_eq!((passes("complete"), passes("error")), (2.0, 0.0));
    let asks = |outcome: &str| {
        metrics.value(&format!(
            r#"shiplog_delivery_recovery_redeliveries_total{{outcome="{outcome}"}}"#
        ))
    };
    assert_eq!((asks("asked"), asks("refused")), (2.0, 0.0));
    let calls = |endpoint: &str| {
        metrics.value(&format!(
            r#"shiplog_github_api_calls_total{{endpoint="{endpoint}",status="2xx"}}"#
        ))
    };
    assert_eq!(calls("/app/hook/deliveries"), 2.0);
    assert_eq!(calls("/app/hook/deliveries/{id}/attempts"), 2.0);
    stop(app).await;
}

#[tokio::test]
async fn a_pass_pages_back_only_to_the_newest_delivery_the_last_pass_saw() {
    let fake = FakeGitHub::start().await;
    let database = Arc::new(TestDatabase::create().await);
    let port = free_port();
    fake.set_webhook_target(&format!("http://127.0.0.1:{port}/webhooks/github"));
    // 130 deliveries from before: two pages.
    for n in 0..130 {
        fake.log_hook("ping", &json!({"zen": n}), true);
    }
    let app = start(database, port, &fake).await;
    fake.send_hook("installation", &fixture("installation.created")).await;
    let first = run_pass(&app).await;
    assert_eq!(first["pages"], 2, "{first}");
    assert_eq!(first["seen"], 131, "{first}");
    assert_eq!(first["failed"], 0, "{first}");

    // 150 more (the last one failed): two pages, and the pass stops at the last one seen,
    // without reading the older pages again.
    for n in 0..149 {
        fake.log_hook("ping", &json!({"zen": n}), true);
    }
    let failed = fake.log_hook("deployment", &deployment(7), false);
    let listings_before = fake.count("GET /app/hook/deliveries");
    app.clock.advance(chrono::Duration::minutes(10));
    let pass = run_pass(&app).await;
    assert_eq!(fake.count("GET /app/hook/deliveries") - listings_before, 2);
    assert_eq!(pass["pages"], 2, "{pass}");
    assert_eq!(pass["seen"], 150, "{pass}");
    assert_eq!(pass["failed"], 1, "{pass}");
    assert_eq!(pass["asked"], 1, "{pass}");
    assert_eq!(fake.redelivery_asks(), vec![failed.clone()]);
    assert!(app.stored_delivery(&failed).await.is_some());
    // GitHub's pages were asked for 100 at a time, the second by the cursor its Link named.
    let calls = fake.calls();
    let listings: Vec<_> = calls.iter().filter(|c| c.contains("/app/hook/deliveries?")).collect();
    assert!(listings.iter().all(|c| c.contains("per_page=100")), "{listings:?}");
    assert!(listings.iter().any(|c| c.contains("cursor=v1_")), "{listings:?}");
    stop(app).await;
}

#[tokio::test]
async fn a_refused_redelivery_is_asked_again_in_the_next_passes_three_times_in_all_then_given_up() {
    let fake = FakeGitHub::start().await;
    let database = Arc::new(TestDatabase::create().await);
    let port = free_port();
    fake.set_webhook_target(&format!("http://127.0.0.1:{port}/webhooks/github"));
    let refused = fake.log_hook("deployment", &deployment(1), false);
    fake.refuse_redelivery(&refused);
    let app = start(database, port, &fake).await;
    fake.send_hook("installation", &fixture("installation.created")).await;

    for round in 1..=3 {
        let pass = run_pass(&app).await;
        assert_eq!(pass["ask_failures"], 1, "round {round}: {pass}");
        assert_eq!(pass["asked"], 0, "round {round}: {pass}");
        // The cursor stays, so the next pass sees the refused delivery again.
        assert_eq!(recovery(&app).await["last_seen_delivery_id"], Value::Null);
        app.clock.advance(chrono::Duration::minutes(10));
    }
    let given_up = run_pass(&app).await;
    assert_eq!(given_up["ask_failures"], 0, "{given_up}");
    assert_eq!(given_up["already_asked"], 1, "{given_up}");
    assert_eq!(fake.redelivery_asks(), vec![refused.clone(); 3]);
    assert!(recovery(&app).await["last_seen_delivery_id"].as_i64().is_some());
    let row = app
        .first_row(&format!(
            "SELECT outcome, asks, error FROM delivery_redelivery WHERE guid = '{refused}'"
        ))
        .await;
    assert_eq!(row.try_get::<String>("", "outcome").unwrap(), "failed");
    assert_eq!(row.try_get::<i32>("", "asks").unwrap(), 3);
    assert!(row.try_get::<Option<String>>("", "error").unwrap().is_some());
    stop(app).await;
}

#[tokio::test]
async fn a_rate_limited_listing_ends_the_pass_early_and_says_so() {
    let fake = FakeGitHub::start().await;
    let database = Arc::new(TestDatabase::create().await);
    let port = free_port();
    fake.set_webhook_target(&format!("http://127.0.0.1:{port}/webhooks/github"));
    let missed = fake.log_hook("deployment", &deployment(1), false);
    let app = start(database, port, &fake).await;
    fake.send_hook("installation", &fixture("installation.created")).await;
    fake.fail_next(Fault::PrimaryRateLimit { reset_in: 600 });
    let limited = run_pass(&app).await;
    assert_eq!(limited["stopped"], "rate_limit", "{limited}");
    assert!(limited["detail"].as_str().unwrap().contains("rate limit"), "{limited}");
    assert!(fake.redelivery_asks().is_empty());
    // The next pass goes on.
    app.clock.advance(chrono::Duration::minutes(10));
    let pass = run_pass(&app).await;
    assert_eq!(pass["stopped"], "complete", "{pass}");
    assert_eq!(fake.redelivery_asks(), vec![missed]);
    stop(app).await;
}

#[tokio::test]
async fn a_pass_stops_before_asking_when_github_reports_the_rate_limit_low() {
    let fake = FakeGitHub::start().await;
    let database = Arc::new(TestDatabase::create().await);
    let port = free_port();
    fake.set_webhook_target(&format!("http://127.0.0.1:{port}/webhooks/github"));
    let missed = fake.log_hook("deployment", &deployment(1), false);
    let app = start(database, port, &fake).await;
    fake.set_app_rate_remaining(40);
    let low = run_pass(&app).await;
    assert_eq!(low["stopped"], "rate_limit", "{low}");
    assert_eq!(low["failed"], 1, "{low}");
    assert_eq!(low["asked"], 0, "{low}");
    assert!(low["detail"].as_str().unwrap().contains("40 of 5000"), "{low}");
    assert!(fake.redelivery_asks().is_empty());
    assert_eq!(recovery(&app).await["last_seen_delivery_id"], Value::Null);

    fake.set_app_rate_remaining(4000);
    app.clock.advance(chrono::Duration::minutes(10));
    let pass = run_pass(&app).await;
    assert_eq!(pass["stopped"], "complete", "{pass}");
    assert_eq!(fake.redelivery_asks(), vec![missed]);
    stop(app).await;
}

#[tokio::test]
async fn two_replicas_keep_one_pass_pending_and_only_one_runs() {
    let fake = FakeGitHub::start().await;
    let database = Arc::new(TestDatabase::create().await);
    fake.set_webhook_target(&format!("http://127.0.0.1:{}/webhooks/github", free_port()));
    let one = start(database.clone(), 0, &fake).await;
    let two = start(database.clone(), 0, &fake).await;
    assert_eq!(queued_passes(&one).await, 1);
    run_pass(&one).await;
    assert!(two.run_jobs().await.iter().all(|r| r.kind != KIND));
    assert_eq!(queued_passes(&two).await, 1);
    assert_eq!(fake.count("GET /app/hook/deliveries"), 1);
    stop(one).await;
    stop(two).await;
}

#[tokio::test]
async fn a_pass_that_reaches_a_replica_without_the_app_is_passed_on_not_dropped() {
    let fake = FakeGitHub::start().await;
    let database = Arc::new(TestDatabase::create().await);
    fake.set_webhook_target(&format!("http://127.0.0.1:{}/webhooks/github", free_port()));
    // The replica with the App enqueues the pass; one without the App's credentials claims it.
    let with_app = start(database.clone(), 0, &fake).await;
    let without = spawn_app_on(database.clone(), |_| {}, Vec::new()).await;
    without.allow_jobs(&[KIND]);
    let reports = without.run_jobs().await;
    let skipped: Vec<_> = reports.iter().filter(|r| r.kind == KIND).collect();
    assert_eq!(skipped.len(), 1, "{reports:?}");
    assert_eq!(skipped[0].outcome, "skipped", "{reports:?}");
    assert_eq!(fake.count("GET /app/hook/deliveries"), 0);
    // Still one pass pending, ten minutes on; the replica with the App runs it then.
    assert_eq!(queued_passes(&with_app).await, 1);
    with_app.clock.advance(chrono::Duration::minutes(11));
    let pass = run_pass(&with_app).await;
    assert_eq!(pass["stopped"], "complete", "{pass}");
    assert_eq!(fake.count("GET /app/hook/deliveries"), 1);
    stop(with_app).await;
}

#[tokio::test]
async fn the_catch_up_is_off_without_the_app_or_with_interval_zero_and_says_why() {
    let app = spawn_app_with(|config| config.delivery_recovery_interval = Some(TEN_MINUTES)).await;
    let status = recovery(&app).await;
    assert_eq!(status["enabled"], false, "{status}");
    assert!(
        status["off_reason"].as_str().unwrap().contains("GitHub App"),
        "{status}"
    );
    assert_eq!(status["next_run_at"], Value::Null);
    assert_eq!(status["last_pass"], Value::Null);
    assert_eq!(app.count_rows("job").await, 0);

    let fake = FakeGitHub::start().await;
    let api = fake.url.clone();
    let app = spawn_app_with(move |config| {
        config.github_api_url = api;
        config.github_app = Some(GitHubAppCredentials {
            app_id: APP_ID,
            private_key_pem: Secret::new(private_key_pem()),
        });
        config.delivery_recovery_interval = None;
    })
    .await;
    let status = recovery(&app).await;
    assert_eq!(status["enabled"], false, "{status}");
    assert!(
        status["off_reason"]
            .as_str()
            .unwrap()
            .contains("SHIPLOG_DELIVERY_RECOVERY_INTERVAL"),
        "{status}"
    );
    assert_eq!(app.count_rows("job").await, 0);
    assert_eq!(fake.count("/app/hook/deliveries"), 0);
}
