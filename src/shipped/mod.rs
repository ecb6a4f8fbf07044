//! What each deploy shipped: the commits and merged pull requests it brought to its environment,
//! from the range its went-live batch read (`ancestry::batch::listing`), and what a rollback
//! took out.
//!
//! The went-live job calls [`record`] once the batch has run (and rollbacks are marked): it
//! stores a `deploy_shipment` row saying which range answers "what did this deploy ship" and
//! what kind of answer it is ([`Kind`]). [`view`] reads that row back with the range's stored
//! commits and the pull requests merged as one of them; it never asks GitHub, so a page or the
//! API shows it without a call.
//!
//! Only the deploy it replaced in its own environment counts as the base: a deploy with none is
//! the first seen there ([`Kind::First`]) and lists no history. When the new deploy is behind
//! the one it replaced (a rollback) or diverged from it (a force-push, another branch), what
//! the replaced deploy had and the new one lacks is "taken out": the range `new...replaced`,
//! which for a rollback usually is the very range stored when the replaced deploy went live, so
//! no call is made for it.

pub mod changes;

use chrono::{DateTime, Utc};

use crate::ancestry::{batch, AncestryError};
use crate::deploys::Deploy;
use crate::github::client::InstallationClient;
use crate::github::compare::CompareStatus;
use crate::store::commits::{self, RangeListing};
use crate::store::pull_requests;
use crate::store::shipments::{self, ShipmentRow};
use crate::store::{Store, StoreResult, Writer};
use changes::Changes;

/// What kind of answer a deploy's shipment is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// No earlier deploy in its environment: nothing to compare with, no history listed.
    First,
    /// The range from the replaced deploy was read: `status` tells shipped (`ahead`), nothing
    /// (`identical`), taken out (`behind`) or both (`diverged`).
    Listed,
    /// The two SHAs share no history (no common ancestor): GitHub cannot list a range.
    Unrelated,
    /// Not read: no GitHub App, and nothing of the range stored.
    Unread,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::First => "first",
            Self::Listed => "listed",
            Self::Unrelated => "unrelated",
            Self::Unread => "unread",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "first" => Self::First,
            "listed" => Self::Listed,
            "unrelated" => Self::Unrelated,
            "unread" => Self::Unread,
            _ => return None,
        })
    }
}

/// Why an unread range was not read.
const NO_APP: &str =
    "not read: the GitHub App is not configured (GITHUB_APP_ID, GITHUB_APP_PRIVATE_KEY_PATH) and this range was never compared before";

/// What a deploy shipped, read and ready to be stored ([`Shipment::save`]), with the listing of
/// what it brought when one was read (`ahead` or `diverged`), for the delivery metrics to use
/// without another query.
#[derive(Clone, Debug)]
pub struct Shipment {
    pub kind: Kind,
    pub shipped: Option<RangeListing>,
    row: ShipmentRow,
}

impl Shipment {
    /// Stores the shipment in the caller's transaction (the went-live job's last one). Safe to
    /// run again: the row is replaced.
    pub async fn save(&self, db: &impl Writer) -> StoreResult<()> {
        shipments::save(db, &self.row).await
    }
}

/// Reads and stores what `deploy` shipped ([`read`], then [`Shipment::save`] in a transaction
/// of its own).
pub async fn record(
    store: &Store,
    github: Option<&InstallationClient<'_>>,
    deploy: &Deploy,
    replaced: Option<&Deploy>,
    now: DateTime<Utc>,
    calls: &mut u32,
) -> Result<Shipment, AncestryError> {
    let shipment = read(store, github, deploy, replaced, now, calls).await?;
    let tx = store.begin().await?;
    shipment.save(&tx).await?;
    tx.commit().await?;
    Ok(shipment)
}

/// What `deploy` shipped, replacing `replaced` in its environment (`None`: the first deploy
/// seen there). Reads (and stores) the ranges it needs from GitHub when `github` is given and
/// they are not stored yet, counting calls in `calls`; without it, tells what the stored rows
/// tell. The shipment itself is stored by the caller ([`Shipment::save`]).
pub async fn read(
    store: &Store,
    github: Option<&InstallationClient<'_>>,
    deploy: &Deploy,
    replaced: Option<&Deploy>,
    now: DateTime<Utc>,
    calls: &mut u32,
) -> Result<Shipment, AncestryError> {
    let mut shipped = None;
    let head = deploy.sha.as_str();
    let mut row = ShipmentRow {
        deployment_id: deploy.id.0,
        base_deployment_id: replaced.map(|r| r.id.0),
        base_sha: replaced.map(|r| r.sha.as_str().to_owned()),
        head_sha: head.to_owned(),
        kind: Kind::First.as_str().to_owned(),
        status: None,
        ahead_by: 0,
        behind_by: 0,
        note: None,
        computed_at: now,
    };
    if let Some(replaced) = replaced {
        let base = replaced.sha.as_str();
        let repo = &deploy.repository;
        if base == head {
            row.kind = Kind::Listed.as_str().to_owned();
            row.status = Some(CompareStatus::Identical.as_str().to_owned());
        } else {
            let forward = batch::listing(store, github, repo, base, head, now, calls).await?;
            match forward.filter(|l| l.complete) {
                Some(listing) => match listing.status.as_deref().and_then(CompareStatus::parse) {
                    Some(status) => {
                        row.kind = Kind::Listed.as_str().to_owned();
                        row.status = Some(status.as_str().to_owned());
                        row.ahead_by = listing.ahead_by.unwrap_or(listing.commits.len() as i64);
                        row.behind_by = listing.behind_by.unwrap_or(0);
                        if matches!(status, CompareStatus::Behind | CompareStatus::Diverged) {
                            // What the replaced deploy had: stored now, read by `view`.
                            batch::listing(store, github, repo, head, base, now, calls).await?;
                        }
                        if matches!(status, CompareStatus::Ahead | CompareStatus::Diverged) {
                            shipped = Some(listing);
                        }
                    }
                    None => {
                        row.kind = Kind::Unrelated.as_str().to_owned();
                        row.note = Some(format!(
                            "{} and {} share no history (no common ancestor: history rewritten by a force-push, or an unrelated branch deployed), so GitHub cannot list what changed",
                            short(base),
                            short(head)
                        ));
                    }
                },
                // Not read, and no GitHub to read it: a rollback to an older commit may still be
                // told by the range stored when the replaced deploy went live.
                None => match commits::range_listing(store.conn(), repo.key(), head, base).await? {
                    Some(back)
                        if back.complete
                            && back.status.as_deref().and_then(CompareStatus::parse) == Some(CompareStatus::Ahead) =>
                    {
                        row.kind = Kind::Listed.as_str().to_owned();
                        row.status = Some(CompareStatus::Behind.as_str().to_owned());
                        row.behind_by = back.ahead_by.unwrap_or(back.commits.len() as i64);
                    }
                    _ => {
                        row.kind = Kind::Unread.as_str().to_owned();
                        row.note = Some(NO_APP.to_owned());
                    }
                },
            }
        }
    }
    Ok(Shipment {
        kind: Kind::parse(&row.kind).unwrap_or(Kind::Unread),
        shipped,
        row,
    })
}

fn short(sha: &str) -> &str {
    sha.get(..7).unwrap_or(sha)
}

/// The deploy a shipment is counted from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Base {
    pub deployment_id: Option<i64>,
    pub sha: String,
}

/// What a deploy shipped, as shown on its page and in the API.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shipped {
    pub kind: Kind,
    pub base: Option<Base>,
    /// The compare status of `base...head` (`listed` only).
    pub status: Option<String>,
    pub ahead_by: i64,
    pub behind_by: i64,
    /// Why nothing is listed (`unrelated`, `unread`).
    pub note: Option<String>,
    /// The commits it brought, as pull requests and loose commits.
    pub shipped: Changes,
    /// For a deploy behind or diverged from the one it replaced: what that one had and this one
    /// lacks.
    pub taken_out: Option<Changes>,
    /// Every page of the ranges shown was read (else the listing stops where reading stopped).
    pub complete: bool,
    pub computed_at: DateTime<Utc>,
}

/// What `deploy` shipped, from the stored rows; `None` before its went-live job recorded it.
pub async fn view(store: &Store, deploy: &Deploy) -> StoreResult<Option<Shipped>> {
    let Some(row) = shipments::find(store.conn(), deploy.id.0).await? else {
        return Ok(None);
    };
    let kind = Kind::parse(&row.kind).unwrap_or(Kind::Unread);
    let status = row.status.as_deref().and_then(CompareStatus::parse);
    let mut shown = Shipped {
        kind,
        base: row.base_sha.clone().map(|sha| Base {
            deployment_id: row.base_deployment_id,
            sha,
        }),
        status: row.status.clone(),
        ahead_by: row.ahead_by,
        behind_by: row.behind_by,
        note: row.note.clone(),
        shipped: Changes::default(),
        taken_out: None,
        complete: true,
        computed_at: row.computed_at,
    };
    let (Kind::Listed, Some(base), Some(status)) = (kind, row.base_sha.as_deref(), status) else {
        return Ok(Some(shown));
    };
    let repo = deploy.repository.key();
    let head = row.head_sha.as_str();
    if matches!(status, CompareStatus::Ahead | CompareStatus::Diverged) {
        if let Some(listing) = commits::range_listing(store.conn(), repo, base, head).await? {
            shown.complete &= listing.complete;
            shown.shipped = grouped(store, deploy, &listing).await?;
        }
    }
    if matches!(status, CompareStatus::Behind | CompareStatus::Diverged) {
        let taken = match commits::range_listing(store.conn(), repo, head, base).await? {
            Some(listing) => {
                shown.complete &= listing.complete;
                grouped(store, deploy, &listing).await?
            }
            None => {
                shown.complete = false;
                Changes::default()
            }
        };
        shown.taken_out = Some(taken);
    }
    Ok(Some(shown))
}

/// A listing grouped by the connection's pull requests merged as one of its commits.
async fn grouped(store: &Store, deploy: &Deploy, listing: &RangeListing) -> StoreResult<Changes> {
    let shas: Vec<String> = listing.commits.iter().map(|c| c.sha.clone()).collect();
    let merged = pull_requests::merged_as(store.conn(), deploy.connection_id.0, deploy.repository.key(), &shas).await?;
    Ok(changes::group(&listing.commits, &merged))
}
