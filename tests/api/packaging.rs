//! The container files against the CLI. Images cannot be built or pulled here, so the test reads
//! `Dockerfile`, `compose.yaml` and the proxy's config and checks what can go wrong between them
//! and the binary: a variable the binary does not read (a typo is silently ignored in a
//! container), a command, port, health check or volume that does not match the settings.
//! And `shiplog healthcheck`, the image's HEALTHCHECK, against a real server.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command as Process, Output};
use std::time::Duration;

use clap::{CommandFactory, Parser};
use serde_norway::Value;
use shiplog::config::{Cli, Command, HealthcheckArgs, ServeArgs};

use crate::helpers::spawn_app;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn read(path: &str) -> String {
    std::fs::read_to_string(Path::new(ROOT).join(path)).unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
}

/// Every environment variable the binary reads: the `env` of every argument of every
/// subcommand (the configuration reads nothing else), and `RUST_LOG`, which tracing-subscriber's
/// filter reads (src/telemetry.rs).
fn accepted_variables() -> BTreeSet<String> {
    fn walk(command: &clap::Command, out: &mut BTreeSet<String>) {
        for arg in command.get_arguments() {
            if let Some(env) = arg.get_env() {
                out.insert(env.to_string_lossy().into_owned());
            }
        }
        for sub in command.get_subcommands() {
            walk(sub, out);
        }
    }
    let mut accepted = BTreeSet::from(["RUST_LOG".to_owned()]);
    walk(&Cli::command(), &mut accepted);
    accepted
}

/// `serve`'s flag for each of its variables, to hand a file's values to clap as flags: flags win
/// over this process's environment, so the parse sees the container's settings only.
fn serve_flags() -> BTreeMap<String, String> {
    let cli = Cli::command();
    let serve = cli.find_subcommand("serve").expect("a serve subcommand");
    serve
        .get_arguments()
        .filter_map(|arg| {
            Some((
                arg.get_env()?.to_string_lossy().into_owned(),
                arg.get_long()?.to_owned(),
            ))
        })
        .collect()
}

fn assert_accepted(source: &str, variables: &BTreeMap<String, String>) {
    let accepted = accepted_variables();
    for name in variables.keys() {
        assert!(
            accepted.contains(name),
            "{source} sets {name}, which shiplog does not read (a typo, or a setting that does not \
             exist); the variables it reads are: {accepted:?}"
        );
    }
}

/// What a compose value becomes for the parse: `${X:-default}` its default, any other
/// `${…}` (required, from `.env`) a `1`, which every setting's parser takes.
fn interpolated(value: &str) -> String {
    let mut out = String::new();
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = start
            + rest[start..]
                .find('}')
                .unwrap_or_else(|| panic!("unclosed ${{ in {value:?}"));
        let inner = &rest[start + 2..end];
        out.push_str(inner.split_once(":-").map_or("1", |(_, default)| default));
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

/// Parses `argv` (the container's command) with `env` given as `serve`'s flags; it must be
/// `serve`, and every value must be one the flag takes.
fn parse_serve(source: &str, argv: &[String], env: &BTreeMap<String, String>) -> ServeArgs {
    let program = argv.first().unwrap_or_else(|| panic!("{source}: no command"));
    assert!(
        program == "shiplog" || program.ends_with("/shiplog"),
        "{source}: the command runs {program:?}, not shiplog"
    );
    let flags = serve_flags();
    let mut full = argv.to_vec();
    if full.len() == 1 {
        full.push("serve".into());
    }
    for (name, value) in env {
        if let Some(long) = flags.get(name) {
            full.push(format!("--{long}={}", interpolated(value)));
        }
    }
    match Cli::try_parse_from(&full) {
        Ok(Cli {
            command: Some(Command::Serve(args)),
            ..
        }) => *args,
        Ok(other) => panic!("{source}: {argv:?} is not `shiplog serve`: {other:?}"),
        Err(error) => panic!("{source}: {argv:?} with its environment does not parse: {error}"),
    }
}

fn listen_port(source: &str, serve: &ServeArgs) -> u16 {
    serve
        .listen
        .parse::<SocketAddr>()
        .unwrap_or_else(|e| panic!("{source}: SHIPLOG_LISTEN {:?} is not ADDRESS:PORT: {e}", serve.listen))
        .port()
}

/// The runtime stage of the Dockerfile: its instructions, continuation lines joined.
#[derive(Debug, Default)]
struct Image {
    builder: String,
    env: BTreeMap<String, String>,
    entrypoint: Vec<String>,
    cmd: Vec<String>,
    expose: Vec<u16>,
    volumes: Vec<String>,
    user: String,
    healthcheck_options: BTreeMap<String, String>,
    healthcheck: Vec<String>,
}

fn json_array(source: &str, raw: &str) -> Vec<String> {
    serde_json::from_str(raw.trim()).unwrap_or_else(|e| panic!("{source}: {raw:?} is not the exec form [\"…\"] ({e})"))
}

fn unquote(raw: &str) -> String {
    raw.trim().trim_matches('"').to_owned()
}

fn read_dockerfile() -> Image {
    let text = read("Dockerfile");
    let mut instructions = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if current.is_empty() && (trimmed.is_empty() || trimmed.starts_with('#')) {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(part) => {
                current.push_str(part);
                current.push(' ');
            }
            None => {
                current.push_str(trimmed);
                instructions.push(std::mem::take(&mut current));
            }
        }
    }
    let mut image = Image::default();
    for instruction in instructions {
        let (keyword, rest) = instruction.split_once(' ').unwrap_or((&instruction, ""));
        let rest = rest.trim();
        match keyword.to_ascii_uppercase().as_str() {
            "FROM" => {
                // A new stage: only the last one is the image.
                if image.builder.is_empty() {
                    image.builder = rest.split_whitespace().next().unwrap_or_default().to_owned();
                }
                image = Image {
                    builder: image.builder,
                    ..Image::default()
                };
            }
            "ENV" => {
                if rest.contains('=') {
                    for pair in rest.split_whitespace() {
                        let (name, value) = pair
                            .split_once('=')
                            .unwrap_or_else(|| panic!("Dockerfile: ENV {pair:?} is not NAME=VALUE"));
                        image.env.insert(name.to_owned(), unquote(value));
                    }
                } else {
                    let (name, value) = rest.split_once(' ').unwrap_or((rest, ""));
                    image.env.insert(name.to_owned(), unquote(value));
                }
            }
            "ENTRYPOINT" => image.entrypoint = json_array("Dockerfile ENTRYPOINT", rest),
            "CMD" => image.cmd = json_array("Dockerfile CMD", rest),
            "EXPOSE" => {
                for port in rest.split_whitespace() {
                    let number = port.trim_end_matches("/tcp");
                    image.expose.push(
                        number
                            .parse()
                            .unwrap_or_else(|_| panic!("Dockerfile: EXPOSE {port:?} is not a TCP port")),
                    );
                }
            }
            "VOLUME" => {
                image.volumes = if rest.starts_with('[') {
                    json_array("Dockerfile VOLUME", rest)
                } else {
                    rest.split_whitespace().map(str::to_owned).collect()
                }
            }
            "USER" => image.user = rest.to_owned(),
            "HEALTHCHECK" => {
                let (options, command) = rest
                    .split_once("CMD ")
                    .unwrap_or_else(|| panic!("Dockerfile: HEALTHCHECK {rest:?} has no CMD"));
                for option in options.split_whitespace() {
                    let (name, value) = option.trim_start_matches("--").split_once('=').unwrap_or((option, ""));
                    image.healthcheck_options.insert(name.to_owned(), value.to_owned());
                }
                image.healthcheck = json_array("Dockerfile HEALTHCHECK", command);
            }
            _ => {}
        }
    }
    image
}

impl Image {
    fn command(&self) -> Vec<String> {
        self.entrypoint.iter().chain(&self.cmd).cloned().collect()
    }
}

#[test]
fn the_image_sets_only_settings_the_binary_reads_and_its_ports_health_check_and_volume_agree() {
    let image = read_dockerfile();

    // The builder is the workspace's toolchain.
    let manifest = read("Cargo.toml");
    let rust_version = manifest
        .lines()
        .find_map(|line| line.strip_prefix("rust-version = "))
        .map(unquote)
        .expect("the workspace's rust-version");
    assert!(
        image.builder.starts_with(&format!("rust:{rust_version}")),
        "Dockerfile: the build stage is {:?}, not the workspace's rust-version {rust_version}",
        image.builder
    );

    assert_accepted("Dockerfile", &image.env);
    let serve = parse_serve("Dockerfile ENTRYPOINT + CMD", &image.command(), &image.env);

    // Reachable from outside the container, on the port it exposes.
    let listen: SocketAddr = serve.listen.parse().expect("SHIPLOG_LISTEN is ADDRESS:PORT");
    assert!(
        listen.ip().is_unspecified(),
        "Dockerfile: SHIPLOG_LISTEN {listen} is not reachable from outside the container"
    );
    assert_eq!(
        image.expose,
        vec![listen.port()],
        "Dockerfile: EXPOSE is not SHIPLOG_LISTEN's port"
    );

    // The health check is `shiplog healthcheck`, asking this server on loopback, and gives up
    // before Docker kills it (so its one line is what `docker inspect` shows).
    let argv = &image.healthcheck;
    assert_eq!(
        argv.first(),
        image.entrypoint.first(),
        "Dockerfile: HEALTHCHECK does not run the entrypoint's binary"
    );
    let mut args: HealthcheckArgs = match Cli::try_parse_from(argv) {
        Ok(Cli {
            command: Some(Command::Healthcheck(args)),
            ..
        }) => args,
        other => panic!("Dockerfile: HEALTHCHECK {argv:?} is not `shiplog healthcheck`: {other:?}"),
    };
    if !argv.iter().any(|a| a.starts_with("--listen")) {
        // In the container, clap reads the image's SHIPLOG_LISTEN.
        args.listen.clone_from(&serve.listen);
    }
    let (url, timeout) = args.target().expect("the health check's target");
    assert_eq!(url.path(), "/healthz", "Dockerfile: HEALTHCHECK asks {url}");
    assert_eq!(
        url.port_or_known_default(),
        Some(listen.port()),
        "Dockerfile: HEALTHCHECK asks {url}, not SHIPLOG_LISTEN's port"
    );
    assert!(
        matches!(url.host_str(), Some("127.0.0.1" | "[::1]" | "localhost")),
        "Dockerfile: HEALTHCHECK asks {url}, not this container"
    );
    let docker_timeout = image
        .healthcheck_options
        .get("timeout")
        .map(|raw| shiplog::config::parse_duration(raw).expect("HEALTHCHECK --timeout"))
        .unwrap_or(Duration::from_secs(30));
    assert!(
        timeout < docker_timeout,
        "Dockerfile: `shiplog healthcheck` waits {timeout:?}, not less than HEALTHCHECK --timeout {docker_timeout:?}"
    );

    // The SQLite file is in the volume (a container's own layer is lost with it), and created on
    // first start.
    let database = &serve.database.database_url;
    let file = database
        .strip_prefix("sqlite://")
        .or_else(|| database.strip_prefix("sqlite:"))
        .unwrap_or_else(|| panic!("Dockerfile: DATABASE_URL {database:?} is not the embedded SQLite"));
    let (path, query) = file.split_once('?').unwrap_or((file, ""));
    assert!(
        query.split('&').any(|p| p == "mode=rwc"),
        "Dockerfile: DATABASE_URL {database:?} lacks mode=rwc: the first start cannot create the file"
    );
    assert!(
        image
            .volumes
            .iter()
            .any(|volume| Path::new(path).parent() == Some(Path::new(volume.trim_end_matches('/')))),
        "Dockerfile: DATABASE_URL's file {path} is not in a VOLUME ({:?})",
        image.volumes
    );

    // Not root, by number (so an orchestrator can verify it without the image's /etc/passwd).
    let uid: u32 = image
        .user
        .split(':')
        .next()
        .and_then(|uid| uid.parse().ok())
        .unwrap_or_else(|| panic!("Dockerfile: USER {:?} is not a numeric uid", image.user));
    assert_ne!(uid, 0, "Dockerfile: the image runs as root");
}

fn yaml_str(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn strings(source: &str, value: Option<&Value>) -> Vec<String> {
    match value {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Sequence(items)) => items
            .iter()
            .map(|item| yaml_str(item).unwrap_or_else(|| panic!("{source}: {item:?} is not a string")))
            .collect(),
        Some(Value::String(s)) => s.split_whitespace().map(str::to_owned).collect(),
        Some(other) => panic!("{source}: {other:?} is not a list"),
    }
}

/// A service's `environment:`, a map or a list of `NAME=VALUE`.
fn environment(source: &str, value: Option<&Value>) -> BTreeMap<String, String> {
    match value {
        None | Some(Value::Null) => BTreeMap::new(),
        Some(Value::Mapping(map)) => map
            .iter()
            .map(|(k, v)| {
                let name = yaml_str(k).unwrap_or_else(|| panic!("{source}: variable name {k:?}"));
                (name, yaml_str(v).unwrap_or_default())
            })
            .collect(),
        Some(list @ Value::Sequence(_)) => strings(source, Some(list))
            .into_iter()
            .map(|pair| match pair.split_once('=') {
                Some((name, value)) => (name.to_owned(), value.to_owned()),
                None => (pair, String::new()),
            })
            .collect(),
        Some(other) => panic!("{source}: environment {other:?} is neither a map nor a list"),
    }
}

/// `HOST:CONTAINER[/tcp]` (or `CONTAINER`): the container port.
fn container_port(source: &str, mapping: &str) -> u16 {
    let mapping = interpolated(mapping);
    let port = mapping.rsplit(':').next().unwrap_or_default().trim_end_matches("/tcp");
    port.parse()
        .unwrap_or_else(|_| panic!("{source}: port mapping {mapping:?} has no container port"))
}

#[test]
fn compose_runs_replicas_on_postgres_behind_one_port_with_settings_the_binary_reads() {
    let image = read_dockerfile();
    let mut compose: Value = serde_norway::from_str(&read("compose.yaml")).expect("compose.yaml is YAML");
    compose.apply_merge().expect("compose.yaml's merge keys (<<) apply");
    let services = compose
        .get("services")
        .and_then(Value::as_mapping)
        .expect("compose.yaml has services");
    let service_names: BTreeSet<String> = services.keys().filter_map(yaml_str).collect();

    // The replicas: the services built from this repository's Dockerfile.
    let mut replicas = BTreeMap::new();
    for (name, service) in services {
        let name = yaml_str(name).expect("a service name");
        let Some(build) = service.get("build") else { continue };
        let context = yaml_str(build.get("context").unwrap_or(build)).unwrap_or_default();
        let dockerfile = build
            .get("dockerfile")
            .and_then(yaml_str)
            .unwrap_or("Dockerfile".into());
        if context.trim_end_matches('/') != "." || dockerfile != "Dockerfile" {
            continue;
        }
        let source = format!("compose.yaml service {name}");
        let set = environment(&source, service.get("environment"));
        assert_accepted(&source, &set);

        // The image's environment, then the service's over it.
        let mut env = image.env.clone();
        env.extend(set);
        let entrypoint = match service.get("entrypoint") {
            Some(value) => strings(&source, Some(value)),
            None => image.entrypoint.clone(),
        };
        let command = match service.get("command") {
            Some(value) => strings(&source, Some(value)),
            None => image.cmd.clone(),
        };
        let argv: Vec<String> = entrypoint.into_iter().chain(command).collect();
        let serve = parse_serve(&source, &argv, &env);
        assert!(
            service.get("ports").is_none(),
            "{source} publishes a port of its own: replicas are reached through the proxy only"
        );
        replicas.insert(name, (source, serve, service));
    }
    assert!(
        replicas.len() >= 2,
        "compose.yaml: {} replicas built from the Dockerfile, not two",
        replicas.len()
    );

    // Replicas share one PostgreSQL database: on SQLite each would have a file of its own.
    for (source, serve, service) in replicas.values() {
        let database = url::Url::parse(&interpolated(&serve.database.database_url))
            .unwrap_or_else(|e| panic!("{source}: DATABASE_URL is not a URL: {e}"));
        assert_eq!(
            database.scheme(),
            "postgres",
            "{source}: DATABASE_URL is not PostgreSQL"
        );
        let host = database.host_str().unwrap_or_default();
        assert!(
            service_names.contains(host),
            "{source}: DATABASE_URL's host {host} is not a compose service"
        );
        let depends_on = service
            .get("depends_on")
            .and_then(|d| d.get(host))
            .and_then(|d| d.get("condition"))
            .and_then(yaml_str);
        assert_eq!(
            depends_on.as_deref(),
            Some("service_healthy"),
            "{source}: does not wait for {host} to be healthy"
        );
    }

    // One published port: the proxy's.
    let published: Vec<(&Value, &Value)> = services
        .iter()
        .filter(|(_, service)| service.get("ports").is_some())
        .collect();
    assert_eq!(
        published.len(),
        1,
        "compose.yaml: {} services publish ports, not one",
        published.len()
    );
    let (proxy_name, proxy) = published[0];
    let proxy_name = yaml_str(proxy_name).unwrap_or_default();
    let ports: Vec<u16> = strings("compose.yaml proxy ports", proxy.get("ports"))
        .iter()
        .map(|mapping| container_port(&proxy_name, mapping))
        .collect();
    assert_eq!(ports.len(), 1, "compose.yaml: {proxy_name} publishes {ports:?}");

    // The proxy's config: it listens on the published port and spreads over every replica, each
    // at its SHIPLOG_LISTEN port.
    let config_path = strings("compose.yaml proxy volumes", proxy.get("volumes"))
        .into_iter()
        .filter_map(|volume| volume.split(':').next().map(str::to_owned))
        .find(|source| source.starts_with("./ops/"))
        .unwrap_or_else(|| panic!("compose.yaml: {proxy_name} mounts no config from ops/"));
    let config = read(config_path.trim_start_matches("./"));
    let directives: Vec<Vec<&str>> = config
        .lines()
        .map(|line| line.split('#').next().unwrap_or_default())
        .map(|line| line.trim().trim_end_matches(';').split_whitespace().collect())
        .collect();
    let listens: Vec<u16> = directives
        .iter()
        .filter(|words| words.first() == Some(&"listen"))
        .map(|words| words[1].parse().expect("listen PORT"))
        .collect();
    assert_eq!(
        listens, ports,
        "{config_path}: the proxy listens on {listens:?}, compose publishes {ports:?}"
    );
    let upstreams: BTreeMap<String, u16> = directives
        .iter()
        .filter(|words| words.first() == Some(&"server") && words.get(1).is_some_and(|w| w.contains(':')))
        .map(|words| {
            let (host, port) = words[1].rsplit_once(':').unwrap_or_default();
            (host.to_owned(), port.parse().expect("server HOST:PORT"))
        })
        .collect();
    let replica_names: BTreeSet<&String> = replicas.keys().collect();
    assert_eq!(
        upstreams.keys().collect::<BTreeSet<_>>(),
        replica_names,
        "{config_path}: the upstream servers are not the compose replicas"
    );
    for (name, port) in &upstreams {
        let (source, serve, _) = &replicas[name];
        assert_eq!(
            *port,
            listen_port(source, serve),
            "{config_path}: upstream {name}:{port} is not its SHIPLOG_LISTEN port"
        );
    }

    // A depends_on on each replica, so the proxy starts once they answer /healthz.
    for name in replicas.keys() {
        let condition = proxy
            .get("depends_on")
            .and_then(|d| d.get(name.as_str()))
            .and_then(|d| d.get("condition"))
            .and_then(yaml_str);
        assert_eq!(
            condition.as_deref(),
            Some("service_healthy"),
            "compose.yaml: {proxy_name} does not wait for {name} to be healthy"
        );
    }
}

fn healthcheck(args: &[&str]) -> Process {
    let mut command = Process::new(env!("CARGO_BIN_EXE_shiplog"));
    command.arg("healthcheck").args(args).env_remove("SHIPLOG_LISTEN");
    command
}

async fn run(mut command: Process) -> Output {
    tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

fn one_line(output: &Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    stderr
}

#[tokio::test]
async fn healthcheck_exits_0_when_the_server_answers_and_1_with_one_line_when_not() {
    let app = spawn_app().await;
    let port = app.address.rsplit(':').next().unwrap().to_owned();

    // By URL, and by SHIPLOG_LISTEN as the container runs it (every address, so loopback).
    let healthy = run(healthcheck(&["--url", &format!("{}/healthz", app.address)])).await;
    assert!(healthy.status.success(), "{healthy:?}");
    let mut by_listen = healthcheck(&[]);
    by_listen.env("SHIPLOG_LISTEN", format!("0.0.0.0:{port}"));
    let healthy = run(by_listen).await;
    assert!(healthy.status.success(), "{healthy:?}");

    // A 404 is not healthy.
    let missing = run(healthcheck(&["--url", &format!("{}/nope", app.address)])).await;
    assert_eq!(missing.status.code(), Some(1));
    assert!(one_line(&missing).contains("answered 404"), "{missing:?}");

    // Nothing listening.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    drop(closed);
    let refused = run(healthcheck(&["--listen", &format!("0.0.0.0:{closed_port}")])).await;
    assert_eq!(refused.status.code(), Some(1));
    let line = one_line(&refused);
    assert!(
        line.contains(&format!("http://127.0.0.1:{closed_port}/healthz did not answer")),
        "{line}"
    );

    // A server that accepts and never answers: the timeout.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((stream, _)) = silent.accept().await {
            open.push(stream);
        }
    });
    let started = std::time::Instant::now();
    let hung = run(healthcheck(&[
        "--url",
        &format!("http://127.0.0.1:{silent_port}/healthz"),
        "--timeout",
        "1s",
    ]))
    .await;
    held.abort();
    assert_eq!(hung.status.code(), Some(1));
    assert!(one_line(&hung).contains("did not answer within 1s"), "{hung:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
}
