//! Liveness, readiness, answers when the database is gone, and graceful shutdown.

use crate::helpers::{fixture, spawn_app, status_and_json};

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
