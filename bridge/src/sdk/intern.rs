//! Interned strings for the SDK's `&'static str` setters (event names,
//! attribute keys, scope names, severity texts): bounded for the whole
//! process.

use std::{
    collections::HashSet,
    hash::{BuildHasherDefault, Hasher},
    sync::Mutex,
};

use opentelemetry::Key;

/// How many distinct strings (event names, attribute keys, scope names,
/// severity texts) the process may intern for the SDK's `&'static str`
/// setters, all bridges together.
pub(super) const MAX_INTERNED_STRINGS: usize = 8192;

/// How many bytes those interned strings may take, all bridges together.
pub(super) const MAX_INTERNED_BYTES: usize = 512 * 1024;

/// The longest string that is interned; longer ones are never interned.
pub(super) const MAX_INTERNED_LEN: usize = 256;

// === interning ===

/// FxHash: the keys are short strings from this process's own callsites,
/// hashed once per attribute, so a fast non-keyed hash fits.
#[derive(Clone, Copy, Default)]
pub(super) struct FxHasher(u64);

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0; 8];
            if let Some(head) = word.get_mut(..rest.len()) {
                head.copy_from_slice(rest);
            }
            self.add(u64::from_le_bytes(word));
        }
    }

    #[inline]
    fn write_u8(&mut self, byte: u8) {
        self.add(u64::from(byte));
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

pub(super) type Fx = BuildHasherDefault<FxHasher>;

/// The strings leaked so far, process-wide, within the bounds above.
struct GlobalStrings {
    set: HashSet<&'static str, Fx>,
    bytes: usize,
}

static GLOBAL_STRINGS: Mutex<Option<GlobalStrings>> = Mutex::new(None);

/// `&'static` copies of strings, for the SDK's `&'static str` setters.
///
/// The SDK takes event names and severity texts as `&'static str`; attribute
/// keys and targets are cheaper as `&'static str` too (no allocation per
/// record). They come from static callsites, so the set is finite: each is
/// leaked once, process-wide, up to [`MAX_INTERNED_STRINGS`] /
/// [`MAX_INTERNED_BYTES`]. Each emitter keeps its own lock-free view of what
/// it has used.
pub(super) struct Interner {
    local: HashSet<&'static str, Fx>,
    /// The key last seen at each attribute position: the records of one
    /// callsite carry the same keys in the same order, so most keys are
    /// found by one comparison, without hashing.
    recent: [&'static str; RECENT_KEYS + 1],
}

impl Default for Interner {
    fn default() -> Self {
        Self { local: HashSet::default(), recent: [""; RECENT_KEYS + 1] }
    }
}

/// Attribute positions whose last key is remembered.
const RECENT_KEYS: usize = 32;

/// The slot of [`Interner::recent`] for event names.
const RECENT_NAME: usize = RECENT_KEYS;

impl Interner {
    pub(super) fn get(&mut self, s: &str) -> Option<&'static str> {
        if let Some(&interned) = self.local.get(s) {
            return Some(interned);
        }
        if s.len() > MAX_INTERNED_LEN {
            return None;
        }
        let interned = {
            let mut global = GLOBAL_STRINGS.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let global = global.get_or_insert_with(|| GlobalStrings { set: HashSet::default(), bytes: 0 });
            match global.set.get(s) {
                Some(&interned) => interned,
                None if global.set.len() < MAX_INTERNED_STRINGS && global.bytes + s.len() <= MAX_INTERNED_BYTES => {
                    let leaked: &'static str = Box::leak(s.to_owned().into_boxed_str());
                    global.set.insert(leaked);
                    global.bytes += s.len();
                    leaked
                }
                None => return None,
            }
        };
        self.local.insert(interned);
        Some(interned)
    }

    /// As [`get`](Self::get), trying the string last interned in `slot`
    /// first.
    #[inline]
    fn get_in(&mut self, slot: usize, s: &str) -> Option<&'static str> {
        if let Some(&recent) = self.recent.get(slot)
            && recent == s
        {
            return Some(recent);
        }
        let interned = self.get(s)?;
        if let Some(recent) = self.recent.get_mut(slot) {
            *recent = interned;
        }
        Some(interned)
    }

    /// As [`key`](Self::key), for the attribute at `position` of a record.
    #[inline]
    pub(super) fn key_at(&mut self, position: usize, s: &str) -> Key {
        let interned = if position < RECENT_KEYS { self.get_in(position, s) } else { self.get(s) };
        as_key(interned, s)
    }

    /// As [`get`](Self::get), for event names: the last one is tried first.
    #[inline]
    pub(super) fn event_name(&mut self, s: &str) -> Option<&'static str> {
        self.get_in(RECENT_NAME, s)
    }

    pub(super) fn key(&mut self, s: &str) -> Key {
        let interned = self.get(s);
        as_key(interned, s)
    }
}

/// The key of `s`: its interned copy, or its own when it could not be
/// interned.
fn as_key(interned: Option<&'static str>, s: &str) -> Key {
    match interned {
        Some(interned) => Key::from_static_str(interned),
        None => Key::new(s.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use std::hash::Hasher as _;

    use super::*;

    #[test]
    fn the_interner_returns_the_same_string_and_refuses_long_ones() {
        let mut a = Interner::default();
        let mut b = Interner::default();
        let x = a.get("node.started").expect("room");
        let y = b.get("node.started").expect("room");
        assert!(std::ptr::eq(x, y), "one copy process-wide");
        assert_eq!(a.get(&"x".repeat(MAX_INTERNED_LEN + 1)), None);
    }

    #[test]
    fn keys_by_position_are_the_interned_keys() {
        let mut strings = Interner::default();
        for round in 0..3 {
            for (position, key) in ["a", "b", "a", "c"].into_iter().enumerate() {
                assert_eq!(strings.key_at(position, key).as_str(), key, "round {round}");
            }
            // Another callsite's keys at the same positions.
            assert_eq!(strings.key_at(0, "z").as_str(), "z");
            assert_eq!(strings.key_at(99, "far").as_str(), "far");
        }
        let long = "x".repeat(MAX_INTERNED_LEN + 1);
        assert_eq!(strings.key_at(1, &long).as_str(), long, "not interned, still the key");
    }

    #[test]
    fn fx_hashes_differ_for_different_keys() {
        let hash = |s: &str| {
            let mut h = FxHasher::default();
            std::hash::Hash::hash(s, &mut h);
            h.finish()
        };
        assert_ne!(hash("a"), hash("b"));
        assert_ne!(hash("abcdefgh1"), hash("abcdefgh2"));
        assert_eq!(hash("same"), hash("same"));
    }
}
