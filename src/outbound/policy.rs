//! Which addresses an outbound call (an agent, a trigger target) may reach: public addresses, and
//! the ranges the operator lists in `SHIPLOG_OUTBOUND_ALLOW`. Nothing else is exempt.
//!
//! Refused: unspecified, loopback, private (RFC 1918), shared CGNAT space, link-local,
//! unique-local, site-local, multicast, broadcast and reserved space, the documentation and
//! benchmarking ranges, and IPv6 forms that carry one of those IPv4 addresses (IPv4-mapped,
//! IPv4-compatible, NAT64, 6to4). So whoever can set a target cannot make shiplog reach, or scan,
//! the network it runs in.
//!
//! This module decides; [`super::resolve`] applies the decision to every address a name resolves
//! to, and [`super::Outbound`] to IP literals, which are never resolved.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use reqwest::Url;

/// The setting named in messages.
pub const SETTING: &str = "SHIPLOG_OUTBOUND_ALLOW";

/// An address range: `10.0.0.0/8`, `fd00::/8`, or one address (`127.0.0.1`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        let (address, prefix) = match raw.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (raw, None),
        };
        let network: IpAddr = address
            .trim()
            .parse()
            .map_err(|_| format!("{raw:?} is not an address or a range such as 10.0.0.0/8"))?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{raw:?} needs a prefix length from 0 to {max}"))?,
        };
        Ok(Self {
            network: masked(network, prefix),
            prefix,
        })
    }

    /// Whether `ip` is in this range; an IPv4-mapped IPv6 address counts as its IPv4 address.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.network.is_ipv4() == ip.is_ipv4() && masked(ip, self.prefix) == self.network
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

fn masked(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(u32::from(v4) & mask))
        }
        IpAddr::V6(v6) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask))
        }
    }
}

/// Why a non-public address is not public, or `None` for a public address.
pub fn non_public_kind(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => v4_kind(v4),
        IpAddr::V6(v6) => v6_kind(v6),
    }
}

fn v4_kind(ip: Ipv4Addr) -> Option<&'static str> {
    const RANGES: [(u32, u32, &str); 15] = [
        (0x0000_0000, 8, "unspecified (0.0.0.0/8)"),
        (0x0a00_0000, 8, "private (10.0.0.0/8)"),
        (0x6440_0000, 10, "shared CGNAT space (100.64.0.0/10)"),
        (0x7f00_0000, 8, "loopback (127.0.0.0/8)"),
        (0xa9fe_0000, 16, "link-local (169.254.0.0/16)"),
        (0xac10_0000, 12, "private (172.16.0.0/12)"),
        (0xc000_0000, 24, "IETF protocol assignments (192.0.0.0/24)"),
        (0xc000_0200, 24, "documentation (192.0.2.0/24)"),
        (0xc058_6300, 24, "6to4 relay anycast (192.88.99.0/24)"),
        (0xc0a8_0000, 16, "private (192.168.0.0/16)"),
        (0xc612_0000, 15, "benchmarking (198.18.0.0/15)"),
        (0xc633_6400, 24, "documentation (198.51.100.0/24)"),
        (0xcb00_7100, 24, "documentation (203.0.113.0/24)"),
        (0xe000_0000, 4, "multicast (224.0.0.0/4)"),
        (0xf000_0000, 4, "reserved or broadcast (240.0.0.0/4)"),
    ];
    let bits = u32::from(ip);
    RANGES
        .iter()
        .find(|(network, prefix, _)| bits & u32::MAX.checked_shl(32 - prefix).unwrap_or(0) == *network)
        .map(|(_, _, kind)| *kind)
}

fn v6_kind(ip: Ipv6Addr) -> Option<&'static str> {
    const RANGES: [(u128, u32, &str); 10] = [
        (0x0064_ff9b_0001 << 80, 48, "local-use NAT64 (64:ff9b:1::/48)"),
        (0x0100 << 112, 64, "discard-only (100::/64)"),
        (0x2001 << 112, 23, "IETF protocol assignments, Teredo (2001::/23)"),
        (0x2001_0db8 << 96, 32, "documentation (2001:db8::/32)"),
        (0x3fff << 112, 20, "documentation (3fff::/20)"),
        (0x5f00 << 112, 16, "SRv6 (5f00::/16)"),
        (0xfc00 << 112, 7, "unique-local (fc00::/7)"),
        (0xfe80 << 112, 10, "link-local (fe80::/10)"),
        (0xfec0 << 112, 10, "site-local (fec0::/10)"),
        (0xff00 << 112, 8, "multicast (ff00::/8)"),
    ];
    let bits = u128::from(ip);
    if bits == 0 {
        return Some("unspecified (::)");
    }
    if bits == 1 {
        return Some("loopback (::1)");
    }
    // IPv4 carried inside IPv6: mapped ::ffff:0:0/96, compatible ::/96, NAT64 64:ff9b::/96, 6to4 2002::/16.
    let low32 = Ipv4Addr::from((bits & 0xffff_ffff) as u32);
    if bits >> 32 == 0xffff || bits >> 32 == 0 || bits >> 32 == 0x0064_ff9b_0000_0000_0000_0000 {
        return v4_kind(low32);
    }
    if bits >> 112 == 0x2002 {
        return v4_kind(Ipv4Addr::from(((bits >> 80) & 0xffff_ffff) as u32));
    }
    RANGES
        .iter()
        .find(|(network, prefix, _)| bits & u128::MAX.checked_shl(128 - prefix).unwrap_or(0) == *network)
        .map(|(_, _, kind)| *kind)
}

/// An address shiplog will not call.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{host} is not a public address ({address} is {kind}); add it to {SETTING} if it is meant to be called")]
pub struct Refused {
    pub host: String,
    pub address: IpAddr,
    pub kind: &'static str,
}

/// A target URL that cannot be called.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("must be an absolute http(s) URL")]
    NotHttp,
    #[error(transparent)]
    Refused(#[from] Refused),
}

/// `SHIPLOG_OUTBOUND_ALLOW`: the non-public ranges outbound calls may reach anyway.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AllowList(Vec<Cidr>);

impl AllowList {
    /// Comma-separated ranges or addresses; empty means none.
    pub fn parse(raw: &str) -> Result<Self, String> {
        raw.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(Cidr::parse)
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether a call may connect to `address` (reached through `host`).
    pub fn check(&self, host: &str, address: IpAddr) -> Result<(), Refused> {
        if self.0.iter().any(|range| range.contains(address)) {
            return Ok(());
        }
        match non_public_kind(address) {
            None => Ok(()),
            Some(kind) => Err(Refused {
                host: host.to_owned(),
                address,
                kind,
            }),
        }
    }

    /// `raw` as an absolute http(s) URL whose host, if it is an IP literal or `localhost`, may be
    /// called. Other names are checked when the call resolves them.
    pub fn check_target(&self, raw: &str) -> Result<Url, TargetError> {
        let url = parse_http_url(raw)?;
        let host = url.host_str().ok_or(TargetError::NotHttp)?;
        // The URL parser has already turned `2130706433` or `0x7f.1` into `127.0.0.1`.
        if let Ok(address) = host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() {
            self.check(host, address)?;
        } else {
            let name = host.trim_end_matches('.').to_ascii_lowercase();
            // RFC 6761: `localhost` and its subdomains are loopback, whatever DNS says.
            if name == "localhost" || name.ends_with(".localhost") {
                self.check(&name, IpAddr::V4(Ipv4Addr::LOCALHOST))?;
                self.check(&name, IpAddr::V6(Ipv6Addr::LOCALHOST))?;
            }
        }
        Ok(url)
    }
}

impl fmt::Display for AllowList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ranges: Vec<String> = self.0.iter().map(Cidr::to_string).collect();
        f.write_str(&ranges.join(","))
    }
}

/// An absolute `http://` or `https://` URL with a host (syntax only; no address check).
pub fn parse_http_url(raw: &str) -> Result<Url, TargetError> {
    let url = Url::parse(raw.trim()).map_err(|_| TargetError::NotHttp)?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(TargetError::NotHttp);
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(ip: &str) -> Option<&'static str> {
        non_public_kind(ip.parse().unwrap())
    }

    #[test]
    fn every_non_public_range_is_refused() {
        for ip in [
            "0.0.0.0",
            "10.1.2.3",
            "100.64.0.1",
            "100.127.255.255",
            "127.0.0.1",
            "127.255.255.254",
            "169.254.169.254",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.8",
            "192.0.2.1",
            "192.168.1.1",
            "198.18.0.1",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b:1::1",
            "2002:7f00:1::",
            "2001:db8::1",
            "2001::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
        ] {
            assert!(kind(ip).is_some(), "{ip} must be refused");
        }
    }

    #[test]
    fn public_addresses_pass() {
        for ip in [
            "1.1.1.1",
            "8.8.8.8",
            "100.63.255.255",
            "100.128.0.1",
            "172.15.255.255",
            "172.32.0.1",
            "192.169.0.1",
            "223.255.255.255",
            "2606:4700:4700::1111",
            "2a00:1450:4001::1",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:0808:0808::1",
        ] {
            assert_eq!(kind(ip), None, "{ip} is public");
        }
    }

    #[test]
    fn the_allow_list_is_the_only_exemption() {
        let allow = AllowList::parse("10.0.0.0/8, 127.0.0.1 ,fd00::/8").unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(allow.check("x", ip("10.9.8.7")).is_ok());
        assert!(allow.check("x", ip("127.0.0.1")).is_ok());
        assert!(
            allow.check("x", ip("::ffff:127.0.0.1")).is_ok(),
            "mapped form of a listed address"
        );
        assert!(allow.check("x", ip("127.0.0.2")).is_err());
        assert!(allow.check("x", ip("fd00::5")).is_ok());
        assert!(allow.check("x", ip("192.168.0.1")).is_err());
        assert!(AllowList::default().check("x", ip("10.0.0.1")).is_err());
        assert_eq!(allow.to_string(), "10.0.0.0/8,127.0.0.1/32,fd00::/8");
        assert!(AllowList::parse("10.0.0.0/33").is_err());
        assert!(AllowList::parse("localhost").is_err());
        assert_eq!(AllowList::parse(" , ").unwrap(), AllowList::default());
    }

    #[test]
    fn targets_must_be_http_and_literal_hosts_are_checked_at_once() {
        let none = AllowList::default();
        for bad in [
            "ftp://example.com/",
            "javascript:alert(1)",
            "http://",
            "/relative",
            "file:///etc/passwd",
        ] {
            assert_eq!(none.check_target(bad), Err(TargetError::NotHttp), "{bad}");
        }
        for refused in [
            "http://127.0.0.1:8080/",
            "http://2130706433/",
            "http://0x7f.1/",
            "http://[::ffff:127.0.0.1]/",
            "http://169.254.169.254/latest/meta-data/",
            "http://localhost:3000/",
            "http://LOCALHOST./",
            "http://agent.localhost/",
            "https://[fd00::1]/",
        ] {
            assert!(
                matches!(none.check_target(refused), Err(TargetError::Refused(_))),
                "{refused}"
            );
        }
        assert!(none.check_target("https://agent.example.com/hook").is_ok());
        assert!(none.check_target("http://93.184.215.14/").is_ok());
        let loopback = AllowList::parse("127.0.0.0/8,::1").unwrap();
        assert!(loopback.check_target("http://localhost:3000/").is_ok());
        assert!(AllowList::parse("127.0.0.0/8")
            .unwrap()
            .check_target("http://localhost/")
            .is_err());
    }
}
