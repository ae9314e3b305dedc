//! The production stack without Docker: `docker-compose.yml`, `deploy/`,
//! the `Dockerfile` and `.env.example` are read the way Compose, nginx,
//! LiveKit and Docker read them, and checked against each other and against
//! Voxplane itself (its settings through the real binary's configuration
//! loader, its routes through the OpenAPI document).

mod files;

use files::{Compose, all, effective, host_port, location, nginx, proxy_headers, read, yaml};
use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

/// The UID of the `egress` user of the livekit/egress image: `useradd` in
/// its Dockerfile on ubuntu:24.04, whose `ubuntu` user already holds 1000.
const EGRESS_UID: u32 = 1001;

/// Secrets of `.env.example`: empty there, required by Compose.
const SECRETS: [&str; 4] = [
    "POSTGRES_PASSWORD",
    "LIVEKIT_API_SECRET",
    "VOXPLANE_JWT_SECRET",
    "SMTP_URL",
];

/// The services that run `voxplane serve`.
fn serve_nodes(c: &Compose) -> Vec<String> {
    c.names()
        .into_iter()
        .filter(|n| c.list(n, &["command"]) == ["serve"])
        .collect()
}

/// The services that run the Voxplane image (nodes and the migrate job).
fn voxplane_services(c: &Compose) -> Vec<String> {
    let image = c.str("migrate", "image").unwrap();
    c.names()
        .into_iter()
        .filter(|n| c.str(n, "image").as_deref() == Some(image.as_str()))
        .collect()
}

/// What a Voxplane container sees: the image's ENV, then the service's.
fn container_env(c: &Compose, service: &str) -> BTreeMap<String, String> {
    let mut env = files::dockerfile_env(&files::dockerfile(&read("Dockerfile")));
    env.extend(c.environment(service));
    env
}

/// Whether a tag names an exact version: three dot-separated numbers
/// (`v1.13.5`, `0.8.6-pg18-trixie`; not `pg18`, `v1.14` or `latest`).
fn has_exact_version(tag: &str) -> bool {
    tag.split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .any(|part| part.split('.').filter(|n| !n.is_empty()).count() >= 3)
}

/// `voxplane check-config` with exactly this environment.
fn check_config(env: &BTreeMap<String, String>) -> Result<(), String> {
    let out = Command::new(env!("CARGO_BIN_EXE_voxplane"))
        .arg("check-config")
        .env_clear()
        .envs(env)
        .current_dir(std::env::temp_dir())
        .output()
        .unwrap();
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[test]
fn migrate_runs_once_before_two_serve_nodes_and_every_service_is_checked() {
    let c = Compose::load();
    for s in [
        "postgres", "redis", "livekit", "egress", "sip", "migrate", "nginx",
    ] {
        c.service(s);
    }
    assert_eq!(c.list("migrate", &["command"]), ["migrate"]);
    assert_eq!(c.str("migrate", "restart").as_deref(), Some("no"));
    assert_eq!(c.depends_on("migrate")["postgres"], "service_healthy");

    let nodes = serve_nodes(&c);
    assert!(nodes.len() >= 2, "{nodes:?}");
    for n in &nodes {
        assert_eq!(
            c.depends_on(n).get("migrate").map(String::as_str),
            Some("service_completed_successfully"),
            "{n} must start after migrate succeeded"
        );
        let hc = c.healthcheck(n).unwrap_or_default();
        assert!(hc.contains("voxplane healthcheck"), "{n}: {hc}");
    }
    // The image checks itself the same way.
    let df = files::dockerfile(&read("Dockerfile"));
    let hc = df.iter().find(|(op, _)| op == "HEALTHCHECK").unwrap();
    assert!(
        hc.1.contains(r#"CMD ["voxplane", "healthcheck"]"#),
        "{hc:?}"
    );

    // Every long-running service has a health check; only the one-shot job has none.
    for s in c.names() {
        let one_shot = c.str(&s, "restart").as_deref() == Some("no");
        assert_eq!(
            c.healthcheck(&s).is_none(),
            one_shot,
            "{s}: a health check on every long-running service"
        );
        for (dep, cond) in c.depends_on(&s) {
            assert!(c.services().contains_key(dep.as_str()), "{s} → {dep}");
            if cond == "service_healthy" {
                assert!(
                    c.healthcheck(&dep).is_some(),
                    "{s} waits for {dep}'s health"
                );
            }
        }
    }
    // Health checks probe the ports the services are configured with.
    let lk = yaml("deploy/livekit.yaml");
    let port = lk["port"].as_u64().unwrap();
    assert!(
        c.healthcheck("livekit")
            .unwrap()
            .contains(&format!(":{port}/"))
    );
    let port = yaml("deploy/egress.yaml")["health_port"].as_u64().unwrap();
    assert!(
        c.healthcheck("egress")
            .unwrap()
            .contains(&format!(":{port}/"))
    );
    let sip = yaml("deploy/sip.yaml");
    let port = sip["health_port"].as_u64().unwrap();
    assert!(c.healthcheck("sip").unwrap().contains(&format!("/{port} ")));

    // Postgres 18 with pgvector, its data where PG18 images keep it.
    let pg = c.str("postgres", "image").unwrap();
    assert!(
        pg.starts_with("pgvector/pgvector:") && pg.contains("pg18"),
        "{pg}"
    );
    let pgdata = c.volumes("postgres");
    assert!(
        pgdata.iter().any(|(_, t, _)| t == "/var/lib/postgresql"),
        "{pgdata:?}"
    );

    // SIP under its profile, publishing exactly its (narrowed) RTP range.
    assert_eq!(c.list("sip", &["profiles"]), ["sip"]);
    let rtp = sip["rtp_port"].as_str().unwrap();
    let (lo, hi) = rtp.split_once('-').unwrap();
    let (lo, hi) = (lo.parse::<u32>().unwrap(), hi.parse::<u32>().unwrap());
    assert!(hi > lo && hi - lo <= 1000, "narrowed RTP range: {rtp}");
    assert!(
        c.list("sip", &["ports"])
            .contains(&format!("{rtp}:{rtp}/udp"))
    );

    // Images are pinned to exact versions (x.y.z in the tag), never `latest`.
    assert!(
        !["pg18", "v1.14", "latest", "8-alpine", ""]
            .into_iter()
            .any(has_exact_version)
    );
    for s in c.names() {
        let image = c.str(&s, "image").unwrap();
        let name = image.split('@').next().unwrap();
        let tag = name.rsplit_once(':').map_or("", |(_, t)| t);
        assert!(
            has_exact_version(tag) && !tag.contains("latest"),
            "{s}: {image} is not pinned"
        );
    }
}

/// Keys of deploy/livekit.yaml, checked against livekit-server v1.13.5's
/// `Config` (pkg/config) and `rtcconfig.RTCConfig`: it decodes its file
/// strictly and refuses to start on any other key.
const LIVEKIT_KEYS: [&str; 15] = [
    "port",
    "rtc",
    "rtc.tcp_port",
    "rtc.udp_port",
    "rtc.port_range_start",
    "rtc.port_range_end",
    "rtc.use_external_ip",
    "rtc.node_ip",
    "redis",
    "redis.address",
    "webhook",
    "webhook.urls",
    "logging",
    "logging.level",
    "logging.json",
];

/// The dotted key paths of a YAML document.
fn key_paths(v: &serde_norway::Value, prefix: &str, out: &mut Vec<String>) {
    if let Some(m) = v.as_mapping() {
        for (k, v) in m {
            let path = format!("{prefix}{}", k.as_str().unwrap());
            key_paths(v, &format!("{path}."), out);
            out.push(path);
        }
    }
}

#[test]
fn livekit_yaml_uses_only_keys_livekit_knows() {
    let mut keys = Vec::new();
    key_paths(&yaml("deploy/livekit.yaml"), "", &mut keys);
    for k in &keys {
        assert!(
            LIVEKIT_KEYS.contains(&k.as_str()),
            "livekit.yaml: unknown key {k}"
        );
    }
    let mut typo = Vec::new();
    key_paths(
        &serde_norway::from_str("webhooks: {urls: []}").unwrap(),
        "",
        &mut typo,
    );
    assert!(!typo.iter().all(|k| LIVEKIT_KEYS.contains(&k.as_str())));
}

#[test]
fn livekit_credentials_come_from_env_example_only() {
    let c = Compose::load();
    let example = files::env_file(&read(".env.example"));
    for s in SECRETS {
        assert_eq!(
            example.get(s).map(String::as_str),
            Some(""),
            "{s} is committed"
        );
    }
    assert!(read(".env.example").contains("openssl rand -hex 32"));
    assert!(
        read(".gitignore")
            .lines()
            .any(|l| l == "/.env" || l == ".env")
    );
    let (key, secret) = (&c.env["LIVEKIT_API_KEY"], &c.env["LIVEKIT_API_SECRET"]);
    assert!(!key.is_empty() && secret.len() >= 32);

    // The LiveKit server: no keys in its file; both from the environment.
    let lk = yaml("deploy/livekit.yaml");
    for k in ["keys", "key_file"] {
        assert!(lk[k].is_null(), "livekit.yaml must not hold `{k}`");
    }
    assert!(lk["webhook"]["api_key"].is_null());
    let env = c.environment("livekit");
    assert_eq!(env["LIVEKIT_KEYS"], format!("{key}: {secret}"));
    assert_eq!(&env["LIVEKIT_WEBHOOK_API_KEY"], key);
    assert!(c.list("livekit", &["command"]).iter().all(|a| a != "--dev"));

    // Egress and SIP read the pair from the environment too.
    for (s, file) in [("egress", "deploy/egress.yaml"), ("sip", "deploy/sip.yaml")] {
        let conf = yaml(file);
        assert!(
            conf["api_key"].is_null() && conf["api_secret"].is_null(),
            "{file}"
        );
        let env = c.environment(s);
        assert_eq!(
            (&env["LIVEKIT_API_KEY"], &env["LIVEKIT_API_SECRET"]),
            (key, secret)
        );
        let (host, port) = host_port(conf["ws_url"].as_str().unwrap());
        assert_eq!(
            (host.as_str(), u64::from(port)),
            ("livekit", lk["port"].as_u64().unwrap())
        );
    }
    // And so does every Voxplane container, which talks to the server API.
    for s in voxplane_services(&c) {
        let env = c.environment(&s);
        assert_eq!(
            (&env["LIVEKIT_API_KEY"], &env["LIVEKIT_API_SECRET"]),
            (key, secret)
        );
        let (host, port) = host_port(&env["LIVEKIT_URL"]);
        assert_eq!(
            (host.as_str(), u64::from(port)),
            ("livekit", lk["port"].as_u64().unwrap())
        );
    }

    // Compose refuses to start without the secrets: every use is `${VAR:?…}`.
    let text = read("docker-compose.yml");
    for s in SECRETS {
        for use_ in text.split(&format!("${{{s}")).skip(1) {
            assert!(use_.starts_with(":?"), "${{{s}…}} must be required");
        }
        let mut missing = c.env.clone();
        missing.insert(s.into(), String::new());
        let users: Vec<String> = c
            .names()
            .into_iter()
            .filter(|n| c.environment_with(n, &missing).is_err())
            .collect();
        assert!(!users.is_empty(), "{s} is used by no service");
    }
}

#[test]
fn env_example_defines_exactly_the_variables_compose_uses() {
    let used = files::referenced_vars(&read("docker-compose.yml"));
    let defined: BTreeSet<String> = files::env_file(&read(".env.example")).into_keys().collect();
    assert_eq!(used, defined);
    // The build context never carries secrets or local state.
    let ignore: BTreeSet<String> = read(".dockerignore")
        .lines()
        .map(|l| l.trim().to_owned())
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    for must in [
        ".env",
        ".env.*",
        ".local",
        "target",
        ".git",
        "voxplane.toml",
    ] {
        assert!(ignore.contains(must), ".dockerignore lacks {must}");
    }
    for needed in [
        "src",
        "migrations",
        "templates",
        "scripts",
        "bench",
        "Cargo.lock",
        "build.rs",
    ] {
        assert!(
            !ignore.iter().any(|p| p.trim_matches('/') == needed),
            ".dockerignore drops {needed}, which the build reads"
        );
    }
}

#[test]
fn livekit_webhooks_reach_voxplane_through_nginx() {
    let c = Compose::load();
    let urls = yaml("deploy/livekit.yaml")["webhook"]["urls"].clone();
    let urls = urls.as_sequence().expect("webhook.urls");
    assert_eq!(urls.len(), 1);
    let url = url::Url::parse(urls[0].as_str().unwrap()).unwrap();
    let (host, port) = host_port(url.as_str());
    assert_eq!(host, "nginx", "through the balancer");
    c.service(&host);

    // The path is Voxplane's LiveKit webhook route.
    let doc: serde_json::Value = serde_json::from_str(voxplane::openapi::document_json()).unwrap();
    assert!(
        doc["paths"][url.path()]["post"].is_object(),
        "{}",
        url.path()
    );

    let conf = nginx(&read("deploy/nginx.conf"));
    let http = all(&conf, "http")[0];
    let server = all(&http.block, "server")[0];
    let listens: Vec<u16> = all(&server.block, "listen")
        .iter()
        .map(|l| l.args[0].rsplit(':').next().unwrap().parse().unwrap())
        .collect();
    assert!(
        listens.contains(&port),
        "nginx listens on {listens:?}, webhook goes to {port}"
    );
    let published = c.list("nginx", &["ports"]);
    assert!(
        published.iter().any(|p| p.ends_with(&format!(":{port}"))),
        "{published:?}"
    );

    // …and nginx hands it to every serve node on the port Voxplane binds.
    let loc = location(server, url.path());
    let pass = effective(&[&loc.block], "proxy_pass")
        .expect("proxied")
        .args[0]
        .clone();
    let upstream_name = pass.strip_prefix("http://").unwrap();
    let upstream = all(&http.block, "upstream")
        .into_iter()
        .find(|u| u.args[0] == upstream_name)
        .unwrap_or_else(|| panic!("no upstream {upstream_name}"));
    let servers: BTreeSet<String> = all(&upstream.block, "server")
        .iter()
        .map(|s| s.args[0].clone())
        .collect();
    let nodes: BTreeSet<String> = serve_nodes(&c)
        .iter()
        .map(|n| format!("{n}:{}", container_env(&c, n)["PORT"]))
        .collect();
    assert_eq!(servers, nodes);
}

#[test]
fn nginx_upgrades_websockets_forwards_the_client_and_takes_the_largest_upload() {
    let conf = nginx(&read("deploy/nginx.conf"));
    let http = all(&conf, "http")[0];
    let server = all(&http.block, "server")[0];

    // Every proxied location sends the client's address, and nothing a
    // client sends in X-Forwarded-For survives (nginx is the edge).
    for loc in all(&server.block, "location") {
        if effective(&[&loc.block], "proxy_pass").is_none() {
            continue;
        }
        let lv = [&http.block[..], &server.block[..], &loc.block[..]];
        let headers = proxy_headers(&lv);
        assert_eq!(
            headers.get("x-forwarded-for").map(String::as_str),
            Some("$remote_addr"),
            "location {:?}",
            loc.args
        );
    }

    // /ws/monitor is upgraded and may stay quiet far longer than a request.
    let ws = location(server, "/ws/monitor");
    let lv = [&http.block[..], &server.block[..], &ws.block[..]];
    let headers = proxy_headers(&lv);
    assert_eq!(
        headers.get("upgrade").map(String::as_str),
        Some("$http_upgrade")
    );
    let conn = headers.get("connection").cloned().unwrap_or_default();
    let map = all(&http.block, "map")
        .into_iter()
        .find(|m| m.args.get(1) == Some(&conn))
        .unwrap_or_else(|| panic!("Connection {conn} is not a map"));
    assert_eq!(map.args[0], "$http_upgrade");
    assert!(
        map.block
            .iter()
            .any(|d| d.name == "default" && d.args == ["upgrade"])
    );
    assert_eq!(effective(&lv, "proxy_http_version").unwrap().args, ["1.1"]);
    let read_timeout =
        effective(&lv, "proxy_read_timeout").map_or(60, |d| files::seconds(&d.args[0]));
    let heartbeat = voxplane::config::Settings::default().monitor_heartbeat_secs;
    assert!(
        read_timeout >= 600 && read_timeout >= 30 * heartbeat,
        "{read_timeout}"
    );

    // Uploads: the largest document Voxplane takes, with its multipart framing.
    let upload = location(server, "/api/v1/knowledge-bases/1/documents");
    let lv = [&http.block[..], &server.block[..], &upload.block[..]];
    let max_body =
        effective(&lv, "client_max_body_size").map_or(1 << 20, |d| files::size(&d.args[0]));
    let largest = voxplane::routes::knowledge::MAX_DOCUMENT_BYTES as u64 + 64 * 1024;
    assert!(
        max_body >= largest,
        "client_max_body_size {max_body} < {largest}"
    );
}

#[test]
fn redis_is_one_address_for_livekit_egress_sip_and_voxplane() {
    let c = Compose::load();
    let cmd = c.list("redis", &["command"]);
    let port = cmd
        .iter()
        .position(|a| a == "--port")
        .map_or(6379, |i| cmd[i + 1].parse::<u16>().unwrap());
    let redis = format!("redis:{port}");
    for file in [
        "deploy/livekit.yaml",
        "deploy/egress.yaml",
        "deploy/sip.yaml",
    ] {
        assert_eq!(
            yaml(file)["redis"]["address"].as_str(),
            Some(redis.as_str()),
            "{file}"
        );
    }
    assert!(
        c.healthcheck("redis")
            .unwrap()
            .contains(&format!("-p {port}"))
    );
    for s in voxplane_services(&c) {
        let (host, p) = host_port(&c.environment(&s)["VOXPLANE_REDIS_URL"]);
        assert_eq!(format!("{host}:{p}"), redis, "{s}");
    }
}

#[test]
fn recordings_volume_is_voxplane_recordings_dir_for_egress_too() {
    let c = Compose::load();
    let dir = container_env(&c, "voxplane-1")["VOXPLANE_RECORDINGS_DIR"].clone();
    assert!(
        dir.starts_with('/'),
        "absolute: Voxplane gives the egress absolute paths"
    );
    let volume = |s: &str| {
        c.volumes(s)
            .into_iter()
            .find(|(_, target, _)| *target == dir)
            .unwrap_or_else(|| panic!("{s} does not mount {dir}"))
    };
    let (source, _, ro) = volume("egress");
    assert!(!ro, "the egress writes recordings");
    assert!(
        c.doc["volumes"].get(source.as_str()).is_some(),
        "a named volume: {source}"
    );
    for s in voxplane_services(&c) {
        assert_eq!(container_env(&c, &s)["VOXPLANE_RECORDINGS_DIR"], dir, "{s}");
        // Voxplane renames finished files and deletes recordings: read-write.
        assert_eq!(volume(&s), (source.clone(), dir.clone(), false), "{s}");
    }
    // Same owner on both sides: the volume takes the owner of the image's
    // directory (Voxplane's user, with the egress user's UID) because the
    // migrate job mounts it before the egress starts.
    assert_eq!(
        c.depends_on("egress")["migrate"],
        "service_completed_successfully"
    );
    let df = read("Dockerfile");
    assert!(
        df.contains(&format!("useradd --uid {EGRESS_UID} ")),
        "Voxplane runs as UID {EGRESS_UID}"
    );
    assert!(df.contains(&format!("mkdir -p {dir}")) && df.contains("chown -R voxplane:voxplane"));
}

#[test]
fn voxplane_containers_get_a_valid_configuration() {
    let c = Compose::load();
    let services = voxplane_services(&c);
    assert!(
        services.contains(&"migrate".to_owned()) && services.len() >= 3,
        "{services:?}"
    );
    for s in &services {
        let env = container_env(&c, s);
        // Exactly what the container gets, through the real loader: an
        // unknown VOXPLANE_* name or a bad value fails here as at start.
        check_config(&env).unwrap_or_else(|e| panic!("{s}: {e}"));
        assert_eq!(env["HOST"], "0.0.0.0", "{s}: reachable from nginx");
        assert_eq!(env["VOXPLANE_LOG_FORMAT"], "json");
        assert!(env["DATABASE_URL"].contains("@postgres:5432/"), "{s}");
        assert!(
            env.contains_key("VOXPLANE_ACCOUNTS__JWT_SECRET"),
            "{s}: one secret per cluster"
        );
    }
    // SIGTERM's grace ends before Docker's SIGKILL.
    let grace: u64 = container_env(&c, "voxplane-1")["VOXPLANE_SHUTDOWN_GRACE_SECS"]
        .parse()
        .unwrap();
    for s in serve_nodes(&c) {
        let kill_after = files::seconds(&c.str(&s, "stop_grace_period").unwrap());
        assert!(
            grace < kill_after,
            "{s}: grace {grace}s vs SIGKILL after {kill_after}s"
        );
    }
    // The check is strict: a misspelt setting or a short secret fails it.
    let good = container_env(&c, "voxplane-1");
    let mut typo = good.clone();
    typo.insert("VOXPLANE_RATE_LIMIT__FREE".into(), "10".into());
    let err = check_config(&typo).unwrap_err();
    assert!(err.to_lowercase().contains("rate_limit"), "{err}");
    let mut short = good;
    short.insert("VOXPLANE_ACCOUNTS__JWT_SECRET".into(), "short".into());
    assert!(
        check_config(&short)
            .unwrap_err()
            .contains("accounts.jwt_secret")
    );

    // nginx is the proxy Voxplane trusts, at the address compose gives it.
    let proxies = &container_env(&c, "voxplane-1")["VOXPLANE_TRUSTED_PROXIES"];
    let nginx_ip = c.service("nginx")["networks"]["voxplane"]["ipv4_address"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        proxies.contains(&format!("{nginx_ip}/32")),
        "{proxies} vs {nginx_ip}"
    );
}

#[test]
fn image_builds_on_one_debian_release_with_setup_sh_s_wheels() {
    let text = read("Dockerfile");
    let df = files::dockerfile(&text);
    // Stages: `FROM image [AS name]`; a FROM naming a stage is not an image.
    let mut stages = Vec::new();
    let mut images = Vec::new();
    for (_, rest) in df.iter().filter(|(op, _)| op == "FROM") {
        let parts: Vec<&str> = rest.split_whitespace().collect();
        if !stages.contains(&parts[0].to_owned()) {
            images.push(parts[0].to_owned());
        }
        if parts.len() == 3 {
            stages.push(parts[2].to_owned());
        }
    }
    let codename = |image: &str| {
        ["bookworm", "trixie", "forky"]
            .into_iter()
            .find(|c| image.split('@').next().unwrap().contains(c))
            .unwrap_or_else(|| panic!("{image} names no Debian release"))
    };
    let (builder, runtime) = (&images[0], images.last().unwrap());
    assert!(builder.starts_with("rust:"), "{builder}");
    assert!(
        runtime.starts_with("debian:") && runtime.contains("-slim"),
        "{runtime}"
    );
    for image in &images {
        assert_eq!(
            codename(image),
            codename(builder),
            "{image} vs the builder {builder}"
        );
        let digest = image.split_once("@sha256:").map(|(_, d)| d).unwrap_or("");
        assert!(
            digest.len() == 64 && digest.chars().all(|c| c.is_ascii_hexdigit()),
            "{image}"
        );
    }

    // Dependencies cached in their own layer, then a locked release build.
    let runs: Vec<&str> = df
        .iter()
        .filter(|(op, _)| op == "RUN")
        .map(|(_, r)| r.as_str())
        .collect();
    let pos = |needle: &str| {
        df.iter()
            .position(|(op, r)| format!("{op} {r}").contains(needle))
            .unwrap_or_else(|| panic!("no `{needle}`"))
    };
    assert!(pos("cargo chef cook --release --locked") < pos("cargo build --release --locked"));
    assert!(
        pos("cargo chef cook")
            < df.iter()
                .rposition(|(op, r)| op == "COPY" && r == ". .")
                .unwrap()
    );

    // The runtime: non-root, listening on every interface, JSON logs.
    let user = df
        .iter()
        .rev()
        .find(|(op, _)| op == "USER")
        .unwrap()
        .1
        .clone();
    assert!(
        !["root", "0", "root:root", "0:0"].contains(&user.as_str()),
        "{user}"
    );
    let env = files::dockerfile_env(&df);
    assert_eq!(
        (env["HOST"].as_str(), env["VOXPLANE_LOG_FORMAT"].as_str()),
        ("0.0.0.0", "json")
    );

    // Model and ONNX Runtime: installed by scripts/setup.sh itself, so its
    // versions and checksums are the only ones; none is repeated here.
    assert!(
        runs.iter()
            .any(|r| r.contains("./scripts/setup.sh --models-only"))
    );
    let setup = read("scripts/setup.sh");
    let model_dir = setup
        .lines()
        .find_map(|l| l.strip_prefix("MODEL_DIR=$LOCAL/"))
        .expect("MODEL_DIR in setup.sh");
    let ort_version = setup
        .lines()
        .find_map(|l| l.strip_prefix("ORT_VERSION="))
        .expect("ORT_VERSION in setup.sh");
    assert!(
        text.contains(&format!(
            "COPY --from=models /src/.local/{model_dir} {}",
            env["VOXPLANE_EMBEDDING_MODEL_DIR"]
        )),
        "the model lands where VOXPLANE_EMBEDDING_MODEL_DIR points"
    );
    let ort_dir = env["VOXPLANE_ONNXRUNTIME_PATH"]
        .rsplit_once('/')
        .unwrap()
        .0
        .to_owned();
    assert!(text.contains(&format!(
        "COPY --from=models /src/.local/onnxruntime {ort_dir}"
    )));
    assert!(
        !text.contains(ort_version),
        "the ONNX Runtime version belongs to setup.sh"
    );
    let hex_runs: Vec<&str> = text
        .split(|c: char| !c.is_ascii_hexdigit())
        .filter(|w| w.len() == 64)
        .collect();
    let digests: Vec<&str> = images
        .iter()
        .filter_map(|i| i.split_once("@sha256:"))
        .map(|(_, d)| d)
        .collect();
    assert!(
        hex_runs.iter().all(|h| digests.contains(h)),
        "a checksum outside setup.sh"
    );
    // …and the embedded default agrees with setup.sh too.
    let default = voxplane::config::Settings::default().onnxruntime_path;
    assert!(
        default
            .to_string_lossy()
            .ends_with(&format!(".so.{ort_version}")),
        "{default:?}"
    );
}

#[test]
fn deploy_md_names_the_images_compose_runs() {
    let c = Compose::load();
    let doc = read("docs/DEPLOY.md");
    for s in c.names() {
        let image = c.str(&s, "image").unwrap();
        let image = image.split('@').next().unwrap();
        if voxplane_services(&c).contains(&s) {
            continue;
        }
        assert!(
            doc.contains(&format!("`{image}`")),
            "docs/DEPLOY.md does not name {image}"
        );
    }
    assert!(read("README.md").contains("docs/DEPLOY.md"));
}
