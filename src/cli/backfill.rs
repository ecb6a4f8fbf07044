//! `shiplog backfill`: starts (or resumes) a connection's backfill and runs it here, step by
//! step, drawing its progress; with `--detach` only queues it for the server.
//!
//! The steps are the same as the job worker's (`backfill::Backfiller::step`), and each carries the
//! backfill's step number, so a server running the same backfill at the same time costs some
//! GitHub calls twice but imports nothing twice. Killed in the middle, the backfill stays queued:
//! the server's worker, or running the command again, goes on from the last committed step.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};

use crate::backfill::step::Stepped;
use crate::backfill::{self, Backfill, BackfillRequest, BackfillState, Backfiller};
use crate::clock::{Clock, SystemClock};
use crate::config::GitHubArgs;
use crate::connections;
use crate::github::app::GitHubApp;
use crate::jobs::runner::JobError;
use crate::store::Store;
use crate::types::RepoName;

/// How long to wait before trying a step GitHub could not answer again.
const RETRY_PAUSE: Duration = Duration::from_secs(5);
/// Failed tries of one step before the command gives up (the backfill stays queued).
const MAX_RETRIES: u32 = 12;

pub async fn run(
    store: &Store,
    connection_id: i64,
    since: &str,
    repositories: &[String],
    detach: bool,
    github: &GitHubArgs,
) -> anyhow::Result<()> {
    let now = SystemClock.now();
    let connection = connections::get(store, connection_id)
        .await?
        .with_context(|| format!("no connection with id {connection_id}"))?;
    let app = match github.credentials()? {
        Some(credentials) => Some(GitHubApp::new(&credentials, &github.api_url()?)?),
        None if detach => None,
        None => anyhow::bail!(
            "a backfill reads GitHub as the App: set GITHUB_APP_ID and GITHUB_APP_PRIVATE_KEY_PATH (or use --detach to leave it to the server)"
        ),
    };
    let started = match backfill::unfinished(store, connection.id).await? {
        Some(running) => {
            eprintln!(
                "resuming backfill {} (since {}), which has not finished",
                running.id,
                running.since.format("%Y-%m-%d")
            );
            running
        }
        None => {
            let request = request(since, repositories, now)?;
            backfill::start(store, &connection, &request, now).await?
        }
    };
    if detach {
        println!("{}", serde_json::to_string_pretty(&started.view(now))?);
        eprintln!(
            "queued: the server's job worker runs it; GET /api/backfills/{} shows its progress",
            started.id
        );
        return Ok(());
    }
    let backfiller = Backfiller {
        store: store.clone(),
        github: app,
    };
    let finished = drive(&backfiller, started.id).await?;
    println!("{}", serde_json::to_string_pretty(&finished.view(SystemClock.now()))?);
    match finished.state {
        BackfillState::Failed => anyhow::bail!(
            "backfill {} failed: {}",
            finished.id,
            finished.note.as_deref().unwrap_or("no reason recorded")
        ),
        _ => Ok(()),
    }
}

fn request(since: &str, repositories: &[String], now: DateTime<Utc>) -> anyhow::Result<BackfillRequest> {
    let since = backfill::parse_since(since, now).map_err(|m| anyhow::anyhow!("--since {m}"))?;
    let mut names: Vec<RepoName> = Vec::new();
    for raw in repositories {
        let name = RepoName::parse(raw).map_err(|m| anyhow::anyhow!("--repository {raw:?} {m}"))?;
        if !names.iter().any(|n| n.key() == name.key()) {
            names.push(name);
        }
    }
    Ok(BackfillRequest {
        since,
        repositories: (!names.is_empty()).then_some(names),
    })
}

/// Runs the backfill's steps until it finishes, drawing its progress.
async fn drive(backfiller: &Backfiller, id: i64) -> anyhow::Result<Backfill> {
    let mut bar = ProgressBar::new();
    let mut failures = 0;
    loop {
        let current = backfill::get(&backfiller.store, id)
            .await?
            .with_context(|| format!("backfill {id} disappeared"))?;
        bar.draw(&current);
        if current.state.finished() {
            bar.finish();
            return Ok(current);
        }
        match backfiller.step(id, current.step, SystemClock.now()).await {
            Ok(Stepped::Continued | Stepped::Finished(_)) => failures = 0,
            Ok(Stepped::Waiting(until)) => {
                let wait = (until - SystemClock.now()).to_std().unwrap_or_default();
                bar.note(&format!(
                    "GitHub's rate limit is down to the reserve: waiting until {}",
                    until.format("%H:%M:%S UTC")
                ));
                tokio::time::sleep(wait).await;
            }
            // Another worker (the server) ran this step: look again shortly.
            Ok(Stepped::Stale) => tokio::time::sleep(Duration::from_millis(200)).await,
            Err(JobError::Retry { message, retry_at }) => {
                failures += 1;
                if failures > MAX_RETRIES {
                    bar.finish();
                    anyhow::bail!(
                        "giving up after {MAX_RETRIES} tries: {message} (backfill {id} stays queued for the server)"
                    );
                }
                bar.note(&format!("will try again: {message}"));
                let wait = retry_at
                    .and_then(|at| (at - SystemClock.now()).to_std().ok())
                    .unwrap_or(RETRY_PAUSE);
                tokio::time::sleep(wait).await;
            }
            Err(JobError::Permanent(message) | JobError::Skipped(message)) => {
                bar.finish();
                anyhow::bail!("backfill {id}: {message}");
            }
        }
    }
}

/// A one-line progress display on a terminal (redrawn in place), or a line every few seconds
/// when stderr is not one.
struct ProgressBar {
    terminal: bool,
    last: Option<std::time::Instant>,
}

impl ProgressBar {
    const WIDTH: usize = 24;

    fn new() -> Self {
        Self {
            terminal: std::io::stderr().is_terminal(),
            last: None,
        }
    }

    fn draw(&mut self, backfill: &Backfill) {
        let line = line(backfill, SystemClock.now());
        let mut err = std::io::stderr();
        if self.terminal {
            let _ = write!(err, "\r\x1b[2K{line}");
            let _ = err.flush();
        } else if self.last.is_none_or(|t| t.elapsed() >= Duration::from_secs(5)) || backfill.state.finished() {
            let _ = writeln!(err, "{line}");
            self.last = Some(std::time::Instant::now());
        }
    }

    fn note(&self, message: &str) {
        if self.terminal {
            eprintln!();
        }
        eprintln!("{message}");
    }

    fn finish(&self) {
        if self.terminal {
            eprintln!();
        }
    }
}

/// `[#######.........]  7/20 repositories · 3,412 deploys · 41 GitHub calls · rate 4,120/5,000 · about 1m 20s left · running`
fn line(backfill: &Backfill, now: DateTime<Utc>) -> String {
    let view = backfill.view(now);
    let progress = &view.progress;
    let (done, total) = (progress.repositories_done, progress.repositories_total);
    let filled = match total {
        Some(total) if total > 0 => usize::try_from(done * ProgressBar::WIDTH as i64 / total).unwrap_or(0),
        _ => 0,
    }
    .min(ProgressBar::WIDTH);
    let bar = format!("[{}{}]", "#".repeat(filled), ".".repeat(ProgressBar::WIDTH - filled));
    let repositories = match total {
        Some(total) => format!("{done}/{total} repositories"),
        None => format!("{done}/? repositories"),
    };
    let rate = progress.rate_limit.as_ref().map_or_else(
        || "rate limit not seen yet".to_owned(),
        |r| format!("rate {}/{}", r.remaining, r.limit),
    );
    let left = progress.estimated_seconds_left.map_or_else(
        || "time left unknown".to_owned(),
        |s| format!("about {} left", human(s)),
    );
    format!(
        "{bar} {repositories} · {} deploys · {} GitHub calls · {rate} · {left} · {}",
        progress.deploys_imported,
        progress.github_calls,
        backfill.state.as_str()
    )
}

fn human(seconds: i64) -> String {
    match seconds {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m {}s", s / 60, s % 60),
        s => format!("{}h {}m", s / 3600, (s % 3600) / 60),
    }
}
