//! Commits as comparisons listed them (`commit_info`, once per repository) and the listing of
//! each comparison in GitHub's order (`compare_range_commit`): what a deploy shipped and how far
//! environments drifted are read from these rows, never from GitHub on a request.

use chrono::{DateTime, Utc};
use entity::{commit_info, compare_range, compare_range_commit};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, EntityTrait, NotSet, QueryFilter, QueryOrder, Set};

use super::{Conn, StoreResult, Writer};
use crate::events::{ListedCommit, Reverts};

/// Rows per insert statement (8 columns each: far below either engine's parameter limit).
const CHUNK: usize = 200;

/// Stores each commit's details once per repository (a commit listed again changes nothing).
pub async fn remember(
    db: &impl Writer,
    repository_key: &str,
    commits: &[ListedCommit],
    now: DateTime<Utc>,
) -> StoreResult<()> {
    for chunk in commits.chunks(CHUNK) {
        commit_info::Entity::insert_many(chunk.iter().map(|c| commit_info::ActiveModel {
            id: NotSet,
            repository_key: Set(repository_key.to_owned()),
            sha: Set(c.sha.clone()),
            parent_shas: Set(c.parents.join(" ")),
            title: Set(c.title.clone()),
            author_login: Set(c.author_login.clone()),
            author_name: Set(c.author_name.clone()),
            authored_at: Set(c.authored_at),
            reverts_sha: Set(c.reverts.sha.clone()),
            reverts_pull_request: Set(c.reverts.pull_request),
            recorded_at: Set(now),
        }))
        .on_conflict(
            OnConflict::columns([commit_info::Column::RepositoryKey, commit_info::Column::Sha])
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    }
    Ok(())
}

/// Lists `commits` in the range `range_id` from position `first` on.
pub(super) async fn list_in_range(
    db: &impl Writer,
    range_id: i64,
    first: i64,
    commits: &[ListedCommit],
) -> StoreResult<()> {
    for (offset, chunk) in commits.chunks(CHUNK).enumerate() {
        let start = first + (offset * CHUNK) as i64;
        compare_range_commit::Entity::insert_many(chunk.iter().enumerate().map(|(i, c)| {
            compare_range_commit::ActiveModel {
                range_id: Set(range_id),
                position: Set(start + i as i64),
                sha: Set(c.sha.clone()),
            }
        }))
        .on_conflict(
            OnConflict::columns([
                compare_range_commit::Column::RangeId,
                compare_range_commit::Column::Position,
            ])
            .do_nothing()
            .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    }
    Ok(())
}

/// A commit as stored: its details when a comparison listed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredCommit {
    pub sha: String,
    pub parents: Vec<String>,
    pub title: String,
    pub author_login: Option<String>,
    pub author_name: Option<String>,
    pub authored_at: Option<DateTime<Utc>>,
    pub reverts: Reverts,
}

/// What is stored of the comparison `base...head`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RangeListing {
    /// The compare status; `unrelated` when the two share no history.
    pub status: Option<String>,
    /// Every page was read (else `commits` is the part read so far).
    pub complete: bool,
    pub ahead_by: Option<i64>,
    pub behind_by: Option<i64>,
    /// The commits `head` has and `base` lacks, oldest first (GitHub's order).
    pub commits: Vec<StoredCommit>,
}

/// The stored listing of `base...head`, if any page of it was read.
pub async fn range_listing(
    db: &impl Conn,
    repository_key: &str,
    base: &str,
    head: &str,
) -> StoreResult<Option<RangeListing>> {
    let Some(range) = compare_range::Entity::find()
        .filter(compare_range::Column::RepositoryKey.eq(repository_key))
        .filter(compare_range::Column::BaseSha.eq(base))
        .filter(compare_range::Column::HeadSha.eq(head))
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    let listed = compare_range_commit::Entity::find()
        .filter(compare_range_commit::Column::RangeId.eq(range.id))
        .order_by_asc(compare_range_commit::Column::Position)
        .all(db)
        .await?;
    let shas: Vec<String> = listed.into_iter().map(|r| r.sha).collect();
    let mut details = details_of(db, repository_key, &shas).await?;
    let commits = shas
        .into_iter()
        .map(|sha| {
            details.remove(&sha).unwrap_or(StoredCommit {
                sha,
                parents: Vec::new(),
                title: String::new(),
                author_login: None,
                author_name: None,
                authored_at: None,
                reverts: Reverts::default(),
            })
        })
        .collect();
    Ok(Some(RangeListing {
        status: range.status,
        complete: range.complete,
        ahead_by: range.ahead_by,
        behind_by: range.behind_by,
        commits,
    }))
}

/// The stored details of `shas` in a repository (those a comparison listed), by SHA.
pub async fn details_of(
    db: &impl Conn,
    repository_key: &str,
    shas: &[String],
) -> StoreResult<std::collections::HashMap<String, StoredCommit>> {
    let mut found = std::collections::HashMap::with_capacity(shas.len());
    for chunk in shas.chunks(500) {
        let rows = commit_info::Entity::find()
            .filter(commit_info::Column::RepositoryKey.eq(repository_key))
            .filter(commit_info::Column::Sha.is_in(chunk.iter().cloned()))
            .all(db)
            .await?;
        for r in rows {
            found.insert(
                r.sha.clone(),
                StoredCommit {
                    sha: r.sha,
                    parents: r.parent_shas.split_whitespace().map(str::to_owned).collect(),
                    title: r.title,
                    author_login: r.author_login,
                    author_name: r.author_name,
                    authored_at: r.authored_at,
                    reverts: Reverts {
                        sha: r.reverts_sha,
                        pull_request: r.reverts_pull_request,
                    },
                },
            );
        }
    }
    Ok(found)
}
