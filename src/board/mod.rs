//! The live board: what is live where, one row per repository and one column per environment,
//! and how far neighbouring environments have drifted apart; and a repository's environments over
//! time.
//!
//! A board is built from a fixed number of reads whatever its size (the connections, the live
//! deploys with their titles, the attempts newer than them, the stored drift: `store::board`),
//! never one per row or cell. Drift is only read here: the `drift` module
//! computes it. A stored drift row that was computed for other SHAs than the ones live now, or a
//! missing one, shows as `computing`, never as in sync.
//!
//! Must not: call GitHub, write anything, or know HTTP.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::connections::environments::{self, Placed};
use crate::connections::Connection;
use crate::store::board::{self as rows, BoardQuery};
use crate::store::{self, Store, StoreResult};
use crate::types::{RepoName, Scope};

/// The board, a section per connection (each connection orders its environments its own way).
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Board {
    pub connections: Vec<Section>,
}

/// One connection's repositories: its environments left to right, and a row per repository.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
#[schema(as = BoardSection)]
pub struct Section {
    pub connection_id: i64,
    pub account: String,
    pub environments: Vec<String>,
    pub rows: Vec<Row>,
}

/// One repository: a cell per environment of the section (`None` where nothing is live).
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
#[schema(as = BoardRow)]
pub struct Row {
    pub repository: String,
    pub cells: Vec<Option<Cell>>,
}

/// What is live in one environment of a repository.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
#[schema(as = BoardCell)]
pub struct Cell {
    pub environment: String,
    pub live: Live,
    /// The newest attempt in this environment, when it is not the live deploy (failed,
    /// deploying, rolled back, …).
    pub attempt: Option<Attempt>,
    /// How this environment stands to the repository's environment on its left.
    pub drift: Option<Drift>,
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
#[schema(as = BoardLive)]
pub struct Live {
    pub deployment_id: i64,
    pub sha: String,
    pub short_sha: String,
    /// The merged PR whose merge commit is the SHA, if one is stored.
    pub pull_request: Option<i64>,
    /// That PR's title, else the commit's first line, if either is stored.
    pub title: Option<String>,
    /// When it went live (its completion, else its deploy time).
    pub since: DateTime<Utc>,
    pub creator: Option<String>,
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
#[schema(as = BoardAttempt)]
pub struct Attempt {
    pub deployment_id: i64,
    pub status: String,
    pub sha: String,
    pub at: DateTime<Utc>,
}

/// What the left environment runs that this one does not.
#[derive(Clone, Debug, Serialize, PartialEq, Eq, utoipa::ToSchema)]
#[schema(as = BoardDrift)]
pub struct Drift {
    pub from_environment: String,
    /// `in_sync`, `ahead` (the left one has commits this one lacks), `diverged` (this one has
    /// commits the left one lacks), `unrelated`, `unread` (GitHub could not say), or `computing`
    /// (nothing stored yet for the SHAs live now).
    pub state: String,
    /// Commits live on the left and not here.
    pub commits: i64,
    /// Commits live here and not on the left.
    pub behind_by: i64,
    /// Merged PRs live on the left and not here.
    pub pull_requests: i64,
    /// When the oldest of those PRs was merged.
    pub oldest_merged_at: Option<DateTime<Utc>>,
}

/// What the board shows: one repository, one connection, or everything the caller may see.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    pub repository: Option<RepoName>,
    pub connection: Option<i64>,
}

/// The connections of `scope` (and `filter.connection`) a board shows: not deleted.
async fn visible_connections(store: &Store, scope: Scope, connection: Option<i64>) -> StoreResult<Vec<Connection>> {
    let all = store::connections::list(store.conn()).await?;
    Ok(all
        .into_iter()
        .filter(|c| c.deleted_at.is_none())
        .filter(|c| scope.includes(crate::types::ConnectionId(c.id)))
        .filter(|c| connection.is_none_or(|id| id == c.id))
        .collect())
}

/// The board for `scope`, narrowed by `filter`.
pub async fn build(store: &Store, scope: Scope, filter: &Filter) -> StoreResult<Board> {
    let connections = visible_connections(store, scope, filter.connection).await?;
    if connections.is_empty() {
        return Ok(Board { connections: vec![] });
    }
    let ids: Vec<i64> = connections.iter().map(|c| c.id).collect();
    let query = BoardQuery {
        connections: Some(ids),
        repository_key: filter.repository.as_ref().map(|r| r.key().to_owned()),
    };
    let db = store.conn();
    let live = rows::live(db, &query).await?;
    let attempts = rows::newer_attempts(db, &query).await?;
    let drift = rows::drift(db, &query).await?;
    Ok(assemble(&connections, live, attempts, drift))
}

type DriftKey = (i64, String, String, String);
type DriftRow = rows::DriftCell;

/// The board from its rows (pure, so its shape is tested without a database).
pub fn assemble(
    connections: &[Connection],
    live: Vec<rows::LiveRow>,
    attempts: Vec<rows::AttemptRow>,
    drift: Vec<DriftRow>,
) -> Board {
    // Rows come newest first per live deploy: the first is the newest attempt.
    let mut newest: HashMap<i64, rows::AttemptRow> = HashMap::new();
    for attempt in attempts {
        newest.entry(attempt.live_id).or_insert(attempt);
    }
    let drift: HashMap<DriftKey, DriftRow> = drift
        .into_iter()
        .map(|d| {
            (
                (
                    d.connection_id,
                    d.repository_key.clone(),
                    d.from_environment.clone(),
                    d.to_environment.clone(),
                ),
                d,
            )
        })
        .collect();
    // connection → repository key → its live deploys.
    let mut by_connection: HashMap<i64, BTreeMap<String, Vec<rows::LiveRow>>> = HashMap::new();
    for row in live {
        by_connection
            .entry(row.connection_id)
            .or_default()
            .entry(row.repository_key.clone())
            .or_default()
            .push(row);
    }
    let mut sections = Vec::new();
    for connection in connections {
        let Some(repositories) = by_connection.remove(&connection.id) else {
            continue;
        };
        let settings = &connection.settings;
        let mut placed: Vec<Placed> = Vec::new();
        for row in repositories.values().flatten() {
            match placed.iter_mut().find(|p| p.name == row.environment) {
                Some(p) => p.production_flag |= row.production_environment,
                None => placed.push(Placed {
                    name: row.environment.clone(),
                    production_flag: row.production_environment,
                }),
            }
        }
        let columns = environments::order(settings, &placed);
        let rows = repositories
            .into_values()
            .map(|lives| {
                let repository = lives.first().map(|l| l.repository.clone()).unwrap_or_default();
                let mut cells: Vec<Option<Cell>> = vec![None; columns.len()];
                // The repository's own environments in order: drift is between these neighbours.
                let mut previous: Option<(String, String)> = None;
                for column in 0..columns.len() {
                    let Some(l) = lives.iter().find(|l| l.environment == columns[column]) else {
                        continue;
                    };
                    let drift = previous
                        .as_ref()
                        .map(|(left, left_sha)| drift_between(&drift, l, left, left_sha));
                    previous = Some((l.environment.clone(), l.sha.clone()));
                    cells[column] = Some(Cell {
                        environment: l.environment.clone(),
                        attempt: newest.remove(&l.id).map(|a| Attempt {
                            deployment_id: a.id,
                            status: a.status,
                            sha: a.sha,
                            at: a.deploy_time,
                        }),
                        drift,
                        live: live_of(l),
                    });
                }
                Row { repository, cells }
            })
            .collect();
        sections.push(Section {
            connection_id: connection.id,
            account: connection.account.login.clone(),
            environments: columns,
            rows,
        });
    }
    Board { connections: sections }
}

fn live_of(l: &rows::LiveRow) -> Live {
    let title = l
        .pr_title
        .clone()
        .or_else(|| {
            l.commit_title
                .as_deref()
                .and_then(|t| t.lines().next())
                .map(str::to_owned)
        })
        .filter(|t| !t.trim().is_empty());
    Live {
        deployment_id: l.id,
        short_sha: l.sha.chars().take(7).collect(),
        sha: l.sha.clone(),
        pull_request: l.pr_title.as_ref().and(l.pr_number),
        title,
        since: l.completed_at.unwrap_or(l.deploy_time),
        creator: l.creator.clone(),
    }
}

/// The stored drift from `left` to `right`'s environment, if it was computed for the SHAs live
/// now; else `computing`.
fn drift_between(stored: &HashMap<DriftKey, DriftRow>, right: &rows::LiveRow, left: &str, left_sha: &str) -> Drift {
    let key = (
        right.connection_id,
        right.repository_key.clone(),
        left.to_owned(),
        right.environment.clone(),
    );
    match stored.get(&key) {
        Some(d) if d.from_sha == left_sha && d.to_sha == right.sha => Drift {
            from_environment: left.to_owned(),
            state: d.state.clone(),
            commits: d.ahead_by,
            behind_by: d.behind_by,
            pull_requests: d.pull_requests,
            oldest_merged_at: d.oldest_merged_at,
        },
        _ => Drift {
            from_environment: left.to_owned(),
            state: "computing".to_owned(),
            commits: 0,
            behind_by: 0,
            pull_requests: 0,
            oldest_merged_at: None,
        },
    }
}

/// A repository's environments over time.
#[derive(Clone, Debug, Serialize)]
pub struct RepositoryHistory {
    pub repository: String,
    pub environments: Vec<EnvironmentHistory>,
}

#[derive(Clone, Debug, Serialize)]
pub struct EnvironmentHistory {
    pub environment: String,
    pub connection_id: i64,
    /// Deploys that went live here, newest first; the first is live now unless it was rolled
    /// back or superseded without a successor on the list.
    pub deploys: Vec<WentLive>,
}

#[derive(Clone, Debug, Serialize)]
pub struct WentLive {
    pub deployment_id: i64,
    pub sha: String,
    pub short_sha: String,
    pub status: String,
    pub creator: Option<String>,
    pub since: DateTime<Utc>,
    /// When the next deploy on the list replaced it (`None`: still live, or its successor is
    /// older than the list).
    pub until: Option<DateTime<Utc>>,
}

/// How many deploys per environment a repository's page lists.
pub const HISTORY_PER_ENVIRONMENT: i64 = 50;

/// `repository`'s environments over time as `scope` may see them; `None` when it has no deploy
/// there (to a caller limited to other connections, it does not exist).
pub async fn repository(store: &Store, scope: Scope, repository: &RepoName) -> StoreResult<Option<RepositoryHistory>> {
    let connections = visible_connections(store, scope, None).await?;
    let ids: Vec<i64> = connections.iter().map(|c| c.id).collect();
    let went = rows::went_live(store.conn(), Some(&ids), repository.key(), HISTORY_PER_ENVIRONMENT).await?;
    let Some(first) = went.first() else {
        return Ok(None);
    };
    let name = first.repository.clone();
    let mut by_env: BTreeMap<(i64, String), Vec<rows::WentLiveRow>> = BTreeMap::new();
    for row in went {
        by_env
            .entry((row.connection_id, row.environment.clone()))
            .or_default()
            .push(row);
    }
    let mut environments = Vec::new();
    for connection in &connections {
        let mine: Vec<_> = by_env.keys().filter(|(c, _)| *c == connection.id).cloned().collect();
        if mine.is_empty() {
            continue;
        }
        let placed: Vec<Placed> = mine
            .iter()
            .map(|key| Placed {
                name: key.1.clone(),
                production_flag: by_env[key].iter().any(|r| r.production_environment),
            })
            .collect();
        for environment in environments::order(&connection.settings, &placed) {
            let Some(rows) = by_env.remove(&(connection.id, environment.clone())) else {
                continue;
            };
            let mut deploys: Vec<WentLive> = Vec::with_capacity(rows.len());
            let mut newer_since: Option<DateTime<Utc>> = None;
            for r in rows {
                let since = r.completed_at.unwrap_or(r.deploy_time);
                let until = if r.status == "live" { None } else { newer_since };
                deploys.push(WentLive {
                    deployment_id: r.id,
                    short_sha: r.sha.chars().take(7).collect(),
                    sha: r.sha,
                    status: r.status,
                    creator: r.creator,
                    since,
                    until,
                });
                newer_since = Some(since);
            }
            environments.push(EnvironmentHistory {
                environment,
                connection_id: connection.id,
                deploys,
            });
        }
    }
    Ok(Some(RepositoryHistory {
        repository: name,
        environments,
    }))
}
