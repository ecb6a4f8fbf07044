//! The deploy lifecycle (DESIGN.md §2): statuses, GitHub's states mapped onto them, and the order
//! in which reports are applied.

use chrono::{DateTime, Utc};
use serde::Serialize;

/// `initiated → building → deploying → live`, or `failed`; later `superseded` or `rolled_back`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeployStatus {
    Initiated,
    Building,
    Deploying,
    Live,
    Failed,
    Superseded,
    RolledBack,
}

impl DeployStatus {
    pub const ALL: [Self; 7] = [
        Self::Initiated,
        Self::Building,
        Self::Deploying,
        Self::Live,
        Self::Failed,
        Self::Superseded,
        Self::RolledBack,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Initiated => "initiated",
            Self::Building => "building",
            Self::Deploying => "deploying",
            Self::Live => "live",
            Self::Failed => "failed",
            Self::Superseded => "superseded",
            Self::RolledBack => "rolled_back",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }

    /// `live` and `failed` end a rollout: they set `completed_at` and `duration_seconds`.
    pub fn completes(self) -> bool {
        matches!(self, Self::Live | Self::Failed)
    }
}

/// The shiplog status for a GitHub `deployment_status.state`; `None` keeps the current status
/// (the raw state is still stored in the history).
pub fn from_github_state(state: &str) -> Option<DeployStatus> {
    Some(match state {
        "queued" | "pending" | "waiting" => DeployStatus::Initiated,
        "in_progress" => DeployStatus::Deploying,
        "success" => DeployStatus::Live,
        "failure" | "error" => DeployStatus::Failed,
        "inactive" => DeployStatus::Superseded,
        _ => return None,
    })
}

/// The position of a report in time: the source's timestamp, then its id as a tie-breaker.
/// Reports are applied only when they are later than the one that set the current status, so
/// arrival order does not matter.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ReportOrder {
    pub at: DateTime<Utc>,
    pub id: i64,
}

/// Seconds from the deploy's start to its completion, never negative.
pub fn duration_seconds(deploy_time: DateTime<Utc>, completed_at: DateTime<Utc>) -> i64 {
    (completed_at - deploy_time).num_seconds().max(0)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn github_states_map_as_the_design_says() {
        let cases = [
            ("queued", Some(DeployStatus::Initiated)),
            ("pending", Some(DeployStatus::Initiated)),
            ("waiting", Some(DeployStatus::Initiated)),
            ("in_progress", Some(DeployStatus::Deploying)),
            ("success", Some(DeployStatus::Live)),
            ("failure", Some(DeployStatus::Failed)),
            ("error", Some(DeployStatus::Failed)),
            ("inactive", Some(DeployStatus::Superseded)),
            ("something_new", None),
        ];
        for (state, expected) in cases {
            assert_eq!(from_github_state(state), expected, "{state}");
        }
    }

    #[test]
    fn statuses_round_trip_through_their_names() {
        for status in DeployStatus::ALL {
            assert_eq!(DeployStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(DeployStatus::parse("done"), None);
    }

    #[test]
    fn reports_order_by_time_then_id() {
        let t = |s| Utc.timestamp_opt(s, 0).single().unwrap();
        assert!(ReportOrder { at: t(10), id: 1 } < ReportOrder { at: t(11), id: 0 });
        assert!(ReportOrder { at: t(10), id: 1 } < ReportOrder { at: t(10), id: 2 });
        assert_eq!(duration_seconds(t(100), t(40)), 0);
        assert_eq!(duration_seconds(t(100), t(160)), 60);
    }
}
