//! Connections kept in step with installations, and the admin API that shows them.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use shiplog::clock::Clock;
use shiplog::events::{InstallationSnapshot, RepositoriesChanged};
use shiplog::types::{Account, InstallationId, RepoName, RepoRef};

use crate::helpers::{fixture, set, spawn_app, spawn_app_with, status_and_json, TestApp, ADMIN_TOKEN, WEBHOOK_SECRET};

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
        json!({"auto_create_deployments": true, "ignore_transient_environments": false, "ignored_environments": [], "agent_url": null, "workflow_rules": [], "environment_order": [], "production_environments": ["production", "prod", "prod-*", "prd*"], "revert_window_hours": 24})
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

/// `acme-corp/repo-000000` … with GitHub ids from 800000000 up.
fn many_repositories(count: usize) -> Vec<Value> {
    (0..count)
        .map(|i| json!({"id": 800_000_000 + i, "full_name": format!("acme-corp/repo-{i:06}")}))
        .collect()
}

fn acme() -> Account {
    Account {
        login: "acme-corp".to_owned(),
        kind: "Organization".to_owned(),
        id: Some(9100001),
    }
}

fn repo_ref(github_id: i64, name: &str) -> RepoRef {
    RepoRef {
        github_id,
        name: RepoName::parse(name).unwrap(),
    }
}

async fn html_page(app: &TestApp, path: &str) -> (u16, String) {
    let response = app
        .client
        .get(app.url(path))
        .bearer_auth(ADMIN_TOKEN)
        .header("Accept", "text/html")
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

#[tokio::test]
async fn an_installation_with_100000_repositories_is_stored_whole_and_stays_cheap_to_use() {
    let app = spawn_app().await;
    let mut added = fixture("installation_repositories.added");
    set(
        &mut added,
        "/repositories_added",
        Value::Array(many_repositories(100_000)),
    );

    let started = Instant::now();
    let (status, body) = app.deliver("installation_repositories", &added).await;
    let took = started.elapsed();

    eprintln!("bench: installation_repositories.added with 100000 repositories applied in {took:?}");
    assert_eq!((status, body["outcome"].as_str()), (200, Some("processed")), "{body}");
    assert_eq!(app.count_rows("connection_repository").await, 100_000);

    // The API shows a count and a sample; the rest come a page at a time.
    let (_, connection) = app.admin_get("/api/connections/1").await;
    assert_eq!(connection["repository_count"], 100_000);
    assert_eq!(connection["repositories"].as_array().unwrap().len(), 100);
    assert_eq!(connection["repositories"][0], "acme-corp/repo-000000");
    let (status, page) = app
        .admin_get("/api/connections/1/repositories?after=acme-corp/repo-000999&limit=1000")
        .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["repositories"].as_array().unwrap().len(), 1000);
    assert_eq!(page["repositories"][0], "acme-corp/repo-001000");
    assert_eq!(
        page["next"],
        "/api/connections/1/repositories?after=acme-corp/repo-001999&limit=1000"
    );

    // A deployment webhook looks its repository up by key instead of loading all of them.
    // (A transaction counts the statements sent and rows read through it.)
    let counting = app.store.begin().await.unwrap();
    let now = app.clock.now();
    let installation = InstallationId(41000001);
    let listed = repo_ref(800_054_321, "acme-corp/Repo-054321");
    let unlisted = repo_ref(700_000_001, "acme-corp/web-app");
    let found = shiplog::connections::for_repository_event(&counting, installation, &acme(), &listed, now)
        .await
        .unwrap();
    let (_, listed_rows) = counting.cost();
    shiplog::connections::for_repository_event(&counting, installation, &acme(), &unlisted, now)
        .await
        .unwrap()
        .unwrap();
    let (statements, rows) = counting.cost();
    counting.commit().await.unwrap();
    assert!(found.is_ok());
    assert!(listed_rows <= 3, "{listed_rows} rows read for a listed repository");
    assert!(
        statements <= 12 && rows <= 8,
        "{statements} statements and {rows} rows read for two deployment events"
    );
    let deployment = fixture("deployment.created");
    let started = Instant::now();
    let (status, body) = app.deliver("deployment", &deployment).await;
    eprintln!(
        "bench: deployment webhook with 100000 repositories: {:?}",
        started.elapsed()
    );
    assert_eq!((status, body["outcome"].as_str()), (200, Some("processed")), "{body}");

    // The history page suggests a few names in its search field, not every repository.
    let (status, html) = html_page(&app, "/deployments").await;
    let (_, filtered) = html_page(&app, "/deployments?repository=ACME-corp/repo-0999").await;
    assert_eq!(status, 200);
    assert!(html.len() < 200_000, "the history page is {} bytes", html.len());
    assert_eq!(html.matches("acme-corp/repo-").count(), 50, "50 suggestions");
    assert!(
        filtered.contains("\"acme-corp/repo-099900\""),
        "suggestions follow what was typed"
    );
    assert!(!filtered.contains("acme-corp/repo-000000"));
}

#[tokio::test]
async fn adding_and_removing_repositories_takes_a_statement_per_500_not_one_per_repository() {
    let app = spawn_app().await;
    app.deliver("installation", &fixture("installation.created")).await;
    let snapshot = InstallationSnapshot {
        installation_id: InstallationId(41000001),
        account: acme(),
        repository_selection: "selected".to_owned(),
        suspended_at: None,
    };
    let repos: Vec<RepoRef> = (0..2_000)
        .map(|i| repo_ref(800_000_000 + i, &format!("acme-corp/repo-{i:06}")))
        .collect();
    let added = RepositoriesChanged {
        installation: snapshot.clone(),
        added: repos.clone(),
        removed: Vec::new(),
    };
    let removed = RepositoriesChanged {
        installation: snapshot,
        added: Vec::new(),
        removed: repos[..1_500].to_vec(),
    };

    // Each in a transaction, which counts the statements sent through it.
    let mut taken = Vec::new();
    for change in [&added, &added, &removed] {
        let tx = app.store.begin().await.unwrap();
        shiplog::connections::apply_repositories_changed(&tx, change, app.clock.now())
            .await
            .unwrap();
        taken.push(tx.cost());
        tx.commit().await.unwrap();
    }
    let [adding, again, removing] = taken[..] else {
        unreachable!()
    };

    // 2,000 repositories: 4 reads and 4 inserts, plus the connection's own few statements.
    assert!(adding.0 <= 12, "{adding:?} to add 2,000");
    assert!(again.0 <= 8, "{again:?} to add 2,000 known ones");
    assert!(removing.0 <= 8, "{removing:?} to remove 1,500");
    assert_eq!(app.count_rows("connection_repository").await, 2 + 500);
}

#[tokio::test]
async fn a_renamed_repository_in_a_batch_gets_its_new_name_once() {
    let app = spawn_app().await;
    app.deliver("installation", &fixture("installation.created")).await;
    let mut renamed = fixture("installation_repositories.added");
    set(
        &mut renamed,
        "/repositories_added",
        json!([
            {"id": 700000001, "full_name": "acme-corp/web-app-renamed"},
            {"id": 800000001, "full_name": "acme-corp/new-one"},
            {"id": 800000001, "full_name": "acme-corp/New-One"}
        ]),
    );

    let (status, _) = app.deliver("installation_repositories", &renamed).await;

    assert_eq!(status, 200);
    let (_, c) = app.admin_get("/api/connections/1").await;
    assert_eq!(
        repo_names(&c),
        vec!["acme-corp/billing", "acme-corp/New-One", "acme-corp/web-app-renamed"]
    );
    assert_eq!(c["repository_count"], 3);
}

#[tokio::test]
async fn an_ignored_pattern_full_of_stars_is_matched_at_once_against_a_long_environment() {
    let app = spawn_app().await;
    app.deliver("installation", &fixture("installation.created")).await;
    let patterns = json!({"ignored_environments": ["*-*-*-*-*-*-*-*-canary", "*-*-*-*-*-*-*-*-*-*-*-*-x"]});
    let patch = app
        .client
        .patch(app.url("/api/connections/1"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&patterns)
        .send()
        .await
        .unwrap();
    assert_eq!(patch.status(), 200);
    let environment = format!("{}y", "-".repeat(254));
    let mut deployment = fixture("deployment.created");
    set(&mut deployment, "/deployment/environment", json!(environment));
    set(&mut deployment, "/deployment/original_environment", json!(environment));

    // A backtracking matcher would spend years here; a bound keeps the failure visible.
    let started = Instant::now();
    let (status, body) = tokio::time::timeout(Duration::from_secs(10), app.deliver("deployment", &deployment))
        .await
        .expect("the deployment is answered within 10 s");

    eprintln!(
        "bench: deployment against two 8- and 12-star patterns: {:?}",
        started.elapsed()
    );
    assert_eq!((status, body["outcome"].as_str()), (200, Some("processed")), "{body}");
}

#[tokio::test]
async fn more_than_100_ignored_patterns_are_refused_naming_the_field() {
    let app = spawn_app().await;
    app.deliver("installation", &fixture("installation.created")).await;
    let too_many: Vec<String> = (0..101).map(|i| format!("pr-{i}-*")).collect();

    let response = app
        .client
        .patch(app.url("/api/connections/1"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({ "ignored_environments": too_many }))
        .send()
        .await
        .unwrap();
    let (status, body) = status_and_json(response).await;

    assert_eq!(status, 422, "{body}");
    assert_eq!(body["errors"][0]["field"], "ignored_environments");
    let (_, c) = app.admin_get("/api/connections/1").await;
    assert_eq!(c["settings"]["ignored_environments"], json!([]));
}

#[tokio::test]
async fn a_credential_of_a_deleted_installation_changes_nothing() {
    let app = spawn_app().await;
    app.deliver("installation", &fixture("installation.created")).await;
    let credential = crate::explicit_api::create_credential(&app, 1).await;
    let mut deleted = fixture("installation.created");
    set(&mut deleted, "/action", json!("deleted"));
    assert_eq!(app.deliver("installation", &deleted).await.0, 200);
    let sha = "a".repeat(40);
    let writes = [
        (
            "/deployments",
            json!({"repository": "acme-corp/web-app", "environment": "production", "sha": sha}),
        ),
        (
            "/api/triggers",
            json!({"repository": "acme-corp/web-app", "environment": "production", "sha": sha,
                   "target_url": "https://agent.example/hook"}),
        ),
        (
            "/api/monitoring-plans",
            json!({"repository": "acme-corp/web-app", "pull_number": 7}),
        ),
    ];

    for (path, body) in writes {
        let response = app
            .client
            .post(app.url(path))
            .basic_auth(&credential.username, Some(&credential.password))
            .json(&body)
            .send()
            .await
            .unwrap();
        let (status, problem) = status_and_json(response).await;
        assert_eq!(
            (status, problem["type"].as_str()),
            (403, Some("urn:shiplog:problem:connection-deleted")),
            "{path}: {problem}"
        );
    }
    for table in ["deployment", "trigger", "monitoring_plan"] {
        assert_eq!(app.count_rows(table).await, 0, "{table}");
    }
}

#[tokio::test]
async fn settings_with_control_characters_are_refused_together_and_nothing_is_written() {
    let app = spawn_app().await;
    app.deliver("installation", &fixture("installation.created")).await;

    let response = app
        .client
        .patch(app.url("/api/connections/1"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({
            "auto_create_deployments": "x",
            "agent_secret": "s\u{0}x",
            "agent_url": "https://agent.example/a\tb",
            "ignored_environments": ["pr-\u{0}*"],
        }))
        .send()
        .await
        .unwrap();
    let (status, body) = status_and_json(response).await;

    assert_eq!(status, 422, "{body}");
    let mut fields: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        [
            "agent_secret",
            "agent_url",
            "auto_create_deployments",
            "ignored_environments[0]"
        ]
    );
    let (_, c) = app.admin_get("/api/connections/1").await;
    assert_eq!(c["settings"]["auto_create_deployments"], true);
    assert_eq!(c["settings"]["agent_url"], Value::Null);

    // Characters, not bytes: 300 × "é" is 600 bytes and fits.
    let response = app
        .client
        .patch(app.url("/api/connections/1"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({ "agent_secret": "é".repeat(300) }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

/// The connection of a repository named without one (admin calls): the one whose installation
/// lists it, else the one whose account owns it (any case), else none.
#[tokio::test]
async fn the_owning_connection_is_the_listing_one_else_the_owners() {
    let app = spawn_app().await;
    app.deliver("installation", &fixture("installation.created")).await;
    let mut contractor = fixture("installation.created");
    set(&mut contractor, "/installation/id", json!(41000002));
    set(&mut contractor, "/installation/account/login", json!("contractor"));
    set(&mut contractor, "/installation/account/id", json!(9100002));
    set(
        &mut contractor,
        "/repositories",
        json!([{"id": 700000099, "node_id": "R_x", "name": "outsourced", "full_name": "acme-corp/Outsourced", "private": true}]),
    );
    assert_eq!(app.deliver("installation", &contractor).await.0, 200);
    let owner = |repository: &'static str| {
        let app = &app;
        async move {
            let response = app
                .client
                .post(app.url("/api/monitoring-plans"))
                .bearer_auth(ADMIN_TOKEN)
                .json(&json!({"repository": repository, "pull_number": 7}))
                .send()
                .await
                .unwrap();
            let (status, body) = status_and_json(response).await;
            (status, body["connection_id"].clone())
        }
    };

    assert_eq!(
        owner("acme-corp/outsourced").await,
        (201, json!(2)),
        "listed by the contractor's installation"
    );
    assert_eq!(
        owner("ACME-corp/unlisted").await,
        (201, json!(1)),
        "owned by acme-corp's account"
    );
    assert_eq!(owner("stranger/repo").await.0, 422, "no connection");
}

/// PostgreSQL: the intake cache's version is one row that triggers raise when `connection` or
/// `connection_repository` rows change. Raised once per row, a transaction writing a large
/// repository list paid about N² for it (40,000 repositories: 16.5 s on the release binary, 0.7 s
/// with the trigger disabled) while holding the row's lock, and another installation's change of
/// its own connection waited behind it: a deployment for a repository its installation had not
/// listed yet (which adds the repository) took 18.4 s. The version is now raised once per
/// statement: the list is written well within GitHub's 10 s, and whoever waits for the version
/// row waits that long at most. SQLite has one writer, so there deliveries wait for each other by
/// design.
#[tokio::test]
async fn one_installations_large_repository_list_does_not_hold_up_another_installations_deliveries() {
    let app = spawn_app().await;
    if app.store.is_sqlite() {
        return;
    }
    let mut other = fixture("installation.created");
    set(&mut other, "/installation/id", json!(52000001));
    set(&mut other, "/installation/account/login", json!("other-org"));
    set(
        &mut other,
        "/repositories",
        json!([{"id": 600_000_001, "full_name": "other-org/api", "name": "api", "private": false}]),
    );
    let (status, body) = app.deliver("installation", &other).await;
    assert_eq!((status, body["outcome"].as_str()), (200, Some("processed")), "{body}");

    let mut added = fixture("installation_repositories.added");
    set(
        &mut added,
        "/repositories_added",
        Value::Array(many_repositories(40_000)),
    );
    let mut deployment = fixture("deployment.created");
    set(&mut deployment, "/installation/id", json!(52000001));
    set(&mut deployment, "/repository/full_name", json!("other-org/worker"));
    set(&mut deployment, "/repository/name", json!("worker"));
    set(&mut deployment, "/repository/id", json!(600_000_002));
    set(&mut deployment, "/repository/owner/login", json!("other-org"));

    let started = Instant::now();
    let large = async {
        let answer = app.deliver("installation_repositories", &added).await;
        (answer, started.elapsed())
    };
    let small = async {
        // Once the large list's transaction is under way.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let sent = Instant::now();
        let answer = app.deliver("deployment", &deployment).await;
        (answer, sent.elapsed(), started.elapsed())
    };
    let (((large_status, large_body), large_done), ((status, body), took, small_done)) = tokio::join!(large, small);
    eprintln!(
        "bench: 40000 repositories answered after {large_done:?}; the other installation's deployment took {took:?}"
    );
    assert_eq!(
        (large_status, large_body["outcome"].as_str()),
        (200, Some("processed")),
        "{large_body}"
    );
    assert_eq!((status, body["outcome"].as_str()), (200, Some("processed")), "{body}");
    assert!(
        large_done < Duration::from_secs(10),
        "40,000 repositories took {large_done:?}: GitHub gives up after 10 s"
    );
    assert!(
        took < Duration::from_secs(5),
        "the other installation's deployment took {took:?} beside the repository list ({large_done:?}, done at {small_done:?})"
    );
}
