//! `POST /webhooks/github`: signature, headers, size, parsing, dedupe, outcomes.

use serde_json::{json, Value};

use crate::helpers::{fixture, set, spawn_app, spawn_app_with, status_and_json, WebhookRequest, WEBHOOK_SECRET};
use shiplog::config::Secret;

fn assert_problem(status: u16, body: &Value, expected: u16) {
    assert_eq!(status, expected, "{body}");
    assert_eq!(body["status"], expected, "{body}");
    assert!(
        body["type"].as_str().unwrap().starts_with("urn:shiplog:problem:"),
        "{body}"
    );
    assert!(body["title"].is_string() && body["detail"].is_string(), "{body}");
}

#[tokio::test]
async fn ping_is_acknowledged_and_recorded() {
    let app = spawn_app().await;
    let request = WebhookRequest::signed("ping", &fixture("ping")).with_delivery("ping-1");

    let (status, body) = status_and_json(app.send_webhook(request).await).await;

    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"delivery": "ping-1", "outcome": "processed", "reason": null})
    );
    let stored = app.stored_delivery("ping-1").await.unwrap();
    assert_eq!((stored.event.as_str(), stored.outcome.as_str()), ("ping", "processed"));
}

#[tokio::test]
async fn webhook_with_bad_signature_is_rejected_and_stores_nothing() {
    let app = spawn_app().await;
    let mut request = WebhookRequest::signed("installation", &fixture("installation.created"));
    request.signature = Some(shiplog::github::signature::sign("not-the-secret", &request.body));

    let response = app.send_webhook(request).await;

    assert_eq!(response.headers()["content-type"], "application/problem+json");
    let (status, body) = status_and_json(response).await;
    assert_problem(status, &body, 401);
    assert_eq!(app.count_rows("webhook_delivery").await, 0);
    assert_eq!(app.count_rows("connection").await, 0);
}

#[tokio::test]
async fn webhook_with_a_body_changed_after_signing_is_rejected() {
    let app = spawn_app().await;
    let mut request = WebhookRequest::signed("installation", &fixture("installation.created"));
    request.body = String::from_utf8(request.body)
        .unwrap()
        .replace("acme-corp", "evil-corp")
        .into_bytes();

    let (status, body) = status_and_json(app.send_webhook(request).await).await;

    assert_problem(status, &body, 401);
    assert_eq!(app.count_rows("connection").await, 0);
}

#[tokio::test]
async fn webhook_without_signature_or_with_sha1_only_is_rejected() {
    let app = spawn_app().await;
    let mut unsigned = WebhookRequest::signed("ping", &fixture("ping"));
    unsigned.signature = None;
    let mut sha1 = WebhookRequest::signed("ping", &fixture("ping"));
    sha1.signature = Some("sha1=7d38cdd689735b008b3c702edd92eea23791c5f6".to_owned());

    let (missing_status, missing) = status_and_json(app.send_webhook(unsigned).await).await;
    let (sha1_status, sha1_body) = status_and_json(app.send_webhook(sha1).await).await;

    assert_problem(missing_status, &missing, 401);
    assert!(missing["detail"].as_str().unwrap().contains("missing"));
    assert_problem(sha1_status, &sha1_body, 401);
    assert_eq!(app.count_rows("webhook_delivery").await, 0);
}

#[tokio::test]
async fn every_configured_secret_is_accepted_while_rotating() {
    let app = spawn_app_with(|config| {
        config.webhook_secrets = vec![Secret::new("the-new-secret"), Secret::new(WEBHOOK_SECRET)];
    })
    .await;
    let old = WebhookRequest::signed("ping", &fixture("ping"));
    let mut new = WebhookRequest::signed("ping", &fixture("ping"));
    new.signature = Some(shiplog::github::signature::sign("the-new-secret", &new.body));

    assert_eq!(app.send_webhook(old).await.status(), 200);
    assert_eq!(app.send_webhook(new).await.status(), 200);
    assert_eq!(app.count_rows("webhook_delivery").await, 2);
}

#[tokio::test]
async fn missing_event_or_delivery_header_is_a_bad_request_that_stores_nothing() {
    let app = spawn_app().await;
    let mut no_event = WebhookRequest::signed("ping", &fixture("ping"));
    no_event.event = None;
    let mut no_delivery = WebhookRequest::signed("ping", &fixture("ping"));
    no_delivery.delivery = None;

    let (event_status, event_body) = status_and_json(app.send_webhook(no_event).await).await;
    let (delivery_status, delivery_body) = status_and_json(app.send_webhook(no_delivery).await).await;

    assert_problem(event_status, &event_body, 400);
    assert!(event_body["detail"].as_str().unwrap().contains("X-GitHub-Event"));
    assert_problem(delivery_status, &delivery_body, 400);
    assert!(delivery_body["detail"].as_str().unwrap().contains("X-GitHub-Delivery"));
    assert_eq!(app.count_rows("webhook_delivery").await, 0);
}

#[tokio::test]
async fn a_26_mb_body_is_refused_with_413_and_stores_nothing() {
    let app = spawn_app().await;
    let mut payload = fixture("installation.created");
    set(
        &mut payload,
        "/installation/single_file_name",
        json!("x".repeat(26 * 1024 * 1024)),
    );

    let (status, body) =
        status_and_json(app.send_webhook(WebhookRequest::signed("installation", &payload)).await).await;

    assert_problem(status, &body, 413);
    assert_eq!(app.count_rows("webhook_delivery").await, 0);
    assert_eq!(app.count_rows("connection").await, 0);
}

#[tokio::test]
async fn a_body_just_under_25_mb_is_accepted() {
    let app = spawn_app().await;
    let mut payload = fixture("installation.created");
    set(
        &mut payload,
        "/installation/single_file_name",
        json!("x".repeat(24 * 1024 * 1024)),
    );

    let (status, body) = app.deliver("installation", &payload).await;

    assert_eq!(status, 200, "{body}");
    assert_eq!(body["outcome"], "processed");
    assert_eq!(app.count_rows("connection").await, 1);
}

#[tokio::test]
async fn malformed_json_is_a_bad_request_naming_the_field() {
    let app = spawn_app().await;
    let mut payload = fixture("installation.created");
    set(&mut payload, "/installation/account/login", json!(17));

    let (status, body) = app.deliver("installation", &payload).await;

    assert_problem(status, &body, 400);
    assert_eq!(body["errors"][0]["field"], "installation.account.login", "{body}");
    assert!(body["detail"].as_str().unwrap().contains("installation.account.login"));
    assert_eq!(app.count_rows("webhook_delivery").await, 0);
    assert_eq!(app.count_rows("connection").await, 0);
}

#[tokio::test]
async fn a_body_that_is_not_json_is_a_bad_request_naming_the_body() {
    let app = spawn_app().await;
    let request = WebhookRequest::signed_bytes("installation", b"Hello, World!".to_vec());

    let (status, body) = status_and_json(app.send_webhook(request).await).await;

    assert_problem(status, &body, 400);
    assert_eq!(body["errors"][0]["field"], "body");
}

#[tokio::test]
async fn a_repository_name_that_is_not_owner_slash_repo_is_named() {
    let app = spawn_app().await;
    let mut payload = fixture("installation_repositories.added");
    set(&mut payload, "/repositories_added/0/full_name", json!("no-slash"));

    let (status, body) = app.deliver("installation_repositories", &payload).await;

    assert_problem(status, &body, 400);
    assert_eq!(body["errors"][0]["field"], "repositories_added[0].full_name");
}

#[tokio::test]
async fn redelivery_answers_duplicate_and_stores_nothing_twice() {
    let app = spawn_app().await;
    let payload = fixture("installation.created");
    let first = WebhookRequest::signed("installation", &payload).with_delivery("7f5e2a10-0001");
    let again = WebhookRequest::signed("installation", &payload).with_delivery("7f5e2a10-0001");

    let (first_status, first_body) = status_and_json(app.send_webhook(first).await).await;
    let (_, connection_before) = app.admin_get("/api/connections/1").await;
    app.clock.advance(chrono::Duration::minutes(5));
    let (again_status, again_body) = status_and_json(app.send_webhook(again).await).await;

    assert_eq!((first_status, first_body["outcome"].as_str()), (200, Some("processed")));
    assert_eq!((again_status, again_body["outcome"].as_str()), (200, Some("duplicate")));
    assert_eq!(again_body["delivery"], "7f5e2a10-0001");
    assert_eq!(app.count_rows("webhook_delivery").await, 1);
    assert_eq!(app.count_rows("connection").await, 1);
    assert_eq!(app.count_rows("connection_repository").await, 2);
    let (_, connection_after) = app.admin_get("/api/connections/1").await;
    assert_eq!(
        connection_before, connection_after,
        "a redelivery changed the connection"
    );
}

#[tokio::test]
async fn concurrent_redeliveries_are_processed_exactly_once() {
    let app = spawn_app().await;
    let payload = fixture("installation.created");
    let sends = (0..8).map(|_| {
        let request = WebhookRequest::signed("installation", &payload).with_delivery("same-delivery");
        app.send_webhook(request)
    });

    let responses = futures_util::future::join_all(sends).await;

    let mut outcomes = Vec::new();
    for response in responses {
        let (status, body) = status_and_json(response).await;
        assert_eq!(status, 200, "{body}");
        outcomes.push(body["outcome"].as_str().unwrap().to_owned());
    }
    assert_eq!(outcomes.iter().filter(|o| *o == "processed").count(), 1, "{outcomes:?}");
    assert_eq!(outcomes.iter().filter(|o| *o == "duplicate").count(), 7, "{outcomes:?}");
    assert_eq!(app.count_rows("webhook_delivery").await, 1);
    assert_eq!(app.count_rows("connection").await, 1);
}

#[tokio::test]
async fn two_new_installations_delivered_at_once_each_get_one_connection() {
    let app = spawn_app().await;
    let created = fixture("installation.created");
    let added = fixture("installation_repositories.added");

    let (a, b) = tokio::join!(
        app.deliver("installation", &created),
        app.deliver("installation_repositories", &added)
    );

    assert_eq!((a.0, b.0), (200, 200), "{a:?} {b:?}");
    assert_eq!(app.count_rows("connection").await, 1);
    let (_, connection) = app.admin_get("/api/connections/1").await;
    let repos: Vec<&str> = connection["repositories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    assert!(repos.contains(&"acme-corp/Mobile-API"), "{repos:?}");
}

#[tokio::test]
async fn events_and_actions_shiplog_does_not_handle_are_acknowledged_and_recorded_as_ignored() {
    let app = spawn_app().await;
    let star = json!({"action": "created", "starred_at": "2026-11-02T09:00:00Z", "installation": {"id": 41000001}});
    let mut renamed = fixture("installation.created");
    set(&mut renamed, "/action", json!("some_future_action"));
    let request = WebhookRequest::signed("star", &star).with_delivery("star-1");

    let (status, body) = status_and_json(app.send_webhook(request).await).await;
    let (renamed_status, renamed_body) = app.deliver("installation", &renamed).await;

    assert_eq!(status, 200);
    assert_eq!(body["outcome"], "ignored");
    assert!(body["reason"].as_str().unwrap().contains("`star`"), "{body}");
    assert_eq!(
        (renamed_status, renamed_body["outcome"].as_str()),
        (200, Some("ignored"))
    );
    assert_eq!(
        app.count_rows("connection").await,
        0,
        "an unhandled action created a connection"
    );
    let stored = app.stored_delivery("star-1").await.unwrap();
    assert_eq!(
        (stored.outcome.as_str(), stored.action.as_deref()),
        ("ignored", Some("created"))
    );
}

#[tokio::test]
async fn a_delivery_for_an_installation_never_seen_is_accepted_and_recorded() {
    let app = spawn_app().await;
    let mut payload = fixture("deployment.created");
    set(&mut payload, "/installation/id", json!(99_000_777));
    let request = WebhookRequest::signed("deployment", &payload).with_delivery("unknown-installation");

    let (status, body) = status_and_json(app.send_webhook(request).await).await;

    assert_eq!(status, 200, "{body}");
    assert_ne!(body["outcome"], "duplicate");
    let stored = app.stored_delivery("unknown-installation").await.unwrap();
    assert_eq!(stored.event, "deployment");
    let row = app
        .first_row("SELECT installation_id FROM webhook_delivery WHERE delivery_id = 'unknown-installation'")
        .await;
    assert_eq!(
        row.try_get::<Option<i64>>("", "installation_id").unwrap(),
        Some(99_000_777)
    );
}

#[tokio::test]
async fn a_form_encoded_delivery_is_verified_over_the_raw_body_and_read() {
    let app = spawn_app().await;
    let json = serde_json::to_string(&fixture("installation.created")).unwrap();
    let body = serde_urlencoded::to_string([("payload", json)]).unwrap().into_bytes();
    let mut request = WebhookRequest::signed_bytes("installation", body);
    request.content_type = "application/x-www-form-urlencoded";

    let (status, body) = status_and_json(app.send_webhook(request).await).await;

    assert_eq!((status, body["outcome"].as_str()), (200, Some("processed")), "{body}");
    assert_eq!(app.count_rows("connection").await, 1);
}
