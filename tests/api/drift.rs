//! Drift between neighbouring environments: the `drift.recompute` job (queued when a deploy goes
//! live and when the environment order changes) and `GET /api/drift`. GitHub is the fake,
//! answering compare from a real git repository; jobs are run by hand.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use shiplog::clock::Clock;

use crate::explicit_api::create_credential;
use crate::fake_github::{FakeGitHub, Fault};
use crate::git::GitRepo;
use crate::helpers::{fixture, set, spawn_app, status_and_json, TestApp, ADMIN_TOKEN};

const REPO: &str = "acme-corp/web-app";

async fn app_with_github(fake: &FakeGitHub) -> TestApp {
    crate::ancestry::app_with_github(fake).await
}

/// Records pull request `number` as merged into `merge_commit_sha` at `merged_at`.
async fn merged_pull_request(app: &TestApp, number: i64, title: &str, merge_commit_sha: &str, merged_at: &str) {
    let mut pr = fixture("pull_request.closed");
    set(&mut pr, "/number", json!(number));
    set(&mut pr, "/pull_request/number", json!(number));
    set(&mut pr, "/pull_request/title", json!(title));
    set(&mut pr, "/pull_request/merge_commit_sha", json!(merge_commit_sha));
    set(&mut pr, "/pull_request/merged_at", json!(merged_at));
    let (status, body) = app.deliver("pull_request", &pr).await;
    assert_eq!(status, 200, "{body}");
}

async fn drift(app: &TestApp, query: &str) -> Value {
    let (status, body) = app.admin_get(&format!("/api/drift?repository={REPO}{query}")).await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn patch_connection(app: &TestApp, patch: Value) {
    let response = app
        .client
        .patch(app.url("/api/connections/1"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&patch)
        .send()
        .await
        .unwrap();
    let (status, body) = status_and_json(response).await;
    assert_eq!(status, 200, "{body}");
}

fn kinds(reports: &[shiplog::jobs::runner::RunReport], kind: &str) -> Vec<&'static str> {
    reports.iter().filter(|r| r.kind == kind).map(|r| r.outcome).collect()
}

fn pair_names(body: &Value) -> Vec<(String, String)> {
    body["pairs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["from"]["environment"].as_str().unwrap().to_owned(),
                p["to"]["environment"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// `base`, then PR #101 squash-merged, PR #102 merged with a merge commit (two branch commits),
/// and a loose commit on main.
struct History {
    repo: GitRepo,
    base: String,
    squash: String,
    branch: Vec<String>,
    merge: String,
    loose: String,
}

fn history() -> History {
    let repo = GitRepo::new();
    let base = repo.commit("base");
    let squash = repo.commit("Add search (#101)");
    repo.branch("feature");
    let branch = vec![repo.commit("feature: part one"), repo.commit("feature: part two")];
    repo.checkout("main");
    let merge = repo.merge("feature", "Merge pull request #102 from acme-corp/feature");
    let loose = repo.commit("Fix a typo straight on main");
    History {
        repo,
        base,
        squash,
        branch,
        merge,
        loose,
    }
}

#[tokio::test]
async fn staging_ahead_then_in_sync_then_diverged_by_a_hotfix() {
    let h = history();
    let fake = FakeGitHub::start().await;
    fake.add_repo(REPO, &h.repo);
    let app = app_with_github(&fake).await;
    merged_pull_request(&app, 101, "Add search", &h.squash, "2026-11-01T10:00:00Z").await;
    merged_pull_request(&app, 102, "Feature", &h.merge, "2026-11-02T10:00:00Z").await;

    // Staging runs everything, production only the base.
    let production = app.live_deploy(REPO, &h.base, "production").await;
    let staging = app.live_deploy(REPO, &h.loose, "staging").await;
    let reports = app.run_jobs().await;
    assert!(
        kinds(&reports, "drift.recompute").iter().all(|o| *o == "done"),
        "{reports:?}"
    );
    assert!(!kinds(&reports, "drift.recompute").is_empty(), "{reports:?}");

    let body = drift(&app, "").await;
    assert_eq!(body["environments"][0]["environment"], "staging", "{body}");
    assert_eq!(body["environments"][1]["environment"], "production", "{body}");
    let pair = &body["pairs"][0];
    assert_eq!(body["pairs"].as_array().unwrap().len(), 1, "{body}");
    assert_eq!(
        pair["from"],
        json!({"environment": "staging", "deployment_id": staging, "sha": h.loose})
    );
    assert_eq!(
        pair["to"],
        json!({"environment": "production", "deployment_id": production, "sha": h.base})
    );
    assert_eq!(pair["state"], "ahead", "{pair}");
    assert_eq!(pair["ahead_by"], 5, "{pair}");
    assert_eq!(pair["behind_by"], 0);
    assert_eq!(pair["current"], true);
    assert_eq!(pair["neighbours"], true);
    assert_eq!(pair["pull_request_count"], 2);
    let numbers: Vec<i64> = pair["pull_requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["number"].as_i64().unwrap())
        .collect();
    assert_eq!(numbers, [102, 101], "newest first: {pair}");
    assert_eq!(pair["pull_requests"][1]["url"], format!("{}/{REPO}/pull/101", fake.url));
    // The merge commit's branch belongs to #102: only the typo fix is loose.
    let loose: Vec<&str> = pair["commits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["sha"].as_str().unwrap())
        .collect();
    assert_eq!(loose, [h.loose.as_str()], "{pair}");
    assert!(!loose.iter().any(|s| h.branch.iter().any(|b| b == s)));
    assert_eq!(pair["commits"][0]["title"], "Fix a typo straight on main");
    assert_eq!(
        pair["commits"][0]["url"],
        format!("{}/{REPO}/commit/{}", fake.url, h.loose)
    );
    let oldest: DateTime<Utc> = "2026-11-01T10:00:00Z".parse().unwrap();
    assert_eq!(pair["oldest_merged_at"], "2026-11-01T10:00:00Z");
    assert_eq!(
        pair["oldest_merged_age_seconds"],
        (app.clock.now() - oldest).num_seconds(),
        "{pair}"
    );
    // The stored row is what the board reads.
    let row = app.first_row("SELECT state, ahead_by, pull_requests FROM drift").await;
    assert_eq!(row.try_get::<String>("", "state").unwrap(), "ahead");
    assert_eq!(row.try_get::<i64>("", "pull_requests").unwrap(), 2);

    // Production catches up: recomputed when it goes live.
    let caught_up = app.live_deploy(REPO, &h.loose, "production").await;
    let reports = app.run_jobs().await;
    assert_eq!(kinds(&reports, "drift.recompute"), ["done"], "{reports:?}");
    let pair = drift(&app, "").await["pairs"][0].clone();
    assert_eq!(pair["state"], "in_sync", "{pair}");
    assert_eq!(
        (pair["ahead_by"].as_i64(), pair["behind_by"].as_i64()),
        (Some(0), Some(0))
    );
    assert_eq!(pair["to"]["deployment_id"], caught_up);
    assert_eq!(pair["pull_requests"], json!([]));
    assert_eq!(pair["oldest_merged_at"], Value::Null);

    // A hotfix goes to production only: production has a commit staging lacks.
    let hotfix = h.repo.commit("Hotfix: stop the bleeding");
    app.live_deploy(REPO, &hotfix, "production").await;
    app.run_jobs().await;
    let pair = drift(&app, "&from=staging&to=production").await["pairs"][0].clone();
    assert_eq!(pair["state"], "diverged", "{pair}");
    assert_eq!(pair["behind_by"], 1, "{pair}");
    assert_eq!(pair["ahead_by"], 0, "{pair}");
    assert_eq!(pair["current"], true);
}

#[tokio::test]
async fn a_pair_is_asked_of_github_once_however_often_it_is_recomputed() {
    let h = history();
    let fake = FakeGitHub::start().await;
    fake.add_repo(REPO, &h.repo);
    let app = app_with_github(&fake).await;
    app.live_deploy(REPO, &h.base, "production").await;
    app.live_deploy(REPO, &h.loose, "staging").await;
    app.run_jobs().await;
    let after_first = fake.compare_calls();
    let computed = drift(&app, "").await["pairs"][0]["computed_at"].clone();
    assert_eq!(
        after_first,
        1,
        "the went-live batch read base...staging, the drift pair is the same range: {:?}",
        fake.calls()
    );

    // Two recomputes of the same SHAs (a settings change that moves nothing, twice).
    app.clock.advance(chrono::Duration::minutes(5));
    patch_connection(&app, json!({"production_environments": ["production", "prod"]})).await;
    let first = app.run_jobs().await;
    patch_connection(&app, json!({"production_environments": ["production"]})).await;
    let second = app.run_jobs().await;

    assert_eq!(kinds(&first, "drift.recompute"), ["done"], "{first:?}");
    assert_eq!(kinds(&second, "drift.recompute"), ["done"], "{second:?}");
    assert_eq!(fake.compare_calls(), after_first, "{:?}", fake.calls());
    let pair = drift(&app, "").await["pairs"][0].clone();
    assert_ne!(pair["computed_at"], computed, "recomputed: {pair}");
    assert_eq!(pair["state"], "ahead");
    assert_eq!(pair["ahead_by"], 5);
}

#[tokio::test]
async fn three_environments_give_two_pairs_and_the_order_setting_moves_them() {
    let repo = GitRepo::new();
    let one = repo.commit("one");
    let two = repo.commit("two");
    let three = repo.commit("three");
    let fake = FakeGitHub::start().await;
    fake.add_repo(REPO, &repo);
    let app = app_with_github(&fake).await;
    app.live_deploy(REPO, &one, "production").await;
    app.live_deploy(REPO, &two, "staging").await;
    app.live_deploy(REPO, &three, "dev").await;
    app.run_jobs().await;

    let body = drift(&app, "").await;
    assert_eq!(
        pair_names(&body),
        [
            ("dev".to_owned(), "staging".to_owned()),
            ("staging".to_owned(), "production".to_owned())
        ]
    );
    assert!(body["pairs"]
        .as_array()
        .unwrap()
        .iter()
        .all(|p| p["state"] == "ahead" && p["ahead_by"] == 1));
    // dev → production is no pair and its range was never read: 409, no GitHub call.
    let calls = fake.compare_calls();
    let (status, problem) = app
        .admin_get(&format!("/api/drift?repository={REPO}&from=dev&to=production"))
        .await;
    assert_eq!(status, 409, "{problem}");
    assert!(
        problem["detail"].as_str().unwrap().contains("not neighbouring"),
        "{problem}"
    );
    assert_eq!(fake.compare_calls(), calls);

    // Staging is named before dev: the pairs move, and are recomputed at once.
    patch_connection(&app, json!({"environment_order": ["staging", "dev"]})).await;
    let reports = app.run_jobs().await;
    assert_eq!(kinds(&reports, "drift.recompute"), ["done"], "{reports:?}");

    let body = drift(&app, "").await;
    assert_eq!(
        pair_names(&body),
        [
            ("staging".to_owned(), "dev".to_owned()),
            ("dev".to_owned(), "production".to_owned())
        ]
    );
    assert_eq!(body["pairs"][0]["state"], "diverged", "dev has a commit staging lacks");
    assert_eq!(body["pairs"][0]["behind_by"], 1);
    assert_eq!(body["pairs"][1]["state"], "ahead");
    assert_eq!(body["pairs"][1]["ahead_by"], 2);
    assert_eq!(app.count_rows("drift").await, 2, "the old pairs are gone");
    // A pair that is no longer neighbouring is answered from its stored range.
    let pair = drift(&app, "&from=staging&to=production").await["pairs"][0].clone();
    assert_eq!(
        (pair["neighbours"].as_bool(), pair["state"].as_str()),
        (Some(false), Some("ahead"))
    );
    assert_eq!(pair["computed_at"], Value::Null);
}

#[tokio::test]
async fn drift_is_read_only_for_the_repository_s_own_connection_and_bad_queries_name_the_field() {
    let app = spawn_app().await;
    app.deliver("installation", &fixture("installation.created")).await;
    let mut other_org = fixture("installation.created");
    set(&mut other_org, "/installation/id", json!(42_000_002));
    set(&mut other_org, "/installation/account/login", json!("other-org"));
    set(&mut other_org, "/installation/account/id", json!(9_000_002));
    set(&mut other_org, "/repositories", json!([]));
    assert_eq!(app.deliver("installation", &other_org).await.0, 200);
    let own = create_credential(&app, 1).await;
    let other = create_credential(&app, 2).await;
    let url = app.url(&format!("/api/drift?repository={REPO}"));

    let as_own = app
        .client
        .get(&url)
        .basic_auth(&own.username, Some(&own.password))
        .send()
        .await
        .unwrap();
    let as_other = app
        .client
        .get(&url)
        .basic_auth(&other.username, Some(&other.password))
        .send()
        .await
        .unwrap();

    let (status, body) = status_and_json(as_own).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["pairs"], json!([]), "no live deploys, no pairs");
    let (status, problem) = status_and_json(as_other).await;
    assert_eq!(status, 403, "{problem}");
    assert_eq!(
        problem["type"].as_str().map(|t| t.ends_with("wrong-connection")),
        Some(true),
        "{problem}"
    );

    for (query, status, field) in [
        ("repository=nobody-org/unknown-repo", 404, None),
        ("repository=not a repo", 400, Some("repository")),
        (&format!("repository={REPO}&from=staging") as &str, 400, Some("to")),
        (&format!("repository={REPO}&to=production"), 400, Some("from")),
        (
            &format!("repository={REPO}&from=production&to=production"),
            400,
            Some("to"),
        ),
        (&format!("repository={REPO}&from=staging&to=production"), 404, None),
    ] {
        let (got, problem) = app.admin_get(&format!("/api/drift?{query}")).await;
        assert_eq!(got, status, "{query}: {problem}");
        if let Some(field) = field {
            assert_eq!(problem["errors"][0]["field"], field, "{query}: {problem}");
        }
    }
}

#[tokio::test]
async fn without_a_github_app_an_unread_pair_is_recorded_and_its_job_skipped_once() {
    let app = spawn_app().await;
    app.deliver("installation", &fixture("installation.created")).await;
    let (a, b) = ("a".repeat(40), "b".repeat(40));
    app.live_deploy(REPO, &a, "production").await;
    app.live_deploy(REPO, &b, "staging").await;

    let reports = app.run_jobs().await;
    app.clock.advance(chrono::Duration::hours(2));
    let later = app.run_jobs().await;

    assert!(kinds(&reports, "drift.recompute").contains(&"skipped"), "{reports:?}");
    assert!(later.is_empty(), "not retried: {later:?}");
    let pair = drift(&app, "").await["pairs"][0].clone();
    assert_eq!(pair["state"], "unread", "{pair}");
    assert!(
        pair["note"].as_str().unwrap().contains("GitHub App is not configured"),
        "{pair}"
    );
}

#[tokio::test]
async fn a_burst_of_deploys_to_one_environment_recomputes_once_for_the_one_left_live() {
    let repo = GitRepo::new();
    let base = repo.commit("base");
    let shas: Vec<String> = (1..=4).map(|i| repo.commit(&format!("change {i}"))).collect();
    let fake = FakeGitHub::start().await;
    fake.add_repo(REPO, &repo);
    let app = app_with_github(&fake).await;
    app.live_deploy(REPO, &base, "production").await;
    for sha in &shas {
        app.live_deploy(REPO, sha, "staging").await;
    }

    let reports = app.run_jobs().await;

    assert_eq!(kinds(&reports, "deploy.went_live").len(), 5, "{reports:?}");
    assert_eq!(
        kinds(&reports, "drift.recompute"),
        ["done", "done"],
        "production's and the last staging deploy's: {reports:?}"
    );
    let pair = drift(&app, "").await["pairs"][0].clone();
    assert_eq!(
        (pair["state"].as_str(), pair["ahead_by"].as_i64()),
        (Some("ahead"), Some(4))
    );
    assert_eq!(pair["from"]["sha"], shas[3]);
}

#[tokio::test]
async fn a_rate_limited_recompute_waits_for_the_reset_and_keeps_what_it_stored() {
    let h = history();
    let fake = FakeGitHub::start().await;
    fake.add_repo(REPO, &h.repo);
    let app = app_with_github(&fake).await;
    // Staging first: the went-live batches read staging...production, not the drift's
    // production...staging, so the recompute has to ask GitHub.
    app.live_deploy(REPO, &h.loose, "staging").await;
    app.live_deploy(REPO, &h.base, "production").await;
    for _ in 0..2 {
        let report = shiplog::jobs::runner::run_once(&app.runner, "test-worker")
            .await
            .unwrap()
            .unwrap();
        assert_eq!((report.kind.as_str(), report.outcome), ("deploy.went_live", "done"));
    }
    let before = fake.compare_calls();

    fake.fail_next(Fault::PrimaryRateLimit { reset_in: 600 });
    let limited = app.run_jobs().await;
    let read = fake.compare_calls();
    app.clock.advance(chrono::Duration::minutes(11));
    let after_reset = app.run_jobs().await;

    assert_eq!(kinds(&limited, "drift.recompute"), ["retry", "done"], "{limited:?}");
    assert!(
        limited[0].error.as_deref().unwrap().contains("rate limit"),
        "{limited:?}"
    );
    assert_eq!(read - before, 2, "the limited call and the one that read the range");
    assert_eq!(kinds(&after_reset, "drift.recompute"), ["done"], "{after_reset:?}");
    assert_eq!(fake.compare_calls(), read, "the retry reads rows: {:?}", fake.calls());
    let pair = drift(&app, "").await["pairs"][0].clone();
    assert_eq!(
        (pair["state"].as_str(), pair["ahead_by"].as_i64()),
        (Some("ahead"), Some(5))
    );
}

#[tokio::test]
async fn environments_without_common_history_are_unrelated() {
    let repo = GitRepo::new();
    let main = repo.commit("main");
    repo.orphan("elsewhere");
    let elsewhere = repo.commit("a history of its own");
    let fake = FakeGitHub::start().await;
    fake.add_repo(REPO, &repo);
    let app = app_with_github(&fake).await;
    app.live_deploy(REPO, &main, "production").await;
    app.live_deploy(REPO, &elsewhere, "staging").await;

    app.run_jobs().await;

    let pair = drift(&app, "").await["pairs"][0].clone();
    assert_eq!(pair["state"], "unrelated", "{pair}");
    assert_eq!(pair["pull_requests"], json!([]));
}
