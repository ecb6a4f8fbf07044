//! Every setting shiplog has, read once at start from environment variables and matching flags.
//!
//! Nothing else in the crate reads the environment. Secrets are wrapped in [`Secret`], whose
//! `Debug` and `Display` print `[redacted]`, so a config can be logged without leaking them.

use std::fmt;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::outbound::AllowList;

pub const DEFAULT_DATABASE_URL: &str = "sqlite://shiplog.db?mode=rwc";
pub const DEFAULT_LISTEN: &str = "127.0.0.1:3000";
pub const DEFAULT_GITHUB_API_URL: &str = "https://api.github.com";
pub const DEFAULT_MONITOR_SCHEDULE: &str = "10m,30m,1h,2h,24h,72h";
const DEFAULT_MONITOR_EXPIRY: &str = "14d";
/// A new installation imports this many days of its history by itself.
pub const DEFAULT_BACKFILL_ON_INSTALL_DAYS: u32 = 30;
pub const DEFAULT_HEADER_TIMEOUT: &str = "5s";
pub const DEFAULT_BODY_TIMEOUT: &str = "15s";
pub const DEFAULT_BODY_MEMORY_MB: usize = 64;
pub const DEFAULT_DELIVERY_RECOVERY_INTERVAL: &str = "10m";
/// The largest body a route takes (a webhook, 25 MiB) must fit in the budget.
const MIN_BODY_MEMORY_MB: usize = 32;

/// A value that must never reach a log or a response.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// The command line. Every flag has an environment variable of the same meaning.
#[derive(Debug, Parser)]
#[command(
    name = "shiplog",
    version,
    about = "What code is live where: a self-hosted GitHub App"
)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// `shiplog` alone means `shiplog serve`; these are its flags.
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server (the default).
    Serve(Box<ServeArgs>),
    /// Apply pending database migrations and exit.
    Migrate(DatabaseArgs),
    /// Deploy credentials for the explicit deployment API, directly on the database.
    Credentials {
        #[command(subcommand)]
        command: CredentialsCommand,
    },
    /// Does DESCENDANT contain ANCESTOR? Asks GitHub's compare API (through the cache).
    Ancestry {
        /// `owner/repo`
        repository: String,
        /// A commit SHA (short or full) or a ref.
        ancestor: String,
        /// A commit SHA (short or full) or a ref.
        descendant: String,
        #[command(flatten)]
        database: DatabaseArgs,
        #[command(flatten)]
        github: GitHubArgs,
    },
    /// Import a connection's deploys from GitHub's history: its deployments with their statuses
    /// and the Actions runs its workflow rules match. Resumes the connection's unfinished
    /// backfill if there is one. Runs here with a progress bar, or with `--detach` is left to
    /// the server's job worker.
    Backfill {
        /// The connection's id (`shiplog connections list`).
        #[arg(long)]
        connection: i64,
        /// How far back: `90d`, `12h`, `2w` or an RFC 3339 time (at most 366 days).
        #[arg(long, default_value = "90d")]
        since: String,
        /// Only this repository (`owner/repo`); repeat for several. Default: all of the
        /// installation's.
        #[arg(long = "repository")]
        repositories: Vec<String>,
        /// Queue the backfill for the server and exit.
        #[arg(long)]
        detach: bool,
        #[command(flatten)]
        database: DatabaseArgs,
        #[command(flatten)]
        github: GitHubArgs,
    },
    /// Inspect connections (GitHub App installations), directly on the database.
    Connections {
        #[command(subcommand)]
        command: ConnectionsCommand,
    },
    /// Exit 0 when the server's `GET /healthz` answers 200 within the timeout, else 1 with one
    /// line: the container's HEALTHCHECK, which has no curl to call.
    Healthcheck(HealthcheckArgs),
    /// The GitHub App's set-up.
    Setup {
        #[command(subcommand)]
        command: SetupCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum SetupCommand {
    /// What GitHub App is configured and where from (environment or none), whether its key,
    /// webhook secret and OAuth client are present, and where the secret key comes from. Never
    /// prints a secret.
    Show(Box<SetupShowArgs>),
}

/// What `shiplog setup show` reads: the same variables as `serve`.
#[derive(Debug, Clone, Args)]
pub struct SetupShowArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    #[command(flatten)]
    pub github: GitHubArgs,
    #[arg(long, env = "GITHUB_APP_SLUG", default_value = "shiplog")]
    pub github_app_slug: String,
    #[arg(long, env = "GITHUB_WEBHOOK_SECRET", hide_env_values = true)]
    pub github_webhook_secret: Option<String>,
    #[command(flatten)]
    pub secret_key: SecretKeyArgs,
}

/// `GITHUB_APP_SLUG`'s default; a stored App's slug replaces it at start.
pub const DEFAULT_GITHUB_APP_SLUG: &str = "shiplog";

/// The key that encrypts secrets at rest (README, "Register the GitHub App"). Its `Debug`
/// never shows the key.
#[derive(Clone, Args)]
pub struct SecretKeyArgs {
    /// 32 bytes as 64 hex digits or base64 (`openssl rand -base64 32`). Wins over the key file.
    #[arg(long, env = "SHIPLOG_SECRET_KEY", hide_env_values = true)]
    pub secret_key: Option<String>,
    /// The key file; default `shiplog.key` beside the SQLite file, or in the working directory
    /// for PostgreSQL.
    #[arg(long, env = "SHIPLOG_SECRET_KEY_FILE")]
    pub secret_key_file: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for SecretKeyArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretKeyArgs")
            .field("secret_key", &self.secret_key.as_ref().map(|_| "[redacted]"))
            .field("secret_key_file", &self.secret_key_file)
            .finish()
    }
}

impl SecretKeyArgs {
    /// The key file to use for the database at `database_url`.
    pub fn key_file(&self, database_url: &str) -> std::path::PathBuf {
        self.secret_key_file
            .clone()
            .unwrap_or_else(|| crate::setup::secret_key::default_key_path(database_url))
    }
}

#[derive(Debug, Clone, Args)]
pub struct HealthcheckArgs {
    /// The URL to ask. Default: `/healthz` on SHIPLOG_LISTEN, at 127.0.0.1 (or ::1) when it
    /// binds every address.
    #[arg(long)]
    pub url: Option<String>,
    /// The address the server binds, as for `serve`; only read for the default URL.
    #[arg(long, env = "SHIPLOG_LISTEN", default_value = DEFAULT_LISTEN)]
    pub listen: String,
    /// How long the answer may take (1s–60s).
    #[arg(long, default_value = "3s")]
    pub timeout: String,
}

impl HealthcheckArgs {
    /// The URL to ask and how long to wait for it.
    pub fn target(&self) -> Result<(url::Url, Duration), ConfigError> {
        let raw = match &self.url {
            Some(url) => url.trim().to_owned(),
            None => format!("http://{}/healthz", loopback_for(self.listen.trim())),
        };
        let invalid = |message: String| ConfigError::Invalid {
            var: if self.url.is_some() { "--url" } else { "SHIPLOG_LISTEN" },
            message,
        };
        let url = url::Url::parse(&raw).map_err(|e| invalid(format!("{raw:?} is not a URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            return Err(invalid(format!("{raw:?} is not an http(s) URL")));
        }
        let timeout = parse_duration(self.timeout.trim())
            .and_then(|d| {
                if d.is_zero() || d > Duration::from_secs(60) {
                    Err(format!("{:?} must be between 1s and 60s", self.timeout))
                } else {
                    Ok(d)
                }
            })
            .map_err(|message| ConfigError::Invalid {
                var: "--timeout",
                message,
            })?;
        Ok((url, timeout))
    }
}

/// Where a process on the same host reaches a listener bound to `listen`: a wildcard address
/// (`0.0.0.0`, `[::]`) becomes loopback; anything else, a host name included, stays.
fn loopback_for(listen: &str) -> String {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
    match listen.parse::<SocketAddr>() {
        Ok(mut addr) if addr.ip().is_unspecified() => {
            addr.set_ip(if addr.is_ipv4() {
                IpAddr::V4(Ipv4Addr::LOCALHOST)
            } else {
                IpAddr::V6(Ipv6Addr::LOCALHOST)
            });
            addr.to_string()
        }
        _ => listen.to_owned(),
    }
}

#[derive(Debug, Subcommand)]
pub enum ConnectionsCommand {
    /// One line per connection.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// One connection as JSON, by id or by installation id (`--installation`).
    Show {
        id: i64,
        /// Treat the number as a GitHub installation id.
        #[arg(long)]
        installation: bool,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Change settings, e.g. `set 1 auto_create_deployments=false ignored_environments=preview-*,pr-*`.
    Set {
        id: i64,
        /// `key=value` pairs; values are JSON (`true`, `["a"]`) or, for lists, comma-separated.
        #[arg(required = true, value_name = "KEY=VALUE")]
        settings: Vec<String>,
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum CredentialsCommand {
    /// Create a credential for a connection; its password is printed once.
    Create {
        connection: i64,
        #[arg(long, default_value = "deploy")]
        name: String,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// A connection's active credentials (no secrets).
    List {
        connection: i64,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Revoke a credential at once.
    Revoke {
        connection: i64,
        credential: i64,
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

impl CredentialsCommand {
    pub fn database(&self) -> &DatabaseArgs {
        match self {
            Self::Create { database, .. } | Self::List { database, .. } | Self::Revoke { database, .. } => database,
        }
    }
}

impl ConnectionsCommand {
    pub fn database(&self) -> &DatabaseArgs {
        match self {
            Self::List { database, .. } | Self::Show { database, .. } | Self::Set { database, .. } => database,
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// SQLite file (embedded default) or postgres://… (several replicas).
    #[arg(long, env = "DATABASE_URL", default_value = DEFAULT_DATABASE_URL)]
    pub database_url: String,
    /// `text`, or `json` for log shippers; the level comes from RUST_LOG (default `info`).
    #[arg(long, env = "SHIPLOG_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
}

/// How to reach GitHub as the App.
#[derive(Debug, Clone, Args)]
pub struct GitHubArgs {
    /// The GitHub App's numeric id.
    #[arg(long, env = "GITHUB_APP_ID")]
    pub github_app_id: Option<u64>,
    /// Path to the App's private key (PEM).
    #[arg(long, env = "GITHUB_APP_PRIVATE_KEY_PATH")]
    pub github_app_private_key_path: Option<std::path::PathBuf>,
    /// The App's private key itself (PEM), instead of a path.
    #[arg(long, env = "GITHUB_APP_PRIVATE_KEY", hide_env_values = true)]
    pub github_app_private_key: Option<String>,
    /// GitHub REST root; `https://HOST/api/v3` for GitHub Enterprise Server.
    #[arg(long, env = "GITHUB_API_URL", default_value = DEFAULT_GITHUB_API_URL)]
    pub github_api_url: String,
}

impl GitHubArgs {
    /// The App's id and key, when both are set; one without the other is an error.
    pub fn credentials(&self) -> Result<Option<GitHubAppCredentials>, ConfigError> {
        let private_key = match (&self.github_app_private_key, &self.github_app_private_key_path) {
            (Some(pem), _) if !pem.trim().is_empty() => Some(Secret::new(pem.replace("\\n", "\n"))),
            (_, Some(path)) => {
                let pem = std::fs::read_to_string(path).map_err(|e| ConfigError::Invalid {
                    var: "GITHUB_APP_PRIVATE_KEY_PATH",
                    message: format!("cannot read {}: {e}", path.display()),
                })?;
                Some(Secret::new(pem))
            }
            _ => None,
        };
        match (self.github_app_id, private_key) {
            (Some(app_id), Some(private_key_pem)) => Ok(Some(GitHubAppCredentials {
                app_id,
                private_key_pem,
            })),
            (None, None) => Ok(None),
            (None, Some(_)) => Err(ConfigError::Missing {
                var: "GITHUB_APP_ID",
                flag: "github-app-id",
                hint: "a private key is set, but not the App id it belongs to",
            }),
            (Some(_), None) => Err(ConfigError::Missing {
                var: "GITHUB_APP_PRIVATE_KEY_PATH",
                flag: "github-app-private-key-path",
                hint: "GITHUB_APP_ID is set; give its private key by path or in GITHUB_APP_PRIVATE_KEY",
            }),
        }
    }

    pub fn api_url(&self) -> Result<String, ConfigError> {
        parse_http_url("GITHUB_API_URL", &self.github_api_url)
    }
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Address to bind.
    #[arg(long, env = "SHIPLOG_LISTEN", default_value = DEFAULT_LISTEN)]
    pub listen: String,
    /// How GitHub and people reach this server (links, manifest).
    #[arg(long, env = "SHIPLOG_PUBLIC_URL", default_value = "http://localhost:3000")]
    pub public_url: String,
    /// Comma-separated webhook secrets; every one is accepted (rotation). Required.
    #[arg(long, env = "GITHUB_WEBHOOK_SECRET", hide_env_values = true)]
    pub github_webhook_secret: Option<String>,
    #[command(flatten)]
    pub github: GitHubArgs,
    /// The `@mention` that opts a PR into deploy monitoring.
    #[arg(long, env = "GITHUB_APP_SLUG", default_value = DEFAULT_GITHUB_APP_SLUG)]
    pub github_app_slug: String,
    #[command(flatten)]
    pub secret_key: SecretKeyArgs,
    /// Bearer token for the admin API; the admin API answers 403 while unset.
    #[arg(long, env = "SHIPLOG_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Default agent endpoint (a connection may override it).
    #[arg(long, env = "SHIPLOG_AGENT_URL")]
    pub agent_url: Option<String>,
    /// HMAC key for calls to the default agent.
    #[arg(long, env = "SHIPLOG_AGENT_SECRET", hide_env_values = true)]
    pub agent_secret: Option<String>,
    /// Non-public addresses that agent and trigger calls may reach anyway, comma-separated:
    /// `10.0.0.0/8,127.0.0.1`. Without it only public addresses are called.
    #[arg(long, env = "SHIPLOG_OUTBOUND_ALLOW", default_value = "")]
    pub outbound_allow: String,
    /// Check offsets after a deploy, e.g. `10m,30m,1h,2h,24h,72h`.
    #[arg(long, env = "SHIPLOG_MONITOR_SCHEDULE", default_value = DEFAULT_MONITOR_SCHEDULE)]
    pub monitor_schedule: String,
    /// A monitoring plan ends this long after its first deploy, e.g. `14d`.
    #[arg(long, env = "SHIPLOG_MONITOR_EXPIRY", default_value = DEFAULT_MONITOR_EXPIRY)]
    pub monitor_expiry: String,
    /// Days of history a new installation backfills by itself; 0 turns it off.
    #[arg(long, env = "SHIPLOG_BACKFILL_ON_INSTALL_DAYS", default_value_t = DEFAULT_BACKFILL_ON_INSTALL_DAYS,
          value_parser = clap::value_parser!(u32).range(0..=366))]
    pub backfill_on_install_days: u32,
    /// The webhook intake's hot path for deployment reports (README, "Benchmarks"); `false`
    /// applies every delivery through the general path, as before it existed.
    #[arg(long, env = "SHIPLOG_INTAKE_HOT_PATH", default_value_t = true, action = clap::ArgAction::Set)]
    pub intake_hot_path: bool,
    /// How long a client may take to send a request's line and headers, e.g. `5s`.
    #[arg(long, env = "SHIPLOG_HEADER_TIMEOUT", default_value = DEFAULT_HEADER_TIMEOUT)]
    pub header_timeout: String,
    /// How long a request body may take to arrive in full, e.g. `15s`.
    #[arg(long, env = "SHIPLOG_BODY_TIMEOUT", default_value = DEFAULT_BODY_TIMEOUT)]
    pub body_timeout: String,
    /// Connections served at once, all workers together; default: the open-file limit minus 256.
    #[arg(long, env = "SHIPLOG_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// MiB that request bodies being read may hold, all requests together.
    #[arg(long, env = "SHIPLOG_BODY_MEMORY_MB", default_value_t = DEFAULT_BODY_MEMORY_MB)]
    pub body_memory_mb: usize,
    /// Run the job worker and the hourly clean-up in this process; `false` for a replica that
    /// only serves HTTP (another replica on the same database runs them).
    #[arg(long, env = "SHIPLOG_RUN_JOBS", default_value_t = true, action = clap::ArgAction::Set)]
    pub run_jobs: bool,
    /// Bearer token for `GET /metrics` on the main listener (the admin token works too).
    #[arg(long, env = "SHIPLOG_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,
    /// Serve `GET /metrics` on this address of its own (e.g. `127.0.0.1:9090`) instead of the
    /// main listener.
    #[arg(long, env = "SHIPLOG_METRICS_LISTEN")]
    pub metrics_listen: Option<String>,
    /// Proxies in front of shiplog whose `X-Forwarded-For` names the client, comma-separated
    /// addresses or ranges (`172.16.0.0/12`). Without it the TCP peer is the client.
    #[arg(long, env = "SHIPLOG_TRUSTED_PROXIES", default_value = "")]
    pub trusted_proxies: String,
    /// How often missed webhook deliveries are looked for and redelivered (`10m`; `0` turns it
    /// off). Needs the App's credentials.
    #[arg(long, env = "SHIPLOG_DELIVERY_RECOVERY_INTERVAL", default_value = DEFAULT_DELIVERY_RECOVERY_INTERVAL)]
    pub delivery_recovery_interval: String,
}

/// A setting that is missing or malformed. The message is one line naming the variable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("missing required setting {var} (or --{flag}): {hint}")]
    Missing {
        var: &'static str,
        flag: &'static str,
        hint: &'static str,
    },
    #[error("invalid setting {var}: {message}")]
    Invalid { var: &'static str, message: String },
}

/// The App credentials for GitHub API calls.
#[derive(Clone, Debug)]
pub struct GitHubAppCredentials {
    pub app_id: u64,
    pub private_key_pem: Secret,
}

/// What one client may hold of the server: time to send a request, connections, body memory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpLimits {
    /// For the request line and headers (then 408 and the connection closes).
    pub header_timeout: Duration,
    /// For the whole body, from the end of the headers (then 408 and the connection closes).
    pub body_timeout: Duration,
    /// All workers together; `None`: derived from the open-file limit at start.
    pub max_connections: Option<usize>,
    /// Bytes that bodies being read may hold at once (then 503 with `Retry-After`).
    pub body_memory: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(5),
            body_timeout: Duration::from_secs(15),
            max_connections: None,
            body_memory: DEFAULT_BODY_MEMORY_MB * 1024 * 1024,
        }
    }
}

impl HttpLimits {
    fn from_args(args: &ServeArgs) -> Result<Self, ConfigError> {
        let timeout = |var: &'static str, raw: &str| {
            parse_duration(raw.trim())
                .and_then(|d| {
                    if d.is_zero() || d > Duration::from_secs(600) {
                        Err(format!("{raw:?} must be between 1s and 10m"))
                    } else {
                        Ok(d)
                    }
                })
                .map_err(|message| ConfigError::Invalid { var, message })
        };
        if args.max_connections == Some(0) {
            return Err(ConfigError::Invalid {
                var: "SHIPLOG_MAX_CONNECTIONS",
                message: "must be at least 1".into(),
            });
        }
        if args.body_memory_mb < MIN_BODY_MEMORY_MB {
            return Err(ConfigError::Invalid {
                var: "SHIPLOG_BODY_MEMORY_MB",
                message: format!("must be at least {MIN_BODY_MEMORY_MB}, so a 25 MiB webhook fits"),
            });
        }
        Ok(Self {
            header_timeout: timeout("SHIPLOG_HEADER_TIMEOUT", &args.header_timeout)?,
            body_timeout: timeout("SHIPLOG_BODY_TIMEOUT", &args.body_timeout)?,
            max_connections: args.max_connections,
            body_memory: args.body_memory_mb.saturating_mul(1024 * 1024),
        })
    }
}

/// Where `GET /metrics` is served and who may read it.
#[derive(Clone, Debug, Default)]
pub struct MetricsConfig {
    /// `SHIPLOG_METRICS_TOKEN`: a bearer token that reads the metrics (and nothing else).
    pub token: Option<Secret>,
    /// `SHIPLOG_METRICS_LISTEN`: a listener of its own for the metrics.
    pub listen: Option<String>,
}

#[derive(Clone, Debug)]
pub struct AgentConfig {
    pub url: String,
    pub secret: Secret,
}

/// The server's settings, validated.
#[derive(Clone, Debug)]
pub struct Config {
    pub database_url: String,
    pub listen: String,
    pub public_url: String,
    pub webhook_secrets: Vec<Secret>,
    pub github_app: Option<GitHubAppCredentials>,
    pub github_app_slug: String,
    /// The App is the one set up in the browser (read from the database at start), not the
    /// environment's.
    pub github_app_stored: bool,
    /// Where the key for secrets at rest comes from; resolved when a secret is sealed or
    /// opened ([`Config::secret_key`]), so the key file is created on first use.
    pub secret_key: SecretKeyArgs,
    pub github_api_url: String,
    pub admin_token: Option<Secret>,
    pub agent: Option<AgentConfig>,
    /// `SHIPLOG_OUTBOUND_ALLOW`: the only exemption from "outbound calls go to public addresses".
    pub outbound_allow: AllowList,
    pub monitor_schedule: Vec<Duration>,
    pub monitor_expiry: Duration,
    /// `SHIPLOG_BACKFILL_ON_INSTALL_DAYS`: a new installation's backfill; 0 is none.
    pub backfill_on_install_days: u32,
    /// `SHIPLOG_INTAKE_HOT_PATH`: deployment reports in a few statements (default), or all
    /// deliveries through the general path.
    pub intake_hot_path: bool,
    pub log_format: LogFormat,
    /// HTTP worker threads; `None` means one per core. Tests use one.
    pub http_workers: Option<usize>,
    /// Run the job worker in the background. Tests turn it off and run jobs by hand.
    pub run_jobs: bool,
    pub http_limits: HttpLimits,
    pub metrics: MetricsConfig,
    /// `SHIPLOG_TRUSTED_PROXIES`: peers whose `X-Forwarded-For` is believed (the failure throttle).
    pub trusted_proxies: Vec<crate::outbound::policy::Cidr>,
    /// `SHIPLOG_DELIVERY_RECOVERY_INTERVAL`: the catch-up pass on missed deliveries; `None` is off.
    pub delivery_recovery_interval: Option<Duration>,
}

impl Config {
    /// Where people browse GitHub: `https://github.com`, or the GHES host of `GITHUB_API_URL`.
    pub fn github_web_url(&self) -> String {
        if self.github_api_url == DEFAULT_GITHUB_API_URL {
            "https://github.com".to_owned()
        } else {
            self.github_api_url.trim_end_matches("/api/v3").to_owned()
        }
    }

    /// The key for secrets at rest: `SHIPLOG_SECRET_KEY`, else the key file (created with mode
    /// 0600 when missing). The error is one line naming where the key came from, never the key.
    pub fn secret_key(&self) -> Result<crate::setup::secret_key::SecretKey, String> {
        let file = self.secret_key.key_file(&self.database_url);
        crate::setup::secret_key::SecretKey::from_env_or_file(self.secret_key.secret_key.as_deref(), &file)
            .map(|(key, _)| key)
            .map_err(|e| e.to_string())
    }

    /// Validates the `serve` flags. Reads the private key file if a path is given.
    pub fn from_serve_args(args: ServeArgs) -> Result<Self, ConfigError> {
        let http_limits = HttpLimits::from_args(&args)?;
        let webhook_secrets = match args.github_webhook_secret.as_deref() {
            Some(raw) => parse_secret_list(raw),
            None => Vec::new(),
        };
        if webhook_secrets.is_empty() {
            return Err(ConfigError::Missing {
                var: "GITHUB_WEBHOOK_SECRET",
                flag: "github-webhook-secret",
                hint: "the App's webhook secret(s), comma-separated, so deliveries can be verified",
            });
        }

        let github_app = args.github.credentials()?;

        let agent = match (non_empty(args.agent_url), non_empty(args.agent_secret)) {
            (Some(url), Some(secret)) => Some(AgentConfig {
                url: parse_http_url("SHIPLOG_AGENT_URL", &url)?,
                secret: Secret::new(secret),
            }),
            (None, None) => None,
            (Some(_), None) => {
                return Err(ConfigError::Missing {
                    var: "SHIPLOG_AGENT_SECRET",
                    flag: "agent-secret",
                    hint: "calls to SHIPLOG_AGENT_URL are signed with it",
                })
            }
            (None, Some(_)) => {
                return Err(ConfigError::Missing {
                    var: "SHIPLOG_AGENT_URL",
                    flag: "agent-url",
                    hint: "SHIPLOG_AGENT_SECRET is set but there is no agent to call",
                })
            }
        };

        let outbound_allow = AllowList::parse(&args.outbound_allow).map_err(|message| ConfigError::Invalid {
            var: "SHIPLOG_OUTBOUND_ALLOW",
            message,
        })?;
        // An agent at a literal address shiplog would refuse to call is a mistake to report now.
        if let Some(agent) = &agent {
            if let Err(error) = outbound_allow.check_target(&agent.url) {
                return Err(ConfigError::Invalid {
                    var: "SHIPLOG_AGENT_URL",
                    message: error.to_string(),
                });
            }
        }

        let monitor_schedule = args
            .monitor_schedule
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                parse_duration(s).map_err(|message| ConfigError::Invalid {
                    var: "SHIPLOG_MONITOR_SCHEDULE",
                    message,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if monitor_schedule.is_empty() {
            return Err(ConfigError::Invalid {
                var: "SHIPLOG_MONITOR_SCHEDULE",
                message: "needs at least one offset, e.g. 10m,30m,1h".into(),
            });
        }
        let monitor_expiry = parse_duration(args.monitor_expiry.trim()).map_err(|message| ConfigError::Invalid {
            var: "SHIPLOG_MONITOR_EXPIRY",
            message,
        })?;

        let delivery_recovery_interval = parse_recovery_interval(&args.delivery_recovery_interval)?;
        let trusted_proxies = args
            .trusted_proxies
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(crate::outbound::policy::Cidr::parse)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|message| ConfigError::Invalid {
                var: "SHIPLOG_TRUSTED_PROXIES",
                message,
            })?;
        let metrics = MetricsConfig {
            token: non_empty(args.metrics_token)
                .map(|token| parse_token("SHIPLOG_METRICS_TOKEN", &token))
                .transpose()?,
            listen: non_empty(args.metrics_listen),
        };

        Ok(Self {
            database_url: args.database.database_url,
            listen: args.listen,
            public_url: parse_http_url("SHIPLOG_PUBLIC_URL", &args.public_url)?,
            webhook_secrets,
            github_app,
            github_app_slug: args.github_app_slug.trim().trim_start_matches('@').to_owned(),
            secret_key: args.secret_key,
            github_app_stored: false,
            github_api_url: args.github.api_url()?,
            admin_token: non_empty(args.admin_token)
                .map(|token| parse_token("SHIPLOG_ADMIN_TOKEN", &token))
                .transpose()?,
            agent,
            outbound_allow,
            monitor_schedule,
            monitor_expiry,
            backfill_on_install_days: args.backfill_on_install_days,
            intake_hot_path: args.intake_hot_path,
            log_format: args.database.log_format,
            http_workers: None,
            run_jobs: args.run_jobs,
            http_limits,
            metrics,
            trusted_proxies,
            delivery_recovery_interval,
        })
    }
}

/// Bits an admin token must carry at least (32 random bytes).
pub const ADMIN_TOKEN_MIN_BITS: f64 = 256.0;

/// `0` or `off` turns the catch-up off; otherwise between 1m and 24h (GitHub keeps 3 days).
fn parse_recovery_interval(raw: &str) -> Result<Option<Duration>, ConfigError> {
    let raw = raw.trim();
    if raw == "0" || raw.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    let invalid = |message| ConfigError::Invalid {
        var: "SHIPLOG_DELIVERY_RECOVERY_INTERVAL",
        message,
    };
    let interval = parse_duration(raw).map_err(invalid)?;
    if interval < Duration::from_secs(60) || interval > Duration::from_secs(86_400) {
        return Err(invalid(format!("{raw:?} must be 0 (off) or between 1m and 24h")));
    }
    Ok(Some(interval))
}

/// The admin token signs in to everything, so a guessable one is refused at start (and so is
/// a guessable metrics token). The
/// estimate is conservative: length × log2 of the character classes used (lower case, upper
/// case, digits, other), and at least 8 distinct characters (a repeated pattern is not random);
/// `openssl rand -hex 32` and `openssl rand -base64 32` always pass.
fn parse_token(var: &'static str, token: &str) -> Result<Secret, ConfigError> {
    let has = |f: fn(&char) -> bool| token.chars().any(|c| f(&c));
    let pool = [
        (has(char::is_ascii_lowercase), 26.0),
        (has(char::is_ascii_uppercase), 26.0),
        (has(char::is_ascii_digit), 10.0),
        (has(|c| !c.is_ascii_alphanumeric()), 33.0),
    ]
    .iter()
    .filter(|(used, _)| *used)
    .map(|(_, size)| size)
    .sum::<f64>();
    let distinct = token.chars().collect::<std::collections::HashSet<_>>().len();
    let bits = token.chars().count() as f64 * f64::log2(pool.max(1.0));
    if bits < ADMIN_TOKEN_MIN_BITS || distinct < 8 {
        return Err(ConfigError::Invalid {
            var,
            message: format!(
                "is too easy to guess (about {bits:.0} bits, {distinct} distinct characters): use at least 32 random bytes, e.g. `openssl rand -hex 32`"
            ),
        });
    }
    Ok(Secret::new(token))
}

fn non_empty(value: Option<String>) -> Option<String> {
    value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

pub(crate) fn parse_secret_list(raw: &str) -> Vec<Secret> {
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(Secret::new)
        .collect()
}

fn parse_http_url(var: &'static str, raw: &str) -> Result<String, ConfigError> {
    let trimmed = raw.trim().trim_end_matches('/');
    if !(trimmed.starts_with("http://") || trimmed.starts_with("https://")) || trimmed.len() <= "https://".len() {
        return Err(ConfigError::Invalid {
            var,
            message: format!("{raw:?} is not an http(s) URL"),
        });
    }
    Ok(trimmed.to_owned())
}

/// `90s`, `10m`, `1h`, `14d` (a bare number is seconds).
pub fn parse_duration(raw: &str) -> Result<Duration, String> {
    let split = raw.find(|c: char| !c.is_ascii_digit()).unwrap_or(raw.len());
    let (digits, unit) = raw.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{raw:?} is not a duration like 10m, 1h or 14d"))?;
    let seconds = match unit {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => return Err(format!("{raw:?} has unknown unit {unit:?}; use s, m, h or d")),
    };
    Ok(Duration::from_secs(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serve_args(vars: &[&str]) -> ServeArgs {
        let mut argv = vec!["shiplog", "serve"];
        argv.extend_from_slice(vars);
        match Cli::try_parse_from(argv) {
            Ok(Cli {
                command: Some(Command::Serve(args)),
                ..
            }) => *args,
            other => panic!("unexpected parse: {other:?}"),
        }
    }

    #[test]
    fn the_recovery_interval_is_off_or_between_a_minute_and_a_day() {
        let interval = |raw: &str| {
            Config::from_serve_args(serve_args(&[
                "--github-webhook-secret",
                "s",
                "--delivery-recovery-interval",
                raw,
            ]))
            .map(|c| c.delivery_recovery_interval)
            .map_err(|e| e.to_string())
        };
        assert_eq!(interval("10m"), Ok(Some(Duration::from_secs(600))));
        assert_eq!(interval("0"), Ok(None));
        assert_eq!(interval("off"), Ok(None));
        for bad in ["30s", "2d", "soon"] {
            let err = interval(bad).unwrap_err();
            assert!(
                err.starts_with("invalid setting SHIPLOG_DELIVERY_RECOVERY_INTERVAL"),
                "{err}"
            );
        }
        let defaults = Config::from_serve_args(serve_args(&["--github-webhook-secret", "s"])).unwrap();
        assert_eq!(defaults.delivery_recovery_interval, Some(Duration::from_secs(600)));
        assert!(defaults.run_jobs);
        assert!(defaults.metrics.token.is_none() && defaults.metrics.listen.is_none());
    }

    #[test]
    fn a_guessable_metrics_token_is_refused_like_the_admin_token() {
        let err = Config::from_serve_args(serve_args(&[
            "--github-webhook-secret",
            "s",
            "--metrics-token",
            "hunter2",
        ]))
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("invalid setting SHIPLOG_METRICS_TOKEN"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[test]
    fn a_guessable_admin_token_is_refused_at_start_without_printing_it() {
        for weak in ["hunter2", "correct-horse-battery-staple-1234", &"ab".repeat(40)] {
            let err = Config::from_serve_args(serve_args(&["--github-webhook-secret", "s", "--admin-token", weak]))
                .unwrap_err()
                .to_string();
            assert!(err.starts_with("invalid setting SHIPLOG_ADMIN_TOKEN"), "{err}");
            assert!(!err.contains(weak), "the token must not be printed: {err}");
        }
        // Random hex often lacks one of the sixteen digits; it is still 256 random bits.
        let strong = "a8fc47ffa661b2c3d4e5f6a7b8c9d1e2f3a4b5c6d7e8f9a1b2c3d4e5f6a7b8c9";
        for token in [
            strong,
            "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        ] {
            let config =
                Config::from_serve_args(serve_args(&["--github-webhook-secret", "s", "--admin-token", token])).unwrap();
            assert_eq!(config.admin_token.unwrap().expose(), token);
        }
    }

    fn healthcheck(argv: &[&str]) -> Result<(String, Duration), String> {
        let mut full = vec!["shiplog", "healthcheck"];
        if !argv.contains(&"--listen") {
            // Not this process's SHIPLOG_LISTEN.
            full.extend(["--listen", DEFAULT_LISTEN]);
        }
        full.extend_from_slice(argv);
        match Cli::try_parse_from(full) {
            Ok(Cli {
                command: Some(Command::Healthcheck(args)),
                ..
            }) => args
                .target()
                .map(|(url, timeout)| (url.to_string(), timeout))
                .map_err(|e| e.to_string()),
            other => panic!("unexpected parse: {other:?}"),
        }
    }

    #[test]
    fn the_healthcheck_asks_healthz_on_the_listen_port_at_loopback() {
        assert_eq!(
            healthcheck(&[]),
            Ok(("http://127.0.0.1:3000/healthz".into(), Duration::from_secs(3)))
        );
        let at = |listen: &str| healthcheck(&["--listen", listen]).map(|(url, _)| url);
        assert_eq!(at("0.0.0.0:8080"), Ok("http://127.0.0.1:8080/healthz".into()));
        assert_eq!(at("[::]:8080"), Ok("http://[::1]:8080/healthz".into()));
        assert_eq!(at("10.1.2.3:80"), Ok("http://10.1.2.3/healthz".into()));
        assert_eq!(at("localhost:3000"), Ok("http://localhost:3000/healthz".into()));
        assert_eq!(
            healthcheck(&["--url", "http://shiplog-1:3000/healthz", "--timeout", "10s"]),
            Ok(("http://shiplog-1:3000/healthz".into(), Duration::from_secs(10)))
        );
        for (flag, value, var) in [
            ("--url", "ftp://x/healthz", "--url"),
            ("--url", "not a url", "--url"),
            ("--listen", ":3000", "SHIPLOG_LISTEN"),
            ("--timeout", "0s", "--timeout"),
            ("--timeout", "2m", "--timeout"),
        ] {
            let err = healthcheck(&[flag, value]).unwrap_err();
            assert!(
                err.starts_with(&format!("invalid setting {var}")),
                "{flag} {value}: {err}"
            );
        }
    }

    #[test]
    fn missing_webhook_secret_names_the_variable() {
        let err = Config::from_serve_args(serve_args(&["--github-webhook-secret", " , "])).unwrap_err();
        let line = err.to_string();
        assert!(
            line.starts_with("missing required setting GITHUB_WEBHOOK_SECRET"),
            "{line}"
        );
        assert!(!line.contains('\n'));
    }

    #[test]
    fn webhook_secrets_are_a_comma_separated_list_and_never_printed() {
        let config = Config::from_serve_args(serve_args(&["--github-webhook-secret", "old-one, new-one"])).unwrap();
        assert_eq!(config.webhook_secrets.len(), 2);
        assert_eq!(config.webhook_secrets[1].expose(), "new-one");
        let printed = format!("{config:?}");
        assert!(
            !printed.contains("old-one") && !printed.contains("new-one"),
            "{printed}"
        );
    }

    #[test]
    fn app_id_without_a_key_is_refused() {
        let err = Config::from_serve_args(serve_args(&["--github-webhook-secret", "s", "--github-app-id", "12"]))
            .unwrap_err();
        assert!(err.to_string().contains("GITHUB_APP_PRIVATE_KEY_PATH"));
    }

    #[test]
    fn an_agent_at_a_non_public_address_needs_the_allow_list() {
        let agent = [
            "--github-webhook-secret",
            "s",
            "--agent-url",
            "http://10.1.2.3:8080/hook",
            "--agent-secret",
            "k",
        ];
        let err = Config::from_serve_args(serve_args(&agent)).unwrap_err().to_string();
        assert!(
            err.contains("SHIPLOG_AGENT_URL") && err.contains("SHIPLOG_OUTBOUND_ALLOW"),
            "{err}"
        );
        let mut allowed = agent.to_vec();
        allowed.extend(["--outbound-allow", "10.0.0.0/8"]);
        let config = Config::from_serve_args(serve_args(&allowed)).unwrap();
        assert_eq!(config.outbound_allow.to_string(), "10.0.0.0/8");
        let bad = Config::from_serve_args(serve_args(&[
            "--github-webhook-secret",
            "s",
            "--outbound-allow",
            "10/8",
        ]));
        assert!(bad.unwrap_err().to_string().contains("SHIPLOG_OUTBOUND_ALLOW"));
    }

    #[test]
    fn schedule_and_expiry_parse_with_units() {
        let config = Config::from_serve_args(serve_args(&["--github-webhook-secret", "s"])).unwrap();
        let minutes: Vec<u64> = config.monitor_schedule.iter().map(|d| d.as_secs() / 60).collect();
        assert_eq!(minutes, vec![10, 30, 60, 120, 1440, 4320]);
        assert_eq!(config.monitor_expiry, Duration::from_secs(14 * 86_400));
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("m").is_err());
    }

    #[test]
    fn http_limits_have_defaults_and_refuse_values_that_disable_them() {
        let config = Config::from_serve_args(serve_args(&["--github-webhook-secret", "s"])).unwrap();
        assert_eq!(config.http_limits, HttpLimits::default());
        let config = Config::from_serve_args(serve_args(&[
            "--github-webhook-secret",
            "s",
            "--header-timeout",
            "2s",
            "--body-timeout",
            "1m",
            "--max-connections",
            "64",
        ]))
        .unwrap();
        assert_eq!(config.http_limits.header_timeout, Duration::from_secs(2));
        assert_eq!(config.http_limits.body_timeout, Duration::from_secs(60));
        assert_eq!(config.http_limits.max_connections, Some(64));
        for (flag, value, var) in [
            ("--body-timeout", "0s", "SHIPLOG_BODY_TIMEOUT"),
            ("--header-timeout", "1d", "SHIPLOG_HEADER_TIMEOUT"),
            ("--max-connections", "0", "SHIPLOG_MAX_CONNECTIONS"),
            ("--body-memory-mb", "8", "SHIPLOG_BODY_MEMORY_MB"),
        ] {
            let err = Config::from_serve_args(serve_args(&["--github-webhook-secret", "s", flag, value])).unwrap_err();
            assert!(err.to_string().contains(var), "{flag} {value}: {err}");
        }
    }
}
