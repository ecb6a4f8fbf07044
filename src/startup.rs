//! Building and running the server: `Application::build(config)` connects the database, runs
//! migrations, registers the job handlers, spawns the long-lived tasks (`supervise`), binds the
//! listener (port 0 in tests) and returns; `run_until_stopped()` serves until SIGINT/SIGTERM,
//! finishing in-flight requests first, or until a long-lived task stops (then it returns an
//! error after the drain period, so the process exits non-zero and is restarted).

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::{Server, ServerHandle};
use actix_web::{web, App, HttpServer};
use tracing_actix_web::TracingLogger;

use futures_util::stream::{FuturesUnordered, StreamExt};
use tokio::task::{JoinError, JoinHandle};

use crate::backfill::{BackfillStep, Backfiller};
use crate::clock::{SharedClock, SystemClock};
use crate::config::Config;
use crate::deploys::live::{DeployWentLive, WentLive};
use crate::deploys::watch::WatchSource;
use crate::drift::{Recompute, RecomputeDrift};
use crate::github::app::{GitHubApp, GitHubAppError};
use crate::http::{self, AppState};
use crate::jobs::runner::{self, Handlers, Runner};
use crate::metrics::Metrics;
use crate::monitoring::opt_in::{GitHubWrite, GitHubWriter};
use crate::monitoring::plans::{ExpirePlan, MonitoringAgent, MonitoringWatch, PlanExpiry, SendCheck, TellRollback};
use crate::outbound::Outbound;
use crate::recovery::{self, RecoverDeliveries, Recovery};
use crate::store::{Store, StoreError};
use crate::supervise::{self, Tasks};
use crate::triggers::{self, FireTrigger};

/// How long a stopping server waits for in-flight requests.
const SHUTDOWN_GRACE_SECONDS: u64 = 30;
/// Connections the metrics listener (`SHIPLOG_METRICS_LISTEN`) serves at once.
const METRICS_MAX_CONNECTIONS: usize = 16;
/// How long an idle kept-alive connection stays open.
const KEEP_ALIVE: std::time::Duration = std::time::Duration::from_secs(5);
/// How long a connection may linger after its last answer before it is closed.
const DISCONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);
/// Descriptors kept free of client connections: the database pool, calls to GitHub and agents,
/// files, the listener.
const RESERVED_DESCRIPTORS: usize = 256;
/// The connection cap when neither the setting nor the open-file limit gives one.
const FALLBACK_MAX_CONNECTIONS: usize = 768;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot open the database: {0}")]
    Database(#[source] StoreError),
    #[error("cannot apply migrations: {0}")]
    Migrations(#[source] StoreError),
    #[error(transparent)]
    GitHub(#[from] GitHubAppError),
    #[error("cannot build the HTTP client for agents: {0}")]
    Outbound(String),
    #[error("cannot listen on {address}: {source}")]
    Listen { address: String, source: std::io::Error },
}

pub struct Application {
    port: u16,
    server: Server,
    /// The metrics listener (`SHIPLOG_METRICS_LISTEN`) and its bound port.
    metrics_server: Option<(u16, Server)>,
    store: Store,
    runner: Runner,
    /// Tells the worker and the maintenance loop to stop (when they run).
    stop: Option<tokio::sync::watch::Sender<bool>>,
    tasks: Tasks,
    /// The handles of the long-lived tasks, for the select in `run_until_stopped`.
    handles: Vec<(&'static str, JoinHandle<()>)>,
}

impl Application {
    pub async fn build(config: Config) -> Result<Self, StartupError> {
        Self::build_with_clock(config, Arc::new(SystemClock)).await
    }

    pub async fn build_with_clock(config: Config, clock: SharedClock) -> Result<Self, StartupError> {
        Self::build_with(config, clock, Vec::new()).await
    }

    /// With the watch sources whose commits a live deploy's ancestry batch settles.
    pub async fn build_with(
        config: Config,
        clock: SharedClock,
        sources: Vec<Arc<dyn WatchSource>>,
    ) -> Result<Self, StartupError> {
        Self::build_with_handlers(config, clock, sources, Handlers::default()).await
    }

    /// With watch sources and extra job handlers (tests register kinds of their own; a kind
    /// registered here replaces the server's handler of that kind).
    pub async fn build_with_handlers(
        config: Config,
        clock: SharedClock,
        sources: Vec<Arc<dyn WatchSource>>,
        extra: Handlers,
    ) -> Result<Self, StartupError> {
        let store = Store::connect(&config.database_url)
            .await
            .map_err(StartupError::Database)?;
        store.migrate().await.map_err(StartupError::Migrations)?;
        let mut config = config;
        use_stored_app(&store, &mut config)
            .await
            .map_err(StartupError::Database)?;
        let metrics = Arc::new(Metrics::new(store.backend_name()));
        let github = config
            .github_app
            .as_ref()
            .map(|c| GitHubApp::new(c, &config.github_api_url).map(|app| app.with_metrics(metrics.clone())))
            .transpose()?;

        let address = config.listen.clone();
        let listen_error = |source| StartupError::Listen {
            address: address.clone(),
            source,
        };
        let listener = TcpListener::bind(&config.listen).map_err(listen_error)?;
        let port = listener.local_addr().map_err(listen_error)?.port();
        let workers = config.http_workers;
        let config_limits = config.http_limits.clone();

        let outbound = Outbound::new(config.outbound_allow.clone())
            .map_err(|e| StartupError::Outbound(e.to_string()))?
            .with_metrics(metrics.clone());
        let (trigger_watch, fire_trigger) = triggers::wire(&store, outbound.clone(), config.agent.clone());
        let mut sources = sources;
        sources.push(trigger_watch);
        sources.push(Arc::new(MonitoringWatch {
            schedule: config.monitor_schedule.clone(),
            expiry: config.monitor_expiry,
            clock: clock.clone(),
        }));
        let mut handlers = Handlers::default();
        handlers
            .register::<DeployWentLive, _>(Arc::new(WentLive {
                store: store.clone(),
                github: github.clone(),
                sources,
            }))
            .register::<FireTrigger, _>(fire_trigger);
        let agent = Arc::new(MonitoringAgent {
            store: store.clone(),
            outbound,
            agent: config.agent.clone(),
        });
        handlers
            .register::<SendCheck, _>(agent.clone())
            .register::<TellRollback, _>(agent)
            .register::<ExpirePlan, _>(Arc::new(PlanExpiry { store: store.clone() }))
            .register::<GitHubWrite, _>(Arc::new(GitHubWriter {
                store: store.clone(),
                github: github.clone(),
            }))
            .register::<BackfillStep, _>(Arc::new(Backfiller {
                store: store.clone(),
                github: github.clone(),
            }))
            .register::<RecomputeDrift, _>(Arc::new(Recompute {
                store: store.clone(),
                github: github.clone(),
            }))
            .register::<RecoverDeliveries, _>(Recovery::new(
                &store,
                github.clone(),
                config.delivery_recovery_interval,
                clock.clone(),
            ));
        let key_config = config.clone();
        handlers.register::<crate::setup::conversion::ConvertManifest, _>(Arc::new(
            crate::setup::conversion::ManifestConverter {
                store: store.clone(),
                api_url: config.github_api_url.clone(),
                key: Arc::new(move || key_config.secret_key()),
            },
        ));
        handlers.extend(extra);
        // The catch-up on missed deliveries: a pass now, then every interval (each pass enqueues
        // the next). Enqueued whether or not this process runs jobs: a replica that does runs it.
        if recovery::off_reason(github.is_some(), config.delivery_recovery_interval).is_none() {
            recovery::schedule_at_start(&store, clock.now())
                .await
                .map_err(StartupError::Database)?;
        }
        metrics.set_job_kinds(handlers.kinds());
        let jobs_wake = Arc::new(tokio::sync::Notify::new());
        let tasks = Tasks::default();
        let mut handles = Vec::new();
        // The intake first: on SQLite its writer also writes the job workers' claims.
        let (intake, writer) =
            crate::intake::Intake::start(store.clone(), &tasks, config.intake_hot_path, metrics.clone())
                .await
                .map_err(StartupError::Database)?;
        handles.extend(writer);
        let runner = Runner {
            store: store.clone(),
            clock: clock.clone(),
            handlers: Arc::new(handlers),
            queue: intake.job_queue(),
            metrics: metrics.clone(),
        };

        let mut stop = None;
        if config.run_jobs {
            let (sender, stopped) = tokio::sync::watch::channel(false);
            let id = format!(
                "{}-{}",
                std::process::id(),
                crate::credentials::random_hex(4).unwrap_or_default()
            );
            handles.push(tasks.spawn(
                supervise::MAINTENANCE,
                crate::maintenance::run(store.clone(), clock.clone(), stopped.clone()),
            ));
            handles.push(tasks.spawn(
                supervise::WORKER,
                runner::work(runner.clone(), id, jobs_wake.clone(), stopped),
            ));
            stop = Some(sender);
        }
        let state = web::Data::new(AppState {
            store: store.clone(),
            intake,
            tasks: tasks.clone(),
            config: Arc::new(config),
            clock,
            github,
            jobs_wake,
            throttle: Arc::new(http::throttle::FailureThrottle::default()),
            metrics,
        });
        let metrics_server = match state.config.metrics.listen.clone() {
            Some(address) => Some(metrics_server(&address, state.clone())?),
            None => None,
        };
        let limits = config_limits;
        let body_limits = web::Data::new(http::budget::BodyLimits::new(limits.body_memory, limits.body_timeout));
        let workers = workers.unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
        let max_connections = limits.max_connections.unwrap_or_else(default_max_connections);
        tracing::info!(
            max_connections,
            header_timeout_s = limits.header_timeout.as_secs(),
            body_timeout_s = limits.body_timeout.as_secs(),
            body_memory_mib = limits.body_memory / (1024 * 1024),
            "client limits"
        );
        let server = HttpServer::new(move || {
            App::new()
                .wrap(actix_web::middleware::from_fn(http::budget::guard_bodies))
                .wrap(http::problems::problem_json_fallback())
                .wrap(http::security_headers::default_headers())
                .wrap(TracingLogger::default())
                .wrap(actix_web::middleware::from_fn(http::head::answer_head_as_get))
                .wrap(actix_web::middleware::from_fn(http::metrics::time_requests))
                .app_data(state.clone())
                .app_data(body_limits.clone())
                .configure(http::routes)
                .default_service(web::to(http::problems::route_not_found))
        })
        .workers(workers)
        // actix counts connections per worker; together they stay at or under the cap.
        .max_connections(max_connections.div_ceil(workers).max(1))
        .client_request_timeout(limits.header_timeout)
        .client_disconnect_timeout(DISCONNECT_TIMEOUT)
        .keep_alive(KEEP_ALIVE)
        .shutdown_timeout(SHUTDOWN_GRACE_SECONDS);
        let server = server.listen(listener).map_err(listen_error)?.run();
        Ok(Self {
            port,
            server,
            metrics_server,
            store,
            runner,
            stop,
            tasks,
            handles,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The bound port of the metrics listener, when `SHIPLOG_METRICS_LISTEN` gave it one.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics_server.as_ref().map(|(port, _)| *port)
    }

    /// Stops the server from elsewhere (tests; the signal handlers do it in production).
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Runs jobs by hand (tests turn the background worker off).
    pub fn runner(&self) -> Runner {
        self.runner.clone()
    }

    /// The long-lived tasks and their health (tests stop one through it).
    pub fn tasks(&self) -> Tasks {
        self.tasks.clone()
    }

    /// Serves until stopped, then lets the job worker finish the job it is running. If a
    /// long-lived task stops first, readiness turns 503, and after [`supervise::DRAIN`] the
    /// server stops and this returns an error naming the task.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let Self {
            server,
            metrics_server,
            store,
            stop,
            tasks,
            handles,
            ..
        } = self;
        // The metrics listener serves beside the main one and stops with it.
        let metrics_handle = metrics_server.map(|(_, server)| {
            let handle = server.handle();
            tokio::spawn(server);
            handle
        });
        let server_handle = server.handle();
        let mut server = std::pin::pin!(server);
        let mut watched: FuturesUnordered<_> = handles
            .into_iter()
            .map(|(name, handle)| async move { (name, handle.await) })
            .collect();
        let outcome = tokio::select! {
            served = &mut server => served,
            Some((name, ended)) = watched.next() => {
                let failure = task_stopped(&tasks, name, ended);
                tokio::time::sleep(supervise::DRAIN).await;
                // The command is sent at once; the server future carries it out.
                drop(server_handle.stop(true));
                let _ = server.await;
                Err(failure)
            }
        };
        if let Some(handle) = metrics_handle {
            handle.stop(true).await;
        }
        if let Some(stop) = stop {
            let _ = stop.send(true);
        }
        // The server has answered every delivery it took, so the writer has nothing left to
        // commit; the worker finishes the job it is running.
        tasks.abort(supervise::WRITER);
        let _ = tokio::time::timeout(std::time::Duration::from_secs(SHUTDOWN_GRACE_SECONDS), async {
            while watched.next().await.is_some() {}
        })
        .await;
        store.close().await;
        outcome
    }
}

/// The metrics listener: `GET /metrics` only, on one worker, with `state`'s registry.
fn metrics_server(address: &str, state: web::Data<AppState>) -> Result<(u16, Server), StartupError> {
    let listen_error = |source| StartupError::Listen {
        address: address.to_owned(),
        source,
    };
    let listener = TcpListener::bind(address).map_err(listen_error)?;
    let port = listener.local_addr().map_err(listen_error)?.port();
    let header_timeout = state.config.http_limits.header_timeout;
    let server = HttpServer::new(move || {
        App::new()
            .wrap(http::problems::problem_json_fallback())
            .wrap(http::security_headers::default_headers())
            .wrap(actix_web::middleware::from_fn(http::head::answer_head_as_get))
            .app_data(state.clone())
            .configure(http::metrics_routes)
            .default_service(web::to(http::problems::route_not_found))
    })
    .workers(1)
    // A scraper or two: a few connections, and the same header deadline as the main listener.
    .max_connections(METRICS_MAX_CONNECTIONS)
    .client_request_timeout(header_timeout)
    .client_disconnect_timeout(DISCONNECT_TIMEOUT)
    .keep_alive(KEEP_ALIVE)
    .shutdown_timeout(SHUTDOWN_GRACE_SECONDS)
    .listen(listener)
    .map_err(listen_error)?
    .run();
    Ok((port, server))
}

/// A long-lived task ended while the server runs: record and log it, and say so as an error.
fn task_stopped(tasks: &Tasks, name: &'static str, ended: Result<(), JoinError>) -> std::io::Error {
    let reason = supervise::reason(ended);
    tasks.ended(name, reason.clone());
    tracing::error!(
        task = name,
        %reason,
        drain_s = supervise::DRAIN.as_secs(),
        "a long-lived task stopped: readiness is 503 and the server stops after the drain period"
    );
    std::io::Error::other(format!("the {name} task stopped: {reason}"))
}

/// The connection cap below the open-file limit: the soft `RLIMIT_NOFILE` (from
/// `/proc/self/limits`) minus [`RESERVED_DESCRIPTORS`], or [`FALLBACK_MAX_CONNECTIONS`].
fn default_max_connections() -> usize {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|limits| open_file_limit(&limits))
        .map_or(FALLBACK_MAX_CONNECTIONS, |files| {
            files.saturating_sub(RESERVED_DESCRIPTORS).max(64)
        })
}

/// The soft limit on the "Max open files" line; `None` when unlimited or unreadable.
fn open_file_limit(limits: &str) -> Option<usize> {
    limits
        .lines()
        .find_map(|line| line.strip_prefix("Max open files"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|soft| soft.parse().ok())
}

/// When the environment names no App, the one set up in the browser (stored sealed) is used:
/// its id and private key, its slug for the `@mention` unless `GITHUB_APP_SLUG` says otherwise,
/// and its webhook secret accepted besides `GITHUB_WEBHOOK_SECRET`. Read at start only: after a
/// set-up in the browser, a restart picks the App up. A stored App whose secrets do not open
/// is reported in one line and left unused; the key file is not created when nothing is stored.
async fn use_stored_app(store: &Store, config: &mut Config) -> Result<(), crate::store::StoreError> {
    use crate::setup::stored_app;
    if config.github_app.is_some() {
        return Ok(());
    }
    let peeked = stored_app::peek(store).await.map_err(|e| match e {
        stored_app::StoredAppError::Store(store) => store,
        other => crate::store::StoreError::Corrupt(other.to_string()),
    })?;
    if peeked.is_none() {
        return Ok(());
    }
    let key = match config.secret_key() {
        Ok(key) => key,
        Err(reason) => {
            tracing::warn!(%reason, "the GitHub App stored in the database is not used: no usable secret key");
            return Ok(());
        }
    };
    match stored_app::load(store, &key).await {
        Ok(Some(app)) => {
            tracing::info!(app_id = app.id, slug = %app.slug, "using the GitHub App set up in the browser");
            config.github_app = Some(crate::config::GitHubAppCredentials {
                app_id: app.id,
                private_key_pem: app.private_key_pem,
            });
            if config.github_app_slug == crate::config::DEFAULT_GITHUB_APP_SLUG {
                config.github_app_slug = app.slug;
            }
            config.github_app_stored = true;
            config.webhook_secrets.push(app.webhook_secret);
            Ok(())
        }
        Ok(None) => Ok(()),
        Err(stored_app::StoredAppError::Store(e)) => Err(e),
        Err(other) => {
            tracing::warn!(reason = %other, "the GitHub App stored in the database is not used");
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_open_file_limit_is_read_from_proc_limits() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                      Max processes             127563               127563               processes \n\
                      Max open files            1024                 524288               files     \n";
        assert_eq!(open_file_limit(limits), Some(1024));
        assert_eq!(open_file_limit("Max open files  unlimited  unlimited  files"), None);
        assert!(default_max_connections() >= 64);
    }
}
