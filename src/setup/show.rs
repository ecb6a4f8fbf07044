//! `shiplog setup show`: what GitHub App is configured and where from, never a secret value.
//!
//! Reads the same variables as `serve` and touches nothing: the key file is looked at, not
//! created. Today an App can only come from the environment; the browser set-up that will store
//! one in the database is not built yet (README, "Register the GitHub App").

use std::fmt::Write;

use super::secret_key::SecretKey;
use crate::config::{parse_secret_list, SetupShowArgs};

/// The report, one `name: value` line per item.
pub fn report(args: &SetupShowArgs) -> String {
    let mut out = String::new();
    let _ = match args.github.credentials() {
        Ok(Some(credentials)) => writeln!(
            out,
            "GitHub App: from the environment\n  id: {}\n  slug: {}\n  private key: present",
            credentials.app_id, args.github_app_slug
        ),
        Ok(None) => writeln!(out, "GitHub App: none (set GITHUB_APP_ID and its private key)"),
        Err(error) => writeln!(out, "GitHub App: not usable: {error}"),
    };
    let secrets = args
        .github_webhook_secret
        .as_deref()
        .map(parse_secret_list)
        .unwrap_or_default()
        .len();
    let _ = match secrets {
        0 => writeln!(out, "webhook secret: none (GITHUB_WEBHOOK_SECRET)"),
        1 => writeln!(out, "webhook secret: present (environment)"),
        n => writeln!(out, "webhook secret: present (environment, {n} accepted)"),
    };
    let _ = writeln!(out, "OAuth client (sign in with GitHub): none");
    let _ = writeln!(out, "secret key: {}", key_line(args));
    out
}

fn key_line(args: &SetupShowArgs) -> String {
    if let Some(text) = args.secret_key.secret_key.as_deref() {
        return match SecretKey::parse(text, "SHIPLOG_SECRET_KEY") {
            Ok(_) => "SHIPLOG_SECRET_KEY (valid)".to_owned(),
            Err(error) => format!("not usable: {error}"),
        };
    }
    let path = args.secret_key.key_file(&args.database.database_url);
    let origin = format!("the key file {}", path.display());
    match std::fs::read_to_string(&path) {
        Ok(text) => match SecretKey::parse(&text, &origin) {
            Ok(_) => format!("key file {} (valid)", path.display()),
            Err(error) => format!("not usable: {error}"),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            format!("key file {} (does not exist yet)", path.display())
        }
        Err(error) => format!("not usable: cannot read {origin}: {error}"),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::config::{Cli, Command, SetupCommand};

    const HEX_KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
    const PEM: &str = "-----BEGIN RSA PRIVATE KEY-----\nMIIsecretbody\n-----END RSA PRIVATE KEY-----";

    fn show(args: &[&str]) -> String {
        let cli = Cli::try_parse_from(["shiplog", "setup", "show"].iter().chain(args)).unwrap();
        match cli.command {
            Some(Command::Setup {
                command: SetupCommand::Show(args),
            }) => report(&args),
            other => panic!("not setup show: {other:?}"),
        }
    }

    #[test]
    fn an_app_from_the_environment_is_shown_without_its_secrets() {
        let out = show(&[
            "--github-app-id",
            "4242",
            &format!("--github-app-private-key={PEM}"),
            "--github-app-slug",
            "shiplog-acme",
            "--github-webhook-secret",
            "hook-secret-one,hook-secret-two",
            "--secret-key",
            HEX_KEY,
        ]);
        assert!(
            out.contains(
                "GitHub App: from the environment\n  id: 4242\n  slug: shiplog-acme\n  private key: present\n"
            ),
            "{out}"
        );
        assert!(
            out.contains("webhook secret: present (environment, 2 accepted)"),
            "{out}"
        );
        assert!(out.contains("OAuth client (sign in with GitHub): none"), "{out}");
        assert!(out.contains("secret key: SHIPLOG_SECRET_KEY (valid)"), "{out}");
        for secret in ["secretbody", "BEGIN", "hook-secret", HEX_KEY] {
            assert!(!out.contains(secret), "{secret} printed: {out}");
        }
    }

    #[test]
    fn nothing_configured_says_so_and_creates_no_key_file() {
        let dir = tempfile::tempdir().unwrap();
        let db = format!("sqlite://{}/shiplog.db?mode=rwc", dir.path().display());
        let out = show(&["--database-url", &db]);
        assert!(out.contains("GitHub App: none"), "{out}");
        assert!(out.contains("webhook secret: none"), "{out}");
        let key_file = dir.path().join("shiplog.key");
        assert!(
            out.contains(&format!(
                "secret key: key file {} (does not exist yet)",
                key_file.display()
            )),
            "{out}"
        );
        assert!(!key_file.exists(), "show only looks");

        std::fs::write(&key_file, "nope").unwrap();
        let out = show(&["--database-url", &db]);
        assert!(out.contains("secret key: not usable: the key file"), "{out}");
        let out = show(&["--secret-key", "too-short"]);
        assert!(
            out.contains("secret key: not usable: SHIPLOG_SECRET_KEY is not a key"),
            "{out}"
        );
        assert!(!out.contains("too-short"), "{out}");
    }
}
