//! The durable job queue: leases, retries into the visible dead state, and the clock.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use sea_orm::ConnectionTrait;
use serde_json::json;

use crate::fake_github::{private_key_pem, FakeGitHub, APP_ID};
use crate::git::GitRepo;
use crate::helpers::{
    fixture, spawn_app, spawn_app_full, spawn_app_on, spawn_app_with, spawn_app_with_handlers, status_and_json,
    TestApp, TestDatabase,
};
use shiplog::config::{GitHubAppCredentials, Secret};
use shiplog::jobs::runner::{Handlers, JobError, JobHandler, MAX_ATTEMPTS};
use shiplog::jobs::BackgroundJob;
use shiplog::monitoring::plans::ExpirePlan;

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
    app.allow_jobs(&["deploy.went_live"]);
}

/// A job kind of the tests' own: its handler panics with the job's message.
#[derive(serde::Serialize, serde::Deserialize)]
struct Explode {
    message: String,
}

impl BackgroundJob for Explode {
    const JOB_NAME: &'static str = "test.explode";
}

struct Exploding;

impl JobHandler<Explode> for Exploding {
    fn run(&self, job: Explode, _now: DateTime<Utc>, _attempt: i32) -> BoxFuture<'_, Result<(), JobError>> {
        Box::pin(async move { panic!("{}", job.message) })
    }
}

fn exploding() -> Handlers {
    let mut handlers = Handlers::default();
    handlers.register::<Explode, _>(Arc::new(Exploding));
    handlers
}

fn now(app: &TestApp) -> DateTime<Utc> {
    shiplog::clock::Clock::now(app.clock.as_ref())
}

/// A row as an older version (or a bug) might have left it, bypassing the typed enqueue.
async fn insert_raw(db: &impl sea_orm::ConnectionTrait, kind: &'static str, payload: &str, now: DateTime<Utc>) {
    use sea_orm::{ActiveModelTrait, NotSet, Set};
    entity::job::ActiveModel {
        id: NotSet,
        kind: Set(kind.to_owned()),
        payload: Set(payload.to_owned()),
        dedupe_key: Set(None),
        state: Set("queued".to_owned()),
        run_at: Set(now),
        attempts: Set(0),
        locked_until: Set(None),
        locked_by: Set(None),
        last_error: Set(None),
        created_at: Set(now),
        finished_at: Set(None),
    }
    .insert(db)
    .await
    .unwrap();
}

/// A `test.explode` job ("boom"), then a `monitoring.expire` of a plan that does not exist
/// (which finishes `done`), both due now.
async fn queue_a_panic_then_an_expiry(app: &TestApp) {
    let at = now(app);
    let explode = Explode {
        message: "boom".to_owned(),
    };
    let tx = app.store.begin().await.unwrap();
    shiplog::jobs::enqueue(&tx, &explode, None, at, at).await.unwrap();
    shiplog::jobs::enqueue(&tx, &ExpirePlan { plan_id: 404 }, None, at, at)
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

#[tokio::test]
async fn a_payload_that_does_not_decode_is_dead_at_once_naming_the_kind_and_the_field() {
    let app = spawn_app().await;
    insert_raw(app.store.conn(), "monitoring.expire", r#"{"plan": 7}"#, now(&app)).await;

    let reports = app.run_jobs().await;

    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].outcome, "dead", "never retried: {reports:?}");
    let error = reports[0].error.as_deref().unwrap();
    assert!(
        error.contains("monitoring.expire") && error.contains("plan_id"),
        "{error}"
    );
    let (_, dead) = app.admin_get("/api/jobs?state=dead").await;
    assert_eq!(dead["jobs"][0]["attempts"], 1);
    assert_eq!(
        dead["jobs"][0]["payload"],
        json!({"plan": 7}),
        "the payload stays visible as JSON"
    );
    app.allow_jobs(&["monitoring.expire"]);
}

#[tokio::test]
async fn a_kind_without_a_handler_is_dead_at_once() {
    let app = spawn_app().await;
    insert_raw(app.store.conn(), "no.such.kind", "{}", now(&app)).await;

    let reports = app.run_jobs().await;

    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].outcome, "dead");
    assert!(
        reports[0].error.as_deref().unwrap().contains("no.such.kind"),
        "{reports:?}"
    );
    app.allow_jobs(&["no.such.kind"]);
}

#[tokio::test]
async fn a_panicking_job_is_a_failed_attempt_retried_until_dead_and_the_next_job_still_runs() {
    let app = spawn_app_with_handlers(|_| {}, exploding()).await;
    queue_a_panic_then_an_expiry(&app).await;

    let first = app.run_jobs().await;
    let mut later = Vec::new();
    for _ in 1..MAX_ATTEMPTS {
        app.clock.advance(chrono::Duration::hours(8));
        later.extend(app.run_jobs().await);
    }

    let outcomes: Vec<_> = first.iter().map(|r| (r.kind.as_str(), r.outcome)).collect();
    assert_eq!(outcomes, [("test.explode", "retry"), ("monitoring.expire", "done")]);
    assert_eq!(first[0].error.as_deref(), Some("the job panicked: boom"));
    assert_eq!(later.len(), MAX_ATTEMPTS as usize - 1);
    assert!(
        later[..later.len() - 1].iter().all(|r| r.outcome == "retry"),
        "{later:?}"
    );
    assert_eq!(later.last().unwrap().outcome, "dead");
    app.allow_jobs(&["test.explode"]);
}

#[tokio::test]
async fn the_background_worker_survives_a_panicking_job() {
    // Jobs queued before the server with a worker starts, so its first pass finds them.
    let database = Arc::new(TestDatabase::create().await);
    let setup = spawn_app_on(database.clone(), |_| {}, Vec::new()).await;
    queue_a_panic_then_an_expiry(&setup).await;
    setup.allow_jobs(&["test.explode", "monitoring.expire"]);
    drop(setup);

    let app = spawn_app_full(database, |config| config.run_jobs = true, Vec::new(), exploding()).await;
    let started = std::time::Instant::now();
    loop {
        let (_, done) = app.admin_get("/api/jobs?state=done").await;
        if done["jobs"].as_array().is_some_and(|jobs| !jobs.is_empty()) {
            assert_eq!(done["jobs"][0]["kind"], "monitoring.expire");
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "the worker stopped"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    let (_, queued) = app.admin_get("/api/jobs?state=queued").await;
    let (ready, readiness) = status_and_json(app.client.get(app.url("/readyz")).send().await.unwrap()).await;
    assert_eq!(queued["jobs"][0]["kind"], "test.explode");
    assert_eq!(queued["jobs"][0]["attempts"], 1);
    assert_eq!(queued["jobs"][0]["last_error"], "the job panicked: boom");
    assert_eq!((ready, &readiness["worker"]), (200, &json!("running")), "{readiness}");
    app.allow_jobs(&["test.explode"]);
}

#[tokio::test]
async fn concurrent_enqueues_of_one_dedupe_key_insert_one_job() {
    let app = spawn_app().await;
    let at = now(&app);

    let attempts: Vec<_> = (0..8)
        .map(|_| {
            let store = app.store.clone();
            tokio::spawn(async move {
                let tx = store.begin().await.unwrap();
                let inserted =
                    shiplog::jobs::enqueue(&tx, &ExpirePlan { plan_id: 404 }, Some("one-key".into()), at, at)
                        .await
                        .unwrap();
                tokio::task::yield_now().await;
                tx.commit().await.unwrap();
                inserted
            })
        })
        .collect();
    let mut inserted = Vec::new();
    for attempt in attempts {
        inserted.push(attempt.await.unwrap());
    }

    assert_eq!(inserted.iter().filter(|i| **i).count(), 1, "{inserted:?}");
    assert_eq!(app.count_rows("job").await, 1);
    assert_eq!(app.run_jobs().await.len(), 1);
}

#[tokio::test]
async fn queued_rollback_notices_of_the_old_shape_become_their_own_kind_on_upgrade() {
    use migration::MigratorTrait;

    // A database as the previous release left it, with jobs it had queued.
    let database = Arc::new(TestDatabase::create().await);
    let db = sea_orm::Database::connect(&database.url).await.unwrap();
    migration::Migrator::up(&db, Some(12)).await.unwrap();
    let at = chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 11, 2, 9, 0, 0).unwrap();
    let old_rollback = r#"{"rolled_back":{"deployment_id":5,"environment":"production","plan_id":3}}"#;
    insert_raw(&db, "monitoring.check", old_rollback, at).await;
    insert_raw(&db, "monitoring.check", r#"{"check_id":9}"#, at).await;
    insert_raw(&db, "monitoring.check", old_rollback, at).await;
    db.execute_unprepared("UPDATE job SET state = 'done' WHERE id = 3")
        .await
        .unwrap();
    db.close().await.unwrap();

    let app = spawn_app_on(database, |_| {}, Vec::new()).await;
    let (_, listed) = app.admin_get("/api/jobs").await;
    let reports = app.run_jobs().await;

    let jobs: Vec<_> = listed["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| (j["id"].as_i64().unwrap(), j["kind"].clone(), j["payload"].clone()))
        .collect();
    assert_eq!(
        jobs,
        [
            (
                3,
                json!("monitoring.check"),
                serde_json::from_str(old_rollback).unwrap()
            ),
            (2, json!("monitoring.check"), json!({"check_id": 9})),
            (
                1,
                json!("monitoring.rolled_back"),
                json!({"plan_id": 3, "deployment_id": 5, "environment": "production"})
            ),
        ],
        "finished rows keep their history"
    );
    let outcomes: Vec<_> = reports.iter().map(|r| (r.id, r.outcome)).collect();
    assert_eq!(outcomes, [(1, "retry"), (2, "done")], "{reports:?}");
    assert!(reports[0].error.as_deref().unwrap().contains("no agent"), "{reports:?}");
    app.allow_jobs(&["monitoring.rolled_back"]);
}
