//! Highlighted snippets of search hits: the window of a chunk with the most
//! query terms, the terms wrapped in `<mark>…</mark>`. Terms match by their
//! Snowball English stem (the stemmer of Postgres's `english` configuration,
//! which ranks the full-text side), stop words left out. The rest of the
//! text is HTML-escaped, so a snippet can be shown as HTML as it is.

use rust_stemmers::{Algorithm, Stemmer};
use std::collections::HashSet;

/// Characters of a snippet, about (cut at word boundaries).
pub const SNIPPET_CHARS: usize = 240;

const STOP: &[&str] = &[
    "a", "about", "above", "after", "again", "against", "all", "am", "an", "and", "any", "are",
    "as", "at", "be", "because", "been", "before", "being", "below", "between", "both", "but",
    "by", "can", "could", "did", "do", "does", "doing", "down", "during", "each", "few", "for",
    "from", "further", "had", "has", "have", "having", "he", "her", "here", "hers", "him", "his",
    "how", "i", "if", "in", "into", "is", "it", "its", "itself", "just", "me", "more", "most",
    "my", "no", "nor", "not", "now", "of", "off", "on", "once", "only", "or", "other", "our",
    "ours", "out", "over", "own", "same", "she", "should", "so", "some", "such", "than", "that",
    "the", "their", "them", "then", "there", "these", "they", "this", "those", "through", "to",
    "too", "under", "until", "up", "very", "was", "we", "were", "what", "when", "where", "which",
    "while", "who", "whom", "why", "will", "with", "would", "you", "your", "yours",
];

/// The words of a text with their byte ranges (letters and digits).
fn words(text: &str) -> impl Iterator<Item = (usize, usize)> + '_ {
    let mut start: Option<usize> = None;
    let mut iter = text
        .char_indices()
        .chain(std::iter::once((text.len(), ' ')));
    std::iter::from_fn(move || {
        for (i, c) in iter.by_ref() {
            match (c.is_alphanumeric(), start) {
                (true, None) => start = Some(i),
                (false, Some(s)) => {
                    start = None;
                    return Some((s, i));
                }
                _ => {}
            }
        }
        None
    })
}

/// The terms of a query, ready to highlight chunks.
pub struct Highlighter {
    stemmer: Stemmer,
    stems: HashSet<String>,
}

impl Highlighter {
    /// The query's stemmed terms, stop words left out.
    pub fn new(query: &str) -> Self {
        let stemmer = Stemmer::create(Algorithm::English);
        let stems = words(query)
            .map(|(s, e)| query[s..e].to_lowercase())
            .filter(|w| !STOP.contains(&w.as_str()))
            .map(|w| stemmer.stem(&w).into_owned())
            .collect();
        Self { stemmer, stems }
    }

    fn is_term(&self, word: &str) -> bool {
        !self.stems.is_empty()
            && self
                .stems
                .contains(self.stemmer.stem(&word.to_lowercase()).as_ref())
    }

    /// About `max` characters of `content` around its densest run of query
    /// terms (the start when none), terms in `<mark>`, the rest escaped,
    /// `…` where text was cut.
    pub fn snippet(&self, content: &str, max: usize) -> String {
        let all: Vec<(usize, usize)> = words(content).collect();
        let hits: Vec<usize> = all
            .iter()
            .enumerate()
            .filter(|(_, (s, e))| self.is_term(&content[*s..*e]))
            .map(|(i, _)| i)
            .collect();
        // Byte offset of the first char past `max` chars from `from`.
        let end_of = |from: usize| {
            content[from..]
                .char_indices()
                .nth(max)
                .map_or(content.len(), |(i, _)| from + i)
        };
        // The window: start a few words before the hit that opens the most
        // hits within `max` characters.
        let mut start = 0usize;
        let mut best = 0usize;
        for &h in &hits {
            let from = all[h.saturating_sub(3)].0;
            let to = end_of(from);
            let n = hits
                .iter()
                .filter(|&&j| all[j].0 >= from && all[j].1 <= to)
                .count();
            if n > best {
                (best, start) = (n, from);
            }
        }
        if best > 0 && end_of(start) == content.len() {
            // Near the end: show a full window ending there.
            let len = content.chars().count();
            let back = content
                .char_indices()
                .nth(len.saturating_sub(max))
                .map_or(0, |(i, _)| i);
            start = all
                .iter()
                .map(|w| w.0)
                .find(|&s| s >= back)
                .unwrap_or(0)
                .min(start);
        }
        let mut end = end_of(start);
        if end < content.len() {
            // Cut at the last word boundary inside the window.
            end = all
                .iter()
                .filter(|w| w.1 <= end && w.0 >= start)
                .map(|w| w.1)
                .next_back()
                .unwrap_or(end);
        }
        let mut out = String::new();
        if start > 0 {
            out.push('…');
        }
        let mut pos = start;
        for &(s, e) in all.iter().filter(|w| w.0 >= start && w.1 <= end) {
            escape_into(&mut out, &content[pos..s]);
            if self.is_term(&content[s..e]) {
                out.push_str("<mark>");
                escape_into(&mut out, &content[s..e]);
                out.push_str("</mark>");
            } else {
                escape_into(&mut out, &content[s..e]);
            }
            pos = e;
        }
        escape_into(&mut out, &content[pos..end]);
        if end < content.len() {
            out.push('…');
        }
        out.split_whitespace().collect::<Vec<_>>().join(" ")
    }
}

fn escape_into(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_are_marked_by_stem_and_the_rest_escaped() {
        let h = Highlighter::new("How do refunds work for <yearly> plans?");
        let s = h.snippet(
            "Refunding a yearly plan: we refund <b>unused</b> months.",
            200,
        );
        assert_eq!(
            s,
            "<mark>Refunding</mark> a <mark>yearly</mark> <mark>plan</mark>: we <mark>refund</mark> &lt;b&gt;unused&lt;/b&gt; months."
        );
    }

    #[test]
    fn the_window_moves_to_the_terms_and_cuts_at_words() {
        let text = format!(
            "{} The warranty covers batteries for two years. {}",
            "Filler words here. ".repeat(20),
            "More filler after. ".repeat(20)
        );
        let s = Highlighter::new("battery warranty").snippet(&text, 80);
        assert!(s.starts_with('…') && s.ends_with('…'), "{s}");
        assert!(
            s.contains("<mark>warranty</mark>") && s.contains("<mark>batteries</mark>"),
            "{s}"
        );
        assert!(s.chars().count() < 80 + 40, "{s}");
        let plain = Highlighter::new("the of").snippet("Short text.", 80);
        assert_eq!(plain, "Short text.");
    }
}
