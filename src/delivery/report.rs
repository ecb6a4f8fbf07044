//! A window of delivery metrics, read from stored rows (`store::delivery`): each metric for the
//! window and the one before it (the trend), per bucket (day or week), and the items behind every
//! number. Never calls GitHub; never recomputes what a deploy shipped.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use crate::connections::{self, environments};
use crate::store::delivery::{self as rows, DeployRow, InterventionRow, LeadTimeRow, ReworkRow, Window, WENT_LIVE};
use crate::store::{Store, StoreResult};

/// At most this many items of each kind in one answer (newest first); `*_total` says how many
/// there are. A narrower window lists the rest.
pub const ITEMS_MAX: usize = 500;

/// The longest window one answer covers.
pub const WINDOW_MAX_DAYS: i64 = 366;

/// How the window is cut.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BucketSize {
    Day,
    Week,
}

impl BucketSize {
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "day" => Some(Self::Day),
            "week" => Some(Self::Week),
            _ => None,
        }
    }

    fn length(self) -> Duration {
        match self {
            Self::Day => Duration::days(1),
            Self::Week => Duration::days(7),
        }
    }
}

/// What is asked.
#[derive(Clone, Debug)]
pub struct Asked {
    /// The connections it covers (`None`: every one).
    pub connections: Option<Vec<i64>>,
    /// One repository (`owner/name`), or all.
    pub repository: Option<crate::types::RepoName>,
    /// One environment, or (`None`) every production environment.
    pub environment: Option<String>,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub bucket: BucketSize,
}

/// The numbers of one window.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Summary {
    /// Production deploys that went live.
    pub deploys: usize,
    /// Of them, backfilled: what they shipped was not read and no check watched them, so only
    /// their rollbacks to an earlier commit are known (the rates are a floor over them).
    pub backfilled_deploys: usize,
    pub deploys_per_day: f64,
    pub deploys_per_week: f64,
    /// Production deploys that failed before going live (not in the fail rate).
    pub failed_attempts: usize,
    pub lead_time: Spread,
    /// Deploys that needed intervention.
    pub failed_deploys: usize,
    /// `failed_deploys / deploys`; `null` without deploys.
    pub change_fail_rate: Option<f64>,
    /// Of the failed deploys: how long until recovered (the unrecovered are counted apart).
    pub recovery_time: Spread,
    pub unrecovered: usize,
    /// Rollbacks and deploys that shipped a revert.
    pub unplanned_deploys: usize,
    /// `unplanned_deploys / deploys`; `null` without deploys.
    pub rework_rate: Option<f64>,
}

/// How long something took, over a set of items.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Spread {
    pub count: usize,
    /// Nearest rank: the smallest value with at least half of the values at or below it.
    pub median_seconds: Option<i64>,
    /// Nearest rank: the smallest value with at least 90 % of the values at or below it.
    pub p90_seconds: Option<i64>,
}

impl Spread {
    fn of(mut seconds: Vec<i64>) -> Self {
        seconds.sort_unstable();
        Self {
            count: seconds.len(),
            median_seconds: nearest_rank(&seconds, 50),
            p90_seconds: nearest_rank(&seconds, 90),
        }
    }
}

/// The nearest-rank percentile of sorted values: the value at rank ⌈p/100 × n⌉.
pub fn nearest_rank(sorted: &[i64], percent: usize) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (percent * sorted.len()).div_ceil(100).max(1);
    sorted.get(rank - 1).copied()
}

/// One bucket of the window, `[start, end)`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Bucket {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    #[serde(flatten)]
    pub summary: Summary,
}

/// A production deploy counted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DeployItem {
    pub deployment_id: i64,
    pub connection_id: i64,
    pub repository: String,
    pub environment: String,
    pub sha: String,
    pub status: String,
    pub started_at: DateTime<Utc>,
    /// When it went live (or, for a failed attempt, failed).
    pub completed_at: DateTime<Utc>,
    pub backfilled: bool,
}

/// Where a lead time starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StartedFrom {
    FirstCommit,
    Opened,
    Merged,
}

/// A pull request's lead time to an environment, with its stages.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LeadTimeItem {
    pub repository: String,
    pub environment: String,
    pub pull_request: i64,
    pub title: String,
    pub author: Option<String>,
    pub merge_commit_sha: String,
    pub deployment_id: i64,
    pub lead_time_seconds: i64,
    pub started_from: StartedFrom,
    pub first_commit_at: Option<DateTime<Utc>>,
    pub opened_at: Option<DateTime<Utc>>,
    pub merged_at: DateTime<Utc>,
    pub deploy_started_at: DateTime<Utc>,
    pub live_at: DateTime<Utc>,
    /// What could not be known, said rather than guessed.
    pub note: Option<String>,
}

/// One reason a deploy needed intervention.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Reason {
    /// `rolled_back`, `reverted` or `regressed`.
    pub reason: String,
    pub detail: String,
}

/// A production deploy that needed intervention, and its recovery.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FailureItem {
    pub deployment_id: i64,
    pub repository: String,
    pub environment: String,
    pub failed_at: DateTime<Utc>,
    pub reasons: Vec<Reason>,
    /// The first deploy that recovered from it (a rollback, a revert, or for a regression the
    /// next deploy); `null` while none has.
    pub recovered_by: Option<i64>,
    pub recovered_at: Option<DateTime<Utc>>,
    pub recovery_seconds: Option<i64>,
}

/// An unplanned deploy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ReworkItem {
    pub deployment_id: i64,
    pub repository: String,
    pub environment: String,
    pub live_at: DateTime<Utc>,
    /// `rollback` or `revert`.
    pub reasons: Vec<Reason>,
}

/// A production deploy whose shipped pull requests are not known, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UnknownItem {
    pub deployment_id: i64,
    pub repository: String,
    pub environment: String,
    pub live_at: DateTime<Utc>,
    pub why: String,
}

/// Items of one kind, newest first, at most [`ITEMS_MAX`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Items<T> {
    pub total: usize,
    pub items: Vec<T>,
}

impl<T> Items<T> {
    fn newest_first(mut all: Vec<T>) -> Self {
        all.reverse();
        let total = all.len();
        all.truncate(ITEMS_MAX);
        Self { total, items: all }
    }
}

/// The window's metrics.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub bucket: BucketSize,
    pub repository: Option<String>,
    /// The environment asked for; `null`: every production environment.
    pub environment: Option<String>,
    /// The environments counted (`repository` / `environment`), with their deploys.
    pub environments: Vec<CountedEnvironment>,
    pub summary: Summary,
    /// The window of the same length just before (the trend).
    pub previous: Summary,
    pub previous_from: DateTime<Utc>,
    pub buckets: Vec<Bucket>,
    pub deploys: Items<DeployItem>,
    pub failed_attempts: Items<DeployItem>,
    pub lead_times: Items<LeadTimeItem>,
    pub failures: Items<FailureItem>,
    pub rework: Items<ReworkItem>,
    /// Production deploys whose pull requests have no lead time, and why.
    pub unknown: Items<UnknownItem>,
}

/// An environment the report counted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CountedEnvironment {
    pub repository: String,
    pub environment: String,
    pub deploys: usize,
}

/// Everything the window and the one before it hold, counted or not yet split.
struct Read {
    deploys: Vec<DeployRow>,
    lead_times: Vec<LeadTimeRow>,
    interventions: Vec<InterventionRow>,
    rework: Vec<ReworkRow>,
}

/// Builds the report for `asked` from stored rows.
pub async fn build(store: &Store, asked: &Asked) -> StoreResult<Report> {
    let span = asked.to - asked.from;
    let previous_from = asked.from - span;
    let window = Window {
        connections: asked.connections.clone(),
        repository_key: asked.repository.as_ref().map(|r| r.key().to_owned()),
        from: previous_from,
        to: asked.to,
    };
    let conn = store.conn();
    let mut read = Read {
        deploys: rows::completed_deploys(conn, &window).await?,
        lead_times: rows::lead_times(conn, &window).await?,
        interventions: rows::interventions(conn, &window).await?,
        rework: rows::rework(conn, &window).await?,
    };

    // Which deploys count: the asked environment, else the production ones by each
    // connection's settings (GitHub's flag, or a `production_environments` pattern).
    let mut settings = HashMap::new();
    for id in read.deploys.iter().map(|d| d.connection_id).collect::<HashSet<_>>() {
        if let Some(connection) = connections::get(store, id).await? {
            settings.insert(id, connection.settings);
        }
    }
    read.deploys.retain(|d| match &asked.environment {
        Some(environment) => d.environment == *environment,
        None => settings
            .get(&d.connection_id)
            .is_some_and(|s| environments::is_production(s, &d.environment, d.production_flag)),
    });
    let counted: HashSet<i64> = read.deploys.iter().map(|d| d.id).collect();
    read.lead_times.retain(|l| counted.contains(&l.deployment_id));
    read.interventions.retain(|i| counted.contains(&i.deployment_id));
    read.rework.retain(|r| counted.contains(&r.deployment_id));

    let previous = summarize(&read, previous_from, asked.from);
    let summary = summarize(&read, asked.from, asked.to);
    let mut buckets = Vec::new();
    let mut start = asked.from;
    while start < asked.to {
        let end = (start + asked.bucket.length()).min(asked.to);
        buckets.push(Bucket {
            start,
            end,
            summary: summarize(&read, start, end),
        });
        start = end;
    }

    let current = |at: DateTime<Utc>| at >= asked.from && at < asked.to;
    let mut environments: BTreeMap<(String, String), usize> = BTreeMap::new();
    let (mut deploys, mut failed_attempts, mut unknown) = (Vec::new(), Vec::new(), Vec::new());
    for d in read.deploys.iter().filter(|d| current(d.completed_at)) {
        let item = DeployItem {
            deployment_id: d.id,
            connection_id: d.connection_id,
            repository: d.repository.clone(),
            environment: d.environment.clone(),
            sha: d.sha.clone(),
            status: d.status.clone(),
            started_at: d.deploy_time,
            completed_at: d.completed_at,
            backfilled: d.backfilled,
        };
        if !WENT_LIVE.contains(&d.status.as_str()) {
            failed_attempts.push(item);
            continue;
        }
        *environments
            .entry((d.repository.clone(), d.environment.clone()))
            .or_default() += 1;
        if let Some(why) = unknown_why(d) {
            unknown.push(UnknownItem {
                deployment_id: d.id,
                repository: d.repository.clone(),
                environment: d.environment.clone(),
                live_at: d.completed_at,
                why,
            });
        }
        deploys.push(item);
    }
    let lead_times: Vec<LeadTimeItem> = read
        .lead_times
        .iter()
        .filter(|l| current(l.live_at))
        .map(lead_time_item)
        .collect();

    Ok(Report {
        from: asked.from,
        to: asked.to,
        bucket: asked.bucket,
        repository: asked.repository.as_ref().map(|r| r.to_string()),
        environment: asked.environment.clone(),
        environments: environments
            .into_iter()
            .map(|((repository, environment), deploys)| CountedEnvironment {
                repository,
                environment,
                deploys,
            })
            .collect(),
        summary,
        previous,
        previous_from,
        buckets,
        deploys: Items::newest_first(deploys),
        failed_attempts: Items::newest_first(failed_attempts),
        lead_times: Items::newest_first(lead_times),
        failures: Items::newest_first(failures(&read.interventions, asked.from, asked.to)),
        rework: Items::newest_first(rework(&read.rework, asked.from, asked.to)),
        unknown: Items::newest_first(unknown),
    })
}

/// Why a deploy that went live has no listed shipment (so its pull requests have no lead time).
fn unknown_why(d: &DeployRow) -> Option<String> {
    Some(match d.shipment.as_deref() {
        Some("listed") => return None,
        Some("first") => {
            "the first deploy shiplog saw in this environment: what it contains was not compared with anything, so the pull requests it brought have no lead time".to_owned()
        }
        Some("unrelated") => "its commit shares no history with the deploy it replaced: nothing could be listed".to_owned(),
        Some(_) => "what it shipped was not read (no GitHub App was configured when it went live)".to_owned(),
        None if d.backfilled => {
            "backfilled from history: it counts as a deploy, but what it shipped was not read".to_owned()
        }
        None => "what it shipped is not recorded yet (its went-live job has not run)".to_owned(),
    })
}

fn lead_time_item(l: &LeadTimeRow) -> LeadTimeItem {
    let (start, started_from, note) = start_of(l);
    LeadTimeItem {
        repository: l.repository.clone(),
        environment: l.environment.clone(),
        pull_request: l.pull_number,
        title: l.title.clone(),
        author: l.author.clone(),
        merge_commit_sha: l.merge_commit_sha.clone(),
        deployment_id: l.deployment_id,
        lead_time_seconds: (l.live_at - start).num_seconds().max(0),
        started_from,
        first_commit_at: l.first_commit_at,
        opened_at: l.opened_at,
        merged_at: l.merged_at,
        deploy_started_at: l.deploy_started_at,
        live_at: l.live_at,
        note,
    }
}

/// Where a lead time starts: the pull request's first commit (the earliest author time among
/// its commits the range listed), or its opening when that is earlier or the commits are not
/// known; the merge when neither is known, said in the note.
pub fn start_of(l: &LeadTimeRow) -> (DateTime<Utc>, StartedFrom, Option<String>) {
    match (l.first_commit_at, l.opened_at) {
        (Some(first), Some(opened)) if first <= opened => (first, StartedFrom::FirstCommit, None),
        (Some(first), None) => (
            first,
            StartedFrom::FirstCommit,
            Some("when the pull request was opened is not known (merged before shiplog stored it)".to_owned()),
        ),
        (_, Some(opened)) => (
            opened,
            StartedFrom::Opened,
            l.first_commit_at
                .is_none()
                .then(|| "its commits' times are not known".to_owned()),
        ),
        (None, None) => (
            l.merged_at,
            StartedFrom::Merged,
            Some("neither its first commit nor its opening is known: counted from the merge".to_owned()),
        ),
    }
}

fn lead_seconds(l: &LeadTimeRow) -> i64 {
    (l.live_at - start_of(l).0).num_seconds().max(0)
}

/// The numbers of `[from, to)`.
fn summarize(read: &Read, from: DateTime<Utc>, to: DateTime<Utc>) -> Summary {
    let within = |at: DateTime<Utc>| at >= from && at < to;
    let mut summary = Summary::default();
    for d in read.deploys.iter().filter(|d| within(d.completed_at)) {
        if WENT_LIVE.contains(&d.status.as_str()) {
            summary.deploys += 1;
            summary.backfilled_deploys += usize::from(d.backfilled);
        } else {
            summary.failed_attempts += 1;
        }
    }
    let days = (to - from).num_seconds() as f64 / 86_400.0;
    if days > 0.0 {
        summary.deploys_per_day = round(summary.deploys as f64 / days);
        summary.deploys_per_week = round(summary.deploys as f64 * 7.0 / days);
    }
    summary.lead_time = Spread::of(
        read.lead_times
            .iter()
            .filter(|l| within(l.live_at))
            .map(lead_seconds)
            .collect(),
    );
    let failures = failures(&read.interventions, from, to);
    summary.failed_deploys = failures.len();
    summary.unrecovered = failures.iter().filter(|f| f.recovery_seconds.is_none()).count();
    summary.recovery_time = Spread::of(failures.iter().filter_map(|f| f.recovery_seconds).collect());
    summary.unplanned_deploys = rework(&read.rework, from, to).len();
    if summary.deploys > 0 {
        summary.change_fail_rate = Some(round(summary.failed_deploys as f64 / summary.deploys as f64));
        summary.rework_rate = Some(round(summary.unplanned_deploys as f64 / summary.deploys as f64));
    }
    summary
}

fn round(value: f64) -> f64 {
    (value * 10_000.0).round() / 10_000.0
}

/// The failed deploys of `[from, to)`, oldest first: each deploy once, with every reason, and
/// the earliest recovery among them.
fn failures(interventions: &[InterventionRow], from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<FailureItem> {
    let mut by_deploy: Vec<FailureItem> = Vec::new();
    let mut index: HashMap<i64, usize> = HashMap::new();
    for i in interventions.iter().filter(|i| i.failed_at >= from && i.failed_at < to) {
        let at = *index.entry(i.deployment_id).or_insert_with(|| {
            by_deploy.push(FailureItem {
                deployment_id: i.deployment_id,
                repository: i.repository.clone(),
                environment: i.environment.clone(),
                failed_at: i.failed_at,
                reasons: Vec::new(),
                recovered_by: None,
                recovered_at: None,
                recovery_seconds: None,
            });
            by_deploy.len() - 1
        });
        let failure = &mut by_deploy[at];
        failure.reasons.push(Reason {
            reason: i.reason.clone(),
            detail: i.detail.clone(),
        });
        if let (Some(by), Some(recovered_at)) = (i.recovered_by_id, i.recovered_at) {
            if failure.recovered_at.is_none_or(|known| recovered_at < known) {
                failure.recovered_by = Some(by);
                failure.recovered_at = Some(recovered_at);
                failure.recovery_seconds = Some((recovered_at - i.failed_at).num_seconds().max(0));
            }
        }
    }
    by_deploy
}

/// The unplanned deploys of `[from, to)`, oldest first, each once with every reason.
fn rework(rework: &[ReworkRow], from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<ReworkItem> {
    let mut items: Vec<ReworkItem> = Vec::new();
    let mut index: HashMap<i64, usize> = HashMap::new();
    for r in rework.iter().filter(|r| r.live_at >= from && r.live_at < to) {
        let at = *index.entry(r.deployment_id).or_insert_with(|| {
            items.push(ReworkItem {
                deployment_id: r.deployment_id,
                repository: r.repository.clone(),
                environment: r.environment.clone(),
                live_at: r.live_at,
                reasons: Vec::new(),
            });
            items.len() - 1
        });
        items[at].reasons.push(Reason {
            reason: r.reason.clone(),
            detail: r.detail.clone(),
        });
    }
    items
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_takes_the_smallest_value_covering_the_share() {
        assert_eq!(nearest_rank(&[], 50), None);
        assert_eq!(nearest_rank(&[7], 90), Some(7));
        assert_eq!(nearest_rank(&[1, 2, 3, 4], 50), Some(2));
        assert_eq!(nearest_rank(&[1, 2, 3, 4, 5], 50), Some(3));
        let ten: Vec<i64> = (1..=10).collect();
        assert_eq!(nearest_rank(&ten, 90), Some(9));
        let eleven: Vec<i64> = (1..=11).collect();
        assert_eq!(nearest_rank(&eleven, 90), Some(10));
    }

    fn lead(first: Option<i64>, opened: Option<i64>) -> LeadTimeRow {
        let at = |h: i64| DateTime::<Utc>::from_timestamp(1_790_000_000 + h * 3600, 0).unwrap();
        LeadTimeRow {
            connection_id: 1,
            repository: "o/r".into(),
            repository_key: "o/r".into(),
            environment: "production".into(),
            pull_number: 1,
            title: "t".into(),
            author: None,
            merge_commit_sha: "a".repeat(40),
            first_commit_at: first.map(at),
            opened_at: opened.map(at),
            merged_at: at(10),
            deployment_id: 1,
            deploy_started_at: at(11),
            live_at: at(12),
        }
    }

    #[test]
    fn a_lead_time_starts_at_the_earliest_known_stage_and_says_what_it_did_not_know() {
        assert_eq!(start_of(&lead(Some(1), Some(2))).1, StartedFrom::FirstCommit);
        // A squash merge's one commit is dated at the merge: the opening is earlier.
        assert_eq!(start_of(&lead(Some(10), Some(2))).1, StartedFrom::Opened);
        assert!(start_of(&lead(Some(10), Some(2))).2.is_none());
        let (_, from, note) = start_of(&lead(None, None));
        assert_eq!(from, StartedFrom::Merged);
        assert!(note.unwrap().contains("counted from the merge"));
        assert_eq!(lead_seconds(&lead(Some(1), Some(2))), 11 * 3600);
    }
}
