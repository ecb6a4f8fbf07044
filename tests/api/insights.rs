//! The Insights page (`/insights`): the same numbers as `GET /api/metrics/delivery` for the same
//! query, tiles and bars that link to their items, the form with the error for a bad parameter,
//! and stored text shown as text. The history is written straight into the store (deploys,
//! shipments, lead times, failures, rework), so each test says exactly what the report reads.

use chrono::{DateTime, Duration, Utc};
use sea_orm::{ActiveModelTrait, NotSet, Set};
use serde_json::Value;
use shiplog::clock::Clock;

use crate::board::{insert_deploy, sha, two_connections, Deploy};
use crate::explicit_api::create_credential;
use crate::helpers::{status_and_json, TestApp, ADMIN_TOKEN};
use crate::hostile_pages::HOSTILE_NAMES;

pub const REPO: &str = "acme-corp/web-app";

/// Minutes before the test clock's now (2026-11-02 09:00 UTC) of `days` ago at `hour`.
fn ago(days: i64, hour: i64) -> i64 {
    days * 1440 + (9 - hour) * 60
}

fn time(app: &TestApp, minutes_ago: i64) -> DateTime<Utc> {
    app.clock.now() - Duration::minutes(minutes_ago)
}

/// A deploy that went live (or not) `days` ago at `hour`; its shipment `listed`, unless said.
pub async fn deploy(
    app: &TestApp,
    repository: &str,
    environment: &str,
    n: u32,
    (days, hour): (i64, i64),
    status: &str,
    shipment: Option<&str>,
) -> i64 {
    let minutes = ago(days, hour);
    // One deploy is live per environment: the newest; the others were superseded.
    let mut status = status;
    if status == "live" {
        use entity::deployment::{Column, Entity};
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
        let live = Entity::find()
            .filter(Column::RepositoryKey.eq(repository.to_lowercase()))
            .filter(Column::Environment.eq(environment))
            .filter(Column::Status.eq("live"))
            .one(app.store.conn())
            .await
            .unwrap();
        match live {
            Some(live) if live.completed_at > Some(time(app, minutes)) => status = "superseded",
            Some(live) => {
                let mut older: entity::deployment::ActiveModel = live.into();
                older.status = Set("superseded".to_owned());
                older.update(app.store.conn()).await.unwrap();
            }
            None => {}
        }
    }
    let mut d = Deploy::live(repository, environment, sha(n), minutes).status(status);
    d.production_flag = environment != "staging" && !environment.starts_with("production");
    let id = insert_deploy(app, d).await;
    if let Some(kind) = shipment {
        let tx = app.store.begin().await.unwrap();
        entity::deploy_shipment::ActiveModel {
            id: NotSet,
            deployment_id: Set(id),
            base_deployment_id: Set(None),
            base_sha: Set((kind == "listed").then(|| sha(n - 1))),
            head_sha: Set(sha(n)),
            kind: Set(kind.to_owned()),
            status: Set((kind == "listed").then(|| "ahead".to_owned())),
            ahead_by: Set(1),
            behind_by: Set(0),
            note: Set(None),
            computed_at: Set(time(app, minutes)),
        }
        .insert(&tx)
        .await
        .unwrap();
        tx.commit().await.unwrap();
    }
    id
}

/// Pull request `number` brought to `environment` by `deployment` (live `minutes_ago`), its first
/// commit `hours` before.
pub async fn lead_time(
    app: &TestApp,
    (repository, environment): (&str, &str),
    (number, title, author): (i64, &str, Option<&str>),
    (deployment, minutes_ago): (i64, i64),
    hours: i64,
) {
    let live = time(app, minutes_ago);
    let tx = app.store.begin().await.unwrap();
    entity::lead_time::ActiveModel {
        id: NotSet,
        connection_id: Set(1),
        repository: Set(repository.to_owned()),
        repository_key: Set(repository.to_lowercase()),
        environment: Set(environment.to_owned()),
        pull_number: Set(number),
        title: Set(title.to_owned()),
        author: Set(author.map(str::to_owned)),
        merge_commit_sha: Set(sha(number as u32 + 50_000)),
        first_commit_at: Set(Some(live - Duration::hours(hours))),
        opened_at: Set(Some(live - Duration::hours(hours) + Duration::minutes(30))),
        merged_at: Set(live - Duration::minutes(40)),
        deployment_id: Set(deployment),
        deploy_started_at: Set(live - Duration::minutes(10)),
        live_at: Set(live),
        live_epoch: Set(live.timestamp()),
        // From the first commit, the earliest stage here.
        lead_seconds: Set(hours * 3600),
        recorded_at: Set(live),
    }
    .insert(&tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
}

/// `failed` (live `minutes_ago`) needed intervention for `reason`; `recovered` by a deploy live
/// `minutes_ago` then.
pub async fn failure(
    app: &TestApp,
    (repository, environment): (&str, &str),
    (failed, minutes_ago): (i64, i64),
    (reason, detail): (&str, &str),
    recovered: Option<(i64, i64)>,
) {
    let tx = app.store.begin().await.unwrap();
    entity::deploy_intervention::ActiveModel {
        id: NotSet,
        connection_id: Set(1),
        repository: Set(repository.to_owned()),
        repository_key: Set(repository.to_lowercase()),
        environment: Set(environment.to_owned()),
        deployment_id: Set(failed),
        reason: Set(reason.to_owned()),
        detail: Set(detail.to_owned()),
        failed_at: Set(time(app, minutes_ago)),
        recovered_by_id: Set(recovered.map(|r| r.0)),
        recovered_at: Set(recovered.map(|r| time(app, r.1))),
        recorded_at: Set(time(app, minutes_ago)),
    }
    .insert(&tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
}

/// `deployment` (live `minutes_ago`) was unplanned: a `rollback` or a `revert`.
pub async fn rework(
    app: &TestApp,
    (repository, environment): (&str, &str),
    (deployment, minutes_ago): (i64, i64),
    (reason, detail): (&str, &str),
) {
    let tx = app.store.begin().await.unwrap();
    entity::deploy_rework::ActiveModel {
        id: NotSet,
        connection_id: Set(1),
        repository: Set(repository.to_owned()),
        repository_key: Set(repository.to_lowercase()),
        environment: Set(environment.to_owned()),
        deployment_id: Set(deployment),
        reason: Set(reason.to_owned()),
        detail: Set(detail.to_owned()),
        live_at: Set(time(app, minutes_ago)),
        recorded_at: Set(time(app, minutes_ago)),
    }
    .insert(&tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
}

/// The deploys of a history that the tests name.
pub struct History {
    pub rolled_back: i64,
    pub rollback: i64,
    pub reverted: i64,
    pub revert: i64,
    pub unrecovered: i64,
}

/// Three weeks of `acme-corp/web-app`: every day a deploy to staging at 05:00 and to production
/// at 08:00, each with one or two pull requests (lead times of 6 to 24 hours); a rollback two
/// weeks ago (recovered in 2 h), a revert nine days ago (5 h), a regression four days ago
/// (recovered by the next day's deploy) and one yesterday not recovered yet, a failed attempt;
/// five slower deploys (48 h lead times) in the month before, for the trend. In the 30 days:
/// 24 production deploys, 31 lead times (median 18 h), 4 failed (16.67 %), 2 unplanned (8.33 %).
pub async fn history(app: &TestApp) -> History {
    let titles = [
        "Move the checkout to the new payment provider and keep the old one as a fallback for a week",
        "Fix flaky retry in the webhook sender",
        "Bump tokio to 1.48",
        "Übersetzungen für die Rechnungsansicht · 請求書の翻訳",
    ];
    let authors = ["alice", "bob", "carol-the-long-named-contractor", "dependabot[bot]"];
    let mut daily = std::collections::HashMap::new();
    for day in (1..=21i64).rev() {
        let n = 1000 + day as u32 * 10;
        let first = (day == 21).then_some("first");
        let staging = deploy(app, REPO, "staging", n, (day, 5), "live", first.or(Some("listed"))).await;
        let id = deploy(app, REPO, "production", n, (day, 8), "live", first.or(Some("listed"))).await;
        daily.insert(day, id);
        if day == 21 {
            continue;
        }
        for k in 0..(1 + day % 2) {
            let number = day * 10 + k;
            let i = (day + k) as usize % 4;
            let hours = (day % 4 + 1) * 6;
            lead_time(
                app,
                (REPO, "staging"),
                (number, titles[i], Some(authors[i])),
                (staging, ago(day, 5)),
                hours - 3,
            )
            .await;
            lead_time(
                app,
                (REPO, "production"),
                (number, titles[i], Some(authors[i])),
                (id, ago(day, 8)),
                hours,
            )
            .await;
        }
    }
    // The rollback: day 14's second deploy, rolled back two hours later.
    let rolled_back = deploy(app, REPO, "production", 3000, (14, 11), "rolled_back", Some("listed")).await;
    lead_time(
        app,
        (REPO, "production"),
        (3000, "Cache the price list for an hour", Some("bob")),
        (rolled_back, ago(14, 11)),
        30,
    )
    .await;
    let rollback = deploy(app, REPO, "production", 1140, (14, 13), "live", Some("listed")).await;
    failure(
        app,
        (REPO, "production"),
        (rolled_back, ago(14, 11)),
        ("rolled_back", "rolled back to 1140's commit by deployment the rollback"),
        Some((rollback, ago(14, 13))),
    )
    .await;
    rework(
        app,
        (REPO, "production"),
        (rollback, ago(14, 13)),
        ("rollback", "rolled back the deploy before it"),
    )
    .await;
    // The revert: day 9's deploy, its PR reverted and the revert live five hours later.
    let reverted = daily[&9];
    let revert = deploy(app, REPO, "production", 3100, (9, 13), "live", Some("listed")).await;
    failure(
        app,
        (REPO, "production"),
        (reverted, ago(9, 8)),
        ("reverted", "#90 was reverted by #3100 (Revert \"Fix flaky retry\")"),
        Some((revert, ago(9, 13))),
    )
    .await;
    rework(
        app,
        (REPO, "production"),
        (revert, ago(9, 13)),
        ("revert", "ships #3100, which reverts #90"),
    )
    .await;
    // A regression four days ago, recovered by the next day's deploy; one yesterday, not yet.
    failure(
        app,
        (REPO, "production"),
        (daily[&4], ago(4, 8)),
        (
            "regressed",
            "the 1h monitoring check said regressed: p95 latency up 40 %",
        ),
        Some((daily[&3], ago(3, 8))),
    )
    .await;
    let unrecovered = daily[&1];
    failure(
        app,
        (REPO, "production"),
        (unrecovered, ago(1, 8)),
        ("regressed", "the 10m monitoring check said regressed: error rate 3 %"),
        None,
    )
    .await;
    // A failed attempt that never went live.
    deploy(app, REPO, "production", 3200, (6, 12), "failed", None).await;
    // The month before: five slower deploys.
    for k in 0..5i64 {
        let day = 32 + k * 5;
        let n = 4000 + k as u32 * 10;
        let id = deploy(app, REPO, "production", n, (day, 8), "superseded", Some("listed")).await;
        lead_time(
            app,
            (REPO, "production"),
            (400 + k, "Older work", Some("alice")),
            (id, ago(day, 8)),
            48,
        )
        .await;
    }
    History {
        rolled_back,
        rollback,
        reverted,
        revert,
        unrecovered,
    }
}

/// The page at `path` for the admin (bearer token): status and body.
pub async fn page(app: &TestApp, path: &str) -> (u16, String) {
    let response = app
        .client
        .get(app.url(path))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

async fn api(app: &TestApp, query: &str) -> Value {
    let response = app
        .client
        .get(app.url(&format!("/api/metrics/delivery?{query}")))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    let (status, body) = status_and_json(response).await;
    assert_eq!(status, 200, "{body}");
    body
}

/// The part of `html` from the element with `id` to the end of its section.
fn section<'a>(html: &'a str, id: &str) -> &'a str {
    let start = html
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id} in the page"));
    let rest = &html[start..];
    &rest[..rest.find("</section>").unwrap_or(rest.len())]
}

/// The text of a tile's number.
fn tile(html: &str, metric: &str) -> (String, String) {
    let s = section(html, &format!("metric-{metric}"));
    let link = &s[s.find("<a class=\"value\" href=\"").unwrap() + 23..];
    let href = link[..link.find('"').unwrap()].to_owned();
    let text = &link[link.find('>').unwrap() + 1..];
    (href, text[..text.find("</a>").unwrap()].to_owned())
}

/// The bar links of a metric's chart, `&#38;` read back as `&`.
fn bar_links(html: &str, metric: &str) -> Vec<String> {
    section(html, &format!("metric-{metric}"))
        .split("<a class=\"bar\" href=\"")
        .skip(1)
        .map(|s| s[..s.find('"').unwrap()].replace("&#38;", "&"))
        .collect()
}

#[tokio::test]
async fn the_insights_page_shows_the_numbers_the_api_gives_and_links_each_to_its_items() {
    let app = two_connections().await;
    let h = history(&app).await;
    let query = format!("repository={REPO}");
    let report = api(&app, &query).await;
    let summary = &report["summary"];
    assert_eq!(summary["deploys"], 24, "{summary}");
    assert_eq!(summary["failed_deploys"], 4);
    assert_eq!(summary["unplanned_deploys"], 2);

    let (status, html) = page(&app, &format!("/insights?{query}")).await;
    assert_eq!(status, 200, "{html}");
    assert!(
        html.contains("href=\"/insights\" class=\"active\""),
        "the nav marks Insights"
    );

    // The tiles: the API's numbers, each a link to its items, with the trend.
    assert_eq!(summary["deploys_per_day"], 0.8);
    assert_eq!(tile(&html, "frequency"), ("#deploys".to_owned(), "0.8/day".to_owned()));
    assert!(section(&html, "metric-frequency").contains("24 production deploys · 5.6/week · 1 failed attempt"));
    assert_eq!(summary["lead_time"]["median_seconds"], 18 * 3600, "{summary}");
    assert_eq!(summary["lead_time"]["p90_seconds"], 24 * 3600);
    assert_eq!(tile(&html, "lead-time"), ("#lead-times".to_owned(), "18 h".to_owned()));
    let lead = section(&html, "metric-lead-time");
    assert!(lead.contains("p90 1 d · 31 pull requests"), "{lead}");
    // 48 h in the window before: lower is better, so this is good news.
    assert_eq!(report["previous"]["lead_time"]["median_seconds"], 48 * 3600);
    assert!(lead.contains("class=\"trend good\""), "{lead}");
    assert!(lead.contains("↓</span> −1 d 6 h"), "{lead}");
    assert_eq!(summary["change_fail_rate"], 0.1667);
    assert_eq!(tile(&html, "fail-rate"), ("#failures".to_owned(), "16.67 %".to_owned()));
    assert!(section(&html, "metric-fail-rate").contains("4 of 24 deploys needed intervention"));
    assert_eq!(summary["recovery_time"]["median_seconds"], 5 * 3600);
    assert_eq!(summary["unrecovered"], 1);
    assert_eq!(tile(&html, "recovery"), ("#failures".to_owned(), "5 h".to_owned()));
    assert!(section(&html, "metric-recovery").contains("median · p90 1 d · 1 not recovered"));
    assert_eq!(summary["rework_rate"], 0.0833);
    assert_eq!(tile(&html, "rework"), ("#rework".to_owned(), "8.33 %".to_owned()));

    // One bar per bucket, each a link to the page narrowed to its day, at the metric's items.
    let buckets = report["buckets"].as_array().unwrap();
    let bars = bar_links(&html, "frequency");
    assert_eq!(bars.len(), buckets.len());
    assert_eq!(bars.len(), 30);
    let day = buckets
        .iter()
        .position(|b| b["start"] == "2026-10-19T00:00:00Z")
        .unwrap();
    assert_eq!(
        bars[day],
        format!("/insights?repository={REPO}&from=2026-10-19&to=2026-10-20#deploys")
    );
    assert!(bar_links(&html, "fail-rate")[day].ends_with("#failures"));
    assert!(section(&html, "metric-frequency").contains("<title>Mon 2026-10-19: 3 production deploys</title>"));
    // The rollback's day, followed: the page of that day says what the API says of its bucket.
    let (status, narrowed) = page(&app, &bars[day]).await;
    assert_eq!(status, 200);
    assert_eq!(buckets[day]["deploys"], 3);
    assert_eq!(tile(&narrowed, "frequency").1, "3/day");
    assert_eq!(tile(&narrowed, "fail-rate").1, "33.33 %");
    let failures = section(&narrowed, "failures");
    assert!(failures.contains(&format!("href=\"/deployments/{}\"", h.rolled_back)));
    assert!(failures.contains(&format!("href=\"/deployments/{}\"", h.rollback)));
    assert!(failures.contains("2 h"), "{failures}");

    // The items: PRs link to GitHub by the configured web URL; failures with reasons and recovery.
    let lead_times = section(&html, "lead-times");
    assert!(lead_times.contains("(31)"));
    // The test server's GitHub is `http://127.0.0.1:9` (no GitHub): its web URL is the same.
    assert!(
        lead_times.contains(&format!("href=\"http://127.0.0.1:9/{REPO}/pull/3000\"")),
        "{lead_times}"
    );
    assert!(lead_times.contains("Cache the price list for an hour"));
    assert!(lead_times.contains("1 d 6 h"));
    assert!(lead_times.contains("from the first commit"));
    let failures = section(&html, "failures");
    assert!(failures.contains("rolled back") && failures.contains("reverted") && failures.contains("regressed"));
    assert!(failures.contains(&format!("href=\"/deployments/{}\"", h.revert)));
    assert!(failures.contains(&format!("href=\"/deployments/{}\"", h.reverted)));
    assert!(failures.contains(&format!("href=\"/deployments/{}\"", h.unrecovered)));
    assert!(failures.contains("not recovered"));
    let rework = section(&html, "rework");
    assert!(rework.contains("ships #3100, which reverts #90"));
    assert!(section(&html, "failed-attempts").contains("(1, not in the fail rate)"));
    let unknown = section(&html, "unknown");
    assert!(unknown.contains("the first deploy shiplog saw"), "{unknown}");
    assert!(section(&html, "deploys").contains("(24)"));

    // Signed in with a session, the same page.
    let client = crate::pages::no_redirects();
    let session = crate::pages::session(&app, &client).await;
    let response = client
        .get(app.url(&format!("/insights?{query}")))
        .header("Cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(tile(&response.text().await.unwrap(), "fail-rate").1, "16.67 %");
}

#[tokio::test]
async fn a_bad_parameter_shows_the_form_with_the_error_and_an_empty_window_says_what_to_do() {
    let app = two_connections().await;
    history(&app).await;

    let (status, html) = page(&app, "/insights?from=yesterday&bucket=month").await;
    assert_eq!(status, 422);
    let error = section(&html, "filter-error");
    assert!(
        error.contains("from: must be a day") && error.contains("bucket: must be day or week"),
        "{error}"
    );
    assert!(
        html.contains("name=\"from\" id=\"filter-from\" size=\"11\" value=\"yesterday\""),
        "the form keeps what was typed"
    );
    assert!(!html.contains("id=\"metric-frequency\""));
    let (status, html) = page(&app, "/insights?from=2026-11-05&to=2026-11-01").await;
    assert_eq!(status, 422);
    assert!(section(&html, "filter-error").contains("from: must be before to"));
    let (status, html) = page(&app, "/insights?colour=red&from=2026-10-01&from=2026-10-02").await;
    assert_eq!(status, 422);
    let error = section(&html, "filter-error");
    assert!(
        error.contains("colour: is not a parameter") && error.contains("from: is given twice"),
        "{error}"
    );

    // A credential of the other connection naming this one's repository: 403, on the page too.
    let other = create_credential(&app, 2).await;
    let response = app
        .client
        .get(app.url(&format!("/insights?repository={REPO}")))
        .basic_auth(&other.username, Some(&other.password))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    assert!(section(&response.text().await.unwrap(), "filter-error").contains("does not belong"));
    // Its own connection has no deploys: the page says what counts as production and where to set it.
    let response = app
        .client
        .get(app.url("/insights"))
        .basic_auth(&other.username, Some(&other.password))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let html = response.text().await.unwrap();
    let empty = &html[html.find("id=\"empty\"").expect("an empty state")..];
    assert!(empty.contains("<code>production_environments</code>"), "{empty}");
    assert!(html.contains("No merged pull request went live in this window."));
    assert_eq!(tile(&html, "frequency").1, "0/day");
    assert_eq!(tile(&html, "lead-time").1, "—");
}

#[tokio::test]
async fn hostile_names_titles_and_details_are_shown_as_text() {
    let app = two_connections().await;
    let bidi = "\u{202E}gnp.exe\u{200B}";
    for (k, name) in HOSTILE_NAMES.iter().enumerate() {
        let n = 7000 + k as u32 * 10;
        let id = deploy(&app, REPO, name, n, (3, 8), "live", Some("listed")).await;
        let recovery = deploy(&app, REPO, name, n + 1, (2, 8), "live", Some("listed")).await;
        let author = format!("{}{bidi}", HOSTILE_NAMES[(k + 1) % HOSTILE_NAMES.len()]);
        lead_time(
            &app,
            (REPO, name),
            (7000 + k as i64, name, Some(&author)),
            (id, ago(3, 8)),
            5,
        )
        .await;
        failure(
            &app,
            (REPO, name),
            (id, ago(3, 8)),
            ("regressed", name),
            Some((recovery, ago(2, 8))),
        )
        .await;
        rework(
            &app,
            (REPO, name),
            (recovery, ago(2, 8)),
            ("revert", &format!("{name}{bidi}")),
        )
        .await;
    }
    let (status, html) = page(&app, "/insights").await;
    assert_eq!(status, 200);
    assert_eq!(
        tile(&html, "frequency").1,
        "0.4/day",
        "the hostile environments are flagged production"
    );
    for raw in ["<script>alert", "<img src=x", "<svg onload", "<iframe"] {
        assert!(!html.contains(raw), "{raw} is in the page unescaped");
    }
    assert!(html.contains("&#60;script&#62;alert(1)&#60;/script&#62;"));
    assert!(!html.contains("href=\"javascript:") && !html.contains("href=\"data:"));
    // A right-to-left override stays inside its own element.
    let at = html.find('\u{202E}').unwrap();
    let before = &html[..at];
    assert!(before.rfind("<bdi class=\"text\">").unwrap() > before.rfind("</bdi>").unwrap_or(0));
    // An environment asked for by name goes back into the bar links encoded.
    let (status, html) = page(&app, "/insights?environment=prod%22%3E%3Cb%3E").await;
    assert_eq!(status, 200, "{html}");
    assert!(bar_links(&html, "frequency")[0].starts_with("/insights?environment=prod%22%3E%3Cb%3E&from="));
    assert!(
        html.contains("value=\"prod&#34;&#62;&#60;b&#62;\""),
        "the form shows it as text"
    );
}

#[tokio::test]
async fn a_list_cut_at_its_maximum_says_how_many_of_how_many_it_shows() {
    let app = two_connections().await;
    for k in 0..501u32 {
        let minutes = i64::from(k) * 50 + 60;
        insert_deploy(
            &app,
            Deploy::live(REPO, "production", sha(20_000 + k), minutes).status("superseded"),
        )
        .await;
    }
    let (status, html) = page(&app, &format!("/insights?repository={REPO}")).await;
    assert_eq!(status, 200);
    let deploys = section(&html, "deploys");
    assert!(deploys.contains("(501)"));
    assert!(
        deploys.contains("500 of 501, newest first: narrow the window to see the rest."),
        "{deploys}"
    );
    assert_eq!(deploys.matches("<tr class=\"deploy\">").count(), 500);
    assert!(!section(&html, "lead-times").contains("capped"));
}
