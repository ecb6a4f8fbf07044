//! The pages' rules, over plain HTTP: sign-in, the session cookie, CSRF, content negotiation.

use crate::helpers::{fixture, spawn_app, TestApp, ADMIN_TOKEN};

pub fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// `name=value` of a `Set-Cookie` header, and the whole header.
pub fn set_cookie(response: &reqwest::Response, name: &str) -> Option<(String, String)> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|header| {
            let pair = header.split(';').next()?.trim();
            pair.starts_with(&format!("{name}="))
                .then(|| (pair.to_owned(), header.to_owned()))
        })
}

/// The CSRF cookie and token of the sign-in form.
pub async fn login_form(app: &TestApp, client: &reqwest::Client) -> String {
    let response = client.get(app.url("/login")).send().await.unwrap();
    let (cookie, _) = set_cookie(&response, "shiplog_csrf").expect("a CSRF cookie");
    cookie
}

pub async fn sign_in(app: &TestApp, client: &reqwest::Client, token: &str) -> reqwest::Response {
    let csrf_cookie = login_form(app, client).await;
    let csrf = csrf_cookie.split_once('=').unwrap().1.to_owned();
    client
        .post(app.url("/login"))
        .header("Cookie", &csrf_cookie)
        .form(&[
            ("token", token),
            ("csrf", csrf.as_str()),
            ("next", "/deployments?environment=production"),
        ])
        .send()
        .await
        .unwrap()
}

pub async fn session(app: &TestApp, client: &reqwest::Client) -> String {
    let response = sign_in(app, client, ADMIN_TOKEN).await;
    set_cookie(&response, "shiplog_session").unwrap().0
}

#[tokio::test]
async fn a_browser_without_a_session_is_sent_to_sign_in() {
    let app = spawn_app().await;
    let client = no_redirects();

    let response = client.get(app.url("/deployments?status=live")).send().await.unwrap();

    assert_eq!(response.status(), 303);
    assert_eq!(
        response.headers()["location"],
        "/login?next=/deployments%3Fstatus%3Dlive"
    );
}

#[tokio::test]
async fn signing_in_sets_a_signed_http_only_strict_session_and_returns_to_the_page() {
    let app = spawn_app().await;
    let client = no_redirects();

    let response = sign_in(&app, &client, ADMIN_TOKEN).await;

    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()["location"], "/deployments?environment=production");
    let (_, header) = set_cookie(&response, "shiplog_session").unwrap();
    assert!(header.contains("HttpOnly"), "{header}");
    assert!(header.contains("SameSite=Strict"), "{header}");
    assert!(!header.contains(ADMIN_TOKEN), "{header}");
}

#[tokio::test]
async fn a_wrong_token_or_a_missing_csrf_token_is_refused() {
    let app = spawn_app().await;
    let client = no_redirects();

    let wrong = sign_in(&app, &client, "not-the-token").await;
    let without_csrf = client
        .post(app.url("/login"))
        .form(&[("token", ADMIN_TOKEN), ("csrf", "forged")])
        .send()
        .await
        .unwrap();

    assert_eq!(wrong.status(), 401);
    assert!(set_cookie(&wrong, "shiplog_session").is_none());
    assert!(wrong.text().await.unwrap().contains("not the admin token"));
    assert_eq!(without_csrf.status(), 403);
    assert!(set_cookie(&without_csrf, "shiplog_session").is_none());
}

#[tokio::test]
async fn a_session_shows_pages_until_it_is_tampered_with_expires_or_signs_out() {
    let app = spawn_app().await;
    app.deliver("installation", &fixture("installation.created")).await;
    app.deliver("deployment", &fixture("deployment.created")).await;
    let client = no_redirects();
    let cookie = session(&app, &client).await;
    let get = |cookie: String| client.get(app.url("/deployments")).header("Cookie", cookie).send();

    let page = get(cookie.clone()).await.unwrap();
    let tampered = get(format!("{}0", cookie.trim_end_matches(char::is_alphanumeric)))
        .await
        .unwrap();
    app.clock.advance(chrono::Duration::hours(13));
    let expired = get(cookie.clone()).await.unwrap();

    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
    let html = page.text().await.unwrap();
    assert!(
        html.contains("acme-corp/web-app") && html.contains(">4c1f0f0<"),
        "{html}"
    );
    assert_eq!(tampered.status(), 303);
    assert_eq!(expired.status(), 303);
}

#[tokio::test]
async fn signing_out_needs_the_csrf_token_and_removes_the_session() {
    let app = spawn_app().await;
    let client = no_redirects();
    let session_cookie = session(&app, &client).await;
    let csrf_cookie = login_form(&app, &client).await;
    let csrf = csrf_cookie.split_once('=').unwrap().1.to_owned();
    let cookies = format!("{session_cookie}; {csrf_cookie}");

    let forged = client
        .post(app.url("/logout"))
        .header("Cookie", &session_cookie)
        .form(&[("csrf", "x")])
        .send()
        .await
        .unwrap();
    let out = client
        .post(app.url("/logout"))
        .header("Cookie", &cookies)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();

    assert_eq!(forged.status(), 403);
    assert_eq!(out.status(), 303);
    let (cleared, header) = set_cookie(&out, "shiplog_session").unwrap();
    assert_eq!(cleared, "shiplog_session=");
    assert!(header.contains("Max-Age=0") || header.contains("Expires"), "{header}");
}

#[tokio::test]
async fn creating_a_credential_from_the_page_needs_the_csrf_token_and_shows_the_password_once() {
    let app = spawn_app().await;
    app.deliver("installation", &fixture("installation.created")).await;
    let client = no_redirects();
    let session_cookie = session(&app, &client).await;
    let csrf_cookie = login_form(&app, &client).await;
    let csrf = csrf_cookie.split_once('=').unwrap().1.to_owned();
    let cookies = format!("{session_cookie}; {csrf_cookie}");
    let post = |token: String| {
        client
            .post(app.url("/deployments/new/credentials"))
            .header("Cookie", &cookies)
            .form(&[("csrf", token.as_str()), ("connection", "1"), ("name", "buildkite")])
            .send()
    };
    let page = |extra: Option<String>| {
        let cookie = match extra {
            Some(extra) => format!("{cookies}; {extra}"),
            None => cookies.clone(),
        };
        client.get(app.url("/deployments/new")).header("Cookie", cookie).send()
    };

    let forged = post("0".repeat(32)).await.unwrap();
    let created = post(csrf.clone()).await.unwrap();
    // The browser follows the redirect with the one-time cookie; a reload comes without it.
    let (issued, issued_header) = set_cookie(&created, "shiplog_issued").expect("the issued credential travels once");
    let shown = page(Some(issued.clone())).await.unwrap();
    let (cleared, _) = set_cookie(&shown, "shiplog_issued").expect("the page removes it");
    let shown_html = shown.text().await.unwrap();
    let reloaded = page(None).await.unwrap().text().await.unwrap();

    assert_eq!(forged.status(), 403);
    assert_eq!(created.status(), 303, "post, redirect, get");
    assert_eq!(created.headers()["location"], "/deployments/new#issued");
    assert!(
        issued_header.contains("HttpOnly") && issued_header.contains("SameSite=Strict"),
        "{issued_header}"
    );
    assert!(issued_header.contains("Path=/deployments/new"), "{issued_header}");
    assert_eq!(cleared, "shiplog_issued=");
    assert_eq!(app.count_rows("deploy_credential").await, 1, "one POST, one credential");
    let password = shown_html
        .split("id=\"issued-password\">")
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap()
        .to_owned();
    assert!(password.starts_with("slp_"));
    assert!(reloaded.contains("buildkite") && !reloaded.contains(&password));
    assert_eq!(app.count_rows("deploy_credential").await, 1, "reloading issues nothing");
}

#[tokio::test]
async fn revoking_from_the_page_asks_for_confirmation_first() {
    let app = spawn_app().await;
    app.deliver("installation", &fixture("installation.created")).await;
    let client = no_redirects();
    let session_cookie = session(&app, &client).await;
    let csrf_cookie = login_form(&app, &client).await;
    let csrf = csrf_cookie.split_once('=').unwrap().1.to_owned();
    let cookies = format!("{session_cookie}; {csrf_cookie}");
    let created = client
        .post(app.url("/deployments/new/credentials"))
        .header("Cookie", &cookies)
        .form(&[("csrf", csrf.as_str()), ("connection", "1"), ("name", "old-ci")])
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 303);
    let list = client
        .get(app.url("/deployments/new"))
        .header("Cookie", &cookies)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let link = list
        .split("class=\"revoke\"")
        .next()
        .unwrap()
        .rsplit("href=\"")
        .next()
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .replace("&amp;", "&");

    let confirm = client
        .get(app.url(&link))
        .header("Cookie", &cookies)
        .send()
        .await
        .unwrap();
    let confirm_status = confirm.status();
    let confirm_html = confirm.text().await.unwrap();
    let still_active = app.count_rows("deploy_credential WHERE revoked_at IS NULL").await;
    let action = link.split('?').next().unwrap().to_owned();
    assert!(confirm_html.contains(&format!("action=\"{action}\"")), "{confirm_html}");
    let revoked = client
        .post(app.url(&action))
        .header("Cookie", &cookies)
        .form(&[("csrf", csrf.as_str()), ("connection", "1")])
        .send()
        .await
        .unwrap();

    assert!(
        link.starts_with("/deployments/new/credentials/") && link.ends_with("/revoke?connection=1"),
        "{link}"
    );
    assert_eq!(confirm_status, 200);
    assert!(
        confirm_html.contains("Revoke") && confirm_html.contains("old-ci"),
        "{confirm_html}"
    );
    assert_eq!(still_active, 1, "showing the question revokes nothing");
    assert_eq!(revoked.status(), 303);
    assert_eq!(app.count_rows("deploy_credential WHERE revoked_at IS NULL").await, 0);
}

#[tokio::test]
async fn the_same_url_answers_json_to_json_clients_and_html_to_browsers() {
    let app = spawn_app().await;
    let client = no_redirects();

    let json = client
        .get(app.url("/deployments"))
        .bearer_auth(ADMIN_TOKEN)
        .header("Accept", "application/json")
        .send()
        .await
        .unwrap();
    let html = client
        .get(app.url("/deployments"))
        .bearer_auth(ADMIN_TOKEN)
        .header("Accept", "text/html")
        .send()
        .await
        .unwrap();

    assert_eq!(json.headers()["content-type"], "application/json");
    assert_eq!(html.headers()["content-type"], "text/html; charset=utf-8");
}

#[tokio::test]
async fn a_superseded_deploy_says_when_and_by_which_deploy_and_the_list_shows_when_each_went_live() {
    let app = spawn_app().await;
    app.deliver("installation", &fixture("installation.created")).await;
    let first = app
        .live_deploy("acme-corp/web-app", &"a1".repeat(20), "production")
        .await;
    let second = app
        .live_deploy("acme-corp/web-app", &"b2".repeat(20), "production")
        .await;
    app.clock.advance(chrono::Duration::seconds(361));
    let client = no_redirects();
    let get = |path: String| client.get(app.url(&path)).bearer_auth(ADMIN_TOKEN).send();

    let page = get(format!("/deployments/{first}"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let list = get("/deployments?limit=1".to_owned())
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let (_, json) = app.admin_get(&format!("/deployments/{first}")).await;

    let timeline = page.split("id=\"timeline\"").nth(1).unwrap();
    assert!(timeline.contains("superseded"), "{timeline}");
    assert!(
        timeline.contains(&format!("href=\"/deployments/{second}\"")),
        "{timeline}"
    );
    assert!(
        timeline.contains(&format!("superseded by deployment {second} (b2b2b2b)")),
        "{timeline}"
    );
    let superseded_by = page.split("id=\"superseded-by\"").nth(1).unwrap();
    assert!(
        superseded_by.contains("b2b2b2b") && superseded_by.contains("live since"),
        "{superseded_by}"
    );
    assert!(list.contains("live <time") && list.contains("6 minutes ago"), "{list}");
    let older = list
        .split("id=\"older\"")
        .next()
        .unwrap()
        .rsplit("href=\"")
        .next()
        .unwrap();
    assert!(
        older.starts_with("/deployments?limit=1&"),
        "Older keeps the page size: {older}"
    );
    let entries = json["statuses"].as_array().unwrap();
    assert_eq!(entries.last().unwrap()["state"], "superseded", "{json}");
    app.run_jobs().await;
}
