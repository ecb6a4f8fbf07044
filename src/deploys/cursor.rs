//! Paging through the deploy history: newest first, a page at a time, with an opaque cursor
//! (`<deploy time in µs>.<id>`) that names the last deploy shown (keyset paging on
//! [`super::DeployFilter::before`]).

use chrono::{DateTime, Utc};

use super::{list, Deploy, DeployFilter};
use crate::store::{Store, StoreResult};

/// One page of the history, and the cursor of the next when there is one.
#[derive(Debug)]
pub struct Page {
    pub deploys: Vec<Deploy>,
    pub next_cursor: Option<String>,
}

/// Up to `limit` deploys matching `filter`, newest first.
pub async fn page(store: &Store, filter: &DeployFilter, limit: u64) -> StoreResult<Page> {
    // One more than asked tells whether there is a next page.
    let mut deploys = list(store, filter, limit.saturating_add(1)).await?;
    let next_cursor = if deploys.len() as u64 > limit {
        deploys.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        deploys.last().map(|d| encode(d.deploy_time, d.id.0))
    } else {
        None
    };
    Ok(Page { deploys, next_cursor })
}

/// Opaque to clients: `<deploy time in µs>.<id>`.
pub fn encode(time: DateTime<Utc>, id: i64) -> String {
    format!("{}.{id}", time.timestamp_micros())
}

/// A cursor [`page`] handed out: a time both databases can hold (years 1 to 9999; PostgreSQL
/// refuses what chrono accepts before 4713 BC) and a row id.
pub fn decode(raw: &str) -> Option<(DateTime<Utc>, i64)> {
    let (micros, id) = raw.split_once('.')?;
    let time = DateTime::from_timestamp_micros(micros.parse().ok()?)?;
    let year = chrono::Datelike::year(&time);
    if !(1..=9999).contains(&year) {
        return None;
    }
    Some((time, id.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn a_cursor_reads_back_as_the_position_it_names() {
        let time = Utc.with_ymd_and_hms(2026, 11, 30, 12, 0, 0).single().unwrap();
        assert_eq!(decode(&encode(time, 42)), Some((time, 42)));
    }

    #[test]
    fn a_cursor_no_database_can_hold_or_not_ours_is_refused() {
        assert_eq!(decode("nonsense"), None);
        assert_eq!(decode("12.x"), None);
        assert_eq!(decode(&format!("{}.1", i64::MIN)), None);
    }
}
