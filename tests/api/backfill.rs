//! Backfill (issue 15): the API, importing GitHub's history (deployments by GraphQL, rule-matching
//! Actions runs) into the same lifecycle as live reports, the rate-limit reserve, nothing imported
//! twice, nothing fired for history, the install-time backfill, a restart after SIGKILL and a
//! repository GitHub no longer shows.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Duration, TimeZone, Utc};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, Statement};
use serde_json::{json, Value};
use shiplog::clock::Clock;
use shiplog::config::{GitHubAppCredentials, Secret};

use crate::fake_agent::FakeAgent;
use crate::fake_github::{private_key_pem, workflow_run, FakeDeployment, FakeGitHub, APP_ID};
use crate::git::GitRepo;
use crate::helpers::{
    fixture, spawn_app_with, status_and_json, ServerProcess, TestApp, TestDatabase, ADMIN_TOKEN, WEBHOOK_SECRET,
};

const OWNER: &str = "acme-corp";

/// Where the test app's clock starts (`helpers::spawn_app_full`).
fn clock_start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 2, 9, 0, 0).unwrap()
}

fn with_github(fake: &FakeGitHub) -> impl FnOnce(&mut shiplog::config::Config) {
    let url = fake.url.clone();
    move |config| {
        config.github_api_url = url;
        config.github_app = Some(GitHubAppCredentials {
            app_id: APP_ID,
            private_key_pem: Secret::new(private_key_pem()),
        });
    }
}

/// An app with the App configured against `fake` and connection 1 installed.
async fn installed_app(fake: &FakeGitHub) -> TestApp {
    installed_app_with(fake, |_| {}).await
}

async fn installed_app_with(fake: &FakeGitHub, more: impl FnOnce(&mut shiplog::config::Config)) -> TestApp {
    let github = with_github(fake);
    let app = spawn_app_with(move |config| {
        github(config);
        more(config);
    })
    .await;
    assert_eq!(
        app.deliver("installation", &fixture("installation.created")).await.0,
        200
    );
    app
}

async fn post_backfill(app: &TestApp, connection: i64, body: &Value) -> (u16, Option<String>, Value) {
    let response = app
        .client
        .post(app.url(&format!("/api/connections/{connection}/backfill")))
        .bearer_auth(ADMIN_TOKEN)
        .json(body)
        .send()
        .await
        .unwrap();
    let location = response
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned());
    let (status, json) = status_and_json(response).await;
    (status, location, json)
}

async fn start_backfill(app: &TestApp, body: Value) -> i64 {
    let (status, _, started) = post_backfill(app, 1, &body).await;
    assert_eq!(status, 202, "{started}");
    started["id"].as_i64().unwrap()
}

async fn backfill(app: &TestApp, id: i64) -> Value {
    let (status, view) = app.admin_get(&format!("/api/backfills/{id}")).await;
    assert_eq!(status, 200, "{view}");
    view
}

/// Runs due jobs until the backfill has finished or waits for a time still ahead; bounded.
async fn run_backfill(app: &TestApp, id: i64) -> Value {
    for _ in 0..50 {
        app.run_jobs().await;
        let view = backfill(app, id).await;
        let finished = view["state"] == "done" || view["state"] == "failed";
        // A waiting backfill whose reset has come runs on with the next round.
        if finished || (view["state"] == "waiting" && !app.has_due_jobs().await) {
            return view;
        }
    }
    panic!("backfill {id} did not settle: {}", backfill(app, id).await);
}

impl TestApp {
    async fn has_due_jobs(&self) -> bool {
        let now = self.clock.now();
        let backend = self.store.conn().get_database_backend();
        let sql = match backend {
            sea_orm::DatabaseBackend::Postgres => {
                "SELECT COUNT(*) AS n FROM job WHERE state = 'queued' AND run_at <= $1"
            }
            _ => "SELECT COUNT(*) AS n FROM job WHERE state = 'queued' AND run_at <= ?",
        };
        let row = self
            .store
            .conn()
            .query_one(Statement::from_sql_and_values(backend, sql, [now.into()]))
            .await
            .unwrap()
            .unwrap();
        row.try_get::<i64>("", "n").unwrap() > 0
    }
}

/// A deploy as stored, for comparing imports.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Stored {
    id: i64,
    repository: String,
    environment: String,
    sha: String,
    status: String,
    source: String,
    github_deployment_id: Option<i64>,
    github_run_id: Option<i64>,
    superseded_by_id: Option<i64>,
    rollback_target_id: Option<i64>,
    backfilled: bool,
}

async fn stored(db: &impl ConnectionTrait) -> Vec<Stored> {
    let backend = db.get_database_backend();
    db.query_all(Statement::from_string(
        backend,
        "SELECT id, repository, environment, sha, status, source, github_deployment_id, github_run_id, \
         superseded_by_id, rollback_target_id, backfilled FROM deployment ORDER BY id"
            .to_owned(),
    ))
    .await
    .unwrap()
    .iter()
    .map(|row| Stored {
        id: row.try_get("", "id").unwrap(),
        repository: row.try_get("", "repository").unwrap(),
        environment: row.try_get("", "environment").unwrap(),
        sha: row.try_get("", "sha").unwrap(),
        status: row.try_get("", "status").unwrap(),
        source: row.try_get("", "source").unwrap(),
        github_deployment_id: row.try_get("", "github_deployment_id").unwrap(),
        github_run_id: row.try_get("", "github_run_id").unwrap(),
        superseded_by_id: row.try_get("", "superseded_by_id").unwrap(),
        rollback_target_id: row.try_get("", "rollback_target_id").unwrap(),
        backfilled: row.try_get("", "backfilled").unwrap(),
    })
    .collect()
}

/// A deployment GitHub kept, and how it ended.
#[derive(Clone, Debug)]
struct Made {
    id: i64,
    repository: String,
    environment: String,
    sha: String,
    created_at: DateTime<Utc>,
    /// `success`, `failure` or `in_progress` (its last status).
    outcome: &'static str,
}

fn sha_of(id: i64) -> String {
    format!("{id:040x}")
}

/// `count` deployments of `repo`, newest 1 h before `now` and then one every 4 hours back,
/// alternating production and staging; every 7th fails, every 11th is still in progress. With
/// `rollback`, the newest production deploy re-deploys the sha of the 9th newest.
fn make_history(
    fake: &FakeGitHub,
    repo: &str,
    base_id: i64,
    count: i64,
    now: DateTime<Utc>,
    rollback: bool,
) -> Vec<Made> {
    let mut made = Vec::new();
    for k in 1..=count {
        let id = base_id + k;
        let environment = if k % 2 == 1 { "production" } else { "staging" };
        let sha = if rollback && k == 1 {
            sha_of(base_id + 9)
        } else {
            sha_of(id)
        };
        let created_at = now - Duration::hours(1) - Duration::hours(4 * (k - 1));
        let outcome = if k % 7 == 0 {
            "failure"
        } else if k % 11 == 0 {
            "in_progress"
        } else {
            "success"
        };
        let mut deployment = FakeDeployment::new(id, &sha, environment, created_at)
            .status("in_progress", created_at + Duration::minutes(1));
        if outcome != "in_progress" {
            deployment = deployment.status(outcome, created_at + Duration::minutes(5));
        }
        fake.add_deployment(repo, deployment);
        made.push(Made {
            id,
            repository: repo.to_owned(),
            environment: environment.to_owned(),
            sha,
            created_at,
            outcome,
        });
    }
    made
}

/// What the lifecycle makes of `made` (those within the backfill): by GitHub deployment id,
/// (status, superseded by GitHub id, rolled back to GitHub id).
fn expected(made: &[Made]) -> BTreeMap<i64, (String, Option<i64>, Option<i64>)> {
    let mut out = BTreeMap::new();
    let mut groups: BTreeMap<(String, String), Vec<&Made>> = BTreeMap::new();
    for m in made {
        groups
            .entry((m.repository.to_ascii_lowercase(), m.environment.clone()))
            .or_default()
            .push(m);
    }
    for (_, mut group) in groups {
        group.sort_by_key(|m| m.created_at);
        let successes: Vec<&Made> = group.iter().copied().filter(|m| m.outcome == "success").collect();
        for m in &group {
            match m.outcome {
                "failure" => drop(out.insert(m.id, ("failed".to_owned(), None, None))),
                "in_progress" => drop(out.insert(m.id, ("deploying".to_owned(), None, None))),
                _ => {}
            }
        }
        for (i, m) in successes.iter().enumerate() {
            let Some(next) = successes.get(i + 1) else {
                out.insert(m.id, ("live".to_owned(), None, None));
                continue;
            };
            let earlier_sha_again = next.sha != m.sha && successes[..i].iter().any(|earlier| earlier.sha == next.sha);
            if earlier_sha_again {
                out.insert(m.id, ("rolled_back".to_owned(), Some(next.id), Some(next.id)));
            } else {
                out.insert(m.id, ("superseded".to_owned(), Some(next.id), None));
            }
        }
    }
    out
}

/// The stored deploys as (status, superseded by GitHub id, rolled back to GitHub id) by GitHub
/// deployment id, checking each GitHub deployment is there once.
fn actual(deploys: &[Stored]) -> BTreeMap<i64, (String, Option<i64>, Option<i64>)> {
    let github_id: HashMap<i64, i64> = deploys
        .iter()
        .filter_map(|d| d.github_deployment_id.map(|g| (d.id, g)))
        .collect();
    let mut out = BTreeMap::new();
    for d in deploys {
        let Some(id) = d.github_deployment_id else { continue };
        let by = d.superseded_by_id.map(|s| github_id[&s]);
        let target = d.rollback_target_id.map(|t| github_id[&t]);
        assert!(
            out.insert(id, (d.status.clone(), by, target)).is_none(),
            "GitHub deployment {id} imported twice"
        );
    }
    out
}

fn within(made: &[Made], since: DateTime<Utc>) -> Vec<Made> {
    made.iter().filter(|m| m.created_at >= since).cloned().collect()
}

fn assert_one_live_per_environment(deploys: &[Stored]) {
    let mut live: BTreeMap<(String, String), usize> = BTreeMap::new();
    for d in deploys {
        let entry = live.entry((d.repository.clone(), d.environment.clone())).or_default();
        if d.status == "live" {
            *entry += 1;
        }
    }
    for (environment, n) in live {
        assert_eq!(n, 1, "live deploys in {environment:?}");
    }
}

async fn patch_connection(app: &TestApp, body: Value) {
    let response = app
        .client
        .patch(app.url("/api/connections/1"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    let (status, answer) = status_and_json(response).await;
    assert_eq!(status, 200, "{answer}");
}

async fn jobs_of_kind(app: &TestApp, kind: &str) -> i64 {
    app.first_row(&format!("SELECT COUNT(*) AS n FROM job WHERE kind = '{kind}'"))
        .await
        .try_get::<i64>("", "n")
        .unwrap()
}

// 1. The API.

#[tokio::test]
async fn the_api_starts_one_backfill_at_a_time_and_shows_its_progress() {
    let fake = FakeGitHub::start().await;
    let repos = fake.add_history_repos(OWNER, 2);
    let now = clock_start();
    make_history(&fake, &repos[0], 1000, 5, now, false);
    let app = installed_app(&fake).await;

    let (status, location, started) = post_backfill(&app, 1, &json!({"since": "30d"})).await;
    let (again, _, conflict) = post_backfill(&app, 1, &json!({"since": "7d"})).await;

    assert_eq!(status, 202, "{started}");
    let id = started["id"].as_i64().unwrap();
    assert_eq!(location.as_deref(), Some(format!("/api/backfills/{id}").as_str()));
    assert_eq!(started["state"], "queued");
    assert_eq!(started["connection_id"], 1);
    assert_eq!(
        started["since"].as_str().unwrap().parse::<DateTime<Utc>>().unwrap(),
        now - Duration::days(30)
    );
    assert_eq!(started["progress"]["repositories_done"], 0);
    assert_eq!(started["progress"]["repositories_total"], Value::Null);
    assert_eq!(started["progress"]["deploys_imported"], 0);
    assert_eq!(started["progress"]["github_calls"], 0);
    assert_eq!(again, 409, "{conflict}");

    let view = run_backfill(&app, id).await;
    assert_eq!(view["state"], "done", "{view}");
    assert_eq!(view["progress"]["repositories_done"], 2);
    assert_eq!(view["progress"]["repositories_total"], 2);
    assert_eq!(view["progress"]["deploys_imported"], 5);
    assert_eq!(
        view["progress"]["github_calls"], 3,
        "1 listing + 1 GraphQL page per repository"
    );
    assert_eq!(view["progress"]["rate_limit"]["limit"], 5000);
    assert!(view["progress"]["rate_limit"]["remaining"].as_i64().unwrap() < 5000);
    assert_eq!(view["progress"]["estimated_seconds_left"], 0);
    assert!(view["finished_at"].is_string());

    let (status, list) = app.admin_get("/api/connections/1/backfills").await;
    assert_eq!(status, 200);
    assert_eq!(list["backfills"].as_array().unwrap().len(), 1);
    assert_eq!(list["backfills"][0]["id"], id);
    let (status, _, second) = post_backfill(&app, 1, &json!({})).await;
    assert_eq!(status, 202, "a finished backfill does not block the next: {second}");
    app.allow_jobs(&["backfill.step"]);
}

#[tokio::test]
async fn a_bad_backfill_request_is_refused_with_its_fields_named() {
    let fake = FakeGitHub::start().await;
    let app = installed_app(&fake).await;

    let (status, _, problem) = post_backfill(
        &app,
        1,
        &json!({"since": "forever", "repositories": ["no-slash"], "colour": "red"}),
    )
    .await;
    let malformed = app
        .client
        .post(app.url("/api/connections/1/backfill"))
        .bearer_auth(ADMIN_TOKEN)
        .header("content-type", "application/json")
        .body("{\"since\": ")
        .send()
        .await
        .unwrap()
        .status()
        .as_u16();
    let (unknown, _, _) = post_backfill(&app, 99, &json!({"since": "30d"})).await;
    let anonymous = app
        .client
        .post(app.url("/api/connections/1/backfill"))
        .json(&json!({"since": "30d"}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16();
    let wrong_token = app
        .client
        .get(app.url("/api/backfills/1"))
        .bearer_auth("not-the-admin-token")
        .send()
        .await
        .unwrap()
        .status()
        .as_u16();
    let (missing, _) = app.admin_get("/api/backfills/4242").await;

    assert_eq!(status, 422, "{problem}");
    let mut fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    fields.sort_unstable();
    assert_eq!(fields, ["colour", "repositories[0]", "since"]);
    assert_eq!(malformed, 400);
    assert_eq!(unknown, 404);
    assert!([401, 403].contains(&anonymous), "{anonymous}");
    assert!([401, 403].contains(&wrong_token), "{wrong_token}");
    assert_eq!(missing, 404);
    assert_eq!(app.count_rows("backfill").await, 0);
}

// 2. Deployments and their lifecycle.

#[tokio::test]
async fn deployments_within_since_are_imported_once_with_their_lifecycle_and_few_calls() {
    let fake = FakeGitHub::start().await;
    let repos = fake.add_history_repos(OWNER, 3);
    let now = clock_start();
    let mut made = Vec::new();
    for (n, repo) in repos.iter().enumerate() {
        made.extend(make_history(&fake, repo, 100_000 * (n as i64 + 1), 250, now, n == 0));
    }
    let app = installed_app(&fake).await;
    let since = now - Duration::days(30);
    let imported = within(&made, since);
    assert_eq!(imported.len(), 3 * 180);

    let id = start_backfill(&app, json!({"since": "30d"})).await;
    let view = run_backfill(&app, id).await;

    assert_eq!(view["state"], "done", "{view}");
    assert_eq!(view["progress"]["deploys_imported"], 540);
    assert_eq!(view["progress"]["repositories_done"], 3);
    // 180 deployments a repository: two GraphQL pages each (the second reaches `since`), and one
    // page of repositories.
    assert_eq!(fake.count("/graphql"), 6, "{:?}", fake.calls());
    assert_eq!(fake.count("/installation/repositories"), 1);
    assert_eq!(fake.count("/actions/runs"), 0, "no workflow rules: no runs read");
    assert_eq!(view["progress"]["github_calls"], 7);
    let deploys = stored(app.store.conn()).await;
    assert_eq!(deploys.len(), 540);
    assert!(deploys.iter().all(|d| d.backfilled && d.source == "github"));
    assert_eq!(actual(&deploys), expected(&imported));
    assert_one_live_per_environment(&deploys);
    let rolled_back: Vec<_> = deploys.iter().filter(|d| d.status == "rolled_back").collect();
    assert_eq!(rolled_back.len(), 1, "the re-deploy of an earlier sha");
    assert_eq!(rolled_back[0].github_deployment_id, Some(100_003));

    let (status, one) = app.admin_get(&format!("/deployments/{}", deploys[0].id)).await;
    assert_eq!(status, 200, "{one}");
    assert_eq!(one["backfilled"], true);
    assert_eq!(jobs_of_kind(&app, "deploy.went_live").await, 0);
}

// 3. Actions runs.

#[tokio::test]
async fn rule_matching_runs_are_imported_and_a_deployment_made_by_a_run_is_the_same_deploy() {
    let fake = FakeGitHub::start().await;
    let repo = fake.add_history_repos(OWNER, 1).remove(0);
    let now = clock_start();
    let at = |hours: i64| now - Duration::hours(hours);
    let run = |id: i64, sha: &str, started: DateTime<Utc>, workflow: &str| {
        let mut run = workflow_run(&repo, id, sha, started);
        run["updated_at"] = json!((started + Duration::minutes(5)).to_rfc3339());
        if workflow != "deploy" {
            run["name"] = json!("CI");
            run["path"] = json!(format!(".github/workflows/{workflow}.yml"));
        }
        run
    };
    let (first, ci, second) = (sha_of(0xa1), sha_of(0xb2), sha_of(0xc3));
    fake.add_run(&repo, run(501, &first, at(5), "deploy"));
    fake.add_run(&repo, run(502, &ci, at(4), "ci"));
    fake.add_run(&repo, run(503, &second, at(3), "deploy"));
    // The deployment run 503 made while it ran.
    fake.add_deployment(
        &repo,
        FakeDeployment::new(9001, &second, "production", at(3) + Duration::minutes(2))
            .status("success", at(3) + Duration::minutes(4)),
    );
    let app = installed_app(&fake).await;
    patch_connection(
        &app,
        json!({"workflow_rules": [{"repository": "acme-corp/*", "workflow": "deploy.yml", "environment": "production"}]}),
    )
    .await;

    let id = start_backfill(&app, json!({"since": "1d"})).await;
    let view = run_backfill(&app, id).await;

    assert_eq!(view["state"], "done", "{view}");
    let deploys = stored(app.store.conn()).await;
    assert_eq!(deploys.len(), 2, "{deploys:#?}");
    assert!(deploys.iter().all(|d| d.source == "actions" && d.backfilled));
    assert!(deploys.iter().all(|d| d.sha != ci), "the CI run is no deploy");
    let by_run: BTreeMap<i64, &Stored> = deploys.iter().map(|d| (d.github_run_id.unwrap(), d)).collect();
    assert_eq!(by_run[&503].github_deployment_id, Some(9001), "one deploy, not two");
    assert_eq!(by_run[&503].status, "live");
    assert_eq!(by_run[&501].status, "superseded");
    assert_eq!(by_run[&501].superseded_by_id, Some(by_run[&503].id));
    assert_eq!(view["progress"]["deploys_imported"], 2);
    assert_eq!(fake.count("/actions/runs"), 1);
}

/// The outside attack's finding: a run in progress when the backfill imports it is still news
/// when its webhook says it succeeded: it goes live with its follow-up, not as history.
#[tokio::test]
async fn a_run_imported_while_it_ran_goes_live_as_news_when_its_webhook_says_it_succeeded() {
    let fake = FakeGitHub::start().await;
    let repo = fake.add_history_repos(OWNER, 1).remove(0);
    let started = clock_start() - Duration::minutes(10);
    let mut running = workflow_run(&repo, 701, &sha_of(0xd4), started);
    running["status"] = json!("in_progress");
    running["conclusion"] = json!(null);
    fake.add_run(&repo, running.clone());
    let app = installed_app(&fake).await;
    patch_connection(
        &app,
        json!({"workflow_rules": [{"repository": "acme-corp/*", "workflow": "deploy.yml", "environment": "production"}]}),
    )
    .await;
    let id = start_backfill(&app, json!({"since": "1d"})).await;
    assert_eq!(run_backfill(&app, id).await["state"], "done");
    let imported = stored(app.store.conn()).await;
    assert_eq!((imported.len(), imported[0].backfilled), (1, true), "{imported:#?}");

    let mut completed = running;
    completed["status"] = json!("completed");
    completed["conclusion"] = json!("success");
    completed["updated_at"] = json!((started + Duration::minutes(8)).to_rfc3339());
    let repository = completed["repository"].clone();
    let (code, answer) = app
        .deliver(
            "workflow_run",
            &json!({"action": "completed", "workflow_run": completed, "repository": repository,
                    "installation": {"id": 41000001}}),
        )
        .await;
    assert_eq!((code, answer["outcome"].as_str()), (200, Some("processed")), "{answer}");

    let live = stored(app.store.conn()).await;
    assert_eq!(live[0].status, "live");
    assert!(!live[0].backfilled, "reported live by its webhook: news, not history");
    assert_eq!(jobs_of_kind(&app, "deploy.went_live").await, 1);
    app.run_jobs().await;
}

/// A step GitHub fails is retried by its job, and the backfill says so meanwhile instead of
/// looking as if it ran; once the step goes through, the note is gone.
#[tokio::test]
async fn a_step_github_fails_is_shown_on_the_backfill_until_it_goes_through() {
    let fake = FakeGitHub::start().await;
    let repo = fake.add_history_repos(OWNER, 1).remove(0);
    let at = clock_start() - Duration::hours(2);
    fake.add_deployment(
        &repo,
        FakeDeployment::new(9101, &sha_of(0xe5), "production", at).status("success", at),
    );
    let app = installed_app(&fake).await;
    let id = start_backfill(&app, json!({"since": "1d"})).await;
    fake.fail_next(crate::fake_github::Fault::BadGateway);

    app.run_jobs().await;
    let failing = backfill(&app, id).await;
    app.clock.advance(Duration::hours(1));
    let done = run_backfill(&app, id).await;

    assert_eq!(failing["state"], "queued", "{failing}");
    assert!(
        failing["note"]
            .as_str()
            .unwrap()
            .starts_with("the last step failed and is retried"),
        "{failing}"
    );
    assert_eq!(done["state"], "done", "{done}");
    assert_eq!(done["note"], Value::Null, "{done}");
    assert_eq!(done["progress"]["deploys_imported"], 1);
}

// 4. Twice.

#[tokio::test]
async fn a_second_backfill_imports_nothing_twice() {
    let fake = FakeGitHub::start().await;
    let repos = fake.add_history_repos(OWNER, 2);
    let now = clock_start();
    for (n, repo) in repos.iter().enumerate() {
        make_history(&fake, repo, 10_000 * (n as i64 + 1), 120, now, false);
    }
    let app = installed_app(&fake).await;
    let first = start_backfill(&app, json!({"since": "30d"})).await;
    let first = run_backfill(&app, first).await;
    let before = stored(app.store.conn()).await;

    app.clock.advance(Duration::minutes(10));
    let second = start_backfill(&app, json!({"since": "30d"})).await;
    let second = run_backfill(&app, second).await;
    let after = stored(app.store.conn()).await;

    assert_eq!(first["progress"]["deploys_imported"], 240);
    assert_eq!(second["state"], "done", "{second}");
    assert_eq!(second["progress"]["deploys_imported"], 0);
    assert_eq!(after, before);
}

// 5. The rate-limit reserve.

#[tokio::test]
async fn a_backfill_leaves_the_last_fifth_of_the_rate_limit_and_waits_for_the_reset() {
    let fake = FakeGitHub::start().await;
    let repos = fake.add_history_repos(OWNER, 12);
    let now = clock_start();
    for (n, repo) in repos.iter().enumerate() {
        make_history(&fake, repo, 10_000 * (n as i64 + 1), 3, now, false);
    }
    let app = installed_app(&fake).await;
    let reset = now + Duration::minutes(30);
    // 10 calls a window: the reserve is the last 2.
    fake.limit_per_window(10, now, reset);
    let api_calls = |fake: &FakeGitHub| fake.calls().iter().filter(|c| !c.contains("/access_tokens")).count();

    let id = start_backfill(&app, json!({"since": "30d"})).await;
    let waiting = run_backfill(&app, id).await;
    let calls_in_window = api_calls(&fake);

    assert_eq!(waiting["state"], "waiting", "{waiting}");
    assert!(waiting["note"].as_str().unwrap().contains("rate limit"), "{waiting}");
    assert_eq!(calls_in_window, 8, "no call once 20 % were left: {:?}", fake.calls());
    assert_eq!(waiting["progress"]["rate_limit"]["remaining"], 2);
    assert_eq!(
        waiting["progress"]["deploys_imported"], 21,
        "what the 7 repositories read brought is applied while it waits"
    );
    let next_step = app
        .first_row("SELECT run_at FROM job WHERE kind = 'backfill.step' AND state = 'queued'")
        .await
        .try_get::<DateTime<Utc>>("", "run_at")
        .unwrap();
    assert_eq!(next_step, reset);
    app.run_jobs().await;
    assert_eq!(api_calls(&fake), 8, "nothing runs before the reset");

    app.clock.set(reset + Duration::seconds(1));
    fake.next_window(reset, reset + Duration::hours(1));
    let done = run_backfill(&app, id).await;

    assert_eq!(done["state"], "done", "{done}");
    assert_eq!(done["progress"]["repositories_done"], 12);
    assert_eq!(done["progress"]["deploys_imported"], 36);
    assert_eq!(done["note"], Value::Null);
    assert_eq!(
        api_calls(&fake),
        13,
        "one listing and one page a repository, none refused"
    );
}

// 6. History, not news.

#[tokio::test]
async fn backfilled_deploys_fire_no_trigger_agent_call_comment_or_live_job() {
    const REPO: &str = "acme-corp/web-app";
    let repo = GitRepo::new();
    let sha = repo.commit("the fix");
    let fake = FakeGitHub::start().await;
    fake.add_repo(REPO, &repo);
    fake.add_history_repo(REPO, "main");
    let agent = FakeAgent::start().await;
    let now = clock_start();
    fake.add_deployment(
        REPO,
        FakeDeployment::new(77, &sha, "production", now - Duration::hours(2))
            .status("success", now - Duration::hours(2) + Duration::minutes(3)),
    );
    let agent_config = agent.config();
    let app = installed_app_with(&fake, move |config| config.agent = Some(agent_config)).await;
    let response = app
        .client
        .post(app.url("/api/triggers"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"repository": REPO, "environment": "production", "sha": sha, "delay_seconds": 0, "message": "smoke"}))
        .send()
        .await
        .unwrap();
    let (status, trigger) = status_and_json(response).await;
    assert_eq!(status, 201, "{trigger}");

    let id = start_backfill(&app, json!({"since": "1d"})).await;
    let view = run_backfill(&app, id).await;
    app.clock.advance(Duration::hours(1));
    app.run_jobs().await;

    assert_eq!(view["progress"]["deploys_imported"], 1, "{view}");
    let deploys = stored(app.store.conn()).await;
    assert_eq!((deploys[0].status.as_str(), deploys[0].backfilled), ("live", true));
    assert!(agent.received().is_empty());
    assert!(fake.posted().is_empty(), "no PR comment or reaction");
    assert_eq!(jobs_of_kind(&app, "deploy.went_live").await, 0);
    assert_eq!(jobs_of_kind(&app, "trigger.fire").await, 0);
    let (_, trigger) = app.admin_get(&format!("/api/triggers/{}", trigger["id"])).await;
    assert_eq!(trigger["state"], "watching");
}

// 7. A new installation.

#[tokio::test]
async fn a_new_installation_backfills_its_last_30_days_once() {
    let fake = FakeGitHub::start().await;
    let app = installed_app_with(&fake, |config| config.backfill_on_install_days = 30).await;
    let mut redelivered = fixture("installation.created");
    redelivered["requester"] = Value::Null;
    let (status, _) = app.deliver("installation", &redelivered).await;
    assert_eq!(status, 200);

    let (_, list) = app.admin_get("/api/connections/1/backfills").await;

    let backfills = list["backfills"].as_array().unwrap();
    assert_eq!(backfills.len(), 1, "{list}");
    let since: DateTime<Utc> = backfills[0]["since"].as_str().unwrap().parse().unwrap();
    assert_eq!(since, clock_start() - Duration::days(30));
    assert_eq!(backfills[0]["repositories"], Value::Null);
    assert_eq!(jobs_of_kind(&app, "backfill.step").await, 1);
    app.allow_jobs(&["backfill.step"]);
}

#[tokio::test]
async fn with_backfill_on_install_days_0_a_new_installation_starts_none() {
    let fake = FakeGitHub::start().await;
    let app = installed_app_with(&fake, |config| config.backfill_on_install_days = 0).await;

    let (_, list) = app.admin_get("/api/connections/1/backfills").await;

    assert_eq!(list["backfills"], json!([]));
    assert_eq!(jobs_of_kind(&app, "backfill.step").await, 0);
}

// 8. SIGKILL.

fn signed_installation_created() -> (String, Vec<u8>) {
    let body = serde_json::to_vec(&fixture("installation.created")).unwrap();
    (shiplog::github::signature::sign(WEBHOOK_SECRET, &body), body)
}

async fn server_backfill(client: &reqwest::Client, base: &str, id: i64) -> Value {
    let response = client
        .get(format!("{base}/api/backfills/{id}"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    status_and_json(response).await.1
}

/// Polls the server until `done` says so; bounded.
async fn poll_server(client: &reqwest::Client, base: &str, id: i64, done: impl Fn(&Value) -> bool) -> Value {
    let started = std::time::Instant::now();
    loop {
        let view = server_backfill(client, base, id).await;
        if done(&view) {
            return view;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(120),
            "backfill {id} did not get there: {view}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn a_backfill_killed_mid_way_resumes_after_a_restart_without_duplicates() {
    let fake = FakeGitHub::start().await;
    let repos = fake.add_history_repos(OWNER, 6);
    let now = Utc::now();
    let mut made = Vec::new();
    for (n, repo) in repos.iter().enumerate() {
        made.extend(make_history(&fake, repo, 100_000 * (n as i64 + 1), 300, now, n == 0));
    }
    let database = TestDatabase::create().await;
    let key_path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/github/test-app-key.pem");
    let app_id = APP_ID.to_string();
    let env = [
        ("GITHUB_APP_ID", app_id.as_str()),
        ("GITHUB_APP_PRIVATE_KEY_PATH", key_path),
        ("GITHUB_API_URL", fake.url.as_str()),
        ("SHIPLOG_BACKFILL_ON_INSTALL_DAYS", "0"),
    ];
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let mut server = ServerProcess::start_with(&database.url, &env).await;
    let (signature, body) = signed_installation_created();
    let installed = client
        .post(format!("{}/webhooks/github", server.url))
        .header("content-type", "application/json")
        .header("x-github-event", "installation")
        .header("x-github-delivery", "5f0e7b2a-0000-4000-8000-00000000b001")
        .header("x-hub-signature-256", signature)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(installed.status(), 200);
    let response = client
        .post(format!("{}/api/connections/1/backfill", server.url))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"since": "60d"}))
        .send()
        .await
        .unwrap();
    let (status, started) = status_and_json(response).await;
    assert_eq!(status, 202, "{started}");
    let id = started["id"].as_i64().unwrap();
    let since: DateTime<Utc> = started["since"].as_str().unwrap().parse().unwrap();

    let mid_way = poll_server(&client, &server.url, id, |v| {
        v["state"] == "running" && v["progress"]["deploys_imported"].as_i64().unwrap_or(0) > 0
    })
    .await;
    server.kill_9();
    let db: DatabaseConnection = Database::connect(&database.url).await.unwrap();
    let at_kill = stored(&db).await.len();
    // The step a killed worker held stays leased for its 5 minutes; let them be over.
    let backend = db.get_database_backend();
    db.execute(Statement::from_string(
        backend,
        "UPDATE job SET locked_until = created_at WHERE state = 'running'".to_owned(),
    ))
    .await
    .unwrap();
    let server = ServerProcess::start_with(&database.url, &env).await;
    let done = poll_server(&client, &server.url, id, |v| {
        v["state"] == "done" || v["state"] == "failed"
    })
    .await;

    assert_eq!(done["state"], "done", "{done}");
    let imported = within(&made, since);
    assert!(
        at_kill < imported.len(),
        "killed before the end: {at_kill} of {}, {mid_way}",
        imported.len()
    );
    let deploys = stored(&db).await;
    let distinct: BTreeSet<_> = deploys.iter().map(|d| d.github_deployment_id).collect();
    assert_eq!(distinct.len(), deploys.len(), "no GitHub deployment twice");
    assert_eq!(deploys.len(), imported.len());
    assert_eq!(actual(&deploys), expected(&imported));
    assert_one_live_per_environment(&deploys);
    assert_eq!(
        done["progress"]["deploys_imported"].as_i64(),
        Some(imported.len() as i64)
    );
}

// 9. A repository GitHub does not show.

#[tokio::test]
async fn a_repository_github_does_not_show_is_skipped_with_a_note_and_the_others_finish() {
    let fake = FakeGitHub::start().await;
    let repos = fake.add_history_repos(OWNER, 4);
    let now = clock_start();
    for (n, repo) in repos.iter().enumerate() {
        make_history(&fake, repo, 10_000 * (n as i64 + 1), 10, now, false);
    }
    fake.lose_history_repo(&repos[1]);
    fake.lose_history_repo(&repos[2]);
    let app = installed_app(&fake).await;

    let id = start_backfill(&app, json!({"since": "30d"})).await;
    let view = run_backfill(&app, id).await;

    assert_eq!(view["state"], "done", "{view}");
    assert_eq!(view["progress"]["repositories_done"], 4);
    assert_eq!(view["progress"]["deploys_imported"], 20);
    let note = view["note"].as_str().unwrap_or_default();
    assert!(
        note.contains("repo-02") && note.contains("repo-03"),
        "the note names both repositories: {view}"
    );
    let deploys = stored(app.store.conn()).await;
    assert!(deploys
        .iter()
        .all(|d| d.repository != repos[1] && d.repository != repos[2]));
    assert_eq!(deploys.len(), 20);
}

// The repositories asked for, and GitHub's own rate limit.

#[tokio::test]
async fn a_backfill_of_named_repositories_reads_only_those_and_notes_the_ones_not_installed() {
    let fake = FakeGitHub::start().await;
    let repos = fake.add_history_repos(OWNER, 3);
    let now = clock_start();
    for (n, repo) in repos.iter().enumerate() {
        make_history(&fake, repo, 10_000 * (n as i64 + 1), 4, now, false);
    }
    let app = installed_app(&fake).await;

    let id = start_backfill(
        &app,
        json!({"since": "30d", "repositories": ["ACME-CORP/repo-02", "acme-corp/elsewhere"]}),
    )
    .await;
    let view = run_backfill(&app, id).await;

    assert_eq!(view["state"], "done", "{view}");
    assert_eq!(
        view["repositories"],
        json!(["ACME-CORP/repo-02", "acme-corp/elsewhere"])
    );
    assert_eq!(view["progress"]["repositories_total"], 1);
    assert_eq!(view["progress"]["deploys_imported"], 4);
    assert!(
        view["note"]
            .as_str()
            .unwrap_or_default()
            .contains("acme-corp/elsewhere"),
        "{view}"
    );
    assert_eq!(fake.count("/graphql"), 1, "{:?}", fake.calls());
    let deploys = stored(app.store.conn()).await;
    assert!(deploys.iter().all(|d| d.repository == repos[1]), "{deploys:#?}");
}

#[tokio::test]
async fn a_rate_limit_github_answers_makes_the_backfill_wait_and_go_on_with_nothing_lost() {
    let fake = FakeGitHub::start().await;
    let repos = fake.add_history_repos(OWNER, 2);
    let now = clock_start();
    for (n, repo) in repos.iter().enumerate() {
        make_history(&fake, repo, 10_000 * (n as i64 + 1), 150, now, false);
    }
    let app = installed_app(&fake).await;
    let id = start_backfill(&app, json!({"since": "60d"})).await;
    // The listing and the first page of repo-01; then GitHub refuses the second page.
    for _ in 0..2 {
        shiplog::jobs::runner::run_once(&app.runner, "test-worker")
            .await
            .unwrap()
            .unwrap();
    }
    fake.fail_next(crate::fake_github::Fault::PrimaryRateLimit { reset_in: 600 });

    let waiting = run_backfill(&app, id).await;
    let run_at = app
        .first_row("SELECT run_at FROM job WHERE kind = 'backfill.step' AND state = 'queued'")
        .await
        .try_get::<DateTime<Utc>>("", "run_at")
        .unwrap();
    app.clock.set(run_at + Duration::seconds(1));
    let done = run_backfill(&app, id).await;

    assert_eq!(waiting["state"], "waiting", "{waiting}");
    assert!(run_at > now, "it waits for the reset: {run_at}");
    assert_eq!(done["state"], "done", "{done}");
    assert_eq!(done["note"], Value::Null);
    assert_eq!(done["progress"]["repositories_done"], 2);
    assert_eq!(done["progress"]["deploys_imported"], 300);
    assert_eq!(
        fake.count("/graphql"),
        5,
        "2 pages a repository and the refused one: {:?}",
        fake.calls()
    );
    assert_eq!(stored(app.store.conn()).await.len(), 300);
}
