//! Liveness, readiness, and answers when the database is gone.

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
