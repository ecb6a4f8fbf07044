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
pub mod openapi;
pub mod pages;
pub mod problems;
pub mod recovery;
pub mod security_headers;
pub mod session;
pub mod throttle;
pub mod triggers;
pub mod webhooks;

use std::sync::Arc;

use actix_web::http::Method;
use actix_web::{guard, web, FromRequest, Handler, Responder};

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
    cfg.service(metrics_resource().into_service());
}

/// `GET /metrics`, on either listener.
fn metrics_resource() -> Resource {
    at("/metrics").metrics(Gate::Require(require(Access::Metrics)), metrics::show_metrics)
}

/// `GET /metrics` is on the main listener unless the metrics have a listener of their own.
fn metrics_on_main_listener(ctx: &guard::GuardContext<'_>) -> bool {
    ctx.app_data::<web::Data<AppState>>()
        .is_some_and(|state| state.config.metrics.listen.is_none())
}

/// Registers every route, each with who may call it ([`auth::require`]; README, "Interface").
/// Where one path serves both a page and JSON, [`pages::wants_page`] picks the handler.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.app_data(problems::path_config())
        .app_data(problems::query_config())
        .app_data(problems::json_config())
        .app_data(problems::form_config());
    table(&mut |resource| {
        cfg.service(resource.into_service());
    });
}

/// Every route [`routes`] registers, in order: the API document ([`openapi`]) is checked against
/// this list, and takes each operation's `security` from its [`Gate`].
pub fn registered_routes() -> Vec<RegisteredRoute> {
    let mut all = Vec::new();
    table(&mut |resource| all.extend(resource.routes.into_iter().map(|(route, _)| route)));
    all
}

/// The route table: one line per route with who may call it. A JSON route's handler carries a
/// `#[utoipa::path]` and is listed in [`openapi`]'s `paths(...)`; pages and forms are documented
/// from this table.
fn table(add: &mut dyn FnMut(Resource)) {
    let admin = || Gate::Require(require(Access::Admin));
    let viewer = || Gate::Require(require(Access::Viewer));
    let deployer = || Gate::Require(require(Access::Deployer));
    let agent = || Gate::Require(require(Access::Agent));
    let page = || Gate::Require(require(Access::Admin).or_sign_in());
    // Pages a deploy credential may read too (its own connection's), by HTTP Basic.
    let viewer_page = || Gate::Require(require(Access::Viewer).or_sign_in());
    let anyone = || Gate::Anyone;

    add(at("/").page(viewer_page(), pages::show_board));
    add(at("/repositories/{owner}/{name}").page(viewer_page(), pages::show_repository));
    add(at("/insights").page(viewer_page(), pages::show_insights));
    add(at("/api/live").get(viewer(), board::show_live_board));
    add(at("/login")
        .page(anyone(), pages::show_login)
        .form(anyone(), pages::sign_in));
    add(at("/logout").form(anyone(), pages::sign_out));
    add(at("/static/shiplog.css").stylesheet(security_headers::show_stylesheet));
    add(at("/healthz").get(anyone(), health::check_liveness));
    add(at("/readyz").get(anyone(), health::check_readiness));
    add(at("/openapi.json").get(anyone(), openapi::show_document));
    add(metrics_resource().only_if(metrics_on_main_listener));
    add(at("/webhooks/github").post(Gate::WebhookSignature, webhooks::receive_github_webhook));
    add(at("/api/connections").get(admin(), connections::list_connections));
    add(at("/api/connections/{id}")
        .get(admin(), connections::get_connection)
        .patch(admin(), connections::update_connection));
    add(at("/api/connections/{id}/repositories").get(admin(), connections::list_connection_repositories));
    add(at("/api/connections/{id}/backfill").post(admin(), backfills::start_backfill));
    add(at("/api/connections/{id}/backfills").get(admin(), backfills::list_backfills));
    add(at("/api/backfills/{id}").get(admin(), backfills::get_backfill));
    add(at("/api/ancestry").get(viewer(), ancestry::check_ancestry));
    add(at("/api/drift").get(viewer(), drift::show_drift));
    add(at("/api/metrics/delivery").get(viewer(), delivery::show_delivery_metrics));
    add(at("/api/triggers")
        .get(viewer(), triggers::list_triggers)
        .post(viewer(), triggers::create_trigger));
    add(at("/api/triggers/{id}")
        .get(viewer(), triggers::get_trigger)
        .delete(viewer(), triggers::cancel_trigger));
    add(at("/api/monitoring-plans")
        .get(viewer(), monitoring::list_plans)
        .post(viewer(), monitoring::create_plan));
    add(at("/api/monitoring-plans/{id}")
        .get(viewer(), monitoring::get_plan)
        .delete(viewer(), monitoring::cancel_plan));
    add(at("/api/checks/{id}/result").post(agent(), monitoring::record_check_result));
    add(at("/api/jobs").get(admin(), jobs::list_jobs));
    add(at("/api/deliveries/recovery").get(admin(), recovery::show_recovery));
    add(at("/api/connections/{id}/credentials")
        .get(admin(), credentials::list_credentials)
        .post(admin(), credentials::create_credential));
    add(at("/api/connections/{id}/credentials/{credential_id}").delete(admin(), credentials::revoke_credential));
    add(at("/deployments")
        .page_for_browsers(page(), pages::show_deployments)
        .get(viewer(), deployments::list_deployments)
        .post(deployer(), deployments::create_deployment));
    add(at("/setup")
        .page(page(), pages::show_setup)
        .form(page(), pages::start_setup));
    // Gated by the single-use state alone (README, "Register the GitHub App").
    add(at("/setup/callback").page(anyone(), pages::setup_callback));
    add(at("/connections").page(page(), pages::show_connections));
    add(at("/connections/{id}").page(page(), pages::show_connection));
    add(at("/connections/{id}/backfill").form(page(), pages::start_backfill_form));
    add(at("/deployments/new").page(page(), pages::show_create_page));
    add(at("/deployments/new/credentials").form(page(), pages::create_credential_form));
    add(at("/deployments/new/credentials/{credential_id}/revoke")
        .page(page(), pages::confirm_revoke_page)
        .form(page(), pages::revoke_credential_form));
    add(at("/deployments/{id}")
        .page_for_browsers(page(), pages::show_deployment)
        .get(viewer(), deployments::get_deployment));
}

/// How a route admits its callers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// Anyone (a form's handler still checks its CSRF token).
    Anyone,
    /// GitHub's `X-Hub-Signature-256`, checked by the handler over the body.
    WebhookSignature,
    /// The [`auth::require`] middleware.
    Require(auth::Require),
}

/// What a route answers with when it succeeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// JSON, described by the handler's `#[utoipa::path]`.
    Json,
    /// An HTML page.
    Page,
    /// An HTML form's target: 303 to the next page, or the page again saying why.
    Form,
    /// The stylesheet.
    Stylesheet,
    /// Prometheus metrics (OpenMetrics text).
    Metrics,
}

/// One route as [`routes`] registers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegisteredRoute {
    pub method: &'static str,
    /// actix's pattern, which is OpenAPI's too (`/api/triggers/{id}`).
    pub path: &'static str,
    pub gate: Gate,
    pub answer: Answer,
}

/// One path's routes, recorded as they are built.
struct Resource {
    path: &'static str,
    routes: Vec<(RegisteredRoute, actix_web::Route)>,
    /// Served only where this holds (`/metrics`: not when it has a listener of its own).
    only_if: Option<fn(&guard::GuardContext<'_>) -> bool>,
}

fn at(path: &'static str) -> Resource {
    Resource {
        path,
        routes: Vec::new(),
        only_if: None,
    }
}

/// The table's verbs: `.get(gate, handler)` and so on, each one method and kind of answer.
macro_rules! verbs {
    ($($(#[$doc:meta])* $name:ident => $method:ident, $answer:ident;)*) => {
        $(
            $(#[$doc])*
            fn $name<F, Args>(self, gate: Gate, handler: F) -> Self
            where
                F: Handler<Args>,
                Args: FromRequest + 'static,
                F::Output: Responder + 'static,
            {
                self.add(Method::$method, gate, Answer::$answer, web::route().to(handler))
            }
        )*
    };
}

impl Resource {
    verbs! {
        get => GET, Json;
        post => POST, Json;
        patch => PATCH, Json;
        delete => DELETE, Json;
        page => GET, Page;
        /// An HTML form's target.
        form => POST, Form;
        /// Prometheus metrics.
        metrics => GET, Metrics;
    }

    fn only_if(self, holds: fn(&guard::GuardContext<'_>) -> bool) -> Self {
        Self {
            only_if: Some(holds),
            ..self
        }
    }

    /// The page for a browser; a client asking for JSON falls through to the next `get`.
    fn page_for_browsers<F, Args>(self, gate: Gate, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        let route = web::route().guard(guard::fn_guard(pages::wants_page)).to(handler);
        self.add(Method::GET, gate, Answer::Page, route)
    }

    fn stylesheet<F, Args>(self, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.add(Method::GET, Gate::Anyone, Answer::Stylesheet, web::route().to(handler))
    }

    fn add(mut self, method: Method, gate: Gate, answer: Answer, route: actix_web::Route) -> Self {
        let registered = RegisteredRoute {
            method: method_name(&method),
            path: self.path,
            gate,
            answer,
        };
        let route = route.method(method);
        let route = match gate {
            Gate::Require(require) => route.wrap(require),
            Gate::Anyone | Gate::WebhookSignature => route,
        };
        self.routes.push((registered, route));
        self
    }

    fn into_service(self) -> actix_web::Resource {
        let resource = match self.only_if {
            Some(holds) => web::resource(self.path).guard(guard::fn_guard(holds)),
            None => web::resource(self.path),
        };
        self.routes
            .into_iter()
            .fold(resource, |resource, (_, route)| resource.route(route))
    }
}

fn method_name(method: &Method) -> &'static str {
    match *method {
        Method::POST => "POST",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::PUT => "PUT",
        _ => "GET",
    }
}
