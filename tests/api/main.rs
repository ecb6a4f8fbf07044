//! Black-box tests: the real server over real HTTP, one binary so the suite links once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod ancestry;
mod browser;
mod cli;
mod connections;
mod deployments;
mod explicit_api;
mod fake_agent;
mod fake_github;
mod faults;
mod git;
mod health;
mod helpers;
mod hostile_pages;
mod jobs;
mod limits;
mod live_batch;
mod manifest;
mod monitoring;
mod pages;
mod processes;
mod pull_requests;
mod storage;
mod triggers;
mod webhooks;
