//! The keys a table holds, each under a small number (its id) while anything
//! holds it.
//!
//! Every reading looks its key up once. The key's text (commune and device) is
//! kept inside the map's own memory when it is short, as it nearly always is,
//! so the lookup hashes and compares without following a pointer. What the
//! table keeps about the key (where its latest window is, its place among the
//! members of a rollup) is kept by id, beside the key's owned form: the
//! lookup finds it there, and the table changes it by id, without looking the
//! key up again.
//!
//! Ids are counted: every window of a key holds its id, and so may others (the
//! commune members of [`super::rollup`]). A key is forgotten and its id reused
//! once nothing holds it, so a table never keeps more keys than there are
//! windows and members that hold them.

use std::borrow::Borrow;
use std::collections::hash_map::Entry as Slot;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};

use schemas::Domain;

use super::key::{AsKeyRef, FastState, KeyRef, WindowKey};

/// The number a table gives a key while it holds it.
pub(crate) type KeyId = usize;

/// How many bytes of commune and device text a key keeps in place.
const INLINE: usize = 45;

/// A key's text: the commune's bytes, then the device's.
#[derive(Debug, Clone)]
enum Text {
    Inline {
        commune: u8,
        len: u8,
        bytes: [u8; INLINE],
    },
    Heap {
        commune: usize,
        bytes: Box<[u8]>,
    },
}

impl Text {
    fn new(commune: &str, device: &str) -> Self {
        let len = commune.len() + device.len();
        match (u8::try_from(commune.len()), u8::try_from(len)) {
            (Ok(split), Ok(total)) if len <= INLINE => {
                let mut bytes = [0; INLINE];
                bytes[..commune.len()].copy_from_slice(commune.as_bytes());
                bytes[commune.len()..len].copy_from_slice(device.as_bytes());
                Text::Inline {
                    commune: split,
                    len: total,
                    bytes,
                }
            }
            _ => Text::Heap {
                commune: commune.len(),
                bytes: [commune.as_bytes(), device.as_bytes()].concat().into(),
            },
        }
    }

    /// The commune's bytes and the device's.
    fn parts(&self) -> (&[u8], &[u8]) {
        match self {
            Text::Inline {
                commune,
                len,
                bytes,
            } => bytes[..usize::from(*len)].split_at(usize::from(*commune)),
            Text::Heap { commune, bytes } => bytes.split_at(*commune),
        }
    }
}

/// A key as the map holds it.
#[derive(Debug, Clone)]
struct Packed {
    domain: Domain,
    lane: Option<u32>,
    text: Text,
}

/// What a lookup compares and hashes, whichever form the key is in.
#[derive(PartialEq, Eq)]
struct Parts<'a> {
    domain: Domain,
    lane: Option<u32>,
    commune: &'a [u8],
    device: &'a [u8],
}

impl Hash for Parts<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // The small parts and where the commune ends in one word, then the
        // text: three writes instead of seven.
        let lane = self.lane.map_or(0, |l| u64::from(l) + 1);
        let commune = self.commune.len() as u64;
        state.write_u64(lane ^ ((self.domain as u64) << 34) ^ (commune << 36));
        state.write(self.commune);
        state.write(self.device);
    }
}

trait AsParts {
    fn parts(&self) -> Parts<'_>;
}

impl AsParts for Packed {
    fn parts(&self) -> Parts<'_> {
        let (commune, device) = self.text.parts();
        Parts {
            domain: self.domain,
            lane: self.lane,
            commune,
            device,
        }
    }
}

impl AsParts for KeyRef<'_> {
    fn parts(&self) -> Parts<'_> {
        Parts {
            domain: self.domain,
            lane: self.lane,
            commune: self.commune.as_bytes(),
            device: self.device.as_bytes(),
        }
    }
}

impl<'a> Borrow<dyn AsParts + 'a> for Packed {
    fn borrow(&self) -> &(dyn AsParts + 'a) {
        self
    }
}

impl Hash for dyn AsParts + '_ {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.parts().hash(state);
    }
}

impl PartialEq for dyn AsParts + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.parts() == other.parts()
    }
}

impl Eq for dyn AsParts + '_ {}

// Must hash exactly as `dyn AsParts` does, which `Borrow` requires.
impl Hash for Packed {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.parts().hash(state);
    }
}

impl PartialEq for Packed {
    fn eq(&self, other: &Self) -> bool {
        self.parts() == other.parts()
    }
}

impl Eq for Packed {}

/// What a lookup finds: the key's id, where its newest window is (kept
/// exact by the table as windows open and close), and two hints that save
/// further lookups and are checked before use (`member`, `rollup`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Handle {
    pub(crate) id: KeyId,
    /// Where the key's newest window is, or [`NONE`], and its start.
    pub(crate) latest: usize,
    pub(crate) latest_start: i64,
    /// The key's position among the members of the commune rollup it last
    /// joined.
    pub(crate) member: u32,
    /// The id of that rollup's key in its own table.
    pub(crate) rollup: u32,
}

impl Handle {
    /// A key given its id just now: no window, no rollup.
    fn new(id: KeyId) -> Self {
        Self {
            id,
            latest: NONE,
            latest_start: i64::MIN,
            member: u32::MAX,
            rollup: u32::MAX,
        }
    }
}

/// No window: the end of a chain of windows, or a key without any.
pub(crate) const NONE: usize = usize::MAX;

/// A position as a hint: one too large to fit is a hint that never matches.
pub(crate) fn hint(position: usize) -> u32 {
    u32::try_from(position).unwrap_or(u32::MAX)
}

#[derive(Debug)]
struct Entry {
    /// `None` once forgotten (the id is free).
    key: Option<WindowKey>,
    /// How many windows and members hold the id.
    holds: usize,
    /// The key's hints (its `id` is the entry's).
    handle: Handle,
}

/// Keys by id, and ids by key.
#[derive(Debug, Default)]
pub(crate) struct Keys {
    ids: HashMap<Packed, KeyId, FastState>,
    entries: Vec<Entry>,
    free: Vec<KeyId>,
}

impl Keys {
    pub(crate) fn get(&self, key: KeyRef<'_>) -> Option<Handle> {
        let &id = self.ids.get(&key as &dyn AsParts)?;
        self.entries.get(id).map(|e| e.handle)
    }

    /// The id of `key`, given one if it has none; nothing holds it yet.
    pub(crate) fn intern(&mut self, key: KeyRef<'_>) -> KeyId {
        let packed = Packed {
            domain: key.domain,
            lane: key.lane,
            text: Text::new(key.commune, key.device),
        };
        // One lookup, whether the key is there or not.
        let slot = match self.ids.entry(packed) {
            Slot::Occupied(held) => return *held.get(),
            Slot::Vacant(slot) => slot,
        };
        let id = self.free.pop().unwrap_or(self.entries.len());
        let entry = Entry {
            key: Some(key.to_owned_key()),
            holds: 0,
            handle: Handle::new(id),
        };
        match self.entries.get_mut(id) {
            Some(free) => *free = entry,
            None => self.entries.push(entry),
        }
        slot.insert(id);
        id
    }

    /// Makes room for `n` more keys.
    pub(crate) fn reserve(&mut self, n: usize) {
        self.ids.reserve(n);
        self.entries.reserve(n);
    }

    /// The hints of key `id`, while it is held.
    fn handle_mut(&mut self, id: KeyId) -> Option<&mut Handle> {
        self.entries
            .get_mut(id)
            .filter(|e| e.key.is_some())
            .map(|e| &mut e.handle)
    }

    /// Changes where the newest window of key `id` is.
    pub(crate) fn set_latest(&mut self, id: KeyId, latest: usize, start: i64) {
        if let Some(handle) = self.handle_mut(id) {
            handle.latest = latest;
            handle.latest_start = start;
        }
    }

    /// Changes the position of key `id` among the members of the commune
    /// rollup it last joined.
    pub(crate) fn set_member(&mut self, id: KeyId, member: u32) {
        if let Some(handle) = self.handle_mut(id) {
            handle.member = member;
        }
    }

    /// Changes the id of the key of the commune rollup key `id` last joined.
    pub(crate) fn set_rollup(&mut self, id: KeyId, rollup: u32) {
        if let Some(handle) = self.handle_mut(id) {
            handle.rollup = rollup;
        }
    }

    /// What [`Keys::get`] finds for `key`, when `key` is held under `id`
    /// (without hashing it); `None` when it is not.
    pub(crate) fn get_by_id(&self, id: KeyId, key: KeyRef<'_>) -> Option<Handle> {
        let entry = self.entries.get(id)?;
        let held = entry.key.as_ref()?;
        let same = held.domain == key.domain
            && held.lane == key.lane
            && *held.commune == *key.commune
            && *held.device == *key.device;
        same.then_some(entry.handle)
    }

    pub(crate) fn key(&self, id: KeyId) -> Option<&WindowKey> {
        self.entries.get(id).and_then(|e| e.key.as_ref())
    }

    pub(crate) fn hold(&mut self, id: KeyId) {
        if let Some(entry) = self.entries.get_mut(id) {
            entry.holds += 1;
        }
    }

    /// Lets go of `id`; the last to let go forgets the key.
    pub(crate) fn release(&mut self, id: KeyId) {
        let Some(entry) = self.entries.get_mut(id) else {
            return;
        };
        entry.holds = entry.holds.saturating_sub(1);
        if entry.holds == 0 {
            if let Some(key) = entry.key.take() {
                self.ids.remove(&key.key_ref() as &dyn AsParts);
                self.free.push(id);
            }
        }
    }

    /// How many keys are held.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.ids.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key<'a>(commune: &'a str, device: &'a str, lane: Option<u32>) -> KeyRef<'a> {
        KeyRef {
            domain: Domain::Traffic,
            commune,
            device,
            lane,
        }
    }

    #[test]
    fn short_and_long_keys_are_told_apart_by_every_part() {
        let long = "c".repeat(300);
        let mut keys = Keys::default();
        let cases = [
            key("rabat", "c-1", None),
            key("rabat", "c-1", Some(1)),
            key("rabatc", "-1", None),
            key("", "", None),
            key(&long, "c-1", None),
            key("rabat", &long, None),
            key(&long[..40], &long[..5], None),
            key(&long[..5], &long[..40], None),
        ];
        let ids: Vec<_> = cases.iter().map(|&k| keys.intern(k)).collect();
        for (i, &k) in cases.iter().enumerate() {
            assert_eq!(keys.get(k).map(|h| h.id), Some(ids[i]));
            assert_eq!(keys.intern(k), ids[i]);
            let owned = keys.key(ids[i]).map(|o| o.key_ref());
            assert_eq!(owned, Some(k));
        }
        assert_eq!(keys.len(), cases.len());
        let other = KeyRef {
            domain: Domain::Waste,
            ..cases[0]
        };
        assert!(keys.get(other).is_none());
    }

    #[test]
    fn a_key_is_found_by_its_id_only_while_held_under_it() {
        let mut keys = Keys::default();
        let rabat = key("rabat", "", None);
        let a = keys.intern(rabat);
        keys.hold(a);
        keys.set_rollup(a, 7);
        let found = keys.get_by_id(a, rabat);
        assert_eq!(found.map(|h| (h.id, h.rollup)), Some((a, 7)));
        assert_eq!(found.map(|h| h.id), keys.get(rabat).map(|h| h.id));
        // Another key, another id, an id out of range: not found.
        for other in [
            key("sale", "", None),
            key("rabat", "c-1", None),
            key("rabat", "", Some(1)),
            KeyRef {
                domain: Domain::Waste,
                ..rabat
            },
        ] {
            assert!(keys.get_by_id(a, other).is_none());
        }
        assert!(keys.get_by_id(a + 1, rabat).is_none());
        // Forgotten, then the id given to another key.
        keys.release(a);
        assert!(keys.get_by_id(a, rabat).is_none());
        let b = keys.intern(key("sale", "", None));
        assert_eq!(b, a);
        assert!(keys.get_by_id(a, rabat).is_none());
        assert_eq!(
            keys.get_by_id(a, key("sale", "", None)).map(|h| h.rollup),
            Some(u32::MAX)
        );
    }

    #[test]
    fn a_key_is_forgotten_with_its_last_hold_and_its_id_reused() {
        let mut keys = Keys::default();
        let a = keys.intern(key("rabat", "c-1", None));
        keys.hold(a);
        keys.hold(a);
        keys.release(a);
        assert_eq!(keys.len(), 1);
        keys.release(a);
        assert_eq!(keys.len(), 0);
        assert!(keys.get(key("rabat", "c-1", None)).is_none());
        let b = keys.intern(key("sale", "c-2", None));
        assert_eq!(b, a);
        assert_eq!(
            keys.key(b).map(|k| k.key_ref()),
            Some(key("sale", "c-2", None))
        );
    }
}
