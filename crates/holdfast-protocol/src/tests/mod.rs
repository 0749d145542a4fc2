//! Crate tests, one module per concern; fixtures are the captured requests and recorded
//! responses of the AWS JSON protocol, the Query protocol and the SigV4 vectors of Signature Version 4.

mod encode;
mod json_decode;
mod query_decode;
mod routing;
mod sigv4;

use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};

use crate::{decode, Decoded, HttpRequest};

pub(crate) const Q1: &str = "http://localhost:9324/000000000000/q1";

/// Decodes a request built from parts.
pub(crate) fn decode_parts(method: &str, uri: &str, headers: &[(&str, &str)], body: &[u8]) -> Decoded {
    let method = Method::from_bytes(method.as_bytes()).unwrap();
    let uri: Uri = uri.parse().unwrap();
    let headers = header_map(headers);
    decode(&HttpRequest { method: &method, uri: &uri, headers: &headers, body })
}

pub(crate) fn header_map(headers: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        map.append(HeaderName::from_bytes(name.as_bytes()).unwrap(), HeaderValue::from_str(value).unwrap());
    }
    map
}

/// A JSON-protocol POST to `/` of `body` for `op`, as botocore 1.44 sends it.
pub(crate) fn json_request(op: &str, body: &str) -> Decoded {
    let target = format!("AmazonSQS.{op}");
    decode_parts(
        "POST",
        "/",
        &[("content-type", "application/x-amz-json-1.0"), ("x-amz-target", &target), ("x-amzn-query-mode", "true")],
        body.as_bytes(),
    )
}

/// A Query-protocol form POST to `path`.
pub(crate) fn form_request(path: &str, body: &str) -> Decoded {
    decode_parts("POST", path, &[("content-type", "application/x-www-form-urlencoded; charset=utf-8")], body.as_bytes())
}

/// URL-encodes a Query protocol body (written there URL-decoded) the way botocore's `urlencode`
/// does: each `&`-separated pair split at its first `=`; `…` stands for the queue URL prefix.
pub(crate) fn encode_form(decoded: &str) -> String {
    let mut serializer = form_urlencoded::Serializer::new(String::new());
    for pair in decoded.split('&') {
        let (key, value) = pair.split_once('=').unwrap();
        serializer.append_pair(key, &value.replace("…/q1", Q1));
    }
    serializer.finish()
}
