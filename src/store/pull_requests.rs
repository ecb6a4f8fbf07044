//! Merged pull requests.

use chrono::{DateTime, Utc};
use entity::pull_request::{ActiveModel, Column, Entity};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, EntityTrait, NotSet, QueryFilter, Set};

use super::{Conn, StoreResult, Writer};
use crate::monitoring::MergedPullRequest;

/// Records a merged pull request once (a second record of the same number changes nothing).
pub async fn insert(db: &impl Writer, pr: &MergedPullRequest, now: DateTime<Utc>) -> StoreResult<bool> {
    let rows = Entity::insert(ActiveModel {
        id: NotSet,
        connection_id: Set(pr.connection_id),
        repository: Set(pr.repository.as_str().to_owned()),
        repository_key: Set(pr.repository.key().to_owned()),
        number: Set(pr.number),
        title: Set(pr.title.clone()),
        author: Set(pr.author.clone()),
        merge_commit_sha: Set(pr.merge_commit_sha.as_str().to_owned()),
        merged_at: Set(pr.merged_at),
        created_at: Set(pr.created_at),
        recorded_at: Set(now),
    })
    .on_conflict(
        OnConflict::columns([Column::ConnectionId, Column::RepositoryKey, Column::Number])
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    Ok(rows == 1)
}

pub async fn is_merged(db: &impl Conn, connection_id: i64, repository_key: &str, number: i64) -> StoreResult<bool> {
    let found = Entity::find()
        .filter(Column::ConnectionId.eq(connection_id))
        .filter(Column::RepositoryKey.eq(repository_key))
        .filter(Column::Number.eq(number))
        .one(db)
        .await?;
    Ok(found.is_some())
}

/// The merge commits of the given merged pull requests.
pub async fn merge_commits(
    db: &impl Conn,
    connection_id: i64,
    repository_key: &str,
    numbers: &[i64],
) -> StoreResult<Vec<String>> {
    if numbers.is_empty() {
        return Ok(Vec::new());
    }
    let rows = Entity::find()
        .filter(Column::ConnectionId.eq(connection_id))
        .filter(Column::RepositoryKey.eq(repository_key))
        .filter(Column::Number.is_in(numbers.iter().copied()))
        .all(db)
        .await?;
    Ok(rows.into_iter().map(|r| r.merge_commit_sha).collect())
}

/// The pull requests merged as `sha`.
pub async fn numbers_for_merge_commit(
    db: &impl Conn,
    connection_id: i64,
    repository_key: &str,
    sha: &str,
) -> StoreResult<Vec<i64>> {
    let rows = Entity::find()
        .filter(Column::ConnectionId.eq(connection_id))
        .filter(Column::RepositoryKey.eq(repository_key))
        .filter(Column::MergeCommitSha.eq(sha))
        .all(db)
        .await?;
    Ok(rows.into_iter().map(|r| r.number).collect())
}

/// A merged pull request as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PullRequestRow {
    pub number: i64,
    pub title: String,
    pub author: Option<String>,
    pub merge_commit_sha: String,
    pub merged_at: DateTime<Utc>,
    pub created_at: Option<DateTime<Utc>>,
}

/// The connection's merged pull requests of a repository whose merge commit is one of `shas`.
pub async fn merged_as(
    db: &impl Conn,
    connection_id: i64,
    repository_key: &str,
    shas: &[String],
) -> StoreResult<Vec<PullRequestRow>> {
    let mut found = Vec::new();
    for chunk in shas.chunks(500) {
        let rows = Entity::find()
            .filter(Column::ConnectionId.eq(connection_id))
            .filter(Column::RepositoryKey.eq(repository_key))
            .filter(Column::MergeCommitSha.is_in(chunk.iter().cloned()))
            .all(db)
            .await?;
        found.extend(rows.into_iter().map(|r| PullRequestRow {
            number: r.number,
            title: r.title,
            author: r.author,
            merge_commit_sha: r.merge_commit_sha,
            merged_at: r.merged_at,
            created_at: r.created_at,
        }));
    }
    Ok(found)
}
