//! The installation client against the fake GitHub: installation tokens are minted per
//! installation, so one installation's slow mint delays no other, and concurrent callers of
//! one installation share one mint.

use std::sync::Arc;
use std::time::Duration;

use shiplog::ancestry::batch::commits_left;
use shiplog::config::{GitHubAppCredentials, Secret};
use shiplog::github::app::GitHubApp;
use shiplog::github::client::InstallationClient;
use shiplog::types::{InstallationId, RepoName};

use crate::fake_github::{private_key_pem, FakeGitHub, MintHold, APP_ID};
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
