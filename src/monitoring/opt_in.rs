//! Opting a PR in from GitHub: a comment that mentions `@<GITHUB_APP_SLUG>` (the text after the
//! mention becomes the plan's note, and shiplog reacts 👀), or the `deploy-monitoring` label.
//! Also the GitHub writes monitoring makes (reactions, PR comments), as jobs.

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};

use super::plans::{create_plan, PlanOpened};
use crate::connections::{self, Applied};
use crate::events::PullRef;
use crate::github::app::GitHubApp;
use crate::github::client::InstallationClient;
use crate::github::error::CallError;
use crate::github::issues;
use crate::jobs::runner::{JobError, JobHandler};
use crate::jobs::{self, BackgroundJob};
use crate::store::{Store, Writer};
use crate::types::{InstallationId, RepoName};

/// The label that opts a pull request in.
pub const LABEL: &str = "deploy-monitoring";

/// The job that writes to GitHub for a connection: a reaction or a pull-request comment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitHubWrite {
    pub connection_id: i64,
    pub repository: String,
    #[serde(flatten)]
    pub write: Write,
}

/// What [`GitHubWrite`] writes; its fields sit beside the job's own in the payload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Write {
    /// 👀 on an issue comment.
    React { comment_id: i64 },
    /// A comment on pull request `number`.
    Comment { number: i64, body: String },
}

impl BackgroundJob for GitHubWrite {
    const JOB_NAME: &'static str = "github.write";
}

/// The text after `@slug` when `body` mentions it as a whole word, `Some("")` when nothing follows.
pub fn mention(body: &str, slug: &str) -> Option<String> {
    let needle = format!("@{}", slug.to_ascii_lowercase());
    let lower = body.to_ascii_lowercase();
    let mut from = 0;
    while let Some(found) = lower[from..].find(&needle) {
        let start = from + found;
        let end = start + needle.len();
        let before_ok = start == 0 || !lower.as_bytes()[start - 1].is_ascii_alphanumeric();
        let after_ok = lower
            .as_bytes()
            .get(end)
            .is_none_or(|b| !(b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_'));
        if before_ok && after_ok {
            return Some(body[end..].trim().to_owned());
        }
        from = end;
    }
    None
}

/// A `pull_request` labeled event. Call inside the delivery's transaction.
pub async fn from_label(
    db: &impl Writer,
    installation: InstallationId,
    pull: &PullRef,
    label: &str,
    now: DateTime<Utc>,
) -> crate::store::StoreResult<Applied> {
    let connection =
        match connections::for_repository_event(db, installation, &pull.owner, &pull.repository, now).await? {
            Ok(connection) => connection,
            Err(skipped) => return Ok(skipped),
        };
    if !label.eq_ignore_ascii_case(LABEL) {
        return Ok(Applied::Skipped {
            connection_id: connection.id,
            reason: format!("label {label:?} is not {LABEL:?}"),
        });
    }
    opened(
        connection.id,
        pull,
        create_plan(db, connection.id, &pull.repository.name, pull.number, &[], None, now).await?,
    )
}

/// An `issue_comment` on a pull request. Call inside the delivery's transaction.
pub async fn from_comment(
    db: &impl Writer,
    installation: InstallationId,
    pull: &PullRef,
    comment_id: i64,
    body: &str,
    slug: &str,
    now: DateTime<Utc>,
) -> crate::store::StoreResult<Applied> {
    let connection =
        match connections::for_repository_event(db, installation, &pull.owner, &pull.repository, now).await? {
            Ok(connection) => connection,
            Err(skipped) => return Ok(skipped),
        };
    let Some(note) = mention(body, slug) else {
        return Ok(Applied::Skipped {
            connection_id: connection.id,
            reason: format!("the comment does not mention @{slug}"),
        });
    };
    let note = Some(note.as_str()).filter(|n| !n.is_empty());
    let result = create_plan(db, connection.id, &pull.repository.name, pull.number, &[], note, now).await?;
    let react = GitHubWrite {
        connection_id: connection.id,
        repository: pull.repository.name.as_str().to_owned(),
        write: Write::React { comment_id },
    };
    jobs::enqueue(db, &react, Some(format!("github.react:{comment_id}")), now, now).await?;
    opened(connection.id, pull, result)
}

fn opened(connection_id: i64, pull: &PullRef, result: PlanOpened) -> crate::store::StoreResult<Applied> {
    if result.created {
        Ok(Applied::Changed { connection_id })
    } else {
        Ok(Applied::Skipped {
            connection_id,
            reason: format!("pull request #{} is opted in already", pull.number),
        })
    }
}

/// Queues a comment on a pull request.
pub async fn queue_comment(
    db: &impl Writer,
    connection_id: i64,
    repository: &str,
    number: i64,
    body: &str,
    key: &str,
    now: DateTime<Utc>,
) -> crate::store::StoreResult<()> {
    let job = GitHubWrite {
        connection_id,
        repository: repository.to_owned(),
        write: Write::Comment {
            number,
            body: body.to_owned(),
        },
    };
    jobs::enqueue(db, &job, Some(format!("github.comment:{key}")), now, now).await?;
    Ok(())
}

/// Runs [`GitHubWrite`] jobs.
pub struct GitHubWriter {
    pub store: Store,
    pub github: Option<GitHubApp>,
}

impl JobHandler<GitHubWrite> for GitHubWriter {
    fn run(&self, job: GitHubWrite, now: DateTime<Utc>, _attempt: i32) -> BoxFuture<'_, Result<(), JobError>> {
        Box::pin(async move {
            let connection_id = job.connection_id;
            let repo = RepoName::parse(&job.repository).map_err(JobError::Permanent)?;
            let connection = connections::get(&self.store, connection_id)
                .await?
                .ok_or_else(|| JobError::Permanent(format!("connection {connection_id} does not exist")))?;
            let app = self.github.as_ref().ok_or_else(|| JobError::Retry {
                message: "the GitHub App is not configured".into(),
                retry_at: Some(now + chrono::Duration::hours(1)),
            })?;
            let access = InstallationClient {
                app,
                installation: connection.installation_id,
            };
            let repo = &repo;
            let result = match &job.write {
                &Write::React { comment_id } => {
                    access
                        .call(now, |client| async move {
                            issues::react_eyes(&client, repo, comment_id, now).await
                        })
                        .await
                }
                Write::Comment { number, body } => {
                    let number = *number;
                    let body = body.as_str();
                    access
                        .call(now, |client| async move {
                            issues::comment(&client, repo, number, body, now).await
                        })
                        .await
                }
            };
            result.map_err(|e| match e {
                CallError::RateLimited { retry_at } => JobError::Retry {
                    message: "GitHub's rate limit".into(),
                    retry_at,
                },
                other => JobError::retry(other.to_string()),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{mention, GitHubWrite, Write};

    #[test]
    fn a_github_write_keeps_the_flat_payload_of_queued_rows() {
        let react = GitHubWrite {
            connection_id: 1,
            repository: "acme-corp/web-app".to_owned(),
            write: Write::React { comment_id: 7 },
        };
        let comment = r#"{"body":"live","connection_id":1,"number":94,"repository":"acme-corp/web-app"}"#;

        assert_eq!(
            serde_json::to_value(&react).unwrap(),
            serde_json::json!({"connection_id": 1, "repository": "acme-corp/web-app", "comment_id": 7})
        );
        assert_eq!(
            serde_json::from_str::<GitHubWrite>(comment).unwrap().write,
            Write::Comment {
                number: 94,
                body: "live".to_owned()
            }
        );
        assert!(serde_json::from_str::<GitHubWrite>(r#"{"connection_id":1,"repository":"a/b"}"#).is_err());
    }

    #[test]
    fn a_mention_is_a_whole_word_and_keeps_what_follows() {
        assert_eq!(
            mention("@shiplog watch error rates", "shiplog").as_deref(),
            Some("watch error rates")
        );
        assert_eq!(mention("Hey @ShipLog, please", "shiplog").as_deref(), Some(", please"));
        assert_eq!(mention("cc @shiplog", "shiplog").as_deref(), Some(""));
        assert_eq!(mention("@shiplog-bot hi", "shiplog"), None);
        assert_eq!(mention("mail me@shiplog.dev", "shiplog"), None);
        assert_eq!(mention("nothing here", "shiplog"), None);
    }
}
