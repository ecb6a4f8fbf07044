//! `GET /openapi.json`: the API described as OpenAPI 3.1, generated from the code so it cannot
//! drift. The JSON routes' operations come from their handlers' `#[utoipa::path]` (listed in
//! [`Annotated`]); the pages, forms and stylesheet, each operation's `security`, and the
//! problem+json answers for the refusals come from the route table ([`super::registered_routes`]).
//!
//! Adding a JSON route: put `#[utoipa::path(...)]` on its handler and its name in `paths(...)`
//! below. `tests/api/openapi.rs` fails while a registered route is missing from the document.

use std::sync::OnceLock;

use actix_web::HttpResponse;
use serde_json::{json, Value};
use utoipa::OpenApi;

use super::auth::Access;
use super::{Answer, Gate, RegisteredRoute};

/// The operations written on the JSON handlers.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "shiplog",
        description = "What code is live where. Every `GET` route answers `HEAD` too. Every error is \
                       `application/problem+json` (RFC 9457) with a stable `type` \
                       (`urn:shiplog:problem:…`); the `default` response of each operation stands \
                       for the ones not listed (400 for a query that does not parse, 404, 413, \
                       500, 503 while the database is unavailable)."
    ),
    paths(
        super::health::check_liveness,
        super::health::check_readiness,
        show_document,
        super::webhooks::receive_github_webhook,
        super::board::show_live_board,
        super::connections::list_connections,
        super::connections::get_connection,
        super::connections::update_connection,
        super::connections::list_connection_repositories,
        super::backfills::start_backfill,
        super::backfills::list_backfills,
        super::backfills::get_backfill,
        super::ancestry::check_ancestry,
        super::drift::show_drift,
        super::delivery::show_delivery_metrics,
        super::triggers::list_triggers,
        super::triggers::create_trigger,
        super::triggers::get_trigger,
        super::triggers::cancel_trigger,
        super::monitoring::list_plans,
        super::monitoring::create_plan,
        super::monitoring::get_plan,
        super::monitoring::cancel_plan,
        super::monitoring::record_check_result,
        super::jobs::list_jobs,
        super::recovery::show_recovery,
        super::credentials::list_credentials,
        super::credentials::create_credential,
        super::credentials::revoke_credential,
        super::deployments::list_deployments,
        super::deployments::get_deployment,
        super::deployments::create_deployment,
    ),
    components(schemas(crate::error::Problem, crate::error::FieldError))
)]
struct Annotated;

/// The document served at `/openapi.json`, built once.
pub fn document() -> &'static Value {
    static DOCUMENT: OnceLock<Value> = OnceLock::new();
    DOCUMENT.get_or_init(|| build(&super::registered_routes()))
}

/// The API document, OpenAPI 3.1. Anyone may read it.
#[utoipa::path(
    get,
    path = "/openapi.json",
    responses((status = 200, description = "this document", body = Object))
)]
pub async fn show_document() -> HttpResponse {
    HttpResponse::Ok().json(document())
}

/// The security schemes, by the names the operations use.
fn security_schemes() -> Value {
    json!({
        "admin_token": {
            "type": "http", "scheme": "bearer",
            "description": "`Authorization: Bearer` with SHIPLOG_ADMIN_TOKEN"
        },
        "session": {
            "type": "apiKey", "in": "cookie", "name": super::session::SESSION_COOKIE,
            "description": "a signed-in browser; counts for GET and HEAD only, except on the pages, \
                            whose forms carry a CSRF token"
        },
        "deploy_credential": {
            "type": "http", "scheme": "basic",
            "description": "a deploy credential from \"Create a deployment\": its connection's \
                            resources only"
        },
        "deploy_signature": {
            "type": "apiKey", "in": "header", "name": "X-Shiplog-Signature-256",
            "description": "a deploy credential signing the body: X-Shiplog-Credential, \
                            X-Shiplog-Timestamp and X-Shiplog-Signature-256 (HMAC-SHA256)"
        },
        "agent_signature": {
            "type": "apiKey", "in": "header", "name": "X-Shiplog-Signature-256",
            "description": "a monitoring agent: HMAC-SHA256 of the body with its connection's \
                            agent_secret, else SHIPLOG_AGENT_SECRET"
        },
        "metrics_token": {
            "type": "http", "scheme": "bearer",
            "description": "`Authorization: Bearer` with SHIPLOG_METRICS_TOKEN: reads `/metrics` only \
                            (the admin token reads it too; with SHIPLOG_METRICS_LISTEN the metrics \
                            are served there instead)"
        },
        "webhook_signature": {
            "type": "apiKey", "in": "header", "name": "X-Hub-Signature-256",
            "description": "GitHub's HMAC-SHA256 of the body with the App's webhook secret"
        }
    })
}

/// The security schemes a route accepts, any one of them (empty: anyone).
pub fn schemes_for(route: &RegisteredRoute) -> Vec<&'static str> {
    let require = match route.gate {
        Gate::Anyone => return Vec::new(),
        Gate::WebhookSignature => return vec!["webhook_signature"],
        Gate::Require(require) => require,
    };
    let session = route.method == "GET" || require.signs_in();
    match require.access() {
        Access::Admin if session => vec!["admin_token", "session"],
        Access::Admin => vec!["admin_token"],
        Access::Viewer if session => vec!["admin_token", "session", "deploy_credential"],
        Access::Viewer => vec!["admin_token", "deploy_credential"],
        Access::Deployer => vec!["deploy_credential", "deploy_signature"],
        Access::Agent => vec!["agent_signature", "admin_token"],
        Access::Metrics => vec!["metrics_token", "admin_token"],
    }
}

fn problem_content() -> Value {
    json!({ "application/problem+json": { "schema": { "$ref": "#/components/schemas/Problem" } } })
}

fn build(routes: &[RegisteredRoute]) -> Value {
    let mut document = serde_json::to_value(Annotated::openapi()).unwrap_or_else(|_| json!({}));
    document["components"]["securitySchemes"] = security_schemes();
    document["components"]["responses"]["Problem"] = json!({
        "description": "the request was refused or failed: problem+json (RFC 9457)",
        "content": problem_content()
    });
    for route in routes {
        let operation = &mut document["paths"][route.path][route.method.to_ascii_lowercase()];
        if operation.is_null() {
            if route.answer == Answer::Json {
                // Not annotated: left out, so the test names it.
                continue;
            }
            *operation = json!({ "parameters": path_parameters(route.path), "responses": {} });
        }
        describe(operation, route);
    }
    drop_null_paths(&mut document);
    document
}

/// What the table knows about a route, added to its operation.
fn describe(operation: &mut Value, route: &RegisteredRoute) {
    let responses = &mut operation["responses"];
    match route.answer {
        // Every JSON route that takes a body reads it the same way (`http::body`).
        Answer::Json if matches!(route.method, "POST" | "PATCH") => {
            refusal(
                responses,
                "400",
                "the body is not JSON, not UTF-8, or not the JSON expected (`errors[]` names the field)",
            );
            refusal(
                responses,
                "413",
                "the body is larger than this route takes (README, \"Input limits\")",
            );
        }
        Answer::Json => {}
        Answer::Page => {
            responses["200"]["description"] = json!(responses["200"]["description"].as_str().unwrap_or("the page"));
            responses["200"]["content"]["text/html"] = json!({ "schema": { "type": "string" } });
        }
        Answer::Form => {
            responses["303"] = json!({ "description": "done: on to the next page (`Location`)" });
            responses["200"] = json!({
                "description": "the form again, saying what was wrong",
                "content": { "text/html": { "schema": { "type": "string" } } }
            });
        }
        Answer::Stylesheet => {
            responses["200"] = json!({
                "description": "the pages' stylesheet",
                "content": { "text/css": { "schema": { "type": "string" } } }
            });
        }
        Answer::Metrics => {
            responses["200"] = json!({
                "description": "this process's metrics (README, \"Metrics and the dashboard\")",
                "content": { crate::metrics::CONTENT_TYPE: { "schema": { "type": "string" } } }
            });
        }
    }
    if let Gate::Require(require) = route.gate {
        if require.signs_in() {
            let signing_in = "not signed in: sent to `/login?next=…`";
            responses["303"]["description"] = json!(match responses["303"]["description"].as_str() {
                Some(done) => format!("{done}; {signing_in}"),
                None => signing_in.to_owned(),
            });
        } else {
            refusal(responses, "401", "no credential, or a wrong one");
        }
        refusal(responses, "403", "the credential may not touch this resource");
        refusal(
            responses,
            "429",
            "too many failed attempts from this client (`Retry-After`)",
        );
    } else if route.gate == Gate::WebhookSignature {
        refusal(responses, "401", "no signature, or a wrong one");
    }
    // Statuses the handler lists with a description only are problem+json too.
    if let Some(listed) = responses.as_object_mut() {
        for (status, response) in listed.iter_mut() {
            let error = status.parse::<u16>().is_ok_and(|status| status >= 400);
            if error && response.get("content").is_none() && response.get("$ref").is_none() {
                response["content"] = problem_content();
            }
        }
    }
    responses["default"] = match route.answer {
        // A page or form tells a browser what went wrong as a page (the sign-in form's 401, a
        // form's 409 or 422); its path's JSON callers get problem+json.
        Answer::Page | Answer::Form => json!({
            "description": "the request was refused or failed: a page saying why, or problem+json",
            "content": {
                "text/html": { "schema": { "type": "string" } },
                "application/problem+json": { "schema": { "$ref": "#/components/schemas/Problem" } }
            }
        }),
        Answer::Json | Answer::Stylesheet | Answer::Metrics => json!({ "$ref": "#/components/responses/Problem" }),
    };

    let schemes = schemes_for(route);
    let mut security: Vec<Value> = operation["security"].as_array().cloned().unwrap_or_default();
    for scheme in schemes {
        let requirement = json!({ scheme: [] });
        if !security.contains(&requirement) {
            security.push(requirement);
        }
    }
    if !security.is_empty() {
        operation["security"] = Value::Array(security);
    }
}

/// A page's `{name}`s, declared as OpenAPI requires.
fn path_parameters(path: &str) -> Value {
    let names = path
        .split('/')
        .filter_map(|segment| segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')));
    names
        .map(|name| json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } }))
        .collect()
}

fn refusal(responses: &mut Value, status: &str, description: &str) {
    if responses.get(status).is_none() {
        responses[status] = json!({ "description": description, "content": problem_content() });
    }
}

/// Indexing a path that has no operation leaves `null` behind.
fn drop_null_paths(document: &mut Value) {
    if let Some(paths) = document["paths"].as_object_mut() {
        for item in paths.values_mut() {
            if let Some(item) = item.as_object_mut() {
                item.retain(|_, operation| !operation.is_null());
            }
        }
        paths.retain(|_, item| item.as_object().is_some_and(|item| !item.is_empty()));
    }
}
