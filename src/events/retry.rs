//! When a failed delivery is tried again: the configured schedule with ±20 %
//! jitter, and a `Retry-After` from a 429 or 503 honoured as the least wait —
//! clamped to the longest delay of the schedule, so a receiver can neither
//! make Voxplane burn its retries at once nor park a delivery for days.

use chrono::{DateTime, Utc};
use std::time::Duration;

/// The delay before the next try, after `tries` failed tries of the current
/// retry cycle, or `None` when the cycle's schedule is used up.
/// `jitter` is the factor drawn for this try (0.8 to 1.2).
pub fn next_delay(
    schedule: &[u64],
    tries: usize,
    retry_after: Option<Duration>,
    jitter: f64,
) -> Option<Duration> {
    let base = *schedule.get(tries.max(1))?;
    let scheduled = Duration::from_secs(base).mul_f64(jitter.clamp(0.8, 1.2));
    let longest = Duration::from_secs(schedule.iter().copied().max().unwrap_or(0));
    Some(match retry_after {
        Some(asked) => scheduled.max(asked.min(longest)),
        None => scheduled,
    })
}

/// The `Retry-After` of a response with this status, if it is one where the
/// header means "come back later" (429, 503): delay-seconds or an HTTP date.
pub fn retry_after(status: u16, value: Option<&str>, now: DateTime<Utc>) -> Option<Duration> {
    if !matches!(status, 429 | 503) {
        return None;
    }
    let value = value?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = DateTime::parse_from_rfc2822(value)
        .ok()?
        .with_timezone(&Utc);
    Some((at - now).to_std().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCHEDULE: &[u64] = &[0, 5, 300, 1800];

    #[test]
    fn the_schedule_is_followed_with_jitter_and_ends() {
        assert_eq!(
            next_delay(SCHEDULE, 1, None, 1.0),
            Some(Duration::from_secs(5))
        );
        assert_eq!(
            next_delay(SCHEDULE, 2, None, 0.8),
            Some(Duration::from_secs(240))
        );
        assert_eq!(
            next_delay(SCHEDULE, 3, None, 1.2),
            Some(Duration::from_secs(2160))
        );
        assert_eq!(next_delay(SCHEDULE, 4, None, 1.0), None);
        assert_eq!(next_delay(&[0], 1, None, 1.0), None);
    }

    #[test]
    fn retry_after_lengthens_the_wait_up_to_the_longest_delay() {
        let secs = |s| Some(Duration::from_secs(s));
        // Longer than the schedule: honoured.
        assert_eq!(next_delay(SCHEDULE, 1, secs(60), 1.0), secs(60));
        // Beyond the longest delay: clamped to it.
        assert_eq!(next_delay(SCHEDULE, 1, secs(86_400), 1.0), secs(1800));
        // Shorter than the schedule: the schedule still applies.
        assert_eq!(next_delay(SCHEDULE, 2, secs(1), 1.0), secs(300));
        // It does not add tries to a used-up schedule.
        assert_eq!(next_delay(SCHEDULE, 4, secs(1), 1.0), None);
    }

    #[test]
    fn retry_after_is_read_from_429_and_503_as_seconds_or_a_date() {
        let now = DateTime::parse_from_rfc3339("2015-10-21T07:27:00Z")
            .expect("time")
            .with_timezone(&Utc);
        assert_eq!(
            retry_after(503, Some(" 120 "), now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            retry_after(429, Some("Wed, 21 Oct 2015 07:28:00 GMT"), now),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            retry_after(429, Some("Wed, 21 Oct 2015 07:00:00 GMT"), now),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after(500, Some("120"), now), None);
        assert_eq!(retry_after(503, Some("soon"), now), None);
        assert_eq!(retry_after(503, None, now), None);
    }
}
