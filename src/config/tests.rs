//! Tests of loading and validating settings.

#![allow(clippy::result_large_err)]

use super::*;
use figment::Figment;
use figment::providers::{Format, Toml};
use std::path::Path;

#[test]
fn defaults_are_valid() {
    assert!(Settings::default().validated().is_ok());
}

#[test]
fn invalid_values_name_the_setting() {
    let s = Settings {
        database_pool_size: 0,
        ..Settings::default()
    };
    let err = s.validated().unwrap_err().to_string();
    assert!(err.contains("database_pool_size"), "{err}");
    let mut s = Settings::default();
    s.rate_limits.free = 0;
    assert!(
        s.validated()
            .unwrap_err()
            .to_string()
            .contains("rate_limits.free")
    );
}

#[test]
fn redis_url_and_trusted_proxies_are_checked() {
    for (redis, proxies, bad) in [
        (
            "redis://redis:6379/1",
            vec!["10.0.0.0/8", "fd00::/8", "127.0.0.1"],
            None,
        ),
        ("http://redis", vec![], Some("redis_url")),
        ("redis://r", vec!["10.0.0.0/33"], Some("trusted_proxies")),
        ("redis://r", vec!["proxy.local"], Some("trusted_proxies")),
    ] {
        let s = Settings {
            redis_url: Some(redis.into()),
            trusted_proxies: proxies.into_iter().map(String::from).collect(),
            ..Settings::default()
        };
        match (s.validated(), bad) {
            (Ok(_), None) => {}
            (Err(e), Some(name)) => assert!(e.to_string().contains(name), "{e}"),
            (r, _) => panic!("{redis}: {:?}", r.map(|_| ())),
        }
    }
}

#[test]
fn env_overrides_file_and_defaults() {
    figment::Jail::expect_with(|jail| {
        jail.create_file("voxplane.toml", "port = 9000\n[rate_limits]\nfree = 10\n")?;
        jail.set_env("VOXPLANE_RATE_LIMITS__FREE", "20");
        jail.set_env("DATABASE_URL", "postgres://u@h/db");
        let s: Settings = Settings::figment(Path::new("voxplane.toml")).extract()?;
        assert_eq!(s.port, 9000);
        assert_eq!(s.rate_limits.free, 20);
        assert_eq!(s.rate_limits.professional, 300);
        assert_eq!(s.database_url.as_deref(), Some("postgres://u@h/db"));
        Ok(())
    });
}

#[test]
fn the_dev_env_file_does_not_break_configuration() {
    figment::Jail::expect_with(|jail| {
        // `source .local/dev.env` exports these; they are not settings.
        jail.set_env("VOXPLANE_URL", "http://127.0.0.1:8080");
        jail.set_env("VOXPLANE_API_KEY", "pk_x");
        jail.set_env("VOXPLANE_DEMO_EMAIL", "demo@example.com");
        let s: Settings = Settings::figment(Path::new("voxplane.toml")).extract()?;
        assert_eq!(s.port, 8080);
        Ok(())
    });
}

#[test]
fn unknown_keys_are_refused() {
    figment::Jail::expect_with(|jail| {
        jail.create_file("voxplane.toml", "prot = 9000\n")?;
        let r: Result<Settings, _> = Settings::figment(Path::new("voxplane.toml")).extract();
        assert!(r.unwrap_err().to_string().contains("prot"));
        Ok(())
    });
}

/// The shipped example documents exactly the defaults.
#[test]
fn example_config_is_the_defaults() {
    let text = include_str!("../../voxplane.example.toml");
    let from_file: Settings = Figment::from(Toml::string(text))
        .extract()
        .expect("example parses");
    let defaults = Settings::default();
    assert_eq!(
        serde_json::to_value(&from_file).expect("json"),
        serde_json::to_value(&defaults).expect("json")
    );
}
