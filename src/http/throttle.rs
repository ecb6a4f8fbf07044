//! Failed authentication per client: a token bucket per address. Every failed admin token,
//! sign-in, or deploy credential spends a token; with none left, every attempt from that
//! client (right or wrong) answers 429 with `Retry-After` until a token has grown back.
//!
//! The client is the TCP peer (an IPv6 client by its /64, which one host usually owns whole).
//! Forwarded-for headers are not trusted: behind a proxy every client shares the proxy's
//! bucket, which fails safe (slower guessing for everyone), never open.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use chrono::{DateTime, Utc};

/// Failures a client may make in a burst.
pub const BURST: f64 = 20.0;
/// A token grows back every this many seconds (20 guesses a minute at most, sustained).
pub const REFILL_SECONDS: f64 = 3.0;
/// Clients remembered at once; past it, clients with a full bucket are forgotten first.
const MAX_CLIENTS: usize = 50_000;

#[derive(Debug, Default)]
pub struct FailureThrottle {
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: DateTime<Utc>,
}

impl Bucket {
    fn refilled(self, now: DateTime<Utc>) -> f64 {
        let elapsed = (now - self.at).num_milliseconds().max(0) as f64 / 1000.0;
        (self.tokens + elapsed / REFILL_SECONDS).min(BURST)
    }
}

impl FailureThrottle {
    /// `Err(seconds)` while `client` must wait before trying again.
    pub fn check(&self, client: Option<IpAddr>, now: DateTime<Utc>) -> Result<(), u64> {
        let Some(client) = client.map(key) else {
            return Ok(());
        };
        let buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        match buckets.get(&client) {
            Some(bucket) => {
                let tokens = bucket.refilled(now);
                if tokens >= 1.0 {
                    Ok(())
                } else {
                    Err(((1.0 - tokens) * REFILL_SECONDS).ceil().max(1.0) as u64)
                }
            }
            None => Ok(()),
        }
    }

    /// Spends one of `client`'s tokens.
    pub fn record_failure(&self, client: Option<IpAddr>, now: DateTime<Utc>) {
        let Some(client) = client.map(key) else {
            return;
        };
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() >= MAX_CLIENTS && !buckets.contains_key(&client) {
            buckets.retain(|_, bucket| bucket.refilled(now) < BURST);
            if buckets.len() >= MAX_CLIENTS {
                buckets.clear();
            }
        }
        let tokens = buckets.get(&client).map_or(BURST, |b| b.refilled(now));
        buckets.insert(
            client,
            Bucket {
                tokens: (tokens - 1.0).max(0.0),
                at: now,
            },
        );
    }
}

/// IPv4 addresses as they are; IPv6 by their /64 (IPv4-mapped ones as IPv4).
fn key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    #[test]
    fn a_client_is_blocked_after_the_burst_and_released_as_tokens_grow_back() {
        let throttle = FailureThrottle::default();
        let client = Some("192.0.2.7".parse().unwrap());
        let other = Some("192.0.2.8".parse().unwrap());
        let t0 = DateTime::<Utc>::from_timestamp(1_700_000_000, 0).unwrap();
        for _ in 0..BURST as usize {
            assert!(throttle.check(client, t0).is_ok());
            throttle.record_failure(client, t0);
        }
        assert_eq!(throttle.check(client, t0), Err(REFILL_SECONDS as u64));
        assert!(throttle.check(other, t0).is_ok(), "other clients are not affected");
        let later = t0 + Duration::seconds(REFILL_SECONDS as i64);
        assert!(throttle.check(client, later).is_ok());
        throttle.record_failure(client, later);
        assert!(throttle.check(client, later).is_err());
    }

    #[test]
    fn ipv6_clients_share_their_slash_64() {
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        assert_eq!(key(a), key(b));
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(key(mapped), "192.0.2.1".parse::<IpAddr>().unwrap());
    }
}
