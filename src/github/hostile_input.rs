//! Property tests for what an attacker controls: the `X-Hub-Signature-256` header, the body and
//! the event name. Random and mutated inputs (from GitHub's own payloads) must give `Ok` or a
//! clear error, never a panic, and only the right signature may verify.
//!
//! Bounded by `SHIPLOG_FUZZ_SECONDS` (default 5) per property and a case count; the seed comes
//! from `SHIPLOG_FUZZ_SEED` or the clock, and a failure prints it so the case can be replayed.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::{events, signature};
use crate::config::Secret;

const FIXTURES: [(&str, &[u8]); 7] = [
    (
        "deployment",
        include_bytes!("../../tests/fixtures/github/deployment.created.json"),
    ),
    (
        "deployment_status",
        include_bytes!("../../tests/fixtures/github/deployment_status.created.json"),
    ),
    (
        "installation",
        include_bytes!("../../tests/fixtures/github/installation.created.json"),
    ),
    (
        "installation_repositories",
        include_bytes!("../../tests/fixtures/github/installation_repositories.added.json"),
    ),
    (
        "installation_repositories",
        include_bytes!("../../tests/fixtures/github/installation_repositories.removed.json"),
    ),
    ("ping", include_bytes!("../../tests/fixtures/github/ping.json")),
    (
        "pull_request",
        include_bytes!("../../tests/fixtures/github/pull_request.closed.json"),
    ),
];

const EVENTS: [&str; 9] = [
    "deployment",
    "deployment_status",
    "installation",
    "installation_repositories",
    "ping",
    "pull_request",
    "issue_comment",
    "push",
    "",
];

/// splitmix64: small, seedable, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }

    fn some_bytes(&mut self, max: usize) -> Vec<u8> {
        let len = self.below(max);
        self.bytes(len)
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

fn seed() -> u64 {
    std::env::var("SHIPLOG_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        })
}

fn budget() -> Duration {
    let seconds = std::env::var("SHIPLOG_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5.0_f64);
    Duration::from_secs_f64(seconds)
}

/// Runs `case` with fresh randomness until the time budget or `max_cases` is spent; a panic
/// inside is reported with the seed and case number that reproduce it.
fn property(name: &str, max_cases: u64, mut case: impl FnMut(&mut Rng)) -> u64 {
    let seed = seed();
    let deadline = Instant::now() + budget();
    let mut cases = 0;
    while cases < max_cases && Instant::now() < deadline {
        let mut rng = Rng(seed ^ cases.wrapping_mul(0x2545_f491_4f6c_dd1d));
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| case(&mut rng)));
        if let Err(panic) = outcome {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            panic!("{name}: case {cases} failed (replay with SHIPLOG_FUZZ_SEED={seed}): {message}");
        }
        cases += 1;
    }
    assert!(cases > 0, "{name}: no case ran");
    cases
}

/// One mutation of `body`, at the byte level or (when it is JSON) at the value level.
fn mutate(rng: &mut Rng, body: &[u8]) -> Vec<u8> {
    let mut out = body.to_vec();
    match rng.below(9) {
        // Flip, overwrite or delete bytes.
        0 => {
            for _ in 0..=rng.below(8) {
                if !out.is_empty() {
                    let i = rng.below(out.len());
                    out[i] ^= 1 << rng.below(8);
                }
            }
        }
        1 => {
            let at = rng.below(out.len() + 1);
            out.truncate(at);
        }
        2 => {
            let at = rng.below(out.len() + 1);
            let len = rng.below(64);
            let noise = rng.bytes(len);
            out.splice(at..at, noise);
        }
        3 => {
            if !out.is_empty() {
                let from = rng.below(out.len());
                let to = (from + rng.below(256)).min(out.len());
                out.drain(from..to);
            }
        }
        // Deep nesting, long strings, huge and odd numbers, invalid UTF-8 in strings.
        4 => {
            let depth = rng.below(10_000);
            let open = if rng.below(2) == 0 { "[" } else { "{\"a\":" };
            out = open.repeat(depth).into_bytes();
        }
        5 => out = format!("{{\"action\":\"{}\"}}", "x".repeat(rng.below(1 << 20))).into_bytes(),
        6 => {
            let odd = [
                "1e999999",
                "-0",
                "18446744073709551616",
                "-9223372036854775809",
                "1.5",
                "\"\\ud800\"",
                "\"\u{0}\"",
                "[]",
                "{}",
                "null",
            ];
            out = json_mutation(rng, body, |rng| {
                let text = odd[rng.below(odd.len())];
                serde_json::from_str(text).unwrap_or(Value::Null)
            });
        }
        7 => {
            out = json_mutation(rng, body, |rng| match rng.below(6) {
                0 => Value::Null,
                1 => Value::Bool(rng.below(2) == 0),
                2 => Value::from(rng.next() as i64),
                3 => Value::from(String::from_utf8_lossy(&rng.some_bytes(40)).into_owned()),
                4 => Value::Array(vec![Value::Null; rng.below(4)]),
                _ => Value::Object(serde_json::Map::new()),
            });
        }
        _ => {
            // Invalid UTF-8 inside a string value.
            if let Some(i) = out.iter().position(|b| *b == b'"') {
                out.splice(i + 1..i + 1, [0xff, 0xfe, 0xc0]);
            }
        }
    }
    out
}

/// Replaces or removes one value somewhere in the JSON document.
fn json_mutation(rng: &mut Rng, body: &[u8], mut replacement: impl FnMut(&mut Rng) -> Value) -> Vec<u8> {
    let Ok(mut doc) = serde_json::from_slice::<Value>(body) else {
        return body.to_vec();
    };
    let mut node = &mut doc;
    for _ in 0..rng.below(5) {
        let keys: Vec<String> = match node {
            Value::Object(map) if !map.is_empty() => map.keys().cloned().collect(),
            _ => break,
        };
        let key = rng.pick(&keys).clone();
        if rng.below(4) == 0 {
            if let Value::Object(map) = node {
                map.remove(&key);
            }
            return serde_json::to_vec(&doc).unwrap_or_default();
        }
        node = &mut node[key.as_str()];
    }
    *node = replacement(rng);
    serde_json::to_vec(&doc).unwrap_or_default()
}

#[test]
fn payload_parsing_survives_hostile_bodies() {
    let cases = property("events::parse", 200_000, |rng| {
        let (fixture_event, fixture) = *rng.pick(&FIXTURES);
        let event = if rng.below(4) == 0 {
            *rng.pick(&EVENTS)
        } else {
            fixture_event
        };
        let mut body = fixture.to_vec();
        for _ in 0..=rng.below(3) {
            body = mutate(rng, &body);
        }
        if let Err(error) = events::parse(event, &body) {
            assert!(!error.message.is_empty(), "an error without a message for {event}");
            assert!(error.to_string().len() < 2_000, "an unbounded error message");
        }
    });
    eprintln!("events::parse: {cases} hostile bodies, no panic");
}

#[test]
fn only_the_right_signature_verifies() {
    let cases = property("signature::verify", 200_000, |rng| {
        let len = 1 + rng.below(80);
        let secret = String::from_utf8_lossy(&rng.bytes(len)).into_owned();
        let other = format!("{secret}x");
        let body = rng.some_bytes(4096);
        let good = signature::sign(&secret, &body);
        let secrets = [Secret::new(other.clone()), Secret::new(secret.clone())];
        assert_eq!(signature::verify(&secrets, Some(&good), &body), Ok(()));
        assert!(signature::verify(&secrets[..1], Some(&good), &body).is_err());

        // Any change to the body or the digest is refused.
        let mut changed = body.clone();
        if changed.is_empty() {
            changed.push(0);
        } else {
            let i = rng.below(changed.len());
            changed[i] ^= 1 << rng.below(8);
        }
        assert!(signature::verify(&secrets, Some(&good), &changed).is_err());
        let mut digest = good.clone().into_bytes();
        let i = "sha256=".len() + rng.below(64);
        digest[i] = if digest[i] == b'0' { b'1' } else { b'0' };
        let digest = String::from_utf8_lossy(&digest).into_owned();
        assert!(signature::verify(&secrets, Some(&digest), &body).is_err());

        // Random headers: never a panic, never accepted.
        let header = match rng.below(5) {
            0 => String::from_utf8_lossy(&rng.some_bytes(200)).into_owned(),
            1 => format!("sha256={}", hex::encode(rng.some_bytes(64))),
            2 => format!("sha1={}", &good["sha256=".len()..]),
            3 => format!("sha256={}", "é".repeat(rng.below(40))),
            _ => good.to_uppercase(),
        };
        if header != good && !header.eq_ignore_ascii_case(&good) {
            assert!(
                signature::verify(&secrets, Some(&header), &body).is_err(),
                "{header:?} verified"
            );
        }
    });
    eprintln!("signature::verify: {cases} cases, no panic, no forgery");
}
