//! What GitHub told us, in shiplog's words: the events a webhook delivery carries, as the domain
//! (`connections/`, `deploys/`, `monitoring/`, `intake/`) acts on them. `github::events` converts
//! the webhook JSON into these types; nothing here knows that JSON.

use chrono::{DateTime, Utc};

use crate::types::{Account, CommitSha, Environment, InstallationId, RepoRef};

/// A delivery, parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedDelivery {
    pub action: Option<String>,
    pub installation_id: Option<InstallationId>,
    pub event: WebhookEvent,
}

#[derive(Debug, Clone, PartialEq)]
pub enum WebhookEvent {
    Ping,
    Installation(InstallationEvent),
    InstallationRepositories(RepositoriesChanged),
    Deployment(GitHubDeployment),
    DeploymentStatus(GitHubDeploymentStatus),
    /// A GitHub Actions workflow run was requested, started or completed.
    WorkflowRun(WorkflowRun),
    /// A pull request was closed, merged or not.
    PullRequestClosed(GitHubPullRequest),
    /// A label was added to a pull request.
    PullRequestLabeled {
        pull: PullRef,
        label: String,
    },
    /// A comment was made on a pull request (comments on plain issues are not handled).
    PullRequestComment {
        pull: PullRef,
        comment_id: i64,
        body: String,
        author: Option<String>,
    },
    /// An event or action shiplog does not act on; acknowledged and recorded as ignored.
    Unhandled,
}

/// What GitHub says about an installation in any installation event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallationSnapshot {
    pub installation_id: InstallationId,
    pub account: Account,
    /// `all` or `selected`.
    pub repository_selection: String,
    pub suspended_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstallationChange {
    Created,
    Deleted,
    Suspended,
    Unsuspended,
    PermissionsAccepted,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallationEvent {
    pub change: InstallationChange,
    pub installation: InstallationSnapshot,
    /// The repositories the installation can see, when the payload lists them.
    pub repositories: Option<Vec<RepoRef>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepositoriesChanged {
    pub installation: InstallationSnapshot,
    pub added: Vec<RepoRef>,
    pub removed: Vec<RepoRef>,
}

/// A GitHub deployment, with the repository it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitHubDeployment {
    pub id: i64,
    pub repository: RepoRef,
    /// The repository's owner: the account the App is installed on.
    pub owner: Account,
    pub environment: Environment,
    pub sha: CommitSha,
    pub git_ref: Option<String>,
    pub task: Option<String>,
    pub creator: Option<String>,
    pub description: Option<String>,
    pub transient_environment: bool,
    pub production_environment: bool,
    pub created_at: DateTime<Utc>,
    /// The Actions run that created it (GitHub sets `workflow_run` on deployments a job with an
    /// `environment:` makes): the same deploy as that run's, never a second one.
    pub workflow_run_id: Option<i64>,
}

/// One `deployment_status`, with its (embedded) deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitHubDeploymentStatus {
    pub deployment: GitHubDeployment,
    pub id: i64,
    /// The raw state (`success`, `in_progress`, … or a state GitHub adds later).
    pub state: String,
    /// GitHub's description, followed by any URL of the status that is not an `http(s)` link
    /// (kept as text).
    pub description: Option<String>,
    /// `log_url`, else `target_url`; empty strings are absent. Only absolute `http(s)` URLs.
    pub log_url: Option<String>,
    /// Only absolute `http(s)` URLs.
    pub environment_url: Option<String>,
    pub creator: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// A closed pull request. `merge_commit_sha` is set for unmerged ones too (GitHub's test merge):
/// only `merged` says whether it was merged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitHubPullRequest {
    pub number: i64,
    pub title: String,
    pub author: Option<String>,
    pub merged: bool,
    pub merge_commit_sha: Option<CommitSha>,
    pub merged_at: Option<DateTime<Utc>>,
    /// When the pull request was opened.
    pub created_at: Option<DateTime<Utc>>,
    pub repository: RepoRef,
    pub owner: Account,
}

/// Which pull request an event is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullRef {
    pub number: i64,
    pub repository: RepoRef,
    pub owner: Account,
}

/// A GitHub Actions workflow run, as a `workflow_run` delivery or the runs list shows it. A
/// backfill stages it as JSON (every field deserializes through its validating type again).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WorkflowRun {
    pub id: i64,
    /// 1, then 2, 3, … for each re-run of the same run.
    pub run_attempt: i64,
    pub run_number: i64,
    pub repository: RepoRef,
    pub owner: Account,
    /// The repository's default branch, when the source says it (webhooks and the installation's
    /// repository list do).
    pub default_branch: Option<String>,
    /// The workflow's name (`Deploy`), else its file path.
    pub workflow_name: String,
    /// The workflow file, `.github/workflows/deploy.yml`.
    pub workflow_path: String,
    /// `None` when the run is of no branch of this repository: a fork's (a pull request from a
    /// fork), or none at all.
    pub head_branch: Option<String>,
    pub head_sha: CommitSha,
    /// `requested`, `queued`, `waiting`, `in_progress`, `completed`, or a status GitHub adds later.
    pub status: String,
    /// Set once `completed`: `success`, `failure`, `cancelled`, … .
    pub conclusion: Option<String>,
    /// The run's page; only an absolute `http(s)` URL.
    pub html_url: Option<String>,
    pub display_title: Option<String>,
    /// `triggering_actor`, else `actor`.
    pub triggered_by: Option<String>,
    pub run_started_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    /// Orders the run's reports: statuses apply in this order, not in arrival order.
    pub updated_at: DateTime<Utc>,
}

/// A commit as a comparison lists it: what the pages show of it, each field bounded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListedCommit {
    /// Full SHA, lowercase.
    pub sha: String,
    /// Full SHAs of its parents, first parent first.
    pub parents: Vec<String>,
    /// The message's first line, at most [`TITLE_MAX_CHARS`] characters.
    pub title: String,
    /// The GitHub account the commit's author email belongs to, when GitHub knows it.
    pub author_login: Option<String>,
    /// The name in the commit's author line.
    pub author_name: Option<String>,
    pub authored_at: Option<DateTime<Utc>>,
    /// What its message says it reverts.
    pub reverts: Reverts,
}

/// A listed commit's title is cut to this many characters (the pages show one line).
pub const TITLE_MAX_CHARS: usize = 300;

/// What a commit message says it reverts: `git revert` writes "This reverts commit <sha>."
/// (GitHub's Revert button too), and a revert pull request's description, when the merge
/// message carries it, says "Reverts owner/repo#N". Only a full 40-hex SHA counts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reverts {
    pub sha: Option<String>,
    pub pull_request: Option<i64>,
}

impl Reverts {
    /// Reads the first of each marker in `message` (only its first 64 KiB are looked at).
    pub fn in_message(message: &str) -> Self {
        let mut end = message.len().min(64 * 1024);
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        let message = &message[..end];
        let sha = message.match_indices("This reverts commit ").find_map(|(at, marker)| {
            let rest = &message[at + marker.len()..];
            let hex: String = rest.chars().take_while(char::is_ascii_hexdigit).collect();
            (hex.len() == 40).then(|| hex.to_ascii_lowercase())
        });
        let pull_request = message.match_indices("Reverts ").find_map(|(at, marker)| {
            let rest = &message[at + marker.len()..];
            let word = rest.split_whitespace().next()?;
            let (repo, number) = word.split_once('#')?;
            let number: String = number.chars().take_while(char::is_ascii_digit).collect();
            let plausible_repo = repo.is_empty() || repo.split('/').count() == 2;
            (plausible_repo && !number.is_empty() && number.len() <= 12)
                .then(|| number.parse().ok())
                .flatten()
                .filter(|n: &i64| *n > 0)
        });
        Self { sha, pull_request }
    }

    pub fn is_revert(&self) -> bool {
        self.sha.is_some() || self.pull_request.is_some()
    }
}

#[cfg(test)]
mod reverts_tests {
    use super::Reverts;

    #[test]
    fn git_revert_and_a_revert_pull_request_are_read() {
        let sha = "0123456789abcdef0123456789abcdef01234567";
        let by_git = Reverts::in_message(&format!("Revert \"Add cache\"\n\nThis reverts commit {sha}."));
        assert_eq!(by_git.sha.as_deref(), Some(sha));
        assert_eq!(by_git.pull_request, None);
        let by_pr = Reverts::in_message("Revert \"Add cache\" (#12)\n\nReverts octo/app#7");
        assert_eq!(by_pr.pull_request, Some(7));
        assert_eq!(Reverts::in_message("Reverts #9").pull_request, Some(9));
        assert!(!Reverts::in_message("Reverts the cache change").is_revert());
        assert!(!Reverts::in_message("This reverts commit 0123abc.").is_revert());
        assert!(!Reverts::in_message("Reverts a/b/c#3").is_revert());
    }
}
