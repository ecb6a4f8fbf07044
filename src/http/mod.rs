//! HTTP: one file per resource. Handlers stay thin: parse the request, call a domain module, map
//! the result to a response. Every error is `application/problem+json`.

pub mod ancestry;
pub mod auth;
pub mod backfills;
pub mod board;
pub mod body;
pub mod budget;
pub mod connections;
pub mod credentials;
pub mod delivery;
pub mod deployments;
pub mod drift;
pub mod head;
pub mod health;
pub mod jobs;
pub mod metrics;
pub mod monitoring;
pub mod pages;
pub mod problems;
pub mod recovery;
pub mod security_headers;
pub mod session;
pub mod throttle;
pub mod triggers;
pub mod webhooks;

use std::sync::Arc;

use actix_web::{guard, web};

use self::auth::{require, Access};

use crate::clock::SharedClock;
use crate::config::Config;
use crate::github::app::GitHubApp;
use crate::store::Store;

/// What every handler can reach.
#[derive(Clone, Debug)]
pub struct AppState {
    pub store: Store,
    /// Where webhook deliveries are recorded (group commit on SQLite).
    pub intake: crate::intake::Intake,
    pub config: Arc<Config>,
    pub clock: SharedClock,
    /// `None` when the GitHub App is not configured.
    pub github: Option<GitHubApp>,
    /// Wakes this process's job worker after a request enqueued work.
    pub jobs_wake: Arc<tokio::sync::Notify>,
    /// Failed authentication per client (429 past the allowance).
    pub throttle: Arc<throttle::FailureThrottle>,
    /// The long-lived tasks, for readiness.
    pub tasks: crate::supervise::Tasks,
    /// This server's Prometheus registry (`GET /metrics`).
    pub metrics: Arc<crate::metrics::Metrics>,
}

/// The routes of the metrics listener (`SHIPLOG_METRICS_LISTEN`): `GET /metrics` only.
pub fn metrics_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/metrics").route(web::get().to(metrics::show_metrics).wrap(require(Access::Metrics))));
}

/// `GET /metrics` is on the main listener unless the metrics have a listener of their own.
fn metrics_on_main_listener(ctx: &guard::GuardContext<'_>) -> bool {
    ctx.app_data::<web::Data<AppState>>()
        .is_some_and(|state| state.config.metrics.listen.is_none())
}

/// Registers every route, each with who may call it ([`auth::require`]; README, "Interface").
/// Where one path serves both a page and JSON, [`pages::wants_page`] picks the handler.
pub fn routes(cfg: &mut web::ServiceConfig) {
    let admin = || require(Access::Admin);
    let viewer = || require(Access::Viewer);
    let page = || require(Access::Admin).or_sign_in();
    // Pages a deploy credential may read too (its own connection's), by HTTP Basic.
    let viewer_page = || require(Access::Viewer).or_sign_in();
    cfg.app_data(problems::path_config())
        .app_data(problems::query_config())
        .app_data(problems::json_config())
        .app_data(problems::form_config())
        .service(web::resource("/").route(web::get().to(pages::show_board).wrap(viewer_page())))
        .service(
            web::resource("/repositories/{owner}/{name}")
                .route(web::get().to(pages::show_repository).wrap(viewer_page())),
        )
        .service(web::resource("/insights").route(web::get().to(pages::show_insights).wrap(viewer_page())))
        .service(web::resource("/api/live").route(web::get().to(board::show_live_board).wrap(viewer())))
        .service(
            web::resource("/login")
                .route(web::get().to(pages::show_login))
                .route(web::post().to(pages::sign_in)),
        )
        .service(web::resource("/logout").route(web::post().to(pages::sign_out)))
        .service(web::resource("/static/shiplog.css").route(web::get().to(security_headers::show_stylesheet)))
        .service(web::resource("/healthz").route(web::get().to(health::check_liveness)))
        .service(web::resource("/readyz").route(web::get().to(health::check_readiness)))
        .service(
            web::resource("/metrics")
                .guard(guard::fn_guard(metrics_on_main_listener))
                .route(web::get().to(metrics::show_metrics).wrap(require(Access::Metrics))),
        )
        .service(web::resource("/webhooks/github").route(web::post().to(webhooks::receive_github_webhook)))
        .service(web::resource("/api/connections").route(web::get().to(connections::list_connections).wrap(admin())))
        .service(
            web::resource("/api/connections/{id}")
                .route(web::get().to(connections::get_connection).wrap(admin()))
                .route(web::patch().to(connections::update_connection).wrap(admin())),
        )
        .service(
            web::resource("/api/connections/{id}/repositories")
                .route(web::get().to(connections::list_connection_repositories).wrap(admin())),
        )
        .service(
            web::resource("/api/connections/{id}/backfill")
                .route(web::post().to(backfills::start_backfill).wrap(admin())),
        )
        .service(
            web::resource("/api/connections/{id}/backfills")
                .route(web::get().to(backfills::list_backfills).wrap(admin())),
        )
        .service(web::resource("/api/backfills/{id}").route(web::get().to(backfills::get_backfill).wrap(admin())))
        .service(web::resource("/api/ancestry").route(web::get().to(ancestry::check_ancestry).wrap(viewer())))
        .service(web::resource("/api/drift").route(web::get().to(drift::show_drift).wrap(viewer())))
        .service(
            web::resource("/api/metrics/delivery").route(web::get().to(delivery::show_delivery_metrics).wrap(viewer())),
        )
        .service(
            web::resource("/api/triggers")
                .route(web::get().to(triggers::list_triggers).wrap(viewer()))
                .route(web::post().to(triggers::create_trigger).wrap(viewer())),
        )
        .service(
            web::resource("/api/triggers/{id}")
                .route(web::get().to(triggers::get_trigger).wrap(viewer()))
                .route(web::delete().to(triggers::cancel_trigger).wrap(viewer())),
        )
        .service(
            web::resource("/api/monitoring-plans")
                .route(web::get().to(monitoring::list_plans).wrap(viewer()))
                .route(web::post().to(monitoring::create_plan).wrap(viewer())),
        )
        .service(
            web::resource("/api/monitoring-plans/{id}")
                .route(web::get().to(monitoring::get_plan).wrap(viewer()))
                .route(web::delete().to(monitoring::cancel_plan).wrap(viewer())),
        )
        .service(
            web::resource("/api/checks/{id}/result").route(
                web::post()
                    .to(monitoring::record_check_result)
                    .wrap(require(Access::Agent)),
            ),
        )
        .service(web::resource("/api/jobs").route(web::get().to(jobs::list_jobs).wrap(admin())))
        .service(web::resource("/api/deliveries/recovery").route(web::get().to(recovery::show_recovery).wrap(admin())))
        .service(
            web::resource("/api/connections/{id}/credentials")
                .route(web::get().to(credentials::list_credentials).wrap(admin()))
                .route(web::post().to(credentials::create_credential).wrap(admin())),
        )
        .service(
            web::resource("/api/connections/{id}/credentials/{credential_id}")
                .route(web::delete().to(credentials::revoke_credential).wrap(admin())),
        )
        .service(
            web::resource("/deployments")
                .route(
                    web::get()
                        .guard(guard::fn_guard(pages::wants_page))
                        .to(pages::show_deployments)
                        .wrap(page()),
                )
                .route(web::get().to(deployments::list_deployments).wrap(viewer()))
                .route(
                    web::post()
                        .to(deployments::create_deployment)
                        .wrap(require(Access::Deployer)),
                ),
        )
        .service(web::resource("/connections").route(web::get().to(pages::show_connections).wrap(page())))
        .service(web::resource("/connections/{id}").route(web::get().to(pages::show_connection).wrap(page())))
        .service(
            web::resource("/connections/{id}/backfill").route(web::post().to(pages::start_backfill_form).wrap(page())),
        )
        .service(web::resource("/deployments/new").route(web::get().to(pages::show_create_page).wrap(page())))
        .service(
            web::resource("/deployments/new/credentials")
                .route(web::post().to(pages::create_credential_form).wrap(page())),
        )
        .service(
            web::resource("/deployments/new/credentials/{credential_id}/revoke")
                .route(web::get().to(pages::confirm_revoke_page).wrap(page()))
                .route(web::post().to(pages::revoke_credential_form).wrap(page())),
        )
        .service(
            web::resource("/deployments/{id}")
                .route(
                    web::get()
                        .guard(guard::fn_guard(pages::wants_page))
                        .to(pages::show_deployment)
                        .wrap(page()),
                )
                .route(web::get().to(deployments::get_deployment).wrap(viewer())),
        );
}
