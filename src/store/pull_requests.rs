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
