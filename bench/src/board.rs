//! The live board and the deploy page on a seeded database (issue 16's two benchmark lines):
//!
//! - the board with 1,000 repositories × 5 environments (each cell a live deploy with two older
//!   ones, one cell in ten with a newer failed attempt, a merged PR or a commit title per live SHA,
//!   the drift of every neighbouring pair stored): `GET /api/live` and the HTML board `/`;
//! - the page of a deploy that shipped 250 commits (`/deployments/{id}` as HTML): a complete
//!   `ahead` comparison from the deploy it replaced, its 250 commits with their details, 50 of them
//!   merge commits of pull requests, and the `listed` shipment row that points at it.
//!
//! Rows are written straight into shiplog's schema (through `entity`, so the same code seeds both
//! backends) after the server has migrated the database. Latency is measured from here, against
//! the running release server: it includes the loopback HTTP round trip.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use chrono::{DateTime, TimeZone, Utc};
use sea_orm::{DatabaseConnection, EntityTrait, NotSet, Set};

use crate::report::{Format, Latencies, Line};
use crate::seed::BenchDatabase;
use crate::server::{Server, ADMIN_TOKEN};

pub const REPOSITORIES: u32 = 1_000;
pub const ENVIRONMENTS: [&str; 5] = ["dev", "qa", "staging", "canary", "production"];
pub const SHIPPED_COMMITS: u32 = 250;
const TARGET_BOARD_P99_MS: f64 = 50.0;
const TARGET_DEPLOY_PAGE_P99_MS: f64 = 20.0;
const CHUNK: usize = 300;

/// A full SHA, distinct for each (tag, n).
pub fn sha(tag: u32, n: u32) -> String {
    format!(
        "{tag:08x}{:032x}",
        u128::from(n).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835)
    )
}

pub fn at(minutes_ago: i64) -> DateTime<Utc> {
    let now = Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0).single().unwrap_or_default();
    now - chrono::Duration::minutes(minutes_ago)
}

pub fn deploy(
    connection: i64,
    repository: &str,
    environment: &str,
    sha: String,
    status: &str,
    minutes_ago: i64,
) -> entity::deployment::ActiveModel {
    let when = at(minutes_ago);
    entity::deployment::ActiveModel {
        id: NotSet,
        connection_id: Set(connection),
        repository: Set(repository.to_owned()),
        repository_key: Set(repository.to_lowercase()),
        environment: Set(environment.to_owned()),
        sha: Set(sha),
        git_ref: Set(Some("main".to_owned())),
        source: Set("api".to_owned()),
        github_deployment_id: Set(None),
        external_id: Set(None),
        version: Set(None),
        creator: Set(Some("release-bot".to_owned())),
        description: Set(None),
        log_url: Set(None),
        environment_url: Set(None),
        transient_environment: Set(false),
        production_environment: Set(environment == "production"),
        status: Set(status.to_owned()),
        status_at: Set(when),
        status_github_id: Set(0),
        deploy_time: Set(when),
        completed_at: Set(Some(when)),
        duration_seconds: Set(Some(90)),
        superseded_by_id: Set(None),
        rollback_target_id: Set(None),
        github_run_id: Set(None),
        run_attempt: Set(None),
        backfilled: Set(false),
        recorded_at: Set(when),
        updated_at: Set(when),
    }
}

pub async fn insert_chunks<A, E>(db: &DatabaseConnection, rows: Vec<A>) -> anyhow::Result<()>
where
    A: sea_orm::ActiveModelTrait<Entity = E> + Send,
    E: EntityTrait,
    E::Model: sea_orm::IntoActiveModel<A>,
{
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<A> = rows.by_ref().take(CHUNK).collect();
        E::insert_many(chunk).exec_without_returning(db).await?;
    }
    Ok(())
}

pub async fn connection(db: &DatabaseConnection) -> anyhow::Result<i64> {
    let row = entity::connection::ActiveModel {
        id: NotSet,
        installation_id: Set(77_000_001),
        account_login: Set("bench-org".to_owned()),
        account_type: Set("Organization".to_owned()),
        account_id: Set(Some(9_770_001)),
        repository_selection: Set("all".to_owned()),
        settings: Set("{}".to_owned()),
        suspended_at: Set(None),
        deleted_at: Set(None),
        created_at: Set(at(100_000)),
        updated_at: Set(at(100_000)),
        agent_secret: Set(None),
    };
    Ok(entity::connection::Entity::insert(row).exec(db).await?.last_insert_id)
}

/// The board's rows: 1,000 repositories × 5 environments.
async fn seed_board(db: &DatabaseConnection, connection: i64) -> anyhow::Result<u64> {
    let mut deploys = Vec::new();
    let mut pulls = Vec::new();
    let mut commits = Vec::new();
    let mut drift = Vec::new();
    for r in 0..REPOSITORIES {
        let repository = format!("bench-org/board-{r:04}");
        for (e, environment) in ENVIRONMENTS.iter().enumerate() {
            let cell = r * 10 + e as u32;
            let minutes = i64::from(r % 97) * 3 + (e as i64 + 1) * 120;
            for old in 0..2u32 {
                let old_minutes = minutes + 1440 * i64::from(old + 1);
                deploys.push(deploy(
                    connection,
                    &repository,
                    environment,
                    sha(2, cell * 4 + old),
                    "superseded",
                    old_minutes,
                ));
            }
            let live = sha(1, cell);
            deploys.push(deploy(
                connection,
                &repository,
                environment,
                live.clone(),
                "live",
                minutes,
            ));
            if cell % 10 == 3 {
                deploys.push(deploy(
                    connection,
                    &repository,
                    environment,
                    sha(3, cell),
                    "failed",
                    minutes / 2,
                ));
            }
            commits.push(entity::commit_info::ActiveModel {
                id: NotSet,
                repository_key: Set(repository.clone()),
                sha: Set(live.clone()),
                parent_shas: Set(String::new()),
                title: Set(format!("Commit {cell} of the board benchmark")),
                author_login: Set(Some("alice".to_owned())),
                author_name: Set(None),
                authored_at: Set(Some(at(minutes + 30))),
                reverts_sha: Set(None),
                reverts_pull_request: Set(None),
                recorded_at: Set(at(minutes)),
            });
            if cell.is_multiple_of(2) {
                pulls.push(entity::pull_request::ActiveModel {
                    id: NotSet,
                    connection_id: Set(connection),
                    repository: Set(repository.clone()),
                    repository_key: Set(repository.clone()),
                    number: Set(i64::from(cell)),
                    title: Set(format!("Pull request {cell}: move the checkout to the new provider")),
                    author: Set(Some("bob".to_owned())),
                    merge_commit_sha: Set(live.clone()),
                    merged_at: Set(at(minutes + 60)),
                    created_at: Set(Some(at(minutes + 600))),
                    recorded_at: Set(at(minutes)),
                });
            }
            if e > 0 {
                let left = ENVIRONMENTS[e - 1];
                let state = ["ahead", "in_sync", "ahead", "diverged"][(cell % 4) as usize];
                drift.push(entity::drift::ActiveModel {
                    id: NotSet,
                    connection_id: Set(connection),
                    repository: Set(repository.clone()),
                    repository_key: Set(repository.clone()),
                    from_environment: Set(left.to_owned()),
                    to_environment: Set((*environment).to_owned()),
                    from_deployment_id: Set(None),
                    to_deployment_id: Set(None),
                    from_sha: Set(sha(1, cell - 1)),
                    to_sha: Set(live.clone()),
                    state: Set(state.to_owned()),
                    ahead_by: Set(i64::from(state != "in_sync") * 4),
                    behind_by: Set(i64::from(state == "diverged") * 2),
                    pull_requests: Set(i64::from(state == "ahead") * 3),
                    oldest_merged_at: Set((state == "ahead").then(|| at(minutes + 2880))),
                    note: Set(None),
                    computed_at: Set(at(minutes)),
                });
            }
        }
    }
    let count = deploys.len() as u64;
    insert_chunks(db, deploys).await?;
    insert_chunks(db, commits).await?;
    insert_chunks(db, pulls).await?;
    insert_chunks(db, drift).await?;
    Ok(count)
}

/// A deploy that shipped 250 commits, as the shipped helper leaves it; returns its id.
async fn seed_shipped(db: &DatabaseConnection, connection: i64) -> anyhow::Result<i64> {
    let repository = "bench-org/shipped";
    let commits: Vec<String> = (0..SHIPPED_COMMITS).map(|n| sha(5, n)).collect();
    let base_sha = sha(4, 0);
    let head_sha = commits[commits.len() - 1].clone();
    let base = entity::deployment::Entity::insert(deploy(
        connection,
        repository,
        "production",
        base_sha.clone(),
        "superseded",
        600,
    ))
    .exec(db)
    .await?
    .last_insert_id;
    let head = entity::deployment::Entity::insert(deploy(
        connection,
        repository,
        "production",
        head_sha.clone(),
        "live",
        10,
    ))
    .exec(db)
    .await?
    .last_insert_id;
    let range = entity::compare_range::Entity::insert(entity::compare_range::ActiveModel {
        id: NotSet,
        repository_key: Set(repository.to_owned()),
        base_sha: Set(base_sha.clone()),
        head_sha: Set(head_sha.clone()),
        status: Set(Some("ahead".to_owned())),
        next_url: Set(None),
        listed: Set(i64::from(SHIPPED_COMMITS)),
        ahead_by: Set(Some(i64::from(SHIPPED_COMMITS))),
        behind_by: Set(Some(0)),
        complete: Set(true),
        created_at: Set(at(10)),
        updated_at: Set(at(10)),
    })
    .exec(db)
    .await?
    .last_insert_id;
    let range_commits = commits
        .iter()
        .enumerate()
        .map(|(position, sha)| entity::compare_range_commit::ActiveModel {
            range_id: Set(range),
            position: Set(position as i64),
            sha: Set(sha.clone()),
        })
        .collect();
    insert_chunks(db, range_commits).await?;
    let details = commits
        .iter()
        .enumerate()
        .map(|(n, commit)| entity::commit_info::ActiveModel {
            id: NotSet,
            repository_key: Set(repository.to_owned()),
            sha: Set(commit.clone()),
            parent_shas: Set(if n == 0 {
                base_sha.clone()
            } else {
                commits[n - 1].clone()
            }),
            title: Set(format!("Change {n}: tighten the retry budget of the webhook sender")),
            author_login: Set(Some(["alice", "bob", "carol"][n % 3].to_owned())),
            author_name: Set(None),
            authored_at: Set(Some(at(600 - n as i64))),
            reverts_sha: Set(None),
            reverts_pull_request: Set(None),
            recorded_at: Set(at(10)),
        })
        .collect();
    insert_chunks(db, details).await?;
    let pulls = commits
        .iter()
        .enumerate()
        .filter(|(n, _)| n % 5 == 4)
        .map(|(n, commit)| entity::pull_request::ActiveModel {
            id: NotSet,
            connection_id: Set(connection),
            repository: Set(repository.to_owned()),
            repository_key: Set(repository.to_owned()),
            number: Set(10_000 + n as i64),
            title: Set(format!("Pull request {n}: the webhook sender's retries")),
            author: Set(Some("bob".to_owned())),
            merge_commit_sha: Set(commit.clone()),
            merged_at: Set(at(600 - n as i64)),
            created_at: Set(Some(at(2000))),
            recorded_at: Set(at(10)),
        })
        .collect();
    insert_chunks(db, pulls).await?;
    entity::deploy_shipment::Entity::insert(entity::deploy_shipment::ActiveModel {
        id: NotSet,
        deployment_id: Set(head),
        base_deployment_id: Set(Some(base)),
        base_sha: Set(Some(base_sha)),
        head_sha: Set(head_sha),
        kind: Set("listed".to_owned()),
        status: Set(Some("ahead".to_owned())),
        ahead_by: Set(i64::from(SHIPPED_COMMITS)),
        behind_by: Set(0),
        note: Set(None),
        computed_at: Set(at(10)),
    })
    .exec_without_returning(db)
    .await?;
    Ok(head)
}

/// `count` GETs of `url` after `warmup`, each timed from send to the last byte of the body.
pub async fn latencies(
    client: &reqwest::Client,
    url: &str,
    accept: &str,
    count: usize,
    warmup: usize,
) -> anyhow::Result<(Latencies, usize)> {
    let mut samples = Vec::with_capacity(count);
    let mut bytes = 0;
    for i in 0..count + warmup {
        let sent = Instant::now();
        let response = client
            .get(url)
            .header("accept", accept)
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await?;
        let status = response.status();
        let body = response.bytes().await?;
        let took = sent.elapsed();
        if !status.is_success() {
            bail!("GET {url} answered {status}: {}", String::from_utf8_lossy(&body));
        }
        bytes = body.len();
        if i >= warmup {
            samples.push(took);
        }
    }
    Ok((Latencies::new(samples), bytes))
}

/// Seeds a fresh database, starts the server on it and prints the board and deploy-page lines.
pub async fn run(
    binary: &std::path::Path,
    database: &BenchDatabase,
    log: &std::path::Path,
    requests: usize,
    format: Format,
) -> anyhow::Result<()> {
    let backend = database.backend.as_str();
    // The server migrates the database; the rows go in once it has.
    let server = Server::start(binary, &database.url, log).await?;
    let db = database.connect().await?;
    let started = Instant::now();
    let connection = connection(&db).await.context("the benchmark's connection row")?;
    let deploys = seed_board(&db, connection).await.context("seeding the board")?;
    let shipped = seed_shipped(&db, connection)
        .await
        .context("seeding the shipped deploy")?;
    // Fresh statistics, as autovacuum (PostgreSQL) or `PRAGMA optimize` would leave them.
    sea_orm::ConnectionTrait::execute_unprepared(&db, "ANALYZE").await?;
    Line::new("seed_board")
        .field("backend", backend)
        .field("repositories", REPOSITORIES)
        .field("environments", ENVIRONMENTS.len())
        .field("deploys", deploys)
        .millis("took_ms", started.elapsed())
        .print(format);
    db.close().await?;

    let client = crate::load::client(1)?;
    let (live_json, live_html) = (format!("{}/api/live", server.base_url), format!("{}/", server.base_url));
    let figures = [
        ("board", "api_live", live_json, "application/json", TARGET_BOARD_P99_MS),
        ("board", "html", live_html, "text/html", TARGET_BOARD_P99_MS),
        (
            "deploy_page",
            "html",
            format!("{}/deployments/{shipped}", server.base_url),
            "text/html",
            TARGET_DEPLOY_PAGE_P99_MS,
        ),
    ];
    for (figure, page, url, accept, target) in figures {
        let (samples, bytes) = latencies(&client, &url, accept, requests, 20).await?;
        let p99 = samples.percentile(99.0);
        let mut line = Line::new(figure).field("backend", backend).field("page", page);
        line = if figure == "board" {
            line.field("cells", REPOSITORIES as usize * ENVIRONMENTS.len())
        } else {
            line.field("shipped_commits", SHIPPED_COMMITS)
        };
        line.field("requests", requests)
            .field("bytes", bytes)
            .millis("p50_ms", samples.percentile(50.0))
            .millis("p99_ms", p99)
            .millis("max_ms", samples.max())
            .field("measured", "client-side over loopback HTTP (includes the round trip)")
            .target(
                format!("p99 <= {target} ms"),
                p99 <= Duration::from_secs_f64(target / 1000.0),
            )
            .print(format);
    }
    server.stop().await
}
