//! What each deploy shipped: the went-live job keeps the range from the deploy it replaced in its
//! environment as the deploy's commits and merged pull requests, and `GET /deployments/{id}` and
//! its page show them ("Shipped", "Taken out", "First deploy seen here"). Histories are real git
//! repositories behind the fake GitHub; pull requests arrive as `pull_request` events.

use serde_json::{json, Value};
use shiplog::clock::Clock;

use crate::fake_github::FakeGitHub;
use crate::git::GitRepo;
use crate::helpers::{fixture, set, spawn_app, TestApp, ADMIN_TOKEN};

const REPO: &str = "acme-corp/web-app";

pub async fn app_on(fake: &FakeGitHub) -> TestApp {
    crate::ancestry::app_with_github(fake).await
}

/// GitHub tells shiplog that pull request `number` was merged as `merge_sha`.
pub async fn merged_pr(app: &TestApp, number: i64, title: &str, author: &str, merge_sha: &str) {
    let mut event = fixture("pull_request.closed");
    set(&mut event, "/number", json!(number));
    set(&mut event, "/pull_request/number", json!(number));
    set(&mut event, "/pull_request/title", json!(title));
    set(&mut event, "/pull_request/user/login", json!(author));
    set(&mut event, "/pull_request/merge_commit_sha", json!(merge_sha));
    let (status, body) = app.deliver("pull_request", &event).await;
    assert_eq!((status, body["outcome"].as_str()), (200, Some("processed")), "{body}");
}

async fn shipped(app: &TestApp, id: i64) -> Value {
    let (status, body) = app.admin_get(&format!("/deployments/{id}")).await;
    assert_eq!(status, 200, "{body}");
    body["shipped"].clone()
}

fn numbers(list: &Value) -> Vec<i64> {
    list["pull_requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["number"].as_i64().unwrap())
        .collect()
}

fn loose(list: &Value) -> Vec<String> {
    list["commits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["sha"].as_str().unwrap().to_owned())
        .collect()
}

fn pr(list: &Value, number: i64) -> &Value {
    list["pull_requests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["number"] == number)
        .unwrap_or_else(|| panic!("no #{number} in {list}"))
}

async fn page(app: &TestApp, id: i64) -> String {
    let response = app
        .client
        .get(app.url(&format!("/deployments/{id}")))
        .bearer_auth(ADMIN_TOKEN)
        .header("Accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.text().await.unwrap()
}

fn rev(shas: &[String]) -> Vec<String> {
    shas.iter().rev().cloned().collect()
}

#[tokio::test]
async fn a_pull_request_merged_long_before_is_shipped_by_the_deploy_that_first_contains_it() {
    let repo = GitRepo::new();
    let base = repo.commit("base");
    // #11 merged with a merge commit: it owns its branch's commits.
    repo.branch("feature");
    let f1 = repo.commit("feature: part one");
    let f2 = repo.commit("feature: part two");
    repo.checkout("main");
    let m = repo.merge("feature", "Merge pull request #11 from acme-corp/feature");
    // #12 squash-merged: one commit with one parent.
    let squash = repo.commit("Cache compare answers forever (#12)");
    // A PR shiplog never heard about: its merge commit and branch stay plain commits.
    repo.branch("unknown");
    let u1 = repo.commit("unknown branch work");
    repo.checkout("main");
    let um = repo.merge("unknown", "Merge pull request #99 from acme-corp/unknown");
    let later = repo.append_commits(5, "later work");
    let fake = FakeGitHub::start().await;
    fake.add_repo(REPO, &repo);
    let app = app_on(&fake).await;
    merged_pr(&app, 11, "Feature in two parts", "alice", &m).await;
    merged_pr(&app, 12, "Cache compare answers forever", "bob", &squash).await;
    app.live_deploy(REPO, &base, "production").await;
    app.run_jobs().await;

    let second = app.live_deploy(REPO, later.last().unwrap(), "production").await;
    app.run_jobs().await;
    let next = repo.commit("after");
    let third = app.live_deploy(REPO, &next, "production").await;
    app.run_jobs().await;

    let s = shipped(&app, second).await;
    assert_eq!(
        (s["kind"].as_str(), s["status"].as_str()),
        (Some("listed"), Some("ahead")),
        "{s}"
    );
    assert_eq!(s["ahead_by"], 11);
    assert_eq!(s["total_commits"], 11);
    assert_eq!(numbers(&s), vec![12, 11], "newest first: {s}");
    let feature = pr(&s, 11);
    assert_eq!(feature["commits"], json!([m, f2, f1]));
    assert_eq!(feature["title"], "Feature in two parts");
    assert_eq!(feature["author"], "alice");
    assert_eq!(feature["url"], format!("{}/{REPO}/pull/11", fake.url));
    assert_eq!(pr(&s, 12)["commits"], json!([squash]));
    let mut expected = rev(&later);
    expected.extend([um.clone(), u1.clone()]);
    assert_eq!(loose(&s), expected, "commits of no known PR, newest first");
    assert_eq!(s["commits"][0]["title"], "later work 4");
    assert_eq!(
        s["commits"][0]["url"],
        format!("{}/{REPO}/commit/{}", fake.url, later[4])
    );
    assert_eq!(s["taken_out"], Value::Null);
    assert_eq!(s["base"]["sha"], base);

    let t = shipped(&app, third).await;
    assert!(numbers(&t).is_empty(), "shipped once, not again: {t}");
    assert_eq!(loose(&t), vec![next]);

    let html = page(&app, second).await;
    assert!(html.contains("Feature in two parts") && html.contains("#11"), "{html}");
    assert!(html.contains("Commits not in a known pull request"));
    let pulls_at = html.find("Feature in two parts").unwrap();
    let commits_at = html.find("Commits not in a known pull request").unwrap();
    assert!(pulls_at < commits_at, "pull requests first");
}

#[tokio::test]
async fn a_revert_is_shipped_like_any_commit() {
    let repo = GitRepo::new();
    let base = repo.commit("base");
    std::fs::write(repo.path().join("cache.txt"), "on\n").unwrap();
    repo.git(&["add", "cache.txt"]);
    repo.git(&["commit", "-q", "-m", "Turn the cache on"]);
    let on = repo.head();
    repo.git(&["revert", "--no-edit", "HEAD"]);
    let revert = repo.head();
    let fake = FakeGitHub::start().await;
    fake.add_repo(REPO, &repo);
    let app = app_on(&fake).await;
    merged_pr(&app, 31, "Turn the cache on", "carol", &on).await;
    app.live_deploy(REPO, &base, "production").await;
    app.run_jobs().await;

    let id = app.live_deploy(REPO, &revert, "production").await;
    app.run_jobs().await;

    let s = shipped(&app, id).await;
    assert_eq!(numbers(&s), vec![31]);
    assert_eq!(loose(&s), vec![revert]);
    assert_eq!(s["commits"][0]["title"], "Revert \"Turn the cache on\"");
}

#[tokio::test]
async fn a_rollback_lists_what_it_took_out_from_the_range_already_read() {
    let repo = GitRepo::new();
    let good = repo.commit("good");
    let bad_pr = repo.commit("Risky change (#21)");
    let bad = repo.commit("direct push to main");
    let fake = FakeGitHub::start().await;
    fake.add_repo(REPO, &repo);
    let app = app_on(&fake).await;
    merged_pr(&app, 21, "Risky change", "dave", &bad_pr).await;
    app.live_deploy(REPO, &good, "production").await;
    app.run_jobs().await;
    let broken = app.live_deploy(REPO, &bad, "production").await;
    app.run_jobs().await;
    let before = fake.compare_calls();

    let rollback = app.live_deploy(REPO, &good, "production").await;
    app.run_jobs().await;

    assert_eq!(
        fake.compare_calls() - before,
        1,
        "only the forward compare; what was taken out was read when the broken deploy went live: {:?}",
        fake.calls()
    );
    let (_, replaced) = app.admin_get(&format!("/deployments/{broken}")).await;
    assert_eq!(replaced["status"], "rolled_back");
    let s = shipped(&app, rollback).await;
    assert_eq!(
        (s["kind"].as_str(), s["status"].as_str()),
        (Some("listed"), Some("behind")),
        "{s}"
    );
    assert_eq!((s["ahead_by"].as_i64(), s["behind_by"].as_i64()), (Some(0), Some(2)));
    assert_eq!(s["total_commits"], 0);
    assert_eq!(s["base"], json!({"deployment_id": broken, "sha": bad}));
    let taken = &s["taken_out"];
    assert_eq!(numbers(taken), vec![21]);
    assert_eq!(loose(taken), vec![bad.clone()]);
    assert_eq!(taken["total_commits"], 2);

    let html = page(&app, rollback).await;
    assert!(html.contains("Taken out") && html.contains("Risky change"), "{html}");
    assert!(
        html.contains("a rollback") && !html.contains("id=\"shipped-list\""),
        "a rollback ships nothing"
    );

    // One row per deploy that went live; recording again (a retried or repeated job, here
    // without GitHub) writes the same answer from the stored rows, without a call.
    assert_eq!(app.count_rows("deploy_shipment").await, 3);
    let calls = fake.compare_calls();
    let new = shiplog::store::deployments::find(app.store.conn(), rollback)
        .await
        .unwrap()
        .unwrap();
    let old = shiplog::store::deployments::find(app.store.conn(), broken)
        .await
        .unwrap()
        .unwrap();
    let mut made = 0;
    let recorded = shiplog::shipped::record(&app.store, None, &new, Some(&old), app.clock.now(), &mut made)
        .await
        .unwrap();
    assert_eq!((recorded.kind, made), (shiplog::shipped::Kind::Listed, 0));
    assert_eq!(app.count_rows("deploy_shipment").await, 3);
    let again = shipped(&app, rollback).await;
    assert_eq!(
        (&again["status"], &again["taken_out"], &again["pull_requests"]),
        (&s["status"], &s["taken_out"], &s["pull_requests"])
    );
    assert_eq!(fake.compare_calls(), calls);
}

#[tokio::test]
async fn a_force_push_lists_what_it_shipped_and_what_it_took_out() {
    let repo = GitRepo::new();
    let base = repo.commit("base");
    repo.branch("before");
    let lost = repo.commit("work that the force-push dropped");
    repo.checkout("main");
    let kept = repo.commit("work pushed in its place");
    let fake = FakeGitHub::start().await;
    fake.add_repo(REPO, &repo);
    let app = app_on(&fake).await;
    app.live_deploy(REPO, &base, "production").await;
    app.run_jobs().await;
    app.live_deploy(REPO, &lost, "production").await;
    app.run_jobs().await;

    let id = app.live_deploy(REPO, &kept, "production").await;
    app.run_jobs().await;

    let s = shipped(&app, id).await;
    assert_eq!(
        (s["kind"].as_str(), s["status"].as_str()),
        (Some("listed"), Some("diverged")),
        "{s}"
    );
    assert_eq!((s["ahead_by"].as_i64(), s["behind_by"].as_i64()), (Some(1), Some(1)));
    assert_eq!(loose(&s), vec![kept]);
    assert_eq!(loose(&s["taken_out"]), vec![lost]);
    let html = page(&app, id).await;
    assert!(html.contains("diverged") && html.contains("Taken out") && html.contains("id=\"shipped-list\""));
}

#[tokio::test]
async fn a_rollback_without_the_app_still_lists_what_was_taken_out_from_stored_rows() {
    let repo = GitRepo::new();
    let good = repo.commit("good");
    let bad = repo.commit("bad");
    let fake = FakeGitHub::start().await;
    fake.add_repo(REPO, &repo);
    let database = {
        let app = app_on(&fake).await;
        app.live_deploy(REPO, &good, "production").await;
        app.live_deploy(REPO, &bad, "production").await;
        app.run_jobs().await;
        app.database.clone()
    };
    // The same database, now without a GitHub App: the SHA was live before, so it is a rollback.
    let app = crate::helpers::spawn_app_on(database, |_| {}, Vec::new()).await;
    app.clock.advance(chrono::Duration::hours(1));
    let rollback = app.live_deploy(REPO, &good, "production").await;
    let reports = app.run_jobs().await;

    let s = shipped(&app, rollback).await;
    assert_eq!(
        (s["kind"].as_str(), s["status"].as_str()),
        (Some("listed"), Some("behind")),
        "{s} {reports:?}"
    );
    assert_eq!(loose(&s["taken_out"]), vec![bad]);
}

#[tokio::test]
async fn the_first_deploy_in_an_environment_lists_no_history() {
    let repo = GitRepo::new();
    repo.commit("root");
    repo.append_commits(40, "history");
    let head = repo.head();
    let fake = FakeGitHub::start().await;
    fake.add_repo(REPO, &repo);
    let app = app_on(&fake).await;

    let first = app.live_deploy(REPO, &head, "production").await;
    app.run_jobs().await;
    let newer = repo.commit("newer");
    app.live_deploy(REPO, &newer, "production").await;
    app.run_jobs().await;
    // Staging's first deploy: production's does not count as its base.
    let staging = app.live_deploy(REPO, &newer, "staging").await;
    app.run_jobs().await;

    for id in [first, staging] {
        let s = shipped(&app, id).await;
        assert_eq!(s["kind"], "first", "{s}");
        assert_eq!(s["base"], Value::Null);
        assert_eq!(s["total_commits"], 0);
        assert!(page(&app, id).await.contains("First deploy seen here"));
    }
}

#[tokio::test]
async fn a_300_commit_range_is_read_in_pages_and_the_page_shows_250() {
    let repo = GitRepo::new();
    let base = repo.commit("base");
    let commits = repo.append_commits(300, "change");
    let fake = FakeGitHub::start().await;
    fake.add_repo(REPO, &repo);
    let app = app_on(&fake).await;
    app.live_deploy(REPO, &base, "production").await;
    app.run_jobs().await;
    let before = fake.compare_calls();

    let id = app.live_deploy(REPO, commits.last().unwrap(), "production").await;
    app.run_jobs().await;

    let s = shipped(&app, id).await;
    let (_, d) = app.admin_get(&format!("/deployments/{id}")).await;
    assert_eq!(
        fake.compare_calls() - before,
        3,
        "pages of 100: {:?} {s} {d}",
        fake.calls()
    );
    assert_eq!(
        (s["ahead_by"].as_i64(), s["total_commits"].as_i64()),
        (Some(300), Some(300))
    );
    assert_eq!(loose(&s), rev(&commits));
    assert_eq!(s["omitted_commits"], 0);
    assert_eq!(s["complete"], true);
    let html = page(&app, id).await;
    assert_eq!(html.matches("class=\"shipped-commit\"").count(), 250);
    assert!(html.contains("and 50 more commits"), "the page says what it left out");
}

#[tokio::test]
async fn unrelated_histories_say_why_nothing_is_listed() {
    let repo = GitRepo::new();
    let main = repo.commit("main root");
    repo.orphan("rewritten");
    let other = repo.commit("another root");
    let fake = FakeGitHub::start().await;
    fake.add_repo(REPO, &repo);
    let app = app_on(&fake).await;
    app.live_deploy(REPO, &main, "production").await;
    app.run_jobs().await;

    let id = app.live_deploy(REPO, &other, "production").await;
    app.run_jobs().await;

    let s = shipped(&app, id).await;
    assert_eq!(s["kind"], "unrelated", "{s}");
    assert!(s["note"].as_str().unwrap().contains("no common ancestor"), "{s}");
    assert!(page(&app, id).await.contains("no common ancestor"));
}

#[tokio::test]
async fn without_the_app_an_unread_range_says_so_and_before_going_live_there_is_nothing() {
    let app = spawn_app().await;
    app.deliver("installation", &fixture("installation.created")).await;
    app.live_deploy(REPO, &"a".repeat(40), "production").await;
    app.run_jobs().await;

    let id = app.live_deploy(REPO, &"b".repeat(40), "production").await;
    assert_eq!(shipped(&app, id).await, Value::Null, "its went-live job has not run");
    app.run_jobs().await;

    let s = shipped(&app, id).await;
    assert_eq!(s["kind"], "unread", "{s}");
    assert!(s["note"].as_str().unwrap().contains("GitHub App is not configured"));
}
