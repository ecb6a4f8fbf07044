//! `/insights`: the delivery metrics of a window as a page, from the same report as
//! `GET /api/metrics/delivery` (`delivery::report`, parameters read by `http::delivery`). Five
//! tiles with the trend against the window before, one chart per metric over the buckets, and the
//! items behind every number. Each number is a link: a tile to its items below, a bar to the
//! same page narrowed to its bucket. This file only words the report; it reads nothing else.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use askama::Template;
use chrono::{DateTime, Datelike, SecondsFormat, Timelike, Utc};

use super::charts::{self, number, Chart, Point, Scale};
use super::{csrf, exact, html, pull_url};
use crate::delivery::report::{self, BucketSize, Reason, Report, StartedFrom, Summary};
use crate::error::ApiError;
use crate::http::auth::Caller;
use crate::http::delivery::{read_query, scoped, Sent};
use crate::http::session::urlencode;
use crate::http::AppState;

/// How long something took, as people say it: "45 s", "12 m", "3 h 20 m", "2 d 4 h".
pub fn span(seconds: i64) -> String {
    let s = seconds.max(0);
    match s {
        ..=59 => format!("{s} s"),
        60..=3_599 => format!("{} m", s / 60),
        3_600..=86_399 => match s % 3_600 / 60 {
            0 => format!("{} h", s / 3_600),
            m => format!("{} h {m} m", s / 3_600),
        },
        _ => match s % 86_400 / 3_600 {
            0 => format!("{} d", s / 86_400),
            h => format!("{} d {h} h", s / 86_400),
        },
    }
}

/// A time in a query: the day when it is midnight, else RFC 3339.
fn query_time(at: DateTime<Utc>) -> String {
    if at.num_seconds_from_midnight() == 0 {
        at.format("%Y-%m-%d").to_string()
    } else {
        at.to_rfc3339_opts(SecondsFormat::Secs, true)
    }
}

/// A time in a table: short, the exact one in its tooltip.
struct When {
    short: String,
    exact: String,
}

fn when(at: DateTime<Utc>) -> When {
    When {
        short: at.format("%Y-%m-%d %H:%M").to_string(),
        exact: exact(at),
    }
}

/// Whether a move up is good news.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Better {
    Higher,
    Lower,
}

/// The change from the window before.
struct Trend {
    /// `↑`, `↓`, `→`, or empty when there is nothing to compare.
    arrow: &'static str,
    /// `good`, `bad`, `flat` or `none`: the CSS class.
    class: &'static str,
    /// "+0.5/day", "−2 h", "+5 pts".
    delta: String,
    /// "was 1.2/day".
    was: String,
    /// Said in full, for the tooltip.
    title: String,
}

fn trend(now: Option<f64>, before: Option<f64>, better: Better, say: impl Fn(f64) -> String) -> Trend {
    match (now, before) {
        (Some(now), Some(before)) => {
            let change = now - before;
            let (arrow, class) = if change.abs() < 1e-9 {
                ("→", "flat")
            } else if (change > 0.0) == (better == Better::Higher) {
                (if change > 0.0 { "↑" } else { "↓" }, "good")
            } else {
                (if change > 0.0 { "↑" } else { "↓" }, "bad")
            };
            let sign = if change > 0.0 {
                "+"
            } else if change < 0.0 {
                "−"
            } else {
                "±"
            };
            let good = match better {
                Better::Higher => "higher is better",
                Better::Lower => "lower is better",
            };
            Trend {
                arrow,
                class,
                delta: format!("{sign}{}", say(change.abs())),
                was: format!("was {}", say(before)),
                title: format!("{} in the window before, {} now ({good})", say(before), say(now)),
            }
        }
        (_, None) => Trend {
            arrow: "",
            class: "none",
            delta: String::new(),
            was: "nothing to compare with in the window before".to_owned(),
            title: "the window before has nothing to compare with".to_owned(),
        },
        (None, Some(before)) => Trend {
            arrow: "",
            class: "none",
            delta: String::new(),
            was: format!("was {}", say(before)),
            title: "nothing to measure in this window".to_owned(),
        },
    }
}

fn percent(share: f64) -> String {
    format!("{} %", number(share * 100.0))
}

/// A metric: its tile and its chart.
struct Metric {
    id: &'static str,
    name: &'static str,
    /// Where the tile's number leads: the items behind it.
    href: String,
    value: String,
    detail: String,
    trend: Trend,
    chart: Chart,
    /// Under the chart: what a bar is.
    caption: String,
}

struct ReasonView {
    label: String,
    class: String,
    detail: String,
}

fn reason_views(reasons: &[Reason]) -> Vec<ReasonView> {
    reasons
        .iter()
        .map(|r| ReasonView {
            label: r.reason.replace('_', " "),
            class: match r.reason.as_str() {
                "rolled_back" | "rollback" => "rolled_back",
                "regressed" => "failed",
                _ => "reverted",
            }
            .to_owned(),
            detail: r.detail.clone(),
        })
        .collect()
}

struct LeadTimeView {
    pull_request: i64,
    pull_url: String,
    title: String,
    author: Option<String>,
    repository: String,
    environment: String,
    deployment_id: i64,
    /// (stage, time), in order; a stage not known is absent.
    stages: Vec<(&'static str, When)>,
    lead_time: String,
    started_from: &'static str,
    note: Option<String>,
}

struct FailureView {
    deployment_id: i64,
    repository: String,
    environment: String,
    failed_at: When,
    reasons: Vec<ReasonView>,
    recovered_by: Option<i64>,
    recovered_at: Option<When>,
    recovery: Option<String>,
}

struct DeployView {
    deployment_id: i64,
    repository: String,
    environment: String,
    short_sha: String,
    sha: String,
    status: String,
    status_label: String,
    started_at: When,
    completed_at: When,
    backfilled: bool,
}

struct ReworkView {
    deployment_id: i64,
    repository: String,
    environment: String,
    live_at: When,
    reasons: Vec<ReasonView>,
}

struct UnknownView {
    deployment_id: i64,
    repository: String,
    environment: String,
    live_at: When,
    why: String,
}

/// A list of items: how many are shown of how many there are.
struct Listed<T> {
    shown: usize,
    total: usize,
    items: Vec<T>,
}

fn listed<T, V>(items: &report::Items<T>, view: impl Fn(&T) -> V) -> Listed<V> {
    Listed {
        shown: items.items.len(),
        total: items.total,
        items: items.items.iter().map(view).collect(),
    }
}

/// What the page shows of a report.
struct Shown {
    window: String,
    previous_window: String,
    bucket: &'static str,
    /// "repository · environment (deploys)".
    environments: Vec<(String, String, usize)>,
    metrics: Vec<Metric>,
    nothing_counted: bool,
    lead_times: Listed<LeadTimeView>,
    failures: Listed<FailureView>,
    failed_attempts: Listed<DeployView>,
    rework: Listed<ReworkView>,
    unknown: Listed<UnknownView>,
    deploys: Listed<DeployView>,
}

#[derive(Template)]
#[template(path = "insights.html")]
struct InsightsPage {
    tab: &'static str,
    csrf: String,
    connections: Vec<(i64, String)>,
    filter: Sent,
    error: Option<String>,
    shown: Option<Shown>,
}

/// The filters to echo in the form when the query could not be read: the first value of each
/// known parameter, as typed.
fn echo(raw: &str) -> Sent {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw).unwrap_or_default();
    let mut sent = Sent::default();
    for (key, value) in pairs {
        let Some(slot) = sent.slot(&key) else {
            continue;
        };
        if slot.is_none() {
            *slot = Some(value);
        }
    }
    sent
}

/// The page's address for `filter` over `[from, to)`, at `anchor`.
fn narrowed(filter: &Sent, from: DateTime<Utc>, to: DateTime<Utc>, anchor: &str) -> String {
    let mut query = Vec::new();
    for (key, value) in [
        ("repository", &filter.repository),
        ("environment", &filter.environment),
        ("connection", &filter.connection),
    ] {
        if let Some(value) = value {
            query.push(format!("{key}={}", urlencode(value)));
        }
    }
    query.push(format!("from={}", urlencode(&query_time(from))));
    query.push(format!("to={}", urlencode(&query_time(to))));
    format!("/insights?{}#{anchor}", query.join("&"))
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn metrics(report: &Report, filter: &Sent) -> Vec<Metric> {
    let (now, before) = (&report.summary, &report.previous);
    let per_week = report.bucket == BucketSize::Week;
    // Under the axis the year is said only when the window spans two.
    let two_years = report.from.year() != (report.to - chrono::Duration::seconds(1)).year();
    let date = |b: &report::Bucket| {
        let format = if two_years { "%b %-d '%y" } else { "%b %-d" };
        b.start.format(format).to_string()
    };
    let bucket_name = |b: &report::Bucket| {
        if per_week {
            format!("week of {}", b.start.format("%Y-%m-%d"))
        } else {
            b.start.format("%a %Y-%m-%d").to_string()
        }
    };
    let chart = |name: &str, scale: Scale, anchor: &str, point: &dyn Fn(&Summary) -> (Option<f64>, String)| {
        charts::bars(
            name,
            scale,
            report
                .buckets
                .iter()
                .map(|b| {
                    let (value, said) = point(&b.summary);
                    Point {
                        label: date(b),
                        value,
                        title: format!("{}: {said}", bucket_name(b)),
                        href: narrowed(filter, b.start, b.end, anchor),
                    }
                })
                .collect(),
        )
    };
    let seconds = |s: Option<i64>| s.map(|s| s as f64);
    let span_or = |s: Option<i64>, none: &str| s.map(span).unwrap_or_else(|| none.to_owned());

    let frequency = if per_week {
        (now.deploys_per_week, before.deploys_per_week, "week")
    } else {
        (now.deploys_per_day, before.deploys_per_day, "day")
    };
    let unit = frequency.2;
    vec![
        Metric {
            id: "frequency",
            name: "Deployment frequency",
            href: "#deploys".to_owned(),
            value: format!("{}/{unit}", number(frequency.0)),
            detail: format!(
                "{} · {}/{}{}",
                plural(now.deploys, "production deploy", "production deploys"),
                number(if per_week {
                    now.deploys_per_day
                } else {
                    now.deploys_per_week
                }),
                if per_week { "day" } else { "week" },
                if now.failed_attempts > 0 {
                    format!(
                        " · {}",
                        plural(now.failed_attempts, "failed attempt", "failed attempts")
                    )
                } else {
                    String::new()
                }
            ),
            trend: trend(
                Some(frequency.0),
                (before.deploys > 0 || now.deploys > 0).then_some(frequency.1),
                Better::Higher,
                |v| format!("{}/{unit}", number(v)),
            ),
            chart: chart("production deploys per bucket", Scale::Count, "deploys", &|s| {
                (
                    Some(s.deploys as f64),
                    plural(s.deploys, "production deploy", "production deploys"),
                )
            }),
            caption: format!("production deploys per {}", if per_week { "week" } else { "day" }),
        },
        Metric {
            id: "lead-time",
            name: "Change lead time",
            href: "#lead-times".to_owned(),
            value: span_or(now.lead_time.median_seconds, "—"),
            detail: match now.lead_time.p90_seconds {
                Some(p90) => format!(
                    "median · p90 {} · {}",
                    span(p90),
                    plural(now.lead_time.count, "pull request", "pull requests")
                ),
                None => "no pull request went live with a known lead time".to_owned(),
            },
            trend: trend(
                seconds(now.lead_time.median_seconds),
                seconds(before.lead_time.median_seconds),
                Better::Lower,
                |v| span(v.round() as i64),
            ),
            chart: chart(
                "median lead time per bucket",
                Scale::Seconds,
                "lead-times",
                &|s| match (s.lead_time.median_seconds, s.lead_time.p90_seconds) {
                    (Some(median), Some(p90)) => (
                        Some(median as f64),
                        format!(
                            "median {}, p90 {}, {}",
                            span(median),
                            span(p90),
                            plural(s.lead_time.count, "pull request", "pull requests")
                        ),
                    ),
                    _ => (None, "no pull request went live".to_owned()),
                },
            ),
            caption: "median lead time of the pull requests that went live".to_owned(),
        },
        Metric {
            id: "fail-rate",
            name: "Change fail rate",
            href: "#failures".to_owned(),
            value: now.change_fail_rate.map(percent).unwrap_or_else(|| "—".to_owned()),
            detail: format!(
                "{} of {} needed intervention",
                now.failed_deploys,
                plural(now.deploys, "deploy", "deploys")
            ),
            trend: trend(now.change_fail_rate, before.change_fail_rate, Better::Lower, |v| {
                percent(v).replace(" %", " pts")
            }),
            chart: chart(
                "change fail rate per bucket",
                Scale::Share,
                "failures",
                &|s| match s.change_fail_rate {
                    Some(rate) => (
                        Some(rate),
                        format!(
                            "{}: {} of {}",
                            percent(rate),
                            s.failed_deploys,
                            plural(s.deploys, "deploy", "deploys")
                        ),
                    ),
                    None => (None, "no production deploy".to_owned()),
                },
            ),
            caption: "share of the deploys that needed intervention".to_owned(),
        },
        Metric {
            id: "recovery",
            name: "Failed deployment recovery time",
            href: "#failures".to_owned(),
            value: span_or(now.recovery_time.median_seconds, "—"),
            detail: match (now.recovery_time.p90_seconds, now.unrecovered) {
                (Some(p90), 0) => format!("median · p90 {}", span(p90)),
                (Some(p90), n) => format!("median · p90 {} · {n} not recovered", span(p90)),
                (None, 0) => "no failed deploy to recover from".to_owned(),
                (None, n) => format!("{} not recovered yet", plural(n, "failed deploy", "failed deploys")),
            },
            trend: trend(
                seconds(now.recovery_time.median_seconds),
                seconds(before.recovery_time.median_seconds),
                Better::Lower,
                |v| span(v.round() as i64),
            ),
            chart: chart("median recovery time per bucket", Scale::Seconds, "failures", &|s| {
                let unrecovered = if s.unrecovered > 0 {
                    format!(", {} not recovered", s.unrecovered)
                } else {
                    String::new()
                };
                match s.recovery_time.median_seconds {
                    Some(median) => (Some(median as f64), format!("median {}{unrecovered}", span(median))),
                    None if s.unrecovered > 0 => (None, format!("{} not recovered", s.unrecovered)),
                    None => (None, "no failed deploy".to_owned()),
                }
            }),
            caption: "median time from a failed deploy to the deploy that recovered it".to_owned(),
        },
        Metric {
            id: "rework",
            name: "Deployment rework rate",
            href: "#rework".to_owned(),
            value: now.rework_rate.map(percent).unwrap_or_else(|| "—".to_owned()),
            detail: format!(
                "{} of {} unplanned",
                now.unplanned_deploys,
                plural(now.deploys, "deploy", "deploys")
            ),
            trend: trend(now.rework_rate, before.rework_rate, Better::Lower, |v| {
                percent(v).replace(" %", " pts")
            }),
            chart: chart(
                "rework rate per bucket",
                Scale::Share,
                "rework",
                &|s| match s.rework_rate {
                    Some(rate) => (
                        Some(rate),
                        format!(
                            "{}: {} of {} unplanned",
                            percent(rate),
                            s.unplanned_deploys,
                            plural(s.deploys, "deploy", "deploys")
                        ),
                    ),
                    None => (None, "no production deploy".to_owned()),
                },
            ),
            caption: "share of the deploys that were rollbacks or shipped a revert".to_owned(),
        },
    ]
}

fn deploy_view(d: &report::DeployItem) -> DeployView {
    DeployView {
        deployment_id: d.deployment_id,
        repository: d.repository.clone(),
        environment: d.environment.clone(),
        short_sha: d.sha.chars().take(7).collect(),
        sha: d.sha.clone(),
        status: d.status.clone(),
        status_label: d.status.replace('_', " "),
        started_at: when(d.started_at),
        completed_at: when(d.completed_at),
        backfilled: d.backfilled,
    }
}

/// "2026-10-04 to 2026-11-02 (30 days)", both days included, when the window is whole days;
/// else the exact times, the end excluded.
fn window_text(from: DateTime<Utc>, to: DateTime<Utc>) -> String {
    let days = (to - from).num_days();
    if from.num_seconds_from_midnight() != 0 || to.num_seconds_from_midnight() != 0 {
        return format!("{} to {} (excluded)", exact(from), exact(to));
    }
    let last = to - chrono::Duration::days(1);
    match days {
        1 => format!("{} (1 day)", from.format("%Y-%m-%d")),
        _ => format!(
            "{} to {} ({days} days)",
            from.format("%Y-%m-%d"),
            last.format("%Y-%m-%d")
        ),
    }
}

fn shown(state: &AppState, report: &Report, filter: &Sent) -> Shown {
    Shown {
        window: window_text(report.from, report.to),
        previous_window: window_text(report.previous_from, report.from),
        bucket: match report.bucket {
            BucketSize::Day => "day",
            BucketSize::Week => "week",
        },
        environments: report
            .environments
            .iter()
            .map(|e| (e.repository.clone(), e.environment.clone(), e.deploys))
            .collect(),
        metrics: metrics(report, filter),
        nothing_counted: report.summary.deploys == 0 && report.summary.failed_attempts == 0,
        lead_times: listed(&report.lead_times, |l| LeadTimeView {
            pull_request: l.pull_request,
            pull_url: pull_url(state, &l.repository, l.pull_request),
            title: l.title.clone(),
            author: l.author.clone(),
            repository: l.repository.clone(),
            environment: l.environment.clone(),
            deployment_id: l.deployment_id,
            stages: [
                ("first commit", l.first_commit_at),
                ("opened", l.opened_at),
                ("merged", Some(l.merged_at)),
                ("deploy started", Some(l.deploy_started_at)),
                ("live", Some(l.live_at)),
            ]
            .into_iter()
            .filter_map(|(stage, at)| at.map(|at| (stage, when(at))))
            .collect(),
            lead_time: span(l.lead_time_seconds),
            started_from: match l.started_from {
                StartedFrom::FirstCommit => "from the first commit",
                StartedFrom::Opened => "from the opening",
                StartedFrom::Merged => "from the merge",
            },
            note: l.note.clone(),
        }),
        failures: listed(&report.failures, |f| FailureView {
            deployment_id: f.deployment_id,
            repository: f.repository.clone(),
            environment: f.environment.clone(),
            failed_at: when(f.failed_at),
            reasons: reason_views(&f.reasons),
            recovered_by: f.recovered_by,
            recovered_at: f.recovered_at.map(when),
            recovery: f.recovery_seconds.map(span),
        }),
        failed_attempts: listed(&report.failed_attempts, deploy_view),
        rework: listed(&report.rework, |r| ReworkView {
            deployment_id: r.deployment_id,
            repository: r.repository.clone(),
            environment: r.environment.clone(),
            live_at: when(r.live_at),
            reasons: reason_views(&r.reasons),
        }),
        unknown: listed(&report.unknown, |u| UnknownView {
            deployment_id: u.deployment_id,
            repository: u.repository.clone(),
            environment: u.environment.clone(),
            live_at: when(u.live_at),
            why: u.why.clone(),
        }),
        deploys: listed(&report.deploys, deploy_view),
    }
}

/// `/insights`: the delivery metrics of a window, the parameters of `GET /api/metrics/delivery`.
/// An invalid parameter shows the form with the error (422, 400 for `from` after `to`);
/// another connection's repository is 403.
#[tracing::instrument(skip_all)]
pub async fn show_insights(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (csrf, cookie) = csrf(&req, &state)?;
    let scope = caller.scope();
    let mut page = InsightsPage {
        tab: "insights",
        csrf,
        connections: crate::connections::list(&state.store)
            .await?
            .into_iter()
            .filter(|c| c.deleted_at.is_none() && scope.includes(crate::types::ConnectionId(c.id)))
            .map(|c| (c.id, c.account.login))
            .collect(),
        filter: echo(req.query_string()),
        error: None,
        shown: None,
    };
    let asked = match read_query(req.query_string()) {
        Ok(sent) => {
            page.filter = sent.clone();
            scoped(&caller, &state, &sent).await
        }
        Err(errors) => Err(ApiError::unprocessable(errors)),
    };
    let asked = match asked {
        Ok(asked) => asked,
        Err(error) if error.status_code().is_client_error() => {
            let status = error.status_code();
            page.error = Some(error.to_string());
            return Ok(html(status, page.render(), cookie));
        }
        Err(error) => return Err(error),
    };
    let report = report::build(&state.store, &asked).await?;
    page.shown = Some(shown(&state, &report, &page.filter));
    Ok(html(StatusCode::OK, page.render(), cookie))
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn durations_read_as_people_say_them() {
        assert_eq!(span(45), "45 s");
        assert_eq!(span(12 * 60 + 5), "12 m");
        assert_eq!(span(3 * 3600 + 20 * 60), "3 h 20 m");
        assert_eq!(span(3 * 3600), "3 h");
        assert_eq!(span(2 * 86_400 + 4 * 3600 + 59), "2 d 4 h");
        assert_eq!(span(-5), "0 s");
    }

    #[test]
    fn a_trend_says_whether_the_move_is_good() {
        let hours = |v: f64| span(v as i64);
        let faster = trend(Some(3_600.0), Some(7_200.0), Better::Lower, hours);
        assert_eq!(
            (faster.arrow, faster.class, faster.delta.as_str()),
            ("↓", "good", "−1 h")
        );
        let fewer = trend(Some(1.0), Some(2.0), Better::Higher, number_per_day);
        assert_eq!((fewer.arrow, fewer.class), ("↓", "bad"));
        assert_eq!(
            trend(Some(1.0), Some(1.0), Better::Higher, number_per_day).class,
            "flat"
        );
        assert_eq!(trend(Some(1.0), None, Better::Higher, number_per_day).class, "none");
    }

    fn number_per_day(v: f64) -> String {
        format!("{}/day", number(v))
    }

    #[test]
    fn a_window_of_whole_days_names_its_first_and_last_day() {
        let day = |d: u32| Utc.with_ymd_and_hms(2026, 11, d, 0, 0, 0).single().unwrap();
        assert_eq!(window_text(day(1), day(8)), "2026-11-01 to 2026-11-07 (7 days)");
        assert_eq!(window_text(day(1), day(2)), "2026-11-01 (1 day)");
        assert_eq!(
            window_text(day(1), day(2) + chrono::Duration::hours(6)),
            "2026-11-01 00:00:00 UTC to 2026-11-02 06:00:00 UTC (excluded)"
        );
    }

    #[test]
    fn a_bucket_link_keeps_the_filters_and_narrows_the_window() {
        let filter = Sent {
            repository: Some("acme/web app".into()),
            environment: Some("prod&x=1".into()),
            bucket: Some("week".into()),
            ..Sent::default()
        };
        let from = Utc.with_ymd_and_hms(2026, 11, 2, 0, 0, 0).single().unwrap();
        let to = Utc.with_ymd_and_hms(2026, 11, 2, 12, 0, 0).single().unwrap();
        assert_eq!(
            narrowed(&filter, from, to, "failures"),
            "/insights?repository=acme/web%20app&environment=prod%26x%3D1&from=2026-11-02&to=2026-11-02T12%3A00%3A00Z#failures"
        );
    }
}
