//! `voxplane healthcheck [URL]`: probes a running server's `/health`, for
//! container health checks (the image's `HEALTHCHECK`, compose, Kubernetes
//! exec probes). Healthy means `200` within [`TIMEOUT`]; anything else is
//! unhealthy with one short reason: connection refused, timeout, status N.

use crate::config::Settings;
use std::time::Duration;

/// How long the whole probe (connect, request, response) may take.
pub const TIMEOUT: Duration = Duration::from_secs(2);

/// `http://<host>:<port>/health` for the address the server binds: an
/// unspecified bind address (`0.0.0.0`, `::`) is probed on loopback.
pub fn default_url(settings: &Settings) -> anyhow::Result<String> {
    if settings.port == 0 {
        anyhow::bail!("the configured port is 0 (any free port): give the URL to probe");
    }
    let host = match settings.host.parse::<std::net::IpAddr>() {
        Ok(ip) if ip.is_unspecified() && ip.is_ipv4() => "127.0.0.1".to_owned(),
        Ok(ip) if ip.is_unspecified() => "[::1]".to_owned(),
        Ok(std::net::IpAddr::V6(ip)) => format!("[{ip}]"),
        _ => settings.host.clone(),
    };
    Ok(format!("http://{host}:{}/health", settings.port))
}

/// Probes `url` once: `Ok(())` on 200 within [`TIMEOUT`], else the reason.
pub async fn probe(url: &str) -> Result<(), String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("invalid URL: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err("invalid URL: the scheme must be http or https".into());
    }
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(TIMEOUT)
        .connect_timeout(TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| format!("cannot build an HTTP client: {e}"))?;
    let res = client.get(parsed).send().await.map_err(|e| reason(&e))?;
    match res.status().as_u16() {
        200 => Ok(()),
        status => Err(format!("status {status}")),
    }
}

/// A short reason for a failed request.
fn reason(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        return format!("timeout (no answer within {} s)", TIMEOUT.as_secs());
    }
    let mut source: Option<&dyn std::error::Error> = Some(e);
    while let Some(err) = source {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            return match io.kind() {
                std::io::ErrorKind::ConnectionRefused => "connection refused".into(),
                std::io::ErrorKind::TimedOut => {
                    format!("timeout (no answer within {} s)", TIMEOUT.as_secs())
                }
                _ => format!("cannot connect: {io}"),
            };
        }
        source = err.source();
    }
    format!("request failed: {e}")
}

/// The subcommand: prints `healthy` and returns `Ok` on success, or an error
/// naming the URL and the reason (the binary then exits 1).
pub async fn run(url: &str) -> anyhow::Result<()> {
    match probe(url).await {
        Ok(()) => {
            println!("healthy: {url} answered 200");
            Ok(())
        }
        Err(why) => Err(anyhow::anyhow!("unhealthy: {url}: {why}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_url_probes_loopback_for_unspecified_binds() {
        let url = |host: &str, port| {
            default_url(&Settings {
                host: host.into(),
                port,
                ..Settings::default()
            })
            .map_err(|e| e.to_string())
        };
        assert_eq!(
            url("0.0.0.0", 8080).as_deref(),
            Ok("http://127.0.0.1:8080/health")
        );
        assert_eq!(url("::", 9000).as_deref(), Ok("http://[::1]:9000/health"));
        assert_eq!(
            url("10.1.2.3", 80).as_deref(),
            Ok("http://10.1.2.3:80/health")
        );
        assert_eq!(url("::1", 80).as_deref(), Ok("http://[::1]:80/health"));
        assert!(url("127.0.0.1", 0).is_err_and(|e| e.contains("port is 0")));
    }
}
