//! Message attributes: validation, the canonical encoding, MD5 digests and name filters.
//!
//! The canonical encoding is the byte sequence SQS feeds to MD5 (MD5 digests <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-message-metadata.html#sqs-attributes-md5-message-digest-calculation>, Developer Guide
//! "Calculating the MD5 message digest for message attributes"): attributes sorted by name, each
//! as `len(name) name len(type) type transport len(value) value` with big-endian u32 lengths and
//! transport 1 for strings and numbers, 2 for binary. Stores keep exactly these bytes, so a
//! digest over all attributes is a plain MD5 of what is stored and what is returned is, byte for
//! byte, what was sent.

use std::collections::BTreeMap;

use holdfast_api::types::{MessageAttributeMap, MessageAttributeValue};
use holdfast_api::{limits, sqs_error, Blob, SqsError};
use md5::{Digest, Md5};

use crate::validate::check_message_characters;

const TRANSPORT_STRING: u8 = 1;
const TRANSPORT_BINARY: u8 = 2;

/// The attribute's value as SQS carries it: text for `String*`/`Number*`, bytes for `Binary*`.
fn value_bytes(value: &MessageAttributeValue) -> (u8, &[u8]) {
    match (&value.string_value, &value.binary_value) {
        (Some(text), _) if !value.data_type.starts_with("Binary") => (TRANSPORT_STRING, text.as_bytes()),
        (_, Some(blob)) => (TRANSPORT_BINARY, blob.as_bytes()),
        (Some(text), None) => (TRANSPORT_STRING, text.as_bytes()),
        (None, None) => (TRANSPORT_STRING, &[]),
    }
}

fn put_len_prefixed(buffer: &mut Vec<u8>, bytes: &[u8]) {
    buffer.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    buffer.extend_from_slice(bytes);
}

/// Canonical encoding of `attributes` (a BTreeMap iterates in name order, as MD5 requires).
pub fn encode(attributes: &MessageAttributeMap) -> Vec<u8> {
    let mut buffer = Vec::new();
    for (name, value) in attributes {
        put_len_prefixed(&mut buffer, name.as_bytes());
        put_len_prefixed(&mut buffer, value.data_type.as_bytes());
        let (transport, bytes) = value_bytes(value);
        buffer.push(transport);
        put_len_prefixed(&mut buffer, bytes);
    }
    buffer
}

/// Inverse of `encode`. The input was produced by `encode`; corrupt input yields what could be
/// read before the corruption.
pub fn decode(mut bytes: &[u8]) -> MessageAttributeMap {
    fn take<'a>(bytes: &mut &'a [u8]) -> Option<&'a [u8]> {
        let len = u32::from_be_bytes(bytes.get(..4)?.try_into().ok()?) as usize;
        let value = bytes.get(4..4 + len)?;
        *bytes = &bytes[4 + len..];
        Some(value)
    }
    let mut attributes = BTreeMap::new();
    while !bytes.is_empty() {
        let Some(name) = take(&mut bytes) else { break };
        let Some(data_type) = take(&mut bytes) else { break };
        let Some((&transport, rest)) = bytes.split_first() else { break };
        bytes = rest;
        let Some(value) = take(&mut bytes) else { break };
        let mut attribute =
            MessageAttributeValue { data_type: String::from_utf8_lossy(data_type).into_owned(), ..Default::default() };
        if transport == TRANSPORT_BINARY {
            attribute.binary_value = Some(Blob(value.to_vec()));
        } else {
            attribute.string_value = Some(String::from_utf8_lossy(value).into_owned());
        }
        attributes.insert(String::from_utf8_lossy(name).into_owned(), attribute);
    }
    attributes
}

pub fn md5_hex(bytes: &[u8]) -> String {
    hex::encode(Md5::digest(bytes))
}

/// MD5OfMessageAttributes / MD5OfMessageSystemAttributes over exactly `attributes`.
pub fn md5_of_attributes(attributes: &MessageAttributeMap) -> String {
    md5_hex(&encode(attributes))
}

/// The bytes an attribute counts toward the message size limit: name, type and value.
pub fn size_of(attributes: &MessageAttributeMap) -> usize {
    attributes.iter().map(|(name, value)| name.len() + value.data_type.len() + value_bytes(value).1.len()).sum()
}

/// Validates user message attributes against the Developer Guide's rules.
pub fn validate(attributes: &MessageAttributeMap) -> Result<(), SqsError> {
    if attributes.len() > limits::MAX_MESSAGE_ATTRIBUTES {
        return Err(sqs_error!(
            InvalidParameterValue,
            "Number of message attributes [{}] exceeds the allowed maximum [{}].",
            attributes.len(),
            limits::MAX_MESSAGE_ATTRIBUTES
        ));
    }
    for (name, value) in attributes {
        validate_name(name)?;
        validate_value(name, value, "message")?;
    }
    Ok(())
}

fn validate_name(name: &str) -> Result<(), SqsError> {
    let lower = name.to_ascii_lowercase();
    let reason = if name.is_empty() {
        Some("must not be empty")
    } else if name.len() > limits::MAX_MESSAGE_ATTRIBUTE_NAME_LEN {
        Some("must be at most 256 characters long")
    // Letters and digits of any script count as alphanumeric: AWS accepts `attr.øßä`.
    } else if !name.chars().all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.')) {
        Some("can only contain alphanumeric characters, hyphens, underscores and periods")
    } else if lower.starts_with("aws.") || lower.starts_with("amazon.") {
        Some("must not start with the reserved prefixes AWS. or Amazon.")
    } else if name.starts_with('.') || name.ends_with('.') || name.contains("..") {
        Some("must not start or end with a period or contain two successive periods")
    } else {
        None
    };
    match reason {
        Some(reason) => {
            Err(sqs_error!(InvalidParameterValue, "Message attribute name '{name}' is invalid: it {reason}."))
        }
        None => Ok(()),
    }
}

/// An attribute without a value, in AWS's words ("Message (user) attribute 'x' must contain a
/// non-empty value of type 'String'.").
fn empty_value(kind: &str, name: &str, base: &str) -> SqsError {
    let subject = if kind == "message" { "Message (user)" } else { "Message (system)" };
    sqs_error!(InvalidParameterValue, "{subject} attribute '{name}' must contain a non-empty value of type '{base}'.")
}

fn validate_value(name: &str, value: &MessageAttributeValue, kind: &str) -> Result<(), SqsError> {
    let data_type = value.data_type.as_str();
    let base = ["String", "Number", "Binary"].into_iter().find(|base| {
        data_type == *base || data_type.strip_prefix(base).is_some_and(|rest| rest.starts_with('.') && rest.len() > 1)
    });
    let Some(base) = base.filter(|_| data_type.len() <= limits::MAX_MESSAGE_ATTRIBUTE_TYPE_LEN) else {
        return Err(sqs_error!(
            InvalidParameterValue,
            "The type of {kind} attribute '{name}' is invalid. You must use only the following supported type prefixes: Binary, Number, String."
        ));
    };
    let has_lists = value.string_list_values.as_ref().is_some_and(|v| !v.is_empty())
        || value.binary_list_values.as_ref().is_some_and(|v| !v.is_empty());
    if has_lists {
        return Err(sqs_error!(
            InvalidParameterValue,
            "The {kind} attribute '{name}' uses StringListValues or BinaryListValues, which SQS does not support."
        ));
    }
    match base {
        "Binary" => match &value.binary_value {
            Some(blob) if !blob.0.is_empty() => Ok(()),
            _ => Err(empty_value(kind, name, "Binary")),
        },
        _ => {
            let Some(text) = value.string_value.as_deref().filter(|t| !t.is_empty()) else {
                return Err(empty_value(kind, name, base));
            };
            if check_message_characters(text).is_err() {
                return Err(sqs_error!(
                    InvalidParameterValue,
                    "The {kind} attribute '{name}' contains invalid characters."
                ));
            }
            if base == "Number" && !is_sqs_number(text) {
                return Err(sqs_error!(
                    InvalidParameterValue,
                    "Can't convert the value of {kind} attribute '{name}' to a number: '{text}'."
                ));
            }
            Ok(())
        }
    }
}

/// SQS numbers: an optional sign, digits with an optional fraction, an optional exponent, and at
/// most 38 significant digits.
fn is_sqs_number(text: &str) -> bool {
    let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(i) => (&unsigned[..i], Some(&unsigned[i + 1..])),
        None => (unsigned, None),
    };
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits_ok = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        !e.is_empty() && digits_ok(e)
    });
    let significant = format!("{int_part}{frac_part}");
    let significant = significant.trim_start_matches('0').trim_end_matches('0');
    !(int_part.is_empty() && frac_part.is_empty())
        && digits_ok(int_part)
        && digits_ok(frac_part)
        && exponent_ok
        && significant.len() <= 38
}

/// The one message system attribute a sender may set: `AWSTraceHeader`, a `String`.
pub fn validate_system(attributes: &MessageAttributeMap) -> Result<(), SqsError> {
    for (name, value) in attributes {
        if name != "AWSTraceHeader" {
            return Err(sqs_error!(
                InvalidParameterValue,
                "Message system attribute name '{name}' is invalid. The only supported name is AWSTraceHeader."
            ));
        }
        if value.data_type != "String" {
            return Err(sqs_error!(
                InvalidParameterValue,
                "The message system attribute AWSTraceHeader must be of type String."
            ));
        }
        validate_value(name, value, "message system")?;
    }
    Ok(())
}

/// Which user attributes a receive asked for (`MessageAttributeNames`).
#[derive(Clone, Debug, Default)]
pub struct AttributeFilter {
    all: bool,
    names: Vec<String>,
    prefixes: Vec<String>,
}

impl AttributeFilter {
    /// `All`, `*` and `.*` select everything; `prefix.*` selects names starting with `prefix`
    /// (the text before `.*`, so `Hel.*` selects `Hello` and `Help.Me`), as AWS answers.
    pub fn new(requested: &[String]) -> Self {
        let mut filter = AttributeFilter::default();
        for name in requested {
            if name == "All" || name == ".*" || name == "*" {
                filter.all = true;
            } else if let Some(prefix) = name.strip_suffix(".*") {
                filter.prefixes.push(prefix.to_owned());
            } else {
                filter.names.push(name.clone());
            }
        }
        filter
    }

    pub fn is_empty(&self) -> bool {
        !self.all && self.names.is_empty() && self.prefixes.is_empty()
    }

    pub fn matches(&self, name: &str) -> bool {
        self.all || self.names.iter().any(|n| n == name) || self.prefixes.iter().any(|p| name.starts_with(p.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn string(data_type: &str, value: &str) -> MessageAttributeValue {
        MessageAttributeValue { data_type: data_type.into(), string_value: Some(value.into()), ..Default::default() }
    }

    fn binary(data_type: &str, value: &[u8]) -> MessageAttributeValue {
        MessageAttributeValue {
            data_type: data_type.into(),
            binary_value: Some(Blob(value.to_vec())),
            ..Default::default()
        }
    }

    #[test]
    fn md5_matches_the_published_vectors() {
        let one = BTreeMap::from([("attribName1".to_string(), string("String", "attribValue 1"))]);
        assert_eq!(md5_of_attributes(&one), "19e27d4e946b072f3f58da80d94fd778");
        let number = BTreeMap::from([(
            "customNumberTypeAttrib".to_string(),
            string("Number.float", "4563442423554324324264524243.32543234"),
        )]);
        assert_eq!(md5_of_attributes(&number), "9fe1b90bbd9965bdf77bac517c7d2495");
        let bin = BTreeMap::from([("binaryAttribute".to_string(), binary("Binary", b"Hello binary world!"))]);
        assert_eq!(md5_of_attributes(&bin), "31a92b15d92f8db860eda32aceb656c3");
        let mut all = one.clone();
        all.extend(number);
        all.extend(bin);
        assert_eq!(md5_of_attributes(&all), "c932db14a896c663f83c260297d594ff");
    }

    #[test]
    fn md5_matches_the_worked_example() {
        let attributes = BTreeMap::from([
            ("b".to_string(), string("Number", "42")),
            ("a".to_string(), string("String", "hi")),
            ("c".to_string(), binary("Binary.png", &[0x00, 0xff])),
        ]);
        assert_eq!(encode(&attributes).len(), 70); // 22 + 22 + 26 bytes
        assert_eq!(md5_of_attributes(&attributes), "b536df4a44b21b4124ef7ed21374564e");
        let trace = BTreeMap::from([(
            "AWSTraceHeader".to_string(),
            string("String", "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"),
        )]);
        assert_eq!(md5_of_attributes(&trace), "5ae4d5d7636402d80f4eb6d213245a88");
        assert_eq!(md5_hex(b"hello"), "5d41402abc4b2a76b9719d911017c592");
        assert_eq!(md5_hex("héllo ✓".as_bytes()), "21b1ae5bc147bb564254200a4731e337");
    }

    #[test]
    fn encoding_round_trips() {
        let attributes = BTreeMap::from([
            ("a".to_string(), string("String", "hé\r\n")),
            ("n".to_string(), string("Number.int", "-1.5e3")),
            ("c".to_string(), binary("Binary.png", &[0, 1, 255])),
        ]);
        assert_eq!(decode(&encode(&attributes)), attributes);
        assert!(decode(&[]).is_empty());
    }

    #[test]
    fn validation_rules() {
        let ok = BTreeMap::from([("a.b-c_1".to_string(), string("String.custom", "x"))]);
        assert!(validate(&ok).is_ok());
        for bad_name in ["AWS.x", "amazon.x", ".a", "a.", "a..b", "a b", ""] {
            let attrs = BTreeMap::from([(bad_name.to_string(), string("String", "x"))]);
            assert!(validate(&attrs).is_err(), "{bad_name}");
        }
        for (data_type, value) in
            [("Strin", "x"), ("String.", "x"), ("String", ""), ("Number", "abc"), ("Number", "1e")]
        {
            let attrs = BTreeMap::from([("a".to_string(), string(data_type, value))]);
            assert!(validate(&attrs).is_err(), "{data_type} {value}");
        }
        let too_many: MessageAttributeMap = (0..11).map(|i| (format!("a{i}"), string("String", "x"))).collect();
        assert!(validate(&too_many).is_err());
        assert!(is_sqs_number("0.5") && is_sqs_number("-12") && is_sqs_number("1E+10") && !is_sqs_number("."));
    }

    #[test]
    fn filters() {
        let filter = AttributeFilter::new(&["foo.*".to_string(), "bar".to_string()]);
        assert!(filter.matches("foo.x") && filter.matches("bar") && filter.matches("foox") && !filter.matches("fo"));
        assert!(!filter.matches("baz") && !filter.matches("barn"), "exact names match exactly");
        let hel = AttributeFilter::new(&["Hel.*".to_string()]);
        assert!(hel.matches("Hello") && hel.matches("Help.Me") && !hel.matches("General"));
        assert!(AttributeFilter::new(&[".*".to_string()]).matches("anything"));
        assert!(AttributeFilter::new(&["*".to_string()]).matches("anything"));
        // Names no attribute can have select nothing, without an error.
        assert!(!AttributeFilter::new(&["AWS.".to_string(), "..foo".to_string()]).matches("foo"));
        assert!(AttributeFilter::new(&[]).is_empty());
    }
}
