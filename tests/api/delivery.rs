//! Delivery metrics end to end (issue 17): a scripted fortnight of one repository, a real git
//! history behind the fake GitHub, pull requests merged at known times, deploys to staging and
//! production at known times, a backfilled week, a rollback, reverts, a regression, a redelivery;
//! every number `GET /api/metrics/delivery` answers is computed by hand below, with its
//! arithmetic.
//!
//! The timeline (all UTC, November 2026; the asked window is the week of the 9th, the one before
//! it is the backfilled week):
//!
//! | when | what |
//! |---|---|
//! | 3rd 08:10 | B1 production (backfilled) `base` |
//! | 5th 12:10 | B2 production (backfilled) `#10` (squash, merged 3rd 09:00) |
//! | 5th 13:10 | B2b production (backfilled) `base` again: B2 rolled back |
//! | 6th 15:05 | B3 production (backfilled) failed |
//! | 7th 10:05 | B4 production (backfilled) `bump` (direct push, 6th 14:00) |
//! | 9th 07:00 | S1 staging `bump`: the first deploy shiplog saw there |
//! | 9th 13:30 | S2 staging: #12 (merge commit; commits 09:00, 10:00; opened 09:30) and #13 (squash at 13:00, opened 08:00) |
//! | 9th 14:00 | P1 production (started 13:50), the same; delivered twice |
//! | 10th 10:30 | S3 staging: #14 (merge commit; commit 09:00, opened 09:00, merged 10:00) |
//! | 10th 11:00 | P2 production: #14 |
//! | 10th 11:30 | P3 production back at P1's commit: P2 rolled back |
//! | 11th 10:00 | P4 production `tweak a` (10th 20:00): #14 again, after the rollback |
//! | 11th 11:00 | P5 production `tweak b` (10th 21:00); #15 merged 09:00 is not in it |
//! | 11th 12:00 | P6 production: #15 (squash at 09:00, opened 10th 16:00), the third deploy after its merge |
//! | 12th 11:00 | P7 production: #16 (merge commit; commit 09:00, opened 09:00, merged 10:00) |
//! | 12th 16:00 | P8 production: #17, the Revert button's PR for #16 (squash 15:00, opened 14:30) |
//! | 13th 09:30 | F1 production failed |
//! | 13th 10:00 | P9 production: #18 (squash 09:00, opened 08:00) |
//! | 14th 12:00 | P10 production: a `git revert` of #18's commit, 26 h after P9 (window 24 h) |
//! | 14th 14:00 | P11 production: #19 (squash 13:00, opened 12:30) and its revert (13:30) together |
//! | 15th 09:00 | P12 production: #20 (merge commit; commit 14th 20:00, opened 21:00, merged 08:00) |
//! | 15th 09:20 | #20's 10-minute monitoring check says `regressed` about P12 |
//! | 15th 12:00 | P13 production `fix` (11:00) |

use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};
use shiplog::config::{GitHubAppCredentials, Secret};

use crate::fake_agent::FakeAgent;
use crate::fake_github::{private_key_pem, FakeDeployment, FakeGitHub, APP_ID};
use crate::git::GitRepo;
use crate::helpers::{fixture, set, spawn_app_with, status_and_json, TestApp, ADMIN_TOKEN};

const REPO: &str = "acme-corp/web-app";
const HOUR: i64 = 3600;
const MINUTE: i64 = 60;

fn at(raw: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(raw).unwrap().with_timezone(&Utc)
}

/// A commit on the current branch authored (and committed) at `when`; its SHA.
fn commit_at(repo: &GitRepo, message: &str, when: &str) -> String {
    git_at(repo, &["commit", "-q", "--allow-empty", "-m", message], when);
    repo.head()
}

/// Merges `branch` with a merge commit made at `when`; its SHA.
fn merge_at(repo: &GitRepo, branch: &str, message: &str, when: &str) -> String {
    git_at(repo, &["merge", "-q", "--no-ff", "-m", message, branch], when);
    repo.head()
}

fn git_at(repo: &GitRepo, args: &[&str], when: &str) {
    let output = std::process::Command::new("git")
        .args(args)
        .env("GIT_AUTHOR_DATE", when)
        .env("GIT_COMMITTER_DATE", when)
        .current_dir(repo.path())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// GitHub tells shiplog that pull request `number`, opened at `opened`, was merged as `sha` at
/// `merged`; the delivery is sent `times` times (a redelivery is the same news).
async fn merged(app: &TestApp, number: i64, title: &str, sha: &str, opened: &str, merged: &str, times: usize) {
    let mut event = fixture("pull_request.closed");
    set(&mut event, "/number", json!(number));
    set(&mut event, "/pull_request/number", json!(number));
    set(&mut event, "/pull_request/title", json!(title));
    set(&mut event, "/pull_request/merge_commit_sha", json!(sha));
    set(&mut event, "/pull_request/created_at", json!(opened));
    set(&mut event, "/pull_request/merged_at", json!(merged));
    set(&mut event, "/pull_request/closed_at", json!(merged));
    for _ in 0..times {
        let (status, body) = app.deliver("pull_request", &event).await;
        assert_eq!(status, 200, "{body}");
    }
}

/// A deploy credential, as a CI system holds it, and the run ids it has used.
struct Ci {
    username: String,
    password: String,
    runs: std::cell::Cell<u32>,
}

async fn credential(app: &TestApp, connection: i64) -> Ci {
    let response = app
        .client
        .post(app.url(&format!("/api/connections/{connection}/credentials")))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    let (status, body) = status_and_json(response).await;
    assert_eq!(status, 201, "{body}");
    Ci {
        username: body["username"].as_str().unwrap().to_owned(),
        password: body["password"].as_str().unwrap().to_owned(),
        runs: std::cell::Cell::new(100),
    }
}

/// The CI system reports a deploy of `sha` to `environment` as run `run`: `status` at the
/// clock's time; the deploy's id.
async fn report(app: &TestApp, ci: &Ci, run: &str, environment: &str, sha: &str, status: &str) -> i64 {
    let response = app
        .client
        .post(app.url("/deployments"))
        .basic_auth(&ci.username, Some(&ci.password))
        .json(&json!({
            "repository": REPO, "environment": environment, "sha": sha, "status": status, "external_id": run,
        }))
        .send()
        .await
        .unwrap();
    let (code, answer) = status_and_json(response).await;
    assert!(code == 201 || code == 200, "{code} {answer}");
    answer["id"].as_i64().unwrap()
}

/// A deploy of `sha` to `environment` that started ten minutes before `done` and then (at
/// `done`) went `live` or `failed`; every due job runs. Its id.
async fn deploy(app: &TestApp, ci: &Ci, environment: &str, sha: &str, done: &str, status: &str) -> i64 {
    ci.runs.set(ci.runs.get() + 1);
    let run = format!("run-{}", ci.runs.get());
    app.clock.set(at(done) - Duration::minutes(10));
    let id = report(app, ci, &run, environment, sha, "deploying").await;
    app.clock.set(at(done));
    assert_eq!(report(app, ci, &run, environment, sha, status).await, id);
    app.run_jobs().await;
    id
}

async fn metrics(app: &TestApp, query: &str) -> Value {
    let (status, body) = app.admin_get(&format!("/api/metrics/delivery?{query}")).await;
    assert_eq!(status, 200, "{query}: {body}");
    body
}

fn items(list: &Value) -> &Vec<Value> {
    list["items"].as_array().unwrap()
}

fn ids(list: &Value) -> Vec<i64> {
    items(list)
        .iter()
        .map(|i| i["deployment_id"].as_i64().unwrap())
        .collect()
}

fn lead_of(report: &Value, number: i64) -> &Value {
    items(&report["lead_times"])
        .iter()
        .find(|l| l["pull_request"] == number)
        .unwrap_or_else(|| panic!("no lead time of #{number}: {}", report["lead_times"]))
}

fn failure_of(report: &Value, deployment: i64) -> &Value {
    items(&report["failures"])
        .iter()
        .find(|f| f["deployment_id"] == deployment)
        .unwrap_or_else(|| panic!("no failure of {deployment}: {}", report["failures"]))
}

fn reasons(item: &Value) -> Vec<String> {
    item["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["reason"].as_str().unwrap().to_owned())
        .collect()
}

/// The summary's numbers, in one comparable value.
fn numbers(summary: &Value) -> Value {
    json!({
        "deploys": summary["deploys"],
        "backfilled_deploys": summary["backfilled_deploys"],
        "deploys_per_day": summary["deploys_per_day"],
        "deploys_per_week": summary["deploys_per_week"],
        "failed_attempts": summary["failed_attempts"],
        "lead_time": summary["lead_time"],
        "failed_deploys": summary["failed_deploys"],
        "change_fail_rate": summary["change_fail_rate"],
        "recovery_time": summary["recovery_time"],
        "unrecovered": summary["unrecovered"],
        "unplanned_deploys": summary["unplanned_deploys"],
        "rework_rate": summary["rework_rate"],
    })
}

fn spread(count: usize, median: Option<i64>, p90: Option<i64>) -> Value {
    json!({"count": count, "median_seconds": median, "p90_seconds": p90})
}

/// An installed app with the GitHub App against `fake` and `agent`, checking at `schedule`
/// (seconds after a deploy).
async fn app_with_github_and_agent(fake: &FakeGitHub, agent: &FakeAgent, schedule: &[u64]) -> TestApp {
    let schedule: Vec<std::time::Duration> = schedule.iter().map(|s| std::time::Duration::from_secs(*s)).collect();
    let (url, agent_config) = (fake.url.clone(), agent.config());
    let app = spawn_app_with(move |config| {
        config.github_api_url = url;
        config.github_app = Some(GitHubAppCredentials {
            app_id: APP_ID,
            private_key_pem: Secret::new(private_key_pem()),
        });
        config.agent = Some(agent_config);
        config.monitor_schedule = schedule;
        config.monitor_expiry = std::time::Duration::from_secs(14 * 86_400);
    })
    .await;
    assert_eq!(
        app.deliver("installation", &fixture("installation.created")).await.0,
        200
    );
    app
}

/// Opts pull request `number` in to deploy monitoring in production.
async fn watch(app: &TestApp, number: i64) {
    let response = app
        .client
        .post(app.url("/api/monitoring-plans"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"repository": REPO, "pull_number": number, "environments": ["production"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
}

/// The agent answers check `check`; due jobs run.
async fn verdict(app: &TestApp, check: i64, verdict: &str, summary: &str) {
    let response = app
        .client
        .post(app.url(&format!("/api/checks/{check}/result")))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"verdict": verdict, "summary": summary}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    app.run_jobs().await;
}

/// Imports GitHub's deployments of the last `since` as history, to the end.
async fn backfill(app: &TestApp, since: &str) {
    let response = app
        .client
        .post(app.url("/api/connections/1/backfill"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({ "since": since }))
        .send()
        .await
        .unwrap();
    let (status, started) = status_and_json(response).await;
    assert_eq!(status, 202, "{started}");
    for _ in 0..20 {
        app.run_jobs().await;
        let (_, view) = app.admin_get(&format!("/api/backfills/{}", started["id"])).await;
        if view["state"] == "done" {
            return;
        }
        assert_ne!(view["state"], "failed", "{view}");
    }
    panic!("the backfill did not finish");
}

#[tokio::test]
async fn every_delivery_metric_of_a_scripted_fortnight_is_the_one_computed_by_hand() {
    // Arrange: the history, as git and GitHub keep it.
    let repo = GitRepo::new();
    let base = commit_at(&repo, "base", "2026-11-01T10:00:00Z");
    let s10 = commit_at(&repo, "Readme (#10)", "2026-11-03T09:00:00Z");
    let bump = commit_at(&repo, "Bump dependencies", "2026-11-06T14:00:00Z");
    repo.branch("pr-12");
    commit_at(&repo, "Search: index", "2026-11-09T09:00:00Z");
    commit_at(&repo, "Search: page", "2026-11-09T10:00:00Z");
    repo.checkout("main");
    let m12 = merge_at(
        &repo,
        "pr-12",
        "Merge pull request #12 from acme-corp/pr-12",
        "2026-11-09T12:00:00Z",
    );
    let s13 = commit_at(&repo, "Faster board (#13)", "2026-11-09T13:00:00Z");
    repo.branch("pr-14");
    commit_at(&repo, "Cache everything", "2026-11-10T09:00:00Z");
    repo.checkout("main");
    let m14 = merge_at(
        &repo,
        "pr-14",
        "Merge pull request #14 from acme-corp/pr-14",
        "2026-11-10T10:00:00Z",
    );
    let tweak_a = commit_at(&repo, "tweak a", "2026-11-10T20:00:00Z");
    let tweak_b = commit_at(&repo, "tweak b", "2026-11-10T21:00:00Z");
    let s15 = commit_at(&repo, "Dark mode (#15)", "2026-11-11T09:00:00Z");
    repo.branch("pr-16");
    commit_at(&repo, "New checkout", "2026-11-12T09:00:00Z");
    repo.checkout("main");
    let m16 = merge_at(
        &repo,
        "pr-16",
        "Merge pull request #16 from acme-corp/pr-16",
        "2026-11-12T10:00:00Z",
    );
    // GitHub's Revert button: a PR whose squash commit says which PR it reverts.
    let s17 = commit_at(
        &repo,
        "Revert \"New checkout\" (#17)\n\nReverts acme-corp/web-app#16",
        "2026-11-12T15:00:00Z",
    );
    let s18 = commit_at(&repo, "Retry webhooks (#18)", "2026-11-13T09:00:00Z");
    let rv18 = commit_at(
        &repo,
        &format!("Revert \"Retry webhooks (#18)\"\n\nThis reverts commit {s18}."),
        "2026-11-14T11:00:00Z",
    );
    let s19 = commit_at(&repo, "Emoji titles (#19)", "2026-11-14T13:00:00Z");
    let rv19 = commit_at(
        &repo,
        &format!("Revert \"Emoji titles (#19)\"\n\nThis reverts commit {s19}."),
        "2026-11-14T13:30:00Z",
    );
    repo.branch("pr-20");
    commit_at(&repo, "Batch the board", "2026-11-14T20:00:00Z");
    repo.checkout("main");
    let m20 = merge_at(
        &repo,
        "pr-20",
        "Merge pull request #20 from acme-corp/pr-20",
        "2026-11-15T08:00:00Z",
    );
    let fix = commit_at(&repo, "Fix the board batch", "2026-11-15T11:00:00Z");

    let fake = FakeGitHub::start().await;
    fake.add_repo(REPO, &repo);
    fake.add_history_repo(REPO, "main");
    let deployment = |id, sha: &str, created: &str, state: &str, done: &str| {
        FakeDeployment::new(id, sha, "production", at(created)).status(state, at(done))
    };
    fake.add_deployment(
        REPO,
        deployment(901, &base, "2026-11-03T08:00:00Z", "success", "2026-11-03T08:10:00Z"),
    );
    fake.add_deployment(
        REPO,
        deployment(902, &s10, "2026-11-05T12:00:00Z", "success", "2026-11-05T12:10:00Z"),
    );
    // A redeploy of an earlier commit: B2 rolled back, an hour later.
    fake.add_deployment(
        REPO,
        deployment(9021, &base, "2026-11-05T13:00:00Z", "success", "2026-11-05T13:10:00Z"),
    );
    fake.add_deployment(
        REPO,
        deployment(903, &bump, "2026-11-06T15:00:00Z", "failure", "2026-11-06T15:05:00Z"),
    );
    fake.add_deployment(
        REPO,
        deployment(904, &bump, "2026-11-07T10:00:00Z", "success", "2026-11-07T10:05:00Z"),
    );
    let agent = FakeAgent::start().await;
    let app = app_with_github_and_agent(&fake, &agent, &[600]).await;
    let ci = credential(&app, 1).await;

    // The backfilled week, imported before anything is reported live.
    app.clock.set(at("2026-11-09T06:00:00Z"));
    merged(
        &app,
        10,
        "Readme",
        &s10,
        "2026-11-02T17:00:00Z",
        "2026-11-03T09:00:00Z",
        1,
    )
    .await;
    backfill(&app, "7d").await;

    // The week of the 9th.
    let s1 = deploy(&app, &ci, "staging", &bump, "2026-11-09T07:00:00Z", "live").await;
    merged(
        &app,
        12,
        "Search",
        &m12,
        "2026-11-09T09:30:00Z",
        "2026-11-09T12:00:00Z",
        1,
    )
    .await;
    // GitHub redelivers the news of #13: the same pull request.
    merged(
        &app,
        13,
        "Faster board",
        &s13,
        "2026-11-09T08:00:00Z",
        "2026-11-09T13:00:00Z",
        2,
    )
    .await;
    let s2 = deploy(&app, &ci, "staging", &s13, "2026-11-09T13:30:00Z", "live").await;
    let p1 = deploy(&app, &ci, "production", &s13, "2026-11-09T14:00:00Z", "live").await;
    // The CI system reports the same deploy again five minutes later: the same deploy.
    app.clock.set(at("2026-11-09T14:05:00Z"));
    let run = format!("run-{}", ci.runs.get());
    assert_eq!(report(&app, &ci, &run, "production", &s13, "live").await, p1);
    app.run_jobs().await;

    merged(
        &app,
        14,
        "Cache everything",
        &m14,
        "2026-11-10T09:00:00Z",
        "2026-11-10T10:00:00Z",
        1,
    )
    .await;
    let s3 = deploy(&app, &ci, "staging", &m14, "2026-11-10T10:30:00Z", "live").await;
    let p2 = deploy(&app, &ci, "production", &m14, "2026-11-10T11:00:00Z", "live").await;
    let p3 = deploy(&app, &ci, "production", &s13, "2026-11-10T11:30:00Z", "live").await;
    let p4 = deploy(&app, &ci, "production", &tweak_a, "2026-11-11T10:00:00Z", "live").await;
    merged(
        &app,
        15,
        "Dark mode",
        &s15,
        "2026-11-10T16:00:00Z",
        "2026-11-11T09:00:00Z",
        1,
    )
    .await;
    let p5 = deploy(&app, &ci, "production", &tweak_b, "2026-11-11T11:00:00Z", "live").await;
    let p6 = deploy(&app, &ci, "production", &s15, "2026-11-11T12:00:00Z", "live").await;

    merged(
        &app,
        16,
        "New checkout",
        &m16,
        "2026-11-12T09:00:00Z",
        "2026-11-12T10:00:00Z",
        1,
    )
    .await;
    let p7 = deploy(&app, &ci, "production", &m16, "2026-11-12T11:00:00Z", "live").await;
    merged(
        &app,
        17,
        "Revert \"New checkout\"",
        &s17,
        "2026-11-12T14:30:00Z",
        "2026-11-12T15:00:00Z",
        1,
    )
    .await;
    let p8 = deploy(&app, &ci, "production", &s17, "2026-11-12T16:00:00Z", "live").await;

    merged(
        &app,
        18,
        "Retry webhooks",
        &s18,
        "2026-11-13T08:00:00Z",
        "2026-11-13T09:00:00Z",
        1,
    )
    .await;
    let f1 = deploy(&app, &ci, "production", &s18, "2026-11-13T09:30:00Z", "failed").await;
    let p9 = deploy(&app, &ci, "production", &s18, "2026-11-13T10:00:00Z", "live").await;
    let p10 = deploy(&app, &ci, "production", &rv18, "2026-11-14T12:00:00Z", "live").await;
    merged(
        &app,
        19,
        "Emoji titles",
        &s19,
        "2026-11-14T12:30:00Z",
        "2026-11-14T13:00:00Z",
        1,
    )
    .await;
    let p11 = deploy(&app, &ci, "production", &rv19, "2026-11-14T14:00:00Z", "live").await;

    merged(
        &app,
        20,
        "Batch the board",
        &m20,
        "2026-11-14T21:00:00Z",
        "2026-11-15T08:00:00Z",
        1,
    )
    .await;
    watch(&app, 20).await;
    let p12 = deploy(&app, &ci, "production", &m20, "2026-11-15T09:00:00Z", "live").await;
    app.clock.set(at("2026-11-15T09:11:00Z"));
    app.run_jobs().await;
    let check = agent.received()[0].body["check"]["id"].as_i64().unwrap();
    app.clock.set(at("2026-11-15T09:20:00Z"));
    verdict(&app, check, "regressed", "checkout errors doubled").await;
    let p13 = deploy(&app, &ci, "production", &fix, "2026-11-15T12:00:00Z", "live").await;
    app.clock.set(at("2026-11-16T08:00:00Z"));
    app.run_jobs().await;

    // Act
    let week = metrics(
        &app,
        &format!("repository={REPO}&from=2026-11-09&to=2026-11-16&bucket=day"),
    )
    .await;
    let staging = metrics(
        &app,
        &format!("repository={REPO}&environment=staging&from=2026-11-09&to=2026-11-16&bucket=day"),
    )
    .await;
    let backfilled = metrics(&app, &format!("repository={REPO}&from=2026-11-02&to=2026-11-09")).await;

    // Assert. Production deploys that went live in the week: P1…P13 = 13 (P1 once, though
    // reported twice; F1 failed before going live). 13 / 7 days = 1.8571 a day, 13 a week.
    const DEPLOYS: usize = 13;
    // Lead times (live − start; the start is the first commit, or the opening when earlier):
    const LEAD_12: i64 = 5 * HOUR; // P1 14:00 − first commit 09:00 (opened 09:30)
    const LEAD_13: i64 = 6 * HOUR; // P1 14:00 − opened 08:00 (squashed at 13:00)
    const LEAD_14: i64 = 2 * HOUR; // P2 10th 11:00 − commit 09:00; P4 brings it again: not counted
    const LEAD_15: i64 = 20 * HOUR; // P6 11th 12:00 − opened 10th 16:00 (squashed 11th 09:00)
    const LEAD_16: i64 = 2 * HOUR; // P7 12th 11:00 − commit 09:00
    const LEAD_17: i64 = 90 * MINUTE; // P8 12th 16:00 − opened 14:30 (squashed 15:00)
    const LEAD_18: i64 = 2 * HOUR; // P9 13th 10:00 − opened 08:00 (squashed 09:00)
    const LEAD_19: i64 = 90 * MINUTE; // P11 14th 14:00 − opened 12:30 (squashed 13:00)
    const LEAD_20: i64 = 13 * HOUR; // P12 15th 09:00 − commit 14th 20:00 (opened 21:00)
                                    // Sorted: 5400 5400 7200 7200 7200 18000 21600 46800 72000 (9 values).
                                    // Median: rank ⌈0.5 × 9⌉ = 5 → 7200; p90: rank ⌈0.9 × 9⌉ = 9 → 72000.
    assert_eq!(
        [LEAD_17, LEAD_19, LEAD_14, LEAD_16, LEAD_18, LEAD_12, LEAD_13, LEAD_20, LEAD_15],
        [5400, 5400, 7200, 7200, 7200, 18_000, 21_600, 46_800, 72_000]
    );
    // Failures: P2 rolled back by P3 (11:30 − 11:00 = 1800 s); P7 reverted by P8, 5 h later,
    // within the 24 h window (16:00 − 11:00 = 18000 s); P12 regressed, recovered by the next
    // deploy P13 (12:00 − 09:00 = 10800 s). P9's revert came 26 h later (P10): no failure. P11's
    // revert shipped with what it reverts: neither a failure nor rework. 3 / 13 = 0.2308.
    // Recovery sorted 1800 10800 18000: median rank 2 → 10800, p90 rank 3 → 18000.
    // Unplanned: P3 (rollback), P8 (revert of #16), P10 (revert of #18's commit) = 3 / 13.
    assert_eq!(
        numbers(&week["summary"]),
        json!({
            "deploys": DEPLOYS,
            "backfilled_deploys": 0,
            "deploys_per_day": 1.8571,
            "deploys_per_week": 13.0,
            "failed_attempts": 1,
            "lead_time": spread(9, Some(7200), Some(72_000)),
            "failed_deploys": 3,
            "change_fail_rate": 0.2308,
            "recovery_time": spread(3, Some(10_800), Some(18_000)),
            "unrecovered": 0,
            "unplanned_deploys": 3,
            "rework_rate": 0.2308,
        }),
        "{}",
        week["summary"]
    );
    // The week before, all backfilled: B1, B2, B2b, B4 went live (4 / 7 = 0.5714 a day), B3
    // failed. Nothing was listed, so no lead time; B2b redeployed B1's commit, so B2 was rolled
    // back, recovered in 13:10 − 12:10 = 3600 s, and B2b is rework: 1 / 4 = 0.25 each, a floor
    // (reverts and regressions of backfilled deploys are not known).
    let previous = json!({
        "deploys": 4,
        "backfilled_deploys": 4,
        "deploys_per_day": 0.5714,
        "deploys_per_week": 4.0,
        "failed_attempts": 1,
        "lead_time": spread(0, None, None),
        "failed_deploys": 1,
        "change_fail_rate": 0.25,
        "recovery_time": spread(1, Some(3600), Some(3600)),
        "unrecovered": 0,
        "unplanned_deploys": 1,
        "rework_rate": 0.25,
    });
    assert_eq!(numbers(&week["previous"]), previous, "{}", week["previous"]);
    assert_eq!(week["previous_from"], "2026-11-02T00:00:00Z");
    assert_eq!(numbers(&backfilled["summary"]), previous);

    // Buckets: seven days from the 9th.
    let buckets = week["buckets"].as_array().unwrap();
    assert_eq!(buckets.len(), 7);
    assert_eq!(
        (&buckets[0]["start"], &buckets[6]["end"]),
        (&json!("2026-11-09T00:00:00Z"), &json!("2026-11-16T00:00:00Z"))
    );
    // The 9th: P1 with #12 (18000) and #13 (21600): median rank 1 → 18000, p90 rank 2 → 21600.
    assert_eq!(
        numbers(&buckets[0]),
        json!({
            "deploys": 1, "backfilled_deploys": 0, "deploys_per_day": 1.0, "deploys_per_week": 7.0, "failed_attempts": 0,
            "lead_time": spread(2, Some(LEAD_12), Some(LEAD_13)),
            "failed_deploys": 0, "change_fail_rate": 0.0,
            "recovery_time": spread(0, None, None), "unrecovered": 0,
            "unplanned_deploys": 0, "rework_rate": 0.0,
        })
    );
    // The 10th: P2 (failed, 1800 s to recover) and P3 (its rollback): 1 / 2 and 1 / 2.
    assert_eq!(
        numbers(&buckets[1]),
        json!({
            "deploys": 2, "backfilled_deploys": 0, "deploys_per_day": 2.0, "deploys_per_week": 14.0, "failed_attempts": 0,
            "lead_time": spread(1, Some(LEAD_14), Some(LEAD_14)),
            "failed_deploys": 1, "change_fail_rate": 0.5,
            "recovery_time": spread(1, Some(1800), Some(1800)), "unrecovered": 0,
            "unplanned_deploys": 1, "rework_rate": 0.5,
        })
    );
    // The 13th: F1 failed (an attempt, not a failure) and P9 went live.
    assert_eq!(
        numbers(&buckets[4]),
        json!({
            "deploys": 1, "backfilled_deploys": 0, "deploys_per_day": 1.0, "deploys_per_week": 7.0, "failed_attempts": 1,
            "lead_time": spread(1, Some(LEAD_18), Some(LEAD_18)),
            "failed_deploys": 0, "change_fail_rate": 0.0,
            "recovery_time": spread(0, None, None), "unrecovered": 0,
            "unplanned_deploys": 0, "rework_rate": 0.0,
        })
    );

    // The items: deploys newest first, the failed attempt apart.
    assert_eq!(
        ids(&week["deploys"]),
        vec![p13, p12, p11, p10, p9, p8, p7, p6, p5, p4, p3, p2, p1]
    );
    assert_eq!(week["deploys"]["total"], DEPLOYS);
    assert_eq!(ids(&week["failed_attempts"]), vec![f1]);
    assert_eq!(week["failed_attempts"]["items"][0]["status"], "failed");
    assert_eq!(
        week["environments"],
        json!([{"repository": REPO, "environment": "production", "deploys": DEPLOYS}])
    );
    let p1_item = items(&week["deploys"]).last().unwrap();
    assert_eq!(
        (&p1_item["started_at"], &p1_item["completed_at"]),
        (&json!("2026-11-09T13:50:00Z"), &json!("2026-11-09T14:00:00Z")),
        "the redelivered report changed nothing: {p1_item}"
    );

    // Lead times, newest first, each with where it started and its stages.
    let numbers_listed: Vec<i64> = items(&week["lead_times"])
        .iter()
        .map(|l| l["pull_request"].as_i64().unwrap())
        .collect();
    assert_eq!(numbers_listed, vec![20, 19, 18, 17, 16, 15, 14, 13, 12]);
    for (number, seconds, from, deployment) in [
        (12, LEAD_12, "first_commit", p1),
        (13, LEAD_13, "opened", p1),
        (14, LEAD_14, "first_commit", p2),
        (15, LEAD_15, "opened", p6),
        (16, LEAD_16, "first_commit", p7),
        (17, LEAD_17, "opened", p8),
        (18, LEAD_18, "opened", p9),
        (19, LEAD_19, "opened", p11),
        (20, LEAD_20, "first_commit", p12),
    ] {
        let lead = lead_of(&week, number);
        assert_eq!(
            (
                lead["lead_time_seconds"].as_i64(),
                lead["started_from"].as_str(),
                lead["deployment_id"].as_i64()
            ),
            (Some(seconds), Some(from), Some(deployment)),
            "#{number}: {lead}"
        );
        assert_eq!(lead["note"], Value::Null, "#{number}: {lead}");
    }
    let stages = |l: &Value| {
        json!([
            l["first_commit_at"],
            l["opened_at"],
            l["merged_at"],
            l["deploy_started_at"],
            l["live_at"]
        ])
    };
    assert_eq!(
        stages(lead_of(&week, 12)),
        json!([
            "2026-11-09T09:00:00Z",
            "2026-11-09T09:30:00Z",
            "2026-11-09T12:00:00Z",
            "2026-11-09T13:50:00Z",
            "2026-11-09T14:00:00Z"
        ])
    );
    assert_eq!(
        stages(lead_of(&week, 15)),
        json!([
            "2026-11-11T09:00:00Z",
            "2026-11-10T16:00:00Z",
            "2026-11-11T09:00:00Z",
            "2026-11-11T11:50:00Z",
            "2026-11-11T12:00:00Z"
        ])
    );
    assert_eq!(lead_of(&week, 12)["merge_commit_sha"], m12);
    assert_eq!(lead_of(&week, 12)["title"], "Search");

    // Failures, newest first, with their reasons and recoveries.
    assert_eq!(ids(&week["failures"]), vec![p12, p7, p2]);
    for (failed, reason, by, seconds) in [
        (p2, "rolled_back", p3, 1800),
        (p7, "reverted", p8, 5 * HOUR),
        (p12, "regressed", p13, 3 * HOUR),
    ] {
        let failure = failure_of(&week, failed);
        assert_eq!(reasons(failure), vec![reason], "{failure}");
        assert_eq!(
            (failure["recovered_by"].as_i64(), failure["recovery_seconds"].as_i64()),
            (Some(by), Some(seconds)),
            "{failure}"
        );
    }
    let reverted = &failure_of(&week, p7)["reasons"][0]["detail"];
    assert!(reverted.as_str().unwrap().contains("#16"), "{reverted}");
    let regressed = &failure_of(&week, p12)["reasons"][0]["detail"];
    assert!(
        regressed.as_str().unwrap().contains("checkout errors doubled"),
        "{regressed}"
    );

    // Rework: the rollback and the two reverts that reached production after what they revert.
    assert_eq!(ids(&week["rework"]), vec![p10, p8, p3]);
    let rework_reasons: Vec<Vec<String>> = items(&week["rework"]).iter().map(reasons).collect();
    assert_eq!(rework_reasons, vec![vec!["revert"], vec!["revert"], vec!["rollback"]]);
    let late = items(&week["rework"])[0]["reasons"][0]["detail"].as_str().unwrap();
    assert!(
        late.contains(&s18[..7]) && late.contains(&format!("deployment {p9}")),
        "{late}"
    );

    // Every production deploy of the week was listed (P1 compared with the backfilled B4).
    assert_eq!(week["unknown"], json!({"total": 0, "items": []}));
    // The backfilled week: four deploys whose contents were not read, said so; B2's rollback.
    assert_eq!(backfilled["deploys"]["total"], 4);
    let unknown = items(&backfilled["unknown"]);
    assert_eq!(unknown.len(), 4, "{}", backfilled["unknown"]);
    assert!(unknown
        .iter()
        .all(|u| u["why"].as_str().unwrap().starts_with("backfilled from history")));
    assert!(items(&backfilled["deploys"]).iter().all(|d| d["backfilled"] == true));
    assert_eq!(
        unknown
            .iter()
            .map(|u| u["live_at"].as_str().unwrap())
            .collect::<Vec<_>>(),
        vec![
            "2026-11-07T10:05:00Z",
            "2026-11-05T13:10:00Z",
            "2026-11-05T12:10:00Z",
            "2026-11-03T08:10:00Z"
        ]
    );
    let b2 = items(&backfilled["deploys"])[2]["deployment_id"].as_i64().unwrap();
    let b2b = items(&backfilled["deploys"])[1]["deployment_id"].as_i64().unwrap();
    assert_eq!(ids(&backfilled["failures"]), vec![b2]);
    let rolled_back = failure_of(&backfilled, b2);
    assert_eq!(reasons(rolled_back), vec!["rolled_back"]);
    assert_eq!(rolled_back["recovered_by"].as_i64(), Some(b2b));
    assert_eq!(ids(&backfilled["rework"]), vec![b2b]);
    assert_eq!(items(&backfilled["rework"])[0]["reasons"][0]["reason"], "rollback");
    assert_eq!(ids(&backfilled["failed_attempts"]).len(), 1);

    // Staging alone: S1 (the first seen there: unknown), S2 (#12 and #13), S3 (#14).
    // #12: 13:30 − 09:00 = 16200; #13: 13:30 − 08:00 = 19800; #14: 10th 10:30 − 09:00 = 5400.
    // Sorted 5400 16200 19800: median rank 2 → 16200; p90 rank 3 → 19800.
    assert_eq!(
        numbers(&staging["summary"]),
        json!({
            "deploys": 3,
            "backfilled_deploys": 0,
            "deploys_per_day": 0.4286,
            "deploys_per_week": 3.0,
            "failed_attempts": 0,
            "lead_time": spread(3, Some(16_200), Some(19_800)),
            "failed_deploys": 0,
            "change_fail_rate": 0.0,
            "recovery_time": spread(0, None, None),
            "unrecovered": 0,
            "unplanned_deploys": 0,
            "rework_rate": 0.0,
        })
    );
    assert_eq!(staging["environment"], "staging");
    assert_eq!(ids(&staging["deploys"]), vec![s3, s2, s1]);
    assert_eq!(ids(&staging["unknown"]), vec![s1]);
    let first = items(&staging["unknown"])[0]["why"].as_str().unwrap();
    assert!(
        first.starts_with("the first deploy shiplog saw in this environment"),
        "{first}"
    );
    assert_eq!(lead_of(&staging, 14)["deployment_id"], s3);
    assert_eq!(lead_of(&staging, 12)["lead_time_seconds"], 16_200);

    // Checks, the plan's expiry and its PR comments are not this test's business.
    app.allow_jobs(&["monitoring.check", "monitoring.expire", "github.write"]);
}

#[tokio::test]
async fn another_connections_credential_sees_nothing_and_bad_parameters_are_named() {
    let app = crate::board::two_connections().await;
    let repo = GitRepo::new();
    let sha = commit_at(&repo, "base", "2026-11-01T10:00:00Z");
    let ci = credential(&app, 1).await;
    deploy(&app, &ci, "production", &sha, "2026-11-02T10:00:00Z", "live").await;
    let other = credential(&app, 2).await;
    let get = |query: &str, who: &Ci| {
        app.client
            .get(app.url(&format!("/api/metrics/delivery?{query}")))
            .basic_auth(&who.username, Some(&who.password))
            .send()
    };

    let (own_status, own) = status_and_json(get("from=2026-11-02&to=2026-11-03", &ci).await.unwrap()).await;
    let (all_status, all) = status_and_json(get("from=2026-11-02&to=2026-11-03", &other).await.unwrap()).await;
    let (named_status, named) = status_and_json(
        get(&format!("repository={REPO}&from=2026-11-02"), &other)
            .await
            .unwrap(),
    )
    .await;
    let (connection_status, _) = status_and_json(get("connection=1", &other).await.unwrap()).await;
    let (unknown_status, unknown) = app
        .admin_get("/api/metrics/delivery?colour=red&repository=a/b&repository=c/d")
        .await;
    let (invalid_status, invalid) = app
        .admin_get(&format!(
            "/api/metrics/delivery?bucket=month&from=last-week&environment={}&connection=0",
            "x".repeat(300)
        ))
        .await;
    let (reversed_status, reversed) = app
        .admin_get("/api/metrics/delivery?from=2026-11-09&to=2026-11-02")
        .await;
    let (long_status, long) = app
        .admin_get("/api/metrics/delivery?from=2025-01-01&to=2026-11-02")
        .await;

    assert_eq!(
        (own_status, own["summary"]["deploys"].as_i64()),
        (200, Some(1)),
        "{own}"
    );
    assert_eq!(
        (all_status, all["summary"]["deploys"].as_i64()),
        (200, Some(0)),
        "{all}"
    );
    assert_eq!(all["deploys"], json!({"total": 0, "items": []}));
    assert_eq!(named_status, 403, "{named}");
    assert_eq!(connection_status, 403);
    let fields = |problem: &Value| {
        let mut fields: Vec<String> = problem["errors"]
            .as_array()
            .unwrap_or_else(|| panic!("{problem}"))
            .iter()
            .map(|e| e["field"].as_str().unwrap().to_owned())
            .collect();
        fields.sort();
        fields
    };
    assert_eq!(unknown_status, 422);
    assert_eq!(fields(&unknown), ["colour", "repository"]);
    assert_eq!(invalid_status, 422);
    assert_eq!(fields(&invalid), ["bucket", "connection", "environment", "from"]);
    assert_eq!((reversed_status, fields(&reversed)), (422, vec!["from".to_owned()]));
    assert_eq!((long_status, fields(&long)), (422, vec!["from".to_owned()]));
}

#[tokio::test]
async fn a_revert_of_a_pull_request_shipped_again_after_a_rollback_fails_the_deploy_that_shipped_it_again_and_relanding_is_planned(
) {
    let repo = GitRepo::new();
    let base = commit_at(&repo, "base", "2026-11-08T10:00:00Z");
    repo.branch("pr-14");
    commit_at(&repo, "Cache everything", "2026-11-09T09:00:00Z");
    repo.checkout("main");
    let m14 = merge_at(
        &repo,
        "pr-14",
        "Merge pull request #14 from acme-corp/pr-14",
        "2026-11-09T10:00:00Z",
    );
    let tweak = commit_at(&repo, "tweak", "2026-11-10T10:00:00Z");
    let s21 = commit_at(
        &repo,
        "Revert \"Cache everything\" (#21)\n\nReverts acme-corp/web-app#14",
        "2026-11-10T13:00:00Z",
    );
    // The fix is ready: the revert is reverted, landing #14 again.
    let s22 = commit_at(
        &repo,
        "Revert \"Revert \"Cache everything\"\" (#22)\n\nReverts acme-corp/web-app#21",
        "2026-11-10T15:45:00Z",
    );
    let fake = FakeGitHub::start().await;
    fake.add_repo(REPO, &repo);
    let app = crate::ancestry::app_with_github(&fake).await;
    let ci = credential(&app, 1).await;

    let q0 = deploy(&app, &ci, "production", &base, "2026-11-09T08:00:00Z", "live").await;
    merged(
        &app,
        14,
        "Cache everything",
        &m14,
        "2026-11-09T09:00:00Z",
        "2026-11-09T10:00:00Z",
        1,
    )
    .await;
    let q1 = deploy(&app, &ci, "production", &m14, "2026-11-09T11:00:00Z", "live").await;
    let q2 = deploy(&app, &ci, "production", &base, "2026-11-09T11:30:00Z", "live").await;
    // 25 h after Q1, #14 reaches production again, and is reverted two hours later.
    let q3 = deploy(&app, &ci, "production", &tweak, "2026-11-10T12:00:00Z", "live").await;
    merged(
        &app,
        21,
        "Revert \"Cache everything\"",
        &s21,
        "2026-11-10T12:45:00Z",
        "2026-11-10T13:00:00Z",
        1,
    )
    .await;
    let q4 = deploy(&app, &ci, "production", &s21, "2026-11-10T14:00:00Z", "live").await;
    merged(
        &app,
        22,
        "Revert \"Revert \"Cache everything\"\"",
        &s22,
        "2026-11-10T15:30:00Z",
        "2026-11-10T15:45:00Z",
        1,
    )
    .await;
    let q5 = deploy(&app, &ci, "production", &s22, "2026-11-10T16:00:00Z", "live").await;

    let report = metrics(&app, &format!("repository={REPO}&from=2026-11-09&to=2026-11-11")).await;

    // Q1 rolled back by Q2 (11:30 − 11:00 = 1800 s). The revert is of the change Q3 shipped
    // again, 2 h before Q4 (14:00 − 12:00 = 7200 s): Q3 failed; Q1, 27 h before Q4, is not
    // blamed twice. Q5 re-lands #14 (a revert of the revert): planned, so Q4 did not fail and Q5
    // is not rework. 2 failed of 6 = 0.3333; unplanned Q2 and Q4: 0.3333. #14 counts once, from
    // Q1: 11:00 − 09:00 = 7200 s; #21: 14:00 − 12:45 = 4500 s; #22: 16:00 − 15:30 = 1800 s.
    // Sorted 1800 4500 7200: median rank 2 → 4500, p90 rank 3 → 7200. 6 deploys in 2 days.
    assert_eq!(
        numbers(&report["summary"]),
        json!({
            "deploys": 6,
            "backfilled_deploys": 0,
            "deploys_per_day": 3.0,
            "deploys_per_week": 21.0,
            "failed_attempts": 0,
            "lead_time": spread(3, Some(4500), Some(7200)),
            "failed_deploys": 2,
            "change_fail_rate": 0.3333,
            "recovery_time": spread(2, Some(1800), Some(7200)),
            "unrecovered": 0,
            "unplanned_deploys": 2,
            "rework_rate": 0.3333,
        }),
        "{report}"
    );
    assert_eq!(ids(&report["failures"]), vec![q3, q1]);
    let reverted = failure_of(&report, q3);
    assert_eq!(reasons(reverted), vec!["reverted"]);
    assert_eq!(
        (reverted["recovered_by"].as_i64(), reverted["recovery_seconds"].as_i64()),
        (Some(q4), Some(2 * HOUR))
    );
    assert_eq!(reasons(failure_of(&report, q1)), vec!["rolled_back"]);
    assert_eq!(lead_of(&report, 14)["deployment_id"], q1);
    assert_eq!(ids(&report["rework"]), vec![q4, q2]);
    let detail = items(&report["rework"])[0]["reasons"][0]["detail"].as_str().unwrap();
    assert!(detail.contains(&format!("shipped by deployment {q3}")), "{detail}");
    assert_eq!(ids(&report["unknown"]), vec![q0]);
    assert_eq!(lead_of(&report, 22)["deployment_id"], q5);
}

#[tokio::test]
async fn a_regression_heard_after_the_next_deploy_is_recovered_by_it_and_one_with_none_is_unrecovered() {
    let repo = GitRepo::new();
    let base = commit_at(&repo, "base", "2026-11-08T10:00:00Z");
    let s30 = commit_at(&repo, "Lazy images (#30)", "2026-11-09T08:00:00Z");
    let next = commit_at(&repo, "next", "2026-11-09T09:15:00Z");
    let fake = FakeGitHub::start().await;
    fake.add_repo(REPO, &repo);
    let agent = FakeAgent::start().await;
    let app = app_with_github_and_agent(&fake, &agent, &[600, 7200]).await;
    let ci = credential(&app, 1).await;
    deploy(&app, &ci, "production", &base, "2026-11-09T07:00:00Z", "live").await;
    merged(
        &app,
        30,
        "Lazy images",
        &s30,
        "2026-11-09T07:30:00Z",
        "2026-11-09T08:00:00Z",
        1,
    )
    .await;
    watch(&app, 30).await;
    let r1 = deploy(&app, &ci, "production", &s30, "2026-11-09T09:00:00Z", "live").await;
    app.clock.set(at("2026-11-09T09:11:00Z"));
    app.run_jobs().await;
    // R2 goes live before the agent answers R1's check; it also reschedules the plan's checks.
    let r2 = deploy(&app, &ci, "production", &next, "2026-11-09T09:30:00Z", "live").await;
    let first = agent.received()[0].body["check"]["id"].as_i64().unwrap();
    app.clock.set(at("2026-11-09T09:35:00Z"));
    verdict(&app, first, "regressed", "images missing").await;
    app.clock.set(at("2026-11-09T09:41:00Z"));
    app.run_jobs().await;
    let second = agent.received()[1].body["check"]["id"].as_i64().unwrap();
    verdict(&app, second, "regressed", "still missing").await;

    let report = metrics(&app, &format!("repository={REPO}&from=2026-11-09&to=2026-11-10")).await;

    // R1 regressed; R2 had gone live already at 09:30: recovered in 30 min. R2 regressed, and
    // no deploy came after it: unrecovered, not in the median. 2 failed of 3 deploys = 0.6667.
    assert_eq!(ids(&report["failures"]), vec![r2, r1], "{}", report["failures"]);
    assert_eq!(
        (
            failure_of(&report, r1)["recovered_by"].as_i64(),
            failure_of(&report, r1)["recovery_seconds"].as_i64()
        ),
        (Some(r2), Some(30 * MINUTE))
    );
    assert_eq!(failure_of(&report, r2)["recovered_by"], Value::Null);
    assert_eq!(
        (
            &report["summary"]["failed_deploys"],
            &report["summary"]["change_fail_rate"],
            &report["summary"]["recovery_time"],
            &report["summary"]["unrecovered"],
            &report["summary"]["unplanned_deploys"],
        ),
        (
            &json!(2),
            &json!(0.6667),
            &spread(1, Some(1800), Some(1800)),
            &json!(1),
            &json!(0)
        )
    );
    app.allow_jobs(&["monitoring.check", "monitoring.expire", "github.write"]);
}

#[tokio::test]
async fn deploying_again_what_a_rollback_took_out_rolls_forward_and_is_not_a_failure_of_the_rollback() {
    let repo = GitRepo::new();
    let a = commit_at(&repo, "base", "2026-11-08T10:00:00Z");
    let b = commit_at(&repo, "Cache pages (#40)", "2026-11-09T08:00:00Z");
    let fake = FakeGitHub::start().await;
    fake.add_repo(REPO, &repo);
    let app = crate::ancestry::app_with_github(&fake).await;
    let ci = credential(&app, 1).await;
    deploy(&app, &ci, "production", &a, "2026-11-09T07:00:00Z", "live").await;
    merged(
        &app,
        40,
        "Cache pages",
        &b,
        "2026-11-09T07:30:00Z",
        "2026-11-09T08:00:00Z",
        1,
    )
    .await;
    let broken = deploy(&app, &ci, "production", &b, "2026-11-09T09:00:00Z", "live").await;
    let rollback = deploy(&app, &ci, "production", &a, "2026-11-09T09:30:00Z", "live").await;
    // The fix was elsewhere (configuration): the same commit goes out again.
    let forward = deploy(&app, &ci, "production", &b, "2026-11-09T11:00:00Z", "live").await;

    let report = metrics(&app, &format!("repository={REPO}&from=2026-11-09&to=2026-11-10")).await;

    // One failure (the deploy rolled back, recovered in 30 min) and one unplanned deploy (the
    // rollback) of 4; the roll-forward neither fails the rollback nor is rework. #40 counts once.
    assert_eq!(ids(&report["failures"]), vec![broken], "{}", report["failures"]);
    assert_eq!(failure_of(&report, broken)["recovered_by"].as_i64(), Some(rollback));
    assert_eq!(ids(&report["rework"]), vec![rollback], "{}", report["rework"]);
    assert_eq!(
        (
            &report["summary"]["deploys"],
            &report["summary"]["failed_deploys"],
            &report["summary"]["unplanned_deploys"],
            &report["summary"]["lead_time"]["count"],
        ),
        (&json!(4), &json!(1), &json!(1), &json!(1))
    );
    assert!(!ids(&report["failures"]).contains(&forward));
}
