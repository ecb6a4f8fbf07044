//! One set of limits for every text that comes in, whatever the path (webhook, API, query):
//! the same value is accepted or refused the same way on SQLite and PostgreSQL.
//!
//! | kind | types | limit |
//! |---|---|---|
//! | name (environment, ref, version, creator, state, task, login, label, action, external id) | [`Name`] | 1 to 255 characters; no control characters; no invisible formatting characters |
//! | free text (description, note, message, pull request title) | [`Text`] | up to 4096 characters; no control characters but tab, LF and CR |
//! | comment body (read for `@slug`) | [`Comment`] | up to 65,536 characters (GitHub's own limit); from a webhook, control characters but tab, LF and CR become U+FFFD |
//! | URL that becomes a link | [`HttpUrl`] | absolute `http(s)` URL with a host, up to 2048 bytes, no whitespace or control characters |
//! | deploy time (API) | [`check_deploy_time`] | not before 2005-01-01, at most 5 minutes ahead of the server's clock |
//! | GitHub timestamps | [`clamp_to_received`] | more than 24 hours ahead of the server's clock: taken as the time received |
//!
//! A value over a limit is refused, naming its field: 400 for a webhook or a query, 422 for an API
//! body. The one exception is a webhook URL that is not `http(s)` (GitHub accepts any string
//! there): the delivery is accepted and the value kept as text, never as a link.
//!
//! This module only checks values; it does not know HTTP, JSON or the database.

use std::fmt;

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde::{Deserialize, Serialize};

/// Longest name, in characters.
pub const NAME_MAX_CHARS: usize = 255;
/// Longest free text, in characters.
pub const TEXT_MAX_CHARS: usize = 4096;
/// Longest pull request comment body, in characters (GitHub's own limit).
pub const COMMENT_MAX_CHARS: usize = 65_536;
/// Longest URL, in bytes.
pub const URL_MAX_BYTES: usize = 2048;
/// How far ahead of the server's clock a client's deploy time may be (clock skew between machines).
pub const MAX_FUTURE_SKEW_MINUTES: i64 = 5;
/// How far ahead of the server's clock a GitHub timestamp may be before it is taken as the time
/// the delivery arrived. GitHub's clock signs its own payloads and is trusted to order reports;
/// a day tolerates a server whose clock is wrong without reordering GitHub's reports, and keeps
/// a forged or corrupted date (9999-12-31) from freezing an environment.
pub const WEBHOOK_MAX_FUTURE_SKEW_HOURS: i64 = 24;

/// Invisible characters that change how the text around them reads: bidirectional overrides
/// and isolates, zero-width spaces and joiners, the byte order mark.
fn is_invisible_format(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}')
}

/// A single-line name: an environment, a ref, a version, a login.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Name(String);

impl Name {
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.is_empty() {
            return Err("must not be empty".to_owned());
        }
        if raw.chars().count() > NAME_MAX_CHARS {
            return Err(format!("must be at most {NAME_MAX_CHARS} characters"));
        }
        if raw.chars().any(char::is_control) {
            return Err("must not contain control characters".to_owned());
        }
        if raw.chars().any(is_invisible_format) {
            return Err("must not contain invisible formatting characters (bidirectional or zero-width)".to_owned());
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl TryFrom<String> for Name {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Name> for String {
    fn from(value: Name) -> Self {
        value.0
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Free text of at most `MAX` characters: any character but control characters other than tab,
/// line feed and carriage return.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct BoundedText<const MAX: usize>(String);

/// A description, a note, a message, a title.
pub type Text = BoundedText<TEXT_MAX_CHARS>;
/// A pull request comment body.
pub type Comment = BoundedText<COMMENT_MAX_CHARS>;

impl<const MAX: usize> BoundedText<MAX> {
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.chars().count() > MAX {
            return Err(format!("must be at most {MAX} characters"));
        }
        if raw.chars().any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r')) {
            return Err("must not contain control characters other than tab and line breaks".to_owned());
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl<const MAX: usize> TryFrom<String> for BoundedText<MAX> {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl<const MAX: usize> From<BoundedText<MAX>> for String {
    fn from(value: BoundedText<MAX>) -> Self {
        value.0
    }
}

/// Why a string is not an [`HttpUrl`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// Over [`URL_MAX_BYTES`], or with control characters: refused on every path.
    #[error("{0}")]
    Malformed(String),
    /// Text, but not an absolute `http(s)` URL (`javascript:`, `data:`, a relative path): refused
    /// by the API; kept as text from a webhook.
    #[error("must be an absolute http(s) URL")]
    NotHttp,
}

/// An absolute `http://` or `https://` URL with a host: the only kind of value a page turns
/// into a link. Kept as given but for the scheme, which is lower-cased (browsers parse it the
/// same way: it has no whitespace or control characters).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct HttpUrl(String);

impl HttpUrl {
    pub fn parse(raw: &str) -> Result<Self, UrlError> {
        check_url_text(raw)?;
        if raw.chars().any(char::is_whitespace) || raw.chars().any(is_invisible_format) {
            return Err(UrlError::NotHttp);
        }
        let parsed = url::Url::parse(raw).map_err(|_| UrlError::NotHttp)?;
        let has_host = parsed.host_str().is_some_and(|h| !h.is_empty());
        if !matches!(parsed.scheme(), "http" | "https") || !has_host {
            return Err(UrlError::NotHttp);
        }
        // `url` forgives a missing `//` ("http:evil.example"); a link must say what it is.
        let Some(rest) = raw.get(parsed.scheme().len()..).filter(|rest| rest.starts_with("://")) else {
            return Err(UrlError::NotHttp);
        };
        Ok(Self(format!("{}{rest}", parsed.scheme())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl TryFrom<String> for HttpUrl {
    type Error = UrlError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<HttpUrl> for String {
    fn from(value: HttpUrl) -> Self {
        value.0
    }
}

/// The checks every URL-shaped value passes, link or not: length and control characters.
pub fn check_url_text(raw: &str) -> Result<(), UrlError> {
    if raw.len() > URL_MAX_BYTES {
        return Err(UrlError::Malformed(format!("must be at most {URL_MAX_BYTES} bytes")));
    }
    if raw.chars().any(char::is_control) {
        return Err(UrlError::Malformed("must not contain control characters".to_owned()));
    }
    Ok(())
}

/// Whether a stored value may become a link. Pages check it again before writing an `href`.
pub fn is_link(raw: &str) -> bool {
    HttpUrl::parse(raw).is_ok()
}

/// The earliest deploy time accepted (before GitHub existed: a wrong clock or a typo).
pub fn earliest_deploy_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2005, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// The latest deploy time accepted when the server's clock says `now`.
pub fn latest_deploy_time(now: DateTime<Utc>) -> DateTime<Utc> {
    now + Duration::minutes(MAX_FUTURE_SKEW_MINUTES)
}

/// A client's deploy time: refused when absurdly old or in the future (one deploy dated 9999
/// would otherwise stay the newest of its environment forever).
pub fn check_deploy_time(at: DateTime<Utc>, now: DateTime<Utc>) -> Result<(), String> {
    if is_leap_second(at) {
        return Err(LEAP_SECOND.to_owned());
    }
    if at < earliest_deploy_time() {
        return Err("must not be before 2005-01-01T00:00:00Z".to_owned());
    }
    if at > latest_deploy_time(now) {
        return Err(format!(
            "must not be more than {MAX_FUTURE_SKEW_MINUTES} minutes in the future (server time {})",
            now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        ));
    }
    Ok(())
}

/// Why a time with second 60 is refused.
pub const LEAP_SECOND: &str =
    "must not be a leap second (:60): each database stores it differently; give the second before or after";

/// A time written with second 60 (chrono keeps it as second 59 with a nanosecond part of one
/// second or more). PostgreSQL and SQLite would store it as different instants, so callers'
/// times with one are refused.
pub fn is_leap_second(at: DateTime<Utc>) -> bool {
    use chrono::Timelike;
    at.nanosecond() >= 1_000_000_000
}

/// GitHub's timestamp taken as is unless it is ahead of the server's clock by more than
/// [`WEBHOOK_MAX_FUTURE_SKEW_HOURS`]: then it is taken as the time the server received it.
pub fn clamp_to_received(at: DateTime<Utc>, received: DateTime<Utc>) -> DateTime<Utc> {
    if at > received + Duration::hours(WEBHOOK_MAX_FUTURE_SKEW_HOURS) {
        received
    } else {
        at
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_leap_second_is_refused_as_a_deploy_time() {
        let now = DateTime::parse_from_rfc3339("2026-12-01T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let leap = DateTime::parse_from_rfc3339("2026-11-30T23:59:60Z")
            .unwrap()
            .with_timezone(&Utc);
        assert!(is_leap_second(leap));
        assert_eq!(check_deploy_time(leap, now).unwrap_err(), LEAP_SECOND);
        let before = DateTime::parse_from_rfc3339("2026-11-30T23:59:59.999Z")
            .unwrap()
            .with_timezone(&Utc);
        assert!(check_deploy_time(before, now).is_ok());
    }
    use super::*;

    #[test]
    fn names_are_single_line_bounded_and_visible() {
        assert!(Name::parse("production").is_ok());
        assert!(Name::parse("préprod 🚀").is_ok());
        assert!(Name::parse(&"e".repeat(255)).is_ok());
        assert!(Name::parse(&"é".repeat(255)).is_ok(), "characters, not bytes");
        for bad in [
            "",
            "a\0b",
            "a\nb",
            "a\tb",
            "\u{7f}",
            "\u{202E}prod",
            "pro\u{200B}d",
            "\u{FEFF}x",
        ] {
            assert!(Name::parse(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(Name::parse(&"e".repeat(256)).is_err());
    }

    #[test]
    fn free_text_keeps_line_breaks_and_refuses_other_control_characters() {
        assert!(Text::parse("line one\r\n\tline two \u{202E}rtl").is_ok());
        assert!(Text::parse(&"x".repeat(4096)).is_ok());
        assert!(Text::parse(&"x".repeat(4097)).is_err());
        assert!(Text::parse("a\0b").is_err());
        assert!(Text::parse("a\u{1b}[31m").is_err());
        assert!(Comment::parse(&"x".repeat(65_536)).is_ok());
    }

    #[test]
    fn only_absolute_http_urls_with_a_host_are_links() {
        for good in ["https://ci.example/builds/1?x=1&y=2#log", "http://10.0.0.1:8080/"] {
            assert_eq!(HttpUrl::parse(good).map(HttpUrl::into_string).as_deref(), Ok(good));
        }
        assert_eq!(
            HttpUrl::parse("HTTPS://Example.COM/a")
                .map(HttpUrl::into_string)
                .as_deref(),
            Ok("https://Example.COM/a"),
            "the scheme is lower-cased, the rest kept"
        );
        for bad in [
            "javascript:alert(1)",
            "JavaScript:alert(1)",
            "data:text/html,<script>alert(1)</script>",
            "vbscript:x",
            "/relative",
            "//evil.example/x",
            "https://",
            "http:evil.example",
            "http:/evil.example",
            "https://ex ample.com",
            " https://example.com",
            "https://example.com/\u{200B}",
            "ftp://example.com/",
            "file:///etc/passwd",
        ] {
            assert_eq!(HttpUrl::parse(bad), Err(UrlError::NotHttp), "{bad:?}");
        }
        assert!(matches!(HttpUrl::parse("https://e.x/\0"), Err(UrlError::Malformed(_))));
        let long = format!("https://example.com/{}", "a".repeat(URL_MAX_BYTES));
        assert!(matches!(HttpUrl::parse(&long), Err(UrlError::Malformed(_))));
        let at_limit = format!("https://example.com/{}", "a".repeat(URL_MAX_BYTES - 20));
        assert_eq!(at_limit.len(), URL_MAX_BYTES);
        assert!(HttpUrl::parse(&at_limit).is_ok());
    }

    #[test]
    fn deploy_times_far_ahead_or_before_2005_are_refused_and_clamped() {
        let now = Utc.with_ymd_and_hms(2026, 11, 2, 9, 0, 0).single().unwrap();
        assert!(check_deploy_time(now + Duration::minutes(5), now).is_ok());
        assert!(check_deploy_time(now + Duration::minutes(5) + Duration::seconds(1), now).is_err());
        assert!(check_deploy_time(earliest_deploy_time(), now).is_ok());
        assert!(check_deploy_time(earliest_deploy_time() - Duration::seconds(1), now).is_err());
        let far = Utc.with_ymd_and_hms(9999, 12, 31, 0, 0, 0).single().unwrap();
        assert_eq!(clamp_to_received(far, now), now);
        assert_eq!(clamp_to_received(now - Duration::days(3), now), now - Duration::days(3));
        assert_eq!(
            clamp_to_received(now + Duration::hours(24), now),
            now + Duration::hours(24)
        );
        assert_eq!(clamp_to_received(now + Duration::hours(25), now), now);
    }
}
