//! The order of a repository's environments, left to right, as the board and drift show them:
//! the way code travels (development → staging → production).
//!
//! A connection may name the order (`environment_order`): the environments it names come in that
//! order. The others are placed by their kind: production-like ones (GitHub's
//! `production_environment` flag, or a name matching `production_environments`, by default
//! `production`, `prod`, `prod-*`, `prd*`) rightmost, pre-production ones (`staging`, `stage`,
//! `stg*`, `preprod*`, `pre-prod*`, `uat*`, `qa*`) before them, everything else first;
//! alphabetically within a kind. Environments the order names sit between the unnamed
//! non-production ones and the unnamed production-like ones.

use super::patterns::EnvironmentPattern;
use super::settings::ConnectionSettings;

/// The default `production_environments` patterns.
pub const DEFAULT_PRODUCTION: [&str; 4] = ["production", "prod", "prod-*", "prd*"];

/// Names that are pre-production by default (not a setting: only the default order uses them).
const PRE_PRODUCTION: [&str; 7] = ["staging", "stage", "stg*", "preprod*", "pre-prod*", "uat*", "qa*"];

/// An environment to be placed: its name and whether GitHub flagged it `production_environment`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placed {
    pub name: String,
    pub production_flag: bool,
}

/// Is `environment` production-like for this connection (its name, or GitHub's flag)?
pub fn is_production(settings: &ConnectionSettings, environment: &str, production_flag: bool) -> bool {
    production_flag
        || settings
            .production_environments
            .iter()
            .any(|pattern| pattern.matches(environment))
}

/// `environments` ordered left to right (each name once).
pub fn order(settings: &ConnectionSettings, environments: &[Placed]) -> Vec<String> {
    let pre_production: Vec<EnvironmentPattern> = PRE_PRODUCTION
        .iter()
        .filter_map(|raw| EnvironmentPattern::parse(raw).ok())
        .collect();
    let mut keyed: Vec<((u8, usize, String), String)> = Vec::new();
    for env in environments {
        if keyed.iter().any(|(_, name)| *name == env.name) {
            continue;
        }
        let named = settings.environment_order.iter().position(|n| *n == env.name);
        let key = match named {
            Some(position) => (2, position, String::new()),
            None if is_production(settings, &env.name, env.production_flag) => (3, 0, env.name.clone()),
            None if pre_production.iter().any(|p| p.matches(&env.name)) => (1, 0, env.name.clone()),
            None => (0, 0, env.name.clone()),
        };
        keyed.push((key, env.name.clone()));
    }
    // Unnamed pre-production environments sit with the other unnamed non-production ones when
    // an order is set (the order says where staging goes).
    keyed.sort();
    keyed.into_iter().map(|(_, name)| name).collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn placed(names: &[&str]) -> Vec<Placed> {
        names
            .iter()
            .map(|n| Placed {
                name: (*n).to_owned(),
                production_flag: false,
            })
            .collect()
    }

    #[test]
    fn by_default_code_travels_towards_production() {
        let settings = ConnectionSettings::default();
        let order = order(
            &settings,
            &placed(&["production", "staging", "dev", "prod-eu", "qa", "preview-1"]),
        );
        assert_eq!(order, ["dev", "preview-1", "qa", "staging", "prod-eu", "production"]);
    }

    #[test]
    fn github_s_production_flag_and_the_connection_s_order_win() {
        let settings = ConnectionSettings::default()
            .patched(&json!({"environment_order": ["canary", "staging"], "production_environments": ["live"]}))
            .unwrap();
        let mut envs = placed(&["live", "staging", "canary", "dev", "eu"]);
        envs[4].production_flag = true;
        assert_eq!(order(&settings, &envs), ["dev", "canary", "staging", "eu", "live"]);
        assert!(is_production(&settings, "live", false));
        assert!(!is_production(&settings, "production", false));
    }
}
