//! `GET /api/metrics/delivery`: the delivery metrics of a window (`delivery::report`), for the
//! connections the caller may see. The same report as a page is `pages/insights.rs`; both read
//! their parameters with [`parse_asked`]. Read from rows; never calls GitHub.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Timelike, Utc};

use super::auth::{Caller, NamedIn};
use super::AppState;
use crate::delivery::report::{self, Asked, BucketSize, WINDOW_MAX_DAYS};
use crate::error::{ApiError, FieldError};
use crate::types::{Environment, RepoName, Scope};

/// The parameters a report takes.
pub const PARAMETERS: [&str; 6] = ["repository", "environment", "connection", "from", "to", "bucket"];

/// The window when none is given: the last 30 days, today included.
pub const DEFAULT_DAYS: i64 = 30;

/// The parameters as sent, each once (empty values are absent).
#[derive(Clone, Debug, Default)]
pub struct Sent {
    pub repository: Option<String>,
    pub environment: Option<String>,
    pub connection: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub bucket: Option<String>,
}

impl Sent {
    /// Where parameter `key`'s value goes; `None` for a name that is not a parameter.
    pub fn slot(&mut self, key: &str) -> Option<&mut Option<String>> {
        Some(match key {
            "repository" => &mut self.repository,
            "environment" => &mut self.environment,
            "connection" => &mut self.connection,
            "from" => &mut self.from,
            "to" => &mut self.to,
            "bucket" => &mut self.bucket,
            _ => return None,
        })
    }
}

/// Reads the query string: an unknown parameter, or one given twice, is named.
pub fn read_query(raw: &str) -> Result<Sent, Vec<FieldError>> {
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(raw).map_err(|_| vec![FieldError::new("query", "is not a valid query string")])?;
    let mut sent = Sent::default();
    let mut errors = Vec::new();
    for (key, value) in pairs {
        let slot = match sent.slot(&key) {
            Some(slot) => slot,
            None => {
                let name: String = key.chars().take(40).collect();
                errors.push(FieldError::new(
                    name,
                    format!("is not a parameter; parameters are {}", PARAMETERS.join(", ")),
                ));
                continue;
            }
        };
        if slot.is_some() {
            errors.push(FieldError::new(key, "is given twice"));
            continue;
        }
        // Not trimmed: a value is taken as sent, so `environment=%0A` is refused, not widened
        // to every environment. Bytes that are not UTF-8 were replaced while decoding.
        if value.contains('\u{FFFD}') {
            errors.push(FieldError::new(key, "is not valid UTF-8"));
            continue;
        }
        *slot = (!value.is_empty()).then_some(value);
    }
    if errors.is_empty() {
        Ok(sent)
    } else {
        Err(errors)
    }
}

/// A day (`2026-11-30`, midnight UTC) or an RFC 3339 time (not a leap second).
fn parse_time(raw: &str) -> Option<DateTime<Utc>> {
    if let Ok(day) = NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
        return Some(day.and_time(NaiveTime::MIN).and_utc());
    }
    DateTime::parse_from_rfc3339(raw)
        .ok()
        .map(|t| t.with_timezone(&Utc))
        .filter(|t| !crate::limits::is_leap_second(*t))
}

/// What is asked, every invalid parameter named (422); a credential asking for another
/// connection is 403.
pub fn parse_asked(sent: &Sent, scope: Scope, now: DateTime<Utc>) -> Result<Asked, ApiError> {
    let mut errors = Vec::new();
    let repository = match sent.repository.as_deref() {
        Some(raw) => RepoName::parse(raw)
            .map_err(|m| errors.push(FieldError::new("repository", m)))
            .ok(),
        None => None,
    };
    let environment = match sent.environment.as_deref() {
        Some(raw) => Environment::parse(raw)
            .map(|e| e.as_str().to_owned())
            .map_err(|m| errors.push(FieldError::new("environment", m)))
            .ok(),
        None => None,
    };
    let connection = match sent.connection.as_deref() {
        Some(raw) => match raw.parse::<i64>() {
            Ok(id) if id > 0 => Some(id),
            _ => {
                errors.push(FieldError::new(
                    "connection",
                    "must be a connection id (a positive number)",
                ));
                None
            }
        },
        None => None,
    };
    let time = |field: &str, raw: Option<&str>, errors: &mut Vec<FieldError>| match raw {
        Some(raw) => match parse_time(raw) {
            Some(at) => Some(at),
            None => {
                errors.push(FieldError::new(
                    field,
                    "must be a day (2026-11-30) or an RFC 3339 time (2026-11-30T12:00:00Z)",
                ));
                None
            }
        },
        None => None,
    };
    let from = time("from", sent.from.as_deref(), &mut errors);
    let to = time("to", sent.to.as_deref(), &mut errors);
    let bucket = match sent.bucket.as_deref() {
        Some(raw) => match BucketSize::parse(raw) {
            Some(bucket) => Some(bucket),
            None => {
                errors.push(FieldError::new("bucket", "must be day or week"));
                None
            }
        },
        None => None,
    };
    if !errors.is_empty() {
        return Err(ApiError::unprocessable(errors));
    }
    // Today included: the window ends at the next midnight unless `to` says otherwise.
    let tomorrow = (now.date_naive() + Duration::days(1))
        .and_time(NaiveTime::MIN)
        .and_utc();
    // Whole seconds: the report counts in seconds since the epoch.
    let to = to.unwrap_or(tomorrow).with_nanosecond(0).unwrap_or(tomorrow);
    let from = from.unwrap_or(to - Duration::days(DEFAULT_DAYS));
    let from = from.with_nanosecond(0).unwrap_or(from);
    if from >= to {
        // An invalid parameter like any other (422), not a malformed body (400).
        return Err(ApiError::unprocessable(vec![FieldError::new(
            "from",
            "must be before to",
        )]));
    }
    if to - from > Duration::days(WINDOW_MAX_DAYS) {
        return Err(ApiError::unprocessable(vec![FieldError::new(
            "from",
            format!("the window is at most {WINDOW_MAX_DAYS} days; ask for a shorter one"),
        )]));
    }
    let bucket = bucket.unwrap_or(if to - from > Duration::days(31) {
        BucketSize::Week
    } else {
        BucketSize::Day
    });
    let connections = match (scope, connection) {
        (Scope::Nothing, _) => Some(Vec::new()),
        (Scope::All, None) => None,
        (Scope::All, Some(id)) => Some(vec![id]),
        (Scope::Connection(own), None) => Some(vec![own.0]),
        (Scope::Connection(own), Some(id)) if id == own.0 => Some(vec![id]),
        (Scope::Connection(_), Some(_)) => {
            return Err(ApiError::Forbidden {
                kind: "wrong-connection",
                detail: "this credential belongs to another connection".to_owned(),
            })
        }
    };
    Ok(Asked {
        connections,
        repository,
        environment,
        from,
        to,
        bucket,
    })
}

/// What `sent` asks, narrowed to the connection of the repository it names (another
/// connection's repository is 403 for a credential, as on `/api/drift`).
pub async fn scoped(caller: &Caller, state: &AppState, sent: &Sent) -> Result<Asked, ApiError> {
    let mut asked = parse_asked(sent, caller.scope(), state.clock.now())?;
    if let Some(repository) = &asked.repository {
        let connection = caller.connection_for(&state.store, repository, NamedIn::Query).await?;
        asked.connections = match asked.connections {
            Some(ids) if !ids.contains(&connection.id) => Some(Vec::new()),
            _ => Some(vec![connection.id]),
        };
    }
    Ok(asked)
}

#[utoipa::path(get, path = "/api/metrics/delivery",
    params(
        ("repository" = Option<String>, Query, description = "`owner/repo`"),
        ("environment" = Option<String>, Query, description = "an environment"),
        ("connection" = Option<String>, Query, description = "a connection's id"),
        ("from" = Option<String>, Query, description = "the window's start (RFC 3339 or a date)"),
        ("to" = Option<String>, Query, description = "the window's end"),
        ("bucket" = Option<String>, Query, description = "`day` or `week`"),
    ),
    responses((status = 200, description = "each metric for the window, per bucket, with its items", body = crate::delivery::report::Report), (status = 422, description = "an unknown, repeated or invalid parameter, each named")))]
/// `GET /api/metrics/delivery`: each metric for the window, per bucket, with its items.
#[tracing::instrument(skip_all)]
pub async fn show_delivery_metrics(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let sent = read_query(req.query_string()).map_err(ApiError::unprocessable)?;
    let asked = scoped(&caller, &state, &sent).await?;
    let report = report::build(&state.store, &asked).await?;
    Ok(HttpResponse::Ok().json(report))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_and_repeated_parameters_are_named() {
        let errors = read_query("repository=a/b&repository=c/d&colour=red").unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["repository", "colour"]);
        assert!(read_query("from=&bucket=week").unwrap().from.is_none());
        // Taken as sent: a line break is not trimmed into "no filter".
        assert_eq!(
            read_query("environment=%0A").unwrap().environment.as_deref(),
            Some("\n")
        );
        assert_eq!(read_query("environment=%FF%FE").unwrap_err()[0].field, "environment");
        assert!(parse_time("2026-11-30T23:59:60Z").is_none());
    }

    #[test]
    fn the_window_defaults_to_the_last_thirty_days_by_day() {
        let now = DateTime::parse_from_rfc3339("2026-11-30T15:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let asked = parse_asked(&Sent::default(), Scope::All, now).unwrap();
        assert_eq!(asked.to.to_rfc3339(), "2026-12-01T00:00:00+00:00");
        assert_eq!(asked.from.to_rfc3339(), "2026-11-01T00:00:00+00:00");
        assert_eq!(asked.bucket, BucketSize::Day);
        let year = Sent {
            from: Some("2025-12-01".into()),
            ..Sent::default()
        };
        assert_eq!(parse_asked(&year, Scope::All, now).unwrap().bucket, BucketSize::Week);
        let long = Sent {
            from: Some("2024-01-01".into()),
            ..Sent::default()
        };
        assert!(parse_asked(&long, Scope::All, now).is_err());
    }
}
