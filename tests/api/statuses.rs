//! Every status column's Rust enum holds exactly the values its `CHECK`
//! constraint allows in the migrated database, each value survives a trip
//! through Postgres, and no status column is left without an enum.

use crate::common::{drop_database, fresh_database};
use diesel::sql_types::Text;
use diesel::{IntoSql, QueryableByName};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use std::collections::{BTreeMap, BTreeSet};
use voxplane::db::text_enum::TextEnum;

#[derive(QueryableByName)]
struct Check {
    #[diesel(sql_type = Text)]
    table_name: String,
    #[diesel(sql_type = Text)]
    definition: String,
}

/// (table, column) → the values of every `CHECK (<column> IN (…))` on a
/// column named `status` or `*_status` (Postgres shows it as
/// `CHECK ((status = ANY (ARRAY['a'::text, 'b'::text])))`).
async fn status_checks(conn: &mut AsyncPgConnection) -> BTreeMap<(String, String), Vec<String>> {
    let rows: Vec<Check> = diesel::sql_query(
        "SELECT c.conrelid::regclass::text AS table_name, pg_get_constraintdef(c.oid) AS definition \
         FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace \
         WHERE c.contype = 'c' AND n.nspname = 'public'",
    )
    .load(conn)
    .await
    .unwrap();
    let mut out = BTreeMap::new();
    for r in rows {
        let Some(rest) = r.definition.strip_prefix("CHECK ((") else {
            continue;
        };
        let Some((column, list)) = rest.split_once(" = ANY (ARRAY[") else {
            continue;
        };
        if column != "status" && !column.ends_with("_status") {
            continue;
        }
        let values: Vec<String> = list
            .split("::text")
            .filter_map(|part| {
                let (_, quoted) = part.split_once('\'')?;
                Some(quoted.strip_suffix('\'')?.to_owned())
            })
            .collect();
        assert!(!values.is_empty(), "no values parsed from {}", r.definition);
        let prev = out.insert((r.table_name.clone(), column.to_owned()), values);
        assert!(prev.is_none(), "two checks on {}.{column}", r.table_name);
    }
    out
}

/// Compares `$ty::ALL` with its column's check and sends every value
/// through Postgres and back; records the column as covered.
macro_rules! check {
    ($conn:expr, $checks:expr, $covered:expr, $ty:ty) => {{
        let (table, column) = <$ty as TextEnum>::COLUMN;
        let key = (table.to_owned(), column.to_owned());
        let allowed: BTreeSet<&str> = $checks
            .get(&key)
            .unwrap_or_else(|| panic!("no CHECK list on {table}.{column}"))
            .iter()
            .map(String::as_str)
            .collect();
        let declared: BTreeSet<&str> = <$ty as TextEnum>::ALL
            .iter()
            .map(|v| TextEnum::as_str(*v))
            .collect();
        assert_eq!(
            declared,
            allowed,
            "{} and the CHECK of {table}.{column} differ",
            stringify!($ty)
        );
        assert_eq!(declared.len(), <$ty as TextEnum>::ALL.len());
        for &v in <$ty as TextEnum>::ALL {
            let back: $ty = diesel::select(v.into_sql::<Text>())
                .get_result($conn)
                .await
                .unwrap();
            assert_eq!(back, v);
            let text: String = diesel::select(v.into_sql::<Text>())
                .get_result($conn)
                .await
                .unwrap();
            assert_eq!(text, TextEnum::as_str(v));
        }
        // A name outside the enum is refused when read, not mapped to something.
        let unknown: Result<$ty, _> = diesel::select("no such status".into_sql::<Text>())
            .get_result($conn)
            .await;
        assert!(unknown.is_err(), "{} read an unknown name", stringify!($ty));
        $covered.insert(key);
    }};
}

#[tokio::test]
async fn status_enums_match_the_check_constraints() {
    use voxplane::chat::calls_store::ChatCallStatus;
    use voxplane::db::kb_documents::KbDocumentStatus;
    use voxplane::db::knowledge_bases::KbIndexingStatus;
    use voxplane::db::rooms::RoomStatus;
    use voxplane::db::sessions::SessionStatus;
    use voxplane::db::sip_calls::SipCallStatus;
    use voxplane::events::delivery::DeliveryStatus;
    use voxplane::knowledge::sources::store::{KbPageStatus, KbSourceStatus};
    use voxplane::recordings::RecordingStatus;

    let (name, url) = fresh_database().await;
    let mut conn = AsyncPgConnection::establish(&url).await.unwrap();
    let checks = status_checks(&mut conn).await;
    let mut covered = BTreeSet::new();

    check!(&mut conn, checks, covered, SessionStatus);
    check!(&mut conn, checks, covered, SipCallStatus);
    check!(&mut conn, checks, covered, RoomStatus);
    check!(&mut conn, checks, covered, ChatCallStatus);
    check!(&mut conn, checks, covered, DeliveryStatus);
    check!(&mut conn, checks, covered, RecordingStatus);
    check!(&mut conn, checks, covered, KbIndexingStatus);
    check!(&mut conn, checks, covered, KbDocumentStatus);
    check!(&mut conn, checks, covered, KbSourceStatus);
    check!(&mut conn, checks, covered, KbPageStatus);

    let missing: Vec<_> = checks.keys().filter(|k| !covered.contains(*k)).collect();
    assert!(
        missing.is_empty(),
        "status columns with no Rust enum: {missing:?}"
    );
    drop(conn);
    drop_database(&name);
}

/// The enum lists the OpenAPI document publishes for statuses are the
/// Rust enums' values (the filters of recordings list every status but
/// `starting`, which is never shown).
#[test]
fn documented_statuses_are_the_enums() {
    use voxplane::chat::calls_store::ChatCallStatus;
    use voxplane::db::kb_documents::KbDocumentStatus;
    use voxplane::db::knowledge_bases::KbIndexingStatus;
    use voxplane::db::rooms::RoomStatus;
    use voxplane::db::sessions::SessionStatus;
    use voxplane::events::delivery::DeliveryStatus;
    use voxplane::knowledge::sources::store::{KbPageStatus, KbSourceStatus};
    use voxplane::recordings::RecordingStatus;

    fn names<E: TextEnum>() -> Vec<&'static str> {
        E::ALL.iter().map(|v| v.as_str()).collect()
    }
    let text = std::fs::read_to_string(crate::common::root().join("openapi/openapi.json")).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    let listed = |schema: &str| -> Vec<String> {
        doc["components"]["schemas"][schema]["enum"]
            .as_array()
            .unwrap_or_else(|| panic!("{schema} has no enum list"))
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect()
    };
    let expected = [
        ("SessionStatus", names::<SessionStatus>()),
        ("RoomStatus", names::<RoomStatus>()),
        ("ChatCallStatus", names::<ChatCallStatus>()),
        ("DeliveryStatus", names::<DeliveryStatus>()),
        ("DeliveryStatusFilter", names::<DeliveryStatus>()),
        ("KbIndexingStatus", names::<KbIndexingStatus>()),
        ("KbDocumentStatus", names::<KbDocumentStatus>()),
        ("KbSourceStatus", names::<KbSourceStatus>()),
        ("KbPageStatus", names::<KbPageStatus>()),
        (
            "RecordingStatusFilter",
            names::<RecordingStatus>()
                .into_iter()
                .filter(|s| *s != RecordingStatus::Starting.as_str())
                .collect(),
        ),
    ];
    for (schema, values) in expected {
        assert_eq!(listed(schema), values, "the {schema} schema");
    }
}
