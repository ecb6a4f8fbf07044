//! Sets `SHIPLOG_GIT_SHA` for `shiplog_build_info`: the build environment's `SHIPLOG_GIT_SHA`
//! when given (a Docker build without `.git`), else `git rev-parse HEAD`, else `unknown`.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=SHIPLOG_GIT_SHA");
    // Built again when HEAD moves (a worktree's HEAD and refs live outside `.git/`).
    // Only files that exist: cargo would run the script again on every build for a missing
    // one (a packed ref has no file of its own).
    let watched = [git(&["rev-parse", "--git-path", "HEAD"]), branch_ref()];
    for path in watched
        .into_iter()
        .flatten()
        .filter(|p| std::path::Path::new(p).exists())
    {
        println!("cargo:rerun-if-changed={path}");
    }
    let given = std::env::var("SHIPLOG_GIT_SHA").ok();
    let sha = given
        .or_else(|| git(&["rev-parse", "HEAD"]))
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric()))
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=SHIPLOG_GIT_SHA={sha}");
}

fn git(args: &[&str]) -> Option<String> {
    Command::new("git")
        .args(args)
        .output()
        .ok()
        .filter(|out| out.status.success())
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .map(|s| s.trim().to_owned())
}

/// The file of the branch HEAD names, if it is one.
fn branch_ref() -> Option<String> {
    let name = git(&["symbolic-ref", "-q", "HEAD"])?;
    git(&["rev-parse", "--git-path", &name])
}
