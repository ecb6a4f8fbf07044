//! Backfill rows: the backfill, its repositories with their cursors, and the staged items.

use chrono::{DateTime, Utc};
use entity::{backfill, backfill_item, backfill_repository};
use sea_orm::sea_query::{Expr, Func, OnConflict};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, NotSet, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};

use super::{Conn, StoreError, StoreResult, Writer};
use crate::backfill::{Backfill, BackfillState, RateLimitSeen};
use crate::types::RepoName;

pub async fn insert(
    db: &impl Writer,
    connection_id: i64,
    since: DateTime<Utc>,
    repositories: Option<&[RepoName]>,
    now: DateTime<Utc>,
) -> StoreResult<Backfill> {
    let repositories = repositories.map(|names| {
        serde_json::to_string(&names.iter().map(RepoName::as_str).collect::<Vec<_>>()).unwrap_or_default()
    });
    let row = backfill::ActiveModel {
        id: NotSet,
        connection_id: Set(connection_id),
        state: Set(BackfillState::Queued.as_str().to_owned()),
        step: Set(0),
        since: Set(since),
        repositories: Set(repositories),
        repositories_listed: Set(false),
        repositories_cursor: Set(None),
        repositories_total: Set(0),
        repositories_done: Set(0),
        deploys_imported: Set(0),
        github_calls: Set(0),
        rate_limit: Set(None),
        rate_remaining: Set(None),
        rate_reset: Set(None),
        note: Set(None),
        created_at: Set(now),
        started_at: Set(None),
        updated_at: Set(now),
        finished_at: Set(None),
    };
    into_backfill(row.insert(db).await?)
}

pub async fn find(db: &impl Conn, id: i64) -> StoreResult<Option<Backfill>> {
    backfill::Entity::find_by_id(id)
        .one(db)
        .await?
        .map(into_backfill)
        .transpose()
}

/// A connection's backfills, newest first.
pub async fn for_connection(db: &impl Conn, connection_id: i64, limit: u64) -> StoreResult<Vec<Backfill>> {
    backfill::Entity::find()
        .filter(backfill::Column::ConnectionId.eq(connection_id))
        .order_by_desc(backfill::Column::Id)
        .limit(limit)
        .all(db)
        .await?
        .into_iter()
        .map(into_backfill)
        .collect()
}

/// The connection's backfill that has not finished, if any.
pub async fn unfinished(db: &impl Conn, connection_id: i64) -> StoreResult<Option<Backfill>> {
    backfill::Entity::find()
        .filter(backfill::Column::ConnectionId.eq(connection_id))
        .filter(backfill::Column::State.is_in(BackfillState::UNFINISHED.iter().map(|s| s.as_str())))
        .order_by_asc(backfill::Column::Id)
        .one(db)
        .await?
        .map(into_backfill)
        .transpose()
}

/// What a step changes on the backfill row.
#[derive(Debug, Default, Clone)]
pub struct Progress {
    pub state: Option<BackfillState>,
    pub github_calls: i64,
    pub deploys_imported: i64,
    pub repositories_done: i64,
    pub repositories_total: Option<i64>,
    pub repositories_listed: Option<bool>,
    /// `Some(None)` clears the cursor.
    pub repositories_cursor: Option<Option<String>>,
    pub rate: Option<RateLimitSeen>,
    /// `Some(None)` clears the note.
    pub note: Option<Option<String>>,
    pub started: bool,
    pub finished: bool,
}

/// Applies `progress` and moves the backfill to the next step, if it is still at `step`.
/// `false` when another worker got there first: the caller's transaction must roll back.
pub async fn advance(
    db: &impl Writer,
    id: i64,
    step: i64,
    progress: &Progress,
    now: DateTime<Utc>,
) -> StoreResult<bool> {
    let mut update = backfill::Entity::update_many()
        .col_expr(backfill::Column::Step, Expr::col(backfill::Column::Step).add(1))
        .col_expr(
            backfill::Column::GithubCalls,
            Expr::col(backfill::Column::GithubCalls).add(progress.github_calls),
        )
        .col_expr(
            backfill::Column::DeploysImported,
            Expr::col(backfill::Column::DeploysImported).add(progress.deploys_imported),
        )
        .col_expr(
            backfill::Column::RepositoriesDone,
            Expr::col(backfill::Column::RepositoriesDone).add(progress.repositories_done),
        )
        .col_expr(backfill::Column::UpdatedAt, Expr::value(now));
    if let Some(state) = progress.state {
        update = update.col_expr(backfill::Column::State, Expr::value(state.as_str()));
    }
    if let Some(total) = progress.repositories_total {
        update = update.col_expr(backfill::Column::RepositoriesTotal, Expr::value(total));
    }
    if let Some(listed) = progress.repositories_listed {
        update = update.col_expr(backfill::Column::RepositoriesListed, Expr::value(listed));
    }
    if let Some(cursor) = &progress.repositories_cursor {
        update = update.col_expr(backfill::Column::RepositoriesCursor, Expr::value(cursor.clone()));
    }
    if let Some(rate) = &progress.rate {
        update = update
            .col_expr(backfill::Column::RateLimit, Expr::value(Some(rate.limit)))
            .col_expr(backfill::Column::RateRemaining, Expr::value(Some(rate.remaining)))
            .col_expr(backfill::Column::RateReset, Expr::value(Some(rate.reset)));
    }
    if let Some(note) = &progress.note {
        update = update.col_expr(backfill::Column::Note, Expr::value(note.clone()));
    }
    if progress.started {
        update = update.col_expr(
            backfill::Column::StartedAt,
            // Built, not written out: a `?` in custom SQL is no placeholder on PostgreSQL.
            Func::coalesce([Expr::col(backfill::Column::StartedAt).into(), Expr::value(now)]).into(),
        );
    }
    if progress.finished {
        update = update.col_expr(backfill::Column::FinishedAt, Expr::value(Some(now)));
    }
    let result = update
        .filter(backfill::Column::Id.eq(id))
        .filter(backfill::Column::Step.eq(step))
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}

/// A repository a backfill reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepositoryCursor {
    pub id: i64,
    pub repository: RepoName,
    pub default_branch: Option<String>,
    pub phase: String,
    pub cursor: Option<String>,
    pub pages: i64,
    pub imported: i64,
}

/// Adds the repositories to read (a repository listed twice is kept once).
pub async fn add_repositories(
    db: &impl Writer,
    backfill_id: i64,
    repositories: &[(RepoName, Option<String>)],
) -> StoreResult<()> {
    if repositories.is_empty() {
        return Ok(());
    }
    let rows = repositories
        .iter()
        .map(|(name, default_branch)| backfill_repository::ActiveModel {
            id: NotSet,
            backfill_id: Set(backfill_id),
            repository: Set(name.as_str().to_owned()),
            repository_key: Set(name.key().to_owned()),
            default_branch: Set(default_branch.clone()),
            phase: Set("deployments".to_owned()),
            cursor: Set(None),
            pages: Set(0),
            imported: Set(0),
        });
    // One statement a page; `uq_backfill_repository` keeps a repository listed twice once.
    backfill_repository::Entity::insert_many(rows)
        .on_conflict(
            OnConflict::columns([
                backfill_repository::Column::BackfillId,
                backfill_repository::Column::RepositoryKey,
            ])
            .do_nothing()
            .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    Ok(())
}

/// The first repository of the backfill that is not done, in the order they were listed.
pub async fn next_repository(db: &impl Conn, backfill_id: i64) -> StoreResult<Option<RepositoryCursor>> {
    backfill_repository::Entity::find()
        .filter(backfill_repository::Column::BackfillId.eq(backfill_id))
        .filter(backfill_repository::Column::Phase.ne("done"))
        .order_by_asc(backfill_repository::Column::Id)
        .one(db)
        .await?
        .map(|row| {
            Ok(RepositoryCursor {
                repository: RepoName::parse(&row.repository).map_err(|m| {
                    StoreError::Corrupt(format!("backfill repository {}: {:?} {m}", row.id, row.repository))
                })?,
                id: row.id,
                default_branch: row.default_branch,
                phase: row.phase,
                cursor: row.cursor,
                pages: row.pages,
                imported: row.imported,
            })
        })
        .transpose()
}

pub async fn count_repositories(db: &impl Conn, backfill_id: i64) -> StoreResult<i64> {
    let count = backfill_repository::Entity::find()
        .filter(backfill_repository::Column::BackfillId.eq(backfill_id))
        .count(db)
        .await?;
    Ok(i64::try_from(count).unwrap_or(i64::MAX))
}

/// Moves a repository to `phase` at `cursor`, adding `imported` deploys and `pages` read.
pub async fn set_repository(
    db: &impl Writer,
    id: i64,
    phase: &str,
    cursor: Option<&str>,
    imported: i64,
    pages: i64,
) -> StoreResult<()> {
    backfill_repository::Entity::update_many()
        .col_expr(
            backfill_repository::Column::Pages,
            Expr::col(backfill_repository::Column::Pages).add(pages),
        )
        .col_expr(backfill_repository::Column::Phase, Expr::value(phase))
        .col_expr(
            backfill_repository::Column::Cursor,
            Expr::value(cursor.map(str::to_owned)),
        )
        .col_expr(
            backfill_repository::Column::Imported,
            Expr::col(backfill_repository::Column::Imported).add(imported),
        )
        .filter(backfill_repository::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

/// Stages items read from GitHub, to be applied oldest first.
pub async fn stage(
    db: &impl Writer,
    backfill_id: i64,
    repository_key: &str,
    items: &[(DateTime<Utc>, String)],
) -> StoreResult<()> {
    if items.is_empty() {
        return Ok(());
    }
    let rows = items.iter().map(|(at, payload)| backfill_item::ActiveModel {
        id: NotSet,
        backfill_id: Set(backfill_id),
        repository_key: Set(repository_key.to_owned()),
        occurred_at: Set(*at),
        payload: Set(payload.clone()),
    });
    backfill_item::Entity::insert_many(rows)
        .exec_without_returning(db)
        .await?;
    Ok(())
}

/// The oldest `limit` staged items of a repository, as (id, payload).
pub async fn staged(
    db: &impl Conn,
    backfill_id: i64,
    repository_key: &str,
    limit: u64,
) -> StoreResult<Vec<(i64, String)>> {
    Ok(backfill_item::Entity::find()
        .filter(backfill_item::Column::BackfillId.eq(backfill_id))
        .filter(backfill_item::Column::RepositoryKey.eq(repository_key))
        .order_by_asc(backfill_item::Column::OccurredAt)
        .order_by_asc(backfill_item::Column::Id)
        .limit(limit)
        .all(db)
        .await?
        .into_iter()
        .map(|row| (row.id, row.payload))
        .collect())
}

pub async fn unstage(db: &impl Writer, ids: &[i64]) -> StoreResult<()> {
    if ids.is_empty() {
        return Ok(());
    }
    backfill_item::Entity::delete_many()
        .filter(backfill_item::Column::Id.is_in(ids.iter().copied()))
        .exec(db)
        .await?;
    Ok(())
}

fn into_backfill(row: backfill::Model) -> StoreResult<Backfill> {
    let state = BackfillState::parse(&row.state)
        .ok_or_else(|| StoreError::Corrupt(format!("backfill {}: unknown state {:?}", row.id, row.state)))?;
    let repositories = match &row.repositories {
        None => None,
        Some(raw) => Some(
            serde_json::from_str::<Vec<String>>(raw)
                .ok()
                .and_then(|names| {
                    names
                        .iter()
                        .map(|n| RepoName::parse(n).ok())
                        .collect::<Option<Vec<_>>>()
                })
                .ok_or_else(|| StoreError::Corrupt(format!("backfill {}: repositories {raw:?}", row.id)))?,
        ),
    };
    let rate = match (row.rate_limit, row.rate_remaining, row.rate_reset) {
        (Some(limit), Some(remaining), Some(reset)) => Some(RateLimitSeen {
            limit,
            remaining,
            reset,
        }),
        _ => None,
    };
    Ok(Backfill {
        id: row.id,
        connection_id: row.connection_id,
        state,
        step: row.step,
        since: row.since,
        repositories,
        repositories_listed: row.repositories_listed,
        repositories_cursor: row.repositories_cursor,
        repositories_total: row.repositories_total,
        repositories_done: row.repositories_done,
        deploys_imported: row.deploys_imported,
        github_calls: row.github_calls,
        rate,
        note: row.note,
        created_at: row.created_at,
        started_at: row.started_at,
        updated_at: row.updated_at,
        finished_at: row.finished_at,
    })
}

pub async fn has_repository(db: &impl Conn, backfill_id: i64, repository_key: &str) -> StoreResult<bool> {
    let count = backfill_repository::Entity::find()
        .filter(backfill_repository::Column::BackfillId.eq(backfill_id))
        .filter(backfill_repository::Column::RepositoryKey.eq(repository_key))
        .count(db)
        .await?;
    Ok(count > 0)
}

/// Sets the note of a backfill still at `step`, without moving it on.
pub async fn set_note(db: &impl Writer, id: i64, step: i64, note: &str, now: DateTime<Utc>) -> StoreResult<()> {
    backfill::Entity::update_many()
        .col_expr(backfill::Column::Note, Expr::value(Some(note.to_owned())))
        .col_expr(backfill::Column::UpdatedAt, Expr::value(now))
        .filter(backfill::Column::Id.eq(id))
        .filter(backfill::Column::Step.eq(step))
        .exec(db)
        .await?;
    Ok(())
}
