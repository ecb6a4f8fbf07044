//! Delivery metrics (the five DORA defines), each auditable down to the pull requests and deploys
//! behind it. The words are the README's ("Delivery metrics"), as built here:
//!
//! - a **production deploy** went live in an environment GitHub flags `production_environment`
//!   or whose name matches the connection's `production_environments`; backfilled deploys count;
//! - **deployment frequency**: production deploys that went live, per day and per week;
//! - **change lead time**: per merged pull request and environment, from its first commit (else
//!   its opening, else its merge, said in the item) to when the first deploy there that
//!   contained its merge commit went live; median and p90 by nearest rank;
//! - **change fail rate**: production deploys that needed intervention (rolled back; a revert of
//!   one of its pull requests shipped within `revert_window_hours`; a monitoring check said
//!   `regressed`), each deploy once, over production deploys; failed attempts apart;
//! - **failed deployment recovery time**: from the failed deploy going live to the first deploy
//!   that recovered it (the rollback, the deploy shipping the revert, for a regression the next
//!   deploy in its environment);
//! - **deployment rework rate**: unplanned deploys (rollbacks, deploys shipping a revert) over
//!   production deploys.
//!
//! [`record`] stores each fact as it becomes known; [`report`] reads a window of them.

pub mod record;
pub mod report;
