//! The `shiplog` subcommands. Admin subcommands work on the database directly, so an operator on
//! the host needs no token.

mod backfill;
pub mod healthcheck;

use anyhow::Context;

use crate::config::{Cli, Command, Config, ConnectionsCommand, CredentialsCommand, DatabaseArgs};
use crate::connections;
use crate::startup::Application;
use crate::store::Store;
use crate::telemetry;
use crate::types::InstallationId;

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command.unwrap_or(Command::Serve(Box::new(cli.serve))) {
        Command::Serve(args) => {
            telemetry::init(args.database.log_format, "info");
            let config = Config::from_serve_args(*args)?;
            let listen = config.listen.clone();
            let github_app = config.github_app.as_ref().map(|c| c.app_id);
            let app = Application::build(config).await?;
            tracing::info!(
                %listen,
                port = app.port(),
                database = app.store().backend_name(),
                github_app,
                "shiplog is serving"
            );
            app.run_until_stopped()
                .await
                .context("the server stopped with an error")?;
            tracing::info!("shiplog stopped");
            Ok(())
        }
        Command::Migrate(database) => {
            let store = open(&database).await?;
            store.migrate().await.context("cannot apply migrations")?;
            println!("migrations applied ({})", store.backend_name());
            Ok(())
        }
        Command::Ancestry {
            repository,
            ancestor,
            descendant,
            database,
            github,
        } => {
            let store = open(&database).await?;
            store.migrate().await.context("cannot apply migrations")?;
            let repo = crate::types::RepoName::parse(&repository)
                .map_err(|m| anyhow::anyhow!("repository {repository:?} {m}"))?;
            let connection = connections::owning(&store, &repo)
                .await?
                .with_context(|| format!("no connection has {repo}: install the GitHub App on its account first"))?;
            let app = match github.credentials()? {
                Some(credentials) => Some(crate::github::app::GitHubApp::new(&credentials, &github.api_url()?)?),
                None => None,
            };
            let access = app.as_ref().map(|app| crate::github::client::InstallationClient {
                app,
                installation: connection.installation_id,
            });
            let now = crate::clock::Clock::now(&crate::clock::SystemClock);
            let answer =
                crate::ancestry::is_ancestor(&store, access.as_ref(), &repo, &ancestor, &descendant, now).await?;
            println!("{}", serde_json::to_string_pretty(&answer)?);
            Ok(())
        }
        Command::Credentials { command } => {
            let store = open(command.database()).await?;
            store.migrate().await.context("cannot apply migrations")?;
            let now = crate::clock::Clock::now(&crate::clock::SystemClock);
            match command {
                CredentialsCommand::Create { connection, name, .. } => {
                    connections::get(&store, connection)
                        .await?
                        .with_context(|| format!("no connection with id {connection}"))?;
                    let issued = crate::credentials::create(&store, connection, &name, now).await?;
                    println!("{}", serde_json::to_string_pretty(&issued)?);
                    eprintln!("The password and signing key are shown only this once.");
                }
                CredentialsCommand::List { connection, .. } => {
                    let list = crate::credentials::list(&store, connection).await?;
                    println!("{}", serde_json::to_string_pretty(&list)?);
                }
                CredentialsCommand::Revoke {
                    connection, credential, ..
                } => {
                    if !crate::credentials::revoke(&store, connection, credential, now).await? {
                        anyhow::bail!("no active credential {credential} in connection {connection}");
                    }
                    println!("credential {credential} revoked");
                }
            }
            Ok(())
        }
        Command::Backfill {
            connection,
            since,
            repositories,
            detach,
            database,
            github,
        } => {
            let store = open(&database).await?;
            store.migrate().await.context("cannot apply migrations")?;
            backfill::run(&store, connection, &since, &repositories, detach, &github).await
        }
        Command::Connections { command } => {
            let store = open(command.database()).await?;
            store.migrate().await.context("cannot apply migrations")?;
            match command {
                ConnectionsCommand::List { json, .. } => list_connections(&store, json).await,
                ConnectionsCommand::Show { id, installation, .. } => show_connection(&store, id, installation).await,
                ConnectionsCommand::Set { id, settings, .. } => set_connection(&store, id, &settings).await,
            }
        }
        Command::Healthcheck(args) => healthcheck::run(&args).await,
        Command::Setup {
            command: crate::config::SetupCommand::Show(args),
        } => {
            let store = open(&args.database).await?;
            store.migrate().await.context("cannot apply migrations")?;
            let stored = crate::setup::show::stored(&args, &store).await?;
            print!("{}", crate::setup::show::report(&args, &stored));
            Ok(())
        }
    }
}

async fn open(database: &DatabaseArgs) -> anyhow::Result<Store> {
    telemetry::init(database.log_format, "warn");
    Store::connect(&database.database_url)
        .await
        .context("cannot open the database")
}

async fn list_connections(store: &Store, json: bool) -> anyhow::Result<()> {
    let list = connections::list(store).await?;
    let mut samples = Vec::with_capacity(list.len());
    for c in &list {
        samples.push(connections::repository_sample(store, c.id).await?);
    }
    if json {
        let views: Vec<_> = list.iter().zip(samples).map(|(c, sample)| c.view(sample)).collect();
        println!("{}", serde_json::to_string_pretty(&views)?);
        return Ok(());
    }
    println!("ID     INSTALLATION   ACCOUNT                  TYPE          STATUS     REPOS  AUTO-CREATE  RULES");
    for (c, sample) in list.iter().zip(&samples) {
        println!(
            "{:<6} {:<14} {:<24} {:<13} {:<10} {:>5}  {:<11}  {}",
            c.id,
            c.installation_id.0,
            c.account.login,
            c.account.kind,
            c.status(),
            if c.repository_selection == "all" {
                "all".to_owned()
            } else {
                sample.count.to_string()
            },
            c.settings.auto_create_deployments,
            c.settings.workflow_rules.len()
        );
    }
    if list.is_empty() {
        println!("(no connections yet: install the GitHub App on an account)");
    }
    for c in list.iter().filter(|c| !c.settings.workflow_rules.is_empty()) {
        println!(
            "\nconnection {} workflow rules (an Actions run that matches one is a deploy):",
            c.id
        );
        for rule in &c.settings.workflow_rules {
            println!(
                "  {} · workflow {} · branch {} → {}",
                rule.repository.as_str(),
                rule.workflow.as_str(),
                rule.branch.as_ref().map_or("(default branch)", |b| b.as_str()),
                rule.environment
            );
        }
    }
    Ok(())
}

async fn show_connection(store: &Store, id: i64, by_installation: bool) -> anyhow::Result<()> {
    let found = if by_installation {
        connections::get_by_installation(store, InstallationId(id)).await?
    } else {
        connections::get(store, id).await?
    };
    let connection = found.with_context(|| {
        format!(
            "no connection with {} {id}",
            if by_installation { "installation id" } else { "id" }
        )
    })?;
    let sample = connections::repository_sample(store, connection.id).await?;
    println!("{}", serde_json::to_string_pretty(&connection.view(sample))?);
    Ok(())
}

async fn set_connection(store: &Store, id: i64, pairs: &[String]) -> anyhow::Result<()> {
    let patch = settings_patch(pairs)?;
    let now = crate::clock::Clock::now(&crate::clock::SystemClock);
    match connections::update_settings(store, id, &patch, now).await? {
        None => anyhow::bail!("no connection with id {id}"),
        Some(Err(invalid)) => anyhow::bail!("invalid settings: {invalid}"),
        Some(Ok(connection)) => {
            let sample = connections::repository_sample(store, connection.id).await?;
            println!("{}", serde_json::to_string_pretty(&connection.view(sample))?);
            Ok(())
        }
    }
}

/// `key=value` pairs as a JSON object. A value is JSON when it parses as JSON; otherwise a string,
/// which for a list setting is split on commas.
fn settings_patch(pairs: &[String]) -> anyhow::Result<serde_json::Value> {
    let mut patch = serde_json::Map::new();
    for pair in pairs {
        let (key, raw) = pair
            .split_once('=')
            .with_context(|| format!("{pair:?} is not key=value"))?;
        let value = match serde_json::from_str::<serde_json::Value>(raw) {
            Ok(value) => value,
            Err(_) if key == "ignored_environments" => serde_json::Value::Array(
                raw.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|s| serde_json::Value::String(s.to_owned()))
                    .collect(),
            ),
            Err(_) => serde_json::Value::String(raw.to_owned()),
        };
        patch.insert(key.trim().to_owned(), value);
    }
    Ok(serde_json::Value::Object(patch))
}
