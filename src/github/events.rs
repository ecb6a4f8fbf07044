//! GitHub webhook payloads → shiplog's own events ([`crate::events`]). The only place that knows
//! the webhook JSON: the wire structs and their conversion.
//!
//! Parsing goes through `serde_path_to_error`, so a payload that does not fit names the field
//! (`installation.account.login`). Events and actions shiplog does not act on become
//! [`WebhookEvent::Unhandled`]; only the envelope (`action`, `installation.id`) is read from them.
//!
//! Every text field shiplog keeps passes the limits of [`crate::limits`] here, so a value over
//! them is a 400 naming its field, never a database error. URLs are the exception: GitHub takes
//! any string there, so a `log_url`, `target_url` or `environment_url` that is not an absolute
//! `http(s)` URL does not fail the delivery; it is kept as text in the status's description and
//! never becomes a link.

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::events::{
    GitHubDeployment, GitHubDeploymentStatus, GitHubPullRequest, InstallationChange, InstallationEvent,
    InstallationSnapshot, ParsedDelivery, PullRef, RepositoriesChanged, WebhookEvent, WorkflowRun,
};
use crate::limits::{self, HttpUrl};
use crate::types::{Account, CommitSha, InstallationId, RepoName, RepoRef};

/// A payload that could not be read, with the path of the failing field.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct PayloadError {
    pub field: String,
    pub message: String,
}

/// Parses a delivery's body for the event named in `X-GitHub-Event`.
pub fn parse(event: &str, body: &[u8]) -> Result<ParsedDelivery, PayloadError> {
    if let Some(parsed) = parse_deployment_event(event, body) {
        return Ok(parsed);
    }
    // serde reads a struct from an array too (`[]` would be an empty envelope): every GitHub
    // payload is an object.
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(PayloadError {
            field: "body".to_owned(),
            message: "must be a JSON object".to_owned(),
        });
    }
    let envelope: wire::Envelope = from_slice(body)?;
    let action = envelope.action.map(limits::Name::into_string);
    let installation_id = envelope.installation.map(|i| InstallationId(i.id));
    let parsed = match (event, action.as_deref()) {
        ("ping", _) => WebhookEvent::Ping,
        ("installation", Some(name)) => match installation_change(name) {
            Some(change) => {
                let payload: wire::InstallationPayload = from_slice(body)?;
                WebhookEvent::Installation(InstallationEvent {
                    change,
                    installation: payload.installation.into_snapshot(None),
                    repositories: payload.repositories.map(into_repo_refs),
                })
            }
            None => WebhookEvent::Unhandled,
        },
        ("installation_repositories", Some("added" | "removed")) => {
            let payload: wire::InstallationRepositoriesPayload = from_slice(body)?;
            WebhookEvent::InstallationRepositories(RepositoriesChanged {
                installation: payload.installation.into_snapshot(payload.repository_selection),
                added: into_repo_refs(payload.repositories_added),
                removed: into_repo_refs(payload.repositories_removed),
            })
        }
        ("deployment", Some("created")) => {
            let payload: wire::DeploymentPayload = from_slice(body)?;
            deployment_event(payload)
        }
        ("workflow_run", Some("requested" | "in_progress" | "completed")) => {
            let payload: wire::WorkflowRunPayload = from_slice(body)?;
            let workflow_name = payload.workflow.and_then(|w| w.name);
            let top = payload.repository;
            let mut run = payload.workflow_run.into_domain(workflow_name);
            check_run_numbers(&run)?;
            // The default branch is the run's repository's only when the payload names the same one.
            if top
                .full_name
                .as_ref()
                .is_some_and(|name| name.key() == run.repository.name.key())
            {
                run.default_branch = top.default_branch.map(limits::Name::into_string);
            }
            WebhookEvent::WorkflowRun(run)
        }
        ("pull_request", Some("closed")) => {
            let payload: wire::PullRequestPayload = from_slice(body)?;
            let pr = payload.pull_request;
            let (repository, owner) = payload.repository.split();
            WebhookEvent::PullRequestClosed(GitHubPullRequest {
                number: pr.number,
                title: pr.title.into_string(),
                author: pr.user.map(|u| u.login.into_string()),
                merged: pr.merged.unwrap_or(false),
                merge_commit_sha: pr.merge_commit_sha.as_deref().and_then(|s| CommitSha::parse(s).ok()),
                merged_at: pr.merged_at,
                created_at: pr.created_at,
                repository,
                owner,
            })
        }
        ("pull_request", Some("labeled")) => {
            let payload: wire::LabeledPayload = from_slice(body)?;
            WebhookEvent::PullRequestLabeled {
                pull: pull_ref(payload.pull_request.number, payload.repository),
                label: payload.label.map(|l| l.name.into_string()).unwrap_or_default(),
            }
        }
        ("issue_comment", Some("created")) => {
            let payload: wire::IssueCommentPayload = from_slice(body)?;
            if payload.issue.pull_request.is_none() {
                WebhookEvent::Unhandled
            } else {
                WebhookEvent::PullRequestComment {
                    pull: pull_ref(payload.issue.number, payload.repository),
                    comment_id: payload.comment.id,
                    body: payload
                        .comment
                        .body
                        .map(limits::Comment::into_string)
                        .unwrap_or_default(),
                    author: payload.comment.user.map(|u| u.login.into_string()),
                }
            }
        }
        ("deployment_status", Some("created")) => {
            let payload: wire::DeploymentStatusPayload = from_slice(body)?;
            deployment_status_event(payload)
        }
        _ => WebhookEvent::Unhandled,
    };
    Ok(ParsedDelivery {
        action,
        installation_id,
        event: parsed,
    })
}

/// The two events the intake's hot path takes, read in one pass: the payload with its `action`
/// and `installation`. `None` when the body is not such a payload (the general way then reads
/// it again and names what is wrong).
fn parse_deployment_event(event: &str, body: &[u8]) -> Option<ParsedDelivery> {
    let (action, installation, parsed) = match event {
        "deployment" => {
            let payload: wire::DeploymentPayload = serde_json::from_slice(body).ok()?;
            (
                created(&payload.action)?,
                payload.installation.as_ref().map(|i| InstallationId(i.id)),
                deployment_event(payload),
            )
        }
        "deployment_status" => {
            let payload: wire::DeploymentStatusPayload = serde_json::from_slice(body).ok()?;
            (
                created(&payload.action)?,
                payload.installation.as_ref().map(|i| InstallationId(i.id)),
                deployment_status_event(payload),
            )
        }
        _ => return None,
    };
    Some(ParsedDelivery {
        action: Some(action),
        installation_id: installation,
        event: parsed,
    })
}

/// `created`, when that is the action (the only one GitHub sends for these two events).
fn created(action: &Option<limits::Name>) -> Option<String> {
    action
        .as_ref()
        .map(|a| a.clone().into_string())
        .filter(|a| a == "created")
}

fn deployment_event(payload: wire::DeploymentPayload) -> WebhookEvent {
    let run = payload.workflow_run.map(|r| r.id);
    WebhookEvent::Deployment(payload.deployment.into_domain(payload.repository, run))
}

fn deployment_status_event(payload: wire::DeploymentStatusPayload) -> WebhookEvent {
    let status = payload.deployment_status;
    let mut unlinked = Vec::new();
    let log_url = match (status.log_url, status.target_url) {
        (Some(url), _) => link_or_text("log_url", url, &mut unlinked),
        (None, Some(url)) => link_or_text("target_url", url, &mut unlinked),
        (None, None) => None,
    };
    let environment_url = status
        .environment_url
        .and_then(|url| link_or_text("environment_url", url, &mut unlinked));
    let description = status
        .description
        .map(limits::Text::into_string)
        .into_iter()
        .chain(unlinked)
        .reduce(|text, note| format!("{text}\n{note}"));
    let run = payload.workflow_run.map(|r| r.id);
    WebhookEvent::DeploymentStatus(GitHubDeploymentStatus {
        deployment: payload.deployment.into_domain(payload.repository, run),
        id: status.id,
        state: status.state.into_string(),
        description,
        log_url,
        environment_url,
        creator: status.creator.map(|c| c.login.into_string()),
        created_at: status.created_at,
    })
}

/// One run object of `GET /repos/{owner}/{repo}/actions/runs`, checked against the same limits
/// as a `workflow_run` delivery, on its own, so a run over the limits fails only itself.
pub fn workflow_run_object(run: &serde_json::Value) -> Result<WorkflowRun, PayloadError> {
    let run: wire::Run = serde_path_to_error::deserialize(run).map_err(|error| PayloadError {
        field: error.path().to_string(),
        message: error.inner().to_string(),
    })?;
    let run = run.into_domain(None);
    check_run_numbers(&run)?;
    Ok(run)
}

/// A run's id and attempt as GitHub makes them: a positive id, attempts from 1 to 10,000 (their
/// order decides which report of a re-run wins, so it must not saturate).
fn check_run_numbers(run: &WorkflowRun) -> Result<(), PayloadError> {
    let problem = |field: &str, message: &str| PayloadError {
        field: format!("workflow_run.{field}"),
        message: message.to_owned(),
    };
    if run.id <= 0 {
        return Err(problem("id", "must be a positive run id"));
    }
    if run.run_attempt > 10_000 {
        return Err(problem("run_attempt", "must be from 1 to 10000"));
    }
    Ok(())
}

fn installation_change(action: &str) -> Option<InstallationChange> {
    Some(match action {
        "created" => InstallationChange::Created,
        "deleted" => InstallationChange::Deleted,
        "suspend" => InstallationChange::Suspended,
        "unsuspend" => InstallationChange::Unsuspended,
        "new_permissions_accepted" => InstallationChange::PermissionsAccepted,
        _ => return None,
    })
}

fn pull_ref(number: i64, repository: wire::RepositoryWithOwner) -> PullRef {
    let (repository, owner) = repository.split();
    PullRef {
        number,
        repository,
        owner,
    }
}

/// An `http(s)` URL stays a URL; anything else becomes a line of text for the description.
pub(crate) fn link_or_text(field: &str, url: String, unlinked: &mut Vec<String>) -> Option<String> {
    match HttpUrl::parse(&url) {
        Ok(link) => Some(link.into_string()),
        Err(_) => {
            unlinked.push(format!("{field} (not an http(s) URL, kept as text): {url}"));
            None
        }
    }
}

/// Deserializers for optional fields where GitHub sends `""` or `null` for "none".
mod optional {
    use serde::{Deserialize, Deserializer};

    use crate::limits::{self, Name, Text};

    fn non_empty<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        Ok(Option::<String>::deserialize(d)?.filter(|v| !v.trim().is_empty()))
    }

    pub fn name<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Name>, D::Error> {
        non_empty(d)?
            .map(|v| Name::parse(&v).map_err(serde::de::Error::custom))
            .transpose()
    }

    pub fn text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Text>, D::Error> {
        non_empty(d)?
            .map(|v| Text::parse(&v).map_err(serde::de::Error::custom))
            .transpose()
    }

    /// A comment body: people paste terminal output into comments, so control characters (an
    /// ANSI colour code) become U+FFFD instead of failing the delivery; the length still counts.
    pub fn comment<'de, D: Deserializer<'de>>(d: D) -> Result<Option<limits::Comment>, D::Error> {
        let Some(raw) = Option::<String>::deserialize(d)? else {
            return Ok(None);
        };
        let cleaned: String = raw
            .chars()
            .map(|c| {
                if c.is_control() && !matches!(c, '\t' | '\n' | '\r') {
                    '\u{FFFD}'
                } else {
                    c
                }
            })
            .collect();
        limits::Comment::parse(&cleaned)
            .map(Some)
            .map_err(serde::de::Error::custom)
    }

    /// A URL as GitHub takes it: any string within the URL limits; whether it is a link is
    /// decided later.
    pub fn url<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        let Some(raw) = non_empty(d)? else {
            return Ok(None);
        };
        limits::check_url_text(&raw).map_err(serde::de::Error::custom)?;
        Ok(Some(raw))
    }
}

fn into_repo_refs(repos: Vec<wire::Repository>) -> Vec<RepoRef> {
    repos
        .into_iter()
        .map(|r| RepoRef {
            github_id: r.id,
            name: r.full_name,
        })
        .collect()
}

fn from_slice<T: DeserializeOwned>(body: &[u8]) -> Result<T, PayloadError> {
    // The quick way first: only a payload that fails is read again to name the field.
    if let Ok(value) = serde_json::from_slice(body) {
        return Ok(value);
    }
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        PayloadError {
            field: if path == "." { "body".to_owned() } else { path },
            message: error.inner().to_string(),
        }
    })?;
    deserializer.end().map_err(|error| PayloadError {
        field: "body".to_owned(),
        message: error.to_string(),
    })?;
    Ok(value)
}

/// GitHub's JSON, as much of it as shiplog reads. Unknown fields are ignored: GitHub adds fields.
mod wire {
    use super::*;

    use crate::limits::{Comment as CommentBody, Name, Text};

    #[derive(Deserialize)]
    pub struct Envelope {
        #[serde(default)]
        pub action: Option<Name>,
        #[serde(default)]
        pub installation: Option<InstallationRef>,
    }

    #[derive(Deserialize)]
    pub struct InstallationRef {
        pub id: i64,
    }

    #[derive(Deserialize)]
    pub struct InstallationPayload {
        pub installation: Installation,
        #[serde(default)]
        pub repositories: Option<Vec<Repository>>,
    }

    #[derive(Deserialize)]
    pub struct InstallationRepositoriesPayload {
        pub installation: Installation,
        #[serde(default)]
        pub repository_selection: Option<Name>,
        #[serde(default)]
        pub repositories_added: Vec<Repository>,
        #[serde(default)]
        pub repositories_removed: Vec<Repository>,
    }

    #[derive(Deserialize)]
    pub struct Installation {
        pub id: i64,
        pub account: AccountObject,
        #[serde(default)]
        pub repository_selection: Option<Name>,
        #[serde(default)]
        pub suspended_at: Option<DateTime<Utc>>,
    }

    impl Installation {
        pub fn into_snapshot(self, selection_override: Option<Name>) -> InstallationSnapshot {
            InstallationSnapshot {
                installation_id: InstallationId(self.id),
                account: Account {
                    login: self.account.login.into_string(),
                    // Enterprise accounts carry a slug and no `type`.
                    kind: self
                        .account
                        .kind
                        .map_or_else(|| "Enterprise".to_owned(), Name::into_string),
                    id: self.account.id,
                },
                repository_selection: selection_override
                    .or(self.repository_selection)
                    .map_or_else(|| "selected".to_owned(), Name::into_string),
                suspended_at: self.suspended_at,
            }
        }
    }

    #[derive(Deserialize)]
    pub struct AccountObject {
        #[serde(alias = "slug")]
        pub login: Name,
        #[serde(default)]
        pub id: Option<i64>,
        #[serde(default, rename = "type")]
        pub kind: Option<Name>,
    }

    #[derive(Deserialize)]
    pub struct Repository {
        pub id: i64,
        pub full_name: RepoName,
    }

    #[derive(Deserialize)]
    pub struct RepositoryWithOwner {
        pub id: i64,
        pub full_name: RepoName,
        pub owner: AccountObject,
    }

    impl RepositoryWithOwner {
        /// The repository and the account that owns it (the App's installation account).
        pub fn split(self) -> (RepoRef, Account) {
            let owner = Account {
                login: self.owner.login.into_string(),
                kind: self
                    .owner
                    .kind
                    .map_or_else(|| "Organization".to_owned(), Name::into_string),
                id: self.owner.id,
            };
            (
                RepoRef {
                    github_id: self.id,
                    name: self.full_name,
                },
                owner,
            )
        }
    }

    #[derive(Deserialize)]
    pub struct User {
        pub login: Name,
    }

    #[derive(Deserialize)]
    pub struct LabeledPayload {
        pub pull_request: PullRequest,
        #[serde(default)]
        pub label: Option<Label>,
        pub repository: RepositoryWithOwner,
    }

    #[derive(Deserialize)]
    pub struct Label {
        pub name: Name,
    }

    #[derive(Deserialize)]
    pub struct IssueCommentPayload {
        pub issue: Issue,
        pub comment: Comment,
        pub repository: RepositoryWithOwner,
    }

    #[derive(Deserialize)]
    pub struct Issue {
        pub number: i64,
        #[serde(default)]
        pub pull_request: Option<serde_json::Value>,
    }

    #[derive(Deserialize)]
    pub struct Comment {
        pub id: i64,
        #[serde(default, deserialize_with = "optional::comment")]
        pub body: Option<CommentBody>,
        #[serde(default)]
        pub user: Option<User>,
    }

    #[derive(Deserialize)]
    pub struct PullRequestPayload {
        pub pull_request: PullRequest,
        pub repository: RepositoryWithOwner,
    }

    #[derive(Deserialize)]
    pub struct PullRequest {
        pub number: i64,
        pub title: Text,
        #[serde(default)]
        pub user: Option<User>,
        #[serde(default)]
        pub merged: Option<bool>,
        #[serde(default)]
        pub merge_commit_sha: Option<String>,
        #[serde(default)]
        pub merged_at: Option<DateTime<Utc>>,
        #[serde(default)]
        pub created_at: Option<DateTime<Utc>>,
    }

    #[derive(Deserialize)]
    pub struct DeploymentPayload {
        #[serde(default)]
        pub action: Option<Name>,
        #[serde(default)]
        pub installation: Option<InstallationRef>,
        pub deployment: Deployment,
        pub repository: RepositoryWithOwner,
        #[serde(default)]
        pub workflow_run: Option<RunRef>,
    }

    #[derive(Deserialize)]
    pub struct DeploymentStatusPayload {
        #[serde(default)]
        pub action: Option<Name>,
        #[serde(default)]
        pub installation: Option<InstallationRef>,
        pub deployment_status: DeploymentStatus,
        pub deployment: Deployment,
        pub repository: RepositoryWithOwner,
        #[serde(default)]
        pub workflow_run: Option<RunRef>,
    }

    /// The `workflow_run` GitHub embeds in a deployment it made for an Actions job.
    #[derive(Deserialize)]
    pub struct RunRef {
        pub id: i64,
    }

    #[derive(Deserialize)]
    pub struct WorkflowRunPayload {
        pub workflow_run: Run,
        #[serde(default)]
        pub workflow: Option<Workflow>,
        pub repository: RepositoryWithDefaultBranch,
    }

    #[derive(Deserialize)]
    pub struct RepositoryWithDefaultBranch {
        #[serde(default)]
        pub full_name: Option<RepoName>,
        #[serde(default)]
        pub default_branch: Option<Name>,
    }

    #[derive(Deserialize)]
    pub struct Workflow {
        #[serde(default, deserialize_with = "optional::name")]
        pub name: Option<Name>,
    }

    /// A workflow run object: the same shape in a `workflow_run` delivery and in
    /// `GET /repos/{owner}/{repo}/actions/runs`.
    #[derive(Deserialize)]
    pub struct Run {
        pub id: i64,
        #[serde(default)]
        pub run_attempt: Option<i64>,
        pub run_number: i64,
        #[serde(default, deserialize_with = "optional::name")]
        pub name: Option<Name>,
        pub path: Name,
        #[serde(default, deserialize_with = "optional::name")]
        pub head_branch: Option<Name>,
        pub head_sha: CommitSha,
        pub status: Name,
        #[serde(default, deserialize_with = "optional::name")]
        pub conclusion: Option<Name>,
        #[serde(default, deserialize_with = "optional::url")]
        pub html_url: Option<String>,
        #[serde(default, deserialize_with = "optional::text")]
        pub display_title: Option<Text>,
        #[serde(default)]
        pub actor: Option<User>,
        #[serde(default)]
        pub triggering_actor: Option<User>,
        #[serde(default)]
        pub run_started_at: Option<DateTime<Utc>>,
        pub created_at: DateTime<Utc>,
        pub updated_at: DateTime<Utc>,
        pub repository: RepositoryWithOwner,
        /// The repository the head branch is in: a fork's, for a pull request from a fork.
        #[serde(default)]
        pub head_repository: Option<RepoId>,
    }

    #[derive(Deserialize)]
    pub struct RepoId {
        pub id: i64,
    }

    impl Run {
        /// The run in shiplog's words; `workflow_name` is the delivery's `workflow.name`, used
        /// when the run's own `name` is empty.
        pub fn into_domain(self, workflow_name: Option<Name>) -> WorkflowRun {
            // A fork's branch is no branch of this repository, whatever its name: anyone can
            // open a pull request from their `main`.
            let from_fork = self.head_repository.is_some_and(|head| head.id != self.repository.id);
            let (repository, owner) = self.repository.split();
            let path = self.path.into_string();
            WorkflowRun {
                id: self.id,
                run_attempt: self.run_attempt.unwrap_or(1).max(1),
                run_number: self.run_number,
                repository,
                owner,
                default_branch: None,
                workflow_name: self
                    .name
                    .or(workflow_name)
                    .map_or_else(|| path.clone(), Name::into_string),
                workflow_path: path,
                head_branch: self.head_branch.filter(|_| !from_fork).map(Name::into_string),
                head_sha: self.head_sha,
                status: self.status.into_string(),
                conclusion: self.conclusion.map(Name::into_string),
                html_url: self.html_url.filter(|url| HttpUrl::parse(url).is_ok()),
                display_title: self.display_title.map(Text::into_string),
                triggered_by: self.triggering_actor.or(self.actor).map(|u| u.login.into_string()),
                run_started_at: self.run_started_at,
                created_at: self.created_at,
                updated_at: self.updated_at,
            }
        }
    }

    #[derive(Deserialize)]
    pub struct Deployment {
        pub id: i64,
        pub sha: CommitSha,
        #[serde(rename = "ref", default, deserialize_with = "optional::name")]
        pub git_ref: Option<Name>,
        #[serde(default, deserialize_with = "optional::name")]
        pub task: Option<Name>,
        pub environment: Name,
        #[serde(default, deserialize_with = "optional::text")]
        pub description: Option<Text>,
        #[serde(default)]
        pub creator: Option<User>,
        pub created_at: DateTime<Utc>,
        #[serde(default)]
        pub transient_environment: Option<bool>,
        #[serde(default)]
        pub production_environment: Option<bool>,
    }

    impl Deployment {
        pub fn into_domain(self, repository: RepositoryWithOwner, workflow_run_id: Option<i64>) -> GitHubDeployment {
            let (repository, owner) = repository.split();
            GitHubDeployment {
                id: self.id,
                repository,
                owner,
                environment: self.environment.into(),
                sha: self.sha,
                git_ref: self.git_ref.map(Name::into_string),
                task: self.task.map(Name::into_string),
                creator: self.creator.map(|c| c.login.into_string()),
                description: self.description.map(Text::into_string),
                transient_environment: self.transient_environment.unwrap_or(false),
                production_environment: self.production_environment.unwrap_or(false),
                created_at: self.created_at,
                workflow_run_id,
            }
        }
    }

    #[derive(Deserialize)]
    pub struct DeploymentStatus {
        pub id: i64,
        pub state: Name,
        #[serde(default, deserialize_with = "optional::text")]
        pub description: Option<Text>,
        #[serde(default, deserialize_with = "optional::url")]
        pub log_url: Option<String>,
        #[serde(default, deserialize_with = "optional::url")]
        pub target_url: Option<String>,
        #[serde(default, deserialize_with = "optional::url")]
        pub environment_url: Option<String>,
        #[serde(default)]
        pub creator: Option<User>,
        pub created_at: DateTime<Utc>,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn installation_body(action: &str) -> String {
        format!(
            r#"{{"action":"{action}","installation":{{"id":42,"account":{{"login":"acme","id":7,"type":"Organization"}},
            "repository_selection":"selected","suspended_at":null}},
            "repositories":[{{"id":1,"node_id":"R_1","name":"web","full_name":"acme/web","private":true}}],
            "sender":{{"login":"octocat","id":1}}}}"#
        )
    }

    #[test]
    fn installation_created_becomes_an_installation_event() {
        let parsed = parse("installation", installation_body("created").as_bytes()).unwrap();
        assert_eq!(parsed.installation_id, Some(InstallationId(42)));
        let WebhookEvent::Installation(event) = parsed.event else {
            panic!("{parsed:?}")
        };
        assert_eq!(event.change, InstallationChange::Created);
        assert_eq!(event.installation.account.login, "acme");
        assert_eq!(event.repositories.unwrap()[0].name.as_str(), "acme/web");
    }

    #[test]
    fn unknown_actions_and_events_are_unhandled_but_keep_the_envelope() {
        let parsed = parse("installation", installation_body("renamed").as_bytes()).unwrap();
        assert_eq!(parsed.event, WebhookEvent::Unhandled);
        assert_eq!(parsed.action.as_deref(), Some("renamed"));
        let parsed = parse("star", br#"{"action":"created","installation":{"id":9}}"#).unwrap();
        assert_eq!(
            (parsed.event, parsed.installation_id),
            (WebhookEvent::Unhandled, Some(InstallationId(9)))
        );
    }

    #[test]
    fn a_body_that_is_not_an_object_is_refused_whatever_the_event() {
        for event in ["deployment_status", "deployment", "installation", "ping", "star"] {
            for body in [&b"[]"[..], b" [1, 2]", b"\"text\"", b"17", b"null"] {
                let error = parse(event, body).unwrap_err();
                assert_eq!(error.field, "body", "{event} {body:?}");
            }
        }
    }

    #[test]
    fn a_bad_field_is_named_by_its_path() {
        let body = installation_body("created").replace(r#""login":"acme","#, r#""login":17,"#);
        let err = parse("installation", body.as_bytes()).unwrap_err();
        assert_eq!(err.field, "installation.account.login");
        let body = installation_body("created").replace("acme/web", "not a repo");
        assert_eq!(
            parse("installation", body.as_bytes()).unwrap_err().field,
            "repositories[0].full_name"
        );
    }

    #[test]
    fn control_characters_in_a_comment_become_replacement_characters_instead_of_failing() {
        let body = serde_json::json!({"action": "created", "issue": {"number": 5, "pull_request": {}},
            "comment": {"id": 1, "body": "@shiplog watch \u{1b}[31mred\u{0}"},
            "repository": {"id": 1, "full_name": "acme/web", "owner": {"login": "acme"}}});
        let parsed = parse("issue_comment", body.to_string().as_bytes()).unwrap();
        let WebhookEvent::PullRequestComment { body, .. } = parsed.event else {
            panic!("{parsed:?}")
        };
        assert_eq!(body, "@shiplog watch \u{FFFD}[31mred\u{FFFD}");
    }

    #[test]
    fn a_run_with_a_negative_id_or_an_absurd_attempt_is_refused_and_another_repositorys_default_branch_is_not_used() {
        let base: serde_json::Value =
            serde_json::from_str(include_str!("../../tests/fixtures/github/workflow_run.completed.json")).unwrap();
        let with = |pointer: &str, value: serde_json::Value| {
            let mut body = base.clone();
            *body.pointer_mut(pointer).unwrap() = value;
            parse("workflow_run", body.to_string().as_bytes())
        };
        assert_eq!(
            with("/workflow_run/id", (-5).into()).unwrap_err().field,
            "workflow_run.id"
        );
        assert_eq!(
            with("/workflow_run/run_attempt", i64::MAX.into()).unwrap_err().field,
            "workflow_run.run_attempt"
        );
        let parsed = with("/repository/full_name", "someone/else".into()).unwrap();
        let WebhookEvent::WorkflowRun(run) = parsed.event else {
            panic!("{parsed:?}")
        };
        assert_eq!(run.default_branch, None);
        let WebhookEvent::WorkflowRun(run) = parse("workflow_run", base.to_string().as_bytes()).unwrap().event else {
            panic!()
        };
        assert!(run.default_branch.is_some());
    }

    #[test]
    fn a_body_that_is_not_json_names_the_body() {
        let err = parse("ping", b"Hello, World!").unwrap_err();
        assert_eq!(err.field, "body");
        let err = parse("ping", br#"{"zen":"x"} trailing"#).unwrap_err();
        assert_eq!(err.field, "body");
    }
}
