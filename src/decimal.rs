//! [`Decimal`]: an exact decimal (money, minutes) from Postgres `NUMERIC`
//! to the JSON number of a response, never an `f64` on the way.
//!
//! It reads `NUMERIC` with diesel's `numeric` feature (`BigDecimal`), adds
//! exactly, and serializes as a JSON **number** whose text is the decimal
//! itself (through `serde_json::value::RawValue`): trailing zeros dropped,
//! at least one fractional digit kept (`14.52`, `0.3`, `2.0`), so the
//! contract's shapes are unchanged while `0.1 + 0.2` stays `0.3`.

use bigdecimal::BigDecimal;
use diesel::deserialize::{self, FromSql, FromSqlRow};
use diesel::expression::AsExpression;
use diesel::pg::{Pg, PgValue};
use diesel::serialize::{self, Output, ToSql};
use diesel::sql_types::Numeric;
use serde::{Serialize, Serializer};
use std::iter::Sum;
use std::ops::Add;
use std::str::FromStr;

/// An exact decimal, a JSON number in responses.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, AsExpression, FromSqlRow)]
#[diesel(sql_type = Numeric)]
pub struct Decimal(pub BigDecimal);

impl Decimal {
    /// Rounded half away from zero to `places` fractional digits.
    pub fn round(&self, places: i64) -> Self {
        Self(
            self.0
                .with_scale_round(places, bigdecimal::RoundingMode::HalfUp),
        )
    }

    /// The decimal's text as a JSON number: no exponent, trailing zeros
    /// dropped, at least one fractional digit.
    pub fn json_text(&self) -> String {
        let text = self.0.normalized().to_plain_string();
        if text.contains('.') {
            text
        } else {
            format!("{text}.0")
        }
    }
}

impl FromStr for Decimal {
    type Err = bigdecimal::ParseBigDecimalError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        BigDecimal::from_str(s).map(Self)
    }
}

impl Add for Decimal {
    type Output = Decimal;

    fn add(self, other: Decimal) -> Decimal {
        Decimal(self.0 + other.0)
    }
}

impl<'a> Sum<&'a Decimal> for Decimal {
    fn sum<I: Iterator<Item = &'a Decimal>>(iter: I) -> Self {
        Decimal(iter.map(|d| &d.0).sum())
    }
}

impl std::fmt::Display for Decimal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.json_text())
    }
}

impl Serialize for Decimal {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let raw = serde_json::value::RawValue::from_string(self.json_text())
            .map_err(serde::ser::Error::custom)?;
        raw.serialize(serializer)
    }
}

impl FromSql<Numeric, Pg> for Decimal {
    fn from_sql(value: PgValue<'_>) -> deserialize::Result<Self> {
        BigDecimal::from_sql(value).map(Self)
    }
}

impl ToSql<Numeric, Pg> for Decimal {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        <BigDecimal as ToSql<Numeric, Pg>>::to_sql(&self.0, out)
    }
}

#[cfg(test)]
mod tests {
    use super::Decimal;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    #[test]
    fn sums_are_exact_and_serialize_as_json_numbers() {
        let tenths = vec![d("0.1"); 1000];
        let sum: Decimal = tenths.iter().sum();
        assert_eq!(serde_json::to_string(&sum).unwrap(), "100.0");
        let sum = d("0.1") + d("0.2");
        assert_eq!(serde_json::to_string(&sum).unwrap(), "0.3");
        assert_eq!(d("14.520000").json_text(), "14.52");
        assert_eq!(d("0.000000").json_text(), "0.0");
        assert_eq!(d("0.000001").json_text(), "0.000001");
        assert_eq!(d("-2.500").json_text(), "-2.5");
        assert_eq!(
            d("1234567890123.123456").json_text(),
            "1234567890123.123456"
        );
        assert_eq!(d("85.333333").round(2).json_text(), "85.33");
        assert_eq!(d("0.125").round(2).json_text(), "0.13");
        let v: serde_json::Value =
            serde_json::from_str(&serde_json::to_string(&vec![d("0.3")]).unwrap()).unwrap();
        assert_eq!(v[0], serde_json::json!(0.3));
    }
}
