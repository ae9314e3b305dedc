//! `Range` requests of a recording download (one byte range, RFC 9110).

/// A single byte range of a `Range` header, resolved against `len`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeReq {
    /// No usable range (absent, malformed, other unit or several ranges):
    /// the whole file, 200.
    Full,
    /// `start..=end`, 206.
    Part(u64, u64),
    /// Well-formed but outside the file: 416.
    Unsatisfiable,
}

/// Parses `bytes=a-b`, `bytes=a-` and `bytes=-n`. Several ranges are
/// answered with the whole file (RFC 9110 lets a server ignore `Range`).
pub fn parse_range(header: Option<&str>, len: u64) -> RangeReq {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return RangeReq::Full;
    };
    if spec.contains(',') {
        return RangeReq::Full;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return RangeReq::Full;
    };
    let (a, b) = (a.trim(), b.trim());
    let num = |s: &str| {
        (!s.is_empty() && s.bytes().all(|c| c.is_ascii_digit()))
            .then(|| s.parse::<u64>().ok())
            .flatten()
    };
    match (a.is_empty(), b.is_empty()) {
        // bytes=-n: the last n bytes.
        (true, false) => match num(b) {
            Some(0) => RangeReq::Unsatisfiable,
            Some(_) if len == 0 => RangeReq::Unsatisfiable,
            Some(n) => RangeReq::Part(len.saturating_sub(n), len - 1),
            None => RangeReq::Full,
        },
        // bytes=a-: from a to the end.
        (false, true) => match num(a) {
            Some(start) if start < len => RangeReq::Part(start, len - 1),
            Some(_) => RangeReq::Unsatisfiable,
            None => RangeReq::Full,
        },
        (false, false) => match (num(a), num(b)) {
            (Some(start), Some(end)) if start <= end => {
                if start < len {
                    RangeReq::Part(start, end.min(len - 1))
                } else {
                    RangeReq::Unsatisfiable
                }
            }
            _ => RangeReq::Full,
        },
        (true, true) => RangeReq::Full,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        let r = |h: &str| parse_range(Some(h), 100);
        assert_eq!(parse_range(None, 100), RangeReq::Full);
        assert_eq!(r("bytes=0-9"), RangeReq::Part(0, 9));
        assert_eq!(r("bytes=90-200"), RangeReq::Part(90, 99));
        assert_eq!(r("bytes=10-"), RangeReq::Part(10, 99));
        assert_eq!(r("bytes=-10"), RangeReq::Part(90, 99));
        assert_eq!(r("bytes=-500"), RangeReq::Part(0, 99));
        assert_eq!(r("bytes=100-"), RangeReq::Unsatisfiable);
        assert_eq!(r("bytes=100-150"), RangeReq::Unsatisfiable);
        assert_eq!(r("bytes=-0"), RangeReq::Unsatisfiable);
        assert_eq!(r("bytes=5-1"), RangeReq::Full);
        assert_eq!(r("bytes=a-b"), RangeReq::Full);
        assert_eq!(r("items=0-1"), RangeReq::Full);
        assert_eq!(r("bytes=0-1,5-6"), RangeReq::Full);
        assert_eq!(parse_range(Some("bytes=-5"), 0), RangeReq::Unsatisfiable);
    }
}
