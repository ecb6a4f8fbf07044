//! Ancestry through the compare API of a fake GitHub that answers from real git repositories.

use serde_json::Value;

use crate::fake_github::{private_key_pem, FakeGitHub, Fault, APP_ID};
use crate::git::GitRepo;
use crate::helpers::{fixture, spawn_app_with, TestApp};
use shiplog::config::{GitHubAppCredentials, Secret};

const REPO: &str = "acme-corp/web-app";

/// An installed app with a GitHub App whose API is the fake's (shipped and drift tests use it too).
pub(crate) async fn app_with_github(fake: &FakeGitHub) -> TestApp {
    app_with_github_at(fake.url.clone()).await
}

/// An installed app whose GitHub API is at `url`.
async fn app_with_github_at(url: String) -> TestApp {
    let app = spawn_app_with(move |config| {
        config.github_api_url = url;
        config.github_app = Some(GitHubAppCredentials {
            app_id: APP_ID,
            private_key_pem: Secret::new(private_key_pem()),
        });
    })
    .await;
    assert_eq!(
        app.deliver("installation", &fixture("installation.created")).await.0,
        200
    );
    app
}

/// Asks about two full SHAs GitHub would have to be reached for.
async fn ask_about_two_shas(app: &TestApp) -> (u16, Value) {
    ask(
        app,
        "4c1f0f0a9d6e3b2a8f7e6d5c4b3a29181716151a",
        "9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a291817",
    )
    .await
}

async fn ask(app: &TestApp, ancestor: &str, descendant: &str) -> (u16, Value) {
    app.admin_get(&format!(
        "/api/ancestry?repository={REPO}&ancestor={ancestor}&descendant={descendant}"
    ))
    .await
}

#[tokio::test]
async fn an_ancestor_is_answered_by_github_once_and_by_the_cache_after() {
    let repo = GitRepo::new();
    let b = repo.commit("B");
    let e = repo.commit("E");
    let fake = FakeGitHub::start().await;
    fake.add_repo(REPO, &repo);
    let app = app_with_github(&fake).await;

    let (status, first) = ask(&app, &b, &e).await;
    let (_, second) = ask(&app, &b, &e).await;

    assert_eq!(status, 200, "{first}");
    assert_eq!(first["is_ancestor"], true);
    assert_eq!(first["status"], "ahead");
    assert_eq!(first["source"], "github");
    assert_eq!(second["source"], "cache");
    assert_eq!(second["is_ancestor"], true);
    assert_eq!(fake.compare_calls(), 1, "{:?}", fake.calls());
    assert_eq!(fake.token_mints(), 1, "the installation token is cached");
}

#[tokio::test]
async fn behind_diverged_identical_and_unrelated_histories_answer_as_git_does() {
    let repo = GitRepo::new();
    let root = repo.commit("root");
    let main_tip = repo.commit("main work");
    repo.branch("feature");
    repo.checkout(&root);
    repo.branch("other");
    let other_tip = repo.commit("other work");
    repo.orphan("unrelated");
    let unrelated = repo.commit("unrelated root");
    let fake = FakeGitHub::start().await;
    fake.add_repo(REPO, &repo);
    let app = app_with_github(&fake).await;

    let (_, behind) = ask(&app, &main_tip, &root).await;
    let (_, diverged) = ask(&app, &main_tip, &other_tip).await;
    let (_, identical) = ask(&app, &root, &root).await;
    let (no_common_status, no_common) = ask(&app, &unrelated, &main_tip).await;
    let (_, again) = ask(&app, &unrelated, &main_tip).await;

    assert_eq!(
        (behind["is_ancestor"].as_bool(), behind["status"].as_str()),
        (Some(false), Some("behind"))
    );
    assert_eq!(
        (diverged["is_ancestor"].as_bool(), diverged["status"].as_str()),
        (Some(false), Some("diverged"))
    );
    assert_eq!(
        (identical["is_ancestor"].as_bool(), identical["source"].as_str()),
        (Some(true), Some("cache"))
    );
    assert_eq!(no_common_status, 200, "{no_common}");
    assert_eq!(no_common["is_ancestor"], false);
    assert_eq!(again["source"], "cache", "no common ancestor is a definitive answer");
    assert_eq!(fake.compare_calls(), 3, "identical needs no call: {:?}", fake.calls());
}

#[tokio::test]
async fn an_unknown_commit_is_a_404_and_is_never_cached() {
    let repo = GitRepo::new();
    let b = repo.commit("B");
    let fake = FakeGitHub::start().await;
    fake.add_repo(REPO, &repo);
    let app = app_with_github(&fake).await;
    let missing = "0123456789abcdef0123456789abcdef01234567";

    let (status, problem) = ask(&app, &b, missing).await;
    let (again, _) = ask(&app, &b, missing).await;

    assert_eq!(status, 404, "{problem}");
    assert_eq!(problem["status"], 404);
    assert_eq!(again, 404);
    assert_eq!(fake.compare_calls(), 2, "an unknown answer is asked again");
}

#[tokio::test]
async fn short_shas_and_branch_names_are_resolved_to_full_shas_before_caching() {
    let repo = GitRepo::new();
    let b = repo.commit("B");
    repo.commit("between");
    let e = repo.commit("E");
    let fake = FakeGitHub::start().await;
    fake.add_repo(REPO, &repo);
    let app = app_with_github(&fake).await;

    let (status, by_name) = ask(&app, &b[..8], "main").await;
    let (_, by_sha) = ask(&app, &b, &e).await;

    assert_eq!(status, 200, "{by_name}");
    assert_eq!(by_name["ancestor"], b.as_str());
    assert_eq!(by_name["descendant"], e.as_str());
    assert_eq!(by_name["is_ancestor"], true);
    assert_eq!(by_sha["source"], "cache", "the cache is keyed by full SHAs");
    assert_eq!(fake.count("/commits/"), 2);
}

#[tokio::test]
async fn commits_listed_in_a_comparison_are_answered_ahead_without_another_call() {
    let repo = GitRepo::new();
    let b = repo.commit("B");
    let middle = repo.commit("middle");
    let e = repo.commit("E");
    let fake = FakeGitHub::start().await;
    fake.add_repo(REPO, &repo);
    let app = app_with_github(&fake).await;
    ask(&app, &b, &e).await;

    let (_, derived) = ask(&app, &middle, &e).await;

    assert_eq!(derived["is_ancestor"], true);
    assert_eq!(
        derived["status"], "ahead",
        "a listed commit is behind the head: {derived}"
    );
    assert_eq!(derived["source"], "cache");
    assert_eq!(fake.compare_calls(), 1);
}

#[tokio::test]
async fn github_faults_answer_503_and_the_next_try_succeeds() {
    let repo = GitRepo::new();
    let b = repo.commit("B");
    let e = repo.commit("E");
    let fake = FakeGitHub::start().await;
    fake.add_repo(REPO, &repo);
    let app = app_with_github(&fake).await;

    fake.fail_next(Fault::BadGateway);
    let (bad_gateway, _) = ask(&app, &b, &e).await;
    fake.fail_next(Fault::DiffTooLong);
    let (too_long, _) = ask(&app, &b, &e).await;
    fake.fail_next(Fault::SecondaryRateLimit { retry_after: 30 });
    let (limited, limited_body) = ask(&app, &b, &e).await;
    let (ok, answer) = ask(&app, &b, &e).await;

    assert_eq!((bad_gateway, too_long, limited), (503, 503, 503), "{limited_body}");
    assert!(
        limited_body["detail"].as_str().unwrap().contains("rate limit"),
        "{limited_body}"
    );
    assert_eq!((ok, answer["is_ancestor"].as_bool()), (200, Some(true)));
}

#[tokio::test]
async fn a_rejected_token_is_minted_again_once() {
    let repo = GitRepo::new();
    let b = repo.commit("B");
    let e = repo.commit("E");
    let c = repo.commit("C");
    let fake = FakeGitHub::start().await;
    fake.add_repo(REPO, &repo);
    let app = app_with_github(&fake).await;
    ask(&app, &b, &e).await;

    fake.revoke_tokens();
    let (status, answer) = ask(&app, &e, &c).await;

    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["is_ancestor"], true);
    assert_eq!(fake.token_mints(), 2);
}

#[tokio::test]
async fn without_the_github_app_configured_the_answer_is_a_clear_503() {
    let app = spawn_app_with(|_| {}).await;
    app.deliver("installation", &fixture("installation.created")).await;

    let (status, problem) = ask_about_two_shas(&app).await;

    assert_eq!(status, 503, "{problem}");
    assert!(
        problem["detail"].as_str().unwrap().contains("GITHUB_APP_ID"),
        "{problem}"
    );
}

#[tokio::test]
async fn an_absurd_retry_after_is_a_503_that_waits_an_hour_at_most() {
    let repo = GitRepo::new();
    let b = repo.commit("B");
    let e = repo.commit("E");
    let fake = FakeGitHub::start().await;
    fake.add_repo(REPO, &repo);
    let app = app_with_github(&fake).await;

    fake.fail_next(Fault::SecondaryRateLimit {
        retry_after: 99_999_999_999_999_999,
    });
    let (status, problem) = ask(&app, &b, &e).await;

    assert_eq!(status, 503, "{problem}");
    let detail = problem["detail"].as_str().unwrap();
    let retry_at = detail
        .split("try again after ")
        .nth(1)
        .and_then(|at| chrono::DateTime::parse_from_rfc3339(at).ok())
        .unwrap_or_else(|| panic!("a retry time in {detail}"));
    let now = shiplog::clock::Clock::now(app.clock.as_ref());
    assert!(retry_at <= now + chrono::Duration::hours(1), "{detail}");
    let (ok, _) = ask(&app, &b, &e).await;
    assert_eq!(ok, 200, "the server still answers");
}

#[tokio::test]
async fn a_github_that_cannot_be_reached_is_a_503_without_the_client_s_internals() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let app = app_with_github_at(closed).await;

    let (status, problem) = ask_about_two_shas(&app).await;

    assert_eq!(status, 503, "{problem}");
    let detail = problem["detail"].as_str().unwrap();
    assert!(detail.contains("GitHub could not be reached"), "{detail}");
    for internal in ["127.0.0.1", "Backtrace", "hyper", "os error"] {
        assert!(!detail.contains(internal), "{internal} in {detail}");
    }
}

/// A small deterministic generator, so a failing graph can be rebuilt from its seed.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self, bound: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % bound as u64) as usize
    }
}

#[tokio::test]
async fn random_commit_graphs_with_branches_and_merges_agree_with_git() {
    for seed in [7_u64, 1_234_567] {
        let mut rng = XorShift(seed);
        let repo = GitRepo::new();
        let mut commits = vec![repo.commit("root")];
        let mut branches = vec!["main".to_owned()];
        for step in 0..14 {
            match rng.next(4) {
                0 => {
                    let name = format!("b{step}");
                    repo.branch(&name);
                    branches.push(name);
                }
                1 if branches.len() > 1 => {
                    let other = branches[rng.next(branches.len())].clone();
                    let current = repo.git(&["rev-parse", "--abbrev-ref", "HEAD"]);
                    if other != current {
                        commits.push(repo.merge(&other, &format!("merge {other} at {step}")));
                        continue;
                    }
                    commits.push(repo.commit(&format!("c{step}")));
                }
                2 => {
                    let name = branches[rng.next(branches.len())].clone();
                    repo.checkout(&name);
                    commits.push(repo.commit(&format!("c{step}")));
                }
                _ => commits.push(repo.commit(&format!("c{step}"))),
            }
        }
        let fake = FakeGitHub::start().await;
        fake.add_repo(REPO, &repo);
        let app = app_with_github(&fake).await;

        for a in &commits {
            for b in &commits {
                let (status, answer) = ask(&app, a, b).await;
                assert_eq!(status, 200, "seed {seed}: {a} {b}: {answer}");
                assert_eq!(
                    answer["is_ancestor"],
                    repo.is_ancestor(a, b),
                    "seed {seed}: is {a} an ancestor of {b}?"
                );
            }
        }
        let pairs = commits.len() * commits.len();
        assert!(
            fake.compare_calls() < pairs - commits.len(),
            "the cache saved calls: {} for {pairs} pairs",
            fake.compare_calls()
        );
    }
}

#[tokio::test]
async fn a_primary_rate_limit_answers_503_and_a_401_mid_flight_mints_one_new_token() {
    let repo = GitRepo::new();
    let b = repo.commit("B");
    let e = repo.commit("E");
    let fake = FakeGitHub::start().await;
    fake.add_repo(REPO, &repo);
    let app = app_with_github(&fake).await;

    fake.fail_next(Fault::PrimaryRateLimit { reset_in: 600 });
    let (limited, body) = ask(&app, &b, &e).await;
    fake.fail_next(Fault::BadCredentials);
    let (recovered, answer) = ask(&app, &b, &e).await;

    assert_eq!(limited, 503, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("rate limit"), "{body}");
    assert_eq!(
        (recovered, answer["is_ancestor"].as_bool()),
        (200, Some(true)),
        "{answer}"
    );
    assert_eq!(fake.token_mints(), 2, "one token, then one more after the 401");
}

#[tokio::test]
async fn the_ancestry_command_asks_through_the_same_cache() {
    let repo = GitRepo::new();
    let b = repo.commit("B");
    let e = repo.commit("E");
    let fake = FakeGitHub::start().await;
    fake.add_repo(REPO, &repo);
    let app = app_with_github(&fake).await;
    let (url, api) = (app.database.url.clone(), fake.url.clone());
    let (b2, e2) = (b.clone(), e.clone());

    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_shiplog"))
            .args(["ancestry", REPO, &b2[..10], &e2])
            .env("DATABASE_URL", url)
            .env("GITHUB_API_URL", api)
            .env("GITHUB_APP_ID", APP_ID.to_string())
            .env("GITHUB_APP_PRIVATE_KEY", private_key_pem())
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let (_, cached) = ask(&app, &b, &e).await;

    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let answer: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        (answer["is_ancestor"].as_bool(), answer["source"].as_str()),
        (Some(true), Some("github"))
    );
    assert_eq!(answer["ancestor"], b.as_str());
    assert_eq!(
        cached["source"], "cache",
        "the command stored its answer for the server"
    );
}

#[tokio::test]
async fn a_deploy_credential_asks_about_its_own_repositories_only() {
    let repo = GitRepo::new();
    let b = repo.commit("B");
    let e = repo.commit("E");
    let fake = FakeGitHub::start().await;
    fake.add_repo(REPO, &repo);
    let app = app_with_github(&fake).await;
    let (_, credential) = crate::helpers::status_and_json(
        app.client
            .post(app.url("/api/connections/1/credentials"))
            .bearer_auth(crate::helpers::ADMIN_TOKEN)
            .send()
            .await
            .unwrap(),
    )
    .await;
    let ask_as_credential = |repository: &str| {
        app.client
            .get(app.url(&format!(
                "/api/ancestry?repository={repository}&ancestor={b}&descendant={e}"
            )))
            .basic_auth(
                credential["username"].as_str().unwrap(),
                credential["password"].as_str(),
            )
            .header("Accept", "application/json")
            .send()
    };

    let own = ask_as_credential(REPO).await.unwrap();
    let foreign = ask_as_credential("globex/web-app").await.unwrap();

    assert_eq!(own.status(), 200);
    assert_eq!(foreign.status(), 403);
}
