//! The server under test: the release `shiplog serve` binary as its own process.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use tokio::process::{Child, Command};

pub const WEBHOOK_SECRET: &str = "bench-webhook-secret";
/// Random-looking, as the server refuses an admin token that is easy to guess (a fixed one is
/// fine here: the server only listens on loopback for the run).
pub const ADMIN_TOKEN: &str = "5f0c2a9e8b41d7736ce1f49a02b8d5c7e3a6f19042db7c85e1a9346b0fd2c781";

pub struct Server {
    child: Child,
    pub pid: u32,
    pub base_url: String,
    /// From spawning the process to the first `200` from `/readyz` (migrations included).
    pub startup: Duration,
}

impl Server {
    /// Starts `shiplog serve` on a free loopback port and waits until `/readyz` answers 200.
    pub async fn start(binary: &Path, database_url: &str, log: &Path) -> anyhow::Result<Self> {
        Self::start_with(binary, database_url, log, &[]).await
    }

    /// [`Server::start`] with more settings in its environment (the GitHub App's, for the backfill).
    pub async fn start_with(
        binary: &Path,
        database_url: &str,
        log: &Path,
        env: &[(&str, String)],
    ) -> anyhow::Result<Self> {
        let port = free_port()?;
        let base_url = format!("http://127.0.0.1:{port}");
        let log_file = std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let started = Instant::now();
        let child = Command::new(binary)
            .arg("serve")
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("DATABASE_URL", database_url)
            .env("SHIPLOG_LISTEN", format!("127.0.0.1:{port}"))
            .env("SHIPLOG_PUBLIC_URL", &base_url)
            .env("GITHUB_WEBHOOK_SECRET", WEBHOOK_SECRET)
            .env("SHIPLOG_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("SHIPLOG_LOG_FORMAT", "json")
            .envs(env.iter().map(|(key, value)| (*key, value.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::from(log_file.try_clone()?))
            .stderr(Stdio::from(log_file))
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let pid = child.id().context("the server exited at once")?;
        let mut server = Self {
            child,
            pid,
            base_url,
            startup: Duration::ZERO,
        };
        let client = reqwest::Client::new();
        let ready = format!("{}/readyz", server.base_url);
        let deadline = started + Duration::from_secs(600);
        loop {
            if let Ok(response) = client.get(&ready).send().await {
                if response.status().is_success() {
                    server.startup = started.elapsed();
                    return Ok(server);
                }
            }
            if let Some(status) = server.child.try_wait()? {
                bail!(
                    "the server exited with {status} before it was ready; see {}",
                    log.display()
                );
            }
            if Instant::now() > deadline {
                bail!("the server was not ready within 10 minutes; see {}", log.display());
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// CPU time the server has used so far.
    pub fn cpu_time(&self) -> Duration {
        cpu_time(self.pid).unwrap_or_default()
    }

    /// Resident memory now and at its peak so far, in MiB, from `/proc`.
    pub fn memory(&self) -> anyhow::Result<Memory> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid))?;
        let field = |name: &str| -> anyhow::Result<f64> {
            let line = status
                .lines()
                .find(|l| l.starts_with(name))
                .with_context(|| format!("{name} not in /proc/{}/status", self.pid))?;
            let kib: f64 = line
                .split_whitespace()
                .nth(1)
                .context("no value")?
                .parse()
                .context("not a number")?;
            Ok(kib / 1024.0)
        };
        Ok(Memory {
            rss_mib: field("VmRSS:")?,
            peak_mib: field("VmHWM:")?,
        })
    }

    /// SIGTERM (graceful shutdown), then waits for the process to end.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        std::process::Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status()
            .context("sending SIGTERM")?;
        match tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await {
            Ok(status) => {
                status?;
            }
            Err(_) => self.child.kill().await?,
        }
        Ok(())
    }
}

/// CPU time (user and system) a process has used so far, from `/proc/<pid>/stat`.
pub fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name; in USER_HZ
    // ticks, 100 a second on Linux.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

/// CPU time used so far by the PostgreSQL server processes serving `database` (its backends
/// name their database in their process title), summed.
pub fn postgres_cpu_time(database: &str) -> Duration {
    let title = format!(" {database} ");
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Duration::ZERO;
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|cmdline| String::from_utf8_lossy(&cmdline).contains(&title))
        })
        .filter_map(cpu_time)
        .sum()
}

#[derive(Copy, Clone, Debug)]
pub struct Memory {
    pub rss_mib: f64,
    pub peak_mib: f64,
}

fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// The `shiplog` binary beside this one (`target/release/shiplog`), unless given.
pub fn default_binary() -> anyhow::Result<PathBuf> {
    let me = std::env::current_exe()?;
    let binary = me.with_file_name("shiplog");
    if !binary.exists() {
        bail!(
            "{} does not exist: build it with `cargo build --release -p shiplog` or use scripts/bench",
            binary.display()
        );
    }
    Ok(binary)
}
