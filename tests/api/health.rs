//! Liveness, readiness, answers when the database is gone, and graceful shutdown.

use futures_util::StreamExt;

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
    let app = spawn_app().await;
    let request = crate::helpers::WebhookRequest::signed("installation", &fixture("installation.created"));
    let (first, rest) = request.body.split_at(request.body.len() / 2);
    let (first, rest) = (first.to_vec(), rest.to_vec());
    // A connection the server has already accepted, so the stop cannot race its accept.
    assert_eq!(app.client.get(app.url("/healthz")).send().await.unwrap().status(), 200);
    // The body stream yields half, tells the test it wants more, then waits for the rest.
    let (wants_rest_tx, wants_rest) = tokio::sync::oneshot::channel::<()>();
    let (rest_tx, rest_rx) = tokio::sync::oneshot::channel::<Vec<u8>>();
    let chunks =
        futures_util::stream::iter([Ok::<_, std::io::Error>(first)]).chain(futures_util::stream::once(async move {
            let _ = wants_rest_tx.send(());
            Ok(rest_rx.await.unwrap())
        }));
    let in_flight = app
        .client
        .post(app.url("/webhooks/github"))
        .header("Content-Type", "application/json")
        .header("X-GitHub-Event", "installation")
        .header("X-GitHub-Delivery", "in-flight-1")
        .header("X-Hub-Signature-256", request.signature.clone().unwrap())
        .body(reqwest::Body::wrap_stream(chunks))
        .send();
    let in_flight = tokio::spawn(in_flight);
    wants_rest.await.unwrap();

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
    if rest_tx.send(rest).is_err() {
        panic!(
            "the request was cut off: {:?}",
            in_flight.await.unwrap().map(|r| r.status())
        );
    }

    let (status, body) = status_and_json(in_flight.await.unwrap().unwrap()).await;
    stopping.await.unwrap();
    assert_eq!((status, body["outcome"].as_str()), (200, Some("processed")), "{body}");
    // The stopped server closed its pool; look with a connection of our own.
    let store = shiplog::store::Store::connect(&app.database.url).await.unwrap();
    let connections = shiplog::connections::list(&store).await.unwrap();
    assert_eq!(connections.len(), 1);
    store.close().await;
}
