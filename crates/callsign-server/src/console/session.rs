//! Console sessions, their CSRF tokens, and the sign-in rate limit. Everything is timed by the
//! server's injected clock, so expiry and the limit's windows are testable without waiting.
//!
//! A session remembers which access key it was signed in with (as a digest, never the key) so
//! that regenerating that key ends it: whoever knew only the old key is out at once.

use crate::audit::KeySlot;
use aws_lc_rs::constant_time::verify_slices_are_equal;
use aws_lc_rs::digest::{digest, SHA256};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

/// The session cookie's name.
pub const COOKIE: &str = "callsign-console";

/// How long a session lasts from sign-in, whatever is done meanwhile.
pub const LIFETIME: chrono::Duration = chrono::Duration::hours(8);

/// Sign-in attempts admitted per remote address in each [`ATTEMPT_WINDOW`].
pub const MAX_ATTEMPTS: u32 = 10;

/// The window sign-in attempts are counted in.
pub const ATTEMPT_WINDOW: chrono::Duration = chrono::Duration::minutes(1);

/// At most this many sessions are kept: past it the one that expires first goes.
const MAX_SESSIONS: usize = 10_000;

/// At most this many addresses are counted; past it, finished windows are forgotten first.
const MAX_ADDRESSES: usize = 10_000;

/// A signed-in browser.
#[derive(Clone)]
pub struct Session {
    /// The access key it signed in with.
    pub slot: KeySlot,
    /// SHA-256 of that key: the session ends when the key in that slot changes.
    key_digest: [u8; 32],
    /// The synchronizer token every form of this session carries.
    pub csrf: String,
    /// When it ends.
    pub expires: DateTime<Utc>,
}

impl Session {
    /// Whether `key` (the one now in the session's slot) is still the key it signed in with.
    pub fn key_matches(&self, key: &[u8]) -> bool {
        verify_slices_are_equal(&sha256(key), &self.key_digest).is_ok()
    }

    /// Whether `token` is this session's CSRF token (constant time).
    pub fn csrf_matches(&self, token: &str) -> bool {
        verify_slices_are_equal(token.as_bytes(), self.csrf.as_bytes()).is_ok()
    }
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("slot", &self.slot)
            .field("expires", &self.expires)
            .finish_non_exhaustive()
    }
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest(&SHA256, bytes).as_ref());
    out
}

/// 32 random bytes, base64url: session ids and CSRF tokens.
fn random_token() -> String {
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes).expect("system randomness is available");
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The live sessions, by the SHA-256 of their id: a look-up's timing then says nothing about
/// the ids held, and the map holds no id a memory dump could replay.
#[derive(Default)]
pub struct Sessions {
    map: Mutex<HashMap<[u8; 32], Session>>,
}

impl Sessions {
    /// Starts a session for the key in `slot` (`key` its bytes) at `now`; returns its id, for
    /// the cookie.
    pub fn start(&self, slot: KeySlot, key: &[u8], now: DateTime<Utc>) -> (String, Session) {
        let id = random_token();
        let session = Session {
            slot,
            key_digest: sha256(key),
            csrf: random_token(),
            expires: now + LIFETIME,
        };
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, s| s.expires > now);
        if map.len() >= MAX_SESSIONS {
            if let Some(first) = map.iter().min_by_key(|(_, s)| s.expires).map(|(k, _)| *k) {
                map.remove(&first);
            }
        }
        map.insert(sha256(id.as_bytes()), session.clone());
        (id, session)
    }

    /// The session with this id, if it has not expired at `now`.
    pub fn get(&self, id: &str, now: DateTime<Utc>) -> Option<Session> {
        let key = sha256(id.as_bytes());
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        match map.get(&key) {
            Some(session) if session.expires > now => Some(session.clone()),
            Some(_) => {
                map.remove(&key);
                None
            }
            None => None,
        }
    }

    /// Ends the session with this id (sign-out, or its key was regenerated).
    pub fn end(&self, id: &str) {
        let key = sha256(id.as_bytes());
        self.map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&key);
    }
}

/// Sign-in attempts per remote address, in fixed windows of [`ATTEMPT_WINDOW`]: at most
/// [`MAX_ATTEMPTS`] each, right or wrong, so that guessing a key from one address is slow.
#[derive(Default)]
pub struct SignInLimiter {
    windows: Mutex<HashMap<IpAddr, (DateTime<Utc>, u32)>>,
}

impl SignInLimiter {
    /// Counts an attempt from `address` at `now`: `Ok` if admitted, else the seconds until the
    /// address may try again.
    pub fn admit(&self, address: IpAddr, now: DateTime<Utc>) -> Result<(), i64> {
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        if windows.len() >= MAX_ADDRESSES {
            windows.retain(|_, (start, _)| now - *start < ATTEMPT_WINDOW);
        }
        let entry = windows.entry(address).or_insert((now, 0));
        if now - entry.0 >= ATTEMPT_WINDOW {
            *entry = (now, 0);
        }
        if entry.1 >= MAX_ATTEMPTS {
            let left = (entry.0 + ATTEMPT_WINDOW - now).num_seconds().max(1);
            return Err(left);
        }
        entry.1 += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_000_000 + seconds, 0).unwrap()
    }

    #[test]
    fn sessions_expire_and_end() {
        let sessions = Sessions::default();
        let (id, session) = sessions.start(KeySlot::Primary, b"key", at(0));
        assert_ne!(id, session.csrf);
        assert!(sessions.get(&id, at(0)).is_some());
        assert!(sessions.get("another", at(0)).is_none());
        let last = LIFETIME.num_seconds() - 1;
        assert!(sessions.get(&id, at(last)).is_some());
        assert!(sessions.get(&id, at(last + 1)).is_none(), "expired");
        let (id, _) = sessions.start(KeySlot::Secondary, b"key", at(0));
        sessions.end(&id);
        assert!(sessions.get(&id, at(0)).is_none(), "signed out");
    }

    #[test]
    fn a_session_knows_its_key_and_token() {
        let (_, session) = Sessions::default().start(KeySlot::Primary, b"key", at(0));
        assert!(session.key_matches(b"key"));
        assert!(!session.key_matches(b"regenerated"));
        assert!(session.csrf_matches(&session.csrf.clone()));
        assert!(!session.csrf_matches(""));
        assert!(!session.csrf_matches("x"));
    }

    #[test]
    fn attempts_are_limited_per_address_and_window() {
        let limiter = SignInLimiter::default();
        let one: IpAddr = "10.0.0.1".parse().unwrap();
        let two: IpAddr = "10.0.0.2".parse().unwrap();
        for _ in 0..MAX_ATTEMPTS {
            assert!(limiter.admit(one, at(0)).is_ok());
        }
        assert_eq!(limiter.admit(one, at(10)), Err(50));
        assert!(limiter.admit(two, at(10)).is_ok(), "another address");
        assert!(limiter.admit(one, at(60)).is_ok(), "a new window");
    }
}
