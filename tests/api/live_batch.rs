//! The `deploy.went_live` job: batch resolution of watched commits, rollback detection, and
//! retries that honour GitHub's rate limits. Jobs are run by hand; GitHub is the fake.

use std::sync::{Arc, Mutex};

use futures_util::future::BoxFuture;
use serde_json::Value;
use shiplog::clock::Clock;
use shiplog::config::{GitHubAppCredentials, Secret};
use shiplog::deploys::watch::{LiveDeploy, WatchSource};
use shiplog::store::{Store, StoreResult};

use crate::fake_github::{private_key_pem, FakeGitHub, Fault, APP_ID};
use crate::git::GitRepo;
use crate::helpers::{fixture, spawn_app_watching, TestApp};

const REPO: &str = "acme-corp/web-app";

/// A watch source that waits for fixed commits and records what it is told.
#[derive(Default)]
struct Watching {
    shas: Mutex<Vec<String>>,
    told: Mutex<Vec<(i64, String, bool)>>,
}

impl Watching {
    fn watch(&self, shas: &[String]) {
        self.shas.lock().unwrap().extend_from_slice(shas);
    }

    fn told(&self) -> Vec<(i64, String, bool)> {
        self.told.lock().unwrap().clone()
    }
}

impl WatchSource for Watching {
    fn watched<'a>(&'a self, _: &'a Store, _: i64, _: &'a str) -> BoxFuture<'a, StoreResult<Vec<String>>> {
        Box::pin(async move { Ok(self.shas.lock().unwrap().clone()) })
    }

    fn resolved<'a>(
        &'a self,
        _: &'a Store,
        deploy: &'a LiveDeploy<'a>,
        sha: &'a str,
        contained: bool,
    ) -> BoxFuture<'a, StoreResult<()>> {
        Box::pin(async move {
            self.told.lock().unwrap().push((deploy.id, sha.to_owned(), contained));
            Ok(())
        })
    }
}

async fn app_watching(fake: &FakeGitHub, watching: Arc<Watching>) -> TestApp {
    let url = fake.url.clone();
    let app = spawn_app_watching(
        move |config| {
            config.github_api_url = url;
            config.github_app = Some(GitHubAppCredentials {
                app_id: APP_ID,
                private_key_pem: Secret::new(private_key_pem()),
            });
        },
        vec![watching as Arc<dyn WatchSource>],
    )
    .await;
    assert_eq!(
        app.deliver("installation", &fixture("installation.created")).await.0,
        200
    );
    app
}

async fn deployment(app: &TestApp, id: i64) -> Value {
    app.admin_get(&format!("/deployments/{id}")).await.1
}

#[tokio::test]
async fn one_comparison_settles_every_watched_commit_in_the_range() {
    let repo = GitRepo::new();
    let base = repo.commit("base");
    let merged: Vec<String> = (1..=5).map(|i| repo.commit(&format!("PR #{i}"))).collect();
    repo.branch("unmerged");
    let unmerged = repo.commit("never merged");
    repo.checkout("main");
    let fake = FakeGitHub::start().await;
    fake.add_repo(REPO, &repo);
    let watching = Arc::new(Watching::default());
    let app = app_watching(&fake, watching.clone()).await;
    app.live_deploy(REPO, &base, "production").await;
    app.run_jobs().await;
    watching.watch(&merged);
    watching.watch(std::slice::from_ref(&unmerged));
    let before = fake.compare_calls();

    let second = app.live_deploy(REPO, &merged[4], "production").await;
    let reports = app.run_jobs().await;

    assert_eq!(reports.iter().map(|r| r.outcome).collect::<Vec<_>>(), vec!["done"]);
    assert_eq!(
        fake.compare_calls() - before,
        2,
        "one range compare and one for the commit outside it: {:?}",
        fake.calls()
    );
    let told = watching.told();
    for sha in &merged {
        assert!(
            told.contains(&(second, sha.clone(), true)),
            "{sha} not reported contained: {told:?}"
        );
    }
    assert!(told.contains(&(second, unmerged, false)));
}

#[tokio::test]
async fn what_the_previous_deploy_contained_carries_over_without_calls() {
    let repo = GitRepo::new();
    let base = repo.commit("base");
    let merged: Vec<String> = (1..=3).map(|i| repo.commit(&format!("PR #{i}"))).collect();
    let fake = FakeGitHub::start().await;
    fake.add_repo(REPO, &repo);
    let watching = Arc::new(Watching::default());
    let app = app_watching(&fake, watching.clone()).await;
    app.live_deploy(REPO, &base, "production").await;
    app.run_jobs().await;
    watching.watch(&merged);
    app.live_deploy(REPO, &merged[2], "production").await;
    app.run_jobs().await;
    let later = repo.commit("hotfix");
    let before = fake.compare_calls();

    let third = app.live_deploy(REPO, &later, "production").await;
    app.run_jobs().await;

    assert_eq!(
        fake.compare_calls() - before,
        1,
        "only the range compare: {:?}",
        fake.calls()
    );
    let told = watching.told();
    for sha in &merged {
        assert!(told.contains(&(third, sha.clone(), true)), "{told:?}");
    }
}

#[tokio::test]
async fn a_long_range_is_read_100_commits_a_page() {
    let repo = GitRepo::new();
    let base = repo.commit("base");
    let merged = repo.append_commits(250, "PR");
    let fake = FakeGitHub::start().await;
    fake.add_repo(REPO, &repo);
    let watching = Arc::new(Watching::default());
    let app = app_watching(&fake, watching.clone()).await;
    app.live_deploy(REPO, &base, "production").await;
    app.run_jobs().await;
    watching.watch(&merged);
    let before = fake.compare_calls();

    let second = app.live_deploy(REPO, merged.last().unwrap(), "production").await;
    app.run_jobs().await;

    assert_eq!(
        fake.compare_calls() - before,
        3,
        "pages of 100: {:?}",
        &fake.calls()[fake.calls().len() - 3..]
    );
    assert_eq!(fake.count("per_page=100&page=3"), 1);
    let contained = watching
        .told()
        .iter()
        .filter(|(id, _, yes)| *id == second && *yes)
        .count();
    assert_eq!(contained, 250);
}

#[tokio::test]
async fn going_back_to_an_older_commit_marks_the_replaced_deploy_rolled_back() {
    let repo = GitRepo::new();
    let good = repo.commit("good");
    let bad = repo.commit("bad");
    let fake = FakeGitHub::start().await;
    fake.add_repo(REPO, &repo);
    let app = app_watching(&fake, Arc::new(Watching::default())).await;
    app.live_deploy(REPO, &good, "production").await;
    let broken = app.live_deploy(REPO, &bad, "production").await;
    app.live_deploy(REPO, &bad, "staging").await;
    app.run_jobs().await;

    let rollback = app.live_deploy(REPO, &good, "production").await;
    app.run_jobs().await;

    let replaced = deployment(&app, broken).await;
    assert_eq!(replaced["status"], "rolled_back");
    assert_eq!(replaced["rollback_target_id"], rollback);
    let last = replaced["statuses"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["state"], "rolled_back");
    assert!(
        last["description"]
            .as_str()
            .unwrap()
            .contains(&format!("deployment {rollback}")),
        "{last}"
    );
    assert_eq!(deployment(&app, rollback).await["status"], "live");
}

#[tokio::test]
async fn a_rate_limited_job_waits_for_the_reset_and_counts_nothing_twice() {
    let repo = GitRepo::new();
    let base = repo.commit("base");
    let merged = repo.commit("PR #1");
    let fake = FakeGitHub::start().await;
    fake.add_repo(REPO, &repo);
    let watching = Arc::new(Watching::default());
    let app = app_watching(&fake, watching.clone()).await;
    app.live_deploy(REPO, &base, "production").await;
    app.run_jobs().await;
    watching.watch(std::slice::from_ref(&merged));
    app.live_deploy(REPO, &merged, "production").await;

    let started = shiplog::clock::Clock::now(app.clock.as_ref());
    fake.fail_next(Fault::PrimaryRateLimit { reset_in: 600 });
    let first = app.run_jobs().await;
    let (_, queued) = app.admin_get("/api/jobs?state=queued").await;
    let job = queued["jobs"][0].clone();
    let run_at = chrono::DateTime::parse_from_rfc3339(job["run_at"].as_str().unwrap())
        .unwrap()
        .with_timezone(&chrono::Utc);
    app.clock.set(run_at - chrono::Duration::seconds(1));
    let too_early = app.run_jobs().await;
    app.clock.set(run_at + chrono::Duration::seconds(1));
    let after_reset = app.run_jobs().await;

    assert_eq!(first.iter().map(|r| r.outcome).collect::<Vec<_>>(), vec!["retry"]);
    assert_eq!(job["attempts"], 1);
    assert!(job["last_error"].as_str().unwrap().contains("rate limit"), "{job}");
    let wait = (run_at - started).num_seconds();
    assert!(
        (595..=605).contains(&wait),
        "waits until x-ratelimit-reset, 600 s away by GitHub's clock: {wait}"
    );
    assert!(too_early.is_empty(), "not before the reset");
    assert_eq!(after_reset.iter().map(|r| r.outcome).collect::<Vec<_>>(), vec!["done"]);
    let reports: Vec<_> = watching
        .told()
        .into_iter()
        .filter(|(_, sha, _)| *sha == merged)
        .collect();
    assert_eq!(reports.len(), 1, "told once: {reports:?}");
}

#[tokio::test]
async fn a_batch_under_a_one_call_rate_limit_continues_where_it_stopped_and_fetches_nothing_twice() {
    let repo = GitRepo::new();
    let base = repo.commit("base");
    let merged = repo.append_commits(250, "PR");
    repo.branch("unmerged");
    let unmerged = repo.commit("never merged");
    repo.checkout("main");
    let fake = FakeGitHub::start().await;
    fake.add_repo(REPO, &repo);
    let watching = Arc::new(Watching::default());
    let app = app_watching(&fake, watching.clone()).await;
    app.live_deploy(REPO, &base, "production").await;
    app.run_jobs().await;
    let watched = vec![
        merged[0].clone(),
        merged[150].clone(),
        merged[249].clone(),
        unmerged.clone(),
    ];
    watching.watch(&watched);
    let window = chrono::Duration::hours(1);
    fake.limit_per_window(1, app.clock.now(), app.clock.now() + window);
    let served_before = fake.served_compares().len();

    // Three pages of the range and one compare for the unmerged commit: four calls.
    let second = app.live_deploy(REPO, merged.last().unwrap(), "production").await;
    let mut outcomes = Vec::new();
    for _window in 0..8 {
        let reports = app.run_jobs().await;
        outcomes.extend(reports.iter().map(|r| r.outcome));
        if reports.iter().any(|r| r.outcome == "done") {
            break;
        }
        let (_, queued) = app.admin_get("/api/jobs?state=queued").await;
        let run_at = chrono::DateTime::parse_from_rfc3339(queued["jobs"][0]["run_at"].as_str().unwrap())
            .unwrap()
            .with_timezone(&chrono::Utc);
        app.clock.set(run_at + chrono::Duration::seconds(1));
        fake.next_window(app.clock.now(), app.clock.now() + window);
    }

    assert_eq!(
        outcomes,
        vec!["retry", "retry", "retry", "done"],
        "one window per call: {:?}",
        fake.calls()
    );
    let served = fake.served_compares()[served_before..].to_vec();
    assert_eq!(served.len(), 4, "{served:?}");
    let mut distinct = served.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), served.len(), "a page fetched twice: {served:?}");
    let told = watching.told();
    for sha in &watched {
        let expected = *sha != unmerged;
        let times = told.iter().filter(|t| **t == (second, sha.clone(), expected)).count();
        assert_eq!(times, 1, "{sha}: {told:?}");
    }
}

#[tokio::test]
async fn an_unmerged_watch_costs_one_compare_however_many_deploys_follow() {
    let repo = GitRepo::new();
    let base = repo.commit("base");
    repo.branch("feature");
    let unmerged = repo.commit("never merged");
    repo.checkout("main");
    let fake = FakeGitHub::start().await;
    fake.add_repo(REPO, &repo);
    let watching = Arc::new(Watching::default());
    let app = app_watching(&fake, watching.clone()).await;
    app.live_deploy(REPO, &base, "production").await;
    app.run_jobs().await;
    watching.watch(std::slice::from_ref(&unmerged));

    let mut deploys = Vec::new();
    for i in 1..=5 {
        let sha = repo.commit(&format!("release {i}"));
        deploys.push(app.live_deploy(REPO, &sha, "production").await);
        app.run_jobs().await;
    }

    assert_eq!(fake.count(&format!("/compare/{unmerged}...")), 1, "{:?}", fake.calls());
    let told = watching.told();
    for id in deploys {
        assert!(told.contains(&(id, unmerged.clone(), false)), "{id}: {told:?}");
    }
}

#[tokio::test]
async fn without_a_github_app_went_live_jobs_finish_and_what_needs_the_app_is_skipped_once() {
    let watching = Arc::new(Watching::default());
    let app = spawn_app_watching(|_| {}, vec![watching.clone() as Arc<dyn WatchSource>]).await;
    assert_eq!(
        app.deliver("installation", &fixture("installation.created")).await.0,
        200
    );
    let sha = |i: u32| format!("{:040x}", 0xabc0_0000_u64 + u64::from(i));
    let mut ids = Vec::new();
    for i in 0..18 {
        let environment = if i % 3 == 0 { "staging" } else { "production" };
        ids.push(app.live_deploy(REPO, &sha(i), environment).await);
    }
    // Production ran sha(1), sha(2), sha(4), …, sha(17): going back to sha(16) is a rollback.
    let rollback = app.live_deploy(REPO, &sha(16), "production").await;
    // Drift between staging and production is recomputed too (its own test: drift.rs).
    let went_live = |reports: Vec<shiplog::jobs::runner::RunReport>| -> Vec<_> {
        reports.into_iter().filter(|r| r.kind == "deploy.went_live").collect()
    };
    let first_run = went_live(app.run_jobs().await);

    watching.watch(&[sha(100), sha(101)]);
    let needs_app = app.live_deploy(REPO, &sha(100), "production").await;
    let second_run = went_live(app.run_jobs().await);
    app.clock.advance(chrono::Duration::hours(2));
    let later = app.run_jobs().await;

    assert_eq!(first_run.len(), 19);
    assert!(
        first_run.iter().all(|r| r.outcome == "done"),
        "nothing to settle needs no GitHub call: {first_run:?}"
    );
    let replaced = deployment(&app, ids[17]).await;
    assert_eq!(replaced["status"], "rolled_back", "{replaced}");
    assert_eq!(replaced["rollback_target_id"], rollback);
    assert_eq!(deployment(&app, rollback).await["batch"]["state"], "done");
    assert_eq!(
        second_run.iter().map(|r| r.outcome).collect::<Vec<_>>(),
        vec!["skipped"]
    );
    assert!(later.is_empty(), "a skipped job is not retried: {later:?}");
    let batch = deployment(&app, needs_app).await["batch"].clone();
    assert_eq!(batch["state"], "skipped", "{batch}");
    assert!(
        batch["note"].as_str().unwrap().contains("GitHub App is not configured"),
        "{batch}"
    );
    assert!(
        watching.told().contains(&(needs_app, sha(100), true)),
        "its own sha is settled without GitHub"
    );
    let (_, skipped) = app.admin_get("/api/jobs?state=skipped").await;
    let skipped: Vec<Value> = skipped["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|j| j["kind"] == "deploy.went_live")
        .cloned()
        .collect();
    assert_eq!(skipped.len(), 1);
    assert!(skipped[0]["last_error"]
        .as_str()
        .unwrap()
        .contains("GitHub App is not configured"));
    for state in ["queued", "running", "dead"] {
        let (_, jobs) = app.admin_get(&format!("/api/jobs?state={state}")).await;
        assert_eq!(jobs["jobs"], serde_json::json!([]), "{state}");
    }
}

#[tokio::test]
async fn a_failing_github_is_retried_with_backoff_and_honours_retry_after() {
    let repo = GitRepo::new();
    let base = repo.commit("base");
    let next = repo.commit("next");
    let fake = FakeGitHub::start().await;
    fake.add_repo(REPO, &repo);
    let app = app_watching(&fake, Arc::new(Watching::default())).await;
    app.live_deploy(REPO, &base, "production").await;
    app.run_jobs().await;
    app.live_deploy(REPO, &next, "production").await;

    fake.fail_next(Fault::BadGateway);
    let bad_gateway = app.run_jobs().await;
    app.clock.advance(chrono::Duration::seconds(40));
    fake.fail_next(Fault::SecondaryRateLimit { retry_after: 120 });
    let limited = app.run_jobs().await;
    app.clock.advance(chrono::Duration::seconds(60));
    let waiting = app.run_jobs().await;
    app.clock.advance(chrono::Duration::seconds(61));
    let done = app.run_jobs().await;

    assert_eq!(bad_gateway[0].outcome, "retry");
    assert_eq!(limited[0].outcome, "retry");
    assert!(waiting.is_empty(), "retry-after is honoured");
    assert_eq!(done[0].outcome, "done");
    let (_, finished) = app.admin_get("/api/jobs?state=done").await;
    let job = finished["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["id"] == done[0].id)
        .unwrap()
        .clone();
    assert_eq!(job["attempts"], 3);
}

#[tokio::test]
async fn ancestry_calls_per_deploy_against_one_compare_per_watch() {
    println!("watched merged PRs | GitHub calls, batch | calls, one compare per watch | bound 1 + ceil(new/100)");
    for watched in [1_usize, 10, 100, 1000] {
        let repo = GitRepo::new();
        let base = repo.commit("base");
        let merged = repo.append_commits(watched, "PR");
        let fake = FakeGitHub::start().await;
        fake.add_repo(REPO, &repo);
        let watching = Arc::new(Watching::default());
        let app = app_watching(&fake, watching.clone()).await;
        app.live_deploy(REPO, &base, "production").await;
        app.run_jobs().await;
        watching.watch(&merged);
        let before = fake.calls().iter().filter(|c| !c.contains("/access_tokens")).count();

        app.live_deploy(REPO, merged.last().unwrap(), "production").await;
        app.run_jobs().await;

        let calls = fake.calls().iter().filter(|c| !c.contains("/access_tokens")).count() - before;
        let bound = 1 + watched.div_ceil(100);
        println!("{watched:>18} | {calls:>19} | {watched:>28} | {bound:>6}");
        println!("BENCH ancestry_calls_per_deploy watched={watched} batch={calls} naive={watched} bound={bound}");
        assert!(calls <= bound, "{watched} watched: {calls} calls, bound {bound}");
        assert_eq!(watching.told().iter().filter(|(_, _, yes)| *yes).count(), watched);
    }
}

#[tokio::test]
async fn batches_over_random_graphs_agree_with_git_within_the_call_bound() {
    for seed in [3_u64, 99, 4242] {
        let mut state = seed;
        let mut next = |bound: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % bound as u64) as usize
        };
        let repo = GitRepo::new();
        let mut commits = vec![repo.commit("root")];
        let mut branches = vec!["main".to_owned()];
        for step in 0..24 {
            match next(5) {
                0 => {
                    let name = format!("b{step}");
                    repo.branch(&name);
                    branches.push(name);
                }
                1 => {
                    let name = branches[next(branches.len())].clone();
                    repo.checkout(&name);
                }
                2 if branches.len() > 1 => {
                    let other = branches[next(branches.len())].clone();
                    if other != repo.git(&["rev-parse", "--abbrev-ref", "HEAD"]) {
                        commits.push(repo.merge(&other, &format!("merge {other}")));
                    }
                }
                _ => commits.push(repo.commit(&format!("c{step}"))),
            }
        }
        let previous = commits[next(commits.len())].clone();
        let new = commits[next(commits.len())].clone();
        let fake = FakeGitHub::start().await;
        fake.add_repo(REPO, &repo);
        let watching = Arc::new(Watching::default());
        let app = app_watching(&fake, watching.clone()).await;
        app.live_deploy(REPO, &previous, "production").await;
        app.run_jobs().await;
        watching.watch(&commits);
        let before = fake.compare_calls();

        let id = app.live_deploy(REPO, &new, "production").await;
        app.run_jobs().await;

        let calls = fake.compare_calls() - before;
        let in_range = |c: &String| repo.is_ancestor(c, &new) && !repo.is_ancestor(c, &previous);
        let range_size = commits.iter().filter(|c| in_range(c)).count();
        let outside = commits.iter().filter(|c| !in_range(c) && **c != new).count();
        let bound = 1 + range_size.div_ceil(100) + outside;
        assert!(calls <= bound, "seed {seed}: {calls} calls, bound {bound}");
        let told = watching.told();
        for commit in &commits {
            let expected = repo.is_ancestor(commit, &new);
            assert!(
                told.contains(&(id, commit.clone(), expected)),
                "seed {seed}: {commit} in {new}? expected {expected}"
            );
        }
    }
}

#[tokio::test]
async fn what_a_rollback_took_out_of_an_environment_can_be_listed() {
    let repo = GitRepo::new();
    let good = repo.commit("good");
    let pr_one = repo.commit("PR #1");
    let pr_two = repo.commit("PR #2");
    let fake = FakeGitHub::start().await;
    fake.add_repo(REPO, &repo);
    let credentials = GitHubAppCredentials {
        app_id: APP_ID,
        private_key_pem: Secret::new(private_key_pem()),
    };
    let app = shiplog::github::app::GitHubApp::new(&credentials, &fake.url).unwrap();
    let access = shiplog::github::client::InstallationClient {
        app: &app,
        installation: shiplog::types::InstallationId(41000001),
    };
    let repo_name = shiplog::types::RepoName::parse(REPO).unwrap();

    let left = shiplog::ancestry::batch::commits_left(&access, &repo_name, &pr_two, &good, chrono::Utc::now())
        .await
        .unwrap();

    assert_eq!(left, vec![pr_one, pr_two]);
}
