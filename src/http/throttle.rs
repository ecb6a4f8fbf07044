//! Failed authentication per client: a token bucket per address. Every failed admin token,
//! sign-in, or deploy credential spends a token; with none left, every attempt from that
//! client (right or wrong) answers 429 with `Retry-After` until a token has grown back.
//!
//! The client is the TCP peer (an IPv6 client by its /64, which one host usually owns whole).
//! `X-Forwarded-For` is believed only from a peer in `SHIPLOG_TRUSTED_PROXIES` ([`client_of`]);
//! behind any other proxy every client shares the proxy's bucket, which fails safe (slower
//! guessing for everyone), never open.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use chrono::{DateTime, Utc};

use crate::outbound::policy::Cidr;

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

/// The client of a request from `peer`: the peer itself, unless it is a trusted proxy; then the
/// rightmost `X-Forwarded-For` address that is not a trusted proxy (each proxy appends the
/// address it saw, so the entries left of that one are the client's to forge). A trusted peer
/// with no usable header stays the client.
pub fn client_of(peer: Option<IpAddr>, forwarded_for: &[&str], trusted: &[Cidr]) -> Option<IpAddr> {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|range| range.contains(ip));
    let peer = peer?;
    if !is_trusted(peer) {
        return Some(peer);
    }
    let hops = forwarded_for.iter().rev().flat_map(|value| value.rsplit(','));
    for hop in hops {
        // Some balancers append `ip:port` (`[v6]:port`).
        let hop = hop.trim();
        let parsed = hop
            .parse::<IpAddr>()
            .or_else(|_| hop.parse::<std::net::SocketAddr>().map(|a| a.ip()));
        match parsed {
            Ok(ip) if is_trusted(ip) => continue,
            Ok(ip) => return Some(ip),
            // Garbage past a trusted proxy: the last trusted hop is the client.
            Err(_) => break,
        }
    }
    Some(peer)
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

    #[test]
    fn forwarded_for_is_believed_only_from_a_trusted_proxy_and_read_from_the_right() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let trusted = [Cidr::parse("172.16.0.0/12").unwrap()];
        let proxy = Some(ip("172.18.0.5"));
        // No trusted proxies: the peer, whatever the header says.
        assert_eq!(client_of(proxy, &["203.0.113.9"], &[]), proxy);
        // A stranger's header is ignored.
        assert_eq!(
            client_of(Some(ip("198.51.100.1")), &["203.0.113.9"], &trusted),
            Some(ip("198.51.100.1"))
        );
        // Through the proxy: the address it appended.
        assert_eq!(client_of(proxy, &["203.0.113.9"], &trusted), Some(ip("203.0.113.9")));
        // A client that sends its own header cannot pick its bucket: the proxy's entry is last.
        assert_eq!(
            client_of(proxy, &["1.2.3.4, 5.6.7.8, 203.0.113.9"], &trusted),
            Some(ip("203.0.113.9"))
        );
        assert_eq!(
            client_of(proxy, &["1.2.3.4", "203.0.113.9"], &trusted),
            Some(ip("203.0.113.9"))
        );
        // Chained trusted proxies are skipped.
        assert_eq!(
            client_of(proxy, &["203.0.113.9, 172.20.0.2"], &trusted),
            Some(ip("203.0.113.9"))
        );
        // With a port, as some balancers append it.
        assert_eq!(
            client_of(proxy, &["203.0.113.9:5555"], &trusted),
            Some(ip("203.0.113.9"))
        );
        assert_eq!(
            client_of(proxy, &["[2001:db8::1]:443"], &trusted),
            Some(ip("2001:db8::1"))
        );
        // No header, or garbage where the proxy's entry should be: the proxy.
        assert_eq!(client_of(proxy, &[], &trusted), proxy);
        assert_eq!(client_of(proxy, &["1.2.3.4, not-an-ip"], &trusted), proxy);
    }
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
