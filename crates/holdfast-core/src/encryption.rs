//! Encryption at rest: message bodies and attributes sealed with AES-256-GCM before they reach
//! the store, opened when they are delivered.
//!
//! Envelope encryption, as SQS does it with KMS: each queue encrypts with a *data key* of its
//! own, generated at random and used for the queue's `KmsDataKeyReusePeriodSeconds` (300 s by
//! default; also at most 2^30 messages, well inside AES-GCM's limit for random nonces); the data
//! key is stored *wrapped* (encrypted) by the *master key* in every message it sealed. A message
//! therefore carries all it needs except the master key: it can move to a dead-letter queue, or
//! outlive its queue's data key, and still be opened.
//!
//! Master keys come from a file (`--master-key-file`): one base64-encoded 32-byte key per line,
//! the first one current. New data keys are wrapped by the current key; the others only open what
//! they wrapped before, so a rotation is: put a new key first, restart or `SIGHUP`, and remove
//! the old key once no message it sealed can remain (the longest retention period, 14 days).
//!
//! A sealed message in the store: `body` is `SEALED_PREFIX` followed by the base64 of
//!
//! ```text
//! version (1) | master key id (8) | wrapped data key: nonce (12) + key (32) + tag (16)
//!             | nonce (12) | ciphertext of (body, attributes, system attributes) + tag (16)
//! ```
//!
//! and its `attributes` and `system_attributes` are empty. The message id is the ciphertext's
//! associated data, so a sealed body cannot be passed off as another message's.
//! Architecture Invariant: with a master key configured, no message body or attribute reaches
//! the store in the clear.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use sha2::{Digest, Sha256};

use crate::store::{Millis, NewMessage, QueueId, StoredMessage};

/// Starts every sealed body. U+0000 can never begin a message body SQS accepts, so a plain body
/// is never mistaken for a sealed one.
const SEALED_PREFIX: &str = "\u{0}hf-sealed:";
const VERSION: u8 = 1;
const KEY_LEN: usize = 32;
const TAG_LEN: usize = 16;
const KEY_ID_LEN: usize = 8;
const WRAPPED_LEN: usize = NONCE_LEN + KEY_LEN + TAG_LEN;
const HEADER_LEN: usize = 1 + KEY_ID_LEN + WRAPPED_LEN + NONCE_LEN;
/// A data key seals at most this many messages, whatever its reuse period.
const MAX_USES: u64 = 1 << 30;
/// Unwrapped data keys kept for opening; past this many the cache starts over.
const OPENED_KEYS_MAX: usize = 4096;
/// Associated data of a wrapped data key.
const WRAP_AAD: &[u8] = b"holdfast data key v1";

/// The master keys: the first seals new data keys, all open what they sealed.
pub struct MasterKeys {
    keys: Vec<([u8; KEY_ID_LEN], LessSafeKey)>,
}

impl MasterKeys {
    /// Parses a master key file: one base64 32-byte key per line; blank lines and `#` comments
    /// are ignored; the first key is the current one.
    pub fn parse(text: &str) -> Result<MasterKeys, String> {
        let mut keys = Vec::new();
        for (number, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bytes = STANDARD.decode(line).ok().filter(|b| b.len() == KEY_LEN).ok_or_else(|| {
                format!("line {}: not the base64 of 32 bytes (make one with `openssl rand -base64 32`)", number + 1)
            })?;
            let id: [u8; KEY_ID_LEN] = Sha256::digest(&bytes)[..KEY_ID_LEN].try_into().expect("8 bytes");
            if keys.iter().any(|(known, _)| *known == id) {
                return Err(format!("line {}: the same key appears twice", number + 1));
            }
            keys.push((id, aead_key(&bytes)));
        }
        if keys.is_empty() {
            return Err("no key in the file".into());
        }
        Ok(MasterKeys { keys })
    }

    fn current(&self) -> &([u8; KEY_ID_LEN], LessSafeKey) {
        &self.keys[0]
    }

    fn by_id(&self, id: &[u8]) -> Option<&LessSafeKey> {
        self.keys.iter().find(|(known, _)| known == id).map(|(_, key)| key)
    }

    /// The keys' ids, for logs: never the keys.
    pub fn ids(&self) -> Vec<String> {
        self.keys.iter().map(|(id, _)| hex::encode(id)).collect()
    }
}

impl fmt::Debug for MasterKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MasterKeys").field("ids", &self.ids()).finish()
    }
}

/// A queue's current data key.
struct DataKey {
    key: Arc<LessSafeKey>,
    /// The key as stored in each message: the master key's id and the wrapped key.
    header: [u8; 1 + KEY_ID_LEN + WRAPPED_LEN],
    expires_at: Millis,
    uses: u64,
}

/// Seals and opens messages; shared by every request.
pub struct Encryption {
    master: RwLock<Arc<MasterKeys>>,
    sealing: Mutex<HashMap<QueueId, DataKey>>,
    /// Wrapped data key -> the key, so opening unwraps each data key once.
    opened: Mutex<HashMap<[u8; WRAPPED_LEN], Arc<LessSafeKey>>>,
}

impl fmt::Debug for Encryption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Encryption").field("master", &*self.master()).finish_non_exhaustive()
    }
}

/// A sealed message that cannot be opened.
#[derive(Debug)]
pub struct OpenError(pub String);

impl Encryption {
    pub fn new(master: MasterKeys) -> Self {
        Encryption { master: RwLock::new(Arc::new(master)), sealing: Mutex::default(), opened: Mutex::default() }
    }

    /// Puts new master keys in force (a rotation). Queues get new data keys, wrapped by the new
    /// current key, from their next message on.
    pub fn replace_master_keys(&self, master: MasterKeys) {
        *self.master.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(master);
        self.sealing.lock().unwrap_or_else(PoisonError::into_inner).clear();
    }

    fn master(&self) -> Arc<MasterKeys> {
        Arc::clone(&self.master.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Seals `messages` of `queue` in place, with the queue's data key (a new one when the last
    /// has been used for `reuse_period_ms`).
    pub fn seal(&self, queue: QueueId, reuse_period_ms: i64, now: Millis, messages: &mut [NewMessage]) {
        let (key, header) = self.data_key(queue, reuse_period_ms, now, messages.len() as u64);
        for message in messages {
            let mut plain = Vec::with_capacity(12 + message.body.len() + message.attributes.len());
            for part in [message.body.as_bytes(), &message.attributes, &message.system_attributes] {
                plain.extend_from_slice(&(part.len() as u32).to_be_bytes());
                plain.extend_from_slice(part);
            }
            let nonce = random_nonce();
            key.seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(message.message_id.as_bytes()),
                &mut plain,
            )
            .expect("AES-GCM sealing does not fail for in-range lengths");
            let mut sealed = Vec::with_capacity(HEADER_LEN + plain.len());
            sealed.extend_from_slice(&header);
            sealed.extend_from_slice(&nonce);
            sealed.extend_from_slice(&plain);
            message.body = format!("{SEALED_PREFIX}{}", STANDARD.encode(&sealed));
            message.attributes = Vec::new();
            message.system_attributes = Vec::new();
        }
    }

    fn data_key(
        &self,
        queue: QueueId,
        reuse_period_ms: i64,
        now: Millis,
        count: u64,
    ) -> (Arc<LessSafeKey>, [u8; 1 + KEY_ID_LEN + WRAPPED_LEN]) {
        let mut sealing = self.sealing.lock().unwrap_or_else(PoisonError::into_inner);
        let fresh = sealing.get(&queue).is_some_and(|k| k.expires_at > now && k.uses + count <= MAX_USES);
        if !fresh {
            let mut plain = [0u8; KEY_LEN];
            fill(&mut plain);
            let master = self.master();
            let (master_id, master_key) = master.current();
            let nonce = random_nonce();
            let mut wrapped = plain.to_vec();
            master_key
                .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(WRAP_AAD), &mut wrapped)
                .expect("AES-GCM sealing does not fail for in-range lengths");
            let mut header = [0u8; 1 + KEY_ID_LEN + WRAPPED_LEN];
            header[0] = VERSION;
            header[1..1 + KEY_ID_LEN].copy_from_slice(master_id);
            header[1 + KEY_ID_LEN..1 + KEY_ID_LEN + NONCE_LEN].copy_from_slice(&nonce);
            header[1 + KEY_ID_LEN + NONCE_LEN..].copy_from_slice(&wrapped);
            let key = DataKey { key: Arc::new(aead_key(&plain)), header, expires_at: now + reuse_period_ms, uses: 0 };
            sealing.insert(queue, key);
        }
        let key = sealing.get_mut(&queue).expect("just made");
        key.uses += count;
        (Arc::clone(&key.key), key.header)
    }

    /// Opens a message sealed by `seal`, in place. Plain messages (stored before a master key
    /// was configured) are left as they are.
    pub fn open(&self, message: &mut StoredMessage) -> Result<(), OpenError> {
        let Some(encoded) = message.body.strip_prefix(SEALED_PREFIX) else { return Ok(()) };
        let damaged = |what: &str| OpenError(format!("message {}: {what}", message.message_id));
        let mut sealed = STANDARD.decode(encoded).map_err(|_| damaged("the sealed body is not base64"))?;
        if sealed.len() < HEADER_LEN + TAG_LEN || sealed[0] != VERSION {
            return Err(damaged("the sealed body is too short or of an unknown version"));
        }
        let master_id = &sealed[1..1 + KEY_ID_LEN];
        let wrapped: [u8; WRAPPED_LEN] =
            sealed[1 + KEY_ID_LEN..1 + KEY_ID_LEN + WRAPPED_LEN].try_into().expect("length checked");
        let key = self.unwrap_key(master_id, &wrapped).ok_or_else(|| {
            damaged(&format!(
                "sealed with master key {}, which is not among the configured keys {:?} (or its data key is damaged)",
                hex::encode(master_id),
                self.master().ids()
            ))
        })?;
        let nonce: [u8; NONCE_LEN] = sealed[HEADER_LEN - NONCE_LEN..HEADER_LEN].try_into().expect("length checked");
        let mut ciphertext = sealed.split_off(HEADER_LEN);
        let plain = key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(message.message_id.as_bytes()),
                &mut ciphertext,
            )
            .map_err(|_| damaged("the sealed body does not authenticate (damaged, or not this message's)"))?;
        let mut parts = Vec::with_capacity(3);
        let mut rest: &[u8] = plain;
        for _ in 0..3 {
            let (len, tail) = rest.split_first_chunk::<4>().ok_or_else(|| damaged("the opened body is truncated"))?;
            let len = u32::from_be_bytes(*len) as usize;
            let part = tail.get(..len).ok_or_else(|| damaged("the opened body is truncated"))?;
            parts.push(part.to_vec());
            rest = &tail[len..];
        }
        let system = parts.pop().expect("three parts");
        let attributes = parts.pop().expect("three parts");
        let body = String::from_utf8(parts.pop().expect("three parts"))
            .map_err(|_| damaged("the opened body is not UTF-8"))?;
        message.body = body;
        message.attributes = attributes;
        message.system_attributes = system;
        Ok(())
    }

    fn unwrap_key(&self, master_id: &[u8], wrapped: &[u8; WRAPPED_LEN]) -> Option<Arc<LessSafeKey>> {
        if let Some(key) = self.opened.lock().unwrap_or_else(PoisonError::into_inner).get(wrapped) {
            return Some(Arc::clone(key));
        }
        let master = self.master();
        let master_key = master.by_id(master_id)?;
        let nonce: [u8; NONCE_LEN] = wrapped[..NONCE_LEN].try_into().expect("length");
        let mut key = wrapped[NONCE_LEN..].to_vec();
        let plain =
            master_key.open_in_place(Nonce::assume_unique_for_key(nonce), Aad::from(WRAP_AAD), &mut key).ok()?;
        let key = Arc::new(aead_key(plain));
        let mut opened = self.opened.lock().unwrap_or_else(PoisonError::into_inner);
        if opened.len() >= OPENED_KEYS_MAX {
            opened.clear();
        }
        opened.insert(*wrapped, Arc::clone(&key));
        Some(key)
    }
}

fn aead_key(bytes: &[u8]) -> LessSafeKey {
    LessSafeKey::new(UnboundKey::new(&AES_256_GCM, bytes).expect("32-byte AES-256 key"))
}

fn fill(bytes: &mut [u8]) {
    aws_lc_rs::rand::fill(bytes).expect("the system's random number generator works");
}

fn random_nonce() -> [u8; NONCE_LEN] {
    let mut nonce = [0u8; NONCE_LEN];
    fill(&mut nonce);
    nonce
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_line() -> String {
        let mut bytes = [0u8; KEY_LEN];
        fill(&mut bytes);
        STANDARD.encode(bytes)
    }

    fn new_message(id: &str, body: &str) -> NewMessage {
        NewMessage {
            message_id: id.into(),
            body: body.into(),
            attributes: b"attrs".to_vec(),
            system_attributes: b"sys".to_vec(),
            group_id: None,
            deduplication_id: None,
            sender_id: "s".into(),
            sent_at: 0,
            visible_at: 0,
        }
    }

    fn stored(m: &NewMessage) -> StoredMessage {
        StoredMessage {
            seq: 1,
            message_id: m.message_id.clone(),
            body: m.body.clone(),
            attributes: m.attributes.clone(),
            system_attributes: m.system_attributes.clone(),
            group_id: None,
            deduplication_id: None,
            sender_id: m.sender_id.clone(),
            sent_at: 0,
            receive_count: 1,
            first_received_at: None,
            lease: 1,
            dead_letter_source_arn: None,
        }
    }

    #[test]
    fn sealed_messages_hide_their_content_and_open_to_it() {
        let encryption = Encryption::new(MasterKeys::parse(&key_line()).unwrap());
        let mut messages = vec![new_message("m1", "a secret lead"), new_message("m2", "")];
        encryption.seal(7, 300_000, 0, &mut messages);
        for m in &messages {
            assert!(m.body.starts_with(SEALED_PREFIX));
            assert!(!m.body.contains("secret") && m.attributes.is_empty() && m.system_attributes.is_empty());
        }
        let mut first = stored(&messages[0]);
        encryption.open(&mut first).unwrap();
        assert_eq!(
            (first.body.as_str(), &first.attributes[..], &first.system_attributes[..]),
            ("a secret lead", &b"attrs"[..], &b"sys"[..])
        );
        // Plain messages (from before encryption) pass through.
        let mut plain = stored(&new_message("m3", "plain"));
        encryption.open(&mut plain).unwrap();
        assert_eq!(plain.body, "plain");
    }

    #[test]
    fn a_data_key_is_reused_for_its_period_then_replaced() {
        let encryption = Encryption::new(MasterKeys::parse(&key_line()).unwrap());
        let header = |now| {
            let mut m = vec![new_message("m", "b")];
            encryption.seal(1, 60_000, now, &mut m);
            STANDARD.decode(m[0].body.strip_prefix(SEALED_PREFIX).unwrap()).unwrap()[..1 + KEY_ID_LEN + WRAPPED_LEN]
                .to_vec()
        };
        let first = header(0);
        assert_eq!(header(59_999), first, "reused within the period");
        assert_ne!(header(60_000), first, "a new data key after it");
        let mut other = vec![new_message("m", "b")];
        encryption.seal(2, 60_000, 0, &mut other);
        assert_ne!(
            STANDARD.decode(other[0].body.strip_prefix(SEALED_PREFIX).unwrap()).unwrap()
                [..1 + KEY_ID_LEN + WRAPPED_LEN],
            first[..],
            "a key per queue"
        );
    }

    #[test]
    fn tampering_and_swapping_are_detected() {
        let encryption = Encryption::new(MasterKeys::parse(&key_line()).unwrap());
        let mut messages = vec![new_message("m1", "one"), new_message("m2", "two")];
        encryption.seal(1, 300_000, 0, &mut messages);
        // Another message's sealed body under this message's id.
        let mut swapped = stored(&messages[0]);
        swapped.body = messages[1].body.clone();
        assert!(encryption.open(&mut swapped).is_err());
        // One changed byte of ciphertext.
        let mut raw = STANDARD.decode(messages[0].body.strip_prefix(SEALED_PREFIX).unwrap()).unwrap();
        *raw.last_mut().unwrap() ^= 1;
        let mut flipped = stored(&messages[0]);
        flipped.body = format!("{SEALED_PREFIX}{}", STANDARD.encode(raw));
        assert!(encryption.open(&mut flipped).is_err());
    }

    #[test]
    fn rotation_keeps_old_messages_readable_while_the_old_key_is_listed() {
        let (old, new) = (key_line(), key_line());
        let encryption = Encryption::new(MasterKeys::parse(&old).unwrap());
        let mut before = vec![new_message("m1", "before")];
        encryption.seal(1, 300_000, 0, &mut before);
        encryption.replace_master_keys(MasterKeys::parse(&format!("# rotated\n{new}\n\n{old}\n")).unwrap());
        let mut after = vec![new_message("m2", "after")];
        encryption.seal(1, 300_000, 1, &mut after);
        let master_id =
            |m: &NewMessage| STANDARD.decode(m.body.strip_prefix(SEALED_PREFIX).unwrap()).unwrap()[1..9].to_vec();
        assert_ne!(master_id(&before[0]), master_id(&after[0]), "new data keys are wrapped by the new master key");
        let mut opened = stored(&before[0]);
        encryption.open(&mut opened).unwrap();
        assert_eq!(opened.body, "before");

        let fresh = Encryption::new(MasterKeys::parse(&new).unwrap());
        let mut orphan = stored(&before[0]);
        let error = fresh.open(&mut orphan).unwrap_err();
        assert!(error.0.contains("not among the configured keys"), "{}", error.0);
    }

    #[test]
    fn master_key_files() {
        assert!(MasterKeys::parse("").is_err());
        assert!(MasterKeys::parse("# only a comment\n").is_err());
        assert!(MasterKeys::parse("c2hvcnQ=").is_err(), "too short");
        assert!(MasterKeys::parse("not base64 at all").is_err());
        let line = key_line();
        assert!(MasterKeys::parse(&format!("{line}\n{line}")).is_err(), "a key twice");
        assert_eq!(MasterKeys::parse(&format!("{line}\n{}", key_line())).unwrap().ids().len(), 2);
    }
}
