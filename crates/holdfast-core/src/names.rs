//! Queue names, URLs and ARNs.
//!
//! A queue URL is `<base>/<account-id>/<queue-name>`, where the base is whatever address the
//! client reached us by (or a configured public URL), so URLs we hand out lead back here. When
//! reading a URL only its last two path segments matter: clients may address any host (docs/compatibility.md, "Queue URLs").

use holdfast_api::{limits, sqs_error, SqsError};

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

/// The `(account_id, queue_name)` a queue URL (or a bare `/<account>/<name>` path) points at.
pub fn parse_queue_url(queue_url: &str) -> Result<(&str, &str), SqsError> {
    let path = match queue_url.find("://") {
        Some(scheme_end) => {
            let rest = &queue_url[scheme_end + 3..];
            rest.find('/').map(|i| &rest[i..]).unwrap_or("")
        }
        None => queue_url,
    };
    let path = path.split(['?', '#']).next().unwrap_or("");
    let mut segments = path.trim_end_matches('/').rsplit('/');
    match (segments.next(), segments.next()) {
        (Some(name), Some(account)) if !name.is_empty() && !account.is_empty() => Ok((account, name)),
        _ => Err(sqs_error!(InvalidAddress, "The address {queue_url} is not valid for this endpoint.")),
    }
}

pub fn queue_url(base_url: &str, account_id: &str, name: &str) -> String {
    format!("{}/{}/{}", base_url.trim_end_matches('/'), account_id, name)
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
        assert_eq!(parse_queue_url("http://localhost:9324/000000000000/q1").unwrap(), ("000000000000", "q1"));
        assert_eq!(parse_queue_url("https://sqs.us-east-1.amazonaws.com/123/q1/").unwrap(), ("123", "q1"));
        assert_eq!(parse_queue_url("/000000000000/q1").unwrap(), ("000000000000", "q1"));
        assert_eq!(parse_queue_url("http://h/a/b/123/q").unwrap(), ("123", "q"));
        assert_eq!(parse_queue_url("q1").unwrap_err().code, holdfast_api::ErrorCode::InvalidAddress);
        assert!(parse_queue_url("http://localhost:9324/").is_err());
    }
}
