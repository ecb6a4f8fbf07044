//! The key that encrypts secrets at rest, and sealing/opening values with it.
//!
//! The key is 32 bytes, from `SHIPLOG_SECRET_KEY` (64 hex digits or base64) or from a key file
//! (`SHIPLOG_SECRET_KEY_FILE`, by default `shiplog.key` beside the SQLite file, or in the working
//! directory for PostgreSQL) that is created with mode 0600 on first start when missing.
//!
//! A sealed value is `nonce (24 random bytes) || ciphertext+tag` (XChaCha20-Poly1305: a random
//! nonce per value is safe at this size). The value's purpose (for example `app.private_key`) is
//! bound as associated data, so a ciphertext copied into another column does not open.
//! Nothing here logs or prints a key or a plaintext; [`SecretKey`]'s `Debug` is redacted.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;
use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{KeyInit, XChaCha20Poly1305, XNonce};

const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 24;
/// The file name of the key file when `SHIPLOG_SECRET_KEY_FILE` is not set.
pub const DEFAULT_KEY_FILE_NAME: &str = "shiplog.key";

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(
        "{origin} is not a key: give 32 bytes as 64 hex digits or as base64 (for example: openssl rand -base64 32)"
    )]
    Malformed { origin: String },
    #[error("could not read the key file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("could not create the key file {path}: {source}")]
    Create { path: PathBuf, source: std::io::Error },
    #[error("the system's random source failed")]
    Random,
}

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("the system's random source failed")]
    Random,
    #[error("the value could not be encrypted")]
    Encrypt,
}

/// Opening failed: the value was sealed with another key or for another purpose, or was altered.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("a stored secret does not open with this key (another SHIPLOG_SECRET_KEY, or altered)")]
pub struct OpenError;

/// Where the key came from, for `shiplog setup show` and the start-up log (never the key).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeySource {
    Environment,
    File { path: PathBuf, created: bool },
}

impl fmt::Display for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Environment => f.write_str("SHIPLOG_SECRET_KEY"),
            Self::File { path, created: false } => write!(f, "key file {}", path.display()),
            Self::File { path, created: true } => write!(f, "key file {} (created now)", path.display()),
        }
    }
}

/// The 32-byte key. Cheap to clone; never printed.
#[derive(Clone)]
pub struct SecretKey([u8; KEY_LEN]);

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey([redacted])")
    }
}

impl SecretKey {
    /// Parses 32 bytes given as 64 hex digits or as base64 (standard or URL-safe, padded or not).
    /// Anything else is refused; `origin` names where the text came from in the one-line error.
    pub fn parse(text: &str, origin: &str) -> Result<Self, KeyError> {
        let text = text.trim();
        let malformed = || KeyError::Malformed {
            origin: origin.to_owned(),
        };
        let bytes = if text.len() == 2 * KEY_LEN && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            hex::decode(text).map_err(|_| malformed())?
        } else {
            use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
            [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
                .iter()
                .find_map(|engine| engine.decode(text).ok())
                .ok_or_else(malformed)?
        };
        let key: [u8; KEY_LEN] = bytes.try_into().map_err(|_| malformed())?;
        Ok(Self(key))
    }

    /// A fresh random key.
    pub fn generate() -> Result<Self, KeyError> {
        let mut key = [0u8; KEY_LEN];
        getrandom::fill(&mut key).map_err(|_| KeyError::Random)?;
        Ok(Self(key))
    }

    /// The key from `SHIPLOG_SECRET_KEY` when given, else from the key file at `path`, which is
    /// created (mode 0600, base64 of 32 random bytes) when it does not exist.
    pub fn from_env_or_file(env: Option<&str>, path: &Path) -> Result<(Self, KeySource), KeyError> {
        if let Some(text) = env {
            return Ok((Self::parse(text, "SHIPLOG_SECRET_KEY")?, KeySource::Environment));
        }
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let key = Self::parse(&text, &format!("the key file {}", path.display()))?;
                let source = KeySource::File {
                    path: path.to_owned(),
                    created: false,
                };
                Ok((key, source))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = Self::generate()?;
                key.write_new_file(path)?;
                let source = KeySource::File {
                    path: path.to_owned(),
                    created: true,
                };
                Ok((key, source))
            }
            Err(source) => Err(KeyError::Read {
                path: path.to_owned(),
                source,
            }),
        }
    }

    /// Writes the key to a file that must not exist yet, readable by its owner only. Two
    /// processes starting at once cannot both create it: the loser reads the winner's key.
    fn write_new_file(&self, path: &Path) -> Result<(), KeyError> {
        let create_error = |source| KeyError::Create {
            path: path.to_owned(),
            source,
        };
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = match options.open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Self::from_env_or_file(None, path).map(|_| ());
            }
            Err(e) => return Err(create_error(e)),
        };
        let text = base64::engine::general_purpose::STANDARD.encode(self.0);
        file.write_all(format!("{text}\n").as_bytes()).map_err(create_error)?;
        file.sync_all().map_err(create_error)
    }

    /// Encrypts `plaintext` for `purpose` with a fresh random nonce: `nonce || ciphertext+tag`.
    pub fn seal(&self, plaintext: &[u8], purpose: &str) -> Result<Vec<u8>, SealError> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|_| SealError::Random)?;
        let cipher = XChaCha20Poly1305::new(&self.0.into());
        let payload = Payload {
            msg: plaintext,
            aad: purpose.as_bytes(),
        };
        let ciphertext = cipher
            .encrypt(&XNonce::from(nonce), payload)
            .map_err(|_| SealError::Encrypt)?;
        let mut sealed = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&ciphertext);
        Ok(sealed)
    }

    /// [`Self::seal`] for a value kept in a text column: base64 of the sealed bytes.
    pub fn seal_text(&self, plaintext: &str, purpose: &str) -> Result<String, SealError> {
        let sealed = self.seal(plaintext.as_bytes(), purpose)?;
        Ok(base64::engine::general_purpose::STANDARD.encode(sealed))
    }

    /// Opens what [`Self::seal_text`] made; not base64 or not UTF-8 is an [`OpenError`] too.
    pub fn open_text(&self, sealed: &str, purpose: &str) -> Result<String, OpenError> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(sealed)
            .map_err(|_| OpenError)?;
        String::from_utf8(self.open(&bytes, purpose)?).map_err(|_| OpenError)
    }

    /// Decrypts a value sealed by [`Self::seal`] for the same `purpose` with the same key.
    pub fn open(&self, sealed: &[u8], purpose: &str) -> Result<Vec<u8>, OpenError> {
        let (nonce, ciphertext) = sealed.split_at_checked(NONCE_LEN).ok_or(OpenError)?;
        let nonce = XNonce::try_from(nonce).map_err(|_| OpenError)?;
        let cipher = XChaCha20Poly1305::new(&self.0.into());
        let payload = Payload {
            msg: ciphertext,
            aad: purpose.as_bytes(),
        };
        cipher.decrypt(&nonce, payload).map_err(|_| OpenError)
    }
}

/// The default key file: `shiplog.key` beside the SQLite database file, or in the working
/// directory for PostgreSQL and in-memory SQLite.
pub fn default_key_path(database_url: &str) -> PathBuf {
    let sqlite_path = database_url
        .strip_prefix("sqlite://")
        .or_else(|| database_url.strip_prefix("sqlite:"))
        .map(|rest| rest.split('?').next().unwrap_or_default())
        .filter(|path| !path.is_empty() && !path.starts_with(":memory:"));
    match sqlite_path.and_then(|db| Path::new(db).parent()) {
        Some(dir) => dir.join(DEFAULT_KEY_FILE_NAME),
        None => PathBuf::from(DEFAULT_KEY_FILE_NAME),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const HEX_KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

    #[test]
    fn a_key_is_32_bytes_in_hex_or_base64_and_nothing_else() {
        let from_hex = SecretKey::parse(HEX_KEY, "SHIPLOG_SECRET_KEY").unwrap();
        let b64 = base64::engine::general_purpose::STANDARD.encode(from_hex.0);
        let from_b64 = SecretKey::parse(&format!("  {b64}\n"), "SHIPLOG_SECRET_KEY").unwrap();
        assert_eq!(from_hex.0, from_b64.0);
        let unpadded = b64.trim_end_matches('=');
        assert_eq!(SecretKey::parse(unpadded, "x").unwrap().0, from_hex.0);

        for bad in [
            "",
            "short",
            &HEX_KEY[..62],
            &format!("{HEX_KEY}00"),
            "correct horse battery staple",
        ] {
            let error = SecretKey::parse(bad, "SHIPLOG_SECRET_KEY").unwrap_err().to_string();
            assert!(error.starts_with("SHIPLOG_SECRET_KEY is not a key"), "{error}");
            assert!(!error.contains('\n'), "one line: {error}");
        }
        let sixteen = base64::engine::general_purpose::STANDARD.encode([7u8; 16]);
        assert!(
            SecretKey::parse(&sixteen, "k").is_err(),
            "16 bytes of base64 is not a key"
        );
    }

    #[test]
    fn a_sealed_value_opens_with_its_key_and_purpose_only() {
        let key = SecretKey::parse(HEX_KEY, "k").unwrap();
        let sealed = key.seal(b"-----BEGIN RSA PRIVATE KEY-----", "app.private_key").unwrap();
        assert!(
            !sealed.windows(5).any(|w| w == b"BEGIN"),
            "the plaintext is not in the sealed value"
        );
        assert_eq!(
            key.open(&sealed, "app.private_key").unwrap(),
            b"-----BEGIN RSA PRIVATE KEY-----"
        );

        let again = key.seal(b"-----BEGIN RSA PRIVATE KEY-----", "app.private_key").unwrap();
        assert_ne!(sealed, again, "a fresh nonce per value");

        assert_eq!(key.open(&sealed, "app.webhook_secret"), Err(OpenError));
        let other = SecretKey::generate().unwrap();
        assert_eq!(other.open(&sealed, "app.private_key"), Err(OpenError));
        let mut altered = sealed.clone();
        *altered.last_mut().unwrap() ^= 1;
        assert_eq!(key.open(&altered, "app.private_key"), Err(OpenError));
        assert_eq!(key.open(&sealed[..10], "app.private_key"), Err(OpenError));
    }

    #[test]
    fn the_key_file_is_created_once_owner_only_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shiplog.key");
        let (first, source) = SecretKey::from_env_or_file(None, &path).unwrap();
        assert_eq!(
            source,
            KeySource::File {
                path: path.clone(),
                created: true
            }
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let (second, source) = SecretKey::from_env_or_file(None, &path).unwrap();
        assert!(matches!(source, KeySource::File { created: false, .. }));
        assert_eq!(first.0, second.0, "the same key on the next start");

        let (from_env, source) = SecretKey::from_env_or_file(Some(HEX_KEY), &path).unwrap();
        assert_eq!(source, KeySource::Environment, "the environment wins");
        assert_ne!(from_env.0, first.0);

        std::fs::write(&path, "not a key").unwrap();
        let error = SecretKey::from_env_or_file(None, &path).unwrap_err().to_string();
        assert!(
            error.starts_with(&format!("the key file {} is not a key", path.display())),
            "{error}"
        );
        assert_eq!(format!("{first:?}"), "SecretKey([redacted])");
    }

    #[test]
    fn the_default_key_file_sits_beside_the_sqlite_file() {
        assert_eq!(
            default_key_path("sqlite://shiplog.db?mode=rwc"),
            PathBuf::from("shiplog.key")
        );
        assert_eq!(
            default_key_path("sqlite:///var/lib/shiplog/db.sqlite?mode=rwc"),
            PathBuf::from("/var/lib/shiplog/shiplog.key")
        );
        assert_eq!(default_key_path("sqlite::memory:"), PathBuf::from("shiplog.key"));
        assert_eq!(
            default_key_path("postgres://u:p@db/shiplog"),
            PathBuf::from("shiplog.key")
        );
    }
}
