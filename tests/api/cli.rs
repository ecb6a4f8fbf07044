//! The `shiplog` binary: configuration errors, admin subcommands on the database, shutdown.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::fake_github::{FakeDeployment, FakeGitHub, APP_ID};
use crate::helpers::{fixture, spawn_app, TestDatabase};

fn shiplog(args: &[&str], envs: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_shiplog"));
    command.args(args);
    for var in [
        "DATABASE_URL",
        "GITHUB_WEBHOOK_SECRET",
        "GITHUB_APP_ID",
        "GITHUB_APP_PRIVATE_KEY",
        "GITHUB_APP_PRIVATE_KEY_PATH",
        "SHIPLOG_ADMIN_TOKEN",
        "SHIPLOG_LISTEN",
        "RUST_LOG",
    ] {
        command.env_remove(var);
    }
    for (key, value) in envs {
        command.env(key, value);
    }
    command
}

async fn run(mut command: Command) -> Output {
    tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

#[tokio::test]
async fn serve_without_a_webhook_secret_stops_with_one_line_naming_the_variable() {
    let database = TestDatabase::create().await;

    let output = run(shiplog(
        &["serve"],
        &[
            ("DATABASE_URL", &database.url),
            ("SHIPLOG_ADMIN_TOKEN", "not-printed-token"),
        ],
    ))
    .await;

    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("GITHUB_WEBHOOK_SECRET"), "{stderr}");
    assert!(!stderr.contains("not-printed-token"));
}

#[tokio::test]
async fn a_bad_private_key_stops_serve_without_printing_the_key() {
    let database = TestDatabase::create().await;
    let key = "-----BEGIN RSA PRIVATE KEY-----\nc2VjcmV0LWtleS1tYXRlcmlhbA==\n-----END RSA PRIVATE KEY-----";

    let output = run(shiplog(
        &["serve", "--listen", "127.0.0.1:0"],
        &[
            ("DATABASE_URL", &database.url),
            ("GITHUB_WEBHOOK_SECRET", "s3cr3t-value"),
            ("GITHUB_APP_ID", "65550"),
            ("GITHUB_APP_PRIVATE_KEY", key),
        ],
    ))
    .await;

    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("GITHUB_APP_PRIVATE_KEY"), "{stderr}");
    assert!(
        !stderr.contains("c2VjcmV0") && !stderr.contains("s3cr3t-value"),
        "{stderr}"
    );
}

#[tokio::test]
async fn connections_list_and_show_read_the_database_directly() {
    let app = spawn_app().await;
    app.deliver("installation", &fixture("installation.created")).await;
    let url = app.database.url.clone();

    let list = run(shiplog(&["connections", "list", "--database-url", &url], &[])).await;
    let show = run(shiplog(&["connections", "show", "1"], &[("DATABASE_URL", &url)])).await;
    let by_installation = run(shiplog(
        &["connections", "show", "--installation", "41000001"],
        &[("DATABASE_URL", &url)],
    ))
    .await;
    let missing = run(shiplog(&["connections", "show", "99"], &[("DATABASE_URL", &url)])).await;

    assert!(list.status.success(), "{}", String::from_utf8_lossy(&list.stderr));
    let table = String::from_utf8(list.stdout).unwrap();
    assert!(
        table.contains("acme-corp") && table.contains("41000001") && table.contains("active"),
        "{table}"
    );
    let shown: serde_json::Value = serde_json::from_slice(&show.stdout).unwrap();
    assert_eq!(shown["account"]["login"], "acme-corp");
    assert_eq!(shown["repositories"].as_array().unwrap().len(), 2);
    let shown_again: serde_json::Value = serde_json::from_slice(&by_installation.stdout).unwrap();
    assert_eq!(shown_again["id"], 1);
    assert!(!missing.status.success());
    assert!(String::from_utf8(missing.stderr)
        .unwrap()
        .contains("no connection with id 99"));
}

#[tokio::test]
async fn migrate_creates_the_default_sqlite_file_in_the_working_directory() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = shiplog(&["migrate"], &[]);
    command.current_dir(dir.path());

    let output = run(command).await;

    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8(output.stdout)
        .unwrap()
        .contains("migrations applied (sqlite)"));
    assert!(dir.path().join("shiplog.db").exists());
}

#[tokio::test]
async fn serve_stops_cleanly_on_sigterm() {
    let database = TestDatabase::create().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let mut child = shiplog(
        &["serve"],
        &[
            ("DATABASE_URL", &database.url),
            ("GITHUB_WEBHOOK_SECRET", "s"),
            ("SHIPLOG_LISTEN", &listen),
        ],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let started = Instant::now();
    loop {
        if let Ok(response) = client.get(format!("http://{listen}/readyz")).send().await {
            assert_eq!(response.status(), 200);
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the server did not become ready"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let output = tokio::task::spawn_blocking(move || {
        let status = child.wait().unwrap();
        let mut stderr = String::new();
        std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
        (status, stderr)
    })
    .await
    .unwrap();

    assert!(killed.success());
    assert!(output.0.success(), "{}", output.1);
    assert!(
        output.1.contains("graceful shutdown") && output.1.contains("shiplog stopped"),
        "{}",
        output.1
    );
}

#[tokio::test]
async fn backfill_imports_the_history_in_the_foreground_with_its_progress_and_a_second_run_imports_nothing() {
    let app = spawn_app().await;
    app.deliver("installation", &fixture("installation.created")).await;
    let github = FakeGitHub::start().await;
    github.add_history_repo("acme-corp/web-app", "main");
    let now = chrono::Utc::now();
    for n in 0..150_i64 {
        let at = now - chrono::Duration::hours(150 - n);
        let sha = format!("{:040x}", n + 1);
        github.add_deployment(
            "acme-corp/web-app",
            FakeDeployment::new(9000 + n, &sha, "production", at).status("success", at + chrono::Duration::minutes(2)),
        );
    }
    let key = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/github/test-app-key.pem");
    let app_id = APP_ID.to_string();
    let envs = [
        ("DATABASE_URL", app.database.url.as_str()),
        ("GITHUB_APP_ID", app_id.as_str()),
        ("GITHUB_APP_PRIVATE_KEY_PATH", key),
        ("GITHUB_API_URL", github.url.as_str()),
    ];

    let first = run(shiplog(&["backfill", "--connection", "1", "--since", "30d"], &envs)).await;
    let second = run(shiplog(&["backfill", "--connection", "1", "--since", "30d"], &envs)).await;
    // The steps the command ran are stale for the server's worker: it finishes them doing nothing.
    app.clock.set(chrono::Utc::now() + chrono::Duration::minutes(1));
    let stale = app.run_jobs().await;
    assert_eq!(stale.len(), 12, "{stale:?} {}", String::from_utf8_lossy(&second.stderr));
    assert_eq!(app.count_rows("deployment").await, 150);

    let stderr = String::from_utf8_lossy(&first.stderr);
    assert!(first.status.success(), "{stderr}");
    assert!(
        stderr.contains("1/1 repositories") && stderr.contains("150 deploys"),
        "{stderr}"
    );
    let done: serde_json::Value = serde_json::from_slice(&first.stdout).unwrap();
    assert_eq!(done["state"], "done");
    assert_eq!(done["progress"]["deploys_imported"], 150);
    // One page of repositories, two of deployments.
    assert_eq!(done["progress"]["github_calls"], 3, "{done}");
    let again: serde_json::Value = serde_json::from_slice(&second.stdout).unwrap();
    assert_eq!(again["progress"]["deploys_imported"], 0, "{again}");
    assert_eq!(app.count_rows("deployment").await, 150);
    let (code, live) = app.admin_get("/deployments?status=live").await;
    assert_eq!(code, 200, "{live}");
    let live = live["deployments"].as_array().unwrap();
    assert_eq!(live.len(), 1, "{live:?}");
    assert_eq!(live[0]["sha"], format!("{:040x}", 150));
    assert_eq!(live[0]["backfilled"], true);
}
