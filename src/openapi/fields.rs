//! Schemas of request fields whose rules the derive cannot state on its own
//! (list items with the rules of [`crate::validate::text`]), for
//! `#[schema(schema_with = …)]`.

use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Type};
use utoipa::openapi::{Array, Object};

/// What [`crate::validate::text`] accepts: no control characters other
/// than tab and line breaks, and something besides white space.
pub const TEXT_PATTERN: &str = "^[^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\u007F-\\u009F]*[^\\s\\u0000-\\u001F\\u007F-\\u009F][^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\u007F-\\u009F]*$";

/// A string [`crate::validate::text`] accepts, at most `max` characters.
pub fn text(max: usize) -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(Some(max))
        .pattern(Some(TEXT_PATTERN))
        .build()
}

fn text_list(max_len: usize, min_items: usize, max_items: usize) -> Array {
    ArrayBuilder::new()
        .items(text(max_len))
        .min_items(Some(min_items))
        .max_items(Some(max_items))
        .build()
}

/// A session's tags: at most 20, 1–50 characters each (null: unchanged).
pub fn tags() -> Array {
    let mut list = text_list(50, 0, 20);
    list.schema_type = utoipa::openapi::schema::SchemaType::from_iter([Type::Array, Type::Null]);
    list
}

/// A project's dispositions: 1 to 50 names of 1–64 characters.
pub fn dispositions() -> Array {
    text_list(64, 1, 50)
}

/// What [`crate::livekit::names::identity`] accepts (room names too).
pub const NAME_PATTERN: &str = "^[A-Za-z0-9_.:@+-]+$";

/// A participant identity.
pub fn identity() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(Some(crate::livekit::names::MAX_LEN))
        .pattern(Some(NAME_PATTERN))
        .build()
}

/// A list of participant identities.
pub fn identities() -> Array {
    ArrayBuilder::new().items(identity()).build()
}

/// A display name of 1 to 256 characters.
pub fn name256() -> Object {
    text(256)
}

/// A short label of 1 to 128 characters.
pub fn text128() -> Object {
    text(128)
}

/// A date (`2026-03-31`, the whole day) or an RFC 3339 date-time, as
/// `transcripts::service::parse_time` reads it.
pub fn date_or_date_time() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{AnyOfBuilder, KnownFormat, SchemaFormat};
    let string = |f| {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(f)))
    };
    AnyOfBuilder::new()
        .item(string(KnownFormat::Date))
        .item(string(KnownFormat::DateTime))
        .build()
        .into()
}

/// A filter label (a tag or a disposition) of 1 to 100 characters.
pub fn label100() -> Object {
    text(100)
}
