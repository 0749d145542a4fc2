//! Small validation rules shared by several actions (the SQS quotas <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-quotas.html>).

use holdfast_api::{limits, sqs_error, SqsError};

/// The characters SQS allows in bodies and string values:
/// `#x9 | #xA | #xD | #x20-#xD7FF | #xE000-#xFFFD | #x10000-#x10FFFF`.
pub fn check_message_characters(text: &str) -> Result<(), char> {
    match text.chars().find(|&c| !matches!(c, '\u{9}' | '\u{A}' | '\u{D}' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}')) {
        Some(bad) => Err(bad),
        None => Ok(()),
    }
}

/// Batch entry ids: 1–80 characters of `[A-Za-z0-9_-]`, distinct within the request.
pub fn check_batch_entry_ids<'a>(ids: impl Iterator<Item = &'a str> + Clone, count: usize) -> Result<(), SqsError> {
    if count == 0 {
        return Err(sqs_error!(EmptyBatchRequest, "There should be at least one entry in the request."));
    }
    if count > limits::MAX_BATCH_ENTRIES {
        return Err(sqs_error!(
            TooManyEntriesInBatchRequest,
            "Maximum number of entries per request are {}. You have sent {count}.",
            limits::MAX_BATCH_ENTRIES
        ));
    }
    let mut seen = std::collections::HashSet::new();
    for id in ids {
        let valid = !id.is_empty()
            && id.len() <= limits::MAX_BATCH_ENTRY_ID_LEN
            && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !valid {
            return Err(sqs_error!(
                InvalidBatchEntryId,
                "A batch entry id can only contain alphanumeric characters, hyphens and underscores. It can be at most 80 letters long."
            ));
        }
        if !seen.insert(id) {
            return Err(sqs_error!(BatchEntryIdsNotDistinct, "Id {id} repeated."));
        }
    }
    Ok(())
}

/// MessageGroupId, MessageDeduplicationId, ReceiveRequestAttemptId: 1–128 characters, letters,
/// digits and ASCII punctuation.
pub fn check_fifo_id(parameter: &str, value: &str) -> Result<(), SqsError> {
    let valid =
        !value.is_empty() && value.len() <= limits::MAX_FIFO_ID_LEN && value.bytes().all(|b| b.is_ascii_graphic());
    if valid {
        Ok(())
    } else {
        Err(sqs_error!(
            InvalidParameterValue,
            "Value {value} for parameter {parameter} is invalid. Reason: {parameter} can only include alphanumeric and punctuation characters. 1 to 128 in length."
        ))
    }
}

/// An integer parameter within `[min, max]`.
pub fn check_range(parameter: &str, value: i64, min: i64, max: i64) -> Result<(), SqsError> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(sqs_error!(
            InvalidParameterValue,
            "Value {value} for parameter {parameter} is invalid. Reason: Must be between {min} and {max}, if provided."
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use holdfast_api::ErrorCode;

    #[test]
    fn message_characters() {
        assert!(check_message_characters("a\tb\r\n é ✓ \u{10000}").is_ok());
        assert_eq!(check_message_characters("a\u{0}"), Err('\u{0}'));
        assert_eq!(check_message_characters("\u{FFFF}"), Err('\u{FFFF}'));
        assert_eq!(check_message_characters("\u{1F}"), Err('\u{1F}'));
    }

    #[test]
    fn batch_ids() {
        let code = |ids: &[&str]| check_batch_entry_ids(ids.iter().copied(), ids.len()).err().map(|e| e.code);
        assert_eq!(code(&["a", "b-1_c"]), None);
        assert_eq!(code(&[]), Some(ErrorCode::EmptyBatchRequest));
        assert_eq!(code(&["a"; 11]), Some(ErrorCode::TooManyEntriesInBatchRequest));
        assert_eq!(code(&["a", "a"]), Some(ErrorCode::BatchEntryIdsNotDistinct));
        assert_eq!(code(&["a b"]), Some(ErrorCode::InvalidBatchEntryId));
        assert_eq!(code(&[&"x".repeat(81)]), Some(ErrorCode::InvalidBatchEntryId));
    }
}
