//! Setting the GitHub App up from the browser (issue 20, part 1): the pieces that exist so far.
//!
//! - [`secret_key`]: the key that encrypts the App's secrets at rest (`SHIPLOG_SECRET_KEY` or a
//!   key file created with mode 0600), and sealing/opening values with it (XChaCha20-Poly1305).
//! - [`manifest`]: the App manifest JSON posted to GitHub, built from `SHIPLOG_PUBLIC_URL`; its
//!   content is checked against `app-manifest.yml` by a test, so the two cannot drift apart.
//!
//! Not here yet (see README "Register the GitHub App"): the `/setup` page, the callback, the
//! `app.convert_manifest` job, storing the App and using it without a restart.

pub mod manifest;
pub mod secret_key;
pub mod show;
pub mod state;
pub mod stored_app;
