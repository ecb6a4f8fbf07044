//! `X-Hub-Signature-256`: HMAC-SHA256 of the raw body, keyed with the webhook secret, checked in
//! constant time against every configured secret (several, while one is being rotated).

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::config::Secret;

type HmacSha256 = Hmac<Sha256>;

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the X-Hub-Signature-256 header is missing")]
    Missing,
    #[error("the X-Hub-Signature-256 header is not `sha256=` followed by 64 hex digits")]
    Malformed,
    #[error("the signature does not match the body for any configured webhook secret")]
    Mismatch,
}

/// Checks `header` (the value of `X-Hub-Signature-256`) over `body` against each secret.
pub fn verify(secrets: &[Secret], header: Option<&str>, body: &[u8]) -> Result<(), SignatureError> {
    let header = header
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .ok_or(SignatureError::Missing)?;
    let hex_digest = header.strip_prefix("sha256=").ok_or(SignatureError::Malformed)?;
    if hex_digest.len() != 64 {
        return Err(SignatureError::Malformed);
    }
    let expected = hex::decode(hex_digest).map_err(|_| SignatureError::Malformed)?;
    // Check every secret, not just until the first match, so timing says nothing about which one.
    let mut matched = false;
    for secret in secrets {
        matched |= mac(secret.expose(), body).verify_slice(&expected).is_ok();
    }
    if matched {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// `sha256=<hex>` for `body` under `secret`, as GitHub sends it.
pub fn sign(secret: &str, body: &[u8]) -> String {
    format!("sha256={}", hex::encode(mac(secret, body).finalize().into_bytes()))
}

fn mac(secret: &str, body: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length, so this never fails; an empty MAC would only fail to verify.
    let mut mac = match HmacSha256::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => HmacSha256::new(&Default::default()),
    };
    mac.update(body);
    mac
}

#[cfg(test)]
mod tests {
    use super::*;

    const GITHUB_VECTOR: &str = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

    fn secrets(list: &[&str]) -> Vec<Secret> {
        list.iter().map(|s| Secret::new(*s)).collect()
    }

    #[test]
    fn githubs_documented_test_vector_verifies() {
        assert_eq!(sign("It's a Secret to Everybody", b"Hello, World!"), GITHUB_VECTOR);
        assert_eq!(
            verify(
                &secrets(&["It's a Secret to Everybody"]),
                Some(GITHUB_VECTOR),
                b"Hello, World!"
            ),
            Ok(())
        );
    }

    #[test]
    fn any_configured_secret_verifies_during_rotation() {
        let list = secrets(&["old-secret", "It's a Secret to Everybody"]);
        assert_eq!(verify(&list, Some(GITHUB_VECTOR), b"Hello, World!"), Ok(()));
    }

    #[test]
    fn a_changed_body_or_wrong_secret_is_a_mismatch() {
        let list = secrets(&["It's a Secret to Everybody"]);
        assert_eq!(
            verify(&list, Some(GITHUB_VECTOR), b"Hello, World?"),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(&secrets(&["other"]), Some(GITHUB_VECTOR), b"Hello, World!"),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn missing_and_malformed_headers_are_told_apart() {
        let list = secrets(&["s"]);
        assert_eq!(verify(&list, None, b"x"), Err(SignatureError::Missing));
        assert_eq!(verify(&list, Some("  "), b"x"), Err(SignatureError::Missing));
        assert_eq!(verify(&list, Some("sha1=abcd"), b"x"), Err(SignatureError::Malformed));
        assert_eq!(verify(&list, Some("sha256=zz"), b"x"), Err(SignatureError::Malformed));
        assert_eq!(
            verify(&list, Some(&format!("sha256={}", "g".repeat(64))), b"x"),
            Err(SignatureError::Malformed)
        );
    }
}
