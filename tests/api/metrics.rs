//! `GET /metrics`: a scripted run moves every counter by exactly what was sent; who may scrape,
//! on the main listener and on a listener of its own; the Grafana dashboard only asks for
//! metrics a scrape has.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

use crate::ancestry::app_with_github;
use crate::explicit_api::create_credential;
use crate::fake_github::FakeGitHub;
use crate::git::GitRepo;
use crate::helpers::{backend, fixture, spawn_app_with, Backend, TestApp, WebhookRequest, ADMIN_TOKEN};
use shiplog::config::Secret;

const REPO: &str = "acme-corp/web-app";
const METRICS_TOKEN: &str = "d2f1c0b9a8e7d6c5b4a3928170f6e5d4c3b2a1908f7e6d5c4b3a2918f7e6d5c4";

/// A scrape: every sample by its series (`name{labels}`), and every family's type.
pub struct Scrape {
    samples: BTreeMap<String, f64>,
    families: BTreeMap<String, String>,
}

impl Scrape {
    fn parse(text: &str) -> Self {
        let mut samples = BTreeMap::new();
        let mut families = BTreeMap::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap();
                families.insert(name.to_owned(), kind.to_owned());
            } else if !line.starts_with('#') && !line.is_empty() {
                let (series, value) = line.rsplit_once(' ').unwrap();
                samples.insert(series.to_owned(), value.parse::<f64>().unwrap());
            }
        }
        assert!(text.ends_with("# EOF\n"), "an OpenMetrics scrape ends with # EOF");
        Self { samples, families }
    }

    pub fn value(&self, series: &str) -> f64 {
        self.samples.get(series).copied().unwrap_or(0.0)
    }

    /// How much `series` moved since `before`.
    fn delta(&self, before: &Scrape, series: &str) -> f64 {
        self.value(series) - before.value(series)
    }
}

async fn scrape_at(app: &TestApp, base: &str, token: Option<&str>) -> reqwest::Response {
    let mut request = app.client.get(format!("{base}/metrics"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

pub async fn scrape(app: &TestApp) -> Scrape {
    let response = scrape_at(app, &app.address, Some(ADMIN_TOKEN)).await;
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/openmetrics-text"));
    Scrape::parse(&response.text().await.unwrap())
}

fn deliveries(event: &str, outcome: &str) -> String {
    format!(r#"shiplog_webhook_deliveries_total{{event="{event}",outcome="{outcome}"}}"#)
}

fn requests(method: &str, route: &str, status: &str) -> String {
    format!(r#"shiplog_http_request_duration_seconds_count{{method="{method}",route="{route}",status="{status}"}}"#)
}

#[tokio::test]
async fn a_scripted_run_moves_every_counter_by_exactly_what_was_sent() {
    let repo = GitRepo::new();
    let base = repo.commit("base");
    let tip = repo.commit("tip");
    let fake = FakeGitHub::start().await;
    fake.add_repo(REPO, &repo);
    // Installed: one `installation` delivery, processed, before the first scrape.
    let app = app_with_github(&fake).await;
    // The fixtures' deployment names a commit the fake's repository does not have: its
    // went-live job is left to retry.
    app.allow_jobs(&["deploy.went_live"]);
    let before = scrape(&app).await;
    let (calls_before, mints_before) = (fake.compare_calls(), fake.token_mints());

    // Webhooks: a ping, a deployment and its status, the status again (same delivery id), one
    // with a bad signature, and an event shiplog does not know.
    assert_eq!(app.deliver("ping", &fixture("ping")).await.0, 200);
    assert_eq!(app.deliver("deployment", &fixture("deployment.created")).await.0, 200);
    let status = WebhookRequest::signed("deployment_status", &fixture("deployment_status.created"))
        .with_delivery("6f1d3c4e-0000-4000-8000-00000000a001");
    assert_eq!(app.send_webhook(status).await.status(), 200);
    let again = WebhookRequest::signed("deployment_status", &fixture("deployment_status.created"))
        .with_delivery("6f1d3c4e-0000-4000-8000-00000000a001");
    let (code, receipt) = crate::helpers::status_and_json(app.send_webhook(again).await).await;
    assert_eq!((code, receipt["outcome"].as_str()), (200, Some("duplicate")));
    let mut forged = WebhookRequest::signed("deployment", &fixture("deployment.created"));
    forged.signature = Some(format!("sha256={}", "0".repeat(64)));
    assert_eq!(app.send_webhook(forged).await.status(), 401);
    let (code, receipt) = app.deliver("sponsorship", &json!({"action": "created"})).await;
    assert_eq!((code, receipt["outcome"].as_str()), (200, Some("ignored")));

    // The explicit API: two live deploys and one that is still building, sent twice with one
    // Idempotency-Key (the replay is answered from storage and records nothing).
    let cred = create_credential(&app, 1).await;
    let building = (&tip, "building");
    for (sha, status) in [(&base, "live"), (&tip, "live"), building, building] {
        let environment = if status == "building" { "staging" } else { "production" };
        app.clock.advance(chrono::Duration::minutes(1));
        let mut request = app
            .client
            .post(app.url("/deployments"))
            .basic_auth(&cred.username, Some(&cred.password))
            .json(&json!({"repository": REPO, "environment": environment, "sha": sha, "status": status}));
        if status == "building" {
            request = request.header("Idempotency-Key", "metrics-building-1");
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
    }

    // The queue before the worker runs, as the database has it.
    let queued = scrape(&app).await;
    let waiting = app
        .first_row("SELECT COUNT(*) AS n FROM job WHERE state = 'queued' AND kind = 'deploy.went_live'")
        .await
        .try_get::<i64>("", "n")
        .unwrap();
    assert!(waiting >= 1);
    assert_eq!(
        queued.value(r#"shiplog_jobs{kind="deploy.went_live",state="queued"}"#),
        waiting as f64
    );
    app.clock.advance(chrono::Duration::seconds(90));
    assert!(queued.value(r#"shiplog_job_oldest_due_age_seconds{kind="deploy.went_live"}"#) >= 0.0);
    let aged = scrape(&app).await;
    assert!(
        aged.value(r#"shiplog_job_oldest_due_age_seconds{kind="deploy.went_live"}"#) >= 90.0,
        "the oldest due job has waited at least the 90 s the clock moved"
    );

    // The worker, by hand; every attempt is counted by kind and outcome.
    let reports = app.run_jobs().await;
    assert!(!reports.is_empty());
    // Ancestry: GitHub once, the cache after.
    let ask = format!("/api/ancestry?repository={REPO}&ancestor={base}&descendant={tip}");
    let (first, answer) = app.admin_get(&ask).await;
    let (_, cached) = app.admin_get(&ask).await;
    assert_eq!(first, 200, "{answer}");
    let from_github = [&answer, &cached].iter().filter(|a| a["source"] == "github").count();
    let from_cache = [&answer, &cached].iter().filter(|a| a["source"] == "cache").count();
    // Plain HTTP: three health checks, one missing deploy, one path no route has.
    for _ in 0..3 {
        assert_eq!(app.client.get(app.url("/healthz")).send().await.unwrap().status(), 200);
    }
    assert_eq!(app.admin_get("/deployments/987654").await.0, 404);
    let unrouted = app.client.get(app.url("/no/such/page")).send().await.unwrap();
    assert_eq!(unrouted.status(), 404);
    let after = scrape(&app).await;

    // Webhooks by event and outcome.
    assert_eq!(after.delta(&before, &deliveries("ping", "processed")), 1.0);
    assert_eq!(after.delta(&before, &deliveries("deployment", "processed")), 1.0);
    assert_eq!(after.delta(&before, &deliveries("deployment_status", "processed")), 1.0);
    assert_eq!(after.delta(&before, &deliveries("deployment_status", "duplicate")), 1.0);
    assert_eq!(after.delta(&before, &deliveries("deployment", "rejected")), 1.0);
    assert_eq!(after.delta(&before, &deliveries("other", "ignored")), 1.0);
    let all_deliveries: f64 = after
        .samples
        .keys()
        .filter(|k| k.starts_with("shiplog_webhook_deliveries_total{"))
        .map(|k| after.delta(&before, k))
        .sum();
    assert_eq!(all_deliveries, 6.0, "six deliveries were sent after the first scrape");
    assert!(!after.samples.keys().any(|k| k.contains("sponsorship")));

    // Deploy reports by source and status.
    let deploys =
        |source: &str, status: &str| format!(r#"shiplog_deploy_reports_total{{source="{source}",status="{status}"}}"#);
    assert_eq!(after.delta(&before, &deploys("api", "live")), 2.0);
    assert_eq!(after.delta(&before, &deploys("api", "building")), 1.0);
    assert_eq!(after.delta(&before, &deploys("github", "initiated")), 1.0);
    assert_eq!(after.delta(&before, &deploys("github", "live")), 1.0);

    // Job attempts: exactly what the runner reported.
    let mut attempts: BTreeMap<(String, &str), f64> = BTreeMap::new();
    for report in &reports {
        *attempts.entry((report.kind.clone(), report.outcome)).or_default() += 1.0;
    }
    for ((kind, outcome), count) in &attempts {
        let series = format!(r#"shiplog_job_attempts_total{{kind="{kind}",outcome="{outcome}"}}"#);
        assert_eq!(after.delta(&before, &series), *count, "{series}");
    }
    let all_attempts: f64 = after
        .samples
        .keys()
        .filter(|k| k.starts_with("shiplog_job_attempts_total{"))
        .map(|k| after.delta(&before, k))
        .sum();
    assert_eq!(all_attempts, reports.len() as f64);
    let left = app
        .first_row("SELECT COUNT(*) AS n FROM job WHERE state = 'queued' AND kind = 'deploy.went_live'")
        .await
        .try_get::<i64>("", "n")
        .unwrap();
    assert_eq!(
        after.value(r#"shiplog_jobs{kind="deploy.went_live",state="queued"}"#),
        left as f64,
        "{reports:?}"
    );

    // Ancestry by source, and the GitHub calls behind them (and behind the jobs).
    assert_eq!(
        after.delta(&before, r#"shiplog_ancestry_answers_total{source="github"}"#),
        from_github as f64
    );
    assert_eq!(
        after.delta(&before, r#"shiplog_ancestry_answers_total{source="cache"}"#),
        from_cache as f64
    );
    let compare: f64 = ["2xx", "4xx", "5xx", "error"]
        .iter()
        .map(|status| {
            after.delta(
                &before,
                &format!(r#"shiplog_github_api_calls_total{{endpoint="/repos/{{owner}}/{{repo}}/compare/{{basehead}}",status="{status}"}}"#),
            )
        })
        .sum();
    assert!(
        after.delta(
            &before,
            r#"shiplog_github_api_calls_total{endpoint="/repos/{owner}/{repo}/compare/{basehead}",status="2xx"}"#
        ) >= 1.0
    );
    assert_eq!(
        compare,
        (fake.compare_calls() - calls_before) as f64,
        "{:?}",
        fake.calls()
    );
    let mints =
        r#"shiplog_github_api_calls_total{endpoint="/app/installations/{installation_id}/access_tokens",status="2xx"}"#;
    assert_eq!(after.delta(&before, mints), (fake.token_mints() - mints_before) as f64);
    let remaining = after.value(r#"shiplog_github_rate_limit_remaining{installation="41000001"}"#);
    assert!(remaining > 0.0 && remaining <= 5000.0, "{remaining}");

    // HTTP requests by route pattern and status class, never by path.
    assert_eq!(after.delta(&before, &requests("GET", "/healthz", "2xx")), 3.0);
    assert_eq!(after.delta(&before, &requests("GET", "/deployments/{id}", "4xx")), 1.0);
    assert_eq!(after.delta(&before, &requests("GET", "unmatched", "4xx")), 1.0);
    assert_eq!(after.delta(&before, &requests("POST", "/deployments", "2xx")), 4.0);
    assert_eq!(after.delta(&before, &requests("POST", "/webhooks/github", "2xx")), 5.0);
    assert_eq!(after.delta(&before, &requests("POST", "/webhooks/github", "4xx")), 1.0);
    assert!(!after
        .samples
        .keys()
        .any(|k| k.contains("987654") || k.contains(&base) || k.contains(REPO)));

    // The SQLite writer's batches hold every delivery it committed; PostgreSQL has no writer.
    let batched = after.delta(&before, "shiplog_sqlite_group_commit_batch_size_sum");
    match backend() {
        Backend::Sqlite => assert!(batched >= 5.0, "{batched}"),
        Backend::Postgres => assert_eq!(batched, 0.0),
    }

    // Build info names the database.
    let database = match backend() {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    let build = after
        .samples
        .iter()
        .find(|(k, _)| k.starts_with("shiplog_build_info{"))
        .unwrap();
    assert!(build.0.contains(&format!(r#"database="{database}""#)), "{}", build.0);
    assert!(build.0.contains(&format!(r#"version="{}""#, env!("CARGO_PKG_VERSION"))));
    assert_eq!(*build.1, 1.0);

    // After the run, every family has a series: the dashboard is checked against this scrape.
    check_dashboard(&after);
}

#[tokio::test]
async fn the_admin_token_or_the_metrics_token_reads_the_metrics_and_others_get_401() {
    let app = spawn_app_with(|config| config.metrics.token = Some(Secret::new(METRICS_TOKEN))).await;

    for token in [ADMIN_TOKEN, METRICS_TOKEN] {
        assert_eq!(scrape_at(&app, &app.address, Some(token)).await.status(), 200);
    }
    for token in [None, Some("not-the-token")] {
        let response = scrape_at(&app, &app.address, token).await;
        assert_eq!(response.status(), 401);
        assert_eq!(response.headers()["content-type"], "application/problem+json");
    }
    // The metrics token opens nothing else.
    let jobs = app
        .client
        .get(app.url("/api/jobs"))
        .bearer_auth(METRICS_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(jobs.status(), 401);
}

#[tokio::test]
async fn without_any_token_the_metrics_are_disabled_like_the_admin_api() {
    let app = spawn_app_with(|config| config.admin_token = None).await;

    let response = scrape_at(&app, &app.address, Some("anything")).await;

    assert_eq!(response.status(), 403);
    assert_eq!(response.headers()["content-type"], "application/problem+json");
    let body: Value = response.json().await.unwrap();
    assert!(
        body["detail"].as_str().unwrap().contains("SHIPLOG_METRICS_TOKEN"),
        "{body}"
    );
}

#[tokio::test]
async fn a_metrics_listener_of_its_own_serves_them_there_and_not_on_the_main_listener() {
    let open = spawn_app_with(|config| config.metrics.listen = Some("127.0.0.1:0".to_owned())).await;
    let own = open.metrics_address.clone().expect("a metrics listener");

    assert_eq!(scrape_at(&open, &open.address, Some(ADMIN_TOKEN)).await.status(), 404);
    let served = scrape_at(&open, &own, None).await;
    assert_eq!(served.status(), 200);
    assert!(served.text().await.unwrap().contains("shiplog_build_info{"));
    // HEAD too, as on every GET route.
    let head = open.client.head(format!("{own}/metrics")).send().await.unwrap();
    assert_eq!(head.status(), 200);
    // Only the metrics are there.
    let health = open.client.get(format!("{own}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 404);

    let guarded = spawn_app_with(|config| {
        config.metrics.listen = Some("127.0.0.1:0".to_owned());
        config.metrics.token = Some(Secret::new(METRICS_TOKEN));
    })
    .await;
    let own = guarded.metrics_address.clone().unwrap();
    assert_eq!(scrape_at(&guarded, &own, None).await.status(), 401);
    assert_eq!(scrape_at(&guarded, &own, Some(METRICS_TOKEN)).await.status(), 200);
}

/// Metric names in a PromQL expression: identifiers that start with `shiplog_`.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = expr;
    while let Some(at) = rest.find("shiplog_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        names.insert(tail[..end].to_owned());
        rest = &tail[end..];
    }
    names
}

fn exprs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, item) in map {
                match (key.as_str(), item) {
                    ("expr" | "query", Value::String(expr)) => out.push(expr.clone()),
                    _ => exprs(item, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| exprs(item, out)),
        _ => {}
    }
}

/// The Grafana dashboard asks only for metrics `scrape` has, and shows every family in it.
fn check_dashboard(scrape: &Scrape) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/ops/grafana/shiplog-dashboard.json");
    let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert!(dashboard["title"].is_string() && dashboard["panels"].is_array());
    assert_eq!(dashboard["__inputs"][0]["name"], "DS_PROMETHEUS");
    assert_eq!(dashboard["__inputs"][0]["pluginId"], "prometheus");
    let mut queries = Vec::new();
    exprs(&dashboard, &mut queries);
    let used: BTreeSet<String> = queries.iter().flat_map(|q| metric_names(q)).collect();
    assert!(!used.is_empty());
    let family_of = |name: &str| {
        let stripped = ["_total", "_bucket", "_count", "_sum", "_info"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix))
            .unwrap_or(name);
        [name, stripped]
            .into_iter()
            .find(|n| scrape.families.contains_key(*n))
            .map(str::to_owned)
    };
    let unknown: Vec<&String> = used.iter().filter(|n| family_of(n).is_none()).collect();
    assert!(
        unknown.is_empty(),
        "the dashboard asks for metrics no scrape has: {unknown:?}"
    );
    let shown: BTreeSet<String> = used.iter().filter_map(|n| family_of(n)).collect();
    let missing: Vec<&String> = scrape.families.keys().filter(|f| !shown.contains(*f)).collect();
    assert!(missing.is_empty(), "families without a panel: {missing:?}");
    // Every panel reads from the datasource chosen at import.
    for panel in dashboard["panels"].as_array().unwrap() {
        if panel["type"] != "row" {
            assert_eq!(panel["datasource"]["uid"], "${DS_PROMETHEUS}", "{}", panel["title"]);
        }
    }
}
