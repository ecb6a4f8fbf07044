//! The permanent ancestry cache.

use chrono::{DateTime, Utc};
use entity::ancestry_fact::{ActiveModel, Column, Entity};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, EntityTrait, NotSet, QueryFilter, Set};

use super::{Conn, StoreResult};

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
    if candidates.is_empty() {
        return Ok(Vec::new());
    }
    let rows = Entity::find()
        .filter(Column::RepositoryKey.eq(repository_key))
        .filter(Column::DescendantSha.eq(descendant))
        .filter(Column::IsAncestor.eq(true))
        .filter(Column::AncestorSha.is_in(candidates.iter().cloned()))
        .all(db)
        .await?;
    Ok(rows.into_iter().map(|r| r.ancestor_sha).collect())
}

/// Stores facts that are not stored yet (a fact never changes, so an existing one is kept, even
/// when another process stores it at the same moment).
pub async fn insert_missing(
    db: &impl Conn,
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
