//! The durable job queue: leases, retries into the visible dead state, and the clock.

use crate::fake_github::{private_key_pem, FakeGitHub, APP_ID};
use crate::git::GitRepo;
use crate::helpers::{fixture, spawn_app_with};
use shiplog::config::{GitHubAppCredentials, Secret};

#[tokio::test]
async fn a_job_whose_worker_died_is_run_by_another_once_the_lease_expires() {
    let repo = GitRepo::new();
    let sha = repo.commit("base");
    let fake = FakeGitHub::start().await;
    fake.add_repo("acme-corp/web-app", &repo);
    let url = fake.url.clone();
    let app = spawn_app_with(move |config| {
        config.github_api_url = url;
        config.github_app = Some(GitHubAppCredentials {
            app_id: APP_ID,
            private_key_pem: Secret::new(private_key_pem()),
        });
    })
    .await;
    app.deliver("installation", &fixture("installation.created")).await;
    app.live_deploy("acme-corp/web-app", &sha, "production").await;
    let now = shiplog::clock::Clock::now(app.clock.as_ref());

    // A worker claims the job and dies without finishing it.
    let tx = app.store.begin().await.unwrap();
    let claimed = shiplog::store::job_queue::claim(&tx, "crashed-worker", now, now + chrono::Duration::minutes(5))
        .await
        .unwrap()
        .unwrap();
    tx.commit().await.unwrap();
    let while_leased = app.run_jobs().await;
    app.clock.advance(chrono::Duration::minutes(6));
    let after_lease = app.run_jobs().await;

    assert!(while_leased.is_empty(), "a leased job is left alone");
    assert_eq!(after_lease.len(), 1);
    assert_eq!((after_lease[0].id, after_lease[0].outcome), (claimed.id, "done"));
    let (_, done) = app.admin_get("/api/jobs?state=done").await;
    assert_eq!(done["jobs"][0]["attempts"], 2, "the dead worker's attempt counts");
}

#[tokio::test]
async fn a_job_that_keeps_failing_ends_dead_and_stays_visible() {
    // A GitHub App whose API never answers (nothing listens on the configured address).
    let app = spawn_app_with(|config| {
        config.github_app = Some(GitHubAppCredentials {
            app_id: APP_ID,
            private_key_pem: Secret::new(private_key_pem()),
        });
    })
    .await;
    app.deliver("installation", &fixture("installation.created")).await;
    app.live_deploy(
        "acme-corp/web-app",
        "3b0e9e9f8c5d2a1f7e6d5c4b3a29181716151a0f",
        "production",
    )
    .await;
    app.run_jobs().await;
    // Its batch compares the range from the deploy it replaces: that needs GitHub.
    app.live_deploy(
        "acme-corp/web-app",
        "4c1f0f0a9d6e3b2a8f7e6d5c4b3a29181716151a",
        "production",
    )
    .await;

    let mut outcomes = Vec::new();
    for _ in 0..shiplog::jobs::runner::MAX_ATTEMPTS {
        outcomes.extend(app.run_jobs().await.into_iter().map(|r| r.outcome));
        // Past the longest backoff (six hours, plus jitter).
        app.clock.advance(chrono::Duration::hours(8));
    }
    let after = app.run_jobs().await;

    assert_eq!(
        outcomes.len(),
        shiplog::jobs::runner::MAX_ATTEMPTS as usize,
        "{outcomes:?}"
    );
    assert!(outcomes[..outcomes.len() - 1].iter().all(|o| *o == "retry"));
    assert_eq!(*outcomes.last().unwrap(), "dead");
    assert!(after.is_empty(), "a dead job is not run again");
    let (_, dead) = app.admin_get("/api/jobs?state=dead").await;
    let job = &dead["jobs"][0];
    assert_eq!(job["kind"], "deploy.went_live");
    assert!(job["last_error"].as_str().unwrap().contains("token"), "{job}");
    assert!(job["finished_at"].is_string());
}
