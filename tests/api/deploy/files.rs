//! Readers for the deployment files, as the tools that consume them read
//! them: Compose's `.env` and `${VAR…}` interpolation and YAML merge keys,
//! nginx's blocks and `proxy_set_header` inheritance, Dockerfile
//! instructions.

use crate::common::root;
use serde_norway::{Mapping, Value};
use std::collections::BTreeMap;

/// A file of the repository.
pub fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// `KEY=value` lines of an env file as Compose reads them (comments, blank
/// lines, surrounding quotes).
pub fn env_file(text: &str) -> BTreeMap<String, String> {
    let mut vars = BTreeMap::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (k, v) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("not KEY=value: {line}"));
        let v = v.trim();
        let v = v
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .or_else(|| v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
            .unwrap_or(v);
        assert!(
            vars.insert(k.trim().to_owned(), v.to_owned()).is_none(),
            "{k} twice"
        );
    }
    vars
}

/// `.env.example` as an operator fills it: every empty value (a secret)
/// becomes what `openssl rand -hex 32` prints (64 hex characters), and the
/// API key is changed, so a copy of the example's key in a file shows.
pub fn filled_env() -> BTreeMap<String, String> {
    let mut env = env_file(&read(".env.example"));
    env.insert("LIVEKIT_API_KEY".into(), "APIk3yOfThisCluster".into());
    for (k, v) in env.iter_mut() {
        if v.is_empty() {
            *v = match k.as_str() {
                "SMTP_URL" => "smtp://mailer:0f3a9c@smtp.example.com:587?tls=required".into(),
                _ => {
                    use sha2::{Digest, Sha256};
                    hex::encode(Sha256::digest(k.as_bytes()))
                }
            };
        }
    }
    env
}

/// Compose's interpolation: `$$`, `$VAR`, `${VAR}`, `${VAR:-default}`,
/// `${VAR-default}`, `${VAR:?error}`, `${VAR?error}`. A required variable
/// that is missing (or empty, with `:?`) is an error, as in Compose.
pub fn interpolate(text: &str, env: &BTreeMap<String, String>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        rest = &rest[i + 1..];
        if let Some(r) = rest.strip_prefix('$') {
            out.push('$');
            rest = r;
        } else if let Some(r) = rest.strip_prefix('{') {
            let end = r
                .find('}')
                .ok_or_else(|| format!("unclosed ${{ in {text}"))?;
            let (expr, after) = (&r[..end], &r[end + 1..]);
            let name_len = expr
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(expr.len());
            let (name, op) = expr.split_at(name_len);
            let value = env.get(name).map(String::as_str);
            let set = value.is_some_and(|v| !v.is_empty());
            let resolved = match op {
                "" => value.unwrap_or("").to_owned(),
                _ if op.starts_with(":-") => {
                    if set { value.unwrap_or("") } else { &op[2..] }.to_owned()
                }
                _ if op.starts_with('-') => value.unwrap_or(&op[1..]).to_owned(),
                _ if op.starts_with(":?") => match value {
                    Some(v) if set => v.to_owned(),
                    _ => return Err(format!("{name}: {}", &op[2..])),
                },
                _ if op.starts_with('?') => match value {
                    Some(v) => v.to_owned(),
                    None => return Err(format!("{name}: {}", &op[1..])),
                },
                _ => return Err(format!("unsupported interpolation ${{{expr}}}")),
            };
            out.push_str(&resolved);
            rest = after;
        } else {
            let n = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            out.push_str(env.get(&rest[..n]).map(String::as_str).unwrap_or(""));
            rest = &rest[n..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// The names in every `${VAR…}` of a text.
pub fn referenced_vars(text: &str) -> std::collections::BTreeSet<String> {
    text.split("${")
        .skip(1)
        .map(|s| {
            s.chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect()
        })
        .collect()
}

/// A YAML file with merge keys (`<<: *anchor`) applied.
pub fn yaml(path: &str) -> Value {
    let mut v: Value =
        serde_norway::from_str(&read(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
    v.apply_merge().unwrap_or_else(|e| panic!("{path}: {e}"));
    v
}

/// `docker-compose.yml` parsed, merge keys applied.
pub struct Compose {
    pub doc: Value,
    pub env: BTreeMap<String, String>,
}

impl Compose {
    pub fn load() -> Self {
        Compose {
            doc: yaml("docker-compose.yml"),
            env: filled_env(),
        }
    }

    pub fn services(&self) -> &Mapping {
        self.doc["services"].as_mapping().expect("services")
    }

    pub fn names(&self) -> Vec<String> {
        self.services()
            .keys()
            .map(|k| k.as_str().unwrap().to_owned())
            .collect()
    }

    pub fn service(&self, name: &str) -> &Value {
        self.services()
            .get(name)
            .unwrap_or_else(|| panic!("no service {name}"))
    }

    /// A string field of a service, interpolated.
    pub fn str(&self, service: &str, field: &str) -> Option<String> {
        self.service(service)[field]
            .as_str()
            .map(|s| interpolate(s, &self.env).unwrap())
    }

    /// A service's `environment` (map or list form), interpolated with `env`.
    pub fn environment_with(
        &self,
        service: &str,
        env: &BTreeMap<String, String>,
    ) -> Result<BTreeMap<String, String>, String> {
        let mut out = BTreeMap::new();
        match &self.service(service)["environment"] {
            Value::Mapping(m) => {
                for (k, v) in m {
                    let v = match v {
                        Value::String(s) => s.clone(),
                        Value::Number(n) => n.to_string(),
                        Value::Bool(b) => b.to_string(),
                        other => panic!("{service}: environment value {other:?}"),
                    };
                    out.insert(k.as_str().unwrap().to_owned(), interpolate(&v, env)?);
                }
            }
            Value::Sequence(items) => {
                for item in items {
                    let (k, v) = item.as_str().unwrap().split_once('=').unwrap();
                    out.insert(k.to_owned(), interpolate(v, env)?);
                }
            }
            Value::Null => {}
            other => panic!("{service}: environment {other:?}"),
        }
        Ok(out)
    }

    pub fn environment(&self, service: &str) -> BTreeMap<String, String> {
        self.environment_with(service, &self.env)
            .unwrap_or_else(|e| panic!("{service}: {e}"))
    }

    /// A list of strings (`command`, `profiles`, a healthcheck `test`);
    /// a plain string is one item.
    pub fn list(&self, service: &str, path: &[&str]) -> Vec<String> {
        let mut v = self.service(service);
        for p in path {
            v = &v[*p];
        }
        match v {
            Value::Sequence(items) => items
                .iter()
                .map(|i| interpolate(i.as_str().unwrap(), &self.env).unwrap())
                .collect(),
            Value::String(s) => vec![interpolate(s, &self.env).unwrap()],
            _ => Vec::new(),
        }
    }

    /// `(source, target, read_only)` of a service's volumes (short syntax).
    pub fn volumes(&self, service: &str) -> Vec<(String, String, bool)> {
        self.list(service, &["volumes"])
            .into_iter()
            .map(|v| {
                let parts: Vec<&str> = v.split(':').collect();
                let ro = parts
                    .get(2)
                    .is_some_and(|m| m.split(',').any(|m| m == "ro"));
                (parts[0].to_owned(), parts[1].to_owned(), ro)
            })
            .collect()
    }

    /// `depends_on` as service → condition.
    pub fn depends_on(&self, service: &str) -> BTreeMap<String, String> {
        match &self.service(service)["depends_on"] {
            Value::Mapping(m) => m
                .iter()
                .map(|(k, v)| {
                    let cond = v["condition"].as_str().unwrap_or("service_started");
                    (k.as_str().unwrap().to_owned(), cond.to_owned())
                })
                .collect(),
            Value::Sequence(s) => s
                .iter()
                .map(|k| (k.as_str().unwrap().to_owned(), "service_started".into()))
                .collect(),
            _ => BTreeMap::new(),
        }
    }

    /// The health check command, or `None` when there is none or it is disabled.
    pub fn healthcheck(&self, service: &str) -> Option<String> {
        let hc = &self.service(service)["healthcheck"];
        if hc["disable"].as_bool() == Some(true) {
            return None;
        }
        let test = self.list(service, &["healthcheck", "test"]);
        match test.first().map(String::as_str) {
            None | Some("NONE") => None,
            Some("CMD") | Some("CMD-SHELL") => Some(test[1..].join(" ")),
            Some(_) => Some(test.join(" ")),
        }
    }
}

/// One nginx directive, with its block if it has one.
#[derive(Debug, Clone)]
pub struct Directive {
    pub name: String,
    pub args: Vec<String>,
    pub block: Vec<Directive>,
}

/// nginx configuration syntax: directives end with `;`, blocks are `{ }`,
/// `#` starts a comment, quotes group.
pub fn nginx(text: &str) -> Vec<Directive> {
    let mut tokens = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '#' => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            '{' | '}' | ';' => tokens.push(c.to_string()),
            '"' | '\'' => {
                let mut s = String::new();
                for d in chars.by_ref() {
                    if d == c {
                        break;
                    }
                    s.push(d);
                }
                tokens.push(format!("\u{0}{s}"));
            }
            c if c.is_whitespace() => {}
            c => {
                let mut s = c.to_string();
                while let Some(&d) = chars.peek() {
                    if d.is_whitespace() || matches!(d, '{' | '}' | ';') {
                        break;
                    }
                    s.push(d);
                    chars.next();
                }
                tokens.push(s);
            }
        }
    }
    let mut pos = 0;
    let block = nginx_block(&tokens, &mut pos);
    assert_eq!(pos, tokens.len(), "unbalanced braces");
    block
}

fn nginx_block(tokens: &[String], pos: &mut usize) -> Vec<Directive> {
    let mut out = Vec::new();
    let mut words: Vec<String> = Vec::new();
    while *pos < tokens.len() {
        let t = &tokens[*pos];
        *pos += 1;
        match t.as_str() {
            ";" | "{" => {
                assert!(!words.is_empty(), "empty directive");
                let block = if t == "{" {
                    nginx_block(tokens, pos)
                } else {
                    Vec::new()
                };
                let name = words.remove(0);
                out.push(Directive {
                    name,
                    args: std::mem::take(&mut words),
                    block,
                });
            }
            "}" => return out,
            w => words.push(w.trim_start_matches('\u{0}').to_owned()),
        }
    }
    assert!(words.is_empty(), "unterminated directive {words:?}");
    out
}

/// The directives named `name` directly inside `block`.
pub fn all<'a>(block: &'a [Directive], name: &str) -> Vec<&'a Directive> {
    block.iter().filter(|d| d.name == name).collect()
}

/// The value of a directive at the innermost level that sets it
/// (locations inherit from server, server from http).
pub fn effective<'a>(levels: &[&'a [Directive]], name: &str) -> Option<&'a Directive> {
    levels
        .iter()
        .rev()
        .find_map(|l| l.iter().find(|d| d.name == name))
}

/// `proxy_set_header` as nginx applies it: the innermost level that has any
/// defines them all (nothing is merged from outer levels).
pub fn proxy_headers(levels: &[&[Directive]]) -> BTreeMap<String, String> {
    levels
        .iter()
        .rev()
        .map(|l| all(l, "proxy_set_header"))
        .find(|h| !h.is_empty())
        .unwrap_or_default()
        .into_iter()
        .map(|d| (d.args[0].to_ascii_lowercase(), d.args[1..].join(" ")))
        .collect()
}

/// The location a request path is served by: an exact `= path` match, else
/// the longest prefix (this file uses no regex locations).
pub fn location<'a>(server: &'a Directive, path: &str) -> &'a Directive {
    let locations = all(&server.block, "location");
    if let Some(exact) = locations
        .iter()
        .find(|l| l.args.len() == 2 && l.args[0] == "=" && l.args[1] == path)
    {
        return exact;
    }
    locations
        .into_iter()
        .filter(|l| l.args.len() == 1 && path.starts_with(&l.args[0]))
        .max_by_key(|l| l.args[0].len())
        .unwrap_or_else(|| panic!("no location serves {path}"))
}

/// nginx sizes: `48m`, `1k`, `1048576`.
pub fn size(s: &str) -> u64 {
    let (n, mult) = match s.chars().last().map(|c| c.to_ascii_lowercase()) {
        Some('k') => (&s[..s.len() - 1], 1 << 10),
        Some('m') => (&s[..s.len() - 1], 1 << 20),
        Some('g') => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    n.parse::<u64>().unwrap() * mult
}

/// nginx times in seconds: `3600s`, `60`, `1h`, `10m`.
pub fn seconds(s: &str) -> u64 {
    let (n, mult) = match s.chars().last() {
        Some('s') => (&s[..s.len() - 1], 1),
        Some('m') => (&s[..s.len() - 1], 60),
        Some('h') => (&s[..s.len() - 1], 3600),
        _ => (s, 1),
    };
    n.parse::<u64>().unwrap() * mult
}

/// Dockerfile instructions (continuation lines joined, comments dropped).
pub fn dockerfile(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let t = line.trim();
        if current.is_empty() && (t.is_empty() || t.starts_with('#')) {
            continue;
        }
        if let Some(cont) = t.strip_suffix('\\') {
            current.push_str(cont);
            current.push(' ');
            continue;
        }
        current.push_str(t);
        let (op, rest) = current.split_once(' ').unwrap_or((&current, ""));
        out.push((op.to_ascii_uppercase(), rest.trim().to_owned()));
        current.clear();
    }
    out
}

/// `ENV` of a Dockerfile's last stage (`ENV A=1 B=2` form).
pub fn dockerfile_env(instructions: &[(String, String)]) -> BTreeMap<String, String> {
    let last_from = instructions
        .iter()
        .rposition(|(op, _)| op == "FROM")
        .unwrap();
    instructions[last_from..]
        .iter()
        .filter(|(op, _)| op == "ENV")
        .flat_map(|(_, rest)| rest.split_whitespace())
        .map(|kv| {
            let (k, v) = kv.split_once('=').expect("ENV K=V");
            (k.to_owned(), v.to_owned())
        })
        .collect()
}

/// The host and port of a URL (default port by scheme).
pub fn host_port(url: &str) -> (String, u16) {
    let u = url::Url::parse(url).unwrap_or_else(|e| panic!("{url}: {e}"));
    let port = u
        .port_or_known_default()
        .unwrap_or_else(|| match u.scheme() {
            "redis" => 6379,
            s => panic!("no default port for {s}"),
        });
    (u.host_str().unwrap().to_owned(), port)
}

#[test]
fn readers_read_like_compose_and_nginx() {
    let env: BTreeMap<String, String> =
        [("A".into(), "x".into()), ("E".into(), String::new())].into();
    assert_eq!(
        interpolate("$$A ${A} $A ${B:-d} ${E:-d} ${E-d}", &env).unwrap(),
        "$A x x d d "
    );
    assert!(
        interpolate("${E:?needed}", &env)
            .unwrap_err()
            .contains("needed")
    );
    assert_eq!(interpolate("${E?needed}", &env).unwrap(), "");
    assert!(interpolate("${B?needed}", &env).is_err());
    assert_eq!(env_file("# c\nA=\"q v\"\nB=x y\n")["B"], "x y");

    let conf = nginx(
        "http { proxy_set_header A 1; server { location / { } location /ws/ { proxy_set_header B 2; } location = /x { } } }",
    );
    let http = &conf[0];
    let server = &all(&http.block, "server")[0];
    let ws = location(server, "/ws/monitor");
    assert_eq!(ws.args, ["/ws/"]);
    assert_eq!(location(server, "/x").args, ["=", "/x"]);
    assert_eq!(location(server, "/xy").args, ["/"]);
    let levels = [&http.block[..], &server.block[..], &ws.block[..]];
    // B replaces A: nothing is inherited once a level sets any header.
    assert_eq!(proxy_headers(&levels).keys().collect::<Vec<_>>(), ["b"]);
    let root = location(server, "/");
    let levels = [&http.block[..], &server.block[..], &root.block[..]];
    assert_eq!(proxy_headers(&levels).keys().collect::<Vec<_>>(), ["a"]);
    assert_eq!(size("48m"), 48 << 20);
    assert_eq!(seconds("1h"), 3600);
}
