//! Per-connection settings: what they are, how a patch is validated, and which deployment events
//! they skip.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::patterns::EnvironmentPattern;
use super::rules::{self, WorkflowRule};
use crate::validation::Invalid;

/// Stored as JSON; a key added in a later version gets its default.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ConnectionSettings {
    /// Turn GitHub `deployment` / `deployment_status` events into deploy rows.
    pub auto_create_deployments: bool,
    /// Skip deployments GitHub marks `transient_environment: true` (preview apps).
    pub ignore_transient_environments: bool,
    /// Skip deployments to environments matching any of these patterns.
    pub ignored_environments: Vec<EnvironmentPattern>,
    /// This connection's agent, instead of `SHIPLOG_AGENT_URL` (its secret is kept apart). An
    /// absolute http(s) URL; like every outbound target, called only at a public address or one
    /// in `SHIPLOG_OUTBOUND_ALLOW`.
    pub agent_url: Option<String>,
    /// Which GitHub Actions runs are deploys (`rules.rs`); none by default.
    pub workflow_rules: Vec<WorkflowRule>,
    /// The board's and drift's order of environments, left to right (`environments.rs`); the
    /// environments it does not name are placed by kind.
    pub environment_order: Vec<String>,
    /// Which environments are production-like (besides those GitHub flags
    /// `production_environment`): rightmost on the board.
    pub production_environments: Vec<EnvironmentPattern>,
    /// A deploy that ships a revert of one of an earlier deploy's pull requests within this many
    /// hours of it makes the earlier deploy a failed change (delivery metrics).
    pub revert_window_hours: u32,
}

impl Default for ConnectionSettings {
    fn default() -> Self {
        Self {
            auto_create_deployments: true,
            ignore_transient_environments: false,
            ignored_environments: Vec::new(),
            agent_url: None,
            workflow_rules: Vec::new(),
            environment_order: Vec::new(),
            production_environments: super::environments::DEFAULT_PRODUCTION
                .iter()
                .filter_map(|raw| EnvironmentPattern::parse(raw).ok())
                .collect(),
            revert_window_hours: DEFAULT_REVERT_WINDOW_HOURS,
        }
    }
}

/// At most this many `ignored_environments` patterns per connection: each deployment event is
/// matched against all of them inside the intake transaction.
pub const MAX_IGNORED_ENVIRONMENTS: usize = 100;

/// At most this many names in `environment_order` and patterns in `production_environments`.
pub const MAX_ORDERED_ENVIRONMENTS: usize = 50;

/// The default `revert_window_hours`, and its largest value (30 days).
pub const DEFAULT_REVERT_WINDOW_HOURS: u32 = 24;
pub const MAX_REVERT_WINDOW_HOURS: u32 = 720;

/// The keys a patch may carry.
pub const KEYS: [&str; 9] = [
    "auto_create_deployments",
    "ignore_transient_environments",
    "ignored_environments",
    "agent_url",
    "agent_secret",
    "workflow_rules",
    "environment_order",
    "production_environments",
    "revert_window_hours",
];

impl ConnectionSettings {
    /// These settings with `patch` (a JSON object of some keys) applied. Every problem is reported
    /// with its field: unknown keys, wrong types, malformed patterns.
    pub fn patched(&self, patch: &Value) -> Result<Self, Invalid> {
        let Some(object) = patch.as_object() else {
            return Err(Invalid::field("body", "must be a JSON object of settings"));
        };
        let mut next = self.clone();
        let mut errors = Invalid::default();
        for (key, value) in object {
            match key.as_str() {
                "auto_create_deployments" => match value.as_bool() {
                    Some(flag) => next.auto_create_deployments = flag,
                    None => errors.push(key, "must be true or false"),
                },
                "ignore_transient_environments" => match value.as_bool() {
                    Some(flag) => next.ignore_transient_environments = flag,
                    None => errors.push(key, "must be true or false"),
                },
                "environment_order" => match value.as_array() {
                    Some(items) if items.len() > MAX_ORDERED_ENVIRONMENTS => errors.push(
                        key,
                        format!(
                            "must name at most {MAX_ORDERED_ENVIRONMENTS} environments, not {}",
                            items.len()
                        ),
                    ),
                    Some(items) => {
                        let mut names: Vec<String> = Vec::new();
                        for (index, item) in items.iter().enumerate() {
                            let field = format!("environment_order[{index}]");
                            match item.as_str().map(|raw| crate::limits::Name::parse(raw.trim())) {
                                Some(Ok(name)) if names.iter().any(|n| n == name.as_str()) => {
                                    errors.push(field, format!("names {:?} twice", name.as_str()))
                                }
                                Some(Ok(name)) => names.push(name.into_string()),
                                Some(Err(message)) => errors.push(field, format!("environment name {message}")),
                                None => errors.push(field, "must be an environment name such as staging"),
                            }
                        }
                        next.environment_order = names;
                    }
                    None => errors.push(
                        key,
                        "must be a list of environment names such as [\"staging\", \"production\"]",
                    ),
                },
                "production_environments" => match value.as_array() {
                    Some(items) if items.len() > MAX_ORDERED_ENVIRONMENTS => errors.push(
                        key,
                        format!(
                            "must hold at most {MAX_ORDERED_ENVIRONMENTS} patterns, not {}",
                            items.len()
                        ),
                    ),
                    Some(items) => {
                        let mut patterns = Vec::new();
                        for (index, item) in items.iter().enumerate() {
                            let field = format!("production_environments[{index}]");
                            let parsed = item.as_str().map(|raw| {
                                crate::limits::Name::parse(raw).and_then(|_| EnvironmentPattern::parse(raw))
                            });
                            match parsed {
                                Some(Ok(pattern)) => patterns.push(pattern),
                                Some(Err(message)) => errors.push(field, format!("pattern {message}")),
                                None => errors.push(field, "must be a string pattern such as prod-*"),
                            }
                        }
                        next.production_environments = patterns;
                    }
                    None => errors.push(key, "must be a list of patterns such as [\"production\", \"prod-*\"]"),
                },
                "revert_window_hours" => match value.as_u64() {
                    Some(hours) if (1..=u64::from(MAX_REVERT_WINDOW_HOURS)).contains(&hours) => {
                        next.revert_window_hours = hours as u32
                    }
                    _ => errors.push(
                        key,
                        format!("must be a whole number of hours from 1 to {MAX_REVERT_WINDOW_HOURS}"),
                    ),
                },
                "ignored_environments" => match value.as_array() {
                    Some(items) if items.len() > MAX_IGNORED_ENVIRONMENTS => errors.push(
                        key,
                        format!(
                            "must hold at most {MAX_IGNORED_ENVIRONMENTS} patterns, not {}",
                            items.len()
                        ),
                    ),
                    Some(items) => {
                        let mut patterns = Vec::new();
                        for (index, item) in items.iter().enumerate() {
                            let field = format!("ignored_environments[{index}]");
                            let parsed = item.as_str().map(|raw| {
                                // A pattern matches environment names, so it obeys their rules.
                                crate::limits::Name::parse(raw).and_then(|_| EnvironmentPattern::parse(raw))
                            });
                            match parsed {
                                Some(Ok(pattern)) => patterns.push(pattern),
                                Some(Err(message)) => errors.push(field, format!("pattern {message}")),
                                None => errors.push(field, "must be a string pattern such as preview-*"),
                            }
                        }
                        next.ignored_environments = patterns;
                    }
                    None => errors.push(key, "must be a list of patterns such as [\"preview-*\"]"),
                },
                "agent_url" => match value {
                    Value::Null => next.agent_url = None,
                    // Where it points is checked at every call (`outbound::policy`).
                    Value::String(url)
                        if crate::limits::HttpUrl::parse(url.trim()).is_ok()
                            && crate::outbound::policy::parse_http_url(url.trim()).is_ok() =>
                    {
                        next.agent_url = Some(url.trim().to_owned())
                    }
                    _ => errors.push(key, "must be an http(s) URL, or null"),
                },
                "workflow_rules" => {
                    if let Some(parsed) = rules::parse_rules(value, &mut errors) {
                        next.workflow_rules = parsed;
                    }
                }
                // A secret, kept apart from the settings: the caller stores it.
                "agent_secret" => {
                    if let Err(message) = agent_secret(value) {
                        errors.push(key, message);
                    }
                }
                _ => errors.push(key, format!("is not a setting; settings are {}", KEYS.join(", "))),
            }
        }
        if errors.is_empty() {
            Ok(next)
        } else {
            Err(errors)
        }
    }

    /// What a valid patch does to the connection's own agent secret: `None` leaves it,
    /// `Some(None)` removes it, `Some(Some(secret))` sets it.
    pub fn agent_secret_change(patch: &Value) -> Option<Option<String>> {
        patch.get("agent_secret").and_then(|value| agent_secret(value).ok())
    }

    /// Why a deploy to `environment` that GitHub announced (a deployment event, or an Actions
    /// run a rule matched) is not turned into a deploy row, if it is not.
    pub fn skip_reason(&self, environment: &str, transient: bool) -> Option<String> {
        if !self.auto_create_deployments {
            return Some("auto_create_deployments is off for this connection".to_owned());
        }
        if transient && self.ignore_transient_environments {
            return Some(format!(
                "environment {environment:?} is transient and ignore_transient_environments is on"
            ));
        }
        self.ignored_environments
            .iter()
            .find(|pattern| pattern.matches(environment))
            .map(|pattern| {
                format!(
                    "environment {environment:?} matches ignored_environments pattern {:?}",
                    pattern.as_str()
                )
            })
    }
}

/// The longest agent secret, in characters.
pub const AGENT_SECRET_MAX_CHARS: usize = 512;

/// `agent_secret` in a patch: `null` (remove it), or a non-empty single-line string.
fn agent_secret(value: &Value) -> Result<Option<String>, String> {
    let problem = || {
        format!("must be a non-empty string of at most {AGENT_SECRET_MAX_CHARS} characters without control characters, or null")
    };
    match value {
        Value::Null => Ok(None),
        Value::String(raw) => {
            let secret = raw.trim();
            let fits = !secret.is_empty() && secret.chars().count() <= AGENT_SECRET_MAX_CHARS;
            if fits && !secret.chars().any(char::is_control) {
                Ok(Some(secret.to_owned()))
            } else {
                Err(problem())
            }
        }
        _ => Err(problem()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_patch_changes_only_the_keys_it_names() {
        let patched = ConnectionSettings::default()
            .patched(&json!({"ignored_environments": ["preview-*"]}))
            .unwrap();
        assert!(patched.auto_create_deployments);
        assert_eq!(patched.ignored_environments[0].as_str(), "preview-*");
    }

    #[test]
    fn every_problem_is_named_by_its_field() {
        let errors = ConnectionSettings::default()
            .patched(
                &json!({"auto_create_deployments": "no", "colour": 1, "ignored_environments": ["ok-*", "bad-[", 3]}),
            )
            .unwrap_err();
        let fields: Vec<&str> = errors.fields.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            vec![
                "auto_create_deployments",
                "colour",
                "ignored_environments[1]",
                "ignored_environments[2]"
            ]
        );
    }

    #[test]
    fn more_than_the_maximum_number_of_patterns_is_refused_by_name() {
        let at_most: Vec<String> = (0..MAX_IGNORED_ENVIRONMENTS).map(|i| format!("pr-{i}-*")).collect();
        let too_many: Vec<String> = (0..=MAX_IGNORED_ENVIRONMENTS).map(|i| format!("pr-{i}-*")).collect();

        let accepted = ConnectionSettings::default().patched(&json!({ "ignored_environments": at_most }));
        let refused = ConnectionSettings::default()
            .patched(&json!({ "ignored_environments": too_many }))
            .unwrap_err();

        assert_eq!(accepted.unwrap().ignored_environments.len(), MAX_IGNORED_ENVIRONMENTS);
        assert_eq!(refused.fields.len(), 1);
        assert_eq!(refused.fields[0].field, "ignored_environments");
        assert!(refused.fields[0].message.contains("at most 100"), "{}", refused);
    }

    #[test]
    fn skip_reasons_follow_the_settings_in_order() {
        let settings = ConnectionSettings::default()
            .patched(&json!({"ignore_transient_environments": true, "ignored_environments": ["pr-*"]}))
            .unwrap();
        assert_eq!(settings.skip_reason("production", false), None);
        assert!(settings.skip_reason("preview", true).unwrap().contains("transient"));
        assert!(settings.skip_reason("pr-12", false).unwrap().contains("pr-*"));
        let off = settings.patched(&json!({"auto_create_deployments": false})).unwrap();
        assert!(off
            .skip_reason("production", false)
            .unwrap()
            .contains("auto_create_deployments"));
    }
}
