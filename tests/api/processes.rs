//! Two real `shiplog serve` processes on one database share the job queue: every job runs once.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::fake_agent::{FakeAgent, AGENT_SECRET};
use crate::fake_github::{private_key_pem, FakeGitHub, APP_ID};
use crate::git::GitRepo;
use crate::helpers::{fixture, status_and_json, TestDatabase, ADMIN_TOKEN, WEBHOOK_SECRET};

const REPO: &str = "acme-corp/web-app";

struct Server {
    child: Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

async fn serve(database: &str, github: &str, agent: &str) -> Server {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(env!("CARGO_BIN_EXE_shiplog"))
        .arg("serve")
        .env("DATABASE_URL", database)
        .env("SHIPLOG_LISTEN", format!("127.0.0.1:{port}"))
        .env("GITHUB_WEBHOOK_SECRET", WEBHOOK_SECRET)
        .env("SHIPLOG_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("GITHUB_APP_ID", APP_ID.to_string())
        .env("GITHUB_APP_PRIVATE_KEY", private_key_pem())
        .env("GITHUB_API_URL", github)
        .env("SHIPLOG_AGENT_URL", agent)
        .env("SHIPLOG_AGENT_SECRET", AGENT_SECRET)
        // The fake agent listens on loopback.
        .env("SHIPLOG_OUTBOUND_ALLOW", crate::helpers::TEST_OUTBOUND_ALLOW)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let server = Server {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let started = Instant::now();
    while client
        .get(format!("{}/readyz", server.url))
        .send()
        .await
        .map(|r| r.status() != 200)
        .unwrap_or(true)
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "a server did not become ready"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server
}

#[tokio::test]
async fn two_server_processes_on_one_database_run_every_job_exactly_once() {
    let repo = GitRepo::new();
    let sha = repo.commit("feature");
    let fake = FakeGitHub::start().await;
    fake.add_repo(REPO, &repo);
    let agent = FakeAgent::start().await;
    let database = TestDatabase::create().await;
    let (a, b) = tokio::join!(
        serve(&database.url, &fake.url, &agent.url),
        serve(&database.url, &fake.url, &agent.url)
    );
    let client = reqwest::Client::builder().no_proxy().build().unwrap();

    let installation = serde_json::to_vec(&fixture("installation.created")).unwrap();
    let delivered = client
        .post(format!("{}/webhooks/github", a.url))
        .header("X-GitHub-Event", "installation")
        .header("X-GitHub-Delivery", "two-processes-1")
        .header(
            "X-Hub-Signature-256",
            shiplog::github::signature::sign(WEBHOOK_SECRET, &installation),
        )
        .body(installation)
        .send()
        .await
        .unwrap();
    assert_eq!(delivered.status(), 200);
    for n in 0..16 {
        let server = if n % 2 == 0 { &a } else { &b };
        let response = client
            .post(format!("{}/api/triggers", server.url))
            .bearer_auth(ADMIN_TOKEN)
            .json(&json!({"repository": REPO, "environment": "production", "sha": sha, "delay_seconds": 2, "message": format!("t{n}")}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
    }
    let (_, credential) = status_and_json(
        client
            .post(format!("{}/api/connections/1/credentials", b.url))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap(),
    )
    .await;
    let deployed = client
        .post(format!("{}/deployments", b.url))
        .basic_auth(
            credential["username"].as_str().unwrap(),
            credential["password"].as_str(),
        )
        .json(&json!({"repository": REPO, "environment": "production", "sha": sha}))
        .send()
        .await
        .unwrap();
    assert_eq!(deployed.status(), 201);

    let started = Instant::now();
    while agent.received().len() < 16 {
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "only {} of 16 fired",
            agent.received().len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Give a double run the time it would need to show up.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let received = agent.received();
    let mut messages: Vec<String> = received
        .iter()
        .map(|r| r.body["message"].as_str().unwrap().to_owned())
        .collect();
    messages.sort();
    messages.dedup();
    assert_eq!(received.len(), 16, "every fire exactly once");
    assert_eq!(messages.len(), 16);
    let (_, jobs) = status_and_json(
        client
            .get(format!("{}/api/jobs?state=done&limit=100", a.url))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap(),
    )
    .await;
    // The new installation's own backfill (SHIPLOG_BACKFILL_ON_INSTALL_DAYS) runs beside them,
    // and so does the catch-up on missed deliveries.
    let done = jobs["jobs"].as_array().unwrap();
    let fired: Vec<&serde_json::Value> = done
        .iter()
        .filter(|job| job["kind"] != "backfill.step" && job["kind"] != "deliveries.recover")
        .collect();
    assert_eq!(fired.len(), 17, "the went-live job and sixteen fires, each done once");
    // Each start asks for a pass now, and one pass is pending at a time: one pass when the
    // second process started before the first pass ran, two when it started after (it moved
    // the next pass, queued ten minutes out, to now). Never one per process per start and more.
    let passes = done.iter().filter(|job| job["kind"] == "deliveries.recover").count();
    assert!((1..=2).contains(&passes), "{passes} catch-up passes for two starts");
}
