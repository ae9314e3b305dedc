//! Raw SQL that each connection prepares once and reuses.
//!
//! diesel caches a prepared statement only for queries whose query id is
//! static; a `sql_query` has none (and says it is unsafe to cache), so it is
//! parsed and planned on every call — for the queries on the hot path that
//! costs more than running them. [`prepared!`](crate::prepared) builds a
//! [`Prepared`] query instead: a fixed SQL text with its binds, cached under a
//! marker type unique to the call site.
//!
//! The text's placeholders must be `$1`, `$2`, … in the order they appear,
//! each once, matching the binds in order.

use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::serialize::ToSql;
use diesel::sql_types::{HasSqlType, Untyped};
use std::marker::PhantomData;

/// One bind: a value and its SQL type.
pub struct Bind<ST, V>(pub V, PhantomData<ST>);

/// A bind of `value` as SQL type `ST`.
pub fn bind<ST, V>(value: V) -> Bind<ST, V> {
    Bind(value, PhantomData)
}

/// The binds of a query, pushed in order.
pub trait Binds {
    /// Pushes bind `i` (0-based).
    fn push<'b>(&'b self, i: usize, out: &mut AstPass<'_, 'b, Pg>) -> diesel::QueryResult<()>;
    /// How many there are.
    const LEN: usize;
}

macro_rules! impl_binds {
    ($len:expr; $($n:tt $st:ident $v:ident),*) => {
        impl<$($st, $v),*> Binds for ($(Bind<$st, $v>,)*)
        where
            $(Pg: HasSqlType<$st>, $v: ToSql<$st, Pg>,)*
        {
            #[allow(unused_variables)]
            fn push<'b>(&'b self, i: usize, out: &mut AstPass<'_, 'b, Pg>) -> diesel::QueryResult<()> {
                match i {
                    $($n => out.push_bind_param::<$st, $v>(&self.$n.0),)*
                    _ => Err(diesel::result::Error::QueryBuilderError(
                        format!("no bind ${}", i + 1).into(),
                    )),
                }
            }
            const LEN: usize = $len;
        }
    };
}

impl_binds!(0;);
impl_binds!(1; 0 S0 V0);
impl_binds!(2; 0 S0 V0, 1 S1 V1);
impl_binds!(3; 0 S0 V0, 1 S1 V1, 2 S2 V2);
impl_binds!(4; 0 S0 V0, 1 S1 V1, 2 S2 V2, 3 S3 V3);
impl_binds!(5; 0 S0 V0, 1 S1 V1, 2 S2 V2, 3 S3 V3, 4 S4 V4);
impl_binds!(6; 0 S0 V0, 1 S1 V1, 2 S2 V2, 3 S3 V3, 4 S4 V4, 5 S5 V5);
impl_binds!(7; 0 S0 V0, 1 S1 V1, 2 S2 V2, 3 S3 V3, 4 S4 V4, 5 S5 V5, 6 S6 V6);
impl_binds!(8; 0 S0 V0, 1 S1 V1, 2 S2 V2, 3 S3 V3, 4 S4 V4, 5 S5 V5, 6 S6 V6, 7 S7 V7);
impl_binds!(9; 0 S0 V0, 1 S1 V1, 2 S2 V2, 3 S3 V3, 4 S4 V4, 5 S5 V5, 6 S6 V6, 7 S7 V7, 8 S8 V8);
impl_binds!(10; 0 S0 V0, 1 S1 V1, 2 S2 V2, 3 S3 V3, 4 S4 V4, 5 S5 V5, 6 S6 V6, 7 S7 V7, 8 S8 V8, 9 S9 V9);

/// A query prepared once per connection, cached under the marker type `M`.
/// Build it with [`prepared!`](crate::prepared).
pub struct Prepared<M, B> {
    sql: &'static str,
    binds: B,
    _site: PhantomData<M>,
}

impl<M, B> Prepared<M, B> {
    /// `sql` with `binds`; `M` must be used for this SQL text only.
    pub fn new(sql: &'static str, binds: B) -> Self {
        Self {
            sql,
            binds,
            _site: PhantomData,
        }
    }
}

impl<M: 'static, B> QueryId for Prepared<M, B> {
    type QueryId = M;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl<M, B> Query for Prepared<M, B> {
    type SqlType = Untyped;
}

impl<M, B: Binds> QueryFragment<Pg> for Prepared<M, B> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> diesel::QueryResult<()> {
        let mut rest = self.sql;
        let mut next = 0;
        while let Some(at) = rest.find('$') {
            let digits = rest[at + 1..]
                .bytes()
                .take_while(u8::is_ascii_digit)
                .count();
            if digits == 0 {
                // A '$' that is no placeholder (e.g. inside a literal).
                out.push_sql(&rest[..=at]);
                rest = &rest[at + 1..];
                continue;
            }
            let n: usize = rest[at + 1..at + 1 + digits].parse().unwrap_or(0);
            if n != next + 1 {
                return Err(diesel::result::Error::QueryBuilderError(
                    format!("placeholder ${n} where ${} was expected", next + 1).into(),
                ));
            }
            out.push_sql(&rest[..at]);
            self.binds.push(next, &mut out)?;
            next += 1;
            rest = &rest[at + 1 + digits..];
        }
        out.push_sql(rest);
        if next != B::LEN {
            return Err(diesel::result::Error::QueryBuilderError(
                format!("{} binds for {next} placeholders", B::LEN).into(),
            ));
        }
        Ok(())
    }
}

/// `prepared!(SQL, bind::<BigInt, _>(x), …)`: a query of the fixed text
/// `SQL` (a `&'static str`) with its binds in placeholder order, prepared
/// once per connection.
#[macro_export]
macro_rules! prepared {
    ($sql:expr $(, $bind:expr)* $(,)?) => {{
        struct Site;
        let sql: &'static str = $sql;
        $crate::db::prepared::Prepared::<Site, _>::new(sql, ($($bind,)*))
    }};
}

#[cfg(test)]
mod tests {
    use super::*;
    use diesel::sql_types::{BigInt, Text};

    fn sql_of<M: 'static, B: Binds>(q: &Prepared<M, B>) -> diesel::QueryResult<String> {
        let mut qb = <Pg as diesel::backend::Backend>::QueryBuilder::default();
        QueryFragment::<Pg>::to_sql(q, &mut qb, &Pg)?;
        Ok(diesel::query_builder::QueryBuilder::finish(qb))
    }

    #[test]
    fn placeholders_are_the_binds_in_order() {
        let q = crate::prepared!(
            "SELECT $1::int8 + 1, '$x', $2 AS t",
            bind::<BigInt, _>(1i64),
            bind::<Text, _>("a")
        );
        assert_eq!(
            sql_of(&q).ok().as_deref(),
            Some("SELECT $1::int8 + 1, '$x', $2 AS t")
        );
        let out_of_order = crate::prepared!(
            "SELECT $2, $1",
            bind::<BigInt, _>(1i64),
            bind::<BigInt, _>(2i64)
        );
        assert!(sql_of(&out_of_order).is_err());
        let too_few = crate::prepared!("SELECT $1, $2", bind::<BigInt, _>(1i64));
        assert!(sql_of(&too_few).is_err());
    }
}
