//! The client's address behind trusted proxies (`trusted_proxies`).
//!
//! A request from a peer that is not a trusted proxy is keyed by the peer's
//! address, whatever its headers say. From a trusted proxy, the hops of
//! `Forwarded` (`for=`, RFC 7239) — or, without it, `X-Forwarded-For` — are
//! read from the right: each trusted hop is skipped, and the first one that
//! is not trusted is the client (a client cannot forge what lies right of
//! its own address, since each trusted proxy appends the peer it saw). When
//! every hop is trusted the leftmost is the client; a hop that does not
//! parse ends the walk at the last good one.
//!
//! The observe middleware resolves it once per request (it is logged in the
//! request span as `client.ip`); the IP-keyed rate limit and the login
//! throttles read it through [`client_ip`].

use crate::events::ssrf::Cidr;
use actix_web::HttpMessage;
use actix_web::HttpRequest;
use actix_web::http::header::HeaderMap;
use std::net::{IpAddr, Ipv4Addr};

/// The resolved client address, kept in the request's extensions.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub IpAddr);

/// Parses `trusted_proxies` (validated at start; bad entries are skipped).
pub fn parse_proxies(list: &[String]) -> Vec<Cidr> {
    list.iter()
        .filter_map(|s| {
            if s.contains('/') {
                Cidr::parse(s)
            } else {
                let ip: IpAddr = s.parse().ok()?;
                Cidr::parse(&format!("{ip}/{}", if ip.is_ipv4() { 32 } else { 128 }))
            }
        })
        .collect()
}

/// The client of a request from `peer` with `headers`.
pub fn resolve(peer: IpAddr, headers: &HeaderMap, trusted: &[Cidr]) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|c| c.contains(canonical(ip)));
    if trusted.is_empty() || !is_trusted(peer) {
        return peer;
    }
    let hops = forwarded_hops(headers);
    let mut client = peer;
    for hop in hops.iter().rev() {
        let Some(ip) = hop else {
            break;
        };
        client = *ip;
        if !is_trusted(*ip) {
            break;
        }
    }
    client
}

/// The client address of a request: as resolved by the observe middleware,
/// else the peer.
pub fn client_ip(req: &HttpRequest) -> IpAddr {
    if let Some(addr) = req.extensions().get::<ClientAddr>() {
        return addr.0;
    }
    req.peer_addr()
        .map(|a| canonical(a.ip()))
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
}

/// IPv4-mapped IPv6 addresses as IPv4.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// The hops named by `Forwarded` (its `for=` parameters), else by
/// `X-Forwarded-For`, left to right; `None` for one that does not parse.
fn forwarded_hops(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let forwarded: Vec<&str> = headers
        .get_all("forwarded")
        .filter_map(|v| v.to_str().ok())
        .collect();
    if !forwarded.is_empty() {
        return forwarded
            .iter()
            .flat_map(|v| v.split(','))
            .filter_map(|element| {
                element.split(';').find_map(|pair| {
                    let (k, v) = pair.split_once('=')?;
                    k.trim()
                        .eq_ignore_ascii_case("for")
                        .then(|| parse_node(v.trim().trim_matches('"')))
                })
            })
            .collect();
    }
    headers
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|hop| parse_node(hop.trim()))
        .collect()
}

/// `1.2.3.4`, `1.2.3.4:80`, `[2001:db8::1]`, `[2001:db8::1]:80`, `2001:db8::1`.
fn parse_node(s: &str) -> Option<IpAddr> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    if let Some(rest) = s.strip_prefix('[') {
        let (ip, _) = rest.split_once(']')?;
        return ip.parse::<IpAddr>().ok().map(canonical);
    }
    let (ip, port) = s.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    ip.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::{HeaderName, HeaderValue};

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(HeaderName::from_static(k), HeaderValue::from_static(v));
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn untrusted_peers_are_the_client() {
        let trusted = parse_proxies(&["10.0.0.0/8".into()]);
        let h = headers(&[("x-forwarded-for", "1.2.3.4")]);
        assert_eq!(resolve(ip("8.8.8.8"), &h, &trusted), ip("8.8.8.8"));
        assert_eq!(resolve(ip("10.0.0.1"), &h, &[]), ip("10.0.0.1"));
    }

    #[test]
    fn the_rightmost_untrusted_hop_is_the_client() {
        let trusted = parse_proxies(&["10.0.0.0/8".into(), "192.168.1.1".into()]);
        // A forged leftmost entry is ignored.
        let h = headers(&[("x-forwarded-for", "6.6.6.6, 1.2.3.4, 10.1.1.1")]);
        assert_eq!(resolve(ip("192.168.1.1"), &h, &trusted), ip("1.2.3.4"));
        let h = headers(&[("x-forwarded-for", "10.2.2.2, 10.1.1.1")]);
        assert_eq!(resolve(ip("10.0.0.5"), &h, &trusted), ip("10.2.2.2"));
        let h = headers(&[("x-forwarded-for", "1.2.3.4, garbage, 10.1.1.1")]);
        assert_eq!(resolve(ip("10.0.0.5"), &h, &trusted), ip("10.1.1.1"));
        // No header: the proxy itself.
        assert_eq!(
            resolve(ip("10.0.0.5"), &HeaderMap::new(), &trusted),
            ip("10.0.0.5")
        );
    }

    #[test]
    fn forwarded_wins_and_its_forms_parse() {
        let trusted = parse_proxies(&["10.0.0.0/8".into()]);
        let h = headers(&[
            (
                "forwarded",
                "for=\"[2001:db8::7]:4711\";proto=https, for=10.0.0.9",
            ),
            ("x-forwarded-for", "9.9.9.9"),
        ]);
        assert_eq!(resolve(ip("10.0.0.1"), &h, &trusted), ip("2001:db8::7"));
        let h = headers(&[("forwarded", "for=5.6.7.8:1234")]);
        assert_eq!(resolve(ip("10.0.0.1"), &h, &trusted), ip("5.6.7.8"));
    }
}
