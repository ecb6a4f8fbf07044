//! Prometheus metrics: one [`Metrics`] registry per running server (an `Arc` in `AppState` and in
//! the parts that count), never a process global, so servers sharing a process (the test suite)
//! count apart.
//!
//! Every family is registered here with bounded labels: event names from [`EVENTS`] (anything else
//! is `other`), outcomes from the code's own enums, route and endpoint patterns (never paths),
//! status classes. No repository name or SHA is ever a label value. Counting on the webhook path
//! is an atomic increment on a counter resolved when the registry was built.
//!
//! The job queue's gauges are not kept here: [`queue`] reads them from the database at scrape
//! time, so every replica reports the same shared queue. This module does not serve HTTP
//! (`http::metrics` does) and knows no domain type beyond the labels it is given.

pub mod queue;

use std::borrow::Cow;
use std::sync::atomic::AtomicU64;
use std::sync::OnceLock;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

/// The content type of a scrape (OpenMetrics text, which Prometheus reads natively).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The webhook events counted by name; any other is counted as `other`.
pub const EVENTS: [&str; 15] = [
    "ping",
    "installation",
    "installation_repositories",
    "deployment",
    "deployment_status",
    "workflow_run",
    "workflow_job",
    "pull_request",
    "issue_comment",
    "push",
    "check_run",
    "check_suite",
    "status",
    "github_app_authorization",
    "other",
];

/// How a webhook delivery ended: intake's own outcomes, then `rejected` (signature, App, headers
/// or payload refused with a 4xx) and `failed` (a 5xx: the database, the writer).
pub const DELIVERY_OUTCOMES: [&str; 6] = ["processed", "duplicate", "ignored", "skipped", "rejected", "failed"];

/// The agent events counted by name ([`crate::outbound`]'s `X-Shiplog-Event`).
pub const AGENT_EVENTS: [&str; 4] = ["monitoring.check", "trigger.fired", "deployment.rolled_back", "other"];
/// How an agent call ended: a 2xx, another answer, no answer, or refused by the outbound policy.
pub const AGENT_OUTCOMES: [&str; 4] = ["success", "failed", "unreachable", "refused"];

/// The label of an event name from [`EVENTS`] (`other` when it is not one of them).
pub fn event_label(event: &str) -> &'static str {
    EVENTS.iter().copied().find(|e| *e == event).unwrap_or("other")
}

/// `1xx` … `5xx` for an HTTP status.
pub fn status_class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    route: Cow<'static, str>,
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobAttemptLabels {
    kind: Cow<'static, str>,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GitHubCallLabels {
    endpoint: &'static str,
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct InstallationLabels {
    installation: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceLabels {
    source: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeployLabels {
    source: &'static str,
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: Cow<'static, str>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EventOutcomeLabels {
    event: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
    git_sha: &'static str,
    database: &'static str,
}

type Seconds = Family<RequestLabels, Histogram, fn() -> Histogram>;

/// The registry and every family; see the module docs.
pub struct Metrics {
    registry: Registry,
    /// `EVENTS.len() × DELIVERY_OUTCOMES.len()` counters, resolved once.
    deliveries: Vec<Counter>,
    requests: Seconds,
    job_attempts: Family<JobAttemptLabels, Counter>,
    github_calls: Family<GitHubCallLabels, Counter>,
    rate_limit_remaining: Family<InstallationLabels, Gauge>,
    /// `cache`, `github`.
    ancestry: [Counter; 2],
    /// `AGENT_EVENTS.len() × AGENT_OUTCOMES.len()`.
    agent_calls: Vec<Counter>,
    deploy_reports: Family<DeployLabels, Counter>,
    batch_sizes: Histogram,
    recovery_passes: Family<OutcomeLabels, Counter>,
    recovery_redeliveries: Family<OutcomeLabels, Counter>,
    /// Read from the database at scrape time ([`queue`]).
    pub(crate) jobs: Family<queue::KindState, Gauge>,
    pub(crate) oldest_due: Family<queue::Kind, Gauge<f64, AtomicU64>>,
    /// The registered job kinds: their queue gauges are shown (as 0) when none is waiting.
    pub(crate) job_kinds: OnceLock<Vec<&'static str>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

fn request_seconds() -> Histogram {
    Histogram::new([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0])
}

impl Metrics {
    /// A registry with every family; `database` is `sqlite` or `postgres` (for build info).
    pub fn new(database: &'static str) -> Self {
        let mut registry = Registry::with_prefix("shiplog");

        let build = Info::new(BuildLabels {
            version: env!("CARGO_PKG_VERSION"),
            git_sha: env!("SHIPLOG_GIT_SHA"),
            database,
        });
        registry.register("build", "The running version, its git commit and database kind", build);

        let delivery_family = Family::<EventOutcomeLabels, Counter>::default();
        let deliveries = EVENTS
            .iter()
            .flat_map(|event| DELIVERY_OUTCOMES.iter().map(move |outcome| (*event, *outcome)))
            .map(|(event, outcome)| delivery_family.get_or_create_owned(&EventOutcomeLabels { event, outcome }))
            .collect();
        registry.register(
            "webhook_deliveries",
            "Webhook deliveries received, by event and how they ended",
            delivery_family,
        );

        let requests: Seconds = Family::new_with_constructor(request_seconds);
        registry.register(
            "http_request_duration_seconds",
            "HTTP requests by method, route pattern and status class, with how long they took",
            requests.clone(),
        );

        let job_attempts = Family::<JobAttemptLabels, Counter>::default();
        registry.register(
            "job_attempts",
            "Job attempts by kind and how they ended (done, skipped, retry, dead)",
            job_attempts.clone(),
        );
        let jobs = Family::<queue::KindState, Gauge>::default();
        registry.register(
            "jobs",
            "Jobs waiting, running and dead, by kind and state (read from the database at scrape time)",
            jobs.clone(),
        );
        let oldest_due = Family::<queue::Kind, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "job_oldest_due_age_seconds",
            "How long the oldest due queued job of a kind has been due (0 when none is due)",
            oldest_due.clone(),
        );

        let github_calls = Family::<GitHubCallLabels, Counter>::default();
        registry.register(
            "github_api_calls",
            "Calls to GitHub's API by endpoint pattern and status class (`error` when no answer came)",
            github_calls.clone(),
        );
        let rate_limit_remaining = Family::<InstallationLabels, Gauge>::default();
        registry.register(
            "github_rate_limit_remaining",
            "Requests left in GitHub's rate limit, per installation, from its last answer",
            rate_limit_remaining.clone(),
        );

        let ancestry_family = Family::<SourceLabels, Counter>::default();
        let ancestry = ["cache", "github"].map(|source| ancestry_family.get_or_create_owned(&SourceLabels { source }));
        registry.register(
            "ancestry_answers",
            "Ancestry answers by where they came from (cache or GitHub)",
            ancestry_family,
        );

        let agent_family = Family::<EventOutcomeLabels, Counter>::default();
        let agent_calls = AGENT_EVENTS
            .iter()
            .flat_map(|event| AGENT_OUTCOMES.iter().map(move |outcome| (*event, *outcome)))
            .map(|(event, outcome)| agent_family.get_or_create_owned(&EventOutcomeLabels { event, outcome }))
            .collect();
        registry.register(
            "agent_calls",
            "Calls to agents by event and how they ended",
            agent_family,
        );

        let deploy_reports = Family::<DeployLabels, Counter>::default();
        // The usual series exist from the start, so a rate over them is 0 rather than absent.
        for (source, status) in [
            ("api", "live"),
            ("api", "failed"),
            ("github", "live"),
            ("github", "failed"),
        ] {
            deploy_reports.get_or_create_owned(&DeployLabels { source, status });
        }
        registry.register(
            "deploy_reports",
            "Deploy reports recorded (a deploy created or moved along its lifecycle), by source and the status reported",
            deploy_reports.clone(),
        );

        let batch_sizes = Histogram::new(exponential_buckets(1.0, 2.0, 7));
        registry.register(
            "sqlite_group_commit_batch_size",
            "Deliveries and job writes committed together by the SQLite intake writer",
            batch_sizes.clone(),
        );

        let recovery_passes = Family::<OutcomeLabels, Counter>::default();
        // How a pass ended: `recovery::Stopped`.
        for outcome in ["complete", "page_limit", "ask_limit", "rate_limit", "error"] {
            recovery_passes.get_or_create_owned(&OutcomeLabels {
                outcome: Cow::Borrowed(outcome),
            });
        }
        registry.register(
            "delivery_recovery_passes",
            "Passes of the webhook delivery catch-up, by outcome",
            recovery_passes.clone(),
        );
        let recovery_redeliveries = Family::<OutcomeLabels, Counter>::default();
        // GitHub accepted the ask, or refused it.
        for outcome in ["asked", "refused"] {
            recovery_redeliveries.get_or_create_owned(&OutcomeLabels {
                outcome: Cow::Borrowed(outcome),
            });
        }
        registry.register(
            "delivery_recovery_redeliveries",
            "Redeliveries the catch-up asked GitHub for, by outcome",
            recovery_redeliveries.clone(),
        );

        Self {
            registry,
            deliveries,
            requests,
            job_attempts,
            github_calls,
            rate_limit_remaining,
            ancestry,
            agent_calls,
            deploy_reports,
            batch_sizes,
            recovery_passes,
            recovery_redeliveries,
            jobs,
            oldest_due,
            job_kinds: OnceLock::new(),
        }
    }

    /// The job kinds this server runs (set once, at start).
    pub fn set_job_kinds(&self, kinds: Vec<&'static str>) {
        let _ = self.job_kinds.set(kinds);
    }

    /// The registry in OpenMetrics text (see [`CONTENT_TYPE`]).
    pub fn encode(&self) -> String {
        let mut text = String::with_capacity(16 * 1024);
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }

    /// One webhook delivery: `event` as named by GitHub, `outcome` from [`DELIVERY_OUTCOMES`].
    pub fn record_delivery(&self, event: &str, outcome: &str) {
        let event = EVENTS.iter().position(|e| *e == event).unwrap_or(EVENTS.len() - 1);
        let outcome = DELIVERY_OUTCOMES
            .iter()
            .position(|o| *o == outcome)
            .unwrap_or(DELIVERY_OUTCOMES.len() - 1);
        if let Some(counter) = self.deliveries.get(event * DELIVERY_OUTCOMES.len() + outcome) {
            counter.inc();
        }
    }

    /// One HTTP request: its route pattern (`unmatched` when no route took it).
    pub fn record_request(&self, method: &str, route: Option<String>, status: u16, seconds: f64) {
        let method = match method {
            "GET" => "GET",
            "HEAD" => "HEAD",
            "POST" => "POST",
            "PUT" => "PUT",
            "PATCH" => "PATCH",
            "DELETE" => "DELETE",
            "OPTIONS" => "OPTIONS",
            _ => "other",
        };
        let labels = RequestLabels {
            method,
            route: route.map_or(Cow::Borrowed("unmatched"), Cow::Owned),
            status: status_class(status),
        };
        self.requests.get_or_create(&labels).observe(seconds);
    }

    /// One job attempt of `kind` (a registered kind, or `other`) that ended `outcome`.
    pub fn record_job_attempt(&self, kind: &'static str, outcome: &'static str) {
        self.job_attempts
            .get_or_create(&JobAttemptLabels {
                kind: Cow::Borrowed(kind),
                outcome,
            })
            .inc();
    }

    /// One call to GitHub: `status` is `None` when no answer came; `remaining` is the answer's
    /// `x-ratelimit-remaining`, recorded for `installation` (`app` for the App's own calls).
    pub fn record_github_call(
        &self,
        endpoint: &'static str,
        status: Option<u16>,
        installation: Option<i64>,
        remaining: Option<i64>,
    ) {
        let status = status.map_or("error", status_class);
        self.github_calls
            .get_or_create(&GitHubCallLabels { endpoint, status })
            .inc();
        if let Some(remaining) = remaining {
            let installation = installation.map_or_else(|| "app".to_owned(), |id| id.to_string());
            self.rate_limit_remaining
                .get_or_create(&InstallationLabels { installation })
                .set(remaining);
        }
    }

    /// One ancestry answer, from the cache (`from_github` false) or from GitHub.
    pub fn record_ancestry(&self, from_github: bool) {
        self.ancestry[usize::from(from_github)].inc();
    }

    /// One call to an agent: `event` its `X-Shiplog-Event`, `outcome` from [`AGENT_OUTCOMES`].
    pub fn record_agent_call(&self, event: &str, outcome: &'static str) {
        let event = AGENT_EVENTS
            .iter()
            .position(|e| *e == event)
            .unwrap_or(AGENT_EVENTS.len() - 1);
        let outcome = AGENT_OUTCOMES.iter().position(|o| *o == outcome).unwrap_or(1);
        if let Some(counter) = self.agent_calls.get(event * AGENT_OUTCOMES.len() + outcome) {
            counter.inc();
        }
    }

    /// One deploy report recorded: `source` `api`, `github` or `actions`; `status` shiplog's.
    pub fn record_deploy(&self, source: &'static str, status: &'static str) {
        self.deploy_reports
            .get_or_create(&DeployLabels { source, status })
            .inc();
    }

    /// One transaction of the SQLite intake writer, of `size` deliveries and job writes.
    pub fn record_batch(&self, size: usize) {
        self.batch_sizes.observe(size as f64);
    }

    /// One pass of the webhook delivery catch-up: how it ended (`ok`, `failed`, …) and what
    /// became of the redeliveries it asked for, as `(outcome, count)` pairs (`requested`,
    /// `failed`, …; those four words are shown as 0 from the start). Outcomes are the
    /// caller's own bounded words; anything longer than 32 bytes or not `[a-z_]` is `other`.
    pub fn record_recovery_pass(&self, outcome: &str, redeliveries: &[(&str, u64)]) {
        self.recovery_passes
            .get_or_create(&OutcomeLabels {
                outcome: bounded_word(outcome),
            })
            .inc();
        for (outcome, count) in redeliveries {
            self.recovery_redeliveries
                .get_or_create(&OutcomeLabels {
                    outcome: bounded_word(outcome),
                })
                .inc_by(*count);
        }
    }
}

fn bounded_word(word: &str) -> Cow<'static, str> {
    if !word.is_empty() && word.len() <= 32 && word.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
        Cow::Owned(word.to_owned())
    } else {
        Cow::Borrowed("other")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line<'a>(text: &'a str, series: &str) -> Option<&'a str> {
        text.lines()
            .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
            .map(|l| &l[series.len() + 1..])
    }

    #[test]
    fn deliveries_are_counted_by_known_event_and_outcome_and_unknown_events_are_other() {
        let metrics = Metrics::new("sqlite");
        metrics.record_delivery("deployment", "processed");
        metrics.record_delivery("deployment", "processed");
        metrics.record_delivery("made_up_event", "rejected");
        let text = metrics.encode();
        assert_eq!(
            line(
                &text,
                r#"shiplog_webhook_deliveries_total{event="deployment",outcome="processed"}"#
            ),
            Some("2")
        );
        assert_eq!(
            line(
                &text,
                r#"shiplog_webhook_deliveries_total{event="other",outcome="rejected"}"#
            ),
            Some("1")
        );
        assert!(!text.contains("made_up_event"));
        assert!(text.contains(r#"shiplog_build_info{version=""#));
        assert!(text.contains(r#"database="sqlite""#));
    }

    #[test]
    fn a_recovery_pass_counts_the_pass_and_its_redeliveries() {
        let metrics = Metrics::new("postgres");
        metrics.record_recovery_pass("complete", &[("asked", 3), ("refused", 1)]);
        metrics.record_recovery_pass("error", &[]);
        metrics.record_recovery_pass("Not A Word!", &[("asked", 2)]);
        let text = metrics.encode();
        assert_eq!(
            line(&text, r#"shiplog_delivery_recovery_passes_total{outcome="complete"}"#),
            Some("1")
        );
        assert_eq!(
            line(&text, r#"shiplog_delivery_recovery_passes_total{outcome="error"}"#),
            Some("1")
        );
        assert_eq!(
            line(&text, r#"shiplog_delivery_recovery_passes_total{outcome="other"}"#),
            Some("1")
        );
        assert_eq!(
            line(
                &text,
                r#"shiplog_delivery_recovery_redeliveries_total{outcome="asked"}"#
            ),
            Some("5")
        );
        assert_eq!(
            line(
                &text,
                r#"shiplog_delivery_recovery_redeliveries_total{outcome="refused"}"#
            ),
            Some("1")
        );
    }

    #[test]
    fn github_calls_use_status_classes_and_remember_the_rate_limit_per_installation() {
        let metrics = Metrics::new("sqlite");
        let endpoint = "/repos/{owner}/{repo}/compare/{basehead}";
        metrics.record_github_call(endpoint, Some(200), Some(42), Some(4999));
        metrics.record_github_call(endpoint, Some(404), Some(42), Some(4998));
        metrics.record_github_call(endpoint, None, Some(42), None);
        let text = metrics.encode();
        let series = |status: &str| {
            format!(
                r#"shiplog_github_api_calls_total{{endpoint="/repos/{{owner}}/{{repo}}/compare/{{basehead}}",status="{status}"}}"#
            )
        };
        assert_eq!(line(&text, &series("2xx")), Some("1"));
        assert_eq!(line(&text, &series("4xx")), Some("1"));
        assert_eq!(line(&text, &series("error")), Some("1"));
        assert_eq!(
            line(&text, r#"shiplog_github_rate_limit_remaining{installation="42"}"#),
            Some("4998")
        );
    }

    #[test]
    fn agent_calls_ancestry_deploys_and_batches_are_counted() {
        let metrics = Metrics::new("sqlite");
        metrics.record_agent_call("trigger.fired", "success");
        metrics.record_agent_call("something.else", "refused");
        metrics.record_ancestry(true);
        metrics.record_ancestry(false);
        metrics.record_ancestry(false);
        metrics.record_deploy("api", "live");
        metrics.record_batch(3);
        let text = metrics.encode();
        assert_eq!(
            line(
                &text,
                r#"shiplog_agent_calls_total{event="trigger.fired",outcome="success"}"#
            ),
            Some("1")
        );
        assert_eq!(
            line(&text, r#"shiplog_agent_calls_total{event="other",outcome="refused"}"#),
            Some("1")
        );
        assert_eq!(
            line(&text, r#"shiplog_ancestry_answers_total{source="cache"}"#),
            Some("2")
        );
        assert_eq!(
            line(&text, r#"shiplog_ancestry_answers_total{source="github"}"#),
            Some("1")
        );
        assert_eq!(
            line(&text, r#"shiplog_deploy_reports_total{source="api",status="live"}"#),
            Some("1")
        );
        assert_eq!(line(&text, "shiplog_sqlite_group_commit_batch_size_count"), Some("1"));
        assert_eq!(line(&text, "shiplog_sqlite_group_commit_batch_size_sum"), Some("3.0"));
    }
}
