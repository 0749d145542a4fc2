//! Console sign-in sessions: a random token in an `HttpOnly`, `SameSite=Strict` cookie, mapped in
//! memory to the access key that signed in and a per-session CSRF token every form carries.
//!
//! The session holds the access key's id, not its caller: each request looks the key up again, so
//! a key removed from the credentials file (and SIGHUP) stops working in the console at once. The
//! table is bounded: sessions expire after `SESSION_LIFETIME` of inactivity, and past
//! `MAX_SESSIONS` the least recently used is dropped, so a flood of sign-ins costs bounded memory.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rand::RngCore;

pub const COOKIE: &str = "holdfast_console";
/// How long a session lasts without being used.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// The most sessions kept at once.
const MAX_SESSIONS: usize = 10_000;

#[derive(Clone, Debug)]
pub struct Session {
    /// The access key that signed in; `None` when authentication is off.
    pub access_key_id: Option<String>,
    /// The token every form of this session must send back.
    pub csrf: String,
    /// What the next page shows above its body: the outcome of the POST that redirected to it.
    /// Kept here rather than in the URL, so a link cannot put words in the console's mouth.
    flash: Option<String>,
    last_used: Instant,
}

#[derive(Default)]
pub struct Sessions {
    table: Mutex<HashMap<String, Session>>,
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

impl Sessions {
    /// Opens a session; returns its cookie token and the session.
    pub fn open(&self, access_key_id: Option<String>) -> (String, Session) {
        let token = random_token();
        let session = Session { access_key_id, csrf: random_token(), flash: None, last_used: Instant::now() };
        let mut table = self.table.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if table.len() >= MAX_SESSIONS {
            let now = Instant::now();
            table.retain(|_, s| now.duration_since(s.last_used) < SESSION_LIFETIME);
            if table.len() >= MAX_SESSIONS {
                let oldest = table.iter().min_by_key(|(_, s)| s.last_used).map(|(t, _)| t.clone());
                if let Some(oldest) = oldest {
                    table.remove(&oldest);
                }
            }
        }
        table.insert(token.clone(), session.clone());
        (token, session)
    }

    /// The live session of `token`, marked as used now.
    pub fn get(&self, token: &str) -> Option<Session> {
        let mut table = self.table.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        let session = table.get_mut(token)?;
        if now.duration_since(session.last_used) >= SESSION_LIFETIME {
            table.remove(token);
            return None;
        }
        session.last_used = now;
        Some(session.clone())
    }

    /// Leaves `text` for the session's next page.
    pub fn set_flash(&self, token: &str, text: String) {
        if let Some(session) = self.table.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get_mut(token) {
            session.flash = Some(text);
        }
    }

    /// What was left for this page, once.
    pub fn take_flash(&self, token: &str) -> Option<String> {
        self.table.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get_mut(token)?.flash.take()
    }

    pub fn close(&self, token: &str) {
        self.table.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(token);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.table.lock().unwrap().len()
    }
}

/// The session token in a request's `Cookie` headers.
pub fn token_of(headers: &http::HeaderMap) -> Option<&str> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value)
}

/// The `Set-Cookie` value for a session (or, with `None`, one that removes it).
pub fn set_cookie(token: Option<&str>, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    match token {
        Some(token) => format!(
            "{COOKIE}={token}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
            SESSION_LIFETIME.as_secs()
        ),
        None => format!("{COOKIE}=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0{secure}"),
    }
}

/// Compares two secrets in time that depends only on their lengths.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_found_by_token_and_closed() {
        let sessions = Sessions::default();
        let (token, session) = sessions.open(Some("AKID".into()));
        assert_eq!(token.len(), 64);
        assert_ne!(token, session.csrf);
        assert_eq!(sessions.get(&token).unwrap().access_key_id.as_deref(), Some("AKID"));
        assert!(sessions.get("nope").is_none());
        sessions.set_flash(&token, "Saved.".into());
        assert_eq!(sessions.take_flash(&token).as_deref(), Some("Saved."));
        assert_eq!(sessions.take_flash(&token), None, "shown once");
        sessions.close(&token);
        assert!(sessions.get(&token).is_none());
    }

    #[test]
    fn the_table_is_bounded() {
        let sessions = Sessions::default();
        let (first, _) = sessions.open(None);
        for _ in 0..MAX_SESSIONS + 5 {
            sessions.open(None);
        }
        assert_eq!(sessions.len(), MAX_SESSIONS);
        assert!(sessions.get(&first).is_none(), "the least recently used went first");
    }

    #[test]
    fn cookies_are_read_among_others() {
        let mut headers = http::HeaderMap::new();
        headers.append(http::header::COOKIE, "a=1; holdfast_console=abc; b=2".parse().unwrap());
        assert_eq!(token_of(&headers), Some("abc"));
        assert!(set_cookie(Some("abc"), true).ends_with("; Secure"));
        assert!(same_secret("abc", "abc") && !same_secret("abc", "abd") && !same_secret("abc", "ab"));
    }
}
