//! Receipt handles: what a client must present to delete a message or change its visibility.
//!
//! A handle names the queue, the message and the lease of the receive that produced it, plus a
//! checksum so that a mangled handle is reported as invalid rather than silently matching nothing.
//! It is opaque to clients (URL-safe base64, safe in form bodies and query strings).
//!
//! Architecture Invariant: the lease in a handle is the one the store drew for that receive, so a
//! handle from an earlier receive never acts on a message that has been delivered again since.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use holdfast_api::{sqs_error, SqsError};
use sha2::{Digest, Sha256};

use crate::store::{Lease, QueueId};

const VERSION: u8 = 1;
const PAYLOAD_LEN: usize = 1 + 8 + 8 + 8;
const CHECKSUM_LEN: usize = 4;

fn checksum(payload: &[u8]) -> [u8; CHECKSUM_LEN] {
    let digest = Sha256::digest(payload);
    [digest[0], digest[1], digest[2], digest[3]]
}

pub fn encode(queue: QueueId, lease: Lease) -> String {
    let mut bytes = Vec::with_capacity(PAYLOAD_LEN + CHECKSUM_LEN);
    bytes.push(VERSION);
    bytes.extend_from_slice(&queue.to_be_bytes());
    bytes.extend_from_slice(&lease.seq.to_be_bytes());
    bytes.extend_from_slice(&lease.lease.to_be_bytes());
    let sum = checksum(&bytes);
    bytes.extend_from_slice(&sum);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes a handle presented for `queue`. A malformed handle, or one issued by another queue,
/// is `ReceiptHandleIsInvalid`.
pub fn decode(handle: &str, queue: QueueId) -> Result<Lease, SqsError> {
    let invalid =
        || sqs_error!(ReceiptHandleIsInvalid, "The input receipt handle \"{handle}\" is not a valid receipt handle.");
    let bytes = URL_SAFE_NO_PAD.decode(handle.trim()).map_err(|_| invalid())?;
    if bytes.len() != PAYLOAD_LEN + CHECKSUM_LEN || bytes[0] != VERSION {
        return Err(invalid());
    }
    let (payload, sum) = bytes.split_at(PAYLOAD_LEN);
    if checksum(payload) != sum {
        return Err(invalid());
    }
    let field = |at: usize| -> [u8; 8] { payload[at..at + 8].try_into().expect("fixed layout") };
    let handle_queue = i64::from_be_bytes(field(1));
    if handle_queue != queue {
        return Err(invalid());
    }
    Ok(Lease { seq: i64::from_be_bytes(field(9)), lease: u64::from_be_bytes(field(17)) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_rejections() {
        let lease = Lease { seq: 42, lease: u64::MAX - 7 };
        let handle = encode(7, lease);
        assert_eq!(decode(&handle, 7).unwrap(), lease);
        assert!(decode(&handle, 8).is_err(), "another queue's handle");
        assert!(decode("garbage", 7).is_err());
        assert!(decode("", 7).is_err());
        let mut tampered = handle.into_bytes();
        let last = tampered.len() - 10;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        assert!(decode(std::str::from_utf8(&tampered).unwrap(), 7).is_err());
    }
}
