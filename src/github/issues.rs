//! Writing to pull requests: a reaction on a comment, a comment on the conversation. The only
//! place that knows these endpoints.

use chrono::{DateTime, Utc};
use octocrab::Octocrab;
use serde_json::{json, Value};

use super::client::{record_call, record_failure};
use super::error::{classify, CallError};
use crate::types::RepoName;

const REACTIONS: &str = "/repos/{owner}/{repo}/issues/comments/{comment_id}/reactions";
const COMMENTS: &str = "/repos/{owner}/{repo}/issues/{issue_number}/comments";

/// 👀 on a comment (`POST /repos/{o}/{r}/issues/comments/{id}/reactions`).
pub async fn react_eyes(
    client: &Octocrab,
    repo: &RepoName,
    comment_id: i64,
    now: DateTime<Utc>,
) -> Result<(), CallError> {
    let route = format!("/repos/{}/issues/comments/{comment_id}/reactions", repo.as_str());
    let _: Value = client
        .post(route, Some(&json!({"content": "eyes"})))
        .await
        .inspect_err(|e| record_failure(REACTIONS, e))
        .map_err(|e| classify(e, "the comment", now))?;
    record_call(REACTIONS, Some(201), None);
    Ok(())
}

/// A comment on a pull request's conversation (`POST /repos/{o}/{r}/issues/{n}/comments`).
pub async fn comment(
    client: &Octocrab,
    repo: &RepoName,
    number: i64,
    body: &str,
    now: DateTime<Utc>,
) -> Result<(), CallError> {
    let route = format!("/repos/{}/issues/{number}/comments", repo.as_str());
    let _: Value = client
        .post(route, Some(&json!({"body": body})))
        .await
        .inspect_err(|e| record_failure(COMMENTS, e))
        .map_err(|e| classify(e, "the pull request", now))?;
    record_call(COMMENTS, Some(201), None);
    Ok(())
}
