//! Merged pull requests are recorded for deploy monitoring; closed ones are not.

use sea_orm::{ConnectionTrait, Statement};
use serde_json::{json, Value};

use crate::helpers::{fixture, set, spawn_app, TestApp};

async fn stored(app: &TestApp) -> Vec<(i64, String, Option<String>, String)> {
    let backend = app.store.conn().get_database_backend();
    let rows = app
        .store
        .conn()
        .query_all(Statement::from_string(
            backend,
            "SELECT number, title, author, merge_commit_sha FROM pull_request ORDER BY number".to_owned(),
        ))
        .await
        .unwrap();
    rows.iter()
        .map(|r| {
            (
                r.try_get("", "number").unwrap(),
                r.try_get("", "title").unwrap(),
                r.try_get("", "author").unwrap(),
                r.try_get("", "merge_commit_sha").unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_merged_pull_request_is_recorded() {
    let app = spawn_app().await;
    app.deliver("installation", &fixture("installation.created")).await;

    let (status, body) = app.deliver("pull_request", &fixture("pull_request.closed")).await;

    assert_eq!((status, body["outcome"].as_str()), (200, Some("processed")), "{body}");
    assert_eq!(
        stored(&app).await,
        vec![(
            88,
            "Cache compare answers forever".to_owned(),
            Some("bob".to_owned()),
            "4c1f0f0a9d6e3b2a8f7e6d5c4b3a29181716151a".to_owned()
        )]
    );
}

#[tokio::test]
async fn a_pull_request_closed_without_merging_does_not_count_despite_its_merge_commit_sha() {
    let app = spawn_app().await;
    app.deliver("installation", &fixture("installation.created")).await;
    let mut closed = fixture("pull_request.closed");
    set(&mut closed, "/pull_request/merged", json!(false));
    set(&mut closed, "/pull_request/merged_at", Value::Null);
    set(&mut closed, "/pull_request/merged_by", Value::Null);

    let (status, body) = app.deliver("pull_request", &closed).await;

    assert_eq!((status, body["outcome"].as_str()), (200, Some("skipped")), "{body}");
    assert!(body["reason"].as_str().unwrap().contains("without merging"));
    assert!(stored(&app).await.is_empty());
}

#[tokio::test]
async fn the_same_merge_delivered_twice_is_recorded_once_and_other_actions_are_ignored() {
    let app = spawn_app().await;
    app.deliver("installation", &fixture("installation.created")).await;
    let mut opened = fixture("pull_request.closed");
    set(&mut opened, "/action", json!("opened"));

    app.deliver("pull_request", &fixture("pull_request.closed")).await;
    let (_, again) = app.deliver("pull_request", &fixture("pull_request.closed")).await;
    let (_, other) = app.deliver("pull_request", &opened).await;

    assert_eq!(again["outcome"], "skipped");
    assert_eq!(other["outcome"], "ignored");
    assert_eq!(stored(&app).await.len(), 1);
}
