//! `src/db/schema.rs` matches what the migrations create, and every
//! `down.sql` reverts its `up.sql`.

use crate::common::{cluster, root};
use diesel::QueryableByName;
use diesel::sql_types::Text;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use std::collections::BTreeMap;

#[derive(QueryableByName, Debug)]
struct Column {
    #[diesel(sql_type = Text)]
    table_name: String,
    #[diesel(sql_type = Text)]
    column_name: String,
    #[diesel(sql_type = Text)]
    data_type: String,
    #[diesel(sql_type = Text)]
    is_nullable: String,
}

fn diesel_to_pg(ty: &str) -> (String, bool) {
    let (inner, nullable) = match ty
        .strip_prefix("Nullable<")
        .and_then(|t| t.strip_suffix('>'))
    {
        Some(inner) => (inner, true),
        None => (ty, false),
    };
    let pg = match inner {
        "Int8" => "bigint",
        "Int4" => "integer",
        "Int2" => "smallint",
        "Text" => "text",
        "Bool" => "boolean",
        "Bytea" => "bytea",
        "Jsonb" => "jsonb",
        "Timestamptz" => "timestamp with time zone",
        "Numeric" => "numeric",
        "Date" => "date",
        "Float8" => "double precision",
        "Uuid" => "uuid",
        "Array<Text>" => "ARRAY",
        "Array<Int8>" => "ARRAY",
        "Vector" => "USER-DEFINED",
        "Tsvector" => "tsvector",
        other => panic!("add {other} to the type map"),
    };
    (pg.to_string(), nullable)
}

/// (table, column) → (pg type, nullable), parsed from schema.rs.
fn declared() -> BTreeMap<(String, String), (String, bool)> {
    let text = std::fs::read_to_string(root().join("src/db/schema.rs")).unwrap();
    let mut out = BTreeMap::new();
    let mut table: Option<String> = None;
    for line in text.lines().map(str::trim) {
        if let Some(rest) = line.strip_suffix('{').map(str::trim) {
            if let Some((name, _)) = rest.split_once(" (")
                && !name.contains("table!")
            {
                table = Some(name.trim().to_string());
            }
            continue;
        }
        if line == "}" {
            table = None;
            continue;
        }
        if let (Some(t), Some((col, ty))) = (&table, line.split_once(" -> ")) {
            let col = col.trim().trim_start_matches("r#").to_string();
            out.insert(
                (t.clone(), col),
                diesel_to_pg(ty.trim().trim_end_matches(',')),
            );
        }
    }
    out
}

#[tokio::test]
async fn schema_rs_matches_the_migrated_database() {
    let c = cluster();
    let mut conn = AsyncPgConnection::establish(&c.pg.url("voxplane_template"))
        .await
        .unwrap();
    let cols: Vec<Column> = diesel::sql_query(
        "SELECT table_name::text, column_name::text, data_type::text, is_nullable::text \
         FROM information_schema.columns WHERE table_schema = 'public' \
         AND table_name <> '__diesel_schema_migrations'",
    )
    .load(&mut conn)
    .await
    .unwrap();
    let actual: BTreeMap<(String, String), (String, bool)> = cols
        .into_iter()
        .map(|c| {
            (
                (c.table_name, c.column_name),
                (c.data_type, c.is_nullable == "YES"),
            )
        })
        .collect();
    let declared = declared();
    assert!(!declared.is_empty());
    for (key, want) in &declared {
        assert_eq!(
            actual.get(key),
            Some(want),
            "schema.rs declares {key:?} as {want:?}"
        );
    }
    for key in actual.keys() {
        assert!(
            declared.contains_key(key),
            "column {key:?} exists in the database but not in schema.rs"
        );
    }
}

#[tokio::test]
async fn migrations_revert_cleanly_and_reapply() {
    let c = cluster();
    let name = format!("rev{}", std::process::id());
    c.pg.ensure_database(&name).await.unwrap();
    let url = c.pg.url(&name);
    voxplane::db::run_migrations(&url).await.unwrap();
    let n = voxplane::db::revert_all_migrations(&url).await.unwrap();
    assert!(n >= 1);
    let mut conn = AsyncPgConnection::establish(&url).await.unwrap();
    #[derive(QueryableByName)]
    struct T {
        #[diesel(sql_type = Text)]
        t: String,
    }
    let left: Vec<String> = diesel::sql_query(
        "SELECT tablename::text AS t FROM pg_tables WHERE schemaname = 'public' \
         AND tablename <> '__diesel_schema_migrations'",
    )
    .load::<T>(&mut conn)
    .await
    .unwrap()
    .into_iter()
    .map(|r| r.t)
    .collect();
    assert!(left.is_empty(), "tables left after reverting: {left:?}");
    assert!(!voxplane::db::run_migrations(&url).await.unwrap().is_empty());
}

#[tokio::test]
async fn prepared_queries_are_prepared_once_per_connection() {
    use diesel::sql_types::BigInt;
    use diesel_async::RunQueryDsl;
    use voxplane::db::prepared::bind;
    #[derive(diesel::QueryableByName)]
    struct N {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    #[derive(diesel::QueryableByName)]
    struct Plans {
        #[diesel(sql_type = BigInt)]
        plans: i64,
    }
    let app = crate::common::TestApp::spawn().await;
    let mut conn = app.conn().await;
    for i in 0..7_i64 {
        let q = voxplane::prepared!("SELECT $1::int8 + 1 AS n", bind::<BigInt, _>(i));
        let got: N = q.get_result(&mut conn).await.unwrap();
        assert_eq!(got.n, i + 1);
    }
    // One statement, prepared once and executed seven times.
    let plans: Vec<Plans> = diesel::sql_query(
        "SELECT generic_plans + custom_plans AS plans FROM pg_prepared_statements \
         WHERE statement LIKE 'SELECT $1::int8 + 1 AS n%'",
    )
    .load(&mut conn)
    .await
    .unwrap();
    assert_eq!(plans.len(), 1);
    assert_eq!(plans[0].plans, 7);
}
