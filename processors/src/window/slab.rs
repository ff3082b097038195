//! Windows by index, in chunks of fixed size: the store grows without moving
//! what it holds, and each chunk is small enough for the allocator to reuse.

/// How many entries a chunk holds.
const CHUNK: usize = 64;

/// Entries by index, appended at the end.
#[derive(Debug)]
pub(crate) struct Slab<T> {
    chunks: Vec<Vec<T>>,
    len: usize,
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Self {
            chunks: Vec::new(),
            len: 0,
        }
    }
}

impl<T> Slab<T> {
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn get(&self, index: usize) -> Option<&T> {
        self.chunks.get(index / CHUNK)?.get(index % CHUNK)
    }

    pub(crate) fn get_mut(&mut self, index: usize) -> Option<&mut T> {
        self.chunks.get_mut(index / CHUNK)?.get_mut(index % CHUNK)
    }

    /// Appends `value` and returns its index.
    pub(crate) fn push(&mut self, value: T) -> usize {
        if self.len.is_multiple_of(CHUNK) {
            self.chunks.push(Vec::with_capacity(CHUNK));
        }
        if let Some(chunk) = self.chunks.last_mut() {
            chunk.push(value);
        }
        self.len += 1;
        self.len - 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_keep_their_index_across_chunks() {
        let mut slab = Slab::default();
        for i in 0..3 * CHUNK + 5 {
            assert_eq!(slab.push(i), i);
        }
        assert_eq!(slab.len(), 3 * CHUNK + 5);
        if let Some(v) = slab.get_mut(CHUNK) {
            *v = 7;
        }
        assert_eq!(slab.get(CHUNK), Some(&7));
        assert_eq!(slab.get(2 * CHUNK + 1), Some(&(2 * CHUNK + 1)));
        assert_eq!(slab.get(3 * CHUNK + 5), None);
        assert_eq!(slab.get(usize::MAX), None);
    }
}
