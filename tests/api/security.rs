//! What an outside attack found and what now holds: sessions end for good, guessing is
//! throttled, sign-in never redirects off the site, signed requests cannot be replayed, only our
//! App's deliveries come in, `HEAD` works, and expired rows are purged.

use chrono::Duration;
use sea_orm::ConnectionTrait;
use serde_json::json;
use shiplog::config::{GitHubAppCredentials, Secret};

use crate::explicit_api::{create_credential, installed_app, minimal, post_signed, SHA};
use crate::fake_github::{private_key_pem, APP_ID};
use crate::helpers::{fixture, spawn_app, spawn_app_on, spawn_app_with, WebhookRequest, ADMIN_TOKEN};
use crate::pages::{login_form, no_redirects, session, set_cookie, sign_in};

fn now_seconds(app: &crate::helpers::TestApp) -> i64 {
    shiplog::clock::Clock::now(app.clock.as_ref()).timestamp()
}

#[tokio::test]
async fn a_session_cookie_is_dead_once_its_owner_signs_out() {
    let app = spawn_app().await;
    let client = no_redirects();
    let session_cookie = session(&app, &client).await;
    let csrf_cookie = login_form(&app, &client).await;
    let csrf = csrf_cookie.split_once('=').unwrap().1.to_owned();
    let page = |cookie: String| client.get(app.url("/deployments")).header("Cookie", cookie).send();
    assert_eq!(page(session_cookie.clone()).await.unwrap().status(), 200);

    let out = client
        .post(app.url("/logout"))
        .header("Cookie", format!("{session_cookie}; {csrf_cookie}"))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    // An attacker who copied the cookie before the sign-out keeps sending it.
    let replayed = page(session_cookie.clone()).await.unwrap();
    let as_json = client
        .get(app.url("/deployments"))
        .header("Cookie", &session_cookie)
        .header("Accept", "application/json")
        .send()
        .await
        .unwrap();

    assert_eq!(out.status(), 303);
    assert_eq!(replayed.status(), 303, "the page sends the copied cookie to sign-in");
    assert_eq!(as_json.status(), 401);
    assert_eq!(app.count_rows("admin_session").await, 0);
}

#[tokio::test]
async fn the_session_cookie_is_a_random_id_whose_hash_alone_is_stored() {
    let app = spawn_app().await;
    let client = no_redirects();

    let cookie = session(&app, &client).await;

    let value = cookie.split_once('=').unwrap().1;
    let id = value.strip_prefix("v2.").expect("a v2 session cookie");
    assert_eq!(id.len(), 64);
    assert!(!value.contains(ADMIN_TOKEN));
    let row = app.first_row("SELECT id_hash, token_tag FROM admin_session").await;
    let stored: String = row.try_get("", "id_hash").unwrap();
    let tag: String = row.try_get("", "token_tag").unwrap();
    assert_ne!(stored, id, "the database keeps no usable cookie");
    assert_ne!(tag, ADMIN_TOKEN);
}

#[tokio::test]
async fn a_session_row_says_whom_it_is_for_and_a_kind_this_server_does_not_know_signs_no_one_in() {
    let app = spawn_app().await;
    let client = no_redirects();
    let cookie = session(&app, &client).await;
    let row = app.first_row("SELECT principal, subject FROM admin_session").await;
    let principal: String = row.try_get("", "principal").unwrap();
    let subject: Option<String> = row.try_get("", "subject").unwrap();

    app.store
        .conn()
        .execute(sea_orm::Statement::from_string(
            app.store.conn().get_database_backend(),
            "UPDATE admin_session SET principal = 'github-user', subject = '583231'".to_owned(),
        ))
        .await
        .unwrap();
    let page = client
        .get(app.url("/deployments"))
        .header("Cookie", &cookie)
        .send()
        .await
        .unwrap();
    let api = client
        .get(app.url("/api/jobs"))
        .header("Cookie", &cookie)
        .send()
        .await
        .unwrap();

    assert_eq!((principal.as_str(), subject), ("admin", None));
    assert_eq!(page.status(), 303, "a session of another kind is not the admin's");
    assert_eq!(api.status(), 401);
}

#[tokio::test]
async fn changing_the_admin_token_ends_every_session() {
    let app = spawn_app().await;
    let client = no_redirects();
    let cookie = session(&app, &client).await;

    let replica = spawn_app_on(
        app.database.clone(),
        |config| config.admin_token = Some(Secret::new("0f".repeat(16) + &"a1b2c3d4e5f6".repeat(3))),
        Vec::new(),
    )
    .await;
    let same_token = client
        .get(app.url("/deployments"))
        .header("Cookie", &cookie)
        .send()
        .await
        .unwrap();
    let new_token = client
        .get(replica.url("/deployments"))
        .header("Cookie", &cookie)
        .send()
        .await
        .unwrap();

    assert_eq!(same_token.status(), 200);
    assert_eq!(new_token.status(), 303);
}

#[tokio::test]
async fn guessing_the_admin_token_is_throttled_per_client_until_tokens_grow_back() {
    let app = spawn_app().await;
    let guess = |token: &'static str| app.client.get(app.url("/api/connections")).bearer_auth(token).send();

    let mut statuses = Vec::new();
    for _ in 0..25 {
        statuses.push(guess("wrong").await.unwrap().status().as_u16());
    }
    let blocked_right_token = app
        .client
        .get(app.url("/api/connections"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    let retry_after: u64 = blocked_right_token.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let blocked_status = blocked_right_token.status();
    let problem: serde_json::Value = blocked_right_token.json().await.unwrap();
    app.clock.advance(Duration::seconds(retry_after as i64));
    let after_waiting = app
        .client
        .get(app.url("/api/connections"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();

    assert_eq!(statuses[..20], [401; 20]);
    assert_eq!(statuses[20..], [429; 5]);
    assert_eq!(blocked_status, 429, "while blocked, even the right token waits");
    assert_eq!(problem["type"], "urn:shiplog:problem:too-many-failures");
    assert!((1..=10).contains(&retry_after), "{retry_after}");
    assert_eq!(after_waiting.status(), 200);
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_allowance() {
    let app = spawn_app_with(|config| {
        config.trusted_proxies = vec![shiplog::outbound::policy::Cidr::parse("127.0.0.1").unwrap()];
    })
    .await;
    let through_proxy = |forwarded_for: &'static str, token: &'static str| {
        app.client
            .get(app.url("/api/connections"))
            .header("X-Forwarded-For", forwarded_for)
            .bearer_auth(token)
            .send()
    };
    // A guesser who also forges its own entry: the proxy's appended entry (rightmost) counts.
    let mut guesses = Vec::new();
    for _ in 0..21 {
        guesses.push(
            through_proxy("10.9.9.9, 203.0.113.66", "wrong")
                .await
                .unwrap()
                .status()
                .as_u16(),
        );
    }
    assert_eq!(guesses[..20], [401; 20]);
    assert_eq!(guesses[20], 429);
    // Forging another left-hand entry does not buy a fresh allowance.
    assert_eq!(
        through_proxy("10.1.1.1, 203.0.113.66", ADMIN_TOKEN)
            .await
            .unwrap()
            .status(),
        429
    );
    // Another client behind the same proxy is not locked out, and neither is the proxy itself.
    assert_eq!(through_proxy("198.51.100.7", ADMIN_TOKEN).await.unwrap().status(), 200);
    let direct = app
        .client
        .get(app.url("/api/connections"))
        .bearer_auth(ADMIN_TOKEN)
        .send();
    assert_eq!(direct.await.unwrap().status(), 200);
}

#[tokio::test]
async fn without_trusted_proxies_a_forwarded_for_header_does_not_pick_the_bucket() {
    let app = spawn_app().await;
    for n in 0..20 {
        let forged = format!("203.0.113.{n}");
        let status = app
            .client
            .get(app.url("/api/connections"))
            .header("X-Forwarded-For", forged)
            .bearer_auth("wrong")
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 401);
    }
    let next = app
        .client
        .get(app.url("/api/connections"))
        .header("X-Forwarded-For", "198.51.100.99")
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(next.status(), 429, "all twenty were the same peer's");
}

#[tokio::test]
async fn guessing_at_the_sign_in_form_or_with_deploy_credentials_is_throttled_too() {
    let app = installed_app().await;
    let client = no_redirects();
    let cred = create_credential(&app, 1).await;

    let mut form = Vec::new();
    for _ in 0..21 {
        form.push(sign_in(&app, &client, "wrong").await.status().as_u16());
    }
    let right_while_blocked = sign_in(&app, &client, ADMIN_TOKEN).await;
    let basic_while_blocked = app
        .client
        .get(app.url("/deployments"))
        .header("Accept", "application/json")
        .basic_auth(&cred.username, Some(&cred.password))
        .send()
        .await
        .unwrap();

    assert_eq!(form[..20], [401; 20]);
    assert_eq!(form[20], 429);
    assert_eq!(right_while_blocked.status(), 429);
    assert!(set_cookie(&right_while_blocked, "shiplog_session").is_none());
    assert!(right_while_blocked
        .text()
        .await
        .unwrap()
        .contains("Too many failed sign-ins"));
    assert_eq!(basic_while_blocked.status(), 429);

    let other = spawn_app().await;
    other.deliver("installation", &fixture("installation.created")).await;
    let mut basic = Vec::new();
    for _ in 0..21 {
        let response = other
            .client
            .get(other.url("/deployments"))
            .header("Accept", "application/json")
            .basic_auth("deploy-1-000000000000", Some("slp_wrong"))
            .send()
            .await
            .unwrap();
        basic.push(response.status().as_u16());
    }
    assert_eq!(basic[..20], [401; 20]);
    assert_eq!(basic[20], 429);
}

#[tokio::test]
async fn guessing_an_agent_signature_is_throttled_and_then_a_right_one_is_429_too() {
    const AGENT_SECRET: &str = "an-agent-secret-of-this-server";
    let app = spawn_app_with(|config| {
        config.agent = Some(shiplog::config::AgentConfig {
            url: "https://agent.example/hook".to_owned(),
            secret: Secret::new(AGENT_SECRET.to_owned()),
        });
    })
    .await;
    let body = serde_json::to_vec(&json!({"verdict": "healthy"})).unwrap();
    let verdict = |secret: &'static str| {
        app.client
            .post(app.url("/api/checks/999/result"))
            .header(
                "X-Shiplog-Signature-256",
                shiplog::github::signature::sign(secret, &body),
            )
            .body(body.clone())
            .send()
    };

    let right_before = verdict(AGENT_SECRET).await.unwrap().status().as_u16();
    let mut wrong = Vec::new();
    for _ in 0..21 {
        wrong.push(verdict("a-guess").await.unwrap().status().as_u16());
    }
    let right_while_blocked = verdict(AGENT_SECRET).await.unwrap().status().as_u16();

    assert_eq!(right_before, 404, "signed right, for a check that does not exist");
    assert_eq!(wrong[..20], [401; 20]);
    assert_eq!(wrong[20], 429);
    assert_eq!(right_while_blocked, 429);
}

#[tokio::test]
async fn after_sign_in_only_a_path_on_this_site_is_followed() {
    let app = spawn_app().await;
    let client = no_redirects();
    let hostile = [
        "//evil.example/phish",
        "/\t/evil.example/phish",
        "/\\evil.example",
        "\\\\evil.example",
        "/\r\n/evil.example",
        "/\r\nSet-Cookie: x=1",
        "/\u{b}/evil.example",
        "/\u{c}/evil.example",
        "/ /evil.example",
        "https://evil.example",
        "javascript:alert(1)",
        "",
    ];

    for next in hostile {
        let csrf_cookie = login_form(&app, &client).await;
        let csrf = csrf_cookie.split_once('=').unwrap().1.to_owned();
        let response = client
            .post(app.url("/login"))
            .header("Cookie", &csrf_cookie)
            .form(&[("token", ADMIN_TOKEN), ("csrf", csrf.as_str()), ("next", next)])
            .send()
            .await
            .unwrap();
        let form = client
            .get(app.url("/login"))
            .query(&[("next", next)])
            .send()
            .await
            .unwrap();

        assert_eq!(response.status(), 303, "{next:?}");
        assert_eq!(response.headers()["location"], "/", "{next:?}");
        assert_eq!(form.status(), 200, "{next:?}");
        let html = form.text().await.unwrap();
        assert!(html.contains("value=\"/\""), "{next:?}: {html}");
    }
    let csrf_cookie = login_form(&app, &client).await;
    let csrf = csrf_cookie.split_once('=').unwrap().1.to_owned();
    let local = client
        .post(app.url("/login"))
        .header("Cookie", &csrf_cookie)
        .form(&[
            ("token", ADMIN_TOKEN),
            ("csrf", csrf.as_str()),
            ("next", "/deployments/7?tab=timeline"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(local.headers()["location"], "/deployments/7?tab=timeline");
}

#[tokio::test]
async fn a_signed_request_is_accepted_once_and_its_replay_is_refused() {
    let app = installed_app().await;
    let cred = create_credential(&app, 1).await;
    let now = now_seconds(&app);
    let body = serde_json::to_vec(&minimal(SHA)).unwrap();

    let first = post_signed(&app, &cred, &body, now - 10, &cred.signing_key).await;
    let replay = post_signed(&app, &cred, &body, now - 10, &cred.signing_key).await;
    let fresh_signature = post_signed(&app, &cred, &body, now - 9, &cred.signing_key).await;

    assert_eq!(first, 201);
    assert_eq!(replay, 401);
    assert_eq!(fresh_signature, 201);
    assert_eq!(app.count_rows("deployment").await, 2);
    app.run_jobs().await;
}

#[tokio::test]
async fn a_timestamp_at_the_ends_of_the_integer_range_is_refused_not_wrapped() {
    let app = installed_app().await;
    let cred = create_credential(&app, 1).await;
    let now = now_seconds(&app);
    let body = serde_json::to_vec(&minimal(SHA)).unwrap();

    for timestamp in [now.wrapping_sub(i64::MIN), i64::MIN, i64::MAX, now - i64::MAX] {
        let status = post_signed(&app, &cred, &body, timestamp, &cred.signing_key).await;
        assert_eq!(status, 401, "{timestamp}");
    }
    assert_eq!(app.count_rows("deployment").await, 0);
}

#[tokio::test]
async fn with_an_app_id_a_delivery_naming_another_app_is_refused() {
    let app = spawn_app_with(|config| {
        config.github_app = Some(GitHubAppCredentials {
            app_id: APP_ID,
            private_key_pem: Secret::new(private_key_pem()),
        });
    })
    .await;
    let send = |target: Option<(&'static str, String)>| {
        let request = WebhookRequest::signed("installation", &fixture("installation.created"));
        let mut builder = app
            .client
            .post(app.url("/webhooks/github"))
            .header("Content-Type", "application/json")
            .header("X-GitHub-Event", request.event.clone().unwrap())
            .header("X-GitHub-Delivery", request.delivery.clone().unwrap())
            .header("X-Hub-Signature-256", request.signature.clone().unwrap())
            .body(request.body);
        if let Some((kind, id)) = target {
            builder = builder
                .header("X-GitHub-Hook-Installation-Target-Type", kind)
                .header("X-GitHub-Hook-Installation-Target-ID", id);
        }
        builder.send()
    };

    let other_app = send(Some(("integration", "1".to_owned()))).await.unwrap();
    let other_status = other_app.status();
    let problem: serde_json::Value = other_app.json().await.unwrap();
    let ours = send(Some(("integration", APP_ID.to_string()))).await.unwrap();
    let without_header = send(None).await.unwrap();

    assert_eq!(other_status, 403);
    assert_eq!(problem["type"], "urn:shiplog:problem:wrong-app");
    assert_eq!(ours.status(), 200);
    assert_eq!(without_header.status(), 200);
    assert_eq!(app.count_rows("webhook_delivery").await, 2);
}

#[tokio::test]
async fn head_is_answered_on_every_get_route_without_a_body() {
    let app = spawn_app().await;
    let client = no_redirects();

    let health = client.head(app.url("/healthz")).send().await.unwrap();
    let ready = client.head(app.url("/readyz")).send().await.unwrap();
    let page = client.head(app.url("/deployments")).send().await.unwrap();
    let api = client
        .head(app.url("/api/connections"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    let post_only = client.head(app.url("/webhooks/github")).send().await.unwrap();

    assert_eq!(health.status(), 200);
    assert_eq!(ready.status(), 200);
    assert_eq!(page.status(), 303);
    assert_eq!(api.status(), 200);
    assert_eq!(api.headers()["content-type"], "application/json");
    assert_eq!(post_only.status(), 405);
    assert!(health.bytes().await.unwrap().is_empty());
    assert!(api.bytes().await.unwrap().is_empty());
}

#[tokio::test]
async fn expired_idempotency_answers_signatures_and_sessions_are_purged() {
    let app = installed_app().await;
    let cred = create_credential(&app, 1).await;
    let client = no_redirects();
    let keyed = app
        .client
        .post(app.url("/deployments"))
        .basic_auth(&cred.username, Some(&cred.password))
        .header("Idempotency-Key", "run-1")
        .json(&minimal(SHA))
        .send()
        .await
        .unwrap();
    assert_eq!(keyed.status(), 201);
    let body =
        serde_json::to_vec(&json!({"repository": "acme-corp/web-app", "environment": "staging", "sha": SHA})).unwrap();
    assert_eq!(
        post_signed(&app, &cred, &body, now_seconds(&app), &cred.signing_key).await,
        201
    );
    session(&app, &client).await;
    let counts = || async {
        (
            app.count_rows("idempotent_request").await,
            app.count_rows("used_signature").await,
            app.count_rows("admin_session").await,
        )
    };
    assert_eq!(counts().await, (1, 1, 1));

    let early = shiplog::maintenance::purge(&app.store, shiplog::clock::Clock::now(app.clock.as_ref()))
        .await
        .unwrap();
    assert_eq!(early, shiplog::maintenance::Purged::default(), "nothing is due yet");
    app.clock.advance(Duration::hours(25));
    let purged = shiplog::maintenance::purge(&app.store, shiplog::clock::Clock::now(app.clock.as_ref()))
        .await
        .unwrap();

    assert_eq!((purged.idempotency_keys, purged.signatures, purged.sessions), (1, 1, 1));
    assert_eq!(counts().await, (0, 0, 0));
    app.run_jobs().await;
}

#[tokio::test]
async fn a_cursor_outside_the_years_a_database_can_hold_is_a_400_on_both_backends() {
    let app = spawn_app().await;

    for cursor in ["-8000000000000000000.1", "253402300800000000.1", "x.1", "1.x"] {
        let (status, body) = app.admin_get(&format!("/deployments?cursor={cursor}")).await;
        assert_eq!(status, 400, "{cursor}: {body}");
    }
    let (status, _) = app.admin_get("/deployments?cursor=1793610120000000.2").await;
    assert_eq!(status, 200);
}
