//! `shiplog setup show`: what GitHub App is configured and where from, never a secret value.
//!
//! Reads the same variables as `serve` and the database (applying pending migrations, as every
//! admin subcommand does). The key file is looked at, never created. The environment wins over
//! an App stored by the browser set-up, as it does for `serve`.

use std::fmt::Write;

use super::secret_key::SecretKey;
use super::stored_app::{self, StoredAppError};
use crate::config::{parse_secret_list, SetupShowArgs};
use crate::store::Store;

/// The App stored in the database, as far as `show` may tell.
#[derive(Debug, PartialEq, Eq)]
pub enum Stored {
    None,
    Usable {
        id: u64,
        slug: String,
    },
    /// Stored, but its secrets do not open (or there is no key to open them with).
    Unusable {
        id: u64,
        slug: String,
        reason: String,
    },
}

/// Looks at the stored App in `store` with the key `args` name.
pub async fn stored(args: &SetupShowArgs, store: &Store) -> Result<Stored, StoredAppError> {
    let Some((id, slug)) = stored_app::peek(store).await? else {
        return Ok(Stored::None);
    };
    let key = match existing_key(args) {
        Ok(Some(key)) => key,
        Ok(None) => {
            let reason = "no secret key: set SHIPLOG_SECRET_KEY or restore the key file".to_owned();
            return Ok(Stored::Unusable { id, slug, reason });
        }
        Err(reason) => return Ok(Stored::Unusable { id, slug, reason }),
    };
    match stored_app::load(store, &key).await {
        Ok(_) => Ok(Stored::Usable { id, slug }),
        Err(StoredAppError::Unusable) => Ok(Stored::Unusable {
            id,
            slug,
            reason: StoredAppError::Unusable.to_string(),
        }),
        Err(other) => Err(other),
    }
}

/// The report, one `name: value` line per item.
pub fn report(args: &SetupShowArgs, stored: &Stored) -> String {
    let mut out = String::new();
    let from_env = args.github.credentials();
    let _ = match (&from_env, stored) {
        (Ok(Some(credentials)), _) => writeln!(
            out,
            "GitHub App: from the environment\n  id: {}\n  slug: {}\n  private key: present",
            credentials.app_id, args.github_app_slug
        ),
        (Err(error), _) => writeln!(out, "GitHub App: not usable: {error}"),
        (Ok(None), Stored::Usable { id, slug }) => writeln!(
            out,
            "GitHub App: from the database (set up in the browser)\n  id: {id}\n  slug: {slug}\n  private key: present"
        ),
        (Ok(None), Stored::Unusable { id, slug, reason }) => writeln!(
            out,
            "GitHub App: from the database, not usable: {reason}\n  id: {id}\n  slug: {slug}"
        ),
        (Ok(None), Stored::None) => writeln!(
            out,
            "GitHub App: none (set GITHUB_APP_ID and its private key, or set it up at /setup)"
        ),
    };
    if let (Ok(Some(_)), Stored::Usable { id, slug } | Stored::Unusable { id, slug, .. }) = (&from_env, stored) {
        let _ = writeln!(
            out,
            "  (the environment wins over App {id} ({slug}) stored in the database)"
        );
    }
    let secrets = args
        .github_webhook_secret
        .as_deref()
        .map(parse_secret_list)
        .unwrap_or_default()
        .len();
    let stored_usable = matches!(stored, Stored::Usable { .. });
    let _ = match secrets {
        0 if stored_usable => writeln!(out, "webhook secret: present (database)"),
        0 => writeln!(out, "webhook secret: none (GITHUB_WEBHOOK_SECRET)"),
        1 => writeln!(out, "webhook secret: present (environment)"),
        n => writeln!(out, "webhook secret: present (environment, {n} accepted)"),
    };
    let _ = if stored_usable {
        writeln!(out, "OAuth client (sign in with GitHub): present (database)")
    } else {
        writeln!(out, "OAuth client (sign in with GitHub): none")
    };
    let _ = writeln!(out, "secret key: {}", key_line(args));
    out
}

/// The key `args` name, if it exists; never creates the key file. `Err` is a one-line reason.
fn existing_key(args: &SetupShowArgs) -> Result<Option<SecretKey>, String> {
    if let Some(text) = args.secret_key.secret_key.as_deref() {
        return SecretKey::parse(text, "SHIPLOG_SECRET_KEY")
            .map(Some)
            .map_err(|e| e.to_string());
    }
    let path = args.secret_key.key_file(&args.database.database_url);
    let origin = format!("the key file {}", path.display());
    match std::fs::read_to_string(&path) {
        Ok(text) => SecretKey::parse(&text, &origin).map(Some).map_err(|e| e.to_string()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(format!("cannot read {origin}: {error}")),
    }
}

fn key_line(args: &SetupShowArgs) -> String {
    let env = args.secret_key.secret_key.is_some();
    let path = args.secret_key.key_file(&args.database.database_url);
    match existing_key(args) {
        Ok(Some(_)) if env => "SHIPLOG_SECRET_KEY (valid)".to_owned(),
        Ok(Some(_)) => format!("key file {} (valid)", path.display()),
        Ok(None) => format!("key file {} (does not exist yet)", path.display()),
        Err(reason) => format!("not usable: {reason}"),
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
            }) => report(&args, &Stored::None),
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod stored_tests {
    use super::*;
    use crate::config::{Cli, Command, SetupCommand};
    use clap::Parser;

    fn args(extra: &[&str]) -> SetupShowArgs {
        let cli = Cli::try_parse_from(["shiplog", "setup", "show"].iter().chain(extra)).unwrap();
        match cli.command {
            Some(Command::Setup {
                command: SetupCommand::Show(args),
            }) => *args,
            other => panic!("not setup show: {other:?}"),
        }
    }

    #[test]
    fn a_stored_app_is_shown_unless_the_environment_has_one() {
        let usable = Stored::Usable {
            id: 77,
            slug: "shiplog-acme".to_owned(),
        };
        let out = report(&args(&[]), &usable);
        assert!(
            out.contains("GitHub App: from the database (set up in the browser)\n  id: 77\n  slug: shiplog-acme\n"),
            "{out}"
        );
        assert!(out.contains("webhook secret: present (database)"), "{out}");
        assert!(
            out.contains("OAuth client (sign in with GitHub): present (database)"),
            "{out}"
        );

        let out = report(
            &args(&["--github-app-id", "5", "--github-app-private-key=pem"]),
            &usable,
        );
        assert!(out.contains("GitHub App: from the environment\n  id: 5\n"), "{out}");
        assert!(out.contains("the environment wins over App 77 (shiplog-acme)"), "{out}");

        let unusable = Stored::Unusable {
            id: 77,
            slug: "shiplog-acme".to_owned(),
            reason: "no secret key".to_owned(),
        };
        let out = report(&args(&[]), &unusable);
        assert!(
            out.contains("GitHub App: from the database, not usable: no secret key"),
            "{out}"
        );
        assert!(out.contains("webhook secret: none"), "{out}");
        assert!(out.contains("OAuth client (sign in with GitHub): none"), "{out}");
    }
}
