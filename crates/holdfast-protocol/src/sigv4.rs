//! AWS Signature Version 4 for service `sqs` (Signature Version 4 <https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-create-signed-request.html>): locating the signature (the
//! `Authorization` header or presigned `X-Amz-*` query parameters) and recomputing it.
//!
//! Reference: botocore `auth.py` `SigV4Auth`/`SigV4QueryAuth`. The canonical URI is the
//! received (already percent-encoded) path with dot and empty segments removed, encoded once
//! more ("double encoding", as for every non-S3 service); the canonical query string re-encodes
//! every parameter but `X-Amz-Signature` with the RFC 3986 unreserved set; form bodies are not
//! part of it. The payload hash is `x-amz-content-sha256` when sent, else SHA-256 of the body
//! (the empty-string hash for a presigned GET).
//!
//! This module only parses and computes. Whether a request must be signed, which secret a key
//! id maps to, and clock-skew / expiry policy belong to the caller; [`verify`] answers only
//! "does this signature match this secret".

use hmac::{Hmac, Mac};
use http::{HeaderMap, Uri};
use sha2::{Digest, Sha256};

use crate::HttpRequest;

pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// SHA-256 of the empty string: the payload hash of a bodiless request.
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// The signature a request carries and the scope it claims.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credential {
    pub access_key_id: String,
    /// `yyyymmdd` from the credential scope.
    pub date: String,
    pub region: String,
    /// `sqs` for well-behaved clients; kept as sent so the caller can reject others.
    pub service: String,
    /// Lower-case header names, in the order sent (botocore sends them sorted).
    pub signed_headers: Vec<String>,
    /// Lower-case hex.
    pub signature: String,
    /// `X-Amz-Date` (`yyyymmddTHHMMSSZ`), from the header or the presigned query.
    pub amz_date: Option<String>,
    /// Whether the signature came from the query string rather than `Authorization`.
    pub presigned: bool,
    /// Presigned `X-Amz-Expires`, in seconds after `amz_date`.
    pub expires: Option<u64>,
}

impl Credential {
    /// `<date>/<region>/<service>/aws4_request`.
    pub fn scope(&self) -> String {
        format!("{}/{}/{}/aws4_request", self.date, self.region, self.service)
    }
}

/// The credential a request carries: the `Authorization` header if present, else presigned
/// query parameters. `None` when there is none or it is malformed.
pub fn parse(req: &HttpRequest<'_>) -> Option<Credential> {
    if let Some(header) = req.headers.get(http::header::AUTHORIZATION) {
        let amz_date = req.headers.get("x-amz-date").and_then(|v| v.to_str().ok());
        return parse_authorization(header.to_str().ok()?, amz_date);
    }
    parse_presigned(req.uri.query()?)
}

/// Parses `AWS4-HMAC-SHA256 Credential=AKID/date/region/sqs/aws4_request, SignedHeaders=a;b,
/// Signature=hex`; `amz_date` is the `X-Amz-Date` header.
pub fn parse_authorization(header: &str, amz_date: Option<&str>) -> Option<Credential> {
    let rest = header.trim_start().strip_prefix(ALGORITHM)?;
    if !rest.starts_with(char::is_whitespace) {
        return None;
    }
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let (key, value) = part.trim().split_once('=')?;
        match key.trim() {
            "Credential" => credential = Some(value.trim()),
            "SignedHeaders" => signed_headers = Some(value.trim()),
            "Signature" => signature = Some(value.trim()),
            _ => {}
        }
    }
    build(credential?, signed_headers?, signature?, amz_date.map(str::to_owned), false, None)
}

/// Parses the presigned form: `X-Amz-Algorithm`, `X-Amz-Credential`, `X-Amz-Date`,
/// `X-Amz-Expires`, `X-Amz-SignedHeaders`, `X-Amz-Signature` in the URL query string.
pub fn parse_presigned(query: &str) -> Option<Credential> {
    let (mut algorithm, mut credential, mut date, mut expires, mut signed_headers, mut signature) =
        (None, None, None, None, None, None);
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        let slot = match key.as_ref() {
            "X-Amz-Algorithm" => &mut algorithm,
            "X-Amz-Credential" => &mut credential,
            "X-Amz-Date" => &mut date,
            "X-Amz-Expires" => &mut expires,
            "X-Amz-SignedHeaders" => &mut signed_headers,
            "X-Amz-Signature" => &mut signature,
            _ => continue,
        };
        *slot = Some(value.into_owned());
    }
    if algorithm? != ALGORITHM {
        return None;
    }
    let expires = match expires {
        Some(text) => Some(text.trim().parse().ok()?),
        None => None,
    };
    build(&credential?, &signed_headers?, &signature?, date, true, expires)
}

fn build(
    credential: &str,
    signed_headers: &str,
    signature: &str,
    amz_date: Option<String>,
    presigned: bool,
    expires: Option<u64>,
) -> Option<Credential> {
    let mut scope = credential.split('/');
    let (Some(access_key_id), Some(date), Some(region), Some(service), Some("aws4_request"), None) =
        (scope.next(), scope.next(), scope.next(), scope.next(), scope.next(), scope.next())
    else {
        return None;
    };
    if [access_key_id, date, region, service, signed_headers, signature].iter().any(|s| s.is_empty()) {
        return None;
    }
    Some(Credential {
        access_key_id: access_key_id.to_owned(),
        date: date.to_owned(),
        region: region.to_owned(),
        service: service.to_owned(),
        signed_headers: signed_headers.split(';').map(|h| h.trim().to_ascii_lowercase()).collect(),
        signature: signature.to_ascii_lowercase(),
        amz_date,
        presigned,
        expires,
    })
}

/// The canonical request of Signature Version 4 for `req`, signing `signed_headers`.
pub fn canonical_request(req: &HttpRequest<'_>, signed_headers: &[String]) -> String {
    let mut sorted: Vec<&str> = signed_headers.iter().map(String::as_str).collect();
    sorted.sort_unstable();
    sorted.dedup();
    format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        req.method.as_str(),
        canonical_uri(req.uri.path()),
        canonical_query_string(req.uri.query()),
        canonical_headers(req.headers, req.uri, &sorted),
        sorted.join(";"),
        payload_hash(req.headers, req.body),
    )
}

/// The received path with dot and empty segments removed, percent-encoded once more
/// (everything but `A-Z a-z 0-9 - _ . ~ /`); `/` when empty (botocore `_normalize_url_path`).
pub fn canonical_uri(path: &str) -> String {
    if path.is_empty() {
        return "/".to_owned();
    }
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            other => segments.push(other),
        }
    }
    let mut normalized = String::with_capacity(path.len() + 1);
    if path.starts_with('/') {
        normalized.push('/');
    }
    normalized.push_str(&segments.join("/"));
    if path.ends_with('/') && !segments.is_empty() {
        normalized.push('/');
    }
    let mut out = String::with_capacity(normalized.len());
    encode_into(&mut out, normalized.as_bytes(), true);
    out
}

/// All query parameters but `X-Amz-Signature`, each name and value percent-decoded then
/// re-encoded with the RFC 3986 unreserved set, sorted by name then value, joined with `&`.
pub fn canonical_query_string(query: Option<&str>) -> String {
    let Some(query) = query else { return String::new() };
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .filter_map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let name = reencode(name);
            (name != "X-Amz-Signature").then(|| (name, reencode(value)))
        })
        .collect();
    pairs.sort_unstable();
    let mut out = String::with_capacity(query.len());
    for (i, (name, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(name);
        out.push('=');
        out.push_str(value);
    }
    out
}

/// `name:value\n` for each of `sorted_names`: all values of the header, trimmed, inner
/// whitespace runs collapsed, joined with `,`. `host` falls back to the URI authority (HTTP/2).
pub fn canonical_headers(headers: &HeaderMap, uri: &Uri, sorted_names: &[&str]) -> String {
    let mut out = String::new();
    for name in sorted_names {
        out.push_str(name);
        out.push(':');
        let mut values = headers.get_all(*name).iter().peekable();
        if values.peek().is_none() && *name == "host" {
            if let Some(authority) = uri.authority() {
                out.push_str(authority.as_str());
            }
        }
        for (i, value) in values.enumerate() {
            if i > 0 {
                out.push(',');
            }
            let text = String::from_utf8_lossy(value.as_bytes());
            for (j, word) in text.split_ascii_whitespace().enumerate() {
                if j > 0 {
                    out.push(' ');
                }
                out.push_str(word);
            }
        }
        out.push('\n');
    }
    out
}

/// `x-amz-content-sha256` if sent, else the lower-hex SHA-256 of the body.
pub fn payload_hash(headers: &HeaderMap, body: &[u8]) -> String {
    if let Some(hash) = headers.get("x-amz-content-sha256").and_then(|v| v.to_str().ok()) {
        return hash.trim().to_owned();
    }
    if body.is_empty() {
        return EMPTY_SHA256.to_owned();
    }
    hex::encode(Sha256::digest(body))
}

/// `AWS4-HMAC-SHA256\n<amz_date>\n<scope>\n<hex sha256 of canonical request>`.
pub fn string_to_sign(amz_date: &str, scope: &str, canonical_request: &str) -> String {
    format!("{ALGORITHM}\n{amz_date}\n{scope}\n{}", hex::encode(Sha256::digest(canonical_request.as_bytes())))
}

/// `kSigning` derived from the secret through date, region and service.
pub fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> [u8; 32] {
    let k_date = hmac_sha256(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k_region = hmac_sha256(&k_date, region.as_bytes());
    let k_service = hmac_sha256(&k_region, service.as_bytes());
    hmac_sha256(&k_service, b"aws4_request")
}

/// Lower-hex HMAC-SHA256 of the string to sign.
pub fn signature(signing_key: &[u8], string_to_sign: &str) -> String {
    hex::encode(hmac_sha256(signing_key, string_to_sign.as_bytes()))
}

/// Whether `cred`'s signature is the one `secret` gives for `req`. Compared in constant time.
/// Checks nothing else: date skew, expiry and the service name are the caller's policy.
pub fn verify(req: &HttpRequest<'_>, cred: &Credential, secret: &str) -> bool {
    let Some(amz_date) = cred.amz_date.as_deref() else { return false };
    let canonical = canonical_request(req, &cred.signed_headers);
    let to_sign = string_to_sign(amz_date, &cred.scope(), &canonical);
    let key = signing_key(secret, &cred.date, &cred.region, &cred.service);
    constant_time_eq(signature(&key, &to_sign).as_bytes(), cred.signature.as_bytes())
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Percent-decodes `%XX` (not `+`: a literal `+` in a signed query is a plus) and re-encodes.
fn reencode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(hi), Some(lo)) = (hex_value(bytes[i + 1]), hex_value(bytes[i + 2])) {
                decoded.push(hi << 4 | lo);
                i += 3;
                continue;
            }
        }
        decoded.push(bytes[i]);
        i += 1;
    }
    let mut out = String::with_capacity(decoded.len());
    encode_into(&mut out, &decoded, false);
    out
}

pub(crate) fn hex_value(byte: u8) -> Option<u8> {
    (byte as char).to_digit(16).map(|d| d as u8)
}

/// `X-Amz-Date` (`yyyymmddTHHMMSSZ`, UTC) for a moment.
pub fn format_amz_date(at: std::time::SystemTime) -> String {
    let secs = at.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (year, month, day) = holdfast_api::calendar::civil_from_days(days);
    format!("{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Epoch seconds of an `X-Amz-Date`; `None` unless it is exactly `yyyymmddTHHMMSSZ` and a real
/// moment.
pub fn parse_amz_date(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' || !b[..8].iter().chain(&b[9..15]).all(u8::is_ascii_digit) {
        return None;
    }
    let number = |range: std::ops::Range<usize>| -> Option<i64> { text.get(range)?.parse().ok() };
    let (year, month, day) = (number(0..4)?, number(4..6)?, number(6..8)?);
    let (hour, minute, second) = (number(9..11)?, number(11..13)?, number(13..15)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let days = holdfast_api::calendar::days_from_civil(year, month, day);
    Some(days * 86_400 + hour * 3600 + minute * 60 + second)
}

/// RFC 3986 percent-encoding with upper-case hex; `/` is kept only when `keep_slash`.
fn encode_into(out: &mut String, bytes: &[u8], keep_slash: bool) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &byte in bytes {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') || (keep_slash && byte == b'/') {
            out.push(byte as char);
        } else {
            out.push('%');
            out.push(HEX[usize::from(byte >> 4)] as char);
            out.push(HEX[usize::from(byte & 0xF)] as char);
        }
    }
}
