//! Test harness: the real server on port 0 with its own database, and a client that signs
//! deliveries the way GitHub does.
//!
//! The backend comes from `SHIPLOG_TEST_DATABASE`: `sqlite` (default; a temp file per test) or
//! `postgres` (a fresh database per test on `SHIPLOG_TEST_POSTGRES_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`, dropped when the test ends). An unreachable
//! PostgreSQL fails the test; it is never skipped.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use actix_web::dev::ServerHandle;
use chrono::{TimeZone, Utc};
use sea_orm::{ConnectionTrait, Database, Statement};
use serde_json::Value;
use shiplog::clock::ManualClock;
use shiplog::config::{Config, LogFormat, Secret};
use shiplog::github::signature;
use shiplog::jobs::runner::Handlers;
use shiplog::startup::Application;
use shiplog::store::Store;
use tokio::sync::OnceCell;

/// The key for secrets at rest in tests (64 hex digits), so no key file is written.
pub const TEST_SECRET_KEY: &str = "5a1f0c3e9b7d2a4c6e8f0a1b3c5d7e9f1a2b3c4d5e6f708192a3b4c5d6e7f809";
pub const WEBHOOK_SECRET: &str = "test-webhook-secret";
pub const ADMIN_TOKEN: &str = "7c4a8d09ca3762af61e59520943dc26494f8941b0e2f6c1d6c8a5f3e2b7d9a41";
/// The fake agents listen on loopback, which shiplog refuses to call unless allowed.
pub const TEST_OUTBOUND_ALLOW: &str = "127.0.0.0/8,::1";

pub struct TestApp {
    pub runner: shiplog::jobs::runner::Runner,
    pub address: String,
    /// The metrics listener's address (`SHIPLOG_METRICS_LISTEN`), when the config gave one.
    pub metrics_address: Option<String>,
    pub client: reqwest::Client,
    pub store: Store,
    pub clock: Arc<ManualClock>,
    pub database: Arc<TestDatabase>,
    pub handle: ServerHandle,
    /// The server's long-lived tasks (a test stops one to check supervision).
    pub tasks: shiplog::supervise::Tasks,
    /// Job kinds the test means to leave `queued` or `dead` (`*`: any); checked at drop.
    allowed_jobs: std::sync::Mutex<Vec<String>>,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Like [`spawn_app`], with a chance to change the config first.
pub async fn spawn_app_with(customize: impl FnOnce(&mut Config)) -> TestApp {
    spawn_app_watching(customize, Vec::new()).await
}

/// Like [`spawn_app_with`], with watch sources for the ancestry batch.
pub async fn spawn_app_watching(
    customize: impl FnOnce(&mut Config),
    sources: Vec<std::sync::Arc<dyn shiplog::deploys::watch::WatchSource>>,
) -> TestApp {
    let database = Arc::new(TestDatabase::create().await);
    spawn_app_on(database, customize, sources).await
}

/// Like [`spawn_app_with`], with job handlers of the test's own.
pub async fn spawn_app_with_handlers(customize: impl FnOnce(&mut Config), handlers: Handlers) -> TestApp {
    let database = Arc::new(TestDatabase::create().await);
    spawn_app_full(database, customize, Vec::new(), handlers).await
}

/// A server on an existing database: a replica, or the same server after a restart.
pub async fn spawn_app_on(
    database: Arc<TestDatabase>,
    customize: impl FnOnce(&mut Config),
    sources: Vec<std::sync::Arc<dyn shiplog::deploys::watch::WatchSource>>,
) -> TestApp {
    spawn_app_full(database, customize, sources, Handlers::default()).await
}

/// A server on `database` with watch sources and job handlers of the test's own.
pub async fn spawn_app_full(
    database: Arc<TestDatabase>,
    customize: impl FnOnce(&mut Config),
    sources: Vec<std::sync::Arc<dyn shiplog::deploys::watch::WatchSource>>,
    handlers: Handlers,
) -> TestApp {
    init_test_logging();
    let mut config = test_config(&database.url);
    customize(&mut config);
    let clock = Arc::new(ManualClock::new(
        Utc.with_ymd_and_hms(2026, 11, 2, 9, 0, 0).single().unwrap(),
    ));
    let app = Application::build_with_handlers(config, clock.clone(), sources, handlers)
        .await
        .expect("the server starts");
    let runner = app.runner();
    let tasks = app.tasks();
    let address = format!("http://127.0.0.1:{}", app.port());
    let metrics_address = app.metrics_port().map(|port| format!("http://127.0.0.1:{port}"));
    let store = app.store().clone();
    let handle = app.handle();
    tokio::spawn(app.run_until_stopped());
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    TestApp {
        runner,
        address,
        metrics_address,
        client,
        store,
        clock,
        database,
        handle,
        tasks,
        allowed_jobs: Default::default(),
    }
}

pub fn test_config(database_url: &str) -> Config {
    Config {
        database_url: database_url.to_owned(),
        listen: "127.0.0.1:0".to_owned(),
        public_url: "http://localhost:3000".to_owned(),
        webhook_secrets: vec![Secret::new(WEBHOOK_SECRET)],
        github_app: None,
        github_app_slug: "shiplog".to_owned(),
        github_app_stored: false,
        secret_key: shiplog::config::SecretKeyArgs {
            secret_key: Some(TEST_SECRET_KEY.to_owned()),
            secret_key_file: None,
        },
        github_api_url: "http://127.0.0.1:9".to_owned(),
        admin_token: Some(Secret::new(ADMIN_TOKEN)),
        agent: None,
        outbound_allow: shiplog::outbound::AllowList::parse(TEST_OUTBOUND_ALLOW).unwrap(),
        monitor_schedule: vec![std::time::Duration::from_secs(600)],
        monitor_expiry: std::time::Duration::from_secs(14 * 86_400),
        backfill_on_install_days: 0,
        intake_hot_path: true,
        log_format: LogFormat::Text,
        http_workers: Some(1),
        run_jobs: false,
        http_limits: Default::default(),
        metrics: Default::default(),
        trusted_proxies: Vec::new(),
        delivery_recovery_interval: None,
    }
}

fn init_test_logging() {
    if std::env::var_os("TEST_LOG").is_some() {
        shiplog::telemetry::init(LogFormat::Text, "debug");
    }
}

/// A delivery as GitHub would send it; fields are public so tests can spoil one on purpose.
pub struct WebhookRequest {
    pub event: Option<String>,
    pub delivery: Option<String>,
    pub signature: Option<String>,
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

impl WebhookRequest {
    /// A correctly signed delivery with a fresh delivery id.
    pub fn signed(event: &str, body: &Value) -> Self {
        Self::signed_bytes(event, serde_json::to_vec(body).unwrap())
    }

    pub fn signed_bytes(event: &str, body: Vec<u8>) -> Self {
        Self {
            event: Some(event.to_owned()),
            delivery: Some(uuid::Uuid::new_v4().to_string()),
            signature: Some(signature::sign(WEBHOOK_SECRET, &body)),
            content_type: "application/json",
            body,
        }
    }

    pub fn with_delivery(mut self, id: &str) -> Self {
        self.delivery = Some(id.to_owned());
        self
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn send_webhook(&self, request: WebhookRequest) -> reqwest::Response {
        let mut builder = self
            .client
            .post(self.url("/webhooks/github"))
            .header("Content-Type", request.content_type)
            .header("User-Agent", "GitHub-Hookshot/87e258b")
            .header("X-GitHub-Hook-ID", "123456")
            .header("X-GitHub-Hook-Installation-Target-Type", "integration")
            .header("X-GitHub-Hook-Installation-Target-ID", "65550");
        if let Some(event) = &request.event {
            builder = builder.header("X-GitHub-Event", event);
        }
        if let Some(delivery) = &request.delivery {
            builder = builder.header("X-GitHub-Delivery", delivery);
        }
        if let Some(signature) = &request.signature {
            builder = builder.header("X-Hub-Signature-256", signature);
        }
        builder.body(request.body).send().await.expect("the server answers")
    }

    /// Sends a signed delivery and returns the status and JSON answer.
    pub async fn deliver(&self, event: &str, body: &Value) -> (u16, Value) {
        let response = self.send_webhook(WebhookRequest::signed(event, body)).await;
        checked_json(Some("POST"), response).await
    }

    pub async fn admin_get(&self, path: &str) -> (u16, Value) {
        let response = self
            .client
            .get(self.url(path))
            .bearer_auth(ADMIN_TOKEN)
            .header("Accept", "application/json")
            .send()
            .await
            .unwrap();
        checked_json(Some("GET"), response).await
    }

    /// Registers a live deploy through the explicit API (with a fresh credential of connection 1),
    /// a minute after the previous one, and returns its id.
    pub async fn live_deploy(&self, repository: &str, sha: &str, environment: &str) -> i64 {
        let (status, credential) = status_and_json(
            self.client
                .post(self.url("/api/connections/1/credentials"))
                .bearer_auth(ADMIN_TOKEN)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 201, "{credential}");
        self.clock.advance(chrono::Duration::minutes(1));
        let response = self
            .client
            .post(self.url("/deployments"))
            .basic_auth(
                credential["username"].as_str().unwrap(),
                credential["password"].as_str(),
            )
            .json(&serde_json::json!({"repository": repository, "environment": environment, "sha": sha}))
            .send()
            .await
            .unwrap();
        let (status, body) = status_and_json(response).await;
        assert_eq!(status, 201, "{body}");
        body["id"].as_i64().unwrap()
    }

    /// Runs every due job, as a worker would, and says what happened to each.
    pub async fn run_jobs(&self) -> Vec<shiplog::jobs::runner::RunReport> {
        shiplog::jobs::runner::run_until_idle(&self.runner, "test-worker", 200)
            .await
            .unwrap()
    }

    /// Rows in a table, straight from the database.
    pub async fn count_rows(&self, table: &str) -> i64 {
        self.first_row(&format!("SELECT COUNT(*) AS n FROM {table}"))
            .await
            .try_get::<i64>("", "n")
            .unwrap()
    }

    /// The first row `sql` selects, straight from the database; panics when there is none.
    pub async fn first_row(&self, sql: &str) -> sea_orm::QueryResult {
        let backend = self.store.conn().get_database_backend();
        self.store
            .conn()
            .query_one(Statement::from_string(backend, sql.to_owned()))
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("no row: {sql}"))
    }

    pub async fn stored_delivery(&self, id: &str) -> Option<shiplog::store::deliveries::DeliveryRecord> {
        shiplog::store::deliveries::find(self.store.conn(), id).await.unwrap()
    }
}

impl TestApp {
    /// Declares that the test means to leave jobs of these kinds `queued` or `dead`.
    pub fn allow_jobs(&self, kinds: &[&str]) {
        let mut allowed = self.allowed_jobs.lock().unwrap();
        allowed.extend(kinds.iter().map(|k| (*k).to_owned()));
    }

    /// Declares that leaving jobs is the test's point (or beside it), whatever their kinds.
    pub fn expect_jobs_left(&self) {
        self.allow_jobs(&["*"]);
    }

    /// Jobs left `queued` or `dead` that the test did not declare, read on a connection of its
    /// own. `None` when the database cannot be read any more (a test that took it away).
    fn undeclared_jobs(&self) -> Option<Vec<String>> {
        let allowed = self.allowed_jobs.lock().unwrap().clone();
        if allowed.iter().any(|k| k == "*") {
            return Some(Vec::new());
        }
        let url = self.database.url.clone();
        let rows = block_on_a_runtime_of_its_own(async move {
            let db = Database::connect(&url).await.ok()?;
            let rows = db
                .query_all(Statement::from_string(
                    db.get_database_backend(),
                    "SELECT id, kind, state, last_error FROM job WHERE state IN ('queued', 'dead') ORDER BY id"
                        .to_owned(),
                ))
                .await
                .ok();
            let _ = db.close().await;
            rows
        })??;
        Some(
            rows.into_iter()
                .filter_map(|row| {
                    let kind: String = row.try_get("", "kind").ok()?;
                    if allowed.contains(&kind) {
                        return None;
                    }
                    let id: i64 = row.try_get("", "id").ok()?;
                    let state: String = row.try_get("", "state").ok()?;
                    let error: Option<String> = row.try_get("", "last_error").ok()?;
                    let error: String = error.unwrap_or_default().chars().take(100).collect();
                    Some(format!("#{id} {kind} {state} {error:?}"))
                })
                .collect(),
        )
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // Stop accepting requests; the database goes with `TestDatabase`'s own drop.
        drop(self.handle.stop(false));
        if std::thread::panicking() {
            return;
        }
        if let Some(left) = self.undeclared_jobs().filter(|left| !left.is_empty()) {
            panic!(
                "{} jobs left queued or dead, the first: {:?}; run them (app.run_jobs()) or declare \
                 them (app.allow_jobs(&[kind]) / app.expect_jobs_left())",
                left.len(),
                &left[..left.len().min(10)]
            );
        }
    }
}

/// The status and the JSON answer (a string if it is not JSON), checked against the API document
/// for any method of its path (see [`checked_json`]).
pub async fn status_and_json(response: reqwest::Response) -> (u16, Value) {
    checked_json(None, response).await
}

/// The status and the JSON answer; a JSON answer from shiplog must match the schema the API
/// document gives its route, method (any of the path's when `None`) and status, else the test
/// fails naming them and the JSON path.
pub async fn checked_json(method: Option<&str>, response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let url = response.url().clone();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let text = response.text().await.unwrap();
    let json = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    if url.host_str() == Some("127.0.0.1") && !json.is_string() {
        crate::openapi::check_any(method, url.path(), status, &content_type, &json);
    }
    (status, json)
}

/// A checked-in payload from `tests/fixtures/github/`.
pub fn fixture(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/github")
        .join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// Sets `pointer` (JSON pointer) in `value`.
pub fn set(value: &mut Value, pointer: &str, new: Value) {
    *value
        .pointer_mut(pointer)
        .unwrap_or_else(|| panic!("no {pointer} in fixture")) = new;
}

/// The backend the suite runs against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub fn backend() -> Backend {
    match std::env::var("SHIPLOG_TEST_DATABASE").as_deref() {
        Ok("postgres") | Ok("postgresql") => Backend::Postgres,
        Ok("sqlite") | Ok("") | Err(_) => Backend::Sqlite,
        Ok(other) => panic!("SHIPLOG_TEST_DATABASE={other:?}: use sqlite or postgres"),
    }
}

fn postgres_admin_url() -> String {
    std::env::var("SHIPLOG_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// A database of its own for one test.
pub struct TestDatabase {
    pub url: String,
    postgres_name: Option<String>,
    _dir: Option<tempfile::TempDir>,
}

static NEXT_DATABASE: AtomicUsize = AtomicUsize::new(0);
static STALE_DATABASES_DROPPED: OnceCell<()> = OnceCell::const_new();

impl TestDatabase {
    /// A database the test owns some other way (its own PostgreSQL cluster): nothing is dropped.
    pub fn existing(url: String) -> Self {
        Self {
            url,
            postgres_name: None,
            _dir: None,
        }
    }

    pub async fn create() -> Self {
        init_test_logging();
        match backend() {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let url = format!("sqlite://{}?mode=rwc", dir.path().join("shiplog.db").display());
                Self {
                    url,
                    postgres_name: None,
                    _dir: Some(dir),
                }
            }
            Backend::Postgres => {
                let admin = postgres_admin_url();
                let db = Database::connect(&admin).await.unwrap_or_else(|e| {
                    panic!("PostgreSQL is not reachable at {admin} ({e}); start it or run the suite on SQLite")
                });
                STALE_DATABASES_DROPPED.get_or_init(|| drop_stale_databases(&db)).await;
                let name = format!(
                    "shiplog_test_{}_{}_{}",
                    std::process::id(),
                    NEXT_DATABASE.fetch_add(1, Ordering::SeqCst),
                    &uuid::Uuid::new_v4().simple().to_string()[..8]
                );
                db.execute_unprepared(&format!("CREATE DATABASE {name}")).await.unwrap();
                let _ = db.close().await;
                let base = admin.rsplit_once('/').map_or(admin.as_str(), |(base, _)| base);
                Self {
                    url: format!("{base}/{name}"),
                    postgres_name: Some(name),
                    _dir: None,
                }
            }
        }
    }
}

/// Databases left behind by test processes that no longer run.
async fn drop_stale_databases(db: &sea_orm::DatabaseConnection) {
    let rows = db
        .query_all(Statement::from_string(
            db.get_database_backend(),
            "SELECT datname FROM pg_database WHERE datname LIKE 'shiplog_test_%'".to_owned(),
        ))
        .await
        .unwrap();
    for row in rows {
        let name: String = row.try_get("", "datname").unwrap();
        let pid = name.split('_').nth(2).and_then(|p| p.parse::<u32>().ok());
        let alive = pid.is_some_and(|pid| std::path::Path::new(&format!("/proc/{pid}")).exists());
        if !alive {
            let _ = db
                .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .await;
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some(name) = self.postgres_name.take() else { return };
        let admin = postgres_admin_url();
        block_on_a_runtime_of_its_own(async move {
            if let Ok(db) = Database::connect(&admin).await {
                let _ = db
                    .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await;
                let _ = db.close().await;
            }
        });
    }
}

/// Runs `work` on a thread and a runtime of its own: drop runs inside the test's runtime, which
/// may not block. `None` if it panicked.
fn block_on_a_runtime_of_its_own<T: Send + 'static>(
    work: impl std::future::Future<Output = T> + Send + 'static,
) -> Option<T> {
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(work)
    })
    .join()
    .ok()
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `shiplog serve` as its own process (the binary under test), which a test can SIGKILL.
pub struct ServerProcess {
    child: std::process::Child,
    pub url: String,
    pub port: u16,
}

impl ServerProcess {
    pub async fn start(database_url: &str) -> Self {
        Self::start_with(database_url, &[]).await
    }

    /// With extra environment variables (settings), once `/readyz` answers 200.
    pub async fn start_with(database_url: &str, env: &[(&str, &str)]) -> Self {
        use std::time::{Duration, Instant};
        let port = free_port();
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_shiplog"))
            .arg("serve")
            .env("DATABASE_URL", database_url)
            .env("SHIPLOG_LISTEN", format!("127.0.0.1:{port}"))
            .env("GITHUB_WEBHOOK_SECRET", WEBHOOK_SECRET)
            .env("SHIPLOG_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("RUST_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let server = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            port,
        };
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let started = Instant::now();
        loop {
            let ready = client.get(format!("{}/readyz", server.url)).send().await;
            if ready.is_ok_and(|r| r.status() == 200) {
                return server;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the server did not become ready"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn kill_9(&mut self) {
        self.child.kill().unwrap(); // SIGKILL: no shutdown hook, no drain.
        self.child.wait().unwrap();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
