//! The bodies of `POST /api/monitoring-plans` and `POST /api/checks/{id}/result`, checked field
//! by field, every problem reported.

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::limits::{Name, Text};
use crate::types::RepoName;
use crate::validation::Invalid;

/// A valid request to watch a pull request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanRequest {
    pub repository: RepoName,
    pub pull_number: i64,
    /// Environment names, trimmed; empty for every environment.
    pub environments: Vec<String>,
    pub note: Option<String>,
}

/// The body as sent: each field kept as whatever JSON came, so a wrong type is a problem of that
/// field, and any other key is kept to be named.
#[derive(Deserialize)]
struct RawPlan {
    repository: Option<Value>,
    pull_number: Option<Value>,
    environments: Option<Value>,
    note: Option<Value>,
    #[serde(flatten)]
    unknown: Map<String, Value>,
}

/// At most this many environments in one plan.
pub const MAX_PLAN_ENVIRONMENTS: usize = 50;

/// Checks every field and reports every problem, each with its field.
pub fn validate(body: &Value) -> Result<PlanRequest, Invalid> {
    // Every field is optional JSON, so only a body that is not an object fails to deserialize.
    let Ok(raw) = RawPlan::deserialize(body) else {
        return Err(Invalid::field("body", "must be a JSON object"));
    };
    let mut invalid = Invalid::default();
    for key in raw.unknown.keys() {
        invalid.push(key, "is not a field of a monitoring plan");
    }
    let repository = match raw.repository.as_ref().and_then(Value::as_str).map(RepoName::parse) {
        Some(Ok(repo)) => Some(repo),
        Some(Err(message)) => {
            invalid.push("repository", message);
            None
        }
        None => {
            invalid.push("repository", "is required (owner/repo)");
            None
        }
    };
    let pull_number = raw.pull_number.as_ref().and_then(Value::as_i64).filter(|n| *n > 0);
    if pull_number.is_none() {
        invalid.push("pull_number", "must be a positive whole number");
    }
    let environments = match raw.environments {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) if items.len() > MAX_PLAN_ENVIRONMENTS => {
            invalid.push(
                "environments",
                format!(
                    "must name at most {MAX_PLAN_ENVIRONMENTS} environments, not {}",
                    items.len()
                ),
            );
            Vec::new()
        }
        Some(Value::Array(items))
            if items
                .iter()
                .all(|i| i.as_str().is_some_and(|s| Name::parse(s.trim()).is_ok())) =>
        {
            // Environments compare exactly; one named twice is watched once.
            let mut names: Vec<String> = Vec::with_capacity(items.len());
            for name in items.iter().filter_map(Value::as_str).map(str::trim) {
                if !names.iter().any(|n| n == name) {
                    names.push(name.to_owned());
                }
            }
            names
        }
        Some(_) => {
            invalid.push(
                "environments",
                "must be a list of environment names (1 to 255 characters, no control characters)",
            );
            Vec::new()
        }
    };
    let note = match raw.note {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if Text::parse(&s).is_ok() => Some(s),
        Some(_) => {
            invalid.push(
                "note",
                "must be a string of at most 4096 characters, without control characters but tab and line breaks",
            );
            None
        }
    };
    match (repository, pull_number) {
        (Some(repository), Some(pull_number)) if invalid.is_empty() => Ok(PlanRequest {
            repository,
            pull_number,
            environments,
            note,
        }),
        _ => Err(invalid),
    }
}

/// An agent's verdict on one check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerdictRequest {
    /// `healthy`, `regressed` or `inconclusive`.
    pub verdict: &'static str,
    pub summary: Option<String>,
}

#[derive(Deserialize)]
struct RawVerdict {
    verdict: Option<Value>,
    summary: Option<Value>,
    #[serde(flatten)]
    unknown: Map<String, Value>,
}

/// The verdicts an agent may give.
pub const VERDICTS: [&str; 3] = ["healthy", "regressed", "inconclusive"];

/// Checks a verdict's body and reports every problem, each with its field.
pub fn validate_verdict(body: &Value) -> Result<VerdictRequest, Invalid> {
    let Ok(raw) = RawVerdict::deserialize(body) else {
        return Err(Invalid::field("body", "must be a JSON object"));
    };
    let mut invalid = Invalid::default();
    for key in raw.unknown.keys() {
        invalid.push(key, "is not a field of a verdict");
    }
    let verdict = raw
        .verdict
        .as_ref()
        .and_then(Value::as_str)
        .and_then(|v| VERDICTS.into_iter().find(|known| *known == v));
    if verdict.is_none() {
        invalid.push("verdict", "must be healthy, regressed or inconclusive");
    }
    let summary = match raw.summary {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => match Text::parse(&s) {
            Ok(_) => Some(s),
            Err(message) => {
                invalid.push("summary", message);
                None
            }
        },
        Some(_) => {
            invalid.push("summary", "must be a string");
            None
        }
    };
    match verdict {
        Some(verdict) if invalid.is_empty() => Ok(VerdictRequest { verdict, summary }),
        _ => Err(invalid),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{validate, validate_verdict, MAX_PLAN_ENVIRONMENTS};

    #[test]
    fn every_invalid_field_is_reported_at_once() {
        let invalid = validate(&json!({
            "repository": 3,
            "pull_number": "7",
            "environments": ["production", ""],
            "note": 1,
            "colour": "red",
        }))
        .unwrap_err();
        let fields: Vec<&str> = invalid.fields.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(fields, ["colour", "repository", "pull_number", "environments", "note"]);
        assert_eq!(validate(&json!([1])).unwrap_err().fields[0].field, "body");
    }

    #[test]
    fn a_valid_body_becomes_a_request() {
        let request = validate(&json!({
            "repository": "acme/shop",
            "pull_number": 12,
            "environments": [" production "],
            "note": null,
        }))
        .unwrap();
        assert_eq!(request.repository.as_str(), "acme/shop");
        assert_eq!(request.pull_number, 12);
        assert_eq!(request.environments, ["production"]);
        assert_eq!(request.note, None);
    }

    #[test]
    fn an_environment_named_twice_is_watched_once_and_too_many_are_refused() {
        let request = validate(&json!({
            "repository": "acme/shop",
            "pull_number": 12,
            "environments": ["dup", "dup", "DUP", " dup "],
        }))
        .unwrap();
        assert_eq!(request.environments, ["dup", "DUP"]);
        let many: Vec<String> = (0..=MAX_PLAN_ENVIRONMENTS).map(|i| format!("env-{i}")).collect();
        let invalid =
            validate(&json!({"repository": "acme/shop", "pull_number": 1, "environments": many})).unwrap_err();
        assert_eq!(invalid.fields[0].field, "environments");
    }

    #[test]
    fn a_verdict_reports_every_invalid_field_and_names_unknown_ones() {
        let invalid = validate_verdict(&json!({"verdict": "great", "summary": 5, "score": 1})).unwrap_err();
        let fields: Vec<&str> = invalid.fields.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(fields, ["score", "verdict", "summary"]);
        let ok = validate_verdict(&json!({"verdict": "regressed", "summary": "p99 up"})).unwrap();
        assert_eq!((ok.verdict, ok.summary.as_deref()), ("regressed", Some("p99 up")));
        assert_eq!(validate_verdict(&json!("healthy")).unwrap_err().fields[0].field, "body");
    }
}
