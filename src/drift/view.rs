//! A repository's drift as `GET /api/drift` tells it: the stored rows with the pull requests and
//! loose commits of each pair, read from the stored range. Never calls GitHub.
//!
//! A neighbouring pair is answered from its row (`pending` before the first recompute stored
//! one). An explicit pair that is not neighbouring (`dev` → `production` past `staging`) is
//! answered from its range when that range is stored (some deploy's batch or an earlier pair read
//! it), computed on the spot; otherwise the answer is a conflict, since reading it would take a
//! GitHub call.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{live_environments, measure, neighbours, DriftState, Measured};
use crate::ancestry::AncestryError;
use crate::connections::Connection;
use crate::store::drift::{self as rows, DriftRow, LiveEnd};
use crate::store::{Store, StoreError};
use crate::types::{CommitSha, RepoName};

/// At most this many pull requests, and as many loose commits, are listed per pair (the counts
/// are whole).
pub const LIST_LIMIT: usize = 250;

/// Which pairs are asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Asked {
    /// Every neighbouring pair.
    Neighbours,
    /// One pair, `from` (left) over `to` (right).
    Pair { from: String, to: String },
}

#[derive(Debug, thiserror::Error)]
pub enum ViewError {
    #[error("{0} has no live deploy of this repository")]
    NoLiveDeploy(String),
    #[error("{from} and {to} are not neighbouring environments and their comparison is not stored (drift is computed between neighbours)")]
    NotStored { from: String, to: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("reading the stored comparison: {0}")]
    Ancestry(AncestryError),
}

impl From<AncestryError> for ViewError {
    fn from(error: AncestryError) -> Self {
        match error {
            AncestryError::Store(store) => Self::Store(store),
            other => Self::Ancestry(other),
        }
    }
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct DriftView {
    pub repository: String,
    /// The environments with a live deploy, left to right.
    pub environments: Vec<EndView>,
    pub pairs: Vec<PairView>,
}

/// One end of a pair: an environment and the deploy the answer is about.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
#[schema(as = DriftEndView)]
pub struct EndView {
    pub environment: String,
    pub deployment_id: Option<i64>,
    pub sha: String,
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
#[schema(as = DriftPairView)]
pub struct PairView {
    pub from: EndView,
    pub to: EndView,
    /// Whether the two are consecutive in the environment order.
    pub neighbours: bool,
    /// `in_sync`, `ahead`, `diverged`, `unrelated`, `unread`, or `pending` (no recompute yet).
    pub state: String,
    pub ahead_by: i64,
    pub behind_by: i64,
    pub pull_request_count: i64,
    pub oldest_merged_at: Option<DateTime<Utc>>,
    pub oldest_merged_age_seconds: Option<i64>,
    /// When the stored row was computed; `null` when answered on the spot or pending.
    pub computed_at: Option<DateTime<Utc>>,
    /// The answer's SHAs are the environments' live SHAs now (else a recompute is due).
    pub current: bool,
    pub note: Option<String>,
    pub pull_requests: Vec<PullRequestView>,
    /// The commits no known pull request owns.
    pub commits: Vec<CommitView>,
    pub commit_count: i64,
    /// A list was cut at [`LIST_LIMIT`].
    pub truncated: bool,
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
#[schema(as = DriftPullRequestView)]
pub struct PullRequestView {
    pub number: i64,
    pub title: String,
    pub author: Option<String>,
    pub merged_at: DateTime<Utc>,
    pub url: String,
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
#[schema(as = DriftCommitView)]
pub struct CommitView {
    pub sha: String,
    pub title: String,
    pub author: Option<String>,
    pub authored_at: Option<DateTime<Utc>>,
    /// `null` when the stored SHA is not a SHA (never linked).
    pub url: Option<String>,
}

/// The asked pairs of `repository`. `web_url` is where people browse GitHub.
pub async fn view(
    store: &Store,
    connection: &Connection,
    repository: &RepoName,
    asked: &Asked,
    now: DateTime<Utc>,
    web_url: &str,
) -> Result<DriftView, ViewError> {
    let ends = live_environments(store.conn(), &connection.settings, connection.id, repository).await?;
    let pairs = match asked {
        Asked::Neighbours => {
            let mut pairs = Vec::new();
            for (left, right) in neighbours(&ends) {
                pairs.push(neighbouring(store, connection.id, repository, left, right, now, web_url).await?);
            }
            pairs
        }
        Asked::Pair { from, to } => {
            let find = |name: &str| {
                ends.iter()
                    .find(|e| e.environment == name)
                    .ok_or_else(|| ViewError::NoLiveDeploy(name.to_owned()))
            };
            let (left, right) = (find(from)?, find(to)?);
            let adjacent = neighbours(&ends)
                .into_iter()
                .any(|(l, r)| l.environment == *from && r.environment == *to);
            let pair = if adjacent {
                neighbouring(store, connection.id, repository, left, right, now, web_url).await?
            } else {
                on_the_spot(store, connection.id, repository, left, right, now, web_url).await?
            };
            vec![pair]
        }
    };
    Ok(DriftView {
        repository: repository.as_str().to_owned(),
        environments: ends.iter().map(end_of).collect(),
        pairs,
    })
}

fn end_of(end: &LiveEnd) -> EndView {
    EndView {
        environment: end.environment.clone(),
        deployment_id: Some(end.deployment_id),
        sha: end.sha.clone(),
    }
}

/// A neighbouring pair from its row.
async fn neighbouring(
    store: &Store,
    connection_id: i64,
    repository: &RepoName,
    left: &LiveEnd,
    right: &LiveEnd,
    now: DateTime<Utc>,
    web_url: &str,
) -> Result<PairView, ViewError> {
    let Some(row) = rows::find(
        store.conn(),
        connection_id,
        repository.key(),
        &left.environment,
        &right.environment,
    )
    .await?
    else {
        let mut pair = pair_view(
            end_of(left),
            end_of(right),
            true,
            "pending",
            None,
            now,
            repository,
            web_url,
        );
        pair.note = Some("not computed yet: a drift.recompute job is queued".to_owned());
        return Ok(pair);
    };
    let current = row.from_sha == left.sha && row.to_sha == right.sha;
    let listed = match DriftState::parse(&row.state) {
        Some(DriftState::Ahead | DriftState::Diverged) => Some(
            measure(
                store,
                None,
                connection_id,
                repository,
                &row.from_sha,
                &row.to_sha,
                now,
                &mut 0,
            )
            .await?,
        ),
        _ => None,
    };
    let DriftRow {
        from_environment,
        to_environment,
        from_deployment_id,
        to_deployment_id,
        from_sha,
        to_sha,
        state,
        ahead_by,
        behind_by,
        pull_requests,
        oldest_merged_at,
        note,
        computed_at,
        ..
    } = row;
    let mut pair = pair_view(
        EndView {
            environment: from_environment,
            deployment_id: from_deployment_id,
            sha: from_sha,
        },
        EndView {
            environment: to_environment,
            deployment_id: to_deployment_id,
            sha: to_sha,
        },
        true,
        &state,
        listed.as_ref(),
        now,
        repository,
        web_url,
    );
    // The row's figures are what the board shows: the answer agrees with it.
    pair.ahead_by = ahead_by;
    pair.behind_by = behind_by;
    pair.pull_request_count = pull_requests;
    pair.oldest_merged_at = oldest_merged_at;
    pair.oldest_merged_age_seconds = oldest_merged_at.map(|at| (now - at).num_seconds());
    pair.computed_at = Some(computed_at);
    pair.current = current;
    pair.note = note;
    Ok(pair)
}

/// A pair that is not neighbouring, from its stored range (409 when not stored).
async fn on_the_spot(
    store: &Store,
    connection_id: i64,
    repository: &RepoName,
    left: &LiveEnd,
    right: &LiveEnd,
    now: DateTime<Utc>,
    web_url: &str,
) -> Result<PairView, ViewError> {
    let measured = measure(
        store,
        None,
        connection_id,
        repository,
        &left.sha,
        &right.sha,
        now,
        &mut 0,
    )
    .await?;
    if measured.state == DriftState::Unread {
        return Err(ViewError::NotStored {
            from: left.environment.clone(),
            to: right.environment.clone(),
        });
    }
    let mut pair = pair_view(
        end_of(left),
        end_of(right),
        false,
        measured.state.as_str(),
        Some(&measured),
        now,
        repository,
        web_url,
    );
    pair.current = true;
    Ok(pair)
}

#[allow(clippy::too_many_arguments)]
fn pair_view(
    from: EndView,
    to: EndView,
    neighbours: bool,
    state: &str,
    measured: Option<&Measured>,
    now: DateTime<Utc>,
    repository: &RepoName,
    web_url: &str,
) -> PairView {
    let empty = super::Changes::default();
    let changes = measured.map_or(&empty, |m| &m.changes);
    let oldest = changes.oldest_merged_at();
    let pull_requests: Vec<PullRequestView> = changes
        .pull_requests
        .iter()
        .take(LIST_LIMIT)
        .map(|pr| PullRequestView {
            number: pr.number,
            title: pr.title.clone(),
            author: pr.author.clone(),
            merged_at: pr.merged_at,
            url: format!("{web_url}/{repository}/pull/{}", pr.number),
        })
        .collect();
    let commits: Vec<CommitView> = changes
        .commits
        .iter()
        .take(LIST_LIMIT)
        .map(|c| CommitView {
            sha: c.sha.clone(),
            title: c.title.clone(),
            author: c.author.clone(),
            authored_at: c.authored_at,
            url: CommitSha::parse(&c.sha)
                .ok()
                .map(|sha| format!("{web_url}/{repository}/commit/{}", sha.as_str())),
        })
        .collect();
    PairView {
        from,
        to,
        neighbours,
        state: state.to_owned(),
        ahead_by: measured.map_or(0, |m| m.ahead_by),
        behind_by: measured.map_or(0, |m| m.behind_by),
        pull_request_count: changes.pull_requests.len() as i64,
        oldest_merged_at: oldest,
        oldest_merged_age_seconds: oldest.map(|at| (now - at).num_seconds()),
        computed_at: None,
        current: false,
        note: measured.and_then(|m| m.note.clone()),
        truncated: changes.pull_requests.len() > LIST_LIMIT || changes.commits.len() > LIST_LIMIT,
        pull_requests,
        commits,
        commit_count: changes.commits.len() as i64,
    }
}
