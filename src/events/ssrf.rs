//! Refuses webhook URLs (and SIP trunk addresses) that reach into the
//! server's own network: loopback, private, link-local (including cloud
//! metadata), CGNAT, benchmarking, documentation, reserved, unspecified,
//! multicast, IPv6 unique-local and site-local addresses — also when they hide
//! inside an IPv6 address (NAT64, 6to4, Teredo, mapped/compatible forms) —
//! unless allowed by config.
//!
//! The guard that counts is at connection time: deliveries go through one
//! HTTP client whose DNS resolver ([`GuardedResolver`]) applies the policy to
//! every address it returns, so the addresses checked are the addresses
//! connected to — a DNS answer that changes between a check and the connection
//! (rebinding) cannot slip through. IP-literal URLs never reach a resolver and
//! are checked by [`check_literal`] before each send. [`check_url`] resolves
//! once more when an endpoint is created or changed, to refuse bad URLs early.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

/// Which otherwise refused destinations are allowed.
#[derive(Debug, Clone, Copy, Default)]
pub struct Allow {
    /// 127.0.0.0/8 and ::1 (`voxplane dev` allows them for local receivers).
    pub loopback: bool,
    /// Private, link-local, CGNAT and unique-local ranges.
    pub private: bool,
}

/// Why an address is refused, or `None` when it may be called.
///
/// IPv6 forms that carry an IPv4 address (mapped `::ffff:a.b.c.d`,
/// compatible `::a.b.c.d`, translated `::ffff:0:a.b.c.d`, NAT64
/// `64:ff9b::a.b.c.d`, 6to4 `2002:AABB:CCDD::`, Teredo `2001:0:…`) are judged
/// by that IPv4 address (Teredo by both its server and its client address).
pub fn refusal(ip: IpAddr, allow: Allow) -> Option<&'static str> {
    let v6 = match ip {
        IpAddr::V4(v4) => return v4_refusal(v4, allow),
        IpAddr::V6(v6) => v6,
    };
    if v6.is_loopback() {
        return (!allow.loopback).then_some("loopback");
    }
    if v6.is_unspecified() || v6.is_multicast() {
        return Some("unspecified or multicast");
    }
    let embedded = embedded_v4(v6);
    if !embedded.is_empty() {
        return embedded.into_iter().find_map(|v4| v4_refusal(v4, allow));
    }
    (v6_private(v6) && !allow.private).then_some("private or link-local")
}

fn v4_refusal(ip: Ipv4Addr, allow: Allow) -> Option<&'static str> {
    if ip.is_loopback() {
        return (!allow.loopback).then_some("loopback");
    }
    if ip.is_unspecified() || ip.is_multicast() {
        return Some("unspecified or multicast");
    }
    (v4_private(ip) && !allow.private).then_some("private or link-local")
}

/// The IPv4 addresses an IPv6 address carries by a well-known convention.
fn embedded_v4(ip: Ipv6Addr) -> Vec<Ipv4Addr> {
    let s = ip.segments();
    let v4 = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    match s {
        // ::ffff:a.b.c.d (mapped) and ::a.b.c.d (compatible, deprecated).
        [0, 0, 0, 0, 0, 0xffff, hi, lo] | [0, 0, 0, 0, 0, 0, hi, lo] => vec![v4(hi, lo)],
        // ::ffff:0:a.b.c.d (SIIT translated).
        [0, 0, 0, 0, 0xffff, 0, hi, lo] => vec![v4(hi, lo)],
        // 64:ff9b::/96, the well-known NAT64 prefix.
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => vec![v4(hi, lo)],
        // 2002::/16 6to4: the relay's IPv4 address follows the prefix.
        [0x2002, hi, lo, ..] => vec![v4(hi, lo)],
        // 2001:0::/32 Teredo: the server, and the client's (inverted) address.
        [0x2001, 0, shi, slo, _, _, chi, clo] => vec![v4(shi, slo), v4(!chi, !clo)],
        _ => Vec::new(),
    }
}

fn v4_private(ip: Ipv4Addr) -> bool {
    let o = ip.octets();
    ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        // 100.64.0.0/10 shared address space (CGNAT).
        || (o[0] == 100 && (64..=127).contains(&o[1]))
        // 0.0.0.0/8 "this network".
        || o[0] == 0
        // 192.0.0.0/24 IETF protocol assignments, 192.0.2.0/24 TEST-NET-1.
        || (o[0] == 192 && o[1] == 0 && (o[2] == 0 || o[2] == 2))
        // 192.88.99.0/24 the former 6to4 relay anycast.
        || (o[0] == 192 && o[1] == 88 && o[2] == 99)
        // 198.18.0.0/15 benchmarking.
        || (o[0] == 198 && (o[1] == 18 || o[1] == 19))
        // 198.51.100.0/24 TEST-NET-2, 203.0.113.0/24 TEST-NET-3.
        || (o[0] == 198 && o[1] == 51 && o[2] == 100)
        || (o[0] == 203 && o[1] == 0 && o[2] == 113)
        // 240.0.0.0/4 reserved.
        || o[0] >= 240
}

fn v6_private(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    // fc00::/7 unique local, fe80::/10 link-local, fec0::/10 site-local.
    (s[0] & 0xfe00) == 0xfc00
        || (s[0] & 0xffc0) == 0xfe80
        || (s[0] & 0xffc0) == 0xfec0
        // 64:ff9b:1::/48 local-use NAT64.
        || (s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1)
        // 100::/64 discard-only.
        || (s[0] == 0x100 && s[1] == 0 && s[2] == 0 && s[3] == 0)
        // 2001:db8::/32 documentation.
        || (s[0] == 0x2001 && s[1] == 0xdb8)
        // 2001:2::/48 benchmarking, 2001:10::/28 and 2001:20::/28 ORCHID.
        || (s[0] == 0x2001 && s[1] == 2 && s[2] == 0)
        || (s[0] == 0x2001 && (s[1] & 0xfff0) == 0x10)
        || (s[0] == 0x2001 && (s[1] & 0xfff0) == 0x20)
}

/// A network in CIDR notation (`10.1.0.0/16`, `fd00::/8`, or one address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    len: u8,
}

impl Cidr {
    /// Parses `addr/len` or a bare address; `None` when malformed.
    pub fn parse(s: &str) -> Option<Self> {
        let (addr, len) = match s.trim().split_once('/') {
            Some((a, l)) => (a.parse::<IpAddr>().ok()?, l.parse::<u8>().ok()?),
            None => {
                let a = s.trim().parse::<IpAddr>().ok()?;
                (a, if a.is_ipv4() { 32 } else { 128 })
            }
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        (len <= max).then_some(Self { addr, len })
    }

    /// Whether `ip` lies in the network (IPv4-mapped IPv6 counts as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.len)).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.len))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// Longest a DNS lookup of a webhook host may take.
pub const DNS_BUDGET: Duration = Duration::from_secs(5);

/// Why a webhook destination cannot be called: its host does not resolve, or
/// resolves to a refused address. Found in the error chain of a refused send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused(pub String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

/// The host of a URL that may be called: a name still to resolve, or an
/// address already checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A DNS name (with the URL's port) — resolve it through the guard.
    Name(String, u16),
    /// An IP literal, allowed by the policy.
    Literal(IpAddr),
}

/// Checks what can be checked without DNS: http(s), no credentials, a host,
/// and an IP-literal host against the policy.
pub fn check_literal(url: &str, allow: Allow) -> Result<Target, String> {
    let parsed = url::Url::parse(url).map_err(|_| "url is not a valid URL".to_string())?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err("url must be http or https".into());
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("url must not contain credentials".into());
    }
    let port = parsed.port_or_known_default().unwrap_or(443);
    let ip = match parsed.host() {
        None => return Err("url has no host".into()),
        Some(url::Host::Domain(name)) => return Ok(Target::Name(name.to_owned(), port)),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip),
    };
    screen(&ip.to_string(), vec![ip], allow).map_err(|r| r.0)?;
    Ok(Target::Literal(ip))
}

/// Resolves a URL's host and checks every address it resolves to (an early
/// check for the API; the send itself is guarded by [`GuardedResolver`]).
pub async fn check_url(url: &str, allow: Allow) -> Result<(), String> {
    if let Target::Name(host, port) = check_literal(url, allow)? {
        let addrs = lookup(&host, port).await.map_err(|r| r.0)?;
        screen(&host, addrs.iter().map(SocketAddr::ip).collect(), allow).map_err(|r| r.0)?;
    }
    Ok(())
}

/// The policy applied to a DNS answer: the answer is refused as a whole if it
/// is empty or if any address in it is refused (a name that mixes public and
/// internal addresses is not called at all).
pub fn screen(host: &str, addrs: Vec<IpAddr>, allow: Allow) -> Result<Vec<IpAddr>, Refused> {
    if addrs.is_empty() {
        return Err(Refused(format!("could not resolve {host}")));
    }
    for ip in &addrs {
        if let Some(why) = refusal(*ip, allow) {
            return Err(Refused(format!(
                "url resolves to a {why} address ({ip}), which webhooks may not call"
            )));
        }
    }
    Ok(addrs)
}

/// A DNS lookup within [`DNS_BUDGET`].
pub async fn lookup(host: &str, port: u16) -> Result<Vec<SocketAddr>, Refused> {
    let failed = || Refused(format!("could not resolve {host}"));
    let addrs = tokio::time::timeout(DNS_BUDGET, tokio::net::lookup_host((host, port)))
        .await
        .map_err(|_| failed())?
        .map_err(|_| failed())?;
    Ok(addrs.collect())
}

/// The resolver of the delivery client: resolves with the system resolver and
/// hands the connector only answers that pass [`screen`], so the connection
/// goes to exactly the addresses that were checked.
#[derive(Debug, Clone, Copy)]
pub struct GuardedResolver {
    allow: Allow,
}

impl GuardedResolver {
    /// A resolver applying `allow`.
    pub fn new(allow: Allow) -> Self {
        Self { allow }
    }
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow = self.allow;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            // Port 0: the connector puts in the URL's port.
            let addrs = lookup(&host, 0).await?;
            let ips = screen(&host, addrs.iter().map(SocketAddr::ip).collect(), allow)?;
            let addrs: reqwest::dns::Addrs =
                Box::new(ips.into_iter().map(|ip| SocketAddr::new(ip, 0)));
            Ok(addrs)
        })
    }
}

/// The refusal in an error's chain of causes, if a send was refused by the guard.
pub fn refused_in<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a Refused> {
    let mut cause = Some(err);
    while let Some(e) = cause {
        if let Some(r) = e.downcast_ref::<Refused>() {
            return Some(r);
        }
        cause = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_ranges_are_refused() {
        let deny = Allow::default();
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "224.0.0.1",
            // IPv4 addresses carried by IPv6 forms (NAT64, compatible,
            // translated, 6to4, Teredo server and client), site-local, and
            // the benchmarking and documentation ranges.
            "64:ff9b::a9fe:a9fe",
            "::a00:1",
            "::ffff:0:a00:1",
            "2002:a9fe:a9fe::",
            "2001:0:a9fe:a9fe::",
            "2001:0:808:808:0:0:f5ff:fffe",
            "fec0::1",
            "198.18.0.1",
            "198.19.255.255",
            "192.0.2.1",
            "203.0.113.9",
            "2001:db8::1",
            "64:ff9b:1::1",
            "100::1",
        ] {
            assert!(refusal(ip.parse().expect("ip"), deny).is_some(), "{ip}");
        }
        for ip in [
            "8.8.8.8",
            "1.1.1.1",
            "2606:4700::1111",
            // Public IPv4 behind the IPv6 conventions stays public.
            "64:ff9b::808:808",
            "2002:808:808::1",
            "2001:0:808:808:0:0:f7f7:f7f7",
            "198.20.0.1",
        ] {
            assert!(refusal(ip.parse().expect("ip"), deny).is_none(), "{ip}");
        }
        assert!(
            refusal(
                "127.0.0.1".parse().expect("ip"),
                Allow {
                    loopback: true,
                    private: false
                }
            )
            .is_none()
        );
        assert!(
            refusal(
                "10.0.0.1".parse().expect("ip"),
                Allow {
                    loopback: true,
                    private: false
                }
            )
            .is_some()
        );
    }

    #[test]
    fn cidrs_parse_and_contain() {
        let net = Cidr::parse("10.20.0.0/16").expect("cidr");
        assert!(net.contains("10.20.3.4".parse().expect("ip")));
        assert!(net.contains("::ffff:10.20.3.4".parse().expect("ip")));
        assert!(!net.contains("10.21.0.1".parse().expect("ip")));
        let one = Cidr::parse("192.168.1.7").expect("cidr");
        assert!(one.contains("192.168.1.7".parse().expect("ip")));
        assert!(!one.contains("192.168.1.8".parse().expect("ip")));
        let v6 = Cidr::parse("fd00::/8").expect("cidr");
        assert!(v6.contains("fd12::1".parse().expect("ip")));
        assert!(!v6.contains("10.0.0.1".parse().expect("ip")));
        assert!(
            Cidr::parse("0.0.0.0/0").is_some_and(|c| c.contains("8.8.8.8".parse().expect("ip")))
        );
        for bad in ["10.0.0.0/33", "nope", "10.0.0.0/x", "::/129"] {
            assert!(Cidr::parse(bad).is_none(), "{bad}");
        }
    }

    const DENY: Allow = Allow {
        loopback: false,
        private: false,
    };
    const LOOPBACK: Allow = Allow {
        loopback: true,
        private: false,
    };

    #[test]
    fn literals_are_checked_without_dns_and_names_are_left_to_the_resolver() {
        for url in [
            "http://127.0.0.1:8080/x",
            "http://[::1]/",
            "http://[::ffff:10.0.0.1]/",
            "http://169.254.169.254/latest/meta-data",
            // Other spellings of 127.0.0.1 are normalised by the URL parser.
            "http://2130706433/",
            "http://0x7f.1/",
        ] {
            let err = check_literal(url, DENY).expect_err(url);
            assert!(err.contains("may not call"), "{url}: {err}");
        }
        assert_eq!(
            check_literal("https://8.8.8.8/x", DENY),
            Ok(Target::Literal("8.8.8.8".parse().expect("ip")))
        );
        assert_eq!(
            check_literal("http://example.com:8080/x", DENY),
            Ok(Target::Name("example.com".into(), 8080))
        );
        assert_eq!(
            check_literal("https://Example.COM/x", DENY),
            Ok(Target::Name("example.com".into(), 443))
        );
        for url in ["ftp://example.com/", "http://u:p@example.com/", "nope"] {
            assert!(check_literal(url, DENY).is_err(), "{url}");
        }
    }

    #[test]
    fn an_answer_with_any_refused_address_is_refused_whole() {
        let ips = |list: &[&str]| -> Vec<IpAddr> {
            list.iter().map(|s| s.parse().expect("ip")).collect()
        };
        assert_eq!(
            screen("h", ips(&["8.8.8.8", "1.1.1.1"]), DENY),
            Ok(ips(&["8.8.8.8", "1.1.1.1"]))
        );
        // A rebinding answer mixing a public and an internal address.
        let err = screen("h", ips(&["8.8.8.8", "127.0.0.1"]), DENY).expect_err("mixed");
        assert!(err.0.contains("loopback address (127.0.0.1)"), "{err}");
        assert!(screen("h", ips(&["10.0.0.7"]), LOOPBACK).is_err());
        assert!(screen("h", Vec::new(), LOOPBACK).is_err());
    }

    #[tokio::test]
    async fn the_resolver_applies_the_policy_to_what_it_resolves() {
        use reqwest::dns::Resolve;
        let name = || "localhost".parse::<reqwest::dns::Name>().expect("name");
        let err = match GuardedResolver::new(DENY).resolve(name()).await {
            Ok(addrs) => panic!(
                "localhost resolved for a deny policy: {:?}",
                addrs.collect::<Vec<_>>()
            ),
            Err(e) => e,
        };
        let refused = refused_in(err.as_ref()).expect("a refusal");
        assert!(refused.0.contains("loopback"), "{refused}");

        let addrs: Vec<SocketAddr> = GuardedResolver::new(LOOPBACK)
            .resolve(name())
            .await
            .expect("loopback allowed")
            .collect();
        assert!(!addrs.is_empty());
        assert!(
            addrs.iter().all(|a| a.ip().is_loopback() && a.port() == 0),
            "{addrs:?}"
        );

        let unknown = "no-such-host.invalid"
            .parse::<reqwest::dns::Name>()
            .expect("name");
        assert!(
            GuardedResolver::new(LOOPBACK)
                .resolve(unknown)
                .await
                .is_err()
        );
    }
}
