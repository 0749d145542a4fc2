//! Policy conditions: `"Condition": { "<operator>": { "<key>": <value or values> } }`.
//!
//! Every operator block must hold and, inside one, every key; a key holds when its request value
//! matches any of the listed values (for negated operators: none of them). A key the request does
//! not have makes a positive operator false and a negated one true; the `...IfExists` forms are
//! true when the key is absent, and `Null` tests presence itself. All as IAM documents it:
//! <https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html>.

use std::net::IpAddr;

use serde_json::Value;

use super::{pattern, PolicyError, RequestFacts};
use crate::store::Millis;

/// One `operator: { key: values }` pair, checked at parse time.
#[derive(Clone, Debug)]
pub(crate) struct Condition {
    test: Test,
    if_exists: bool,
    /// The condition key, lower case (keys are case-insensitive).
    key: String,
    values: Vec<Operand>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Test {
    StringEquals { ignore_case: bool, negated: bool },
    StringLike { negated: bool },
    Numeric(Comparison),
    Date(Comparison),
    Bool,
    IpAddress { negated: bool },
    Arn { negated: bool },
    Null,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Comparison {
    Equals,
    NotEquals,
    LessThan,
    LessThanEquals,
    GreaterThan,
    GreaterThanEquals,
}

/// A condition value, parsed once for the operator that uses it.
#[derive(Clone, Debug)]
enum Operand {
    Text(String),
    Number(f64),
    Time(Millis),
    Network { address: IpAddr, prefix: u8 },
}

impl Test {
    fn parse(name: &str) -> Option<Test> {
        use Comparison::*;
        Some(match name {
            "StringEquals" => Test::StringEquals { ignore_case: false, negated: false },
            "StringNotEquals" => Test::StringEquals { ignore_case: false, negated: true },
            "StringEqualsIgnoreCase" => Test::StringEquals { ignore_case: true, negated: false },
            "StringNotEqualsIgnoreCase" => Test::StringEquals { ignore_case: true, negated: true },
            "StringLike" => Test::StringLike { negated: false },
            "StringNotLike" => Test::StringLike { negated: true },
            "NumericEquals" => Test::Numeric(Equals),
            "NumericNotEquals" => Test::Numeric(NotEquals),
            "NumericLessThan" => Test::Numeric(LessThan),
            "NumericLessThanEquals" => Test::Numeric(LessThanEquals),
            "NumericGreaterThan" => Test::Numeric(GreaterThan),
            "NumericGreaterThanEquals" => Test::Numeric(GreaterThanEquals),
            "DateEquals" => Test::Date(Equals),
            "DateNotEquals" => Test::Date(NotEquals),
            "DateLessThan" => Test::Date(LessThan),
            "DateLessThanEquals" => Test::Date(LessThanEquals),
            "DateGreaterThan" => Test::Date(GreaterThan),
            "DateGreaterThanEquals" => Test::Date(GreaterThanEquals),
            "Bool" => Test::Bool,
            "IpAddress" => Test::IpAddress { negated: false },
            "NotIpAddress" => Test::IpAddress { negated: true },
            "ArnEquals" | "ArnLike" => Test::Arn { negated: false },
            "ArnNotEquals" | "ArnNotLike" => Test::Arn { negated: true },
            "Null" => Test::Null,
            _ => return None,
        })
    }

    fn negated(self) -> bool {
        match self {
            Test::StringEquals { negated, .. }
            | Test::StringLike { negated }
            | Test::IpAddress { negated }
            | Test::Arn { negated } => negated,
            Test::Numeric(c) | Test::Date(c) => c == Comparison::NotEquals,
            Test::Bool | Test::Null => false,
        }
    }
}

/// Parses a statement's `Condition` block.
pub(crate) fn parse_block(block: &Value) -> Result<Vec<Condition>, PolicyError> {
    let Value::Object(operators) = block else {
        return Err(PolicyError::new("Condition must be an object"));
    };
    let mut conditions = Vec::new();
    for (operator, keys) in operators {
        // Every condition key holds a single value here, so the set operators reduce to the plain
        // ones, except that ForAllValues over an absent key is true.
        let (for_all, name) = match operator.split_once(':') {
            Some(("ForAnyValue", rest)) => (false, rest),
            Some(("ForAllValues", rest)) => (true, rest),
            Some(_) => return Err(PolicyError::new(format!("unknown condition operator {operator}"))),
            None => (false, operator.as_str()),
        };
        let (name, if_exists) = match name.strip_suffix("IfExists") {
            Some(base) if base != "Null" => (base, true),
            _ => (name, false),
        };
        let test =
            Test::parse(name).ok_or_else(|| PolicyError::new(format!("unknown condition operator {operator}")))?;
        let Value::Object(keys) = keys else {
            return Err(PolicyError::new(format!("condition {operator} must map keys to values")));
        };
        for (key, values) in keys {
            let values = match values {
                Value::Array(items) => items.iter().map(scalar).collect::<Result<Vec<_>, _>>()?,
                single => vec![scalar(single)?],
            };
            if values.is_empty() {
                return Err(PolicyError::new(format!("condition {operator} on {key} has no values")));
            }
            let values = values.into_iter().map(|v| operand(test, v)).collect::<Result<_, _>>()?;
            conditions.push(Condition { test, if_exists: if_exists || for_all, key: key.to_ascii_lowercase(), values });
        }
    }
    Ok(conditions)
}

fn scalar(value: &Value) -> Result<String, PolicyError> {
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Number(n) => Ok(n.to_string()),
        _ => Err(PolicyError::new("condition values must be strings, numbers or booleans")),
    }
}

fn operand(test: Test, text: String) -> Result<Operand, PolicyError> {
    let bad = |what: &str| PolicyError::new(format!("condition value {text:?} is not {what}"));
    Ok(match test {
        Test::Numeric(_) => Operand::Number(text.trim().parse().map_err(|_| bad("a number"))?),
        Test::Date(_) => Operand::Time(parse_time(&text).ok_or_else(|| bad("a date"))?),
        Test::IpAddress { .. } => {
            let (address, prefix) = parse_network(&text).ok_or_else(|| bad("an IP address or CIDR block"))?;
            Operand::Network { address, prefix }
        }
        Test::Bool | Test::Null if !text.eq_ignore_ascii_case("true") && !text.eq_ignore_ascii_case("false") => {
            return Err(bad("true or false"))
        }
        _ => Operand::Text(text),
    })
}

impl Condition {
    pub(crate) fn holds(&self, facts: &RequestFacts) -> bool {
        let actual = facts.value(&self.key);
        if self.test == Test::Null {
            let wants_absent = matches!(&self.values[0], Operand::Text(t) if t.eq_ignore_ascii_case("true"));
            return actual.is_none() == wants_absent;
        }
        let Some(actual) = actual else {
            return self.if_exists || self.test.negated();
        };
        let any = |f: &dyn Fn(&Operand) -> bool| self.values.iter().any(f);
        match self.test {
            Test::StringEquals { ignore_case, negated } => {
                let equal = any(&|o| {
                    text(o).is_some_and(|t| if ignore_case { t.eq_ignore_ascii_case(&actual) } else { t == actual })
                });
                equal != negated
            }
            Test::StringLike { negated } | Test::Arn { negated } => {
                any(&|o| text(o).is_some_and(|t| pattern::matches(t, &actual, false))) != negated
            }
            Test::Bool => any(&|o| text(o).is_some_and(|t| t.eq_ignore_ascii_case(&actual))),
            Test::Numeric(comparison) => {
                let Ok(actual) = actual.trim().parse::<f64>() else { return comparison == Comparison::NotEquals };
                compare_all(comparison, &self.values, |o| match o {
                    Operand::Number(n) => Some(actual.partial_cmp(n)),
                    _ => None,
                })
            }
            Test::Date(comparison) => {
                let Some(actual) = parse_time(&actual) else { return comparison == Comparison::NotEquals };
                compare_all(comparison, &self.values, |o| match o {
                    Operand::Time(t) => Some(Some(actual.cmp(t))),
                    _ => None,
                })
            }
            Test::IpAddress { negated } => {
                let Ok(actual) = actual.parse::<IpAddr>() else { return negated };
                any(&|o| match o {
                    Operand::Network { address, prefix } => in_network(actual, *address, *prefix),
                    _ => false,
                }) != negated
            }
            Test::Null => unreachable!("handled above"),
        }
    }
}

fn text(operand: &Operand) -> Option<&str> {
    match operand {
        Operand::Text(t) => Some(t),
        _ => None,
    }
}

/// A comparison against a list of values: true if any value satisfies it (`NotEquals`: if none is
/// equal).
fn compare_all(
    comparison: Comparison,
    values: &[Operand],
    order: impl Fn(&Operand) -> Option<Option<std::cmp::Ordering>>,
) -> bool {
    use std::cmp::Ordering::*;
    let satisfied = |o: &Operand| match order(o).flatten() {
        Some(ord) => match comparison {
            Comparison::Equals | Comparison::NotEquals => ord == Equal,
            Comparison::LessThan => ord == Less,
            Comparison::LessThanEquals => ord != Greater,
            Comparison::GreaterThan => ord == Greater,
            Comparison::GreaterThanEquals => ord != Less,
        },
        None => false,
    };
    let any = values.iter().any(satisfied);
    if comparison == Comparison::NotEquals {
        !any
    } else {
        any
    }
}

/// `a.b.c.d`, `a.b.c.d/n`, or the IPv6 forms; a bare address is a /32 (/128).
fn parse_network(text: &str) -> Option<(IpAddr, u8)> {
    let (address, prefix) = match text.trim().split_once('/') {
        Some((address, prefix)) => (address.parse::<IpAddr>().ok()?, Some(prefix.parse::<u8>().ok()?)),
        None => (text.trim().parse::<IpAddr>().ok()?, None),
    };
    let width = if address.is_ipv4() { 32 } else { 128 };
    let prefix = prefix.unwrap_or(width);
    (prefix <= width).then_some((address, prefix))
}

fn in_network(address: IpAddr, network: IpAddr, prefix: u8) -> bool {
    let bits = |a: IpAddr| -> (u128, u32) {
        match a {
            IpAddr::V4(v4) => (u128::from(u32::from(v4)), 32),
            IpAddr::V6(v6) => (u128::from(v6), 128),
        }
    };
    // An IPv4 client reached over an IPv6 socket arrives mapped (::ffff:a.b.c.d).
    let address = match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(address),
        v4 => v4,
    };
    let ((a, width), (n, network_width)) = (bits(address), bits(network));
    if width != network_width {
        return false;
    }
    let shift = width - u32::from(prefix);
    shift >= width || (a >> shift) == (n >> shift)
}

/// An IAM date: ISO 8601 (`2026-01-31`, `2026-01-31T12:00:00Z`, fractions and `±hh:mm` offsets
/// allowed) or epoch seconds. Epoch milliseconds.
pub(crate) fn parse_time(text: &str) -> Option<Millis> {
    let text = text.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse::<i64>().ok()?.checked_mul(1000);
    }
    let number = |s: &str| -> Option<i64> { s.bytes().all(|b| b.is_ascii_digit()).then(|| s.parse().ok())? };
    let (date, time) = match text.split_once(['T', 't']) {
        Some((date, time)) => (date, Some(time)),
        None => (text, None),
    };
    let mut parts = date.splitn(3, '-');
    let (year, month, day) = (number(parts.next()?)?, number(parts.next()?)?, number(parts.next()?)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let mut millis = holdfast_api::calendar::days_from_civil(year, month, day) * 86_400_000;
    if let Some(time) = time {
        // The offset: Z, or +hh:mm / -hh:mm after the clock time.
        let (clock, offset_minutes) = if let Some(clock) = time.strip_suffix(['Z', 'z']) {
            (clock, 0)
        } else if let Some(at) = time.rfind(['+', '-']) {
            let (clock, offset) = time.split_at(at);
            let sign = if offset.starts_with('-') { -1 } else { 1 };
            let (h, m) = offset[1..].split_once(':').unwrap_or((&offset[1..], "0"));
            (clock, sign * (number(h)? * 60 + number(m)?))
        } else {
            (time, 0)
        };
        let (whole, fraction) = clock.split_once('.').unwrap_or((clock, ""));
        let mut fields = whole.splitn(3, ':');
        let (h, m) = (number(fields.next()?)?, number(fields.next()?)?);
        let s = fields.next().map(number).unwrap_or(Some(0))?;
        if h > 23 || m > 59 || s > 60 {
            return None;
        }
        let fraction_ms = if fraction.is_empty() { 0 } else { number(&format!("{fraction:0<3}")[..3])? };
        millis += ((h * 60 + m - offset_minutes) * 60 + s) * 1000 + fraction_ms;
    }
    Some(millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(parse_time("1970-01-01"), Some(0));
        assert_eq!(parse_time("1970-01-02T00:00:01Z"), Some(86_401_000));
        assert_eq!(parse_time("2026-12-06T22:00:00Z"), Some(1_796_594_400_000));
        assert_eq!(parse_time("2026-12-06T23:00:00+01:00"), parse_time("2026-12-06T22:00:00Z"));
        assert_eq!(parse_time("2026-12-06T22:00:00.250Z"), Some(1_796_594_400_250));
        assert_eq!(parse_time("1796594400"), Some(1_796_594_400_000));
        for bad in ["", "2026-13-01", "yesterday", "2026-12-06T25:00:00Z", "2026-12"] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
    }

    #[test]
    fn networks() {
        let (net, prefix) = parse_network("10.1.0.0/16").unwrap();
        assert!(in_network("10.1.200.3".parse().unwrap(), net, prefix));
        assert!(!in_network("10.2.0.1".parse().unwrap(), net, prefix));
        assert!(in_network("::ffff:10.1.0.9".parse().unwrap(), net, prefix), "IPv4-mapped");
        let (any, zero) = parse_network("0.0.0.0/0").unwrap();
        assert!(in_network("192.0.2.1".parse().unwrap(), any, zero));
        let (v6, p6) = parse_network("2001:db8::/32").unwrap();
        assert!(in_network("2001:db8::1".parse().unwrap(), v6, p6));
        assert!(!in_network("127.0.0.1".parse().unwrap(), v6, p6));
        assert_eq!(parse_network("127.0.0.1"), Some(("127.0.0.1".parse().unwrap(), 32)));
        assert!(parse_network("10.0.0.0/33").is_none());
        assert!(parse_network("10.0.0/8").is_none());
    }
}
