//! A session's transcript as SRT, WebVTT and CSV (pure functions over the
//! lines; JSON stays the contract's `{session_id, transcripts}`).
//!
//! Subtitles carry the final lines (interim ones are drafts of them). A cue
//! starts at the line's `timestamp_ms` and lasts until the next line starts,
//! at most [`MAX_CUE_MS`] and at least [`MIN_CUE_MS`] (lines that share a
//! start get the minimum); blank lines inside a line's text are dropped so
//! that no cue ends early.

use crate::db::sessions::Line;

/// Longest cue.
pub const MAX_CUE_MS: i64 = 10_000;
/// Shortest cue.
pub const MIN_CUE_MS: i64 = 500;

/// An export format of `GET …/transcript?format=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Srt,
    Vtt,
    Csv,
}

impl Format {
    /// `json`, `srt`, `vtt` (or `webvtt`), `csv`.
    pub fn parse(v: &str) -> Option<Format> {
        Some(match v.to_ascii_lowercase().as_str() {
            "json" => Self::Json,
            "srt" => Self::Srt,
            "vtt" | "webvtt" => Self::Vtt,
            "csv" => Self::Csv,
            _ => return None,
        })
    }

    /// The response's content type.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Json => "application/json",
            Self::Srt => "application/x-subrip; charset=utf-8",
            Self::Vtt => "text/vtt; charset=utf-8",
            Self::Csv => "text/csv; charset=utf-8",
        }
    }

    /// The file extension.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::Srt => "srt",
            Self::Vtt => "vtt",
            Self::Csv => "csv",
        }
    }
}

fn who(speaker: &str) -> &'static str {
    match speaker {
        "agent" => "Agent",
        "user" => "User",
        _ => "System",
    }
}

/// (start, end) of each final line's cue, with the line.
fn cues(lines: &[Line]) -> Vec<(i64, i64, &Line)> {
    let finals: Vec<&Line> = lines.iter().filter(|l| l.is_final).collect();
    finals
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let start = l.timestamp_ms.max(0);
            let next = finals
                .get(i + 1)
                .map(|n| n.timestamp_ms)
                .unwrap_or(i64::MAX);
            let end = next.min(start + MAX_CUE_MS).max(start + MIN_CUE_MS);
            (start, end, *l)
        })
        .collect()
}

fn clock(ms: i64, sep: char) -> String {
    let ms = ms.max(0);
    let (h, m, s, f) = (
        ms / 3_600_000,
        (ms / 60_000) % 60,
        (ms / 1000) % 60,
        ms % 1000,
    );
    format!("{h:02}:{m:02}:{s:02}{sep}{f:03}")
}

/// The text with no empty lines (an empty line ends a cue) and no CR.
fn cue_text(content: &str) -> String {
    content
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.trim().is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

/// SubRip: numbered cues, `HH:MM:SS,mmm --> HH:MM:SS,mmm`, `Speaker: text`.
pub fn srt(lines: &[Line]) -> String {
    let mut out = String::new();
    for (i, (start, end, l)) in cues(lines).into_iter().enumerate() {
        out.push_str(&format!(
            "{}\n{} --> {}\n{}: {}\n\n",
            i + 1,
            clock(start, ','),
            clock(end, ','),
            who(&l.speaker),
            cue_text(&l.content)
        ));
    }
    out
}

/// WebVTT: `WEBVTT`, cues `HH:MM:SS.mmm --> HH:MM:SS.mmm` with a voice tag
/// (`<v User>`); `&`, `<`, `>` escaped, so `-->` cannot occur in a cue.
pub fn vtt(lines: &[Line]) -> String {
    let mut out = String::from("WEBVTT\n\n");
    for (i, (start, end, l)) in cues(lines).into_iter().enumerate() {
        let text = cue_text(&l.content)
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;");
        out.push_str(&format!(
            "{}\n{} --> {}\n<v {}>{}\n\n",
            i + 1,
            clock(start, '.'),
            clock(end, '.'),
            who(&l.speaker),
            text
        ));
    }
    out
}

/// One CSV field (RFC 4180): quoted when it holds a comma, a quote, CR or
/// LF; quotes doubled.
pub fn csv_field(v: &str) -> String {
    if v.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", v.replace('"', "\"\""))
    } else {
        v.to_owned()
    }
}

/// CSV with a header; every line, interim ones flagged.
pub fn csv(lines: &[Line]) -> String {
    let mut out = String::from("timestamp_ms,time,speaker,content,is_final,created_at\r\n");
    for l in lines {
        out.push_str(&format!(
            "{},{},{},{},{},{}\r\n",
            l.timestamp_ms,
            clock(l.timestamp_ms, '.'),
            l.speaker,
            csv_field(&l.content),
            l.is_final,
            l.created_at
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn line(ts: i64, speaker: &str, content: &str, is_final: bool) -> Line {
        Line {
            id: ts,
            speaker: speaker.into(),
            content: content.into(),
            timestamp_ms: ts,
            is_final,
            created_at: Utc::now(),
        }
    }

    #[test]
    fn cues_end_at_the_next_line_within_bounds() {
        let lines = [
            line(0, "user", "Hi", true),
            line(100, "user", "Hel", false),
            line(1_200, "agent", "Hello", true),
            line(1_200, "user", "same start", true),
            line(60_000, "user", "last", true),
        ];
        let c: Vec<(i64, i64)> = cues(&lines).iter().map(|(s, e, _)| (*s, *e)).collect();
        assert_eq!(
            c,
            [
                (0, 1_200),
                (1_200, 1_700),
                (1_200, 11_200),
                (60_000, 70_000)
            ]
        );
        assert_eq!(clock(3_723_004, ','), "01:02:03,004");
    }

    #[test]
    fn csv_fields_are_quoted_when_needed() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\"\nok"), "\"say \"\"hi\"\"\nok\"");
    }

    #[test]
    fn vtt_escapes_markup_and_arrows() {
        let out = vtt(&[line(0, "user", "a --> b <i>", true)]);
        assert!(out.contains("<v User>a --&gt; b &lt;i&gt;"), "{out}");
    }
}
