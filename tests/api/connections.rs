//! Connections kept in step with installations, and the admin API that shows them.

use serde_json::{json, Value};

use crate::helpers::{fixture, set, spawn_app, spawn_app_with, status_and_json, ADMIN_TOKEN, WEBHOOK_SECRET};

fn repo_names(connection: &Value) -> Vec<String> {
    connection["repositories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn installation_created_makes_a_connection_with_its_account_repositories_and_default_settings() {
    let app = spawn_app().await;

    let (status, body) = app.deliver("installation", &fixture("installation.created")).await;
    let (list_status, list) = app.admin_get("/api/connections").await;

    assert_eq!((status, body["outcome"].as_str()), (200, Some("processed")));
    assert_eq!(list_status, 200);
    let connections = list["connections"].as_array().unwrap();
    assert_eq!(connections.len(), 1);
    let c = &connections[0];
    assert_eq!(c["installation_id"], 41000001);
    assert_eq!(
        c["account"],
        json!({"login": "acme-corp", "type": "Organization", "id": 9100001})
    );
    assert_eq!(c["repository_selection"], "selected");
    assert_eq!(repo_names(c), vec!["acme-corp/billing", "acme-corp/web-app"]);
    assert_eq!(c["status"], "active");
    assert_eq!(c["suspended"], false);
    assert_eq!(
        c["settings"],
        json!({"auto_create_deployments": true, "ignore_transient_environments": false, "ignored_environments": [], "agent_url": null})
    );
    assert_eq!(c["created_at"], "2026-11-02T09:00:00Z");
}

#[tokio::test]
async fn installation_repositories_added_and_removed_keep_the_repository_list() {
    let app = spawn_app().await;
    app.deliver("installation", &fixture("installation.created")).await;

    let (added, _) = app
        .deliver("installation_repositories", &fixture("installation_repositories.added"))
        .await;
    let (removed, _) = app
        .deliver(
            "installation_repositories",
            &fixture("installation_repositories.removed"),
        )
        .await;

    assert_eq!((added, removed), (200, 200));
    let (_, c) = app.admin_get("/api/connections/1").await;
    assert_eq!(repo_names(&c), vec!["acme-corp/Mobile-API", "acme-corp/web-app"]);
}

#[tokio::test]
async fn suspend_and_unsuspend_flip_the_suspended_flag() {
    let app = spawn_app().await;
    app.deliver("installation", &fixture("installation.created")).await;
    let mut suspend = fixture("installation.created");
    set(&mut suspend, "/action", json!("suspend"));
    set(
        &mut suspend,
        "/installation/suspended_at",
        json!("2026-11-03T10:00:00Z"),
    );
    set(
        &mut suspend,
        "/installation/suspended_by",
        fixture("installation.created")["sender"].clone(),
    );
    let mut unsuspend = fixture("installation.created");
    set(&mut unsuspend, "/action", json!("unsuspend"));

    app.deliver("installation", &suspend).await;
    let (_, suspended) = app.admin_get("/api/connections/1").await;
    app.deliver("installation", &unsuspend).await;
    let (_, resumed) = app.admin_get("/api/connections/1").await;

    assert_eq!(
        (suspended["suspended"].as_bool(), suspended["status"].as_str()),
        (Some(true), Some("suspended"))
    );
    assert_eq!(suspended["suspended_at"], "2026-11-03T10:00:00Z");
    assert_eq!(
        (resumed["suspended"].as_bool(), resumed["status"].as_str()),
        (Some(false), Some("active"))
    );
}

#[tokio::test]
async fn new_permissions_accepted_refreshes_the_account_and_keeps_the_settings() {
    let app = spawn_app().await;
    app.deliver("installation", &fixture("installation.created")).await;
    let mut accepted = fixture("installation.created");
    set(&mut accepted, "/action", json!("new_permissions_accepted"));
    set(&mut accepted, "/installation/account/login", json!("acme-renamed"));
    set(&mut accepted, "/installation/repository_selection", json!("all"));

    let (status, body) = app.deliver("installation", &accepted).await;

    assert_eq!((status, body["outcome"].as_str()), (200, Some("processed")));
    let (_, c) = app.admin_get("/api/connections/1").await;
    assert_eq!(c["account"]["login"], "acme-renamed");
    assert_eq!(c["repository_selection"], "all");
    assert_eq!(c["settings"]["auto_create_deployments"], true);
    assert_eq!(app.count_rows("connection").await, 1);
}

#[tokio::test]
async fn a_deleted_installation_keeps_its_history_and_accepts_no_new_rows() {
    let app = spawn_app().await;
    app.deliver("installation", &fixture("installation.created")).await;
    let mut deleted = fixture("installation.created");
    set(&mut deleted, "/action", json!("deleted"));
    app.clock.advance(chrono::Duration::days(1));

    let (status, body) = app.deliver("installation", &deleted).await;
    let (late_status, late) = app
        .deliver("installation_repositories", &fixture("installation_repositories.added"))
        .await;
    let mut recreated = fixture("installation.created");
    set(&mut recreated, "/repositories/0/full_name", json!("acme-corp/another"));
    set(&mut recreated, "/repositories/0/id", json!(700000099));
    let (_, late_created) = app.deliver("installation", &recreated).await;

    assert_eq!((status, body["outcome"].as_str()), (200, Some("processed")));
    assert_eq!((late_status, late["outcome"].as_str()), (200, Some("skipped")));
    assert!(late["reason"].as_str().unwrap().contains("deleted"), "{late}");
    assert_eq!(late_created["outcome"], "skipped");
    let (_, c) = app.admin_get("/api/connections/1").await;
    assert_eq!(c["status"], "deleted");
    assert_eq!(c["deleted_at"], "2026-11-03T09:00:00Z");
    assert_eq!(
        repo_names(&c),
        vec!["acme-corp/billing", "acme-corp/web-app"],
        "history kept, nothing added"
    );
    assert_eq!(
        app.count_rows("webhook_delivery").await,
        4,
        "every delivery is recorded"
    );
}

#[tokio::test]
async fn an_event_for_an_unseen_installation_creates_its_connection() {
    let app = spawn_app().await;

    let (status, body) = app
        .deliver("installation_repositories", &fixture("installation_repositories.added"))
        .await;

    assert_eq!((status, body["outcome"].as_str()), (200, Some("processed")));
    let (_, c) = app.admin_get("/api/connections/1").await;
    assert_eq!(c["installation_id"], 41000001);
    assert_eq!(c["account"]["login"], "acme-corp");
    assert_eq!(repo_names(&c), vec!["acme-corp/Mobile-API"]);
}

#[tokio::test]
async fn a_late_installation_created_does_not_undo_an_earlier_addition() {
    let app = spawn_app().await;
    app.deliver("installation_repositories", &fixture("installation_repositories.added"))
        .await;

    app.deliver("installation", &fixture("installation.created")).await;

    let (_, c) = app.admin_get("/api/connections/1").await;
    assert_eq!(
        repo_names(&c),
        vec!["acme-corp/billing", "acme-corp/Mobile-API", "acme-corp/web-app"]
    );
}

#[tokio::test]
async fn the_admin_api_requires_the_bearer_token() {
    let app = spawn_app().await;
    let url = app.url("/api/connections");

    let missing = app.client.get(&url).send().await.unwrap();
    let wrong = app.client.get(&url).bearer_auth("not-the-token").send().await.unwrap();
    let right = app.client.get(&url).bearer_auth(ADMIN_TOKEN).send().await.unwrap();

    assert_eq!(missing.status(), 401);
    assert!(missing.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Bearer"));
    assert_eq!(missing.headers()["content-type"], "application/problem+json");
    assert_eq!(wrong.status(), 401);
    assert_eq!(right.status(), 200);
}

#[tokio::test]
async fn the_admin_api_is_forbidden_while_no_token_is_configured() {
    let app = spawn_app_with(|config| config.admin_token = None).await;

    let response = app
        .client
        .get(app.url("/api/connections"))
        .bearer_auth("anything")
        .send()
        .await
        .unwrap();
    let (status, body) = status_and_json(response).await;

    assert_eq!(status, 403);
    assert!(body["detail"].as_str().unwrap().contains("SHIPLOG_ADMIN_TOKEN"));
}

#[tokio::test]
async fn an_unknown_or_malformed_connection_id_is_a_404_problem() {
    let app = spawn_app().await;

    let (unknown, unknown_body) = app.admin_get("/api/connections/4711").await;
    let (malformed, malformed_body) = app.admin_get("/api/connections/not-a-number").await;

    assert_eq!((unknown, unknown_body["status"].as_u64()), (404, Some(404)));
    assert_eq!((malformed, malformed_body["status"].as_u64()), (404, Some(404)));
}

#[tokio::test]
async fn no_response_carries_a_secret() {
    let app = spawn_app().await;
    app.deliver("installation", &fixture("installation.created")).await;

    let (_, list) = app.admin_get("/api/connections").await;
    let (_, one) = app.admin_get("/api/connections/1").await;
    let (_, health) = app.admin_get("/readyz").await;

    for body in [list, one, health] {
        let text = body.to_string();
        assert!(!text.contains(WEBHOOK_SECRET) && !text.contains(ADMIN_TOKEN), "{text}");
    }
}
