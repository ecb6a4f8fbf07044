//! Building and running the server: `Application::build(config)` connects the database, runs
//! migrations, binds the listener (port 0 in tests) and returns; `run_until_stopped()` serves
//! until SIGINT/SIGTERM, finishing in-flight requests first.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::{Server, ServerHandle};
use actix_web::{web, App, HttpServer};
use tracing_actix_web::TracingLogger;

use crate::clock::{SharedClock, SystemClock};
use crate::config::Config;
use crate::github::app::{GitHubApp, GitHubAppError};
use crate::http::{self, AppState};
use crate::store::{Store, StoreError};

/// How long a stopping server waits for in-flight requests.
const SHUTDOWN_GRACE_SECONDS: u64 = 30;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot open the database: {0}")]
    Database(#[source] StoreError),
    #[error("cannot apply migrations: {0}")]
    Migrations(#[source] StoreError),
    #[error(transparent)]
    GitHub(#[from] GitHubAppError),
    #[error("cannot listen on {address}: {source}")]
    Listen { address: String, source: std::io::Error },
}

pub struct Application {
    port: u16,
    server: Server,
    store: Store,
}

impl Application {
    pub async fn build(config: Config) -> Result<Self, StartupError> {
        Self::build_with_clock(config, Arc::new(SystemClock)).await
    }

    pub async fn build_with_clock(config: Config, clock: SharedClock) -> Result<Self, StartupError> {
        let store = Store::connect(&config.database_url)
            .await
            .map_err(StartupError::Database)?;
        store.migrate().await.map_err(StartupError::Migrations)?;
        let github = config
            .github_app
            .as_ref()
            .map(|c| GitHubApp::new(c, &config.github_api_url))
            .transpose()?;

        let address = config.listen.clone();
        let listen_error = |source| StartupError::Listen {
            address: address.clone(),
            source,
        };
        let listener = TcpListener::bind(&config.listen).map_err(listen_error)?;
        let port = listener.local_addr().map_err(listen_error)?.port();
        let workers = config.http_workers;

        let state = web::Data::new(AppState {
            store: store.clone(),
            config: Arc::new(config),
            clock,
            github,
        });
        let mut server = HttpServer::new(move || {
            App::new()
                .wrap(http::problems::problem_json_fallback())
                .wrap(TracingLogger::default())
                .app_data(state.clone())
                .configure(http::routes)
                .default_service(web::to(http::problems::route_not_found))
        })
        .shutdown_timeout(SHUTDOWN_GRACE_SECONDS);
        if let Some(workers) = workers {
            server = server.workers(workers);
        }
        let server = server.listen(listener).map_err(listen_error)?.run();
        Ok(Self { port, server, store })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server from elsewhere (tests; the signal handlers do it in production).
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await?;
        self.store.close().await;
        Ok(())
    }
}
