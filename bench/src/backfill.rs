//! The backfill figure: a release server pointed at the fake GitHub imports 10,000 deploys over
//! 20 repositories, started through the admin API as a person would, timed from the request to
//! `done`, with the GitHub calls it took as the fake counted them.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::{json, Value};

use crate::fake_github::{self, FakeGitHub};
use crate::payload;
use crate::report::{self, Format, Line};
use crate::seed::{self, BenchDatabase};
use crate::server::{Server, ADMIN_TOKEN, WEBHOOK_SECRET};

/// The target: about one call per 100 deploys, plus one per page of repositories (and
/// of runs, none here) and the token.
const TARGET_CALLS_PER_100: f64 = 1.2;
/// A backfill that takes longer than this is reported as a failure, not waited for.
const TIME_LIMIT: Duration = Duration::from_secs(900);

pub async fn run(binary: &Path, database: &BenchDatabase, log: &Path, format: Format) -> anyhow::Result<()> {
    let backend = database.backend.as_str();
    let github = FakeGitHub::start()?;
    let key = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/github/test-app-key.pem");
    let env = [
        ("GITHUB_API_URL", github.url.clone()),
        ("GITHUB_APP_ID", "65550".to_owned()),
        ("GITHUB_APP_PRIVATE_KEY_PATH", key.to_owned()),
        ("SHIPLOG_BACKFILL_ON_INSTALL_DAYS", "0".to_owned()),
    ];
    let server = Server::start_with(binary, &database.url, log, &env).await?;
    let result = measure(&server, &github, database).await;
    server.stop().await?;
    github.stop().await;
    let measured = result?;

    let deploys = fake_github::REPOSITORIES * fake_github::DEPLOYMENTS_PER_REPOSITORY;
    let calls = github.calls.total();
    let per_100 = calls as f64 * 100.0 / deploys as f64;
    Line::new("backfill")
        .field("backend", backend)
        .field("deploys", deploys)
        .field("repositories", fake_github::REPOSITORIES)
        .field("wall_s", report::round2(measured.wall.as_secs_f64()))
        .field("queued_s", report::round2(measured.first_step.as_secs_f64()))
        .field(
            "per_second",
            (deploys as f64 / measured.wall.as_secs_f64().max(f64::EPSILON)).round(),
        )
        .field("github_calls", calls)
        .field("calls_per_100_deploys", report::round2(per_100))
        .field(
            "graphql_calls",
            github.calls.graphql.load(std::sync::atomic::Ordering::Relaxed),
        )
        .field("server_counted_calls", measured.server_calls)
        .field("imported", measured.imported)
        .field("stored", measured.stored)
        .field("state", measured.state.as_str())
        .target(
            format!("about 1 call per 100 deploys (<= {TARGET_CALLS_PER_100})"),
            per_100 <= TARGET_CALLS_PER_100 && measured.state == "done" && measured.stored == deploys as i64,
        )
        .print(format);
    Ok(())
}

struct Measured {
    wall: Duration,
    /// From the request to the backfill's first step (it leaving `queued`).
    first_step: Duration,
    state: String,
    imported: i64,
    server_calls: i64,
    /// Deploys in the database afterwards.
    stored: i64,
}

async fn measure(server: &Server, github: &FakeGitHub, database: &BenchDatabase) -> anyhow::Result<Measured> {
    let client = crate::load::client(1)?;
    let connection = install(&client, &server.base_url).await?;
    // Only the backfill's calls are counted (the installation itself calls nothing, but be sure).
    let before = github.calls.total();
    if before != 0 {
        bail!("the server called the fake GitHub {before} times before the backfill");
    }

    let started = Instant::now();
    let answer = client
        .post(format!("{}/api/connections/{connection}/backfill", server.base_url))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"since": "90d"}))
        .send()
        .await?;
    let status = answer.status();
    let body: Value = answer.json().await.unwrap_or_default();
    let Some(backfill) = body["id"].as_i64().filter(|_| status.as_u16() == 202) else {
        bail!("POST /api/connections/{connection}/backfill answered {status}: {body}");
    };
    let url = format!("{}/api/backfills/{backfill}", server.base_url);
    let mut first_step = None;
    let view = loop {
        let view: Value = client
            .get(&url)
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        if first_step.is_none() && view["state"].as_str() != Some("queued") {
            first_step = Some(started.elapsed());
        }
        if matches!(view["state"].as_str(), Some("done" | "failed")) {
            break view;
        }
        if started.elapsed() > TIME_LIMIT {
            bail!("backfill {backfill} did not finish within {TIME_LIMIT:?}: {view}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let wall = started.elapsed();
    let db = database.connect().await?;
    let stored = seed::count(&db, "deployment").await?;
    db.close().await?;
    let state = view["state"].as_str().unwrap_or_default().to_owned();
    if state != "done" {
        bail!("backfill {backfill} ended {state}: {}", view["note"]);
    }
    Ok(Measured {
        wall,
        first_step: first_step.unwrap_or(wall),
        state,
        imported: view["progress"]["deploys_imported"].as_i64().unwrap_or(-1),
        server_calls: view["progress"]["github_calls"].as_i64().unwrap_or(-1),
        stored,
    })
}

/// Sends a signed `installation` `created` delivery for the fake's installation and returns the
/// id of the connection it made.
async fn install(client: &reqwest::Client, base_url: &str) -> anyhow::Result<i64> {
    let repositories: Vec<Value> = (0..fake_github::REPOSITORIES)
        .map(|r| {
            let repository = fake_github::repository(r);
            json!({"id": repository["id"], "node_id": repository["node_id"], "name": repository["name"],
                "full_name": repository["full_name"], "private": true})
        })
        .collect();
    let body = json!({
        "action": "created",
        "installation": {
            "id": fake_github::INSTALLATION_ID,
            "account": {"login": fake_github::OWNER, "id": 91_000_002, "type": "Organization"},
            "repository_selection": "all",
            "app_id": 65550,
            "target_type": "Organization",
            "permissions": {"deployments": "read", "metadata": "read", "actions": "read"},
            "events": ["deployment", "deployment_status", "workflow_run"],
            "suspended_at": null
        },
        "repositories": repositories,
        "sender": {"login": "octocat", "id": 5_100_002, "type": "User"}
    });
    let body = serde_json::to_vec(&body)?;
    let answer = client
        .post(format!("{base_url}/webhooks/github"))
        .header("content-type", "application/json")
        .header("user-agent", "GitHub-Hookshot/bench")
        .header("x-github-event", "installation")
        .header("x-github-delivery", "b4c4f111-0000-4000-8000-000000000001")
        .header("x-hub-signature-256", payload::sign(WEBHOOK_SECRET.as_bytes(), &body))
        .body(body)
        .send()
        .await?;
    let status = answer.status();
    if !status.is_success() {
        bail!("the installation delivery answered {status}: {}", answer.text().await?);
    }
    let list: Value = client
        .get(format!("{base_url}/api/connections"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    list["connections"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["installation_id"].as_i64() == Some(fake_github::INSTALLATION_ID))
        .and_then(|c| c["id"].as_i64())
        .context("the installation delivery made no connection")
}
