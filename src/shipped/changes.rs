//! A range of commits told as people think of it: the merged pull requests it contains, each
//! with its own commits, then the commits that belong to no known pull request.
//!
//! A pull request is in the range when its merge commit is (squash, rebase or merge commit:
//! GitHub's `merge_commit_sha` is the commit the merge made on the base branch). A merge commit's
//! pull request also owns the range's commits reachable from its second parent and not from its
//! first (the branch it merged), so they are not listed again as loose commits. A squash or
//! rebase merge owns only its merge commit. Nothing here asks GitHub: the parents come with the
//! listing.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::store::commits::StoredCommit;
use crate::store::pull_requests::PullRequestRow;

/// One commit of a range.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Commit {
    pub sha: String,
    /// The message's first line.
    pub title: String,
    /// The author's GitHub login when GitHub knows it, else the name in the commit.
    pub author: Option<String>,
    pub authored_at: Option<DateTime<Utc>>,
}

/// A merged pull request a range contains.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PullRequest {
    pub number: i64,
    pub title: String,
    pub author: Option<String>,
    pub merged_at: DateTime<Utc>,
    pub created_at: Option<DateTime<Utc>>,
    pub merge_commit_sha: String,
    /// The range's commits it brought (its merge commit, and for a merge commit the branch it
    /// merged), newest first.
    pub commits: Vec<String>,
}

/// A range as pull requests and loose commits, newest first.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Changes {
    pub pull_requests: Vec<PullRequest>,
    /// Commits no known pull request owns.
    pub commits: Vec<Commit>,
    /// Every commit of the range.
    pub total_commits: usize,
}

impl Changes {
    /// When the oldest pull request was merged.
    pub fn oldest_merged_at(&self) -> Option<DateTime<Utc>> {
        self.pull_requests.iter().map(|p| p.merged_at).min()
    }
}

/// Groups `listing` (oldest first, as compare lists it) by the pull requests merged as one of
/// its commits.
pub fn group(listing: &[StoredCommit], merged: &[PullRequestRow]) -> Changes {
    let in_range: HashMap<&str, &StoredCommit> = listing.iter().map(|c| (c.sha.as_str(), c)).collect();
    let mut owned: HashSet<&str> = HashSet::new();
    let mut by_merge: HashMap<&str, Vec<&PullRequestRow>> = HashMap::new();
    for pr in merged {
        by_merge.entry(pr.merge_commit_sha.as_str()).or_default().push(pr);
    }
    let mut pull_requests = Vec::new();
    // Newest first: a merge commit claims its branch before an older merge could.
    for commit in listing.iter().rev() {
        let Some(prs) = by_merge.get(commit.sha.as_str()) else {
            continue;
        };
        let mut commits = vec![commit.sha.clone()];
        owned.insert(commit.sha.as_str());
        if let [first, rest @ ..] = commit.parents.as_slice() {
            if !rest.is_empty() {
                let mainline = reachable(&in_range, [first.as_str()], &HashSet::new());
                let branch = reachable(&in_range, rest.iter().map(String::as_str), &mainline);
                for c in listing.iter().rev() {
                    if branch.contains(c.sha.as_str()) && owned.insert(c.sha.as_str()) {
                        commits.push(c.sha.clone());
                    }
                }
            }
        }
        for pr in prs {
            pull_requests.push(PullRequest {
                number: pr.number,
                title: pr.title.clone(),
                author: pr.author.clone(),
                merged_at: pr.merged_at,
                created_at: pr.created_at,
                merge_commit_sha: pr.merge_commit_sha.clone(),
                commits: commits.clone(),
            });
        }
    }
    let commits = listing
        .iter()
        .rev()
        .filter(|c| !owned.contains(c.sha.as_str()))
        .map(|c| Commit {
            sha: c.sha.clone(),
            title: c.title.clone(),
            author: c.author_login.clone().or_else(|| c.author_name.clone()),
            authored_at: c.authored_at,
        })
        .collect();
    Changes {
        pull_requests,
        commits,
        total_commits: listing.len(),
    }
}

/// The range's commits reachable from `starts` (inclusive) through parents inside the range,
/// not entering `stop`.
fn reachable<'a>(
    in_range: &HashMap<&'a str, &'a StoredCommit>,
    starts: impl IntoIterator<Item = &'a str>,
    stop: &HashSet<&'a str>,
) -> HashSet<&'a str> {
    let mut seen = HashSet::new();
    let mut stack: Vec<&str> = starts.into_iter().collect();
    while let Some(sha) = stack.pop() {
        let Some((&key, commit)) = in_range.get_key_value(sha) else {
            continue;
        };
        if stop.contains(key) || !seen.insert(key) {
            continue;
        }
        stack.extend(commit.parents.iter().map(String::as_str));
    }
    seen
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commit(sha: &str, parents: &[&str]) -> StoredCommit {
        StoredCommit {
            sha: sha.to_owned(),
            parents: parents.iter().map(|p| (*p).to_owned()).collect(),
            title: format!("commit {sha}"),
            author_login: None,
            author_name: Some("dev".to_owned()),
            authored_at: None,
            reverts: Default::default(),
        }
    }

    fn pr(number: i64, merge: &str) -> PullRequestRow {
        PullRequestRow {
            number,
            title: format!("PR {number}"),
            author: Some("octocat".to_owned()),
            merge_commit_sha: merge.to_owned(),
            merged_at: DateTime::parse_from_rfc3339("2026-10-01T00:00:00Z")
                .unwrap()
                .with_timezone(&Utc),
            created_at: None,
        }
    }

    #[test]
    fn a_merge_commit_owns_the_branch_it_merged_and_the_rest_are_loose() {
        // base o ─ a ─────── m (merge of b1, b2) ─ c
        //           └ b1 ─ b2 ┘
        let listing = vec![
            commit("a", &["o"]),
            commit("b1", &["a"]),
            commit("b2", &["b1"]),
            commit("m", &["a", "b2"]),
            commit("c", &["m"]),
        ];
        let changes = group(&listing, &[pr(7, "m")]);
        assert_eq!(changes.pull_requests.len(), 1);
        assert_eq!(changes.pull_requests[0].commits, ["m", "b2", "b1"]);
        let loose: Vec<&str> = changes.commits.iter().map(|c| c.sha.as_str()).collect();
        assert_eq!(loose, ["c", "a"]);
        assert_eq!(changes.total_commits, 5);
    }

    #[test]
    fn a_squash_merge_owns_its_one_commit_and_an_unknown_pr_stays_a_commit() {
        let listing = vec![commit("s1", &["o"]), commit("s2", &["s1"])];
        let changes = group(&listing, &[pr(9, "s2")]);
        assert_eq!(changes.pull_requests[0].number, 9);
        assert_eq!(changes.pull_requests[0].commits, ["s2"]);
        assert_eq!(changes.commits.len(), 1);
        assert_eq!(changes.commits[0].sha, "s1");
        assert_eq!(group(&listing, &[]).commits.len(), 2);
    }
}
