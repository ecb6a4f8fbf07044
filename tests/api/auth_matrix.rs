//! Who may call what: every route, called by every kind of caller, gets the answer the README's
//! "Who may call what" table documents. One table here, one there; change both together.

use std::time::Duration;

use serde_json::{json, Value};
use shiplog::config::{GitHubAppCredentials, Secret};

use crate::explicit_api::{create_credential, Cred};
use crate::fake_agent::{FakeAgent, AGENT_SECRET};
use crate::fake_github::{private_key_pem, FakeGitHub, APP_ID};
use crate::git::GitRepo;
use crate::helpers::{fixture, set, spawn_app_with, status_and_json, TestApp, ADMIN_TOKEN};
use crate::pages::{login_form, no_redirects, session};

const REPO: &str = "acme-corp/web-app";
const CONNECTION_AGENT_SECRET: &str = "connection-1-own-agent-secret";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Caller {
    Nobody,
    WrongAdminToken,
    AdminToken,
    /// A signed-in browser whose form carries no valid CSRF token.
    Session,
    /// A signed-in browser with its CSRF cookie and the form's token.
    SessionWithCsrf,
    /// A deploy credential of connection 1, which owns every resource below.
    OwnCredential,
    /// A deploy credential of connection 2.
    OtherCredential,
    RevokedCredential,
    /// Signed with `SHIPLOG_AGENT_SECRET`.
    ServerAgent,
    /// Signed with connection 1's own `agent_secret`.
    ConnectionAgent,
}

pub(crate) const CALLERS: [Caller; 10] = [
    Caller::Nobody,
    Caller::WrongAdminToken,
    Caller::AdminToken,
    Caller::Session,
    Caller::SessionWithCsrf,
    Caller::OwnCredential,
    Caller::OtherCredential,
    Caller::RevokedCredential,
    Caller::ServerAgent,
    Caller::ConnectionAgent,
];

enum Body {
    Empty,
    Json(Value),
    /// Form fields; the caller's CSRF token is added as `csrf`.
    Form(Vec<(&'static str, String)>),
}

/// A resource made afresh for each call, so a call that deletes it leaves the next caller one.
#[derive(Clone, Copy)]
enum Fresh {
    Nothing,
    Trigger,
    Plan,
    Credential,
}

pub(crate) struct Row {
    method: &'static str,
    path: String,
    accept: &'static str,
    body: Body,
    fresh: Fresh,
    /// One answer per caller, in `CALLERS` order: `ok` (2xx, or a redirect that is not to the
    /// sign-in page), `login` (303 to `/login`), or a status code.
    expected: &'static str,
}

pub(crate) struct World {
    pub(crate) app: TestApp,
    _repo: GitRepo,
    _github: FakeGitHub,
    _agent: FakeAgent,
    own: Cred,
    other: Cred,
    revoked: Cred,
    deploy: i64,
    trigger: i64,
    plan: i64,
    check: i64,
    merged: String,
    next_pull: std::cell::Cell<i64>,
    /// (method, path pattern, status) of each JSON answer checked against the API document.
    pub(crate) answered: std::cell::RefCell<Vec<(String, String, u16)>>,
}

pub(crate) async fn world() -> World {
    let repo = GitRepo::new();
    let merged = repo.commit("PR #94");
    let github = FakeGitHub::start().await;
    github.add_repo(REPO, &repo);
    let agent = FakeAgent::start().await;
    let (url, agent_config) = (github.url.clone(), agent.config());
    let app = spawn_app_with(move |config| {
        config.github_api_url = url;
        config.github_app = Some(GitHubAppCredentials {
            app_id: APP_ID,
            private_key_pem: Secret::new(private_key_pem()),
        });
        config.agent = Some(agent_config);
        config.monitor_schedule = vec![Duration::from_secs(600)];
    })
    .await;
    assert_eq!(
        app.deliver("installation", &fixture("installation.created")).await.0,
        200
    );
    let mut other_org = fixture("installation.created");
    set(&mut other_org, "/installation/id", json!(42_000_002));
    set(&mut other_org, "/installation/account/login", json!("other-org"));
    set(&mut other_org, "/installation/account/id", json!(9_000_002));
    set(&mut other_org, "/repositories", json!([]));
    assert_eq!(app.deliver("installation", &other_org).await.0, 200);
    let patched = app
        .client
        .patch(app.url("/api/connections/1"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"agent_secret": CONNECTION_AGENT_SECRET}))
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), 200);

    let own = create_credential(&app, 1).await;
    let other = create_credential(&app, 2).await;
    let revoked = create_credential(&app, 1).await;
    let revoke = app
        .client
        .delete(app.url(&format!("/api/connections/1/credentials/{}", revoked.id)))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert!(revoke.status().is_success());

    let mut pr = fixture("pull_request.closed");
    set(&mut pr, "/number", json!(94));
    set(&mut pr, "/pull_request/number", json!(94));
    set(&mut pr, "/pull_request/merge_commit_sha", json!(merged));
    assert_eq!(app.deliver("pull_request", &pr).await.0, 200);
    let (status, plan) = admin_post(
        &app,
        "/api/monitoring-plans",
        json!({"repository": REPO, "pull_number": 94}),
    )
    .await;
    assert!(status < 300, "{plan}");
    let deploy = app.live_deploy(REPO, &merged, "production").await;
    app.run_jobs().await;
    let plan_id = plan["id"].as_i64().unwrap();
    let (_, plan) = app.admin_get(&format!("/api/monitoring-plans/{plan_id}")).await;
    let check = plan["checks"][0]["id"]
        .as_i64()
        .expect("the live deploy scheduled a check");
    let trigger = fresh_trigger(&app, &merged).await;
    // The world is the callers' data; its scheduled checks and the matrix's deploys stay queued.
    app.allow_jobs(&[
        "monitoring.check",
        "monitoring.expire",
        "deploy.went_live",
        "backfill.step",
    ]);

    World {
        app,
        _repo: repo,
        _github: github,
        _agent: agent,
        own,
        other,
        revoked,
        deploy,
        trigger,
        plan: plan_id,
        check,
        merged,
        next_pull: std::cell::Cell::new(1000),
        answered: std::cell::RefCell::default(),
    }
}

async fn admin_post(app: &TestApp, path: &str, body: Value) -> (u16, Value) {
    let response = app
        .client
        .post(app.url(path))
        .bearer_auth(ADMIN_TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    status_and_json(response).await
}

async fn fresh_trigger(app: &TestApp, sha: &str) -> i64 {
    let (status, trigger) = admin_post(
        app,
        "/api/triggers",
        json!({"repository": REPO, "environment": "staging", "sha": sha, "delay_seconds": 0}),
    )
    .await;
    assert_eq!(status, 201, "{trigger}");
    trigger["id"].as_i64().unwrap()
}

impl World {
    pub(crate) fn rows(&self) -> Vec<Row> {
        let json = "application/json";
        let html = "text/html";
        let (d, t, p, c) = (self.deploy, self.trigger, self.plan, self.check);
        let row = |method, path: String, accept, body, fresh, expected| Row {
            method,
            path,
            accept,
            body,
            fresh,
            expected,
        };
        let get =
            |path: &str, accept, expected| row("GET", path.to_owned(), accept, Body::Empty, Fresh::Nothing, expected);
        vec![
            //                                   none   wrong  admin  sess   s+csrf own    other  revkd  s-agnt c-agnt
            get("/healthz", json, "ok ok ok ok ok ok ok ok ok ok"),
            get("/readyz", json, "ok ok ok ok ok ok ok ok ok ok"),
            get("/openapi.json", json, "ok ok ok ok ok ok ok ok ok ok"),
            get("/static/shiplog.css", "text/css", "ok ok ok ok ok ok ok ok ok ok"),
            row(
                "POST",
                "/webhooks/github".into(),
                json,
                Body::Json(json!({"zen": "hi"})),
                Fresh::Nothing,
                "401 401 401 401 401 401 401 401 401 401",
            ),
            // The live board and a repository's page: the admin, or a credential (its own
            // connection's only: another connection's repository does not exist).
            get("/", html, "login login ok ok ok ok ok login login login"),
            get("/api/live", json, "401 401 ok ok ok ok ok 401 401 401"),
            // Insights: as the board; another connection's repository is 403, on the page too.
            get("/insights", html, "login login ok ok ok ok ok login login login"),
            get(
                &format!("/insights?repository={REPO}"),
                html,
                "login login ok ok ok ok 403 login login login",
            ),
            get(
                &format!("/repositories/{REPO}"),
                html,
                "login login ok ok ok ok 404 login login login",
            ),
            get("/login", html, "ok ok ok ok ok ok ok ok ok ok"),
            row(
                "POST",
                "/login".into(),
                html,
                Body::Form(vec![("token", ADMIN_TOKEN.to_owned())]),
                Fresh::Nothing,
                "403 403 403 403 ok 403 403 403 403 403",
            ),
            // Signing out ends at the sign-in page.
            row(
                "POST",
                "/logout".into(),
                html,
                Body::Form(vec![]),
                Fresh::Nothing,
                "403 403 403 403 login 403 403 403 403 403",
            ),
            get("/deployments", json, "401 401 ok ok ok ok ok 401 401 401"),
            get(
                "/deployments",
                html,
                "login login ok ok ok login login login login login",
            ),
            get(
                &format!("/deployments/{d}"),
                json,
                "401 401 ok ok ok ok 404 401 401 401",
            ),
            get(
                &format!("/deployments/{d}"),
                html,
                "login login ok ok ok login login login login login",
            ),
            row(
                "POST",
                "/deployments".into(),
                json,
                Body::Json(json!({"repository": REPO, "environment": "qa", "sha": self.merged})),
                Fresh::Nothing,
                "401 401 401 401 401 ok 403 401 401 401",
            ),
            get(
                "/deployments/new",
                html,
                "login login ok ok ok login login login login login",
            ),
            row(
                "POST",
                "/deployments/new/credentials".into(),
                html,
                Body::Form(vec![("connection", "1".into()), ("name", "matrix".into())]),
                Fresh::Nothing,
                "login login 403 403 ok login login login login login",
            ),
            row(
                "POST",
                "/deployments/new/credentials/{fresh}/revoke".into(),
                html,
                Body::Form(vec![("connection", "1".into())]),
                Fresh::Credential,
                "login login 403 403 ok login login login login login",
            ),
            get("/api/connections", json, "401 401 ok ok ok 401 401 401 401 401"),
            get("/api/connections/1", json, "401 401 ok ok ok 401 401 401 401 401"),
            get(
                "/api/connections/1/repositories",
                json,
                "401 401 ok ok ok 401 401 401 401 401",
            ),
            row(
                "PATCH",
                "/api/connections/1".into(),
                json,
                Body::Json(json!({"ignore_transient_environments": false})),
                Fresh::Nothing,
                "401 401 ok 401 401 401 401 401 401 401",
            ),
            get(
                "/api/connections/1/credentials",
                json,
                "401 401 ok ok ok 401 401 401 401 401",
            ),
            row(
                "POST",
                "/api/connections/1/credentials".into(),
                json,
                Body::Json(json!({"name": "m"})),
                Fresh::Nothing,
                "401 401 ok 401 401 401 401 401 401 401",
            ),
            row(
                "DELETE",
                "/api/connections/1/credentials/{fresh}".into(),
                json,
                Body::Empty,
                Fresh::Credential,
                "401 401 ok 401 401 401 401 401 401 401",
            ),
            get(
                &format!(
                    "/api/ancestry?repository={REPO}&ancestor={0}&descendant={0}",
                    self.merged
                ),
                json,
                "401 401 ok ok ok ok 403 401 401 401",
            ),
            get(
                &format!("/api/drift?repository={REPO}"),
                json,
                "401 401 ok ok ok ok 403 401 401 401",
            ),
            get(
                &format!("/api/metrics/delivery?repository={REPO}"),
                json,
                "401 401 ok ok ok ok 403 401 401 401",
            ),
            get("/api/metrics/delivery", json, "401 401 ok ok ok ok ok 401 401 401"),
            get("/api/triggers", json, "401 401 ok ok ok ok ok 401 401 401"),
            row(
                "POST",
                "/api/triggers".into(),
                json,
                Body::Json(json!({"repository": REPO, "environment": "qa", "sha": self.merged})),
                Fresh::Nothing,
                "401 401 ok 401 401 ok 403 401 401 401",
            ),
            get(
                &format!("/api/triggers/{t}"),
                json,
                "401 401 ok ok ok ok 404 401 401 401",
            ),
            row(
                "DELETE",
                "/api/triggers/{fresh}".into(),
                json,
                Body::Empty,
                Fresh::Trigger,
                "401 401 ok 401 401 ok 404 401 401 401",
            ),
            get("/api/monitoring-plans", json, "401 401 ok ok ok ok ok 401 401 401"),
            row(
                "POST",
                "/api/monitoring-plans".into(),
                json,
                Body::Json(json!({"repository": REPO, "pull_number": 7})),
                Fresh::Nothing,
                "401 401 ok 401 401 ok 403 401 401 401",
            ),
            get(
                &format!("/api/monitoring-plans/{p}"),
                json,
                "401 401 ok ok ok ok 404 401 401 401",
            ),
            row(
                "DELETE",
                "/api/monitoring-plans/{fresh}".into(),
                json,
                Body::Empty,
                Fresh::Plan,
                "401 401 ok 401 401 ok 404 401 401 401",
            ),
            row(
                "POST",
                format!("/api/checks/{c}/result"),
                json,
                Body::Json(json!({"verdict": "healthy"})),
                Fresh::Nothing,
                "401 401 ok 401 401 401 401 401 401 ok",
            ),
            get("/api/jobs", json, "401 401 ok ok ok 401 401 401 401 401"),
            get("/api/deliveries/recovery", json, "401 401 ok ok ok 401 401 401 401 401"),
            // Only a bearer token (the admin's, or SHIPLOG_METRICS_TOKEN) reads the metrics.
            get("/metrics", json, "401 401 ok 401 401 401 401 401 401 401"),
            get(
                "/connections",
                html,
                "login login ok ok ok login login login login login",
            ),
            // The App's set-up: this world's App is configured, so the form answers 409.
            get("/setup", html, "login login ok ok ok login login login login login"),
            row(
                "POST",
                "/setup".into(),
                html,
                Body::Form(vec![("owner", "personal".into())]),
                Fresh::Nothing,
                "login login 403 403 409 login login login login login",
            ),
            // GitHub's redirect back: the single-use state is the credential, whoever calls.
            get(
                "/setup/callback?code=abc&state=forged",
                html,
                "400 400 400 400 400 400 400 400 400 400",
            ),
            get(
                "/connections/1",
                html,
                "login login ok ok ok login login login login login",
            ),
            // Connection 2's, so the one caller it lets start a backfill does not meet the one
            // the JSON row below starts for connection 1 (a second would be 409).
            row(
                "POST",
                "/connections/2/backfill".into(),
                html,
                Body::Form(vec![("since", "7d".into())]),
                Fresh::Nothing,
                "login login 403 403 ok login login login login login",
            ),
            row(
                "POST",
                "/api/connections/1/backfill".into(),
                json,
                Body::Json(json!({"since": "7d"})),
                Fresh::Nothing,
                "401 401 ok 401 401 401 401 401 401 401",
            ),
            get(
                "/api/connections/1/backfills",
                json,
                "401 401 ok ok ok 401 401 401 401 401",
            ),
            get("/api/backfills/1", json, "401 401 ok ok ok 401 401 401 401 401"),
        ]
    }

    async fn fresh(&self, fresh: Fresh) -> String {
        match fresh {
            Fresh::Nothing => String::new(),
            Fresh::Trigger => fresh_trigger(&self.app, &self.merged).await.to_string(),
            Fresh::Plan => {
                let pull = self.next_pull.get();
                self.next_pull.set(pull + 1);
                let (status, plan) = admin_post(
                    &self.app,
                    "/api/monitoring-plans",
                    json!({"repository": REPO, "pull_number": pull}),
                )
                .await;
                assert!(status < 300, "{plan}");
                plan["id"].as_i64().unwrap().to_string()
            }
            Fresh::Credential => create_credential(&self.app, 1).await.id.to_string(),
        }
    }

    /// Calls one route as one caller; `ok`, `login` or the status code.
    pub(crate) async fn call(&self, row: &Row, caller: Caller) -> String {
        let app = &self.app;
        // Failed attempts spend the client's allowance; let it grow back between calls so the
        // table shows each caller's own answer, never the throttle's.
        app.clock.advance(chrono::Duration::seconds(10));
        let client = no_redirects();
        let path = row.path.replace("{fresh}", &self.fresh(row.fresh).await);
        let (session_cookie, csrf_cookie) = match caller {
            Caller::Session => (Some(session(app, &client).await), None),
            Caller::SessionWithCsrf => (Some(session(app, &client).await), Some(login_form(app, &client).await)),
            _ => (None, None),
        };
        let csrf = csrf_cookie
            .as_ref()
            .map_or_else(|| "0".repeat(32), |c| c.split_once('=').unwrap().1.to_owned());
        let (content_type, body) = match &row.body {
            Body::Empty => (None, Vec::new()),
            Body::Json(value) => (Some("application/json"), serde_json::to_vec(value).unwrap()),
            Body::Form(fields) => {
                let mut fields = fields.clone();
                fields.push(("csrf", csrf));
                (
                    Some("application/x-www-form-urlencoded"),
                    serde_urlencoded::to_string(&fields).unwrap().into_bytes(),
                )
            }
        };
        let method = reqwest::Method::from_bytes(row.method.as_bytes()).unwrap();
        let mut request = client.request(method, app.url(&path)).header("Accept", row.accept);
        if let Some(content_type) = content_type {
            request = request.header("Content-Type", content_type);
        }
        let cookies: Vec<String> = [session_cookie, csrf_cookie].into_iter().flatten().collect();
        if !cookies.is_empty() {
            request = request.header("Cookie", cookies.join("; "));
        }
        request = match caller {
            Caller::Nobody | Caller::Session | Caller::SessionWithCsrf => request,
            Caller::WrongAdminToken => request.bearer_auth("not-the-admin-token"),
            Caller::AdminToken => request.bearer_auth(ADMIN_TOKEN),
            Caller::OwnCredential => request.basic_auth(&self.own.username, Some(&self.own.password)),
            Caller::OtherCredential => request.basic_auth(&self.other.username, Some(&self.other.password)),
            Caller::RevokedCredential => request.basic_auth(&self.revoked.username, Some(&self.revoked.password)),
            Caller::ServerAgent => request.header(
                "X-Shiplog-Signature-256",
                shiplog::github::signature::sign(AGENT_SECRET, &body),
            ),
            Caller::ConnectionAgent => request.header(
                "X-Shiplog-Signature-256",
                shiplog::github::signature::sign(CONNECTION_AGENT_SECRET, &body),
            ),
        };
        let response = request.body(body).send().await.unwrap();
        let status = response.status();
        let location = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        if content_type.contains("json") {
            let answer: Value = response.json().await.unwrap();
            let checked =
                crate::openapi::check_answer(Some(row.method), &path, status.as_u16(), &content_type, &answer)
                    .unwrap_or_else(|error| panic!("{caller:?}: the answer does not match the API document:\n{error}"));
            self.answered.borrow_mut().push((checked.0, checked.1, status.as_u16()));
        } else if status.as_u16() == 204 {
            let checked = crate::openapi::check_empty(row.method, &path, 204).unwrap_or_else(|error| panic!("{error}"));
            self.answered.borrow_mut().push((checked.0, checked.1, 204));
        }
        if status.as_u16() == 303 && location.starts_with("/login") {
            "login".to_owned()
        } else if status.is_success() || status.is_redirection() {
            "ok".to_owned()
        } else {
            status.as_u16().to_string()
        }
    }
}

#[tokio::test]
async fn every_route_answers_every_kind_of_caller_as_the_readme_documents() {
    let world = world().await;

    let mut mismatches = Vec::new();
    for row in world.rows() {
        let mut answers = Vec::new();
        for caller in CALLERS {
            answers.push(world.call(&row, caller).await);
        }
        let got = answers.join(" ");
        if got != row.expected {
            mismatches.push(format!(
                "{} {} ({})\n  expected {}\n  got      {}",
                row.method, row.path, row.accept, row.expected, got
            ));
        }
    }

    assert!(mismatches.is_empty(), "callers: {CALLERS:?}\n{}", mismatches.join("\n"));
}

#[tokio::test]
async fn a_credential_of_another_connection_sees_none_of_this_ones_history() {
    let world = world().await;

    let response = world
        .app
        .client
        .get(world.app.url("/deployments"))
        .header("Accept", "application/json")
        .basic_auth(&world.other.username, Some(&world.other.password))
        .send()
        .await
        .unwrap();
    let (status, body) = status_and_json(response).await;
    let triggers = world
        .app
        .client
        .get(world.app.url("/api/triggers"))
        .basic_auth(&world.other.username, Some(&world.other.password))
        .send()
        .await
        .unwrap();
    let (_, triggers) = status_and_json(triggers).await;

    assert_eq!(status, 200);
    assert_eq!(body["deployments"], json!([]), "{body}");
    assert_eq!(
        triggers["triggers"].as_array().map(Vec::len).unwrap_or(0),
        0,
        "{triggers}"
    );
}
