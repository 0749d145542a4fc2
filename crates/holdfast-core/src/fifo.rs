//! FIFO specifics the service decides: sequence numbers and content-based deduplication ids.

use sha2::{Digest, Sha256};

/// Deduplication ids and ReceiveRequestAttemptIds are remembered for 5 minutes.
pub const DEDUP_WINDOW_MS: i64 = holdfast_api::limits::FIFO_DEDUP_WINDOW_SECONDS as i64 * 1000;

/// `SequenceNumber`: SQS documents a large, increasing, non-consecutive number, shown as a
/// decimal string of 20 digits (AWS's start with 18). A message's store `seq` is unique and
/// increasing, so spacing seqs 2^16 apart from 1.8 * 10^19 gives the same shape, and stays 20
/// digits for the first 10^15 messages.
pub fn sequence_number(seq: i64) -> String {
    const BASE: u128 = 18 * 10u128.pow(18);
    const STRIDE: u128 = 1 << 16;
    (BASE + seq as u128 * STRIDE).to_string()
}

/// The deduplication id of a FIFO queue with `ContentBasedDeduplication`: the SHA-256 of the
/// body (only the body, not the attributes), in hex.
pub fn content_deduplication_id(body: &str) -> String {
    hex::encode(Sha256::digest(body.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_numbers_are_20_digit_and_increasing() {
        assert_eq!(sequence_number(1), "18000000000000065536");
        assert!(sequence_number(41) < sequence_number(42));
        assert_eq!(sequence_number(1_000_000_000_000_000).len(), 20);
    }

    #[test]
    fn content_dedup_is_sha256_of_the_body() {
        assert_eq!(
            content_deduplication_id("hello"),
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
    }
}
