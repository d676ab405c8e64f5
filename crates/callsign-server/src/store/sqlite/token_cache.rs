//! An exact in-process cache of the identities' [`TokenState`]s: issuing a token for a cached
//! identity reads no SQLite page and makes no thread hop (a read on the blocking pool costs the
//! one-core server two context switches per token, more than everything else but the signature).
//!
//! Exact, because the data dir's one writer keeps it so: a write that changes an identity's
//! token state (revoke, delete, reset, import) removes what it changed from here after its
//! transaction committed and before its caller is answered, so a request that starts after a
//! revoke or delete was answered never sees the state before it. A read that missed fills the
//! cache only if nothing was removed since it started ([`Miss`] carries the removal count it
//! saw), so a read that raced a commit never puts back the state the commit replaced. Only
//! identities that exist are cached: a create adds a row nobody has cached, and needs no removal.
//!
//! Bounded: two generations of at most `capacity` entries each. When the young one is full it
//! becomes the old one and the old one is dropped; a hit in the old generation moves to the young
//! one, so the identities in use stay. Identities of this resource are keyed by their two GUIDs
//! (32 bytes, not the 79-byte raw id); any other id by its text.

use crate::store::TokenState;
use std::collections::HashMap;
use std::sync::Mutex;
use uuid::Uuid;

/// Entries per generation by default: 7/8 of 2^18, the most a table of 2^18 buckets holds
/// before it doubles. An entry is 56 bytes plus a control byte, so a full generation takes
/// 2^18 × 57 B ≈ 15 MB and the cache at most ≈ 30 MB for 458,752 identities.
pub const DEFAULT_CAPACITY: usize = 7 * (1 << 18) / 8;

/// The token states of recently used identities.
pub struct TokenCache {
    capacity: usize,
    state: Mutex<Generations>,
}

#[derive(Default)]
struct Generations {
    young: HashMap<Key, TokenState>,
    old: HashMap<Key, TokenState>,
    /// Removals so far: a fill from a read that started before the latest one is refused.
    removals: u64,
}

/// A cache miss: what [`TokenCache::fill`] needs to know whether the read that follows it may
/// fill the cache.
#[must_use = "a miss is filled with what the store read"]
#[derive(Debug)]
pub struct Miss {
    key: Key,
    removals: u64,
}

/// An identity id as cached: `8:acs:<resource>_<user>` with both GUIDs in canonical form as their
/// bytes (one id, one key: the text form is unique), anything else as text. Byte arrays rather
/// than `u128`s keep the alignment, and so the entry, small.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Acs([u8; 16], [u8; 16]),
    Other(Box<str>),
}

impl Key {
    fn of(id: &str) -> Self {
        Self::guids(id).unwrap_or_else(|| Self::Other(id.into()))
    }

    fn guids(id: &str) -> Option<Self> {
        let rest = id.strip_prefix("8:acs:")?;
        let (resource, user) = rest.split_once('_')?;
        Some(Self::Acs(canonical_guid(resource)?, canonical_guid(user)?))
    }
}

/// The GUID `text` is, if `text` is its lowercase 8-4-4-4-12 form (the only form that maps back
/// to the same text).
fn canonical_guid(text: &str) -> Option<[u8; 16]> {
    let canonical = text.len() == 36 && !text.bytes().any(|b| b.is_ascii_uppercase());
    canonical
        .then(|| Uuid::try_parse(text).ok())
        .flatten()
        .map(Uuid::into_bytes)
}

impl TokenCache {
    /// An empty cache of at most `capacity` entries per generation.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            state: Mutex::new(Generations::default()),
        }
    }

    /// The cached state of `id`, or the miss to fill once the store has been read. The miss must
    /// be taken before the read starts.
    pub fn get(&self, id: &str) -> Result<TokenState, Miss> {
        let key = Key::of(id);
        let mut state = self.lock();
        if let Some(&hit) = state.young.get(&key) {
            return Ok(hit);
        }
        if let Some(hit) = state.old.remove(&key) {
            state.insert(key, hit, self.capacity);
            return Ok(hit);
        }
        Err(Miss {
            key,
            removals: state.removals,
        })
    }

    /// Caches what a read that followed `miss` found, unless an entry was removed since the
    /// miss (the read may have seen the state before that removal's write).
    pub fn fill(&self, miss: Miss, found: TokenState) {
        let mut state = self.lock();
        if state.removals == miss.removals {
            state.insert(miss.key, found, self.capacity);
        }
    }

    /// Forgets `id`: its token state changed (called once the change has committed).
    pub fn remove(&self, id: &str) {
        let key = Key::of(id);
        let mut state = self.lock();
        state.removals += 1;
        state.young.remove(&key);
        state.old.remove(&key);
    }

    /// Forgets every identity (they were all removed or replaced).
    pub fn clear(&self) {
        let mut state = self.lock();
        state.removals += 1;
        state.young.clear();
        state.old.clear();
    }

    /// How many identities are cached.
    #[cfg(test)]
    fn len(&self) -> usize {
        let state = self.lock();
        state.young.len() + state.old.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Generations> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Generations {
    fn insert(&mut self, key: Key, value: TokenState, capacity: usize) {
        if self.young.len() >= capacity && !self.young.contains_key(&key) {
            self.old = std::mem::take(&mut self.young);
        }
        self.young.insert(key, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIVE: TokenState = TokenState::Live {
        revoked_before_us: None,
    };
    const REVOKED: TokenState = TokenState::Live {
        revoked_before_us: Some(7),
    };

    fn acs_id(n: u128) -> String {
        format!(
            "8:acs:{}_{}",
            Uuid::from_u128(1).hyphenated(),
            Uuid::from_u128(n).hyphenated()
        )
    }

    #[test]
    fn a_fill_is_a_hit_until_removed() {
        let cache = TokenCache::new(8);
        for id in [acs_id(2), "a".to_owned()] {
            let miss = cache.get(&id).unwrap_err();
            cache.fill(miss, LIVE);
            assert_eq!(cache.get(&id).unwrap(), LIVE);
            cache.remove(&id);
            assert!(cache.get(&id).is_err());
        }
    }

    /// A read that started before a removal may have seen the state the removed write replaced:
    /// its fill is refused, so the old state never comes back.
    #[test]
    fn a_read_that_raced_a_removal_does_not_fill() {
        let cache = TokenCache::new(8);
        let id = acs_id(2);
        let before_revoke = cache.get(&id).unwrap_err();
        cache.remove(&id);
        cache.fill(before_revoke, LIVE);
        assert!(cache.get(&id).is_err(), "the stale read was not cached");
        let after_revoke = cache.get(&id).unwrap_err();
        cache.fill(after_revoke, REVOKED);
        assert_eq!(cache.get(&id).unwrap(), REVOKED);

        let before_reset = cache.get(&acs_id(3)).unwrap_err();
        cache.clear();
        cache.fill(before_reset, LIVE);
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn ids_in_another_form_are_other_keys() {
        let id = acs_id(0xab);
        let upper = id.replace("ab", "AB");
        assert_ne!(upper, id);
        let acs = Key::Acs(1u128.to_be_bytes(), 0xabu128.to_be_bytes());
        assert_eq!(Key::of(&id), acs);
        assert!(matches!(Key::of(&upper), Key::Other(_)));
        let cache = TokenCache::new(8);
        let miss = cache.get(&id).unwrap_err();
        cache.fill(miss, LIVE);
        assert!(cache.get(&upper).is_err(), "another row of the table");
        for other in ["8:acs:x_y", "8:acs:", "8:spool:1_2", &id[..id.len() - 1]] {
            assert!(matches!(Key::of(other), Key::Other(_)), "{other}");
        }
    }

    /// The memory figure of [`DEFAULT_CAPACITY`] counts on it.
    #[test]
    fn an_entry_is_56_bytes() {
        assert_eq!(std::mem::size_of::<(Key, TokenState)>(), 56);
    }

    #[test]
    fn it_keeps_two_generations_and_what_is_used() {
        let cache = TokenCache::new(4);
        for n in 0..4 {
            let miss = cache.get(&acs_id(n)).unwrap_err();
            cache.fill(miss, LIVE);
        }
        // The young generation is full: the fifth starts a new one, the first four are old.
        let miss = cache.get(&acs_id(4)).unwrap_err();
        cache.fill(miss, LIVE);
        assert_eq!(cache.len(), 5);
        // A hit in the old generation moves it to the young one.
        assert_eq!(cache.get(&acs_id(0)).unwrap(), LIVE);
        for n in 5..7 {
            let miss = cache.get(&acs_id(n)).unwrap_err();
            cache.fill(miss, LIVE);
        }
        // The young one is full again (0, 4, 5, 6): the next fill drops 1, 2 and 3.
        let miss = cache.get(&acs_id(7)).unwrap_err();
        cache.fill(miss, LIVE);
        assert!(cache.len() <= 8);
        assert_eq!(cache.get(&acs_id(0)).unwrap(), LIVE);
        for n in 1..4 {
            assert!(cache.get(&acs_id(n)).is_err(), "{n} was dropped");
        }
    }
}
