//! Black-box tests: the real server over real HTTP, one binary so the suite links once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod ancestry;
mod auth_matrix;
mod browser;
mod cli;
mod concurrency;
mod connections;
mod deployments;
mod explicit_api;
mod fake_agent;
mod fake_github;
mod faults;
mod git;
mod health;
mod helpers;
mod jobs;
mod live_batch;
mod manifest;
mod monitoring;
mod pages;
mod processes;
mod pull_requests;
mod security;
mod storage;
mod triggers;
mod webhooks;
