//! Deploy monitoring: opt-in through the API, activation by the deploy that brings the merged
//! PR live, the check schedule, its reset, expiry, the agent's calls and verdicts.

use std::time::Duration;

use serde_json::{json, Value};
use shiplog::config::{Config, GitHubAppCredentials, Secret};

use crate::fake_agent::{FakeAgent, AGENT_SECRET};
use crate::fake_github::{private_key_pem, FakeGitHub, APP_ID};
use crate::git::GitRepo;
use crate::helpers::{fixture, set, spawn_app_on, spawn_app_with, status_and_json, TestApp, ADMIN_TOKEN};

const REPO: &str = "acme-corp/web-app";
const SCHEDULE: [u64; 6] = [600, 1800, 3600, 7200, 86_400, 259_200];

async fn setup(repo: &GitRepo, expiry: Duration) -> (FakeGitHub, FakeAgent, TestApp) {
    let fake = FakeGitHub::start().await;
    fake.add_repo(REPO, repo);
    let agent = FakeAgent::start().await;
    let app = spawn_app_with(configure(&fake, &agent, expiry)).await;
    assert_eq!(
        app.deliver("installation", &fixture("installation.created")).await.0,
        200
    );
    (fake, agent, app)
}

fn configure(fake: &FakeGitHub, agent: &FakeAgent, expiry: Duration) -> impl FnOnce(&mut Config) {
    let (url, agent_config) = (fake.url.clone(), agent.config());
    move |config| {
        config.github_api_url = url;
        config.github_app = Some(GitHubAppCredentials {
            app_id: APP_ID,
            private_key_pem: Secret::new(private_key_pem()),
        });
        config.agent = Some(agent_config);
        config.monitor_schedule = SCHEDULE.iter().map(|s| Duration::from_secs(*s)).collect();
        config.monitor_expiry = expiry;
    }
}

async fn opt_in(app: &TestApp, body: Value) -> (u16, Value) {
    let response = app
        .client
        .post(app.url("/api/monitoring-plans"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    status_and_json(response).await
}

async fn plan(app: &TestApp, id: &Value) -> Value {
    app.admin_get(&format!("/api/monitoring-plans/{id}")).await.1
}

async fn merge(app: &TestApp, number: i64, sha: &str) {
    let mut pr = fixture("pull_request.closed");
    set(&mut pr, "/number", json!(number));
    set(&mut pr, "/pull_request/number", json!(number));
    set(&mut pr, "/pull_request/merge_commit_sha", json!(sha));
    let (status, body) = app.deliver("pull_request", &pr).await;
    assert_eq!((status, body["outcome"].as_str()), (200, Some("processed")), "{body}");
}

fn offsets(plan: &Value, status: &str) -> Vec<i64> {
    plan["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] == status)
        .map(|c| c["offset_seconds"].as_i64().unwrap())
        .collect()
}

#[tokio::test]
async fn a_plan_waits_for_the_merge_then_a_containing_deploy_and_runs_the_exact_schedule() {
    let repo = GitRepo::new();
    let base = repo.commit("base");
    let squash = repo.commit("Cache compare answers forever (#88)");
    let later = repo.commit("next PR");
    let (_fake, agent, app) = setup(&repo, Duration::from_secs(14 * 86_400)).await;
    app.live_deploy(REPO, &base, "production").await;
    app.run_jobs().await;

    let (status, created) = opt_in(
        &app,
        json!({"repository": REPO, "pull_number": 88, "note": "watch p99 latency"}),
    )
    .await;
    assert_eq!(
        (status, created["status"].as_str()),
        (201, Some("waiting_for_merge")),
        "{created}"
    );
    merge(&app, 88, &squash).await;
    let waiting = plan(&app, &created["id"]).await;
    let deploy_id = app.live_deploy(REPO, &later, "production").await;
    app.run_jobs().await;
    let active = plan(&app, &created["id"]).await;

    assert_eq!(waiting["status"], "waiting_for_deploy");
    assert_eq!(active["status"], "active", "{active}");
    let (_, brought) = app.admin_get(&format!("/deployments/{deploy_id}")).await;
    assert_eq!(brought["pull_requests"][0]["number"], 88, "{brought}");
    assert_eq!(brought["pull_requests"][0]["checks"].as_array().unwrap().len(), 6);
    let page = app
        .client
        .get(app.url(&format!("/deployments/{deploy_id}")))
        .bearer_auth(ADMIN_TOKEN)
        .header("Accept", "text/html")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("#88") && page.contains("monitoring active"),
        "the deploy page lists the PR it brought"
    );
    assert_eq!(active["deployed_environments"][0]["environment"], "production");
    assert_eq!(active["deployed_environments"][0]["deployment_id"], deploy_id);
    assert_eq!(
        offsets(&active, "pending"),
        SCHEDULE.iter().map(|s| *s as i64).collect::<Vec<_>>()
    );
    let live_at = chrono::DateTime::parse_from_rfc3339(active["first_deployed_at"].as_str().unwrap()).unwrap();
    for check in active["checks"].as_array().unwrap() {
        let due = chrono::DateTime::parse_from_rfc3339(check["due_at"].as_str().unwrap()).unwrap();
        assert_eq!((due - live_at).num_seconds(), check["offset_seconds"].as_i64().unwrap());
    }

    app.clock.advance(chrono::Duration::seconds(600));
    app.run_jobs().await;
    let first = agent.received();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].event, "monitoring.check");
    assert_eq!(first[0].body["check"]["offset_seconds"], 600);
    assert_eq!(first[0].body["plan"]["note"], "watch p99 latency");
    assert_eq!(first[0].body["deployments"][0]["environment"], "production");
    assert_eq!(agent.bad_signatures(), 0);

    app.clock.advance(chrono::Duration::days(4));
    app.run_jobs().await;
    let done = plan(&app, &created["id"]).await;
    assert_eq!(offsets(&done, "sent").len(), 6);
    assert_eq!(done["status"], "completed");
    assert_eq!(agent.received().len(), 6);
    // Later checks and the expiry are still to come.
    app.allow_jobs(&["monitoring.check", "monitoring.expire"]);
}

#[tokio::test]
async fn a_deploy_of_an_unrelated_branch_does_not_activate_the_plan() {
    let repo = GitRepo::new();
    let base = repo.commit("base");
    let merged = repo.commit("PR #90");
    repo.checkout(&base);
    repo.branch("hotfix");
    let unrelated = repo.commit("hotfix");
    let (_fake, agent, app) = setup(&repo, Duration::from_secs(14 * 86_400)).await;
    merge(&app, 90, &merged).await;
    let (_, created) = opt_in(&app, json!({"repository": REPO, "pull_number": 90})).await;

    app.live_deploy(REPO, &unrelated, "production").await;
    app.run_jobs().await;
    app.clock.advance(chrono::Duration::hours(1));
    app.run_jobs().await;

    assert_eq!(plan(&app, &created["id"]).await["status"], "waiting_for_deploy");
    assert!(agent.received().is_empty());
}

#[tokio::test]
async fn bringing_the_pr_to_a_second_environment_resets_the_whole_schedule() {
    let repo = GitRepo::new();
    let merged = repo.commit("PR #91");
    let (_fake, agent, app) = setup(&repo, Duration::from_secs(14 * 86_400)).await;
    merge(&app, 91, &merged).await;
    let (_, created) = opt_in(
        &app,
        json!({"repository": REPO, "pull_number": 91, "environments": ["staging", "production"]}),
    )
    .await;
    app.live_deploy(REPO, &merged, "staging").await;
    app.run_jobs().await;
    app.clock.advance(chrono::Duration::seconds(601));
    app.run_jobs().await;

    let production = app.live_deploy(REPO, &merged, "production").await;
    app.run_jobs().await;
    let reset = plan(&app, &created["id"]).await;
    app.clock.advance(chrono::Duration::seconds(601));
    app.run_jobs().await;

    assert_eq!(offsets(&reset, "sent"), vec![600]);
    assert_eq!(offsets(&reset, "cancelled").len(), 5, "the rest of the first schedule");
    assert_eq!(
        offsets(&reset, "pending").len(),
        6,
        "a new schedule from the production deploy"
    );
    let pending: Vec<&Value> = reset["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] == "pending")
        .collect();
    assert!(pending.iter().all(|c| c["deployment_id"] == production));
    let received = agent.received();
    assert_eq!(received.len(), 2);
    let environments: Vec<&str> = received[1].body["deployments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["environment"].as_str().unwrap())
        .collect();
    assert_eq!(
        environments,
        vec!["production", "staging"],
        "each check covers every environment the PR is live in"
    );
    // Later checks and the expiry are still to come.
    app.allow_jobs(&["monitoring.check", "monitoring.expire"]);
}

#[tokio::test]
async fn a_plan_expires_after_its_first_deploy_and_a_delete_cancels_another() {
    let repo = GitRepo::new();
    let merged = repo.commit("PR #92");
    let (_fake, agent, app) = setup(&repo, Duration::from_secs(2 * 3600)).await;
    merge(&app, 92, &merged).await;
    let (_, expiring) = opt_in(&app, json!({"repository": REPO, "pull_number": 92})).await;
    let (_, cancelled) = opt_in(&app, json!({"repository": REPO, "pull_number": 93})).await;
    app.live_deploy(REPO, &merged, "production").await;
    app.run_jobs().await;

    let deleted = app
        .client
        .delete(app.url(&format!("/api/monitoring-plans/{}", cancelled["id"])))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    app.clock.advance(chrono::Duration::hours(3));
    app.run_jobs().await;
    let expired = plan(&app, &expiring["id"]).await;

    assert_eq!(deleted.status(), 200);
    assert_eq!(plan(&app, &cancelled["id"]).await["status"], "cancelled");
    assert_eq!(expired["status"], "expired");
    assert_eq!(
        offsets(&expired, "sent"),
        vec![600, 1800, 3600],
        "checks before expiry went out"
    );
    assert_eq!(offsets(&expired, "cancelled").len(), 3);
    assert_eq!(agent.received().len(), 3);

    // A check that was never sent takes no verdict, and a "regression" comments on nothing.
    let never_sent = expired["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["status"] == "cancelled")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let body = serde_json::to_vec(&json!({"verdict": "regressed"})).unwrap();
    let verdict = app
        .client
        .post(app.url(&format!("/api/checks/{never_sent}/result")))
        .header(
            "X-Shiplog-Signature-256",
            shiplog::github::signature::sign(AGENT_SECRET, &body),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(verdict.status(), 409);
    let (_, writes) = app.admin_get("/api/jobs?state=queued").await;
    assert!(
        !writes["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|j| j["kind"] == "github.write"),
        "{writes}"
    );
    // Later checks and the expiry are still to come.
    app.allow_jobs(&["monitoring.check", "monitoring.expire"]);
}

#[tokio::test]
async fn duplicate_opt_ins_keep_one_plan_and_bad_ones_are_refused() {
    let repo = GitRepo::new();
    repo.commit("base");
    let (_fake, _agent, app) = setup(&repo, Duration::from_secs(86_400)).await;

    let (first, plan_a) = opt_in(&app, json!({"repository": REPO, "pull_number": 7})).await;
    let (second, plan_b) = opt_in(&app, json!({"repository": "ACME-CORP/web-app", "pull_number": 7})).await;
    let (bad, problem) = opt_in(&app, json!({"repository": "nope", "pull_number": -1, "colour": 1})).await;

    assert_eq!((first, second), (201, 200));
    assert_eq!(plan_a["id"], plan_b["id"]);
    assert_eq!(bad, 422, "{problem}");
    assert_eq!(
        app.admin_get("/api/monitoring-plans").await.1["monitoring_plans"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn the_agent_posts_a_signed_verdict_and_a_failing_agent_is_retried() {
    let repo = GitRepo::new();
    let merged = repo.commit("PR #94");
    let (_fake, agent, app) = setup(&repo, Duration::from_secs(14 * 86_400)).await;
    merge(&app, 94, &merged).await;
    let (_, created) = opt_in(&app, json!({"repository": REPO, "pull_number": 94})).await;
    app.live_deploy(REPO, &merged, "production").await;
    app.run_jobs().await;
    agent.fail_next(1);
    app.clock.advance(chrono::Duration::seconds(601));
    let failed_once = app.run_jobs().await;
    app.clock.advance(chrono::Duration::minutes(5));
    app.run_jobs().await;
    let check_id = agent.received()[0].body["check"]["id"].as_i64().unwrap();

    let body = serde_json::to_vec(&json!({"verdict": "regressed", "summary": "p99 up 40%"})).unwrap();
    let signed = app
        .client
        .post(app.url(&format!("/api/checks/{check_id}/result")))
        .header(
            "X-Shiplog-Signature-256",
            shiplog::github::signature::sign(AGENT_SECRET, &body),
        )
        .body(body.clone())
        .send()
        .await
        .unwrap();
    let unsigned = app
        .client
        .post(app.url(&format!("/api/checks/{check_id}/result")))
        .body(body)
        .send()
        .await
        .unwrap();
    let bad = app
        .client
        .post(app.url(&format!("/api/checks/{check_id}/result")))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"verdict": "great"}))
        .send()
        .await
        .unwrap();

    assert_eq!(failed_once.iter().map(|r| r.outcome).collect::<Vec<_>>(), vec!["retry"]);
    assert_eq!(signed.status(), 200);
    assert_eq!(unsigned.status(), 401);
    assert_eq!(bad.status(), 422);
    let after = plan(&app, &created["id"]).await;
    let check = after["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == check_id)
        .unwrap()
        .clone();
    assert_eq!(
        (check["verdict"].as_str(), check["summary"].as_str()),
        (Some("regressed"), Some("p99 up 40%"))
    );
    // Later checks, the expiry and the comment (no GitHub App here) are still to come.
    app.allow_jobs(&["monitoring.check", "monitoring.expire", "github.write"]);
}

#[tokio::test]
async fn a_rollback_that_takes_the_pr_out_is_recorded_and_told_to_the_agent() {
    let repo = GitRepo::new();
    let good = repo.commit("good");
    let merged = repo.commit("PR #95");
    let (_fake, agent, app) = setup(&repo, Duration::from_secs(14 * 86_400)).await;
    merge(&app, 95, &merged).await;
    let (_, created) = opt_in(&app, json!({"repository": REPO, "pull_number": 95})).await;
    app.live_deploy(REPO, &good, "production").await;
    app.run_jobs().await;
    let brought = app.live_deploy(REPO, &merged, "production").await;
    app.run_jobs().await;

    app.live_deploy(REPO, &good, "production").await;
    app.run_jobs().await;

    let after = plan(&app, &created["id"]).await;
    assert!(after["deployed_environments"][0]["removed_at"].is_string(), "{after}");
    let told: Vec<_> = agent
        .received()
        .into_iter()
        .filter(|r| r.event == "deployment.rolled_back")
        .collect();
    assert_eq!(told.len(), 1);
    assert_eq!(told[0].body["rollback"]["deployment_id"], brought);
    // Later checks and the expiry are still to come.
    app.allow_jobs(&["monitoring.check", "monitoring.expire"]);
}

fn comment_on_pull(number: i64, comment_id: i64, body: &str) -> Value {
    let pr = fixture("pull_request.closed");
    json!({
        "action": "created",
        "issue": {
            "url": format!("https://api.github.com/repos/{REPO}/issues/{number}"),
            "number": number, "title": "Cache compare answers forever", "state": "open",
            "user": {"login": "bob", "id": 5100002, "type": "User"},
            "pull_request": {"url": format!("https://api.github.com/repos/{REPO}/pulls/{number}"), "merged_at": null},
            "labels": [], "comments": 1
        },
        "comment": {
            "id": comment_id, "node_id": "IC_kwDOKbcAAc6", "body": body,
            "user": {"login": "bob", "id": 5100002, "type": "User"},
            "created_at": "2026-11-02T09:00:00Z", "updated_at": "2026-11-02T09:00:00Z",
            "author_association": "MEMBER"
        },
        "repository": pr["repository"], "organization": pr["organization"],
        "sender": {"login": "bob", "id": 5100002, "type": "User"}, "installation": pr["installation"]
    })
}

#[tokio::test]
async fn a_comment_mentioning_the_app_opts_in_with_its_note_and_gets_eyes() {
    let repo = GitRepo::new();
    repo.commit("base");
    let (fake, _agent, app) = setup(&repo, Duration::from_secs(86_400)).await;

    let (_, opted) = app
        .deliver(
            "issue_comment",
            &comment_on_pull(96, 777, "LGTM. @shiplog watch checkout errors"),
        )
        .await;
    let (_, chatter) = app
        .deliver(
            "issue_comment",
            &comment_on_pull(97, 778, "ping @shiplog-bot and me@shiplog.dev"),
        )
        .await;
    let (_, again) = app
        .deliver("issue_comment", &comment_on_pull(96, 779, "@shiplog"))
        .await;
    app.run_jobs().await;

    assert_eq!(opted["outcome"], "processed", "{opted}");
    assert_eq!(chatter["outcome"], "skipped");
    assert_eq!(again["outcome"], "skipped", "duplicate opt-ins keep one plan");
    let plans = app.admin_get("/api/monitoring-plans").await.1["monitoring_plans"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(plans.len(), 1);
    assert_eq!(
        (plans[0]["pull_number"].as_i64(), plans[0]["note"].as_str()),
        (Some(96), Some("watch checkout errors"))
    );
    let reactions: Vec<_> = fake
        .posted()
        .into_iter()
        .filter(|(path, _)| path.ends_with("/reactions"))
        .collect();
    assert_eq!(reactions.len(), 2, "each opting-in comment gets 👀: {reactions:?}");
    assert_eq!(reactions[0].0, format!("/repos/{REPO}/issues/comments/777/reactions"));
    assert_eq!(reactions[0].1, json!({"content": "eyes"}));
}

#[tokio::test]
async fn the_deploy_monitoring_label_opts_in_and_the_pr_hears_of_its_first_deploy_and_regressions() {
    let repo = GitRepo::new();
    let merged = repo.commit("PR #98");
    let (fake, agent, app) = setup(&repo, Duration::from_secs(14 * 86_400)).await;
    let mut labeled = fixture("pull_request.closed");
    set(&mut labeled, "/action", json!("labeled"));
    set(&mut labeled, "/number", json!(98));
    set(&mut labeled, "/pull_request/number", json!(98));
    let mut other_label = labeled.clone();
    labeled["label"] = json!({"id": 1, "name": "deploy-monitoring", "color": "0e8a16"});
    other_label["label"] = json!({"id": 2, "name": "bug", "color": "d73a4a"});

    let (_, by_label) = app.deliver("pull_request", &labeled).await;
    let (_, ignored_label) = app.deliver("pull_request", &other_label).await;
    merge(&app, 98, &merged).await;
    app.live_deploy(REPO, &merged, "production").await;
    app.run_jobs().await;
    app.clock.advance(chrono::Duration::seconds(601));
    app.run_jobs().await;
    let check_id = agent.received()[0].body["check"]["id"].as_i64().unwrap();
    app.client
        .post(app.url(&format!("/api/checks/{check_id}/result")))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"verdict": "regressed", "summary": "error rate doubled"}))
        .send()
        .await
        .unwrap();
    app.run_jobs().await;

    assert_eq!(by_label["outcome"], "processed", "{by_label}");
    assert_eq!(ignored_label["outcome"], "skipped");
    let comments: Vec<_> = fake
        .posted()
        .into_iter()
        .filter(|(path, _)| path.ends_with("/issues/98/comments"))
        .collect();
    assert_eq!(comments.len(), 2, "{comments:?}");
    let first = comments[0].1["body"].as_str().unwrap();
    assert!(
        first.contains("live in **production**") && first.contains("10m, 30m, 1h, 2h, 24h, 72h"),
        "{first}"
    );
    let regression = comments[1].1["body"].as_str().unwrap();
    assert!(
        regression.contains("10m after deploy") && regression.contains("error rate doubled"),
        "{regression}"
    );
    // Later checks and the expiry are still to come.
    app.allow_jobs(&["monitoring.check", "monitoring.expire"]);
}

fn pending_checks(plan: &Value) -> Vec<Value> {
    plan["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] == "pending")
        .cloned()
        .collect()
}

fn time(value: &Value) -> chrono::DateTime<chrono::FixedOffset> {
    chrono::DateTime::parse_from_rfc3339(value.as_str().unwrap()).unwrap()
}

#[tokio::test]
async fn a_new_deploy_where_the_pr_is_live_already_resets_the_schedule_and_checks_name_it() {
    let repo = GitRepo::new();
    let merged = repo.commit("PR #99");
    let later = repo.commit("next PR");
    let (_fake, agent, app) = setup(&repo, Duration::from_secs(14 * 86_400)).await;
    merge(&app, 99, &merged).await;
    let (_, created) = opt_in(&app, json!({"repository": REPO, "pull_number": 99})).await;
    let first = app.live_deploy(REPO, &merged, "production").await;
    app.run_jobs().await;
    app.clock.advance(chrono::Duration::seconds(601));
    app.run_jobs().await;

    let second = app.live_deploy(REPO, &later, "production").await;
    app.run_jobs().await;
    let reset = plan(&app, &created["id"]).await;
    app.clock.advance(chrono::Duration::seconds(601));
    app.run_jobs().await;

    assert_eq!(offsets(&reset, "sent"), vec![600]);
    assert_eq!(offsets(&reset, "cancelled").len(), 5, "the rest of the first schedule");
    let pending = pending_checks(&reset);
    assert_eq!(
        pending
            .iter()
            .map(|c| c["offset_seconds"].as_i64().unwrap())
            .collect::<Vec<_>>(),
        SCHEDULE.iter().map(|s| *s as i64).collect::<Vec<_>>(),
        "a whole new schedule: {reset}"
    );
    assert!(pending.iter().all(|c| c["deployment_id"] == second), "{reset}");
    let (_, second_deploy) = app.admin_get(&format!("/deployments/{second}")).await;
    let second_live_at = time(&second_deploy["completed_at"]);
    for check in &pending {
        let due = time(&check["due_at"]);
        assert_eq!(
            (due - second_live_at).num_seconds(),
            check["offset_seconds"].as_i64().unwrap(),
            "counted from the second deploy's went-live time"
        );
    }
    assert_eq!(reset["deployed_environments"][0]["deployment_id"], second, "{reset}");
    let received = agent.received();
    assert_eq!(received.len(), 2);
    assert_eq!(received[0].body["deployments"][0]["deployment"]["id"], first);
    assert_eq!(
        received[1].body["deployments"][0]["deployment"]["id"], second,
        "the check names production's current live deploy"
    );
    assert_eq!(received[1].body["deployments"].as_array().unwrap().len(), 1);
    // Later checks and the expiry are still to come.
    app.allow_jobs(&["monitoring.check", "monitoring.expire"]);
}

#[tokio::test]
async fn a_deploy_status_delivered_an_hour_late_sends_one_overdue_check_and_skips_the_older_ones() {
    let repo = GitRepo::new();
    let merged = repo.commit("PR #100");
    let (_fake, agent, app) = setup(&repo, Duration::from_secs(14 * 86_400)).await;
    merge(&app, 100, &merged).await;
    let (_, created) = opt_in(&app, json!({"repository": REPO, "pull_number": 100})).await;
    let mut deployment = fixture("deployment.created");
    set(&mut deployment, "/deployment/sha", json!(merged));
    let mut success = fixture("deployment_status.created");
    success["deployment"] = deployment["deployment"].clone();
    let went_live = time(&success["deployment_status"]["created_at"]);
    app.clock
        .set(went_live.with_timezone(&chrono::Utc) + chrono::Duration::hours(1) + chrono::Duration::seconds(30));

    assert_eq!(app.deliver("deployment", &deployment).await.0, 200);
    assert_eq!(app.deliver("deployment_status", &success).await.0, 200);
    app.run_jobs().await;
    let after = plan(&app, &created["id"]).await;

    assert_eq!(time(&after["first_deployed_at"]), went_live, "{after}");
    assert_eq!(
        time(&after["expires_at"]),
        went_live + chrono::Duration::days(14),
        "expiry counts from the went-live time GitHub reported"
    );
    assert_eq!(offsets(&after, "skipped"), vec![600, 1800], "{after}");
    assert_eq!(
        offsets(&after, "sent"),
        vec![3600],
        "only the latest overdue check runs now"
    );
    assert_eq!(offsets(&after, "pending"), vec![7200, 86_400, 259_200]);
    for check in after["checks"].as_array().unwrap() {
        assert_eq!(
            (time(&check["due_at"]) - went_live).num_seconds(),
            check["offset_seconds"].as_i64().unwrap()
        );
    }
    let skipped = after["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["status"] == "skipped")
        .unwrap();
    assert!(
        skipped["summary"].as_str().unwrap().contains("learned of the deploy"),
        "{skipped}"
    );
    let received = agent.received();
    assert_eq!(received.len(), 1, "no burst of overdue checks");
    assert_eq!(received[0].body["check"]["offset_seconds"], 3600);

    app.clock.advance(chrono::Duration::hours(1));
    app.run_jobs().await;
    assert_eq!(
        offsets(&plan(&app, &created["id"]).await, "sent"),
        vec![3600, 7200],
        "the rest keeps its schedule"
    );
    // Later checks and the expiry are still to come.
    app.allow_jobs(&["monitoring.check", "monitoring.expire"]);
}

#[tokio::test]
async fn a_regressed_verdict_wakes_the_worker_and_its_pr_comment_goes_out_at_once() {
    let repo = GitRepo::new();
    let merged = repo.commit("PR #101");
    let expiry = Duration::from_secs(14 * 86_400);
    let (fake, agent, app) = setup(&repo, expiry).await;
    merge(&app, 101, &merged).await;
    let (_, created) = opt_in(&app, json!({"repository": REPO, "pull_number": 101})).await;
    app.live_deploy(REPO, &merged, "production").await;
    app.run_jobs().await;
    let check_id = pending_checks(&plan(&app, &created["id"]).await)[0]["id"].clone();
    // A server whose own worker runs, on the same database: nothing is due, so it idles (30 s).
    let configure_worker = configure(&fake, &agent, expiry);
    let served = spawn_app_on(
        app.database.clone(),
        |config| {
            configure_worker(config);
            config.run_jobs = true;
        },
        Vec::new(),
    )
    .await;
    assert_eq!(plan(&served, &created["id"]).await["status"], "active");
    let regression_comments = || {
        fake.posted()
            .into_iter()
            .filter(|(path, body)| {
                path.ends_with("/issues/101/comments") && body["body"].as_str().unwrap_or("").contains("regression")
            })
            .count()
    };

    let started = std::time::Instant::now();
    let response = served
        .client
        .post(served.url(&format!("/api/checks/{check_id}/result")))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"verdict": "regressed", "summary": "error rate doubled"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    while regression_comments() == 0 && started.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    assert_eq!(
        regression_comments(),
        1,
        "the comment went out within 5 s, not at the worker's 30 s idle poll"
    );
    // Later checks and the expiry are still to come.
    app.allow_jobs(&["monitoring.check", "monitoring.expire"]);
    served.allow_jobs(&["monitoring.check", "monitoring.expire"]);
}

#[tokio::test]
async fn a_later_deploy_without_the_pr_takes_it_out_of_the_checks_environments() {
    let repo = GitRepo::new();
    let base = repo.commit("base");
    let merged = repo.commit("PR #102");
    repo.checkout(&base);
    repo.branch("hotfix");
    let unrelated = repo.commit("hotfix");
    let (_fake, agent, app) = setup(&repo, Duration::from_secs(14 * 86_400)).await;
    merge(&app, 102, &merged).await;
    let (_, created) = opt_in(&app, json!({"repository": REPO, "pull_number": 102})).await;
    app.live_deploy(REPO, &merged, "production").await;
    app.run_jobs().await;

    app.live_deploy(REPO, &unrelated, "production").await;
    app.run_jobs().await;
    app.clock.advance(chrono::Duration::seconds(601));
    app.run_jobs().await;

    let after = plan(&app, &created["id"]).await;
    assert!(after["deployed_environments"][0]["removed_at"].is_string(), "{after}");
    let checks: Vec<_> = agent
        .received()
        .into_iter()
        .filter(|r| r.event == "monitoring.check")
        .collect();
    assert_eq!(checks.len(), 1);
    assert_eq!(
        checks[0].body["deployments"],
        json!([]),
        "a superseded deploy is not named as production's live deploy"
    );
    // Later checks and the expiry are still to come.
    app.allow_jobs(&["monitoring.check", "monitoring.expire"]);
}
