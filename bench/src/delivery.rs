//! The delivery metrics of a year (issue 17's benchmark line): one repository with 10,000 deploys
//! over the last year in staging and production (most of them production; live, superseded,
//! rolled back, a few failed, the oldest backfilled), the shipment row of each deploy that went
//! live (`first` for the first one seen in an environment, `listed` for most), 20,000 pull
//! requests' lead times with realistic stages, about 300 interventions (rolled back, reverted,
//! regressed; most recovered) and about 400 unplanned deploys; and a second repository of the
//! same shape, a fifth of the size, as noise the report must leave out.
//!
//! Then `GET /api/metrics/delivery` for the year of the first repository, by week and by day,
//! timed from here against the running release server (the loopback round trip included). The
//! server's CPU time per request (and PostgreSQL's) is printed beside it: it holds still when
//! other work shares the machine, where wall-clock latency does not.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, NotSet, QueryFilter, QuerySelect, Set};

use crate::board::{at, connection, deploy, insert_chunks, latencies, sha};
use crate::report::{Format, Line};
use crate::seed::BenchDatabase;
use crate::server::{self, Server};

pub const DEPLOYS: u32 = 10_000;
pub const LEAD_TIMES: u32 = 20_000;
const REPOSITORY: &str = "bench-org/delivery";
const NOISE: &str = "bench-org/delivery-noise";
/// The year asked: 366 days up to tomorrow (the seeded "now" is 2026-12-01 12:00 UTC), so the
/// daily line has 366 buckets and the weekly one 53.
const FROM: &str = "2025-12-01";
const TO: &str = "2026-12-02";
const TARGET_P99_MS: f64 = 100.0;
/// Minutes of the year the deploys are spread over.
const YEAR_MINUTES: i64 = 365 * 1440 - 120;

/// What was seeded for one repository.
#[derive(Default)]
struct Seeded {
    deploys: usize,
    lead_times: usize,
    interventions: usize,
    rework: usize,
}

/// A deploy as planned, before it has an id.
struct Planned {
    sha: String,
    environment: &'static str,
    status: &'static str,
    minutes_ago: i64,
    backfilled: bool,
    /// Why it needed intervention (production deploys only).
    reasons: Vec<&'static str>,
}

fn minutes(n: i64) -> chrono::Duration {
    chrono::Duration::minutes(n)
}

/// Seeds one repository: `deploys` deploys over the last year, `lead_times` pull requests.
async fn seed_repository(
    db: &DatabaseConnection,
    connection: i64,
    repository: &str,
    tag: u32,
    deploys: u32,
    lead_times: u32,
) -> anyhow::Result<Seeded> {
    let spacing = YEAR_MINUTES / i64::from(deploys);
    let mut planned = Vec::with_capacity(deploys as usize);
    let mut production = 0u32;
    for n in 0..deploys {
        let environment = if n % 4 == 1 { "staging" } else { "production" };
        let failed = n % 53 == 11;
        // The oldest twentieth came from a backfill (history before the App was installed).
        let backfilled = n < deploys / 20 && !failed;
        let mut reasons = Vec::new();
        if environment == "production" && !failed && !backfilled {
            if production % 25 == 3 {
                reasons.push(["rolled_back", "reverted", "regressed"][(production / 25 % 3) as usize]);
                if production % 100 == 28 && reasons[0] != "regressed" {
                    reasons.push("regressed");
                }
            }
            production += 1;
        }
        planned.push(Planned {
            sha: sha(tag, n),
            environment,
            status: if failed {
                "failed"
            } else if reasons.first() == Some(&"rolled_back") {
                "rolled_back"
            } else {
                "superseded"
            },
            minutes_ago: 60 + i64::from(deploys - 1 - n) * spacing,
            backfilled,
            reasons,
        });
    }
    // The newest deploy of each environment that went live is the live one.
    for environment in ["staging", "production"] {
        if let Some(newest) = planned
            .iter_mut()
            .rev()
            .find(|p| p.environment == environment && p.status != "failed")
        {
            newest.status = "live";
            newest.reasons.clear();
        }
    }
    let rows = planned
        .iter()
        .map(|p| {
            let mut row = deploy(
                connection,
                repository,
                p.environment,
                p.sha.clone(),
                p.status,
                p.minutes_ago,
            );
            row.deploy_time = Set(at(p.minutes_ago) - minutes(4));
            row.backfilled = Set(p.backfilled);
            row
        })
        .collect();
    insert_chunks(db, rows).await?;
    let ids: HashMap<String, i64> = entity::deployment::Entity::find()
        .select_only()
        .column(entity::deployment::Column::Sha)
        .column(entity::deployment::Column::Id)
        .filter(entity::deployment::Column::RepositoryKey.eq(repository))
        .into_tuple::<(String, i64)>()
        .all(db)
        .await?
        .into_iter()
        .collect();
    let id = |p: &Planned| ids.get(&p.sha).copied().context("a seeded deploy has no id");

    // Shipments, and the deploys whose pull requests get lead times.
    let mut shipments = Vec::new();
    let mut listed_production = Vec::new();
    let mut previous: HashMap<&str, (i64, String)> = HashMap::new();
    let mut next_live: HashMap<usize, usize> = HashMap::new();
    let mut last_index: HashMap<&str, usize> = HashMap::new();
    for (n, p) in planned.iter().enumerate() {
        if p.status == "failed" {
            continue;
        }
        if let Some(before) = last_index.insert(p.environment, n) {
            next_live.insert(before, n);
        }
        let this = id(p)?;
        let base = previous.insert(p.environment, (this, p.sha.clone()));
        if p.backfilled {
            continue;
        }
        let kind = match &base {
            None => "first",
            Some(_) if n % 97 == 40 => "unread",
            Some(_) => "listed",
        };
        if kind == "listed" && p.environment == "production" {
            listed_production.push(n);
        }
        let when = at(p.minutes_ago);
        shipments.push(entity::deploy_shipment::ActiveModel {
            id: NotSet,
            deployment_id: Set(this),
            base_deployment_id: Set(base.as_ref().map(|(id, _)| *id)),
            base_sha: Set(base.map(|(_, sha)| sha)),
            head_sha: Set(p.sha.clone()),
            kind: Set(kind.to_owned()),
            status: Set((kind == "listed").then(|| "ahead".to_owned())),
            ahead_by: Set(if kind == "listed" { 3 } else { 0 }),
            behind_by: Set(0),
            note: Set(None),
            computed_at: Set(when + minutes(1)),
        });
    }
    let mut seeded = Seeded {
        deploys: planned.len(),
        ..Seeded::default()
    };
    insert_chunks(db, shipments).await?;

    // Lead times: the pull requests spread over the listed production deploys, in order.
    let mut leads = Vec::with_capacity(lead_times as usize);
    for k in 0..lead_times {
        let p = &planned[listed_production[k as usize * listed_production.len() / lead_times as usize]];
        let k64 = i64::from(k);
        let live = at(p.minutes_ago);
        let started = live - minutes(4);
        let merged = started - minutes(30 + k64 * 37 % 2880);
        let opened = (k % 23 != 0).then(|| merged - minutes(60 + k64 * 53 % 7200));
        let first_commit = if k % 31 == 0 {
            None
        } else if k % 7 == 0 {
            // A squash merge: its one commit is dated at the merge.
            Some(merged)
        } else {
            Some(opened.unwrap_or(merged) - minutes(k64 * 17 % 4320))
        };
        leads.push(entity::lead_time::ActiveModel {
            id: NotSet,
            connection_id: Set(connection),
            repository: Set(repository.to_owned()),
            repository_key: Set(repository.to_owned()),
            environment: Set(p.environment.to_owned()),
            pull_number: Set(1 + k64),
            title: Set(format!(
                "Pull request {k}: retry the webhook sender with a smaller budget"
            )),
            author: Set(Some(["alice", "bob", "carol", "dave"][k as usize % 4].to_owned())),
            merge_commit_sha: Set(sha(tag + 1, k)),
            first_commit_at: Set(first_commit),
            opened_at: Set(opened),
            merged_at: Set(merged),
            deployment_id: Set(id(p)?),
            deploy_started_at: Set(started),
            live_at: Set(live),
            live_epoch: Set(live.timestamp()),
            // The report's start rule (README "Delivery metrics"): the first commit unless the
            // opening is earlier or the commits are unknown, else the merge.
            lead_seconds: Set({
                let start = match (first_commit, opened) {
                    (Some(first), Some(open)) if first <= open => first,
                    (Some(first), None) => first,
                    (_, Some(open)) => open,
                    (None, None) => merged,
                };
                (live - start).num_seconds().max(0)
            }),
            recorded_at: Set(live + minutes(1)),
        });
    }
    seeded.lead_times = leads.len();
    insert_chunks(db, leads).await?;

    // Interventions and rework.
    let mut interventions = Vec::new();
    let mut rework = Vec::new();
    let mut reworked: HashSet<(i64, &str)> = HashSet::new();
    let mut push_rework = |deployment: i64, p: &Planned, reason: &'static str, detail: String| {
        if reworked.insert((deployment, reason)) {
            rework.push(entity::deploy_rework::ActiveModel {
                id: NotSet,
                connection_id: Set(connection),
                repository: Set(repository.to_owned()),
                repository_key: Set(repository.to_owned()),
                environment: Set(p.environment.to_owned()),
                deployment_id: Set(deployment),
                reason: Set(reason.to_owned()),
                detail: Set(detail),
                live_at: Set(at(p.minutes_ago)),
                recorded_at: Set(at(p.minutes_ago) + minutes(1)),
            });
        }
    };
    let mut ordinal = 0usize;
    for (n, p) in planned.iter().enumerate() {
        let this = id(p)?;
        let next = next_live.get(&n).map(|&m| &planned[m]);
        if p.environment == "production" && p.status != "failed" && !p.backfilled && n % 30 == 17 {
            push_rework(this, p, "revert", format!("shipped a revert of {}", &p.sha[..12]));
        }
        for reason in &p.reasons {
            ordinal += 1;
            let recovery = match next {
                Some(next) if ordinal % 10 != 9 => Some((id(next)?, at(next.minutes_ago))),
                _ => None,
            };
            if let Some(next) = next {
                let next_id = id(next)?;
                match *reason {
                    "rolled_back" => push_rework(next_id, next, "rollback", format!("rolled back to {}", &p.sha[..12])),
                    "reverted" => push_rework(
                        next_id,
                        next,
                        "revert",
                        format!("reverts a pull request of {}", &p.sha[..12]),
                    ),
                    _ => {}
                }
            }
            interventions.push(entity::deploy_intervention::ActiveModel {
                id: NotSet,
                connection_id: Set(connection),
                repository: Set(repository.to_owned()),
                repository_key: Set(repository.to_owned()),
                environment: Set(p.environment.to_owned()),
                deployment_id: Set(this),
                reason: Set((*reason).to_owned()),
                detail: Set(match *reason {
                    "rolled_back" => "rolled back by the next deploy".to_owned(),
                    "reverted" => "a revert of one of its pull requests shipped within 24 hours".to_owned(),
                    _ => "the error-rate check said regressed".to_owned(),
                }),
                failed_at: Set(at(p.minutes_ago)),
                recovered_by_id: Set(recovery.map(|(id, _)| id)),
                recovered_at: Set(recovery.map(|(_, at)| at)),
                recorded_at: Set(at(p.minutes_ago) + minutes(10)),
            });
        }
    }
    seeded.interventions = interventions.len();
    seeded.rework = rework.len();
    insert_chunks(db, interventions).await?;
    insert_chunks(db, rework).await?;
    Ok(seeded)
}

/// The number a JSON answer holds at `pointer`, for the line's check of what was counted.
fn number(report: &serde_json::Value, pointer: &str) -> anyhow::Result<u64> {
    report
        .pointer(pointer)
        .and_then(serde_json::Value::as_u64)
        .with_context(|| format!("the report has no {pointer}"))
}

/// Seeds a fresh database, starts the server on it and prints the delivery metrics lines.
pub async fn run(
    binary: &std::path::Path,
    database: &BenchDatabase,
    log: &std::path::Path,
    requests: usize,
    format: Format,
) -> anyhow::Result<()> {
    let backend = database.backend.as_str();
    let server = Server::start(binary, &database.url, log).await?;
    let db = database.connect().await?;
    let started = Instant::now();
    let connection = connection(&db).await.context("the benchmark's connection row")?;
    let seeded = seed_repository(&db, connection, REPOSITORY, 11, DEPLOYS, LEAD_TIMES)
        .await
        .context("seeding the repository")?;
    let noise = seed_repository(&db, connection, NOISE, 21, DEPLOYS / 5, LEAD_TIMES / 5)
        .await
        .context("seeding the noise repository")?;
    sea_orm::ConnectionTrait::execute_unprepared(&db, "ANALYZE").await?;
    Line::new("seed_delivery")
        .field("backend", backend)
        .field("deploys", seeded.deploys)
        .field("lead_times", seeded.lead_times)
        .field("interventions", seeded.interventions)
        .field("rework", seeded.rework)
        .field("noise_deploys", noise.deploys)
        .field("noise_lead_times", noise.lead_times)
        .millis("took_ms", started.elapsed())
        .print(format);
    db.close().await?;

    let client = crate::load::client(1)?;
    for bucket in ["week", "day"] {
        let url = format!(
            "{}/api/metrics/delivery?repository={REPOSITORY}&from={FROM}&to={TO}&bucket={bucket}",
            server.base_url
        );
        // What one answer counted, so a line cannot pass on an empty or wrong report.
        let body = client
            .get(&url)
            .bearer_auth(server::ADMIN_TOKEN)
            .send()
            .await?
            .error_for_status()?
            .json::<serde_json::Value>()
            .await?;
        let buckets = body["buckets"].as_array().map_or(0, Vec::len);
        let counted = (
            number(&body, "/summary/deploys")?,
            number(&body, "/summary/lead_time/count")?,
        );
        if counted.1 != u64::from(LEAD_TIMES) {
            bail!("the report counted {} lead times of {LEAD_TIMES}", counted.1);
        }
        let postgres_cpu = || database.postgres_name().map(server::postgres_cpu_time);
        let (server_before, postgres_before) = (server.cpu_time(), postgres_cpu());
        let (samples, bytes) = latencies(&client, &url, "application/json", requests, 20).await?;
        let per_request = |cpu: Duration| crate::report::round2(cpu.as_secs_f64() * 1000.0 / (requests + 20) as f64);
        let p99 = samples.percentile(99.0);
        let mut line = Line::new("delivery_metrics")
            .field("backend", backend)
            .field("bucket", bucket)
            .field("buckets", buckets)
            .field("deploys", seeded.deploys)
            .field("counted_deploys", counted.0)
            .field("lead_times", counted.1)
            .field("failed_deploys", number(&body, "/summary/failed_deploys")?)
            .field("unplanned_deploys", number(&body, "/summary/unplanned_deploys")?)
            .field("requests", requests)
            .field("bytes", bytes)
            .millis("p50_ms", samples.percentile(50.0))
            .millis("p99_ms", p99)
            .millis("max_ms", samples.max())
            .field(
                "server_cpu_ms_per_request",
                per_request(server.cpu_time().saturating_sub(server_before)),
            );
        if let Some((after, before)) = postgres_cpu().zip(postgres_before) {
            line = line.field("postgres_cpu_ms_per_request", per_request(after.saturating_sub(before)));
        }
        line.field("measured", "client-side over loopback HTTP (includes the round trip)")
            .target(
                format!("p99 <= {TARGET_P99_MS} ms"),
                p99 <= Duration::from_secs_f64(TARGET_P99_MS / 1000.0),
            )
            .print(format);
    }
    server.stop().await
}
