//! Liveness, readiness, answers when the database is gone, and graceful shutdown.

use serde_json::{json, Value};

use crate::helpers::{fixture, spawn_app, spawn_app_with, status_and_json, TestApp};

#[tokio::test]
async fn healthz_and_readyz_answer_when_all_is_well() {
    let app = spawn_app().await;

    let (live, _) = status_and_json(app.client.get(app.url("/healthz")).send().await.unwrap()).await;
    let (ready, body) = status_and_json(app.client.get(app.url("/readyz")).send().await.unwrap()).await;

    assert_eq!((live, ready), (200, 200));
    assert_eq!(body["status"], "ready");
    let expected = match crate::helpers::backend() {
        crate::helpers::Backend::Sqlite => "sqlite",
        crate::helpers::Backend::Postgres => "postgres",
    };
    assert_eq!(body["database"], expected);
    // Tests run jobs by hand: no worker, no maintenance loop; the writer runs on SQLite only.
    let writer = match crate::helpers::backend() {
        crate::helpers::Backend::Sqlite => "running",
        crate::helpers::Backend::Postgres => "off",
    };
    assert_eq!(
        (&body["worker"], &body["maintenance"], &body["writer"]),
        (&json!("off"), &json!("off"), &json!(writer)),
        "{body}"
    );
}

/// Polls `/readyz` until it answers `status` (at most ten seconds).
async fn readiness_until(app: &TestApp, status: u16) -> Value {
    let started = std::time::Instant::now();
    loop {
        let (got, body) = status_and_json(app.client.get(app.url("/readyz")).send().await.unwrap()).await;
        if got == status {
            return body;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "readyz stayed {got}: {body}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_server_running_jobs_reports_its_worker_and_maintenance_running() {
    let app = spawn_app_with(|config| config.run_jobs = true).await;

    let body = readiness_until(&app, 200).await;

    assert_eq!(
        (&body["worker"], &body["maintenance"]),
        (&json!("running"), &json!("running")),
        "{body}"
    );
}

#[tokio::test]
async fn a_job_worker_that_dies_turns_readiness_503_naming_it() {
    let app = spawn_app_with(|config| config.run_jobs = true).await;
    readiness_until(&app, 200).await;

    assert!(app.tasks.abort("worker"));
    let body = readiness_until(&app, 503).await;

    assert_eq!(body["status"], 503);
    assert!(body["detail"].as_str().unwrap().contains("worker"), "{body}");
}

#[tokio::test]
async fn an_intake_writer_that_dies_turns_readiness_503_naming_it() {
    let app = spawn_app().await;
    if crate::helpers::backend() == crate::helpers::Backend::Postgres {
        // PostgreSQL takes concurrent transactions: there is no writer task to die.
        assert!(!app.tasks.abort("writer"));
        assert_eq!(readiness_until(&app, 200).await["writer"], "off");
        return;
    }
    readiness_until(&app, 200).await;

    assert!(app.tasks.abort("writer"));
    let body = readiness_until(&app, 503).await;
    let (webhook, _) = app.deliver("installation", &fixture("installation.created")).await;

    assert!(body["detail"].as_str().unwrap().contains("writer"), "{body}");
    assert_eq!(webhook, 503, "deliveries cannot be recorded without the writer");
}

#[tokio::test]
async fn a_task_that_dies_stops_the_server_with_an_error_after_the_drain() {
    let database = crate::helpers::TestDatabase::create().await;
    let mut config = crate::helpers::test_config(&database.url);
    config.run_jobs = true;
    let app = shiplog::startup::Application::build(config).await.unwrap();
    let tasks = app.tasks();
    let port = app.port();
    let serving = tokio::spawn(app.run_until_stopped());

    assert!(tasks.abort("worker"));
    let stopped = tokio::time::timeout(std::time::Duration::from_secs(30), serving)
        .await
        .expect("the server stops")
        .unwrap();

    let error = stopped.expect_err("a dead task is an error, so the process exits non-zero");
    assert!(error.to_string().contains("worker"), "{error}");
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "the server no longer listens"
    );
}

#[tokio::test]
async fn without_a_database_readyz_and_webhooks_answer_503_so_github_can_redeliver() {
    let app = spawn_app().await;
    app.store.conn().close_by_ref().await.unwrap();

    let (ready, ready_body) = status_and_json(app.client.get(app.url("/readyz")).send().await.unwrap()).await;
    let (webhook, webhook_body) = app.deliver("installation", &fixture("installation.created")).await;

    assert_eq!(ready, 503, "{ready_body}");
    assert_eq!(webhook, 503, "{webhook_body}");
    assert_eq!(webhook_body["status"], 503);
    assert!(
        !webhook_body.to_string().contains("pool"),
        "internal detail leaked: {webhook_body}"
    );
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_problem_json() {
    let app = spawn_app().await;

    let missing = app.client.get(app.url("/no/such/thing")).send().await.unwrap();
    let wrong_method = app.client.get(app.url("/webhooks/github")).send().await.unwrap();

    assert_eq!(missing.status(), 404);
    assert_eq!(missing.headers()["content-type"], "application/problem+json");
    assert_eq!(wrong_method.status(), 405);
    assert_eq!(wrong_method.headers()["content-type"], "application/problem+json");
    assert_eq!(wrong_method.headers()["allow"], "POST");
}

#[tokio::test]
async fn a_graceful_stop_finishes_the_delivery_in_flight() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let app = spawn_app().await;
    let request = crate::helpers::WebhookRequest::signed("installation", &fixture("installation.created"));
    let (first, rest) = request.body.split_at(request.body.len() / 2);
    let address = app.address.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    let head = format!(
        "POST /webhooks/github HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\n\
         X-GitHub-Event: installation\r\nX-GitHub-Delivery: in-flight-1\r\nX-Hub-Signature-256: {}\r\n\
         Content-Length: {}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n",
        request.signature.as_deref().unwrap(),
        request.body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    // The server answers 100 Continue once the request is inside its dispatcher.
    let mut interim = [0u8; 25];
    stream.read_exact(&mut interim).await.unwrap();
    assert!(String::from_utf8_lossy(&interim).starts_with("HTTP/1.1 100 Continue"));
    stream.write_all(first).await.unwrap();

    let stopping = tokio::spawn(app.handle.stop(true));
    let started = std::time::Instant::now();
    let prober = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    while prober.get(app.url("/healthz")).send().await.is_ok() {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "the server kept accepting"
        );
        tokio::task::yield_now().await;
    }
    stream.write_all(rest).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    stopping.await.unwrap();

    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains(r#""outcome":"processed""#), "{answer}");
    // The stopped server closed its pool; look with a connection of our own.
    let store = shiplog::store::Store::connect(&app.database.url).await.unwrap();
    let connections = shiplog::connections::list(&store).await.unwrap();
    assert_eq!(connections.len(), 1);
    store.close().await;
}
