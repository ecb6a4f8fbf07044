//! Backfill: importing the deploys a connection made on GitHub before shiplog saw them.
//!
//! A backfill reads, for each repository of the installation (`GET /installation/repositories`),
//! GitHub's deployments with their statuses (GraphQL, 100 with their statuses per call) and the
//! Actions runs that match the connection's workflow rules (REST), newest first, back to `since`.
//! It is a chain of `backfill.step` jobs (`step.rs`), each one GitHub call or one batch of
//! writes, committed with the backfill's progress. What a page brings is staged and applied
//! oldest first once the repository is read (`apply.rs`), so the lifecycle (superseded, rolled
//! back) is built in the order it happened.
//!
//! Durable and polite: a restart resumes at the step it stopped (a step that did not commit is
//! done again; one that did is not), a step carries the backfill's step number and commits only
//! if it still matches (two workers never both import a page), the backfill never takes the last
//! 20 % of the installation's rate limit (`RESERVE_PERCENT`: it waits for the reset instead), and
//! a deploy already known (by its GitHub deployment id, or its run and environment) is not
//! imported again. Backfilled deploys are `backfilled`: history, not news — no check, trigger,
//! comment or agent call follows them.

mod apply;
pub mod step;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use serde_json::Value;

use crate::connections::Connection;
use crate::store::backfills as rows;
use crate::store::{Store, StoreResult, Writer};
use crate::types::RepoName;
use crate::validation::Invalid;

pub use step::{BackfillStep, Backfiller};

/// The share of the installation's rate limit a backfill leaves for live work.
pub const RESERVE_PERCENT: i64 = 20;
/// The longest history a backfill reads.
pub const MAX_SINCE_DAYS: i64 = 366;
/// A repository's reading stops after this many pages (100 deployments or runs each), whatever
/// GitHub's `Link` or `hasNextPage` says, so a GitHub that never ends its pages cannot keep a
/// backfill going for ever.
pub const MAX_PAGES_PER_REPOSITORY: i64 = 2_000;
/// At most this many repositories named in one request.
pub const MAX_REPOSITORIES: usize = 100;

#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum BackfillState {
    Queued,
    Running,
    /// For GitHub's rate limit to reset (`rate_limit.reset`).
    Waiting,
    Done,
    Failed,
}

impl BackfillState {
    pub const ALL: [Self; 5] = [Self::Queued, Self::Running, Self::Waiting, Self::Done, Self::Failed];
    pub const UNFINISHED: [Self; 3] = [Self::Queued, Self::Running, Self::Waiting];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Waiting => "waiting",
            Self::Done => "done",
            Self::Failed => "failed",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }

    pub fn finished(self) -> bool {
        matches!(self, Self::Done | Self::Failed)
    }
}

/// GitHub's rate limit as the backfill's last call saw it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RateLimitSeen {
    pub limit: i64,
    pub remaining: i64,
    pub reset: DateTime<Utc>,
}

impl RateLimitSeen {
    /// Whether a backfill may make another call now: more than the reserve is left, or the
    /// window has reset since.
    pub fn allows_a_call(&self, now: DateTime<Utc>) -> bool {
        self.reset <= now || self.remaining * 100 > self.limit * RESERVE_PERCENT
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Backfill {
    pub id: i64,
    pub connection_id: i64,
    pub state: BackfillState,
    pub step: i64,
    pub since: DateTime<Utc>,
    /// The repositories asked for; `None`: all of the installation's.
    pub repositories: Option<Vec<RepoName>>,
    pub repositories_listed: bool,
    pub repositories_cursor: Option<String>,
    pub repositories_total: i64,
    pub repositories_done: i64,
    pub deploys_imported: i64,
    pub github_calls: i64,
    pub rate: Option<RateLimitSeen>,
    pub note: Option<String>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// A backfill as the API, the page and the CLI show it.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct BackfillView {
    pub id: i64,
    pub connection_id: i64,
    pub state: BackfillState,
    pub since: DateTime<Utc>,
    #[schema(value_type = Option<Vec<String>>)]
    pub repositories: Option<Vec<RepoName>>,
    pub progress: ProgressView,
    /// Why it waits or failed, or what it could not read.
    pub note: Option<String>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct ProgressView {
    pub repositories_done: i64,
    /// `null` until the installation's repositories are counted.
    pub repositories_total: Option<i64>,
    pub deploys_imported: i64,
    pub github_calls: i64,
    pub rate_limit: Option<RateLimitSeen>,
    /// From the pace so far; `null` until a repository is done, 0 once finished.
    pub estimated_seconds_left: Option<i64>,
}

impl Backfill {
    pub fn view(&self, now: DateTime<Utc>) -> BackfillView {
        BackfillView {
            id: self.id,
            connection_id: self.connection_id,
            state: self.state,
            since: self.since,
            repositories: self.repositories.clone(),
            progress: ProgressView {
                repositories_done: self.repositories_done,
                repositories_total: (self.repositories_listed || self.repositories_total > 0)
                    .then_some(self.repositories_total),
                deploys_imported: self.deploys_imported,
                github_calls: self.github_calls,
                rate_limit: self.rate.clone(),
                estimated_seconds_left: self.estimated_seconds_left(now),
            },
            note: self.note.clone(),
            created_at: self.created_at,
            started_at: self.started_at,
            finished_at: self.finished_at,
        }
    }

    fn estimated_seconds_left(&self, now: DateTime<Utc>) -> Option<i64> {
        if self.state.finished() {
            return Some(0);
        }
        let started = self.started_at?;
        if self.repositories_done == 0 || !self.repositories_listed {
            return None;
        }
        let elapsed = (now - started).num_seconds().max(1);
        let left = (self.repositories_total - self.repositories_done).max(0);
        let mut estimate = elapsed * left / self.repositories_done;
        if let (BackfillState::Waiting, Some(rate)) = (self.state, &self.rate) {
            estimate += (rate.reset - now).num_seconds().max(0);
        }
        Some(estimate)
    }
}

/// What `POST /api/connections/{id}/backfill` and `shiplog backfill` ask for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackfillRequest {
    pub since: DateTime<Utc>,
    pub repositories: Option<Vec<RepoName>>,
}

/// `90d`, `12h`, `2w` (days, hours, weeks back from `now`) or an RFC 3339 time; at most
/// [`MAX_SINCE_DAYS`] back, not in the future.
pub fn parse_since(raw: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    let raw = raw.trim();
    let problem = || {
        format!("must be a span back from now such as 90d, 12h or 2w (at most {MAX_SINCE_DAYS}d), or an RFC 3339 time")
    };
    let since = if let Ok(at) = DateTime::parse_from_rfc3339(raw) {
        at.with_timezone(&Utc)
    } else {
        let (number, unit) = raw.split_at(raw.len().saturating_sub(1));
        let n: i64 = number.parse().map_err(|_| problem())?;
        let span = match unit {
            "h" => Duration::try_hours(n),
            "d" => Duration::try_days(n),
            "w" => Duration::try_weeks(n),
            _ => None,
        }
        .filter(|span| *span > Duration::zero())
        .ok_or_else(problem)?;
        now - span
    };
    if since > now || now - since > Duration::days(MAX_SINCE_DAYS) {
        return Err(problem());
    }
    Ok(since)
}

impl BackfillRequest {
    /// The JSON body: `{"since": "90d", "repositories": ["owner/repo", …]}`, both optional
    /// (`since` defaults to `90d`); every problem named by its field.
    pub fn from_json(body: &Value, now: DateTime<Utc>) -> Result<Self, Invalid> {
        let Some(object) = body.as_object() else {
            return Err(Invalid::field(
                "body",
                "must be a JSON object such as {\"since\": \"90d\"}",
            ));
        };
        let mut errors = Invalid::default();
        for key in object.keys() {
            if key != "since" && key != "repositories" {
                errors.push(
                    key.as_str(),
                    "is not a backfill field; the fields are since and repositories",
                );
            }
        }
        let since = match object.get("since") {
            None | Some(Value::Null) => parse_since("90d", now).ok(),
            Some(Value::String(raw)) => parse_since(raw, now).map_err(|m| errors.push("since", m)).ok(),
            Some(_) => {
                errors.push("since", "must be a string such as \"90d\"");
                None
            }
        };
        let repositories = match object.get("repositories") {
            None | Some(Value::Null) => None,
            Some(Value::Array(items)) if items.len() > MAX_REPOSITORIES => {
                errors.push(
                    "repositories",
                    format!("must name at most {MAX_REPOSITORIES} repositories, not {}", items.len()),
                );
                None
            }
            Some(Value::Array(items)) => {
                let mut names: Vec<RepoName> = Vec::new();
                for (index, item) in items.iter().enumerate() {
                    match item.as_str().map(RepoName::parse) {
                        Some(Ok(name)) if !names.iter().any(|n| n.key() == name.key()) => names.push(name),
                        Some(Ok(_)) => {}
                        Some(Err(message)) => errors.push(format!("repositories[{index}]"), message),
                        None => errors.push(format!("repositories[{index}]"), "must be a string owner/repo"),
                    }
                }
                (!names.is_empty()).then_some(names)
            }
            Some(_) => {
                errors.push("repositories", "must be a list of owner/repo names");
                None
            }
        };
        match since {
            Some(since) if errors.is_empty() => Ok(Self { since, repositories }),
            _ => Err(errors),
        }
    }
}

/// Why a backfill was not started.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("backfill {0} of this connection has not finished; it must finish before another starts")]
    Unfinished(i64),
    #[error("the connection's installation was deleted")]
    Deleted,
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// Starts a backfill of `connection` (its first step queued in the same transaction).
pub async fn start(
    store: &Store,
    connection: &Connection,
    request: &BackfillRequest,
    now: DateTime<Utc>,
) -> Result<Backfill, StartError> {
    if connection.deleted_at.is_some() {
        return Err(StartError::Deleted);
    }
    let tx = store.begin().await?;
    if let Some(running) = rows::unfinished(&tx, connection.id).await? {
        return Err(StartError::Unfinished(running.id));
    }
    let backfill = start_in(&tx, connection.id, request, now).await?;
    tx.commit().await?;
    Ok(backfill)
}

/// Starts a backfill in the caller's transaction (a new installation's delivery).
pub async fn start_in(
    db: &impl Writer,
    connection_id: i64,
    request: &BackfillRequest,
    now: DateTime<Utc>,
) -> StoreResult<Backfill> {
    let backfill = rows::insert(db, connection_id, request.since, request.repositories.as_deref(), now).await?;
    step::enqueue_next(db, backfill.id, 0, now).await?;
    Ok(backfill)
}

/// A new installation imports its last `days` of history (`SHIPLOG_BACKFILL_ON_INSTALL_DAYS`),
/// in the delivery's transaction; once: not when the connection has had a backfill, nor when
/// `days` is 0.
pub async fn start_on_install(
    db: &impl Writer,
    connection_id: i64,
    days: u32,
    now: DateTime<Utc>,
) -> StoreResult<Option<Backfill>> {
    if days == 0 || !rows::for_connection(db, connection_id, 1).await?.is_empty() {
        return Ok(None);
    }
    let request = BackfillRequest {
        since: now - Duration::days(i64::from(days)),
        repositories: None,
    };
    let started = start_in(db, connection_id, &request, now).await?;
    tracing::info!(backfill = started.id, days, "a new installation backfills its history");
    Ok(Some(started))
}

pub async fn get(store: &Store, id: i64) -> StoreResult<Option<Backfill>> {
    rows::find(store.conn(), id).await
}

/// A connection's backfills, newest first.
pub async fn for_connection(store: &Store, connection_id: i64, limit: u64) -> StoreResult<Vec<Backfill>> {
    rows::for_connection(store.conn(), connection_id, limit).await
}

/// The connection's backfill that has not finished, if any.
pub async fn unfinished(store: &Store, connection_id: i64) -> StoreResult<Option<Backfill>> {
    rows::unfinished(store.conn(), connection_id).await
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use serde_json::json;

    use super::*;

    #[test]
    fn since_is_a_span_back_or_a_time_within_a_year() {
        let now = Utc.with_ymd_and_hms(2026, 11, 30, 12, 0, 0).unwrap();
        assert_eq!(parse_since("90d", now).unwrap(), now - Duration::days(90));
        assert_eq!(parse_since("12h", now).unwrap(), now - Duration::hours(12));
        assert_eq!(parse_since("2w", now).unwrap(), now - Duration::weeks(2));
        assert_eq!(
            parse_since("2026-11-01T00:00:00Z", now).unwrap(),
            Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap()
        );
        for bad in [
            "",
            "d",
            "0d",
            "-3d",
            "400d",
            "9999999999999999999d",
            "3y",
            "2027-01-01T00:00:00Z",
        ] {
            assert!(parse_since(bad, now).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_request_names_every_bad_field() {
        let now = Utc.with_ymd_and_hms(2026, 11, 30, 12, 0, 0).unwrap();
        let ok = BackfillRequest::from_json(&json!({"repositories": ["acme/web", "ACME/web"]}), now).unwrap();
        assert_eq!(ok.since, now - Duration::days(90));
        assert_eq!(ok.repositories.unwrap().len(), 1);
        let errors =
            BackfillRequest::from_json(&json!({"since": 90, "repositories": ["nope", 3], "x": 1}), now).unwrap_err();
        let mut fields: Vec<&str> = errors.fields.iter().map(|e| e.field.as_str()).collect();
        fields.sort_unstable();
        assert_eq!(fields, ["repositories[0]", "repositories[1]", "since", "x"]);
    }

    #[test]
    fn the_reserve_is_the_last_fifth_of_the_limit_until_the_reset() {
        let now = Utc.with_ymd_and_hms(2026, 11, 30, 12, 0, 0).unwrap();
        let seen = |remaining| RateLimitSeen {
            limit: 5000,
            remaining,
            reset: now + Duration::minutes(10),
        };
        assert!(seen(1001).allows_a_call(now));
        assert!(!seen(1000).allows_a_call(now));
        assert!(seen(0).allows_a_call(now + Duration::minutes(10)));
    }
}
