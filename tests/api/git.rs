//! Real git repositories built in a test, so ancestry answers are true by construction.

use std::path::Path;
use std::process::Command;

pub struct GitRepo {
    dir: tempfile::TempDir,
    ticks: std::cell::Cell<u32>,
}

impl GitRepo {
    pub fn new() -> Self {
        let repo = Self {
            dir: tempfile::tempdir().unwrap(),
            ticks: std::cell::Cell::new(0),
        };
        repo.git(&["init", "-q", "-b", "main"]);
        repo.git(&["config", "user.email", "dev@acme.test"]);
        repo.git(&["config", "user.name", "Acme Dev"]);
        repo.git(&["config", "commit.gpgsign", "false"]);
        repo
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Runs git in the repository and returns its trimmed output; a failure fails the test.
    pub fn git(&self, args: &[&str]) -> String {
        run_git(self.path(), args).unwrap_or_else(|e| panic!("git {args:?}: {e}"))
    }

    /// An empty commit on the current branch; returns its SHA. Dates move forward one minute a
    /// commit, so the history's order is stable.
    pub fn commit(&self, message: &str) -> String {
        let tick = self.ticks.get() + 1;
        self.ticks.set(tick);
        let date = format!("2026-10-01T00:{:02}:{:02}Z", (tick / 60) % 60, tick % 60);
        let output = Command::new("git")
            .args(["commit", "-q", "--allow-empty", "-m", message])
            .env("GIT_AUTHOR_DATE", &date)
            .env("GIT_COMMITTER_DATE", &date)
            .current_dir(self.path())
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "git commit: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        self.head()
    }

    /// `n` commits on the current branch at once (through `git fast-import`); their SHAs, oldest
    /// first. For histories too long to build one `git commit` at a time.
    pub fn append_commits(&self, n: usize, prefix: &str) -> Vec<String> {
        use std::io::Write;
        let branch = self.git(&["symbolic-ref", "HEAD"]);
        let parent = self.head();
        let mut stream = String::new();
        // On the same clock as `commit`, after it: a commit dated before its parent makes
        // `git rev-list A ^B` (what the fake GitHub counts with) stop early and miscount.
        let first_tick = self.ticks.get() + 1;
        self.ticks.set(self.ticks.get() + n as u32);
        for i in 0..n {
            let message = format!("{prefix} {i}");
            stream.push_str(&format!(
                "commit {branch}\ncommitter Acme Dev <dev@acme.test> {} +0000\ndata {}\n{message}\n",
                1_790_812_800 + u64::from(first_tick) + i as u64,
                message.len() + 1
            ));
            if i == 0 {
                stream.push_str(&format!("from {parent}\n"));
            }
            stream.push('\n');
        }
        let mut child = Command::new("git")
            .args(["fast-import", "--quiet", "--force"])
            .current_dir(self.path())
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(stream.as_bytes()).unwrap();
        assert!(child.wait().unwrap().success(), "git fast-import failed");
        self.git(&["reset", "-q", "--hard"]);
        let listed = self.git(&["rev-list", "--reverse", &format!("{parent}..HEAD")]);
        listed.lines().map(str::to_owned).collect()
    }

    pub fn head(&self) -> String {
        self.git(&["rev-parse", "HEAD"])
    }

    /// Creates `name` at the current commit and switches to it.
    pub fn branch(&self, name: &str) {
        self.git(&["checkout", "-q", "-b", name]);
    }

    pub fn checkout(&self, name: &str) {
        self.git(&["checkout", "-q", name]);
    }

    /// A branch with no history in common with the rest.
    pub fn orphan(&self, name: &str) {
        self.git(&["checkout", "-q", "--orphan", name]);
    }

    /// Merges `branch` into the current one with a merge commit; returns its SHA.
    pub fn merge(&self, branch: &str, message: &str) -> String {
        self.git(&["merge", "-q", "--no-ff", "-m", message, branch]);
        self.head()
    }

    /// `git merge-base --is-ancestor a b`: the truth the fake GitHub's answers must match.
    pub fn is_ancestor(&self, a: &str, b: &str) -> bool {
        Command::new("git")
            .args(["merge-base", "--is-ancestor", a, b])
            .current_dir(self.path())
            .status()
            .unwrap()
            .success()
    }
}

pub fn run_git(dir: &Path, args: &[&str]) -> Result<String, String> {
    let output = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .map_err(|e| e.to_string())?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).trim().to_owned())
    }
}
