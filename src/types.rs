//! Validated value types. An invalid value cannot be constructed, so code that holds one does not
//! need to check it again.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::limits::Name;

/// An integer id with a type of its own, so one kind of id cannot be passed for another. The JSON
/// and the `Display` form are the bare number.
macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }
    };
}

id_type!(
    /// A GitHub App installation id.
    InstallationId
);
id_type!(
    /// A connection's row id.
    ConnectionId
);
id_type!(
    /// A deploy's row id.
    DeployId
);

/// Which connections a caller may see.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Every connection (the admin).
    All,
    /// This one only (a deploy credential, an agent signing with its connection's own secret).
    Connection(ConnectionId),
    /// None (an agent signing with the server's secret: it only posts verdicts).
    Nothing,
}

impl Scope {
    /// Whether a resource of `connection` is in this scope.
    pub fn includes(self, connection: ConnectionId) -> bool {
        match self {
            Self::All => true,
            Self::Connection(id) => id == connection,
            Self::Nothing => false,
        }
    }
}

/// `owner/repo` as GitHub spells it; compared case-insensitively, as GitHub does.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RepoName {
    full_name: String,
    key: String,
}

impl RepoName {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        let Some((owner, repo)) = raw.split_once('/') else {
            return Err("must be owner/repo".to_owned());
        };
        let valid_part = |part: &str, max: usize| {
            !part.is_empty()
                && part.len() <= max
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        };
        if !valid_part(owner, 39) || !valid_part(repo, 100) || repo == "." || repo == ".." {
            return Err("must be owner/repo (letters, digits, '-', '_', '.')".to_owned());
        }
        Ok(Self {
            full_name: raw.to_owned(),
            key: raw.to_ascii_lowercase(),
        })
    }

    /// As GitHub spells it.
    pub fn as_str(&self) -> &str {
        &self.full_name
    }

    /// Lower-cased, for matching and storage keys.
    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn owner(&self) -> &str {
        self.full_name.split_once('/').map_or("", |(owner, _)| owner)
    }
}

impl PartialEq for RepoName {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}

impl Eq for RepoName {}

impl fmt::Display for RepoName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.full_name)
    }
}

impl TryFrom<String> for RepoName {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<RepoName> for String {
    fn from(value: RepoName) -> Self {
        value.full_name
    }
}

/// The `X-GitHub-Delivery` GUID: printable ASCII, at most 100 characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveryId(String);

impl DeliveryId {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        if raw.is_empty() || raw.len() > 100 || !raw.chars().all(|c| c.is_ascii_graphic()) {
            return Err("must be 1 to 100 printable ASCII characters".to_owned());
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DeliveryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The GitHub account an installation belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub login: String,
    /// `Organization`, `User` or `Enterprise`.
    #[serde(rename = "type")]
    pub kind: String,
    pub id: Option<i64>,
}

/// A repository as GitHub names it in installation events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepoRef {
    pub github_id: i64,
    pub name: RepoName,
}

/// A commit SHA: 7 to 40 hex digits, stored lower-case. Full SHAs are 40 digits.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CommitSha(String);

impl CommitSha {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        if !(7..=40).contains(&raw.len()) || !raw.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err("must be 7 to 40 hex characters".to_owned());
        }
        Ok(Self(raw.to_ascii_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_full(&self) -> bool {
        self.0.len() == 40
    }

    /// The first seven digits, as GitHub shows them.
    pub fn short(&self) -> &str {
        &self.0[..7]
    }
}

impl fmt::Display for CommitSha {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for CommitSha {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<CommitSha> for String {
    fn from(value: CommitSha) -> Self {
        value.0
    }
}

/// An environment a deploy goes to: a [`Name`] (its rules, not a copy of them), compared exactly,
/// byte for byte, as the store matches environments (`production` and `Production` are two).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Environment(Name);

impl Environment {
    /// From a client: surrounding whitespace is trimmed, then the name must be a [`Name`].
    pub fn parse(raw: &str) -> Result<Self, String> {
        Name::parse(raw.trim()).map(Self)
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

/// A name already validated (GitHub's spelling, a stored row) is kept as it is.
impl From<Name> for Environment {
    fn from(value: Name) -> Self {
        Self(value)
    }
}

impl From<Environment> for String {
    fn from(value: Environment) -> Self {
        value.0.into_string()
    }
}

impl fmt::Display for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_names_match_case_insensitively_and_keep_their_spelling() {
        let a = RepoName::parse("Acme/Web-App").unwrap();
        let b = RepoName::parse("acme/web-app").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.as_str(), "Acme/Web-App");
        assert_eq!(a.key(), "acme/web-app");
        assert_eq!(a.owner(), "Acme");
    }

    #[test]
    fn malformed_repo_names_are_refused() {
        for bad in [
            "",
            "acme",
            "/repo",
            "acme/",
            "acme/repo/extra",
            "ac me/repo",
            "acme/..",
            "a/b c",
        ] {
            assert!(RepoName::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn commit_shas_are_hex_of_7_to_40_digits_in_lower_case() {
        let sha = CommitSha::parse("4C1F0F0A9D6E3B2A8F7E6D5C4B3A29181716151A").unwrap();
        assert_eq!(sha.as_str(), "4c1f0f0a9d6e3b2a8f7e6d5c4b3a29181716151a");
        assert!(sha.is_full());
        assert_eq!(sha.short(), "4c1f0f0");
        assert!(CommitSha::parse("abc123").is_err());
        assert!(CommitSha::parse("abc1234").is_ok());
        assert!(CommitSha::parse(&"a".repeat(41)).is_err());
        assert!(CommitSha::parse("abcdefg").is_err());
    }

    #[test]
    fn environments_are_trimmed_names_compared_exactly() {
        let env = Environment::parse(" production ").unwrap();
        assert_eq!(env.as_str(), "production");
        assert_ne!(env, Environment::parse("Production").unwrap());
        assert_eq!(serde_json::to_string(&env).unwrap(), "\"production\"");
        assert!(Environment::parse("  ").is_err());
        assert!(Environment::parse("a\u{0}b").is_err());
        assert!(Environment::parse(&"x".repeat(256)).is_err());
    }

    #[test]
    fn ids_show_as_the_bare_number_and_scopes_include_only_their_connections() {
        assert_eq!(serde_json::to_string(&DeployId(42)).unwrap(), "42");
        assert_eq!(ConnectionId(7).to_string(), "7");
        assert!(Scope::All.includes(ConnectionId(7)));
        assert!(Scope::Connection(ConnectionId(7)).includes(ConnectionId(7)));
        assert!(!Scope::Connection(ConnectionId(7)).includes(ConnectionId(8)));
        assert!(!Scope::Nothing.includes(ConnectionId(7)));
    }

    #[test]
    fn delivery_ids_are_bounded_printable_text() {
        assert!(DeliveryId::parse("72d3162e-cc78-11e3-81ab-4c9367dc0958").is_ok());
        assert!(DeliveryId::parse("").is_err());
        assert!(DeliveryId::parse("has space").is_err());
        assert!(DeliveryId::parse(&"x".repeat(101)).is_err());
    }
}
