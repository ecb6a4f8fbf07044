//! `app-manifest.yml` asks GitHub for what shiplog needs, and no more.

fn manifest() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/app-manifest.yml")).unwrap()
}

/// The indented `key: value` lines of a top-level block, comments stripped.
fn block(text: &str, name: &str) -> Vec<String> {
    let mut lines = text.lines().skip_while(|l| !l.starts_with(&format!("{name}:"))).skip(1);
    let mut out = Vec::new();
    for line in lines.by_ref() {
        if !line.starts_with(' ') {
            break;
        }
        out.push(line.split('#').next().unwrap().trim().to_owned());
    }
    out
}

#[test]
fn the_manifest_requests_the_documented_permissions() {
    let permissions = block(&manifest(), "default_permissions");

    assert_eq!(
        permissions,
        vec![
            "deployments: read",
            "contents: read",
            "metadata: read",
            "pull_requests: read",
            "issues: write",
            "actions: read"
        ]
    );
}

#[test]
fn the_manifest_subscribes_to_the_events_shiplog_handles() {
    let events = block(&manifest(), "default_events");

    assert_eq!(
        events,
        vec![
            "- deployment",
            "- deployment_status",
            "- pull_request",
            "- issue_comment",
            "- workflow_run"
        ]
    );
}

#[test]
fn the_manifest_points_the_webhook_at_the_webhook_route() {
    let hook = block(&manifest(), "hook_attributes");

    assert!(
        hook.iter()
            .any(|l| l.starts_with("url: ") && l.ends_with("/webhooks/github")),
        "{hook:?}"
    );
    assert!(hook.contains(&"active: true".to_owned()));
}
