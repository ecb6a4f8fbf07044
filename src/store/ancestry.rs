//! The permanent ancestry cache, the progress of range comparisons, and each deploy's batch
//! outcome.

use chrono::{DateTime, Utc};
use entity::ancestry_fact::{ActiveModel, Column, Entity};
use entity::{compare_range, live_batch};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, EntityTrait, NotSet, QueryFilter, QuerySelect, Set};

use super::{Conn, StoreError, StoreResult, Writer};
use crate::events::ListedCommit;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fact {
    pub is_ancestor: bool,
    pub status: Option<String>,
}

pub async fn find(db: &impl Conn, repository_key: &str, ancestor: &str, descendant: &str) -> StoreResult<Option<Fact>> {
    let row = Entity::find()
        .filter(Column::RepositoryKey.eq(repository_key))
        .filter(Column::AncestorSha.eq(ancestor))
        .filter(Column::DescendantSha.eq(descendant))
        .one(db)
        .await?;
    Ok(row.map(|r| Fact {
        is_ancestor: r.is_ancestor,
        status: r.status,
    }))
}

/// What the cache knows about each of `candidates` being an ancestor of `descendant`.
pub async fn answers_for(
    db: &impl Conn,
    repository_key: &str,
    descendant: &str,
    candidates: &[String],
) -> StoreResult<Vec<(String, bool)>> {
    if candidates.is_empty() {
        return Ok(Vec::new());
    }
    let rows = Entity::find()
        .filter(Column::RepositoryKey.eq(repository_key))
        .filter(Column::DescendantSha.eq(descendant))
        .filter(Column::AncestorSha.is_in(candidates.iter().cloned()))
        .all(db)
        .await?;
    Ok(rows.into_iter().map(|r| (r.ancestor_sha, r.is_ancestor)).collect())
}

/// The ancestors of `descendant` among `candidates` that the cache knows.
pub async fn known_ancestors(
    db: &impl Conn,
    repository_key: &str,
    descendant: &str,
    candidates: &[String],
) -> StoreResult<Vec<String>> {
    known_with_answer(db, repository_key, descendant, candidates, true).await
}

/// The non-ancestors of `descendant` among `candidates` that the cache knows.
pub async fn known_non_ancestors(
    db: &impl Conn,
    repository_key: &str,
    descendant: &str,
    candidates: &[String],
) -> StoreResult<Vec<String>> {
    known_with_answer(db, repository_key, descendant, candidates, false).await
}

async fn known_with_answer(
    db: &impl Conn,
    repository_key: &str,
    descendant: &str,
    candidates: &[String],
    is_ancestor: bool,
) -> StoreResult<Vec<String>> {
    if candidates.is_empty() {
        return Ok(Vec::new());
    }
    let rows = Entity::find()
        .filter(Column::RepositoryKey.eq(repository_key))
        .filter(Column::DescendantSha.eq(descendant))
        .filter(Column::IsAncestor.eq(is_ancestor))
        .filter(Column::AncestorSha.is_in(candidates.iter().cloned()))
        .all(db)
        .await?;
    Ok(rows.into_iter().map(|r| r.ancestor_sha).collect())
}

/// Stores facts that are not stored yet (a fact never changes, so an existing one is kept, even
/// when another process stores it at the same moment).
pub async fn insert_missing(
    db: &impl Writer,
    repository_key: &str,
    facts: &[(String, String, bool, Option<&str>, &str)],
    now: DateTime<Utc>,
) -> StoreResult<usize> {
    let mut inserted = 0;
    for (ancestor, descendant, is_ancestor, status, source) in facts {
        let rows = Entity::insert(ActiveModel {
            id: NotSet,
            repository_key: Set(repository_key.to_owned()),
            ancestor_sha: Set(ancestor.clone()),
            descendant_sha: Set(descendant.clone()),
            is_ancestor: Set(*is_ancestor),
            status: Set(status.map(str::to_owned)),
            source: Set((*source).to_owned()),
            created_at: Set(now),
        })
        .on_conflict(
            OnConflict::columns([Column::RepositoryKey, Column::AncestorSha, Column::DescendantSha])
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
        inserted += rows as usize;
    }
    Ok(inserted)
}

/// How far the listing of `base...head` has been read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RangeProgress {
    /// The compare status; `unrelated` when the two have no common ancestor.
    pub status: Option<String>,
    /// Where the next page is (GitHub's `Link: rel="next"`).
    pub next_url: Option<String>,
    pub listed: i64,
    pub complete: bool,
    /// GitHub's `ahead_by` and `behind_by` (head against base), once a page was read.
    pub ahead_by: Option<i64>,
    pub behind_by: Option<i64>,
}

pub async fn find_range(
    db: &impl Conn,
    repository_key: &str,
    base: &str,
    head: &str,
) -> StoreResult<Option<RangeProgress>> {
    let row = compare_range::Entity::find()
        .filter(compare_range::Column::RepositoryKey.eq(repository_key))
        .filter(compare_range::Column::BaseSha.eq(base))
        .filter(compare_range::Column::HeadSha.eq(head))
        .one(db)
        .await?;
    Ok(row.map(|r| RangeProgress {
        status: r.status,
        next_url: r.next_url,
        listed: r.listed,
        complete: r.complete,
        ahead_by: r.ahead_by,
        behind_by: r.behind_by,
    }))
}

/// Records how far `base...head` has been read, with the commits of the page just read
/// (`page`, stored from position `progress.listed - page.len()`, and each commit's details once
/// per repository). Call it in the transaction that stores the page's facts, so the two never
/// disagree.
pub async fn save_range(
    db: &impl Writer,
    repository_key: &str,
    base: &str,
    head: &str,
    progress: &RangeProgress,
    page: &[ListedCommit],
    now: DateTime<Utc>,
) -> StoreResult<()> {
    compare_range::Entity::insert(compare_range::ActiveModel {
        id: NotSet,
        repository_key: Set(repository_key.to_owned()),
        base_sha: Set(base.to_owned()),
        head_sha: Set(head.to_owned()),
        status: Set(progress.status.clone()),
        next_url: Set(progress.next_url.clone()),
        listed: Set(progress.listed),
        complete: Set(progress.complete),
        ahead_by: Set(progress.ahead_by),
        behind_by: Set(progress.behind_by),
        created_at: Set(now),
        updated_at: Set(now),
    })
    .on_conflict(
        OnConflict::columns([
            compare_range::Column::RepositoryKey,
            compare_range::Column::BaseSha,
            compare_range::Column::HeadSha,
        ])
        .update_columns([
            compare_range::Column::Status,
            compare_range::Column::NextUrl,
            compare_range::Column::Listed,
            compare_range::Column::Complete,
            compare_range::Column::AheadBy,
            compare_range::Column::BehindBy,
            compare_range::Column::UpdatedAt,
        ])
        .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    if page.is_empty() {
        return Ok(());
    }
    let range_id = compare_range::Entity::find()
        .select_only()
        .column(compare_range::Column::Id)
        .filter(compare_range::Column::RepositoryKey.eq(repository_key))
        .filter(compare_range::Column::BaseSha.eq(base))
        .filter(compare_range::Column::HeadSha.eq(head))
        .into_tuple::<i64>()
        .one(db)
        .await?
        .ok_or_else(|| StoreError::Corrupt(format!("compare range {base}...{head} vanished")))?;
    let first = progress.listed - page.len() as i64;
    super::commits::remember(db, repository_key, page, now).await?;
    super::commits::list_in_range(db, range_id, first, page).await?;
    Ok(())
}

/// What a deploy's went-live batch did.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct BatchOutcome {
    /// `done` or `skipped`.
    pub state: String,
    pub note: Option<String>,
    pub github_calls: i32,
    pub updated_at: DateTime<Utc>,
}

pub async fn record_batch(db: &impl Writer, deployment_id: i64, outcome: &BatchOutcome) -> StoreResult<()> {
    live_batch::Entity::insert(live_batch::ActiveModel {
        id: NotSet,
        deployment_id: Set(deployment_id),
        state: Set(outcome.state.clone()),
        note: Set(outcome.note.clone()),
        github_calls: Set(outcome.github_calls),
        updated_at: Set(outcome.updated_at),
    })
    .on_conflict(
        OnConflict::column(live_batch::Column::DeploymentId)
            .update_columns([
                live_batch::Column::State,
                live_batch::Column::Note,
                live_batch::Column::GithubCalls,
                live_batch::Column::UpdatedAt,
            ])
            .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    Ok(())
}

pub async fn find_batch(db: &impl Conn, deployment_id: i64) -> StoreResult<Option<BatchOutcome>> {
    let row = live_batch::Entity::find()
        .filter(live_batch::Column::DeploymentId.eq(deployment_id))
        .one(db)
        .await?;
    Ok(row.map(|r| BatchOutcome {
        state: r.state,
        note: r.note,
        github_calls: r.github_calls,
        updated_at: r.updated_at,
    }))
}
