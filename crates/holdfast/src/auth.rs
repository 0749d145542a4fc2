//! Request authentication: AWS Signature Version 4 against the keys of a credentials file.
//!
//! With `--auth sigv4` every SQS request must carry a valid signature, in the `Authorization`
//! header or as presigned query parameters, by a key of the credentials file, made within 15
//! minutes of the server's clock (a presigned URL: before it expires). The errors are the ones
//! AWS answers, in the request's protocol:
//!
//! | what | error |
//! |---|---|
//! | no signature at all | `MissingAuthenticationToken` (403) |
//! | an `Authorization` header or presigned parameters that do not parse | `IncompleteSignature` (400) |
//! | an access key the file does not have | `InvalidClientTokenId` (403) |
//! | a signature that does not match, a scope for another service or day, a body whose hash is not the signed one | `SignatureDoesNotMatch` (403) |
//! | signed more than 15 minutes from now, or a presigned URL past its expiry | `RequestExpired` (400) |
//!
//! Signatures are compared in constant time (`holdfast_protocol::sigv4::verify`). The keys are
//! read at startup and again on SIGHUP; a file that fails to load on reload leaves the old keys in
//! place. The parsing and the signature arithmetic are `holdfast-protocol`'s; this module decides
//! which keys exist, what counts as too old, which error to answer. What a verified caller may do
//! is `holdfast_core`'s to decide (its account, its identity policy, the queue's policy).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use holdfast_api::{sqs_error, SqsError};
use holdfast_core::policy::{Policy, PolicyKind, Principal};
use holdfast_core::Caller;
use holdfast_protocol::sigv4::{self, Credential};
use holdfast_protocol::HttpRequest;
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// How far a request's signing time may be from the server's clock, as AWS allows.
const MAX_SKEW_SECONDS: i64 = 15 * 60;
/// The longest a presigned URL may be valid, as AWS allows (7 days).
const MAX_PRESIGNED_SECONDS: u64 = 7 * 24 * 3600;

/// Whether requests must be signed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// Every request must be signed with a key of the credentials file.
    Sigv4,
    /// Any request is accepted (local development and tests); its access key, if any, is only
    /// reported as the sender.
    Off,
}

/// The credentials file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CredentialsFile {
    #[serde(default, rename = "key")]
    keys: Vec<KeyEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyEntry {
    access_key_id: String,
    secret_access_key: String,
    account_id: Option<String>,
    user: Option<String>,
    policy: Option<String>,
}

/// One key of the credentials file: its secret and whom it speaks for.
#[derive(Clone, Debug)]
pub struct Key {
    pub secret_access_key: String,
    pub caller: Arc<Caller>,
}

/// Reads and checks a credentials file. `account_id` is the server's account, the default of
/// every key.
pub fn load_keys(path: &Path, account_id: &str) -> anyhow::Result<HashMap<String, Key>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading credentials file {}", path.display()))?;
    let file: CredentialsFile =
        toml::from_str(&text).with_context(|| format!("parsing credentials file {}", path.display()))?;
    let mut keys = HashMap::new();
    for entry in file.keys {
        let id = entry.access_key_id.trim().to_owned();
        anyhow::ensure!(
            !id.is_empty() && !entry.secret_access_key.is_empty(),
            "credentials file {}: every key needs an access_key_id and a secret_access_key",
            path.display()
        );
        let account = entry.account_id.unwrap_or_else(|| account_id.to_owned());
        anyhow::ensure!(
            account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit()),
            "credentials file {}: key {id}: account_id {account:?} is not a 12-digit AWS account id",
            path.display()
        );
        if let Some(user) = &entry.user {
            // The user name becomes part of an ARN: IAM's user-name characters only.
            let valid = !user.is_empty()
                && user.len() <= 64
                && user.bytes().all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b));
            anyhow::ensure!(
                valid,
                "credentials file {}: key {id}: user {user:?} is not a valid IAM user name (1-64 of A-Z a-z 0-9 +=,.@_-)",
                path.display()
            );
        }
        let policy = entry
            .policy
            .map(|text| Policy::parse(&text, PolicyKind::Identity))
            .transpose()
            .with_context(|| format!("credentials file {}: key {id}: its policy", path.display()))?
            .map(Arc::new);
        let principal = Principal { account_id: account, user: entry.user };
        let key = Key { secret_access_key: entry.secret_access_key, caller: Arc::new(Caller { principal, policy }) };
        anyhow::ensure!(
            keys.insert(id.clone(), key).is_none(),
            "credentials file {}: key {id} appears twice",
            path.display()
        );
    }
    anyhow::ensure!(!keys.is_empty(), "credentials file {} has no [[key]]", path.display());
    Ok(keys)
}

/// The server's authentication: its mode and, with SigV4, the current keys.
pub struct Authenticator {
    mode: AuthMode,
    source: Option<(PathBuf, String)>,
    keys: RwLock<Arc<HashMap<String, Key>>>,
}

impl Authenticator {
    pub fn off() -> Self {
        Authenticator { mode: AuthMode::Off, source: None, keys: RwLock::default() }
    }

    /// SigV4 against the keys of `path` (for the server's `account_id`).
    pub fn sigv4(path: &Path, account_id: &str) -> anyhow::Result<Self> {
        let keys = load_keys(path, account_id)?;
        Ok(Authenticator {
            mode: AuthMode::Sigv4,
            source: Some((path.to_owned(), account_id.to_owned())),
            keys: RwLock::new(Arc::new(keys)),
        })
    }

    pub fn mode(&self) -> AuthMode {
        self.mode
    }

    /// Reads the credentials file again; on failure the keys in force stay. Returns how many
    /// keys are now in force.
    pub fn reload(&self) -> anyhow::Result<usize> {
        let Some((path, account_id)) = &self.source else { return Ok(0) };
        let keys = load_keys(path, account_id)?;
        let count = keys.len();
        *self.keys.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(keys);
        Ok(count)
    }

    /// The caller an access key speaks for, while the key is in force.
    pub fn caller_of(&self, access_key_id: &str) -> Option<Arc<Caller>> {
        self.key(access_key_id).map(|key| key.caller)
    }

    /// Whether `secret` is the secret of `access_key_id` (the console's sign-in), compared in
    /// time that does not depend on where they differ.
    pub fn check_secret(&self, access_key_id: &str, secret: &str) -> bool {
        let Some(key) = self.key(access_key_id) else { return false };
        // Digests first, so the comparison takes the same time whatever the lengths.
        let expected = Sha256::digest(key.secret_access_key.as_bytes());
        let given = Sha256::digest(secret.as_bytes());
        expected.iter().zip(given.iter()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
    }

    fn key(&self, access_key_id: &str) -> Option<Key> {
        self.keys.read().unwrap_or_else(std::sync::PoisonError::into_inner).get(access_key_id).cloned()
    }

    /// Who signed `req` for `service` (`sqs`, or `monitoring` for CloudWatch), or the error to
    /// answer. With authentication off, every request passes and nobody is verified (`None`).
    pub fn authenticate(
        &self,
        req: &HttpRequest<'_>,
        now: SystemTime,
        service: &str,
    ) -> Result<Option<Arc<Caller>>, SqsError> {
        if self.mode == AuthMode::Off {
            return Ok(None);
        }
        let credential = credential(req)?;
        let Some(key) = self.key(&credential.access_key_id) else {
            return Err(sqs_error!(InvalidClientTokenId, "The security token included in the request is invalid."));
        };
        check_time(&credential, now)?;
        check_scope(&credential, service)?;
        check_payload(req)?;
        if !sigv4::verify(req, &credential, &key.secret_access_key) {
            return Err(sqs_error!(
                SignatureDoesNotMatch,
                "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method."
            ));
        }
        Ok(Some(key.caller))
    }
}

/// The request's credential, telling an unsigned request from a badly signed one.
fn credential(req: &HttpRequest<'_>) -> Result<Credential, SqsError> {
    if let Some(credential) = sigv4::parse(req) {
        return Ok(credential);
    }
    let header = req.headers.get(http::header::AUTHORIZATION);
    let presigned = req.uri.query().is_some_and(|q| {
        form_urlencoded::parse(q.as_bytes()).any(|(k, _)| k == "X-Amz-Signature" || k == "X-Amz-Credential")
    });
    if header.is_none() && !presigned {
        return Err(sqs_error!(MissingAuthenticationToken, "Request is missing Authentication Token"));
    }
    Err(sqs_error!(
        IncompleteSignature,
        "The request signature does not conform to AWS standards: it needs Credential, SignedHeaders, Signature and X-Amz-Date."
    ))
}

fn check_time(credential: &Credential, now: SystemTime) -> Result<(), SqsError> {
    let now = now.duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
    let Some(signed_at) = credential.amz_date.as_deref().and_then(sigv4::parse_amz_date) else {
        return Err(sqs_error!(IncompleteSignature, "The request must contain a valid X-Amz-Date."));
    };
    if credential.presigned {
        let expires = credential.expires.unwrap_or(MAX_PRESIGNED_SECONDS).min(MAX_PRESIGNED_SECONDS) as i64;
        if now > signed_at + expires || signed_at > now + MAX_SKEW_SECONDS {
            return Err(sqs_error!(RequestExpired, "Request has expired."));
        }
    } else if (now - signed_at).abs() > MAX_SKEW_SECONDS {
        return Err(sqs_error!(
            RequestExpired,
            "Signature expired: the request was signed more than 15 minutes from the server's time."
        ));
    }
    Ok(())
}

fn check_scope(credential: &Credential, service: &str) -> Result<(), SqsError> {
    if credential.service != service {
        return Err(sqs_error!(SignatureDoesNotMatch, "Credential should be scoped to correct service: '{service}'."));
    }
    let date_matches = credential.amz_date.as_deref().is_some_and(|d| d.get(..8) == Some(credential.date.as_str()));
    if !date_matches {
        return Err(sqs_error!(
            SignatureDoesNotMatch,
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP."
        ));
    }
    let signs_host = credential.signed_headers.iter().any(|h| h == "host");
    if !signs_host && !credential.presigned {
        return Err(sqs_error!(SignatureDoesNotMatch, "The host header must be signed."));
    }
    Ok(())
}

/// A signed `x-amz-content-sha256` must be the body's hash (or `UNSIGNED-PAYLOAD`): otherwise a
/// captured signature could carry any other body.
fn check_payload(req: &HttpRequest<'_>) -> Result<(), SqsError> {
    let Some(claimed) = req.headers.get("x-amz-content-sha256").and_then(|v| v.to_str().ok()) else {
        return Ok(());
    };
    let claimed = claimed.trim();
    if claimed == "UNSIGNED-PAYLOAD" {
        return Ok(());
    }
    if !claimed.eq_ignore_ascii_case(&hex::encode(Sha256::digest(req.body))) {
        return Err(sqs_error!(
            SignatureDoesNotMatch,
            "The provided x-amz-content-sha256 header does not match what was computed."
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn presigned(signed_at: u64, expires: Option<u64>) -> Credential {
        Credential {
            access_key_id: "AKID".into(),
            date: "19700101".into(),
            region: "us-east-1".into(),
            service: "sqs".into(),
            signed_headers: vec!["host".into()],
            signature: "00".into(),
            amz_date: Some(sigv4::format_amz_date(UNIX_EPOCH + std::time::Duration::from_secs(signed_at))),
            presigned: true,
            expires,
        }
    }

    #[test]
    fn presigned_urls_live_at_most_seven_days_and_are_never_dated_ahead() {
        let day = 86_400;
        let now = UNIX_EPOCH + std::time::Duration::from_secs(100 * day);
        assert!(check_time(&presigned(99 * day, Some(2 * day)), now).is_ok());
        assert!(check_time(&presigned(97 * day, Some(2 * day)), now).is_err(), "past its own expiry");
        let long = presigned(92 * day, Some(30 * day));
        assert_eq!(
            check_time(&long, now).unwrap_err().code,
            holdfast_api::ErrorCode::RequestExpired,
            "capped at 7 days"
        );
        assert!(check_time(&presigned(100 * day + 3_600, Some(day)), now).is_err(), "dated an hour ahead");
    }

    #[test]
    fn credentials_files() {
        let dir = tempfile::tempdir().unwrap();
        let write = |text: &str| {
            let path = dir.path().join("credentials.toml");
            std::fs::write(&path, text).unwrap();
            path
        };
        let keys = load_keys(
            &write("[[key]]\naccess_key_id = \"AKIA1\"\nsecret_access_key = \"s1\"\nuser = \"producer\"\n[[key]]\naccess_key_id = \"AKIA2\"\nsecret_access_key = \"s2\"\n"),
            "000000000000",
        )
        .unwrap();
        assert_eq!(keys["AKIA1"].caller.principal.user.as_deref(), Some("producer"));
        assert_eq!(keys["AKIA2"].caller.principal.account_id, "000000000000");
        let keys = load_keys(
            &write("[[key]]\naccess_key_id = \"AKIA3\"\nsecret_access_key = \"s\"\naccount_id = \"111122223333\"\nuser = \"reader\"\npolicy = '{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"sqs:Receive*\",\"Resource\":\"*\"}}'\n"),
            "000000000000",
        )
        .unwrap();
        assert_eq!(keys["AKIA3"].caller.principal.arn(), "arn:aws:iam::111122223333:user/reader");
        assert!(keys["AKIA3"].caller.policy.is_some());
        for bad in [
            "",
            "[[key]]\naccess_key_id = \"A\"\n",
            "[[key]]\naccess_key_id = \"A\"\nsecret_access_key = \"s\"\naccount_id = \"1111\"\n",
            "[[key]]\naccess_key_id = \"A\"\nsecret_access_key = \"s\"\nuser = \"a/b\"\n",
            "[[key]]\naccess_key_id = \"A\"\nsecret_access_key = \"s\"\npolicy = \"{}\"\n",
            "[[key]]\naccess_key_id = \"A\"\nsecret_access_key = \"s\"\npolicy = '{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"sqs:*\"}}'\n",
            "[[key]]\naccess_key_id = \"A\"\nsecret_access_key = \"s\"\n[[key]]\naccess_key_id = \"A\"\nsecret_access_key = \"t\"\n",
            "[[key]]\naccess_key_id = \"A\"\nsecret_access_key = \"s\"\nsecret = \"typo\"\n",
        ] {
            assert!(load_keys(&write(bad), "000000000000").is_err(), "{bad}");
        }
    }
}
