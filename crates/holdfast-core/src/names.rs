//! Queue names, URLs and ARNs, and region names.
//!
//! A queue URL is `<base>/<account-id>/<queue-name>` for a queue in the server's region and
//! `<base>/<region>/<account-id>/<queue-name>` elsewhere (or `sqs.<region>.<host>` with the host
//! style), where the base is whatever address the client reached us by (or a configured public
//! URL), so URLs we hand out lead back here. When reading a URL only its last segments matter
//! (and the host, for a region): clients may address any host (docs/compatibility.md, "Queue URLs
//! and regions").

use holdfast_api::{limits, sqs_error, SqsError};

use crate::store::QueueRecord;

/// Checks a queue name: 1–80 characters of `[A-Za-z0-9_-]`, plus the `.fifo` suffix for FIFO
/// queues (the suffix counts toward the 80).
pub fn validate_queue_name(name: &str, fifo: bool) -> Result<(), SqsError> {
    let stem = if fifo { name.strip_suffix(limits::FIFO_SUFFIX).unwrap_or(name) } else { name };
    let charset_ok = !stem.is_empty() && stem.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if name.len() > limits::MAX_QUEUE_NAME_LEN || !charset_ok || (fifo && !name.ends_with(limits::FIFO_SUFFIX)) {
        let rule = if fifo {
            "Can only include alphanumeric characters, hyphens, or underscores, must end with .fifo. 1 to 80 in length"
        } else {
            "Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length"
        };
        return Err(sqs_error!(
            InvalidParameterValue,
            "Value {name} for parameter QueueName is invalid. Reason: {rule}."
        ));
    }
    Ok(())
}

/// A queue as a request names it. What the address leaves out comes from the request:
/// `Sqs::resolve`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueAddress<'a> {
    pub region: Option<&'a str>,
    pub account: Option<&'a str>,
    pub name: &'a str,
}

/// Reads a `QueueUrl`: a URL in any endpoint form, its path alone, or a bare queue name (AWS
/// accepts all three). The name and account are the last two path segments, so any host and
/// any path prefix will do; the region is the segment before them when it is one
/// (`/REGION/ACCOUNT/NAME`, holdfast's form for queues outside the server's region), else the
/// host's (`sqs.REGION.amazonaws.com`, `sqs.REGION.localhost.localstack.cloud`,
/// `REGION.queue.amazonaws.com`; `queue.amazonaws.com` is us-east-1), else none.
pub fn parse_queue_url(queue_url: &str) -> Result<QueueAddress<'_>, SqsError> {
    let invalid = || sqs_error!(InvalidAddress, "The address {queue_url} is not valid for this endpoint.");
    let (host, path) = match queue_url.find("://") {
        Some(scheme_end) => {
            let rest = &queue_url[scheme_end + 3..];
            match rest.find('/') {
                Some(i) => (Some(&rest[..i]), &rest[i..]),
                None => (Some(rest), ""),
            }
        }
        None => (None, queue_url),
    };
    let path = path.split(['?', '#']).next().unwrap_or("");
    if host.is_none() && !path.contains('/') {
        return match path {
            "" => Err(invalid()),
            name => Ok(QueueAddress { region: None, account: None, name }),
        };
    }
    let mut segments = path.trim_end_matches('/').rsplit('/');
    let (Some(name), Some(account)) = (segments.next(), segments.next()) else { return Err(invalid()) };
    if name.is_empty() || account.is_empty() {
        return Err(invalid());
    }
    let region = segments.next().filter(|s| is_region(s)).or_else(|| host.and_then(region_of_host));
    Ok(QueueAddress { region, account: Some(account), name })
}

/// The region an SQS endpoint's host names, if it names one.
fn region_of_host(host: &str) -> Option<&str> {
    let host = host.split(':').next().unwrap_or(host);
    if host == "queue.amazonaws.com" {
        return Some("us-east-1");
    }
    if let Some(rest) = host.strip_prefix("sqs.") {
        return rest.split('.').next().filter(|label| is_region(label));
    }
    host.strip_suffix(".queue.amazonaws.com").filter(|label| is_region(label))
}

/// Whether `text` has the shape of an AWS region name: `us-east-1`, `eu-central-2`,
/// `us-gov-west-1`: a two-letter prefix, words, and a number, joined by hyphens.
pub fn is_region(text: &str) -> bool {
    let parts: Vec<&str> = text.split('-').collect();
    parts.len() >= 3
        && text.len() <= MAX_REGION_LEN
        && parts[0].len() == 2
        && parts[0].bytes().all(|b| b.is_ascii_lowercase())
        && parts[1..parts.len() - 1].iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts.last().is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// No AWS region name comes near this; it bounds what a request may name.
const MAX_REGION_LEN: usize = 32;

/// How queue URLs name their region.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum UrlStyle {
    /// `BASE/ACCOUNT/NAME` in the server's region, `BASE/REGION/ACCOUNT/NAME` in any other: URLs
    /// from before regions keep their form, and every SDK round-trips both.
    #[default]
    Path,
    /// `SCHEME://sqs.REGION.HOST/ACCOUNT/NAME` for every queue, as AWS's endpoints are named
    /// (needs DNS that sends `sqs.REGION.HOST` here).
    Host,
}

pub fn queue_url(style: UrlStyle, base_url: &str, home_region: &str, queue: &QueueRecord) -> String {
    let base = base_url.trim_end_matches('/');
    let (account, name, region) = (&queue.account_id, &queue.name, &queue.region);
    match style {
        UrlStyle::Path if region == home_region => format!("{base}/{account}/{name}"),
        UrlStyle::Path => format!("{base}/{region}/{account}/{name}"),
        UrlStyle::Host => {
            let (scheme, host) = base.split_once("://").unwrap_or(("http", base));
            // A base that already names a region's endpoint (the client came in through one)
            // gives up that part for the queue's own.
            let host = match host.strip_prefix("sqs.").and_then(|rest| rest.split_once('.')) {
                Some((label, rest)) if is_region(label) => rest,
                _ => host,
            };
            format!("{scheme}://sqs.{region}.{host}/{account}/{name}")
        }
    }
}

pub fn queue_arn(region: &str, account_id: &str, name: &str) -> String {
    format!("arn:aws:sqs:{region}:{account_id}:{name}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_names() {
        assert!(validate_queue_name("orders-1_a", false).is_ok());
        assert!(validate_queue_name(&"a".repeat(80), false).is_ok());
        assert!(validate_queue_name(&"a".repeat(81), false).is_err());
        assert!(validate_queue_name("", false).is_err());
        assert!(validate_queue_name("a.fifo", false).is_err());
        assert!(validate_queue_name("a b", false).is_err());
        assert!(validate_queue_name("a.fifo", true).is_ok());
        assert!(validate_queue_name(".fifo", true).is_err());
        assert!(validate_queue_name("a", true).is_err());
    }

    #[test]
    fn queue_urls_resolve_by_their_last_two_segments() {
        let parsed = |url| parse_queue_url(url).map(|a| (a.region, a.account, a.name));
        assert_eq!(parsed("http://localhost:9324/000000000000/q1").unwrap(), (None, Some("000000000000"), "q1"));
        assert_eq!(
            parsed("https://sqs.us-east-1.amazonaws.com/123/q1/").unwrap(),
            (Some("us-east-1"), Some("123"), "q1")
        );
        assert_eq!(parsed("/000000000000/q1").unwrap(), (None, Some("000000000000"), "q1"));
        assert_eq!(parsed("http://h/a/b/123/q").unwrap(), (None, Some("123"), "q"));
        assert!(parse_queue_url("http://localhost:9324/").is_err());
        assert!(parse_queue_url("").is_err());
        assert!(parse_queue_url("http://h/123/").is_err());
    }

    #[test]
    fn queue_urls_carry_a_region_in_the_path_or_the_host() {
        let region = |url| parse_queue_url(url).unwrap().region;
        assert_eq!(region("http://localhost:9324/eu-west-1/000000000000/q"), Some("eu-west-1"));
        assert_eq!(region("/us-gov-west-1/000000000000/q"), Some("us-gov-west-1"));
        assert_eq!(
            region("http://sqs.eu-central-1.localhost.localstack.cloud:4566/000000000000/q"),
            Some("eu-central-1")
        );
        assert_eq!(region("https://queue.amazonaws.com/123/q"), Some("us-east-1"));
        assert_eq!(region("https://ap-south-1.queue.amazonaws.com/123/q"), Some("ap-south-1"));
        assert_eq!(region("http://localhost:9324/queues/000000000000/q"), None, "not a region");
        assert_eq!(region("http://sqs.example.com/000000000000/q"), None);
        assert!(!is_region(&format!("us-{}-1", "a".repeat(40))));
    }

    #[test]
    fn a_bare_name_is_a_queue_of_the_caller() {
        assert_eq!(parse_queue_url("orders").unwrap(), QueueAddress { region: None, account: None, name: "orders" });
    }

    #[test]
    fn queue_urls_round_trip_in_both_styles() {
        let record = |region: &str| {
            QueueRecord::new(
                1,
                "123456789012".into(),
                region.into(),
                "q".into(),
                Default::default(),
                Default::default(),
                0,
                0,
            )
        };
        let home = record("us-east-1");
        let away = record("eu-west-1");
        assert_eq!(queue_url(UrlStyle::Path, "http://h:9324", "us-east-1", &home), "http://h:9324/123456789012/q");
        assert_eq!(
            queue_url(UrlStyle::Path, "http://h:9324/", "us-east-1", &away),
            "http://h:9324/eu-west-1/123456789012/q"
        );
        assert_eq!(
            queue_url(UrlStyle::Host, "https://example.com:9324", "us-east-1", &away),
            "https://sqs.eu-west-1.example.com:9324/123456789012/q"
        );
        assert_eq!(
            queue_url(UrlStyle::Host, "http://sqs.us-east-1.example.com", "us-east-1", &away),
            "http://sqs.eu-west-1.example.com/123456789012/q"
        );
        for url in [
            queue_url(UrlStyle::Path, "http://h", "us-east-1", &away),
            queue_url(UrlStyle::Host, "http://example.com", "us-east-1", &away),
        ] {
            let parsed = parse_queue_url(&url).unwrap();
            assert_eq!((parsed.region, parsed.account, parsed.name), (Some("eu-west-1"), Some("123456789012"), "q"));
        }
    }
}
