//! A window of delivery metrics, read from stored rows (`store::delivery`): each metric for the
//! window and the one before it (the trend), per bucket (day or week), and the items behind every
//! number. Never calls GitHub; never recomputes what a deploy shipped.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use crate::connections::{self, environments};
use crate::store::delivery::{
    self as rows, CountedDeploy, CountedLeadTime, DeployRow, InterventionRow, LeadTimeRow, ReworkRow, ShipmentKnown,
    Window,
};
use crate::store::{Store, StoreResult};

/// At most this many items of each kind in one answer (newest first); `*_total` says how many
/// there are. A narrower window lists the rest.
pub const ITEMS_MAX: usize = 500;

/// The longest window one answer covers.
pub const WINDOW_MAX_DAYS: i64 = 366;

/// How the window is cut.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[schema(as = DeliveryBucketSize)]
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
#[derive(Clone, Debug, Default, PartialEq, Serialize, utoipa::ToSchema)]
#[schema(as = DeliverySummary)]
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
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[schema(as = DeliverySpread)]
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
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
#[schema(as = DeliveryBucket)]
pub struct Bucket {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    #[serde(flatten)]
    pub summary: Summary,
}

/// A production deploy counted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[schema(as = DeliveryDeployItem)]
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[schema(as = DeliveryStartedFrom)]
#[serde(rename_all = "snake_case")]
pub enum StartedFrom {
    FirstCommit,
    Opened,
    Merged,
}

/// A pull request's lead time to an environment, with its stages.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[schema(as = DeliveryLeadTimeItem)]
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
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[schema(as = DeliveryReason)]
pub struct Reason {
    /// `rolled_back`, `reverted` or `regressed`.
    pub reason: String,
    pub detail: String,
}

/// A production deploy that needed intervention, and its recovery.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[schema(as = DeliveryFailureItem)]
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
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[schema(as = DeliveryReworkItem)]
pub struct ReworkItem {
    pub deployment_id: i64,
    pub repository: String,
    pub environment: String,
    pub live_at: DateTime<Utc>,
    /// `rollback` or `revert`.
    pub reasons: Vec<Reason>,
}

/// A production deploy whose shipped pull requests are not known, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[schema(as = DeliveryUnknownItem)]
pub struct UnknownItem {
    pub deployment_id: i64,
    pub repository: String,
    pub environment: String,
    pub live_at: DateTime<Utc>,
    pub why: String,
}

/// Items of one kind, newest first, at most [`ITEMS_MAX`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
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
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
#[schema(as = DeliveryReport)]
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
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[schema(as = DeliveryCountedEnvironment)]
pub struct CountedEnvironment {
    pub repository: String,
    pub environment: String,
    pub deploys: usize,
}

/// Everything the window and the one before it hold, counted: deploys and lead times as
/// numbers (a year of a busy repository is tens of thousands of them), failures and rework in
/// full (a few hundred).
struct Read {
    deploys: Vec<CountedDeploy>,
    lead_times: Vec<CountedLeadTime>,
    interventions: Vec<InterventionRow>,
    rework: Vec<ReworkRow>,
}

/// Builds the report for `asked` from stored rows: a fixed number of statements, whatever the
/// window holds.
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

    // Which environments count: the asked one, else the production ones by each connection's
    // settings (a `production_environments` pattern, or GitHub's flag on its deploys).
    let mut settings = HashMap::new();
    let mut counted_environments = Vec::new();
    for env in rows::window_environments(conn, &window).await? {
        let counts = match &asked.environment {
            Some(environment) => env.environment == *environment,
            None => {
                if let std::collections::hash_map::Entry::Vacant(slot) = settings.entry(env.connection_id) {
                    slot.insert(connections::get(store, env.connection_id).await?.map(|c| c.settings));
                }
                settings
                    .get(&env.connection_id)
                    .and_then(Option::as_ref)
                    .is_some_and(|s| environments::is_production(s, &env.environment, env.production_flag))
            }
        };
        if counts {
            counted_environments.push((env.connection_id, env.environment));
        }
    }
    let mut read = Read {
        deploys: rows::counted_deploys(conn, &window, &counted_environments).await?,
        lead_times: rows::counted_lead_times(conn, &window, &counted_environments).await?,
        interventions: rows::interventions(conn, &window).await?,
        rework: rows::rework(conn, &window).await?,
    };
    let counted: HashSet<i64> = read.deploys.iter().map(|d| d.id).collect();
    read.lead_times.retain(|l| counted.contains(&l.deployment_id));
    read.interventions.retain(|i| counted.contains(&i.deployment_id));
    read.rework.retain(|r| counted.contains(&r.deployment_id));

    let (from, to) = (asked.from.timestamp(), asked.to.timestamp());
    let previous = summarize(&read, previous_from.timestamp(), from);
    let summary = summarize(&read, from, to);
    let buckets = bucketed(&read, asked.from, asked.to, asked.bucket.length());

    // The items: the newest of each list, read in full.
    let current: Vec<&CountedDeploy> = read
        .deploys
        .iter()
        .filter(|d| d.completed >= from && d.completed < to)
        .collect();
    let newest = |keep: &dyn Fn(&CountedDeploy) -> bool| -> (usize, Vec<CountedDeploy>) {
        let all: Vec<CountedDeploy> = current.iter().rev().filter(|d| keep(d)).map(|d| **d).collect();
        (all.len(), all.into_iter().take(ITEMS_MAX).collect())
    };
    let (live_total, live) = newest(&|d| d.went_live);
    let (failed_total, failed) = newest(&|d| !d.went_live);
    let (unknown_total, unknown) = newest(&|d| d.went_live && d.shipment != ShipmentKnown::Listed);
    let mut ids: Vec<i64> = live.iter().chain(&failed).chain(&unknown).map(|d| d.id).collect();
    ids.sort_unstable();
    ids.dedup();
    let full: HashMap<i64, DeployRow> = rows::deploys_by_id(conn, &ids)
        .await?
        .into_iter()
        .map(|d| (d.id, d))
        .collect();
    let deploy_items = |list: &[CountedDeploy]| -> Vec<DeployItem> {
        list.iter()
            .filter_map(|c| full.get(&c.id))
            .map(|d| DeployItem {
                deployment_id: d.id,
                connection_id: d.connection_id,
                repository: d.repository.clone(),
                environment: d.environment.clone(),
                sha: d.sha.clone(),
                status: d.status.clone(),
                started_at: d.deploy_time,
                completed_at: d.completed_at,
                backfilled: d.backfilled,
            })
            .collect()
    };
    let unknown_items: Vec<UnknownItem> = unknown
        .iter()
        .filter_map(|c| full.get(&c.id).map(|d| (c, d)))
        .map(|(c, d)| UnknownItem {
            deployment_id: d.id,
            repository: d.repository.clone(),
            environment: d.environment.clone(),
            live_at: d.completed_at,
            why: unknown_why(c.shipment, c.backfilled),
        })
        .collect();
    let environments = rows::environment_counts(
        conn,
        &Window {
            from: asked.from,
            ..window.clone()
        },
        &counted_environments,
    )
    .await?;

    let lead_times: Vec<&CountedLeadTime> = read
        .lead_times
        .iter()
        .filter(|l| l.live >= from && l.live < to)
        .collect();
    let listed: Vec<i64> = lead_times.iter().rev().take(ITEMS_MAX).map(|l| l.id).collect();
    let mut full_leads: HashMap<i64, LeadTimeRow> = rows::lead_times_by_id(conn, &listed).await?.into_iter().collect();
    let lead_times = Items {
        total: lead_times.len(),
        items: listed
            .iter()
            .filter_map(|id| full_leads.remove(id))
            .map(|l| lead_time_item(&l))
            .collect(),
    };
    let in_window = |at: DateTime<Utc>| at >= asked.from && at < asked.to;

    Ok(Report {
        from: asked.from,
        to: asked.to,
        bucket: asked.bucket,
        repository: asked.repository.as_ref().map(|r| r.to_string()),
        environment: asked.environment.clone(),
        environments: environments
            .into_iter()
            .map(|(repository, environment, deploys)| CountedEnvironment {
                repository,
                environment,
                deploys,
            })
            .collect(),
        summary,
        previous,
        previous_from,
        buckets,
        deploys: Items {
            total: live_total,
            items: deploy_items(&live),
        },
        failed_attempts: Items {
            total: failed_total,
            items: deploy_items(&failed),
        },
        lead_times,
        failures: Items::newest_first(failures(read.interventions.iter().filter(|i| in_window(i.failed_at)))),
        rework: Items::newest_first(rework(read.rework.iter().filter(|r| in_window(r.live_at)))),
        unknown: Items {
            total: unknown_total,
            items: unknown_items,
        },
    })
}

/// Why a deploy that went live has no listed shipment (so its pull requests have no lead time).
fn unknown_why(shipment: ShipmentKnown, backfilled: bool) -> String {
    match shipment {
        ShipmentKnown::Listed => "its shipment is listed".to_owned(),
        ShipmentKnown::First => {
            "the first deploy shiplog saw in this environment: what it contains was not compared with anything, so the pull requests it brought have no lead time".to_owned()
        }
        ShipmentKnown::Unrelated => "its commit shares no history with the deploy it replaced: nothing could be listed".to_owned(),
        ShipmentKnown::Unread => "what it shipped was not read (no GitHub App was configured when it went live)".to_owned(),
        ShipmentKnown::None if backfilled => {
            "backfilled from history: it counts as a deploy, but what it shipped was not read".to_owned()
        }
        ShipmentKnown::None => "what it shipped is not recorded yet (its went-live job has not run)".to_owned(),
    }
}

fn lead_time_item(l: &LeadTimeRow) -> LeadTimeItem {
    let (start, started_from, note) = start_from(l.first_commit_at, l.opened_at, l.merged_at);
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
pub fn start_from(
    first_commit_at: Option<DateTime<Utc>>,
    opened_at: Option<DateTime<Utc>>,
    merged_at: DateTime<Utc>,
) -> (DateTime<Utc>, StartedFrom, Option<String>) {
    match (first_commit_at, opened_at) {
        (Some(first), Some(opened)) if first <= opened => (first, StartedFrom::FirstCommit, None),
        (Some(first), None) => (
            first,
            StartedFrom::FirstCommit,
            Some("when the pull request was opened is not known (merged before shiplog stored it)".to_owned()),
        ),
        (_, Some(opened)) => (
            opened,
            StartedFrom::Opened,
            first_commit_at
                .is_none()
                .then(|| "its commits' times are not known".to_owned()),
        ),
        (None, None) => (
            merged_at,
            StartedFrom::Merged,
            Some("neither its first commit nor its opening is known: counted from the merge".to_owned()),
        ),
    }
}

/// The rows of one span of time (a window or a bucket), already picked.
#[derive(Default)]
struct Span<'a> {
    deploys: usize,
    backfilled_deploys: usize,
    failed_attempts: usize,
    lead_seconds: Vec<i64>,
    interventions: Vec<&'a InterventionRow>,
    rework: Vec<&'a ReworkRow>,
}

impl<'a> Span<'a> {
    fn add_deploy(&mut self, d: &CountedDeploy) {
        if d.went_live {
            self.deploys += 1;
            self.backfilled_deploys += usize::from(d.backfilled);
        } else {
            self.failed_attempts += 1;
        }
    }

    /// The numbers of the span `[from, to)` (whole seconds since the epoch).
    fn summary(self, from: i64, to: i64) -> Summary {
        let mut summary = Summary {
            deploys: self.deploys,
            backfilled_deploys: self.backfilled_deploys,
            failed_attempts: self.failed_attempts,
            ..Summary::default()
        };
        let days = (to - from) as f64 / 86_400.0;
        if days > 0.0 {
            summary.deploys_per_day = round(summary.deploys as f64 / days);
            summary.deploys_per_week = round(summary.deploys as f64 * 7.0 / days);
        }
        summary.lead_time = Spread::of(self.lead_seconds);
        let failures = failures(self.interventions);
        summary.failed_deploys = failures.len();
        summary.unrecovered = failures.iter().filter(|f| f.recovery_seconds.is_none()).count();
        summary.recovery_time = Spread::of(failures.iter().filter_map(|f| f.recovery_seconds).collect());
        summary.unplanned_deploys = rework(self.rework).len();
        if summary.deploys > 0 {
            summary.change_fail_rate = Some(round(summary.failed_deploys as f64 / summary.deploys as f64));
            summary.rework_rate = Some(round(summary.unplanned_deploys as f64 / summary.deploys as f64));
        }
        summary
    }
}

/// The numbers of `[from, to)` (whole seconds since the epoch).
fn summarize(read: &Read, from: i64, to: i64) -> Summary {
    let within = |at: i64| at >= from && at < to;
    let mut span = Span::default();
    read.deploys
        .iter()
        .filter(|d| within(d.completed))
        .for_each(|d| span.add_deploy(d));
    span.lead_seconds = read
        .lead_times
        .iter()
        .filter(|l| within(l.live))
        .map(|l| l.lead_seconds)
        .collect();
    span.interventions = read
        .interventions
        .iter()
        .filter(|i| within(i.failed_at.timestamp()))
        .collect();
    span.rework = read.rework.iter().filter(|r| within(r.live_at.timestamp())).collect();
    span.summary(from, to)
}

/// The numbers of each bucket of `length` from `from` (the last one ends at `to`): every row is
/// put in its bucket in one pass, so a year by day costs what a year by week does (the same as
/// [`summarize`] on each bucket, which would read every row once per bucket).
fn bucketed(read: &Read, from: DateTime<Utc>, to: DateTime<Utc>, length: Duration) -> Vec<Bucket> {
    let mut bounds = Vec::new();
    let mut start = from;
    while start < to {
        let end = (start + length).min(to);
        bounds.push((start, end));
        start = end;
    }
    let mut spans: Vec<Span> = bounds.iter().map(|_| Span::default()).collect();
    // Bucket k is [from + k × length, from + (k + 1) × length), in whole seconds.
    let (first, last) = (from.timestamp(), to.timestamp());
    let step = length.num_seconds().max(1);
    let index = |at: i64| (at >= first && at < last).then(|| (((at - first) / step) as usize).min(bounds.len() - 1));
    for d in &read.deploys {
        if let Some(k) = index(d.completed) {
            spans[k].add_deploy(d);
        }
    }
    for l in &read.lead_times {
        if let Some(k) = index(l.live) {
            spans[k].lead_seconds.push(l.lead_seconds);
        }
    }
    for i in &read.interventions {
        if let Some(k) = index(i.failed_at.timestamp()) {
            spans[k].interventions.push(i);
        }
    }
    for r in &read.rework {
        if let Some(k) = index(r.live_at.timestamp()) {
            spans[k].rework.push(r);
        }
    }
    bounds
        .into_iter()
        .zip(spans)
        .map(|((start, end), span)| Bucket {
            start,
            end,
            summary: span.summary(start.timestamp(), end.timestamp()),
        })
        .collect()
}

fn round(value: f64) -> f64 {
    (value * 10_000.0).round() / 10_000.0
}

/// The failed deploys among `interventions` (oldest first), oldest first: each deploy once, with
/// every reason, and the earliest recovery among them.
fn failures<'a>(interventions: impl IntoIterator<Item = &'a InterventionRow>) -> Vec<FailureItem> {
    let mut by_deploy: Vec<FailureItem> = Vec::new();
    let mut index: HashMap<i64, usize> = HashMap::new();
    for i in interventions {
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

/// The unplanned deploys among `rework` (oldest first), oldest first, each once with every reason.
fn rework<'a>(rework: impl IntoIterator<Item = &'a ReworkRow>) -> Vec<ReworkItem> {
    let mut items: Vec<ReworkItem> = Vec::new();
    let mut index: HashMap<i64, usize> = HashMap::new();
    for r in rework {
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

    /// A window's rows with times spread over `days` (some exactly on a bucket's edge, some
    /// outside the window), as a report reads them.
    fn spread_rows(from: DateTime<Utc>, days: i64) -> Read {
        let from = from.timestamp();
        let at = |n: i64| from + n * 37_957 - 86_400;
        let edge = |n: i64| from + n * 86_400;
        let time = |epoch: i64| DateTime::<Utc>::from_timestamp(epoch, 0).unwrap();
        let mut read = Read {
            deploys: Vec::new(),
            lead_times: Vec::new(),
            interventions: Vec::new(),
            rework: Vec::new(),
        };
        let count = days * 86_400 / 37_957 + 4;
        for n in 0..count {
            let when = if n % 11 == 0 { edge(n % days) } else { at(n) };
            read.deploys.push(CountedDeploy {
                id: n,
                completed: when,
                went_live: n % 4 != 3,
                backfilled: n % 9 == 0,
                shipment: ShipmentKnown::Listed,
            });
            for pr in 0..(n % 3) {
                read.lead_times.push(CountedLeadTime {
                    id: n * 3 + pr,
                    deployment_id: n,
                    live: when,
                    lead_seconds: (n % 97) * 3600 + pr * 60,
                });
            }
            if n % 7 == 2 {
                for reason in ["rolled_back", "regressed"].iter().take(1 + (n % 2) as usize) {
                    read.interventions.push(InterventionRow {
                        connection_id: 1,
                        repository: "o/r".into(),
                        repository_key: "o/r".into(),
                        environment: "production".into(),
                        deployment_id: n,
                        reason: (*reason).into(),
                        detail: "d".into(),
                        failed_at: time(when),
                        recovered_by_id: (n % 3 != 0).then_some(n + 1),
                        recovered_at: (n % 3 != 0).then(|| time(when) + Duration::minutes(n % 400)),
                    });
                }
            }
            if n % 6 == 1 {
                read.rework.push(ReworkRow {
                    connection_id: 1,
                    repository: "o/r".into(),
                    repository_key: "o/r".into(),
                    environment: "production".into(),
                    deployment_id: n,
                    reason: "revert".into(),
                    detail: "d".into(),
                    live_at: time(when),
                });
            }
        }
        read
    }

    #[test]
    fn buckets_filled_in_one_pass_hold_the_numbers_of_summarizing_each_bucket() {
        let from = DateTime::<Utc>::from_timestamp(1_764_547_200, 0).unwrap();
        for (days, length) in [
            (366, Duration::days(1)),
            (366, Duration::days(7)),
            (30, Duration::days(7)),
            (1, Duration::days(1)),
        ] {
            let to = from + Duration::days(days);
            let read = spread_rows(from, days);
            let buckets = bucketed(&read, from, to, length);
            let mut expected = Vec::new();
            let mut start = from;
            while start < to {
                let end = (start + length).min(to);
                expected.push(Bucket {
                    start,
                    end,
                    summary: summarize(&read, start.timestamp(), end.timestamp()),
                });
                start = end;
            }
            assert_eq!(buckets, expected, "{days} days by {length}");
            // The rows did land in buckets: not a comparison of empty summaries.
            let counted: usize = buckets
                .iter()
                .map(|b| b.summary.deploys + b.summary.failed_attempts)
                .sum();
            assert_eq!(
                counted,
                summarize(&read, from.timestamp(), to.timestamp()).deploys
                    + summarize(&read, from.timestamp(), to.timestamp()).failed_attempts
            );
            assert!(counted > 0);
            if days >= 30 {
                assert!(buckets
                    .iter()
                    .any(|b| b.summary.failed_deploys > 0 && b.summary.lead_time.count > 0));
            }
        }
    }

    #[test]
    fn a_lead_time_starts_at_the_earliest_known_stage_and_says_what_it_did_not_know() {
        let at = |h: i64| DateTime::<Utc>::from_timestamp(1_790_000_000 + h * 3600, 0).unwrap();
        let start = |first: Option<i64>, opened: Option<i64>| start_from(first.map(at), opened.map(at), at(10));
        assert_eq!(start(Some(1), Some(2)).1, StartedFrom::FirstCommit);
        assert_eq!(start(Some(1), Some(2)).0, at(1));
        // A squash merge's one commit is dated at the merge: the opening is earlier.
        assert_eq!(start(Some(10), Some(2)).1, StartedFrom::Opened);
        assert!(start(Some(10), Some(2)).2.is_none());
        let (_, from, note) = start(None, None);
        assert_eq!(from, StartedFrom::Merged);
        assert!(note.unwrap().contains("counted from the merge"));
    }
}
