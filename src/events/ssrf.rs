//! Refuses webhook URLs that reach into the server's own network: loopback,
//! private, link-local (including cloud metadata), CGNAT, unspecified,
//! multicast and IPv6 unique-local addresses, unless allowed by config.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Which otherwise refused destinations are allowed.
#[derive(Debug, Clone, Copy, Default)]
pub struct Allow {
    /// 127.0.0.0/8 and ::1 (`voxplane dev` allows them for local receivers).
    pub loopback: bool,
    /// Private, link-local, CGNAT and unique-local ranges.
    pub private: bool,
}

/// Why an address is refused, or `None` when it may be called.
pub fn refusal(ip: IpAddr, allow: Allow) -> Option<&'static str> {
    let ip = match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    };
    if ip.is_loopback() {
        return (!allow.loopback).then_some("loopback");
    }
    if ip.is_unspecified() || ip.is_multicast() {
        return Some("unspecified or multicast");
    }
    let private = match ip {
        IpAddr::V4(v4) => v4_private(v4),
        IpAddr::V6(v6) => v6_private(v6),
    };
    (private && !allow.private).then_some("private or link-local")
}

fn v4_private(ip: Ipv4Addr) -> bool {
    let o = ip.octets();
    ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || (o[0] == 100 && (64..=127).contains(&o[1]))
        || o[0] == 0
        || (o[0] == 192 && o[1] == 0 && o[2] == 0)
        || o[0] >= 240
}

fn v6_private(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    (s[0] & 0xfe00) == 0xfc00 || (s[0] & 0xffc0) == 0xfe80
}

/// Resolves a URL's host and checks every address it resolves to.
pub async fn check_url(url: &str, allow: Allow) -> Result<(), String> {
    let parsed = url::Url::parse(url).map_err(|_| "url is not a valid URL".to_string())?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err("url must be http or https".into());
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("url must not contain credentials".into());
    }
    let host = parsed.host_str().ok_or("url has no host")?;
    let port = parsed.port_or_known_default().unwrap_or(443);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<IpAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![ip],
        Err(_) => tokio::time::timeout(
            std::time::Duration::from_secs(5),
            tokio::net::lookup_host((host, port)),
        )
        .await
        .map_err(|_| format!("could not resolve {host}"))?
        .map_err(|_| format!("could not resolve {host}"))?
        .map(|a| a.ip())
        .collect(),
    };
    if addrs.is_empty() {
        return Err(format!("could not resolve {host}"));
    }
    for ip in addrs {
        if let Some(why) = refusal(ip, allow) {
            return Err(format!(
                "url resolves to a {why} address ({ip}), which webhooks may not call"
            ));
        }
    }
    Ok(())
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
        ] {
            assert!(refusal(ip.parse().expect("ip"), deny).is_some(), "{ip}");
        }
        for ip in ["8.8.8.8", "1.1.1.1", "2606:4700::1111"] {
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
}
