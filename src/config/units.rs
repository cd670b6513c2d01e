//! Human-friendly units in the config: durations (`500ms`, `10s`, `1m`), percentages (`5%`) and
//! rates (`500/s`, `90/m`).

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// A duration written the way people write them: `500ms`, `10s`, `1m 30s`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct HumanDuration(pub Duration);

impl HumanDuration {
    pub fn parse(text: &str) -> Result<Self, String> {
        humantime::parse_duration(text.trim())
            .map(HumanDuration)
            .map_err(|e| format!("invalid duration `{text}` ({e}); write a number and a unit, e.g. 500ms, 10s, 2m"))
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // A bare number is ambiguous (seconds? milliseconds?): refuse it with a hint.
        deserializer.deserialize_any(TextVisitor {
            expecting: "a duration such as 500ms, 10s or 2m",
            parse: HumanDuration::parse,
            number_hint: |v| format!("invalid duration `{v}`: a unit is required, e.g. {v}s or {v}ms"),
        })
    }
}

impl Serialize for HumanDuration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// A percentage written with its sign: `5%`, `0.5%`. Stored as a fraction (5% → 0.05).
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Percent(pub f64);

impl Percent {
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = || format!("invalid percentage `{text}`; write a number followed by %, e.g. 5%");
        let number = text.trim().strip_suffix('%').ok_or_else(bad)?;
        let value: f64 = number.trim().parse().map_err(|_| bad())?;
        if !value.is_finite() || value < 0.0 {
            return Err(format!("invalid percentage `{text}`: must be a non-negative number"));
        }
        Ok(Percent(value / 100.0))
    }

    pub fn fraction(self) -> f64 {
        self.0
    }
}

impl fmt::Display for Percent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}%", self.0 * 100.0)
    }
}

impl<'de> Deserialize<'de> for Percent {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(TextVisitor {
            expecting: "a percentage such as 5%",
            parse: Percent::parse,
            number_hint: |v| format!("invalid percentage `{v}`: write it with a % sign, e.g. {v}%"),
        })
    }
}

/// A rate of requests, written `500/s` or `90/m`. Stored per second.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Rate(pub f64);

impl Rate {
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = || format!("invalid rate `{text}`; write requests per unit of time, e.g. 500/s or 90/m");
        let (number, unit) = text.trim().split_once('/').ok_or_else(bad)?;
        let per: f64 = match unit.trim() {
            "s" => 1.0,
            "m" | "min" => 60.0,
            _ => return Err(bad()),
        };
        let value: f64 = number.trim().parse().map_err(|_| bad())?;
        if !value.is_finite() || value < 0.0 {
            return Err(format!("invalid rate `{text}`: must not be negative"));
        }
        Ok(Rate(value / per))
    }

    pub fn per_second(self) -> f64 {
        self.0
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/s", self.0)
    }
}

impl<'de> Deserialize<'de> for Rate {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(TextVisitor {
            expecting: "a rate such as 500/s",
            parse: Rate::parse,
            number_hint: |v| format!("invalid rate `{v}`: give its unit of time, e.g. {v}/s"),
        })
    }
}

impl Serialize for Rate {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// Deserializes a value written as text; a bare number is refused with a hint naming the unit.
struct TextVisitor<T> {
    expecting: &'static str,
    parse: fn(&str) -> Result<T, String>,
    number_hint: fn(String) -> String,
}

impl<T> Visitor<'_> for TextVisitor<T> {
    type Value = T;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.expecting)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        (self.parse)(v).map_err(E::custom)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
        Err(E::custom((self.number_hint)(v.to_string())))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
        Err(E::custom((self.number_hint)(v.to_string())))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<T, E> {
        Err(E::custom((self.number_hint)(v.to_string())))
    }
}

impl Serialize for Percent {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// The JSON Schema of a unit written as text (editors complete and check it).
fn text_schema(description: &str, pattern: &str, examples: &[&str]) -> schemars::Schema {
    schemars::json_schema!({
        "type": "string",
        "description": description,
        "pattern": pattern,
        "examples": examples,
    })
}

impl schemars::JsonSchema for HumanDuration {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Duration".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        text_schema(
            "A duration: numbers with units (ns, us, ms, s, m, h), e.g. 500ms, 10s, 1m 30s.",
            r"^\s*[0-9]+\s*[a-zµ]+(\s*[0-9]+\s*[a-zµ]+)*\s*$",
            &["500ms", "10s", "2m"],
        )
    }
}

impl schemars::JsonSchema for Percent {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Percent".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        text_schema("A percentage, written with its % sign.", r"^\s*[0-9]+(\.[0-9]+)?\s*%\s*$", &["5%", "0.5%"])
    }
}

impl schemars::JsonSchema for Rate {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Rate".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        text_schema(
            "Requests per unit of time: per second (/s) or per minute (/m).",
            r"^\s*[0-9]+(\.[0-9]+)?\s*/\s*(s|m|min)\s*$",
            &["500/s", "90/m"],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(HumanDuration::parse("500ms").unwrap().0, Duration::from_millis(500));
        assert_eq!(HumanDuration::parse("10s").unwrap().0, Duration::from_secs(10));
        assert_eq!(HumanDuration::parse("1m 30s").unwrap().0, Duration::from_secs(90));
    }

    #[test]
    fn durations_without_units_are_refused_with_a_hint() {
        let err = serde_yaml::from_str::<HumanDuration>("10").unwrap_err().to_string();
        assert!(err.contains("a unit is required, e.g. 10s"), "{err}");
        let err = HumanDuration::parse("ten seconds").unwrap_err();
        assert!(err.contains("invalid duration `ten seconds`"), "{err}");
    }

    #[test]
    fn rates_are_per_second() {
        assert_eq!(Rate::parse("500/s").unwrap().per_second(), 500.0);
        assert_eq!(Rate::parse("90/m").unwrap().per_second(), 1.5);
        assert!(Rate::parse("500").is_err());
        assert_eq!(Rate::parse("0/s").unwrap().per_second(), 0.0, "a ramp may end at zero");
        assert!(Rate::parse("-1/s").is_err());
        assert!(Rate::parse("5/fortnight").is_err());
        let err = serde_yaml::from_str::<Rate>("500").unwrap_err().to_string();
        assert!(err.contains("e.g. 500/s"), "{err}");
    }

    #[test]
    fn percentages_become_fractions() {
        assert_eq!(Percent::parse("5%").unwrap().fraction(), 0.05);
        assert_eq!(Percent::parse("0.5 %").unwrap().fraction(), 0.005);
        assert!(Percent::parse("5").is_err());
        assert!(Percent::parse("-3%").is_err());
        assert_eq!(Percent(0.05).to_string(), "5%");
    }
}
