//! The live board (`/`, `GET /api/live`) and a repository's page: what is live where, the newest
//! attempt when it is not the live one, titles, drift between neighbours, filters and scope.
//! Deploy, PR, commit and drift rows are written straight into the store, so each test says
//! exactly what the board reads.

use chrono::{DateTime, Duration, Utc};
use sea_orm::{ActiveModelTrait, NotSet, Set};
use serde_json::{json, Value};
use shiplog::clock::Clock;

use crate::explicit_api::create_credential;
use crate::helpers::{fixture, set, spawn_app, status_and_json, TestApp, ADMIN_TOKEN};
use crate::hostile_pages::HOSTILE_NAMES;

const API: &str = "acme-corp/web-app";
const BILLING: &str = "acme-corp/billing";
const OTHER: &str = "globex/shop";

/// A distinct full SHA for each `n` (its short form differs too).
pub fn sha(n: u32) -> String {
    format!("{:08x}", n.wrapping_mul(2_654_435_761)).repeat(5)
}

/// Connection 1 (acme-corp, from the fixture) and connection 2 (globex).
pub async fn two_connections() -> TestApp {
    let app = spawn_app().await;
    assert_eq!(
        app.deliver("installation", &fixture("installation.created")).await.0,
        200
    );
    let mut other = fixture("installation.created");
    set(&mut other, "/installation/id", json!(41000077));
    set(&mut other, "/installation/account/login", json!("globex"));
    set(&mut other, "/installation/account/id", json!(9100077));
    other["repositories"] =
        json!([{"id": 700000077, "node_id": "R_x", "name": "shop", "full_name": OTHER, "private": true}]);
    let (status, body) = app.deliver("installation", &other).await;
    assert_eq!(status, 200, "{body}");
    app
}

pub struct Deploy<'a> {
    pub connection: i64,
    pub repository: &'a str,
    pub environment: &'a str,
    pub sha: String,
    pub status: &'a str,
    pub minutes_ago: i64,
    pub creator: Option<&'a str>,
    pub production_flag: bool,
}

impl<'a> Deploy<'a> {
    pub fn live(repository: &'a str, environment: &'a str, sha: String, minutes_ago: i64) -> Self {
        Self {
            connection: 1,
            repository,
            environment,
            sha,
            status: "live",
            minutes_ago,
            creator: Some("alice"),
            production_flag: false,
        }
    }

    pub fn status(mut self, status: &'a str) -> Self {
        self.status = status;
        self
    }

    pub fn connection(mut self, id: i64) -> Self {
        self.connection = id;
        self
    }
}

fn now(app: &TestApp) -> DateTime<Utc> {
    app.clock.now()
}

/// Writes a deploy row as the lifecycle would have left it.
pub async fn insert_deploy(app: &TestApp, d: Deploy<'_>) -> i64 {
    let at = now(app) - Duration::minutes(d.minutes_ago);
    let tx = app.store.begin().await.unwrap();
    let row = entity::deployment::ActiveModel {
        id: NotSet,
        connection_id: Set(d.connection),
        repository: Set(d.repository.to_owned()),
        repository_key: Set(d.repository.to_lowercase()),
        environment: Set(d.environment.to_owned()),
        sha: Set(d.sha.clone()),
        git_ref: Set(Some("main".to_owned())),
        source: Set("api".to_owned()),
        github_deployment_id: Set(None),
        external_id: Set(None),
        version: Set(None),
        creator: Set(d.creator.map(str::to_owned)),
        description: Set(None),
        log_url: Set(None),
        environment_url: Set(None),
        transient_environment: Set(false),
        production_environment: Set(d.production_flag),
        status: Set(d.status.to_owned()),
        status_at: Set(at),
        status_github_id: Set(0),
        deploy_time: Set(at),
        completed_at: Set(matches!(d.status, "live" | "failed" | "superseded" | "rolled_back").then_some(at)),
        duration_seconds: Set(None),
        superseded_by_id: Set(None),
        rollback_target_id: Set(None),
        github_run_id: Set(None),
        run_attempt: Set(None),
        backfilled: Set(false),
        recorded_at: Set(at),
        updated_at: Set(at),
    }
    .insert(&tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    row.id
}

pub async fn insert_pull_request(app: &TestApp, repository: &str, number: i64, title: &str, merge_sha: &str) {
    let tx = app.store.begin().await.unwrap();
    entity::pull_request::ActiveModel {
        id: NotSet,
        connection_id: Set(1),
        repository: Set(repository.to_owned()),
        repository_key: Set(repository.to_lowercase()),
        number: Set(number),
        title: Set(title.to_owned()),
        author: Set(Some("bob".to_owned())),
        merge_commit_sha: Set(merge_sha.to_owned()),
        merged_at: Set(now(app) - Duration::days(2)),
        created_at: Set(None),
        recorded_at: Set(now(app)),
    }
    .insert(&tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
}

pub async fn insert_commit(app: &TestApp, repository: &str, sha: &str, title: &str) {
    let tx = app.store.begin().await.unwrap();
    entity::commit_info::ActiveModel {
        id: NotSet,
        repository_key: Set(repository.to_lowercase()),
        sha: Set(sha.to_owned()),
        parent_shas: Set(String::new()),
        title: Set(title.to_owned()),
        author_login: Set(None),
        author_name: Set(None),
        authored_at: Set(None),
        reverts_sha: Set(None),
        reverts_pull_request: Set(None),
        recorded_at: Set(now(app)),
    }
    .insert(&tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
}

#[allow(clippy::too_many_arguments)]
pub async fn insert_drift(
    app: &TestApp,
    repository: &str,
    (from, from_sha): (&str, &str),
    (to, to_sha): (&str, &str),
    state: &str,
    (ahead_by, behind_by, pull_requests): (i64, i64, i64),
    oldest_days: Option<i64>,
) {
    let tx = app.store.begin().await.unwrap();
    shiplog::store::drift::save(
        &tx,
        &shiplog::store::drift::DriftRow {
            connection_id: 1,
            repository: repository.to_owned(),
            repository_key: repository.to_lowercase(),
            from_environment: from.to_owned(),
            to_environment: to.to_owned(),
            from_deployment_id: None,
            to_deployment_id: None,
            from_sha: from_sha.to_owned(),
            to_sha: to_sha.to_owned(),
            state: state.to_owned(),
            ahead_by,
            behind_by,
            pull_requests,
            oldest_merged_at: oldest_days.map(|d| now(app) - Duration::days(d)),
            note: None,
            computed_at: now(app),
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
}

async fn board(app: &TestApp, query: &str) -> Value {
    let (status, body) = app.admin_get(&format!("/api/live{query}")).await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn page(app: &TestApp, path: &str) -> (u16, String) {
    let response = app
        .client
        .get(app.url(path))
        .bearer_auth(ADMIN_TOKEN)
        .header("Accept", "text/html")
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

fn section<'a>(board: &'a Value, account: &str) -> &'a Value {
    board["connections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["account"] == account)
        .unwrap_or_else(|| panic!("no section {account}: {board}"))
}

fn row<'a>(section: &'a Value, repository: &str) -> &'a Value {
    section["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["repository"] == repository)
        .unwrap_or_else(|| panic!("no row {repository}: {section}"))
}

fn cell<'a>(section: &'a Value, repository: &str, environment: &str) -> &'a Value {
    let column = section["environments"]
        .as_array()
        .unwrap()
        .iter()
        .position(|e| e == environment)
        .unwrap_or_else(|| panic!("no column {environment}: {section}"));
    &row(section, repository)["cells"][column]
}

/// web-app: dev, staging, production live; production's newest attempt failed. billing: staging
/// live with a newer one deploying, production live with a newer one rolled back.
pub async fn a_typical_org(app: &TestApp) -> Vec<i64> {
    let ids = vec![
        insert_deploy(app, Deploy::live(API, "production", sha(1), 600)).await,
        insert_deploy(app, Deploy::live(API, "staging", sha(2), 120)).await,
        insert_deploy(app, Deploy::live(API, "dev", sha(3), 30)).await,
        insert_deploy(app, Deploy::live(API, "production", sha(2), 20).status("failed")).await,
        insert_deploy(app, Deploy::live(BILLING, "staging", sha(10), 300)).await,
        insert_deploy(app, Deploy::live(BILLING, "staging", sha(11), 5).status("deploying")).await,
        insert_deploy(app, Deploy::live(BILLING, "production", sha(9), 900)).await,
        insert_deploy(
            app,
            Deploy::live(BILLING, "production", sha(12), 60).status("rolled_back"),
        )
        .await,
        insert_deploy(
            app,
            Deploy::live(BILLING, "production", sha(8), 1000).status("superseded"),
        )
        .await,
    ];
    insert_pull_request(app, API, 42, "Faster checkout", &sha(2)).await;
    insert_commit(app, API, &sha(2), "Merge pull request #42").await;
    insert_commit(app, API, &sha(3), "Try the new cache\n\nlong body").await;
    ids
}

#[tokio::test]
async fn the_board_has_a_row_per_repository_and_environments_in_the_order_code_travels() {
    let app = two_connections().await;
    let ids = a_typical_org(&app).await;

    let body = board(&app, "").await;

    let acme = section(&body, "acme-corp");
    assert_eq!(acme["environments"], json!(["dev", "staging", "production"]));
    let repos: Vec<&str> = acme["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["repository"].as_str().unwrap())
        .collect();
    assert_eq!(repos, [BILLING, API]);
    // billing has no dev deploy: an empty cell keeps the columns aligned.
    assert_eq!(row(acme, BILLING)["cells"][0], Value::Null);

    let production = cell(acme, API, "production");
    assert_eq!(production["live"]["deployment_id"], ids[0]);
    assert_eq!(production["live"]["sha"], sha(1));
    assert_eq!(production["live"]["short_sha"], &sha(1)[..7]);
    assert_eq!(production["live"]["creator"], "alice");
    assert_eq!(production["attempt"]["deployment_id"], ids[3]);
    assert_eq!(production["attempt"]["status"], "failed");
    // The merged PR's title wins over the commit's first line; else the commit's first line.
    let staging = cell(acme, API, "staging");
    assert_eq!(staging["live"]["title"], "Faster checkout");
    assert_eq!(staging["live"]["pull_request"], 42);
    assert_eq!(staging["attempt"], Value::Null);
    assert_eq!(cell(acme, API, "dev")["live"]["title"], "Try the new cache");
    assert_eq!(production["live"]["title"], Value::Null);

    assert_eq!(cell(acme, BILLING, "staging")["attempt"]["status"], "deploying");
    assert_eq!(cell(acme, BILLING, "staging")["attempt"]["deployment_id"], ids[5]);
    assert_eq!(cell(acme, BILLING, "production")["attempt"]["status"], "rolled_back");
    assert_eq!(cell(acme, BILLING, "production")["live"]["deployment_id"], ids[6]);

    // The connection's order wins: named environments in that order, production-like last.
    // Changing it queues drift recomputes (tests/api/drift.rs runs them); this test reads cells.
    app.allow_jobs(&["drift.recompute"]);
    let (status, patched) = status_and_json(
        app.client
            .patch(app.url("/api/connections/1"))
            .bearer_auth(ADMIN_TOKEN)
            .json(&json!({"environment_order": ["staging", "dev"]}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{patched}");
    let reordered = board(&app, "").await;
    assert_eq!(
        section(&reordered, "acme-corp")["environments"],
        json!(["staging", "dev", "production"])
    );
}

#[tokio::test]
async fn the_board_is_filtered_by_repository_and_connection_and_a_credential_sees_its_own_only() {
    let app = two_connections().await;
    a_typical_org(&app).await;
    let shop = insert_deploy(&app, Deploy::live(OTHER, "production", sha(20), 10).connection(2)).await;

    let all = board(&app, "").await;
    assert_eq!(all["connections"].as_array().unwrap().len(), 2);
    let only_api = board(&app, "?repository=ACME-corp/Web-App").await;
    let acme = section(&only_api, "acme-corp");
    assert_eq!(acme["rows"].as_array().unwrap().len(), 1);
    assert_eq!(acme["rows"][0]["repository"], API);
    assert_eq!(only_api["connections"].as_array().unwrap().len(), 1);
    let only_globex = board(&app, "?connection=2").await;
    assert_eq!(only_globex["connections"].as_array().unwrap().len(), 1);
    assert_eq!(
        cell(section(&only_globex, "globex"), OTHER, "production")["live"]["deployment_id"],
        shop
    );
    let (status, problem) = app.admin_get("/api/live?connection=abc&repository=not-a-repo").await;
    assert_eq!(status, 422, "{problem}");
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["repository", "connection"]);

    // A deploy credential of connection 1: its connection only, 403 for the other's, and the
    // other's repository page does not exist.
    let cred = create_credential(&app, 1).await;
    let get = |path: &str| {
        app.client
            .get(app.url(path))
            .basic_auth(&cred.username, Some(&cred.password))
            .header("Accept", "application/json")
            .send()
    };
    let (status, own) = status_and_json(get("/api/live").await.unwrap()).await;
    assert_eq!(status, 200, "{own}");
    let accounts: Vec<&str> = own["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["account"].as_str().unwrap())
        .collect();
    assert_eq!(accounts, ["acme-corp"]);
    let (status, refused) = status_and_json(get("/api/live?connection=2").await.unwrap()).await;
    assert_eq!(status, 403, "{refused}");
    let other_page = app
        .client
        .get(app.url("/repositories/globex/shop"))
        .basic_auth(&cred.username, Some(&cred.password))
        .send()
        .await
        .unwrap();
    assert_eq!(other_page.status(), 404);
    let own_page = app
        .client
        .get(app.url("/repositories/acme-corp/web-app"))
        .basic_auth(&cred.username, Some(&cred.password))
        .send()
        .await
        .unwrap();
    assert_eq!(own_page.status(), 200);
}

#[tokio::test]
async fn drift_between_neighbours_is_shown_as_stored_and_as_computing_when_stale_or_missing() {
    let app = two_connections().await;
    a_typical_org(&app).await;
    // web-app: dev → staging ahead by 3 commits / 2 PRs; staging → production stored for an
    // older production SHA (stale). billing: staging → production diverged.
    insert_drift(
        &app,
        API,
        ("dev", &sha(3)),
        ("staging", &sha(2)),
        "ahead",
        (3, 0, 2),
        Some(2),
    )
    .await;
    insert_drift(
        &app,
        API,
        ("staging", &sha(2)),
        ("production", &sha(7)),
        "in_sync",
        (0, 0, 0),
        None,
    )
    .await;
    insert_drift(
        &app,
        BILLING,
        ("staging", &sha(10)),
        ("production", &sha(9)),
        "diverged",
        (1, 4, 0),
        None,
    )
    .await;

    let body = board(&app, "").await;
    let acme = section(&body, "acme-corp");
    assert_eq!(cell(acme, API, "dev")["drift"], Value::Null);
    let staging = &cell(acme, API, "staging")["drift"];
    assert_eq!(staging["from_environment"], "dev");
    assert_eq!(staging["state"], "ahead");
    assert_eq!(staging["commits"], 3);
    assert_eq!(staging["pull_requests"], 2);
    assert_eq!(cell(acme, API, "production")["drift"]["state"], "computing");
    let billing = &cell(acme, BILLING, "production")["drift"];
    assert_eq!(billing["state"], "diverged");
    assert_eq!(billing["behind_by"], 4);

    let (status, html) = page(&app, "/").await;
    assert_eq!(status, 200);
    assert!(html.contains("2 PRs behind dev · oldest 2 days"), "{html}");
    assert!(html.contains("diverged from staging"), "{html}");
    assert!(html.contains("computing…"), "{html}");

    // Once stored for the SHAs live now, in sync.
    insert_drift(
        &app,
        API,
        ("staging", &sha(2)),
        ("production", &sha(1)),
        "in_sync",
        (0, 0, 0),
        None,
    )
    .await;
    let body = board(&app, "").await;
    assert_eq!(
        cell(section(&body, "acme-corp"), API, "production")["drift"]["state"],
        "in_sync"
    );
    let (_, html) = page(&app, "/").await;
    assert!(html.contains(">in sync<"), "{html}");
}

#[tokio::test]
async fn the_board_page_links_each_cell_and_warns_when_the_newest_attempt_is_not_live() {
    let app = two_connections().await;
    let ids = a_typical_org(&app).await;

    let (status, html) = page(&app, "/").await;

    assert_eq!(status, 200);
    assert!(html.contains(&format!("href=\"/deployments/{}\"", ids[0])), "{html}");
    assert!(html.contains(&format!(">{}</a>", &sha(1)[..7])), "{html}");
    assert!(
        html.contains(&format!("href=\"/deployments/{}\"", ids[3])),
        "the warning links the attempt"
    );
    assert!(html.contains("newer deploy failed"), "{html}");
    assert!(html.contains("newer deploy deploying"), "{html}");
    assert!(html.contains("newer deploy rolled back"), "{html}");
    assert!(html.contains("Faster checkout"));
    assert!(html.contains("10 hours ago"), "{html}");
    let exact = (now(&app) - Duration::minutes(600))
        .format("%Y-%m-%d %H:%M:%S UTC")
        .to_string();
    assert!(html.contains(&exact), "{html}");
    assert!(html.contains("href=\"/repositories/acme-corp/web-app\""));
    assert!(html.contains("class=\"active\">Live<"), "the nav shows the board");

    // The repository page: environments in order, each with what went live over time.
    let (status, repo) = page(&app, "/repositories/acme-corp/billing").await;
    assert_eq!(status, 200);
    let staging = repo.find("data-environment=\"staging\"").unwrap();
    let production = repo.find("data-environment=\"production\"").unwrap();
    assert!(staging < production);
    // production: the live one since 15 hours, then the superseded one until then.
    assert!(repo.contains(&format!("href=\"/deployments/{}\"", ids[6])));
    assert!(repo.contains(&format!("href=\"/deployments/{}\"", ids[8])));
    assert!(repo.contains("15 hours ago"), "{repo}");
    let (status, _) = page(&app, "/repositories/acme-corp/nothing-here").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn signing_in_lands_on_the_board() {
    let app = spawn_app().await;
    let client = crate::pages::no_redirects();
    let csrf_cookie = crate::pages::login_form(&app, &client).await;
    let csrf = csrf_cookie.split_once('=').unwrap().1.to_owned();

    let response = client
        .post(app.url("/login"))
        .header("Cookie", &csrf_cookie)
        .form(&[("token", ADMIN_TOKEN), ("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()["location"], "/");
    let anonymous = client.get(app.url("/")).send().await.unwrap();
    assert_eq!(anonymous.status(), 303);
    assert!(anonymous.headers()["location"].to_str().unwrap().starts_with("/login"));
}

#[tokio::test]
async fn hostile_names_on_the_board_are_inert_text() {
    let app = two_connections().await;
    for (n, name) in HOSTILE_NAMES.iter().enumerate() {
        let mut d = Deploy::live(API, name, sha(100 + n as u32), 10);
        d.creator = Some(HOSTILE_NAMES[(n + 1) % HOSTILE_NAMES.len()]);
        insert_deploy(&app, d).await;
        insert_pull_request(&app, API, 100 + n as i64, name, &sha(100 + n as u32)).await;
    }

    let (status, html) = page(&app, "/").await;
    let (repo_status, repo) = page(&app, "/repositories/acme-corp/web-app").await;

    assert_eq!((status, repo_status), (200, 200));
    for text in [&html, &repo] {
        for name in HOSTILE_NAMES {
            if name.contains('<') {
                assert!(!text.contains(name), "{name} appears unescaped");
            }
        }
        assert!(!text.contains("<script>alert"), "{text}");
        assert!(!text.contains("<img src=x"));
    }
    assert!(html.contains("&#60;script&#62;alert(1)&#60;/script&#62;"), "{html}");
}
