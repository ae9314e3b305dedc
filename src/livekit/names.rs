//! Room names and participant identities: the API takes short names, LiveKit
//! sees `<project room_prefix>_<name>`. A project can only ever address rooms
//! under its own prefix.

use crate::error::{ApiError, ApiResult};

/// Longest short room name or identity.
pub const MAX_LEN: usize = 128;
/// What a valid room name is, as error messages say it.
pub const ROOM_RULE: &str =
    "Room names are 1 to 128 characters of letters, digits, '-', '_', '.', ':', '@' or '+'";

fn valid(s: &str) -> bool {
    (1..=MAX_LEN).contains(&s.len())
        && s.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':' | b'@' | b'+')
        })
}

/// A room of a project: its short name and the name LiveKit knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomName {
    /// The name without prefix.
    pub short: String,
    /// `<prefix>_<short>`.
    pub full: String,
}

impl RoomName {
    /// Accepts the short name or the full name under the caller's own prefix.
    pub fn parse(prefix: &str, input: &str) -> ApiResult<Self> {
        let own = format!("{prefix}_");
        let short = input.strip_prefix(&own).unwrap_or(input);
        if !valid(short) {
            return Err(ApiError::invalid_field("room", ROOM_RULE));
        }
        Ok(Self {
            short: short.to_owned(),
            full: format!("{own}{short}"),
        })
    }

    /// The short name of a full LiveKit room name under `prefix`, if it is one.
    pub fn from_full(prefix: &str, full: &str) -> Option<Self> {
        let short = full.strip_prefix(prefix)?.strip_prefix('_')?;
        Some(Self {
            short: short.to_owned(),
            full: full.to_owned(),
        })
    }
}

/// The room prefix of a full LiveKit room name (`<prefix>_…`).
pub fn prefix_of(full: &str) -> Option<&str> {
    full.split_once('_')
        .map(|(p, _)| p)
        .filter(|p| !p.is_empty())
}

/// Validates a participant identity.
pub fn identity(field: &str, input: &str) -> ApiResult<String> {
    if !valid(input) {
        return Err(ApiError::invalid_field(
            field,
            format!(
                "{field} must be 1 to {MAX_LEN} characters of letters, digits, '-', '_', '.', ':', '@' or '+'"
            ),
        ));
    }
    Ok(input.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_and_full_forms_map_to_the_same_room() {
        let a = RoomName::parse("pabc", "my-room").expect("valid");
        let b = RoomName::parse("pabc", "pabc_my-room").expect("valid");
        assert_eq!(a, b);
        assert_eq!(a.full, "pabc_my-room");
        // Another project's full name stays inside the caller's prefix.
        let c = RoomName::parse("pabc", "pxyz_room").expect("valid");
        assert_eq!(c.full, "pabc_pxyz_room");
    }

    #[test]
    fn unsafe_names_are_refused() {
        for bad in ["", "a b", "../x", "a/b", "ü", &"x".repeat(129)] {
            assert!(RoomName::parse("p", bad).is_err(), "{bad}");
        }
        assert_eq!(prefix_of("pabc_room_1"), Some("pabc"));
        assert_eq!(
            RoomName::from_full("pabc", "pabc_room_1").map(|r| r.short),
            Some("room_1".into())
        );
        assert!(RoomName::from_full("pabc", "pabcd_room").is_none());
    }
}
