//! Merged pull requests.

use chrono::{DateTime, Utc};
use entity::pull_request::{ActiveModel, Column, Entity};
use sea_orm::sea_query::OnConflict;
use sea_orm::{EntityTrait, NotSet, Set};

use super::{Conn, StoreResult};
use crate::monitoring::MergedPullRequest;

/// Records a merged pull request once (a second record of the same number changes nothing).
pub async fn insert(db: &impl Conn, pr: &MergedPullRequest, now: DateTime<Utc>) -> StoreResult<bool> {
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
