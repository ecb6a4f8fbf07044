//! Workflow rules: which GitHub Actions runs of a connection are deploys, and to which
//! environment.
//!
//! A rule is `{repository, workflow, branch, environment}`. A run matches when its repository
//! matches `repository` (a pattern, `acme/*`), its workflow matches `workflow` and its head branch
//! matches `branch` (when the rule has none: the repository's default branch). `workflow` is a
//! workflow file when it names one (`.github/workflows/deploy.yml`, matched against the run's
//! path, or `deploy.yml`, matched against the file's name), else a pattern for the workflow's
//! name (`Deploy*`). Patterns are those of `ignored_environments` (`patterns.rs`): `*`, `?`,
//! `[…]`, ASCII case ignored. With no rules no run is a deploy.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::patterns::EnvironmentPattern;
use crate::events::WorkflowRun;
use crate::limits::Name;
use crate::types::Environment;
use crate::validation::Invalid;

/// At most this many rules per connection: every `workflow_run` delivery is matched against all.
pub const MAX_WORKFLOW_RULES: usize = 50;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkflowRule {
    pub repository: EnvironmentPattern,
    pub workflow: EnvironmentPattern,
    /// `None`: the repository's default branch.
    #[serde(default)]
    pub branch: Option<EnvironmentPattern>,
    pub environment: Environment,
}

impl WorkflowRule {
    /// Whether `run` is a deploy by this rule. A run whose repository's default branch is not
    /// known matches only rules that name their branch.
    pub fn matches(&self, run: &WorkflowRun) -> bool {
        self.repository.matches(run.repository.name.as_str()) && self.matches_workflow(run) && self.matches_branch(run)
    }

    fn matches_workflow(&self, run: &WorkflowRun) -> bool {
        let rule = self.workflow.as_str();
        if rule.contains('/') {
            self.workflow.matches(&run.workflow_path)
        } else if is_workflow_file(rule) {
            let file = run.workflow_path.rsplit('/').next().unwrap_or_default();
            self.workflow.matches(file)
        } else {
            self.workflow.matches(&run.workflow_name)
        }
    }

    fn matches_branch(&self, run: &WorkflowRun) -> bool {
        let Some(branch) = run.head_branch.as_deref() else {
            return false;
        };
        match (&self.branch, run.default_branch.as_deref()) {
            (Some(pattern), _) => pattern.matches(branch),
            (None, Some(default)) => branch == default,
            (None, None) => false,
        }
    }
}

fn is_workflow_file(rule: &str) -> bool {
    let lower = rule.to_ascii_lowercase();
    lower.ends_with(".yml") || lower.ends_with(".yaml")
}

/// The environments `run` deploys to by `rules`, each once, in the rules' order.
pub fn environments_for(rules: &[WorkflowRule], run: &WorkflowRun) -> Vec<Environment> {
    let mut environments: Vec<Environment> = Vec::new();
    for rule in rules.iter().filter(|rule| rule.matches(run)) {
        if !environments.contains(&rule.environment) {
            environments.push(rule.environment.clone());
        }
    }
    environments
}

/// `workflow_rules` of a settings patch: a list of rule objects, every problem named by its
/// field (`workflow_rules[1].environment`).
pub fn parse_rules(value: &Value, errors: &mut Invalid) -> Option<Vec<WorkflowRule>> {
    const KEY: &str = "workflow_rules";
    let Some(items) = value.as_array() else {
        errors.push(
            KEY,
            "must be a list of rules such as [{\"repository\": \"acme/*\", \"workflow\": \".github/workflows/deploy.yml\", \"environment\": \"production\"}]",
        );
        return None;
    };
    if items.len() > MAX_WORKFLOW_RULES {
        errors.push(
            KEY,
            format!("must hold at most {MAX_WORKFLOW_RULES} rules, not {}", items.len()),
        );
        return None;
    }
    let before = errors.fields.len();
    let rules: Vec<WorkflowRule> = items
        .iter()
        .enumerate()
        .filter_map(|(index, item)| parse_rule(item, &format!("{KEY}[{index}]"), errors))
        .collect();
    (errors.fields.len() == before).then_some(rules)
}

fn parse_rule(item: &Value, field: &str, errors: &mut Invalid) -> Option<WorkflowRule> {
    let Some(object) = item.as_object() else {
        errors.push(
            field,
            "must be an object with repository, workflow, environment and optionally branch",
        );
        return None;
    };
    let before = errors.fields.len();
    for key in object.keys() {
        if !["repository", "workflow", "branch", "environment"].contains(&key.as_str()) {
            errors.push(
                format!("{field}.{key}"),
                "is not a rule field; rules have repository, workflow, branch and environment",
            );
        }
    }
    let mut pattern = |key: &str, required: bool, example: &str| -> Option<EnvironmentPattern> {
        let name = format!("{field}.{key}");
        match object.get(key) {
            None | Some(Value::Null) if !required => None,
            None | Some(Value::Null) => {
                errors.push(name, format!("is required, such as {example}"));
                None
            }
            Some(Value::String(raw)) => {
                match Name::parse(raw.trim()).and_then(|_| EnvironmentPattern::parse(raw.trim())) {
                    Ok(pattern) => Some(pattern),
                    Err(message) => {
                        errors.push(name, format!("pattern {message}"));
                        None
                    }
                }
            }
            Some(_) => {
                errors.push(name, format!("must be a string such as {example}"));
                None
            }
        }
    };
    let repository = pattern("repository", true, "\"acme/*\"");
    let workflow = pattern("workflow", true, "\".github/workflows/deploy.yml\" or \"Deploy*\"");
    let branch = pattern("branch", false, "\"main\" or \"release/*\"");
    let environment = match object.get("environment") {
        Some(Value::String(raw)) => match Environment::parse(raw) {
            Ok(environment) => Some(environment),
            Err(message) => {
                errors.push(format!("{field}.environment"), message);
                None
            }
        },
        _ => {
            errors.push(
                format!("{field}.environment"),
                "is required: the environment a matching run deploys to, such as \"production\"",
            );
            None
        }
    };
    if errors.fields.len() != before {
        return None;
    }
    Some(WorkflowRule {
        repository: repository?,
        workflow: workflow?,
        branch,
        environment: environment?,
    })
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use serde_json::json;

    use super::*;
    use crate::types::{Account, CommitSha, RepoName, RepoRef};

    fn run(repository: &str, path: &str, name: &str, branch: &str) -> WorkflowRun {
        WorkflowRun {
            id: 1,
            run_attempt: 1,
            run_number: 7,
            repository: RepoRef {
                github_id: 1,
                name: RepoName::parse(repository).unwrap(),
            },
            owner: Account {
                login: "acme".into(),
                kind: "Organization".into(),
                id: None,
            },
            default_branch: Some("main".into()),
            workflow_name: name.into(),
            workflow_path: path.into(),
            head_branch: Some(branch.into()),
            head_sha: CommitSha::parse(&"a".repeat(40)).unwrap(),
            status: "completed".into(),
            conclusion: Some("success".into()),
            html_url: None,
            display_title: None,
            triggered_by: None,
            run_started_at: None,
            created_at: Utc::now(),
            updated_at: Utc::now(),
        }
    }

    fn rules(value: serde_json::Value) -> Vec<WorkflowRule> {
        let mut errors = Invalid::default();
        let parsed = parse_rules(&value, &mut errors);
        assert!(errors.is_empty(), "{errors}");
        parsed.unwrap()
    }

    #[test]
    fn a_rule_matches_by_path_file_or_name_and_by_default_branch() {
        let by_path = rules(
            json!([{"repository": "acme/*", "workflow": ".github/workflows/deploy.yml", "environment": "production"}]),
        );
        let by_file = rules(json!([{"repository": "acme/web", "workflow": "deploy.yml", "environment": "production"}]));
        let by_name = rules(
            json!([{"repository": "ACME/*", "workflow": "Deploy*", "branch": "release/*", "environment": "staging"}]),
        );

        let deploy = run("acme/web", ".github/workflows/deploy.yml", "Deploy web", "main");
        assert_eq!(environments_for(&by_path, &deploy).len(), 1);
        assert_eq!(environments_for(&by_file, &deploy).len(), 1);
        // No branch in the rule: only the default branch.
        let feature = run("acme/web", ".github/workflows/deploy.yml", "Deploy web", "feature");
        assert!(environments_for(&by_path, &feature).is_empty());
        // A branch pattern replaces the default branch.
        assert!(environments_for(&by_name, &deploy).is_empty());
        let release = run("acme/web", ".github/workflows/deploy.yml", "Deploy web", "release/1.2");
        assert_eq!(environments_for(&by_name, &release)[0].as_str(), "staging");
        // Another workflow, another repository, an unknown default branch: no match.
        let ci = run("acme/web", ".github/workflows/ci.yml", "CI", "main");
        assert!(environments_for(&by_path, &ci).is_empty());
        let other = run("other/web", ".github/workflows/deploy.yml", "Deploy", "main");
        assert!(environments_for(&by_path, &other).is_empty());
        let mut unknown = deploy.clone();
        unknown.default_branch = None;
        assert!(environments_for(&by_path, &unknown).is_empty());
    }

    #[test]
    fn two_rules_to_one_environment_count_once() {
        let twice = rules(json!([
            {"repository": "acme/*", "workflow": "deploy.yml", "environment": "production"},
            {"repository": "acme/web", "workflow": "Deploy*", "environment": "production"},
            {"repository": "acme/web", "workflow": "Deploy*", "environment": "eu"}
        ]));
        let deploy = run("acme/web", ".github/workflows/deploy.yml", "Deploy web", "main");
        let names: Vec<String> = environments_for(&twice, &deploy)
            .into_iter()
            .map(String::from)
            .collect();
        assert_eq!(names, ["production", "eu"]);
    }

    #[test]
    fn every_problem_of_a_rule_is_named_by_its_field() {
        let mut errors = Invalid::default();
        let parsed = parse_rules(
            &json!([
                {"repository": "acme/*", "workflow": "deploy.yml", "environment": "production"},
                {"repository": "acme/[", "workflow": 3, "colour": "red"},
                "deploy.yml"
            ]),
            &mut errors,
        );
        assert!(parsed.is_none());
        let fields: Vec<&str> = errors.fields.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "workflow_rules[1].colour",
                "workflow_rules[1].repository",
                "workflow_rules[1].workflow",
                "workflow_rules[1].environment",
                "workflow_rules[2]"
            ]
        );
        let mut errors = Invalid::default();
        let too_many: Vec<_> = (0..=MAX_WORKFLOW_RULES)
            .map(|i| json!({"repository": format!("acme/{i}"), "workflow": "d.yml", "environment": "p"}))
            .collect();
        assert!(parse_rules(&json!(too_many), &mut errors).is_none());
        assert_eq!(errors.fields[0].field, "workflow_rules");
    }
}
