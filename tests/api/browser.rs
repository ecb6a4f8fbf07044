//! A person's view of `/deployments`, in a real headless Chromium driven through chromedriver:
//! sign in, filter, open a deploy. Needs Debian's `chromium` and `chromium-driver` (the README's
//! test command installs them); a missing browser fails the test rather than skipping it.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use crate::helpers::{fixture, spawn_app_with, ADMIN_TOKEN};

struct Browser {
    client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

async fn open_browser() -> Browser {
    let driver_path = std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".to_owned());
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned());
    for path in [&driver_path, &chromium] {
        assert!(
            std::path::Path::new(path).exists(),
            "{path} is missing: install Debian's chromium and chromium-driver (scripts/test does this)"
        );
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let driver = Command::new(&driver_path)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let profile = tempfile::tempdir().unwrap();
    let status = format!("http://127.0.0.1:{port}/status");
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let started = Instant::now();
    while http.get(&status).send().await.is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "chromedriver did not start"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let capabilities = json!({
        "goog:chromeOptions": {
            "binary": chromium,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--window-size=1280,900", format!("--user-data-dir={}", profile.path().display()),
            ]
        }
    });
    let mut builder = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new());
    builder.capabilities(capabilities.as_object().unwrap().clone());
    let client = builder
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("a browser session");
    Browser {
        client,
        driver,
        _profile: profile,
    }
}

async fn texts(client: &Client, css: &str) -> Vec<String> {
    let mut out = Vec::new();
    for element in client.find_all(Locator::Css(css)).await.unwrap() {
        out.push(element.text().await.unwrap());
    }
    out
}

#[tokio::test]
async fn a_person_signs_in_filters_the_history_and_opens_a_deploy() {
    let app = spawn_app_with(|c| c.github_api_url = shiplog::config::DEFAULT_GITHUB_API_URL.to_owned()).await;
    app.deliver("installation", &fixture("installation.created")).await;
    let dep = fixture("deployment.created");
    let mut success = fixture("deployment_status.created");
    success["deployment"] = dep["deployment"].clone();
    let mut in_progress = success.clone();
    in_progress["deployment_status"]["id"] = json!(2900000000_i64);
    in_progress["deployment_status"]["state"] = json!("in_progress");
    in_progress["deployment_status"]["created_at"] = json!("2026-11-02T09:11:00Z");
    app.deliver("deployment", &dep).await;
    app.deliver("deployment_status", &in_progress).await;
    app.deliver("deployment_status", &success).await;
    let mut staging = dep.clone();
    staging["deployment"]["id"] = json!(1900000002_i64);
    staging["deployment"]["environment"] = json!("staging");
    staging["deployment"]["sha"] = json!("9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a291817");
    staging["deployment"]["created_at"] = json!("2026-11-02T08:30:00Z");
    app.deliver("deployment", &staging).await;
    let browser = open_browser().await;
    let c = &browser.client;

    // Arrive signed out: the page asks for the admin token.
    c.goto(&app.url("/deployments")).await.unwrap();
    assert!(c.current_url().await.unwrap().path().ends_with("/login"));
    c.find(Locator::Id("token"))
        .await
        .unwrap()
        .send_keys(ADMIN_TOKEN)
        .await
        .unwrap();
    c.find(Locator::Id("sign-in")).await.unwrap().click().await.unwrap();

    // Signed in: the history, newest first.
    c.wait().for_element(Locator::Id("deployments")).await.unwrap();
    assert_eq!(c.current_url().await.unwrap().path(), "/deployments");
    let environments = texts(c, "tr.deployment td.environment").await;
    assert_eq!(environments, vec!["production", "staging"]);
    let badges = texts(c, "tr.deployment .badge").await;
    assert_eq!(badges, vec!["live", "initiated"]);
    let shas = texts(c, "tr.deployment a.sha").await;
    assert_eq!(shas, vec!["4c1f0f0", "9e8d7c6"]);
    let link = c
        .find(Locator::Css("tr.deployment a.sha"))
        .await
        .unwrap()
        .attr("href")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        link,
        "https://github.com/acme-corp/web-app/commit/4c1f0f0a9d6e3b2a8f7e6d5c4b3a29181716151a"
    );
    let page = c.source().await.unwrap();
    assert!(page.contains("2026-11-02 09:10:00 UTC"), "the exact time is shown");
    screenshot(c, "deployments").await;

    // Filter to staging.
    c.find(Locator::Id("filter-environment"))
        .await
        .unwrap()
        .send_keys("staging")
        .await
        .unwrap();
    c.find(Locator::Id("apply-filters"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    // The reloaded page fills the form with the filter it applied.
    c.wait()
        .for_element(Locator::Css("#filter-environment[value='staging']"))
        .await
        .unwrap();
    assert_eq!(
        c.current_url().await.unwrap().query(),
        Some("repository=&environment=staging&status=")
    );
    assert_eq!(texts(c, "tr.deployment td.environment").await, vec!["staging"]);

    // Back to everything, then open the production deploy and read its timeline.
    c.goto(&app.url("/deployments?environment=production")).await.unwrap();
    c.find(Locator::Css("tr.deployment a.open"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait().for_element(Locator::Id("timeline")).await.unwrap();
    let title = c.find(Locator::Id("title")).await.unwrap().text().await.unwrap();
    assert!(title.starts_with("acme-corp/web-app → production"), "{title}");
    assert_eq!(
        c.find(Locator::Id("status")).await.unwrap().text().await.unwrap(),
        "live"
    );
    let timeline = texts(c, "#timeline li.status-entry strong").await;
    assert_eq!(timeline, vec!["in_progress", "success"]);

    screenshot(c, "deployment").await;

    // The "Create a deployment" tab: make a credential and get a ready curl command.
    c.find(Locator::LinkText("Create a deployment"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait().for_element(Locator::Id("connection-1")).await.unwrap();
    c.find(Locator::Css("#connection-1 button.primary"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait().for_element(Locator::Id("issued")).await.unwrap();
    let password = c
        .find(Locator::Id("issued-password"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let username = c
        .find(Locator::Id("issued-username"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(password.starts_with("slp_"), "{password}");
    let curl = texts(c, "#connection-1 pre.curl").await.join("");
    assert!(curl.contains(&format!("{username}:{password}")), "{curl}");
    assert!(curl.contains("acme-corp/"), "{curl}");
    screenshot(c, "create").await;

    // Shown once: a fresh visit lists the credential without its password.
    c.goto(&app.url("/deployments/new")).await.unwrap();
    let listed = texts(c, "#connection-1 tr.credential").await.join("\n");
    assert!(listed.contains(&username) && !c.source().await.unwrap().contains(&password));
    browser.client.clone().close().await.unwrap();
    app.run_jobs().await;
}

/// Saves what the browser shows when `SHIPLOG_SCREENSHOTS` names a folder, for people to look at.
async fn screenshot(client: &Client, name: &str) {
    if let Ok(dir) = std::env::var("SHIPLOG_SCREENSHOTS") {
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(format!("{dir}/{name}.png"), client.screenshot().await.unwrap()).unwrap();
    }
}

/// Signs in through the sign-in form.
async fn sign_in(c: &Client, app: &crate::helpers::TestApp) {
    c.goto(&app.url("/login")).await.unwrap();
    c.find(Locator::Id("token"))
        .await
        .unwrap()
        .send_keys(ADMIN_TOKEN)
        .await
        .unwrap();
    c.find(Locator::Id("sign-in")).await.unwrap().click().await.unwrap();
    c.wait().for_element(Locator::Css("header nav")).await.unwrap();
}

/// The worst case: every stored text of a deploy hostile (markup, `javascript:` and `data:` URLs,
/// right-to-left override, zero-width space, 4096 characters). The browser runs no script, the
/// stylesheet still applies under the Content-Security-Policy, and nothing overflows the page.
/// The screenshots go to `target/screenshots/`, printed.
#[tokio::test]
async fn the_deploy_page_with_hostile_values_runs_no_script_and_keeps_its_layout() {
    let app = crate::helpers::spawn_app().await;
    let ids = crate::hostile_pages::store_hostile_values(&app).await;
    let browser = open_browser().await;
    let c = &browser.client;
    sign_in(c, &app).await;
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();

    for (n, path) in [
        "/deployments".to_owned(),
        "/connections".to_owned(),
        "/connections/2".to_owned(),
    ]
    .into_iter()
    .chain(ids.iter().map(|id| format!("/deployments/{id}")))
    .enumerate()
    {
        c.goto(&app.url(&path)).await.unwrap();
        c.wait().for_element(Locator::Css("main h1")).await.unwrap();
        assert!(
            c.get_alert_text().await.is_err(),
            "{path}: a script ran and opened an alert"
        );
        let facts = c
            .execute(
                "return [document.documentElement.scrollWidth, window.innerWidth,
                         getComputedStyle(document.querySelector('header')).display,
                         document.querySelectorAll('script, iframe, img, svg, [onerror], [onload]').length,
                         Array.from(document.querySelectorAll('a[href]')).map(a => a.protocol)];",
                vec![],
            )
            .await
            .unwrap();
        let file = dir.join(format!("hostile-{n}.png"));
        std::fs::write(&file, c.screenshot().await.unwrap()).unwrap();
        println!("{path}: screenshot {}", file.display());
        assert_eq!(facts[2], "flex", "{path}: the stylesheet applies under the CSP");
        assert_eq!(facts[3], 0, "{path}: elements from stored data");
        assert!(
            facts[0].as_i64().unwrap() <= facts[1].as_i64().unwrap(),
            "{path}: the page overflows sideways: {facts}"
        );
        for protocol in facts[4].as_array().unwrap() {
            assert!(protocol == "http:" || protocol == "https:", "{path}: a {protocol} link");
        }
    }
    browser.client.clone().close().await.unwrap();
    app.run_jobs().await;
}

async fn scroll_to(c: &Client, id: &str) {
    c.execute(
        "document.getElementById(arguments[0]).scrollIntoView();",
        vec![json!(id)],
    )
    .await
    .unwrap();
}

/// Facts about the page in the browser: [page width, window width, header display, elements
/// from stored data, link protocols].
async fn layout_facts(c: &Client) -> serde_json::Value {
    c.execute(
            "return [document.documentElement.scrollWidth, window.innerWidth,
                     getComputedStyle(document.querySelector('header')).display,
                     document.querySelectorAll('main script, main iframe, main img, main svg, [onerror], [onload]').length,
                     Array.from(document.querySelectorAll('a[href]')).map(a => a.protocol)];",
            vec![],
        )
        .await
        .unwrap()
}

/// A connection as a person sees it: three rules, a finished, a failed and a running backfill,
/// an imported Actions deploy in the history; then the same with hostile rules and note. Nothing
/// runs, nothing overflows sideways.
#[tokio::test]
async fn a_person_reads_a_connection_with_its_rules_and_backfills() {
    use crate::connection_pages::{connection_with_rules, imported_actions_deploy, three_backfills, three_rules};
    use crate::hostile_pages::{hostile_text, HOSTILE_NAMES};

    let app = crate::helpers::spawn_app().await;
    connection_with_rules(&app, three_rules()).await;
    three_backfills(
        &app,
        "GitHub answered 403 for acme-corp/api: Resource not accessible by integration (the App lacks Actions: read)",
    )
    .await;
    imported_actions_deploy(
        &app,
        "https://github.com/acme-corp/web-app/actions/runs/7300000001/attempts/2",
    )
    .await;
    let hostile = crate::helpers::spawn_app().await;
    connection_with_rules(
        &hostile,
        json!([
            {"repository": HOSTILE_NAMES[0], "workflow": HOSTILE_NAMES[1], "branch": HOSTILE_NAMES[2], "environment": HOSTILE_NAMES[0]},
            {"repository": format!("acme-corp/{}", "w".repeat(240)), "workflow": format!("{}.yml", "d".repeat(200)), "environment": "e".repeat(200)},
            {"repository": "acme-corp/*", "workflow": HOSTILE_NAMES[5], "environment": HOSTILE_NAMES[1]},
        ]),
    )
    .await;
    three_backfills(&hostile, &hostile_text()).await;
    let browser = open_browser().await;
    let c = &browser.client;

    sign_in(c, &app).await;
    c.find(Locator::LinkText("Connections"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait().for_element(Locator::Id("connections")).await.unwrap();
    screenshot(c, "connections").await;
    c.find(Locator::Css("tr.connection-row a.open"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait().for_element(Locator::Id("rules")).await.unwrap();
    assert_eq!(
        texts(c, "#rules tr.rule td.environment").await,
        vec!["production", "staging", "production-eu"]
    );
    assert_eq!(
        texts(c, "#backfill-list .badge").await,
        vec!["running", "failed", "done"]
    );
    let facts = layout_facts(c).await;
    assert!(
        facts[0].as_i64().unwrap() <= facts[1].as_i64().unwrap(),
        "overflows: {facts}"
    );
    screenshot(c, "connection").await;
    scroll_to(c, "backfills").await;
    screenshot(c, "connection-backfills").await;
    c.goto(&app.url("/deployments")).await.unwrap();
    c.wait().for_element(Locator::Id("deployments")).await.unwrap();
    assert_eq!(
        texts(c, "tr.deployment td.source").await,
        vec!["actions run attempt 2 imported"]
    );
    screenshot(c, "deployments-imported").await;

    sign_in(c, &hostile).await;
    c.goto(&hostile.url("/connections/1")).await.unwrap();
    c.wait().for_element(Locator::Id("rules")).await.unwrap();
    assert!(c.get_alert_text().await.is_err(), "a script ran and opened an alert");
    let facts = layout_facts(c).await;
    screenshot(c, "connection-hostile").await;
    scroll_to(c, "backfills").await;
    screenshot(c, "connection-hostile-backfills").await;
    assert_eq!(facts[2], "flex", "the stylesheet applies under the CSP");
    assert_eq!(facts[3], 0, "elements from stored data: {facts}");
    assert!(
        facts[0].as_i64().unwrap() <= facts[1].as_i64().unwrap(),
        "overflows: {facts}"
    );
    browser.client.clone().close().await.unwrap();
}

/// A deploy's "Shipped" list as a person reads it: pull requests first (hostile titles and
/// authors shown as text), then the commits of no known pull request; a rollback's "Taken out".
/// Nothing runs, nothing overflows sideways. Screenshots go to `target/screenshots/`, printed.
#[tokio::test]
async fn a_person_reads_what_a_deploy_shipped_and_what_a_rollback_took_out() {
    use crate::shipped::{app_on, merged_pr};
    const REPO: &str = "acme-corp/web-app";
    let repo = crate::git::GitRepo::new();
    let base = repo.commit("base");
    repo.branch("feature");
    repo.commit("feature: first half");
    repo.commit("feature: second half");
    repo.checkout("main");
    let merge = repo.merge("feature", "Merge pull request #41 from acme-corp/feature");
    let squash = repo.commit("Ünïcödé everywhere: 日本語のタイトル (#42)");
    let long =
        "Make the deploy list readable when a pull request title is far longer than anyone would write ".repeat(3);
    let long_pr = repo.commit("long (#43)");
    repo.commit("<script>alert(1)</script> pushed straight to main");
    repo.commit("\u{202e}txt.exe a right-to-left override in a commit message");
    let head = repo.commit("fix: typo in the \"deployments\" heading");
    let fake = crate::fake_github::FakeGitHub::start().await;
    fake.add_repo(REPO, &repo);
    let app = app_on(&fake).await;
    merged_pr(
        &app,
        41,
        "<script>alert(1)</script><img src=x onerror=alert(2)>",
        "mallory<b>",
        &merge,
    )
    .await;
    merged_pr(&app, 42, "Ünïcödé everywhere: 日本語のタイトル", "山田", &squash).await;
    merged_pr(
        &app,
        43,
        long.trim(),
        "a-very-long-login-name-that-goes-on-and-on",
        &long_pr,
    )
    .await;
    app.live_deploy(REPO, &base, "production").await;
    app.run_jobs().await;
    let shipped = app.live_deploy(REPO, &head, "production").await;
    app.run_jobs().await;
    let rollback = app.live_deploy(REPO, &base, "production").await;
    app.run_jobs().await;

    let browser = open_browser().await;
    let c = &browser.client;
    sign_in(c, &app).await;
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    for (id, list, name) in [
        (shipped, "shipped-list", "shipped"),
        (rollback, "taken-out", "taken-out"),
    ] {
        c.goto(&app.url(&format!("/deployments/{id}"))).await.unwrap();
        c.wait().for_element(Locator::Id(list)).await.unwrap();
        assert!(c.get_alert_text().await.is_err(), "a script ran");
        let pulls = texts(c, &format!("#{list} li.shipped-pull")).await;
        assert_eq!(pulls.len(), 3, "{pulls:?}");
        assert!(
            pulls[2].starts_with("#41 <script>alert(1)</script><img src=x onerror=alert(2)> by mallory<b>"),
            "markup shown as text, oldest merge last: {pulls:?}"
        );
        assert!(
            pulls[1].contains("日本語のタイトル") && pulls[1].contains("山田"),
            "{pulls:?}"
        );
        let commits = texts(c, &format!("#{list} li.shipped-commit")).await;
        assert_eq!(commits.len(), 3, "{commits:?}");
        assert!(
            commits[2].contains("<script>alert(1)</script> pushed straight to main"),
            "{commits:?}"
        );
        scroll_to(c, list).await;
        let file = dir.join(format!("{name}.png"));
        std::fs::write(&file, c.screenshot().await.unwrap()).unwrap();
        println!("deployment {id}: screenshot {}", file.display());
        screenshot(c, name).await;
        let facts = layout_facts(c).await;
        assert_eq!(facts[3], 0, "elements from stored data: {facts}");
        assert!(
            facts[0].as_i64().unwrap() <= facts[1].as_i64().unwrap(),
            "the page overflows sideways: {facts}"
        );
    }
    browser.client.clone().close().await.unwrap();
}

/// The live board as a person sees it: signing in lands on it; 60 repositories × 5 environments
/// with titles, warnings and drift; the header row stays in view while the board scrolls; the
/// filter narrows it to one repository; a cell opens its deploy; hostile names run nothing. The
/// screenshots go to `target/screenshots/` (board*.png), printed.
#[tokio::test]
async fn a_person_reads_the_live_board() {
    use crate::board::{a_typical_org, insert_deploy, insert_drift, insert_pull_request, sha, two_connections, Deploy};
    use crate::hostile_pages::HOSTILE_NAMES;

    let app = two_connections().await;
    a_typical_org(&app).await;
    let environments = ["dev", "qa", "staging", "prod-eu", "production"];
    let titles = [
        "Move the checkout to the new payment provider and keep the old one as a fallback for a week",
        "Fix flaky retry in the webhook sender",
        "Bump tokio",
        "Übersetzungen für die Rechnungsansicht · 請求書の翻訳",
    ];
    for r in 0..60u32 {
        let repository = format!("acme-corp/service-{r:02}");
        for (e, environment) in environments.iter().enumerate() {
            let n = 1000 + r * 10 + e as u32;
            // Code travels right: the further right, the older.
            let minutes = i64::from(r) * 7 + (e as i64 + 1) * 90;
            let mut deploy = Deploy::live(&repository, environment, sha(n), minutes);
            deploy.creator = Some(["alice", "bob", "deploy-bot[bot]"][(r as usize + e) % 3]);
            insert_deploy(&app, deploy).await;
            insert_pull_request(&app, &repository, i64::from(n), titles[(r as usize + e) % 4], &sha(n)).await;
            if r % 9 == 0 && e == 4 {
                insert_deploy(
                    &app,
                    Deploy::live(&repository, environment, sha(n + 5), 3).status("failed"),
                )
                .await;
            }
            if e > 0 {
                let state = ["ahead", "in_sync", "ahead", "diverged"][(r as usize + e) % 4];
                if r % 7 != 3 {
                    insert_drift(
                        &app,
                        &repository,
                        (environments[e - 1], &sha(n - 1)),
                        (environment, &sha(n)),
                        state,
                        (
                            i64::from(r % 5) + 1,
                            i64::from(state == "diverged") * 2,
                            i64::from(r % 4) + 1,
                        ),
                        Some(i64::from(r % 6)),
                    )
                    .await;
                }
            }
        }
    }
    for (n, name) in HOSTILE_NAMES.iter().enumerate() {
        let mut deploy = Deploy::live("globex/shop", name, sha(9000 + n as u32), 10).connection(2);
        deploy.creator = Some(HOSTILE_NAMES[(n + 2) % HOSTILE_NAMES.len()]);
        insert_deploy(&app, deploy).await;
    }
    let browser = open_browser().await;
    let c = &browser.client;
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    let shot = |name: &'static str| {
        let dir = dir.clone();
        async move {
            let file = dir.join(format!("{name}.png"));
            std::fs::write(&file, c.screenshot().await.unwrap()).unwrap();
            println!("screenshot {}", file.display());
        }
    };

    // Signing in (with no page asked for) lands on the board.
    c.goto(&app.url("/login")).await.unwrap();
    c.find(Locator::Id("token"))
        .await
        .unwrap()
        .send_keys(ADMIN_TOKEN)
        .await
        .unwrap();
    c.find(Locator::Id("sign-in")).await.unwrap().click().await.unwrap();
    c.wait().for_element(Locator::Css("table.board")).await.unwrap();
    assert_eq!(c.current_url().await.unwrap().path(), "/");
    shot("board").await;
    let rows = c.find_all(Locator::Css("#connection-1 tr.board-row")).await.unwrap();
    assert_eq!(rows.len(), 62);
    let headers = texts(c, "#connection-1 thead th.env").await;
    assert_eq!(headers, ["dev", "qa", "staging", "prod-eu", "production"]);
    let facts = layout_facts(c).await;
    assert_eq!(facts[3], 0, "elements from stored data");
    assert!(
        facts[0].as_i64().unwrap() <= facts[1].as_i64().unwrap(),
        "the page overflows sideways: {facts}"
    );
    assert!(c.get_alert_text().await.is_err(), "a script ran");

    // Scrolled down, the header row is still at the top of the board.
    let header_stays = c
        .execute(
            "const box = document.querySelector('#connection-1 .board-scroll');
             const head = box.querySelector('thead th');
             const before = head.getBoundingClientRect().top;
             box.scrollTop = 1500;
             return [before, head.getBoundingClientRect().top, box.getBoundingClientRect().top, box.scrollTop];",
            vec![],
        )
        .await
        .unwrap();
    assert!(
        header_stays[3].as_f64().unwrap() > 0.0,
        "the board scrolls: {header_stays}"
    );
    let (head_top, box_top) = (header_stays[1].as_f64().unwrap(), header_stays[2].as_f64().unwrap());
    assert!(
        (head_top - box_top).abs() < 3.0,
        "the header row stays in view: {header_stays}"
    );
    shot("board-scrolled").await;

    // The hostile connection's section: names are text, nothing ran.
    scroll_to(c, "connection-2").await;
    shot("board-hostile").await;
    let hostile_headers = texts(c, "#connection-2 thead th.env").await;
    assert!(
        hostile_headers.iter().any(|h| h.contains("<script>")),
        "{hostile_headers:?}"
    );

    // Filter to one repository, then open its production deploy.
    c.find(Locator::Id("filter-repository"))
        .await
        .unwrap()
        .send_keys("acme-corp/web-app")
        .await
        .unwrap();
    c.find(Locator::Id("apply-filters"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait().for_element(Locator::Css("table.board")).await.unwrap();
    let rows = c.find_all(Locator::Css("tr.board-row")).await.unwrap();
    assert_eq!(rows.len(), 1);
    let warning = texts(c, "td[data-environment=production] .badge.warn").await;
    assert_eq!(warning, ["⚠ newer deploy failed"]);
    shot("board-filtered").await;
    c.find(Locator::Css("tr.board-row th.repo a"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait().for_element(Locator::Css("#environments")).await.unwrap();
    assert_eq!(c.current_url().await.unwrap().path(), "/repositories/acme-corp/web-app");
    shot("board-repository").await;
    c.back().await.unwrap();
    c.wait().for_element(Locator::Css("table.board")).await.unwrap();
    c.find(Locator::Css("td[data-environment=production] a.sha"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait().for_element(Locator::Css("main h1")).await.unwrap();
    assert!(c.current_url().await.unwrap().path().starts_with("/deployments/"));

    browser.client.clone().close().await.unwrap();
}

/// The Insights page as a person sees it: three weeks of a repository (staging and production,
/// a rollback, a revert, two regressions) read as five tiles with charts; a tile leads to its
/// items, a bar to its day; then hostile environment names, titles and authors, which run
/// nothing. No page overflows sideways and no chart's labels overlap. The screenshots go to
/// `target/screenshots/` (insights*.png), printed.
#[tokio::test]
async fn a_person_reads_the_delivery_insights() {
    use crate::board::two_connections;
    use crate::hostile_pages::HOSTILE_NAMES;
    use crate::insights::{deploy, failure, history, lead_time, rework, REPO};

    let app = two_connections().await;
    let h = history(&app).await;
    let billing = "acme-corp/billing";
    for (k, name) in HOSTILE_NAMES.iter().enumerate() {
        let n = 8000 + k as u32 * 10;
        let id = deploy(&app, billing, name, n, (5, 8), "live", Some("listed")).await;
        let next = deploy(&app, billing, name, n + 1, (4, 8), "live", Some("listed")).await;
        let author = format!("{}\u{202E}gnp.exe", HOSTILE_NAMES[(k + 2) % HOSTILE_NAMES.len()]);
        let minutes = 5 * 1440 + 60;
        lead_time(
            &app,
            (billing, name),
            (8000 + k as i64, name, Some(&author)),
            (id, minutes),
            30,
        )
        .await;
        failure(
            &app,
            (billing, name),
            (id, minutes),
            ("regressed", name),
            Some((next, 4 * 1440 + 60)),
        )
        .await;
        rework(&app, (billing, name), (next, 4 * 1440 + 60), ("revert", name)).await;
    }
    let browser = open_browser().await;
    let c = &browser.client;
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    let shot = |name: &'static str| {
        let dir = dir.clone();
        async move {
            let file = dir.join(format!("{name}.png"));
            std::fs::write(&file, c.screenshot().await.unwrap()).unwrap();
            println!("screenshot {}", file.display());
        }
    };
    // [page width, window width, script/iframe/img/handlers, link protocols (a chart's bars are
    // SVG links, which have no `protocol`), charts, pairs of overlapping labels in a chart]
    let check = |what: &'static str| async move {
        let facts = c
            .execute(
                "const overlaps = [];
                 for (const svg of document.querySelectorAll('svg.chart')) {
                   const boxes = Array.from(svg.querySelectorAll('text')).map(t => t.getBoundingClientRect());
                   for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) {
                     const a = boxes[i], b = boxes[j];
                     if (a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom) overlaps.push([i, j]);
                   }
                 }
                 return [document.documentElement.scrollWidth, window.innerWidth,
                         document.querySelectorAll('script, iframe, img, [onerror], [onload]').length,
                         Array.from(document.querySelectorAll('a[href]'))
                           .map(a => new URL(a.getAttribute('href'), document.baseURI).protocol),
                         document.querySelectorAll('svg.chart').length, overlaps.length];",
                vec![],
            )
            .await
            .unwrap();
        assert!(c.get_alert_text().await.is_err(), "{what}: a script ran");
        assert!(
            facts[0].as_i64().unwrap() <= facts[1].as_i64().unwrap(),
            "{what}: the page overflows sideways: {facts}"
        );
        assert_eq!(facts[2], 0, "{what}: elements from stored data");
        for protocol in facts[3].as_array().unwrap() {
            assert!(protocol == "http:" || protocol == "https:", "{what}: a {protocol} link");
        }
        assert_eq!(facts[4], 5, "{what}: a chart per metric");
        assert_eq!(facts[5], 0, "{what}: labels overlap in a chart");
    };

    sign_in(c, &app).await;
    c.find(Locator::LinkText("Insights"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait().for_element(Locator::Id("metric-frequency")).await.unwrap();
    c.find(Locator::Id("filter-repository"))
        .await
        .unwrap()
        .send_keys(REPO)
        .await
        .unwrap();
    c.find(Locator::Id("apply-filters"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait().for_element(Locator::Id("metric-frequency")).await.unwrap();
    assert_eq!(
        texts(c, "section.metric a.value").await,
        ["0.8/day", "18 h", "16.67 %", "5 h", "8.33 %"]
    );
    check("insights").await;
    shot("insights").await;
    scroll_to(c, "lead-times").await;
    shot("insights-lead-times").await;
    scroll_to(c, "failures").await;
    shot("insights-failures").await;

    // The fail rate's tile leads to the failed deploys; one of them opens its deploy.
    c.find(Locator::Css("#metric-fail-rate a.value"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    assert_eq!(c.current_url().await.unwrap().fragment(), Some("failures"));
    let failed = texts(c, "#failures tr.failure td:first-child").await;
    assert_eq!(failed.len(), 4, "{failed:?}");
    assert!(failed.contains(&format!("deployment {}", h.rolled_back)));

    // The rollback's day in the deploys chart: the page narrowed to it, at its deploys.
    let bar = c
        .find(Locator::Css(
            "#metric-frequency a.bar[href*='from=2026-10-19&to=2026-10-20']",
        ))
        .await
        .unwrap();
    bar.click().await.unwrap();
    c.wait().for_element(Locator::Id("metric-frequency")).await.unwrap();
    let url = c.current_url().await.unwrap();
    assert_eq!(
        url.query(),
        Some("repository=acme-corp/web-app&from=2026-10-19&to=2026-10-20")
    );
    assert_eq!(url.fragment(), Some("deploys"));
    assert_eq!(texts(c, "#metric-frequency a.value").await, ["3/day"]);
    assert_eq!(texts(c, "#deploys tr.deploy").await.len(), 3);
    check("insights of a day").await;
    shot("insights-day").await;

    // A year by week, and a year by day: 53 and 365 bars, their dates still apart.
    for (path, name) in [
        (
            format!("/insights?repository={REPO}&from=2025-11-03&to=2026-11-03"),
            "insights-year",
        ),
        (
            format!("/insights?repository={REPO}&from=2025-11-03&to=2026-11-03&bucket=day"),
            "insights-year-by-day",
        ),
    ] {
        c.goto(&app.url(&path)).await.unwrap();
        c.wait().for_element(Locator::Id("metric-frequency")).await.unwrap();
        check(name).await;
        shot(name).await;
    }

    // Every repository, the hostile environments among them: text, and nothing overflows.
    c.goto(&app.url("/insights")).await.unwrap();
    c.wait().for_element(Locator::Id("metric-frequency")).await.unwrap();
    check("insights of every repository").await;
    let counted = texts(c, "#counted").await;
    assert!(counted[0].contains("<script>alert(1)</script>"), "{counted:?}");
    c.goto(&app.url("/insights?repository=acme-corp/billing"))
        .await
        .unwrap();
    c.wait().for_element(Locator::Id("metric-frequency")).await.unwrap();
    check("insights with hostile names").await;
    let titles = texts(c, "#lead-times td.pr").await;
    assert!(
        titles.iter().any(|t| t.contains("<script>alert(1)</script>")),
        "{titles:?}"
    );
    scroll_to(c, "counted").await;
    shot("insights-hostile").await;
    scroll_to(c, "failures").await;
    shot("insights-hostile-failures").await;

    browser.client.clone().close().await.unwrap();
}
