//! Hostile values in every stored text a page shows, through the webhook and the API: every page
//! renders them as inert text. No tag or attribute of the page comes from stored data, every
//! link is local or `http(s)`, and every response carries the security headers.

use serde_json::json;

use crate::helpers::{fixture, set, spawn_app, status_and_json, TestApp, ADMIN_TOKEN};

const SHA: &str = "4c1f0f0a9d6e3b2a8f7e6d5c4b3a29181716151a";
const OTHER_SHA: &str = "9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a291817";

/// Values an attacker would try, each within the limits of a single-line name.
pub const HOSTILE_NAMES: [&str; 6] = [
    "<script>alert(1)</script>",
    "\"><img src=x onerror=alert(1)>",
    "'><svg onload=alert(1)>",
    "javascript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "</textarea></title><iframe src=javascript:alert(1)>",
];

/// Free text: all of the above, right-to-left override, zero-width space, and as long as allowed.
pub fn hostile_text() -> String {
    let mut text = format!("{}\n\u{202E}evil.exe\u{200B}gpj.txt\n", HOSTILE_NAMES.join("\n"));
    let filler = "<b>x</b>".repeat(4096);
    let room = 4096 - text.chars().count();
    text.extend(filler.chars().take(room));
    text
}

/// Stores hostile values through the webhook (a deploy with a status) and the API (a deploy, a
/// credential, a connection whose account login is hostile) and returns the deploys' ids.
pub async fn store_hostile_values(app: &TestApp) -> Vec<i64> {
    assert_eq!(
        app.deliver("installation", &fixture("installation.created")).await.0,
        200
    );
    let mut other = fixture("installation.created");
    set(&mut other, "/installation/id", json!(41000099));
    set(&mut other, "/installation/account/login", json!(HOSTILE_NAMES[0]));
    set(&mut other, "/installation/account/id", json!(9100099));
    other["repositories"] = json!([]);
    let (status, body) = app.deliver("installation", &other).await;
    assert_eq!(status, 200, "{body}");

    // Through the webhook: every text of a deployment and its status.
    let mut deployment = fixture("deployment.created");
    set(&mut deployment, "/deployment/environment", json!(HOSTILE_NAMES[1]));
    set(&mut deployment, "/deployment/ref", json!(HOSTILE_NAMES[2]));
    set(&mut deployment, "/deployment/task", json!(HOSTILE_NAMES[3]));
    set(&mut deployment, "/deployment/description", json!(hostile_text()));
    set(&mut deployment, "/deployment/creator/login", json!(HOSTILE_NAMES[5]));
    let mut status = fixture("deployment_status.created");
    status["deployment"] = deployment["deployment"].clone();
    set(&mut status, "/deployment_status/state", json!(HOSTILE_NAMES[0]));
    set(&mut status, "/deployment_status/description", json!(hostile_text()));
    set(
        &mut status,
        "/deployment_status/log_url",
        json!("javascript:alert(document.cookie)"),
    );
    set(
        &mut status,
        "/deployment_status/environment_url",
        json!("data:text/html,<script>alert(1)</script>"),
    );
    set(&mut status, "/deployment_status/creator/login", json!(HOSTILE_NAMES[4]));
    let mut success = status.clone();
    set(&mut success, "/deployment_status/id", json!(2900000002_i64));
    set(&mut success, "/deployment_status/state", json!("success"));
    set(
        &mut success,
        "/deployment_status/log_url",
        json!("https://ci.example/\"><script>alert(1)</script>"),
    );
    set(
        &mut success,
        "/deployment_status/environment_url",
        json!("https://app.example/?q=<img src=x onerror=alert(1)>&\u{202E}"),
    );
    set(
        &mut success,
        "/deployment_status/created_at",
        json!("2026-11-02T09:15:00Z"),
    );
    for (event, payload) in [
        ("deployment", &deployment),
        ("deployment_status", &status),
        ("deployment_status", &success),
    ] {
        let (code, body) = app.deliver(event, payload).await;
        assert_eq!(code, 200, "{event}: {body}");
    }

    // Through the API: a credential with a hostile name, and a deploy with every field hostile.
    let (code, cred) = status_and_json(
        app.client
            .post(app.url("/api/connections/1/credentials"))
            .bearer_auth(ADMIN_TOKEN)
            .json(&json!({"name": HOSTILE_NAMES[1]}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(code, 201, "{cred}");
    let (code, api_deploy) = status_and_json(
        app.client
            .post(app.url("/deployments"))
            .basic_auth(cred["username"].as_str().unwrap(), cred["password"].as_str())
            .json(&json!({
                "repository": "acme-corp/web-app", "environment": HOSTILE_NAMES[0], "sha": OTHER_SHA,
                "ref": HOSTILE_NAMES[5], "version": HOSTILE_NAMES[1], "description": hostile_text(),
                "build_logs_url": "https://ci.example/'\"><svg/onload=alert(1)>", "triggered_by": HOSTILE_NAMES[2],
                "external_id": HOSTILE_NAMES[3], "status": "deploying"
            }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(code, 201, "{api_deploy}");

    // A megabyte is refused on every path, never stored.
    let mut huge = fixture("deployment.created");
    set(&mut huge, "/deployment/description", json!("<script>".repeat(1 << 17)));
    assert_eq!(app.deliver("deployment", &huge).await.0, 400);
    let (code, _) = status_and_json(
        app.client
            .post(app.url("/deployments"))
            .basic_auth(cred["username"].as_str().unwrap(), cred["password"].as_str())
            .json(&json!({"repository": "acme-corp/web-app", "environment": "x".repeat(1 << 20), "sha": SHA}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(code == 413 || code == 422, "{code}");

    let (code, list) = app.admin_get("/deployments").await;
    assert_eq!(code, 200, "{list}");
    let ids: Vec<i64> = list["deployments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids.len(), 2, "{list}");
    ids
}

/// One tag of a page: its name and attributes, as a browser would read them.
#[derive(Debug)]
struct Tag {
    name: String,
    attributes: Vec<(String, String)>,
}

/// The tags of an HTML page (askama escapes `<` in text, so every `<` starts a tag; attribute
/// values are double-quoted and cannot hold a raw `"`).
fn tags(html: &str) -> Vec<Tag> {
    let mut found = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find('<') {
        rest = &rest[start + 1..];
        if rest.starts_with("!--") {
            rest = rest.split_once("-->").map_or("", |(_, after)| after);
            continue;
        }
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '/' || *c == '!')
            .collect::<String>()
            .to_ascii_lowercase();
        rest = &rest[name.len()..];
        let mut attributes = Vec::new();
        loop {
            rest = rest.trim_start();
            if rest.is_empty() || rest.starts_with('>') || rest.starts_with("/>") {
                break;
            }
            let attr: String = rest
                .chars()
                .take_while(|c| !c.is_whitespace() && *c != '=' && *c != '>')
                .collect();
            assert!(
                !attr.is_empty(),
                "unreadable tag <{name} …: {}",
                &rest[..rest.len().min(80)]
            );
            rest = &rest[attr.len()..];
            let mut value = String::new();
            if let Some(after) = rest.strip_prefix('=') {
                let after = after.trim_start();
                if let Some(quoted) = after.strip_prefix('"') {
                    let (v, tail) = quoted.split_once('"').expect("a closed attribute value");
                    value = v.to_owned();
                    rest = tail;
                } else {
                    let v: String = after.chars().take_while(|c| !c.is_whitespace() && *c != '>').collect();
                    rest = &after[v.len()..];
                    value = v;
                }
            }
            attributes.push((attr.to_ascii_lowercase(), value));
        }
        rest = rest.split_once('>').map_or("", |(_, after)| after);
        found.push(Tag { name, attributes });
    }
    found
}

/// Every tag the pages write themselves.
const PAGE_TAGS: &[&str] = &[
    "!doctype", "html", "head", "meta", "title", "link", "body", "header", "main", "nav", "section", "div", "span",
    "a", "form", "input", "button", "label", "select", "option", "datalist", "h1", "h2", "h3", "p", "dl", "dt", "dd",
    "ol", "ul", "li", "bdi", "br", "strong", "time", "code", "pre", "table", "thead", "tbody", "tr", "th", "td",
];

/// No markup from stored data: only the pages' own tags, no event handler or inline style, and
/// every link, form target and resource local or `http(s)`.
pub fn assert_inert(path: &str, html: &str) {
    let lower = html.to_ascii_lowercase();
    assert!(!lower.contains("<script"), "{path}: a script tag");
    for tag in tags(html) {
        assert!(
            PAGE_TAGS.contains(&tag.name.trim_start_matches('/')),
            "{path}: a <{}> tag the pages do not write: {tag:?}",
            tag.name
        );
        for (name, value) in &tag.attributes {
            assert!(!name.starts_with("on"), "{path}: an event handler {tag:?}");
            assert!(name != "style" && name != "srcdoc", "{path}: {tag:?}");
            if ["href", "src", "action", "formaction", "background", "poster"].contains(&name.as_str()) {
                let url = value.replace("&#38;", "&").replace("&amp;", "&").replace("&#47;", "/");
                assert!(
                    (url.starts_with('/') && !url.starts_with("//"))
                        || url.starts_with("http://")
                        || url.starts_with("https://"),
                    "{path}: {name}={value:?} in {tag:?}"
                );
            }
        }
    }
}

/// The three headers every response carries.
pub fn assert_security_headers(path: &str, headers: &reqwest::header::HeaderMap) {
    let csp = headers
        .get("content-security-policy")
        .unwrap_or_else(|| panic!("{path}: no Content-Security-Policy"))
        .to_str()
        .unwrap();
    for directive in [
        "default-src 'none'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'self'",
    ] {
        assert!(csp.contains(directive), "{path}: {csp}");
    }
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("script-src"),
        "{path}: {csp}"
    );
    assert_eq!(headers.get("x-content-type-options").unwrap(), "nosniff", "{path}");
    assert_eq!(headers.get("referrer-policy").unwrap(), "same-origin", "{path}");
}

async fn page(app: &TestApp, path: &str, signed_in: bool) -> (u16, reqwest::header::HeaderMap, String) {
    let mut request = app.client.get(app.url(path)).header("Accept", "text/html");
    if signed_in {
        request = request.bearer_auth(ADMIN_TOKEN);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.text().await.unwrap())
}

#[tokio::test]
async fn every_page_shows_hostile_stored_values_as_inert_text_with_the_security_headers() {
    let app = spawn_app().await;
    let ids = store_hostile_values(&app).await;
    let encoded = |value: &str| value.bytes().map(|b| format!("%{b:02X}")).collect::<String>();
    let mut paths = vec![
        "/deployments".to_owned(),
        "/deployments/new".to_owned(),
        "/connections".to_owned(),
        "/connections/2".to_owned(),
        "/login".to_owned(),
        format!("/login?next={}", encoded("/\"><script>alert(1)</script>")),
        format!("/deployments?environment={}", encoded(HOSTILE_NAMES[1])),
        format!("/deployments?repository={}", encoded(HOSTILE_NAMES[0])),
    ];
    paths.extend(ids.iter().map(|id| format!("/deployments/{id}")));

    for path in &paths {
        let (status, headers, html) = page(&app, path, true).await;
        assert!(status == 200 || status == 400, "{path}: {status}");
        assert_security_headers(path, &headers);
        assert_inert(path, &html);
    }

    // The hostile values are there, as text.
    let (_, _, history) = page(&app, "/deployments", true).await;
    assert!(history.contains("&#60;script&#62;alert(1)"), "{history}");
    let (_, _, create) = page(&app, "/deployments/new", true).await;
    assert!(create.contains("&#60;script&#62;alert(1)"), "the account login");
    for id in &ids {
        let (_, _, html) = page(&app, &format!("/deployments/{id}"), true).await;
        assert!(html.contains("\u{202E}evil.exe"), "the description keeps its text");
        assert!(!html.contains("<img src=x"), "{html}");
    }
    app.run_jobs().await;
}

#[tokio::test]
async fn api_answers_and_errors_carry_the_security_headers_too() {
    let app = spawn_app().await;

    let responses = [
        ("/healthz", app.client.get(app.url("/healthz")).send().await.unwrap()),
        (
            "/api/connections",
            app.client
                .get(app.url("/api/connections"))
                .bearer_auth(ADMIN_TOKEN)
                .send()
                .await
                .unwrap(),
        ),
        (
            "/api/jobs (401)",
            app.client.get(app.url("/api/jobs")).send().await.unwrap(),
        ),
        (
            "/nowhere (404)",
            app.client.get(app.url("/nowhere")).send().await.unwrap(),
        ),
        (
            "/deployments/1 (signed out)",
            app.client.get(app.url("/deployments/1")).send().await.unwrap(),
        ),
        (
            "/static/shiplog.css",
            app.client.get(app.url("/static/shiplog.css")).send().await.unwrap(),
        ),
    ];

    for (path, response) in &responses {
        assert_security_headers(path, response.headers());
    }
    let css = &responses[5].1;
    assert_eq!(css.status(), 200);
    assert_eq!(css.headers()["content-type"], "text/css; charset=utf-8");
}
