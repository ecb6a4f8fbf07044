//! The `backfill.step` job: one unit of a backfill (a page of GitHub's history read and staged,
//! or a batch of staged items applied), committed with the backfill's progress and the next
//! step's job, so a backfill is always exactly one queued step away from going on.

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};

use super::apply::{self, Item};
use super::{Backfill, BackfillState, RateLimitSeen};
use crate::connections::{self, rules, Connection};
use crate::github::app::GitHubApp;
use crate::github::client::InstallationClient;
use crate::github::error::CallError;
use crate::github::history::{self, Page, RateLimit};
use crate::jobs::runner::{JobError, JobHandler};
use crate::jobs::{self, BackgroundJob};
use crate::store::backfills::{self as rows, Progress, RepositoryCursor};
use crate::store::{Store, StoreResult, Writer};

/// Staged items applied per step (one transaction).
const APPLY_BATCH: u64 = 100;

/// The job: run step `step` of backfill `backfill_id`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackfillStep {
    pub backfill_id: i64,
    pub step: i64,
}

impl BackgroundJob for BackfillStep {
    const JOB_NAME: &'static str = "backfill.step";
}

/// Queues step `step` of a backfill at `at`, in the caller's transaction.
pub(super) async fn enqueue_next(db: &impl Writer, backfill_id: i64, step: i64, at: DateTime<Utc>) -> StoreResult<()> {
    let job = BackfillStep { backfill_id, step };
    let key = format!("{}:{backfill_id}:{step}", BackfillStep::JOB_NAME);
    jobs::enqueue(db, &job, Some(key), at, at).await?;
    Ok(())
}

/// What a step did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stepped {
    /// The next step is queued now.
    Continued,
    /// The next step is queued for when GitHub's rate limit resets.
    Waiting(DateTime<Utc>),
    Finished(BackfillState),
    /// Another worker ran this step already (or the backfill finished): nothing was done.
    Stale,
}

/// Runs backfill steps; the job worker calls it, and so does `shiplog backfill` in the
/// foreground (the step number keeps the two from doing a step twice).
pub struct Backfiller {
    pub store: Store,
    pub github: Option<GitHubApp>,
}

impl JobHandler<BackfillStep> for Backfiller {
    fn run(&self, job: BackfillStep, now: DateTime<Utc>, _attempt: i32) -> BoxFuture<'_, Result<(), JobError>> {
        Box::pin(async move { self.step(job.backfill_id, job.step, now).await.map(|_| ()) })
    }
}

/// Why the backfill cannot run without the App.
const NO_APP: &str = "the GitHub App is not configured (GITHUB_APP_ID, GITHUB_APP_PRIVATE_KEY_PATH)";

/// One GitHub read's result for the step to commit.
enum Read<T> {
    Page(Page<T>),
    /// GitHub's rate limit: try again at the time given.
    Limited(DateTime<Utc>),
    /// The repository is gone or not visible to the installation.
    Missing(String),
}

impl Backfiller {
    /// Runs step `step` of backfill `id` if it is the backfill's next step.
    pub async fn step(&self, id: i64, step: i64, now: DateTime<Utc>) -> Result<Stepped, JobError> {
        let result = self.try_step(id, step, now).await;
        if let Err(JobError::Retry { message, .. }) = &result {
            // Shown on the backfill while its step is retried (the job's backoff), so a backfill
            // that GitHub keeps failing does not look like one that runs.
            if let Err(error) = self.note_retry(id, step, message, now).await {
                tracing::warn!(backfill = id, %error, "the backfill's retry note could not be written");
            }
        }
        result
    }

    async fn note_retry(&self, id: i64, step: i64, message: &str, now: DateTime<Utc>) -> StoreResult<()> {
        let tx = self.store.begin().await?;
        let earlier = rows::find(&tx, id)
            .await?
            .and_then(|b| b.note.as_deref().and_then(without_retry));
        let failed: String = message.chars().take(300).collect();
        let note = match earlier {
            Some(earlier) => format!("{RETRYING} {failed}\n{earlier}"),
            None => format!("{RETRYING} {failed}"),
        };
        rows::set_note(&tx, id, step, &note, now).await?;
        tx.commit().await
    }

    async fn try_step(&self, id: i64, step: i64, now: DateTime<Utc>) -> Result<Stepped, JobError> {
        let Some(backfill) = rows::find(self.store.conn(), id).await? else {
            return Err(JobError::Permanent(format!("backfill {id} does not exist")));
        };
        if backfill.step != step || backfill.state.finished() {
            return Ok(Stepped::Stale);
        }
        let connection = connections::get(&self.store, backfill.connection_id).await?;
        let Some(connection) = connection.filter(|c| c.deleted_at.is_none()) else {
            return self
                .finish(
                    &backfill,
                    BackfillState::Failed,
                    Some("the connection's installation was deleted"),
                    now,
                )
                .await;
        };
        let Some(app) = &self.github else {
            self.finish(&backfill, BackfillState::Failed, Some(NO_APP), now).await?;
            return Err(JobError::Skipped(NO_APP.to_owned()));
        };
        let repository = if backfill.repositories_listed {
            match rows::next_repository(self.store.conn(), backfill.id).await? {
                None => return self.finish(&backfill, BackfillState::Done, None, now).await,
                found => found,
            }
        } else {
            None
        };
        // Only a read spends the rate limit: what was read is applied while the backfill waits.
        let reads = repository
            .as_ref()
            .is_none_or(|r| r.phase == "deployments" || r.phase == "runs");
        if let Some(rate) = backfill.rate.as_ref().filter(|rate| reads && !rate.allows_a_call(now)) {
            return self.wait(&backfill, rate.reset, Progress::default(), now).await;
        }
        let client = InstallationClient {
            app,
            installation: connection.installation_id,
        };
        let Some(repository) = repository else {
            return self.list_repositories(&backfill, &client, now).await;
        };
        match repository.phase.as_str() {
            "deployments" => {
                self.read_deployments(&backfill, &connection, &repository, &client, now)
                    .await
            }
            "runs" => self.read_runs(&backfill, &connection, &repository, &client, now).await,
            _ => self.apply(&backfill, &connection, &repository, now).await,
        }
    }

    async fn list_repositories(
        &self,
        backfill: &Backfill,
        client: &InstallationClient<'_>,
        now: DateTime<Utc>,
    ) -> Result<Stepped, JobError> {
        let cursor = backfill.repositories_cursor.clone();
        let page = match read(client, now, false, |octo| {
            let cursor = cursor.clone();
            async move { history::installation_repositories(&octo, cursor.as_deref(), now).await }
        })
        .await?
        {
            Read::Page(page) => page,
            Read::Limited(until) => return self.wait(backfill, until, called(None), now).await,
            Read::Missing(what) => {
                let note = format!("GitHub does not show the installation's repositories: {what}");
                return self.finish(backfill, BackfillState::Failed, Some(&note), now).await;
            }
        };
        let wanted: Vec<_> = page
            .items
            .iter()
            .filter(|r| {
                backfill
                    .repositories
                    .as_ref()
                    .is_none_or(|names| names.iter().any(|n| n.key() == r.name.key()))
            })
            .map(|r| (r.name.clone(), r.default_branch.clone()))
            .collect();
        // A cursor GitHub repeats, or a listing longer than any installation, ends the listing.
        let looped = page.next.is_some() && page.next == backfill.repositories_cursor;
        let too_long = backfill.step + 1 >= MAX_LISTING_PAGES;
        let next = page.next.filter(|_| !looped && !too_long);
        let listed = next.is_none();
        let tx = self.store.begin().await?;
        rows::add_repositories(&tx, backfill.id, &wanted).await?;
        let counted = rows::count_repositories(&tx, backfill.id).await?;
        let mut progress = called(page.rate.as_ref());
        progress.repositories_listed = Some(listed);
        progress.repositories_cursor = Some(next.clone());
        progress.repositories_total = Some(match (listed, backfill.repositories.is_none(), page.total) {
            (false, true, Some(total)) => i64::try_from(total).unwrap_or(i64::MAX),
            _ => counted,
        });
        if listed {
            let stopped = (looped || too_long).then(|| {
                format!("the installation's repositories were listed up to {counted}: GitHub's pages did not end")
            });
            let missing = self.missing_note(backfill, &tx).await?;
            let note = [stopped, missing].into_iter().flatten().collect::<Vec<_>>().join("; ");
            progress.note = Some((!note.is_empty()).then_some(note));
        }
        self.advance(tx, backfill, progress, now).await
    }

    /// The repositories asked for that the installation does not have, as a note.
    async fn missing_note(&self, backfill: &Backfill, tx: &crate::store::Tx) -> StoreResult<Option<String>> {
        let Some(names) = &backfill.repositories else {
            return Ok(None);
        };
        let mut missing = Vec::new();
        for name in names {
            if !rows::has_repository(tx, backfill.id, name.key()).await? {
                missing.push(name.as_str());
            }
        }
        Ok((!missing.is_empty()).then(|| format!("not in the installation: {}", missing.join(", "))))
    }

    async fn read_deployments(
        &self,
        backfill: &Backfill,
        connection: &Connection,
        repository: &RepositoryCursor,
        client: &InstallationClient<'_>,
        now: DateTime<Utc>,
    ) -> Result<Stepped, JobError> {
        let (name, cursor) = (repository.repository.clone(), repository.cursor.clone());
        let read = read(client, now, true, |octo| {
            let (name, cursor) = (name.clone(), cursor.clone());
            async move { history::deployments(&octo, &name, cursor.as_deref(), now).await }
        });
        let page = match self.page_or_end(backfill, repository, read.await?, now).await? {
            Ok(page) => page,
            Err(ended) => return Ok(ended),
        };
        let reached_since = page.items.iter().any(|d| d.created_at < backfill.since);
        let staged: Vec<_> = page
            .items
            .into_iter()
            .filter(|d| d.created_at >= backfill.since)
            .map(|deployment| {
                let item = Item::Deployment {
                    repository: repository.repository.clone(),
                    deployment,
                };
                (item.occurred_at(), item)
            })
            .collect();
        let next_phase = if connection.settings.workflow_rules.is_empty() {
            "apply"
        } else {
            "runs"
        };
        let next = following(repository, page.next, reached_since, ("deployments", next_phase));
        self.stage(backfill, repository, &staged, next, page.rate.as_ref(), now)
            .await
    }

    async fn read_runs(
        &self,
        backfill: &Backfill,
        connection: &Connection,
        repository: &RepositoryCursor,
        client: &InstallationClient<'_>,
        now: DateTime<Utc>,
    ) -> Result<Stepped, JobError> {
        let (name, cursor) = (repository.repository.clone(), repository.cursor.clone());
        let read = read(client, now, false, |octo| {
            let (name, cursor) = (name.clone(), cursor.clone());
            async move { history::workflow_runs(&octo, &name, cursor.as_deref(), now).await }
        });
        let page = match self.page_or_end(backfill, repository, read.await?, now).await? {
            Ok(page) => page,
            Err(ended) => return Ok(ended),
        };
        let reached_since = page.items.iter().any(|r| r.created_at < backfill.since);
        let staged: Vec<_> = page
            .items
            .into_iter()
            .filter(|r| r.created_at >= backfill.since)
            .map(|mut run| {
                run.default_branch.clone_from(&repository.default_branch);
                run
            })
            .filter(|run| !rules::environments_for(&connection.settings.workflow_rules, run).is_empty())
            .map(|run| {
                let item = Item::Run { run };
                (item.occurred_at(), item)
            })
            .collect();
        let next = following(repository, page.next, reached_since, ("runs", "apply"));
        self.stage(backfill, repository, &staged, next, page.rate.as_ref(), now)
            .await
    }

    /// The page a repository's read brought, or how the step ended without one: waiting for
    /// GitHub's rate limit, or the repository skipped because GitHub does not show it.
    async fn page_or_end<T>(
        &self,
        backfill: &Backfill,
        repository: &RepositoryCursor,
        read: Read<T>,
        now: DateTime<Utc>,
    ) -> Result<Result<Page<T>, Stepped>, JobError> {
        match read {
            Read::Page(page) => Ok(Ok(page)),
            Read::Limited(until) => self.wait(backfill, until, called(None), now).await.map(Err),
            Read::Missing(what) => self.skip_repository(backfill, repository, &what, now).await.map(Err),
        }
    }

    async fn stage(
        &self,
        backfill: &Backfill,
        repository: &RepositoryCursor,
        items: &[(DateTime<Utc>, Item)],
        (phase, cursor, stopped): (&str, Option<String>, Option<String>),
        rate: Option<&RateLimit>,
        now: DateTime<Utc>,
    ) -> Result<Stepped, JobError> {
        let encoded: Vec<_> = items
            .iter()
            .filter_map(|(at, item)| serde_json::to_string(item).ok().map(|json| (*at, json)))
            .collect();
        let tx = self.store.begin().await?;
        rows::stage(&tx, backfill.id, repository.repository.key(), &encoded).await?;
        rows::set_repository(&tx, repository.id, phase, cursor.as_deref(), 0, 1).await?;
        let mut progress = called(rate);
        if let Some(stopped) = stopped {
            tracing::warn!(backfill = backfill.id, repository = %repository.repository, %stopped, "a repository's reading stopped");
            progress.note = Some(Some(with_note(backfill, &stopped)));
        }
        self.advance(tx, backfill, progress, now).await
    }

    async fn apply(
        &self,
        backfill: &Backfill,
        connection: &Connection,
        repository: &RepositoryCursor,
        now: DateTime<Utc>,
    ) -> Result<Stepped, JobError> {
        let key = repository.repository.key();
        let tx = self.store.begin().await?;
        let staged = rows::staged(&tx, backfill.id, key, APPLY_BATCH).await?;
        let mut imported = 0;
        let mut ids = Vec::with_capacity(staged.len());
        for (id, payload) in &staged {
            ids.push(*id);
            match serde_json::from_str::<Item>(payload) {
                Ok(item) => imported += apply::apply(&tx, connection, &item, now).await?,
                Err(error) => {
                    tracing::warn!(backfill = backfill.id, item = id, %error, "a staged item does not decode; skipped")
                }
            }
        }
        rows::unstage(&tx, &ids).await?;
        let done = (staged.len() as u64) < APPLY_BATCH;
        rows::set_repository(
            &tx,
            repository.id,
            if done { "done" } else { "apply" },
            None,
            imported,
            0,
        )
        .await?;
        let progress = Progress {
            deploys_imported: imported,
            repositories_done: i64::from(done),
            started: true,
            state: Some(BackfillState::Running),
            ..Progress::default()
        };
        self.advance(tx, backfill, progress, now).await
    }

    async fn skip_repository(
        &self,
        backfill: &Backfill,
        repository: &RepositoryCursor,
        what: &str,
        now: DateTime<Utc>,
    ) -> Result<Stepped, JobError> {
        tracing::warn!(backfill = backfill.id, repository = %repository.repository, "GitHub does not show {what}; skipped");
        let tx = self.store.begin().await?;
        // What was staged before stays and is applied; the repository reads no further.
        rows::set_repository(&tx, repository.id, "apply", None, 0, 0).await?;
        let mut progress = called(None);
        // Added to what the note said before, so every repository skipped stays named.
        progress.note = Some(Some(with_note(
            backfill,
            &format!("GitHub does not show {what}; its history was not read"),
        )));
        self.advance(tx, backfill, progress, now).await
    }

    /// Commits the step (if it is still the backfill's) with the next step's job.
    async fn advance(
        &self,
        tx: crate::store::Tx,
        backfill: &Backfill,
        mut progress: Progress,
        now: DateTime<Utc>,
    ) -> Result<Stepped, JobError> {
        progress.started = true;
        progress.state.get_or_insert(BackfillState::Running);
        if backfill.state == BackfillState::Waiting && progress.note.is_none() {
            // Going on after the reset: the note no longer says it waits.
            progress.note = Some(backfill.note.as_deref().and_then(without_wait));
        }
        if progress.note.is_none() && backfill.note.as_deref().is_some_and(|n| n.starts_with(RETRYING)) {
            // The step that failed went through: the note says what it said before.
            progress.note = Some(backfill.note.as_deref().and_then(without_retry));
        }
        if !rows::advance(&tx, backfill.id, backfill.step, &progress, now).await? {
            tx.rollback().await?;
            return Ok(Stepped::Stale);
        }
        enqueue_next(&tx, backfill.id, backfill.step + 1, now).await?;
        tx.commit().await?;
        Ok(Stepped::Continued)
    }

    async fn wait(
        &self,
        backfill: &Backfill,
        until: DateTime<Utc>,
        mut progress: Progress,
        now: DateTime<Utc>,
    ) -> Result<Stepped, JobError> {
        // GitHub's limits reset within the hour: a later reset (a broken or hostile server) is
        // read as an hour, as for every GitHub call.
        let until = until.min(now + crate::github::error::MAX_RATE_LIMIT_WAIT);
        progress.state = Some(BackfillState::Waiting);
        let waiting = format!(
            "{WAITING} {} (a backfill leaves the last {}% for live work)",
            until.format("%Y-%m-%d %H:%M:%S UTC"),
            super::RESERVE_PERCENT
        );
        // What the note said before (a repository skipped) is kept after the waiting part.
        let earlier = backfill.note.as_deref().and_then(without_retry);
        progress.note = Some(Some(match earlier.as_deref().and_then(without_wait) {
            Some(earlier) => format!("{waiting}; {earlier}"),
            None => waiting,
        }));
        let tx = self.store.begin().await?;
        if !rows::advance(&tx, backfill.id, backfill.step, &progress, now).await? {
            tx.rollback().await?;
            return Ok(Stepped::Stale);
        }
        enqueue_next(&tx, backfill.id, backfill.step + 1, until.max(now)).await?;
        tx.commit().await?;
        Ok(Stepped::Waiting(until))
    }

    async fn finish(
        &self,
        backfill: &Backfill,
        state: BackfillState,
        note: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Stepped, JobError> {
        let note = match note {
            Some(note) => Some(Some(note.to_owned())),
            // What the note said for good stays; waiting and retrying are over.
            None => Some(
                backfill
                    .note
                    .as_deref()
                    .and_then(without_retry)
                    .as_deref()
                    .and_then(without_wait),
            ),
        };
        let progress = Progress {
            state: Some(state),
            note,
            finished: true,
            ..Progress::default()
        };
        let tx = self.store.begin().await?;
        if !rows::advance(&tx, backfill.id, backfill.step, &progress, now).await? {
            tx.rollback().await?;
            return Ok(Stepped::Stale);
        }
        tx.commit().await?;
        tracing::info!(backfill = backfill.id, state = state.as_str(), "backfill finished");
        Ok(Stepped::Finished(state))
    }
}

/// Where a repository's reading goes after a page: on to `next` in `reading`, or (no next page,
/// `since` reached, a cursor GitHub repeats, or [`super::MAX_PAGES_PER_REPOSITORY`] pages read)
/// to `after` with no cursor, and then why it stopped early, for the note.
fn following(
    repository: &RepositoryCursor,
    next: Option<String>,
    reached_since: bool,
    (reading, after): (&'static str, &'static str),
) -> (&'static str, Option<String>, Option<String>) {
    let stopped = match &next {
        None => None,
        Some(_) if reached_since => None,
        Some(next) if repository.cursor.as_deref() == Some(next.as_str()) => Some(format!(
            "GitHub answered {} with the same page again; its reading stopped there",
            repository.repository
        )),
        Some(_) if repository.pages + 1 >= super::MAX_PAGES_PER_REPOSITORY => Some(format!(
            "{} has more than {} pages of history since the start date; its reading stopped there",
            repository.repository,
            super::MAX_PAGES_PER_REPOSITORY
        )),
        Some(next) => return (reading, Some(next.clone()), None),
    };
    (after, None, stopped)
}

/// A listing of the installation's repositories stops after this many pages (100,000
/// repositories, GitHub's own largest installations), whatever GitHub's `Link` says.
const MAX_LISTING_PAGES: i64 = 1_000;

/// The longest note kept, in characters: every skipped repository is named until then.
const MAX_NOTE_CHARS: usize = 2_000;

/// `backfill`'s note (without its waiting part) with `added` after it, cut at
/// [`MAX_NOTE_CHARS`].
fn with_note(backfill: &Backfill, added: &str) -> String {
    let note = match backfill
        .note
        .as_deref()
        .and_then(without_retry)
        .as_deref()
        .and_then(without_wait)
    {
        Some(earlier) => format!("{earlier}; {added}"),
        None => added.to_owned(),
    };
    if note.chars().count() <= MAX_NOTE_CHARS {
        return note;
    }
    let mut cut: String = note.chars().take(MAX_NOTE_CHARS - 1).collect();
    cut.push('…');
    cut
}

/// How a note saying the last step failed and is retried begins; the next step that commits
/// replaces it.
const RETRYING: &str = "the last step failed and is retried:";

/// `note` without its retry line (see [`Backfiller::step`]); `None` when nothing else is left.
fn without_retry(note: &str) -> Option<String> {
    let rest = if note.starts_with(RETRYING) {
        note.split_once('\n').map_or("", |(_, rest)| rest)
    } else {
        note
    };
    (!rest.trim().is_empty()).then(|| rest.to_owned())
}

/// How a note saying the backfill waits for the rate limit begins.
const WAITING: &str = "waiting for GitHub's rate limit to reset at";

/// `note` without its waiting part (see [`Backfiller::wait`]); `None` when nothing else is left.
fn without_wait(note: &str) -> Option<String> {
    let rest = match note.strip_prefix(WAITING) {
        None => note,
        Some(waiting) => waiting.split_once("for live work)").map_or("", |(_, rest)| rest),
    };
    let rest = rest.trim_start_matches("; ").trim();
    (!rest.is_empty()).then(|| rest.to_owned())
}

/// The progress of a step that made one GitHub call, with the rate limit it reported.
fn called(rate: Option<&RateLimit>) -> Progress {
    Progress {
        github_calls: 1,
        rate: rate.map(|r| RateLimitSeen {
            limit: i64::from(r.limit),
            remaining: i64::from(r.remaining),
            reset: r.reset,
        }),
        ..Progress::default()
    }
}

/// Makes one read as the installation; rate limits and missing repositories are results, other
/// failures retry the step (the job's backoff).
async fn read<T, F, Fut>(
    client: &InstallationClient<'_>,
    now: DateTime<Utc>,
    graphql: bool,
    call: F,
) -> Result<Read<T>, JobError>
where
    F: Fn(octocrab::Octocrab) -> Fut,
    Fut: std::future::Future<Output = Result<Page<T>, CallError>>,
{
    let answer = if graphql {
        client.call_graphql(now, call).await
    } else {
        client.call(now, call).await
    };
    match answer {
        Ok(page) => Ok(Read::Page(page)),
        Err(CallError::RateLimited { retry_at }) => {
            Ok(Read::Limited(retry_at.unwrap_or(now + chrono::Duration::minutes(1))))
        }
        Err(CallError::NotFound(what)) => Ok(Read::Missing(what)),
        Err(error) => Err(JobError::retry(error.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::RepoName;

    fn at(cursor: Option<&str>, pages: i64) -> RepositoryCursor {
        RepositoryCursor {
            id: 1,
            repository: RepoName::parse("acme/web").unwrap(),
            default_branch: None,
            phase: "deployments".to_owned(),
            cursor: cursor.map(str::to_owned),
            pages,
            imported: 0,
        }
    }

    #[test]
    fn a_repository_stops_reading_when_github_repeats_a_page_or_never_ends() {
        let phases = ("deployments", "apply");
        let next = || Some("c2".to_owned());
        assert_eq!(
            following(&at(Some("c1"), 1), next(), false, phases),
            ("deployments", next(), None)
        );
        assert_eq!(
            following(&at(Some("c1"), 1), None, false, phases),
            ("apply", None, None)
        );
        assert_eq!(
            following(&at(Some("c1"), 1), next(), true, phases),
            ("apply", None, None)
        );
        // The same cursor again, and a history with more pages than any repository has.
        let (phase, cursor, stopped) = following(&at(Some("c2"), 1), next(), false, phases);
        assert_eq!((phase, cursor), ("apply", None));
        assert!(stopped.unwrap().contains("same page again"));
        let (phase, _, stopped) = following(
            &at(Some("c1"), super::super::MAX_PAGES_PER_REPOSITORY - 1),
            next(),
            false,
            phases,
        );
        assert_eq!(phase, "apply");
        assert!(stopped.unwrap().contains("more than 2000 pages"));
    }

    #[test]
    fn the_retry_line_of_a_note_goes_and_the_rest_stays() {
        assert_eq!(
            without_retry(&format!("{RETRYING} GitHub could not answer now: 502")),
            None
        );
        assert_eq!(
            without_retry(&format!("{RETRYING} 502\nGitHub does not show a/b")).as_deref(),
            Some("GitHub does not show a/b")
        );
        assert_eq!(
            without_retry("GitHub does not show a/b").as_deref(),
            Some("GitHub does not show a/b")
        );
    }

    #[test]
    fn the_waiting_part_of_a_note_goes_and_the_rest_stays() {
        let waiting = format!("{WAITING} 2026-11-02 09:30:00 UTC (a backfill leaves the last 20% for live work)");
        assert_eq!(without_wait(&waiting), None);
        assert_eq!(
            without_wait(&format!("{waiting}; GitHub does not show a/b")).as_deref(),
            Some("GitHub does not show a/b")
        );
        assert_eq!(
            without_wait("not in the installation: a/b").as_deref(),
            Some("not in the installation: a/b")
        );
    }
}
