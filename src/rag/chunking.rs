//! Chunking: paragraph- and sentence-aware packing of text into chunks of at
//! most `size` characters (Unicode scalar values), each starting with up to
//! `overlap` characters from the end of the previous one. Cuts fall between
//! paragraphs, then sentences or lines, then words; a word is cut only when it
//! alone is longer than a chunk, and never inside a UTF-8 character.

/// Chunk size and overlap in characters (`overlap * 2 < size`).
#[derive(Debug, Clone, Copy)]
pub struct ChunkParams {
    pub size: usize,
    pub overlap: usize,
}

/// A piece of text that is not cut unless it is larger than a chunk, with the
/// separator that joins it to the piece before.
struct Unit<'a> {
    text: std::borrow::Cow<'a, str>,
    sep: &'static str,
}

fn chars(s: &str) -> usize {
    s.chars().count()
}

/// Splits prose into chunks.
pub fn chunk_text(text: &str, p: ChunkParams) -> Vec<String> {
    let mut units = Vec::new();
    for (pi, para) in paragraphs(text).into_iter().enumerate() {
        for (li, line) in para
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .enumerate()
        {
            for (si, sentence) in sentences(line).into_iter().enumerate() {
                let sep = match (pi, li, si) {
                    (_, 0, 0) => "\n\n",
                    (_, _, 0) => "\n",
                    _ => " ",
                };
                units.push(Unit {
                    text: sentence.into(),
                    sep,
                });
            }
        }
    }
    pack(units, p)
}

/// Packs lines (one unit each) into chunks, e.g. flattened JSON.
pub fn chunk_lines<'a>(lines: impl IntoIterator<Item = &'a str>, p: ChunkParams) -> Vec<String> {
    let units = lines
        .into_iter()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| Unit {
            text: l.into(),
            sep: "\n",
        })
        .collect();
    pack(units, p)
}

fn paragraphs(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut blank_run = false;
    let mut pos = 0;
    for line in text.split_inclusive('\n') {
        let blank = line.trim().is_empty();
        if blank && !blank_run && pos > start {
            out.push(&text[start..pos]);
        }
        if blank {
            start = pos + line.len();
        }
        blank_run = blank;
        pos += line.len();
    }
    if start < text.len() {
        out.push(&text[start..]);
    }
    out.into_iter().filter(|p| !p.trim().is_empty()).collect()
}

/// Sentences of one line: cut after `.`, `!`, `?` (and their CJK forms)
/// followed by whitespace.
fn sentences(line: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut it = line.char_indices().peekable();
    while let Some((i, c)) = it.next() {
        let end = i + c.len_utf8();
        let terminal = matches!(c, '.' | '!' | '?' | '。' | '！' | '？');
        if terminal && it.peek().is_none_or(|(_, n)| n.is_whitespace()) {
            let s = line[start..end].trim();
            if !s.is_empty() {
                out.push(s);
            }
            start = end;
        }
    }
    let rest = line[start..].trim();
    if !rest.is_empty() {
        out.push(rest);
    }
    out
}

/// Cuts a unit longer than `max` characters between words (inside a word only
/// when the word alone is longer than `max`).
fn split_long(text: &str, max: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut cur_len = 0;
    for word in text.split_whitespace() {
        let wlen = chars(word);
        if wlen > max {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
                cur_len = 0;
            }
            let cs: Vec<char> = word.chars().collect();
            out.extend(cs.chunks(max).map(|c| c.iter().collect::<String>()));
            continue;
        }
        let add = if cur.is_empty() { wlen } else { wlen + 1 };
        if cur_len + add > max {
            out.push(std::mem::take(&mut cur));
            cur_len = 0;
        }
        if !cur.is_empty() {
            cur.push(' ');
            cur_len += 1;
        }
        cur.push_str(word);
        cur_len += wlen;
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// The last `n` characters of a chunk, starting at a word when there is one.
fn tail(chunk: &str, n: usize) -> &str {
    if n == 0 {
        return "";
    }
    let len = chars(chunk);
    if len <= n {
        return chunk;
    }
    let start = chunk
        .char_indices()
        .nth(len - n)
        .map_or(chunk.len(), |(i, _)| i);
    let t = &chunk[start..];
    // Start after the first whitespace unless it was already at a word start.
    let at_word = chunk[..start].ends_with(char::is_whitespace);
    match t.find(char::is_whitespace) {
        Some(ws) if !at_word => t[ws..].trim_start(),
        _ => t.trim_start(),
    }
}

fn pack(units: Vec<Unit<'_>>, p: ChunkParams) -> Vec<String> {
    let size = p.size.max(1);
    let mut out: Vec<String> = Vec::new();
    let mut cur = String::new();
    let mut cur_len = 0usize;
    let mut fresh = true; // `cur` holds only overlap (or nothing)
    let mut queue: std::collections::VecDeque<Unit<'_>> = units.into();
    while let Some(unit) = queue.pop_front() {
        let ulen = chars(&unit.text);
        if ulen > size {
            let pieces = split_long(&unit.text, size);
            for (i, piece) in pieces.into_iter().enumerate().rev() {
                let sep = if i == 0 { unit.sep } else { " " };
                queue.push_front(Unit {
                    text: piece.into(),
                    sep,
                });
            }
            continue;
        }
        let sep = if cur.is_empty() { "" } else { unit.sep };
        if cur_len + chars(sep) + ulen <= size {
            cur.push_str(sep);
            cur.push_str(&unit.text);
            cur_len += chars(sep) + ulen;
            fresh = false;
            continue;
        }
        // Full: emit, then start the next chunk with the overlap.
        if !fresh {
            out.push(std::mem::take(&mut cur));
        }
        let prev = out.last().map(String::as_str).unwrap_or("");
        let mut carry = tail(prev, p.overlap);
        while !carry.is_empty() && chars(carry) + 1 + ulen > size {
            carry = tail(carry, chars(carry) / 2);
        }
        cur = carry.to_string();
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(&unit.text);
        cur_len = chars(&cur);
        fresh = false;
    }
    if !fresh && !cur.is_empty() {
        out.push(cur);
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const P: ChunkParams = ChunkParams {
        size: 100,
        overlap: 20,
    };

    #[test]
    fn short_text_is_one_chunk() {
        assert_eq!(
            chunk_text("Hello world. Bye.", P),
            vec!["Hello world. Bye."]
        );
        assert!(chunk_text("  \n\n ", P).is_empty());
    }

    #[test]
    fn chunks_respect_size_words_and_utf8() {
        let text =
            "Ünïcödé wörds ärë fïnë. ".repeat(40) + "\n\n" + &"日本語の文章です。".repeat(30);
        let chunks = chunk_text(&text, P);
        assert!(chunks.len() > 5);
        for c in &chunks {
            assert!(chars(c) <= 100, "{} chars: {c}", chars(c));
            assert!(!c.starts_with(' ') && !c.ends_with(' '));
        }
        // Words are never cut when they fit.
        for c in chunks.iter().filter(|c| c.contains("wörds")) {
            for w in c.split_whitespace() {
                assert!(
                    ["Ünïcödé", "wörds", "ärë", "fïnë.", "fïnë"].contains(&w) || w.contains('日'),
                    "cut word {w:?} in {c:?}"
                );
            }
        }
    }

    #[test]
    fn overlap_repeats_the_end_of_the_previous_chunk() {
        let text = (0..60)
            .map(|i| format!("word{i}"))
            .collect::<Vec<_>>()
            .join(" ");
        let chunks = chunk_text(&text, P);
        for pair in chunks.windows(2) {
            let first_word = pair[1].split_whitespace().next().unwrap();
            assert!(pair[0].ends_with(first_word) || pair[0].contains(&format!("{first_word} ")));
        }
        let none = chunk_text(
            &text,
            ChunkParams {
                size: 100,
                overlap: 0,
            },
        );
        assert!(none.len() < chunks.len() + 1);
    }

    #[test]
    fn a_giant_word_is_cut_on_char_boundaries() {
        let word = "é".repeat(250);
        let chunks = chunk_text(
            &word,
            ChunkParams {
                size: 100,
                overlap: 0,
            },
        );
        assert_eq!(chunks.len(), 3);
        assert_eq!(chunks.iter().map(|c| chars(c)).sum::<usize>(), 250);
    }

    #[test]
    fn paragraphs_and_sentences_are_preferred_cuts() {
        let a = "First paragraph sentence one is here. Sentence two follows it.";
        let b = "Second paragraph has its own words. And one more sentence.";
        let chunks = chunk_text(
            &format!("{a}\n\n{b}"),
            ChunkParams {
                size: 80,
                overlap: 0,
            },
        );
        assert_eq!(chunks, vec![a.to_string(), b.to_string()]);
    }
}
