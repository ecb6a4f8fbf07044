//! The installation client against the fake GitHub: installation tokens are minted per
//! installation, so one installation's slow mint delays no other, and concurrent callers of
//! one installation share one mint; the history the backfill reads (repositories, deployments by
//! GraphQL, Actions runs) is paged as GitHub pages it, and hostile nodes are skipped alone.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use shiplog::ancestry::batch::commits_left;
use shiplog::config::{GitHubAppCredentials, Secret};
use shiplog::events::WorkflowRun;
use shiplog::github::app::GitHubApp;
use shiplog::github::client::InstallationClient;
use shiplog::github::error::CallError;
use shiplog::github::history::{self, HistoricDeployment, InstallationRepository, Page};
use shiplog::types::{InstallationId, RepoName};

use crate::fake_github::{private_key_pem, workflow_run, FakeDeployment, FakeGitHub, Fault, MintHold, APP_ID};
use crate::git::GitRepo;

const REPO: &str = "acme-corp/web-app";

/// A repository with two commits served by the fake, whose mints for installation 41000001 are
/// held, and the App pointed at it.
struct Setup {
    _repo: GitRepo,
    base: String,
    head: String,
    fake: FakeGitHub,
    hold: Arc<MintHold>,
    app: GitHubApp,
    repo_name: RepoName,
}

async fn setup() -> Setup {
    let repo = GitRepo::new();
    let base = repo.commit("base");
    let head = repo.commit("head");
    let fake = FakeGitHub::start().await;
    fake.add_repo(REPO, &repo);
    let hold = fake.hold_mints(41000001);
    let credentials = GitHubAppCredentials {
        app_id: APP_ID,
        private_key_pem: Secret::new(private_key_pem()),
    };
    let app = GitHubApp::new(&credentials, &fake.url).unwrap();
    Setup {
        _repo: repo,
        base,
        head,
        fake,
        hold,
        app,
        repo_name: RepoName::parse(REPO).unwrap(),
    }
}

#[tokio::test]
async fn a_slow_token_mint_for_one_installation_does_not_delay_another() {
    let t = setup().await;
    let slow = tokio::spawn({
        let (app, repo_name, base, head) = (t.app.clone(), t.repo_name.clone(), t.base.clone(), t.head.clone());
        async move {
            let client = InstallationClient {
                app: &app,
                installation: InstallationId(41000001),
            };
            commits_left(&client, &repo_name, &head, &base, chrono::Utc::now()).await
        }
    });
    // Installation 41000001's mint is waiting at GitHub.
    t.hold.arrived.notified().await;

    let other = InstallationClient {
        app: &t.app,
        installation: InstallationId(41000002),
    };
    let left = tokio::time::timeout(
        Duration::from_secs(10),
        commits_left(&other, &t.repo_name, &t.head, &t.base, chrono::Utc::now()),
    )
    .await
    .expect("installation 41000002 waited for 41000001's token")
    .unwrap();
    assert_eq!(left, vec![t.head.clone()]);
    assert!(!slow.is_finished());

    t.hold.release.notify_one();
    assert_eq!(slow.await.unwrap().unwrap(), vec![t.head.clone()]);
    assert_eq!(t.fake.token_mints(), 2);
}

#[tokio::test]
async fn concurrent_callers_of_one_installation_share_one_token_mint() {
    let t = setup().await;
    let client = InstallationClient {
        app: &t.app,
        installation: InstallationId(41000001),
    };

    let callers = futures_util::future::join_all(
        (0..4).map(|_| commits_left(&client, &t.repo_name, &t.head, &t.base, chrono::Utc::now())),
    );
    let release = async {
        t.hold.arrived.notified().await;
        t.hold.release.notify_one();
    };
    let (answers, ()) = tokio::join!(callers, release);

    for answer in answers {
        assert_eq!(answer.unwrap(), vec![t.head.clone()]);
    }
    assert_eq!(t.fake.token_mints(), 1);
    assert_eq!(t.fake.compare_calls(), 4);
}

// The history the backfill reads: repositories, deployments by GraphQL and Actions runs.

/// The fake and the App pointed at it, calling as installation 41000003 (no held mints).
struct History {
    fake: FakeGitHub,
    app: GitHubApp,
}

impl History {
    async fn start() -> Self {
        let fake = FakeGitHub::start().await;
        let credentials = GitHubAppCredentials {
            app_id: APP_ID,
            private_key_pem: Secret::new(private_key_pem()),
        };
        let app = GitHubApp::new(&credentials, &fake.url).unwrap();
        Self { fake, app }
    }

    fn client(&self) -> InstallationClient<'_> {
        InstallationClient {
            app: &self.app,
            installation: InstallationId(41000003),
        }
    }

    async fn repositories(&self, next: Option<&str>) -> Result<Page<InstallationRepository>, CallError> {
        let now = Utc::now();
        self.client()
            .call(now, |octo| async move {
                history::installation_repositories(&octo, next, now).await
            })
            .await
    }

    async fn deployments(&self, repo: &RepoName, after: Option<&str>) -> Result<Page<HistoricDeployment>, CallError> {
        let now = Utc::now();
        self.client()
            .call_graphql(now, |octo| async move {
                history::deployments(&octo, repo, after, now).await
            })
            .await
    }

    async fn runs(&self, repo: &RepoName, next: Option<&str>) -> Result<Page<WorkflowRun>, CallError> {
        let now = Utc::now();
        self.client()
            .call(now, |octo| async move {
                history::workflow_runs(&octo, repo, next, now).await
            })
            .await
    }
}

/// Every page of a listing, following `next` until GitHub names none.
async fn every_page<T, F, Fut>(mut page: F) -> (Vec<T>, Vec<Page<()>>)
where
    F: FnMut(Option<String>) -> Fut,
    Fut: std::future::Future<Output = Result<Page<T>, CallError>>,
{
    let (mut items, mut pages) = (Vec::new(), Vec::new());
    let mut next = None;
    loop {
        let answer = page(next.clone()).await.unwrap();
        items.extend(answer.items);
        next = answer.next.clone();
        pages.push(Page {
            items: vec![],
            next: answer.next,
            rate: answer.rate,
            total: answer.total,
        });
        if next.is_none() {
            return (items, pages);
        }
    }
}

fn sha(n: i64) -> String {
    format!("{n:040x}")
}

fn at(minutes: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + chrono::Duration::minutes(minutes)
}

#[tokio::test]
async fn all_installation_repositories_are_listed_over_three_pages_following_link() {
    let t = History::start().await;
    let names = t.fake.add_history_repos("acme-corp", 250);

    let (repos, pages) = every_page(|next| {
        let t = &t;
        async move { t.repositories(next.as_deref()).await }
    })
    .await;

    let listed: Vec<&str> = repos.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(listed, names.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(repos[0].default_branch.as_deref(), Some("main"));
    assert_eq!(repos[0].github_id, 700_000_001);
    assert_eq!(pages.len(), 3);
    assert_eq!(pages[0].total, Some(250));
    assert_eq!(
        t.fake
            .calls()
            .into_iter()
            .filter(|c| c.contains("/installation/"))
            .collect::<Vec<_>>(),
        [
            "GET /installation/repositories?per_page=100",
            "GET /installation/repositories?per_page=100&page=2",
            "GET /installation/repositories?per_page=100&page=3",
        ]
    );
}

#[tokio::test]
async fn deployments_are_read_a_hundred_a_graphql_call_newest_first_with_statuses_oldest_first() {
    let t = History::start().await;
    let repo = RepoName::parse(REPO).unwrap();
    for n in 1..=250 {
        t.fake.add_deployment(
            REPO,
            FakeDeployment::new(n, &sha(n), "production", at(n))
                .status("in_progress", at(n))
                .status_with_log(
                    "success",
                    at(n) + chrono::Duration::seconds(30),
                    "https://ci.example/log",
                ),
        );
    }

    let (deployments, pages) = every_page(|after| {
        let (t, repo) = (&t, &repo);
        async move { t.deployments(repo, after.as_deref()).await }
    })
    .await;

    assert_eq!(t.fake.count("/graphql"), 3);
    assert_eq!(pages.len(), 3);
    let ids: Vec<i64> = deployments.iter().map(|d| d.id).collect();
    assert_eq!(ids, (1..=250).rev().collect::<Vec<_>>());
    let newest = &deployments[0];
    assert_eq!(newest.sha.as_str(), sha(250));
    assert_eq!(
        (newest.environment.as_str(), newest.git_ref.as_deref()),
        ("production", Some("main"))
    );
    assert_eq!(newest.created_at, at(250));
    let states: Vec<&str> = newest.statuses.iter().map(|s| s.state.as_str()).collect();
    assert_eq!(states, ["in_progress", "success"]);
    assert_eq!(newest.statuses[1].log_url.as_deref(), Some("https://ci.example/log"));
    assert!(pages[0].next.as_deref().unwrap().starts_with("Y3Vyc29yOnYyO"));
    let rate = pages[2].rate.clone().unwrap();
    assert_eq!(
        (rate.resource.as_str(), rate.limit, rate.remaining),
        ("graphql", 5000, 4997)
    );
}

#[tokio::test]
async fn workflow_runs_are_read_over_two_pages_newest_first() {
    let t = History::start().await;
    t.fake.add_history_repo(REPO, "main");
    let repo = RepoName::parse(REPO).unwrap();
    for n in 1..=150 {
        t.fake.add_run(REPO, workflow_run(REPO, 9000 + n, &sha(n), at(n)));
    }

    let (runs, pages) = every_page(|next| {
        let (t, repo) = (&t, &repo);
        async move { t.runs(repo, next.as_deref()).await }
    })
    .await;

    assert_eq!(pages.len(), 2);
    assert_eq!(pages[0].total, Some(150));
    let ids: Vec<i64> = runs.iter().map(|r| r.id).collect();
    assert_eq!(ids, (9001..=9150).rev().collect::<Vec<_>>());
    assert_eq!(runs[0].head_sha.as_str(), sha(150));
    assert_eq!(runs[0].repository.name.as_str(), REPO);
    assert_eq!(runs[0].conclusion.as_deref(), Some("success"));
    // GitHub's `Link` names `/repositories/{id}/…`; the client keeps only its query.
    assert_eq!(
        t.fake
            .calls()
            .into_iter()
            .filter(|c| c.contains("/actions/runs"))
            .collect::<Vec<_>>(),
        [
            "GET /repos/acme-corp/web-app/actions/runs?per_page=100",
            "GET /repos/acme-corp/web-app/actions/runs?per_page=100&page=2",
        ]
    );
    let rate = pages[1].rate.clone().unwrap();
    assert_eq!((rate.resource.as_str(), rate.remaining), ("core", 4998));
}

#[tokio::test]
async fn the_rate_limit_is_read_from_each_answer_and_graphqls_rate_limit_waits_for_the_reset() {
    let t = History::start().await;
    t.fake.add_history_repo(REPO, "main");
    let repo = RepoName::parse(REPO).unwrap();
    t.fake
        .add_deployment(REPO, FakeDeployment::new(1, &sha(1), "production", at(1)));
    let now = Utc::now();
    let reset = now + chrono::Duration::minutes(30);
    t.fake.limit_per_window(2, now, reset);

    let first = t.runs(&repo, None).await.unwrap().rate.unwrap();
    let second = t.deployments(&repo, None).await.unwrap().rate.unwrap();
    let refused = t.deployments(&repo, None).await.unwrap_err();

    assert_eq!((first.limit, first.remaining, first.resource.as_str()), (2, 1, "core"));
    assert_eq!(first.reset.timestamp(), reset.timestamp());
    assert_eq!((second.remaining, second.resource.as_str()), (0, "graphql"));
    let CallError::RateLimited {
        retry_at: Some(retry_at),
    } = refused
    else {
        panic!("{refused:?}")
    };
    // Measured against GitHub's `Date` (the window's start): the reset is 30 minutes away.
    let wait = retry_at - Utc::now();
    assert!(
        wait > chrono::Duration::minutes(29) && wait <= chrono::Duration::minutes(30),
        "{wait}"
    );
}

#[tokio::test]
async fn a_graphql_rate_limited_error_answered_with_200_is_a_rate_limit_until_the_reset() {
    let t = History::start().await;
    let repo = RepoName::parse(REPO).unwrap();
    t.fake
        .add_deployment(REPO, FakeDeployment::new(1, &sha(1), "production", at(1)));
    t.fake.fail_next(Fault::PrimaryRateLimit { reset_in: 600 });

    let refused = t.deployments(&repo, None).await.unwrap_err();

    let CallError::RateLimited {
        retry_at: Some(retry_at),
    } = refused
    else {
        panic!("{refused:?}")
    };
    let wait = retry_at - Utc::now();
    assert!(
        wait > chrono::Duration::seconds(590) && wait <= chrono::Duration::seconds(601),
        "{wait}"
    );
    assert_eq!(t.deployments(&repo, None).await.unwrap().items.len(), 1);
}

#[tokio::test]
async fn an_unknown_repository_is_not_found_for_deployments_and_runs() {
    let t = History::start().await;
    let repo = RepoName::parse("acme-corp/gone").unwrap();

    let deployments = t.deployments(&repo, None).await.unwrap_err();
    let runs = t.runs(&repo, None).await.unwrap_err();

    assert!(
        matches!(&deployments, CallError::NotFound(what) if what == "repository acme-corp/gone"),
        "{deployments:?}"
    );
    assert!(
        matches!(&runs, CallError::NotFound(what) if what == "repository acme-corp/gone"),
        "{runs:?}"
    );
}

#[tokio::test]
async fn a_hostile_deployment_or_run_is_skipped_without_failing_its_page() {
    let t = History::start().await;
    t.fake.add_history_repo(REPO, "main");
    let repo = RepoName::parse(REPO).unwrap();
    t.fake.add_deployment(
        REPO,
        FakeDeployment::new(1, &sha(1), "production", at(1)).status("success", at(1)),
    );
    t.fake.add_deployment(
        REPO,
        FakeDeployment::new(2, &sha(2), &"e".repeat(300), at(2)).status("success", at(2)),
    );
    t.fake.add_deployment(
        REPO,
        FakeDeployment::new(3, &sha(3), "staging", at(3)).status_with_log("failure", at(3), "javascript:alert(1)"),
    );
    t.fake.add_run(REPO, workflow_run(REPO, 1, &sha(1), at(1)));
    let mut hostile = workflow_run(REPO, 2, &sha(2), at(2));
    hostile["head_sha"] = serde_json::json!("not-a-sha");
    t.fake.add_run(REPO, hostile);

    let deployments = t.deployments(&repo, None).await.unwrap();
    let runs = t.runs(&repo, None).await.unwrap();

    let ids: Vec<i64> = deployments.items.iter().map(|d| d.id).collect();
    assert_eq!(ids, [3, 1]);
    let status = &deployments.items[0].statuses[0];
    assert_eq!((status.state.as_str(), status.log_url.as_deref()), ("failure", None));
    assert!(status
        .description
        .as_deref()
        .unwrap()
        .ends_with("(not an http(s) URL, kept as text): javascript:alert(1)"));
    assert_eq!(runs.items.iter().map(|r| r.id).collect::<Vec<_>>(), [1]);
    assert_eq!(runs.total, Some(2));
}
