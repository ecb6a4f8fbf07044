//! `GET /openapi.json`: the document is OpenAPI 3.1, names every route the server registers (and
//! nothing else) with the auth each takes and its problem+json answers, and the JSON answers the
//! suite receives match their documented schemas ([`check_answer`], called from the helpers and
//! the auth matrix).

use std::collections::BTreeSet;

use serde_json::Value;
use shiplog::http::auth::Access;
use shiplog::http::openapi::document;
use shiplog::http::{registered_routes, Answer, Gate, RegisteredRoute};

use crate::auth_matrix::{world, CALLERS};
use crate::helpers::spawn_app;

/// Checks one JSON answer against the document: the operation for `method` (any method of the
/// path when `None`) and `url` (a path, query ignored), its response for `status` (else
/// `default`), the schema for `content_type`. Returns the operation's method and path pattern.
pub fn check_answer(
    method: Option<&str>,
    url: &str,
    status: u16,
    content_type: &str,
    body: &Value,
) -> Result<(String, String), String> {
    let document = document();
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let Some(pattern) = pattern_for(document, path) else {
        return Err(format!("{path}: no documented path matches"));
    };
    let item = &document["paths"][&pattern];
    let methods: Vec<String> = match method {
        Some(method) => vec![method.to_ascii_lowercase()],
        None => ["get", "post", "patch", "delete"]
            .into_iter()
            .filter(|m| item.get(*m).is_some())
            .map(str::to_owned)
            .collect(),
    };
    let media = content_type.split(';').next().unwrap_or_default().trim();
    let mut failures = Vec::new();
    for method in &methods {
        let route = format!("{} {pattern} {status}", method.to_ascii_uppercase());
        let Some(operation) = item.get(method) else {
            failures.push(format!("{route}: not documented"));
            continue;
        };
        let responses = &operation["responses"];
        let Some(response) = responses.get(status.to_string()).or_else(|| responses.get("default")) else {
            failures.push(format!("{route}: status not documented"));
            continue;
        };
        let response = resolve(document, response);
        let Some(schema) = response["content"].get(media).map(|c| &c["schema"]) else {
            failures.push(format!(
                "{route}: answered {media}, documented {:?}",
                response["content"].as_object().map(|c| c.keys().collect::<Vec<_>>())
            ));
            continue;
        };
        match validate(document, schema, body, "$") {
            Ok(()) => return Ok((method.to_ascii_uppercase(), pattern)),
            Err(error) => failures.push(format!("{route}: {error}\n  answer: {body}")),
        }
    }
    Err(failures.join("\n"))
}

/// An answer without a body (`204 No Content`): its status must be documented without content.
pub fn check_empty(method: &str, url: &str, status: u16) -> Result<(String, String), String> {
    let document = document();
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let pattern = pattern_for(document, path).ok_or_else(|| format!("{path}: no documented path matches"))?;
    let response = &document["paths"][&pattern][method.to_ascii_lowercase()]["responses"][status.to_string()];
    match response.get("description") {
        Some(_) if response.get("content").is_none() => Ok((method.to_owned(), pattern)),
        _ => Err(format!(
            "{method} {pattern} {status}: not documented as an empty answer"
        )),
    }
}

/// The hook in the helpers: checks a JSON answer from the server when its route is documented
/// (panicking with the mismatch); an answer of a route or method that is not, such as a test's
/// unknown path (404) or wrong method (405), must still be a `Problem`.
pub fn check_any(method: Option<&str>, url: &str, status: u16, content_type: &str, body: &Value) {
    if !content_type.contains("json") || body.is_null() {
        return;
    }
    let document = document();
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let documented = pattern_for(document, path).is_some_and(|pattern| {
        method.is_none_or(|m| document["paths"][&pattern].get(m.to_ascii_lowercase()).is_some())
    });
    let checked = if documented {
        check_answer(method, url, status, content_type, body).map(|_| ())
    } else if content_type.starts_with("application/problem+json") {
        let problem = serde_json::json!({ "$ref": "#/components/schemas/Problem" });
        validate(document, &problem, body, "$").map_err(|e| format!("{path} {status}: {e}"))
    } else {
        Ok(())
    };
    if let Err(error) = checked {
        panic!("the answer does not match the API document:\n{error}");
    }
}

/// The documented path `path` falls under; a literal segment beats a `{parameter}`.
fn pattern_for(document: &Value, path: &str) -> Option<String> {
    let segments: Vec<&str> = path.split('/').collect();
    let mut best: Option<(usize, &String)> = None;
    for pattern in document["paths"].as_object()?.keys() {
        let parts: Vec<&str> = pattern.split('/').collect();
        if parts.len() != segments.len() {
            continue;
        }
        let mut literal = 0;
        let fits = parts.iter().zip(&segments).all(|(part, segment)| {
            if part.starts_with('{') {
                !segment.is_empty()
            } else {
                literal += 1;
                part == segment
            }
        });
        if fits && best.is_none_or(|(most, _)| literal > most) {
            best = Some((literal, pattern));
        }
    }
    best.map(|(_, pattern)| pattern.clone())
}

fn resolve<'a>(document: &'a Value, value: &'a Value) -> &'a Value {
    match value.get("$ref").and_then(Value::as_str) {
        Some(reference) => {
            let pointer = reference.trim_start_matches('#');
            resolve(document, document.pointer(pointer).unwrap_or(&Value::Null))
        }
        None => value,
    }
}

/// The JSON Schema keywords utoipa writes: `$ref`, `type` (with `"null"` in a list), `properties`,
/// `required`, `additionalProperties`, `items`, `enum`, `const`, `oneOf`, `anyOf`, `allOf`,
/// `minimum`. Names the JSON path of the first mismatch.
fn validate(document: &Value, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    let schema = resolve(document, schema);
    if schema.is_null() {
        return Err(format!("{at}: the schema's $ref does not resolve"));
    }
    if schema.as_bool() == Some(true) {
        return Ok(());
    }
    if let Some(types) = schema.get("type") {
        let types: Vec<&str> = match types {
            Value::String(one) => vec![one.as_str()],
            Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        let fits = types.iter().any(|t| match *t {
            "null" => value.is_null(),
            "boolean" => value.is_boolean(),
            "integer" => value.is_i64() || value.is_u64(),
            "number" => value.is_number(),
            "string" => value.is_string(),
            "array" => value.is_array(),
            "object" => value.is_object(),
            _ => false,
        });
        if !fits {
            return Err(format!("{at}: expected {types:?}, got {value}"));
        }
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array) {
        if !allowed.contains(value) {
            return Err(format!("{at}: {value} is not one of {allowed:?}"));
        }
    }
    if let Some(constant) = schema.get("const") {
        if constant != value {
            return Err(format!("{at}: expected {constant}, got {value}"));
        }
    }
    if let (Some(minimum), Some(number)) = (schema.get("minimum").and_then(Value::as_f64), value.as_f64()) {
        if number < minimum {
            return Err(format!("{at}: {number} is below {minimum}"));
        }
    }
    if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
        for part in all {
            validate(document, part, value, at)?;
        }
    }
    for keyword in ["oneOf", "anyOf"] {
        if let Some(options) = schema.get(keyword).and_then(Value::as_array) {
            let errors: Vec<String> = options
                .iter()
                .filter_map(|option| validate(document, option, value, at).err())
                .collect();
            let matched = options.len() - errors.len();
            if matched == 0 || (keyword == "oneOf" && matched > 1) {
                return Err(format!("{at}: {matched} of {keyword} match: {}", errors.join("; ")));
            }
        }
    }
    if let Some(object) = value.as_object() {
        let properties = schema.get("properties").and_then(Value::as_object);
        for name in schema.get("required").and_then(Value::as_array).into_iter().flatten() {
            let name = name.as_str().unwrap_or_default();
            if !object.contains_key(name) {
                return Err(format!("{at}: missing required `{name}`"));
            }
        }
        for (name, field) in object {
            let at = format!("{at}.{name}");
            match properties.and_then(|p| p.get(name)) {
                Some(property) => validate(document, property, field, &at)?,
                None => match schema.get("additionalProperties") {
                    Some(Value::Bool(false)) => return Err(format!("{at}: not documented")),
                    Some(extra) if extra.is_object() => validate(document, extra, field, &at)?,
                    _ => {}
                },
            }
        }
    }
    if let (Some(items), Some(array)) = (schema.get("items"), value.as_array()) {
        for (index, item) in array.iter().enumerate() {
            validate(document, items, item, &format!("{at}[{index}]"))?;
        }
    }
    Ok(())
}

/// The schemes the README's table gives each kind of route (section "Interface"), written out
/// here apart from the server's own mapping.
fn expected_schemes(route: &RegisteredRoute) -> BTreeSet<&'static str> {
    let mut schemes = BTreeSet::new();
    match route.gate {
        Gate::Anyone => {}
        Gate::WebhookSignature => {
            schemes.insert("webhook_signature");
        }
        Gate::Require(require) => {
            let reads = route.method == "GET";
            match require.access() {
                Access::Admin => schemes.extend(["admin_token"]),
                Access::Viewer => schemes.extend(["admin_token", "deploy_credential"]),
                Access::Deployer => schemes.extend(["deploy_credential", "deploy_signature"]),
                Access::Agent => schemes.extend(["admin_token", "agent_signature"]),
                Access::Metrics => schemes.extend(["admin_token", "metrics_token"]),
            }
            if matches!(require.access(), Access::Admin | Access::Viewer) && (reads || require.signs_in()) {
                schemes.insert("session");
            }
        }
    }
    schemes
}

fn operation<'a>(route: &RegisteredRoute) -> &'a Value {
    &document()["paths"][route.path][route.method.to_ascii_lowercase()]
}

#[tokio::test]
async fn the_document_is_openapi_3_1_and_anyone_may_read_it() {
    let app = spawn_app().await;

    let response = app.client.get(app.url("/openapi.json")).send().await.unwrap();

    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(content_type.starts_with("application/json"), "{content_type}");
    let served: Value = response.json().await.unwrap();
    assert_eq!(&served, document());
    assert!(
        served["openapi"].as_str().unwrap().starts_with("3.1."),
        "{}",
        served["openapi"]
    );
    assert_eq!(served["info"]["title"], "shiplog");
    assert!(served["info"]["version"].as_str().is_some_and(|v| !v.is_empty()));
    assert!(served["paths"].as_object().is_some_and(|p| !p.is_empty()));
    for (name, scheme) in served["components"]["securitySchemes"].as_object().unwrap() {
        assert!(
            ["http", "apiKey"].contains(&scheme["type"].as_str().unwrap()),
            "{name}: {scheme}"
        );
    }
    // Every reference resolves (a schema name used twice would leave one dangling or wrong).
    let text = served.to_string();
    assert!(
        text.matches(r#""$ref":""#).count() > 50,
        "the answers' schemas are referenced"
    );
    for reference in text.split(r#""$ref":""#).skip(1) {
        let pointer = reference.split('"').next().unwrap().trim_start_matches('#');
        assert!(served.pointer(pointer).is_some(), "{pointer} does not resolve");
    }
    // Every path parameter is declared.
    for (path, item) in served["paths"].as_object().unwrap() {
        let wanted: Vec<&str> = path
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .collect();
        for (method, operation) in item.as_object().unwrap() {
            let declared: Vec<&str> = operation["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p["in"] == "path")
                .filter_map(|p| p["name"].as_str())
                .collect();
            assert_eq!(declared, wanted, "{method} {path}");
        }
    }
}

#[test]
fn every_registered_route_is_documented_and_the_document_names_no_other() {
    let registered: BTreeSet<(String, String)> = registered_routes()
        .iter()
        .map(|r| (r.method.to_owned(), r.path.to_owned()))
        .collect();
    let mut documented = BTreeSet::new();
    for (path, item) in document()["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            documented.insert((method.to_ascii_uppercase(), path.clone()));
        }
    }

    let missing: Vec<_> = registered.difference(&documented).collect();
    let unknown: Vec<_> = documented.difference(&registered).collect();
    assert!(
        missing.is_empty(),
        "registered but not in the document (add #[utoipa::path] and list the handler in src/http/openapi.rs): {missing:?}"
    );
    assert!(unknown.is_empty(), "documented but not registered: {unknown:?}");
    assert!(registered.contains(&("GET".to_owned(), "/openapi.json".to_owned())));
}

#[test]
fn each_operation_takes_the_auth_its_route_is_registered_with() {
    let routes = registered_routes();
    let schemes = document()["components"]["securitySchemes"].as_object().unwrap();
    let mut mismatches = Vec::new();
    for route in &routes {
        // A path with a page and JSON on one method takes the callers of both.
        let expected: BTreeSet<&str> = routes
            .iter()
            .filter(|r| r.method == route.method && r.path == route.path)
            .flat_map(expected_schemes)
            .collect();
        let documented: BTreeSet<&str> = operation(route)["security"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|requirement| requirement.as_object().unwrap().keys())
            .map(String::as_str)
            .collect();
        if documented != expected {
            mismatches.push(format!(
                "{} {}: documented {documented:?}, expected {expected:?}",
                route.method, route.path
            ));
        }
        for scheme in &documented {
            assert!(schemes.contains_key(*scheme), "{scheme} is not a security scheme");
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));

    // Rows of the README's table, spelled out.
    let security = |method: &str, path: &str| document()["paths"][path][method]["security"].clone();
    assert_eq!(security("get", "/openapi.json"), Value::Null);
    assert_eq!(security("get", "/healthz"), Value::Null);
    assert_eq!(
        security("post", "/webhooks/github"),
        serde_json::json!([{"webhook_signature": []}])
    );
    assert_eq!(
        security("post", "/api/triggers"),
        serde_json::json!([{"admin_token": []}, {"deploy_credential": []}])
    );
    assert_eq!(
        security("patch", "/api/connections/{id}"),
        serde_json::json!([{"admin_token": []}])
    );
}

#[test]
fn every_refusal_and_error_is_documented_as_problem_json() {
    let problem = serde_json::json!({ "$ref": "#/components/schemas/Problem" });
    let document = document();
    assert_eq!(
        document["components"]["schemas"]["Problem"]["properties"]["type"]["type"],
        "string"
    );
    for route in registered_routes() {
        let responses = &operation(&route)["responses"];
        let name = format!("{} {}", route.method, route.path);
        assert_eq!(
            resolve(document, &responses["default"])["content"]["application/problem+json"]["schema"],
            problem,
            "{name}"
        );
        for (status, response) in responses.as_object().unwrap() {
            if status.parse::<u16>().is_ok_and(|s| s >= 400) {
                let content = &resolve(document, response)["content"];
                assert_eq!(
                    content["application/problem+json"]["schema"], problem,
                    "{name} {status}"
                );
                assert_eq!(content.as_object().unwrap().len(), 1, "{name} {status}");
            }
        }
        if let Gate::Require(require) = route.gate {
            let refused = if require.signs_in() { "303" } else { "401" };
            for status in [refused, "403", "429"] {
                assert!(responses.get(status).is_some(), "{name}: {status} not documented");
            }
        }
        match route.answer {
            Answer::Page | Answer::Form => {
                let page = route.answer == Answer::Page;
                assert!(responses["200"]["content"].get("text/html").is_some(), "{name}: {page}");
            }
            Answer::Stylesheet => assert!(responses["200"]["content"].get("text/css").is_some()),
            Answer::Metrics => assert!(responses["200"]["content"]
                .get(shiplog::metrics::CONTENT_TYPE)
                .is_some()),
            Answer::Json => assert!(
                responses
                    .as_object()
                    .unwrap()
                    .iter()
                    .any(|(status, r)| status.starts_with('2') && (r.get("content").is_some() || status == "204")),
                "{name}: no success answer documented"
            ),
        }
    }
}

#[test]
fn a_wrong_answer_is_named_by_route_status_and_json_path() {
    let error = check_answer(
        Some("GET"),
        "/api/jobs?state=queued",
        403,
        "application/problem+json",
        &serde_json::json!({"type": "urn:shiplog:problem:forbidden", "title": "Forbidden", "status": "403", "detail": "no"}),
    )
    .unwrap_err();
    assert!(
        error.contains("GET /api/jobs 403: $.status: expected [\"integer\"]"),
        "{error}"
    );

    let error = check_answer(Some("GET"), "/api/jobs", 200, "text/html", &Value::Null).unwrap_err();
    assert!(error.contains("answered text/html"), "{error}");
    assert_eq!(
        check_answer(Some("GET"), "/deployments/new", 200, "text/html", &Value::Null)
            .err()
            .map(|e| e.contains("/deployments/new")),
        Some(true),
        "a literal segment wins over {{id}}"
    );
}

/// The auth matrix's calls, as the callers who may make them: every JSON route answers 2xx at
/// least once, and every JSON answer matches the document.
#[tokio::test]
async fn every_json_route_answers_as_documented() {
    let world = world().await;

    for row in world.rows() {
        for caller in CALLERS {
            // `call` checks each JSON answer against the document (and panics naming it).
            world.call(&row, caller).await;
        }
    }

    let (status, answer) = world.app.deliver("ping", &crate::helpers::fixture("ping")).await;
    let checked = check_answer(Some("POST"), "/webhooks/github", status, "application/json", &answer).unwrap();
    world.answered.borrow_mut().push((checked.0, checked.1, status));

    let answered = world.answered.borrow();
    let missing: Vec<String> = registered_routes()
        .into_iter()
        .filter(|r| r.answer == Answer::Json)
        .filter(|r| {
            !answered
                .iter()
                .any(|(m, p, status)| m == r.method && p == r.path && (200..300).contains(status))
        })
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert!(
        missing.is_empty(),
        "no JSON route answered 2xx and was checked: {missing:?}"
    );
}

#[tokio::test]
async fn the_create_a_deployment_page_links_to_the_document() {
    let app = spawn_app().await;

    let page = app
        .client
        .get(app.url("/deployments/new"))
        .bearer_auth(crate::helpers::ADMIN_TOKEN)
        .header("Accept", "text/html")
        .send()
        .await
        .unwrap();

    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains(r#"<a href="/openapi.json" id="api-document">"#), "{html}");
}

#[test]
fn typed_answers_name_their_fields_and_a_missing_one_fails() {
    let schemas = &document()["components"]["schemas"];
    for (schema, field) in [
        ("Job", "run_at"),
        ("Credential", "username"),
        ("Receipt", "outcome"),
        ("AncestryAnswer", "is_ancestor"),
    ] {
        let required = schemas[schema]["required"]
            .as_array()
            .unwrap_or_else(|| panic!("{schema}: {}", schemas[schema]));
        assert!(required.contains(&Value::from(field)), "{schema}: {required:?}");
    }

    let job = serde_json::json!({"id": 1, "kind": "k", "payload": {}, "dedupe_key": null, "state": "queued",
        "run_at": "2026-01-01T00:00:00Z", "attempts": 0, "last_error": null, "created_at": "2026-01-01T00:00:00Z",
        "finished_at": null});
    assert_eq!(
        check_answer(
            Some("GET"),
            "/api/jobs",
            200,
            "application/json",
            &serde_json::json!({"jobs": [job]})
        ),
        Ok(("GET".to_owned(), "/api/jobs".to_owned()))
    );
    let mut wrong = job.clone();
    wrong["state"] = Value::from("sleeping");
    let error = check_answer(
        Some("GET"),
        "/api/jobs",
        200,
        "application/json",
        &serde_json::json!({"jobs": [wrong]}),
    )
    .unwrap_err();
    assert!(error.contains("$.jobs[0].state"), "{error}");
    wrong = job;
    wrong.as_object_mut().unwrap().remove("attempts");
    let error = check_answer(
        Some("GET"),
        "/api/jobs",
        200,
        "application/json",
        &serde_json::json!({"jobs": [wrong]}),
    )
    .unwrap_err();
    assert!(error.contains("$.jobs[0]: missing required `attempts`"), "{error}");
}
