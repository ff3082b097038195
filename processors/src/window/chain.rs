//! The windows of a table, in one slab, each key's windows chained from the
//! newest start to the oldest.
//!
//! A key's entry ([`super::keys`]) points at the head of its chain and knows
//! the head's start, so a reading for the key's newest window, or one that
//! opens a newer window, finds its place without reading another window;
//! older windows are found by a short walk. A forgotten window's memory is
//! reused by the next window opened, so a table in its steady state
//! allocates nothing.

use super::keys::{KeyId, NONE};
use super::slab::Slab;
use super::table::Aggregate;

#[derive(Debug)]
pub(crate) struct Window<A> {
    pub(crate) start: i64,
    pub(crate) id: KeyId,
    /// The key's window with the next older start, or [`NONE`].
    older: usize,
    /// The key's window with the next newer start, or [`NONE`].
    newer: usize,
    /// In use (else free).
    pub(crate) live: bool,
    /// Changed since its last emission (or never emitted).
    pub(crate) dirty: bool,
    /// Emitted at least once, so the next emission is a correction.
    pub(crate) emitted: bool,
    pub(crate) aggregate: A,
}

/// Windows by index, chained by key.
#[derive(Debug)]
pub(crate) struct Chains<A> {
    windows: Slab<Window<A>>,
    /// Windows not in use.
    free: Vec<usize>,
}

impl<A> Default for Chains<A> {
    fn default() -> Self {
        Self {
            windows: Slab::default(),
            free: Vec::new(),
        }
    }
}

impl<A: Aggregate> Chains<A> {
    /// How many windows the slab has room for, in use or not: every index
    /// is below it.
    pub(crate) fn len(&self) -> usize {
        self.windows.len()
    }

    pub(crate) fn get_mut(&mut self, index: usize) -> Option<&mut Window<A>> {
        self.windows.get_mut(index)
    }

    pub(crate) fn get(&self, index: usize) -> Option<&Window<A>> {
        self.windows.get(index)
    }

    /// The window starting at `start` in the chain whose head is `head`,
    /// starting at `head_start`.
    pub(crate) fn find(&self, head: usize, head_start: i64, start: i64) -> Option<usize> {
        if head == NONE || start > head_start {
            return None;
        }
        if start == head_start {
            return Some(head);
        }
        let mut at = self.windows.get(head).map_or(NONE, |w| w.older);
        loop {
            match self.windows.get(at) {
                Some(w) if w.start > start => at = w.older,
                Some(w) if w.start == start => return Some(at),
                _ => return None,
            }
        }
    }

    /// Opens an empty, dirty window of key `id` starting at `start` (which
    /// the key has none of) in the chain whose head is `head`. Returns where
    /// it is, and whether it is the new head.
    pub(crate) fn open(
        &mut self,
        id: KeyId,
        start: i64,
        head: usize,
        head_start: i64,
    ) -> (usize, bool) {
        // Its place: after the newest window that starts later, before the
        // next one. Usually it is the newest.
        let mut newer = NONE;
        let mut older = head;
        if start < head_start {
            while let Some(window) = self.windows.get(older) {
                if window.start < start {
                    break;
                }
                newer = older;
                older = window.older;
            }
        }
        // A window forgotten earlier is reused with its memory; its
        // aggregate was cleared when it was forgotten.
        let reused = self.free.pop().filter(|&i| i < self.windows.len());
        let index = reused.unwrap_or(self.windows.len());
        match self.windows.get_mut(index) {
            Some(slot) => {
                slot.start = start;
                slot.id = id;
                slot.older = older;
                slot.newer = newer;
                slot.live = true;
                slot.dirty = true;
                slot.emitted = false;
            }
            None => {
                self.windows.push(Window {
                    start,
                    id,
                    older,
                    newer,
                    live: true,
                    dirty: true,
                    emitted: false,
                    aggregate: A::default(),
                });
            }
        }
        if let Some(w) = self.windows.get_mut(older) {
            w.newer = index;
        }
        match self.windows.get_mut(newer) {
            Some(w) => {
                w.older = index;
                (index, false)
            }
            None => (index, true),
        }
    }

    /// Forgets the window at `index`, showing it to `forget` first. When it
    /// was its key's newest, returns the key's id and its new head (with its
    /// start), [`NONE`] if the key has no window left.
    pub(crate) fn forget(
        &mut self,
        index: usize,
        forget: impl FnOnce(&A),
    ) -> Option<(KeyId, usize, i64)> {
        let window = self.windows.get_mut(index).filter(|w| w.live)?;
        forget(&window.aggregate);
        window.aggregate.clear();
        window.live = false;
        let (id, older, newer) = (window.id, window.older, window.newer);
        self.free.push(index);
        if let Some(w) = self.windows.get_mut(older) {
            w.newer = newer;
        }
        if let Some(w) = self.windows.get_mut(newer) {
            w.older = older;
            return None;
        }
        let start = self.windows.get(older).map_or(i64::MIN, |w| w.start);
        Some((id, older, start))
    }
}
