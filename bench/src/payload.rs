//! GitHub-shaped `deployment` and `deployment_status` deliveries, signed as GitHub signs them.
//!
//! The bodies carry every field GitHub sends (full `repository`, `organization`, `sender`,
//! `installation` and user objects), which puts them at the 8–10 KB a real delivery weighs.

use hmac::{Hmac, KeyInit, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

/// One request, ready to send: the body is signed and the delivery id is unique.
pub struct SignedDelivery {
    pub event: &'static str,
    pub delivery_id: String,
    pub signature: String,
    pub body: Vec<u8>,
}

/// The installation every generated delivery belongs to.
pub const INSTALLATION_ID: i64 = 61_000_001;
const OWNER: &str = "bench-org";
const OWNER_ID: i64 = 91_000_001;
pub const REPOSITORIES: u64 = 20;
pub const ENVIRONMENTS: [&str; 3] = ["production", "staging", "qa"];

/// The `n`th delivery of a run: each deploy is a `deployment` event, then an `in_progress` and a
/// `success` status. `run` keeps ids unique across runs against one database.
pub fn delivery(secret: &[u8], run: u64, n: u64) -> SignedDelivery {
    let deploy = run * 10_000_000 + n / 3;
    let (event, body) = match n % 3 {
        0 => ("deployment", deployment_event(deploy)),
        step => ("deployment_status", status_event(deploy, step)),
    };
    let body = serde_json::to_vec(&body).unwrap_or_default();
    SignedDelivery {
        event,
        delivery_id: delivery_id(run, n),
        signature: sign(secret, &body),
        body,
    }
}

/// `X-Hub-Signature-256`: `sha256=` and the hex HMAC-SHA256 of the raw body.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// A UUID-shaped delivery id, as GitHub sends, unique per (run, n).
fn delivery_id(run: u64, n: u64) -> String {
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        run as u32,
        (n >> 48) & 0xffff,
        (n >> 36) & 0xfff,
        (n >> 24) & 0xfff,
        n & 0xff_ffff_ffff
    )
}

fn repository_name(deploy: u64) -> String {
    format!("service-{:02}", deploy % REPOSITORIES)
}

fn environment(deploy: u64) -> &'static str {
    ENVIRONMENTS[(deploy / REPOSITORIES) as usize % ENVIRONMENTS.len()]
}

/// A 40-hex commit sha, the same for the same number.
pub fn sha(deploy: u64) -> String {
    let mut sha = format!(
        "{:040x}",
        deploy.wrapping_mul(0x9e37_79b9_7f4a_7c15) as u128 * 0x1_0000_0001
    );
    sha.truncate(40);
    sha
}

fn timestamp(deploy: u64, seconds: u64) -> String {
    let total = deploy * 60 + seconds;
    let (day, rest) = (total / 86_400 % 28, total % 86_400);
    format!(
        "2026-11-{:02}T{:02}:{:02}:{:02}Z",
        day + 1,
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

fn deployment_event(deploy: u64) -> Value {
    json!({
        "action": "created",
        "deployment": deployment(deploy),
        "workflow": null,
        "workflow_run": null,
        "repository": repository(deploy),
        "organization": organization(),
        "enterprise": null,
        "sender": user("release-bot", 41_898_282, "Bot"),
        "installation": installation(),
    })
}

fn status_event(deploy: u64, step: u64) -> Value {
    let state = if step == 1 { "in_progress" } else { "success" };
    let name = repository_name(deploy);
    let status_id = 3_000_000_000 + deploy * 2 + step;
    json!({
        "action": "created",
        "deployment_status": {
            "url": format!("https://api.github.com/repos/{OWNER}/{name}/deployments/{}/statuses/{status_id}", deployment_id(deploy)),
            "id": status_id,
            "node_id": format!("DES_kwDOKbcAAc6s{status_id:x}"),
            "state": state,
            "creator": user("release-bot", 41_898_282, "Bot"),
            "description": format!("Deployment {state}"),
            "environment": environment(deploy),
            "target_url": format!("https://github.com/{OWNER}/{name}/actions/runs/{}", 8_800_000_000 + deploy),
            "log_url": format!("https://github.com/{OWNER}/{name}/actions/runs/{}", 8_800_000_000 + deploy),
            "environment_url": format!("https://{}.{name}.example.com", environment(deploy)),
            "created_at": timestamp(deploy, 10 * step),
            "updated_at": timestamp(deploy, 10 * step),
            "deployment_url": format!("https://api.github.com/repos/{OWNER}/{name}/deployments/{}", deployment_id(deploy)),
            "repository_url": format!("https://api.github.com/repos/{OWNER}/{name}"),
            "performed_via_github_app": null
        },
        "deployment": deployment(deploy),
        "check_run": null,
        "workflow": null,
        "workflow_run": null,
        "repository": repository(deploy),
        "organization": organization(),
        "enterprise": null,
        "sender": user("release-bot", 41_898_282, "Bot"),
        "installation": installation(),
    })
}

fn deployment_id(deploy: u64) -> u64 {
    2_000_000_000 + deploy
}

fn deployment(deploy: u64) -> Value {
    let name = repository_name(deploy);
    let id = deployment_id(deploy);
    json!({
        "url": format!("https://api.github.com/repos/{OWNER}/{name}/deployments/{id}"),
        "id": id,
        "node_id": format!("DE_kwDOKbcAAc5x{id:x}"),
        "task": "deploy",
        "original_environment": environment(deploy),
        "environment": environment(deploy),
        "description": "Deploy from the release pipeline",
        "created_at": timestamp(deploy, 0),
        "updated_at": timestamp(deploy, 0),
        "statuses_url": format!("https://api.github.com/repos/{OWNER}/{name}/deployments/{id}/statuses"),
        "repository_url": format!("https://api.github.com/repos/{OWNER}/{name}"),
        "creator": user("alice", 5_100_001, "User"),
        "sha": sha(deploy),
        "ref": "main",
        "payload": {},
        "transient_environment": false,
        "production_environment": environment(deploy) == "production",
        "performed_via_github_app": null
    })
}

fn installation() -> Value {
    json!({ "id": INSTALLATION_ID, "node_id": "MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9uNjEwMDAwMDE=" })
}

fn organization() -> Value {
    let api = format!("https://api.github.com/orgs/{OWNER}");
    json!({
        "login": OWNER,
        "id": OWNER_ID,
        "node_id": "O_kgDOAIrYoQ",
        "url": api,
        "repos_url": format!("{api}/repos"),
        "events_url": format!("{api}/events"),
        "hooks_url": format!("{api}/hooks"),
        "issues_url": format!("{api}/issues"),
        "members_url": format!("{api}/members{{/member}}"),
        "public_members_url": format!("{api}/public_members{{/member}}"),
        "avatar_url": format!("https://avatars.githubusercontent.com/u/{OWNER_ID}?v=4"),
        "description": "Benchmark organisation"
    })
}

fn user(login: &str, id: i64, kind: &str) -> Value {
    let api = format!("https://api.github.com/users/{login}");
    json!({
        "login": login,
        "id": id,
        "node_id": format!("U_kgDOAE{id:x}"),
        "avatar_url": format!("https://avatars.githubusercontent.com/u/{id}?v=4"),
        "gravatar_id": "",
        "url": api,
        "html_url": format!("https://github.com/{login}"),
        "followers_url": format!("{api}/followers"),
        "following_url": format!("{api}/following{{/other_user}}"),
        "gists_url": format!("{api}/gists{{/gist_id}}"),
        "starred_url": format!("{api}/starred{{/owner}}{{/repo}}"),
        "subscriptions_url": format!("{api}/subscriptions"),
        "organizations_url": format!("{api}/orgs"),
        "repos_url": format!("{api}/repos"),
        "events_url": format!("{api}/events{{/privacy}}"),
        "received_events_url": format!("{api}/received_events"),
        "type": kind,
        "user_view_type": "public",
        "site_admin": false
    })
}

fn repository(deploy: u64) -> Value {
    let name = repository_name(deploy);
    let full = format!("{OWNER}/{name}");
    let api = format!("https://api.github.com/repos/{full}");
    let html = format!("https://github.com/{full}");
    let mut owner = user(OWNER, OWNER_ID, "Organization");
    owner["url"] = json!(format!("https://api.github.com/users/{OWNER}"));
    json!({
        "id": 700_000_000 + deploy % REPOSITORIES,
        "node_id": "R_kgDOKbcAAQ",
        "name": name,
        "full_name": full,
        "private": true,
        "owner": owner,
        "html_url": html,
        "description": "A service deployed by the benchmark",
        "fork": false,
        "url": api,
        "forks_url": format!("{api}/forks"),
        "keys_url": format!("{api}/keys{{/key_id}}"),
        "collaborators_url": format!("{api}/collaborators{{/collaborator}}"),
        "teams_url": format!("{api}/teams"),
        "hooks_url": format!("{api}/hooks"),
        "issue_events_url": format!("{api}/issues/events{{/number}}"),
        "events_url": format!("{api}/events"),
        "assignees_url": format!("{api}/assignees{{/user}}"),
        "branches_url": format!("{api}/branches{{/branch}}"),
        "tags_url": format!("{api}/tags"),
        "blobs_url": format!("{api}/git/blobs{{/sha}}"),
        "git_tags_url": format!("{api}/git/tags{{/sha}}"),
        "git_refs_url": format!("{api}/git/refs{{/sha}}"),
        "trees_url": format!("{api}/git/trees{{/sha}}"),
        "statuses_url": format!("{api}/statuses/{{sha}}"),
        "languages_url": format!("{api}/languages"),
        "stargazers_url": format!("{api}/stargazers"),
        "contributors_url": format!("{api}/contributors"),
        "subscribers_url": format!("{api}/subscribers"),
        "subscription_url": format!("{api}/subscription"),
        "commits_url": format!("{api}/commits{{/sha}}"),
        "git_commits_url": format!("{api}/git/commits{{/sha}}"),
        "comments_url": format!("{api}/comments{{/number}}"),
        "issue_comment_url": format!("{api}/issues/comments{{/number}}"),
        "contents_url": format!("{api}/contents/{{+path}}"),
        "compare_url": format!("{api}/compare/{{base}}...{{head}}"),
        "merges_url": format!("{api}/merges"),
        "archive_url": format!("{api}/{{archive_format}}{{/ref}}"),
        "downloads_url": format!("{api}/downloads"),
        "issues_url": format!("{api}/issues{{/number}}"),
        "pulls_url": format!("{api}/pulls{{/number}}"),
        "milestones_url": format!("{api}/milestones{{/number}}"),
        "notifications_url": format!("{api}/notifications{{?since,all,participating}}"),
        "labels_url": format!("{api}/labels{{/name}}"),
        "releases_url": format!("{api}/releases{{/id}}"),
        "deployments_url": format!("{api}/deployments"),
        "created_at": "2024-03-01T10:00:00Z",
        "updated_at": "2026-11-01T10:00:00Z",
        "pushed_at": "2026-11-02T09:00:00Z",
        "git_url": format!("git://github.com/{full}.git"),
        "ssh_url": format!("git@github.com:{full}.git"),
        "clone_url": format!("{html}.git"),
        "svn_url": html,
        "homepage": null,
        "size": 48_213,
        "stargazers_count": 0,
        "watchers_count": 0,
        "language": "Rust",
        "has_issues": true,
        "has_projects": false,
        "has_downloads": true,
        "has_wiki": false,
        "has_pages": false,
        "has_discussions": false,
        "forks_count": 0,
        "mirror_url": null,
        "archived": false,
        "disabled": false,
        "open_issues_count": 12,
        "license": null,
        "allow_forking": false,
        "is_template": false,
        "web_commit_signoff_required": false,
        "topics": ["backend", "payments"],
        "visibility": "private",
        "forks": 0,
        "open_issues": 12,
        "watchers": 0,
        "default_branch": "main",
        "custom_properties": {}
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_weigh_what_real_deliveries_weigh() {
        for n in 0..3 {
            let d = delivery(b"secret", 1, n);
            assert!(
                (7_000..=11_000).contains(&d.body.len()),
                "{} is {} bytes",
                d.event,
                d.body.len()
            );
        }
    }

    #[test]
    fn delivery_ids_are_unique_across_runs() {
        let mut seen = std::collections::HashSet::new();
        for run in 1..4 {
            for n in 0..1000 {
                assert!(seen.insert(delivery_id(run, n)));
            }
        }
    }

    #[test]
    fn the_signature_is_githubs() {
        // GitHub's documented test vector.
        assert_eq!(
            sign(b"It's a Secret to Everybody", b"Hello, World!"),
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
    }
}
