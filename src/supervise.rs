//! The server's long-lived tasks beside the HTTP server: the job worker, the maintenance loop
//! and, on SQLite, the intake writer. Each is spawned through [`Tasks::spawn`], which keeps its
//! handle; `/readyz` reports each (`running`, `off` where it does not run here, `stopped`) and
//! answers 503 naming the one that stopped, and `Application::run_until_stopped` selects on
//! them with the server.
//!
//! A task that ends while the server runs is a fault: it is logged at error level, readiness
//! turns 503 at once, and after [`DRAIN`] (so load balancers see the 503 and move traffic) the
//! server stops and `run_until_stopped` returns an error, so `shiplog serve` exits non-zero and
//! the service manager restarts it. Nothing is lost: all durable state is in the database.
//! Restarting a dead task in place was not chosen: a panic there means a state the code did not
//! expect, and a fresh process is the simplest known-good state.
//!
//! This module knows no domain: it only names tasks and watches their handles.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::task::{AbortHandle, JoinError, JoinHandle};

/// The job worker.
pub const WORKER: &str = "worker";
/// The maintenance loop.
pub const MAINTENANCE: &str = "maintenance";
/// The SQLite intake writer (group commit).
pub const WRITER: &str = "writer";
/// Every task `/readyz` reports, running or not.
pub const ALL: [&str; 3] = [WORKER, WRITER, MAINTENANCE];

/// How long readiness says 503 before a server with a stopped task stops.
pub const DRAIN: Duration = Duration::from_secs(3);

/// What `/readyz` says of a task.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TaskState {
    Running,
    /// Not run by this server (`SHIPLOG_RUN_JOBS=false`, or the writer on PostgreSQL).
    Off,
    /// Ended while the server runs, with the reason when known.
    Stopped(String),
}

impl TaskState {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Off => "off",
            Self::Stopped(_) => "stopped",
        }
    }
}

struct Watched {
    abort: AbortHandle,
    /// Why it ended, once the supervisor knows.
    reason: Option<String>,
}

/// The tasks of one server and their health; clones share them.
#[derive(Clone, Default)]
pub struct Tasks {
    watched: Arc<Mutex<BTreeMap<&'static str, Watched>>>,
}

impl std::fmt::Debug for Tasks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(ALL.iter().map(|name| (name, self.state(name).as_str())))
            .finish()
    }
}

impl Tasks {
    /// Spawns `task` as `name` and watches it; the handle goes to the supervisor's select.
    pub fn spawn<F>(&self, name: &'static str, task: F) -> (&'static str, JoinHandle<()>)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        let handle = tokio::spawn(task);
        self.lock().insert(
            name,
            Watched {
                abort: handle.abort_handle(),
                reason: None,
            },
        );
        (name, handle)
    }

    /// The state of `name`: a finished handle is `stopped` even before the supervisor noticed.
    pub fn state(&self, name: &str) -> TaskState {
        match self.lock().get(name) {
            None => TaskState::Off,
            Some(watched) if watched.abort.is_finished() || watched.reason.is_some() => {
                TaskState::Stopped(watched.reason.clone().unwrap_or_else(|| "it ended".to_owned()))
            }
            Some(_) => TaskState::Running,
        }
    }

    /// The first task that stopped, and why.
    pub fn stopped(&self) -> Option<(&'static str, String)> {
        ALL.into_iter().find_map(|name| match self.state(name) {
            TaskState::Stopped(reason) => Some((name, reason)),
            _ => None,
        })
    }

    /// Records why `name` ended.
    pub fn ended(&self, name: &'static str, reason: String) {
        if let Some(watched) = self.lock().get_mut(name) {
            watched.reason = Some(reason);
        }
    }

    /// Stops `name` as if it had died; tests use it to check supervision. Returns whether it ran.
    pub fn abort(&self, name: &str) -> bool {
        match self.lock().get(name) {
            Some(watched) => {
                watched.abort.abort();
                true
            }
            None => false,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<&'static str, Watched>> {
        // The map stays consistent even if a holder panicked: each change is one insert.
        self.watched.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Why a task's handle completed.
pub fn reason(outcome: Result<(), JoinError>) -> String {
    match outcome {
        Ok(()) => "it returned".to_owned(),
        Err(error) if error.is_panic() => format!(
            "it panicked: {}",
            crate::jobs::runner::panic_message(&*error.into_panic())
        ),
        Err(_) => "it was cancelled".to_owned(),
    }
}
