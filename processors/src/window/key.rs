//! Which series a window belongs to, as an owned key and as borrowed parts, and
//! the hasher every window map uses.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};

use schemas::Domain;

use crate::encode::plain_tag_value;

/// The hasher of every map of windows: foldhash, seeded at random per process
/// and per map.
///
/// Device ids, communes and lanes come from the network, so whoever can publish
/// picks the keys. The standard SipHash is keyed so that colliding keys cannot
/// be computed, but hashing with it was the largest single cost of a reading.
/// foldhash is keyed too (its seeds are random and never leave the process),
/// so collisions cannot be prepared offline; it makes no cryptographic promise
/// against someone who studies the running service at length. That is an
/// acceptable risk here: a flood of colliding keys slows lookups but cannot
/// grow memory, since a map never holds more keys than `max_open_windows`
/// windows and their commune members; and publishers authenticate with the
/// broker, so such a flood has a known source that can be cut off.
pub(crate) type FastState = foldhash::fast::RandomState;

/// A map of windows, hashed with [`FastState`].
pub(crate) type FastMap<K, V> = HashMap<K, V, FastState>;

/// Which series a window belongs to. Commune rollups leave `device` empty and
/// `lane` unset.
#[derive(Debug, Clone)]
pub(crate) struct WindowKey {
    pub(crate) domain: Domain,
    pub(crate) commune: Box<str>,
    pub(crate) device: Box<str>,
    pub(crate) lane: Option<u32>,
    /// Whether the commune and the device need no escape as tag values:
    /// checked once, not for every line written.
    pub(crate) plain: bool,
}

impl WindowKey {
    pub(crate) fn new(domain: Domain, commune: &str, device: &str, lane: Option<u32>) -> Self {
        Self {
            domain,
            commune: commune.into(),
            device: device.into(),
            lane,
            plain: plain_tag_value(commune) && plain_tag_value(device),
        }
    }
}

/// A key made of borrowed parts, to look a window up without allocating.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct KeyRef<'a> {
    pub(crate) domain: Domain,
    pub(crate) commune: &'a str,
    pub(crate) device: &'a str,
    pub(crate) lane: Option<u32>,
}

impl KeyRef<'_> {
    pub(crate) fn to_owned_key(self) -> WindowKey {
        WindowKey::new(self.domain, self.commune, self.device, self.lane)
    }
}

/// Both key forms seen as the same thing, so that a `HashMap<WindowKey, _>`
/// answers lookups by a [`KeyRef`].
pub(crate) trait AsKeyRef {
    fn key_ref(&self) -> KeyRef<'_>;
}

impl AsKeyRef for WindowKey {
    fn key_ref(&self) -> KeyRef<'_> {
        KeyRef {
            domain: self.domain,
            commune: &self.commune,
            device: &self.device,
            lane: self.lane,
        }
    }
}

impl AsKeyRef for KeyRef<'_> {
    fn key_ref(&self) -> KeyRef<'_> {
        *self
    }
}

impl<'a> Borrow<dyn AsKeyRef + 'a> for WindowKey {
    fn borrow(&self) -> &(dyn AsKeyRef + 'a) {
        self
    }
}

impl Hash for dyn AsKeyRef + '_ {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.key_ref().hash(state);
    }
}

impl PartialEq for dyn AsKeyRef + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.key_ref() == other.key_ref()
    }
}

impl Eq for dyn AsKeyRef + '_ {}

// Must hash exactly as `dyn AsKeyRef` does, which `Borrow` requires.
impl Hash for WindowKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.key_ref().hash(state);
    }
}

impl PartialEq for WindowKey {
    fn eq(&self, other: &Self) -> bool {
        self.key_ref() == other.key_ref()
    }
}

impl Eq for WindowKey {}
