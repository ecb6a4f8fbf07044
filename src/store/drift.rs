//! Drift rows: for each pair of neighbouring environments of a repository, what the left one
//! runs that the right one does not (computed by the `drift.recompute` job, read by the board).

use chrono::{DateTime, Utc};
use entity::drift::{ActiveModel, Column, Entity, Model};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, Condition, EntityTrait, NotSet, QueryFilter, QueryOrder, Set};

use super::{Conn, StoreResult, Writer};

/// One pair's drift as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DriftRow {
    pub connection_id: i64,
    pub repository: String,
    pub repository_key: String,
    pub from_environment: String,
    pub to_environment: String,
    pub from_deployment_id: Option<i64>,
    pub to_deployment_id: Option<i64>,
    pub from_sha: String,
    pub to_sha: String,
    /// `in_sync`, `ahead`, `diverged`, `unrelated` or `unread`.
    pub state: String,
    pub ahead_by: i64,
    pub behind_by: i64,
    pub pull_requests: i64,
    pub oldest_merged_at: Option<DateTime<Utc>>,
    pub note: Option<String>,
    pub computed_at: DateTime<Utc>,
}

impl From<Model> for DriftRow {
    fn from(r: Model) -> Self {
        Self {
            connection_id: r.connection_id,
            repository: r.repository,
            repository_key: r.repository_key,
            from_environment: r.from_environment,
            to_environment: r.to_environment,
            from_deployment_id: r.from_deployment_id,
            to_deployment_id: r.to_deployment_id,
            from_sha: r.from_sha,
            to_sha: r.to_sha,
            state: r.state,
            ahead_by: r.ahead_by,
            behind_by: r.behind_by,
            pull_requests: r.pull_requests,
            oldest_merged_at: r.oldest_merged_at,
            note: r.note,
            computed_at: r.computed_at,
        }
    }
}

/// Stores a pair's drift, replacing what was stored for the pair.
pub async fn save(db: &impl Writer, row: &DriftRow) -> StoreResult<()> {
    Entity::insert(ActiveModel {
        id: NotSet,
        connection_id: Set(row.connection_id),
        repository: Set(row.repository.clone()),
        repository_key: Set(row.repository_key.clone()),
        from_environment: Set(row.from_environment.clone()),
        to_environment: Set(row.to_environment.clone()),
        from_deployment_id: Set(row.from_deployment_id),
        to_deployment_id: Set(row.to_deployment_id),
        from_sha: Set(row.from_sha.clone()),
        to_sha: Set(row.to_sha.clone()),
        state: Set(row.state.clone()),
        ahead_by: Set(row.ahead_by),
        behind_by: Set(row.behind_by),
        pull_requests: Set(row.pull_requests),
        oldest_merged_at: Set(row.oldest_merged_at),
        note: Set(row.note.clone()),
        computed_at: Set(row.computed_at),
    })
    .on_conflict(
        OnConflict::columns([
            Column::ConnectionId,
            Column::RepositoryKey,
            Column::FromEnvironment,
            Column::ToEnvironment,
        ])
        .update_columns([
            Column::Repository,
            Column::FromDeploymentId,
            Column::ToDeploymentId,
            Column::FromSha,
            Column::ToSha,
            Column::State,
            Column::AheadBy,
            Column::BehindBy,
            Column::PullRequests,
            Column::OldestMergedAt,
            Column::Note,
            Column::ComputedAt,
        ])
        .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// Removes a repository's pairs other than `keep` (environments that are no longer neighbours).
pub async fn remove_others(
    db: &impl Writer,
    connection_id: i64,
    repository_key: &str,
    keep: &[(String, String)],
) -> StoreResult<()> {
    let mut condition = Condition::all()
        .add(Column::ConnectionId.eq(connection_id))
        .add(Column::RepositoryKey.eq(repository_key));
    for (from, to) in keep {
        condition = condition.add(
            Condition::any()
                .add(Column::FromEnvironment.ne(from.as_str()))
                .add(Column::ToEnvironment.ne(to.as_str())),
        );
    }
    Entity::delete_many().filter(condition).exec(db).await?;
    Ok(())
}

/// The stored drift of the given connections' repositories (all of them when `connections` is
/// `None`), optionally only for `repository_keys`.
pub async fn list(
    db: &impl Conn,
    connections: Option<&[i64]>,
    repository_keys: Option<&[String]>,
) -> StoreResult<Vec<DriftRow>> {
    let mut query = Entity::find();
    if let Some(ids) = connections {
        query = query.filter(Column::ConnectionId.is_in(ids.iter().copied()));
    }
    if let Some(keys) = repository_keys {
        query = query.filter(Column::RepositoryKey.is_in(keys.iter().cloned()));
    }
    let rows = query
        .order_by_asc(Column::RepositoryKey)
        .order_by_asc(Column::Id)
        .all(db)
        .await?;
    Ok(rows.into_iter().map(DriftRow::from).collect())
}

/// One pair's stored drift.
pub async fn find(
    db: &impl Conn,
    connection_id: i64,
    repository_key: &str,
    from: &str,
    to: &str,
) -> StoreResult<Option<DriftRow>> {
    let row = Entity::find()
        .filter(Column::ConnectionId.eq(connection_id))
        .filter(Column::RepositoryKey.eq(repository_key))
        .filter(Column::FromEnvironment.eq(from))
        .filter(Column::ToEnvironment.eq(to))
        .one(db)
        .await?;
    Ok(row.map(DriftRow::from))
}

/// A live deploy, as drift needs it: the end of a pair.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveEnd {
    pub deployment_id: i64,
    pub environment: String,
    pub sha: String,
    pub production_environment: bool,
}

/// At most this many live deploys of one repository are read (one per environment in practice).
const LIVE_LIMIT: u64 = 1_000;

/// The repository's live deploys in a connection, the most recently live first.
pub async fn live_ends(db: &impl Conn, connection_id: i64, repository_key: &str) -> StoreResult<Vec<LiveEnd>> {
    use entity::deployment::{Column as D, Entity as Deployments};
    use sea_orm::QuerySelect;
    let rows = Deployments::find()
        .filter(D::ConnectionId.eq(connection_id))
        .filter(D::RepositoryKey.eq(repository_key))
        .filter(D::Status.eq("live"))
        .order_by_desc(D::CompletedAt)
        .order_by_desc(D::Id)
        .limit(LIVE_LIMIT)
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| LiveEnd {
            deployment_id: r.id,
            environment: r.environment,
            sha: r.sha,
            production_environment: r.production_environment,
        })
        .collect())
}

/// The connection's repositories (their names as stored) that have a live deploy in two or more
/// environments: those that have drift.
pub async fn repositories_with_pairs(db: &impl Conn, connection_id: i64) -> StoreResult<Vec<String>> {
    use entity::deployment::{Column as D, Entity as Deployments};
    use sea_orm::QuerySelect;
    let rows: Vec<(String, String, String)> = Deployments::find()
        .select_only()
        .column(D::RepositoryKey)
        .column(D::Repository)
        .column(D::Environment)
        .filter(D::ConnectionId.eq(connection_id))
        .filter(D::Status.eq("live"))
        .distinct()
        .order_by_asc(D::RepositoryKey)
        .into_tuple()
        .all(db)
        .await?;
    // A repository's name may be stored in more than one spelling: environments count per key.
    let mut environments: std::collections::BTreeMap<&str, (std::collections::BTreeSet<&str>, &str)> =
        std::collections::BTreeMap::new();
    for (key, repository, environment) in &rows {
        let entry = environments
            .entry(key.as_str())
            .or_insert_with(|| (std::collections::BTreeSet::new(), repository.as_str()));
        entry.0.insert(environment.as_str());
    }
    let found = environments
        .into_values()
        .filter(|(envs, _)| envs.len() >= 2)
        .map(|(_, repository)| repository.to_owned())
        .collect();
    Ok(found)
}
