//! `robots.txt` (RFC 9309): the rules of the group naming our product token
//! (else the `*` group), matched with `*` and `$` wildcards, the longest
//! match deciding and `Allow` winning a tie; `Sitemap:` lines are kept.
//! A missing file (4xx) allows everything; an unreachable one (5xx, network
//! error) disallows everything, as the RFC says.

/// The product token the crawler announces and looks for.
pub const AGENT: &str = "voxplanebot";

/// A group of robots.txt: its user agents and its (allow, pattern) rules.
type Group = (Vec<String>, Vec<(bool, String)>);

/// The rules that apply to the crawler on one site.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Robots {
    /// (allow, path pattern)
    rules: Vec<(bool, String)>,
    disallow_all: bool,
    /// Sitemap URLs the file names.
    pub sitemaps: Vec<String>,
}

impl Robots {
    /// Everything allowed (no robots.txt).
    pub fn allow_all() -> Self {
        Self::default()
    }

    /// Nothing allowed (robots.txt unreachable).
    pub fn disallow_all() -> Self {
        Self {
            disallow_all: true,
            ..Self::default()
        }
    }

    /// Parses a robots.txt for `agent`.
    pub fn parse(text: &str, agent: &str) -> Self {
        let agent = agent.to_ascii_lowercase();
        let mut sitemaps = Vec::new();
        // Groups: (agents, rules).
        let mut groups: Vec<Group> = Vec::new();
        let mut in_agents = false;
        for raw in text.lines() {
            let line = raw.split('#').next().unwrap_or("").trim();
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            let (key, value) = (key.trim().to_ascii_lowercase(), value.trim());
            match key.as_str() {
                "user-agent" => {
                    if !in_agents {
                        groups.push((Vec::new(), Vec::new()));
                    }
                    in_agents = true;
                    if let Some(g) = groups.last_mut() {
                        g.0.push(value.to_ascii_lowercase());
                    }
                }
                "allow" | "disallow" => {
                    in_agents = false;
                    if let Some(g) = groups.last_mut()
                        && !value.is_empty()
                    {
                        g.1.push((key == "allow", value.to_owned()));
                    }
                }
                "sitemap" => sitemaps.push(value.to_owned()),
                _ => {}
            }
        }
        let pick = |want: &dyn Fn(&str) -> bool| -> Option<Vec<(bool, String)>> {
            let rules: Vec<_> = groups
                .iter()
                .filter(|(agents, _)| agents.iter().any(|a| want(a)))
                .flat_map(|(_, r)| r.iter().cloned())
                .collect();
            groups
                .iter()
                .any(|(agents, _)| agents.iter().any(|a| want(a)))
                .then_some(rules)
        };
        let rules = pick(&|a: &str| a != "*" && agent.contains(a))
            .or_else(|| pick(&|a: &str| a == "*"))
            .unwrap_or_default();
        Self {
            rules,
            disallow_all: false,
            sitemaps,
        }
    }

    /// Whether the crawler may fetch a path (with its query).
    pub fn allowed(&self, path: &str) -> bool {
        if self.disallow_all {
            return false;
        }
        if path == "/robots.txt" {
            return true;
        }
        let mut best: Option<(usize, bool)> = None;
        for (allow, pattern) in &self.rules {
            if matches(pattern, path) {
                let len = pattern.len();
                best = match best {
                    Some((l, a)) if l > len || (l == len && a) => Some((l, a)),
                    _ => Some((len, *allow)),
                };
            }
        }
        best.is_none_or(|(_, allow)| allow)
    }
}

/// Whether a robots.txt path pattern matches a path (`*` any run, `$` end).
fn matches(pattern: &str, path: &str) -> bool {
    let (pattern, anchored) = match pattern.strip_suffix('$') {
        Some(p) => (p, true),
        None => (pattern, false),
    };
    let parts: Vec<&str> = pattern.split('*').collect();
    let mut pos = 0usize;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            if !path.starts_with(part) {
                return false;
            }
            pos = part.len();
            continue;
        }
        if i == parts.len() - 1 && anchored {
            return path.len() >= pos + part.len() && path.ends_with(part);
        }
        match path[pos..].find(part) {
            Some(at) => pos += at + part.len(),
            None => return false,
        }
    }
    !anchored || pos == path.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_wildcards_and_longest_match() {
        let txt = "# comment\nUser-agent: *\nDisallow: /private\nAllow: /private/open\n\
                   Disallow: /*.pdf$\n\nUser-agent: OtherBot\nDisallow: /\n\
                   Sitemap: https://example.com/sitemap.xml\n";
        let r = Robots::parse(txt, AGENT);
        assert!(r.allowed("/"));
        assert!(r.allowed("/docs/a"));
        assert!(!r.allowed("/private"));
        assert!(!r.allowed("/private/x"));
        assert!(r.allowed("/private/open/x"));
        assert!(!r.allowed("/files/a.pdf"));
        assert!(r.allowed("/files/a.pdf?x=1"));
        assert_eq!(r.sitemaps, vec!["https://example.com/sitemap.xml"]);
        assert!(!Robots::parse(txt, "otherbot").allowed("/docs"));
    }

    #[test]
    fn our_own_group_wins_over_the_star_group() {
        let txt = "User-agent: *\nDisallow: /\n\nUser-agent: VoxplaneBot\nUser-agent: x\nAllow: /\nDisallow: /tmp\n";
        let r = Robots::parse(txt, AGENT);
        assert!(r.allowed("/a"));
        assert!(!r.allowed("/tmp/b"));
        assert!(Robots::parse("User-agent: *\nDisallow:\n", AGENT).allowed("/x"));
        assert!(!Robots::disallow_all().allowed("/"));
        assert!(Robots::allow_all().allowed("/"));
    }
}
