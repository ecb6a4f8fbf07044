//! Faults: the server process killed with SIGKILL under load, and PostgreSQL stopped mid-run.
//!
//! The rule in both: a delivery answered 2xx is stored, a delivery answered otherwise left
//! nothing behind, and GitHub redelivering everything creates no duplicate row.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use serde_json::json;
use shiplog::github::signature;

use crate::helpers::{
    fixture, free_port, set, spawn_app_on, status_and_json, ServerProcess, TestDatabase, WEBHOOK_SECRET,
};

/// Deliveries for `deploys` deploys: each a `deployment` event and a `success` status, with ids
/// stable across calls so the same list can be delivered again.
fn deploy_deliveries(deploys: u64) -> Vec<(String, &'static str, Vec<u8>)> {
    let mut out = Vec::new();
    for k in 0..deploys {
        let mut deployment = fixture("deployment.created");
        set(&mut deployment, "/deployment/id", json!(1_900_000_000 + k));
        set(
            &mut deployment,
            "/deployment/sha",
            json!(format!("{:040x}", 0xabc0_0000 + k)),
        );
        let mut status = fixture("deployment_status.created");
        set(&mut status, "/deployment_status/id", json!(2_900_000_000 + k));
        set(&mut status, "/deployment/id", json!(1_900_000_000 + k));
        set(
            &mut status,
            "/deployment/sha",
            json!(format!("{:040x}", 0xabc0_0000 + k)),
        );
        out.push((
            format!("{:08}-0000-4000-8000-00000000d{:03}", k, 0),
            "deployment",
            serde_json::to_vec(&deployment).unwrap(),
        ));
        out.push((
            format!("{:08}-0000-4000-8000-00000000s{:03}", k, 0),
            "deployment_status",
            serde_json::to_vec(&status).unwrap(),
        ));
    }
    out
}

async fn send(
    client: &reqwest::Client,
    base: &str,
    (id, event, body): &(String, &'static str, Vec<u8>),
) -> Result<u16, String> {
    client
        .post(format!("{base}/webhooks/github"))
        .header("content-type", "application/json")
        .header("x-github-event", *event)
        .header("x-github-delivery", id.as_str())
        .header("x-hub-signature-256", signature::sign(WEBHOOK_SECRET, body))
        .body(body.clone())
        .timeout(Duration::from_secs(20))
        .send()
        .await
        .map(|r| r.status().as_u16())
        .map_err(|e| e.to_string())
}

/// Sends every delivery over `concurrency` connections; returns each delivery's answer.
async fn deliver_all(
    base: &str,
    deliveries: &Arc<Vec<(String, &'static str, Vec<u8>)>>,
    concurrency: usize,
) -> HashMap<String, Result<u16, String>> {
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let answers = Arc::new(Mutex::new(HashMap::new()));
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (client, base, next, answers, deliveries) = (
            client.clone(),
            base.to_owned(),
            next.clone(),
            answers.clone(),
            deliveries.clone(),
        );
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let Some(delivery) = deliveries.get(i) else { break };
                let answer = send(&client, &base, delivery).await;
                answers.lock().unwrap().insert(delivery.0.clone(), answer);
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    Arc::try_unwrap(answers).unwrap().into_inner().unwrap()
}

/// Delivery ids stored, and how many rows of each kind there are.
struct Stored {
    deliveries: BTreeSet<String>,
    processing: i64,
    deployments: i64,
    statuses: i64,
    went_live_jobs: i64,
    /// Went-live jobs beyond one per deploy.
    repeated_jobs: i64,
    /// Deploys whose success status is not applied (every generated deploy reports success).
    unsettled_deploys: i64,
}

async fn stored(db: &DatabaseConnection) -> Stored {
    let backend = db.get_database_backend();
    let query = |sql: &str| Statement::from_string(backend, sql.to_owned());
    let deliveries = db
        .query_all(query("SELECT delivery_id FROM webhook_delivery"))
        .await
        .unwrap()
        .into_iter()
        .map(|row| row.try_get::<String>("", "delivery_id").unwrap())
        .collect();
    let count = |sql: &'static str| async move {
        db.query_one(query(sql))
            .await
            .unwrap()
            .unwrap()
            .try_get::<i64>("", "n")
            .unwrap()
    };
    let out = Stored {
        deliveries,
        processing: count("SELECT COUNT(*) AS n FROM webhook_delivery WHERE outcome = 'processing'").await,
        deployments: count("SELECT COUNT(*) AS n FROM deployment").await,
        statuses: count("SELECT COUNT(*) AS n FROM deployment_status WHERE github_status_id IS NOT NULL").await,
        went_live_jobs: count("SELECT COUNT(*) AS n FROM job WHERE kind = 'deploy.went_live'").await,
        repeated_jobs: count(
            "SELECT COUNT(*) - COUNT(DISTINCT dedupe_key) AS n FROM job WHERE kind = 'deploy.went_live'",
        )
        .await,
        unsettled_deploys: count("SELECT COUNT(*) AS n FROM deployment WHERE status NOT IN ('live', 'superseded')")
            .await,
    };
    out
}

/// After a fault and a full redelivery: every delivery is stored once, with everything it wrote.
async fn assert_whole(db: &DatabaseConnection, deploys: u64, acknowledged: &BTreeSet<String>) {
    let after = stored(db).await;
    assert!(
        acknowledged.is_subset(&after.deliveries),
        "answered 2xx but not stored: {:?}",
        acknowledged.difference(&after.deliveries).collect::<Vec<_>>()
    );
    assert_eq!(after.deliveries.len() as u64, deploys * 2, "one row per delivery id");
    assert_eq!(after.processing, 0, "no delivery is left half-applied");
    assert_eq!(
        after.deployments as u64, deploys,
        "one deploy row per GitHub deployment"
    );
    assert_eq!(after.statuses as u64, deploys, "one history row per GitHub status");
    assert_eq!(after.unsettled_deploys, 0, "every success status is applied");
    // A success that arrives after a later deploy's is `superseded` and queues nothing.
    assert!(after.went_live_jobs >= 1);
    assert_eq!(after.repeated_jobs, 0, "at most one went-live job per deploy");
}

#[tokio::test]
async fn a_server_killed_under_load_lost_no_acknowledged_delivery_and_redelivery_adds_no_duplicate() {
    const DEPLOYS: u64 = 300;
    let database = TestDatabase::create().await;
    let deliveries = Arc::new(deploy_deliveries(DEPLOYS));
    let mut server = ServerProcess::start(&database.url).await;
    let db = sea_orm::Database::connect(&database.url).await.unwrap();

    // SIGKILL once a third of the deliveries are stored, with 16 in flight.
    let load = {
        let (url, deliveries) = (server.url.clone(), deliveries.clone());
        tokio::spawn(async move { deliver_all(&url, &deliveries, 16).await })
    };
    let started = Instant::now();
    while (stored(&db).await.deliveries.len() as u64) < DEPLOYS * 2 / 3 {
        assert!(started.elapsed() < Duration::from_secs(60), "the load made no progress");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    server.kill_9();
    let answers = load.await.unwrap();
    let acknowledged = acknowledged(&answers);
    assert!(
        answers.values().any(Result::is_err),
        "the kill came after the load ended: nothing was tested"
    );

    // After a restart every acknowledged delivery is there; then GitHub redelivers everything.
    let server = ServerProcess::start(&database.url).await;
    let before = stored(&db).await;
    assert!(
        acknowledged.is_subset(&before.deliveries),
        "an acknowledged delivery was lost"
    );
    assert_eq!(before.processing, 0, "a delivery was left half-applied");
    let again = deliver_all(&server.url, &deliveries, 16).await;
    assert_all_ok(&again);
    assert_whole(&db, DEPLOYS, &acknowledged).await;
}

#[tokio::test]
async fn postgres_stopped_mid_run_answers_503_leaves_nothing_half_written_and_recovers_by_itself() {
    const DEPLOYS: u64 = 40;
    let postgres = Arc::new(PrivatePostgres::start());
    let database = Arc::new(TestDatabase::existing(postgres.url()));
    let app = spawn_app_on(database, |_| {}, Vec::new()).await;
    let deliveries = deploy_deliveries(DEPLOYS);
    let part = |range: std::ops::Range<usize>| Arc::new(deliveries[range].to_vec());

    let first = deliver_all(&app.address, &part(0..30), 8).await;
    assert_all_ok(&first);

    // Stop the database while deliveries are in flight, then send more while it is down.
    let mid_run = {
        let (url, batch) = (app.address.clone(), part(30..70));
        tokio::spawn(async move { deliver_all(&url, &batch, 8).await })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    let pg = postgres.clone();
    tokio::task::spawn_blocking(move || pg.ctl("stop")).await.unwrap();
    let mid_run = mid_run.await.unwrap();
    let while_down = deliver_all(&app.address, &part(70..80), 8).await;
    for (id, answer) in mid_run.iter().chain(&while_down) {
        assert!(
            matches!(answer, Ok(200 | 503)),
            "{id} was answered {answer:?}: only 200 or 503 (GitHub redelivers) are right"
        );
    }
    assert!(while_down.values().all(|a| a == &Ok(503)), "{while_down:?}");
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let delivery = &deliveries[70];
    let response = client
        .post(format!("{}/webhooks/github", app.address))
        .header("content-type", "application/json")
        .header("x-github-event", delivery.1)
        .header("x-github-delivery", delivery.0.as_str())
        .header("x-hub-signature-256", signature::sign(WEBHOOK_SECRET, &delivery.2))
        .body(delivery.2.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"));
    let (_, problem) = status_and_json(response).await;
    assert_eq!(problem["status"], 503, "{problem}");
    let ready = client.get(format!("{}/readyz", app.address)).send().await.unwrap();
    assert_eq!(ready.status(), 503, "not ready while the database is down");

    // The database comes back; the same server recovers without a restart.
    let pg = postgres.clone();
    tokio::task::spawn_blocking(move || pg.ctl("start")).await.unwrap();
    let started = Instant::now();
    while send(&client, &app.address, delivery).await != Ok(200) {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no recovery within 30 seconds"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let acknowledged: BTreeSet<String> = acknowledged(&first).into_iter().chain(acknowledged(&mid_run)).collect();
    let again = deliver_all(&app.address, &Arc::new(deliveries.clone()), 8).await;
    assert_all_ok(&again);
    let db = sea_orm::Database::connect(postgres.url()).await.unwrap();
    assert_whole(&db, DEPLOYS, &acknowledged).await;
    // The deliveries are the point; whatever they queued stays.
    app.expect_jobs_left();
}

fn acknowledged(answers: &HashMap<String, Result<u16, String>>) -> BTreeSet<String> {
    answers
        .iter()
        .filter(|(_, answer)| matches!(answer, Ok(status) if (200..300).contains(status)))
        .map(|(id, _)| id.clone())
        .collect()
}

fn assert_all_ok(answers: &HashMap<String, Result<u16, String>>) {
    let failed: Vec<_> = answers.iter().filter(|(_, a)| *a != &Ok(200)).collect();
    assert!(failed.is_empty(), "not answered 200: {failed:?}");
}

/// A PostgreSQL cluster of the test's own, so stopping it disturbs no other test.
struct PrivatePostgres {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
}

impl PrivatePostgres {
    fn start() -> Self {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL's server binaries under /usr/lib/postgresql")
            .filter_map(Result::ok)
            .map(|entry| entry.path().join("bin"))
            .find(|bin| bin.join("initdb").exists())
            .expect("initdb under /usr/lib/postgresql/*/bin");
        let dir = tempfile::Builder::new().prefix("shiplog-pg-").tempdir().unwrap().keep();
        let port = free_port();
        let pg = Self { dir, bin, port };
        if is_root() {
            // initdb refuses to run as root: the cluster belongs to the postgres user.
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&pg.dir)
                .status()
                .unwrap();
            assert!(status.success());
        }
        pg.run("initdb", &["-A", "trust", "-U", "postgres", "--no-sync", "-D"], true);
        pg.ctl("start");
        pg
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn ctl(&self, action: &str) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.display()
        );
        let data = self.dir.join("data");
        let log = self.dir.join("server.log");
        let args = [
            action,
            "-w",
            "-m",
            "fast",
            "-D",
            data.to_str().unwrap(),
            "-l",
            log.to_str().unwrap(),
            "-o",
            &options,
        ];
        self.run("pg_ctl", &args, false);
    }

    fn run(&self, program: &str, args: &[&str], data_dir_last: bool) {
        let program = self.bin.join(program);
        let data = self.dir.join("data");
        let mut command = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&program);
            c
        } else {
            Command::new(&program)
        };
        command.args(args);
        if data_dir_last {
            command.arg(&data);
        }
        let output = command.output().unwrap();
        assert!(
            output.status.success(),
            "{} failed: {}{}",
            program.display(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        let _ = Command::new(if is_root() { "runuser" } else { "true" })
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join("pg_ctl"))
            .args(["stop", "-m", "immediate", "-D"])
            .arg(&data)
            .output();
        if !is_root() {
            let _ = Command::new(self.bin.join("pg_ctl"))
                .args(["stop", "-m", "immediate", "-D"])
                .arg(&data)
                .output();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}
