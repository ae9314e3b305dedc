//! Closed sets of values stored in a `TEXT` column whose `CHECK` constraint
//! lists them (statuses): one Rust enum per column, read and written by
//! diesel as text and by serde as the same strings, so no code compares
//! the strings themselves.
//!
//! `tests/api/statuses.rs` reads each column's `CHECK` list from the
//! migrated database and requires it to be exactly the enum's values.

/// A Rust enum for a text column with a closed set of values.
pub trait TextEnum: Sized + Copy + Eq + std::fmt::Debug + 'static {
    /// The table and column holding it (`("sessions", "status")`).
    const COLUMN: (&'static str, &'static str);
    /// Every value, in declaration order.
    const ALL: &'static [Self];
    /// The stored (and JSON) name.
    fn as_str(self) -> &'static str;
    /// The value of a stored name.
    fn parse(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|v| v.as_str() == name)
    }
}

/// Declares a [`TextEnum`]: the enum with serde names (the variants' in
/// snake_case, which must be the stored names), `as_str`/`parse`,
/// `Display`, and diesel's `ToSql`/`FromSql` over `Text`.
///
/// ```ignore
/// text_enum! {
///     /// The status of a session (`sessions.status`).
///     pub enum SessionStatus in ("sessions", "status") {
///         /// The call is running.
///         Active = "active",
///     }
/// }
/// ```
macro_rules! text_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident in ($table:literal, $column:literal) {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash,
            diesel::expression::AsExpression, diesel::deserialize::FromSqlRow,
            serde::Serialize, serde::Deserialize,
        )]
        #[diesel(sql_type = diesel::sql_types::Text)]
        // The names are the variants' in snake_case (written here, not taken
        // from `$text`, so that utoipa reads them too); the unit tests check
        // that they are the stored names.
        #[serde(rename_all = "snake_case")]
        $vis enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// The stored (and JSON) name.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $( Self::$variant => $text, )+
                }
            }

            /// The value of a stored (or requested) name.
            pub fn parse(name: &str) -> Option<Self> {
                match name {
                    $( $text => Some(Self::$variant), )+
                    _ => None,
                }
            }
        }

        impl $crate::db::text_enum::TextEnum for $name {
            const COLUMN: (&'static str, &'static str) = ($table, $column);
            const ALL: &'static [Self] = &[$( Self::$variant ),+];
            fn as_str(self) -> &'static str {
                $name::as_str(self)
            }
            fn parse(name: &str) -> Option<Self> {
                $name::parse(name)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl diesel::serialize::ToSql<diesel::sql_types::Text, diesel::pg::Pg> for $name {
            fn to_sql<'b>(
                &'b self,
                out: &mut diesel::serialize::Output<'b, '_, diesel::pg::Pg>,
            ) -> diesel::serialize::Result {
                <str as diesel::serialize::ToSql<diesel::sql_types::Text, diesel::pg::Pg>>::to_sql(
                    self.as_str(),
                    out,
                )
            }
        }

        impl diesel::deserialize::FromSql<diesel::sql_types::Text, diesel::pg::Pg> for $name {
            fn from_sql(value: diesel::pg::PgValue<'_>) -> diesel::deserialize::Result<Self> {
                let bytes = value.as_bytes();
                std::str::from_utf8(bytes)
                    .ok()
                    .and_then(Self::parse)
                    .ok_or_else(|| {
                        format!(
                            concat!("unknown ", $table, ".", $column, " {:?}"),
                            String::from_utf8_lossy(bytes)
                        )
                        .into()
                    })
            }
        }
    };
}
pub(crate) use text_enum;

#[cfg(test)]
mod tests {
    use super::TextEnum;

    /// Every value survives name → value → name and JSON → value → JSON,
    /// and no two values share a name.
    fn round_trips<E>()
    where
        E: TextEnum + serde::Serialize + serde::de::DeserializeOwned + std::fmt::Display,
    {
        let mut names = std::collections::HashSet::new();
        for &v in E::ALL {
            let name = v.as_str();
            assert!(names.insert(name), "{name} twice in {:?}", E::COLUMN);
            assert_eq!(E::parse(name), Some(v));
            assert_eq!(v.to_string(), name);
            let json = serde_json::to_value(v).unwrap();
            assert_eq!(json, serde_json::Value::String(name.to_owned()));
            assert_eq!(serde_json::from_value::<E>(json).unwrap(), v);
        }
        assert_eq!(E::parse("no such status"), None);
        assert!(serde_json::from_value::<E>(serde_json::json!("no such status")).is_err());
    }

    #[test]
    fn session_status_round_trips() {
        round_trips::<crate::db::sessions::SessionStatus>();
    }

    #[test]
    fn sip_call_status_round_trips() {
        round_trips::<crate::db::sip_calls::SipCallStatus>();
    }

    #[test]
    fn room_status_round_trips() {
        round_trips::<crate::db::rooms::RoomStatus>();
    }

    #[test]
    fn chat_call_status_round_trips() {
        round_trips::<crate::chat::calls_store::ChatCallStatus>();
    }

    #[test]
    fn delivery_status_round_trips() {
        round_trips::<crate::events::delivery::DeliveryStatus>();
    }

    #[test]
    fn recording_status_round_trips() {
        round_trips::<crate::recordings::store::RecordingStatus>();
    }

    #[test]
    fn kb_indexing_status_round_trips() {
        round_trips::<crate::db::knowledge_bases::KbIndexingStatus>();
    }

    #[test]
    fn kb_document_status_round_trips() {
        round_trips::<crate::db::kb_documents::KbDocumentStatus>();
    }

    #[test]
    fn kb_source_status_round_trips() {
        round_trips::<crate::knowledge::sources::store::KbSourceStatus>();
    }

    #[test]
    fn kb_page_status_round_trips() {
        round_trips::<crate::knowledge::sources::store::KbPageStatus>();
    }
}
