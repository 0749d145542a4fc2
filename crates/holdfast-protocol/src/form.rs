//! `application/x-www-form-urlencoded` parameters (Query-protocol bodies and URL query strings),
//! decoded strictly and within bounds before anything is built from them.
//!
//! - Percent-decoded bytes must be UTF-8: a malformed sequence is refused with
//!   `MalformedQueryString` instead of being replaced with U+FFFD, which would change what the
//!   client sent (a message body, say) without telling it.
//! - A request carries at most `MAX_PARAMS` parameters, and a parameter name at most
//!   `MAX_NAME_SEGMENTS` dot-separated segments. The deepest name SQS defines has seven
//!   (`SendMessageBatchRequestEntry.1.MessageAttribute.1.Value.StringListValue.1`); a name of
//!   thousands of segments is only ever an attack on the tree built from them.
//!
//! Decoding is one pass over the input: linear in its length.

use std::borrow::Cow;

use holdfast_api::{sqs_error, SqsError};

use crate::sigv4::hex_value as hex;

/// More than any SQS request needs: a SendMessageBatch of 10 entries with 10 attributes each
/// carries about 500.
pub const MAX_PARAMS: usize = 5_000;
/// More than the deepest SQS parameter name, with room for the non-flattened `.member.N` and
/// `.entry.N` spellings.
pub const MAX_NAME_SEGMENTS: usize = 16;

pub type Params<'a> = Vec<(Cow<'a, str>, Cow<'a, str>)>;

/// Appends the parameters of `input` to `params`, enforcing the bounds over the whole list.
pub fn parse_into<'a>(input: &'a [u8], params: &mut Params<'a>) -> Result<(), SqsError> {
    for pair in input.split(|&b| b == b'&').filter(|pair| !pair.is_empty()) {
        if params.len() >= MAX_PARAMS {
            return Err(sqs_error!(MalformedQueryString, "The request has more than {MAX_PARAMS} parameters."));
        }
        let (name, value) = match pair.iter().position(|&b| b == b'=') {
            Some(at) => (&pair[..at], &pair[at + 1..]),
            None => (pair, &pair[pair.len()..]),
        };
        let name = decode(name)?;
        if name.split('.').nth(MAX_NAME_SEGMENTS).is_some() {
            let shown: String = name.chars().take(64).collect();
            return Err(sqs_error!(
                MalformedQueryString,
                "The parameter name {shown}... has more than {MAX_NAME_SEGMENTS} segments."
            ));
        }
        params.push((name, decode(value)?));
    }
    Ok(())
}

/// Percent-decodes one name or value (`+` is a space), borrowing when nothing is encoded.
fn decode(raw: &[u8]) -> Result<Cow<'_, str>, SqsError> {
    let malformed = || sqs_error!(MalformedQueryString, "The request's parameters are not valid UTF-8.");
    if !raw.iter().any(|&b| b == b'%' || b == b'+') {
        return std::str::from_utf8(raw).map(Cow::Borrowed).map_err(|_| malformed());
    }
    let mut bytes = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'+' => bytes.push(b' '),
            b'%' if i + 2 < raw.len() && hex(raw[i + 1]).is_some() && hex(raw[i + 2]).is_some() => {
                bytes.push(hex(raw[i + 1]).unwrap_or(0) << 4 | hex(raw[i + 2]).unwrap_or(0));
                i += 2;
            }
            // A `%` not followed by two hex digits stands for itself, as browsers and
            // `form_urlencoded` read it.
            other => bytes.push(other),
        }
        i += 1;
    }
    String::from_utf8(bytes).map(Cow::Owned).map_err(|_| malformed())
}

#[cfg(test)]
mod tests {
    use super::*;
    use holdfast_api::ErrorCode;

    fn parse(input: &str) -> Result<Vec<(String, String)>, SqsError> {
        let mut params = Params::new();
        parse_into(input.as_bytes(), &mut params)?;
        Ok(params.into_iter().map(|(k, v)| (k.into_owned(), v.into_owned())).collect())
    }

    #[test]
    fn decodes_like_form_urlencoded() {
        let input = "Action=SendMessage&MessageBody=a+b%2Bc%0D%0A%E2%82%AC&Empty=&Bare&%=50%&&x=%zz";
        let ours = parse(input).unwrap();
        let reference: Vec<(String, String)> =
            form_urlencoded::parse(input.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
        assert_eq!(ours, reference);
        assert_eq!(ours[1].1, "a b+c\r\n€");
    }

    #[test]
    fn refuses_invalid_utf8() {
        for input in ["MessageBody=%FF", "MessageBody=%C3%28", "Na%80me=x"] {
            assert_eq!(parse(input).unwrap_err().code, ErrorCode::MalformedQueryString, "{input}");
        }
        let mut params = Params::new();
        let raw: &[u8] = b"MessageBody=\xff";
        assert_eq!(parse_into(raw, &mut params).unwrap_err().code, ErrorCode::MalformedQueryString);
    }

    #[test]
    fn bounds_names_and_counts() {
        let deep = format!("{}=x", vec!["a"; MAX_NAME_SEGMENTS + 1].join("."));
        assert_eq!(parse(&deep).unwrap_err().code, ErrorCode::MalformedQueryString);
        let deepest_allowed = format!("{}=x", vec!["a"; MAX_NAME_SEGMENTS].join("."));
        assert!(parse(&deepest_allowed).is_ok());
        let dots = format!("{}=x", ".".repeat(50_000));
        assert_eq!(parse(&dots).unwrap_err().code, ErrorCode::MalformedQueryString);
        let many: Vec<String> = (0..=MAX_PARAMS).map(|i| format!("p{i}=v")).collect();
        assert_eq!(parse(&many.join("&")).unwrap_err().code, ErrorCode::MalformedQueryString);
        assert_eq!(parse(&many[..MAX_PARAMS].join("&")).unwrap().len(), MAX_PARAMS);
    }
}
