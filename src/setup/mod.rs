//! Setting the GitHub App up from the browser (issue 20, part 1): the pieces that exist so far.
//!
//! - [`secret_key`]: the key that encrypts the App's secrets at rest (`SHIPLOG_SECRET_KEY` or a
//!   key file created with mode 0600), and sealing/opening values with it (XChaCha20-Poly1305).
//! - [`manifest`]: the App manifest JSON posted to GitHub, built from `SHIPLOG_PUBLIC_URL`; its
//!   content is checked against `app-manifest.yml` by a test, so the two cannot drift apart.
//! - [`form`]: where the manifest form posts (the user's or a validated organization's "new
//!   App" page on GitHub, with the state).
//! - [`state`]: the single-use `state` (only its hash stored, one hour, consumed atomically).
//! - [`stored_app`]: the App GitHub created, in the database with its secrets sealed.
//! - [`show`]: `shiplog setup show`, never a secret.
//!
//! - [`conversion`]: the `app.convert_manifest` job that exchanges the code the callback kept.
//!
//! The code exchange itself is `crate::github::manifest_conversion`; the `/setup` page and
//! `/setup/callback` are `crate::http::pages::setup`. `serve` reads the stored App at start
//! (`crate::startup`). Not here yet (README, "Register the GitHub App"): using it without a
//! restart (the shared App handle).

pub mod conversion;
pub mod form;
pub mod manifest;
pub mod secret_key;
pub mod show;
pub mod state;
pub mod stored_app;
